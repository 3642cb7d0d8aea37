/* What the files of the traffic kernel share: the state, with the records of owned
 * segments, and finalize's reduction and output (reduce.c); traffic.c holds the kernel,
 * its map step and the exchange. Not an interface outside kernels/traffic/. */
#ifndef HB_TRAFFIC_INTERNAL_H
#define HB_TRAFFIC_INTERNAL_H

#include "kernels/kernel.h"
#include "kernels/common/exchange.h"
#include "kernels/common/spill.h"
#include "core/calendar.h"

#include <stddef.h>
#include <stdint.h>

#define WEEK_CELLS (7 * 24)
#define CELLS (WEEK_CELLS + 24) /* weekly cells then event-day hours, per segment */

enum { COL_TIME, COL_SEGMENT, COL_SPEED }; /* the input table's columns, as setup opens them */
enum { TRAFFIC_S_OPTION, TRAFFIC_S_ATTR, TRAFFIC_S_MAX }; /* where the segment count S came from */

/* Records of one segment: a chain of blocks of growing size, carved from arenas. */
typedef struct block {
    struct block *next;
    uint32_t n, cap;
    void *val; /* float or double: see traffic.narrow */
    uint8_t *cell;
} block;

/* An owned segment's records: its chain of blocks, and the tail block's state. */
typedef struct bucket {
    void *val; /* the tail block's arrays, kept here so an append touches one line */
    uint8_t *cell;
    uint32_t used, cap; /* of the tail block; written back to it when it fills */
    block *head, *tail;
    uint64_t n;
} bucket;

/* Memory that blocks are carved from; one list per thread, freed whole. */
typedef struct arena {
    struct arena *next;
    size_t used, size;
    unsigned char data[];
} arena;

typedef struct traffic {
    hb_step_ctx *ctx;
    hb_table *tab;
    hb_colmap cols;  /* the option columns: the table's names of time, segment, speed */
    int64_t per_s;   /* ticks per second of the time column (time_unit) */
    int64_t S, s0, s1; /* segments, and this rank's owned range [s0, s1) */
    int s_from;        /* where S came from: TRAFFIC_S_OPTION, _ATTR or _MAX (describe) */
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
    /* map's buffers: a tile's times and speeds, a chunk's segment ids (traffic.c); seg
     * and spd hold the columns as stored when seg_raw, spd_raw say so (an hb_raw_kind
     * other than HB_RAW_OTHER), else converted to int64 and double */
    int64_t *t, *seg;
    double *spd;
    int seg_raw, spd_raw;
    /* records to send this round, laid out by destination rank (xc), and those received */
    hb_xchg xc;
    uint32_t *skey, *rkey;
    void *sval, *rval; /* float when narrow, else double */
    size_t skcap, svcap, rkcap, rvcap;
    /* with one thread at two ranks, map's records of owned segments: on of them, in the
     * send buffers down from index otop, filed by the next exchange (traffic_map) */
    size_t on, otop;
    /* records loaded from a checkpoint, sent to their owners by the next exchange */
    uint32_t *lkey;
    void *lval;
    size_t ln, lcap;
    size_t *tcount; /* per thread x per destination counts, then offsets (rows of tstride) */
    size_t tstride; /* P rounded up to a cache line of counts: threads never share a line */
    /* records owned by this rank, by segment s - s0 */
    bucket *buckets;
    arena **arenas; /* one list per thread: threads append to disjoint segments */
    arena *spare;   /* arenas a spill emptied, for reuse */
    void *stage; /* append's stage slots of the owned segments (traffic.c) */
    /* spill (docs/spill.md): beyond budget bytes of arenas the records are written as a
     * sorted run and the arenas freed; finalize merges the runs */
    double budget;      /* bytes the kept records may take: max_memory less the rest */
    size_t arena_bytes; /* size of a new arena */
    hb_spill_run *runs; /* this rank's runs (written, or loaded from a checkpoint) */
    size_t nruns, runcap;
    uint64_t spilled, nspills; /* records and runs this rank wrote */
} traffic;

/* Per-cell statistics of this rank's segments, in the output layouts. */
typedef struct results {
    uint64_t *count, *ev_count, *seg_count;
    double *mean, *ev_mean, *ffs, *tti;
    double **pct, **ev_pct;
} results;

/* Not collective. The name errors of the state's data carry: the input, or in a merge
 * (no input) the output. */
static inline const char *traffic_where(const traffic *tr)
{
    return tr->ctx->input ? tr->ctx->input : tr->ctx->output ? tr->ctx->output : "traffic";
}

