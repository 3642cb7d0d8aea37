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
#include "kernels/risk/internal.h"

#include "core/calendar.h"
#include "core/hb.h"
#include "core/stall.h"
#include "kernels/common/exchange.h"
#include "kernels/risk/format.h"

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL,
     "the /transactions table's names for date, portfolio, asset, quantity (date:trade_date)"},
    {"time_unit", HB_OPT_CHOICE, NULL, 1, 0, "s|ms|us|ns",
     "the transactions' date is a time since 1970-01-01 UTC in this unit (pandas datetime64: ns), dated by its UTC "
     "day (unset: date holds yyyymmdd)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Not collective. Checks the words of the methods list; fills *mask. */
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

/* Not collective. A level must lie strictly inside (0, 1). */
static int check_level(const char *key, double v, const char **kp, char *msg, size_t len)
{
    if (v > 0 && v < 1) return 0;
    *kp = key;
    snprintf(msg, len, "%s = %g is outside (0, 1)", key, v);
    return HB_ECONFIG;
}

/* Not collective. What the option table cannot check: levels inside (0, 1) and none
 * listed twice (two columns of one coordinate value), the methods, as_of a real date,
 * more than 2 degrees of freedom. */
static int risk_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    double v[HB_OPT_LIST_MAX];
    static const char *const lists[] = {"confidence", "es_confidence"};
    for (int l = 0; l < 2; l++) {
        int n = hb_opt_list(o, lists[l], v);
        for (int i = 0; i < n; i++) {
            HB_CALL(check_level(lists[l], v[i], key, msg, len));
            for (int j = 0; j < i; j++)
                if (v[i] == v[j]) {
                    *key = lists[l];
                    snprintf(msg, len, "%s: %g is listed twice (one column per level)", lists[l], v[i]);
                    return HB_ECONFIG;
                }
        }
    }
    HB_CALL(check_level("backtest_confidence", hb_opt_num(o, "backtest_confidence"), key, msg, len));
    int mask;
    if (parse_methods(hb_opt_str(o, "methods"), &mask, msg, len)) return *key = "methods", HB_ECONFIG;
    hb_colmap m;
    if (hb_colmap_parse(hb_opt_str(o, "columns"), &m, msg, len)) return *key = "columns", HB_ECONFIG;
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

/* Not collective. The step's options into r (validated when the job file was read). */
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

/* Not collective. Chunk c: a portfolio block (*block >= 0) or a Monte Carlo block (*mc
 * >= 0). Block j sits at chunk floor((2j+1) n / (2 npb)) of n chunks, evenly among the
 * others. */
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

risk *risk_new(hb_step_ctx *ctx)
{
    risk *r = hb_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->ctx = ctx;
    r->pmax = -1;
    gsl_set_error_handler_off(); /* GSL's default handler aborts; errors come back as codes */
    if (openblas_set_num_threads) openblas_set_num_threads(1);
    read_options(r);
    return r;
}

/* Collective. Reads and checks the input, builds the positions, the chunk plan and the
 * Monte Carlo factor. */
static int risk_setup(hb_step_ctx *ctx, void **state)
{
    risk *r = risk_new(ctx);
    *state = r;
    if (!r) return hb_agree(HB_EINTERNAL);
    int rc = risk_load_market(r);
    HB_CALL(hb_agree(rc));
    HB_CALL(risk_load_positions(r));
    HB_CALL(risk_load_names(r));
    return risk_plan(r);
}

int risk_plan(risk *r)
{
    hb_step_ctx *ctx = r->ctx;
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
    int rc = r->rec && r->done && r->pnl && r->scratch ? 0 : HB_EINTERNAL;
    if (rc == 0 && (r->methods & M_MC)) rc = risk_mc_alloc(r);
    HB_CALL(hb_agree(rc));
    if (r->methods & M_MC) HB_CALL(risk_mc_prepare(r));
    HB_INFO("risk: %lld portfolios x %lld assets from %s, %s at %lld, window %lld, backtest %lld; %lld chunks",
            (long long)r->P, (long long)r->A, r->positions, r->source, (long long)r->dates[r->ia], (long long)r->window,
            (long long)r->backtest, (long long)r->n_chunks);
    return 0;
}

/* Not collective. Every statistic of the portfolios of block b. */
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
    hb_stall_allreduce(MPI_IN_PLACE, thr, (int)r->P, MPI_DOUBLE, MPI_MAX); /* a rank that waits sleeps */
    for (int64_t p = 0; p < r->P; p++)
        if (thr[p] > r->top[p].thr) r->top[p].thr = thr[p];
    free(thr);
    return 0;
}

