/* Traffic aggregation (DESIGN.md 4.1): per segment x local day of week x local hour,
 * count, mean and exact percentiles of speed; event days apart; free-flow speed and
 * travel time index.
 *
 * Exact percentiles need every value of a cell on one rank, so the map step tags each
 * valid row with its cell key (segment * 192 + cell) and the rank that owns its
 * segment (contiguous segment ranges), and exchange moves the (key, speed) records
 * there with MPI_Alltoallv after every round of chunks. The owner appends them to
 * per-segment buckets. finalize takes one segment at a time (in cache), groups its
 * values by cell, and computes order statistics (float records by a radix sort, double
 * records by selection) and the mean from an exact sum: nothing depends on the order
 * in which records arrived, so any rank or thread count gives the same bits. */
#include "kernels/kernel.h"

#include "core/hb.h"
#include "core/calendar.h"
#include "kernels/common/stats.h"

#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEEK_CELLS (7 * 24)
#define CELLS (WEEK_CELLS + 24) /* weekly cells then event-day hours, per segment */
#define MAX_SEGMENTS 20000000   /* keeps cell keys (segment * CELLS + cell) within uint32 */
#define ARENA_BYTES (64u << 20)
#define BLOCK_MIN 32
#define BLOCK_MAX 16384

enum { COL_TIME, COL_SEGMENT, COL_SPEED };

static const hb_option traffic_options[] = {
    {"timezone", HB_OPT_STRING, "UTC", 1, 0, NULL, "IANA time zone of the local wall-clock time (DST-correct)"},
    {"percentiles", HB_OPT_LIST, "50, 85, 95", 0, 100, NULL, "exact speed percentiles per cell (type 7)"},
    {"max_speed", HB_OPT_FLOAT, "250", 0, 1e9, NULL, "speeds above this (km/h) are invalid"},
    {"table", HB_OPT_STRING, "/observations", 1, 0, NULL, "input table (group with time, segment, speed)"},
    {"segments", HB_OPT_INT, NULL, 1, MAX_SEGMENTS, NULL,
     "number of segments S; default the table's n_segments attribute, else max(segment)+1"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Records of one segment: a chain of blocks of growing size, carved from arenas. */
typedef struct block {
    struct block *next;
    uint32_t n, cap;
    void *val; /* float or double: see traffic.narrow */
    uint8_t *cell;
} block;

typedef struct bucket {
    void *val; /* the tail block's arrays, kept here so an append touches one line */
    uint8_t *cell;
    uint32_t used, cap; /* of the tail block; written back to it when it fills */
    block *head, *tail;
    uint64_t n;
} bucket;

typedef struct arena {
    struct arena *next;
    size_t used, size;
    unsigned char data[];
} arena;

typedef struct traffic {
    hb_step_ctx *ctx;
    hb_table *tab;
    int64_t S, s0, s1; /* segments, and this rank's owned range [s0, s1) */
    double pct[HB_OPT_LIST_MAX];
    int npct;
    double max_speed;
    const char *tz;
    hb_tzmap tzm;
    /* event days as a bitmap over local day numbers [ev_day0, ev_day0 + ev_ndays) */
    int has_events;
    int64_t ev_day0, ev_ndays;
    uint8_t *ev;
    double *ffs_in; /* /segments/free_flow_speed, or NULL */
    /* every speed of the input is exactly a float (a float32 or small integer column):
     * records then carry floats, which halves what is moved and kept */
    int narrow;
    size_t esz;
    uint64_t rows_total, bad_speed, bad_segment, bad_time;
    /* chunk buffers */
    int64_t *t, *seg;
    double *spd;
    uint32_t *key; /* cell key of a valid row, UINT32_MAX when invalid */
    int *dest;
    /* records to send this round, grouped by destination rank, and those received */
    uint32_t *skey, *rkey;
    void *sval, *rval; /* float when narrow, else double */
    size_t scap, rcap;
    /* records loaded from a checkpoint, sent to their owners by the next exchange */
    uint32_t *lkey;
    void *lval;
    size_t ln, lcap;
    int *scount, *sdispl, *rcount, *rdispl;
    int *tcount; /* per thread x per destination counts, then offsets (rows of tstride) */
    size_t tstride; /* P rounded up to a cache line of ints: threads never share a line */
    /* records owned by this rank, by segment s - s0 */
    bucket *buckets;
    arena **arenas; /* one list per thread: threads append to disjoint segments */
} traffic;

static int traffic_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    const char *tz = hb_opt_str(o, "timezone");
    if (!hb_tz_valid(tz)) {
        *key = "timezone";
        snprintf(msg, len, "unknown time zone '%s' (an IANA name like Europe/Berlin)", tz);
        return HB_ECONFIG;
    }
    return 0;
}

static inline int owner_of(int64_t s, int64_t S, int size) { return (int)(((s + 1) * size - 1) / S); }

/* S from the option, the n_segments attribute, or a pass over the segment column. */
static int find_segments(traffic *tr)
{
    hb_step_ctx *ctx = tr->ctx;
    double opt = hb_opt_num(ctx->opts, "segments");
    if (!isnan(opt)) return tr->S = (int64_t)opt, 0;
    int64_t v;
    int present;
    HB_CALL(hb_table_attr_i64(tr->tab, "n_segments", &v, &present));
    if (present) {
        HB_CHECK(v >= 1 && v <= MAX_SEGMENTS, HB_EDATA, ctx->input, "attribute n_segments = %lld is out of range [1, %d]",
                 (long long)v, MAX_SEGMENTS);
        return tr->S = v, 0;
    }
    int64_t n = ctx->n_rows, cr = ctx->chunk_rows, mx = -1;
    int64_t *buf = hb_malloc((size_t)(n < cr ? (n > 0 ? n : 1) : cr) * sizeof *buf);
    if (!buf) return HB_EINTERNAL;
    int rc = 0;
    for (int64_t c = hb_rank; c < ctx->n_chunks && rc == 0; c += hb_size) {
        int64_t start = c * cr, cnt = start + cr > n ? n - start : cr;
        rc = hb_table_read(tr->tab, COL_SEGMENT, start, cnt, HB_ID, buf);
        for (int64_t i = 0; rc == 0 && i < cnt; i++)
            if (buf[i] > mx && buf[i] < MAX_SEGMENTS) mx = buf[i];
    }
    free(buf);
    HB_CALL(hb_agree(rc));
    MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    HB_CHECK(mx >= 0, HB_EDATA, ctx->input, "no valid segment id in the table, and no n_segments attribute");
    tr->S = mx + 1;
    return 0;
}

static int load_events(traffic *tr)
{
    hb_in *in = tr->ctx->in;
    if (!hb_in_exists(in, "/calendar/event_days")) return 0;
    int64_t n, *ymd;
    HB_CALL(hb_in_read_array(in, "/calendar/event_days", HB_I64, &n, (void **)&ymd));
    tr->has_events = 1;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        int64_t d = hb_days_from_yyyymmdd(ymd[i]);
        if (d == INT64_MIN)
            rc = hb_err_set(HB_EDATA, tr->ctx->input, "/calendar/event_days[%lld] = %lld is not a date yyyymmdd",
                            (long long)i, (long long)ymd[i]);
        if (d < lo) lo = d;
        if (d > hi) hi = d;
    }
    if (rc == 0 && n > 0) {
        tr->ev_day0 = lo;
        tr->ev_ndays = hi - lo + 1;
        tr->ev = hb_calloc((size_t)tr->ev_ndays, 1);
        if (!tr->ev) rc = HB_EINTERNAL;
        for (int64_t i = 0; rc == 0 && i < n; i++) tr->ev[hb_days_from_yyyymmdd(ymd[i]) - lo] = 1;
    }
    free(ymd);
    return rc;
}

