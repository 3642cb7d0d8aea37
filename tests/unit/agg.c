/* Unit tests of the aggregate kernel's compact exact sums (kernels/aggregate/acc.c): the
 * sum of a window is rounded from its own few words, and must have the bits of the full
 * accumulator (kernels/common/xsum) that the same values give, whether the window stays,
 * moves, spills or holds a negative sum. Expected values: exact rational sums rounded
 * once (Python's fractions, by hand below) and the full hb_xsum of the same values. */
#include "unit.h"

#include "kernels/aggregate/agg.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The sum of x[0..n) through the window accumulator of a `stats = sum` layout: value by
 * value (cut < 0), or in two batches of acc_add_n, x[0..cut) and x[cut..n), as the dense
 * path's folds add a cell's run; *count gets the count when count is not NULL. */
static double window_sum_cut(const double *x, int n, int cut, uint64_t *count)
{
    agg_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.nstats = 1;
    sp.st[0] = ST_SUM;
    acc_layout L;
    acc_layout_init(&L, &sp);
    unsigned char a[256];
    acc_neutral(&L, a);
    xpool pool = {0};
    if (cut < 0) {
        for (int i = 0; i < n; i++) acc_add(&L, a, &pool, x[i], 0);
    } else {
        CHECK(acc_add_n(&L, a, &pool, x, (size_t)cut, NULL) == 0);
        CHECK(acc_add_n(&L, a, &pool, x + cut, (size_t)(n - cut), NULL) == 0);
    }
    if (count) *count = acc_count(a);
    double s = acc_sum(&L, a, &pool);
    xpool_free(&pool);
    return s;
}

static double window_sum(const double *x, int n) { return window_sum_cut(x, n, -1, NULL); }

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void test_window_hand(void)
{
    /* exact sums rounded once: Fraction sums of the doubles, converted to float */
    const double a[] = {0.1, 0.2, -0.3};
    CHECK(same_bits(window_sum(a, 3), 2.7755575615628914e-17)); /* 2^-55 */
    const double b[] = {-1.5, -2.25};
    CHECK(same_bits(window_sum(b, 2), -3.75));
    const double c[] = {1e308, 1e308, -1e308, -1e308, 5.0}; /* spills: words 33 and 66 */
    CHECK(same_bits(window_sum(c, 5), 5.0));
    const double d[] = {-2.5, -1e-300, 3.25e-310};
    CHECK(same_bits(window_sum(d, 3), -2.5));
    const double e[] = {-7.0, 0x1p-1074, -0x1p-1074};
    CHECK(same_bits(window_sum(e, 3), -7.0));
    const double f[] = {3.0, -3.0};
    CHECK(same_bits(window_sum(f, 2), 0.0));
}

/* Random values of seven kinds (integers, uniform, wide exponents with signs, float32
 * readings, powers of two down to the subnormals, near overflow, negative fractions),
 * 1 to 40 per sum: the window's rounding must give the full accumulator's bits. */
static void test_window_random(void)
{
    uint64_t s = 88172645463325252ull;
    int bad = 0;
    for (int trial = 0; trial < 20000; trial++) {
        double x[40];
        int n = 1 + trial % 40, kind = trial % 7;
        hb_xsum full;
        memset(&full, 0, sizeof full);
        for (int i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            const double sign = (s >> 5) & 1 ? -1.0 : 1.0;
            double v;
            switch (kind) {
            case 0: v = (double)(int64_t)(s % 200000) - 100000; break;
            case 1: v = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 1e3; break;
            case 2: v = sign * ldexp((double)(s >> 11), (int)(s % 200) - 150); break;
            case 3: v = (float)(40 + (double)(s % 2200) / 10.0); break;
            case 4: v = sign * ldexp(1.0, (int)(s % 2000) - 1074); break;
            case 5: v = sign * 1e308 * (double)(s % 100) / 100.0; break;
            default: v = -(double)(s % 1000) / 7.0; break;
            }
            x[i] = v + 0.0;
            hb_xsum_add(&full, x[i]);
        }
        double w = window_sum(x, n), f = hb_xsum_value(&full);
        if (!same_bits(w, f) && bad++ < 3)
            CHECKF(same_bits(w, f), "kind %d, %d values: window %.17g, full %.17g", kind, n, w, f);
        /* the same values in two batches (acc_add_n sums the words of one magnitude
         * before adding them): the same bits and count */
        uint64_t c = 0;
        double b = window_sum_cut(x, n, (int)(s % (uint64_t)(n + 1)), &c);
        if ((!same_bits(b, f) || c != (uint64_t)n) && bad++ < 3)
            CHECKF(same_bits(b, f) && c == (uint64_t)n, "kind %d, %d values in batches: %.17g (count %llu), full %.17g",
                   kind, n, b, (unsigned long long)c, f);
    }
    CHECKF(bad == 0, "%d of 20000 random sums differ from the full accumulator", bad);
}

/* A long run of mixed magnitudes in one batch (the run's words change position often
 * and the window moves and spills): the full accumulator's bits. */
static void test_window_batch_long(void)
{
    static double x[6000];
    uint64_t s = 0x9e3779b97f4a7c15ull;
    hb_xsum full;
    memset(&full, 0, sizeof full);
    for (int i = 0; i < 6000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const double sign = (s >> 5) & 1 ? -1.0 : 1.0;
        x[i] = i % 3 == 0 ? (float)(40 + (double)(s % 2200) / 10.0) : sign * ldexp((double)(s >> 11), (int)(s % 300) - 200);
        hb_xsum_add(&full, x[i]);
    }
    uint64_t c = 0;
    CHECK(same_bits(window_sum_cut(x, 6000, 6000, &c), hb_xsum_value(&full)) && c == 6000);
    CHECK(same_bits(window_sum_cut(x, 6000, 0, &c), hb_xsum_value(&full)) && c == 6000);
}

void unit_agg(void)
{
    test_window_hand();
    test_window_random();
    test_window_batch_long();
}
