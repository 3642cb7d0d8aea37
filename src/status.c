/* status.json writer and the `status` command. */
#include "status.h"

#include "core/fault.h"
#include "core/hb.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void hb_iso_time(double t, char *buf, unsigned len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(FILE *f, const char *key, const char *v, int last)
{
    fprintf(f, "  \"%s\": ", key);
    if (!v) {
        fputs("null", f);
    } else {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
            if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
            else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
        fputc('"', f);
    }
    fputs(last ? "\n" : ",\n", f);
}

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, "  \"%s\": %.17g,\n", key, v);
    else fprintf(f, "  \"%s\": null,\n", key);
}

int hb_status_write(const char *dir, const hb_status *s)
{
    char path[4096], tmp[4200], t0[32], t1[32];
    snprintf(path, sizeof path, "%s/status.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = hb_fault_write("status", "data") ? NULL : fopen(tmp, "w");
    if (!f) return hb_err_set(HB_ECANTCREAT, tmp, "cannot write status: %s", strerror(errno));
    hb_iso_time(s->started_at, t0, sizeof t0);
    hb_iso_time(s->updated_at, t1, sizeof t1);
    fputs("{\n", f);
    json_str(f, "job", s->job, 0);
    json_str(f, "state", s->state, 0);
    json_str(f, "step", s->step, 0);
    json_num(f, "step_index", s->step_index);
    json_num(f, "steps_total", s->steps_total);
    json_num(f, "chunks_done", (double)s->chunks_done);
    json_num(f, "chunks_total", (double)s->chunks_total);
    json_num(f, "rows_done", (double)s->rows_done);
    json_num(f, "rows_total", (double)s->rows_total);
    json_str(f, "unit", s->unit ? s->unit : "rows", 0);
    json_num(f, "rate_rows_per_s", s->rate);
    json_num(f, "eta_s", s->eta);
    json_num(f, "ranks", s->ranks);
    json_num(f, "pid", (double)getpid());
    json_num(f, "restarts", s->restarts);
    const char *slurm = getenv("SLURM_JOB_ID");
    json_str(f, "slurm_job_id", slurm, 0);
    const char *requeued = getenv("SLURM_RESTART_COUNT");
    json_num(f, "slurm_restart_count", requeued ? atof(requeued) : 0);
    json_str(f, "started_at", t0, 0);
    json_str(f, "updated_at", t1, 0);
    json_str(f, "last_checkpoint", s->last_checkpoint, 0);
    json_str(f, "error", s->error, 1);
    fputs("}\n", f);
    int bad = ferror(f);
    bad |= fclose(f);
    if (bad || hb_fault_write("status", "commit") || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return hb_err_set(HB_ECANTCREAT, path, "cannot write status: %s", strerror(e));
    }
    return 0;
}

/* Finds "key": in a flat JSON object and copies its value (unquoted) into out. */
static int json_get(const char *text, const char *key, char *out, size_t len)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    if (!p) return -1;
    p += strlen(pat);
    while (*p == ' ') p++;
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < len; p++) {
            if (*p == '\\' && p[1]) p++;
            out[n++] = *p;
        }
    } else {
        while (*p && *p != ',' && *p != '\n' && *p != '}' && n + 1 < len) out[n++] = *p++;
    }
    out[n] = '\0';
    return 0;
}

static void fmt_duration(double s, char *buf, size_t len)
{
    if (!isfinite(s) || s < 0) snprintf(buf, len, "-");
    else if (s < 120) snprintf(buf, len, "%.0fs", s);
    else if (s < 7200) snprintf(buf, len, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(buf, len, "%.0fh%02.0fm", floor(s / 3600), floor(fmod(s, 3600) / 60));
}

int hb_status_main(int argc, char **argv)
{
    const char *dir = NULL;
    int as_json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) as_json = 1;
        else if (argv[i][0] == '-') return hb_err_set(HB_EUSAGE, "status", "unknown option '%s'", argv[i]);
        else if (!dir) dir = argv[i];
        else return hb_err_set(HB_EUSAGE, "status", "one run directory expected, got '%s' too", argv[i]);
    }
    if (!dir) return hb_err_set(HB_EUSAGE, "status", "usage: h5batch status RUN_DIR [--json]");
    char path[4096];
    snprintf(path, sizeof path, "%s/status.json", dir);
    FILE *f = fopen(path, "r");
    if (!f) return hb_err_set(HB_ENOINPUT, path, "no status (%s): is this a run directory?", strerror(errno));
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    if (as_json) {
        fputs(text, stdout);
        return 0;
    }
    char job[256] = "", state[64] = "", step[256] = "", si[32] = "", st[32] = "", cd[32] = "", ct[32] = "",
         rd[32] = "", rate[32] = "", eta[32] = "", ranks[32] = "", t0[64] = "", t1[64] = "", ck[512] = "",
         err[1024] = "", restarts[32] = "", slurm[64] = "", unit[64] = "rows";
    json_get(text, "job", job, sizeof job);
    json_get(text, "state", state, sizeof state);
    json_get(text, "step", step, sizeof step);
    json_get(text, "step_index", si, sizeof si);
    json_get(text, "steps_total", st, sizeof st);
    json_get(text, "chunks_done", cd, sizeof cd);
    json_get(text, "chunks_total", ct, sizeof ct);
    json_get(text, "rows_done", rd, sizeof rd);
    json_get(text, "unit", unit, sizeof unit);
    json_get(text, "rate_rows_per_s", rate, sizeof rate);
    json_get(text, "eta_s", eta, sizeof eta);
    json_get(text, "ranks", ranks, sizeof ranks);
    json_get(text, "started_at", t0, sizeof t0);
    json_get(text, "updated_at", t1, sizeof t1);
    json_get(text, "last_checkpoint", ck, sizeof ck);
    json_get(text, "error", err, sizeof err);
    json_get(text, "restarts", restarts, sizeof restarts);
    json_get(text, "slurm_job_id", slurm, sizeof slurm);
    double done = atof(cd), total = atof(ct), r = atof(rate);
    char etab[32];
    fmt_duration(strcmp(eta, "null") ? atof(eta) : NAN, etab, sizeof etab);
    printf("job       %s\nstate     %s\nstep      %s (%d of %d)\n", job, state, step, atoi(si) + 1, atoi(st));
    printf("progress  %.0f of %.0f chunks (%.1f%%), %.0f %s\n", done, total, total > 0 ? 100 * done / total : 0,
           atof(rd), unit);
    printf("rate      %.3g M%s/s on %s ranks, ETA %s\n", r / 1e6, unit, ranks, etab);
    printf("started   %s\nupdated   %s\n", t0, t1);
    printf("checkpoint %s\n", strcmp(ck, "null") && *ck ? ck : "none");
    printf("restarts  %d\n", atoi(restarts));
    if (strcmp(slurm, "null") && *slurm) printf("slurm job %s\n", slurm);
    if (strcmp(err, "null") && *err) printf("error     %s\n", err);
    return 0;
}