static int load_free_flow(traffic *tr)
{
    hb_in *in = tr->ctx->in;
    if (!hb_in_exists(in, "/segments/free_flow_speed")) return 0;
    int64_t n;
    HB_CALL(hb_in_read_array(in, "/segments/free_flow_speed", HB_F64, &n, (void **)&tr->ffs_in));
    HB_CHECK(n == tr->S, HB_EDATA, tr->ctx->input, "/segments/free_flow_speed has %lld values for %lld segments",
             (long long)n, (long long)tr->S);
    return 0;
}

static int traffic_setup(hb_step_ctx *ctx, void **state)
{
    traffic *tr = hb_calloc(1, sizeof *tr);
    if (!tr) return HB_EINTERNAL;
    *state = tr;
    tr->ctx = ctx;
    tr->npct = hb_opt_list(ctx->opts, "percentiles", tr->pct);
    tr->max_speed = hb_opt_num(ctx->opts, "max_speed");
    tr->tz = hb_opt_str(ctx->opts, "timezone");
    HB_CALL(hb_tz_select(tr->tz));
    static const char *const cols[] = {"time", "segment", "speed"};
    int rc = hb_table_open(ctx->in, hb_opt_str(ctx->opts, "table"), cols, 3, &tr->tab);
    HB_CALL(hb_agree(rc));
    ctx->n_rows = hb_table_rows(tr->tab);
    ctx->n_chunks = (ctx->n_rows + ctx->chunk_rows - 1) / ctx->chunk_rows;
    HB_CALL(find_segments(tr));
    rc = load_events(tr);
    if (rc == 0) rc = load_free_flow(tr);
    HB_CALL(hb_agree(rc));

    tr->s0 = (int64_t)hb_rank * tr->S / hb_size;
    tr->s1 = (int64_t)(hb_rank + 1) * tr->S / hb_size;
    size_t cr = (size_t)ctx->chunk_rows, P = (size_t)hb_size;
    tr->t = hb_malloc(cr * sizeof *tr->t);
    tr->seg = hb_malloc(cr * sizeof *tr->seg);
    tr->spd = hb_malloc(cr * sizeof *tr->spd);
    tr->key = hb_malloc(cr * sizeof *tr->key);
    tr->dest = hb_malloc(cr * sizeof *tr->dest);
    tr->skey = hb_malloc(cr * sizeof *tr->skey);
    tr->narrow = hb_table_exact_f32(tr->tab, COL_SPEED);
    tr->esz = tr->narrow ? sizeof(float) : sizeof(double);
    tr->sval = hb_malloc(cr * tr->esz);
    tr->scap = cr;
    tr->buckets = hb_calloc((size_t)(tr->s1 - tr->s0), sizeof *tr->buckets);
    tr->arenas = hb_calloc((size_t)ctx->threads, sizeof *tr->arenas);
    tr->scount = hb_calloc(P, sizeof(int));
    tr->sdispl = hb_calloc(P, sizeof(int));
    tr->rcount = hb_calloc(P, sizeof(int));
    tr->rdispl = hb_calloc(P, sizeof(int));
    tr->tstride = (P + 15) / 16 * 16;
    tr->tcount = hb_calloc(2 * tr->tstride * (size_t)ctx->threads, sizeof(int));
    rc = (tr->t && tr->seg && tr->spd && tr->key && tr->dest && tr->skey && tr->sval && tr->scount && tr->sdispl &&
          tr->rcount && tr->rdispl && tr->tcount && tr->buckets && tr->arenas)
             ? 0
             : HB_EINTERNAL;
    return hb_agree(rc);
}

