/* Risk analysis (DESIGN.md 4.2): historical, parametric and Monte Carlo VaR and ES of
 * every portfolio, and a rolling backtest of the historical VaR with Kupiec,
 * Christoffersen and the Basel traffic light.
 *
 * Setup reads the returns of the window + backtest days (every rank keeps them: they
 * are small) and the positions: /portfolios/exposure, or /transactions aggregated by
 * (portfolio, asset) up to as_of in a keyed reduction (records go to the rank that owns
 * their portfolio, which sums them in row order, and every rank gets the result). With
 * Monte Carlo, rank 0 factors the covariance and broadcasts B = E L (P&L per unit shock)
 * and the mean P&L.
 *
 * Chunks are of two kinds, spread evenly through the chunk range, both independent of
 * the rank count: blocks of PORTFOLIO_BLOCK portfolios (P&L by DGEMM, then every
 * per-portfolio statistic, computed whole on one rank), and blocks of Monte Carlo
 * scenarios (normals from Philox at (seed, scenario), losses by DGEMM in tiles of
 * MC_TILE scenarios aligned to the scenario index, then each portfolio's top-k losses).
 * finalize sends each portfolio's record and top-k set to the rank that writes its rows:
 * the union of every rank's top-k holds the global top-k exactly, and VaR (a selection)
 * and ES (an exact sum) do not depend on the order, so they have the same bits at any
 * rank count. */
#include "kernels/kernel.h"

#include "core/hb.h"
#include "core/calendar.h"
#include "kernels/common/exchange.h"
#include "kernels/risk/calc.h"
#include "kernels/risk/format.h"
#include "kernels/risk/rng.h"

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PORTFOLIO_BLOCK 64 /* portfolios per chunk */
#define MC_TILE 256        /* scenarios per DGEMM; tiles start at multiples of it */
#define MC_Y_DOUBLES (1 << 22) /* losses buffered per pass over the portfolios (32 MB) */
#define TX_PIECE (1 << 20)     /* transactions read at a time */
#define TX_BLOCK 128           /* transactions per MPI block of their exchange */
#define TAIL_BLOCK 512         /* top-k losses per MPI block of their exchange */
#define STREAM_NORMAL 0u
#define STREAM_CHISQ 1u

/* OpenBLAS's own threads would make DGEMM's blocking depend on the thread count; the
 * kernel runs one single-threaded DGEMM per OpenMP thread instead. Weak: another BLAS
 * simply lacks it. */
extern void openblas_set_num_threads(int n) __attribute__((weak));

static const hb_option risk_options[] = {
    {"as_of", HB_OPT_INT, NULL, 1, 0, NULL, "valuation date yyyymmdd, a date of /market/dates; default the last"},
    {"window", HB_OPT_INT, "500", 2, 1e7, NULL, "return-days in the VaR window ending at as_of"},
    {"confidence", HB_OPT_LIST, "0.95, 0.99", 1, 0, NULL, "VaR confidence levels, each in (0, 1)"},
    {"es_confidence", HB_OPT_LIST, "0.975", 1, 0, NULL, "expected shortfall confidence levels, each in (0, 1)"},
    {"methods", HB_OPT_STRING, "historical, parametric, montecarlo", 1, 0, NULL,
     "comma-separated list of historical, parametric, montecarlo"},
    {"mc_scenarios", HB_OPT_SIZE, "100k", 1, 1e11, NULL, "Monte Carlo scenarios"},
    {"mc_distribution", HB_OPT_CHOICE, "normal", 1, 0, "normal|t",
     "Monte Carlo shocks: multivariate normal, or Student t scaled to unit covariance"},
    {"mc_dof", HB_OPT_FLOAT, "5", 2, 1e6, NULL, "degrees of freedom of the t distribution, above 2"},
    {"seed", HB_OPT_INT, "1", 0, 1e15, NULL, "seed of the Monte Carlo random stream"},
    {"backtest_days", HB_OPT_INT, "250", 0, 1e7, NULL, "return-days up to as_of that are backtested; 0 disables"},
    {"backtest_confidence", HB_OPT_FLOAT, "0.99", 1, 0, NULL, "VaR level of the backtest, in (0, 1)"},
    {"write_pnl", HB_OPT_BOOL, "false", 1, 0, NULL, "also write the window's P&L, pnl [P, window]"},
    {"positions", HB_OPT_CHOICE, "auto", 1, 0, "auto|exposure|transactions",
     "where positions come from; auto: /portfolios/exposure when present, else /transactions"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

enum { M_HIST = 1, M_PARAM = 2, M_MC = 4 };

typedef struct risk {
    hb_step_ctx *ctx;
    /* options */
    int methods, mc_t, write_pnl;
    double conf[HB_OPT_LIST_MAX], es_conf[HB_OPT_LIST_MAX], bt_conf, dof;
    int nc, ne;
    int64_t window, backtest, mc_n;
    uint64_t seed;
    hb_risk_spec spec;
    hb_risk_layout lay;
    /* market and positions */
    int64_t T, A, P, ia, d0, D; /* returns of days d0 .. ia (D = window + backtest of them) */
    int64_t *dates;
    const char *source, *positions; /* "prices"/"returns"; "exposure"/"transactions" */
    double *R;                      /* [D x A] */
    double *price;                  /* [A] prices at as_of (NULL with returns) */
    double *E;                      /* [P x A] */
    /* chunks: npb portfolio blocks spread among nmc Monte Carlo blocks of mc_chunk */
    int64_t npb, nmc, mc_chunk, n_chunks;
    /* per-portfolio records of the blocks this rank has done (or loaded) */
    double *rec;   /* [P x lay.size] */
    uint8_t *done; /* [npb] */
    double *pnl;   /* [PORTFOLIO_BLOCK x D] */
    double *scratch; /* per thread: hb_risk_scratch doubles */
    size_t scratch_len;
    /* Monte Carlo */
    int factor; /* 0 Cholesky, 1 eigen */
    double *Bt, *mu; /* [P x A] P&L per unit shock, [P] mean P&L */
    int64_t kmax, J, apad, y_cols, ldy; /* ldy: y_cols plus a cache line, so rows do not alias in cache */
    hb_topk *top;     /* [P] */
    double *topbuf;   /* [P x cap] */
    double *z, *w, *y; /* per thread [MC_TILE x apad], [MC_TILE]; shared [P x y_cols] */
    uint32_t *words;  /* per thread [apad] */
    gsl_rng **rng;    /* per thread */
    double t_products, t_scenarios; /* time in this run's Monte Carlo blocks, for -v */
    int64_t mc_mapped;              /* scenarios this rank drew in this run */
} risk;

/* Checks the words of the methods list; fills *mask. */
static int parse_methods(const char *s, int *mask, char *msg, size_t len)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *mask = 0;
    for (char *save = NULL, *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        if (strcmp(t, "historical") == 0) *mask |= M_HIST;
        else if (strcmp(t, "parametric") == 0) *mask |= M_PARAM;
        else if (strcmp(t, "montecarlo") == 0) *mask |= M_MC;
        else {
            snprintf(msg, len, "methods: unknown method '%s' (historical, parametric, montecarlo)", t);
            return HB_ECONFIG;
        }
    }
    if (*mask == 0) {
        snprintf(msg, len, "methods is empty (historical, parametric, montecarlo)");
        return HB_ECONFIG;
    }
    return 0;
}

/* A level must lie strictly inside (0, 1). */
static int check_level(const char *key, double v, const char **kp, char *msg, size_t len)
{
    if (v > 0 && v < 1) return 0;
    *kp = key;
    snprintf(msg, len, "%s = %g is outside (0, 1)", key, v);
    return HB_ECONFIG;
}

/* What the option table cannot check: levels inside (0, 1), the methods, as_of a real
 * date, more than 2 degrees of freedom. */
static int risk_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    double v[HB_OPT_LIST_MAX];
    static const char *const lists[] = {"confidence", "es_confidence"};
    for (int l = 0; l < 2; l++) {
        int n = hb_opt_list(o, lists[l], v);
        for (int i = 0; i < n; i++) HB_CALL(check_level(lists[l], v[i], key, msg, len));
    }
    HB_CALL(check_level("backtest_confidence", hb_opt_num(o, "backtest_confidence"), key, msg, len));
    int mask;
    if (parse_methods(hb_opt_str(o, "methods"), &mask, msg, len)) return *key = "methods", HB_ECONFIG;
    double as_of = hb_opt_num(o, "as_of");
    if (!isnan(as_of) && hb_days_from_yyyymmdd((int64_t)as_of) == INT64_MIN) {
        *key = "as_of";
        snprintf(msg, len, "as_of = %.0f is not a date yyyymmdd", as_of);
        return HB_ECONFIG;
    }
    if (!(hb_opt_num(o, "mc_dof") > 2)) {
        *key = "mc_dof";
        snprintf(msg, len, "mc_dof = %g: the t distribution needs more than 2 degrees of freedom", hb_opt_num(o, "mc_dof"));
        return HB_ECONFIG;
    }
    return 0;
}

