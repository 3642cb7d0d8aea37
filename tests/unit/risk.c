/* Unit tests of the risk kernel's arithmetic (kernels/risk/calc.h, DESIGN.md 4.2).
 *
 * Expected values are worked out by hand in the comments (small series whose VaR, ES,
 * exceptions and likelihood ratios can be counted), taken from published tables (the
 * Basel Committee's traffic light zones, Kupiec's POF ratios at 250 days, the normal
 * quantiles), or computed here by a naive method that shares no code with calc.c: a
 * sort of each window, a binomial sum, erfc for the chi-squared(1) tail. */
#include "unit.h"

#include "kernels/risk/calc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Published quantiles of the standard normal: z_0.75, z_0.95, z_0.975, z_0.99. */
#define Z75 0.6744897501960817
#define Z95 1.6448536269514722
#define Z975 1.959963984540054
#define Z99 2.3263478740408408
#define INV_SQRT_2PI 0.3989422804014327

static uint64_t rs = 0x9E3779B97F4A7C15u;
static double urand(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17; /* xorshift64 */
    return (double)(rs >> 11) * 0x1p-53;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static int cmp_asc(const void *a, const void *b) { return -cmp_desc(a, b); }

/* The chi-squared(1) upper tail: Q(x) = erfc(sqrt(x / 2)). */
static double chisq1_q(double x) { return erfc(sqrt(x / 2)); }

/* F(x; n, p) by summing the binomial probabilities in logs. */
static double binom_cdf(int x, int n, double p)
{
    double f = 0;
    for (int i = 0; i <= x; i++)
        f += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) + i * log(p) + (n - i) * log1p(-p));
    return f;
}

/* Kupiec's ratio written out: -2 ln[(1-p)^(n-x) p^x / ((1-x/n)^(n-x) (x/n)^x)]. */
static double kupiec_hand(int x, int n, double p)
{
    double ph = (double)x / n, l0 = (n - x) * log(1 - p) + x * log(p);
    double l1 = (x < n ? (n - x) * log(1 - ph) : 0) + (x > 0 ? x * log(ph) : 0);
    return -2 * (l0 - l1);
}

/* Christoffersen's ratio from the transition counts, with 0 ln 0 = 0. */
static double xlny(double x, double y) { return x == 0 ? 0 : x * log(y); }
static double christoffersen_hand(const uint8_t *e, int n)
{
    double c[2][2] = {{0, 0}, {0, 0}};
    for (int i = 1; i < n; i++) c[e[i - 1]][e[i]]++;
    double n0 = c[0][0] + c[0][1], n1 = c[1][0] + c[1][1], tot = n0 + n1;
    if (tot == 0) return 0;
    double p01 = n0 ? c[0][1] / n0 : 0, p11 = n1 ? c[1][1] / n1 : 0, p = (c[0][1] + c[1][1]) / tot;
    double l0 = xlny(c[0][0] + c[1][0], 1 - p) + xlny(c[0][1] + c[1][1], p);
    double l1 = xlny(c[0][0], 1 - p01) + xlny(c[0][1], p01) + xlny(c[1][0], 1 - p11) + xlny(c[1][1], p11);
    return fmax(0, -2 * (l0 - l1));
}

/* k = max(1, ceil(n (1 - c) - 1e-9)), worked out by hand. */
static void test_k(void)
{
    CHECK(hb_risk_k(500, 0.99) == 5);  /* 500 * 0.01 = 5.000000000000004 in doubles: still 5 */
    CHECK(hb_risk_k(250, 0.99) == 3);  /* 2.5 -> 3 */
    CHECK(hb_risk_k(100, 0.95) == 5);  /* 5 */
    CHECK(hb_risk_k(1000, 0.975) == 25);
    CHECK(hb_risk_k(10, 0.99) == 1);   /* 0.1 -> 1 */
    CHECK(hb_risk_k(200, 0.999) == 1); /* 0.2 -> 1 */
    CHECK(hb_risk_k(3, 0.5) == 2);     /* 1.5 -> 2 */
    CHECK(hb_risk_k(4, 0.75) == 1);    /* 1 */
    CHECK(hb_risk_k(1, 0.99) == 1);
}