static void *arena_alloc(arena **list, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    arena *a = *list;
    if (!a || a->size - a->used < bytes) {
        size_t size = bytes > ARENA_BYTES ? bytes : ARENA_BYTES;
        a = malloc(sizeof *a + size); /* not hb_malloc: called from threads; the caller reports */
        if (!a) return NULL;
        a->next = *list, a->used = 0, a->size = size;
        *list = a;
    }
    void *p = a->data + a->used;
    a->used += bytes;
    return p;
}

/* Starts a new tail block for b, twice the size of the last one (a busy segment has
 * few blocks, a quiet one wastes little). */
static int grow(traffic *tr, arena **list, bucket *b)
{
    block *t = b->tail;
    uint32_t cap = t ? (t->cap < BLOCK_MAX ? t->cap * 2 : BLOCK_MAX) : BLOCK_MIN;
    block *nb = arena_alloc(list, sizeof *nb + (size_t)cap * (tr->esz + 1));
    if (!nb) return HB_EINTERNAL;
    nb->next = NULL, nb->n = 0, nb->cap = cap;
    nb->val = nb + 1;
    nb->cell = (uint8_t *)nb->val + (size_t)cap * tr->esz;
    if (t) t->n = b->used, t->next = nb;
    else b->head = nb;
    b->tail = nb;
    b->val = nb->val, b->cell = nb->cell, b->used = 0, b->cap = cap;
    return 0;
}

#define APPEND_LOOP(T)                                                                 \
    for (size_t i = 0; i < n; i++) {                                                   \
        uint32_t k = key[i] - base, s = k / CELLS;                                     \
        if (s < lo || s >= hi) continue;                                               \
        bucket *b = &buckets[s];                                                       \
        if (b->used == b->cap && grow(tr, list, b)) {                                  \
            failed = 1;                                                                \
            break;                                                                     \
        }                                                                              \
        ((T *)b->val)[b->used] = ((const T *)val)[i];                                  \
        b->cell[b->used++] = (uint8_t)(k - s * CELLS);                                 \
        b->n++;                                                                        \
    }

/* Appends n records (keys of owned segments) to their segments' buckets; each thread
 * takes a fixed range of segments, so no two threads touch one bucket or arena. */
static int append(traffic *tr, const uint32_t *key, const void *val, size_t n)
{
    const uint32_t base = (uint32_t)(tr->s0 * CELLS), nseg = (uint32_t)(tr->s1 - tr->s0);
    const int nthreads = tr->ctx->threads;
    bucket *buckets = tr->buckets;
    int failed = 0;
#pragma omp parallel for schedule(static, 1) num_threads(nthreads) reduction(| : failed)
    for (int part = 0; part < nthreads; part++) {
        uint32_t lo = (uint32_t)((uint64_t)nseg * (uint64_t)part / (uint64_t)nthreads);
        uint32_t hi = (uint32_t)((uint64_t)nseg * (uint64_t)(part + 1) / (uint64_t)nthreads);
        arena **list = &tr->arenas[part];
        if (tr->narrow) APPEND_LOOP(float)
        else APPEND_LOOP(double)
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "traffic", "out of memory storing records");
    return 0;
}

static int traffic_map(void *state, int64_t c)
{
    traffic *tr = state;
    hb_step_ctx *ctx = tr->ctx;
    int64_t start = c * ctx->chunk_rows;
    int64_t n = start + ctx->chunk_rows > ctx->n_rows ? ctx->n_rows - start : ctx->chunk_rows;
    HB_CALL(hb_table_read(tr->tab, COL_TIME, start, n, HB_I64, tr->t));
    HB_CALL(hb_table_read(tr->tab, COL_SEGMENT, start, n, HB_ID, tr->seg));
    HB_CALL(hb_table_read(tr->tab, COL_SPEED, start, n, HB_F64, tr->spd));

    const int64_t *t = tr->t;
    int64_t tmin = INT64_MAX, tmax = INT64_MIN;
#pragma omp parallel for simd reduction(min : tmin) reduction(max : tmax) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int64_t v = t[i] == INT64_MIN ? INT64_MAX : t[i];
        tmin = v < tmin ? v : tmin;
        tmax = t[i] > tmax ? t[i] : tmax;
    }
    if (tmax != INT64_MIN) HB_CALL(hb_tzmap_cover(&tr->tzm, tmin, tmax));

    const int64_t S = tr->S, *seg = tr->seg;
    const double maxs = tr->max_speed;
    double *spd = tr->spd;
    uint32_t *key = tr->key;
    int *dest = tr->dest;
    const hb_tzmap *tzm = &tr->tzm;
    const uint8_t *ev = tr->ev;
    const int64_t ev0 = tr->ev_day0, evn = tr->ev_ndays;
    const int P = hb_size;
    uint64_t bad_speed = 0, bad_segment = 0, bad_time = 0;
    int nthreads = ctx->threads;
