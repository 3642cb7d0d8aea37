/* Overall Equipment Effectiveness per production batch of a bottling plant: a plugin
 * kernel for h5batch, built against the installed plugin API (README.md).
 *
 * The input is a table of per-interval records of the filling lines: the batch being
 * filled, the interval's time, its planned production time and the time the line
 * stood still, the bottles filled and those that passed inspection, and the ideal
 * cycle time of the product. Per batch:
 *   availability = run time / planned time, run time = planned time - stop time
 *   performance  = ideal cycle time x total count / run time
 *   quality      = good count / total count
 *   OEE          = availability x performance x quality
 * The state is integer sums per batch (milliseconds, microseconds, bottles), so that
 * adding records in any order, on any number of ranks, gives the same sums, and the
 * output the same bits. Records are moved to the rank that owns their batch after every
 * round (a keyed reduction with MPI_Alltoallv); finalize gathers the owners' sums. */
#define _POSIX_C_SOURCE 200809L /* strtok_r */

#include <h5batch/kernel.h>

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_BATCH, C_TIME, C_PLANNED, C_STOP, C_TOTAL, C_GOOD, C_CYCLE, NCOL };
static const char *const column_names[NCOL] = {"batch", "time", "planned_s", "stop_s", "total", "good",
                                               "ideal_cycle_s"};

/* Why a record is left out: the first failing test, in this order. */
enum { BAD_BATCH, BAD_TIME, BAD_COUNT, BAD_CYCLE, NBAD };
static const char *const bad_names[NBAD] = {"rows_invalid_batch", "rows_invalid_time", "rows_invalid_count",
                                            "rows_invalid_cycle"};

#define MAX_PLANNED_S 1e9 /* one record's planned time: its milliseconds stay far from 2^63 */
#define MAX_COUNT 1e15
#define MAX_CYCLE_S 3600.0

