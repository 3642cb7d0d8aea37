/* Per-portfolio risk statistics, backtest tests, the Monte Carlo factor and exact top-k
 * loss sets (DESIGN.md 4.2). Every result is computed in a fixed order from its inputs,
 * so it has the same bits whichever rank or thread computes it. */
#include "kernels/risk/calc.h"

#include "core/hb.h"
#include "kernels/common/order.h"
#include "kernels/common/xsum.h"

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Record offsets in the order of hb_risk_layout. */
void hb_risk_layout_init(const hb_risk_spec *s, hb_risk_layout *l)
{
    l->var_h = 0;
    l->es_h = l->var_h + s->nc;
    l->var_p = l->es_h + s->ne;
    l->es_p = l->var_p + s->nc;
    l->mean = l->es_p + s->ne;
    l->vol = l->mean + 1;
    l->exc = l->vol + 1;
    l->kupiec_lr = l->exc + 1;
    l->kupiec_p = l->kupiec_lr + 1;
    l->chr_lr = l->kupiec_p + 1;
    l->chr_p = l->chr_lr + 1;
    l->zone = l->chr_p + 1;
    l->pnl = l->zone + 1;
    l->size = l->pnl + (s->write_pnl ? (int)s->window : 0);
}

/* The contract's k; the 1e-9 keeps 500 (1 - 0.99) = 5.000000000000004 from rounding up to 6. */
int64_t hb_risk_k(int64_t n, double c)
{
    double k = ceil((double)n * (1 - c) - 1e-9);
    return k < 1 ? 1 : (int64_t)k;
}

/* The sorted window, then the exception flags. */
size_t hb_risk_scratch(const hb_risk_spec *s) { return (size_t)(s->window + s->backtest); }

/* First index i with x[i] >= v in ascending x[0..n). */
static size_t lower_bound(const double *x, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Replaces one occurrence of old (present) by v in ascending x[0..n), keeping it sorted. */
static void replace_sorted(double *x, size_t n, double old, double v)
{
    size_t i = lower_bound(x, n, old);
    if (v > old) {
        size_t j = lower_bound(x, n, v) - 1; /* last element below v; >= i since x[i] = old < v */
        memmove(x + i, x + i + 1, (j - i) * sizeof *x);
        x[j] = v;
    } else {
        size_t j = lower_bound(x, n, v);
        memmove(x + j + 1, x + j, (i - j) * sizeof *x);
        x[j] = v;
    }
}

/* x ln y with 0 ln 0 = 0. */
static inline double xlogy(double x, double y) { return x == 0 ? 0 : x * log(y); }

/* LR = -2 ln L(p) + 2 ln L(x / n) of the binomial likelihood. */
double hb_risk_kupiec(int64_t x, int64_t n, double p)
{
    if (n <= 0) return 0;
    double nx = (double)(n - x), xx = (double)x, ph = xx / (double)n;
    double l0 = xlogy(nx, 1 - p) + xlogy(xx, p), l1 = xlogy(nx, 1 - ph) + xlogy(xx, ph);
    double lr = -2 * (l0 - l1);
    return lr > 0 ? lr : 0; /* rounding can leave -1e-16 where the ratio is 0 */
}

/* LR of one exception probability against a Markov chain of day-to-day transitions. */
double hb_risk_christoffersen(const uint8_t *exc, int64_t n)
{
    double c[2][2] = {{0, 0}, {0, 0}};
    for (int64_t i = 1; i < n; i++) c[exc[i - 1]][exc[i]] += 1;
    double n00 = c[0][0], n01 = c[0][1], n10 = c[1][0], n11 = c[1][1], tot = n00 + n01 + n10 + n11;
    if (tot == 0) return 0;
    double pi01 = n00 + n01 > 0 ? n01 / (n00 + n01) : 0, pi11 = n10 + n11 > 0 ? n11 / (n10 + n11) : 0;
    double pi = (n01 + n11) / tot;
    double l0 = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi);
    double l1 = xlogy(n00, 1 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1 - pi11) + xlogy(n11, pi11);
    double lr = -2 * (l0 - l1);
    return lr > 0 ? lr : 0;
}

/* The zone of x exceptions by GSL's binomial CDF. */
int hb_risk_zone(int64_t x, int64_t n, double p)
{
    double f = gsl_cdf_binomial_P((unsigned)x, p, (unsigned)n);
    return f >= 0.9999 ? 2 : f >= 0.95 ? 1 : 0;
}

/* VaR is top[m - k]; ES adds the k largest from the top down, a fixed order. */
void hb_risk_tail(const double *top, int64_t m, int64_t n_total, const double *conf, int nc, const double *es_conf,
                  int ne, double *var, double *es)
{
    for (int i = 0; i < nc; i++) var[i] = top[m - hb_risk_k(n_total, conf[i])];
    for (int i = 0; i < ne; i++) {
        int64_t k = hb_risk_k(n_total, es_conf[i]);
        double sum = 0;
        for (int64_t j = 1; j <= k; j++) sum += top[m - j]; /* largest first */
        es[i] = sum / (double)k;
    }
}

