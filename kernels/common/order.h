/* Exact order statistics on arrays of doubles (no NaN): sorting, selection and numpy's
 * default percentiles (linear, Hyndman-Fan type 7), with the bits numpy computes. Every
 * function here is not collective and allocates nothing. */
#ifndef HB_COMMON_ORDER_H
#define HB_COMMON_ORDER_H

#include <stddef.h>
#include <stdint.h>

/* Not collective. Sorts x ascending in place. */
void hb_sort_f64(double *x, size_t n);
/* Not collective. Reorders x so that x[k] is the k-th smallest and x[i] <= x[k] <= x[j]
 * for i < k < j. */
void hb_select_f64(double *x, size_t n, size_t k);
/* Not collective. Percentile p (0..100) of sorted x[0..n-1], computed with numpy's own
 * interpolation formula so that the bits agree. NaN when n == 0. */
double hb_percentile_sorted(const double *x, size_t n, double p);
/* Not collective. The two order statistics (0-based ranks lo <= hi) and the weight g that
 * percentile p of n > 0 values interpolates between:
 * hb_percentile_sorted(x, n, p) == hb_lerp(x[lo], x[hi], g). */
void hb_percentile_ranks(size_t n, double p, size_t *lo, size_t *hi, double *g);
/* Not collective. numpy's interpolation of a and b by g (monotone at both ends). */
double hb_lerp(double a, double b, double g);
/* Not collective. hb_percentile_sorted's value on unsorted x (reorders x), by selection. */
double hb_percentile_select(double *x, size_t n, double p);
/* Not collective. Percentiles p[0..np-1] of unsorted x by multiple selection (reorders
 * x): the same bits as hb_percentile_sorted on sorted x, in linear expected time. */
void hb_percentiles_select(double *x, size_t n, const double *p, int np, double *out);
/* Not collective. Sorts the 4-byte keys x[0..n-1] ascending (unsigned order), with
 * tmp as scratch of n keys: insertion for a few, else an LSD radix sort on bytes that
 * skips every byte on which all keys agree (meant for a few hundred keys, in L1). */
void hb_sort_u32(uint32_t *x, uint32_t *tmp, size_t n);
/* The most percentiles one hb_keys_percentiles call takes. */
#define HB_KEYS_PCT_MAX 32
/* The most histogram buckets hb_keys_percentiles takes. */
#define HB_KEYS_BUCKETS_MAX 4096
/* Not collective. Percentiles p[0..np) (np <= HB_KEYS_PCT_MAX; type 7, the bits of
 * hb_percentile_sorted) of the n > 0 4-byte keys v (any order, read only; see hb_f32_key),
 * given their histogram h: h[b] keys with (key - kmin) >> shift == b, for b < nb
 * (nb <= HB_KEYS_BUCKETS_MAX). Only
 * the keys of the buckets that hold the wanted ranks are gathered (to tmp, room for n)
 * and sorted (scr: scratch of n keys, which may be v itself: v is not read after the
 * gather); the keys' floats are interpolated into pv. With about one bucket per few
 * keys, that is two passes over the keys instead of a sort's four to eight. */
void hb_keys_percentiles(const uint32_t *v, size_t n, const uint32_t *h, uint32_t nb, uint32_t kmin, int shift,
                         const double *p, int np, double *pv, uint32_t *tmp, uint32_t *scr);
/* Not collective. A float's bits mapped so that unsigned order is numeric order
 * (negatives flipped); NaN excluded. */
static inline uint32_t hb_f32_key(float f)
{
    union {
        float f;
        uint32_t u;
    } c = {.f = f};
    return c.u >> 31 ? ~c.u : c.u | 0x80000000u;
}

/* Not collective. The float whose hb_f32_key is k, as a double. */
static inline double hb_f32_of_key(uint32_t k)
{
    union {
        float f;
        uint32_t u;
    } c = {.u = k >> 31 ? k & 0x7fffffffu : ~k};
    return c.f;
}

#endif
