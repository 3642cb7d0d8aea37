/* Unit tests of h5batch's libraries: order statistics, exact sums, the keyed exchange's
 * layout, the calendar and time-zone map, option tables, job files and the HDF5 input
 * layer here; each other area in a file of its own in tests/unit/, with its entry point
 * in unit.h.
 *
 * Every expected value comes from outside the code under test: hand computation (with
 * the arithmetic in the comment), published rules (DST dates), or the C library
 * (timegm, localtime_r, qsort), which shares no logic with the code it checks.
 * Runs as a plain process (the checkpoint tests start MPI as a singleton). The last line
 * printed is the tally. */
#include "unit.h"

#include "io/io.h"
#include "kernels/kernel.h"
#include "kernels/common/exchange.h"
#include "kernels/common/order.h"
#include "kernels/common/sort.h"
#include "kernels/common/xsum.h"
#include "core/hb.h"
#include "job.h"
#include "core/opts.h"
#include "core/calendar.h"

#include <float.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- harness (tests/unit/unit.h) ---- */

int n_pass, n_fail;

void unit_mpi_start(void)
{
    int started = 0;
    MPI_Initialized(&started);
    if (!started) MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &hb_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &hb_size);
}

int check_(int ok, const char *file, int line, const char *expr)
{
    if (ok) {
        n_pass++;
    } else {
        n_fail++;
        printf("FAIL %s:%d: %s\n", file, line, expr);
    }
    return ok;
}

