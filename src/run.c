/* Runs the steps of a job: input checks, kernel setup, rounds of chunks, finalize,
 * provenance and commit. Status goes to RUN_DIR/status.json and progress to stderr. */
#include "core/commit.h"
#include "run.h"

#include "io/io.h"
#include "kernels/kernel.h"
#include "kernels/common/spill.h"
#include "core/fault.h"
#include "core/hb.h"
#include "core/stall.h"
#include "ckpt.h"
#include "partial.h"
#include "job.h"
#include "status.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define PROGRESS_EVERY 5.0 /* seconds between progress lines */
#define STATUS_EVERY 2.0   /* seconds between status.json refreshes */

/* What `h5batch merge` reads instead of an input: the parts, and its units of work,
 * the parts' saved states (part p's state b is unit first[p] + b). */
typedef struct merge_src {
    hb_partinfo *info;
    hb_part *parts;
    int n;
    int64_t *first;   /* n + 1 */
    uint64_t *leaves; /* every part's leaves, in order */
    int64_t nleaves, rows;
} merge_src;

typedef struct run {
    hb_job job;
    int force, fresh;
    int partial;      /* --partial: each step writes a partial state, not its output */
    merge_src *merge; /* h5batch merge: the one step reads these parts */
    int lock_fd, out_lock_fd; /* rank 0: the claims on the run directory and on the output */
    char lock_path[4200], out_lock[4200];
    hb_status st;
    double last_status, last_progress;
    int tty;
    int64_t printed_done; /* chunks_done in the last progress line */
    char fingerprint[32];
    /* checkpoints of the current step, for the log, status and provenance */
    int restarts, ckpt_count;
    double ckpt_time;
    uint64_t ckpt_bytes;
    char last_ckpt[320];
    /* where the steps' spilled runs go: scratch_base/scratch_sub/STEP (scratch_setup) */
    char scratch_base[4096], scratch_sub[200];
} run;

/* The first SIGTERM, SIGINT or SIGUSR1 asks for a checkpoint and exit 75 at the end of
 * the current round; a second one of the same kind ends the process at once. */
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    if (got_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    got_signal = sig;
}

/* Collective. The highest signal number any rank has received (0: none). */
static int agreed_signal(void)
{
    int sig = got_signal, all;
    hb_stall_allreduce(&sig, &all, 1, MPI_INT, MPI_MAX);
    return all;
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rank 0: creates the run directory (0700 when it is new) and takes its lock, so two runs
 * never share it; a lock a dead run left is taken over with a warning. */
static int take_lock(run *r)
{
    const char *dir = r->job.run_dir;
    if (hb_mkdir_mode(dir, 0700) != 0)
        return hb_err_set(HB_ECANTCREAT, dir, "cannot create run directory: %s", strerror(errno));
    snprintf(r->lock_path, sizeof r->lock_path, "%s/lock", dir);
    char what[4300];
    snprintf(what, sizeof what, "run directory %s", dir);
    return hb_claim_take(r->lock_path, what, dir, &r->lock_fd);
}

/* Not collective. 73 unless base (named by from: the option or the variable) is a folder
 * that is not a link and is writable, or is missing with its parent folder there. */
static int check_scratch(const char *base, const char *from)
{
    struct stat sb;
    if (lstat(base, &sb) == 0) {
        if (S_ISLNK(sb.st_mode))
            return hb_err_set(HB_ECANTCREAT, base, "%s is a symbolic link; give the folder it points to", from);
        if (!S_ISDIR(sb.st_mode))
            return hb_err_set(HB_ECANTCREAT, base, "%s is %s, not a folder", from, hb_file_kind(sb.st_mode));
        if (access(base, W_OK | X_OK) != 0)
            return hb_err_set(HB_ECANTCREAT, base, "%s is not writable: %s", from, strerror(errno));
        return 0;
    }
    if (errno != ENOENT) return hb_err_set(HB_ECANTCREAT, base, "%s cannot be used: %s", from, strerror(errno));
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", base);
    const char *parent = dirname(buf);
    if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return hb_err_set(HB_ECANTCREAT, base, "%s: its parent folder %s does not exist", from, parent);
    if (access(parent, W_OK | X_OK) != 0)
        return hb_err_set(HB_ECANTCREAT, base, "%s does not exist and its parent folder %s is not writable", from,
                          parent);
    return 0;
}

/* Collective. Where the steps' spilled runs go (docs/spill.md): [job] scratch_dir, else
 * $SLURM_TMPDIR, else $TMPDIR, in a per-job subfolder h5batch-JOB-HASH (HASH of the run
 * directory's name: the same at every restart, so that a resume finds the runs its
 * checkpoint refers to); else RUN_DIR/scratch. Each rank checks its own (73). */
static int scratch_setup(run *r)
{
    const char *base = r->job.scratch_dir, *from = "scratch_dir", *e;
    if (!base && (e = getenv("SLURM_TMPDIR")) && *e) base = e, from = "$SLURM_TMPDIR";
    else if (!base && (e = getenv("TMPDIR")) && *e) base = e, from = "$TMPDIR";
    int rc = 0;
    if (!base) {
        snprintf(r->scratch_base, sizeof r->scratch_base, "%s", r->job.run_dir);
        snprintf(r->scratch_sub, sizeof r->scratch_sub, "scratch");
    } else {
        rc = check_scratch(base, from);
        char name[65];
        size_t n = 0;
        for (const char *c = r->job.name; *c && n < 64; c++, n++)
            name[n] = isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.' ? *c : '_';
        name[n] = '\0';
        snprintf(r->scratch_base, sizeof r->scratch_base, "%s", base);
        snprintf(r->scratch_sub, sizeof r->scratch_sub, "h5batch-%s-%08llx", name,
                 (unsigned long long)(XXH3_64bits(r->job.run_dir, strlen(r->job.run_dir)) & 0xffffffffu));
    }
    return hb_agree(rc);
}

/* Not collective. Points the spill module at step s's scratch folder. */
static void scratch_step(const run *r, const hb_step *s)
{
    char sub[512];
    snprintf(sub, sizeof sub, "%s/%s", r->scratch_sub, s->name);
    hb_spill_set_dir(r->scratch_base, sub);
}

/* Not collective. Removes the step's spilled runs (each rank those it can see: a
 * node-local $TMPDIR holds its host's); a failure is a warning. */
static void scratch_remove(const run *r, const hb_step *s)
{
    scratch_step(r, s);
    if (hb_spill_cleanup() != 0) hb_warn("%s: cannot remove spilled runs: %s", hb_spill_dir(), strerror(errno));
    hb_spill_set_dir(NULL, NULL);
}

/* Rank 0: 0 when the step may write its output where it is: not in the run directory,
 * and an existing output is a regular file that is not the step's input. */
static int output_allowed(run *r, const hb_step *s)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", s->output);
    struct stat dir, rd, sb, in;
    if (stat(dirname(buf), &dir) == 0 && stat(r->job.run_dir, &rd) == 0 && dir.st_dev == rd.st_dev &&
        dir.st_ino == rd.st_ino)
        return hb_err_set(HB_ECANTCREAT, s->output,
                          "output is in the run directory %s, which holds h5batch's own files; choose another folder",
                          r->job.run_dir);
    if (lstat(s->output, &sb) != 0) return 0;
    if (s->input && stat(s->input, &in) == 0 && sb.st_dev == in.st_dev && sb.st_ino == in.st_ino)
        return hb_err_set(HB_ECANTCREAT, s->output, "output is the step's input %s; it is never replaced (not even "
                                                    "with --force): choose another output",
                          s->input);
    for (int p = 0; r->merge && p < r->merge->n; p++)
        if (stat(r->merge->info[p].path, &in) == 0 && sb.st_dev == in.st_dev && sb.st_ino == in.st_ino)
            return hb_err_set(HB_ECANTCREAT, s->output,
                              "output is the part %s; a part is never replaced (not even with --force): choose "
                              "another output",
                              r->merge->info[p].path);
    return hb_replaceable(s->output);
}

