/* Integer radix sorts (sort.h). */
#include "kernels/common/sort.h"

#include <stdlib.h>
#include <string.h>

/* The digits (bytes) in which some keys differ: a bit mask of the 8. */
static unsigned varying_digits(const uint64_t *x, size_t n)
{
    uint64_t and_ = ~(uint64_t)0, or_ = 0;
    for (size_t i = 0; i < n; i++) and_ &= x[i], or_ |= x[i];
    const uint64_t diff = and_ ^ or_;
    unsigned m = 0;
    for (int d = 0; d < 8; d++)
        if ((diff >> (8 * d)) & 0xff) m |= 1u << d;
    return m;
}

/* One stable counting pass of digit d from src to dst, the index permutation alongside
 * when isrc is not NULL. */
static void pass(const uint64_t *src, uint64_t *dst, const uint32_t *isrc, uint32_t *idst, size_t n, int d)
{
    size_t cnt[256] = {0};
    const int sh = 8 * d;
    for (size_t i = 0; i < n; i++) cnt[(src[i] >> sh) & 0xff]++;
    size_t sum = 0;
    for (int b = 0; b < 256; b++) {
        size_t c = cnt[b];
        cnt[b] = sum;
        sum += c;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = cnt[(src[i] >> sh) & 0xff]++;
        dst[at] = src[i];
        if (isrc) idst[at] = isrc[i];
    }
}

/* Sorts x (with the permutation perm of 0..n-1 alongside when not NULL). */
static int radix(uint64_t *x, uint32_t *perm, size_t n)
{
    if (n < 2) return 0;
    const unsigned m = varying_digits(x, n);
    if (!m) return 0;
    uint64_t *tmp = malloc(n * sizeof *tmp);
    uint32_t *ptmp = perm ? malloc(n * sizeof *ptmp) : NULL;
    if (!tmp || (perm && !ptmp)) return free(tmp), free(ptmp), 70;
    uint64_t *a = x, *b = tmp;
    uint32_t *pa = perm, *pb = ptmp;
    for (int d = 0; d < 8; d++) {
        if (!(m >> d & 1)) continue;
        pass(a, b, pa, pb, n, d);
        uint64_t *t = a;
        a = b, b = t;
        uint32_t *pt = pa;
        pa = pb, pb = pt;
    }
    if (a != x) {
        memcpy(x, a, n * sizeof *x);
        if (perm) memcpy(perm, pa, n * sizeof *perm);
    }
    free(tmp), free(ptmp);
    return 0;
}

int hb_sort_u64(uint64_t *x, size_t n) { return radix(x, NULL, n); }

int hb_sort_i64(int64_t *x, size_t n)
{
    uint64_t *u = (uint64_t *)x; /* the sign bit flipped: signed order as unsigned order */
    for (size_t i = 0; i < n; i++) u[i] ^= (uint64_t)1 << 63;
    int rc = radix(u, NULL, n);
    for (size_t i = 0; i < n; i++) u[i] ^= (uint64_t)1 << 63;
    return rc;
}

int hb_sort_records_u64(uint64_t *key, void *rec, size_t esz, size_t n)
{
    if (n < 2) return 0;
    if (n > UINT32_MAX) return 70;
    uint32_t *perm = malloc(n * sizeof *perm);
    unsigned char *out = malloc(n * esz);
    if (!perm || !out) return free(perm), free(out), 70;
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    int rc = radix(key, perm, n);
    if (rc == 0) {
        const unsigned char *in = rec;
        for (size_t i = 0; i < n; i++) memcpy(out + i * esz, in + (size_t)perm[i] * esz, esz);
        memcpy(rec, out, n * esz);
    }
    free(perm), free(out);
    return rc;
}

int hb_sort_u64_perm(uint64_t *key, uint32_t *perm, size_t n)
{
    if (n > UINT32_MAX) return 70;
    return radix(key, perm, n);
}

int hb_cmp_i64(const void *x, const void *y)
{
    const int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

size_t hb_unique_i64(int64_t *v, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || v[m - 1] != v[i]) v[m++] = v[i];
    return m;
}