/* Losses 1..100: the k-th largest and the mean of the k largest, by hand. */
static void test_tail(void)
{
    double all[100], top[10], v[100];
    for (int i = 0; i < 100; i++) all[i] = i + 1;
    for (int i = 0; i < 10; i++) top[i] = 91 + i; /* the 10 largest, ascending */
    const double conf[3] = {0.95, 0.99, 0.9}, es_conf[2] = {0.95, 0.975};
    /* k: 5, 1, 10; ES k: 5 (96..100), 3 (98..100) */
    const double want_var[3] = {96, 100, 91}, want_es[2] = {98, 99};
    double var[3], es[2];
    hb_risk_tail(all, 100, 100, conf, 3, es_conf, 2, var, es);
    for (int i = 0; i < 3; i++) CHECKF(var[i] == want_var[i], "all: var[%d] = %g", i, var[i]);
    for (int i = 0; i < 2; i++) CHECKF(es[i] == want_es[i], "all: es[%d] = %g", i, es[i]);
    /* only the 10 largest of the 100 kept: the same answers */
    hb_risk_tail(top, 10, 100, conf, 3, es_conf, 2, var, es);
    for (int i = 0; i < 3; i++) CHECKF(var[i] == want_var[i], "top 10: var[%d] = %g", i, var[i]);
    for (int i = 0; i < 2; i++) CHECKF(es[i] == want_es[i], "top 10: es[%d] = %g", i, es[i]);
    /* by selection from any order, with ties */
    for (int i = 0; i < 100; i++) v[i] = all[(i * 37) % 100];
    hb_risk_tail_select(v, 100, 100, conf, 3, es_conf, 2, var, es);
    for (int i = 0; i < 3; i++) CHECKF(var[i] == want_var[i], "select: var[%d] = %g", i, var[i]);
    for (int i = 0; i < 2; i++) CHECKF(es[i] == want_es[i], "select: es[%d] = %g", i, es[i]);
    double tied[8] = {2, 7, 7, 1, 7, 3, 7, 0}; /* the 4 largest are 7s */
    const double c4[1] = {0.5};                 /* k = 4 */
    hb_risk_tail_select(tied, 8, 8, c4, 1, c4, 1, var, es);
    CHECK(var[0] == 7 && es[0] == 7);
}

