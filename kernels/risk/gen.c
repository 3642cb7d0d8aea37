/* `h5batch gen market`: synthetic daily market data and portfolios for the risk kernel.
 *
 * Returns follow a factor model: a market factor and sector factors, each a GARCH(1,1)
 * process with Student-t shocks, plus idiosyncratic GARCH(1,1)-t noise per asset, so
 * the returns have a correlation structure, fat tails and volatility clustering (a
 * historical VaR lags the volatility regime, and the backtest finds clustered
 * exceptions). Prices compound the returns from a random first price. Dates are
 * consecutive weekdays. Positions are /portfolios/exposure, and with --transactions M
 * also a /transactions table that builds them up over time (mostly buying early, then
 * trading both ways); the exposure is then the transactions' positions valued at the
 * last price, so both paths of the kernel give the same numbers.
 *
 * Every random value is a function of (seed, index, stream) through Philox: each rank
 * generates whole asset columns (the GARCH recursions run along time) and a contiguous
 * range of transactions, so the file is the same for any rank or thread count. */
#include "io/io.h"
#include "kernels/kernel.h"
#include "kernels/risk/rng.h"
#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "core/opts.h"
#include "core/calendar.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GEN_CHUNK (1 << 20)
#define HOLDINGS 25 /* assets a portfolio holds (at most) */

/* Philox streams: one per kind of draw, so that changing one never shifts another. */
enum { S_ASSET = 11, S_FACTOR = 12, S_IDIO = 13, S_EXPOSURE = 14, S_TRADE = 15, S_STRESS = 16 };

typedef struct gen_market {
    int64_t assets, days, portfolios, transactions, start_ymd, factors;
    double dof;
    uint64_t seed;
    int names;
} gen_market;

