/* Traffic aggregation (DESIGN.md 4.1): per segment x local day of week x local hour,
 * count, mean and exact percentiles of speed; event days apart; free-flow speed and
 * travel time index.
 *
 * Exact percentiles need every value of a cell on one rank, so the map step tags each
 * valid row with its cell key (segment * 192 + cell) and the rank that owns its
 * segment (contiguous segment ranges), and exchange moves the (key, speed) records
 * there with MPI_Alltoallv after every round of chunks. The owner appends them to
 * per-segment buckets. finalize takes one segment at a time (in cache), groups its
 * values by cell with one counting pass, and computes order statistics by selection
 * within each cell (float records on 4-byte keys) and the mean from an exact sum: nothing depends on the order
 * in which records arrived, so any rank or thread count gives the same bits. */
#include "kernels/traffic/internal.h"

#include "core/hb.h"
#include "kernels/traffic/format.h"

#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_SEGMENTS 20000000   /* keeps cell keys (segment * CELLS + cell) within uint32 */
#define ARENA_BYTES (64u << 20)
#define BLOCK_MIN 32
#define BLOCK_MAX 16384
#define XCHG_BLOCK 1024 /* records per MPI block of the exchange */
/* map reads a chunk in tiles of MAP_TILE rows, so that a tile's columns are still in L2
 * when its rows are checked, keyed and copied to the send buffers: one pass over the
 * rows, where a whole chunk's columns (16 MB or more) made every pass wait on memory */
#define MAP_TILE 32768