static const hb_option oee_options[] = {
    {"table", HB_OPT_STRING, "/intervals", 1, 0, NULL, "input table: a group of equal-length columns"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL,
     "the table's names of the kernel's columns, e.g. 'batch:lot, total:filled' (batch, time, planned_s, stop_s, "
     "total, good, ideal_cycle_s)"},
    {"time_unit", HB_OPT_CHOICE, "s", 1, 0, "s|ms|us|ns",
     "unit of the time column since 1970-01-01 UTC (pandas datetime64 is ns); sub-second parts are floored"},
    {"oee_target", HB_OPT_FLOAT, "0.85", 0, 1, NULL, "meets_target is 1 where a batch's OEE reaches this"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* One batch's sums: what the state holds, saves and sends. */
typedef struct acc {
    int64_t batch;
    int64_t intervals;
    int64_t planned_ms, stop_ms;
    int64_t total, good;
    int64_t ideal_us;          /* sum of ideal cycle time (us) x total count */
    int64_t t_first, t_last;   /* times of the first and last record */
} acc;
#define ACC_WORDS ((int)(sizeof(acc) / sizeof(int64_t)))

typedef struct oee {
    hb_step_ctx *ctx;
    hb_table *tab;
    int64_t per_s; /* ticks per second of the time column (time_unit) */
    double target;
    acc *rec; /* this rank's batches (after an exchange: only those it owns) */
    size_t n, cap;
    uint32_t *slot; /* open addressing over rec: index + 1, 0 empty */
    size_t hcap;
    int64_t rows_total, rows_valid, bad[NBAD];
    /* one chunk's columns and what map makes of them */
    int64_t *batch, *time, *total, *good, *planned_ms, *stop_ms, *ideal_us;
    double *planned, *stop, *cycle;
    int8_t *why; /* -1 valid, else a BAD_ reason */
    MPI_Datatype type;
} oee;

/* The header of a saved state. */
typedef struct saved {
    char magic[8];
    int64_t rows_total, rows_valid, bad[NBAD];
    uint64_t n;
} saved;

static uint64_t hash64(uint64_t z)
{
    z ^= z >> 33;
    z *= 0xff51afd7ed558ccdu;
    z ^= z >> 33;
    z *= 0xc4ceb9fe1a85ec53u;
    return z ^ (z >> 33);
}

static int owner_of(int64_t batch) { return (int)(hash64((uint64_t)batch) % (uint64_t)hb_size); }

/* Splits "kernel:table, ..." into the table's names of the kernel's columns. */
static int map_columns(const char *spec, const char **names, char *buf, size_t len, char *msg, size_t mlen)
{
    for (int c = 0; c < NCOL; c++) names[c] = column_names[c];
    if (!spec) return 0;
    snprintf(buf, len, "%s", spec);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t') t++;
        char *colon = strchr(t, ':'), *end = t + strlen(t);
        while (end > t && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
        if (!colon) return snprintf(msg, mlen, "columns: '%s' is not kernel_name:table_name", t), -1;
        *colon = '\0';
        char *theirs = colon + 1, *k = colon;
        while (*theirs == ' ') theirs++;
        while (k > t && k[-1] == ' ') *--k = '\0';
        int c = 0;
        while (c < NCOL && strcmp(column_names[c], t) != 0) c++;
        if (c == NCOL)
            return snprintf(msg, mlen,
                            "columns: '%s' is not a column of kernel oee (batch, time, planned_s, stop_s, total, "
                            "good, ideal_cycle_s)",
                            t),
                   -1;
        if (!*theirs) return snprintf(msg, mlen, "columns: no table column given for '%s'", t), -1;
        if (names[c] != column_names[c]) return snprintf(msg, mlen, "columns: '%s' is mapped twice", t), -1;
        names[c] = theirs;
    }
    return 0;
}

/* Not collective. What the option table cannot check: the column mapping. */
static int oee_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    const char *names[NCOL];
    char buf[1024];
    if (map_columns(hb_opt_str(o, "columns"), names, buf, sizeof buf, msg, len) != 0) {
        *key = "columns";
        return HB_ECONFIG;
    }
    return 0;
}

/* The record of batch b in the state, added (zero) when it is new; NULL when out of memory. */
static acc *find_or_add(oee *x, int64_t b)
{
    if (2 * (x->n + 1) > x->hcap) {
        size_t hcap = x->hcap ? 2 * x->hcap : 1024;
        uint32_t *slot = hb_calloc(hcap, sizeof *slot);
        if (!slot) return NULL;
        for (size_t i = 0; i < x->n; i++) {
            size_t h = hash64((uint64_t)x->rec[i].batch) & (hcap - 1);
            while (slot[h]) h = (h + 1) & (hcap - 1);
            slot[h] = (uint32_t)(i + 1);
        }
        free(x->slot);
        x->slot = slot, x->hcap = hcap;
    }
    size_t h = hash64((uint64_t)b) & (x->hcap - 1);
    for (; x->slot[h]; h = (h + 1) & (x->hcap - 1))
        if (x->rec[x->slot[h] - 1].batch == b) return &x->rec[x->slot[h] - 1];
    if (x->n >= UINT32_MAX - 1 || hb_grow((void **)&x->rec, &x->cap, x->n + 1, sizeof *x->rec) != 0) {
        hb_err_set(HB_EINTERNAL, "oee", "out of memory for %zu batches", x->n + 1);
        return NULL;
    }
    x->slot[h] = (uint32_t)(x->n + 1);
    acc *a = &x->rec[x->n++];
    *a = (acc){.batch = b, .t_first = INT64_MAX, .t_last = INT64_MIN};
    return a;
}

/* Adds the sums of r into the state's record of the same batch: 65 when a sum leaves 64 bits. */
static int merge(oee *x, const acc *r)
{
    acc *a = find_or_add(x, r->batch);
    if (!a) return HB_EINTERNAL;
    int over = __builtin_add_overflow(a->intervals, r->intervals, &a->intervals);
    over |= __builtin_add_overflow(a->planned_ms, r->planned_ms, &a->planned_ms);
    over |= __builtin_add_overflow(a->stop_ms, r->stop_ms, &a->stop_ms);
    over |= __builtin_add_overflow(a->total, r->total, &a->total);
    over |= __builtin_add_overflow(a->good, r->good, &a->good);
    over |= __builtin_add_overflow(a->ideal_us, r->ideal_us, &a->ideal_us);
    if (r->t_first < a->t_first) a->t_first = r->t_first;
    if (r->t_last > a->t_last) a->t_last = r->t_last;
    if (over)
        return hb_err_set(HB_EDATA, "oee", "batch %lld: its sums exceed 64 bits (split the batch)",
                          (long long)r->batch);
    return 0;
}

/* Where errors about the data point: the input, or in a merge (no input) the output. */
static const char *where(const oee *x)
{
    return x->ctx->input ? x->ctx->input : x->ctx->output ? x->ctx->output : "oee";
}

/* Collective. The state's part that does not depend on an input: options and the MPI
 * type of a batch record. */
static int new_state(hb_step_ctx *ctx, oee **out)
{
    oee *x = hb_calloc(1, sizeof *x);
    *out = x;
    if (!x) return hb_agree(HB_EINTERNAL);
    x->ctx = ctx;
    x->type = MPI_DATATYPE_NULL;
    x->target = hb_opt_num(ctx->opts, "oee_target");
    x->per_s = hb_time_unit_per_s(hb_opt_str(ctx->opts, "time_unit"));
    int rc = 0;
    if (MPI_Type_contiguous(ACC_WORDS, MPI_INT64_T, &x->type) != MPI_SUCCESS || MPI_Type_commit(&x->type) != MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "oee", "cannot make the MPI type of a batch record");
    return hb_agree(rc);
}

static int oee_setup(hb_step_ctx *ctx, void **state)
{
    oee *x;
    int rc = new_state(ctx, &x);
    *state = x;
    HB_CALL(rc);
    const char *names[NCOL];
    char buf[1024], msg[256];
    rc = map_columns(hb_opt_str(ctx->opts, "columns"), names, buf, sizeof buf, msg, sizeof msg) == 0
             ? 0
             : hb_err_set(HB_ECONFIG, "oee", "%s", msg);
    if (rc == 0) rc = hb_table_open(ctx->in, hb_opt_str(ctx->opts, "table"), names, NCOL, &x->tab);
    HB_CALL(hb_agree(rc));
    ctx->n_rows = hb_table_rows(x->tab);
    ctx->n_chunks = (ctx->n_rows + ctx->chunk_rows - 1) / ctx->chunk_rows;
    size_t cr = (size_t)ctx->chunk_rows;
    HB_CALL(hb_agree(hb_mem_reserve((double)cr * (10 * 8 + 1), ctx->input, "the chunk buffers", NULL, "lower chunk_rows")));
    int64_t **ints[] = {&x->batch, &x->time, &x->total, &x->good, &x->planned_ms, &x->stop_ms, &x->ideal_us};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) *ints[i] = hb_malloc(cr * sizeof(int64_t));
    x->planned = hb_malloc(cr * sizeof *x->planned);
    x->stop = hb_malloc(cr * sizeof *x->stop);
    x->cycle = hb_malloc(cr * sizeof *x->cycle);
    x->why = hb_malloc(cr);
    rc = x->batch && x->time && x->total && x->good && x->planned_ms && x->stop_ms && x->ideal_us && x->planned &&
                 x->stop && x->cycle && x->why
             ? 0
             : HB_EINTERNAL;
    return hb_agree(rc);
}

