/* Sorting, selection and type-7 percentiles (see order.h). Nothing here is collective. */
#include "kernels/common/order.h"

#include <string.h>

#include <math.h>

static inline void swap(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

static void insertion(double *x, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        double v = x[i];
        size_t j = i;
        while (j > 0 && x[j - 1] > v) x[j] = x[j - 1], j--;
        x[j] = v;
    }
}

/* Median of three moved to x[0]; Hoare partition around it. Returns the split point. */
static size_t partition(double *x, size_t n)
{
    size_t m = n / 2;
    if (x[m] < x[0]) swap(&x[m], &x[0]);
    if (x[n - 1] < x[0]) swap(&x[n - 1], &x[0]);
    if (x[n - 1] < x[m]) swap(&x[n - 1], &x[m]);
    swap(&x[0], &x[m]);
    double pivot = x[0];
    size_t i = 0, j = n;
    for (;;) {
        do i++; while (i < n && x[i] < pivot);
        do j--; while (x[j] > pivot);
        if (i >= j) break;
        swap(&x[i], &x[j]);
    }
    swap(&x[0], &x[j]);
    return j;
}

static void heap_sift(double *x, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, big = i;
        if (l < n && x[l] > x[big]) big = l;
        if (l + 1 < n && x[l + 1] > x[big]) big = l + 1;
        if (big == i) return;
        swap(&x[i], &x[big]);
        i = big;
    }
}

static void heapsort(double *x, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) heap_sift(x, n, i);
    for (size_t e = n; e-- > 1;) {
        swap(&x[0], &x[e]);
        heap_sift(x, e, 0);
    }
}

static void introsort(double *x, size_t n, int depth)
{
    while (n > 24) {
        if (depth-- == 0) {
            heapsort(x, n);
            return;
        }
        size_t p = partition(x, n);
        /* recurse into the smaller side so the stack stays logarithmic */
        if (p < n - p - 1) {
            introsort(x, p, depth);
            x += p + 1;
            n -= p + 1;
        } else {
            introsort(x + p + 1, n - p - 1, depth);
            n = p;
        }
    }
    insertion(x, n);
}

void hb_sort_f64(double *x, size_t n)
{
    int depth = 0;
    for (size_t m = n; m > 1; m >>= 1) depth += 2;
    introsort(x, n, depth);
}

void hb_select_f64(double *x, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* x[k] lies in [lo, hi) */
    while (hi - lo > 24) {
        size_t p = lo + partition(x + lo, hi - lo);
        if (p == k) return;
        if (k < p) hi = p;
        else lo = p + 1;
    }
    insertion(x + lo, hi - lo);
}

/* numpy's _lerp: a + (b-a)*t, or b - (b-a)*(1-t) when t >= 0.5 (monotone at both ends). */
double hb_lerp(double a, double b, double t)
{
    double d = b - a;
    return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

void hb_percentile_ranks(size_t n, double p, size_t *lo, size_t *hi, double *g)
{
    double h = (double)(n - 1) * (p / 100.0);
    if (h >= (double)(n - 1)) {
        *lo = *hi = n - 1;
        *g = 0;
        return;
    }
    if (h < 0) h = 0;
    double f = floor(h);
    *lo = (size_t)f;
    *hi = *lo + 1;
    *g = h - f;
}

double hb_percentile_sorted(const double *x, size_t n, double p)
{
    if (n == 0) return NAN;
    size_t lo, hi;
    double g;
    hb_percentile_ranks(n, p, &lo, &hi, &g);
    return hb_lerp(x[lo], x[hi], g);
}

/* Places the ks[0..nk-1]-th smallest (ascending, distinct, all in [lo, hi)) at their
 * sorted positions; a side that partitions badly too often is simply sorted. */
static void multiselect(double *x, size_t lo, size_t hi, const size_t *ks, int nk, int depth)
{
    while (nk > 0) {
        if (hi - lo <= 24 || depth-- == 0) {
            hb_sort_f64(x + lo, hi - lo);
            return;
        }
        size_t p = lo + partition(x + lo, hi - lo);
        int a = 0;
        while (a < nk && ks[a] < p) a++;
        int b = a < nk && ks[a] == p ? a + 1 : a;
        if (a > 0) multiselect(x, lo, p, ks, a, depth);
        ks += b;
        nk -= b;
        lo = p + 1;
    }
}

void hb_percentiles_select(double *x, size_t n, const double *p, int np, double *out)
{
    enum { BATCH = 32 };
    int depth = 0;
    for (size_t s = n; s > 1; s >>= 1) depth += 2;
    /* in batches, so any number of percentiles fits in fixed arrays; a later batch's
     * selection keeps the positions an earlier one fixed */
    for (int j0 = 0; j0 < np; j0 += BATCH) {
        int nb = np - j0 < BATCH ? np - j0 : BATCH;
        if (n == 0) {
            for (int j = 0; j < nb; j++) out[j0 + j] = NAN;
            continue;
        }
        size_t ks[2 * BATCH], lo[BATCH], hi[BATCH];
        double g[BATCH];
        int nk = 0;
        for (int j = 0; j < nb; j++) {
            hb_percentile_ranks(n, p[j0 + j], &lo[j], &hi[j], &g[j]);
            ks[nk++] = lo[j];
            ks[nk++] = hi[j];
        }
        /* ascending and distinct, as multiselect wants */
        for (int i = 1; i < nk; i++)
            for (int j = i; j > 0 && ks[j - 1] > ks[j]; j--) {
                size_t t = ks[j];
                ks[j] = ks[j - 1];
                ks[j - 1] = t;
            }
        int m = 0;
        for (int i = 0; i < nk; i++)
            if (m == 0 || ks[m - 1] != ks[i]) ks[m++] = ks[i];
        multiselect(x, 0, n, ks, m, depth);
        for (int j = 0; j < nb; j++) out[j0 + j] = hb_lerp(x[lo[j]], x[hi[j]], g[j]);
    }
}

double hb_percentile_select(double *x, size_t n, double p)
{
    double v;
    hb_percentiles_select(x, n, &p, 1, &v);
    return v;
}

static void insertion_u32(uint32_t *x, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t v = x[i];
        size_t j = i;
        while (j > 0 && x[j - 1] > v) x[j] = x[j - 1], j--;
        x[j] = v;
    }
}