/* Each level's k-th largest by selection; the k largest then lie at the end of v. */
void hb_risk_tail_select(double *v, int64_t m, int64_t n_total, const double *conf, int nc, const double *es_conf,
                         int ne, double *var, double *es)
{
    for (int i = 0; i < nc; i++) {
        int64_t k = hb_risk_k(n_total, conf[i]);
        hb_select_f64(v, (size_t)m, (size_t)(m - k));
        var[i] = v[m - k];
    }
    for (int i = 0; i < ne; i++) {
        int64_t k = hb_risk_k(n_total, es_conf[i]);
        hb_select_f64(v, (size_t)m, (size_t)(m - k));
        hb_xsum sum;
        memset(&sum, 0, sizeof sum);
        for (int64_t j = m - k; j < m; j++) hb_xsum_add(&sum, v[j]);
        es[i] = hb_xsum_value(&sum) / (double)k;
    }
}

/* One pass: backtest days in order, then the last window's statistics. */
void hb_risk_portfolio(const hb_risk_spec *s, const hb_risk_layout *l, const double *pnl, double *scratch,
                       double *rec)
{
    const int64_t W = s->window, B = s->backtest;
    double *sorted = scratch;
    uint8_t *exc = (uint8_t *)(scratch + W); /* B bytes within the B doubles after the window */
    for (int64_t i = 0; i < W; i++) sorted[i] = -pnl[i];
    hb_sort_f64(sorted, (size_t)W);
    const int64_t kb = hb_risk_k(W, s->bt_conf);
    int64_t x = 0;
    for (int64_t i = 0; i < B; i++) {
        /* sorted holds the losses of the W days before day W + i */
        double loss = -pnl[W + i];
        exc[i] = loss > sorted[W - kb];
        x += exc[i];
        replace_sorted(sorted, (size_t)W, -pnl[i], loss);
    }
    hb_risk_tail(sorted, W, W, s->conf, s->nc, s->es_conf, s->ne, rec + l->var_h, rec + l->es_h);

    const double *win = pnl + B;
    double mu = gsl_stats_mean(win, 1, (size_t)W), sd = gsl_stats_sd_m(win, 1, (size_t)W, mu);
    for (int i = 0; i < s->nc; i++) rec[l->var_p + i] = gsl_cdf_ugaussian_Pinv(s->conf[i]) * sd - mu;
    for (int i = 0; i < s->ne; i++) {
        double c = s->es_conf[i];
        rec[l->es_p + i] = sd * gsl_ran_ugaussian_pdf(gsl_cdf_ugaussian_Pinv(c)) / (1 - c) - mu;
    }
    rec[l->mean] = mu;
    rec[l->vol] = sd;
    double p = 1 - s->bt_conf;
    rec[l->exc] = (double)x;
    rec[l->kupiec_lr] = hb_risk_kupiec(x, B, p);
    rec[l->kupiec_p] = gsl_cdf_chisq_Q(rec[l->kupiec_lr], 1);
    rec[l->chr_lr] = hb_risk_christoffersen(exc, B);
    rec[l->chr_p] = gsl_cdf_chisq_Q(rec[l->chr_lr], 1);
    rec[l->zone] = B > 0 ? hb_risk_zone(x, B, p) : 0;
    if (s->write_pnl) memcpy(rec + l->pnl, win, (size_t)W * sizeof *rec);
}

/* Means, covariance by DSYRK on the centred window, then GSL's Cholesky or eigen. */
int hb_risk_factor(const double *x, int64_t n, int64_t a, double *m, double *L, double *work)
{
    const size_t A = (size_t)a, N = (size_t)n;
    double *S = work, *V = S + A * A, *C = V + A * A, *ev = C + N * A;
    for (size_t j = 0; j < A; j++) m[j] = gsl_stats_mean(x + j, A, N);
    for (size_t t = 0; t < N; t++)
        for (size_t j = 0; j < A; j++) C[t * A + j] = x[t * A + j] - m[j];
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)A, (int)N, 1.0 / (double)(N - 1), C, (int)A, 0.0, S,
                (int)A);
    double dmax = 0;
    for (size_t i = 0; i < A; i++) {
        for (size_t j = i + 1; j < A; j++) S[i * A + j] = S[j * A + i];
        if (S[i * A + i] > dmax) dmax = S[i * A + i];
    }
    memcpy(L, S, A * A * sizeof *L);
    gsl_matrix_view lv = gsl_matrix_view_array(L, A, A);
    /* a singular covariance's last pivot is zero to rounding, of either sign (OpenBLAS's
     * kernel for the CPU decides): GSL's default handler would abort on a negative one,
     * the code is read here (the kernel's setup turns it off too; a plugin or the unit
     * tests may not) */
    gsl_set_error_handler_off();
    int chol = gsl_linalg_cholesky_decomp1(&lv.matrix) == GSL_SUCCESS;
    /* a pivot at rounding level means a singular covariance: its Cholesky factor would
     * be noise in those columns, the eigen-decomposition is not */
    for (size_t i = 0; chol && i < A; i++) chol = L[i * A + i] * L[i * A + i] > 1e-13 * dmax;
    if (chol) {
        for (size_t i = 0; i < A; i++)
            for (size_t j = i + 1; j < A; j++) L[i * A + j] = 0;
        return 0;
    }
    gsl_eigen_symmv_workspace *w = gsl_eigen_symmv_alloc(A);
    if (!w) return hb_err_set(HB_EINTERNAL, "risk", "out of memory for the eigen-decomposition");
    memcpy(C, S, A * A * sizeof *C); /* symmv destroys its input */
    gsl_matrix_view cv = gsl_matrix_view_array(C, A, A), vv = gsl_matrix_view_array(V, A, A);
    gsl_vector_view evv = gsl_vector_view_array(ev, A);
    int st = gsl_eigen_symmv(&cv.matrix, &evv.vector, &vv.matrix, w);
    gsl_eigen_symmv_free(w);
    if (st != GSL_SUCCESS) return hb_err_set(HB_EINTERNAL, "risk", "eigen-decomposition of the covariance failed");
    for (size_t j = 0; j < A; j++) ev[j] = ev[j] > 0 ? sqrt(ev[j]) : 0;
    for (size_t i = 0; i < A; i++)
        for (size_t j = 0; j < A; j++) L[i * A + j] = V[i * A + j] * ev[j];
    return 1;
}

