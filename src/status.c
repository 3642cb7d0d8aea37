/* status.json writer and the `status` command. */
#include "status.h"

#include "core/commit.h"
#include "core/fault.h"
#include "core/hb.h"

#include <errno.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/* A JSON string: quotes, backslashes and control bytes escaped; a byte that is not
 * valid UTF-8 (paths may hold any bytes) becomes U+FFFD, so that the file stays JSON. */
static void json_str(FILE *f, const char *key, const char *v, int last)
{
    fprintf(f, "  \"%s\": ", key);
    hb_json_str(f, v, v ? strlen(v) : 0);
    fputs(last ? "\n" : ",\n", f);
}

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, "  \"%s\": %.17g,\n", key, v);
    else fprintf(f, "  \"%s\": null,\n", key);
}

int hb_status_write(const char *dir, const hb_status *s)
{
    char path[4096], t0[32], t1[32], host[256] = "";
    snprintf(path, sizeof path, "%s/status.json", dir);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return hb_err_set(HB_ECANTCREAT, path, "cannot write status: %s", strerror(errno));
    hb_iso_time(s->started_at, t0, sizeof t0);
    hb_iso_time(s->updated_at, t1, sizeof t1);
    gethostname(host, sizeof host - 1);
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
    json_str(f, "host", host, 0);
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
    /* a unique temporary, never a name a link could be planted at; a report, so no fsync
     * of the folder (docs/architecture.md, "Files and claims") */
    if (bad || hb_write_report(path, buf, len, "status") != 0) {
        int e = bad ? ENOMEM : errno;
        free(buf);
        return hb_err_set(HB_ECANTCREAT, path, "cannot write status: %s", strerror(e));
    }
    free(buf);
    return 0;
}