/* The step's options into r (validated when the job file was read). */
static void read_options(risk *r)
{
    const hb_optset *o = r->ctx->opts;
    char msg[160];
    parse_methods(hb_opt_str(o, "methods"), &r->methods, msg, sizeof msg); /* validated already */
    r->nc = hb_opt_list(o, "confidence", r->conf);
    r->ne = hb_opt_list(o, "es_confidence", r->es_conf);
    r->bt_conf = hb_opt_num(o, "backtest_confidence");
    r->window = (int64_t)hb_opt_num(o, "window");
    r->backtest = (int64_t)hb_opt_num(o, "backtest_days");
    r->mc_n = (int64_t)hb_opt_num(o, "mc_scenarios");
    r->mc_t = strcmp(hb_opt_str(o, "mc_distribution"), "t") == 0;
    r->dof = hb_opt_num(o, "mc_dof");
    r->seed = (uint64_t)hb_opt_num(o, "seed");
    r->write_pnl = hb_opt_bool(o, "write_pnl");
    r->spec = (hb_risk_spec){.window = r->window, .backtest = r->backtest, .nc = r->nc, .ne = r->ne,
                             .conf = r->conf, .es_conf = r->es_conf, .bt_conf = r->bt_conf, .write_pnl = r->write_pnl};
    hb_risk_layout_init(&r->spec, &r->lay);
}

/* Not collective. /market/dates: real dates, strictly ascending. */
static int load_dates(risk *r)
{
    hb_step_ctx *ctx = r->ctx;
    HB_CALL(hb_in_read_array(ctx->in, "/market/dates", HB_I64, &r->T, (void **)&r->dates));
    char where[600];
    snprintf(where, sizeof where, "%s:/market/dates", ctx->input);
    HB_CHECK(r->T >= 2, HB_EDATA, where, "has %lld dates; at least 2 are needed", (long long)r->T);
    for (int64_t i = 0; i < r->T; i++) {
        HB_CHECK(hb_days_from_yyyymmdd(r->dates[i]) != INT64_MIN, HB_EDATA, where, "row %lld: %lld is not a date yyyymmdd",
                 (long long)i, (long long)r->dates[i]);
        HB_CHECK(i == 0 || r->dates[i] > r->dates[i - 1], HB_EDATA, where,
                 "dates are not strictly ascending: row %lld (%lld) follows row %lld (%lld)", (long long)i,
                 (long long)r->dates[i], (long long)(i - 1), (long long)r->dates[i - 1]);
    }
    return 0;
}

/* Not collective. as_of's row, and the history it needs (78 when there is too little). */
static int locate(risk *r, int prices)
{
    hb_step_ctx *ctx = r->ctx;
    char where[300];
    snprintf(where, sizeof where, "[step %s]", ctx->step_name);
    double opt = hb_opt_num(ctx->opts, "as_of");
    r->ia = r->T - 1;
    if (!isnan(opt)) {
        int64_t want = (int64_t)opt, lo = 0, hi = r->T; /* first date >= want */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (r->dates[mid] < want) lo = mid + 1;
            else hi = mid;
        }
        if (lo == r->T || r->dates[lo] != want) {
            if (lo == 0)
                return hb_err_set(HB_ECONFIG, where, "as_of = %lld is before the first date of %s (%lld)",
                                  (long long)want, ctx->input, (long long)r->dates[0]);
            return hb_err_set(HB_ECONFIG, where, "as_of = %lld is not a date of %s:/market/dates (the last before it is %lld)",
                              (long long)want, ctx->input, (long long)r->dates[lo - 1]);
        }
        r->ia = lo;
    }
    int64_t have = r->ia + 1 - prices, need = r->window + r->backtest;
    if (have < need)
        return hb_err_set(HB_ECONFIG, where,
                          "too little history in %s: %lld return days up to as_of %lld, but window %lld + backtest_days "
                          "%lld need %lld",
                          ctx->input, (long long)have, (long long)r->dates[r->ia], (long long)r->window,
                          (long long)r->backtest, (long long)need);
    r->D = need;
    r->d0 = r->ia - need + 1;
    return 0;
}

/* Not collective. The returns of days d0..ia from /market/prices (p_t / p_{t-1} - 1) or
 * /market/returns, checking every value read. */
static int load_returns(risk *r)
{
    hb_step_ctx *ctx = r->ctx;
    hb_in *in = ctx->in;
    int prices = hb_in_exists(in, "/market/prices");
    const char *path = prices ? "/market/prices" : "/market/returns";
    char where[600];
    snprintf(where, sizeof where, "%s:%s", ctx->input, path);
    if (!prices && !hb_in_exists(in, path))
        return hb_err_set(HB_EDATA, ctx->input, "neither /market/prices nor /market/returns is present");
    r->source = prices ? "prices" : "returns";
    int nd;
    int64_t dims[8];
    HB_CALL(hb_in_dims(in, path, &nd, dims));
    HB_CHECK(nd == 2, HB_EDATA, where, "has %d dimensions; [days, assets] is needed", nd);
    HB_CHECK(dims[0] == r->T, HB_EDATA, where, "shape mismatch: %lld rows, but /market/dates has %lld", (long long)dims[0],
             (long long)r->T);
    HB_CHECK(dims[1] >= 1, HB_EDATA, where, "has no assets (columns)");
    r->A = dims[1];
    HB_CALL(locate(r, prices));
    const int64_t A = r->A, D = r->D, first = r->d0 - prices, rows = D + prices;
    double *x = hb_malloc((size_t)(rows * A) * sizeof *x);
    r->R = hb_malloc((size_t)(D * A) * sizeof *r->R);
    if (!x || !r->R) return free(x), HB_EINTERNAL;
    int rc = hb_in_read_rows(in, path, first, rows, x);
    for (int64_t i = 0; rc == 0 && i < rows * A; i++) {
        double v = x[i];
        if (prices ? (v > 0 && isfinite(v)) : isfinite(v)) continue;
        int64_t row = first + i / A, col = i % A;
        rc = hb_err_set(HB_EDATA, where, "row %lld (date %lld), column %lld: %g is not %s", (long long)row,
                        (long long)r->dates[row], (long long)col, v, prices ? "a positive finite price" : "a finite return");
    }
    if (rc == 0 && prices) {
        for (int64_t t = 0; t < D; t++)
            for (int64_t a = 0; a < A; a++) r->R[t * A + a] = x[(t + 1) * A + a] / x[t * A + a] - 1;
        r->price = hb_malloc((size_t)A * sizeof *r->price);
        if (r->price) memcpy(r->price, x + D * A, (size_t)A * sizeof *r->price);
        else rc = HB_EINTERNAL;
    } else if (rc == 0) {
        memcpy(r->R, x, (size_t)(D * A) * sizeof *x);
    }
    free(x);
    return rc;
}

/* Not collective. Positions from /portfolios/exposure [P, A]. */
static int load_exposure(risk *r)
{
    hb_step_ctx *ctx = r->ctx;
    const char *path = "/portfolios/exposure";
    char where[600];
    snprintf(where, sizeof where, "%s:%s", ctx->input, path);
    int nd;
    int64_t dims[8];
    HB_CALL(hb_in_dims(ctx->in, path, &nd, dims));
    HB_CHECK(nd == 2, HB_EDATA, where, "has %d dimensions; [portfolios, assets] is needed", nd);
    HB_CHECK(dims[1] == r->A, HB_EDATA, where, "shape mismatch: %lld columns, but /market/%s has %lld assets",
             (long long)dims[1], r->source, (long long)r->A);
    HB_CHECK(dims[0] >= 1, HB_EDATA, where, "has no portfolios (rows)");
    r->P = dims[0];
    r->E = hb_malloc((size_t)(r->P * r->A) * sizeof *r->E);
    if (!r->E) return HB_EINTERNAL;
    HB_CALL(hb_in_read_rows(ctx->in, path, 0, r->P, r->E));
    for (int64_t i = 0; i < r->P * r->A; i++)
        HB_CHECK(isfinite(r->E[i]), HB_EDATA, where, "row %lld, column %lld: %g is not a finite exposure",
                 (long long)(i / r->A), (long long)(i % r->A), r->E[i]);
    return 0;
}

