/* finalize's work (see traffic.c): each owned segment's records grouped by cell, then per
 * cell the count, the mean from an exact sum and exact percentiles by selection (float
 * records on 4-byte keys), the free-flow speed and the travel time
 * index; and the output /traffic. Nothing depends on the order records arrived in. */
#include "kernels/traffic/internal.h"

#include "core/hb.h"
#include "kernels/common/order.h"
#include "kernels/common/xsum.h"
#include "kernels/traffic/format.h"

#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void traffic_free_results(results *r, int npct)
{
    free(r->count), free(r->ev_count), free(r->seg_count);
    free(r->mean), free(r->ev_mean), free(r->ffs), free(r->tti);
    for (int j = 0; j < npct; j++) {
        if (r->pct) free(r->pct[j]);
        if (r->ev_pct) free(r->ev_pct[j]);
    }
    free(r->pct), free(r->ev_pct);
}

int traffic_alloc_results(results *r, size_t nseg, int npct)
{
    size_t bytes; /* the largest array's; the others are smaller */
    if (hb_mul_size(nseg, (size_t)WEEK_CELLS * 8, &bytes))
        return hb_err_set(HB_EDATA, "traffic", "%zu segments overflow the size of memory", nseg);
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

/* Not collective. Stores cell c's results of segment ls (count n, mean from the exact
 * sum rounded to double, percentiles pv) in r. */
static void store_cell(const traffic *tr, int64_t ls, int c, size_t n, double sum, const double *pv, results *r)
{
    double mean = n ? sum / (double)n : NAN;
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

/* Not collective. Stores segment ls's count, free-flow speed (ffs unless the input
 * gives one) and travel time indices in r, after its cells. */
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

/* Not collective. The start of each cell's records in b's records grouped by cell
 * (start[CELLS] = b->n). Records arrive in time
 * order, so neighbours often share a cell: four counters a cell, taken in turn, keep the
 * increments from waiting on each other. */
static void cell_counts(const bucket *b, size_t *start)
{
    uint32_t h[4][CELLS];
    memset(h, 0, sizeof h);
    for (const block *k = b->head; k; k = k->next) {
        const uint8_t *cl = k->cell;
        uint32_t i = 0, n = k->n;
        for (; i + 4 <= n; i += 4) h[0][cl[i]]++, h[1][cl[i + 1]]++, h[2][cl[i + 2]]++, h[3][cl[i + 3]]++;
        for (; i < n; i++) h[0][cl[i]]++;
    }
    start[0] = 0;
    for (int c = 0; c < CELLS; c++) start[c + 1] = start[c] + h[0][c] + h[1][c] + h[2][c] + h[3][c];
}

/* Not collective. Double records: the segment's values grouped by cell into x (scratch
 * of b->n values), then per cell the percentiles by multiple selection. */
static void reduce_segment_f64(const traffic *tr, const bucket *b, int64_t ls, double *x, results *r)
{
    size_t start[CELLS + 1] = {0}, pos[CELLS];
    cell_counts(b, start);
    memcpy(pos, start, sizeof pos);
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
        store_cell(tr, ls, c, n, hb_xsum_value(&sum), pv, r);
    }
    /* the weekly cells are contiguous at the front: the segment's non-event values */
    store_segment(tr, b, ls, tr->ffs_in ? NAN : hb_percentile_select(x, start[WEEK_CELLS], 85), r);
}

/* Not collective. The exact sum of the n sorted keys of non-negative floats (speeds are
 * never negative: map turns -0 into +0), rounded to double as hb_xsum_value rounds it.
 * When the floats' exponents span few enough bits that every partial sum is a double
 * (24 mantissa bits, the span, and the bits of n within 53), a plain double sum is that
 * exact sum in any order; otherwise the fixed-point accumulator. */
static double keys_sum(const uint32_t *v, size_t n)
{
    size_t z = 0;
    while (z < n && v[z] == 0x80000000u) z++; /* the key of +0.0 */
    if (z == n) return 0.0;
    int emin = (int)((v[z] >> 23) & 0xff), emax = (int)((v[n - 1] >> 23) & 0xff), nbits = 0;
    for (size_t m = n; m; m >>= 1) nbits++;
    if (v[0] >= 0x80000000u && emin > 0 && emax - emin + 24 + nbits <= 53) { /* no negative, no subnormal */
        double s = 0;
        for (size_t i = z; i < n; i++) s += hb_f32_of_key(v[i]);
        return s;
    }
    hb_xsum x;
    memset(&x, 0, sizeof x);
    for (size_t i = z; i < n; i++) hb_xsum_add(&x, hb_f32_of_key(v[i]));
    return hb_xsum_value(&x);
}

/* The segment's free-flow p85 (the weekly cells' keys) is found with a histogram that
 * the grouping pass fills as it writes each key: fixed buckets of 2^FFS_SHIFT keys from
 * the key of 2^-8 km/h up (every smaller key in bucket 0), about 1/1000 of an octave a
 * bucket, so only the few keys of the one or two buckets that hold the wanted ranks are
 * gathered (by the cells' own passes) and sorted. The buckets a segment used are cleared
 * after it, so the table (one per thread) is touched only over the speeds' range. */
#define FFS_SHIFT 13
#define FFS_KLO 0xbb800000u /* hb_f32_key(0x1p-8f) */
#define FFS_BUCKETS (((0xffffffffu - FFS_KLO) >> FFS_SHIFT) + 2) /* every key has one */
static inline uint32_t ffs_bucket(uint32_t k) { return k < FFS_KLO ? 0 : ((k - FFS_KLO) >> FFS_SHIFT) + 1; }
/* Not collective. The smallest key of bucket b. */
static inline uint32_t ffs_bucket_key(uint32_t b) { return b == 0 ? 0 : FFS_KLO + ((b - 1) << FFS_SHIFT); }

/* The keys a segment's cells gather for its free-flow p85: those in [lo, lo + span] go
 * to key[m++] (lo = 1, span = 0: none, every key being at least +0's). key has room for
 * one more than it can get: the gathers store every key and advance only past those
 * that count. */
typedef struct ffs_gather {
    uint32_t *key;
    size_t m;
    uint32_t lo, span;
} ffs_gather;

/* Not collective. The exact sum of the n > 0 keys v of non-negative floats (any order),
 * rounded to double as keys_sum rounds it, given their smallest key kmin, largest kmax
 * and smallest key other than +0's, knz (UINT32_MAX when all are +0), and the sum s of
 * the keys' floats in doubles, in any grouping. Where keys_sum would take the plain
 * double sum, every partial sum of any subset is exact, so s is that same exact sum;
 * else the fixed-point accumulator. */
static double keys_sum_any(const uint32_t *v, size_t n, uint32_t kmin, uint32_t kmax, uint32_t knz, double s)
{
    if (knz == UINT32_MAX) return 0.0;
    int emin = (int)((knz >> 23) & 0xff), emax = (int)((kmax >> 23) & 0xff), nbits = 0;
    for (size_t m = n; m; m >>= 1) nbits++;
    if (kmin >= 0x80000000u && emin > 0 && emax - emin + 24 + nbits <= 53) return s;
    hb_xsum x;
    memset(&x, 0, sizeof x);
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0x80000000u) hb_xsum_add(&x, hb_f32_of_key(v[i]));
    return hb_xsum_value(&x);
}

