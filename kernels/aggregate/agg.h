/* Grouped aggregation (DESIGN.md 4.4), the parts its files share: the parsed options,
 * the per-group accumulators, the group tables, the string dictionaries, the exchange
 * plumbing and the kernel's state. docs/aggregate.md describes how they fit together.
 *
 * A group is a tuple of key words (an integer key as itself, a calendar key as its
 * integer, a string key as the 64-bit hash of its bytes). Every rank combines the rows
 * of its chunks per group locally; a group's owner is a function of its hash and the
 * rank count only, and after every round each rank sends the groups it does not own
 * to their owners as fixed-size records (keys + accumulators, plus the kept values of
 * percentile stats). Accumulators merge exactly (counts, exact sums, min/max, first/
 * last by a total order), so the result does not depend on who combined what. */
#ifndef HB_AGG_H
#define HB_AGG_H

#include "kernels/kernel.h"

#include "core/calendar.h"
#include "kernels/common/exchange.h"
#include "kernels/common/order.h"
#include "kernels/common/xsum.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AGG_MAX_KEYS 8
#define AGG_MAX_VALUES 16
#define AGG_MAX_STATS 32
#define AGG_NAME 64
#define AGG_UNITS 64

/* ---- options (spec.c) ---- */

typedef enum {
    KEY_COLUMN, /* a table column; its type decides integer or string at setup */
    KEY_HOUR,
    KEY_DOW,
    KEY_DATE,
    KEY_WEEK,
    KEY_MONTH,
    KEY_QUARTER,
    KEY_YEAR
} key_kind;

typedef enum { ST_COUNT, ST_SUM, ST_MEAN, ST_MIN, ST_MAX, ST_STD, ST_VAR, ST_FIRST, ST_LAST, ST_PCT, ST_ABOVE, ST_BELOW } stat_kind;

enum { LAYOUT_DENSE, LAYOUT_TABLE };

/* The step's options, parsed and checked (the same on every rank). */
typedef struct agg_spec {
    int nkeys;
    char key[AGG_MAX_KEYS][AGG_NAME];
    key_kind kkind[AGG_MAX_KEYS];
    int nvals;
    char val[AGG_MAX_VALUES][AGG_NAME];
    double lo[AGG_MAX_VALUES], hi[AGG_MAX_VALUES]; /* inclusive valid range */
    int nstats;
    stat_kind st[AGG_MAX_STATS];
    double arg[AGG_MAX_STATS];             /* percentile or threshold */
    char stname[AGG_MAX_STATS][AGG_NAME];  /* count, p95, above140 */
    int has_time, needs_time;              /* time given; time needed (calendar keys, first/last) */
    char time[AGG_NAME];
    int64_t unit; /* time column units per second */
    const char *unit_name;
    int layout;
    double max_memory;
    const char *tz, *table;
    hb_colmap cols;
} agg_spec;

/* Not collective. Parses and checks the options; on failure names the key and says why
 * in msg, returning 78. */
int agg_spec_parse(const hb_optset *o, agg_spec *sp, const char **key, char *msg, size_t len);

/* ---- compact exact sums (acc.c) ---- */

/* An exact sum of doubles as a window of the words of an hb_xsum: word base + i of the
 * full accumulator is w[i], every other word is zero. Values of one group usually lie
 * within a few words, so a sum costs 48 bytes instead of 544; a value outside the window
 * moves it, and when the words no longer fit the sum spills into a full hb_xsum of the
 * table's pool (w[0] its index). The bits of the result are those of hb_xsum_value. */
#define XW_WORDS 5
enum { XW_EMPTY = -1, XW_SPILL = -2, XW_INF = -3 /* a square overflowed: the variance is +inf */ };
typedef struct xwin {
    int32_t base;
    uint32_t pad;
    int64_t w[XW_WORDS];
} xwin;

typedef struct xpool {
    hb_xsum *s;
    size_t n, cap;
} xpool;