typedef struct txrec {
    int64_t row, p, a;
    double q;
} txrec;

/* qsort order of transaction records: by input row. */
static int by_row(const void *x, const void *y)
{
    int64_t a = ((const txrec *)x)->row, b = ((const txrec *)y)->row;
    return (a > b) - (a < b);
}

/* Not collective. Reads this rank's rows of /transactions, checks them, and keeps
 * those dated on or before as_of in *recs; *pmax is the largest portfolio id seen. */
static int read_transactions(risk *r, hb_table *t, int64_t P_attr, txrec **recs, int64_t *nrec, int64_t *pmax)
{
    const int64_t M = hb_table_rows(t);
    int64_t lo, hi;
    hb_range_of(M, hb_rank, hb_size, &lo, &hi);
    const int64_t as_of = r->dates[r->ia], A = r->A;
    char where[600];
    int64_t piece = hi - lo < TX_PIECE ? (hi - lo > 0 ? hi - lo : 1) : TX_PIECE;
    int64_t *date = hb_malloc((size_t)piece * sizeof *date);
    double *port = hb_malloc((size_t)piece * sizeof *port), *asset = hb_malloc((size_t)piece * sizeof *asset);
    double *qty = hb_malloc((size_t)piece * sizeof *qty);
    txrec *out = hb_malloc((size_t)(hi - lo > 0 ? hi - lo : 1) * sizeof *out);
    int rc = date && port && asset && qty && out ? 0 : HB_EINTERNAL;
    int64_t n = 0;
    for (int64_t s = lo; rc == 0 && s < hi; s += piece) {
        int64_t cnt = hi - s < piece ? hi - s : piece;
        rc = hb_table_read(t, 0, s, cnt, HB_I64, date);
        if (rc == 0) rc = hb_table_read(t, 1, s, cnt, HB_F64, port);
        if (rc == 0) rc = hb_table_read(t, 2, s, cnt, HB_F64, asset);
        if (rc == 0) rc = hb_table_read(t, 3, s, cnt, HB_F64, qty);
        for (int64_t i = 0; rc == 0 && i < cnt; i++) {
            int64_t row = s + i;
            double p = port[i], a = asset[i];
            if (hb_days_from_yyyymmdd(date[i]) == INT64_MIN) {
                snprintf(where, sizeof where, "%s:/transactions/date", r->ctx->input);
                rc = hb_err_set(HB_EDATA, where, "row %lld: %lld is not a date yyyymmdd", (long long)row,
                                (long long)date[i]);
            } else if (!(p >= 0 && p == floor(p) && p < (P_attr ? (double)P_attr : 9007199254740992.0))) {
                snprintf(where, sizeof where, "%s:/transactions/portfolio", r->ctx->input);
                if (P_attr)
                    rc = hb_err_set(HB_EDATA, where, "row %lld: portfolio id %g is out of range [0, %lld)", (long long)row,
                                    p, (long long)P_attr);
                else rc = hb_err_set(HB_EDATA, where, "row %lld: %g is not a portfolio id", (long long)row, p);
            } else if (!(a >= 0 && a == floor(a) && a < (double)A)) {
                snprintf(where, sizeof where, "%s:/transactions/asset", r->ctx->input);
                rc = hb_err_set(HB_EDATA, where, "row %lld: asset id %g is out of range [0, %lld)", (long long)row, a,
                                (long long)A);
            } else if (!isfinite(qty[i])) {
                snprintf(where, sizeof where, "%s:/transactions/quantity", r->ctx->input);
                rc = hb_err_set(HB_EDATA, where, "row %lld: %g is not a finite quantity", (long long)row, qty[i]);
            } else {
                if ((int64_t)p > *pmax) *pmax = (int64_t)p;
                if (date[i] <= as_of) out[n++] = (txrec){row, (int64_t)p, (int64_t)a, qty[i]};
            }
        }
    }
    free(date), free(port), free(asset), free(qty);
    *recs = out;
    *nrec = n;
    return rc;
}

/* Collective. Positions from /transactions: each record goes to the rank owning its
 * portfolio, which adds the quantities in row order (the same sums at any rank count)
 * and values them at as_of; then every rank gathers the whole matrix. */
static int load_transactions(risk *r)
{
    hb_step_ctx *ctx = r->ctx;
    static const char *const cols[] = {"date", "portfolio", "asset", "quantity"};
    hb_table *t = NULL;
    int rc = 0;
    if (!r->price)
        rc = hb_err_set(HB_EDATA, ctx->input, "/transactions need /market/prices to value positions (found /market/returns)");
    if (rc == 0) rc = hb_table_open(ctx->in, "/transactions", cols, 4, &t);
    int64_t P_attr = 0, v;
    int present = 0;
    if (rc == 0) rc = hb_table_attr_i64(t, "n_portfolios", &v, &present);
    if (rc == 0 && present) {
        if (v >= 1) P_attr = v;
        else rc = hb_err_set(HB_EDATA, ctx->input, "/transactions: attribute n_portfolios = %lld is not positive", (long long)v);
    }
    txrec *recs = NULL, *rbuf = NULL;
    int64_t nrec = 0, pmax = -1;
    if (rc == 0) rc = read_transactions(r, t, P_attr, &recs, &nrec, &pmax);
    hb_table_close(t);
    rc = hb_agree(rc);
    if (rc) return free(recs), rc;
    MPI_Allreduce(MPI_IN_PLACE, &pmax, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    r->P = P_attr ? P_attr : pmax + 1;
    if (r->P < 1) return free(recs), hb_err_set(HB_EDATA, ctx->input, "/transactions is empty and has no n_portfolios attribute");
    if (r->P * r->A >= INT32_MAX) /* one MPI count below */
        return free(recs), hb_err_set(HB_EDATA, ctx->input, "%lld portfolios x %lld assets are too many for one exchange",
                                      (long long)r->P, (long long)r->A);

    const int S = hb_size;
    const int64_t P = r->P, A = r->A;
    hb_xchg xc;
    size_t scap = 0, rcap = 0, *pos = NULL;
    txrec *sbuf = NULL;
    rc = hb_xchg_init(&xc, TX_BLOCK);
    for (int64_t i = 0; rc == 0 && i < nrec; i++) xc.scount[hb_owner_of(recs[i].p, P, S)]++;
    if (rc == 0) rc = hb_xchg_layout(&xc);
    if (rc == 0) rc = hb_xchg_reserve((void **)&sbuf, &scap, xc.stotal, sizeof *sbuf);
    if (rc == 0 && !(pos = hb_malloc((size_t)S * sizeof *pos))) rc = HB_EINTERNAL;
    if (rc == 0) {
        memcpy(pos, xc.sdispl, (size_t)S * sizeof *pos);
        for (int64_t i = 0; i < nrec; i++) sbuf[pos[hb_owner_of(recs[i].p, P, S)]++] = recs[i]; /* keeps row order */
    }
    free(recs), free(pos);
    rc = hb_agree(rc);
    const hb_xchg_array xa = {sbuf, (void **)&rbuf, &rcap, sizeof *rbuf};
    if (rc == 0) rc = hb_xchg_run(&xc, &xa, 1);
    const size_t nrecv = xc.received;
    free(sbuf);
    hb_xchg_free(&xc);
    if (rc) return free(rbuf), rc;

    /* this rank's portfolios [p_lo, p_hi), summed in row order */
    int64_t p_lo, p_hi;
    hb_range_of(P, hb_rank, S, &p_lo, &p_hi);
    const int64_t nown = p_hi - p_lo;
    qsort(rbuf, nrecv, sizeof *rbuf, by_row);
    double *q = hb_calloc((size_t)((nown ? nown : 1) * A), sizeof *q);
    int *cnt = hb_malloc(2 * (size_t)S * sizeof *cnt), *dsp = cnt ? cnt + S : NULL;
    r->E = hb_malloc((size_t)(P * A) * sizeof *r->E);
    rc = hb_agree(q && cnt && r->E ? 0 : HB_EINTERNAL);
    if (rc == 0) {
        for (size_t i = 0; i < nrecv; i++) q[(rbuf[i].p - p_lo) * A + rbuf[i].a] += rbuf[i].q;
        for (int64_t i = 0; i < nown * A; i++) q[i] *= r->price[i % A];
        for (int d = 0; d < S; d++) {
            int64_t lo, hi;
            hb_range_of(P, d, S, &lo, &hi);
            cnt[d] = (int)((hi - lo) * A), dsp[d] = (int)(lo * A); /* P A < 2^31: checked above */
        }
        if (MPI_Allgatherv(q, (int)(nown * A), MPI_DOUBLE, r->E, cnt, dsp, MPI_DOUBLE, MPI_COMM_WORLD) != MPI_SUCCESS)
            rc = hb_err_set(HB_EINTERNAL, "risk", "MPI_Allgatherv of the positions failed");
        rc = hb_agree(rc);
    }
    free(q), free(cnt), free(rbuf);
    return rc;
}

/* Collective. Positions from the source the positions option names. */
static int load_positions(risk *r)
{
    hb_step_ctx *ctx = r->ctx;
    const char *want = hb_opt_str(ctx->opts, "positions");
    int exp = hb_in_exists(ctx->in, "/portfolios/exposure"), tx = hb_in_exists(ctx->in, "/transactions");
    int use_tx = strcmp(want, "transactions") == 0 || (strcmp(want, "auto") == 0 && !exp);
    int rc = 0;
    if (strcmp(want, "auto") == 0 && !exp && !tx)
        rc = hb_err_set(HB_EDATA, ctx->input, "no positions: neither /portfolios/exposure nor /transactions is present");
    r->positions = use_tx ? "transactions" : "exposure";
    if (rc == 0 && !use_tx) rc = load_exposure(r);
    rc = hb_agree(rc);
    if (rc == 0 && use_tx) rc = load_transactions(r);
    return rc;
}

/* Chunk c: a portfolio block (*block >= 0) or a Monte Carlo block (*mc >= 0). Block j
 * sits at chunk floor((2j+1) n / (2 npb)) of n chunks, evenly among the others. */
static void chunk_kind(const risk *r, int64_t c, int64_t *block, int64_t *mc)
{
    const int64_t n = r->n_chunks, nb = r->npb;
    int64_t lo = 0, hi = nb; /* number of blocks placed before or at c */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if ((2 * mid + 1) * n / (2 * nb) <= c) lo = mid + 1;
        else hi = mid;
    }
    int64_t j = lo - 1;
    if (j >= 0 && (2 * j + 1) * n / (2 * nb) == c) *block = j, *mc = -1;
    else *block = -1, *mc = c - lo;
}