/* Not collective. A cell's n keys v (any order, left as they are; the smallest kmin,
 * the largest kmax): their exact sum (*sum) and the percentiles p[0..np-1] (pv), with
 * tmp as scratch of 2 n keys; the keys the free-flow p85 wants go to fg. A histogram of
 * the keys over their range (about one bucket per key), built in the pass that sums
 * them, finds the buckets that hold the wanted ranks; only those buckets' keys are
 * gathered and sorted. The values are the order statistics a sort finds: the same bits,
 * in two passes over keys in L1 instead of a radix sort's four to eight. */
static void cell_select(const uint32_t *v, size_t n, const double *p, int np, double *pv, double *sum, uint32_t *tmp,
                        uint32_t kmin, uint32_t kmax, ffs_gather *fg)
{
    enum { MAXBITS = 11 };
    int bits = 6;
    while (bits < MAXBITS && ((size_t)1 << bits) < n) bits++;
    int shift = 0;
    while (shift < 32 && ((kmax - kmin) >> shift) >= (1u << bits)) shift++;
    const uint32_t nb = ((kmax - kmin) >> shift) + 1;
    uint32_t h[(1u << MAXBITS) + 1];
    memset(h, 0, (nb + 1) * sizeof *h);
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint32_t *fk = fg->key, flo = fg->lo, fspan = fg->span;
    size_t fm = fg->m, i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t k0 = v[i], k1 = v[i + 1], k2 = v[i + 2], k3 = v[i + 3];
        h[(k0 - kmin) >> shift]++, h[(k1 - kmin) >> shift]++, h[(k2 - kmin) >> shift]++, h[(k3 - kmin) >> shift]++;
        s0 += hb_f32_of_key(k0), s1 += hb_f32_of_key(k1), s2 += hb_f32_of_key(k2), s3 += hb_f32_of_key(k3);
        fk[fm] = k0, fm += k0 - flo <= fspan;
        fk[fm] = k1, fm += k1 - flo <= fspan;
        fk[fm] = k2, fm += k2 - flo <= fspan;
        fk[fm] = k3, fm += k3 - flo <= fspan;
    }
    for (; i < n; i++) {
        uint32_t k = v[i];
        h[(k - kmin) >> shift]++;
        s0 += hb_f32_of_key(k);
        fk[fm] = k, fm += k - flo <= fspan;
    }
    fg->m = fm;
    uint32_t knz = kmin;
    if (kmin == 0x80000000u) { /* +0 among the keys: the smallest other one */
        knz = UINT32_MAX;
        for (size_t j = 0; j < n; j++)
            if (v[j] != 0x80000000u && v[j] < knz) knz = v[j];
    }
    *sum = keys_sum_any(v, n, kmin, kmax, knz, (s0 + s1) + (s2 + s3));
    hb_keys_percentiles(v, n, h, nb, kmin, shift, p, np, pv, tmp, tmp + n);
}