/* Per value column, where each accumulator of a group lies (same layout for every value). */
typedef struct acc_layout {
    int sum, sq, mm, first, last, kept; /* which parts exist */
    int nthr;
    double thr[AGG_MAX_STATS];
    int thr_above[AGG_MAX_STATS];
    size_t off_sum, off_sq, off_min, off_max, off_ft, off_fv, off_lt, off_lv, off_thr;
    size_t size; /* bytes per value; the count is the first 8 */
} acc_layout;

/* Not collective (nothing in acc.c is). Where each part of the accumulators of the
 * stats in sp lies. */
void acc_layout_init(acc_layout *L, const agg_spec *sp);
/* Not collective. Writes the neutral accumulator (nothing seen) of one value into a. */
void acc_neutral(const acc_layout *L, unsigned char *a);
/* Not collective, thread-safe per pool. Adds valid value x (time t) into a; -1 when the
 * pool cannot grow. */
int acc_add(const acc_layout *L, unsigned char *a, xpool *pool, double x, int64_t t);
/* Not collective, thread-safe per pool. Adds n valid values x (times t, NULL when first
 * and last are not kept) into a, as n acc_add calls would; -1 when the pool cannot grow. */
int acc_add_n(const acc_layout *L, unsigned char *a, xpool *pool, const double *x, size_t n, const int64_t *t);
/* Not collective. Merges src (never spilled) into dst; -1 when the pool cannot grow. */
int acc_merge(const acc_layout *L, unsigned char *dst, xpool *pool, const unsigned char *src);
/* Not collective. How many records a's accumulator needs to travel: spilled sums
 * travel as windows. */
int acc_pieces(const acc_layout *L, const unsigned char *a, const xpool *pool);
/* Not collective. Writes piece k of a into out (piece 0 carries everything but the rest
 * of the sums). */
void acc_piece(const acc_layout *L, const unsigned char *a, const xpool *pool, int k, unsigned char *out);
/* Not collective. The final statistics from an accumulator. */
static inline uint64_t acc_count(const unsigned char *a)
{
    uint64_t n;
    memcpy(&n, a, 8);
    return n;
}
double acc_sum(const acc_layout *L, const unsigned char *a, const xpool *pool);
/* Sample variance (ddof 1) from the exact sums of x and x^2; NaN for fewer than 2. */
double acc_var(const acc_layout *L, const unsigned char *a, const xpool *pool);
void xpool_free(xpool *p);

/* ---- groups and strings (groups.c) ---- */

/* The kept values of one value column of a part, in the order they came: each the
 * entry it belongs to and the value, as a float while every value so far is one exactly
 * (readings of a float32 column always are), else as a double (the log widens once).
 * Appending touches only the log's tail, not a block per group; gpart_kept_groups lays
 * the values out group by group when they are needed (exchange, save, finalize).
 * While the values come a group's at a time (the dense path folds a cell's values at
 * once; rows ordered by key come in runs of a group), the log holds runs, each an entry
 * and where its values end, instead of an entry per value: a third of the bytes or
 * less, and a log whose runs are in entry order is laid out already. At the first
 * append that would make the runs cost more than entries (12 bytes a run against 4 a
 * value: runs of fewer than 3 values on average), the log takes an entry per value
 * (each) for good. */
typedef struct klog {
    uint32_t *e; /* each value's entry, with each */
    void *x;     /* float or double, by wide */
    size_t n, cap;
    int wide, each;
    uint32_t *re; /* without each: run r is entry re[r]'s values up to rend[r] */
    uint64_t *rend;
    size_t nr, rcap;
} klog;

static inline double klog_x(const void *x, int wide, size_t i)
{
    return wide ? ((const double *)x)[i] : (double)((const float *)x)[i];
}

/* The kept values of one value column of a part, group by group: entry e's are
 * x[e ? end[e - 1] : 0 .. end[e]). */
typedef struct kgroups {
    uint64_t *end;
    void *x;
    int wide;
    void *log[2]; /* with consume: the log's arrays, for the caller to free or reuse */
    size_t log_bytes[2];
} kgroups;

static inline size_t kgroups_first(const kgroups *k, size_t e) { return e ? (size_t)k->end[e - 1] : 0; }