/* The k largest by one selection over all n values. */
static void compact_select(hb_topk *t)
{
    hb_select_f64(t->buf, (size_t)t->n, (size_t)(t->n - t->k));
    memmove(t->buf, t->buf + (t->n - t->k), (size_t)t->k * sizeof *t->buf);
    t->n = t->k;
    t->thr = t->buf[0]; /* the k-th largest: everything kept is at least this */
}

#define TOPK_SAMPLE 512 /* values sampled to bracket the k-th largest */

/* A sorted sample brackets the k-th largest between lo and hi; the values above hi are
 * kept as they are and only those in [lo, hi] (a few percent) are selected among. When
 * the bracket misses (rarely), one selection over all n. Either way the same set. */
void hb_topk_compact(hb_topk *t)
{
    if (t->n <= t->k) return;
    const int64_t n = t->n, k = t->k;
    double *x = t->buf;
    if (n < 8 * TOPK_SAMPLE) {
        compact_select(t);
        return;
    }
    double s[TOPK_SAMPLE];
    for (int i = 0; i < TOPK_SAMPLE; i++) s[i] = x[(int64_t)i * n / TOPK_SAMPLE];
    hb_sort_f64(s, TOPK_SAMPLE);
    /* the k-th largest sits near sample index pos; 4 standard deviations of the
     * sample's count either side */
    const double q = (double)k / (double)n;
    const int64_t pos = TOPK_SAMPLE - (int64_t)ceil(TOPK_SAMPLE * q),
                  d = (int64_t)ceil(4 * sqrt(TOPK_SAMPLE * q * (1 - q))) + 2;
    const double lo = s[pos - d < 0 ? 0 : pos - d], hi = s[pos + d > TOPK_SAMPLE - 1 ? TOPK_SAMPLE - 1 : pos + d];
    int64_t n_lo = 0, n_hi = 0; /* values >= lo, > hi */
    for (int64_t i = 0; i < n; i++) n_lo += x[i] >= lo, n_hi += x[i] > hi;
    const int64_t m = n_lo - n_hi, need = k - n_hi; /* candidates; how many of them are kept */
    /* + 1: every value is written at c[w]; malloc, as threads call this (nothing recorded) */
    double *c = n_hi < k && k <= n_lo ? malloc((size_t)(m + 1) * sizeof *c) : NULL;
    if (!c) {
        compact_select(t);
        return;
    }
    int64_t a = 0, w = 0; /* the values above hi move to the front; candidates to c */
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i];
        x[a] = v;
        a += v > hi;
        c[w] = v;
        w += (v >= lo) & (v <= hi);
    }
    hb_select_f64(c, (size_t)m, (size_t)(m - need)); /* c[m - need] is the k-th largest of all */
    memmove(x + need, x, (size_t)n_hi * sizeof *x);
    memcpy(x, c + (m - need), (size_t)need * sizeof *x);
    free(c);
    t->n = k;
    t->thr = x[0];
}

/* Appends what beats the threshold, compacting when full: each value is written at the
 * end and kept by advancing the count (no branch on the value). */
void hb_topk_add(hb_topk *t, const double *v, int64_t n)
{
    for (int64_t i = 0; i < n;) {
        if (t->n == t->cap) hb_topk_compact(t);
        const double thr = t->thr;
        const int64_t end = n - i < t->cap - t->n ? n : i + (t->cap - t->n);
        double *buf = t->buf;
        int64_t m = t->n;
        for (; i < end; i++) {
            buf[m] = v[i];
            m += v[i] > thr; /* equal to the k-th largest: the top-k values stay the same */
        }
        t->n = m;
    }
}
