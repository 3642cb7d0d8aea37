/* Exact order statistics on arrays of doubles (no NaN). */
#ifndef HB_STATS_H
#define HB_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Sorts x ascending in place. */
void hb_sort_f64(double *x, size_t n);
/* Reorders x so that x[k] is the k-th smallest and x[i] <= x[k] <= x[j] for i < k < j. */
void hb_select_f64(double *x, size_t n, size_t k);
/* Percentile p (0..100) of sorted x[0..n-1], numpy's default (linear, type 7), computed
 * with numpy's own interpolation formula so that the bits agree. NaN when n == 0. */
double hb_percentile_sorted(const double *x, size_t n, double p);
/* The two order statistics (0-based ranks lo <= hi) and the weight g that percentile p
 * of n values interpolates between, and numpy's interpolation of a and b by g:
 * hb_percentile_sorted(x, n, p) == hb_lerp(x[lo], x[hi], g). n > 0. */
void hb_percentile_ranks(size_t n, double p, size_t *lo, size_t *hi, double *g);
double hb_lerp(double a, double b, double g);
/* The same on unsorted x (reorders x), by selection. */
double hb_percentile_select(double *x, size_t n, double p);

/* Percentiles p[0..np-1] of unsorted x by multiple selection (reorders x): the same
 * bits as hb_percentile_sorted on sorted x, in linear expected time. */
void hb_percentiles_select(double *x, size_t n, const double *p, int np, double *out);

/* An exact, order-independent sum of finite doubles: every value is added into a
 * fixed-point accumulator spanning the whole double range, so the result has the same
 * bits whatever order the values came in (any rank count, any thread schedule). One
 * accumulator takes up to 2^31 values. */
#define HB_XSUM_WORDS 68
typedef struct hb_xsum {
    int64_t w[HB_XSUM_WORDS]; /* word i weighs 2^(32 i - 1074) */
} hb_xsum;

static inline void hb_xsum_add(hb_xsum *s, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint64_t e = (bits >> 52) & 0x7ff, mant = bits & ((1ull << 52) - 1);
    unsigned pos = 0; /* bit position of the mantissa's lowest bit above 2^-1074 */
    if (e) mant |= 1ull << 52, pos = (unsigned)e - 1;
    unsigned __int128 t = (unsigned __int128)mant << (pos & 31);
    int64_t *w = s->w + (pos >> 5);
    int64_t lo = (int64_t)(uint32_t)t, mid = (int64_t)(uint32_t)(t >> 32), hi = (int64_t)(t >> 64);
    if (bits >> 63) lo = -lo, mid = -mid, hi = -hi;
    w[0] += lo;
    w[1] += mid;
    w[2] += hi;
}

/* The accumulated sum, rounded to double (deterministically; within an ulp). */
double hb_xsum_value(const hb_xsum *s);

#endif