/* A backtest of 4 days after a window of 4, counted by hand. */
static void test_portfolio_hand(void)
{
    /* losses 1 2 3 4 | 5 1 6 2; at backtest level 0.75, k = 1: the VaR of a day is the
     * largest loss of the 4 days before it.
     *   day 4: window 1 2 3 4 -> VaR 4, loss 5: exception
     *   day 5: window 2 3 4 5 -> VaR 5, loss 1
     *   day 6: window 3 4 5 1 -> VaR 5, loss 6: exception
     *   day 7: window 4 5 1 6 -> VaR 6, loss 2
     * exceptions 1 0 1 0: x = 2 of n = 4 at p = 0.25.
     * Kupiec: -2 [2 ln .75 + 2 ln .25 - 2 ln .5 - 2 ln .5] = -4 ln .75 = 4 ln(4/3).
     * Christoffersen: transitions 1->0, 0->1, 1->0: n01 = 1, n10 = 2, n00 = n11 = 0;
     *   pi = 1/3, pi01 = 1, pi11 = 0: LR = -2 [2 ln(2/3) + ln(1/3)] = 2 ln(27/4).
     * zone: F(2; 4, 0.25) = 1 - 4 (.25^3)(.75) - .25^4 = 0.94921875 < 0.95: green.
     * The last window is losses 5 1 6 2: at 0.75 (k = 1) VaR 6, at 0.5 (k = 2) VaR 5,
     * ES at 0.5 = (6 + 5) / 2; P&L -5 -1 -6 -2: mean -3.5, deviations -1.5 2.5 -2.5 1.5,
     * squares 17, sd = sqrt(17 / 3). */
    const double loss[8] = {1, 2, 3, 4, 5, 1, 6, 2};
    double pnl[8];
    for (int i = 0; i < 8; i++) pnl[i] = -loss[i];
    const double conf[2] = {0.75, 0.5}, es_conf[1] = {0.5};
    hb_risk_spec s = {.window = 4, .backtest = 4, .nc = 2, .ne = 1, .conf = conf, .es_conf = es_conf,
                      .bt_conf = 0.75, .write_pnl = 1};
    hb_risk_layout l;
    hb_risk_layout_init(&s, &l);
    CHECK(l.size == 2 + 1 + 2 + 1 + 2 + 6 + 4);
    double *scratch = calloc(hb_risk_scratch(&s), sizeof *scratch), *rec = calloc((size_t)l.size, sizeof *rec);
    if (!CHECK(scratch && rec)) return;
    hb_risk_portfolio(&s, &l, pnl, scratch, rec);
    const double sd = sqrt(17.0 / 3);
    CHECK(rec[l.var_h] == 6 && rec[l.var_h + 1] == 5);
    CHECK(rec[l.es_h] == 5.5);
    CHECK(NEAR(rec[l.mean], -3.5, 1e-15) && NEAR_REL(rec[l.vol], sd, 1e-15));
    CHECKF(NEAR(rec[l.var_p], Z75 * sd + 3.5, 1e-12), "parametric VaR 0.75 = %.17g", rec[l.var_p]);
    CHECKF(NEAR(rec[l.var_p + 1], 3.5, 1e-12), "parametric VaR 0.5 = %.17g", rec[l.var_p + 1]);
    CHECKF(NEAR(rec[l.es_p], sd * INV_SQRT_2PI / 0.5 + 3.5, 1e-12), "parametric ES 0.5 = %.17g", rec[l.es_p]);
    CHECK(rec[l.exc] == 2);
    CHECKF(NEAR(rec[l.kupiec_lr], 4 * log(4.0 / 3), 1e-12), "Kupiec %.17g", rec[l.kupiec_lr]);
    CHECKF(NEAR(rec[l.kupiec_p], chisq1_q(4 * log(4.0 / 3)), 1e-9), "Kupiec p %.17g", rec[l.kupiec_p]);
    CHECKF(NEAR(rec[l.chr_lr], 2 * log(27.0 / 4), 1e-12), "Christoffersen %.17g", rec[l.chr_lr]);
    CHECKF(NEAR(rec[l.chr_p], chisq1_q(2 * log(27.0 / 4)), 1e-9), "Christoffersen p %.17g", rec[l.chr_p]);
    CHECK(rec[l.zone] == 0);
    for (int i = 0; i < 4; i++) CHECKF(rec[l.pnl + i] == pnl[4 + i], "pnl[%d]", i);
    free(scratch);
    free(rec);
}

