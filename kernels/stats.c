/* Sorting, selection and type-7 percentiles. */
#include "stats.h"

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
static double lerp(double a, double b, double t)
{
    double d = b - a;
    return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

static void index_of(size_t n, double p, size_t *lo, size_t *hi, double *g)
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
    index_of(n, p, &lo, &hi, &g);
    return lerp(x[lo], x[hi], g);
}

double hb_percentile_select(double *x, size_t n, double p)
{
    if (n == 0) return NAN;
    size_t lo, hi;
    double g;
    index_of(n, p, &lo, &hi, &g);
    hb_select_f64(x, n, lo);
    double b = x[lo];
    for (size_t i = lo + 1; i < n && hi != lo; i++)
        if (i == lo + 1 || x[i] < b) b = x[i];
    return lerp(x[lo], b, g);
}