/* Rank 0 factors the covariance and computes B = E L and the mean P&L; every rank gets
 * them. Collective. */
static int mc_prepare(risk *r)
{
    const int64_t A = r->A, P = r->P, N = r->window;
    r->Bt = hb_malloc((size_t)(P * A) * sizeof *r->Bt);
    r->mu = hb_malloc((size_t)P * sizeof *r->mu);
    int rc = r->Bt && r->mu ? 0 : HB_EINTERNAL;
    if (rc == 0 && hb_rank == 0) {
        double *m = hb_malloc((size_t)A * sizeof *m), *L = hb_malloc((size_t)(A * A) * sizeof *L);
        double *work = hb_malloc((size_t)(3 * A * A + N * A + A) * sizeof *work);
        rc = m && L && work ? 0 : HB_EINTERNAL;
        if (rc == 0) {
            rc = hb_risk_factor(r->R + (r->D - N) * A, N, A, m, L, work);
            if (rc == 0 || rc == 1) r->factor = rc, rc = 0;
        }
        if (rc == 0) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)P, (int)A, (int)A, 1.0, r->E, (int)A, L, (int)A,
                        0.0, r->Bt, (int)A);
            for (int64_t p = 0; p < P; p++) {
                double s = 0;
                for (int64_t a = 0; a < A; a++) s += r->E[p * A + a] * m[a];
                r->mu[p] = s;
            }
        }
        free(m), free(L), free(work);
    }
    HB_CALL(hb_agree(rc));
    HB_CALL_MPI(MPI_Bcast(&r->factor, 1, MPI_INT, 0, MPI_COMM_WORLD));
    HB_CALL_MPI(MPI_Bcast(r->mu, (int)P, MPI_DOUBLE, 0, MPI_COMM_WORLD));
    for (int64_t off = 0; off < P * A; off += 1 << 26) {
        int n = (int)(P * A - off < (1 << 26) ? P * A - off : (1 << 26));
        HB_CALL_MPI(MPI_Bcast(r->Bt + off, n, MPI_DOUBLE, 0, MPI_COMM_WORLD));
    }
    return 0;
}

/* Not collective. Buffers and top-k sets of the Monte Carlo blocks. */
static int mc_alloc(risk *r)
{
    const int th = r->ctx->threads;
    r->kmax = 1;
    for (int i = 0; i < r->nc; i++)
        if (hb_risk_k(r->mc_n, r->conf[i]) > r->kmax) r->kmax = hb_risk_k(r->mc_n, r->conf[i]);
    for (int i = 0; i < r->ne; i++)
        if (hb_risk_k(r->mc_n, r->es_conf[i]) > r->kmax) r->kmax = hb_risk_k(r->mc_n, r->es_conf[i]);
    const int64_t cap = 3 * r->kmax + 64; /* roomy: each compaction is a selection over cap values */
    r->J = (r->A + 3) / 4;
    r->apad = 4 * r->J;
    int64_t cols = MC_Y_DOUBLES / r->P / MC_TILE * MC_TILE;
    r->y_cols = cols < MC_TILE ? MC_TILE : cols > r->mc_chunk ? r->mc_chunk : cols;
    r->top = hb_calloc((size_t)r->P, sizeof *r->top);
    r->topbuf = hb_malloc((size_t)(r->P * cap) * sizeof *r->topbuf);
    r->z = hb_malloc((size_t)(th * MC_TILE * r->apad) * sizeof *r->z);
    r->w = hb_malloc((size_t)(th * MC_TILE) * sizeof *r->w);
    r->words = hb_malloc((size_t)(th * r->apad) * sizeof *r->words);
    r->ldy = r->y_cols + 8;
    r->y = hb_malloc((size_t)(r->P * r->ldy) * sizeof *r->y);
    r->rng = hb_calloc((size_t)th, sizeof *r->rng);
    if (!r->top || !r->topbuf || !r->z || !r->w || !r->words || !r->y || !r->rng) return HB_EINTERNAL;
    for (int i = 0; i < th; i++)
        if (!(r->rng[i] = gsl_rng_alloc(hb_rng_philox)))
            return hb_err_set(HB_EINTERNAL, "risk", "out of memory for a random number generator");
    for (int64_t p = 0; p < r->P; p++)
        r->top[p] = (hb_topk){.buf = r->topbuf + p * cap, .n = 0, .cap = cap, .k = r->kmax, .thr = -INFINITY};
    return 0;
}

/* Collective. Reads and checks the input, builds the positions, the chunk plan and the
 * Monte Carlo factor. */
static int risk_setup(hb_step_ctx *ctx, void **state)
{
    risk *r = hb_calloc(1, sizeof *r);
    *state = r;
    if (!r) return hb_agree(HB_EINTERNAL);
    r->ctx = ctx;
    gsl_set_error_handler_off(); /* GSL's default handler aborts; errors come back as codes */
    if (openblas_set_num_threads) openblas_set_num_threads(1);
    read_options(r);
    int rc = load_dates(r);
    if (rc == 0) rc = load_returns(r);
    HB_CALL(hb_agree(rc));
    HB_CALL(load_positions(r));

    const int64_t cr = ctx->chunk_rows > 0 ? ctx->chunk_rows : 8192;
    r->mc_chunk = (cr + MC_TILE - 1) / MC_TILE * MC_TILE; /* tiles never straddle chunks */
    r->npb = (r->P + PORTFOLIO_BLOCK - 1) / PORTFOLIO_BLOCK;
    r->nmc = r->methods & M_MC ? (r->mc_n + r->mc_chunk - 1) / r->mc_chunk : 0;
    r->n_chunks = r->npb + r->nmc;
    ctx->n_chunks = r->n_chunks;
    ctx->n_rows = r->n_chunks * ctx->chunk_rows; /* every chunk counts as chunk_rows in the progress */

    r->rec = hb_calloc((size_t)(r->P * r->lay.size), sizeof *r->rec);
    r->done = hb_calloc((size_t)r->npb, 1);
    r->pnl = hb_malloc((size_t)(PORTFOLIO_BLOCK * r->D) * sizeof *r->pnl);
    r->scratch_len = hb_risk_scratch(&r->spec);
    r->scratch = hb_malloc((size_t)ctx->threads * r->scratch_len * sizeof *r->scratch);
    rc = r->rec && r->done && r->pnl && r->scratch ? 0 : HB_EINTERNAL;
    if (rc == 0 && (r->methods & M_MC)) rc = mc_alloc(r);
    HB_CALL(hb_agree(rc));
    if (r->methods & M_MC) HB_CALL(mc_prepare(r));
    HB_INFO("risk: %lld portfolios x %lld assets from %s, %s at %lld, window %lld, backtest %lld; %lld chunks",
            (long long)r->P, (long long)r->A, r->positions, r->source, (long long)r->dates[r->ia], (long long)r->window,
            (long long)r->backtest, (long long)r->n_chunks);
    return 0;
}