/* Random series against a naive backtest: each window sorted on its own. */
static void test_portfolio_naive(void)
{
    enum { W = 60, B = 40 };
    const double conf[2] = {0.95, 0.99}, es_conf[1] = {0.975};
    hb_risk_spec s = {.window = W, .backtest = B, .nc = 2, .ne = 1, .conf = conf, .es_conf = es_conf,
                      .bt_conf = 0.9, .write_pnl = 0};
    hb_risk_layout l;
    hb_risk_layout_init(&s, &l);
    double pnl[W + B], win[W], scratch[W + B], rec[64];
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < W + B; i++) {
            pnl[i] = (urand() - 0.5) * 10;
            if (trial % 5 == 0) pnl[i] = floor(pnl[i]); /* ties */
        }
        hb_risk_portfolio(&s, &l, pnl, scratch, rec);
        /* k = ceil(60 * 0.1) = 6 for the backtest; 3 and 1 for VaR; 2 for ES */
        int x = 0;
        uint8_t exc[B];
        for (int t = 0; t < B; t++) {
            for (int i = 0; i < W; i++) win[i] = -pnl[t + i];
            qsort(win, W, sizeof *win, cmp_desc);
            exc[t] = -pnl[W + t] > win[5];
            x += exc[t];
        }
        for (int i = 0; i < W; i++) win[i] = -pnl[B + i];
        qsort(win, W, sizeof *win, cmp_desc);
        CHECKF(rec[l.exc] == x, "trial %d: %g exceptions, naive %d", trial, rec[l.exc], x);
        CHECKF(rec[l.var_h] == win[2] && rec[l.var_h + 1] == win[0], "trial %d: VaR", trial);
        CHECKF(rec[l.es_h] == (win[0] + win[1]) / 2, "trial %d: ES", trial);
        CHECKF(NEAR(rec[l.kupiec_lr], kupiec_hand(x, B, 0.1), 1e-9), "trial %d: Kupiec", trial);
        CHECKF(NEAR(rec[l.chr_lr], christoffersen_hand(exc, B), 1e-9), "trial %d: Christoffersen", trial);
        /* mean and sample sd of the last window, two-pass */
        double mu = 0, ss = 0;
        for (int i = 0; i < W; i++) mu += pnl[B + i];
        mu /= W;
        for (int i = 0; i < W; i++) ss += (pnl[B + i] - mu) * (pnl[B + i] - mu);
        double sd = sqrt(ss / (W - 1));
        CHECKF(NEAR(rec[l.mean], mu, 1e-12) && NEAR_REL(rec[l.vol], sd, 1e-12), "trial %d: moments", trial);
        CHECKF(NEAR(rec[l.var_p], Z95 * sd - mu, 1e-9) && NEAR(rec[l.var_p + 1], Z99 * sd - mu, 1e-9),
               "trial %d: parametric VaR %.17g %.17g", trial, rec[l.var_p], rec[l.var_p + 1]);
        double phi = INV_SQRT_2PI * exp(-Z975 * Z975 / 2);
        CHECKF(NEAR(rec[l.es_p], sd * phi / 0.025 - mu, 1e-9), "trial %d: parametric ES", trial);
    }
}

/* Kupiec's POF ratio: by hand, and the published values at 250 days and p = 0.01. */
static void test_kupiec(void)
{
    /* x = 0: -2 (250 ln 0.99) = 5.0252 */
    CHECK(NEAR(hb_risk_kupiec(0, 250, 0.01), -500 * log(0.99), 1e-12));
    /* x = n p: the ratio is 0 */
    CHECK(NEAR(hb_risk_kupiec(5, 500, 0.01), 0, 1e-12));
    CHECK(hb_risk_kupiec(0, 0, 0.01) == 0);
    /* x = n: -2 n ln p */
    CHECK(NEAR(hb_risk_kupiec(10, 10, 0.5), -20 * log(0.5), 1e-12));
    const int x[] = {0, 4, 5, 7, 10};
    const double published[] = {5.03, 0.77, 1.96, 5.50, 12.96};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) {
        double lr = hb_risk_kupiec(x[i], 250, 0.01);
        CHECKF(NEAR(lr, published[i], 0.005), "x = %d: LR %.4f, published %.2f", x[i], lr, published[i]);
    }
    for (int k = 0; k <= 20; k++) {
        double lr = hb_risk_kupiec(k, 250, 0.01), want = kupiec_hand(k, 250, 0.01);
        CHECKF(NEAR(lr, want, 1e-9), "x = %d: LR %.17g, by hand %.17g", k, lr, want);
    }
}

static void test_christoffersen(void)
{
    const uint8_t alt[4] = {1, 0, 1, 0}, none[10] = {0}, all[6] = {1, 1, 1, 1, 1, 1};
    CHECK(NEAR(hb_risk_christoffersen(alt, 4), 2 * log(27.0 / 4), 1e-12)); /* see test_portfolio_hand */
    CHECK(hb_risk_christoffersen(none, 10) == 0);
    CHECK(hb_risk_christoffersen(all, 6) == 0);
    CHECK(hb_risk_christoffersen(alt, 1) == 0); /* fewer than two days: undefined */
    CHECK(hb_risk_christoffersen(alt, 0) == 0);
    /* 0 0 1 1 0 0: n00 = 2, n01 = 1, n11 = 1, n10 = 1; pi = 2/5, pi01 = 1/3, pi11 = 1/2.
     * l0 = 3 ln(3/5) + 2 ln(2/5); l1 = 2 ln(2/3) + ln(1/3) + 2 ln(1/2). */
    const uint8_t pair[6] = {0, 0, 1, 1, 0, 0};
    double want = -2 * (3 * log(0.6) + 2 * log(0.4) - 2 * log(2.0 / 3) - log(1.0 / 3) - 2 * log(0.5));
    CHECKF(NEAR(hb_risk_christoffersen(pair, 6), want, 1e-12), "%.17g vs %.17g", hb_risk_christoffersen(pair, 6),
           want);
}