int checkf_(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    if (check_(ok, file, line, expr)) return 1;
    va_list ap;
    va_start(ap, fmt);
    printf("    ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    return 0;
}

/* Deterministic so that a failure reproduces (splitmix64). */
static uint64_t rng_state = 0x243F6A8885A308D3u;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd() >> 11) * 0x1p-53; }
static int64_t rnd_range(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

static int cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int has(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

/* ---- kernels/stats ---- */

static void test_percentile_hand(void)
{
    /* numpy type 7: h = (n-1)*p/100, result = lerp(x[floor h], x[floor h + 1], h - floor h) */
    const double x[] = {1, 2, 3, 4};
    CHECK(hb_percentile_sorted(x, 4, 50) == 2.5);  /* h = 1.5:  2 + 0.5 */
    CHECK(hb_percentile_sorted(x, 4, 0) == 1);     /* h = 0 */
    CHECK(hb_percentile_sorted(x, 4, 100) == 4);   /* h = 3: the last element */
    CHECK(hb_percentile_sorted(x, 4, 25) == 1.75); /* h = 0.75: 1 + 0.75 */
    CHECK(fabs(hb_percentile_sorted(x, 4, 85) - 3.55) < 1e-12); /* h = 2.55: 3 + 0.55 */
    CHECK(fabs(hb_percentile_sorted(x, 4, 10) - 1.3) < 1e-12);  /* h = 0.3 */

    const double ten[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(hb_percentile_sorted(ten, 10, 50) == 5.5);                /* h = 4.5 */
    CHECK(fabs(hb_percentile_sorted(ten, 10, 90) - 9.1) < 1e-12);  /* h = 8.1 */
    CHECK(fabs(hb_percentile_sorted(ten, 10, 95) - 9.55) < 1e-12); /* h = 8.55 */

    const double one[] = {7};
    CHECK(hb_percentile_sorted(one, 1, 0) == 7);
    CHECK(hb_percentile_sorted(one, 1, 50) == 7);
    CHECK(hb_percentile_sorted(one, 1, 100) == 7);
    CHECK(isnan(hb_percentile_sorted(x, 0, 50)));
    double scratch = 0;
    CHECK(isnan(hb_percentile_select(&scratch, 0, 50)));

    /* Equal neighbours must give the value itself, not a rounding of it. */
    const double ties[] = {0.1, 0.1, 0.1};
    CHECK(hb_percentile_sorted(ties, 3, 37) == 0.1);

    /* A case where numpy's t >= 0.5 branch b - (b-a)*(1-t) and the naive a + (b-a)*t
     * differ in the last bit: x = [0, 0.1], p = 70, t = 0.7. In Python floats,
     * 0.1 - 0.1*(1-0.7) == 0.07 while 0 + 0.1*0.7 == 0.06999999999999999. */
    const double pair[] = {0, 0.1};
    CHECK(hb_percentile_sorted(pair, 2, 70) == 0.07);
    /* and t < 0.5 keeps a + (b-a)*t: p = 1 gives 0.1*0.01 == 0.001, where the other
     * branch would give 0.1 - 0.1*0.99 == 0.0010000000000000009 */
    CHECK(hb_percentile_sorted(pair, 2, 1) == 0.001);
}

/* Whatever the rounding, the result must lie between the two elements it interpolates. */
static void test_percentile_bounds(void)
{
    enum { N = 200 };
    double x[N];
    for (int i = 0; i < N; i++) x[i] = (rnd_unit() - 0.5) * pow(10, (double)rnd_range(-300, 300));
    qsort(x, N, sizeof *x, cmp_f64);
    int bad = 0;
    double bad_p = 0;
    for (int k = 0; k <= 100000 && !bad; k++) {
        double p = k / 1000.0;
        double h = (N - 1) * (p / 100.0);
        size_t lo = (size_t)floor(h), hi = lo + 1 < N ? lo + 1 : lo;
        double r = hb_percentile_sorted(x, N, p);
        if (!(r >= x[lo] && r <= x[hi])) bad = 1, bad_p = p;
    }
    CHECKF(!bad, "p = %.3f", bad_p);
}

static void test_sort(void)
{
    enum { MAXN = 2000 };
    double *a = malloc(MAXN * sizeof *a), *b = malloc(MAXN * sizeof *b);
    if (!CHECK(a && b)) return free(a), free(b);
    int bad_n = -1;
    for (int n = 0; n <= MAXN && bad_n < 0; n++) {
        for (int i = 0; i < n; i++) a[i] = b[i] = (rnd_unit() - 0.5) * 1e6;
        qsort(b, (size_t)n, sizeof *b, cmp_f64);
        hb_sort_f64(a, (size_t)n);
        for (int i = 0; i < n; i++)
            if (a[i] != b[i]) bad_n = n;
    }
    CHECKF(bad_n < 0, "random data, n = %d", bad_n);

    /* Patterns that defeat naive quicksorts: sorted, reversed, constant, few distinct
     * values, organ pipe, sawtooth; sizes around the insertion-sort cutoff and large. */
    static const int sizes[] = {0, 1, 2, 3, 23, 24, 25, 26, 100, 1000, 2000};
    const char *names[] = {"sorted", "reversed", "all equal", "four values", "organ pipe", "sawtooth"};
    for (int pat = 0; pat < 6; pat++) {
        bad_n = -1;
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            int n = sizes[s];
            for (int i = 0; i < n; i++) {
                double v = pat == 0   ? i
                           : pat == 1 ? n - i
                           : pat == 2 ? 42.5
                           : pat == 3 ? (double)(rnd() % 4)
                           : pat == 4 ? (i < n / 2 ? i : n - i)
                                      : i % 17;
                a[i] = b[i] = v;
            }
            qsort(b, (size_t)n, sizeof *b, cmp_f64);
            hb_sort_f64(a, (size_t)n);
            for (int i = 0; i < n; i++)
                if (a[i] != b[i]) bad_n = n;
        }
        CHECKF(bad_n < 0, "%s, n = %d", names[pat], bad_n);
    }
    free(a);
    free(b);
}

/* A large input that forces deep recursion; checks order and that no value was lost. */
static void test_sort_large(void)
{
    enum { N = 1 << 17 };
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    if (!CHECK(a && b)) return free(a), free(b);
    for (int i = 0; i < N; i++) a[i] = b[i] = (double)(rnd() % 1000) - (i % 2 ? 0.5 : 0);
    qsort(b, N, sizeof *b, cmp_f64);
    hb_sort_f64(a, N);
    CHECK(memcmp(a, b, N * sizeof *a) == 0);
    free(a);
    free(b);
}

static void test_select(void)
{
    enum { MAXN = 600 };
    double x[MAXN], sorted[MAXN], work[MAXN];
    int bad = 0;
    size_t bad_n = 0, bad_k = 0;
    for (int trial = 0; trial < 400 && !bad; trial++) {
        size_t n = (size_t)rnd_range(1, MAXN);
        /* half the trials draw from 5 values so that ties surround the pivot */
        int ties = trial % 2;
        for (size_t i = 0; i < n; i++) x[i] = ties ? (double)(rnd() % 5) : rnd_unit() * 100 - 50;
        memcpy(sorted, x, n * sizeof *x);
        qsort(sorted, n, sizeof *sorted, cmp_f64);
        for (int j = 0; j < 12 && !bad; j++) {
            size_t k = j == 0 ? 0 : j == 1 ? n - 1 : (size_t)rnd_range(0, (int64_t)n - 1);
            memcpy(work, x, n * sizeof *x);
            hb_select_f64(work, n, k);
            int ok = work[k] == sorted[k];
            for (size_t i = 0; i < k; i++) ok &= work[i] <= work[k];
            for (size_t i = k + 1; i < n; i++) ok &= work[i] >= work[k];
            qsort(work, n, sizeof *work, cmp_f64); /* still a permutation of x */
            ok &= memcmp(work, sorted, n * sizeof *work) == 0;
            if (!ok) bad = 1, bad_n = n, bad_k = k;
        }
    }
    CHECKF(!bad, "n = %zu, k = %zu", bad_n, bad_k);
}

static void test_percentile_select(void)
{
    static const double ps[] = {0, 0.1, 1, 5, 12.5, 25, 33.3, 50, 66.7, 75, 85, 95, 99, 99.9, 100};
    enum { MAXN = 400 };
    double x[MAXN], sorted[MAXN], work[MAXN];
    int bad = 0;
    size_t bad_n = 0;
    double bad_p = 0;
    for (int trial = 0; trial < 300 && !bad; trial++) {
        size_t n = (size_t)rnd_range(1, MAXN);
        int distinct = trial % 3 == 0 ? 2 : trial % 3 == 1 ? 10 : 1000;
        for (size_t i = 0; i < n; i++) x[i] = (double)(rnd() % (uint64_t)distinct) * 0.25;
        memcpy(sorted, x, n * sizeof *x);
        qsort(sorted, n, sizeof *sorted, cmp_f64);
        for (size_t j = 0; j < sizeof ps / sizeof *ps + 5 && !bad; j++) {
            double p = j < sizeof ps / sizeof *ps ? ps[j] : rnd_unit() * 100;
            memcpy(work, x, n * sizeof *x);
            if (hb_percentile_select(work, n, p) != hb_percentile_sorted(sorted, n, p)) bad = 1, bad_n = n, bad_p = p;
        }
    }
    CHECKF(!bad, "n = %zu, p = %g", bad_n, bad_p);
}

/* ---- kernels/stats: multiple percentiles at once ---- */

/* hb_percentiles_select promises the same bits as hb_percentile_sorted on a sorted copy
 * (qsort here, which shares no code with the selection), for any set of percentiles:
 * unsorted, repeated, at the ends, or so close to the ends that h barely leaves 0 or n-1. */
static void test_percentiles_select(void)
{
    static const double set0[] = {50}, set1[] = {5, 50, 85, 95, 99.9}, set2[] = {0, 100}, set3[] = {85, 50},
                        set4[] = {50, 50}, set5[] = {0.0001, 99.9999}, set6[] = {100, 0, 50, 100, 0, 25};
    static const struct {
        const double *p;
        int np;
    } sets[] = {{set0, 1}, {set1, 5}, {set2, 2}, {set3, 2}, {set4, 2}, {set5, 2}, {set6, 6}};
    enum { NSETS = sizeof sets / sizeof *sets, MAXN = 3000, MAXP = 64, NPAT = 8 };
    static const char *const pat_name[NPAT] = {"random",   "three values", "fifty values", "all equal",
                                               "sorted",   "reversed",     "organ pipe",   "wide magnitudes"};
    /* sizes around the small-range cutoff (24) of the selection, then large ones */
    static const int fixed_n[] = {0, 1, 2, 3, 4, 5, 23, 24, 25, 26, 49, 50, 51, 100, 1000, 2999, 3000};
    enum { NFIXED = sizeof fixed_n / sizeof *fixed_n };
    double *x = malloc(MAXN * sizeof *x), *sorted = malloc(MAXN * sizeof *x), *work = malloc(MAXN * sizeof *x);
    if (!CHECK(x && sorted && work)) return free(x), free(sorted), free(work);
    double rp[MAXP], out[MAXP];
    int bad = 0, bad_multiset = 0, bad_nan = 0;
    int bad_pat = 0, bad_set = 0, bad_j = 0;
    size_t bad_n = 0;
    double bad_p = 0, bad_got = 0, bad_want = 0;
    for (int t = 0; t < NPAT * NFIXED + 200; t++) {
        int pat = t < NPAT * NFIXED ? t / NFIXED : (int)(rnd() % NPAT);
        size_t n = (size_t)(t < NPAT * NFIXED ? fixed_n[t % NFIXED] : rnd_range(0, MAXN));
        for (size_t i = 0; i < n; i++) {
            /* no -0.0 anywhere: it ties with +0.0, so which zero lands where is unspecified */
            double v = pat == 0   ? (rnd_unit() - 0.5) * 1000
                       : pat == 1 ? (double)(rnd() % 3)
                       : pat == 2 ? (double)(rnd() % 50) * 0.5 - 10
                       : pat == 3 ? 7.25
                       : pat == 4 ? (double)i * 0.5
                       : pat == 5 ? (double)(n - i) * 0.5
                       : pat == 6 ? (double)(i < n / 2 ? i : n - i)
                                  : (rnd_unit() + 0.5) * pow(10, (double)rnd_range(-300, 300)) * (rnd() % 2 ? 1 : -1);
            x[i] = v;
        }
        memcpy(sorted, x, n * sizeof *x);
        qsort(sorted, n, sizeof *sorted, cmp_f64);
        /* the fixed sets, then a random one of up to 64 percentiles with repeats and ends */
        for (int s = 0; s <= NSETS; s++) {
            const double *p = rp;
            int np;
            if (s < NSETS) {
                p = sets[s].p, np = sets[s].np;
            } else {
                np = (int)rnd_range(1, MAXP);
                for (int j = 0; j < np; j++) {
                    uint64_t r = rnd() % 8;
                    rp[j] = r == 0 ? 0 : r == 1 ? 100 : r == 2 && j > 0 ? rp[j - 1] : rnd_unit() * 100;
                }
            }
            memcpy(work, x, n * sizeof *x);
            for (int j = 0; j < np; j++) out[j] = 12345.0; /* anything not written shows */
            hb_percentiles_select(work, n, p, np, out);
            for (int j = 0; j < np; j++) {
                if (n == 0) {
                    if (!isnan(out[j])) bad_nan = 1;
                    continue;
                }
                double want = hb_percentile_sorted(sorted, n, p[j]);
                if (!bad && memcmp(&out[j], &want, sizeof want) != 0)
                    bad = 1, bad_pat = pat, bad_n = n, bad_set = s, bad_j = j, bad_p = p[j], bad_got = out[j],
                    bad_want = want;
            }
            /* reordered, never changed: the same multiset as before */
            qsort(work, n, sizeof *work, cmp_f64);
            if (n && memcmp(work, sorted, n * sizeof *work) != 0) bad_multiset = 1;
        }
    }
    CHECKF(!bad, "%s, n = %zu, set %d, p[%d] = %.17g: got %.17g, want %.17g", pat_name[bad_pat], bad_n, bad_set,
           bad_j, bad_p, bad_got, bad_want);
    CHECK(!bad_nan); /* n == 0: NaN for every percentile */
    CHECK(!bad_multiset);
    free(x);
    free(sorted);
    free(work);
}

/* Any number of percentiles, not just what fits one batch of positions: the tool's own
 * lists stop at HB_OPT_LIST_MAX, the function's contract does not. x = 0..100 shuffled,
 * p = 99..0; every right answer lies in [0, 100], so the -1 put there first never is. */
static void test_percentiles_select_many(void)
{
    enum { N = 101, NP = 100 };
    double x[N], sorted[N], p[NP], out[NP];
    for (int i = 0; i < N; i++) x[i] = (double)((i * 37) % N); /* 0..100 once each (37 is prime to 101) */
    for (int i = 0; i < N; i++) sorted[i] = i;
    for (int j = 0; j < NP; j++) p[j] = (double)(NP - 1 - j), out[j] = -1.0;
    hb_percentiles_select(x, N, p, NP, out);
    int first_bad = -1;
    double want = 0;
    for (int j = 0; j < NP && first_bad < 0; j++) {
        want = hb_percentile_sorted(sorted, N, p[j]);
        if (memcmp(&out[j], &want, sizeof want) != 0) first_bad = j;
    }
    CHECKF(first_bad < 0, "np = %d, out[%d] (p = %g) = %.17g, want %.17g", NP, first_bad,
           first_bad < 0 ? 0 : p[first_bad], first_bad < 0 ? 0 : out[first_bad], want);
}

/* ---- kernels/stats: exact sum ---- */

static double xsum_of(const double *v, size_t n)
{
    hb_xsum s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < n; i++) hb_xsum_add(&s, v[i]);
    return hb_xsum_value(&s);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* The sum of v[0..2] in all six orders, each compared bit for bit with want. */
static int xsum3_all_orders(double a, double b, double c, double want)
{
    const double o[6][3] = {{a, b, c}, {a, c, b}, {b, a, c}, {b, c, a}, {c, a, b}, {c, b, a}};
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= same_bits(xsum_of(o[i], 3), want);
    return ok;
}

/* Sums whose exact value is known by hand; in each, naive left-to-right addition in
 * double gets a different answer. */
static void test_xsum_hand(void)
{
    /* nothing added: +0.0, and the documented {0} initialiser is an empty sum too */
    CHECK(same_bits(xsum_of(NULL, 0), 0.0));
    hb_xsum z = {0};
    CHECK(same_bits(hb_xsum_value(&z), 0.0));

    /* Doubles in [2^53, 2^54) are 2 apart, so 1e16 + 1 is a tie and rounds back to 1e16
     * (1e16 / 2 = 5e15 is even): naive gives 0. Exactly it is 1. */
    CHECK(xsum3_all_orders(1e16, 1.0, -1e16, 1.0));
    CHECK(xsum3_all_orders(-1e16, -1.0, 1e16, -1.0));
    /* 1e308 + 1e308 = 2e308 > DBL_MAX (1.797e308): naive overflows to inf. */
    CHECK(xsum3_all_orders(1e308, 1e308, -1e308, 1e308));
    CHECK(xsum3_all_orders(-1e308, -1e308, 1e308, -1e308));
    /* the ends of the range at once: DBL_MAX = (2^53-1) 2^971 and 2^-1074 are 2097 bits apart */
    CHECK(xsum3_all_orders(DBL_MAX, 0x1p-1074, -DBL_MAX, 0x1p-1074));
    CHECK(xsum3_all_orders(-DBL_MAX, -0x1p-1074, DBL_MAX, -0x1p-1074));

    /* subnormals: DBL_MIN/4 = 2^-1024 is exact; it cancels to +0.0 and adds up exactly */
    const double sub[] = {DBL_MIN / 4, -DBL_MIN / 4};
    CHECK(same_bits(xsum_of(sub, 2), 0.0));
    CHECK(xsum3_all_orders(DBL_MIN / 4, DBL_MIN / 4, DBL_MIN / 2, DBL_MIN)); /* 2^-1024 * (1+1+2) = 2^-1022 */
    CHECK(xsum3_all_orders(0x1p-1074, 0x1p-1074, 0x1p-1074, 0x1.8p-1073));   /* 3 * 2^-1074 */
    const double neg_sub = -DBL_MIN / 4;
    CHECK(same_bits(xsum_of(&neg_sub, 1), -DBL_MIN / 4));
    const double zeros[] = {-0.0, 0.0, -0.0};
    CHECK(xsum_of(zeros, 3) == 0.0);

    /* Ten copies of the double 0.1. That double is 0x1.999999999999ap-4 =
     * 3602879701896397 * 2^-55, so ten of them are exactly 36028797018963970 * 2^-55
     * = (2^55 + 2) * 2^-55 = 1 + 2^-54 (2^55 = 36028797018963968), i.e. the decimal
     * 1.0000000000000000555... The doubles around it are 1 and 1 + 2^-52, with the tie
     * at 1 + 2^-53; 1 + 2^-54 is below the tie, a quarter ulp from 1, so the rounded
     * value is 1.0. Naive summation gives 0.9999999999999999 (1 - 2^-53). */
    double tenth[10];
    for (int i = 0; i < 10; i++) tenth[i] = 0.1;
    CHECK(0.1 == 0x1.999999999999ap-4); /* the premise of the argument above */
    CHECK(same_bits(xsum_of(tenth, 10), 1.0));

    /* negative totals: -3.5 + 1.25 = -2.25 (all three exact in binary) */
    const double neg[] = {-3.5, 1.25};
    CHECK(same_bits(xsum_of(neg, 2), -2.25));
    /* a negative total that borrows across accumulator words: -1 + 2^-50 = -(1 - 2^-50),
     * which has 50 significant bits, so it is a double and 1.0 - 0x1p-50 computes it exactly */
    const double borrow[] = {-1.0, 0x1p-50};
    CHECK(same_bits(xsum_of(borrow, 2), -(1.0 - 0x1p-50)));
    /* -2^100 + 2^48 = -2^48 (2^52 - 1): 52 significant bits, exact again */
    const double borrow2[] = {0x1p48, -0x1p100};
    CHECK(same_bits(xsum_of(borrow2, 2), -(0x1p100 - 0x1p48)));

    /* 2^60 + 1 rounds back to 2^60 (doubles there are 256 apart): naive 2^60 + 1024 ones
     * - 2^60 gives 0. Exactly it is 1024, wherever the ones are. */
    enum { ONES = 1024 };
    double big[ONES + 2];
    big[0] = 0x1p60;
    for (int i = 1; i <= ONES; i++) big[i] = 1.0;
    big[ONES + 1] = -0x1p60;
    CHECK(same_bits(xsum_of(big, ONES + 2), 1024.0));
    big[ONES + 1] = 1.0, big[1] = -0x1p60; /* 2^60, -2^60, then the ones */
    CHECK(same_bits(xsum_of(big, ONES + 2), 1024.0));

    /* The value is promised within an ulp, not correctly rounded, so at or just past a
     * tie either neighbour is allowed; but the same one whatever the order.
     * 1 + 2^-53 is the tie between 1 and 1 + 2^-52; 1 + 2^-53 + 2^-105 is just past it. */
    const double tie[3] = {1.0, 0x1p-53, 0.0};
    double r = xsum_of(tie, 2);
    CHECK(r == 1.0 || r == 0x1.0000000000001p0);
    CHECK(xsum3_all_orders(1.0, 0x1p-53, 0.0, r));
    const double past[3] = {1.0, 0x1p-53, 0x1p-105};
    r = xsum_of(past, 3);
    CHECK(r == 1.0 || r == 0x1.0000000000001p0);
    CHECK(xsum3_all_orders(1.0, 0x1p-53, 0x1p-105, r));
}

static void shuffle(double *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rnd() % i);
        double t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* One value from several magnitudes and both signs, always finite. Mantissa times a
 * power of two so that every value, subnormals included, is exactly what it says. */
static double rnd_mixed(void)
{
    double sign = rnd() % 2 ? -1.0 : 1.0;
    switch (rnd() % 6) {
    case 0: return sign * ldexp((double)(rnd() >> 11), (int)rnd_range(-1074, 900)); /* anywhere */
    case 1: return sign * rnd_unit() * 10;                                            /* around 1 */
    case 2: return sign * (rnd_unit() + 0.5) * 1e300;                                 /* huge */
    case 3: return sign * (rnd_unit() + 0.5) * 1e-300;                                /* tiny */
    case 4: return sign * ldexp((double)(rnd() >> 12), -1074);                        /* subnormal */
    default: return (double)rnd_range(-1000, 1000);                                   /* small integer */
    }
}

static int cmp_abs(const void *a, const void *b)
{
    double x = fabs(*(const double *)a), y = fabs(*(const double *)b);
    return (x > y) - (x < y);
}

/* The point of the accumulator: the same bits in any order (any rank count, any thread
 * schedule). Original order, reversed, and several shuffles of the same values. */
static void test_xsum_order(void)
{
    enum { N = 10000, SHUFFLES = 6 };
    double *v = malloc(N * sizeof *v), *w = malloc(N * sizeof *w);
    if (!CHECK(v && w)) return free(v), free(w);

    for (int trial = 0; trial < 3; trial++) {
        for (int i = 0; i < N; i++) v[i] = rnd_mixed();
        double first = xsum_of(v, N);
        int same = isfinite(first);
        for (int i = 0; i < N; i++) w[i] = v[N - 1 - i];
        same &= same_bits(xsum_of(w, N), first);
        memcpy(w, v, N * sizeof *v);
        for (int k = 0; k < SHUFFLES; k++) {
            shuffle(w, N);
            same &= same_bits(xsum_of(w, N), first);
        }
        /* sorted ascending and by magnitude: the orders naive summation is most sensitive to */
        qsort(w, N, sizeof *w, cmp_f64);
        same &= same_bits(xsum_of(w, N), first);
        qsort(w, N, sizeof *w, cmp_abs);
        same &= same_bits(xsum_of(w, N), first);
        CHECKF(same, "trial %d, first order gave %a", trial, first);
    }

    /* Values and their negations (2^-1074 to ~1e300) plus the integers 1..1000: whatever
     * the order, exactly 1000 * 1001 / 2 = 500500, with +0.0 and -0.0 mixed in. */
    enum { PAIRS = 4000, INTS = 1000 };
    int k = 0;
    for (int i = 0; i < PAIRS; i++) {
        double a = rnd_mixed();
        w[k++] = a;
        w[k++] = -a;
    }
    for (int i = 1; i <= INTS; i++) w[k++] = i;
    w[k++] = 0.0, w[k++] = -0.0;
    int ok = 1;
    for (int s = 0; s < 4; s++) {
        shuffle(w, (size_t)k);
        ok &= same_bits(xsum_of(w, (size_t)k), 500500.0);
    }
    CHECK(ok);
    free(v);
    free(w);
}

/* The sum itself is right: within an ulp of the exact value. Three independent
 * references: a long double Neumaier sum, an exact __int128 sum, and int64 sums. */
static void test_xsum_accuracy(void)
{
    enum { MAXN = 4000 };
    double *v = malloc(MAXN * sizeof *v);
    if (!CHECK(v)) return;

    /* (1) positive values over 120 binades. Neumaier's compensated sum in long double
     * (64-bit significand) over values sorted by magnitude errs by a few 2^-64 relative,
     * far less than a double ulp (2^-52), so the exact sum, and hence this reference,
     * must lie between the neighbours of the result. */
    int bad = 0, bad_trial = -1;
    long double bad_ref = 0;
    double bad_r = 0;
    for (int trial = 0; trial < 60; trial++) {
        size_t n = (size_t)rnd_range(1, MAXN);
        for (size_t i = 0; i < n; i++) v[i] = ldexp(rnd_unit() + 0x1p-60, (int)rnd_range(-60, 60));
        double r = xsum_of(v, n);
        qsort(v, n, sizeof *v, cmp_abs);
        long double s = 0, c = 0;
        for (size_t i = 0; i < n; i++) {
            long double t = s + v[i];
            c += fabsl(s) >= fabsl((long double)v[i]) ? (s - t) + v[i] : ((long double)v[i] - t) + s;
            s = t;
        }
        long double ref = s + c;
        if (!((long double)nextafter(r, -INFINITY) <= ref && ref <= (long double)nextafter(r, INFINITY)) && !bad)
            bad = 1, bad_trial = trial, bad_ref = ref, bad_r = r;
    }
    CHECKF(!bad, "trial %d: got %a, long double reference %La", bad_trial, bad_r, bad_ref);

    /* (2) Exact: values m 2^e, m a 53-bit integer, -40 <= e <= 10, either sign. In units
     * of 2^-40 each is the integer m 2^(e+40) < 2^103, so 4000 of them sum exactly in
     * __int128 (< 2^115). (double)S rounds that correctly (libgcc); scaling by 2^-40 is
     * exact. A result within an ulp is either that double or, when S is not a double, the
     * neighbour on S's other side. Everything compared in integer units, exactly. */
    bad = 0;
    int n_cr = 0;
    for (int trial = 0; trial < 200 && !bad; trial++) {
        size_t n = (size_t)rnd_range(1, MAXN);
        int positive = trial % 2;
        __int128 S = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t m = rnd() >> 11;
            int e = (int)rnd_range(-40, 10);
            int neg = !positive && rnd() % 2;
            v[i] = ldexp(neg ? -(double)m : (double)m, e);
            __int128 u = (__int128)m << (e + 40);
            S += neg ? -u : u;
        }
        double r = xsum_of(v, n) * 0x1p40; /* in units; exact scaling */
        double cr = (double)S;
        int ok;
        if ((__int128)cr == S) {
            ok = r == cr; /* representable: nothing else is within an ulp */
        } else {
            double other = (__int128)cr > S ? nextafter(cr, -INFINITY) : nextafter(cr, INFINITY);
            ok = r == cr || r == other;
        }
        n_cr += r == cr;
        if (!ok) bad = 1, bad_trial = trial, bad_r = r;
    }
    CHECKF(!bad, "trial %d: got %a * 2^-40", bad_trial, bad_r);
    CHECK(n_cr > 0);

    /* (3) small integers and multiples of 1/1024: every partial sum is an exact double
     * (|sum| * 1024 < 2^53), so the result is exactly the int64 sum. */
    bad = 0;
    for (int trial = 0; trial < 40 && !bad; trial++) {
        size_t n = (size_t)rnd_range(1, MAXN);
        int64_t S = 0;
        double scale = trial % 2 ? 1.0 / 1024 : 1.0;
        for (size_t i = 0; i < n; i++) {
            int64_t k = trial % 4 < 2 ? rnd_range(-100000, 100000) : rnd_range(0, 1000);
            S += k;
            v[i] = (double)k * scale;
        }
        if (xsum_of(v, n) != (double)S * scale) bad = 1, bad_trial = trial;
    }
    CHECKF(!bad, "integer trial %d", bad_trial);
    free(v);
}

/* ---- kernels/common/exchange ---- */

/* Owners and ranges: every key of rank r's range is owned by r, the ranges tile [0, n)
 * in rank order, and a hand-worked case: 10 keys on 3 ranks are [0,3) [3,6) [6,10). */
static void test_owner_ranges(void)
{
    int64_t lo, hi;
    hb_range_of(10, 0, 3, &lo, &hi);
    CHECK(lo == 0 && hi == 3);
    hb_range_of(10, 2, 3, &lo, &hi);
    CHECK(lo == 6 && hi == 10);
    CHECK(hb_owner_of(2, 10, 3) == 0 && hb_owner_of(3, 10, 3) == 1 && hb_owner_of(9, 10, 3) == 2);
    int bad = 0;
    for (int64_t n = 1; n <= 40; n++)
        for (int size = 1; size <= 9; size++) {
            int64_t next = 0;
            for (int r = 0; r < size; r++) {
                hb_range_of(n, r, size, &lo, &hi);
                if (lo != next || hi < lo) bad = 1;
                for (int64_t k = lo; k < hi; k++)
                    if (hb_owner_of(k, n, size) != r) bad = 1;
                next = hi;
            }
            if (next != n) bad = 1;
        }
    CHECK(!bad);
    int64_t start, count;
    hb_chunk_range(2, 10, 25, &start, &count); /* the last chunk: rows 20..24 */
    CHECK(start == 20 && count == 5);
    hb_chunk_range(1, 10, 25, &start, &count);
    CHECK(start == 10 && count == 10);
}

/* The block-padded layout, worked by hand: blocks of 4 elements, parts of 5, 0 and 9
 * elements take 2, 0 and 3 blocks and start at elements 0, 8 and 8; compacting puts the
 * 14 real elements together in rank order. Then a whole exchange on one rank. */
static void test_exchange_layout(void)
{
    const int saved = hb_size;
    hb_size = 3; /* layout and compaction need no MPI */
    hb_xchg x;
    CHECK(hb_xchg_init(&x, 4) == 0);
    x.scount[0] = 5, x.scount[1] = 0, x.scount[2] = 9;
    CHECK(hb_xchg_layout(&x) == 0);
    CHECK(x.sdispl[0] == 0 && x.sdispl[1] == 8 && x.sdispl[2] == 8 && x.stotal == 20);
    CHECK(x.sblocks[0] == 2 && x.sblocks[1] == 0 && x.sblocks[2] == 3);
    CHECK(x.sbdispl[0] == 0 && x.sbdispl[1] == 2 && x.sbdispl[2] == 2);
    int32_t buf[20];
    for (int i = 0; i < 20; i++) buf[i] = -1;
    for (int i = 0; i < 5; i++) buf[i] = i;
    for (int i = 0; i < 9; i++) buf[8 + i] = 5 + i;
    for (int d = 0; d < 3; d++) x.rcount[d] = x.scount[d], x.rdispl[d] = x.sdispl[d];
    x.received = 14;
    CHECK(hb_xchg_compact(&x, buf, sizeof *buf) == 14);
    int ok = 1;
    for (int i = 0; i < 14; i++) ok &= buf[i] == i;
    CHECK(ok);
    hb_xchg_free(&x);
    /* past 2^31 elements for one rank: too many for int counts of single elements, but
     * 3e9 elements are 732422 blocks of 4096 (nothing is allocated by a layout) */
    CHECK(hb_xchg_init(&x, 1) == 0);
    x.scount[1] = 3000000000u;
    CHECK(hb_xchg_layout(&x) == HB_EINTERNAL && has(hb_err_msg(), "too many"));
    hb_err_clear();
    hb_xchg_free(&x);
    CHECK(hb_xchg_init(&x, 4096) == 0);
    x.scount[0] = 5, x.scount[1] = 3000000000u, x.scount[2] = 7;
    CHECK(hb_xchg_layout(&x) == 0);
    CHECK(x.sblocks[0] == 1 && x.sblocks[1] == 732422 && x.sbdispl[2] == 732423);
    CHECK(x.sdispl[2] == (size_t)732423 * 4096 && x.stotal == (size_t)732424 * 4096);
    hb_xchg_free(&x);
    hb_size = 1;
    CHECK(hb_xchg_init(&x, 4) == 0);
    x.scount[0] = 6;
    CHECK(hb_xchg_layout(&x) == 0 && x.stotal == 8);
    CHECK(hb_xchg_counts(&x) == 0 && x.rcount[0] == 6 && x.received == 6 && x.rtotal == 8);
    double send[8], recv[8];
    for (int i = 0; i < 8; i++) send[i] = i < 6 ? 1.5 * i : NAN;
    CHECK(hb_xchg_move(&x, send, recv, sizeof *send) == 0);
    CHECK(send[6] == 0 && send[7] == 0); /* the padding travels as zeros */
    ok = 1;
    for (int i = 0; i < 6; i++) ok &= recv[i] == 1.5 * i;
    CHECK(ok);
    hb_xchg_free(&x);
    hb_size = saved;
}

/* ---- src/error ---- */

static void test_errors(void)
{
    hb_err_clear();
    CHECK(hb_err_code() == 0 && strcmp(hb_err_msg(), "") == 0);
    CHECK(hb_err_set(HB_EDATA, "input.h5", "bad %s", "row") == HB_EDATA);
    /* The first error is the cause: a later one must not replace it. Its return value is
     * not checked: hb.h says it returns the code given, error.c returns the first one. */
    hb_err_set(HB_ECONFIG, "job", "later");
    CHECK(hb_err_code() == HB_EDATA);
    CHECK(strcmp(hb_err_msg(), "input.h5: bad row") == 0);
    hb_err_clear();
    CHECK(hb_err_at(HB_EINTERNAL, "x.c", 12, "MPI_Barrier") == HB_EINTERNAL);
    CHECK(has(hb_err_msg(), "MPI_Barrier") && has(hb_err_msg(), "x.c:12"));
    hb_err_clear();
    /* the trail: where the error was recorded, then each place that passed it on */
    CHECK(strcmp(hb_err_trail(), "") == 0);
    CHECK(hb_err_trace(HB_EIO, "a.c", 1) == HB_EIO && strcmp(hb_err_trail(), "") == 0); /* nothing recorded */
    int line = __LINE__ + 1;
    hb_err_set(HB_EIO, "out.h5", "write failed");
    CHECK(hb_err_trace(HB_EIO, "caller.c", 7) == HB_EIO);
    char want[128];
    snprintf(want, sizeof want, "%s:%d <- caller.c:7", __FILE__, line);
    CHECKF(strcmp(hb_err_trail(), want) == 0, "trail '%s', expected '%s'", hb_err_trail(), want);
    CHECK(strcmp(hb_err_msg(), "out.h5: write failed") == 0);
    hb_err_clear();
    CHECK(strcmp(hb_err_trail(), "") == 0);
    /* with one rank there is nobody to agree with: the status passes through */
    CHECK(hb_agree(0) == 0);
    CHECK(hb_agree(HB_EDATA) == HB_EDATA);
    char *s = hb_strdup("abc");
    CHECK(s && strcmp(s, "abc") == 0);
    free(s);
}

/* ---- src/tzmap: calendar ---- */

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int month_len(int64_t y, int m)
{
    static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

static void test_civil_known(void)
{
    /* Day counts from 1970-01-01, by hand: 2000-01-01 is 30*365 + 7 leap days = 10957;
     * 1600-01-01 is 370*365 + 90 leap days before it = -135140, plus Jan and Feb 1600
     * (31 + 29) = -135080; 1900-03-01 is -(70*365 + 17) + 31 + 28 = -25508. */
    CHECK(hb_days_from_civil(1970, 1, 1) == 0);
    CHECK(hb_days_from_civil(1969, 12, 31) == -1);
    CHECK(hb_days_from_civil(2000, 1, 1) == 10957);
    CHECK(hb_days_from_civil(2000, 2, 29) == 11016);
    CHECK(hb_days_from_civil(2024, 3, 31) == 19813);
    CHECK(hb_days_from_civil(1600, 3, 1) == -135080);
    CHECK(hb_days_from_civil(1900, 3, 1) == -25508);
    /* 0000-03-01, the epoch of Hinnant's published algorithm, is day -719468 */
    CHECK(hb_days_from_civil(0, 3, 1) == -719468);

    int64_t y;
    int m, d;
    hb_civil_from_days(-135080, &y, &m, &d);
    CHECK(y == 1600 && m == 3 && d == 1);
    hb_civil_from_days(-135081, &y, &m, &d); /* 1600 is a leap year */
    CHECK(y == 1600 && m == 2 && d == 29);
    hb_civil_from_days(-25509, &y, &m, &d); /* 1900 is not */
    CHECK(y == 1900 && m == 2 && d == 28);
    hb_civil_from_days(11016, &y, &m, &d);
    CHECK(y == 2000 && m == 2 && d == 29);
    hb_civil_from_days(-1, &y, &m, &d);
    CHECK(y == 1969 && m == 12 && d == 31);
}

/* Walks day by day with an independent successor rule, and checks both directions. */
static void test_civil_walk(void)
{
    const int64_t z0 = -1000000, z1 = 1000000;
    int64_t y;
    int m, d;
    hb_civil_from_days(z0, &y, &m, &d);
    int bad = 0;
    int64_t bad_z = 0;
    for (int64_t z = z0; z <= z1 && !bad; z++) {
        int64_t yy;
        int mm, dd;
        hb_civil_from_days(z, &yy, &mm, &dd);
        if (yy != y || mm != m || dd != d || hb_days_from_civil(y, m, d) != z) bad = 1, bad_z = z;
        if (++d > month_len(y, m)) {
            d = 1;
            if (++m > 12) m = 1, y++;
        }
    }
    CHECKF(!bad, "day %lld", (long long)bad_z);

    /* far outside the walked range, at least the round trip must hold */
    bad = 0;
    for (int i = 0; i < 20000 && !bad; i++) {
        int64_t z = rnd_range(-400000000, 400000000), yy;
        int mm, dd;
        hb_civil_from_days(z, &yy, &mm, &dd);
        if (hb_days_from_civil(yy, mm, dd) != z || mm < 1 || mm > 12 || dd < 1 || dd > month_len(yy, mm))
            bad = 1, bad_z = z;
    }
    CHECKF(!bad, "day %lld", (long long)bad_z);
}

/* timegm is the C library's proleptic Gregorian calendar. */
static void test_civil_timegm(void)
{
    int bad = 0;
    int64_t by = 0;
    int bm = 0, bd = 0;
    for (int i = 0; i < 5000 && !bad; i++) {
        int64_t y = rnd_range(1, 9999);
        int m = (int)rnd_range(1, 12), d = (int)rnd_range(1, month_len(y, m));
        struct tm tm = {.tm_year = (int)(y - 1900), .tm_mon = m - 1, .tm_mday = d};
        if ((int64_t)timegm(&tm) != hb_days_from_civil(y, m, d) * 86400) bad = 1, by = y, bm = m, bd = d;
    }
    CHECKF(!bad, "%04lld-%02d-%02d", (long long)by, bm, bd);
}

static void test_yyyymmdd(void)
{
    CHECK(hb_days_from_yyyymmdd(20240229) == 19782); /* 19723 (2024-01-01) + 31 + 28 */
    CHECK(hb_days_from_yyyymmdd(19700101) == 0);
    CHECK(hb_days_from_yyyymmdd(20000229) == 11016);
    CHECK(hb_days_from_yyyymmdd(20230229) == INT64_MIN); /* 2023 is not a leap year */
    CHECK(hb_days_from_yyyymmdd(19000229) == INT64_MIN); /* nor is 1900 */
    CHECK(hb_days_from_yyyymmdd(20241301) == INT64_MIN);
    CHECK(hb_days_from_yyyymmdd(20240100) == INT64_MIN);
    CHECK(hb_days_from_yyyymmdd(20240431) == INT64_MIN);
    CHECK(hb_days_from_yyyymmdd(20240132) == INT64_MIN);
    CHECK(hb_days_from_yyyymmdd(0) == INT64_MIN);
    CHECK(hb_days_from_yyyymmdd(-5) == INT64_MIN);
    CHECK(hb_days_from_yyyymmdd(-20240101) == INT64_MIN);
}

/* ---- src/tzmap: zones ---- */

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static int64_t off(const hb_tzmap *m, int64_t t) { return hb_tzmap_local(m, t) - t; }

static void test_tz_valid(void)
{
    CHECK(hb_tz_valid("UTC"));
    CHECK(hb_tz_valid("Europe/Berlin"));
    CHECK(hb_tz_valid("America/New_York"));
    CHECK(!hb_tz_valid("Mars/Olympus"));
    CHECK(!hb_tz_valid("../etc/passwd"));
    CHECK(!hb_tz_valid("Europe/../Europe/Berlin"));
    CHECK(!hb_tz_valid("/etc/passwd"));
    CHECK(!hb_tz_valid(""));
    CHECK(!hb_tz_valid("Europe"));   /* a directory */
    CHECK(!hb_tz_valid("zone.tab")); /* a file in zoneinfo that is not a zone */
    hb_err_clear();
    CHECK(hb_tz_select("Mars/Olympus") == HB_ECONFIG);
    CHECK(hb_err_code() == HB_ECONFIG && has(hb_err_msg(), "Mars/Olympus"));
    hb_err_clear();
}

/* Published 2024 changes: EU summer time from 2024-03-31 01:00 UTC to 2024-10-27
 * 01:00 UTC (Directive 2000/84/EC); Berlin is UTC+1 in winter, UTC+2 in summer. */
static void test_tz_berlin_2024(void)
{
    hb_tzmap m = {0};
    CHECK(hb_tz_select("Europe/Berlin") == 0);
    if (!CHECK(hb_tzmap_cover(&m, utc(2024, 1, 1, 0, 0, 0), utc(2024, 12, 31, 23, 59, 59)) == 0)) return;
    CHECK(utc(2024, 3, 31, 1, 0, 0) == 1711846800);
    CHECK(utc(2024, 10, 27, 1, 0, 0) == 1729990800);
    CHECK(hb_tzmap_local(&m, 1711846799) == 1711846799 + 3600);
    CHECK(hb_tzmap_local(&m, 1711846800) == 1711846800 + 7200);
    CHECK(hb_tzmap_local(&m, 1729990799) == 1729990799 + 7200);
    CHECK(hb_tzmap_local(&m, 1729990800) == 1729990800 + 3600);
    /* the first and last second of the covered year, and local midnight of a summer day */
    CHECK(off(&m, utc(2024, 1, 1, 0, 0, 0)) == 3600);
    CHECK(off(&m, utc(2024, 12, 31, 23, 59, 59)) == 3600);
    CHECK(hb_tzmap_local(&m, utc(2024, 7, 14, 22, 0, 0)) == utc(2024, 7, 15, 0, 0, 0));
    hb_tzmap_free(&m);
    CHECK(m.days == NULL && m.ndays == 0);
}

/* US rules since 2007: second Sunday of March 02:00 EST (07:00 UTC) to first Sunday of
 * November 02:00 EDT (06:00 UTC); 2024-03-10 and 2024-11-03. EST is -5 h, EDT -4 h. */
static void test_tz_new_york_2024(void)
{
    hb_tzmap m = {0};
    CHECK(hb_tz_select("America/New_York") == 0);
    if (!CHECK(hb_tzmap_cover(&m, utc(2024, 1, 1, 0, 0, 0), utc(2024, 12, 31, 23, 59, 59)) == 0)) return;
    int64_t on = utc(2024, 3, 10, 7, 0, 0), back = utc(2024, 11, 3, 6, 0, 0);
    CHECK(on == 1710054000 && back == 1730613600);
    CHECK(off(&m, on - 1) == -5 * 3600);
    CHECK(off(&m, on) == -4 * 3600);
    CHECK(off(&m, back - 1) == -4 * 3600);
    CHECK(off(&m, back) == -5 * 3600);
    /* a UTC day whose local date is the previous day */
    CHECK(hb_tzmap_local(&m, utc(2024, 1, 1, 3, 0, 0)) == utc(2023, 12, 31, 22, 0, 0));
    hb_tzmap_free(&m);
}

/* Lord Howe Island moves by 30 minutes: UTC+10:30 standard, UTC+11 summer. In 2024 the
 * summer ended on the first Sunday of April (April 7) at 02:00 local summer time,
 * which is 2024-04-06 15:00 UTC. */
static void test_tz_lord_howe(void)
{
    hb_tzmap m = {0};
    CHECK(hb_tz_select("Australia/Lord_Howe") == 0);
    if (!CHECK(hb_tzmap_cover(&m, utc(2024, 3, 1, 0, 0, 0), utc(2024, 5, 1, 0, 0, 0)) == 0)) return;
    int64_t t = utc(2024, 4, 6, 15, 0, 0);
    CHECK(off(&m, t - 1) == 11 * 3600);
    CHECK(off(&m, t) == 10 * 3600 + 1800);
    hb_tzmap_free(&m);
}

/* Negative times index days before 1970: floor division, not truncation. */
static void test_tz_negative(void)
{
    hb_tzmap m = {0};
    CHECK(hb_tz_select("UTC") == 0);
    if (!CHECK(hb_tzmap_cover(&m, utc(1969, 1, 1, 0, 0, 0), 86399) == 0)) return;
    CHECK(m.day0 == -365);
    static const int64_t ts[] = {-1, -86399, -86400, -86401, -31536000, 0, 86399};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) CHECKF(hb_tzmap_local(&m, ts[i]) == ts[i], "t = %lld", (long long)ts[i]);
    hb_tzmap_free(&m);

    /* West Germany kept CET all year from 1950 to 1979, so 1969 is UTC+1 in Berlin */
    hb_tzmap b = {0};
    CHECK(hb_tz_select("Europe/Berlin") == 0);
    if (!CHECK(hb_tzmap_cover(&b, utc(1969, 1, 1, 0, 0, 0), -1) == 0)) return;
    CHECK(hb_tzmap_local(&b, -1) == 3599);
    CHECK(hb_tzmap_local(&b, -3600) == 0);
    CHECK(off(&b, utc(1969, 7, 1, 12, 0, 0)) == 3600);
    hb_tzmap_free(&b);
}

/* A map extended in both directions keeps what it had and adds the rest. */
static void test_tz_extend(void)
{
    hb_tzmap m = {0};
    CHECK(hb_tz_select("Europe/Berlin") == 0);
    if (!CHECK(hb_tzmap_cover(&m, utc(2024, 6, 1, 0, 0, 0), utc(2024, 6, 30, 0, 0, 0)) == 0)) return;
    CHECK(m.ndays == 30);
    CHECK(hb_tzmap_cover(&m, utc(2024, 10, 27, 12, 0, 0), utc(2024, 10, 27, 12, 0, 0)) == 0);
    CHECK(hb_tzmap_cover(&m, utc(2024, 3, 31, 0, 0, 0), utc(2024, 3, 31, 0, 0, 0)) == 0);
    CHECK(m.day0 == hb_days_from_civil(2024, 3, 31));
    CHECK(m.ndays == 211); /* 2024-03-31 .. 2024-10-27: 1 + 30 + 31 + 30 + 31 + 31 + 30 + 27 */
    CHECK(off(&m, 1711846799) == 3600 && off(&m, 1711846800) == 7200);
    CHECK(off(&m, utc(2024, 6, 15, 0, 0, 0)) == 7200);
    CHECK(off(&m, 1729990799) == 7200 && off(&m, 1729990800) == 3600);
    /* covering a range already inside must not shrink or shift the map */
    CHECK(hb_tzmap_cover(&m, utc(2024, 5, 1, 0, 0, 0), utc(2024, 5, 2, 0, 0, 0)) == 0);
    CHECK(m.ndays == 211 && off(&m, 1729990800) == 3600);
    hb_tzmap_free(&m);
}

static void test_tz_absurd(void)
{
    hb_tzmap m = {0};
    hb_err_clear();
    CHECK(hb_tzmap_cover(&m, (int64_t)-1e17, (int64_t)1e17) == HB_EDATA);
    CHECK(hb_err_code() == HB_EDATA && has(hb_err_msg(), "days"));
    CHECK(m.days == NULL);
    hb_err_clear();
    CHECK(hb_tzmap_cover(&m, INT64_MIN, INT64_MAX) == HB_EDATA);
    hb_err_clear();
    hb_tzmap_free(&m);
}

/* localtime_r applies the zone rules directly; the map must agree with it everywhere. */
static void test_tz_vs_localtime(void)
{
    hb_tzmap m = {0};
    CHECK(hb_tz_select("Europe/Berlin") == 0);
    int64_t t0 = utc(1990, 1, 1, 0, 0, 0), t1 = utc(2041, 1, 1, 0, 0, 0) - 1;
    if (!CHECK(hb_tzmap_cover(&m, t0, t1) == 0)) return;
    int bad = 0;
    int64_t bad_t = 0;
    for (int i = 0; i < 5000 && !bad; i++) {
        int64_t t = rnd_range(t0, t1);
        time_t tt = (time_t)t;
        struct tm tm;
        if (!localtime_r(&tt, &tm) || hb_tzmap_local(&m, t) != t + tm.tm_gmtoff) bad = 1, bad_t = t;
    }
    CHECKF(!bad, "t = %lld", (long long)bad_t);

    /* Random times rarely land next to a change, so check each change by the EU rule
     * (in force since 1996): last Sunday of March and of October, at 01:00 UTC. */
    bad = 0;
    int bad_y = 0;
    for (int y = 1996; y <= 2040 && !bad; y++) {
        for (int mo = 3; mo <= 10; mo += 7) {
            int64_t t = utc(y, mo, 31, 1, 0, 0);
            time_t tt = (time_t)t;
            struct tm g;
            gmtime_r(&tt, &g);
            t -= (int64_t)g.tm_wday * 86400;
            int64_t before = mo == 3 ? 3600 : 7200, after = mo == 3 ? 7200 : 3600;
            if (off(&m, t - 1) != before || off(&m, t) != after) bad = 1, bad_y = y;
        }
    }
    CHECKF(!bad, "year %d", bad_y);
    hb_tzmap_free(&m);
}

/* ---- src/opts ---- */

static void test_parse(void)
{
    double v = 0;
    CHECK(hb_parse_size("1M", &v) == 0 && v == 1e6);
    CHECK(hb_parse_size("2k", &v) == 0 && v == 2000);
    CHECK(hb_parse_size("1.5G", &v) == 0 && v == 1.5e9);
    CHECK(hb_parse_size(" 7 ", &v) == 0 && v == 7);
    CHECK(hb_parse_size("250", &v) == 0 && v == 250);
    CHECK(hb_parse_size("", &v) != 0);
    CHECK(hb_parse_size("   ", &v) != 0);
    CHECK(hb_parse_size("abc", &v) != 0);
    CHECK(hb_parse_size("1X", &v) != 0);
    CHECK(hb_parse_size("1MM", &v) != 0);
    CHECK(hb_parse_size("M", &v) != 0);
    CHECK(hb_parse_size("1m", &v) != 0); /* m is minutes, not mega */
    CHECK(hb_parse_size("inf", &v) != 0);
    CHECK(hb_parse_size("nan", &v) != 0);
    CHECK(hb_parse_size("1e400", &v) != 0);

    CHECK(hb_parse_duration("60s", &v) == 0 && v == 60);
    CHECK(hb_parse_duration("5m", &v) == 0 && v == 300);
    CHECK(hb_parse_duration("2h", &v) == 0 && v == 7200);
    CHECK(hb_parse_duration("90", &v) == 0 && v == 90);
    CHECK(hb_parse_duration("1.5h", &v) == 0 && v == 5400);
    CHECK(hb_parse_duration("1d", &v) != 0);
    CHECK(hb_parse_duration("5 min", &v) != 0);

    CHECK(hb_parse_number("1e3", &v) == 0 && v == 1000);
    CHECK(hb_parse_number("-2.5", &v) == 0 && v == -2.5);
    CHECK(hb_parse_number("1k", &v) != 0);

    int b = 0;
    CHECK(hb_parse_bool("true", &b) == 0 && b == 1);
    CHECK(hb_parse_bool("YES", &b) == 0 && b == 1);
    CHECK(hb_parse_bool("on", &b) == 0 && b == 1);
    CHECK(hb_parse_bool("1", &b) == 0 && b == 1);
    CHECK(hb_parse_bool("False", &b) == 0 && b == 0);
    CHECK(hb_parse_bool("no", &b) == 0 && b == 0);
    CHECK(hb_parse_bool("off", &b) == 0 && b == 0);
    CHECK(hb_parse_bool("0", &b) == 0 && b == 0);
    CHECK(hb_parse_bool("maybe", &b) != 0);
    CHECK(hb_parse_bool("", &b) != 0);
    CHECK(hb_parse_bool("2", &b) != 0);

    /* failures are contract codes: usage, for the command line to report */
    CHECK(hb_parse_size("abc", &v) == HB_EUSAGE);
    CHECK(hb_parse_duration("1d", &v) == HB_EUSAGE);
    CHECK(hb_parse_number("", &v) == HB_EUSAGE);
    CHECK(hb_parse_bool("maybe", &b) == HB_EUSAGE);
}

static const hb_option test_table[] = {
    {"name", HB_OPT_STRING, NULL, 1, 0, NULL, "free text"},
    {"mode", HB_OPT_CHOICE, "fast", 1, 0, "fast|exact|off", "a choice"},
    {"count", HB_OPT_INT, "3", 1, 10, NULL, "integer in [1, 10]"},
    {"ratio", HB_OPT_FLOAT, "0.5", 0, 1, NULL, "real in [0, 1]"},
    {"free", HB_OPT_FLOAT, NULL, 1, 0, NULL, "unbounded real, no default"},
    {"pcts", HB_OPT_LIST, "50, 85, 95", 0, 100, NULL, "list in [0, 100]"},
    {"flag", HB_OPT_BOOL, "yes", 1, 0, NULL, "bool"},
    {"rows", HB_OPT_SIZE, "1k", 1, 1e8, NULL, "size in [1, 1e8]"},
    {"every", HB_OPT_DURATION, "60s", 0, 86400, NULL, "duration in [0, 1 day]"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* 1 when option name of test_table accepts value, 0 when it refuses it with a message
 * naming the option (the job loader passes that message on), -1 otherwise. */
static int accepts(const char *name, const char *value)
{
    char msg[256] = "";
    const hb_option *o = hb_opt_find(test_table, name);
    if (!o) return -1;
    if (hb_opt_check(o, value, msg, sizeof msg) == 0) return 1;
    if (has(msg, name)) return 0;
    printf("    message for %s = '%s' lacks the name: %s\n", name, value, msg);
    return -1;
}

static void test_opt_check(void)
{
    char why[200];
    /* a bad value is a bad job file */
    CHECK(hb_opt_check(&test_table[2], "11", why, sizeof why) == HB_ECONFIG && has(why, "out of range"));
    CHECK(hb_opt_check(&test_table[1], "slow", why, sizeof why) == HB_ECONFIG);
    CHECK(hb_opt_check(&test_table[2], "7", why, sizeof why) == 0);

    CHECK(hb_opt_find(test_table, "mode") == &test_table[1]);
    CHECK(hb_opt_find(test_table, "nope") == NULL);

    CHECK(accepts("name", "anything at all") == 1);
    CHECK(accepts("name", "") == 0);

    CHECK(accepts("mode", "fast") == 1);
    CHECK(accepts("mode", "exact") == 1);
    CHECK(accepts("mode", "off") == 1);
    CHECK(accepts("mode", "exac") == 0);  /* a prefix of a choice */
    CHECK(accepts("mode", "exactly") == 0);
    CHECK(accepts("mode", "fast|exact") == 0);
    CHECK(accepts("mode", "") == 0);

    CHECK(accepts("count", "1") == 1); /* bounds are inclusive */
    CHECK(accepts("count", "10") == 1);
    CHECK(accepts("count", " 4 ") == 1);
    CHECK(accepts("count", "0") == 0);
    CHECK(accepts("count", "11") == 0);
    CHECK(accepts("count", "3.5") == 0);
    CHECK(accepts("count", "three") == 0);

    CHECK(accepts("ratio", "0") == 1);
    CHECK(accepts("ratio", "1") == 1);
    CHECK(accepts("ratio", "0.25") == 1);
    CHECK(accepts("ratio", "1.0001") == 0);
    CHECK(accepts("ratio", "-0.1") == 0);
    CHECK(accepts("ratio", "nan") == 0);
    CHECK(accepts("ratio", "fast") == 0);
    CHECK(accepts("free", "-1e300") == 1); /* min > max: no bounds */
    CHECK(accepts("free", "inf") == 0);

    CHECK(accepts("pcts", "50, 85, 95") == 1);
    CHECK(accepts("pcts", "0,100") == 1);
    CHECK(accepts("pcts", "50,abc") == 0);
    CHECK(accepts("pcts", "50, 101") == 0);
    CHECK(accepts("pcts", "-1") == 0);
    CHECK(accepts("pcts", "") == 0);
    CHECK(accepts("pcts", " , ") == 0);
    char list[512] = "";
    for (int i = 0; i < HB_OPT_LIST_MAX; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", i);
    CHECK(accepts("pcts", list) == 1);
    snprintf(list + strlen(list), sizeof list - strlen(list), ",99");
    CHECK(accepts("pcts", list) == 0); /* one more than HB_OPT_LIST_MAX */
    char msg[256];
    CHECK(hb_opt_check(hb_opt_find(test_table, "pcts"), "50,abc", msg, sizeof msg) != 0 && has(msg, "'abc'"));

    CHECK(accepts("flag", "true") == 1);
    CHECK(accepts("flag", "Off") == 1);
    CHECK(accepts("flag", "maybe") == 0);
    CHECK(accepts("flag", "") == 0);

    CHECK(accepts("rows", "1M") == 1);
    CHECK(accepts("rows", "1.5k") == 1); /* 1500 rows: integral after scaling */
    CHECK(accepts("rows", "100M") == 1); /* the upper bound, 1e8 */
    CHECK(accepts("rows", "101M") == 0);
    CHECK(accepts("rows", "0") == 0);
    CHECK(accepts("rows", "1.5") == 0); /* not a whole number of rows */
    CHECK(accepts("rows", "1X") == 0);

    CHECK(accepts("every", "5m") == 1);
    CHECK(accepts("every", "0") == 1);
    CHECK(accepts("every", "24h") == 1); /* 86400 s, the bound */
    CHECK(accepts("every", "25h") == 0);
    CHECK(accepts("every", "-1s") == 0);
    CHECK(accepts("every", "1d") == 0);
}

static void test_suggest(void)
{
    static const char *const names[] = {"kernel",      "input", "output", "timezone",
                                        "percentiles", "max_speed", "table", "segments", NULL};
    const char *s;
    CHECK((s = hb_suggest("percentile", names)) && strcmp(s, "percentiles") == 0);
    CHECK((s = hb_suggest("timezon", names)) && strcmp(s, "timezone") == 0);
    CHECK((s = hb_suggest("TimeZone", names)) && strcmp(s, "timezone") == 0);
    CHECK((s = hb_suggest("inptu", names)) && strcmp(s, "input") == 0); /* two edits in five letters */
    CHECK((s = hb_suggest("maxspeed", names)) && strcmp(s, "max_speed") == 0);
    CHECK(hb_suggest("zzzzzz", names) == NULL);
    CHECK(hb_suggest("abcd", names) == NULL);
    static const char *const none[] = {NULL};
    CHECK(hb_suggest("input", none) == NULL);
}

/* The command-line reader: both value forms, flags, aliases, "--", the last value
 * winning, defaults, and 64 naming the option for every kind of mistake. */
static void test_args(void)
{
    static const hb_option gen[] = {{"rows", HB_OPT_SIZE, "10M", 1, 1e12, NULL, "rows"},
                                    {"invalid", HB_OPT_FLOAT, "0.001", 0, 1, NULL, "fraction"},
                                    {"timezone", HB_OPT_STRING, "UTC", 1, 0, NULL, "zone"},
                                    {"no-doc-id", HB_OPT_BOOL, "false", 1, 0, NULL, "flag"},
                                    {NULL, 0, NULL, 0, 0, NULL, NULL}};
    static const hb_option common[] = {{"output", HB_OPT_STRING, NULL, 1, 0, NULL, "file"},
                                       {"quiet", HB_OPT_BOOL, "false", 1, 0, NULL, "quiet"},
                                       {NULL, 0, NULL, 0, 0, NULL, NULL}};
    static const char *const aliases[] = {"-o", "output", "-q", "quiet", NULL};
    const hb_option *const tables[] = {common, gen, NULL};
    char *argv[] = {"-o", "x.h5", "--rows", "2k", "--invalid=0.5", "word", "--no-doc-id", "-q",
                    "--rows=3M", "--", "--rows", "-x"};
    hb_args a;
    CHECK(hb_args_parse("gen t", tables, aliases, 12, argv, &a) == 0);
    hb_optset o = hb_args_opts(&a, gen), c = hb_args_opts(&a, common);
    CHECK(hb_opt_num(&o, "rows") == 3e6);
    CHECK(hb_opt_num(&o, "invalid") == 0.5);
    CHECK(strcmp(hb_opt_str(&o, "timezone"), "UTC") == 0);
    CHECK(hb_opt_bool(&o, "no-doc-id") == 1 && hb_opt_bool(&c, "quiet") == 1);
    CHECK(strcmp(hb_opt_str(&c, "output"), "x.h5") == 0);
    CHECK(a.npos == 3 && strcmp(a.pos[0], "word") == 0 && strcmp(a.pos[1], "--rows") == 0 &&
          strcmp(a.pos[2], "-x") == 0);
    hb_args_free(&a);

    static const struct {
        int argc;
        char *argv[3];
        const char *msg;
    } bad[] = {
        {1, {"--rowz"}, "gen t: unknown option '--rowz' (did you mean '--rows'?)"},
        {1, {"--frobnicate=1"}, "gen t: unknown option '--frobnicate=1' (h5batch gen t --help lists the options)"},
        {1, {"--rows"}, "gen t: --rows needs a value"},
        {2, {"--rows", "1.5"}, "gen t: --rows needs an integer in [1, 1000000000000], got '1.5'"},
        {1, {"--rows=0"}, "gen t: --rows needs an integer in [1, 1000000000000], got '0'"},
        {2, {"--invalid", "2"}, "gen t: --invalid needs a number in [0, 1], got '2'"},
        {1, {"--no-doc-id=maybe"}, "gen t: --no-doc-id needs true or false, got 'maybe'"},
        {1, {"--timezone="}, "gen t: --timezone needs a value, got ''"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hb_err_clear();
        int rc = hb_args_parse("gen t", tables, aliases, bad[i].argc, (char **)bad[i].argv, &a);
        CHECKF(rc == HB_EUSAGE && strcmp(hb_err_msg(), bad[i].msg) == 0, "case %zu: %d '%s'", i, rc, hb_err_msg());
        hb_args_free(&a);
    }
    hb_err_clear();
}

static void test_accessors(void)
{
    /* count appears twice: the later one (as --set appends) must win */
    hb_kv kv[] = {{"count", "4", 1},  {"mode", "exact", 2}, {"count", "7", 0},  {"pcts", "10, 20.5", 3},
                  {"flag", "off", 4}, {"rows", "2M", 5},    {"every", "2h", 6}, {"name", "n1", 7}};
    hb_optset o = {test_table, kv, (int)(sizeof kv / sizeof *kv)};
    double out[HB_OPT_LIST_MAX];
    CHECK(hb_opt_num(&o, "count") == 7);
    CHECK(strcmp(hb_opt_str(&o, "mode"), "exact") == 0);
    CHECK(strcmp(hb_opt_str(&o, "name"), "n1") == 0);
    CHECK(hb_opt_list(&o, "pcts", out) == 2 && out[0] == 10 && out[1] == 20.5);
    CHECK(hb_opt_bool(&o, "flag") == 0);
    CHECK(hb_opt_num(&o, "rows") == 2e6);
    CHECK(hb_opt_num(&o, "every") == 7200);
    CHECK(hb_opt_num(&o, "ratio") == 0.5); /* not given: the default */

    hb_optset d = {test_table, NULL, 0};
    CHECK(strcmp(hb_opt_str(&d, "mode"), "fast") == 0);
    CHECK(hb_opt_num(&d, "count") == 3);
    CHECK(hb_opt_num(&d, "rows") == 1000);
    CHECK(hb_opt_num(&d, "every") == 60);
    CHECK(hb_opt_bool(&d, "flag") == 1);
    CHECK(hb_opt_list(&d, "pcts", out) == 3 && out[0] == 50 && out[1] == 85 && out[2] == 95);
    CHECK(hb_opt_str(&d, "name") == NULL);
    CHECK(isnan(hb_opt_num(&d, "free")));
    CHECK(hb_opt_str(&d, "no_such_option") == NULL);
    CHECK(isnan(hb_opt_num(&d, "no_such_option")));
}

/* ---- src/job ---- */

static char tmpdir[64];
static char job_path[512];

/* Writes text as tmpdir/name and loads it; the path is left in job_path for messages. */
static int load(const char *name, const char *text, char *const *sets, int nsets, hb_job *job)
{
    snprintf(job_path, sizeof job_path, "%s/%s", tmpdir, name);
    FILE *f = fopen(job_path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("cannot write %s\n", job_path);
        exit(2);
    }
    hb_err_clear();
    return hb_job_load(job_path, sets, nsets, job);
}

/* The message names job_path and line (0: no line, only the file). */
static int msg_at(int line)
{
    char want[600];
    if (line > 0) snprintf(want, sizeof want, "%s:%d: ", job_path, line);
    else snprintf(want, sizeof want, "%s: ", job_path);
    if (strncmp(hb_err_msg(), want, strlen(want)) == 0) return 1;
    printf("    message '%s' does not start with '%s'\n", hb_err_msg(), want);
    return 0;
}

static const char *opt_of(const hb_step *s, const char *name) { return hb_opt_str(&s->opts, name); }

static const char valid_job[] = "; nightly traffic job\n"  /* 1 */
                                "[job]\n"                  /* 2 */
                                "threads = 3\n"            /* 3 */
                                "chunk_rows = 1M\n"        /* 4 */
                                "\n"                       /* 5 */
                                "[step aggregate]\n"       /* 6 */
                                "kernel = traffic\n"       /* 7 */
                                "input = in.h5\n"          /* 8 */
                                "output = out.h5\n"        /* 9 */
                                "timezone = Europe/Berlin\n" /* 10 */
                                "percentiles = 50, 90\n"   /* 11 */
                                "max_speed = 100\n"        /* 12 */
                                "\n"                       /* 13 */
                                "[step second]\n"          /* 14 */
                                "kernel = traffic\n"       /* 15 */
                                "input = out.h5\n"         /* 16 */
                                "output = out2.h5\n";      /* 17 */

static void test_job_valid(void)
{
    hb_job job;
    int rc = load("nightly.ini", valid_job, NULL, 0, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0 && CHECK(job.nsteps == 2)) {
        const hb_step *a = &job.steps[0], *b = &job.steps[1];
        CHECK(strcmp(a->name, "aggregate") == 0 && a->line == 6);
        CHECK(strcmp(b->name, "second") == 0 && b->line == 14);
        CHECK(a->kernel == hb_kernel_find("traffic") && a->kernel && strcmp(a->kernel->name, "traffic") == 0);
        CHECK(b->kernel == a->kernel);
        CHECK(strcmp(a->input, "in.h5") == 0 && strcmp(a->output, "out.h5") == 0);
        CHECK(strcmp(b->input, "out.h5") == 0 && strcmp(b->output, "out2.h5") == 0);
        CHECK(a->nokv == 3); /* kernel, input and output are not kernel options */
        CHECK(strcmp(opt_of(a, "timezone"), "Europe/Berlin") == 0);
        double p[HB_OPT_LIST_MAX];
        CHECK(hb_opt_list(&a->opts, "percentiles", p) == 2 && p[0] == 50 && p[1] == 90);
        CHECK(hb_opt_num(&a->opts, "max_speed") == 100);
        CHECK(strcmp(opt_of(b, "timezone"), "UTC") == 0); /* the kernel's default */
        CHECK(hb_opt_num(&b->opts, "max_speed") == 250);
        CHECK(strcmp(opt_of(b, "table"), "/observations") == 0);
        CHECK(job.threads == 3);
        CHECK(job.chunk_rows == 1000000);
        CHECK(job.checkpoint_interval == 60); /* default "60s" */
        CHECK(strcmp(job.name, "nightly") == 0);
        CHECK(strcmp(job.run_dir, "nightly.run") == 0);
        CHECK(strcmp(job.path, job_path) == 0);
    }
    hb_job_free(&job);
    hb_err_clear();
}

static void test_job_defaults(void)
{
    hb_job job;
    static const char minimal[] = "[step s]\nkernel = traffic\ninput = a.h5\noutput = b.h5\n";
    unsetenv("OMP_NUM_THREADS");
    int rc = load("weekly.v2.job", minimal, NULL, 0, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        CHECK(strcmp(job.name, "weekly.v2") == 0); /* only the last extension goes */
        CHECK(strcmp(job.run_dir, "weekly.v2.run") == 0);
        CHECK(job.threads == 1);
        CHECK(job.chunk_rows == 0); /* 0: the kernel chooses */
        CHECK(job.nkv == 0);
    }
    hb_job_free(&job);

    setenv("OMP_NUM_THREADS", "6", 1);
    rc = load("noext", minimal, NULL, 0, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        CHECK(job.threads == 6);
        CHECK(strcmp(job.name, "noext") == 0);
    }
    hb_job_free(&job);
    unsetenv("OMP_NUM_THREADS");

    static const char named[] = "[job]\nname = custom\ncheckpoint_interval = 5m\n"
                                "[step s]\nkernel = traffic\ninput = a.h5\noutput = b.h5\n";
    rc = load("named.ini", named, NULL, 0, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        CHECK(strcmp(job.name, "custom") == 0);
        CHECK(strcmp(job.run_dir, "custom.run") == 0);
        CHECK(job.checkpoint_interval == 300);
    }
    hb_job_free(&job);
    hb_err_clear();
}

static void test_job_expand(void)
{
    hb_job job;
    setenv("HB_UNIT_DIR", "/data/x", 1);
    setenv("HB_UNIT_NAME", "out", 1);
    unsetenv("HB_UNIT_UNDEFINED");
    static const char ok[] = "[step s]\n"
                             "kernel = traffic\n"
                             "input = ${HB_UNIT_DIR}/in.h5\n"
                             "output = ${HB_UNIT_DIR}/${HB_UNIT_NAME}.h5\n"
                             "table = $HOME/${HB_UNIT_NAME}\n";
    int rc = load("expand.ini", ok, NULL, 0, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        CHECK(strcmp(job.steps[0].input, "/data/x/in.h5") == 0);
        CHECK(strcmp(job.steps[0].output, "/data/x/out.h5") == 0);
        CHECK(strcmp(opt_of(&job.steps[0], "table"), "$HOME/out") == 0); /* only ${...} expands */
    }
    hb_job_free(&job);

    static const char undefined[] = "[step s]\n"
                                    "kernel = traffic\n"
                                    "input = in.h5\n"
                                    "output = ${HB_UNIT_UNDEFINED}/out.h5\n" /* 4 */;
    CHECK(load("undefined.ini", undefined, NULL, 0, &job) == HB_ECONFIG);
    CHECK(msg_at(4) && has(hb_err_msg(), "HB_UNIT_UNDEFINED"));
    hb_job_free(&job);

    static const char unclosed[] = "[step s]\n"
                                   "kernel = traffic\n"
                                   "input = ${HB_UNIT_DIR/in.h5\n" /* 3 */
                                   "output = out.h5\n";
    CHECK(load("unclosed.ini", unclosed, NULL, 0, &job) == HB_ECONFIG);
    CHECK(msg_at(3));
    hb_job_free(&job);
    unsetenv("HB_UNIT_DIR");
    unsetenv("HB_UNIT_NAME");
    hb_err_clear();
}

/* Each case: a job file that must be refused with HB_ECONFIG, the line the message must
 * name (0: the file only) and a phrase it must contain. */
static void expect_config_error(const char *name, const char *text, char *const *sets, int nsets, int line,
                                const char *phrase)
{
    hb_job job;
    int rc = load(name, text, sets, nsets, &job);
    CHECKF(rc == HB_ECONFIG, "%s: rc %d, message '%s'", name, rc, hb_err_msg());
    CHECKF(hb_err_code() == HB_ECONFIG, "%s: error code %d", name, hb_err_code());
    CHECKF(msg_at(line), "%s", name);
    CHECKF(has(hb_err_msg(), phrase), "%s: '%s' lacks '%s'", name, hb_err_msg(), phrase);
    hb_job_free(&job);
    hb_err_clear();
}

static void test_job_errors(void)
{
    expect_config_error("unknown_key.ini",
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "output = out.h5\n"
                        "percentile = 50\n", /* 5 */
                        NULL, 0, 5, "did you mean 'percentiles'");
    expect_config_error("unknown_job_key.ini",
                        "[job]\n"
                        "thread = 2\n" /* 2 */
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "output = out.h5\n",
                        NULL, 0, 2, "did you mean 'threads'");
    expect_config_error("unknown_section.ini",
                        "[job]\n"
                        "[steps s]\n" /* 2 */
                        "kernel = traffic\n",
                        NULL, 0, 2, "[steps s]");
    expect_config_error("bad_step_name.ini",
                        "[step a/b]\n" /* 1 */
                        "kernel = traffic\n",
                        NULL, 0, 1, "unknown section");
    expect_config_error("duplicate_key.ini",
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "output = out.h5\n"
                        "input = other.h5\n", /* 5 */
                        NULL, 0, 5, "first at line 3");
    expect_config_error("duplicate_section.ini",
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "output = out.h5\n"
                        "[step s]\n", /* 5 */
                        NULL, 0, 5, "first at line 1");
    expect_config_error("no_kernel.ini",
                        "[job]\n"
                        "[step s]\n" /* 2 */
                        "input = in.h5\n"
                        "output = out.h5\n",
                        NULL, 0, 2, "no 'kernel' key");
    expect_config_error("no_output.ini",
                        "[step s]\n" /* 1 */
                        "kernel = traffic\n"
                        "input = in.h5\n",
                        NULL, 0, 1, "no 'output' key");
    expect_config_error("unknown_kernel.ini",
                        "[step s]\n"
                        "input = in.h5\n"
                        "kernel = trafic\n" /* 3 */
                        "output = out.h5\n",
                        NULL, 0, 3, "did you mean 'traffic'");
    /* inih takes both '=' and ':' as the separator, so the bad line has neither */
    expect_config_error("no_equals.ini",
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "threads 4\n" /* 4 */
                        "output = out.h5\n",
                        NULL, 0, 4, "syntax error");
    expect_config_error("bad_value.ini",
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "output = out.h5\n"
                        "\n"
                        "max_speed = fast\n", /* 6 */
                        NULL, 0, 6, "max_speed");
    expect_config_error("out_of_range.ini",
                        "[step s]\n"
                        "kernel = traffic\n"
                        "percentiles = 50, 101\n" /* 3 */
                        "input = in.h5\n"
                        "output = out.h5\n",
                        NULL, 0, 3, "percentiles");
    expect_config_error("bad_job_value.ini",
                        "[job]\n"
                        "chunk_rows = 1.5\n" /* 2 */
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "output = out.h5\n",
                        NULL, 0, 2, "chunk_rows");
    expect_config_error("bad_zone.ini",
                        "[step s]\n"
                        "kernel = traffic\n"
                        "input = in.h5\n"
                        "timezone = Mars/Olympus\n" /* 4 */
                        "output = out.h5\n",
                        NULL, 0, 4, "Mars/Olympus");
    expect_config_error("no_steps.ini", "[job]\nthreads = 2\n", NULL, 0, 0, "at least one step");
    expect_config_error("empty.ini", "", NULL, 0, 0, "at least one step");
    /* a key longer than the INI reader's line buffer is an error; a long value is not
     * (test_job_long_values) */
    char long_line[400];
    snprintf(long_line, sizeof long_line, "[step s]\nkernel = traffic\ninput = in.h5\n%0250d = 1\noutput = out.h5\n", 0);
    expect_config_error("long_line.ini", long_line, NULL, 0, 4, "too long");
}

/* Values longer than the INI reader's 200-byte line buffer, in the file and in --set, are
 * read whole (issue 18 item 10): a 250-character input path, and lists of 1,300 bytes. */
static void test_job_long_values(void)
{
    char text[4096], list[1400] = "", set[1500];
    size_t n = 0;
    for (int i = 1; i <= 30; i++) n += (size_t)snprintf(list + n, sizeof list - n, "%d.0000000000000000000000000000000000,", i);
    snprintf(list + n, sizeof list - n, "99");
    snprintf(text, sizeof text, "[step s]\nkernel = traffic\ninput = %0250d\noutput = out.h5\npercentiles = %s ; a comment\n", 7,
             list);
    snprintf(set, sizeof set, "s.max_speed=%0300d", 120);
    char *sets[] = {set};
    hb_job job;
    int rc = load("long_values.ini", text, sets, 1, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        double p[HB_OPT_LIST_MAX];
        CHECK(strlen(job.steps[0].input) == 250 && job.steps[0].input[249] == '7');
        CHECK(hb_opt_list(&job.steps[0].opts, "percentiles", p) == 31 && p[29] == 30 && p[30] == 99);
        CHECK(hb_opt_num(&job.steps[0].opts, "max_speed") == 120);
    }
    hb_job_free(&job);
    hb_err_clear();
}

static void test_job_sets(void)
{
    hb_job job;
    char *sets[] = {"aggregate.max_speed=120", "job.threads=7", "second.percentiles=10,20,30"};
    int rc = load("sets.ini", valid_job, sets, 3, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        CHECK(hb_opt_num(&job.steps[0].opts, "max_speed") == 120); /* the file says 100 */
        CHECK(job.threads == 7);                                   /* the file says 3 */
        double p[HB_OPT_LIST_MAX];
        CHECK(hb_opt_list(&job.steps[1].opts, "percentiles", p) == 3 && p[2] == 30);
        CHECK(has(job.text, "aggregate.max_speed=120")); /* the record of what ran */
    }
    hb_job_free(&job);

    char *missing[] = {"nosuch.max_speed=120"};
    CHECK(load("set_missing.ini", valid_job, missing, 1, &job) == HB_ECONFIG);
    CHECK(has(hb_err_msg(), "nosuch"));
    hb_job_free(&job);

    /* an override is checked like a file value, but it has no line to name */
    char *bad[] = {"aggregate.max_speed=fast"};
    CHECK(load("set_bad.ini", valid_job, bad, 1, &job) == HB_ECONFIG);
    CHECK(msg_at(0) && has(hb_err_msg(), "max_speed"));
    hb_job_free(&job);

    char *malformed[] = {"max_speed=120"};
    CHECK(load("set_malformed.ini", valid_job, malformed, 1, &job) == HB_EUSAGE);
    hb_job_free(&job);
    hb_err_clear();
}

static void test_job_misc(void)
{
    hb_job job;
    char path[600];
    snprintf(path, sizeof path, "%s/does_not_exist.ini", tmpdir);
    hb_err_clear();
    CHECK(hb_job_load(path, NULL, 0, &job) == HB_ENOINPUT);
    CHECK(hb_err_code() == HB_ENOINPUT && has(hb_err_msg(), "does_not_exist.ini"));
    hb_job_free(&job);
    hb_err_clear();

    /* Indentation must not turn a key into a continuation of the previous value. */
    static const char indented[] = "[step s]\n"
                                   "  kernel = traffic\n"
                                   "    input = in.h5\n"
                                   "\toutput = out.h5\n"
                                   "  timezone = America/New_York\n";
    int rc = load("indented.ini", indented, NULL, 0, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        CHECK(job.steps[0].kernel == hb_kernel_find("traffic"));
        CHECK(strcmp(job.steps[0].input, "in.h5") == 0);
        CHECK(strcmp(job.steps[0].output, "out.h5") == 0);
        CHECK(strcmp(opt_of(&job.steps[0], "timezone"), "America/New_York") == 0);
    }
    hb_job_free(&job);

    static const char comments[] = "# comment\n"
                                   "[step s] ; trailing comment\n"
                                   "kernel = traffic ; inline comment\n"
                                   "input = in.h5\n"
                                   "output = out.h5\n";
    rc = load("comments.ini", comments, NULL, 0, &job);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) CHECK(job.steps[0].kernel == hb_kernel_find("traffic"));
    hb_job_free(&job);

    snprintf(path, sizeof path, "%s/nul.ini", tmpdir);
    FILE *f = fopen(path, "wb");
    if (CHECK(f != NULL)) {
        fwrite("[step s]\n\0kernel = traffic\n", 1, 27, f);
        fclose(f);
        hb_err_clear();
        CHECK(hb_job_load(path, NULL, 0, &job) == HB_ECONFIG);
        hb_job_free(&job);
    }
    hb_err_clear();
}

/* A key before the first section belongs to no section: a job-file error on its line,
 * not an internal one. */
static void test_job_key_before_section(void)
{
    expect_config_error("key_before_section.ini",
                        "kernel = traffic\n" /* 1 */
                        "[step s]\n"
                        "input = in.h5\n"
                        "output = out.h5\n",
                        NULL, 0, 1, "kernel");
}

/* inih keeps at most 49 characters of a section name: a longer [step NAME] must be
 * refused on its line rather than lose its keys. */
static void test_job_long_step_name(void)
{
    hb_job job;
    char text[400], name[61];
    memset(name, 'a', 60);
    name[60] = '\0';
    snprintf(text, sizeof text, "[step %s]\nkernel = traffic\ninput = in.h5\noutput = out.h5\n", name);
    int rc = load("long_step_name.ini", text, NULL, 0, &job);
    CHECKF(rc == HB_ECONFIG && msg_at(1) && has(hb_err_msg(), "too long"), "rc %d, message '%s'", rc, hb_err_msg());
    hb_job_free(&job);
    hb_err_clear();
}

/* ---- io/h5io (input side; the output side is collective and tested under mpirun) ---- */

static void write_dset(hid_t loc, const char *name, hid_t type, hsize_t n, const void *data)
{
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(s);
}

static void write_attr(hid_t loc, const char *name, hid_t type, const void *v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, v);
    H5Aclose(a);
    H5Sclose(s);
}

enum { NROWS = 7 };
static const double col_time[NROWS] = {0.5, -0.5, 2.0, NAN, 1e19, -1e19, 3.0};
static const int32_t col_seg[NROWS] = {0, 1, 5, 7, 2147483647, -1, 2};
static const uint64_t col_u64[NROWS] = {0, 1, 9007199254740992u, UINT64_MAX, 9223372036854775808u,
                                        9223372036854775807u, 42};
static const float col_f32[NROWS] = {1.5f, -2.25f, 1e30f, 0.0f, 7.0f, 8.0f, 9.0f};

static int make_h5(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t g = H5Gcreate2(f, "/obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    write_dset(g, "time", H5T_NATIVE_DOUBLE, NROWS, col_time);
    write_dset(g, "segment", H5T_NATIVE_INT32, NROWS, col_seg);
    write_dset(g, "u64", H5T_NATIVE_UINT64, NROWS, col_u64);
    write_dset(g, "f32", H5T_NATIVE_FLOAT, NROWS, col_f32);
    const int16_t short_col[3] = {1, 2, 3};
    write_dset(g, "short", H5T_NATIVE_INT16, 3, short_col);
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 4);
    write_dset(g, "label", str, 2, "abcdefgh");
    H5Tclose(str);
    hsize_t dims2[2] = {2, 2};
    const double grid[4] = {1, 2, 3, 4};
    hid_t s2 = H5Screate_simple(2, dims2, NULL);
    hid_t d2 = H5Dcreate2(g, "grid", H5T_NATIVE_DOUBLE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d2, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, grid);
    H5Dclose(d2);
    H5Sclose(s2);
    const int32_t nseg = 9;
    const double half = 2.5;
    write_attr(g, "n_segments", H5T_NATIVE_INT32, &nseg);
    write_attr(g, "half", H5T_NATIVE_DOUBLE, &half);
    H5Gclose(g);

    hid_t p = H5Gcreate2(f, "/provenance", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t vstr = H5Tcopy(H5T_C_S1);
    H5Tset_size(vstr, H5T_VARIABLE);
    const char *job = "nightly";
    write_attr(p, "job", vstr, &job);
    H5Tclose(vstr);
    H5Gclose(p);
    return H5Fclose(f) < 0 ? -1 : 0;
}

static int same_i64(const int64_t *a, const int64_t *b, int n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

static void test_h5_input(void)
{
    hb_io_init();
    char path[600], text[600], missing[600];
    snprintf(path, sizeof path, "%s/in.h5", tmpdir);
    snprintf(text, sizeof text, "%s/text.txt", tmpdir);
    snprintf(missing, sizeof missing, "%s/missing.h5", tmpdir);
    if (!CHECK(make_h5(path) == 0)) return;
    FILE *f = fopen(text, "w");
    if (f) fputs("not hdf5\n", f), fclose(f);

    hb_in *in = NULL;
    hb_err_clear();
    CHECK(hb_in_open(text, &in) == HB_ENOINPUT && in == NULL);
    hb_err_clear();
    CHECK(hb_in_open(missing, &in) == HB_ENOINPUT && in == NULL);
    hb_err_clear();
    if (!CHECK(hb_in_open(path, &in) == 0 && in)) return;

    CHECK(hb_in_exists(in, "/"));
    CHECK(hb_in_exists(in, "/obs"));
    CHECK(hb_in_exists(in, "/obs/time"));
    CHECK(!hb_in_exists(in, "/obs/nope"));
    CHECK(!hb_in_exists(in, "/nope/time"));

    hb_table *t = NULL;
    static const char *const cols[] = {"time", "segment", "u64", "f32"};
    int rc = hb_table_open(in, "/obs", cols, 4, &t);
    CHECKF(rc == 0, "rc %d: %s", rc, hb_err_msg());
    if (rc == 0) {
        CHECK(hb_table_rows(t) == NROWS);
        double d[NROWS];
        int64_t v[NROWS];
        CHECK(hb_table_read(t, 0, 0, NROWS, HB_F64, d) == 0);
        CHECK(d[0] == 0.5 && d[1] == -0.5 && isnan(d[3]) && d[4] == 1e19);
        /* floats floored; NaN and values beyond int64 (|x| >= 2^63) become INT64_MIN */
        const int64_t t_i64[NROWS] = {0, -1, 2, INT64_MIN, INT64_MIN, INT64_MIN, 3};
        CHECK(hb_table_read(t, 0, 0, NROWS, HB_I64, v) == 0 && same_i64(v, t_i64, NROWS));
        /* identifiers: anything not a non-negative whole number becomes -1 */
        const int64_t t_id[NROWS] = {-1, -1, 2, -1, -1, -1, 3};
        CHECK(hb_table_read(t, 0, 0, NROWS, HB_ID, v) == 0 && same_i64(v, t_id, NROWS));
        const int64_t s_id[NROWS] = {0, 1, 5, 7, 2147483647, -1, 2};
        CHECK(hb_table_read(t, 1, 0, NROWS, HB_ID, v) == 0 && same_i64(v, s_id, NROWS));
        CHECK(hb_table_read(t, 1, 0, NROWS, HB_F64, d) == 0 && d[4] == 2147483647.0 && d[5] == -1);
        const int64_t u_i64[NROWS] = {0, 1, 9007199254740992, INT64_MIN, INT64_MIN, INT64_MAX, 42};
        CHECK(hb_table_read(t, 2, 0, NROWS, HB_I64, v) == 0 && same_i64(v, u_i64, NROWS));
        const int64_t u_id[NROWS] = {0, 1, 9007199254740992, -1, -1, INT64_MAX, 42};
        CHECK(hb_table_read(t, 2, 0, NROWS, HB_ID, v) == 0 && same_i64(v, u_id, NROWS));
        CHECK(hb_table_read(t, 2, 0, NROWS, HB_F64, d) == 0 && d[2] == 9007199254740992.0 && d[6] == 42);
        const int64_t f_i64[NROWS] = {1, -3, INT64_MIN, 0, 7, 8, 9};
        CHECK(hb_table_read(t, 3, 0, NROWS, HB_I64, v) == 0 && same_i64(v, f_i64, NROWS));
        CHECK(hb_table_read(t, 3, 0, NROWS, HB_F64, d) == 0 && d[0] == 1.5 && d[1] == -2.25);

        /* a slab in the middle */
        CHECK(hb_table_read(t, 0, 2, 3, HB_F64, d) == 0 && d[0] == 2.0 && isnan(d[1]) && d[2] == 1e19);
        CHECK(hb_table_read(t, 2, 3, 2, HB_I64, v) == 0 && v[0] == INT64_MIN && v[1] == INT64_MIN);

        int64_t a = 0;
        int present = -1;
        CHECK(hb_table_attr_i64(t, "n_segments", &a, &present) == 0 && present == 1 && a == 9);
        CHECK(hb_table_attr_i64(t, "absent", &a, &present) == 0 && present == 0);
        hb_err_clear();
        CHECK(hb_table_attr_i64(t, "half", &a, &present) == HB_EDATA);
        hb_err_clear();
    }
    hb_table_close(t);

    /* refused tables: each error is bad data (65) and names what is wrong */
    static const char *const unequal[] = {"time", "short"};
    static const char *const nope[] = {"time", "nope"};
    static const char *const label[] = {"label"};
    static const char *const grid[] = {"grid"};
    struct {
        const char *group;
        const char *const *cols;
        int ncols;
        const char *phrase;
    } bad[] = {{"/obs", unequal, 2, "unequal"},
               {"/obs", nope, 2, "nope"},
               {"/obs", label, 1, "string"},
               {"/obs", grid, 1, "one-dimensional"},
               {"/nope", cols, 1, "/nope"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hb_err_clear();
        t = NULL;
        rc = hb_table_open(in, bad[i].group, bad[i].cols, bad[i].ncols, &t);
        CHECKF(rc == HB_EDATA && has(hb_err_msg(), bad[i].phrase), "case %zu: rc %d, '%s'", i, rc, hb_err_msg());
        hb_table_close(t);
    }
    hb_err_clear();

    int64_t n = 0;
    int64_t *arr = NULL;
    CHECK(hb_in_read_array(in, "/obs/segment", HB_I64, &n, (void **)&arr) == 0 && n == NROWS && arr &&
          arr[4] == 2147483647 && arr[5] == -1);
    free(arr);
    arr = NULL;
    CHECK(hb_in_read_array(in, "/obs/absent", HB_I64, &n, (void **)&arr) == HB_EDATA && arr == NULL && n == 0);
    hb_err_clear();
    hb_in_close(in);

    char buf[32];
    CHECK(hb_out_probe(path, "job", buf, sizeof buf) == 0 && strcmp(buf, "nightly") == 0);
    CHECK(hb_out_probe(path, "job", buf, 4) == 0 && strcmp(buf, "nig") == 0);
    CHECK(hb_out_probe(path, "absent", buf, sizeof buf) == 1 && buf[0] == '\0');
    CHECK(hb_out_probe(text, "job", buf, sizeof buf) == 1);
    CHECK(hb_out_probe(missing, "job", buf, sizeof buf) == 1);
    hb_err_clear();
}

/* ---- main ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* The checkers' own tests (tests/unit/suite.sh): with MPI started, a block from
 * hb_malloc that nothing frees, which LeakSanitizer must report although the libraries'
 * leaks are suppressed; or a branch on uninitialised memory, which valgrind must report. */
static void *volatile lost_block;
static int on_purpose(const char *what)
{
    MPI_Init(NULL, NULL);
    int rc = 0;
    if (strcmp(what, "--leak-on-purpose") == 0) {
        lost_block = hb_malloc(4242);
        lost_block = NULL;
    } else if (strcmp(what, "--uninit-on-purpose") == 0) {
        int *p = malloc(4 * sizeof *p);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
        if (p && p[2] > 12345) printf("uninitialised memory held %d\n", p[2]); /* the branch valgrind reports */
#pragma GCC diagnostic pop
        free(p);
    } else {
        fprintf(stderr, "usage: unit_tests [--leak-on-purpose | --uninit-on-purpose]\n");
        rc = 64;
    }
    MPI_Finalize();
    return rc;
}

/* ---- integer radix sorts (kernels/common/sort.h), against qsort ---- */

static int cmp_u64_ref(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static int cmp_i64_ref(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static void test_radix_sorts(void)
{
    enum { N = 5000 };
    static uint64_t u[N], ru[N], key[N];
    static int64_t v[N], rv[N];
    static struct { uint64_t k; uint32_t seq, pad; } rec[N];
    uint64_t x = 88172645463325252ull;
    /* sizes around the edges, keys of every width: one byte used, all equal, full 64 bits */
    const size_t sizes[] = {0, 1, 2, 3, 255, 256, 257, N};
    for (int kind = 0; kind < 4; kind++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                uint64_t r = kind == 0 ? x & 0xff : kind == 1 ? 42 : kind == 2 ? x : x & 0xffff00ull;
                u[i] = ru[i] = r;
                v[i] = rv[i] = (int64_t)r - (kind == 0 ? 128 : 0); /* negatives too */
            }
            CHECK(hb_sort_u64(u, n) == 0);
            qsort(ru, n, sizeof *ru, cmp_u64_ref);
            CHECK(n == 0 || memcmp(u, ru, n * sizeof *u) == 0);
            CHECK(hb_sort_i64(v, n) == 0);
            qsort(rv, n, sizeof *rv, cmp_i64_ref);
            CHECK(n == 0 || memcmp(v, rv, n * sizeof *v) == 0);
        }
    /* records follow their keys, and equal keys keep their order (stable) */
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        key[i] = x % 97;
        rec[i].k = key[i], rec[i].seq = (uint32_t)i, rec[i].pad = 0;
    }
    CHECK(hb_sort_records_u64(key, rec, sizeof rec[0], N) == 0);
    int ok = 1;
    for (size_t i = 0; i < N; i++) {
        ok &= rec[i].k == key[i];
        if (i) ok &= key[i - 1] < key[i] || (key[i - 1] == key[i] && rec[i - 1].seq < rec[i].seq);
    }
    CHECK(ok);
}

int main(int argc, char **argv)
{
    if (argc > 1) return on_purpose(argv[1]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hb_unit.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }

    test_percentile_hand();
    test_percentile_bounds();
    test_sort();
    test_sort_large();
    test_radix_sorts();
    test_select();
    test_percentile_select();
    test_percentiles_select();
    test_percentiles_select_many();
    test_xsum_hand();
    test_xsum_order();
    test_xsum_accuracy();
    test_owner_ranges();
    test_exchange_layout();
    test_errors();
    test_civil_known();
    test_civil_walk();
    test_civil_timegm();
    test_yyyymmdd();
    test_tz_valid();
    test_tz_berlin_2024();
    test_tz_new_york_2024();
    test_tz_lord_howe();
    test_tz_negative();
    test_tz_extend();
    test_tz_absurd();
    test_tz_vs_localtime();
    test_parse();
    test_opt_check();
    test_suggest();
    test_args();
    test_accessors();
    test_job_valid();
    test_job_defaults();
    test_job_expand();
    test_job_errors();
    test_job_sets();
    test_job_long_values();
    test_job_misc();
    test_job_key_before_section();
    test_job_long_step_name();
    test_h5_input();
    unit_risk();
    unit_rng();
    unit_tok();
    unit_startup(tmpdir); /* starts MPI, which unit_ckpt ends */
    unit_ckpt(tmpdir);
    unit_agg();

    if (nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) printf("warning: could not remove %s\n", tmpdir);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