/* Every statistic of the portfolios of block b. */
static int map_block(risk *r, int64_t b)
{
    const int64_t p0 = b * PORTFOLIO_BLOCK, np = r->P - p0 < PORTFOLIO_BLOCK ? r->P - p0 : PORTFOLIO_BLOCK;
    const int64_t A = r->A, D = r->D;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)np, (int)D, (int)A, 1.0, r->E + p0 * A, (int)A, r->R,
                (int)A, 0.0, r->pnl, (int)D);
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->ctx->threads)
    for (int64_t i = 0; i < np; i++)
        hb_risk_portfolio(&r->spec, &r->lay, r->pnl + i * D, r->scratch + (size_t)omp_get_thread_num() * r->scratch_len,
                          r->rec + (p0 + i) * r->lay.size);
    r->done[b] = 1;
    return 0;
}

/* Losses of scenarios [s, s + n) (n <= MC_TILE) into columns [col, col + n) of y. */
static void mc_tile(risk *r, int th, int64_t s, int64_t n, int64_t col, double *tprod)
{
    const int64_t A = r->A, P = r->P, ap = r->apad, yc = r->ldy;
    double *z = r->z + (size_t)th * MC_TILE * (size_t)ap, *w = r->w + (size_t)th * MC_TILE;
    uint32_t *words = r->words + (size_t)th * (size_t)ap;
    for (int64_t i = 0; i < n; i++) {
        hb_rng_normals(r->seed, (uint64_t)(s + i), STREAM_NORMAL, (int)r->J, words, z + i * ap);
        if (r->mc_t) {
            hb_rng_seek(r->rng[th], r->seed, (uint64_t)(s + i), STREAM_CHISQ);
            w[i] = sqrt((r->dof - 2) / gsl_ran_chisq(r->rng[th], r->dof));
        }
    }
    double t0 = omp_get_wtime();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)P, (int)n, (int)A, 1.0, r->Bt, (int)A, z, (int)ap, 0.0,
                r->y + col, (int)yc);
    *tprod += omp_get_wtime() - t0;
    for (int64_t p = 0; p < P; p++) {
        double *y = r->y + p * yc + col, m = r->mu[p];
        if (r->mc_t) {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) y[i] = -(m + w[i] * y[i]);
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) y[i] = -(m + y[i]);
        }
    }
}

/* Scenarios of Monte Carlo block c: losses in passes of y_cols scenarios (tiles in
 * parallel), then each portfolio's top-k (portfolios in parallel). */
static int map_mc(risk *r, int64_t c)
{
    const int64_t s0 = c * r->mc_chunk, ns = r->mc_n - s0 < r->mc_chunk ? r->mc_n - s0 : r->mc_chunk;
    const int th = r->ctx->threads;
    double tprod = 0, t0 = hb_now();
    for (int64_t off = 0; off < ns; off += r->y_cols) {
        const int64_t n = ns - off < r->y_cols ? ns - off : r->y_cols, tiles = (n + MC_TILE - 1) / MC_TILE;
#pragma omp parallel for schedule(dynamic, 1) num_threads(th) reduction(+ : tprod)
        for (int64_t k = 0; k < tiles; k++) {
            int64_t m = n - k * MC_TILE < MC_TILE ? n - k * MC_TILE : MC_TILE;
            mc_tile(r, omp_get_thread_num(), s0 + off + k * MC_TILE, m, k * MC_TILE, &tprod);
        }
#pragma omp parallel for schedule(dynamic, 4) num_threads(th)
        for (int64_t p = 0; p < r->P; p++) hb_topk_add(&r->top[p], r->y + p * r->ldy, n);
    }
    r->t_products += tprod;
    r->t_scenarios += hb_now() - t0;
    r->mc_mapped += ns;
    return 0;
}

/* Collective, after every round. Monte Carlo: each portfolio's top-k threshold rises to
 * the highest any rank holds. A rank's threshold is the k-th largest of k losses it
 * keeps from then on (its later thresholds only rise), so the union of every rank's
 * top-k always holds k losses at or above any threshold used anywhere: a loss not above
 * one cannot be among the global top-k values, and dropping it leaves them as they are.
 * A rank with 1/S of the scenarios then does about 1/S of the top-k work, not 80%. */