/* Basel's traffic light: at 250 days and 99%, green 0-4, yellow 5-9, red from 10
 * exceptions (BCBS 1996, Table 2); elsewhere, against a binomial sum. */
static void test_zone(void)
{
    for (int x = 0; x <= 15; x++) {
        int want = x <= 4 ? 0 : x <= 9 ? 1 : 2;
        CHECKF(hb_risk_zone(x, 250, 0.01) == want, "%d exceptions in 250 days: zone %d", x, hb_risk_zone(x, 250, 0.01));
    }
    CHECK(hb_risk_zone(2, 4, 0.25) == 0); /* F = 0.94921875 */
    CHECK(hb_risk_zone(3, 4, 0.25) == 1); /* F = 0.99609375 */
    CHECK(hb_risk_zone(4, 4, 0.25) == 2); /* F = 1 */
    const int ns[] = {100, 500, 1000};
    const double ps[] = {0.01, 0.05};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++)
            for (int x = 0; x <= ns[a] * ps[b] * 3; x++) {
                double f = binom_cdf(x, ns[a], ps[b]);
                if (fabs(f - 0.95) < 1e-9 || fabs(f - 0.9999) < 1e-9) continue; /* too close to call */
                int want = f >= 0.9999 ? 2 : f >= 0.95 ? 1 : 0;
                CHECKF(hb_risk_zone(x, ns[a], ps[b]) == want, "x = %d, n = %d, p = %g: F = %.6f", x, ns[a], ps[b], f);
            }
}

/* 2 x 2 covariances by hand: positive definite (Cholesky) and singular (eigen). */
static void test_factor(void)
{
    /* centred columns c1 = (1, -1, 1, -1), c2 = (2, 0, 0, -2), plus means 0.01 and -0.02:
     * var c1 = 4/3, var c2 = 8/3, cov = (2 + 0 + 0 + 2)/3 = 4/3. Cholesky: L11 = sqrt(4/3),
     * L21 = (4/3) / L11 = sqrt(4/3), L22 = sqrt(8/3 - 4/3) = sqrt(4/3). */
    const double x[8] = {1.01, 1.98, -0.99, -0.02, 1.01, -0.02, -0.99, -2.02};
    double m[2], L[4], work[3 * 4 + 8 + 2];
    int rc = hb_risk_factor(x, 4, 2, m, L, work);
    const double r = sqrt(4.0 / 3);
    CHECK(rc == 0);
    CHECK(NEAR(m[0], 0.01, 1e-15) && NEAR(m[1], -0.02, 1e-15));
    CHECKF(NEAR(L[0], r, 1e-14) && L[1] == 0 && NEAR(L[2], r, 1e-14) && NEAR(L[3], r, 1e-14), "L = %g %g %g %g", L[0],
           L[1], L[2], L[3]);
    /* c2 = 2 c1: cov [[4/3, 8/3], [8/3, 16/3]] has rank 1; the factor still gives it */
    const double y[8] = {1, 2, -1, -2, 1, 2, -1, -2};
    rc = hb_risk_factor(y, 4, 2, m, L, work);
    CHECK(rc == 1);
    const double S[4] = {4.0 / 3, 8.0 / 3, 8.0 / 3, 16.0 / 3};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double s = L[i * 2] * L[j * 2] + L[i * 2 + 1] * L[j * 2 + 1];
            CHECKF(NEAR(s, S[i * 2 + j], 1e-12), "(L L')[%d][%d] = %.17g", i, j, s);
        }
    /* 5 assets, random returns: L L' equals the two-pass sample covariance */
    enum { N = 30, A = 5 };
    double z[N * A], mz[A], Lz[A * A], wz[3 * A * A + N * A + A];
    for (int i = 0; i < N * A; i++) z[i] = urand() - 0.5;
    CHECK(hb_risk_factor(z, N, A, mz, Lz, wz) == 0);
    for (int i = 0; i < A; i++)
        for (int j = 0; j < A; j++) {
            double mi = 0, mj = 0, c = 0, s = 0;
            for (int t = 0; t < N; t++) mi += z[t * A + i], mj += z[t * A + j];
            mi /= N, mj /= N;
            for (int t = 0; t < N; t++) c += (z[t * A + i] - mi) * (z[t * A + j] - mj);
            c /= N - 1;
            for (int k = 0; k < A; k++) s += Lz[i * A + k] * Lz[j * A + k];
            CHECKF(NEAR(s, c, 1e-14), "cov[%d][%d] %.17g vs %.17g", i, j, s, c);
            if (j > i) CHECKF(Lz[i * A + j] == 0, "L[%d][%d] above the diagonal", i, j);
        }
}