#pragma omp parallel num_threads(nthreads) reduction(+ : bad_speed, bad_segment, bad_time)
    for (int part = omp_get_thread_num(); part < nthreads; part += omp_get_num_threads()) {
        /* fixed parts, not the runtime's schedule, so the two passes below agree */
        int *cnt = tr->tcount + (size_t)part * tr->tstride;
        memset(cnt, 0, (size_t)P * sizeof *cnt);
        int64_t lo = n * part / nthreads, hi = n * (part + 1) / nthreads;
        for (int64_t i = lo; i < hi; i++) {
            int64_t s = seg[i];
            double v = spd[i];
            if (t[i] == INT64_MIN) {
                bad_time++;
            } else if (s < 0 || s >= S) {
                bad_segment++;
            } else if (!(v >= 0 && v <= maxs)) { /* also rejects NaN */
                bad_speed++;
            } else {
                spd[i] = v + 0.0; /* -0.0 becomes +0.0: equal values must have equal bits */
                int64_t local = hb_tzmap_local(tzm, t[i]);
                int64_t day = hb_floordiv(local, 86400);
                int hour = (int)((local - day * 86400) / 3600);
                int64_t e = day - ev0;
                uint32_t k;
                if (ev && e >= 0 && e < evn && ev[e]) {
                    k = (uint32_t)(s * CELLS + WEEK_CELLS + hour);
                } else {
                    int dow = (int)((day % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
                    k = (uint32_t)(s * CELLS + dow * 24 + hour);
                }
                key[i] = k;
                int d = owner_of(s, S, P);
                dest[i] = d;
                cnt[d]++;
                continue;
            }
            key[i] = UINT32_MAX;
        }
    }
    /* each thread's rows go to its own slice of every destination block, so the send
     * buffer is filled in parallel without atomics */
    const size_t ts = tr->tstride;
    int *off = tr->tcount + (size_t)nthreads * ts; /* [thread][dest] start offsets */
    int pos = 0;
    for (int d = 0; d < P; d++)
        for (int th = 0; th < nthreads; th++) {
            off[(size_t)th * ts + (size_t)d] = pos;
            pos += tr->tcount[(size_t)th * ts + (size_t)d];
        }
#pragma omp parallel num_threads(nthreads)
    for (int part = omp_get_thread_num(); part < nthreads; part += omp_get_num_threads()) {
        int *o = off + (size_t)part * ts;
        int64_t lo = n * part / nthreads, hi = n * (part + 1) / nthreads;
        for (int64_t i = lo; i < hi; i++) {
            if (key[i] == UINT32_MAX) continue;
            int p = o[dest[i]]++;
            tr->skey[p] = key[i];
            if (tr->narrow) ((float *)tr->sval)[p] = (float)spd[i]; /* exact: see narrow */
            else ((double *)tr->sval)[p] = spd[i];
        }
    }
    tr->rows_total += (uint64_t)n;
    tr->bad_speed += bad_speed;
    tr->bad_segment += bad_segment;
    tr->bad_time += bad_time;
    for (int d = 0; d < P; d++) {
        tr->scount[d] = 0;
        for (int th = 0; th < nthreads; th++) tr->scount[d] += tr->tcount[(size_t)th * ts + (size_t)d];
    }
    return 0;
}

/* Moves the records loaded from a checkpoint into the send buffers, by destination. */
static int stage_loaded(traffic *tr)
{
    const int P = hb_size;
    if (tr->ln > tr->scap) {
        uint32_t *k = hb_realloc(tr->skey, tr->ln * sizeof *k);
        if (!k) return HB_EINTERNAL;
        tr->skey = k;
        void *v = hb_realloc(tr->sval, tr->ln * tr->esz);
        if (!v) return HB_EINTERNAL;
        tr->sval = v;
        tr->scap = tr->ln;
    }
    memset(tr->scount, 0, (size_t)P * sizeof *tr->scount);
    for (size_t i = 0; i < tr->ln; i++) tr->scount[owner_of(tr->lkey[i] / CELLS, tr->S, P)]++;
    int pos = 0;
    for (int d = 0; d < P; d++) tr->sdispl[d] = pos, pos += tr->scount[d];
    for (size_t i = 0; i < tr->ln; i++) {
        int p = tr->sdispl[owner_of(tr->lkey[i] / CELLS, tr->S, P)]++;
        tr->skey[p] = tr->lkey[i];
        memcpy((char *)tr->sval + (size_t)p * tr->esz, (char *)tr->lval + i * tr->esz, tr->esz);
    }
    free(tr->lkey), free(tr->lval);
    tr->lkey = NULL, tr->lval = NULL, tr->ln = tr->lcap = 0;
    return 0;
}

static int traffic_exchange(void *state)
{
    traffic *tr = state;
    const int P = hb_size;
    HB_CALL(hb_agree(tr->ln ? stage_loaded(tr) : 0));
    int total = 0;
    for (int d = 0; d < P; d++) tr->sdispl[d] = total, total += tr->scount[d];
    int rc;
    if (P == 1) {
        rc = append(tr, tr->skey, tr->sval, (size_t)total);
    } else {
        HB_CALL_MPI(MPI_Alltoall(tr->scount, 1, MPI_INT, tr->rcount, 1, MPI_INT, MPI_COMM_WORLD));
        size_t recv = 0;
        for (int d = 0; d < P; d++) tr->rdispl[d] = (int)recv, recv += (size_t)tr->rcount[d];
        rc = 0;
        if (recv > tr->rcap) {
            free(tr->rkey), free(tr->rval);
            tr->rkey = hb_malloc(recv * sizeof *tr->rkey);
            tr->rval = hb_malloc(recv * tr->esz);
            tr->rcap = recv;
            if (!tr->rkey || !tr->rval) rc = HB_EINTERNAL, tr->rcap = 0;
        }
        HB_CALL(hb_agree(rc));
        MPI_Datatype vt = tr->narrow ? MPI_FLOAT : MPI_DOUBLE;
        HB_CALL_MPI(MPI_Alltoallv(tr->skey, tr->scount, tr->sdispl, MPI_UINT32_T, tr->rkey, tr->rcount, tr->rdispl,
                                  MPI_UINT32_T, MPI_COMM_WORLD));
        HB_CALL_MPI(MPI_Alltoallv(tr->sval, tr->scount, tr->sdispl, vt, tr->rval, tr->rcount, tr->rdispl, vt,
                                  MPI_COMM_WORLD));
        rc = append(tr, tr->rkey, tr->rval, recv);
    }
    memset(tr->scount, 0, (size_t)P * sizeof *tr->scount);
    return hb_agree(rc);
}

/* Saved state: a header of counters, then every owned record as (key, value). */
typedef struct saved {
    char magic[8]; /* "HBTRAF1" */
    uint64_t rows_total, bad_speed, bad_segment, bad_time, n_records, value_bytes;
} saved;

static int traffic_save(void *state, void **buf, size_t *len)
{
    traffic *tr = state;
    uint64_t n = 0;
    for (int64_t s = 0; s < tr->s1 - tr->s0; s++) {
        bucket *b = &tr->buckets[s];
        if (b->tail) b->tail->n = b->used;
        n += b->n;
    }
    size_t bytes = sizeof(saved) + n * (sizeof(uint32_t) + tr->esz);
    char *p = hb_malloc(bytes);
    if (!p) return HB_EINTERNAL;
    saved h = {"HBTRAF1", tr->rows_total, tr->bad_speed, tr->bad_segment, tr->bad_time, n, tr->esz};
    memcpy(p, &h, sizeof h);
    uint32_t *key = (uint32_t *)(p + sizeof h);
    char *val = (char *)(key + n);
    size_t i = 0;
    for (int64_t s = 0; s < tr->s1 - tr->s0; s++)
        for (const block *k = tr->buckets[s].head; k; k = k->next) {
            for (uint32_t j = 0; j < k->n; j++) key[i + j] = (uint32_t)((tr->s0 + s) * CELLS + k->cell[j]);
            memcpy(val + i * tr->esz, k->val, (size_t)k->n * tr->esz);
            i += k->n;
        }
    *buf = p;
    *len = bytes;
    return 0;
}

static int traffic_load(void *state, const void *buf, size_t len)
{
    traffic *tr = state;
    saved h;
    if (len < sizeof h) return hb_err_set(HB_EDATA, "checkpoint", "traffic state of %zu bytes is too short", len);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, "HBTRAF1", 8) != 0 || h.value_bytes != tr->esz ||
        len != sizeof h + h.n_records * (sizeof(uint32_t) + tr->esz))
        return hb_err_set(HB_EDATA, "checkpoint", "traffic state does not match this job's input");
    tr->rows_total += h.rows_total, tr->bad_speed += h.bad_speed;
    tr->bad_segment += h.bad_segment, tr->bad_time += h.bad_time;
    size_t n = (size_t)h.n_records;
    if (tr->ln + n > tr->lcap) {
        size_t cap = tr->ln + n;
        uint32_t *k = hb_realloc(tr->lkey, cap * sizeof *k);
        if (!k) return HB_EINTERNAL;
        tr->lkey = k;
        void *v = hb_realloc(tr->lval, cap * tr->esz);
        if (!v) return HB_EINTERNAL;
        tr->lval = v;
        tr->lcap = cap;
    }
    const char *p = (const char *)buf + sizeof h;
    memcpy(tr->lkey + tr->ln, p, n * sizeof(uint32_t));
    memcpy((char *)tr->lval + tr->ln * tr->esz, p + n * sizeof(uint32_t), n * tr->esz);
    for (size_t i = tr->ln; i < tr->ln + n; i++)
        if (tr->lkey[i] / CELLS >= (uint64_t)tr->S)
            return hb_err_set(HB_EDATA, "checkpoint", "traffic state names segment %u of %lld", tr->lkey[i] / CELLS,
                              (long long)tr->S);
    tr->ln += n;
    return 0;
}