static int risk_exchange(void *state)
{
    risk *r = state;
    if (!(r->methods & M_MC) || hb_size == 1) return 0;
    double *thr = hb_malloc((size_t)r->P * sizeof *thr);
    HB_CALL(hb_agree(thr ? 0 : HB_EINTERNAL));
    for (int64_t p = 0; p < r->P; p++) thr[p] = r->top[p].thr;
    MPI_Allreduce(MPI_IN_PLACE, thr, (int)r->P, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (int64_t p = 0; p < r->P; p++)
        if (thr[p] > r->top[p].thr) r->top[p].thr = thr[p];
    free(thr);
    return 0;
}

/* Not collective. Chunk c, whichever kind it is. */
static int risk_map(void *state, int64_t c)
{
    risk *r = state;
    int64_t block, mc;
    chunk_kind(r, c, &block, &mc);
    return block >= 0 ? map_block(r, block) : map_mc(r, mc);
}

/* Collective. The records of this rank's output rows [p_lo, p_hi) from the ranks that
 * computed them (portfolios are written in contiguous ranges, see hb_owner_of). */
static int gather_records(risk *r, int64_t p_lo, int64_t p_hi, double *mine)
{
    const int S = hb_size, rw = r->lay.size;
    const int64_t P = r->P;
    hb_xchg xc;
    int rc = hb_xchg_init(&xc, 1); /* a record is large: one a block */
    for (int64_t b = 0; rc == 0 && b < r->npb; b++)
        if (r->done[b])
            for (int64_t p = b * PORTFOLIO_BLOCK; p < P && p < (b + 1) * PORTFOLIO_BLOCK; p++)
                xc.scount[hb_owner_of(p, P, S)]++;
    if (rc == 0) rc = hb_xchg_layout(&xc);
    const size_t ns = xc.stotal ? xc.stotal : 1;
    int64_t *sid = rc == 0 ? hb_malloc(ns * sizeof *sid) : NULL, *rid = NULL;
    double *srec = rc == 0 ? hb_malloc(ns * (size_t)rw * sizeof *srec) : NULL, *rrec = NULL;
    size_t *pos = rc == 0 ? hb_malloc((size_t)S * sizeof *pos) : NULL;
    if (rc == 0 && (!sid || !srec || !pos)) rc = HB_EINTERNAL;
    if (rc == 0) {
        memcpy(pos, xc.sdispl, (size_t)S * sizeof *pos);
        for (int64_t b = 0; b < r->npb; b++) {
            if (!r->done[b]) continue;
            for (int64_t p = b * PORTFOLIO_BLOCK; p < P && p < (b + 1) * PORTFOLIO_BLOCK; p++) {
                size_t k = pos[hb_owner_of(p, P, S)]++;
                sid[k] = p;
                memcpy(srec + k * (size_t)rw, r->rec + p * rw, (size_t)rw * sizeof *srec);
            }
        }
    }
    free(pos);
    rc = hb_agree(rc);
    size_t ridcap = 0, rreccap = 0;
    const hb_xchg_array xa[2] = {{sid, (void **)&rid, &ridcap, sizeof *rid},
                                 {srec, (void **)&rrec, &rreccap, (size_t)rw * sizeof *rrec}};
    if (rc == 0) rc = hb_xchg_run(&xc, xa, 2);
    if (rc == 0) {
        const size_t nrecv = xc.received;
        uint8_t *seen = hb_calloc((size_t)(p_hi - p_lo > 0 ? p_hi - p_lo : 1), 1);
        if (!seen) rc = HB_EINTERNAL;
        for (size_t i = 0; rc == 0 && i < nrecv; i++) {
            memcpy(mine + (rid[i] - p_lo) * rw, rrec + i * (size_t)rw, (size_t)rw * sizeof *rrec);
            seen[rid[i] - p_lo] = 1;
        }
        for (int64_t p = p_lo; rc == 0 && p < p_hi; p++)
            if (!seen[p - p_lo])
                rc = hb_err_set(HB_EINTERNAL, "risk", "no results for portfolio %lld: its chunk was never mapped",
                                (long long)p);
        free(seen);
        rc = hb_agree(rc);
    }
    hb_xchg_free(&xc);
    free(sid), free(srec), free(rid), free(rrec);
    return rc;
}

/* Collective. Monte Carlo VaR and ES of this rank's output rows: the union of every
 * rank's top-k of a portfolio holds its global top-k. Two exchanges: how many losses
 * each rank keeps of each portfolio, then the losses. */
static int gather_tails(risk *r, int64_t p_lo, int64_t p_hi, double *var, double *es)
{
    const int S = hb_size;
    const int64_t P = r->P, np = p_hi - p_lo, kmax = r->kmax;
    const int th = r->ctx->threads;
#pragma omp parallel for schedule(dynamic, 4) num_threads(th)
    for (int64_t p = 0; p < P; p++) hb_topk_compact(&r->top[p]);
    hb_xchg xn, xv; /* counts per portfolio; losses */
    int rc = hb_xchg_init(&xn, 1);
    if (rc == 0) rc = hb_xchg_init(&xv, TAIL_BLOCK);
    for (int64_t p = 0; rc == 0 && p < P; p++) {
        const int d = hb_owner_of(p, P, S);
        xn.scount[d]++;
        xv.scount[d] += (size_t)r->top[p].n;
    }
    if (rc == 0) rc = hb_xchg_layout(&xn);
    if (rc == 0) rc = hb_xchg_layout(&xv);
    size_t rncap = 0, rbcap = 0;
    int64_t *sn = rc == 0 ? hb_malloc((xn.stotal ? xn.stotal : 1) * sizeof *sn) : NULL, *rn = NULL;
    double *sbuf = rc == 0 ? hb_malloc((xv.stotal ? xv.stotal : 1) * sizeof *sbuf) : NULL, *rbuf = NULL;
    if (rc == 0 && (!sn || !sbuf)) rc = HB_EINTERNAL;
    int64_t p = 0;
    for (int d = 0; rc == 0 && d < S; d++) {
        size_t a = xn.sdispl[d], b = xv.sdispl[d];
        for (size_t i = 0; i < xn.scount[d]; i++, p++) {
            sn[a + i] = r->top[p].n;
            memcpy(sbuf + b, r->top[p].buf, (size_t)r->top[p].n * sizeof *sbuf);
            b += (size_t)r->top[p].n;
        }
    }
    rc = hb_agree(rc);
    const hb_xchg_array an = {sn, (void **)&rn, &rncap, sizeof *sn}, av = {sbuf, (void **)&rbuf, &rbcap, sizeof *sbuf};
    if (rc == 0) rc = hb_xchg_run(&xn, &an, 1);
    if (rc == 0) rc = hb_xchg_run(&xv, &av, 1);
    double *merge = rc == 0 ? hb_malloc((size_t)th * (size_t)(S * kmax) * sizeof *merge) : NULL;
    size_t *at = rc == 0 ? hb_malloc((size_t)(np ? np : 1) * (size_t)S * sizeof *at) : NULL; /* portfolio i's part from d */
    if (rc == 0) rc = hb_agree(merge && at ? 0 : HB_EINTERNAL);
    if (rc == 0) {
        /* what arrived is in rank order: np counts from each rank, and their losses */
        size_t o = 0;
        for (int64_t j = 0; j < S * np; j++) at[j] = o, o += (size_t)rn[j];
#pragma omp parallel for schedule(dynamic, 1) num_threads(th)
        for (int64_t i = 0; i < np; i++) {
            double *buf = merge + (size_t)omp_get_thread_num() * (size_t)(S * kmax);
            int64_t m = 0;
            for (int d = 0; d < S; d++) {
                memcpy(buf + m, rbuf + at[d * np + i], (size_t)rn[d * np + i] * sizeof *buf);
                m += rn[d * np + i];
            }
            hb_risk_tail_select(buf, m, r->mc_n, r->conf, r->nc, r->es_conf, r->ne, var + i * r->nc, es + i * r->ne);
        }
    }
    hb_xchg_free(&xn), hb_xchg_free(&xv);
    free(at), free(sn), free(rn), free(sbuf), free(rbuf), free(merge);
    return rc;
}

/* Collective. The dimension scales of /risk. */
static int write_scales(risk *r, hb_out *out)
{
    const int64_t P = r->P, A = r->A, n = P > A ? (P > r->window ? P : r->window) : (A > r->window ? A : r->window);
    uint32_t *ids = hb_malloc((size_t)n * sizeof *ids);
    int32_t *dates = hb_malloc((size_t)r->window * sizeof *dates);
    int rc = hb_agree(ids && dates ? 0 : HB_EINTERNAL);
    for (int64_t i = 0; rc == 0 && i < n; i++) ids[i] = (uint32_t)i;
    for (int64_t i = 0; rc == 0 && i < r->window; i++) dates[i] = (int32_t)r->dates[r->ia - r->window + 1 + i];
    if (rc == 0) rc = hb_out_scale(out, HB_RISK_PORTFOLIO, "portfolio", HB_U32, (uint64_t)P, ids, "1");
    if (rc == 0) rc = hb_out_attr_str(out, HB_RISK_PORTFOLIO, "description", "portfolio id (row of the positions)");
    if (rc == 0) rc = hb_out_scale(out, HB_RISK_ASSET, "asset", HB_U32, (uint64_t)A, ids, "1");
    if (rc == 0) rc = hb_out_attr_str(out, HB_RISK_ASSET, "description", "asset id (column of /market/prices)");
    if (rc == 0) rc = hb_out_scale(out, HB_RISK_CONFIDENCE, "confidence", HB_F64, (uint64_t)r->nc, r->conf, "1");
    if (rc == 0) rc = hb_out_attr_str(out, HB_RISK_CONFIDENCE, "description", "VaR confidence level");
    if (rc == 0) rc = hb_out_scale(out, HB_RISK_ES_CONFIDENCE, "es_confidence", HB_F64, (uint64_t)r->ne, r->es_conf, "1");
    if (rc == 0) rc = hb_out_attr_str(out, HB_RISK_ES_CONFIDENCE, "description", "expected shortfall confidence level");
    if (rc == 0 && r->write_pnl) rc = hb_out_scale(out, HB_RISK_DATE, "date", HB_I32, (uint64_t)r->window, dates, "yyyymmdd");
    if (rc == 0 && r->write_pnl)
        rc = hb_out_attr_str(out, HB_RISK_DATE, "description", "return-day of the window (P&L dated at its close)");
    free(ids), free(dates);
    return rc;
}

/* Collective. A [P, levels] dataset with its confidence attribute and scales. */
static int write_levels(risk *r, hb_out *out, const char *path, int es, uint64_t p_lo, uint64_t np, const double *v,
                        const char *desc)
{
    const int n = es ? r->ne : r->nc;
    const uint64_t dims[2] = {(uint64_t)r->P, (uint64_t)n};
    HB_CALL(hb_out_write(out, path, HB_F64, 2, dims, p_lo, np, v, "currency", desc));
    HB_CALL(hb_out_attr_f64(out, path, "confidence", es ? r->es_conf : r->conf, n));
    HB_CALL(hb_out_attach(out, path, 0, HB_RISK_PORTFOLIO));
    return hb_out_attach(out, path, 1, es ? HB_RISK_ES_CONFIDENCE : HB_RISK_CONFIDENCE);
}

/* Collective. A [P] dataset of this rank's rows, attached to the portfolio scale. */
static int write_vec(hb_out *out, const char *path, hb_elem t, uint64_t P, uint64_t p_lo, uint64_t np, const void *v,
                     const char *units, const char *desc)
{
    const uint64_t dims[1] = {P};
    HB_CALL(hb_out_write(out, path, t, 1, dims, p_lo, np, v, units, desc));
    return hb_out_attach(out, path, 0, HB_RISK_PORTFOLIO);
}

/* Column off (count n) of records rec [np x rw] into out [np x n]. */
static void column(const double *rec, int64_t np, int rw, int off, int n, double *out)
{
    for (int64_t i = 0; i < np; i++)
        for (int j = 0; j < n; j++) out[i * n + j] = rec[i * rw + off + j];
}

/* Collective. Every dataset of /risk, this rank writing rows [p_lo, p_lo + np). */
static int write_results(risk *r, hb_out *out, int64_t p_lo, int64_t np, const double *rec, const double *mcv,
                         const double *mce)
{
    const int rw = r->lay.size;
    const hb_risk_layout *l = &r->lay;
    const uint64_t P = (uint64_t)r->P, lo = (uint64_t)p_lo, n = (uint64_t)np;
    size_t most = (size_t)(np ? np : 1) * (size_t)(r->nc > r->ne ? r->nc : r->ne);
    if (r->write_pnl && (size_t)(np ? np : 1) * (size_t)r->window > most) most = (size_t)(np ? np : 1) * (size_t)r->window;
    double *col = hb_malloc(most * sizeof *col);
    uint32_t *u32 = hb_malloc((size_t)(np ? np : 1) * sizeof *u32);
    uint8_t *u8 = hb_malloc((size_t)(np ? np : 1));
    int rc = hb_agree(col && u32 && u8 ? 0 : HB_EINTERNAL);
    if (rc == 0) rc = hb_out_group(out, HB_RISK_GROUP);
    if (rc == 0) rc = hb_out_attr_i64(out, HB_RISK_GROUP, HB_FORMAT_VERSION_ATTR, HB_RISK_FORMAT_VERSION);
    if (rc == 0) rc = write_scales(r, out);
    static const struct {
        int method, off_var, off_es;
        const char *var, *es, *vdesc, *edesc;
    } m[2] = {
        {M_HIST, 0, 1, HB_RISK_VAR_HISTORICAL, HB_RISK_ES_HISTORICAL, "historical VaR: k-th largest of the window's losses",
         "historical ES: mean of the k largest of the window's losses"},
        {M_PARAM, 2, 3, HB_RISK_VAR_PARAMETRIC, HB_RISK_ES_PARAMETRIC, "normal VaR: z_c sigma - mu of the window's P&L",
         "normal ES: sigma phi(z_c) / (1 - c) - mu of the window's P&L"},
    };
    const int offs[4] = {l->var_h, l->es_h, l->var_p, l->es_p};
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!(r->methods & m[i].method)) continue;
        column(rec, np, rw, offs[m[i].off_var], r->nc, col);
        rc = write_levels(r, out, m[i].var, 0, lo, n, col, m[i].vdesc);
        if (rc == 0) column(rec, np, rw, offs[m[i].off_es], r->ne, col);
        if (rc == 0) rc = write_levels(r, out, m[i].es, 1, lo, n, col, m[i].edesc);
    }
    if (rc == 0 && (r->methods & M_MC)) {
        rc = write_levels(r, out, HB_RISK_VAR_MONTECARLO, 0, lo, n, mcv, "Monte Carlo VaR: k-th largest scenario loss");
        if (rc == 0)
            rc = write_levels(r, out, HB_RISK_ES_MONTECARLO, 1, lo, n, mce, "Monte Carlo ES: mean of the k largest scenario losses");
    }
    if (rc == 0) column(rec, np, rw, l->mean, 1, col);
    if (rc == 0) rc = write_vec(out, HB_RISK_MEAN_PNL, HB_F64, P, lo, n, col, "currency", "mean daily P&L over the window");
    if (rc == 0) column(rec, np, rw, l->vol, 1, col);
    if (rc == 0)
        rc = write_vec(out, HB_RISK_VOLATILITY, HB_F64, P, lo, n, col, "currency",
                       "standard deviation (N - 1) of the daily P&L over the window");
    if (rc == 0) {
        const uint64_t dims[2] = {P, (uint64_t)r->A};
        rc = hb_out_write(out, HB_RISK_EXPOSURE, HB_F64, 2, dims, lo, n, r->E + p_lo * r->A, "currency",
                          strcmp(r->positions, "exposure") == 0
                              ? "value held per asset, from /portfolios/exposure"
                              : "value held per asset at as_of: transactions' quantity up to as_of x price at as_of");
        if (rc == 0) rc = hb_out_attach(out, HB_RISK_EXPOSURE, 0, HB_RISK_PORTFOLIO);
        if (rc == 0) rc = hb_out_attach(out, HB_RISK_EXPOSURE, 1, HB_RISK_ASSET);
    }
    if (rc == 0 && r->backtest > 0) {
        for (int64_t i = 0; i < np; i++) u32[i] = (uint32_t)rec[i * rw + l->exc], u8[i] = (uint8_t)rec[i * rw + l->zone];
        rc = write_vec(out, HB_RISK_BACKTEST_EXCEPTIONS, HB_U32, P, lo, n, u32, "1",
                       "backtest days whose loss exceeded the historical VaR of the window before them");
        static const struct {
            const char *name, *desc;
        } bt[4] = {{HB_RISK_KUPIEC_LR, "Kupiec proportion-of-failures likelihood ratio"},
                   {HB_RISK_KUPIEC_PVALUE, "chi-squared(1) p-value of kupiec_lr"},
                   {HB_RISK_CHRISTOFFERSEN_LR, "Christoffersen independence likelihood ratio (0 when undefined)"},
                   {HB_RISK_CHRISTOFFERSEN_PVALUE, "chi-squared(1) p-value of christoffersen_lr"}};
        const int bo[4] = {l->kupiec_lr, l->kupiec_p, l->chr_lr, l->chr_p};
        for (int i = 0; i < 4 && rc == 0; i++) {
            column(rec, np, rw, bo[i], 1, col);
            rc = write_vec(out, bt[i].name, HB_F64, P, lo, n, col, "1", bt[i].desc);
        }
        if (rc == 0)
            rc = write_vec(out, HB_RISK_TRAFFIC_LIGHT, HB_U8, P, lo, n, u8, "1",
                           "Basel zone of the exceptions: 0 green, 1 yellow, 2 red");
    }
    if (rc == 0 && r->write_pnl) {
        const uint64_t dims[2] = {P, (uint64_t)r->window};
        column(rec, np, rw, l->pnl, (int)r->window, col);
        rc = hb_out_write(out, HB_RISK_PNL, HB_F64, 2, dims, lo, n, col, "currency", "daily P&L of the window");
        if (rc == 0) rc = hb_out_attach(out, HB_RISK_PNL, 0, HB_RISK_PORTFOLIO);
        if (rc == 0) rc = hb_out_attach(out, HB_RISK_PNL, 1, HB_RISK_DATE);
    }
    free(col), free(u32), free(u8);
    return rc;
}