/* traffic.c */

/* Not collective. A new state (*state) with the options every setup reads: percentiles,
 * max_speed, timezone (selected). */
int traffic_new(hb_step_ctx *ctx, void **state);
/* Not collective (the same on every rank). The bytes the largest rank's state and
 * output will need for tr->S segments and ctx->n_rows rows: the per-segment buckets
 * and result grids of its owned segments, the segment ids written, the chunk and
 * exchange buffers of chunk_rows rows, and its share of the records (value + cell
 * byte each, and block headers). Refused when all but the records is over max_memory
 * (records beyond it are spilled: tr->budget is what they may take); from names where S
 * came from. */
int traffic_reserve_memory(traffic *tr, int narrow, int64_t chunk_rows, const char *from);
/* Collective. This rank's segment range, buckets, arenas, exchange buffers and the
 * buffers of a chunk of cr rows (tr->S, tr->narrow and tr->ctx set). */
int traffic_alloc_state(traffic *tr, size_t cr);
/* Not collective. Frees the state; safe on a partly built one. */
void traffic_destroy(void *state);
/* Not collective. Starts a new tail block for b from the arena list. */
int traffic_grow(traffic *tr, arena **list, bucket *b);
/* Not collective. Empties the buckets; their arenas become spare ones. */
void traffic_free_records(traffic *tr);

/* runs.c: spilled runs (docs/spill.md) */

/* Records of a run: narrow, one word (cell key << 32 | float bits, key_shift 32); else
 * two (cell key, double bits; key_shift 0). Runs are ordered by cell key. */
#define TRAFFIC_REC(tr) ((tr)->narrow ? 8u : 16u)
/* Not collective. Writes the kept records as one run ordered by (segment, cell) and
 * frees them; nothing when none are kept. */
/* Not collective. Closes every owned bucket's tail block (its count written back) and
 * gives the records held in all (*n) and in the largest bucket (*most). */
static inline void traffic_bucket_totals(traffic *tr, uint64_t *n, uint64_t *most)
{
    *n = *most = 0;
    for (int64_t s = 0; s < tr->s1 - tr->s0; s++) {
        bucket *b = &tr->buckets[s];
        if (b->tail) b->tail->n = b->used;
        *n += b->n;
        if (b->n > *most) *most = b->n;
    }
}
int traffic_spill(traffic *tr);
/* Not collective. Spills when the kept records' arenas exceed the budget. */
int traffic_spill_check(traffic *tr);
/* Collective. Every rank learns every run and keeps those holding its segments. */
int traffic_runs_share(traffic *tr);
/* Not collective. Calls fn(tr, a, b, user) for consecutive ranges [a, b) of owned
 * segments (local indices) that together cover them all, with every record of those
 * segments, from the runs, in their buckets; the records are freed after each call. */
int traffic_runs_batches(traffic *tr, int (*fn)(traffic *, int64_t, int64_t, void *), void *user);
/* Not collective. While there are more runs than the budget's read buffers allow, merges
 * the oldest into one over the cell keys [lo, hi). */
int traffic_runs_compact(traffic *tr, uint64_t lo, uint64_t hi);
/* Not collective. Adds r to the state's runs. */
int traffic_runs_add(traffic *tr, const hb_spill_run *r);

/* state.c: the saved state (checkpoints, partials) and the partial-state hooks */

/* Not collective. This rank's counters and owned records, each cell's values as sorted
 * distinct values with counts. */
int traffic_save(void *state, void **buf, size_t *len);
/* Not collective. Stages the records of a saved part for the next exchange. */
int traffic_load(void *state, const void *buf, size_t len);
/* Not collective. What setup learnt from the input: S and where from, the speeds'
 * width, the event days, the input's free-flow speeds. */
int traffic_describe(void *state, void **buf, size_t *len);
/* Collective. The empty state of the parts' concatenated input, from their descriptions. */
int traffic_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state);

/* reduce.c */

/* Not collective. The result arrays of nseg segments; 70 when out of memory (free them
 * with traffic_free_results either way). */
int traffic_alloc_results(results *r, size_t nseg, int npct);
/* Not collective. Frees the result arrays; safe on partly allocated ones. */
void traffic_free_results(results *r, int npct);
/* Not collective. Reduces owned segments [a, b) (local indices) into r, in parallel. */
int traffic_reduce(traffic *tr, results *r, int64_t a, int64_t b);
/* Collective. Writes /traffic: every rank its segments' rows of r, and the counters. */
int traffic_write(traffic *tr, const results *r, hb_out *out);

#endif
