/* The arithmetic of the risk kernel (DESIGN.md 4.2), apart from its input, chunks and
 * output: historical, parametric and backtest statistics of one portfolio, the Monte
 * Carlo factor, and exact top-k loss sets. Not collective; nothing here allocates but
 * the eigen-decomposition's workspace. */
#ifndef HB_RISK_CALC_H
#define HB_RISK_CALC_H

#include <stddef.h>
#include <stdint.h>

/* The levels and sizes every per-portfolio computation shares. */
typedef struct hb_risk_spec {
    int64_t window, backtest; /* N return-days per window; B backtest days (0: none) */
    int nc, ne;               /* VaR levels, ES levels */
    const double *conf, *es_conf;
    double bt_conf;
    int write_pnl;
} hb_risk_spec;

/* Offsets in a portfolio's result record (doubles): VaR and ES, historical then
 * parametric, then mean and volatility of the P&L, the backtest, and the P&L itself. */
typedef struct hb_risk_layout {
    int var_h, es_h, var_p, es_p, mean, vol, exc, kupiec_lr, kupiec_p, chr_lr, chr_p, zone, pnl, size;
} hb_risk_layout;

void hb_risk_layout_init(const hb_risk_spec *s, hb_risk_layout *l);

/* k of the quantile convention: max(1, ceil(n (1 - c) - 1e-9)), the rank (from the top)
 * of the VaR among n losses; ES is the mean of the k largest. */
int64_t hb_risk_k(int64_t n, double c);

/* Scratch doubles hb_risk_portfolio needs. */
size_t hb_risk_scratch(const hb_risk_spec *s);

/* Every per-portfolio statistic from pnl[0 .. window+backtest) (the P&L of consecutive
 * return-days ending at as_of) into rec (layout l): the backtest slides a sorted window
 * through the series, and the last window is the historical one. */
void hb_risk_portfolio(const hb_risk_spec *s, const hb_risk_layout *l, const double *pnl, double *scratch,
                       double *rec);

/* Kupiec POF likelihood ratio for x exceptions in n days at exception probability p,
 * with 0 ln 0 = 0. */
double hb_risk_kupiec(int64_t x, int64_t n, double p);
/* Christoffersen's independence likelihood ratio of an exception sequence (0 when
 * undefined: fewer than two days). */
double hb_risk_christoffersen(const uint8_t *exc, int64_t n);
/* Basel traffic light: 0 green, 1 yellow when F(x; n, p) >= 0.95, 2 red when >= 0.9999. */
int hb_risk_zone(int64_t x, int64_t n, double p);

/* The Monte Carlo factor, from the window's returns x [n x a] (row-major): asset means
 * m [a], and L [a x a] with L L' = sample covariance (Cholesky; eigen-decomposition
 * with negative eigenvalues set to 0 when the covariance is not numerically positive
 * definite). work needs 3 a*a + n*a + a doubles. Returns 0 for Cholesky, 1 for eigen, or
 * an exit code. */
int hb_risk_factor(const double *x, int64_t n, int64_t a, double *m, double *L, double *work);

/* Top-k loss set of one portfolio: values kept in buf (capacity cap >= k + 1), all
 * of the k largest seen so far among them; thr is the k-th largest once buf was full. */
typedef struct hb_topk {
    double *buf;
    int64_t n, cap, k;
    double thr;
} hb_topk;

/* Adds v[0..n) to t; the set kept does not depend on the order values come in. */
void hb_topk_add(hb_topk *t, const double *v, int64_t n);
/* Keeps only the k largest (at most k values) in buf. */
void hb_topk_compact(hb_topk *t);

/* VaR and ES of the k largest values top[0..m) (ascending, m >= every k). */
void hb_risk_tail(const double *top, int64_t m, int64_t n_total, const double *conf, int nc, const double *es_conf,
                  int ne, double *var, double *es);
/* The same from the k largest of n_total losses in any order in v[0..m) (reordered): by
 * selection, with ES from an exact sum, so the bits do not depend on the order. */
void hb_risk_tail_select(double *v, int64_t m, int64_t n_total, const double *conf, int nc, const double *es_conf,
                         int ne, double *var, double *es);

#endif