/* Collective. The attributes of /risk: what was computed, from what, as of when. */
static int write_attrs(risk *r, hb_out *out)
{
    const char *g = HB_RISK_GROUP;
    char methods[64] = "";
    static const char *const names[] = {"historical", "parametric", "montecarlo"};
    for (int i = 0; i < 3; i++)
        if (r->methods & (1 << i)) snprintf(methods + strlen(methods), sizeof methods - strlen(methods), "%s%s",
                                            *methods ? ", " : "", names[i]);
    HB_CALL(hb_out_attr_i64(out, g, "as_of", r->dates[r->ia]));
    HB_CALL(hb_out_attr_i64(out, g, "window", r->window));
    HB_CALL(hb_out_attr_i64(out, g, "first_window_date", r->dates[r->ia - r->window + 1]));
    HB_CALL(hb_out_attr_str(out, g, "methods", methods));
    HB_CALL(hb_out_attr_str(out, g, "positions", r->positions));
    HB_CALL(hb_out_attr_str(out, g, "returns_from", r->source));
    HB_CALL(hb_out_attr_i64(out, g, "n_portfolios", r->P));
    HB_CALL(hb_out_attr_i64(out, g, "n_assets", r->A));
    HB_CALL(hb_out_attr_i64(out, g, "backtest_days", r->backtest));
    HB_CALL(hb_out_attr_f64(out, g, "backtest_confidence", &r->bt_conf, 1));
    if (r->methods & M_MC) {
        HB_CALL(hb_out_attr_i64(out, g, "mc_scenarios", r->mc_n));
        HB_CALL(hb_out_attr_str(out, g, "mc_distribution", r->mc_t ? "t" : "normal"));
        if (r->mc_t) HB_CALL(hb_out_attr_f64(out, g, "mc_dof", &r->dof, 1));
        HB_CALL(hb_out_attr_i64(out, g, "seed", (int64_t)r->seed));
        HB_CALL(hb_out_attr_str(out, g, "mc_factor", r->factor ? "eigen" : "cholesky"));
    }
    return 0;
}