/* One thread's part of a group table: entries stored densely (each its hash, key words
 * and accumulators side by side, so that a lookup touches one place), found by open
 * addressing over slots that hold the entry and the high half of its hash. */
typedef struct gpart {
    uint64_t *index; /* (hash >> 32) << 32 | entry; all ones when empty */
    uint64_t imask;
    unsigned char *ent;
    size_t n, cap;
    xpool pool;
    klog *kl; /* per value column, when values are kept */
} gpart;

typedef struct gtab {
    int nparts, K, V, kept;
    size_t A;  /* accumulator bytes per value */
    size_t es; /* bytes per entry: 8 (hash) + 8 K + V A */
    const unsigned char *neutral; /* V x A bytes */
    gpart *p;
} gtab;

static inline unsigned char *gp_ent(const gtab *g, const gpart *p, size_t e) { return p->ent + e * g->es; }
static inline uint64_t gp_hash(const gtab *g, const gpart *p, size_t e)
{
    uint64_t h;
    memcpy(&h, gp_ent(g, p, e), 8);
    return h;
}
static inline const uint64_t *gp_keys(const gtab *g, const gpart *p, size_t e)
{
    return (const uint64_t *)(const void *)(gp_ent(g, p, e) + 8);
}
static inline unsigned char *gp_acc(const gtab *g, const gpart *p, size_t e) { return gp_ent(g, p, e) + 8 + 8 * (size_t)g->K; }

/* Slot of hash h in an index of mask + 1 slots (Fibonacci hashing, so that the bits
 * that chose the owner and the part are not the ones that choose the slot). */
static inline uint64_t agg_slot(uint64_t h, uint64_t mask) { return (h * 0x9e3779b97f4a7c15ULL) >> 20 & mask; }

/* The prefetches below are always inlined: GCC 12 finds a function whose only effect
 * is a prefetch pure (a prefetch has no side effect it sees) and drops the calls of one
 * it did not inline early, so the caller's misses went unhidden. */
#define AGG_PREFETCH_FN static inline __attribute__((always_inline))

/* Not collective. Asks the cache for the slot of hash h (a lookup a few rows ahead). */
AGG_PREFETCH_FN void gpart_prefetch(const gpart *p, uint64_t h)
{
    if (p->index) __builtin_prefetch(&p->index[agg_slot(h, p->imask)]);
}

/* Not collective. Asks the cache for the entry the slot of h names, if it holds one. */
AGG_PREFETCH_FN void gpart_prefetch_entry(const gtab *g, const gpart *p, uint64_t h)
{
    if (!p->index) return;
    uint64_t x = p->index[agg_slot(h, p->imask)];
    if (x != UINT64_MAX && (uint32_t)(x >> 32) == (uint32_t)(h >> 32)) {
        const unsigned char *e = gp_ent(g, p, (uint32_t)x);
        __builtin_prefetch(e);
        __builtin_prefetch(e + 64);
    }
}

/* Not collective (nothing in groups.c is). A table of nparts parts for K keys and V
 * values of A accumulator bytes each, new entries starting from neutral. */
int gtab_init(gtab *g, int nparts, int K, int V, size_t A, int kept, const unsigned char *neutral);
void gtab_clear(gtab *g);
void gtab_free(gtab *g);
/* Not collective, thread-safe per part. The entry of keys (hash h) in part p, created
 * when new; (size_t)-1 when out of memory. */
size_t gpart_find(const gtab *g, gpart *p, uint64_t h, const uint64_t *keys);
/* Not collective, thread-safe per part. Appends n kept values of value column v to
 * entry e; -1 when out of memory. */
int gpart_keep(const gtab *g, gpart *p, size_t e, int v, const double *x, size_t n);
/* Not collective, thread-safe per part. The kept values of value column v of part p,
 * group by group (each entry's count of v is its number of kept values); with consume
 * the log leaves the part for out (kgroups_free frees it). -1 when out of memory or the
 * counts do not match. */
int gpart_kept_groups(const gtab *g, gpart *p, int v, int consume, kgroups *out);
void kgroups_free(kgroups *k);
size_t gtab_entries(const gtab *g);
size_t gtab_bytes(const gtab *g);