/* Not collective. Float records: one counting pass, then one grouping pass, put the
 * segment's values by cell as 4-byte keys whose unsigned order is numeric order
 * (hb_f32_key) in a (b->n keys, then three times as many and one of scratch), each
 * cell's smallest and largest key in cmin, cmax, and the weekly keys in the free-flow
 * histogram ffh (FFS_BUCKETS counters, zero outside the call). Each cell (a few hundred
 * keys, in L1) is then selected on its own (cell_select; up to CELL_SORT_MAX keys
 * sorted) and its sum taken exactly; the segment's weekly p85 (the free-flow speed)
 * comes from the few keys of ffh's buckets that hold its ranks, which the cells gather.
 * The order statistics are the values a sort of the segment finds: the same bits. */
_Static_assert(HB_OPT_LIST_MAX <= HB_KEYS_PCT_MAX, "a cell's percentiles fit one hb_keys_percentiles");
#define CELL_SORT_MAX 48 /* cells of up to this many keys are sorted (insertion) */
static void reduce_segment_f32(const traffic *tr, const bucket *b, int64_t ls, uint32_t *a, uint32_t *ffh, results *r)
{
    size_t start[CELLS + 1] = {0}, pos[CELLS];
    uint32_t cmin[CELLS], cmax[CELLS];
    cell_counts(b, start);
    memcpy(pos, start, sizeof pos);
    for (int c = 0; c < CELLS; c++) cmin[c] = UINT32_MAX, cmax[c] = 0;
    for (const block *k = b->head; k; k = k->next) { /* the current cell's state in registers */
        const float *val = k->val;
        const uint8_t *cl = k->cell;
        if (k->n == 0) continue;
        uint32_t pc = cl[0], mn = cmin[pc], mx = cmax[pc], wk = pc < WEEK_CELLS;
        size_t p = pos[pc];
        for (uint32_t i = 0; i < k->n; i++) {
            uint32_t c = cl[i];
            if (c != pc) {
                pos[pc] = p, cmin[pc] = mn, cmax[pc] = mx;
                pc = c, p = pos[c], mn = cmin[c], mx = cmax[c], wk = c < WEEK_CELLS;
            }
            uint32_t key = hb_f32_key(val[i]);
            a[p++] = key;
            mn = key < mn ? key : mn;
            mx = key > mx ? key : mx;
            ffh[ffs_bucket(key)] += wk;
        }
        pos[pc] = p, cmin[pc] = mn, cmax[pc] = mx;
    }

    uint32_t wmin = UINT32_MAX, wmax = 0; /* the weekly cells' smallest and largest keys */
    for (int c = 0; c < WEEK_CELLS; c++) wmin = cmin[c] < wmin ? cmin[c] : wmin, wmax = cmax[c] > wmax ? cmax[c] : wmax;
    const size_t nwk = start[WEEK_CELLS];
    uint32_t *tmp = a + b->n;
    ffs_gather fg = {tmp + 2 * b->n, 0, 1, 0}; /* lo above span: no key gathered */
    size_t flo_rank = 0, fhi_rank = 0, fbelow = 0;
    double fg_g = 0;
    if (nwk > 0) {
        const uint32_t b0 = ffs_bucket(wmin), b1 = ffs_bucket(wmax);
        if (!tr->ffs_in) {
            hb_percentile_ranks(nwk, 85, &flo_rank, &fhi_rank, &fg_g);
            uint32_t blo = b0, bhi;
            while (fbelow + ffh[blo] <= flo_rank) fbelow += ffh[blo++];
            size_t upto = fbelow + ffh[blo];
            for (bhi = blo; upto <= fhi_rank;) upto += ffh[++bhi];
            fg.lo = ffs_bucket_key(blo);
            fg.span = (bhi + 1 < FFS_BUCKETS ? ffs_bucket_key(bhi + 1) - 1 : UINT32_MAX) - fg.lo;
        }
        memset(ffh + b0, 0, (size_t)(b1 - b0 + 1) * sizeof *ffh);
    }

    double pv[HB_OPT_LIST_MAX];
    ffs_gather none = {fg.key + b->n, 0, 1, 0}; /* the event cells': past every key fg keeps */
    for (int c = 0; c < CELLS; c++) {
        uint32_t *v = a + start[c];
        size_t cn = start[c + 1] - start[c];
        ffs_gather *g = c < WEEK_CELLS ? &fg : &none;
        if (cn > CELL_SORT_MAX) {
            double sum;
            cell_select(v, cn, tr->pct, tr->npct, pv, &sum, tmp, cmin[c], cmax[c], g);
            store_cell(tr, ls, c, cn, sum, pv, r);
            continue;
        }
        for (size_t i = 0; i < cn; i++) g->key[g->m] = v[i], g->m += v[i] - g->lo <= g->span;
        hb_sort_u32(v, tmp, cn);
        double sum = keys_sum(v, cn);
        for (int j = 0; j < tr->npct; j++) {
            size_t lo, hi;
            double gg;
            if (cn == 0) {
                pv[j] = NAN;
                continue;
            }
            hb_percentile_ranks(cn, tr->pct[j], &lo, &hi, &gg);
            pv[j] = hb_lerp(hb_f32_of_key(v[lo]), hb_f32_of_key(v[hi]), gg);
        }
        store_cell(tr, ls, c, cn, sum, pv, r);
    }
    double ffs = NAN;
    if (!tr->ffs_in && nwk > 0) {
        hb_sort_u32(fg.key, tmp, fg.m);
        ffs = hb_lerp(hb_f32_of_key(fg.key[flo_rank - fbelow]), hb_f32_of_key(fg.key[fhi_rank - fbelow]), fg_g);
    }
    store_segment(tr, b, ls, ffs, r);
}