/* Finds "key": in a flat JSON object and copies its value (unquoted, escapes decoded)
 * into out. */
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
        for (p++; *p && *p != '"' && n + 5 < len; p++) {
            if (*p == '\\' && p[1] == 'u' && strspn(p + 2, "0123456789abcdefABCDEF") >= 4) {
                unsigned c = (unsigned)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                p += 5;
                if (c < 0x80) {
                    out[n++] = (char)c;
                } else if (c < 0x800) {
                    out[n++] = (char)(0xC0 | c >> 6), out[n++] = (char)(0x80 | (c & 0x3F));
                } else {
                    out[n++] = (char)(0xE0 | c >> 12), out[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
                    out[n++] = (char)(0x80 | (c & 0x3F));
                }
                continue;
            }
            if (*p == '\\' && p[1]) p++;
            out[n++] = *p == 'n' && p[-1] == '\\' ? '\n' : *p;
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

#define STATUS_MAX (1 << 20) /* bytes: a status.json is a few hundred */

/* Reads dir/status.json into *text: 66 when it is missing or not a regular file (never
 * blocking on a FIFO), 65 when it is not h5batch's status (random bytes, no state). */
static int read_status(const char *dir, char **text)
{
    *text = NULL;
    struct stat sb;
    char path[4200];
    snprintf(path, sizeof path, "%s/status.json", dir);
    if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return hb_err_set(HB_ENOINPUT, dir, "is %s, not a run directory", hb_file_kind(sb.st_mode));
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return hb_err_set(HB_ENOINPUT, path, "no status (%s): is this a run directory?", strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hb_err_set(HB_ENOINPUT, path, "is %s, not a status file", hb_file_kind(sb.st_mode));
    }
    if (sb.st_size > STATUS_MAX) {
        close(fd);
        return hb_err_set(HB_EDATA, path, "is %lld bytes: not a status file of h5batch", (long long)sb.st_size);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)sb.st_size) : -1;
    close(fd);
    if (!buf || n < 0) {
        free(buf);
        return buf ? hb_err_set(HB_ENOINPUT, path, "cannot read: %s", strerror(errno)) : HB_EINTERNAL;
    }
    buf[n] = '\0';
    char state[64] = "";
    const char *b = buf;
    while (*b == ' ' || *b == '\n' || *b == '\t' || *b == '\r') b++;
    static const char *const states[] = {"running", "checkpointed", "failed", "complete", NULL};
    int known = 0;
    if (*b == '{' && memchr(buf, '\0', (size_t)n) == NULL && json_get(buf, "state", state, sizeof state) == 0)
        for (const char *const *s = states; *s; s++) known |= strcmp(state, *s) == 0;
    if (!known) {
        free(buf);
        return hb_err_set(HB_EDATA, path, "not a status file of h5batch (a JSON object with a 'state' of running, "
                                          "checkpointed, failed or complete)");
    }
    *text = buf;
    return 0;
}

/* Whether the run that wrote a status "running" is still there: its pid on this host,
 * or, from another host, whether anyone holds the run directory's lock. */
static int run_alive(const char *dir, const char *text)
{
    char pid[32] = "", host[256] = "", me[256] = "";
    json_get(text, "pid", pid, sizeof pid);
    json_get(text, "host", host, sizeof host);
    gethostname(me, sizeof me - 1);
    long p = atol(pid);
    if (p > 0 && (!*host || strcmp(host, me) == 0)) return kill((pid_t)p, 0) == 0 || errno == EPERM;
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/lock", dir);
    int fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return 1; /* cannot tell */
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

/* Prints s for a terminal: control bytes escaped (hb_err_escape). */
static void put(const char *label, const char *s)
{
    char buf[2048];
    hb_err_escape(s, buf, sizeof buf);
    printf("%s%s\n", label, buf);
}

#define STATUS_USAGE "usage: h5batch status RUN_DIR [--json]"

int hb_status_main(int argc, char **argv)
{
    const char *dir = NULL;
    int as_json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) as_json = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(STATUS_USAGE "\n\n"
                  "Prints the state of a run from its status.json (state, step, chunks done, ETA, the last\n"
                  "error); --json prints status.json itself. Reads only: safe while the run goes on.\n",
                  stdout);
            return 0;
        } else if (argv[i][0] == '-') return hb_err_set(HB_EUSAGE, "status", "unknown option '%s'", argv[i]);
        else if (!dir) dir = argv[i];
        else return hb_err_set(HB_EUSAGE, "status", "one run directory expected, got '%s' too", argv[i]);
    }
    if (!dir) return hb_err_set(HB_EUSAGE, "status", STATUS_USAGE);
    char *text;
    HB_CALL(read_status(dir, &text));
    char job[256] = "", state[64] = "", step[256] = "", si[32] = "", st[32] = "", cd[32] = "", ct[32] = "",
         rd[32] = "", rate[32] = "", eta[32] = "", ranks[32] = "", t0[64] = "", t1[64] = "", ck[1024] = "",
         err[2048] = "", restarts[32] = "", slurm[64] = "", unit[64] = "rows", pid[32] = "", host[256] = "";
    json_get(text, "state", state, sizeof state);
    json_get(text, "updated_at", t1, sizeof t1);
    json_get(text, "pid", pid, sizeof pid);
    json_get(text, "host", host, sizeof host);
    const int alive = strcmp(state, "running") != 0 || run_alive(dir, text);
    if (as_json) {
        /* the recorded object, with what this look found beside it */
        size_t n = strlen(text);
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r')) n--;
        if (n > 0 && text[n - 1] == '}') n--;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r')) n--;
        fwrite(text, 1, n, stdout);
        printf(",\n  \"alive\": %s,\n  \"stopped\": %s\n}\n", strcmp(state, "running") == 0 && alive ? "true" : "false",
               alive ? "false" : "true");
        free(text);
        return 0;
    }
    json_get(text, "job", job, sizeof job);
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
    json_get(text, "last_checkpoint", ck, sizeof ck);
    json_get(text, "error", err, sizeof err);
    json_get(text, "restarts", restarts, sizeof restarts);
    json_get(text, "slurm_job_id", slurm, sizeof slurm);
    free(text);
    double done = atof(cd), total = atof(ct), r = atof(rate);
    char etab[32], line[600];
    fmt_duration(strcmp(eta, "null") ? atof(eta) : NAN, etab, sizeof etab);
    put("job       ", job);
    if (alive) {
        put("state     ", state);
    } else {
        snprintf(line, sizeof line, "stopped (process %s on host %s is gone; last update %s)", pid,
                 *host ? host : "?", t1);
        put("state     ", line);
    }
    snprintf(line, sizeof line, "%s (%d of %d)", step, atoi(si) + 1, atoi(st));
    put("step      ", line);
    printf("progress  %.0f of %.0f chunks (%.1f%%), %.0f %s\n", done, total, total > 0 ? 100 * done / total : 0,
           atof(rd), unit);
    printf("rate      %.3g M%s/s on %s ranks, ETA %s\n", r / 1e6, unit, ranks, alive ? etab : "-");
    put("started   ", t0);
    put("updated   ", t1);
    put("checkpoint ", strcmp(ck, "null") && *ck ? ck : "none");
    printf("restarts  %d\n", atoi(restarts));
    if (strcmp(slurm, "null") && *slurm) put("slurm job ", slurm);
    if (strcmp(err, "null") && *err) put("error     ", err);
    return 0;
}
