/* Exact order statistics on arrays of doubles (no NaN). */
#ifndef HB_STATS_H
#define HB_STATS_H

#include <stddef.h>

/* Sorts x ascending in place. */
void hb_sort_f64(double *x, size_t n);
/* Reorders x so that x[k] is the k-th smallest and x[i] <= x[k] <= x[j] for i < k < j. */
void hb_select_f64(double *x, size_t n, size_t k);
/* Percentile p (0..100) of sorted x[0..n-1], numpy's default (linear, type 7), computed
 * with numpy's own interpolation formula so that the bits agree. NaN when n == 0. */
double hb_percentile_sorted(const double *x, size_t n, double p);
/* The same on unsorted x (reorders x), by selection. */
double hb_percentile_select(double *x, size_t n, double p);

#endif