int traffic_reduce(traffic *tr, results *r, int64_t a, int64_t b)
{
    uint64_t most = 0;
    for (int64_t s = a; s < b; s++) {
        bucket *bk = &tr->buckets[s];
        if (bk->tail) bk->tail->n = bk->used;
        if (bk->n > most) most = bk->n;
    }
    int rc = 0;
#pragma omp parallel num_threads(tr->ctx->threads)
    {
        /* one segment's values grouped by cell: for float records 4-byte keys, twice as
         * many of scratch, as many and one for the free-flow gather, and the free-flow
         * histogram */
        size_t m = most ? most : 1;
        void *x = malloc(tr->narrow ? (4 * m + 1) * sizeof(uint32_t) : m * sizeof(double));
        uint32_t *ffh = tr->narrow ? calloc(FFS_BUCKETS, sizeof *ffh) : NULL;
        if (!x || (tr->narrow && !ffh)) {
#pragma omp atomic write
            rc = HB_EINTERNAL;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t s = a; s < b; s++)
            if (x && ffh) reduce_segment_f32(tr, &tr->buckets[s], s, x, ffh, r);
            else if (x && !tr->narrow) reduce_segment_f64(tr, &tr->buckets[s], s, x, r);
        free(x), free(ffh);
    }
    if (rc) return hb_err_set(rc, "traffic", "out of memory for %llu values of one segment", (unsigned long long)most);
    return 0;
}