/* Strings of one string key, by the hash that stands for them in group keys. */
typedef struct spart {
    uint32_t *index;
    uint64_t imask;
    uint64_t *hash, *off;
    uint32_t *len;
    size_t n, cap;
    char *bytes;
    size_t nbytes, bcap;
} spart;

typedef struct sdict {
    int nparts;
    spart *p;
} sdict;

/* Not collective. A dictionary of nparts parts. */
int sdict_init(sdict *d, int nparts);
void sdict_free(sdict *d);
/* Not collective, thread-safe per part: 0 added or present, 1 when another string has
 * the same hash, -1 out of memory. */
int spart_add(spart *p, uint64_t h, const char *s, uint32_t len);
size_t sdict_bytes(const sdict *d);

/* ---- hashing ---- */


static inline uint64_t agg_hash(const uint64_t *k, int K)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < K; i++) h = hb_mix64(h ^ k[i]) + (uint64_t)i;
    return hb_mix64(h);
}

/* The owner rank of a group by its hash (high bits); the thread part: middle bits. The
 * kernel's owners are agg_owner_of's: by hash, or by ranges of the first key. */
static inline int agg_owner(uint64_t h, int size) { return (int)(((h >> 32) * (uint64_t)size) >> 32); }
static inline int agg_part(uint64_t h, int nparts) { return (int)((((h >> 8) & 0xffffff) * (uint64_t)nparts) >> 24); }
/* The bucket within a part that combine regroups a chunk's rows by: low bits of the part's field. */
#define AGG_SUB 256
static inline int agg_sub(uint64_t h) { return (int)((h >> 8) & (AGG_SUB - 1)); }

/* ---- exchange plumbing (xchg.c): one small file, so the shared exchange can replace it ---- */

/* Collective. Sends scount[d] elements of esz bytes (laid out contiguously by
 * destination in send) to every rank d; grows *recv (of *rcap elements) to hold what
 * arrives, from rank s at element rdispl[s], rcount[s] of them; *rtotal in all. The same
 * status on every rank. */
int agg_alltoallv(const void *send, const size_t *scount, size_t esz, void **recv, size_t *rcap, size_t *rcount,
                  size_t *rdispl, size_t *rtotal);

/* ---- the kernel's state (aggregate.c) ---- */

typedef enum { KT_INT, KT_FLOAT, KT_STRING, KT_CALENDAR } key_type;

/* Rows one thread forwards to one owner: fw words each (hash, keys, values, time). */
typedef struct fwdbuf {
    uint64_t *w;
    size_t n, cap;
} fwdbuf;