/* Collective. Brings each portfolio's results to the rank that writes its rows, then
 * writes /risk. */
static int risk_finalize(void *state, hb_out *out)
{
    risk *r = state;
    int64_t p_lo, p_hi;
    hb_range_of(r->P, hb_rank, hb_size, &p_lo, &p_hi);
    const int64_t np = p_hi - p_lo;
    double *rec = hb_malloc((size_t)(np ? np : 1) * (size_t)r->lay.size * sizeof *rec);
    double *mcv = hb_malloc((size_t)(np ? np : 1) * (size_t)r->nc * sizeof *mcv);
    double *mce = hb_malloc((size_t)(np ? np : 1) * (size_t)r->ne * sizeof *mce);
    int rc = hb_agree(rec && mcv && mce ? 0 : HB_EINTERNAL);
    if (rc == 0) rc = gather_records(r, p_lo, p_hi, rec);
    if (rc == 0 && (r->methods & M_MC)) rc = gather_tails(r, p_lo, p_hi, mcv, mce);
    if (rc == 0 && (r->methods & M_MC)) {
        double t[3] = {r->t_products, r->t_scenarios, (double)r->mc_mapped};
        MPI_Allreduce(MPI_IN_PLACE, t, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double flops = 2.0 * t[2] * (double)r->A * (double)r->P;
        HB_DEBUG("risk: montecarlo: %.0f scenarios in %.3f rank-seconds; scenario x exposure products %.3f "
                 "thread-seconds, %.2f GFLOP/s per thread",
                 t[2], t[1], t[0], t[0] > 0 ? flops / t[0] / 1e9 : 0.0);
    }
    if (rc == 0) rc = write_results(r, out, p_lo, np, rec, mcv, mce);
    if (rc == 0) rc = write_attrs(r, out);
    free(rec), free(mcv), free(mce);
    return rc;
}

#define SAVE_MAGIC 0x31304b5349524248ull /* "HBRISK01" */

/* Not collective. This rank's finished portfolio blocks and top-k sets, as bytes. */
static int risk_save(void *state, void **buf, size_t *len)
{
    risk *r = state;
    const int64_t rw = r->lay.size;
    size_t n = 6 * sizeof(int64_t);
    for (int64_t b = 0; b < r->npb; b++)
        if (r->done[b]) n += sizeof(int64_t) + (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double);
    if (r->methods & M_MC)
        for (int64_t p = 0; p < r->P; p++) n += sizeof(int64_t) + (size_t)r->top[p].n * sizeof(double);
    unsigned char *out = hb_malloc(n), *at = out;
    if (!out) return HB_EINTERNAL;
    int64_t nb = 0;
    for (int64_t b = 0; b < r->npb; b++) nb += r->done[b];
    int64_t head[6] = {(int64_t)SAVE_MAGIC, r->P, r->npb, rw, (r->methods & M_MC) ? r->kmax : 0, nb};
    memcpy(at, head, sizeof head), at += sizeof head;
    for (int64_t b = 0; b < r->npb; b++) {
        if (!r->done[b]) continue;
        int64_t np = r->P - b * PORTFOLIO_BLOCK < PORTFOLIO_BLOCK ? r->P - b * PORTFOLIO_BLOCK : PORTFOLIO_BLOCK;
        memcpy(at, &b, sizeof b), at += sizeof b;
        memset(at, 0, (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double));
        memcpy(at, r->rec + b * PORTFOLIO_BLOCK * rw, (size_t)(np * rw) * sizeof(double));
        at += (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double);
    }
    if (r->methods & M_MC)
        for (int64_t p = 0; p < r->P; p++) {
            memcpy(at, &r->top[p].n, sizeof(int64_t)), at += sizeof(int64_t);
            memcpy(at, r->top[p].buf, (size_t)r->top[p].n * sizeof(double)), at += (size_t)r->top[p].n * sizeof(double);
        }
    *buf = out;
    *len = n;
    return 0;
}

/* Not collective. Merges a part saved by any rank of an earlier run of this job. */
static int risk_load(void *state, const void *buf, size_t len)
{
    risk *r = state;
    const unsigned char *at = buf, *end = at + len;
    const int64_t rw = r->lay.size;
    int64_t head[6];
    HB_CHECK(len >= sizeof head, HB_EINTERNAL, "risk", "checkpoint part is truncated");
    memcpy(head, at, sizeof head), at += sizeof head;
    HB_CHECK(head[0] == (int64_t)SAVE_MAGIC && head[1] == r->P && head[2] == r->npb && head[3] == rw &&
                 head[4] == ((r->methods & M_MC) ? r->kmax : 0),
             HB_EINTERNAL, "risk", "checkpoint part does not match this job's portfolios and options");
    const size_t bbytes = (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double);
    for (int64_t i = 0; i < head[5]; i++) {
        int64_t b;
        HB_CHECK((size_t)(end - at) >= sizeof b + bbytes, HB_EINTERNAL, "risk", "checkpoint part is truncated");
        memcpy(&b, at, sizeof b), at += sizeof b;
        HB_CHECK(b >= 0 && b < r->npb, HB_EINTERNAL, "risk", "checkpoint part names block %lld of %lld", (long long)b,
                 (long long)r->npb);
        int64_t np = r->P - b * PORTFOLIO_BLOCK < PORTFOLIO_BLOCK ? r->P - b * PORTFOLIO_BLOCK : PORTFOLIO_BLOCK;
        memcpy(r->rec + b * PORTFOLIO_BLOCK * rw, at, (size_t)(np * rw) * sizeof(double));
        at += bbytes;
        r->done[b] = 1;
    }
    if (r->methods & M_MC)
        for (int64_t p = 0; p < r->P; p++) {
            int64_t n;
            HB_CHECK((size_t)(end - at) >= sizeof n, HB_EINTERNAL, "risk", "checkpoint part is truncated");
            memcpy(&n, at, sizeof n), at += sizeof n;
            HB_CHECK(n >= 0 && (size_t)(end - at) / sizeof(double) >= (size_t)n, HB_EINTERNAL, "risk",
                     "checkpoint part is truncated");
            /* unaligned in the buffer: add through a bounded copy */
            double v[256];
            for (int64_t i = 0; i < n; i += 256) {
                int64_t m = n - i < 256 ? n - i : 256;
                memcpy(v, at + (size_t)i * sizeof(double), (size_t)m * sizeof(double));
                hb_topk_add(&r->top[p], v, m);
            }
            at += (size_t)n * sizeof(double);
        }
    HB_CHECK(at == end, HB_EINTERNAL, "risk", "checkpoint part has %zu bytes too many", (size_t)(end - at));
    return 0;
}

/* Not collective. Frees the state, also a partly built one. */
static void risk_destroy(void *state)
{
    risk *r = state;
    if (!r) return;
    free(r->dates), free(r->R), free(r->price), free(r->E);
    free(r->rec), free(r->done), free(r->pnl), free(r->scratch);
    free(r->Bt), free(r->mu), free(r->top), free(r->topbuf), free(r->z), free(r->w), free(r->words), free(r->y);
    for (int i = 0; r->rng && i < r->ctx->threads; i++) gsl_rng_free(r->rng[i]);
    free(r->rng);
    free(r);
}

const hb_kernel hb_kernel_risk = {
    .name = "risk",
    .summary = "historical, parametric and Monte Carlo VaR and ES per portfolio, with Basel backtests",
    .options = risk_options,
    .default_chunk_rows = 8192,
    .validate = risk_validate,
    .setup = risk_setup,
    .map = risk_map,
    .exchange = risk_exchange,
    .finalize = risk_finalize,
    .save = risk_save,
    .load = risk_load,
    .destroy = risk_destroy,
};
