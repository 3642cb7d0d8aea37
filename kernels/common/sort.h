/* Integer sorts for the kernels' output paths: LSD radix sorts on 8-bit digits that skip
 * the digits every key shares (ids and positions use a few of their 64 bits), in place
 * of qsort and a comparison call per step. Not collective; each allocates its scratch and
 * returns 70 when it cannot (nothing recorded: the caller reports). */
#ifndef HB_COMMON_SORT_H
#define HB_COMMON_SORT_H

#include <stddef.h>
#include <stdint.h>

/* Sorts x[0..n) ascending. */
int hb_sort_u64(uint64_t *x, size_t n);
/* Sorts x[0..n) ascending as signed integers. */
int hb_sort_i64(int64_t *x, size_t n);
/* Reorders the n records of rec (esz bytes each) so that their keys key[0..n) ascend;
 * equal keys keep their order (the sort is stable). key is reordered alike. */
int hb_sort_records_u64(uint64_t *key, void *rec, size_t esz, size_t n);

/* Sorts key[0..n) ascending and moves perm[0..n) alike (stably), so that a caller who
 * filled perm with 0..n-1 learns where each sorted key came from; n < 2^32. */
int hb_sort_u64_perm(uint64_t *key, uint32_t *perm, size_t n);

/* Ascending int64_t order, for qsort and bsearch. */
int hb_cmp_i64(const void *x, const void *y);
/* Keeps one of each run of equal values of v[0..n) (ascending: each value once); how
 * many are left. */
size_t hb_unique_i64(int64_t *v, size_t n);

#endif