static const hb_option traffic_options[] = {
    {"timezone", HB_OPT_STRING, "UTC", 1, 0, NULL, "IANA time zone of the local wall-clock time (DST-correct)"},
    {"percentiles", HB_OPT_LIST, "50, 85, 95", 0, 100, NULL, "exact speed percentiles per cell (type 7)"},
    {"max_speed", HB_OPT_FLOAT, "250", 0, 1e9, NULL, "speeds above this (km/h) are invalid"},
    {"table", HB_OPT_STRING, "/observations", 1, 0, NULL,
     "input table with time, segment, speed (a group of columns or a compound dataset, docs/tables.md)"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL, "the table's names for time, segment, speed (time:timestamp, speed:v)"},
    {"time_unit", HB_OPT_CHOICE, NULL, 1, 0, "s|ms|us|ns",
     "unit of the time column since 1970-01-01 UTC; default what the column states (pandas datetime64: ns; a "
     "units attribute such as CF's 'seconds since 1970-01-01'), else s; sub-second parts are floored"},
    {"segments", HB_OPT_INT, NULL, 1, MAX_SEGMENTS, NULL,
     "number of segments S; default the table's n_segments attribute, else max(segment)+1"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Not collective. Checks the time zone name and that no two percentiles name one dataset
 * (50 and 50.0: both speed_p50) when the job file is read (78). */
static int traffic_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    hb_colmap m;
    if (hb_colmap_parse(hb_opt_str(o, "columns"), &m, msg, len)) return *key = "columns", HB_ECONFIG;
    double pct[HB_OPT_LIST_MAX];
    int np = hb_opt_list(o, "percentiles", pct);
    for (int i = 0; i < np; i++)
        for (int j = 0; j < i; j++) {
            char a[64], b[64];
            snprintf(a, sizeof a, HB_TRAFFIC_SPEED_PCT_FMT, pct[i]);
            snprintf(b, sizeof b, HB_TRAFFIC_SPEED_PCT_FMT, pct[j]);
            if (strcmp(a, b) == 0) {
                *key = "percentiles";
                snprintf(msg, len, "percentiles: %g is listed twice (both name %s)", pct[i], strrchr(a, '/') + 1);
                return HB_ECONFIG;
            }
        }
    const char *tz = hb_opt_str(o, "timezone");
    if (!hb_tz_valid(tz)) {
        *key = "timezone";
        snprintf(msg, len, "unknown time zone '%s' (an IANA name like Europe/Berlin)", tz);
        return HB_ECONFIG;
    }
    return 0;
}

/* Collective. S from the option, the n_segments attribute, or a pass over the segment
 * column; *from says which, for the memory estimate's message. */
static int find_segments(traffic *tr, const char **from)
{
    hb_step_ctx *ctx = tr->ctx;
    double opt = hb_opt_num(ctx->opts, "segments");
    *from = "the option segments";
    tr->s_from = TRAFFIC_S_OPTION;
    if (!isnan(opt)) return tr->S = (int64_t)opt, 0;
    int64_t v;
    int present;
    HB_CALL(hb_table_attr_i64(tr->tab, "n_segments", &v, &present));
    if (present) {
        HB_CHECK(v >= 1 && v <= MAX_SEGMENTS, HB_EDATA, ctx->input, "attribute n_segments = %lld is out of range [1, %d]",
                 (long long)v, MAX_SEGMENTS);
        *from = "the attribute n_segments";
        tr->s_from = TRAFFIC_S_ATTR;
        return tr->S = v, 0;
    }
    int64_t n = ctx->n_rows, cr = ctx->chunk_rows, mx[2] = {-1, -1}; /* largest id below the limit, and at or above */
    int64_t *buf = hb_malloc((size_t)(n < cr ? (n > 0 ? n : 1) : cr) * sizeof *buf);
    if (!buf) return HB_EINTERNAL;
    int rc = 0;
    for (int64_t c = hb_rank; c < ctx->n_chunks && rc == 0; c += hb_size) {
        int64_t start, cnt;
        hb_chunk_range(c, cr, n, &start, &cnt);
        rc = hb_table_read(tr->tab, COL_SEGMENT, start, cnt, HB_ID, buf);
        for (int64_t i = 0; rc == 0 && i < cnt; i++) {
            int big = buf[i] >= MAX_SEGMENTS;
            if (buf[i] > mx[big]) mx[big] = buf[i];
        }
    }
    free(buf);
    HB_CALL(hb_agree(rc));
    MPI_Allreduce(MPI_IN_PLACE, mx, 2, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    HB_CHECK(mx[0] >= 0 || mx[1] < 0, HB_EDATA, ctx->input,
             "every segment id is at or above the limit of %d segments (the largest is %lld): renumber the segments "
             "densely from 0",
             MAX_SEGMENTS, (long long)mx[1]);
    /* no segment id at all (an empty site's table): S = 0 here, so that the site's partial
     * is valid and merges take S from the others; finalize refuses S = 0 */
    if (mx[1] >= 0)
        hb_warn("%s: segment ids up to %lld are at or above the limit of %d segments; their rows are invalid",
                ctx->input, (long long)mx[1], MAX_SEGMENTS);
    *from = "max(segment)+1";
    tr->S = mx[0] + 1;
    tr->s_from = TRAFFIC_S_MAX;
    return 0;
}

int traffic_reserve_memory(traffic *tr, int narrow, int64_t chunk_rows, const char *from)
{
    const hb_step_ctx *ctx = tr->ctx;
    const double S = (double)tr->S, P = hb_size, ns = ceil(S / P);
    const double cr = (double)(chunk_rows < ctx->n_rows ? chunk_rows : ctx->n_rows); /* pages touched */
    const double esz = narrow ? 4 : 8, npct = tr->npct;
    double per_seg = sizeof(bucket) + 8.0 * (WEEK_CELLS * (3 + npct) + 24 * (2 + npct) + 2);
    double fixed = ns * per_seg + 4 * S + cr * (8 + 8 + 8 + 4 + sizeof(int)) + 2 * (cr + P * XCHG_BLOCK) * (4 + esz);
    double records = (double)ctx->n_rows / P * (esz + 1) * 1.25;
    /* records beyond the budget are spilled (docs/spill.md); the rest must fit, with room
     * for a few rounds' records and the runs' read buffers */
    double least = 4 * (cr > 0 ? cr : 1) * (esz + 1) * 1.25 + 4 * (double)hb_spill_reader_bytes(narrow ? 8 : 16);
    double bytes = fixed + (records < least ? records : least);
    tr->budget = hb_mem_limit() - fixed;
    size_t ab = (size_t)(tr->budget / 16) & ~(size_t)0xfffff;
    tr->arena_bytes = ab >= ARENA_BYTES ? ARENA_BYTES : ab > (1u << 20) ? ab : (1u << 20);
    char cause[200], a[32], b[32];
    int sparse = tr->S > 16 && tr->S > 4 * ctx->n_rows;
    snprintf(cause, sizeof cause, "%s segments from %s%s%s rows", hb_fmt_count(a, (uint64_t)tr->S), from,
             sparse ? "; ids are sparse: " : ", ", hb_fmt_count(b, (uint64_t)ctx->n_rows));
    return hb_mem_reserve(bytes, traffic_where(tr), "the traffic grids (segment x day of week x hour)", cause,
                          sparse ? "renumber the segment ids densely from 0, or set segments = S to count larger ids "
                                   "as invalid"
                                 : "run on more ranks or hosts");
}

/* Not collective. The event days of /calendar/event_days, when present, as a bitmap of
 * local day numbers. */
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

/* Not collective. /segments/free_flow_speed, when present: one speed per segment. */
static int load_free_flow(traffic *tr)
{
    hb_in *in = tr->ctx->in;
    if (!hb_in_exists(in, "/segments/free_flow_speed")) return 0;
    int64_t n;
    HB_CALL(hb_in_read_array(in, "/segments/free_flow_speed", HB_F64, &n, (void **)&tr->ffs_in));
    HB_CHECK(n == tr->S, HB_EDATA, tr->ctx->input, "/segments/free_flow_speed has %lld values for %lld segments",
             (long long)n, (long long)tr->S);
    for (int64_t i = 0; i < n; i++) /* NaN: not known; -1 gave a negative travel time index */
        HB_CHECK(isnan(tr->ffs_in[i]) || (tr->ffs_in[i] > 0 && isfinite(tr->ffs_in[i])), HB_EDATA, tr->ctx->input,
                 "/segments/free_flow_speed[%lld] = %g is not a positive finite speed (NaN where it is not known)",
                 (long long)i, tr->ffs_in[i]);
    return 0;
}

/* Collective. Opens and checks the input, finds the segments, and sizes the buffers of
 * a chunk. */
int traffic_new(hb_step_ctx *ctx, void **state)
{
    traffic *tr = hb_calloc(1, sizeof *tr);
    if (!tr) return HB_EINTERNAL;
    *state = tr;
    tr->ctx = ctx;
    tr->npct = hb_opt_list(ctx->opts, "percentiles", tr->pct);
    tr->max_speed = hb_opt_num(ctx->opts, "max_speed");
    tr->tz = hb_opt_str(ctx->opts, "timezone");
    return hb_tz_select(tr->tz);
}

static int traffic_setup(hb_step_ctx *ctx, void **state)
{
    HB_CALL(traffic_new(ctx, state));
    traffic *tr = *state;
    char msg[256];
    if (hb_colmap_parse(hb_opt_str(ctx->opts, "columns"), &tr->cols, msg, sizeof msg))
        return hb_err_set(HB_ECONFIG, ctx->step_name, "%s", msg); /* validate saw it first */
    const char *cols[] = {hb_colmap_name(&tr->cols, "time"), hb_colmap_name(&tr->cols, "segment"),
                          hb_colmap_name(&tr->cols, "speed")};
    int rc = hb_table_open_any(ctx->in, hb_opt_str(ctx->opts, "table"), cols, 3, &tr->tab);
    /* string detector ids ("M25/4321A") are keys the aggregate kernel groups by */
    if (rc == 0 && hb_table_kind(tr->tab, COL_SEGMENT) == HB_COL_STRING)
        rc = hb_err_set(HB_EDATA, ctx->input, "segment column '%s' holds strings, where traffic numbers segments "
                        "0..S-1: the aggregate kernel groups by string keys (kernel = aggregate, by = segment, "
                        "day_of_week, hour, values = speed, stats = count, mean, p50, p85, p95; docs/aggregate.md)",
                        cols[COL_SEGMENT]);
    for (int k = 0; rc == 0 && k < 3; k++)
        if (hb_table_kind(tr->tab, k) == HB_COL_STRING)
            rc = hb_err_set(HB_EDATA, ctx->input, "column '%s' has string type; a number is needed", cols[k]);
    HB_CALL(hb_agree(rc));
    const char *unit;
    HB_CALL(hb_agree(hb_table_time_unit(tr->tab, COL_TIME, hb_opt_str(ctx->opts, "time_unit"), &unit)));
    tr->per_s = hb_time_unit_per_s(unit); /* NULL: seconds */
    ctx->n_rows = hb_table_rows(tr->tab);
    ctx->n_chunks = (ctx->n_rows + ctx->chunk_rows - 1) / ctx->chunk_rows;
    const char *from;
    HB_CALL(find_segments(tr, &from));
    HB_CALL(hb_agree(traffic_reserve_memory(tr, hb_table_exact_f32(tr->tab, COL_SPEED), ctx->chunk_rows, from)));
    rc = load_events(tr);
    if (rc == 0) rc = load_free_flow(tr);
    HB_CALL(hb_agree(rc));
    tr->narrow = hb_table_exact_f32(tr->tab, COL_SPEED);
    /* map converts the common stored types itself, in its loop over the rows, instead of
     * a pass of its own to int64 and double; other types are read converted */
    hb_raw_kind sk = hb_table_raw_kind(tr->tab, COL_SEGMENT), vk = hb_table_raw_kind(tr->tab, COL_SPEED);
    tr->seg_raw = sk == HB_RAW_U32 || sk == HB_RAW_I32 || sk == HB_RAW_I64 ? (int)sk : HB_RAW_OTHER;
    tr->spd_raw = vk == HB_RAW_F32 || vk == HB_RAW_F64 ? (int)vk : HB_RAW_OTHER;
    return traffic_alloc_state(tr, (size_t)ctx->chunk_rows);
}

int traffic_alloc_state(traffic *tr, size_t cr)
{
    hb_step_ctx *ctx = tr->ctx;
    int rc = 0;
    hb_range_of(tr->S, hb_rank, hb_size, &tr->s0, &tr->s1);
    size_t P = (size_t)hb_size;
    const size_t tile = cr < MAP_TILE ? (cr ? cr : 1) : MAP_TILE; /* map reads times and speeds a tile at a time */
    tr->t = hb_malloc(tile * sizeof *tr->t);
    tr->seg = hb_malloc((cr ? cr : 1) * sizeof *tr->seg);
    tr->spd = hb_malloc(tile * sizeof *tr->spd);
    tr->esz = tr->narrow ? sizeof(float) : sizeof(double);
    /* a chunk's records, and each destination's part padded to whole blocks */
    const size_t scap = cr + P * XCHG_BLOCK;
    rc = hb_xchg_reserve((void **)&tr->skey, &tr->skcap, scap, sizeof *tr->skey);
    if (rc == 0) rc = hb_xchg_reserve(&tr->sval, &tr->svcap, scap, tr->esz);
    if (rc == 0) rc = hb_xchg_init(&tr->xc, XCHG_BLOCK);
    tr->buckets = hb_calloc((size_t)(tr->s1 - tr->s0), sizeof *tr->buckets);
    tr->arenas = hb_calloc((size_t)ctx->threads, sizeof *tr->arenas);
    tr->tstride = (P + 7) / 8 * 8;
    tr->tcount = hb_calloc(2 * tr->tstride * (size_t)ctx->threads, sizeof *tr->tcount);
    if (rc == 0 && !(tr->t && tr->seg && tr->spd && tr->tcount && tr->buckets && tr->arenas))
        rc = HB_EINTERNAL;
    return hb_agree(rc);
}

/* Not collective. Bytes (rounded up to 16) from the thread's arena list, a new arena
 * when the first is full: one of the spare arenas a spill emptied when one is big enough
 * (their pages are touched already), else a new one; NULL when out of memory, recording
 * nothing (threads call it). */
static void *arena_alloc(arena **list, arena **spare, size_t bytes, size_t arena_bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    arena *a = *list;
    if (!a || a->size - a->used < bytes) {
        a = NULL;
        if (*spare) {
#pragma omp critical(traffic_spare)
            if (*spare && (*spare)->size >= bytes) a = *spare, *spare = a->next;
        }
        if (!a) {
            size_t size = bytes > arena_bytes ? bytes : arena_bytes;
            a = malloc(sizeof *a + size); /* not hb_malloc: called from threads; the caller reports */
            if (!a) return NULL;
            a->size = size;
        }
        a->next = *list, a->used = 0;
        *list = a;
    }
    void *p = a->data + a->used;
    a->used += bytes;
    return p;
}

/* Not collective. Starts a new tail block for b, twice the size of the last one (a
 * busy segment has few blocks, a quiet one wastes little). */
int traffic_grow(traffic *tr, arena **list, bucket *b)
{
    block *t = b->tail;
    uint32_t cap = t ? (t->cap < BLOCK_MAX ? t->cap * 2 : BLOCK_MAX) : BLOCK_MIN;
    block *nb = arena_alloc(list, &tr->spare, sizeof *nb + 64 + (size_t)cap * (tr->esz + 1),
                            tr->arena_bytes ? tr->arena_bytes : ARENA_BYTES);
    if (!nb) return HB_EINTERNAL;
    nb->next = NULL, nb->n = 0, nb->cap = cap;
    /* values on a cache line (arenas give 16-byte multiples): append writes whole lines */
    nb->val = (void *)(((uintptr_t)(nb + 1) + 63) & ~(uintptr_t)63);
    nb->cell = (uint8_t *)nb->val + (size_t)cap * tr->esz;
    if (t) t->n = b->used, t->next = nb;
    else b->head = nb;
    b->tail = nb;
    b->val = nb->val, b->cell = nb->cell, b->used = 0, b->cap = cap;
    return 0;
}

/* Filing records into buckets spreads writes over a bucket and two tail lines per owned
 * segment, more than a core's caches hold at many thousands of segments. So append goes
 * in two levels there: records are first partitioned into blocks of 2^shift consecutive
 * segments (at most APPEND_BLOCKS blocks: that many sequential write streams), then
 * filed block by block, each block's buckets in L1. */
#define APPEND_BLOCKS 256
#define APPEND_SHIFT_MIN 6 /* 64 segments a block at least */
/* up to this many owned segments, buckets and tails fit in L2 and records are filed
 * directly: the partition would cost more than it saves (docs/traffic.md) */
#define APPEND_DIRECT 4096

/* Each owned segment's tail lines are staged (a line of values, half a line of cell
 * bytes, in its stage slot), and a staged line goes to the tail block whole, with
 * non-temporal stores: no read of the fresh line first, no wait on one. A block's values
 * and cells start on a line and hold a multiple of 32 records, so a line filled in the
 * stage is a line of the block. The stage holds the tail's last partial lines too (read
 * in before the records, written back after), so blocks hold every record outside
 * append. */
#define STAGE_CELLS 32
/* A segment's stage slot, two lines: its tail's partial lines, and the tail state that
 * filing a record reads and writes (a copy of the bucket's, written back after), so a
 * record touches one slot and not a bucket besides. */
typedef struct stage_slot {
    unsigned char line[64];
    uint8_t cells[STAGE_CELLS];
    void *val;
    uint8_t *cell;
    uint32_t used, cap;
    uint64_t n;
} stage_slot;
#define STAGE sizeof(stage_slot)
#if defined(__SSE2__)
static inline void stream_line(void *dst, const void *src, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 16)
        _mm_stream_si128((__m128i *)((char *)dst + o), _mm_load_si128((const __m128i *)((const char *)src + o)));
}
#define STREAM_FENCE() _mm_sfence() /* streaming stores are weakly ordered */
#else
static inline void stream_line(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
#define STREAM_FENCE() ((void)0)
#endif

/* One part's records of segments [lo, hi) filed directly into their buckets, through
 * the stage. */
#define APPEND_LOOP(T)                                                                 \
    do {                                                                               \
        enum { VPL = 64 / sizeof(T) };                                                 \
        for (uint32_t s = lo; s < hi; s++) { /* the tails into the stage */            \
            const bucket *b = &buckets[s];                                             \
            stage_slot *st = &stage[s];                                                \
            uint32_t u = b->used;                                                      \
            st->val = b->val, st->cell = b->cell, st->used = u, st->cap = b->cap, st->n = b->n; \
            if (!b->tail) continue;                                                    \
            memcpy(st->line, (T *)b->val + (u & ~(VPL - 1)), (u & (VPL - 1)) * sizeof(T)); \
            memcpy(st->cells, b->cell + (u & ~(STAGE_CELLS - 1)), u & (STAGE_CELLS - 1)); \
        }                                                                              \
        for (size_t i = 0; i < n; i++) {                                               \
            uint32_t k = key[i] - base, s = k / CELLS;                                 \
            if (s < lo || s >= hi) continue;                                           \
            stage_slot *st = &stage[s];                                                \
            uint32_t u = st->used;                                                     \
            if (u == st->cap) {                                                        \
                bucket *b = &buckets[s];                                               \
                b->used = u, b->n = st->n;                                             \
                if (traffic_grow(tr, list, b)) {                                       \
                    failed = 1;                                                        \
                    break;                                                             \
                }                                                                      \
                st->val = b->val, st->cell = b->cell, st->cap = b->cap, u = 0;         \
            }                                                                          \
            ((T *)st->line)[u & (VPL - 1)] = ((const T *)val)[i];                      \
            st->cells[u & (STAGE_CELLS - 1)] = (uint8_t)(k - s * CELLS);               \
            u++;                                                                       \
            if ((u & (VPL - 1)) == 0) stream_line((T *)st->val + u - VPL, st->line, 64); \
            if ((u & (STAGE_CELLS - 1)) == 0) stream_line(st->cell + u - STAGE_CELLS, st->cells, STAGE_CELLS); \
            st->used = u;                                                              \
            st->n++;                                                                   \
        }                                                                              \
        STREAM_FENCE();                                                                \
        for (uint32_t s = lo; s < hi; s++) { /* and back: partial lines stay staged */ \
            bucket *b = &buckets[s];                                                   \
            const stage_slot *st = &stage[s];                                          \
            uint32_t u = st->used;                                                     \
            b->used = u, b->n = st->n;                                                 \
            if (!b->tail) continue;                                                    \
            memcpy((T *)b->val + (u & ~(VPL - 1)), st->line, (u & (VPL - 1)) * sizeof(T)); \
            memcpy(b->cell + (u & ~(STAGE_CELLS - 1)), st->cells, u & (STAGE_CELLS - 1)); \
        }                                                                              \
    } while (0)

/* Not collective. The block shift for nseg owned segments: at most APPEND_BLOCKS blocks. */
static unsigned append_shift(uint32_t nseg)
{
    unsigned sh = APPEND_SHIFT_MIN;
    while ((nseg >> sh) >= APPEND_BLOCKS) sh++;
    return sh;
}

/* One part's blocks [b0, b1) of records key/val (T values) partitioned into tk/tv at the
 * block starts at[], then filed into their buckets. */
#define APPEND_PART(T)                                                                 \
    do {                                                                               \
        const T *v = val;                                                              \
        T *w = *tval;                                                                  \
        for (size_t i = 0; i < n; i++) {                                               \
            uint32_t b = ((key[i] - base) / CELLS) >> sh;                              \
            if (b < b0 || b >= b1 || key[i] - base >= lim) continue;                   \
            size_t q = at[b]++;                                                        \
            tk[q] = key[i];                                                            \
            w[q] = v[i];                                                               \
        }                                                                              \
        size_t p = start;                                                              \
        for (uint32_t bl = b0; bl < b1 && !failed; bl++) {                             \
            for (; p < at[bl]; p++) {                                                  \
                uint32_t k = tk[p] - base, s = k / CELLS;                              \
                bucket *bk = &buckets[s];                                              \
                if (bk->used == bk->cap && traffic_grow(tr, list, bk)) {               \
                    failed = 1;                                                        \
                    break;                                                             \
                }                                                                      \
                ((T *)bk->val)[bk->used] = w[p];                                       \
                bk->cell[bk->used++] = (uint8_t)(k - s * CELLS);                       \
                bk->n++;                                                               \
            }                                                                          \
        }                                                                              \
    } while (0)

/* Not collective. Appends n records (keys of owned segments; map's filler key
 * UINT32_MAX is skipped) to their segments' buckets: directly up to APPEND_DIRECT owned segments, else through *tkey and *tval
 * (grown to n records: the exchange buffers not in use) as the partition by block. Each
 * thread takes a fixed range of segments or blocks, so no two threads touch one bucket
 * or arena. */
static int append(traffic *tr, const uint32_t *key, const void *val, size_t n, uint32_t **tkey, size_t *tkcap,
                  void **tval, size_t *tvcap)
{
    if (n == 0) return 0;
    const uint32_t base = (uint32_t)(tr->s0 * CELLS), nseg = (uint32_t)(tr->s1 - tr->s0), lim = nseg * CELLS;
    const int nthreads = tr->ctx->threads;
    bucket *buckets = tr->buckets;
    int failed = 0;
    if (nseg <= APPEND_DIRECT) {
        if (!tr->stage) tr->stage = aligned_alloc(64, (size_t)nseg * STAGE); /* whole lines */
        if (!tr->stage) return hb_err_set(HB_EINTERNAL, "traffic", "out of memory staging records");
        stage_slot *stage = tr->stage;
#pragma omp parallel for schedule(static, 1) num_threads(nthreads) reduction(| : failed)
        for (int part = 0; part < nthreads; part++) {
            uint32_t lo = (uint32_t)((uint64_t)nseg * (uint64_t)part / (uint64_t)nthreads);
            uint32_t hi = (uint32_t)((uint64_t)nseg * (uint64_t)(part + 1) / (uint64_t)nthreads);
            arena **list = &tr->arenas[part];
            if (tr->narrow) APPEND_LOOP(float);
            else APPEND_LOOP(double);
        }
        if (failed) return hb_err_set(HB_EINTERNAL, "traffic", "out of memory storing records");
        return 0;
    }
    HB_CALL(hb_xchg_reserve((void **)tkey, tkcap, n, sizeof **tkey));
    HB_CALL(hb_xchg_reserve(tval, tvcap, n, tr->esz));
    const unsigned sh = append_shift(nseg);
    const uint32_t nb = (nseg >> sh) + 1;
    uint32_t *tk = *tkey;
    size_t at[APPEND_BLOCKS + 1] = {0}; /* records of block b in at[b + 1], then block starts */
#pragma omp parallel num_threads(nthreads) reduction(| : failed)
    {
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int part = me; part < nthreads; part += nt) {
            uint32_t b0 = (uint32_t)((uint64_t)nb * (uint64_t)part / (uint64_t)nthreads);
            uint32_t b1 = (uint32_t)((uint64_t)nb * (uint64_t)(part + 1) / (uint64_t)nthreads);
            for (size_t i = 0; i < n; i++) {
                uint32_t b = ((key[i] - base) / CELLS) >> sh;
                if (b >= b0 && b < b1 && key[i] - base < lim) at[b + 1]++;
            }
        }
#pragma omp barrier
#pragma omp single
        for (uint32_t b = 0; b < nb; b++) at[b + 1] += at[b];
        for (int part = me; part < nthreads; part += nt) {
            uint32_t b0 = (uint32_t)((uint64_t)nb * (uint64_t)part / (uint64_t)nthreads);
            uint32_t b1 = (uint32_t)((uint64_t)nb * (uint64_t)(part + 1) / (uint64_t)nthreads);
            size_t start = at[b0]; /* the part's records; at[b] becomes the end of block b */
            arena **list = &tr->arenas[part];
            if (tr->narrow) APPEND_PART(float);
            else APPEND_PART(double);
        }
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "traffic", "out of memory storing records");
    return 0;
}

/* Not collective. The owner of segment s (0 <= s < S) among P ranks: up to MAP_FIRSTS
 * ranks by counting the ranks' first segments at or below s (no division), else
 * hb_owner_of. */
#define MAP_FIRSTS 8
#define MAP_OWNER(s) (P == 1 ? 0 : P <= MAP_FIRSTS ? owner_small(firsts, P, s) : hb_owner_of(s, S, P))
static inline int owner_small(const int64_t *firsts, int P, int64_t s)
{
    int d = 0;
    for (int r = 1; r < MAP_FIRSTS; r++) d += r < P && s >= firsts[r];
    return d;
}

/* One part's rows [lo, hi) of the chunk: counts in cnt, per destination, the rows with a
 * segment id in [0, S), each of which map sends one record for (see MAP_ROWS). */
#define COUNT_ROWS(SEG_T)                                                                  \
    do {                                                                                   \
        const SEG_T *seg = segbuf;                                                         \
        if (P <= 2) { /* counts in registers, no chain through memory: vectorized */      \
            size_t all = 0, up = 0;                                                        \
            for (int64_t i = lo; i < hi; i++) {                                            \
                int64_t s = (int64_t)seg[i];                                               \
                size_t ok = s >= 0 && s < S;                                               \
                all += ok, up += ok & (s >= split);                                        \
            }                                                                              \
            cnt[0] += all - up;                                                            \
            if (P == 2) cnt[1] += up;                                                      \
            break;                                                                         \
        }                                                                                  \
        for (int64_t i = lo; i < hi; i++) {                                                \
            int64_t s = (int64_t)seg[i];                                                   \
            if (s >= 0 && s < S) cnt[MAP_OWNER(s)]++;                                      \
        }                                                                                  \
    } while (0)

/* One part's rows [lo, hi) of a tile (its time and speed, and its segment ids from
 * segoff on in segbuf: the chunk's when counted, else the tile's): checks each row,
 * counts the invalid ones by reason, and writes the record of a valid one (cell key,
 * speed as VAL_T, -0.0 as +0.0: equal values, equal bits) where PUT puts it. The segment and speed columns as read (SEG_T, SPD_T: the stored types,
 * or int64 and double when read converted). When counted, a row with a valid segment id
 * but another fault still fills its slot, with the key UINT32_MAX that append skips, so
 * that every destination's part is exactly as long as the count pass said. */
#define MAP_ROWS(SEG_T, SPD_T, VAL_T, PUT)                                                 \
    do {                                                                                   \
        const SEG_T *seg = (const SEG_T *)segbuf + segoff;                                 \
        const SPD_T *spd = spdbuf;                                                         \
        uint32_t *sk = tr->skey, *ok = tr->skey + otop;                                    \
        VAL_T *sv = tr->sval, *ov = (VAL_T *)tr->sval + otop;                              \
        (void)ok, (void)ov;                                                                \
        for (int64_t i = lo; i < hi; i++) {                                                \
            int64_t s = (int64_t)seg[i];                                                   \
            double v = (double)spd[i];                                                     \
            int tbad = t[i] == INT64_MIN;                                                  \
            if (s < 0 || s >= S) {                                                         \
                bad_time += tbad, bad_segment += !tbad;                                    \
                continue;                                                                  \
            }                                                                              \
            uint32_t k = UINT32_MAX;                                                       \
            if (tbad) {                                                                    \
                bad_time++;                                                                \
            } else if (!(v >= 0 && v <= maxs)) { /* also rejects NaN */                    \
                bad_speed++;                                                               \
            } else {                                                                       \
                uint64_t tu = (uint64_t)(t[i] - tbase), di = tu / 86400;                   \
                const hb_tzday *dd = &tdays[di];                                           \
                int32_t off = (int32_t)(tu - di * 86400) < dd->trans ? dd->off_a : dd->off_b; \
                uint64_t hq = (uint64_t)(t[i] - lbase + off) / 3600; /* hours since lday0 */ \
                k = (uint32_t)s * CELLS + (uint32_t)(hq % WEEK_CELLS); /* lday0 a Monday */ \
                if (ev) {                                                                  \
                    int64_t e = lday0 + (int64_t)(hq / 24) - ev0;                          \
                    if (e >= 0 && e < evn && ev[e]) k = (uint32_t)s * CELLS + WEEK_CELLS + (uint32_t)(hq % 24); \
                }                                                                          \
            }                                                                              \
            if (k == UINT32_MAX && !counted) continue;                                     \
            PUT(VAL_T);                                                                    \
        }                                                                                  \
    } while (0)
/* MAP_ROWS' record at its destination's fill position o[d] */
#define PUT_LAID(VAL_T)                                                                    \
    do {                                                                                   \
        size_t p = o[MAP_OWNER(s)]++;                                                      \
        sk[p] = k;                                                                         \
        sv[p] = k == UINT32_MAX ? (VAL_T)0 : (VAL_T)(v + 0.0);                             \
    } while (0)
/* MAP_ROWS' record when apart (see traffic_map): to the own records, down from the send
 * buffer's top (at -no from otop), when this rank owns the segment, else to the records
 * to send, up from its start (at ns). Both are written and one advances: whose a segment
 * is comes in random order, and a mispredicted branch costs about what the row does. */
#define PUT_APART(VAL_T)                                                                   \
    do {                                                                                   \
        const size_t own = (uint64_t)(s - s0) < nown;                                      \
        const VAL_T x = (VAL_T)(v + 0.0);                                                  \
        ok[-(ptrdiff_t)no] = k, ov[-(ptrdiff_t)no] = x, no += own;                         \
        sk[ns] = k, sv[ns] = x, ns += !own;                                                \
    } while (0)
/* MAP_ROWS for the column types and record width at hand */
#define MAP_TYPED(PUT)                                                                     \
    do {                                                                                   \
        if (tr->narrow) {                                                                  \
            if (segk == HB_RAW_U32 && f32) MAP_ROWS(uint32_t, float, float, PUT);          \
            else if (segk == HB_RAW_U32) MAP_ROWS(uint32_t, double, float, PUT);           \
            else if (segk == HB_RAW_I32 && f32) MAP_ROWS(int32_t, float, float, PUT);      \
            else if (segk == HB_RAW_I32) MAP_ROWS(int32_t, double, float, PUT);            \
            else if (f32) MAP_ROWS(int64_t, float, float, PUT);                            \
            else MAP_ROWS(int64_t, double, float, PUT);                                    \
        } else {                                                                           \
            if (segk == HB_RAW_U32) MAP_ROWS(uint32_t, double, double, PUT);               \
            else if (segk == HB_RAW_I32) MAP_ROWS(int32_t, double, double, PUT);           \
            else MAP_ROWS(int64_t, double, double, PUT);                                   \
        }                                                                                  \
    } while (0)

/* Not collective. Part p's rows [*lo, *hi) of a tile of tn rows, of nparts parts (the
 * same split in the count pass and in the tiles). */
static inline void tile_part(int64_t tn, int p, int nparts, int64_t *lo, int64_t *hi)
{
    *lo = tn * p / nparts, *hi = tn * (p + 1) / nparts;
}

/* Not collective. Reads chunk c (segment and speed in their stored types when map
 * converts them itself, see setup), checks and keys its rows, and lays out the valid
 * ones by owner for the next exchange. With one rank and one thread the records are
 * packed as they come; with two ranks and one thread those to send are packed from the
 * send buffer's start and the own ones from its top down (two streams, no count);
 * else a first pass over the chunk's segment ids counts each part's records per
 * destination, so that the tiles write them in place. */
static int traffic_map(void *state, int64_t c)
{
    traffic *tr = state;
    hb_step_ctx *ctx = tr->ctx;
    int64_t start, n;
    hb_chunk_range(c, ctx->chunk_rows, ctx->n_rows, &start, &n);
    const int P = hb_size, nthreads = ctx->threads;
    const int64_t S = tr->S, s0 = tr->s0;
    /* one thread and one other rank: the records to send go to the send buffer from its
     * start as they come, and the own ones from its top down (the exchange files them
     * first), with no count pass */
    const int apart = P == 2 && nthreads == 1, counted = !apart && (P > 1 || nthreads > 1);
    const uint64_t nown = (uint64_t)(tr->s1 - tr->s0);
    const size_t otop = (tr->skcap < tr->svcap ? tr->skcap : tr->svcap) - 1;
    size_t no = 0, ns = 0; /* apart: own records, records to send */
    const int segk = tr->seg_raw, f32 = tr->spd_raw == HB_RAW_F32;
    int64_t firsts[MAP_FIRSTS] = {0};
    for (int r = 0; r < P && r < MAP_FIRSTS; r++) firsts[r] = S * r / P; /* hb_range_of's lower ends */
    const int64_t split = P == 2 ? firsts[1] : S; /* at two ranks, rank 1's first segment */
    const void *segbuf = tr->seg;
    hb_xchg *xc = &tr->xc;
    const size_t ts = tr->tstride;
    size_t *off = tr->tcount + (size_t)nthreads * ts; /* [part][dest] fill positions */
    if (counted) {
        /* the ids read a tile at a time too, and counted while in L2 */
        const size_t segsz = segk == HB_RAW_U32 || segk == HB_RAW_I32 ? 4 : 8;
        for (int th = 0; th < nthreads; th++) memset(tr->tcount + (size_t)th * ts, 0, (size_t)P * sizeof *tr->tcount);
        for (int64_t t0 = 0; t0 < n; t0 += MAP_TILE) {
            const int64_t tn = n - t0 < MAP_TILE ? n - t0 : MAP_TILE;
            void *at = (char *)tr->seg + (size_t)t0 * segsz;
            if (segk != HB_RAW_OTHER) HB_CALL(hb_table_read_raw(tr->tab, COL_SEGMENT, start + t0, tn, at));
            else HB_CALL(hb_table_read(tr->tab, COL_SEGMENT, start + t0, tn, HB_ID, at));
#pragma omp parallel num_threads(nthreads)
            for (int part = omp_get_thread_num(); part < nthreads; part += omp_get_num_threads()) {
                size_t *cnt = tr->tcount + (size_t)part * ts;
                int64_t lo, hi;
                tile_part(tn, part, nthreads, &lo, &hi);
                lo += t0, hi += t0;
                if (segk == HB_RAW_U32) COUNT_ROWS(uint32_t);
                else if (segk == HB_RAW_I32) COUNT_ROWS(int32_t);
                else COUNT_ROWS(int64_t);
            }
        }
        /* each part's records go to its own slice of every destination's part, so the
         * send buffer is filled in parallel without atomics */
        for (int d = 0; d < P; d++) {
            xc->scount[d] = 0;
            for (int th = 0; th < nthreads; th++) xc->scount[d] += tr->tcount[(size_t)th * ts + (size_t)d];
        }
        HB_CALL(hb_xchg_layout(xc)); /* fits: setup sized the buffers for a chunk's padded parts */
        for (int d = 0; d < P; d++) {
            size_t pos = xc->sdispl[d];
            for (int th = 0; th < nthreads; th++) {
                off[(size_t)th * ts + (size_t)d] = pos;
                pos += tr->tcount[(size_t)th * ts + (size_t)d];
            }
        }
    } else {
        off[0] = 0;
    }

    const double maxs = tr->max_speed;
    const uint8_t *ev = tr->ev;
    const int64_t ev0 = tr->ev_day0, evn = tr->ev_ndays;
    uint64_t bad_speed = 0, bad_segment = 0, bad_time = 0;
    for (int64_t t0 = 0; t0 < n; t0 += MAP_TILE) {
        const int64_t tn = n - t0 < MAP_TILE ? n - t0 : MAP_TILE;
        HB_CALL(hb_table_read_time(tr->tab, COL_TIME, start + t0, tn, tr->per_s, tr->t, tr->t)); /* seconds, 1900-2200 */
        if (!counted && segk != HB_RAW_OTHER) HB_CALL(hb_table_read_raw(tr->tab, COL_SEGMENT, start + t0, tn, tr->seg));
        else if (!counted) HB_CALL(hb_table_read(tr->tab, COL_SEGMENT, start + t0, tn, HB_ID, tr->seg));
        if (tr->spd_raw != HB_RAW_OTHER) HB_CALL(hb_table_read_raw(tr->tab, COL_SPEED, start + t0, tn, tr->spd));
        else HB_CALL(hb_table_read(tr->tab, COL_SPEED, start + t0, tn, HB_F64, tr->spd));
        const int64_t *t = tr->t;
        int64_t tmin = INT64_MAX, tmax = INT64_MIN;
#pragma omp simd reduction(min : tmin) reduction(max : tmax)
        for (int64_t i = 0; i < tn; i++) {
            int64_t v = t[i] == INT64_MIN ? INT64_MAX : t[i];
            tmin = v < tmin ? v : tmin;
            tmax = t[i] > tmax ? t[i] : tmax;
        }
        if (tmax != INT64_MIN) HB_CALL(hb_tzmap_cover(&tr->tzm, tmin, tmax));
        /* times relative to the first covered UTC day (tbase, the map's day0) and local
         * times relative to a Monday (lday0) two days or more before it (offsets are
         * within a day): both non-negative, so the divisions are unsigned ones by
         * constants, and a local time's weekly cell is its hours since lday0 mod 168 */
        const hb_tzday *tdays = tr->tzm.days;
        const int64_t tbase = tr->tzm.day0 * 86400, lb = tr->tzm.day0 - 2;
        const int64_t lday0 = lb - (lb % 7 + 7 + 3) % 7, lbase = lday0 * 86400; /* 1970-01-01 was a Thursday */
        const void *spdbuf = tr->spd;
        const int64_t segoff = counted ? t0 : 0; /* seg[segoff + i] is the tile's row i */
        if (apart) {
            const int64_t lo = 0, hi = tn;
            MAP_TYPED(PUT_APART);
            continue;
        }
#pragma omp parallel num_threads(nthreads) reduction(+ : bad_speed, bad_segment, bad_time)
        for (int part = omp_get_thread_num(); part < nthreads; part += omp_get_num_threads()) {
            size_t *o = off + (size_t)part * ts;
            int64_t lo, hi;
            tile_part(tn, part, nthreads, &lo, &hi);
            MAP_TYPED(PUT_LAID);
        }
    }
    if (apart) {
        tr->on = no, tr->otop = otop;
        xc->scount[hb_rank] = 0, xc->scount[1 - hb_rank] = ns;
        HB_CALL(hb_xchg_layout(xc));
    } else if (!counted) {
        xc->scount[0] = off[0];
        HB_CALL(hb_xchg_layout(xc));
    }
    tr->rows_total += (uint64_t)n;
    tr->bad_speed += bad_speed;
    tr->bad_segment += bad_segment;
    tr->bad_time += bad_time;
    return 0;
}

/* Not collective. Moves the records loaded from a checkpoint into the send buffers, by
 * destination. */
static int stage_loaded(traffic *tr)
{
    const int P = hb_size;
    hb_xchg *xc = &tr->xc;
    memset(xc->scount, 0, (size_t)P * sizeof *xc->scount);
    for (size_t i = 0; i < tr->ln; i++) xc->scount[hb_owner_of(tr->lkey[i] / CELLS, tr->S, P)]++;
    HB_CALL(hb_xchg_layout(xc));
    HB_CALL(hb_xchg_reserve((void **)&tr->skey, &tr->skcap, xc->stotal, sizeof *tr->skey));
    HB_CALL(hb_xchg_reserve(&tr->sval, &tr->svcap, xc->stotal, tr->esz));
    size_t *pos = tr->tcount; /* P fill positions: tcount holds at least 2 P */
    memcpy(pos, xc->sdispl, (size_t)P * sizeof *pos);
    for (size_t i = 0; i < tr->ln; i++) {
        size_t p = pos[hb_owner_of(tr->lkey[i] / CELLS, tr->S, P)]++;
        tr->skey[p] = tr->lkey[i];
        memcpy((char *)tr->sval + p * tr->esz, (char *)tr->lval + i * tr->esz, tr->esz);
    }
    free(tr->lkey), free(tr->lval);
    tr->lkey = NULL, tr->lval = NULL, tr->ln = tr->lcap = 0;
    return 0;
}

/* Collective. Sends this round's records (or those loaded from a checkpoint) to the
 * ranks that own their segments and appends the ones received to the buckets. */
static int traffic_exchange(void *state)
{
    traffic *tr = state;
    hb_xchg *xc = &tr->xc;
    int orc = 0;
    if (tr->on) { /* map's own records, below the send buffer's top, filed first */
        const size_t at = tr->otop + 1 - tr->on;
        orc = append(tr, tr->skey + at, (char *)tr->sval + at * tr->esz, tr->on, &tr->rkey, &tr->rkcap, &tr->rval,
                     &tr->rvcap);
        tr->on = 0;
    }
    HB_CALL(hb_agree(orc ? orc : tr->ln ? stage_loaded(tr) : 0));
    int rc = hb_xchg_layout(xc); /* again: a rank that mapped nothing since the last round sends nothing */
    if (hb_size == 1) {
        if (rc == 0) rc = append(tr, tr->skey, tr->sval, xc->scount[0], &tr->rkey, &tr->rkcap, &tr->rval, &tr->rvcap);
    } else {
        HB_CALL(hb_agree(rc));
        /* the records this rank owns itself go to the buckets from the send buffer (the
         * receive buffers the scratch), before the others travel: no copy through MPI */
        const size_t own = xc->sdispl[hb_rank];
        rc = append(tr, tr->skey + own, (char *)tr->sval + own * tr->esz, xc->scount[hb_rank], &tr->rkey, &tr->rkcap,
                    &tr->rval, &tr->rvcap);
        hb_xchg_keep_own(xc);
        const hb_xchg_array a[2] = {{tr->skey, (void **)&tr->rkey, &tr->rkcap, sizeof *tr->skey},
                                    {tr->sval, &tr->rval, &tr->rvcap, tr->esz}};
        HB_CALL(hb_xchg_run(xc, a, 2));
        if (rc == 0) rc = append(tr, tr->rkey, tr->rval, xc->received, &tr->skey, &tr->skcap, &tr->sval, &tr->svcap);
    }
    memset(xc->scount, 0, (size_t)hb_size * sizeof *xc->scount);
    if (rc == 0) rc = traffic_spill_check(tr);
    return hb_agree(rc);
}

/* Not collective. traffic_reduce of a batch of segments, for traffic_runs_batches. */
static int reduce_batch(traffic *tr, int64_t a, int64_t b, void *user)
{
    return traffic_reduce(tr, user, a, b);
}

/* Collective. Reduces the owned segments (with the runs they spilled, merged) and writes
 * /traffic. */
static int traffic_finalize(void *state, hb_out *out)
{
    traffic *tr = state;
    HB_CHECK(tr->S > 0, HB_EDATA, traffic_where(tr), "no valid segment id in the table, and no n_segments attribute");
    uint64_t c[4] = {tr->rows_total, tr->bad_speed, tr->bad_segment, tr->bad_time};
    MPI_Allreduce(MPI_IN_PLACE, c, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    char why[200], a[32], b[32], d[32], e[32];
    snprintf(why, sizeof why, "%s with a segment id outside [0, %s), %s with a speed outside [0, %g] or NaN, %s without a time",
             hb_fmt_count(a, c[2]), hb_fmt_count(b, (uint64_t)tr->S), hb_fmt_count(d, c[1]), tr->max_speed,
             hb_fmt_count(e, c[3]));
    HB_CALL(hb_invalid_check(c[0], c[1] + c[2] + c[3], traffic_where(tr), "rows", why));
    HB_CALL(traffic_runs_share(tr));
    uint64_t sp[2] = {tr->spilled, tr->nspills};
    MPI_Allreduce(MPI_IN_PLACE, sp, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (sp[1])
        HB_INFO("traffic: spilled %llu records in %llu runs to %s (max_memory %.0f MB)", (unsigned long long)sp[0],
                (unsigned long long)sp[1], hb_spill_dir() ? hb_spill_dir() : "?", hb_mem_limit() / 1e6);
    results r = {0};
    int rc = traffic_alloc_results(&r, (size_t)(tr->s1 - tr->s0), tr->npct);
    if (rc == 0 && tr->nruns == 0) rc = traffic_reduce(tr, &r, 0, tr->s1 - tr->s0);
    else if (rc == 0) rc = traffic_spill(tr); /* what is kept joins the runs: memory for the merge */
    if (rc == 0 && tr->nruns) rc = traffic_runs_batches(tr, reduce_batch, &r);
    rc = hb_agree(rc);
    if (rc == 0) rc = traffic_write(tr, &r, out);
    traffic_free_results(&r, tr->npct);
    return rc;
}

/* Not collective. Frees the state; safe on a partly built one. */
void traffic_destroy(void *state)
{
    traffic *tr = state;
    if (!tr) return;
    hb_table_close(tr->tab);
    hb_tzmap_free(&tr->tzm);
    free(tr->ev), free(tr->ffs_in);
    free(tr->t), free(tr->seg), free(tr->spd), free(tr->stage);
    free(tr->skey), free(tr->sval), free(tr->rkey), free(tr->rval), free(tr->lkey), free(tr->lval);
    hb_xchg_free(&tr->xc);
    free(tr->tcount);
    free(tr->buckets);
    for (int th = 0; tr->arenas && th < tr->ctx->threads; th++)
        for (arena *a = tr->arenas[th], *next; a; a = next) next = a->next, free(a);
    for (arena *a = tr->spare, *next; a; a = next) next = a->next, free(a);
    free(tr->arenas);
    free(tr->runs);
    free(tr);
}

void traffic_free_records(traffic *tr)
{
    for (int th = 0; tr->arenas && th < tr->ctx->threads; th++) { /* kept for reuse: within the budget */
        for (arena *a = tr->arenas[th], *next; a; a = next) next = a->next, a->next = tr->spare, tr->spare = a;
        tr->arenas[th] = NULL;
    }
    memset(tr->buckets, 0, (size_t)(tr->s1 - tr->s0) * sizeof *tr->buckets);
}

extern const hb_generator hb_generator_traffic; /* gen.c */

/* What the kernel reads and writes (DESIGN.md 4.1), listed by `h5batch kernels traffic`;
 * the output paths are the ones the writer uses (format.h). */
static const hb_dataset_desc traffic_inputs[] = {
    {"time", "table", "number", "", "s", 0, "seconds since 1970-01-01 UTC (time_unit: others)"},
    {"segment", "table", "int", "", NULL, 0, "road segment id, 0 <= id < segments"},
    {"speed", "table", "number", "", "km/h", 0, "observed speed; rows outside 0 ... max_speed are skipped, counted"},
    {"/segments/free_flow_speed", NULL, "number", "segment", "km/h", 1, "free-flow speed (else the segment's p85)"},
    {"/calendar/event_days", NULL, "int", "event_day", "yyyymmdd", 1, "local dates aggregated apart, in events/"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};
static const hb_dataset_desc traffic_outputs[] = {
    {HB_TRAFFIC_COUNT, NULL, "uint64", "segment,day_of_week,hour", "1", 0, "valid observations on non-event days"},
    {HB_TRAFFIC_MEAN_SPEED, NULL, "float64", "segment,day_of_week,hour", "km/h", 0, "mean speed; NaN where count is 0"},
    {HB_TRAFFIC_GROUP "/speed_p<P>", NULL, "float64", "segment,day_of_week,hour", "km/h", 0,
     "exact percentile P of speed for each P of percentiles; NaN where count is 0"},
    {HB_TRAFFIC_TRAVEL_TIME_INDEX, NULL, "float64", "segment,day_of_week,hour", "1", 0,
     "free_flow_speed / mean_speed"},
    {HB_TRAFFIC_FREE_FLOW_SPEED, NULL, "float64", "segment", "km/h", 0, "from the input, else the segment's p85"},
    {HB_TRAFFIC_SEGMENT_COUNT, NULL, "uint64", "segment", "1", 0, "valid observations, event days included"},
    {HB_TRAFFIC_SEGMENT, NULL, "uint32", "segment", "1", 0, "coordinate: segment id"},
    {HB_TRAFFIC_DAY_OF_WEEK, NULL, "uint32", "day_of_week", "1", 0, "coordinate: ISO day of week, 0 = Monday"},
    {HB_TRAFFIC_HOUR, NULL, "uint32", "hour", "h", 0, "coordinate: local hour 0-23"},
    {HB_TRAFFIC_EVENTS_COUNT, NULL, "uint64", "segment,hour", "1", 1, "valid observations on event days"},
    {HB_TRAFFIC_EVENTS_MEAN_SPEED, NULL, "float64", "segment,hour", "km/h", 1, "mean speed on event days"},
    {HB_TRAFFIC_EVENTS "/speed_p<P>", NULL, "float64", "segment,hour", "km/h", 1, "percentile P on event days"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};

const hb_kernel hb_kernel_traffic = {
    .name = "traffic",
    .summary = "per segment x day of week x hour: count, mean and exact percentiles of speed",
    .options = traffic_options,
    .default_chunk_rows = 1 << 20,
    .unit = "rows",
    .generator = &hb_generator_traffic,
    .validate = traffic_validate,
    .setup = traffic_setup,
    .map = traffic_map,
    .exchange = traffic_exchange,
    .finalize = traffic_finalize,
    .save = traffic_save,
    .load = traffic_load,
    .destroy = traffic_destroy,
    .inputs = traffic_inputs,
    .outputs = traffic_outputs,
    .describe = traffic_describe,
    .setup_parts = traffic_setup_parts,
};