void hb_sort_u32(uint32_t *x, uint32_t *tmp, size_t n)
{
    if (n <= 48) {
        insertion_u32(x, n);
        return;
    }
    uint32_t h[4][256];
    memset(h, 0, sizeof h);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = x[i];
        h[0][v & 255]++, h[1][(v >> 8) & 255]++, h[2][(v >> 16) & 255]++, h[3][v >> 24]++;
    }
    uint32_t *a = x, *t = tmp;
    for (int d = 0; d < 4; d++) {
        uint32_t *hd = h[d], sum = 0;
        int same = 0;
        for (int b = 0; b < 256 && !same; b++) {
            uint32_t c = hd[b];
            same = c == n; /* every key has this byte: the pass would move nothing */
            hd[b] = sum;
            sum += c;
        }
        if (same) continue;
        const int shift = 8 * d;
        for (size_t i = 0; i < n; i++) t[hd[(a[i] >> shift) & 255]++] = a[i];
        uint32_t *s = a;
        a = t, t = s;
    }
    if (a != x) memcpy(x, a, n * sizeof *x);
}

void hb_keys_percentiles(const uint32_t *v, size_t n, const uint32_t *h, uint32_t nb, uint32_t kmin, int shift,
                         const double *p, int np, double *pv, uint32_t *tmp, uint32_t *scr)
{
    enum { R = 2 * HB_KEYS_PCT_MAX };
    /* the wanted ranks, ascending, and their buckets in one walk over the histogram */
    size_t rank[R], below[R]; /* below: the keys in the buckets before the rank's */
    double g[HB_KEYS_PCT_MAX];
    int nr = 2 * np, ord[R], wof[R]; /* wof: the index in wb of the rank's bucket */
    for (int j = 0; j < np; j++) hb_percentile_ranks(n, p[j], &rank[2 * j], &rank[2 * j + 1], &g[j]);
    for (int r = 0; r < nr; r++) {
        int q = r;
        while (q > 0 && rank[ord[q - 1]] > rank[r]) ord[q] = ord[q - 1], q--;
        ord[q] = r;
    }
    uint32_t wb[R], pos[R], b = 0; /* the wanted buckets, ascending */
    int nw = 0;
    size_t c = 0;
    for (int q = 0; q < nr; q++) {
        int r = ord[q];
        while (c + h[b] <= rank[r]) c += h[b++];
        if (nw == 0 || wb[nw - 1] != b) wb[nw++] = b;
        wof[r] = nw - 1, below[r] = c;
    }
    uint8_t want[HB_KEYS_BUCKETS_MAX]; /* 1 + the bucket's index in wb, or 0 */
    memset(want, 0, nb);
    uint32_t at = 0;
    for (int w = 0; w < nw; w++) want[wb[w]] = (uint8_t)(w + 1), pos[w] = at, at += h[wb[w]];
    for (size_t i = 0; i < n; i++) {
        int w = want[(v[i] - kmin) >> shift];
        if (w) tmp[pos[w - 1]++] = v[i];
    }
    for (int w = 0; w < nw; w++) {
        pos[w] -= h[wb[w]];
        hb_sort_u32(tmp + pos[w], scr, h[wb[w]]);
    }
    for (int j = 0; j < np; j++) {
        int r0 = 2 * j, r1 = r0 + 1;
        uint32_t k0 = tmp[pos[wof[r0]] + rank[r0] - below[r0]], k1 = tmp[pos[wof[r1]] + rank[r1] - below[r1]];
        pv[j] = hb_lerp(hb_f32_of_key(k0), hb_f32_of_key(k1), g[j]);
    }
}