/* Partial states (DESIGN.md 7): the state is sums per batch, which depend on nothing the
 * input holds besides its records, so the description is a version tag and the merge's
 * empty state is setup's without an input. */
#define OEE_DESC "HBOEED1"

static int oee_describe(void *state, void **buf, size_t *len)
{
    (void)state;
    char *p = hb_malloc(sizeof OEE_DESC);
    if (!p) return HB_EINTERNAL;
    memcpy(p, OEE_DESC, sizeof OEE_DESC);
    *buf = p;
    *len = sizeof OEE_DESC;
    return 0;
}

static int oee_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    oee *x;
    int rc = new_state(ctx, &x);
    *state = x;
    HB_CALL(rc);
    for (int i = 0; i < n && rc == 0; i++)
        if (parts[i].desc_len != sizeof OEE_DESC || memcmp(parts[i].desc, OEE_DESC, sizeof OEE_DESC) != 0)
            rc = hb_err_set(HB_EDATA, parts[i].path, "its oee description is damaged or of another version");
    return hb_agree(rc);
}

/* Why record i of the chunk is invalid (a BAD_ reason), or -1 with its quantities set. */
static int check_row(oee *x, int64_t i)
{
    if (x->batch[i] < 0) return BAD_BATCH;
    const double p = x->planned[i], s = x->stop[i];
    if (x->time[i] == INT64_MIN || !isfinite(p) || !isfinite(s) || p < 0 || p > MAX_PLANNED_S || s < 0)
        return BAD_TIME;
    const int64_t pm = (int64_t)nearbyint(p * 1000.0), sm = (int64_t)nearbyint(s * 1000.0);
    if (sm > pm) return BAD_TIME;
    const int64_t tot = x->total[i], good = x->good[i];
    if (tot == INT64_MIN || good == INT64_MIN || tot < 0 || (double)tot > MAX_COUNT || good < 0 || good > tot)
        return BAD_COUNT;
    const double c = x->cycle[i];
    if (!isfinite(c) || c <= 0 || c > MAX_CYCLE_S) return BAD_CYCLE;
    const int64_t cu = (int64_t)nearbyint(c * 1e6);
    int64_t work;
    if (cu < 1 || __builtin_mul_overflow(cu, tot, &work)) return BAD_CYCLE;
    x->planned_ms[i] = pm, x->stop_ms[i] = sm, x->ideal_us[i] = work;
    return -1;
}