/* Per-cell statistics of this rank's segments, in the output layouts. */
typedef struct results {
    uint64_t *count, *ev_count, *seg_count;
    double *mean, *ev_mean, *ffs, *tti;
    double **pct, **ev_pct;
} results;

static void free_results(results *r, int npct)
{
    free(r->count), free(r->ev_count), free(r->seg_count);
    free(r->mean), free(r->ev_mean), free(r->ffs), free(r->tti);
    for (int j = 0; j < npct; j++) {
        if (r->pct) free(r->pct[j]);
        if (r->ev_pct) free(r->ev_pct[j]);
    }
    free(r->pct), free(r->ev_pct);
}

static int alloc_results(results *r, size_t nseg, int npct)
{
    size_t nw = nseg * WEEK_CELLS, ne = nseg * 24;
    r->count = hb_calloc(nw, 8), r->ev_count = hb_calloc(ne, 8), r->seg_count = hb_calloc(nseg, 8);
    r->mean = hb_malloc(nw * 8), r->ev_mean = hb_malloc(ne * 8), r->ffs = hb_malloc(nseg * 8);
    r->tti = hb_malloc(nw * 8);
    r->pct = hb_calloc((size_t)npct, sizeof *r->pct), r->ev_pct = hb_calloc((size_t)npct, sizeof *r->ev_pct);
    if (!r->count || !r->ev_count || !r->seg_count || !r->mean || !r->ev_mean || !r->ffs || !r->tti || !r->pct ||
        !r->ev_pct)
        return HB_EINTERNAL;
    for (int j = 0; j < npct; j++) {
        r->pct[j] = hb_malloc(nw * 8), r->ev_pct[j] = hb_malloc(ne * 8);
        if (!r->pct[j] || !r->ev_pct[j]) return HB_EINTERNAL;
    }
    return 0;
}