typedef struct agg {
    hb_step_ctx *ctx;
    const char *src;        /* the input's name in messages: the file, or "the merged parts" */
    agg_spec sp;
    acc_layout L;
    size_t A;               /* bytes per value's accumulator */
    size_t rec;             /* bytes per record: K key words + V accumulators */
    unsigned char *neutral; /* V x A */
    hb_table *tab;
    int ncols;
    int col_key[AGG_MAX_KEYS], col_time, col_val[AGG_MAX_VALUES];
    key_type ktype[AGG_MAX_KEYS];
    char units[AGG_MAX_VALUES][AGG_UNITS];
    int nthreads;
    gtab own, stage;
    sdict dict[AGG_MAX_KEYS];
    hb_tzmap tzm;
    uint64_t rows_total, rows_missing;
    uint64_t valid[AGG_MAX_VALUES], invalid[AGG_MAX_VALUES];
    uint64_t *tvalid; /* per thread x value, then invalid */
    /* chunk buffers */
    int64_t *kbuf[AGG_MAX_KEYS];
    double *dtmp;
    int64_t *traw, *tloc;
    double *vbuf[AGG_MAX_VALUES];
    uint64_t *h;
    uint8_t *ok;
    uint64_t *grec;  /* the chunk's valid rows regrouped by hash bucket (combine): hash, keys, values, time */
    size_t *gstart;  /* per bucket, where its records start; then fill positions */
    hb_strs strs[AGG_MAX_KEYS];
    int64_t day0, nday;
    int64_t *cal; /* per local day: date, week, month, quarter, year */
    size_t calcap;
    /* exchange buffers */
    unsigned char *sbuf, *rbuf;
    size_t scap, rcap;
    double *svals, *rvals;
    size_t svcap, rvcap;
    size_t *tcnt; /* per thread x rank: records, then values; then offsets */
    size_t *scount, *vcount, *rcount, *rdispl, *rvcount, *rvdispl;
    size_t *voff;
    size_t voffcap;
    /* rows forwarded to their owners (combine, where groups outnumber the chunk's rows) */
    size_t fw;       /* words per row: hash, K keys, V values (NaN: not valid), time for first/last */
    fwdbuf *fwd;     /* per thread x rank */
    uint64_t *fsend, *frecv;
    size_t fscap, frcap;
    size_t *fcount;  /* per rank: rows to send, rows received, where they start */
    size_t chunk_bytes;
    /* the dense path (combine_dense): integer and calendar keys whose observed values span
     * a small box [dlo, dlo + dspan) are a cell number, and dmap names each cell's entry */
    int dense_ok;                 /* every key an integer or calendar key */
    int64_t dlo[AGG_MAX_KEYS];
    uint64_t dspan[AGG_MAX_KEYS];
    uint64_t *dmap;               /* per cell: table, part and entry (see dense_ref); all ones when none */
    size_t dcells, dmcap;
    /* rows of owned cells wait in groups of 2^dsh neighbouring cells (appending touches
     * one tail per group, not one per cell) until dense_fold combines them cell by cell */
    uint32_t *dhome;              /* per cell, when ranks or threads > 1: owner rank x threads + part */
    size_t dhcap;
    uint8_t *downer;              /* per cell, when ranks are 2 to 256: the owner rank */
    size_t docap;
    int dsh;
    size_t dngroups, dgcap;
    struct dpend *dpend;          /* per group */
    uint64_t dpending, dbudget;   /* rows waiting; the most before a fold (see dense_due) */
    uint64_t dseen, dgood;        /* rows this rank read that waited, their valid values */
    size_t dpbytes;               /* bytes of their blocks */
    int dnarrow;                  /* a row's values as floats (every value column's values are) */
    size_t dw;                    /* 32-bit words of a row: its values, and the time for first/last */
    /* rows of cells other ranks own, as records (cell, value words) by destination */
    uint32_t *dsend, *drecv;      /* records of 1 + dw 32-bit words (the cell, the row) */
    size_t dscap, drcap;          /* 32-bit words to send, records received */
    size_t *dscount, *drcount, *drdispl;
    /* owners by ranges of the first key (an integer column) where the input is ordered by
     * it: rank r owns the values from split[r - 1] (its block's first) below split[r] */
    int ranged;
    int64_t *split;               /* hb_size - 1 ascending bounds */
} agg;

/* The owner rank of the group of keys (hash h): the rank whose range holds the first
 * key where the owners are ranged, else by hash. The same on every rank. Only keys[0]
 * is read, and only where ranged. */
static inline int agg_owner_of(const agg *a, uint64_t h, const uint64_t *keys)
{
    if (!a->ranged) return agg_owner(h, hb_size);
    const int64_t k = (int64_t)keys[0];
    int lo = 0, hi = hb_size - 1; /* the number of bounds at or below k */
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (a->split[mid] <= k) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Not collective (OpenMP inside when parallel). Merges n records (and their kept values,
 * value column by value column, in record order) into g. */
int agg_merge_records(agg *a, gtab *g, unsigned char *rec, size_t n, const double *vals, int parallel);
/* Not collective (OpenMP inside). Adds n forwarded rows (fw words each) into g. */
int agg_merge_rows(agg *a, gtab *g, const uint64_t *rows, size_t n);
/* Collective. The statistics of every group, written to out (output.c). */
int agg_write(agg *a, hb_out *out);
/* Not collective. The kernel's name for a key or value's column in messages:
 * "'meter' (table column 'meter_id')". */
void agg_colname(const agg *a, const char *name, char *buf, size_t len);

#endif