/* Not collective. Reads chunk c, checks its records and adds them to their batches. */
static int oee_map(void *state, int64_t c)
{
    oee *x = state;
    const int64_t cr = x->ctx->chunk_rows, start = c * cr;
    const int64_t n = start + cr > x->ctx->n_rows ? x->ctx->n_rows - start : cr;
    HB_CALL(hb_table_read(x->tab, C_BATCH, start, n, HB_ID, x->batch));
    HB_CALL(hb_table_read_time(x->tab, C_TIME, start, n, x->per_s, x->time, x->time)); /* seconds, 1900-2200 */
    HB_CALL(hb_table_read(x->tab, C_PLANNED, start, n, HB_F64, x->planned));
    HB_CALL(hb_table_read(x->tab, C_STOP, start, n, HB_F64, x->stop));
    HB_CALL(hb_table_read(x->tab, C_TOTAL, start, n, HB_I64, x->total));
    HB_CALL(hb_table_read(x->tab, C_GOOD, start, n, HB_I64, x->good));
    HB_CALL(hb_table_read(x->tab, C_CYCLE, start, n, HB_F64, x->cycle));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x->why[i] = (int8_t)check_row(x, i);
    x->rows_total += n;
    for (int64_t i = 0; i < n; i++) {
        if (x->why[i] >= 0) {
            x->bad[x->why[i]]++;
            continue;
        }
        x->rows_valid++;
        const acc r = {x->batch[i], 1, x->planned_ms[i], x->stop_ms[i], x->total[i], x->good[i], x->ideal_us[i],
                       x->time[i], x->time[i]};
        HB_CALL(merge(x, &r));
    }
    return 0;
}

/* Collective. Sends every record to the rank that owns its batch and merges what comes
 * in: afterwards each batch lives on exactly one rank. */