int risk_map(void *state, int64_t c)
{
    risk *r = state;
    int64_t block, mc;
    chunk_kind(r, c, &block, &mc);
    return block >= 0 ? map_block(r, block) : risk_map_mc(r, mc);
}

/* Collective. Brings each portfolio's results to the rank that writes its rows, then
 * writes /risk. */
static int risk_finalize(void *state, hb_out *out)
{
    risk *r = state;
    int64_t p_lo, p_hi;
    hb_range_of(r->P, hb_rank, hb_size, &p_lo, &p_hi);
    const int64_t np = p_hi - p_lo;
    /* a merge loaded no results (the parts' were of their own positions): every chunk
     * now, spread over the ranks; the results do not depend on which rank does which */
    int rc = 0;
    for (int64_t c = hb_rank; r->merged && rc == 0 && c < r->n_chunks; c += hb_size) rc = risk_map(r, c);
    HB_CALL(hb_agree(rc));
    double *rec = hb_malloc((size_t)(np ? np : 1) * (size_t)r->lay.size * sizeof *rec);
    double *mcv = hb_malloc((size_t)(np ? np : 1) * (size_t)r->nc * sizeof *mcv);
    double *mce = hb_malloc((size_t)(np ? np : 1) * (size_t)r->ne * sizeof *mce);
    rc = hb_agree(rec && mcv && mce ? 0 : HB_EINTERNAL);
    if (rc == 0) rc = risk_gather_records(r, p_lo, p_hi, rec);
    if (rc == 0 && (r->methods & M_MC)) rc = risk_mc_tails(r, p_lo, p_hi, mcv, mce);
    if (rc == 0 && (r->methods & M_MC)) {
        double t[3] = {r->t_products, r->t_scenarios, (double)r->mc_mapped};
        MPI_Allreduce(MPI_IN_PLACE, t, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double flops = 2.0 * t[2] * (double)r->A * (double)r->P;
        HB_DEBUG("risk: montecarlo: %.0f scenarios in %.3f rank-seconds; scenario x exposure products %.3f "
                 "thread-seconds, %.2f GFLOP/s per thread",
                 t[2], t[1], t[0], t[0] > 0 ? flops / t[0] / 1e9 : 0.0);
    }
    if (rc == 0) rc = risk_write_results(r, out, p_lo, np, rec, mcv, mce);
    if (rc == 0) rc = risk_write_attrs(r, out);
    free(rec), free(mcv), free(mce);
    return rc;
}

/* Not collective. Frees the state, also a partly built one. */
static void risk_destroy(void *state)
{
    risk *r = state;
    if (!r) return;
    free(r->dates), free(r->R), free(r->price), free(r->E), free(r->Q), free(r->asset_names), free(r->portfolio_names);
    free(r->rec), free(r->done), free(r->pnl), free(r->scratch);
    free(r->Bt), free(r->mu), free(r->top), free(r->topbuf), free(r->z), free(r->w), free(r->words), free(r->ztmp);
    free(r->y);
    for (int i = 0; r->rng && i < r->ctx->threads; i++) gsl_rng_free(r->rng[i]);
    free(r->rng);
    free(r);
}

extern const hb_generator hb_generator_market; /* gen.c */

/* What the kernel reads and writes (DESIGN.md 4.2), listed by `h5batch kernels risk`;
 * the output paths are the ones the writer uses (format.h). */
static const hb_dataset_desc risk_inputs[] = {
    {"/market/dates", NULL, "int", "date", "yyyymmdd", 0, "trading dates, strictly ascending"},
    {"/market/prices", NULL, "number", "date,asset", NULL, 1, "closing prices (this or /market/returns)"},
    {"/market/returns", NULL, "number", "date,asset", "1", 1, "simple returns (this or /market/prices)"},
    {"/market/assets", NULL, "string", "asset", NULL, 1, "asset names"},
    {"/portfolios/exposure", NULL, "number", "portfolio,asset", "currency", 1,
     "value held per asset (positions = exposure)"},
    {"/portfolios/names", NULL, "string", "portfolio", NULL, 1, "portfolio names"},
    {"date", "/transactions", "int", "", "yyyymmdd", 1, "trade date (positions = transactions)"},
    {"portfolio", "/transactions", "int", "", NULL, 1, "portfolio number, 0 <= p < n_portfolios"},
    {"asset", "/transactions", "int", "", NULL, 1, "asset number, 0 <= a < assets"},
    {"quantity", "/transactions", "number", "", NULL, 1, "signed quantity traded"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};
static const hb_dataset_desc risk_outputs[] = {
    {HB_RISK_VAR_HISTORICAL, NULL, "float64", "portfolio,confidence", "currency", 1, "historical VaR (methods)"},
    {HB_RISK_VAR_PARAMETRIC, NULL, "float64", "portfolio,confidence", "currency", 1, "parametric (normal) VaR"},
    {HB_RISK_VAR_MONTECARLO, NULL, "float64", "portfolio,confidence", "currency", 1, "Monte Carlo VaR"},
    {HB_RISK_ES_HISTORICAL, NULL, "float64", "portfolio,es_confidence", "currency", 1, "historical ES"},
    {HB_RISK_ES_PARAMETRIC, NULL, "float64", "portfolio,es_confidence", "currency", 1, "parametric (normal) ES"},
    {HB_RISK_ES_MONTECARLO, NULL, "float64", "portfolio,es_confidence", "currency", 1, "Monte Carlo ES"},
    {HB_RISK_MEAN_PNL, NULL, "float64", "portfolio", "currency", 0, "mean daily P&L over the window"},
    {HB_RISK_VOLATILITY, NULL, "float64", "portfolio", "currency", 0, "sample standard deviation of the P&L"},
    {HB_RISK_EXPOSURE, NULL, "float64", "portfolio,asset", "currency", 0, "value held per asset at as_of"},
    {HB_RISK_BACKTEST_EXCEPTIONS, NULL, "uint32", "portfolio", "1", 1, "backtest days with loss > VaR"},
    {HB_RISK_KUPIEC_LR, NULL, "float64", "portfolio", "1", 1, "Kupiec POF likelihood ratio"},
    {HB_RISK_KUPIEC_PVALUE, NULL, "float64", "portfolio", "1", 1, "its chi-square(1) p-value"},
    {HB_RISK_CHRISTOFFERSEN_LR, NULL, "float64", "portfolio", "1", 1, "Christoffersen independence ratio"},
    {HB_RISK_CHRISTOFFERSEN_PVALUE, NULL, "float64", "portfolio", "1", 1, "its p-value"},
    {HB_RISK_TRAFFIC_LIGHT, NULL, "uint8", "portfolio", "1", 1, "Basel traffic light: 0 green, 1 yellow, 2 red"},
    {HB_RISK_PNL, NULL, "float64", "portfolio,date", "currency", 1, "daily P&L of the window (write_pnl)"},
    {HB_RISK_PORTFOLIO, NULL, "uint32", "portfolio", "1", 0, "coordinate: portfolio number"},
    {HB_RISK_ASSET, NULL, "uint32", "asset", "1", 0, "coordinate: asset number"},
    {HB_RISK_CONFIDENCE, NULL, "float64", "confidence", "1", 0, "coordinate: VaR levels"},
    {HB_RISK_ES_CONFIDENCE, NULL, "float64", "es_confidence", "1", 0, "coordinate: ES levels"},
    {HB_RISK_DATE, NULL, "int32", "date", "yyyymmdd", 1, "coordinate: the window's dates (write_pnl)"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};

const hb_kernel hb_kernel_risk = {
    .name = "risk",
    .summary = "historical, parametric and Monte Carlo VaR and ES per portfolio, with Basel backtests",
    .options = risk_options,
    .default_chunk_rows = 8192,
    .unit = "scenarios",
    .generator = &hb_generator_market,
    .validate = risk_validate,
    .setup = risk_setup,
    .map = risk_map,
    .exchange = risk_exchange,
    .finalize = risk_finalize,
    .save = risk_save,
    .load = risk_load,
    .destroy = risk_destroy,
    .inputs = risk_inputs,
    .outputs = risk_outputs,
    .describe = risk_describe,
    .setup_parts = risk_setup_parts,
    .load_part = risk_load_part,
};