int traffic_write(traffic *tr, const results *r, hb_out *out)
{
    const uint64_t S = (uint64_t)tr->S, s0 = (uint64_t)tr->s0, ns = (uint64_t)(tr->s1 - tr->s0);
    const uint64_t dw[3] = {S, 7, 24}, de[2] = {S, 24}, d1[1] = {S};
    HB_CALL(hb_out_group(out, HB_TRAFFIC_GROUP));
    HB_CALL(hb_out_attr_i64(out, HB_TRAFFIC_GROUP, HB_FORMAT_VERSION_ATTR, HB_TRAFFIC_FORMAT_VERSION));
    uint32_t *ids = hb_malloc(S * sizeof *ids);
    if (hb_agree(ids ? 0 : HB_EINTERNAL) != 0) return free(ids), HB_EINTERNAL;
    for (uint64_t s = 0; s < S; s++) ids[s] = (uint32_t)s;
    static const uint32_t dows[7] = {0, 1, 2, 3, 4, 5, 6};
    static const uint32_t hours[24] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
    int rc = hb_out_scale(out, HB_TRAFFIC_SEGMENT, "segment", HB_U32, S, ids, "1");
    free(ids);
    HB_CALL(rc);
    HB_CALL(hb_out_attr_str(out, HB_TRAFFIC_SEGMENT, "description", "road segment id"));
    HB_CALL(hb_out_scale(out, HB_TRAFFIC_DAY_OF_WEEK, "day_of_week", HB_U32, 7, dows, "1"));
    HB_CALL(hb_out_attr_str(out, HB_TRAFFIC_DAY_OF_WEEK, "description", "ISO day of week of local time, 0 = Monday"));
    HB_CALL(hb_out_scale(out, HB_TRAFFIC_HOUR, "hour", HB_U32, 24, hours, "h"));
    HB_CALL(hb_out_attr_str(out, HB_TRAFFIC_HOUR, "description", "hour of local wall-clock time"));

    char name[64], desc[160];
    struct {
        const char *path;
        hb_elem t;
        const void *data;
        const char *units, *desc;
    } grid[3 + HB_OPT_LIST_MAX] = {
        {HB_TRAFFIC_COUNT, HB_U64, r->count, "1", "valid observations on non-event days"},
        {HB_TRAFFIC_MEAN_SPEED, HB_F64, r->mean, "km/h", "mean speed; NaN where count is 0"},
        {HB_TRAFFIC_TRAVEL_TIME_INDEX, HB_F64, r->tti, "1", "free_flow_speed / mean_speed; NaN where undefined"},
    };
    static char pnames[HB_OPT_LIST_MAX][64], pdesc[HB_OPT_LIST_MAX][96];
    int ng = 3;
    for (int j = 0; j < tr->npct; j++, ng++) {
        snprintf(pnames[j], sizeof pnames[j], HB_TRAFFIC_SPEED_PCT_FMT, tr->pct[j]);
        snprintf(pdesc[j], sizeof pdesc[j], "%g-th percentile of speed (linear, type 7); NaN where count is 0",
                 tr->pct[j]);
        grid[ng].path = pnames[j], grid[ng].t = HB_F64, grid[ng].data = r->pct[j];
        grid[ng].units = "km/h", grid[ng].desc = pdesc[j];
    }
    for (int g = 0; g < ng; g++) {
        HB_CALL(hb_out_write(out, grid[g].path, grid[g].t, 3, dw, s0, ns, grid[g].data, grid[g].units, grid[g].desc));
        HB_CALL(hb_out_attach(out, grid[g].path, 0, HB_TRAFFIC_SEGMENT));
        HB_CALL(hb_out_attach(out, grid[g].path, 1, HB_TRAFFIC_DAY_OF_WEEK));
        HB_CALL(hb_out_attach(out, grid[g].path, 2, HB_TRAFFIC_HOUR));
    }
    HB_CALL(hb_out_write(out, HB_TRAFFIC_FREE_FLOW_SPEED, HB_F64, 1, d1, s0, ns, r->ffs, "km/h",
                         tr->ffs_in ? "free-flow speed from the input's /segments/free_flow_speed"
                                    : "85th percentile of the segment's valid non-event speeds"));
    HB_CALL(hb_out_attach(out, HB_TRAFFIC_FREE_FLOW_SPEED, 0, HB_TRAFFIC_SEGMENT));
    HB_CALL(hb_out_write(out, HB_TRAFFIC_SEGMENT_COUNT, HB_U64, 1, d1, s0, ns, r->seg_count, "1",
                         "valid observations of the segment, event days included"));
    HB_CALL(hb_out_attach(out, HB_TRAFFIC_SEGMENT_COUNT, 0, HB_TRAFFIC_SEGMENT));
    if (tr->has_events) {
        HB_CALL(hb_out_group(out, HB_TRAFFIC_EVENTS));
        HB_CALL(hb_out_write(out, HB_TRAFFIC_EVENTS_COUNT, HB_U64, 2, de, s0, ns, r->ev_count, "1",
                             "valid observations on event days"));
        HB_CALL(hb_out_write(out, HB_TRAFFIC_EVENTS_MEAN_SPEED, HB_F64, 2, de, s0, ns, r->ev_mean, "km/h",
                             "mean speed on event days; NaN where count is 0"));
        for (int j = 0; j < tr->npct; j++) {
            snprintf(name, sizeof name, HB_TRAFFIC_EVENTS_SPEED_PCT_FMT, tr->pct[j]);
            snprintf(desc, sizeof desc, "%g-th percentile of speed on event days; NaN where count is 0", tr->pct[j]);
            HB_CALL(hb_out_write(out, name, HB_F64, 2, de, s0, ns, r->ev_pct[j], "km/h", desc));
        }
        static const char *const evsets[] = {HB_TRAFFIC_EVENTS_COUNT, HB_TRAFFIC_EVENTS_MEAN_SPEED};
        for (int j = 0; j < 2 + tr->npct; j++) {
            if (j < 2) snprintf(name, sizeof name, "%s", evsets[j]);
            else snprintf(name, sizeof name, HB_TRAFFIC_EVENTS_SPEED_PCT_FMT, tr->pct[j - 2]);
            HB_CALL(hb_out_attach(out, name, 0, HB_TRAFFIC_SEGMENT));
            HB_CALL(hb_out_attach(out, name, 1, HB_TRAFFIC_HOUR));
        }
    }
    uint64_t c[4] = {tr->rows_total, tr->bad_speed, tr->bad_segment, tr->bad_time};
    MPI_Allreduce(MPI_IN_PLACE, c, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    HB_CALL(hb_out_attr_u64(out, HB_TRAFFIC_GROUP, "rows_total", c[0]));
    HB_CALL(hb_out_attr_u64(out, HB_TRAFFIC_GROUP, "rows_valid", c[0] - c[1] - c[2] - c[3]));
    HB_CALL(hb_out_attr_u64(out, HB_TRAFFIC_GROUP, "rows_invalid_speed", c[1]));
    HB_CALL(hb_out_attr_u64(out, HB_TRAFFIC_GROUP, "rows_invalid_segment", c[2]));
    HB_CALL(hb_out_attr_u64(out, HB_TRAFFIC_GROUP, "rows_invalid_time", c[3]));
    HB_CALL(hb_out_attr_str(out, HB_TRAFFIC_GROUP, "timezone", tr->tz));
    HB_CALL(hb_out_attr_f64(out, HB_TRAFFIC_GROUP, "percentiles", tr->pct, tr->npct));
    HB_INFO("traffic: %llu rows, %llu valid, invalid: %llu speed, %llu segment, %llu time; %lld segments",
            (unsigned long long)c[0], (unsigned long long)(c[0] - c[1] - c[2] - c[3]), (unsigned long long)c[1],
            (unsigned long long)c[2], (unsigned long long)c[3], (long long)tr->S);
    return 0;
}