static int oee_exchange(void *state)
{
    oee *x = state;
    if (hb_size == 1) return 0;
    const int P = hb_size;
    int *sc = hb_calloc((size_t)P, sizeof *sc), *rcnt = hb_calloc((size_t)P, sizeof *rcnt);
    int *sd = hb_calloc((size_t)P, sizeof *sd), *rd = hb_calloc((size_t)P, sizeof *rd);
    acc *send = hb_malloc((x->n ? x->n : 1) * sizeof *send), *recv = NULL;
    int rc = sc && rcnt && sd && rd && send ? 0 : HB_EINTERNAL;
    if (rc == 0) {
        for (size_t i = 0; i < x->n; i++) sc[owner_of(x->rec[i].batch)]++;
        for (int p = 1; p < P; p++) sd[p] = sd[p - 1] + sc[p - 1];
        int *at = hb_malloc((size_t)P * sizeof *at);
        if (!at) rc = HB_EINTERNAL;
        for (int p = 0; at && p < P; p++) at[p] = sd[p];
        for (size_t i = 0; at && i < x->n; i++) send[at[owner_of(x->rec[i].batch)]++] = x->rec[i];
        free(at);
    }
    rc = hb_agree(rc);
    if (rc == 0 && MPI_Alltoall(sc, 1, MPI_INT, rcnt, 1, MPI_INT, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "oee", "MPI_Alltoall of the record counts failed");
    int64_t nrecv = 0;
    for (int p = 0; rc == 0 && p < P; p++) {
        rd[p] = (int)nrecv;
        nrecv += rcnt[p];
    }
    if (rc == 0 && nrecv > INT32_MAX) rc = hb_err_set(HB_EINTERNAL, "oee", "more than 2^31 batches to receive");
    if (rc == 0 && !(recv = hb_malloc((size_t)(nrecv ? nrecv : 1) * sizeof *recv))) rc = HB_EINTERNAL;
    rc = hb_agree(rc);
    if (rc == 0 && MPI_Alltoallv(send, sc, sd, x->type, recv, rcnt, rd, x->type, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "oee", "MPI_Alltoallv of the batch records failed");
    if (rc == 0) {
        /* what this rank keeps is what it received: its own records came back to it */
        free(x->slot), free(x->rec);
        x->slot = NULL, x->rec = NULL, x->n = x->cap = x->hcap = 0;
        for (int64_t i = 0; rc == 0 && i < nrecv; i++) rc = merge(x, &recv[i]);
    }
    free(sc), free(rcnt), free(sd), free(rd), free(send), free(recv);
    return hb_agree(rc);
}

static int by_batch(const void *a, const void *b)
{
    const acc *x = a, *y = b;
    return (x->batch > y->batch) - (x->batch < y->batch);
}

/* Collective. Every rank gathers the owners' records (each batch once), sorted by batch. */
static int gather_all(oee *x, acc **all, int64_t *nall)
{
    int *cnt = hb_malloc((size_t)hb_size * sizeof *cnt), *dsp = hb_malloc((size_t)hb_size * sizeof *dsp);
    int rc = cnt && dsp && x->n <= INT32_MAX ? 0 : HB_EINTERNAL;
    int mine = (int)x->n;
    rc = hb_agree(rc);
    if (rc == 0 && MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "oee", "MPI_Allgather of the batch counts failed");
    int64_t n = 0;
    for (int p = 0; rc == 0 && p < hb_size; p++) dsp[p] = (int)n, n += cnt[p];
    if (rc == 0 && n > INT32_MAX) rc = hb_err_set(HB_EINTERNAL, "oee", "more than 2^31 batches");
    *all = rc == 0 ? hb_malloc((size_t)(n ? n : 1) * sizeof **all) : NULL;
    if (rc == 0 && !*all) rc = HB_EINTERNAL;
    rc = hb_agree(rc);
    if (rc == 0 && MPI_Allgatherv(x->rec, mine, x->type, *all, cnt, dsp, x->type, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "oee", "MPI_Allgatherv of the batch records failed");
    free(cnt), free(dsp);
    if (rc == 0) qsort(*all, (size_t)n, sizeof **all, by_batch);
    *nall = n;
    return rc;
}

/* The output arrays of B batches. */
typedef struct results {
    int64_t *batch, *start, *end;
    uint64_t *intervals, *total, *good;
    double *planned, *stop, *run, *ideal, *avail, *perf, *qual, *oee;
    uint8_t *meets;
} results;

static void free_results(results *r)
{
    free(r->batch), free(r->start), free(r->end), free(r->intervals), free(r->total), free(r->good);
    free(r->planned), free(r->stop), free(r->run), free(r->ideal);
    free(r->avail), free(r->perf), free(r->qual), free(r->oee), free(r->meets);
}

/* The metrics of the batches; NaN where a ratio has nothing to divide by. */
static int compute(const acc *a, int64_t B, double target, results *r)
{
    size_t n = (size_t)(B ? B : 1);
    r->batch = hb_malloc(n * 8), r->start = hb_malloc(n * 8), r->end = hb_malloc(n * 8);
    r->intervals = hb_malloc(n * 8), r->total = hb_malloc(n * 8), r->good = hb_malloc(n * 8);
    r->planned = hb_malloc(n * 8), r->stop = hb_malloc(n * 8), r->run = hb_malloc(n * 8), r->ideal = hb_malloc(n * 8);
    r->avail = hb_malloc(n * 8), r->perf = hb_malloc(n * 8), r->qual = hb_malloc(n * 8), r->oee = hb_malloc(n * 8);
    r->meets = hb_malloc(n);
    if (!r->batch || !r->start || !r->end || !r->intervals || !r->total || !r->good || !r->planned || !r->stop ||
        !r->run || !r->ideal || !r->avail || !r->perf || !r->qual || !r->oee || !r->meets)
        return HB_EINTERNAL;
    for (int64_t i = 0; i < B; i++) {
        const acc *b = &a[i];
        const int64_t run_ms = b->planned_ms - b->stop_ms;
        r->batch[i] = b->batch, r->start[i] = b->t_first, r->end[i] = b->t_last;
        r->intervals[i] = (uint64_t)b->intervals, r->total[i] = (uint64_t)b->total, r->good[i] = (uint64_t)b->good;
        r->planned[i] = (double)b->planned_ms / 1000.0;
        r->stop[i] = (double)b->stop_ms / 1000.0;
        r->run[i] = (double)run_ms / 1000.0;
        r->ideal[i] = (double)b->ideal_us / 1e6;
        r->avail[i] = b->planned_ms > 0 ? (double)run_ms / (double)b->planned_ms : NAN;
        r->perf[i] = run_ms > 0 ? (double)b->ideal_us / (1000.0 * (double)run_ms) : NAN;
        r->qual[i] = b->total > 0 ? (double)b->good / (double)b->total : NAN;
        r->oee[i] = r->avail[i] * r->perf[i] * r->qual[i];
        r->meets[i] = r->oee[i] >= target; /* NaN: no */
    }
    return 0;
}

/* Collective. Writes /oee: one dataset per figure over the batch coordinate. */
static int write_results(oee *x, hb_out *out, const results *r, int64_t B, const int64_t *totals)
{
    const uint64_t dims[1] = {(uint64_t)B};
    const uint64_t lo = (uint64_t)(B * hb_rank / hb_size), hi = (uint64_t)(B * (hb_rank + 1) / hb_size);
    HB_CALL(hb_out_group(out, "/oee"));
    HB_CALL(hb_out_scale(out, "/oee/batch", "batch", HB_I64, (uint64_t)B, r->batch, "1"));
    HB_CALL(hb_out_attr_str(out, "/oee/batch", "description", "production batch id"));
    const struct {
        const char *name;
        hb_elem t;
        const void *data;
        const char *units, *desc;
    } sets[] = {
        {"oee", HB_F64, r->oee, "1", "Overall Equipment Effectiveness: availability x performance x quality"},
        {"availability", HB_F64, r->avail, "1", "run time / planned production time"},
        {"performance", HB_F64, r->perf, "1", "ideal cycle time x total count / run time"},
        {"quality", HB_F64, r->qual, "1", "good count / total count"},
        {"meets_target", HB_U8, r->meets, "1", "1 where oee >= the oee_target attribute"},
        {"planned_time", HB_F64, r->planned, "s", "planned production time"},
        {"stop_time", HB_F64, r->stop, "s", "time the line stood still within the planned time"},
        {"run_time", HB_F64, r->run, "s", "planned time - stop time"},
        {"ideal_time", HB_F64, r->ideal, "s", "sum of ideal cycle time x total count"},
        {"total_count", HB_U64, r->total, "bottles", "bottles filled"},
        {"good_count", HB_U64, r->good, "bottles", "bottles that passed inspection"},
        {"intervals", HB_U64, r->intervals, "1", "valid records of the batch"},
        {"start", HB_I64, r->start, "s", "time of the batch's first record, UTC seconds since 1970-01-01"},
        {"end", HB_I64, r->end, "s", "time of the batch's last record, UTC seconds since 1970-01-01"},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/oee/%s", sets[i].name);
        size_t elem = sets[i].t == HB_U8 ? 1 : 8;
        HB_CALL(hb_out_write(out, path, sets[i].t, 1, dims, lo, hi - lo, (const char *)sets[i].data + lo * elem,
                             sets[i].units, sets[i].desc));
        HB_CALL(hb_out_attach(out, path, 0, "/oee/batch"));
    }
    HB_CALL(hb_out_attr_str(out, "/oee", "description",
                            "Overall Equipment Effectiveness per production batch (kernel oee, a plugin)"));
    HB_CALL(hb_out_attr_u64(out, "/oee", "n_batches", (uint64_t)B));
    HB_CALL(hb_out_attr_u64(out, "/oee", "rows_total", (uint64_t)totals[0]));
    HB_CALL(hb_out_attr_u64(out, "/oee", "rows_valid", (uint64_t)totals[1]));
    for (int k = 0; k < NBAD; k++) HB_CALL(hb_out_attr_u64(out, "/oee", bad_names[k], (uint64_t)totals[2 + k]));
    HB_CALL(hb_out_attr_f64(out, "/oee", "oee_target", &x->target, 1));
    return hb_out_attr_str(out, "/oee", "table", hb_opt_str(x->ctx->opts, "table"));
}

static int oee_finalize(void *state, hb_out *out)
{
    oee *x = state;
    int64_t totals[2 + NBAD] = {x->rows_total, x->rows_valid};
    for (int k = 0; k < NBAD; k++) totals[2 + k] = x->bad[k];
    MPI_Allreduce(MPI_IN_PLACE, totals, 2 + NBAD, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    char why[240], c[4][32];
    for (int k = 0; k < 4; k++) hb_fmt_count(c[k], (uint64_t)totals[2 + k]);
    snprintf(why, sizeof why, "%s with a bad batch id, %s bad times, %s bad counts, %s bad cycle times", c[BAD_BATCH],
             c[BAD_TIME], c[BAD_COUNT], c[BAD_CYCLE]);
    if (totals[1] > 0) /* none valid has its own message below */
        HB_CALL(hb_invalid_check((uint64_t)totals[0], (uint64_t)(totals[0] - totals[1]), where(x), "records", why));
    /* every rank gathers every batch (held beside its own, with their hash slots), then
     * computes the results: the estimate before the gather */
    uint64_t nb = x->n;
    MPI_Allreduce(MPI_IN_PLACE, &nb, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    char cause[64];
    snprintf(cause, sizeof cause, "%s batches", hb_fmt_count(c[0], nb));
    HB_CALL(hb_mem_reserve((double)nb * (2 * sizeof(acc) + 16 * 8), where(x), "the batches and their results", cause,
                           "split the input into several jobs"));
    acc *all = NULL;
    int64_t B = 0;
    results r = {0};
    int rc = gather_all(x, &all, &B);
    if (rc == 0 && B == 0) /* the same on every rank */
        rc = hb_err_set(HB_EDATA, where(x),
                        "%s: none of its %lld records is valid (%lld with a bad batch id, %lld bad times, %lld bad "
                        "counts, %lld bad cycle times)",
                        hb_opt_str(x->ctx->opts, "table"), (long long)totals[0], (long long)totals[2 + BAD_BATCH],
                        (long long)totals[2 + BAD_TIME], (long long)totals[2 + BAD_COUNT],
                        (long long)totals[2 + BAD_CYCLE]);
    if (rc == 0) rc = hb_agree(compute(all, B, x->target, &r));
    if (rc == 0) rc = write_results(x, out, &r, B, totals);
    if (rc == 0)
        HB_INFO("oee: %lld batches from %lld valid of %lld records", (long long)B, (long long)totals[1],
                (long long)totals[0]);
    free(all);
    free_results(&r);
    return rc;
}

static int oee_save(void *state, void **buf, size_t *len)
{
    oee *x = state;
    size_t bytes = sizeof(saved) + x->n * sizeof(acc);
    char *p = hb_malloc(bytes);
    if (!p) return HB_EINTERNAL;
    saved h = {"HBOEE1", x->rows_total, x->rows_valid, {0}, x->n};
    memcpy(h.bad, x->bad, sizeof h.bad);
    memcpy(p, &h, sizeof h);
    if (x->n) memcpy(p + sizeof h, x->rec, x->n * sizeof(acc));
    *buf = p;
    *len = bytes;
    return 0;
}

static int oee_load(void *state, const void *buf, size_t len)
{
    oee *x = state;
    saved h;
    if (len < sizeof h) return hb_err_set(HB_EDATA, "checkpoint", "oee state of %zu bytes is too short", len);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, "HBOEE1", 7) != 0 || len != sizeof h + h.n * sizeof(acc))
        return hb_err_set(HB_EDATA, "checkpoint", "not an oee state, or a damaged one");
    x->rows_total += h.rows_total, x->rows_valid += h.rows_valid;
    for (int k = 0; k < NBAD; k++) x->bad[k] += h.bad[k];
    const char *p = (const char *)buf + sizeof h;
    for (uint64_t i = 0; i < h.n; i++) {
        acc r;
        memcpy(&r, p + i * sizeof r, sizeof r);
        HB_CALL(merge(x, &r));
    }
    return 0;
}

static void oee_destroy(void *state)
{
    oee *x = state;
    if (!x) return;
    hb_table_close(x->tab);
    if (x->type != MPI_DATATYPE_NULL) MPI_Type_free(&x->type);
    free(x->rec), free(x->slot);
    free(x->batch), free(x->time), free(x->total), free(x->good), free(x->planned_ms), free(x->stop_ms);
    free(x->ideal_us), free(x->planned), free(x->stop), free(x->cycle), free(x->why);
    free(x);
}

extern const hb_generator oee_bottling; /* bottling.c */

/* What the kernel reads and writes, listed by `h5batch kernels oee` (plugin ABI 2). */
static const hb_dataset_desc oee_inputs[] = {
    {"batch", "table", "int", "", NULL, 0, "production batch id"},
    {"time", "table", "number", "", "s", 0, "interval time, seconds since 1970-01-01 UTC"},
    {"planned_s", "table", "number", "", "s", 0, "planned production time of the interval"},
    {"stop_s", "table", "number", "", "s", 0, "time the line stood still"},
    {"total", "table", "number", "", "bottles", 0, "bottles filled"},
    {"good", "table", "number", "", "bottles", 0, "bottles that passed inspection"},
    {"ideal_cycle_s", "table", "number", "", "s", 0, "ideal cycle time of the product"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};
static const hb_dataset_desc oee_outputs[] = {
    {"/oee/oee", NULL, "float64", "batch", "1", 0, "availability x performance x quality"},
    {"/oee/availability", NULL, "float64", "batch", "1", 0, "run time / planned production time"},
    {"/oee/performance", NULL, "float64", "batch", "1", 0, "ideal cycle time x total count / run time"},
    {"/oee/quality", NULL, "float64", "batch", "1", 0, "good count / total count"},
    {"/oee/meets_target", NULL, "uint8", "batch", "1", 0, "1 where oee >= oee_target"},
    {"/oee/planned_time", NULL, "float64", "batch", "s", 0, "planned production time"},
    {"/oee/stop_time", NULL, "float64", "batch", "s", 0, "time the line stood still"},
    {"/oee/run_time", NULL, "float64", "batch", "s", 0, "planned time - stop time"},
    {"/oee/ideal_time", NULL, "float64", "batch", "s", 0, "sum of ideal cycle time x total count"},
    {"/oee/total_count", NULL, "uint64", "batch", "bottles", 0, "bottles filled"},
    {"/oee/good_count", NULL, "uint64", "batch", "bottles", 0, "bottles that passed inspection"},
    {"/oee/intervals", NULL, "uint64", "batch", "1", 0, "valid records of the batch"},
    {"/oee/start", NULL, "time", "batch", "s", 0, "time of the batch's first record (UTC)"},
    {"/oee/end", NULL, "time", "batch", "s", 0, "time of the batch's last record (UTC)"},
    {"/oee/batch", NULL, "int64", "batch", "1", 0, "coordinate: production batch id"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};

static const hb_kernel oee_kernel = {
    .name = "oee",
    .summary = "Overall Equipment Effectiveness per production batch (availability, performance, quality)",
    .options = oee_options,
    .default_chunk_rows = 65536,
    .unit = "records",
    .generator = &oee_bottling,
    .validate = oee_validate,
    .setup = oee_setup,
    .map = oee_map,
    .exchange = oee_exchange,
    .finalize = oee_finalize,
    .save = oee_save,
    .load = oee_load,
    .destroy = oee_destroy,
    .inputs = oee_inputs,
    .outputs = oee_outputs,
    .describe = oee_describe,
    .setup_parts = oee_setup_parts,
};

HB_PLUGIN_ABI;

int hb_plugin_init(int host_abi)
{
    (void)host_abi; /* the host checked hb_plugin_abi against it already */
    return hb_kernel_register(&oee_kernel);
}