/* Stores cell c's results of segment ls (count n, mean from sum, percentiles pv) in r. */
static void store_cell(const traffic *tr, int64_t ls, int c, size_t n, const hb_xsum *sum, const double *pv,
                       results *r)
{
    double mean = n ? hb_xsum_value(sum) / (double)n : NAN;
    if (c < WEEK_CELLS) {
        size_t i = (size_t)ls * WEEK_CELLS + (size_t)c;
        r->count[i] = n, r->mean[i] = mean;
        for (int j = 0; j < tr->npct; j++) r->pct[j][i] = pv[j];
    } else {
        size_t i = (size_t)ls * 24 + (size_t)(c - WEEK_CELLS);
        r->ev_count[i] = n, r->ev_mean[i] = mean;
        for (int j = 0; j < tr->npct; j++) r->ev_pct[j][i] = pv[j];
    }
}

/* Stores segment ls's count, free-flow speed (ffs unless the input gives one) and travel
 * time indices in r, after its cells. */
static void store_segment(const traffic *tr, const bucket *b, int64_t ls, double ffs, results *r)
{
    r->seg_count[ls] = b->n;
    r->ffs[ls] = tr->ffs_in ? tr->ffs_in[tr->s0 + ls] : ffs;
    for (int c = 0; c < WEEK_CELLS; c++) {
        size_t i = (size_t)ls * WEEK_CELLS + (size_t)c;
        double m = r->mean[i], f = r->ffs[ls];
        r->tti[i] = (r->count[i] > 0 && !isnan(f) && m > 0) ? f / m : NAN;
    }
}

/* Double records: the segment's values grouped by cell into x (scratch of b->n values),
 * then per cell the percentiles by multiple selection. */
static void reduce_segment_f64(const traffic *tr, const bucket *b, int64_t ls, double *x, results *r)
{
    size_t start[CELLS + 1] = {0}, pos[CELLS];
    for (const block *k = b->head; k; k = k->next)
        for (uint32_t i = 0; i < k->n; i++) start[k->cell[i] + 1]++;
    for (int c = 0; c < CELLS; c++) start[c + 1] += start[c], pos[c] = start[c];
    for (const block *k = b->head; k; k = k->next)
        for (uint32_t i = 0; i < k->n; i++) x[pos[k->cell[i]]++] = ((const double *)k->val)[i];

    double pv[HB_OPT_LIST_MAX];
    hb_xsum sum;
    for (int c = 0; c < CELLS; c++) {
        double *v = x + start[c];
        size_t n = start[c + 1] - start[c];
        memset(&sum, 0, sizeof sum);
        for (size_t i = 0; i < n; i++) hb_xsum_add(&sum, v[i]);
        hb_percentiles_select(v, n, tr->pct, tr->npct, pv);
        store_cell(tr, ls, c, n, &sum, pv, r);
    }
    /* the weekly cells are contiguous at the front: the segment's non-event values */
    store_segment(tr, b, ls, tr->ffs_in ? NAN : hb_percentile_select(x, start[WEEK_CELLS], 85), r);
}

/* A float's bits mapped so that unsigned order is numeric order (negatives flipped). */
static inline uint32_t f32_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u >> 31 ? ~u : u | 0x80000000u;
}