static const hb_option gen_options[] = {
    {"assets", HB_OPT_SIZE, "100", 1, 1e6, NULL, "assets (columns of /market/prices)"},
    {"days", HB_OPT_SIZE, "1000", 2, 1e6, NULL, "trading days (consecutive weekdays)"},
    {"portfolios", HB_OPT_SIZE, "20", 1, 1e7, NULL, "portfolios (rows of /portfolios/exposure)"},
    {"transactions", HB_OPT_SIZE, "0", 0, 1e12, NULL, "rows of a /transactions table that builds the positions; 0: none"},
    {"start", HB_OPT_SIZE, "20200102", 10101, 99991231, NULL, "first date, yyyymmdd (a weekend moves to Monday)"},
    {"factors", HB_OPT_SIZE, "4", 1, 100, NULL, "factors of the return model: the market and K-1 sectors"},
    {"dof", HB_OPT_FLOAT, "5", 1, 0, NULL, "degrees of freedom of the Student-t shocks, in (2, 1000]; 0: normal"},
    {"seed", HB_OPT_SIZE, "1", 0, 1e18, NULL, "random seed: the same seed gives the same file"},
    {"names", HB_OPT_BOOL, "false", 1, 0, NULL,
     "also write /market/assets (A0000, A0001, ...) and /portfolios/names (P000000, ...) as strings"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Per-asset parameters and the factor paths, the same on every rank. */
typedef struct model {
    int32_t *dates;  /* [T] yyyymmdd */
    double *factor;  /* [T x K] factor returns (row 0 unused) */
    int64_t a0, a1;  /* this rank's assets */
    double *prices;  /* [T x (a1 - a0)] this rank's columns */
    double *last;    /* [A] prices on the last day, every asset */
} model;

/* Student-t with unit variance (normal when dof is 0). */
static double shock(gsl_rng *r, double dof)
{
    if (dof == 0) return gsl_ran_gaussian_ziggurat(r, 1.0);
    return gsl_ran_tdist(r, dof) * sqrt((dof - 2) / dof);
}

/* Consecutive weekdays from the start date (moved to a Monday when it is a weekend). */
static int make_dates(const gen_market *g, int32_t *dates)
{
    int64_t d = hb_days_from_yyyymmdd(g->start_ymd);
    HB_CHECK(d != INT64_MIN, HB_EUSAGE, "gen market", "--start %lld is not a date yyyymmdd", (long long)g->start_ymd);
    for (int64_t t = 0; t < g->days; d++) {
        if ((d % 7 + 7 + 3) % 7 >= 5) continue; /* 1970-01-01 was a Thursday: 0 = Monday */
        int64_t y;
        int m, dd;
        hb_civil_from_days(d, &y, &m, &dd);
        HB_CHECK(y <= 9999, HB_EUSAGE, "gen market", "--days %lld from --start %lld run past the year 9999",
                 (long long)g->days, (long long)g->start_ymd);
        dates[t++] = (int32_t)(y * 10000 + m * 100 + dd);
    }
    return 0;
}

/* Stress episodes: starting on any day with probability 1/400, lasting 20 to 80 days,
 * in which factor returns are 2.5 times as large: what a backtest of a slow historical
 * VaR is there to catch. */
static void make_stress(const gen_market *g, gsl_rng *r, double *mult)
{
    hb_rng_seek(r, g->seed, 0, S_STRESS);
    for (int64_t t = 0, left = 0; t < g->days; t++) {
        double start = gsl_rng_uniform(r), len = gsl_rng_uniform(r);
        if (left == 0 && start < 1.0 / 400) left = 20 + (int64_t)(60 * len);
        mult[t] = left > 0 ? 2.5 : 1;
        left -= left > 0;
    }
}

/* Factor returns: factor 0 is the market (about 0.9% a day), the others sectors. */
static void make_factors(const gen_market *g, gsl_rng *r, const double *stress, double *f)
{
    const int64_t K = g->factors, T = g->days;
    for (int64_t k = 0; k < K; k++) {
        double vol = k == 0 ? 0.009 : 0.006, alpha = k == 0 ? 0.09 : 0.07, beta = 0.90;
        double omega = vol * vol * (1 - alpha - beta), h = vol * vol;
        hb_rng_seek(r, g->seed, (uint64_t)k, S_FACTOR);
        for (int64_t t = 1; t < T; t++) {
            double x = sqrt(h) * shock(r, g->dof);
            f[t * K + k] = stress[t] * x;
            h = omega + alpha * x * x + beta * h; /* the recursion sees the unstressed shock: stays stationary */
        }
    }
}

/* The price columns of assets [a0, a1): factor loadings, drift and idiosyncratic
 * GARCH(1,1)-t per asset, compounded from a random first price. */
static int make_prices(const gen_market *g, model *m)
{
    const int64_t K = g->factors, T = g->days, na = m->a1 - m->a0;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        gsl_rng *r = gsl_rng_alloc(hb_rng_philox);
        if (!r) failed = 1;
#pragma omp for schedule(dynamic, 4)
        for (int64_t j = 0; j < na; j++) {
            if (!r) continue;
            int64_t a = m->a0 + j;
            hb_rng_seek(r, g->seed, (uint64_t)a, S_ASSET);
            double beta_m = 0.5 + gsl_rng_uniform(r), beta_s = 0.2 + 0.6 * gsl_rng_uniform(r);
            double drift = -0.0002 + 0.0008 * gsl_rng_uniform(r);
            double vol = 0.006 + 0.010 * gsl_rng_uniform(r), p = 10 + 290 * gsl_rng_uniform(r);
            int64_t sector = K > 1 ? 1 + a % (K - 1) : 0;
            double alpha = 0.06, beta = 0.92, omega = vol * vol * (1 - alpha - beta), h = vol * vol;
            hb_rng_seek(r, g->seed, (uint64_t)a, S_IDIO);
            m->prices[j] = p;
            for (int64_t t = 1; t < T; t++) {
                double e = sqrt(h) * shock(r, g->dof);
                h = omega + alpha * e * e + beta * h;
                double ret = drift + beta_m * m->factor[t * K] + e;
                if (sector) ret += beta_s * m->factor[t * K + sector];
                if (ret < -0.9) ret = -0.9; /* prices stay positive */
                p *= 1 + ret;
                m->prices[t * na + j] = p;
            }
        }
        gsl_rng_free(r);
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "gen market", "out of memory for a random number generator");
    return 0;
}

/* The columns of portfolio p's holdings: HOLDINGS assets spread over the universe. */
static inline int64_t holding(int64_t p, int64_t slot, int64_t A)
{
    int64_t h = A < HOLDINGS ? A : HOLDINGS, stride = A / h;
    return (p * 7 + slot * stride) % A;
}

/* Random exposures of portfolios [p0, p1): mostly long, some short, sizes spread over
 * two orders of magnitude between portfolios. */
static void make_exposure(const gen_market *g, gsl_rng *r, int64_t p0, int64_t p1, double *e)
{
    const int64_t A = g->assets, h = A < HOLDINGS ? A : HOLDINGS;
    memset(e, 0, (size_t)((p1 - p0) * A) * sizeof *e);
    for (int64_t p = p0; p < p1; p++) {
        hb_rng_seek(r, g->seed, (uint64_t)p, S_EXPOSURE);
        double scale = 1e5 * pow(10, 2 * gsl_rng_uniform(r));
        for (int64_t s = 0; s < h; s++) {
            double w = 0.5 + 1.5 * gsl_rng_uniform(r), sign = gsl_rng_uniform(r) < 0.1 ? -1 : 1;
            e[(p - p0) * A + holding(p, s, A)] = sign * scale * w;
        }
    }
}

/* Transaction i: date, portfolio, asset and signed whole quantity. */
static void make_trade(const gen_market *g, const model *m, gsl_rng *r, int64_t i, int32_t *date, uint32_t *port,
                       uint32_t *asset, double *qty)
{
    const int64_t T = g->days, P = g->portfolios, A = g->assets, M = g->transactions;
    const int64_t h = A < HOLDINGS ? A : HOLDINGS;
    hb_rng_seek(r, g->seed, (uint64_t)i, S_TRADE);
    double u0 = gsl_rng_uniform(r), u1 = gsl_rng_uniform(r), u2 = gsl_rng_uniform(r);
    double u3 = gsl_rng_uniform(r), u4 = gsl_rng_uniform(r);
    int64_t d = (int64_t)(((double)i + u0) * (double)T / (double)M);
    if (d > T - 1) d = T - 1;
    int64_t p = (int64_t)(u1 * (double)P);
    double buy = d < T / 4 ? 0.95 : 0.6; /* build positions first, then trade both ways */
    *date = m->dates[d];
    *port = (uint32_t)p;
    *asset = (uint32_t)holding(p, (int64_t)(u2 * (double)h), A);
    *qty = (u3 < buy ? 10.0 : -10.0) * (double)(1 + (int64_t)(u4 * 20));
}

/* Writes /transactions (rows split across ranks) and returns the positions they add up
 * to, summed over all ranks: whole numbers, so every order of addition is exact. */
static int write_transactions(const gen_market *g, const model *m, hb_out *out, int64_t *pos)
{
    const int64_t M = g->transactions, A = g->assets;
    const uint64_t dims[1] = {(uint64_t)M};
    HB_CALL(hb_out_group(out, "/transactions"));
    HB_CALL(hb_out_dataset(out, "/transactions/date", HB_I32, 1, dims, "yyyymmdd", "trade date"));
    HB_CALL(hb_out_dataset(out, "/transactions/portfolio", HB_U32, 1, dims, "1", "portfolio id"));
    HB_CALL(hb_out_dataset(out, "/transactions/asset", HB_U32, 1, dims, "1", "asset id (column of /market/prices)"));
    HB_CALL(hb_out_dataset(out, "/transactions/quantity", HB_F64, 1, dims, "1", "units bought (+) or sold (-)"));
    HB_CALL(hb_out_attr_i64(out, "/transactions", "n_portfolios", g->portfolios));
    int32_t *date = hb_malloc(GEN_CHUNK * sizeof *date);
    uint32_t *port = hb_malloc(GEN_CHUNK * sizeof *port), *asset = hb_malloc(GEN_CHUNK * sizeof *asset);
    double *qty = hb_malloc(GEN_CHUNK * sizeof *qty);
    int rc = date && port && asset && qty ? 0 : HB_EINTERNAL;
    rc = hb_agree(rc);
    int64_t lo, hi;
    hb_range_of(M, hb_rank, hb_size, &lo, &hi);
    int64_t most = (M + hb_size - 1) / hb_size, rounds = (most + GEN_CHUNK - 1) / GEN_CHUNK;
    for (int64_t k = 0; k < rounds && rc == 0; k++) {
        int64_t a = lo + k * GEN_CHUNK, n = a >= hi ? 0 : (hi - a < GEN_CHUNK ? hi - a : GEN_CHUNK);
        int failed = 0;
#pragma omp parallel reduction(| : failed)
        {
            gsl_rng *r = gsl_rng_alloc(hb_rng_philox);
            if (!r) failed = 1;
#pragma omp for schedule(static)
            for (int64_t j = 0; j < n; j++)
                if (r) make_trade(g, m, r, a + j, &date[j], &port[j], &asset[j], &qty[j]);
            gsl_rng_free(r);
        }
        if (failed) rc = hb_err_set(HB_EINTERNAL, "gen market", "out of memory for a random number generator");
        for (int64_t j = 0; rc == 0 && j < n; j++) pos[(int64_t)port[j] * A + asset[j]] += (int64_t)qty[j];
        rc = hb_agree(rc);
        const uint64_t off = (uint64_t)a, cnt = (uint64_t)n;
        if (rc == 0) rc = hb_out_slab(out, "/transactions/date", HB_I32, 1, dims, off, cnt, date);
        if (rc == 0) rc = hb_out_slab(out, "/transactions/portfolio", HB_U32, 1, dims, off, cnt, port);
        if (rc == 0) rc = hb_out_slab(out, "/transactions/asset", HB_U32, 1, dims, off, cnt, asset);
        if (rc == 0) rc = hb_out_slab(out, "/transactions/quantity", HB_F64, 1, dims, off, cnt, qty);
    }
    free(date), free(port), free(asset), free(qty);
    HB_CALL(rc);
    int64_t n = g->portfolios * A;
    for (int64_t off = 0; off < n; off += 1 << 26) { /* MPI counts are ints */
        int c = (int)(n - off < (1 << 26) ? n - off : (1 << 26));
        MPI_Allreduce(MPI_IN_PLACE, pos + off, c, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    }
    return 0;
}

/* The prices of the last day for every asset, gathered from the ranks' columns. */
static int gather_last(const gen_market *g, model *m)
{
    int *cnt = hb_malloc((size_t)hb_size * sizeof *cnt), *dsp = hb_malloc((size_t)hb_size * sizeof *dsp);
    int rc = cnt && dsp ? 0 : HB_EINTERNAL;
    rc = hb_agree(rc);
    const int64_t A = g->assets, na = m->a1 - m->a0;
    for (int r = 0; rc == 0 && r < hb_size; r++) {
        cnt[r] = (int)(A * (r + 1) / hb_size - A * r / hb_size);
        dsp[r] = (int)(A * r / hb_size);
    }
    if (rc == 0 &&
        MPI_Allgatherv(m->prices + (g->days - 1) * na, (int)na, MPI_DOUBLE, m->last, cnt, dsp, MPI_DOUBLE,
                       MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "gen market", "MPI_Allgatherv failed");
    free(cnt), free(dsp);
    return rc;
}

/* Collective. n names "<prefix><number>", the number of at least digits digits (more
 * when n needs them), rank 0 writing them all: small beside the prices. */
static int write_names(hb_out *out, const char *path, char prefix, int64_t n, int digits)
{
    int64_t top = 1;
    for (int d = 0; d < digits; d++) top *= 10;
    while (top < n && digits < 18) top *= 10, digits++; /* n - 1 fits in the digits */
    const size_t w = (size_t)digits + 1; /* the prefix and the digits */
    char *b = hb_calloc((size_t)(n ? n : 1), w);
    int rc = hb_agree(b ? 0 : HB_EINTERNAL);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        char one[32];
        int len = snprintf(one, sizeof one, "%c%0*lld", prefix, digits, (long long)i);
        memcpy(b + (size_t)i * w, one, (size_t)len < w ? (size_t)len : w);
    }
    if (rc == 0) rc = hb_out_strings(out, path, (uint64_t)n, 0, hb_rank == 0 ? (uint64_t)n : 0, w, b, NULL);
    free(b);
    return rc;
}

/* Collective. Dates, prices (each rank its asset columns), transactions and exposure. */
static int write_file(const gen_market *g, model *m, hb_out *out)
{
    const int64_t T = g->days, A = g->assets, P = g->portfolios;
    int64_t p0, p1;
    hb_range_of(P, hb_rank, hb_size, &p0, &p1);
    int64_t *pos = g->transactions ? hb_calloc((size_t)(P * A), sizeof *pos) : NULL;
    double *exposure = hb_malloc((size_t)((p1 - p0) * A) * sizeof *exposure);
    int rc = hb_agree(exposure && (pos || !g->transactions) ? 0 : HB_EINTERNAL);
    const uint64_t dt[1] = {(uint64_t)T}, dp[2] = {(uint64_t)T, (uint64_t)A}, de[2] = {(uint64_t)P, (uint64_t)A};
    if (rc == 0) rc = hb_out_group(out, "/market");
    if (rc == 0)
        rc = hb_out_write(out, "/market/dates", HB_I32, 1, dt, 0, hb_rank == 0 ? dt[0] : 0, m->dates, "yyyymmdd",
                          "trading days (weekdays), ascending");
    if (rc == 0) rc = hb_out_dataset(out, "/market/prices", HB_F64, 2, dp, "currency", "closing price per day and asset");
    if (rc == 0) {
        const uint64_t start[2] = {0, (uint64_t)m->a0}, count[2] = {(uint64_t)T, (uint64_t)(m->a1 - m->a0)};
        rc = hb_out_block(out, "/market/prices", HB_F64, 2, start, count, m->prices);
    }
    if (rc == 0) rc = hb_out_attr_i64(out, "/market", "n_assets", A);
    if (rc == 0) rc = hb_out_attr_i64(out, "/market", "factors", g->factors);
    if (rc == 0) rc = hb_out_attr_f64(out, "/market", "dof", &g->dof, 1);
    if (rc == 0) rc = hb_out_attr_i64(out, "/market", "seed", (int64_t)g->seed);
    if (rc == 0)
        rc = hb_out_attr_str(out, "/market", "model",
                             "factor model: market and sector factors and idiosyncratic noise, each GARCH(1,1) with "
                             "unit-variance Student-t shocks (normal when dof = 0); stress episodes of 2.5 times "
                             "larger factor shocks");
    if (rc == 0 && g->transactions) rc = write_transactions(g, m, out, pos);
    gsl_rng *r = NULL;
    if (rc == 0) {
        if (pos) {
            for (int64_t p = p0; p < p1; p++)
                for (int64_t a = 0; a < A; a++) exposure[(p - p0) * A + a] = (double)pos[p * A + a] * m->last[a];
        } else {
            r = gsl_rng_alloc(hb_rng_philox);
            if (r) make_exposure(g, r, p0, p1, exposure);
            else rc = hb_err_set(HB_EINTERNAL, "gen market", "out of memory for a random number generator");
        }
        rc = hb_agree(rc);
    }
    gsl_rng_free(r);
    if (rc == 0) rc = hb_out_group(out, "/portfolios");
    if (rc == 0)
        rc = hb_out_write(out, "/portfolios/exposure", HB_F64, 2, de, (uint64_t)p0, (uint64_t)(p1 - p0), exposure,
                          "currency",
                          g->transactions ? "value held per asset: the transactions' positions at the last price"
                                          : "value held per asset");
    if (rc == 0 && g->names) rc = write_names(out, "/market/assets", 'A', A, 4);
    if (rc == 0 && g->names) rc = write_names(out, "/portfolios/names", 'P', P, 6);
    free(pos), free(exposure);
    return rc;
}

/* Collective. The model, this rank's price columns, then the file. */
static int generate(const gen_market *g, hb_out *out)
{
    const int64_t T = g->days, A = g->assets, P = g->portfolios;
    model m = {0};
    hb_range_of(A, hb_rank, hb_size, &m.a0, &m.a1);
    /* the rank's price columns, the factors, the exposure rows and the positions, before
     * any is allocated: sizes beyond memory are the options' fault (64), not a crash */
    const double need = 8.0 * ((double)T * (double)(m.a1 - m.a0) + (double)T * (double)(g->factors + 2) +
                               (double)P * (double)A * (g->transactions ? 1.0 : 0.0) +
                               ((double)P / hb_size + 1) * (double)A);
    int big = need > hb_mem_limit() ? hb_err_set(HB_EUSAGE, "gen market",
                                                 "--days %lld x --assets %lld (and --portfolios %lld) would need about "
                                                 "%.1f GB per rank, more than this host's memory allows (%.1f GB): "
                                                 "fewer days, assets or portfolios, or more ranks on more hosts",
                                                 (long long)T, (long long)A, (long long)P, need / 1e9,
                                                 hb_mem_limit() / 1e9)
                                   : 0;
    HB_CALL(hb_agree(big)); /* every rank, whichever found it */
    m.dates = hb_malloc((size_t)T * sizeof *m.dates);
    m.factor = hb_calloc((size_t)(T * g->factors), sizeof *m.factor);
    double *stress = hb_malloc((size_t)T * sizeof *stress);
    m.prices = hb_malloc((size_t)(T * (m.a1 - m.a0)) * sizeof *m.prices);
    m.last = hb_malloc((size_t)A * sizeof *m.last);
    gsl_rng *r = gsl_rng_alloc(hb_rng_philox);
    int rc = m.dates && m.factor && stress && m.prices && m.last ? 0 : HB_EINTERNAL;
    if (rc == 0 && !r) rc = hb_err_set(HB_EINTERNAL, "gen market", "out of memory for a random number generator");
    if (rc == 0) rc = make_dates(g, m.dates);
    if (rc == 0) make_stress(g, r, stress);
    if (rc == 0) make_factors(g, r, stress, m.factor);
    if (rc == 0) rc = make_prices(g, &m);
    rc = hb_agree(rc);
    if (rc == 0) rc = gather_last(g, &m);
    if (rc == 0) rc = write_file(g, &m, out);
    gsl_rng_free(r);
    free(m.dates), free(m.factor), free(stress), free(m.prices), free(m.last);
    return rc;
}

/* The generator's settings from its options. */
static gen_market read_options(const hb_optset *o)
{
    return (gen_market){.assets = (int64_t)hb_opt_num(o, "assets"),
                        .days = (int64_t)hb_opt_num(o, "days"),
                        .portfolios = (int64_t)hb_opt_num(o, "portfolios"),
                        .transactions = (int64_t)hb_opt_num(o, "transactions"),
                        .start_ymd = (int64_t)hb_opt_num(o, "start"),
                        .factors = (int64_t)hb_opt_num(o, "factors"),
                        .dof = hb_opt_num(o, "dof"),
                        .seed = (uint64_t)(int64_t)hb_opt_num(o, "seed"),
                        .names = hb_opt_bool(o, "names")};
}

/* Not collective. What the option table cannot check. */
static int gen_check(const hb_optset *o)
{
    gen_market g = read_options(o);
    HB_CHECK(g.dof == 0 || (g.dof > 2 && g.dof <= 1000), HB_EUSAGE, "gen market",
             "--dof needs a number in (2, 1000], or 0 for normal shocks");
    HB_CHECK(g.assets * g.days <= (int64_t)1 << 34 && g.portfolios * g.assets <= (int64_t)1 << 34, HB_EUSAGE,
             "gen market", "--assets x --days and --portfolios x --assets must stay below 2^34 values");
    return 0;
}

/* Collective. Generates the market into out. */
static int gen_write(const hb_optset *o, hb_out *out)
{
    gen_market g = read_options(o);
    double t0 = hb_now();
    int rc = generate(&g, out);
    if (rc == 0)
        HB_INFO("gen market: %lld assets, %lld days, %lld portfolios, %lld transactions in %.1fs", (long long)g.assets,
                (long long)g.days, (long long)g.portfolios, (long long)g.transactions, hb_now() - t0);
    return rc;
}

const hb_generator hb_generator_market = {
    .name = "market",
    .summary = "synthetic daily prices, portfolios and transactions for kernel risk",
    .options = gen_options,
    .check = gen_check,
    .write = gen_write,
};