/* Collective. Claims the step's output for this run (rank 0: OUTPUT.lock beside it), so
 * that two jobs never write one output; 73 naming the other run. */
static int claim_output(run *r, const hb_step *s)
{
    int rc = 0;
    if (hb_rank == 0) {
        snprintf(r->out_lock, sizeof r->out_lock, "%s.lock", s->output);
        char what[4300];
        snprintf(what, sizeof what, "output %s", s->output);
        rc = output_allowed(r, s); /* before a lock file is made beside a device */
        if (rc == 0) rc = hb_check_writable(s->output);
        if (rc == 0) rc = hb_claim_take(r->out_lock, what, r->job.run_dir, &r->out_lock_fd);
    }
    return hb_agree(rc);
}

static void release_output(run *r)
{
    if (hb_rank != 0 || r->out_lock_fd < 0) return;
    hb_claim_release(r->out_lock, r->out_lock_fd, 1);
    r->out_lock_fd = -1;
}

static void update_status(run *r, const char *state, int force)
{
    if (hb_rank != 0) return;
    double now = hb_now();
    if (!force && now - r->last_status < STATUS_EVERY) return;
    r->last_status = now;
    r->st.state = state;
    r->st.updated_at = unix_now();
    const int failed = hb_err_code() != 0;
    r->st.error = failed ? hb_err_msg() : NULL;
    /* status.json is a report, not a result: its failure is a warning, and never replaces
     * the error of a failed run (the first error recorded is kept) */
    if (hb_status_write(r->job.run_dir, &r->st) != 0) {
        if (failed) {
            hb_warn("%s/status.json: cannot write status", r->job.run_dir);
        } else {
            hb_warn("%s", hb_err_msg());
            hb_err_clear();
        }
    }
}

/* The stall deadline's report (core/stall.h), on the rank that reports it (rank 0, or
 * the first rank on another host when rank 0 is the one lost): status.json says failed
 * with the reason, written whatever rank this is, since the job is about to be aborted. */
static void stall_status(void *user)
{
    run *r = user;
    r->st.state = "failed";
    r->st.updated_at = unix_now();
    r->st.error = hb_err_msg();
    if (hb_status_write(r->job.run_dir, &r->st) != 0) hb_warn("%s/status.json: cannot write status", r->job.run_dir);
    release_output(r); /* rank 0's claims: the output's and the run directory's */
    if (r->lock_fd >= 0) hb_claim_release(r->lock_path, r->lock_fd, 0);
    r->lock_fd = -1;
}

/* Updates the rate and ETA (rows since t0, when this run started mapping, over rows0
 * already done before it) and prints progress on rank 0 now and then. */
static void progress(run *r, double t0, int64_t rows0, int final)
{
    hb_status *s = &r->st;
    double now = hb_now(), el = now - t0;
    double frac = s->chunks_total ? (double)s->chunks_done / (double)s->chunks_total : 1;
    s->rate = el > 0 ? (double)(s->rows_done - rows0) / el : 0;
    s->eta = s->rate > 0 ? (double)(s->rows_total - s->rows_done) / s->rate : NAN;
    if (hb_rank != 0 || hb_log_level < 1) return;
    if (!final && now - r->last_progress < (r->tty ? 0.5 : PROGRESS_EVERY)) return;
    if (final && !r->tty && r->printed_done == s->chunks_done) return; /* that line is out already */
    r->last_progress = now;
    r->printed_done = s->chunks_done;
    if (r->tty) {
        char bar[31];
        int w = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r  %s [%s] %5.1f%%  %7.2f M%s/s  ETA %4.0fs ", s->step, bar, 100 * frac, s->rate / 1e6,
                s->unit, isfinite(s->eta) ? s->eta : 0);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "h5batch: %s: %lld/%lld chunks (%.1f%%), %.2f M%s/s, ETA %.0fs\n", s->step,
                (long long)s->chunks_done, (long long)s->chunks_total, 100 * frac, s->rate / 1e6, s->unit,
                isfinite(s->eta) ? s->eta : 0);
    }
}