static inline double f32_of_key(uint64_t k)
{
    uint32_t u = (uint32_t)k;
    u = u >> 31 ? u & 0x7fffffffu : ~u;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One stable counting pass of an LSD radix sort on the digit (v >> shift) & (nb - 1),
 * h holding its counts (turned into offsets here). */
static void radix_pass(const uint64_t *restrict a, uint64_t *restrict to, size_t n, int shift, size_t *h, size_t nb)
{
    size_t sum = 0;
    for (size_t d = 0; d < nb; d++) {
        size_t c = h[d];
        h[d] = sum;
        sum += c;
    }
    for (size_t i = 0; i < n; i++) to[h[(a[i] >> shift) & (nb - 1)]++] = a[i];
}

/* Float records: an LSD radix sort of (cell << 32 | f32_key(value)) orders the segment
 * by value and then, stably, by cell, so every cell's values come out sorted and its
 * percentiles are read off; the weekly values' 85th percentile is picked on the way,
 * while the whole segment is in value order. A digit on which every record agrees
 * (most exponent bits) costs no pass. The order statistics are the same values that
 * selection finds, so the results have the same bits. buf holds 2 x the records. */
static void reduce_segment_f32(const traffic *tr, const bucket *b, int64_t ls, uint64_t *buf, results *r)
{
    enum { D0 = 11, D1 = 11, D2 = 10 };
    static const int shift[4] = {0, D0, D0 + D1, 32};
    static const size_t nb[4] = {1u << D0, 1u << D1, 1u << D2, 256};
    size_t h0[1u << D0] = {0}, h1[1u << D1] = {0}, h2[1u << D2] = {0}, h3[256] = {0};
    size_t *h[4] = {h0, h1, h2, h3};
    const size_t n = (size_t)b->n;
    uint64_t *a = buf, *t = buf + n;
    size_t m = 0;
    for (const block *k = b->head; k; k = k->next)
        for (uint32_t i = 0; i < k->n; i++, m++) {
            uint64_t v = (uint64_t)k->cell[i] << 32 | f32_key(((const float *)k->val)[i]);
            a[m] = v;
            h0[v & (nb[0] - 1)]++, h1[(v >> shift[1]) & (nb[1] - 1)]++, h2[(v >> shift[2]) & (nb[2] - 1)]++;
            h3[v >> 32]++;
        }
    size_t start[CELLS + 1] = {0};
    for (int c = 0; c < CELLS; c++) start[c + 1] = start[c] + h3[c];
    double ffs = NAN;
    for (int d = 0; d < 4; d++) {
        if (d == 3 && !tr->ffs_in && start[WEEK_CELLS] > 0) { /* in value order: pick the weekly p85 */
            size_t lo, hi, seen = 0;
            double g, vlo = 0, vhi = 0;
            hb_percentile_ranks(start[WEEK_CELLS], 85, &lo, &hi, &g);
            for (size_t i = 0; i < n && seen <= hi; i++) {
                if ((a[i] >> 32) >= WEEK_CELLS) continue;
                if (seen == lo) vlo = f32_of_key(a[i]);
                if (seen == hi) vhi = f32_of_key(a[i]);
                seen++;
            }
            ffs = hb_lerp(vlo, vhi, g);
        }
        size_t most = 0;
        for (size_t i = 0; i < nb[d]; i++)
            if (h[d][i] > most) most = h[d][i];
        if (most == n) continue; /* one digit value: the pass would not move anything */
        radix_pass(a, t, n, shift[d], h[d], nb[d]);
        uint64_t *s = a;
        a = t, t = s;
    }

    double pv[HB_OPT_LIST_MAX];
    hb_xsum sum;
    for (int c = 0; c < CELLS; c++) {
        const uint64_t *v = a + start[c];
        size_t cn = start[c + 1] - start[c];
        memset(&sum, 0, sizeof sum);
        for (size_t i = 0; i < cn; i++) hb_xsum_add(&sum, f32_of_key(v[i]));
        for (int j = 0; j < tr->npct; j++) {
            size_t lo, hi;
            double g;
            if (cn == 0) {
                pv[j] = NAN;
                continue;
            }
            hb_percentile_ranks(cn, tr->pct[j], &lo, &hi, &g);
            pv[j] = hb_lerp(f32_of_key(v[lo]), f32_of_key(v[hi]), g);
        }
        store_cell(tr, ls, c, cn, &sum, pv, r);
    }
    store_segment(tr, b, ls, ffs, r);
}

/* Reduces every owned segment, in parallel over segments; frees the records as it goes. */
static int reduce_cells(traffic *tr, results *r)
{
    const int64_t nseg = tr->s1 - tr->s0;
    uint64_t most = 0;
    for (int64_t s = 0; s < nseg; s++) {
        bucket *b = &tr->buckets[s];
        if (b->tail) b->tail->n = b->used;
        if (b->n > most) most = b->n;
    }
    int rc = 0;
#pragma omp parallel num_threads(tr->ctx->threads)
    {
        /* float records are radix-sorted as 8-byte keys, in two buffers */
        double *x = malloc((size_t)(most ? most : 1) * (tr->narrow ? 2 : 1) * sizeof *x);
        if (!x) {
#pragma omp atomic write
            rc = HB_EINTERNAL;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t s = 0; s < nseg; s++)
            if (x && tr->narrow) reduce_segment_f32(tr, &tr->buckets[s], s, (uint64_t *)x, r);
            else if (x) reduce_segment_f64(tr, &tr->buckets[s], s, x, r);
        free(x);
    }
    if (rc) return hb_err_set(rc, "traffic", "out of memory for %llu values of one segment", (unsigned long long)most);
    return 0;
}

static int write_results(traffic *tr, const results *r, hb_out *out)
{
    const uint64_t S = (uint64_t)tr->S, s0 = (uint64_t)tr->s0, ns = (uint64_t)(tr->s1 - tr->s0);
    const uint64_t dw[3] = {S, 7, 24}, de[2] = {S, 24}, d1[1] = {S};
    HB_CALL(hb_out_group(out, "/traffic"));
    uint32_t *ids = hb_malloc(S * sizeof *ids);
    if (hb_agree(ids ? 0 : HB_EINTERNAL) != 0) return free(ids), HB_EINTERNAL;
    for (uint64_t s = 0; s < S; s++) ids[s] = (uint32_t)s;
    static const uint32_t dows[7] = {0, 1, 2, 3, 4, 5, 6};
    static const uint32_t hours[24] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
    int rc = hb_out_scale(out, "/traffic/segment", "segment", HB_U32, S, ids, "1");
    free(ids);
    HB_CALL(rc);
    HB_CALL(hb_out_attr_str(out, "/traffic/segment", "description", "road segment id"));
    HB_CALL(hb_out_scale(out, "/traffic/day_of_week", "day_of_week", HB_U32, 7, dows, "1"));
    HB_CALL(hb_out_attr_str(out, "/traffic/day_of_week", "description", "ISO day of week of local time, 0 = Monday"));
    HB_CALL(hb_out_scale(out, "/traffic/hour", "hour", HB_U32, 24, hours, "h"));
    HB_CALL(hb_out_attr_str(out, "/traffic/hour", "description", "hour of local wall-clock time"));

    char name[64], desc[160];
    struct {
        const char *path;
        hb_elem t;
        const void *data;
        const char *units, *desc;
    } grid[3 + HB_OPT_LIST_MAX] = {
        {"/traffic/count", HB_U64, r->count, "1", "valid observations on non-event days"},
        {"/traffic/mean_speed", HB_F64, r->mean, "km/h", "mean speed; NaN where count is 0"},
        {"/traffic/travel_time_index", HB_F64, r->tti, "1", "free_flow_speed / mean_speed; NaN where undefined"},
    };
    static char pnames[HB_OPT_LIST_MAX][64], pdesc[HB_OPT_LIST_MAX][96];
    int ng = 3;
    for (int j = 0; j < tr->npct; j++, ng++) {
        snprintf(pnames[j], sizeof pnames[j], "/traffic/speed_p%g", tr->pct[j]);
        snprintf(pdesc[j], sizeof pdesc[j], "%g-th percentile of speed (linear, type 7); NaN where count is 0",
                 tr->pct[j]);
        grid[ng].path = pnames[j], grid[ng].t = HB_F64, grid[ng].data = r->pct[j];
        grid[ng].units = "km/h", grid[ng].desc = pdesc[j];
    }
    for (int g = 0; g < ng; g++) {
        HB_CALL(hb_out_write(out, grid[g].path, grid[g].t, 3, dw, s0, ns, grid[g].data, grid[g].units, grid[g].desc));
        HB_CALL(hb_out_attach(out, grid[g].path, 0, "/traffic/segment"));
        HB_CALL(hb_out_attach(out, grid[g].path, 1, "/traffic/day_of_week"));
        HB_CALL(hb_out_attach(out, grid[g].path, 2, "/traffic/hour"));
    }
    HB_CALL(hb_out_write(out, "/traffic/free_flow_speed", HB_F64, 1, d1, s0, ns, r->ffs, "km/h",
                         tr->ffs_in ? "free-flow speed from the input's /segments/free_flow_speed"
                                    : "85th percentile of the segment's valid non-event speeds"));
    HB_CALL(hb_out_attach(out, "/traffic/free_flow_speed", 0, "/traffic/segment"));
    HB_CALL(hb_out_write(out, "/traffic/segment_count", HB_U64, 1, d1, s0, ns, r->seg_count, "1",
                         "valid observations of the segment, event days included"));
    HB_CALL(hb_out_attach(out, "/traffic/segment_count", 0, "/traffic/segment"));
    if (tr->has_events) {
        HB_CALL(hb_out_group(out, "/traffic/events"));
        HB_CALL(hb_out_write(out, "/traffic/events/count", HB_U64, 2, de, s0, ns, r->ev_count, "1",
                             "valid observations on event days"));
        HB_CALL(hb_out_write(out, "/traffic/events/mean_speed", HB_F64, 2, de, s0, ns, r->ev_mean, "km/h",
                             "mean speed on event days; NaN where count is 0"));
        for (int j = 0; j < tr->npct; j++) {
            snprintf(name, sizeof name, "/traffic/events/speed_p%g", tr->pct[j]);
            snprintf(desc, sizeof desc, "%g-th percentile of speed on event days; NaN where count is 0", tr->pct[j]);
            HB_CALL(hb_out_write(out, name, HB_F64, 2, de, s0, ns, r->ev_pct[j], "km/h", desc));
        }
        static const char *const evsets[] = {"count", "mean_speed"};
        for (int j = 0; j < 2 + tr->npct; j++) {
            if (j < 2) snprintf(name, sizeof name, "/traffic/events/%s", evsets[j]);
            else snprintf(name, sizeof name, "/traffic/events/speed_p%g", tr->pct[j - 2]);
            HB_CALL(hb_out_attach(out, name, 0, "/traffic/segment"));
            HB_CALL(hb_out_attach(out, name, 1, "/traffic/hour"));
        }
    }
    uint64_t c[4] = {tr->rows_total, tr->bad_speed, tr->bad_segment, tr->bad_time};
    MPI_Allreduce(MPI_IN_PLACE, c, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    HB_CALL(hb_out_attr_u64(out, "/traffic", "rows_total", c[0]));
    HB_CALL(hb_out_attr_u64(out, "/traffic", "rows_valid", c[0] - c[1] - c[2] - c[3]));
    HB_CALL(hb_out_attr_u64(out, "/traffic", "rows_invalid_speed", c[1]));
    HB_CALL(hb_out_attr_u64(out, "/traffic", "rows_invalid_segment", c[2]));
    HB_CALL(hb_out_attr_u64(out, "/traffic", "rows_invalid_time", c[3]));
    HB_CALL(hb_out_attr_str(out, "/traffic", "timezone", tr->tz));
    HB_CALL(hb_out_attr_f64(out, "/traffic", "percentiles", tr->pct, tr->npct));
    HB_INFO("traffic: %llu rows, %llu valid, invalid: %llu speed, %llu segment, %llu time; %lld segments",
            (unsigned long long)c[0], (unsigned long long)(c[0] - c[1] - c[2] - c[3]), (unsigned long long)c[1],
            (unsigned long long)c[2], (unsigned long long)c[3], (long long)tr->S);
    return 0;
}

static int traffic_finalize(void *state, hb_out *out)
{
    traffic *tr = state;
    results r = {0};
    int rc = alloc_results(&r, (size_t)(tr->s1 - tr->s0), tr->npct);
    if (rc == 0) rc = reduce_cells(tr, &r);
    rc = hb_agree(rc);
    if (rc == 0) rc = write_results(tr, &r, out);
    free_results(&r, tr->npct);
    return rc;
}

static void traffic_destroy(void *state)
{
    traffic *tr = state;
    if (!tr) return;
    hb_table_close(tr->tab);
    hb_tzmap_free(&tr->tzm);
    free(tr->ev), free(tr->ffs_in);
    free(tr->t), free(tr->seg), free(tr->spd), free(tr->key), free(tr->dest);
    free(tr->skey), free(tr->sval), free(tr->rkey), free(tr->rval), free(tr->lkey), free(tr->lval);
    free(tr->scount), free(tr->sdispl), free(tr->rcount), free(tr->rdispl), free(tr->tcount);
    free(tr->buckets);
    for (int th = 0; tr->arenas && th < tr->ctx->threads; th++)
        for (arena *a = tr->arenas[th], *next; a; a = next) next = a->next, free(a);
    free(tr->arenas);
    free(tr);
}

const hb_kernel hb_kernel_traffic = {
    .name = "traffic",
    .summary = "per segment x day of week x hour: count, mean and exact percentiles of speed",
    .options = traffic_options,
    .default_chunk_rows = 1 << 20,
    .validate = traffic_validate,
    .setup = traffic_setup,
    .map = traffic_map,
    .exchange = traffic_exchange,
    .finalize = traffic_finalize,
    .save = traffic_save,
    .load = traffic_load,
    .destroy = traffic_destroy,
};