/* The kept set is the k largest, whatever the order values come in. */
static void test_topk(void)
{
    enum { N = 1000, K = 17, CAP = 40 };
    double v[N], sorted[N], buf[CAP];
    for (int i = 0; i < N; i++) v[i] = floor(urand() * 300); /* many ties */
    memcpy(sorted, v, sizeof v);
    qsort(sorted, N, sizeof *sorted, cmp_desc);
    for (int order = 0; order < 3; order++) {
        hb_topk t = {.buf = buf, .n = 0, .cap = CAP, .k = K, .thr = -INFINITY};
        if (order == 1) qsort(v, N, sizeof *v, cmp_asc);
        if (order == 2)
            for (int i = N - 1; i > 0; i--) {
                int j = (int)(urand() * (i + 1));
                double s = v[i];
                v[i] = v[j], v[j] = s;
            }
        for (int i = 0; i < N; i += 100) hb_topk_add(&t, v + i, 100); /* in pieces */
        hb_topk_compact(&t);
        CHECKF(t.n == K, "order %d: %lld kept", order, (long long)t.n);
        double kept[K];
        memcpy(kept, t.buf, sizeof kept);
        qsort(kept, K, sizeof *kept, cmp_desc);
        CHECKF(memcmp(kept, sorted, sizeof kept) == 0, "order %d: not the %d largest", order, K);
        CHECKF(t.thr == sorted[K - 1], "order %d: threshold %g, the %d-th largest %g", order, t.thr, K, sorted[K - 1]);
    }
}

/* Large sets, where a compaction brackets the k-th largest by a sample: the k largest
 * kept, for continuous values, heavy ties, ascending input (the sample's bracket then
 * often misses and one selection over all is taken) and pieces of any length. */
static void test_topk_large(void)
{
    enum { N = 60000, K = 3000, CAP = 3 * K + 64 };
    static double v[N], sorted[N], buf[CAP], kept[K];
    for (int kind = 0; kind < 4; kind++) {
        for (int i = 0; i < N; i++)
            v[i] = kind == 0 ? urand() : kind == 1 ? floor(urand() * 40) : kind == 2 ? (double)i : -floor(urand() * 3);
        memcpy(sorted, v, sizeof v);
        qsort(sorted, N, sizeof *sorted, cmp_desc);
        hb_topk t = {.buf = buf, .n = 0, .cap = CAP, .k = K, .thr = -INFINITY};
        for (int i = 0, len = 1; i < N; i += len, len = len * 3 % 7919 + 1)
            hb_topk_add(&t, v + i, i + len <= N ? len : N - i);
        hb_topk_compact(&t);
        CHECKF(t.n == K, "kind %d: %lld kept", kind, (long long)t.n);
        memcpy(kept, t.buf, sizeof kept);
        qsort(kept, K, sizeof *kept, cmp_desc);
        CHECKF(memcmp(kept, sorted, sizeof kept) == 0, "kind %d: not the %d largest", kind, K);
        CHECKF(t.thr == sorted[K - 1], "kind %d: threshold %g, the %d-th largest %g", kind, t.thr, K, sorted[K - 1]);
    }
}

void unit_risk(void)
{
    test_k();
    test_tail();
    test_portfolio_hand();
    test_portfolio_naive();
    test_kupiec();
    test_christoffersen();
    test_zone();
    test_factor();
    test_topk();
    test_topk_large();
}