/* Adds the content of the file a HB_OPT_FILE option names (when it names one) to h. */
static void digest_file(XXH3_state_t *h, const char *name, const char *path)
{
    struct stat sb;
    uint64_t d;
    if (!path || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return;
    if (hb_file_digest_quiet(path, &d) != 0) return; /* unreadable: the step's own open reports it */
    char id[160];
    snprintf(id, sizeof id, "%s:%016llx", name, (unsigned long long)d);
    XXH3_64bits_update(h, id, strlen(id) + 1);
}

/* Collective. A step's identity: kernel, effective options, input and output, and the
 * content of every other file the step reads (HB_OPT_FILE options: stop words, ...), as
 * rank 0 sees them. Equal fingerprints mean the existing output is this step's own
 * completed result. */
static void step_fingerprint(const run *r, const hb_step *s, char *out, size_t len)
{
    if (hb_rank == 0) {
        XXH3_state_t *h = XXH3_createState();
        XXH3_64bits_reset(h);
        XXH3_64bits_update(h, HB_VERSION, sizeof HB_VERSION);
        XXH3_64bits_update(h, s->kernel->name, strlen(s->kernel->name) + 1);
        /* a partial state and a final output of the same step are different results */
        const char *kind = r->partial ? "partial" : "output";
        XXH3_64bits_update(h, kind, strlen(kind) + 1);
        /* a merge is its parts, in order: their identities, not their paths */
        for (int p = 0; r->merge && p < r->merge->n; p++)
            XXH3_64bits_update(h, r->merge->info[p].digest, strlen(r->merge->info[p].digest) + 1);
        for (const hb_option *o = s->kernel->options; o->name; o++) {
            const char *v = hb_opt_str(&s->opts, o->name);
            XXH3_64bits_update(h, o->name, strlen(o->name) + 1);
            XXH3_64bits_update(h, v ? v : "", v ? strlen(v) + 1 : 1);
            if (o->type == HB_OPT_FILE) digest_file(h, o->name, v);
        }
        struct stat sb;
        char id[128];
        char *abs = s->input ? realpath(s->input, NULL) : NULL;
        const char *in = abs ? abs : s->input ? s->input : "";
        XXH3_64bits_update(h, in, strlen(in) + 1);
        free(abs);
        if (s->input && stat(s->input, &sb) == 0) {
            snprintf(id, sizeof id, "%lld:%lld.%09ld", (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
                     sb.st_mtim.tv_nsec);
            XXH3_64bits_update(h, id, strlen(id) + 1);
        }
        snprintf(out, len, "%016llx", (unsigned long long)XXH3_64bits_digest(h));
        XXH3_freeState(h);
    }
    MPI_Bcast(out, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
}

/* Rank 0 decides: 0 run the step, 1 skip it (already complete), or an error. */
static int check_output(run *r, const hb_step *s, int *skip)
{
    *skip = 0;
    if (hb_rank == 0) {
        struct stat sb;
        int rc = output_allowed(r, s);
        if (rc == 0 && lstat(s->output, &sb) == 0) {
            char fp[64];
            if (hb_out_probe(s->output, "fingerprint", fp, sizeof fp) == 0 && strcmp(fp, r->fingerprint) == 0 &&
                !r->force) {
                *skip = 1;
            } else if (!r->force) {
                rc = hb_err_set(HB_ECANTCREAT, s->output,
                                "output exists and is not a completed output of this job; use --force to replace it");
            }
        }
        if (rc == 0) rc = hb_check_writable(s->output);
        *skip = rc ? 0 : *skip;
        MPI_Bcast(skip, 1, MPI_INT, 0, MPI_COMM_WORLD);
        return hb_agree(rc);
    }
    MPI_Bcast(skip, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return hb_agree(0);
}

/* Collective. The distinct host names of all ranks, comma-separated (same on every rank). */
static char *host_list(void)
{
    char name[MPI_MAX_PROCESSOR_NAME];
    int len;
    MPI_Get_processor_name(name, &len);
    char *all = malloc((size_t)hb_size * MPI_MAX_PROCESSOR_NAME);
    char *out = calloc((size_t)hb_size, MPI_MAX_PROCESSOR_NAME + 1);
    if (!all || !out) {
        free(all), free(out);
        return NULL;
    }
    MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, MPI_COMM_WORLD);
    for (int i = 0; i < hb_size; i++) {
        const char *h = all + (size_t)i * MPI_MAX_PROCESSOR_NAME;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = strcmp(h, all + (size_t)j * MPI_MAX_PROCESSOR_NAME) == 0;
        if (seen) continue;
        if (*out) strcat(out, ",");
        strcat(out, h);
    }
    free(all);
    return out;
}

enum { T_SETUP, T_MAP, T_EXCHANGE, T_FINALIZE, T_N };

/* A merge's parts for /provenance's input, one per line (malloc'd); NULL for a run. */
static char *merge_inputs(const run *r)
{
    if (!r->merge) return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    for (int p = 0; p < r->merge->n; p++) fprintf(f, "%s%s", p ? "\n" : "", r->merge->info[p].path);
    if (fclose(f) != 0) return free(text), NULL;
    return text;
}

static int write_provenance(run *r, const hb_step *s, const hb_step_ctx *ctx, hb_out *out, double *t,
                            double started)
{
    const char *g = "/provenance";
    double tmax[T_N];
    MPI_Allreduce(t, tmax, T_N, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    char *hosts = host_list();
    char iso[32], ver[64], mpiver[MPI_MAX_LIBRARY_VERSION_STRING];
    unsigned maj, min, rel;
    int ml;
    H5get_libversion(&maj, &min, &rel);
    snprintf(ver, sizeof ver, "%u.%u.%u", maj, min, rel);
    MPI_Get_library_version(mpiver, &ml);
    mpiver[strcspn(mpiver, "\n")] = '\0';
    struct stat sb;
    uint64_t in_bytes = 0;
    if (s->input && stat(s->input, &sb) == 0) in_bytes = (uint64_t)sb.st_size;
    for (int p = 0; r->merge && p < r->merge->n; p++)
        if (stat(r->merge->info[p].path, &sb) == 0) in_bytes += (uint64_t)sb.st_size;
    char *inputs = merge_inputs(r);
    /* hosts first, so that the list is freed whatever fails after */
    int rc = hb_out_group(out, g);
    if (rc == 0) rc = hb_out_attr_str(out, g, "hosts", hosts ? hosts : "?");
    free(hosts);
    HB_CALL(rc);
    HB_CALL(hb_out_attr_str(out, g, "h5batch_version", HB_VERSION));
    HB_CALL(hb_out_attr_str(out, g, "hdf5_version", ver));
    HB_CALL(hb_out_attr_str(out, g, "mpi_version", mpiver));
    HB_CALL(hb_out_attr_str(out, g, "job", r->job.name));
    HB_CALL(hb_out_attr_str(out, g, "job_file", r->job.path));
    HB_CALL(hb_out_attr_str(out, g, "job_text", r->job.text));
    HB_CALL(hb_out_attr_str(out, g, "step", s->name));
    HB_CALL(hb_out_attr_str(out, g, "kernel", s->kernel->name));
    rc = hb_out_attr_str(out, g, "input", inputs ? inputs : s->input ? s->input : "?");
    free(inputs);
    HB_CALL(rc);
    if (r->partial) HB_CALL(hb_out_attr_str(out, g, "partial", "a partial state (DESIGN.md 7): h5batch merge reads it"));
    HB_CALL(hb_out_attr_u64(out, g, "input_bytes", in_bytes));
    HB_CALL(hb_out_attr_u64(out, g, "input_rows", (uint64_t)ctx->n_rows));
    HB_CALL(hb_out_attr_u64(out, g, "chunk_rows", (uint64_t)ctx->chunk_rows));
    HB_CALL(hb_out_attr_u64(out, g, "chunks", (uint64_t)ctx->n_chunks));
    HB_CALL(hb_out_attr_i64(out, g, "ranks", hb_size));
    HB_CALL(hb_out_attr_i64(out, g, "threads", ctx->threads));
    hb_iso_time(started, iso, sizeof iso);
    HB_CALL(hb_out_attr_str(out, g, "started_at", iso));
    double wall = 0;
    for (int i = 0; i < T_N; i++) wall += tmax[i];
    HB_CALL(hb_out_attr_f64(out, g, "time_setup_s", &tmax[T_SETUP], 1));
    HB_CALL(hb_out_attr_f64(out, g, "time_map_s", &tmax[T_MAP], 1));
    HB_CALL(hb_out_attr_f64(out, g, "time_exchange_s", &tmax[T_EXCHANGE], 1));
    HB_CALL(hb_out_attr_f64(out, g, "time_finalize_s", &tmax[T_FINALIZE], 1));
    HB_CALL(hb_out_attr_str(out, g, "fingerprint", r->fingerprint));
    HB_CALL(hb_out_attr_i64(out, g, "restarts", r->restarts));
    HB_CALL(hb_out_attr_i64(out, g, "checkpoints", r->ckpt_count));
    HB_CALL(hb_out_attr_f64(out, g, "checkpoint_time_s", &r->ckpt_time, 1));
    HB_CALL(hb_out_attr_u64(out, g, "checkpoint_bytes", r->ckpt_bytes));
    return 0;
}

typedef struct loader {
    const hb_kernel *kernel;
    void *state;
} loader;

static int load_part(void *user, const void *blob, size_t len)
{
    loader *l = user;
    return l->kernel->load(l->state, blob, len);
}

/* The part a merge's unit c belongs to. */
static int unit_part(const merge_src *m, int64_t c)
{
    int lo = 0, hi = m->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (m->first[mid] <= c) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Rows in chunk c; for a merge, unit c's share of its part's rows. */
static int64_t chunk_len(const run *r, const hb_step_ctx *ctx, int64_t c)
{
    if (r->merge) {
        const merge_src *m = r->merge;
        int p = unit_part(m, c);
        int64_t b = c - m->first[p], nb = m->first[p + 1] - m->first[p], rows = m->parts[p].rows;
        return rows / nb * (b + 1) + rows % nb * (b + 1) / nb - (rows / nb * b + rows % nb * b / nb);
    }
    int64_t start = c * ctx->chunk_rows;
    return start + ctx->chunk_rows > ctx->n_rows ? ctx->n_rows - start : ctx->chunk_rows;
}

/* Not collective. Maps chunk c; for a merge, loads the saved state unit c names. */
static int map_unit(run *r, const hb_kernel *k, void *state, int64_t c)
{
    if (!r->merge) return k->map(state, c);
    merge_src *m = r->merge;
    int p = unit_part(m, c);
    void *blob = NULL;
    size_t len = 0;
    int rc = hb_partial_blob(&m->info[p], c - m->first[p], &blob, &len);
    if (rc == 0) rc = k->load_part ? k->load_part(state, &m->parts[p], blob, len) : k->load(state, blob, len);
    free(blob);
    return rc;
}

/* Collective. Saves every rank's state with the ledger as checkpoint seq. */
static int checkpoint(run *r, const hb_step *s, const hb_ckpt_id *id, void *state, const uint8_t *ledger,
                      int64_t nc, int64_t seq)
{
    double t0 = hb_now();
    void *blob = NULL;
    size_t len = 0;
    int rc = hb_agree(s->kernel->save(state, &blob, &len));
    uint64_t bytes = 0;
    char name[256] = "";
    if (rc == 0) rc = hb_ckpt_write(id, seq, r->restarts, ledger, nc, blob, len, &bytes, name, sizeof name);
    free(blob);
    if (rc != 0) return rc;
    double dt = hb_now() - t0;
    r->ckpt_count++;
    r->ckpt_time += dt;
    r->ckpt_bytes += bytes;
    char when[32];
    hb_iso_time(unix_now(), when, sizeof when);
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s/%s at %s", r->job.run_dir, name, when);
    r->st.last_checkpoint = r->last_ckpt;
    HB_INFO("step %s: checkpoint %s: %.1f MB in %.2fs", s->name, name, (double)bytes / 1e6, dt);
    update_status(r, "running", 1);
    return 0;
}

/* Collective. Maps every chunk the newest checkpoint has not finished, in rounds of one
 * chunk per rank; checkpoints at the job's interval and when a signal arrives. */
static int process_chunks(run *r, const hb_step *s, hb_step_ctx *ctx, void *state, double *t_map, double *t_exch)
{
    const hb_kernel *k = s->kernel;
    const int64_t nc = ctx->n_chunks;
    char fp[96];
    /* chunk boundaries belong to a checkpoint's identity: the ledger counts chunks */
    snprintf(fp, sizeof fp, "%s-%lld", r->fingerprint, (long long)ctx->chunk_rows);
    const hb_ckpt_id id = {r->job.run_dir, s->name, fp};
    const int can_save = k->save && k->load;
    uint8_t *ledger = hb_calloc((size_t)(nc ? nc : 1), 1);
    int64_t *todo = hb_malloc((size_t)(nc ? nc : 1) * sizeof *todo);
    int rc = hb_agree(ledger && todo ? 0 : HB_EINTERNAL);
    int64_t seq = 0;
    double t_restore = hb_now();
    if (rc == 0 && can_save) {
        int found = 0;
        char name[256];
        loader l = {k, state};
        rc = hb_ckpt_restore(&id, ledger, nc, &seq, &r->restarts, load_part, &l, &found, name, sizeof name);
        if (rc == 0 && found) {
            r->restarts++;
            snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s/%s (restored)", r->job.run_dir, name);
            r->st.last_checkpoint = r->last_ckpt;
            if (k->exchange) rc = k->exchange(state); /* loaded records go to their owners */
        }
    }
    int64_t ntodo = 0;
    for (int64_t c = 0; rc == 0 && c < nc; c++) {
        if (!ledger[c]) todo[ntodo++] = c;
        else r->st.chunks_done++, r->st.rows_done += chunk_len(r, ctx, c);
    }
    if (rc == 0 && ntodo < nc)
        HB_INFO("step %s: resuming from checkpoint %lld: %lld of %lld chunks done, restart %d, restored in %.2fs",
                s->name, (long long)seq, (long long)(nc - ntodo), (long long)nc, r->restarts, hb_now() - t_restore);
    r->st.restarts = r->restarts;
    update_status(r, "running", 1);
    /* contiguous blocks of the remaining chunks per rank */
    const int64_t first = ntodo * hb_rank / hb_size, last = ntodo * (hb_rank + 1) / hb_size;
    const int64_t rounds = (ntodo + hb_size - 1) / hb_size;
    double tm = hb_now(), last_ckpt = hb_now();
    const int64_t rows0 = r->st.rows_done;
    long mapped = 0;
    for (int64_t i = 0; i < rounds && rc == 0; i++) {
        double a = hb_now();
        int lrc = 0;
        hb_stall_where("step %s, round %lld of %lld", s->name, (long long)i + 1, (long long)rounds);
        if (first + i < last) {
            lrc = map_unit(r, k, state, todo[first + i]);
            hb_fault_delay();
            hb_fault_point("H5BATCH_FAULT_KILL_AFTER_CHUNKS", ++mapped);
        }
        double b = hb_now();
        *t_map += b - a;
        rc = hb_agree(lrc);
        if (rc == 0 && k->exchange) rc = k->exchange(state);
        *t_exch += hb_now() - b;
        if (rc != 0) break;
        /* every rank knows which chunks this round finished */
        for (int p = 0; p < hb_size; p++) {
            int64_t f = ntodo * p / hb_size, l = ntodo * (p + 1) / hb_size;
            if (f + i < l) {
                ledger[todo[f + i]] = 1;
                r->st.chunks_done++;
                r->st.rows_done += chunk_len(r, ctx, todo[f + i]);
            }
        }
        progress(r, tm, rows0, 0);
        update_status(r, "running", 0);
        int flags[2] = {got_signal,
                        hb_rank == 0 && r->job.checkpoint_interval > 0 &&
                            hb_now() - last_ckpt >= r->job.checkpoint_interval};
        hb_stall_allreduce(MPI_IN_PLACE, flags, 2, MPI_INT, MPI_MAX);
        /* no periodic checkpoint after the last round: the output is about to exist */
        if (can_save && (flags[0] || (flags[1] && i + 1 < rounds))) {
            rc = checkpoint(r, s, &id, state, ledger, nc, ++seq);
            last_ckpt = hb_now();
        }
        if (rc == 0 && flags[0]) {
            rc = can_save ? hb_err_set(HB_ETEMPFAIL, "interrupted",
                                       "by %s: checkpoint %lld of step '%s' saved in %s; run the same command "
                                       "again to resume",
                                       strsignal(flags[0]), (long long)seq, s->name, r->job.run_dir)
                          : hb_err_set(HB_ETEMPFAIL, "interrupted",
                                       "by %s: kernel %s keeps no checkpoints, so a rerun starts step '%s' over",
                                       strsignal(flags[0]), k->name, s->name);
        }
    }
    hb_stall_where("step %s", s->name);
    if (rc == 0) progress(r, tm, rows0, 1);
    free(ledger);
    free(todo);
    return rc;
}

/* Collective. Writes the step's state as a partial (partial.h) into out: rank 0's
 * describe, every rank's save; the leaves are the input's content digest, or a merge's
 * parts' leaves. */
static int write_partial(run *r, const hb_step *s, hb_step_ctx *ctx, void *state, hb_out *out)
{
    const hb_kernel *k = s->kernel;
    void *desc = NULL, *blob = NULL;
    size_t dlen = 0, len = 0;
    uint64_t leaf = 0;
    char *options = NULL, digest[32] = "";
    int rc = 0;
    if (hb_rank == 0) {
        rc = k->describe(state, &desc, &dlen);
        if (rc == 0 && !r->merge) rc = hb_file_digest(s->input, &leaf);
        /* a merge keeps its parts' options as they were written: the files they name
         * were read at the sites */
        options = r->merge ? hb_strdup(r->merge->info[0].options) : hb_partial_options(k->options, &s->opts);
        if (rc == 0 && !options) rc = HB_EINTERNAL;
    }
    ctx->saving_partial = 1;
    if (rc == 0) rc = k->save(state, &blob, &len);
    ctx->saving_partial = 0;
    rc = hb_agree(rc);
    const uint64_t *leaves = r->merge ? r->merge->leaves : &leaf;
    const int64_t nleaves = r->merge ? r->merge->nleaves : 1;
    if (rc == 0 && hb_rank == 0) {
        /* its identity: the kernel, the options and the inputs it holds, in order */
        XXH3_state_t *h = XXH3_createState();
        XXH3_64bits_reset(h);
        XXH3_64bits_update(h, k->name, strlen(k->name) + 1);
        XXH3_64bits_update(h, options, strlen(options) + 1);
        XXH3_64bits_update(h, leaves, (size_t)nleaves * sizeof *leaves);
        snprintf(digest, sizeof digest, "%016llx", (unsigned long long)XXH3_64bits_digest(h));
        XXH3_freeState(h);
    }
    const hb_partial_meta m = {k->name, options ? options : "", ctx->n_rows, leaves, nleaves, digest};
    if (rc == 0) rc = hb_partial_write(out, &m, blob, len, desc, dlen);
    free(desc), free(blob), free(options);
    return rc;
}

/* Collective. Runs one step to a committed output. */
static int run_step(run *r, int index)
{
    hb_step *s = &r->job.steps[index];
    double started = unix_now(), t[T_N] = {0}, t0 = hb_now();
    step_fingerprint(r, s, r->fingerprint, sizeof r->fingerprint);
    hb_stall_where("step %s", s->name);
    r->st.step = s->name;
    r->st.unit = hb_kernel_unit(s->kernel);
    r->st.step_index = index;
    r->st.chunks_done = r->st.chunks_total = r->st.rows_done = r->st.rows_total = 0;
    r->restarts = r->ckpt_count = 0;
    r->ckpt_time = 0;
    r->ckpt_bytes = 0;
    int skip = 0, prc = claim_output(r, s);
    if (prc == 0) prc = check_output(r, s, &skip);
    if (prc != 0 || skip) {
        release_output(r);
        if (prc == 0) HB_INFO("step %s: %s is already complete for this job; skipped", s->name, s->output);
        return prc;
    }
    char from[64];
    if (r->merge) snprintf(from, sizeof from, "%d part%s", r->merge->n, r->merge->n > 1 ? "s" : "");
    HB_INFO("step %s: kernel %s, %s -> %s%s, %d rank%s x %d thread%s", s->name, s->kernel->name,
            r->merge ? from : s->input, s->output, r->partial ? " (partial state)" : "", hb_size,
            hb_size > 1 ? "s" : "", r->job.threads, r->job.threads > 1 ? "s" : "");

    hb_step_ctx ctx = {.job_name = r->job.name,
                       .step_name = s->name,
                       .input = s->input,
                       .output = s->output,
                       .opts = &s->opts,
                       .threads = r->job.threads,
                       .chunk_rows = r->job.chunk_rows ? r->job.chunk_rows : s->kernel->default_chunk_rows};
    void *state = NULL;
    hb_out *out = NULL;
    char tmp[4300] = "";
    hb_mem_set_limit(r->job.max_memory); /* collective when defaulted */
    scratch_step(r, s);
    hb_invalid_set_limit(r->job.max_invalid_fraction);
    int rc = 0;
    if (r->merge) {
        ctx.input = NULL;
        ctx.n_rows = r->merge->rows; /* the parts' rows: the kernel's estimates may use it */
        rc = s->kernel->setup_parts(&ctx, r->merge->parts, r->merge->n, &state); /* collective: agrees itself */
        ctx.n_chunks = r->merge->first[r->merge->n];
    } else {
        rc = hb_agree(hb_in_open(s->input, &ctx.in));
        if (rc == 0 && hb_in_exists(ctx.in, "/partial") && hb_partial_is(s->input))
            rc = hb_err_set(HB_EDATA, s->input,
                            "is a partial state (h5batch run --partial); merge it first: h5batch merge PART.h5... -o "
                            "OUT.h5");
        rc = hb_agree(rc);
        if (rc == 0) rc = s->kernel->setup(&ctx, &state); /* collective: agrees itself */
    }
    t[T_SETUP] = hb_now() - t0;
    if (rc == 0) {
        r->st.chunks_total = ctx.n_chunks;
        r->st.rows_total = ctx.n_rows;
        rc = process_chunks(r, s, &ctx, state, &t[T_MAP], &t[T_EXCHANGE]);
    }
    double tf = hb_now();
    /* a unique temporary, created exclusively by rank 0 and named to all */
    if (rc == 0) rc = hb_tmp_create(s->output, tmp, sizeof tmp);
    if (rc == 0) rc = hb_agree(hb_out_create_for(tmp, r->partial ? "partial state" : "output", &out));
    if (rc == 0) rc = r->partial ? write_partial(r, s, &ctx, state, out) : s->kernel->finalize(state, out);
    t[T_FINALIZE] = hb_now() - tf;
    if (rc == 0) rc = write_provenance(r, s, &ctx, out, t, started);
    if (out) {
        int crc = hb_out_close(out);
        if (rc == 0) rc = crc;
    }
    if (out || rc == 0) rc = hb_commit(tmp, s->output, rc);
    if (rc == 0) scratch_remove(r, s); /* the output supersedes the runs its checkpoints refer to */
    /* the output supersedes them; one left behind is not the job's failure */
    if (rc == 0 && hb_rank == 0 && hb_ckpt_remove(r->job.run_dir, s->name) != 0) {
        hb_warn("%s", hb_err_msg());
        hb_err_clear();
    }
    release_output(r);
    if (s->kernel->destroy) s->kernel->destroy(state);
    if (ctx.in) hb_in_close(ctx.in);
    if (rc == 0)
        HB_INFO("step %s: wrote %s in %.2fs (setup %.2f, map %.2f, exchange %.2f, finalize %.2f; %d checkpoint%s, "
                "%.2fs)",
                s->name, s->output, hb_now() - t0, t[T_SETUP], t[T_MAP], t[T_EXCHANGE], t[T_FINALIZE], r->ckpt_count,
                r->ckpt_count == 1 ? "" : "s", r->ckpt_time);
    return rc;
}

/* Collective. Runs the steps of r->job (loaded): the run directory's lock, --fresh,
 * signals, each step in order, the final status. */
static int run_job(run *r)
{
    hb_stall_set_timeout(r->job.stall_timeout);
    hb_stall_on_expiry(stall_status, r);
    omp_set_num_threads(r->job.threads);
    r->tty = isatty(2);
    r->st.job = r->job.name;
    r->st.steps_total = r->job.nsteps;
    r->st.ranks = hb_size;
    r->st.started_at = unix_now();
    int rc = hb_agree(hb_rank == 0 ? take_lock(r) : 0);
    if (rc == 0 && r->fresh && hb_rank == 0) rc = hb_ckpt_remove(r->job.run_dir, NULL);
    rc = hb_agree(rc);
    if (rc == 0) rc = scratch_setup(r);
    for (int i = 0; rc == 0 && r->fresh && i < r->job.nsteps; i++) scratch_remove(r, &r->job.steps[i]);
    if (rc == 0) {
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGUSR1, on_signal);
    }
    for (int i = 0; rc == 0 && i < r->job.nsteps; i++) {
        int sig = agreed_signal();
        if (sig)
            rc = hb_err_set(HB_ETEMPFAIL, "interrupted",
                            "by %s before step '%s'; the finished steps are kept: run the same command again to go on",
                            strsignal(sig), r->job.steps[i].name);
        else
            rc = run_step(r, i);
    }
    if (r->lock_fd >= 0) {
        update_status(r, rc == 0 ? "complete" : rc == HB_ETEMPFAIL ? "checkpointed" : "failed", 1);
        hb_claim_release(r->lock_path, r->lock_fd, 0);
    }
    hb_stall_on_expiry(NULL, NULL);
    hb_stall_where("agreement");
    return rc;
}

/* 0 when kernel k can write and merge partial states, else 78 naming it. */
static int partial_capable(const hb_kernel *k, const char *where)
{
    if (k->describe && k->setup_parts && k->save && (k->load || k->load_part)) return 0;
    return hb_err_set(HB_ECONFIG, where, "kernel %s keeps no partial states (DESIGN.md 7): --partial and merge need one",
                      k->name);
}

#define RUN_USAGE "usage: h5batch run JOB.ini [--set STEP.KEY=VALUE]... [--fresh] [--force] [--partial] [-v|-q]\n"

static void usage_run(void) { fputs(RUN_USAGE, stderr); }

/* run --help: the usage and what each option does, on stdout (rank 0). */
static void help_run(void)
{
    if (hb_rank != 0) return;
    fputs(RUN_USAGE "\n"
          "Runs the steps of a job file in order (README, Job files), as a plain process or under\n"
          "mpirun/srun; a step killed or interrupted resumes from its last checkpoint in the run\n"
          "directory when run again, on any number of ranks.\n\n"
          "options:\n"
          "  --set STEP.KEY=VALUE  set a key of a step (job.KEY for [job]), over the job file; ${NAME}\n"
          "                        is an environment variable; may be given several times\n"
          "  --fresh               discard the run directory's checkpoints and start every step again\n"
          "  --force               replace outputs that exist (never a link, a directory or an input)\n"
          "  --partial             write each step's partial state, to merge with others (h5batch merge)\n"
          "  -v, --verbose         more messages (phases, memory)\n"
          "  -q, --quiet           no progress messages\n"
          "  -h, --help            this help\n",
          stdout);
}

int hb_run_main(int argc, char **argv)
{
    run r = {.lock_fd = -1, .out_lock_fd = -1};
    const char *path = NULL;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0, rc = 0;
    if (!sets) return HB_EINTERNAL;
    for (int i = 0; i < argc && rc == 0; i++) {
        if (strcmp(argv[i], "--set") == 0) {
            if (i + 1 >= argc) rc = hb_err_set(HB_EUSAGE, "run", "--set needs STEP.KEY=VALUE");
            else sets[nsets++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            sets[nsets++] = argv[i] + 6;
        } else if (strcmp(argv[i], "--force") == 0) {
            r.force = 1;
        } else if (strcmp(argv[i], "--fresh") == 0) {
            r.fresh = 1;
        } else if (strcmp(argv[i], "--partial") == 0) {
            r.partial = 1;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            hb_log_level = 2;
        } else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
            hb_log_level = 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            help_run();
            free(sets);
            return 0;
        } else if (argv[i][0] == '-') {
            rc = hb_err_set(HB_EUSAGE, "run", "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            rc = hb_err_set(HB_EUSAGE, "run", "one job file expected, got '%s' too", argv[i]);
        }
    }
    if (rc == 0 && !path) rc = hb_err_set(HB_EUSAGE, "run", "no job file given");
    if (rc == HB_EUSAGE && hb_rank == 0) usage_run();
    if (rc == 0) rc = hb_job_load(path, sets, nsets, &r.job);
    free(sets);
    for (int i = 0; rc == 0 && r.partial && i < r.job.nsteps; i++)
        rc = partial_capable(r.job.steps[i].kernel, r.job.path);
    rc = hb_agree(rc);
    if (rc == 0) rc = run_job(&r);
    hb_job_free(&r.job);
    return rc;
}

/* ---- h5batch merge PART.h5... -o OUT.h5 [--partial] (DESIGN.md 7) ---- */

static void usage_merge(void)
{
    fputs("usage: h5batch merge PART.h5... -o OUT.h5 [--partial] [--run-dir DIR] [--fresh] [--force]\n"
          "                     [--threads N] [--checkpoint-interval D] [--stall-timeout D] [-v|-q]\n",
          stderr);
}

static void merge_free(merge_src *m)
{
    for (int p = 0; m->info && p < m->n; p++) hb_partial_close(&m->info[p]);
    free(m->info), free(m->parts), free(m->first), free(m->leaves);
    memset(m, 0, sizeof *m);
}

/* Not collective (every rank reads the same parts the same way). Opens the parts and
 * checks that they can be merged: one kernel that keeps partial states, the same
 * options (78 naming the first part that differs), no input held twice (78). */
static int merge_open(merge_src *m, char *const *paths, int n, const hb_kernel **kp)
{
    m->n = n;
    m->info = hb_calloc((size_t)n, sizeof *m->info);
    m->parts = hb_calloc((size_t)n, sizeof *m->parts);
    m->first = hb_calloc((size_t)n + 1, sizeof *m->first);
    if (!m->info || !m->parts || !m->first) return HB_EINTERNAL;
    for (int p = 0; p < n; p++) HB_CALL(hb_partial_open(paths[p], &m->info[p]));
    const hb_partinfo *a = &m->info[0];
    const hb_kernel *k = hb_kernel_find(a->kernel);
    if (!k) {
        char what[600];
        snprintf(what, sizeof what,
                 "a partial state of kernel '%.256s', which this h5batch does not have (h5batch kernels lists them; "
                 "plugins come from H5BATCH_PLUGIN_PATH)",
                 a->kernel);
        return hb_plugins_missing(HB_ECONFIG, a->path, what);
    }
    HB_CALL(partial_capable(k, a->path));
    int64_t nl = 0;
    for (int p = 0; p < n; p++) {
        const hb_partinfo *b = &m->info[p];
        char key[256], va[200], vb[200];
        if (strcmp(b->kernel, a->kernel) != 0)
            return hb_err_set(HB_ECONFIG, b->path, "a partial state of kernel %s, where %s is one of kernel %s",
                              b->kernel, a->path, a->kernel);
        if (hb_partial_options_differ(a->options, b->options, key, sizeof key, va, vb, sizeof va))
            return hb_err_set(HB_ECONFIG, b->path,
                              "option %s is '%s' where %s has '%s'; parts merge only when made with the same options",
                              key, vb, a->path, va);
        if (b->rows > INT64_MAX - m->rows) return hb_err_set(HB_EDATA, b->path, "too many rows in all");
        m->parts[p] = (hb_part){b->path, b->desc, b->desc_len, b->rows, m->rows};
        m->rows += b->rows;
        m->first[p + 1] = m->first[p] + b->nblobs;
        nl += b->nleaves;
    }
    m->leaves = hb_malloc_array((size_t)nl, 1, sizeof *m->leaves);
    if (!m->leaves) return HB_EINTERNAL;
    /* an input held by two parts would be counted twice: a part given twice, or a
     * region's merge given beside one of its sites */
    for (int p = 0; p < n; p++) {
        const hb_partinfo *b = &m->info[p];
        for (int64_t l = 0; l < b->nleaves; l++) {
            for (int q = 0; q <= p; q++) {
                const hb_partinfo *c = &m->info[q];
                for (int64_t j = 0; j < (q == p ? l : c->nleaves); j++)
                    if (c->leaves[j] == b->leaves[l]) {
                        if (q == p)
                            return hb_err_set(HB_EDATA, b->path, "holds the same input twice (digest %016llx)",
                                              (unsigned long long)b->leaves[l]);
                        if (strcmp(c->path, b->path) == 0)
                            return hb_err_set(HB_ECONFIG, b->path, "given twice");
                        return hb_err_set(HB_ECONFIG, b->path,
                                          "holds an input that %s holds too (digest %016llx): a part given twice, or "
                                          "a merge given beside one of its parts",
                                          c->path, (unsigned long long)b->leaves[l]);
                    }
            }
            m->leaves[m->nleaves++] = b->leaves[l];
        }
    }
    *kp = k;
    return 0;
}

/* The default run directory of a merge: OUT without its extension, plus ".run". */
static char *merge_run_dir(const char *out)
{
    size_t n = strlen(out);
    const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    if (dot && (!slash || dot > slash + 1)) n = (size_t)(dot - out);
    char *d = malloc(n + 5);
    if (d) snprintf(d, n + 5, "%.*s.run", (int)n, out);
    return d;
}

/* Not collective. The merge as a job of one step: kernel and options from the parts,
 * the parts instead of an input. */
static int merge_job(hb_job *job, const hb_kernel *k, const merge_src *m, const char *out, const char *run_dir,
                     int argc, char **argv)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return HB_EINTERNAL;
    fputs("h5batch merge", f);
    for (int i = 0; i < argc; i++) fprintf(f, " %s", argv[i]);
    if (fclose(f) != 0) return free(text), HB_EINTERNAL;
    job->text = text;
    job->path = hb_strdup("(h5batch merge)");
    job->name = hb_strdup("merge");
    job->run_dir = run_dir ? hb_strdup(run_dir) : merge_run_dir(out);
    job->steps = hb_calloc(1, sizeof *job->steps);
    if (!job->path || !job->name || !job->run_dir || !job->steps) return HB_EINTERNAL;
    job->nsteps = 1;
    hb_step *s = &job->steps[0];
    s->name = hb_strdup("merge");
    s->kernel = k;
    /* the options as the first part wrote them: key=value lines, file digests aside; an
     * empty value is an option that was not set (a job file cannot set one empty) */
    int lines = 2;
    for (const char *p = m->info[0].options; *p; p++) lines += *p == '\n';
    s->kv = hb_calloc((size_t)lines, sizeof *s->kv);
    s->okv = hb_calloc((size_t)lines, sizeof *s->okv);
    if (!s->name || !s->kv || !s->okv) return HB_EINTERNAL;
    s->kv[s->nkv++] = (hb_kv){hb_strdup("output"), hb_strdup(out), 0};
    for (const char *p = m->info[0].options; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p), kn = strcspn(p, "=\n");
        if (kn + 1 < l && !memchr(p, '#', kn)) {
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kn, p);
            if (hb_opt_find(k->options, key)) {
                char *v = malloc(l - kn);
                if (v) snprintf(v, l - kn, "%.*s", (int)(l - kn - 1), p + kn + 1);
                hb_kv kv = {hb_strdup(key), v, 0};
                if (!kv.key || !kv.value) return free(kv.key), free(kv.value), HB_EINTERNAL;
                s->kv[s->nkv++] = kv;
                s->okv[s->nokv++] = kv;
            }
        }
        p = e ? e + 1 : NULL;
    }
    s->output = s->kv[0].value;
    s->opts = (hb_optset){k->options, s->okv, s->nokv};
    const char *env = getenv("OMP_NUM_THREADS");
    job->threads = job->threads ? job->threads : env && atoi(env) > 0 ? atoi(env) : 1;
    return 0;
}

int hb_merge_main(int argc, char **argv)
{
    run r = {.lock_fd = -1, .out_lock_fd = -1};
    merge_src m = {0};
    const char *out = NULL, *run_dir = NULL;
    char **paths = calloc((size_t)argc + 1, sizeof *paths);
    int np = 0, rc = paths ? 0 : HB_EINTERNAL, threads = 0;
    double interval = 60, stall = 60; /* the [job] defaults of checkpoint_interval and stall_timeout */
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0 || strcmp(a, "--run-dir") == 0 ||
                    strcmp(a, "--threads") == 0 || strcmp(a, "--checkpoint-interval") == 0 ||
                    strcmp(a, "--stall-timeout") == 0;
        if (takes && !val) {
            rc = hb_err_set(HB_EUSAGE, "merge", "%s needs a value", a);
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            out = argv[++i];
        } else if (strcmp(a, "--run-dir") == 0) {
            run_dir = argv[++i];
        } else if (strcmp(a, "--threads") == 0) {
            double t;
            if (hb_parse_number(argv[++i], &t) != 0 || t < 1 || t > 1024 || t != (int)t)
                rc = hb_err_set(HB_EUSAGE, "merge", "--threads: '%s' is not a whole number from 1 to 1024", argv[i]);
            threads = (int)t;
        } else if (strcmp(a, "--checkpoint-interval") == 0) {
            if (hb_parse_duration(argv[++i], &interval) != 0 || interval < 0)
                rc = hb_err_set(HB_EUSAGE, "merge", "--checkpoint-interval: '%s' is not a duration (60s, 5m)", argv[i]);
        } else if (strcmp(a, "--stall-timeout") == 0) {
            if (hb_parse_duration(argv[++i], &stall) != 0 || stall < 0)
                rc = hb_err_set(HB_EUSAGE, "merge", "--stall-timeout: '%s' is not a duration (60s, 5m; 0 waits forever)",
                                argv[i]);
        } else if (strcmp(a, "--partial") == 0) {
            r.partial = 1;
        } else if (strcmp(a, "--force") == 0) {
            r.force = 1;
        } else if (strcmp(a, "--fresh") == 0) {
            r.fresh = 1;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            hb_log_level = 2;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            hb_log_level = 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            if (hb_rank == 0) usage_merge();
            free(paths);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            rc = hb_err_set(HB_EUSAGE, "merge", "unknown option '%s'", a);
        } else {
            paths[np++] = argv[i];
        }
    }
    if (rc == 0 && np == 0) rc = hb_err_set(HB_EUSAGE, "merge", "no parts given");
    if (rc == 0 && !out) rc = hb_err_set(HB_EUSAGE, "merge", "no output given (-o OUT.h5)");
    if (rc == HB_EUSAGE && hb_rank == 0) usage_merge();
    rc = hb_agree(rc);
    const hb_kernel *k = NULL;
    if (rc == 0) rc = hb_agree(merge_open(&m, paths, np, &k));
    r.job.threads = threads;
    if (rc == 0) rc = hb_agree(merge_job(&r.job, k, &m, out, run_dir, argc, argv));
    free(paths);
    if (rc == 0) {
        r.job.checkpoint_interval = interval;
        r.job.stall_timeout = stall;
        r.job.max_invalid_fraction = 0.5; /* the [job] default: a merge has no job file */
        r.merge = &m;
        rc = run_job(&r);
    }
    hb_job_free(&r.job);
    merge_free(&m);
    return rc;
}
