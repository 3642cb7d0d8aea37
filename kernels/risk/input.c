/* setup's input (see risk.c): the market's dates and returns, and the positions, from
 * /portfolios/exposure or from /transactions aggregated by (portfolio, asset) in a keyed
 * reduction. */
#include "kernels/risk/internal.h"

#include "core/calendar.h"
#include "core/hb.h"
#include "kernels/common/exchange.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TX_PIECE (1 << 20) /* transactions read at a time */
#define TX_BLOCK 128       /* transactions per MPI block of their exchange */

/* Not collective (the same on every rank). The bytes a rank's state will need once the
 * market (days x assets) and, when P > 0, the positions (P x A on every rank) are known:
 * returns, prices read, positions and their Monte Carlo factor, the per-portfolio
 * results and top-k buffers (kept, and sent and received once in finalize), the Monte
 * Carlo scenario panel and the draws' scratch. Refused over max_memory. */
int risk_reserve_memory(const risk *r, const char *cause, const char *remedy)
{
    const double A = (double)r->A, D = (double)r->D, P = (double)r->P, th = r->ctx->threads;
    double bytes = 8 * (2 * (D + 1) * A + (double)PORTFOLIO_BLOCK * D);
    bytes += 8 * P * (2 * A + r->lay.size);
    if (r->methods & M_MC) {
        double kmax = 1;
        for (int i = 0; i < r->nc; i++) kmax = fmax(kmax, (double)hb_risk_k(r->mc_n, r->conf[i]));
        for (int i = 0; i < r->ne; i++) kmax = fmax(kmax, (double)hb_risk_k(r->mc_n, r->es_conf[i]));
        bytes += 8 * (P * (A + 5 * kmax + 64 + MC_TILE + 9) + 4 * A * A + D * A +
                      th * (MC_TILE * (A + 5) + 2 * MC_BATCH * (A + 3))) +
                 8.0 * MC_Y_DOUBLES;
    }
    return hb_mem_reserve(bytes, r->ctx->input ? r->ctx->input : "merge", "the risk state", cause, remedy);
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
    char cause[160], a[32], b[32];
    snprintf(cause, sizeof cause, "%s return days x %s assets of %s", hb_fmt_count(a, (uint64_t)r->D),
             hb_fmt_count(b, (uint64_t)r->A), path);
    HB_CALL(risk_reserve_memory(r, cause, "shorten window or backtest_days"));
    const int64_t A = r->A, D = r->D, first = r->d0 - prices, rows = D + prices;
    double *x = hb_malloc_array((size_t)rows, (size_t)A, sizeof *x);
    r->R = hb_malloc_array((size_t)D, (size_t)A, sizeof *r->R);
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
        /* two valid prices whose ratio overflows (1e-320, then 1) made every figure of the
         * window NaN or garbage, with exit 0 */
        for (int64_t i = 0; rc == 0 && i < D * A; i++) {
            if (isfinite(r->R[i])) continue;
            int64_t row = first + 1 + i / A, col = i % A;
            rc = hb_err_set(HB_EDATA, where, "row %lld (date %lld), column %lld: the return %g / %g - 1 is not finite",
                            (long long)row, (long long)r->dates[row], (long long)col, x[i + A], x[i]);
        }
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
    char cause[160], a[32], b[32];
    snprintf(cause, sizeof cause, "%s portfolios x %s assets of %s", hb_fmt_count(a, (uint64_t)r->P),
             hb_fmt_count(b, (uint64_t)r->A), path);
    HB_CALL(risk_reserve_memory(r, cause, "split the portfolios into several jobs"));
    r->E = hb_malloc_array((size_t)r->P, (size_t)r->A, sizeof *r->E);
    if (!r->E) return hb_err_code();
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

/* Not collective. qsort order of transaction records: by input row. */
static int by_row(const void *x, const void *y)
{
    int64_t a = ((const txrec *)x)->row, b = ((const txrec *)y)->row;
    return (a > b) - (a < b);
}

/* Names of one coordinate (the assets of /market/assets, the portfolios of
 * /portfolios/names): n of w bytes each, NUL-padded; order their places sorted by name
 * (NULL: they are sorted already); ds names the dataset in messages. */
typedef struct coordnames {
    const char *v;
    size_t w;
    int64_t n;
    int64_t *order;
    const char *ds;
} coordnames;

/* qsort_r orders: places by the names they index (arg: names), and fixed-width names
 * (arg: the width). */
static int by_name(const void *x, const void *y, void *arg)
{
    const coordnames *nm = arg;
    return memcmp(nm->v + (size_t)*(const int64_t *)x * nm->w, nm->v + (size_t)*(const int64_t *)y * nm->w, nm->w);
}
static int by_bytes(const void *x, const void *y, void *arg) { return memcmp(x, y, *(const size_t *)arg); }

/* Not collective. nm's places sorted by name into nm->order; 65 with a name twice. */
static int name_order(risk *r, coordnames *nm)
{
    int64_t *ix = hb_malloc((size_t)(nm->n ? nm->n : 1) * sizeof *ix);
    if (!ix) return HB_EINTERNAL;
    for (int64_t a = 0; a < nm->n; a++) ix[a] = a;
    qsort_r(ix, (size_t)nm->n, sizeof *ix, by_name, nm);
    const size_t w = nm->w;
    for (int64_t a = 1; a < nm->n; a++)
        if (memcmp(nm->v + (size_t)ix[a] * w, nm->v + (size_t)ix[a - 1] * w, w) == 0) {
            const char *name = nm->v + (size_t)ix[a] * w;
            free(ix);
            return hb_err_set(HB_EDATA, r->ctx->input, "%s names '%.*s' twice", nm->ds, (int)strnlen(name, w), name);
        }
    nm->order = ix;
    return 0;
}

/* Not collective. Rows [s, s+cnt) of string column col (named what) as the places of
 * their names in nm (doubles, as numeric ids are read); a name not there is 65 naming
 * the row and the name. */
static int name_places(risk *r, hb_table *t, const hb_colmap *cm, int col, const char *what, int64_t s, int64_t cnt,
                       const coordnames *nm, double *out)
{
    hb_strs str = {0};
    int rc = hb_table_read_str(t, col, s, cnt, &str);
    const size_t w = nm->w;
    char key[1024];
    for (int64_t i = 0; rc == 0 && i < cnt; i++) {
        const size_t n = (size_t)(str.off[i + 1] - str.off[i]);
        int64_t lo = 0, hi = nm->n, found = -1;
        if (n <= w && w < sizeof key) {
            memset(key, 0, w);
            memcpy(key, str.bytes + str.off[i], n); /* NUL-padded, as the names are */
            while (lo < hi && found < 0) {
                const int64_t mid = lo + (hi - lo) / 2, at = nm->order ? nm->order[mid] : mid;
                const int c = memcmp(nm->v + (size_t)at * w, key, w);
                if (c == 0) found = at;
                else if (c < 0) lo = mid + 1;
                else hi = mid;
            }
        }
        if (found < 0) {
            char where[600];
            snprintf(where, sizeof where, "%s:/transactions/%s", r->ctx->input, hb_colmap_name(cm, what));
            rc = hb_err_set(HB_EDATA, where, "row %lld: %s '%.*s' is not in %s", (long long)(s + i), what,
                            (int)(n < 200 ? n : 200), str.bytes + str.off[i], nm->ds);
        }
        out[i] = (double)found;
    }
    hb_strs_free(&str);
    return rc;
}

/* A sorted set of distinct names of w bytes each, NUL-padded. */
typedef struct nameset {
    char *v;
    size_t n, w;
} nameset;

/* Not collective. Adds the k names of b (fixed width w, sorted or not, repeats allowed)
 * to set: sorted and distinct again, at the wider of the two widths. */
static int nameset_add(nameset *set, const char *b, size_t k, size_t w)
{
    const size_t W = set->w > w ? set->w : w, n = set->n + k;
    char *v = hb_calloc(n ? n : 1, W);
    if (!v) return HB_EINTERNAL;
    for (size_t i = 0; i < set->n; i++) memcpy(v + i * W, set->v + i * set->w, set->w);
    for (size_t i = 0; i < k; i++) memcpy(v + (set->n + i) * W, b + i * w, w);
    qsort_r(v, n, W, by_bytes, (void *)&W);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || memcmp(v + (m - 1) * W, v + i * W, W) != 0) memmove(v + m++ * W, v + i * W, W);
    free(set->v);
    set->v = v, set->n = m, set->w = W;
    return 0;
}

/* Collective. The portfolios of a /transactions whose portfolio column holds names and
 * that has no /portfolios/names: the distinct names of every rank's rows, sorted by their
 * bytes (Python's order of the strings), become the portfolios 0..P-1 and their names
 * (r->portfolio_names; their number in *np). A name with a NUL byte is 65. */
static int portfolio_names_of(risk *r, hb_table *t, const hb_colmap *cm, int64_t *np)
{
    const int64_t M = hb_table_rows(t);
    int64_t lo, hi;
    hb_range_of(M, hb_rank, hb_size, &lo, &hi);
    nameset set = {0};
    int rc = 0;
    for (int64_t s = lo; rc == 0 && s < hi; s += TX_PIECE) {
        const int64_t cnt = hi - s < TX_PIECE ? hi - s : TX_PIECE;
        hb_strs str = {0};
        rc = hb_table_read_str(t, 1, s, cnt, &str);
        size_t w = 1;
        for (int64_t i = 0; rc == 0 && i < cnt; i++) {
            const size_t n = (size_t)(str.off[i + 1] - str.off[i]);
            if (memchr(str.bytes + str.off[i], '\0', n)) {
                char where[600];
                snprintf(where, sizeof where, "%s:/transactions/%s", r->ctx->input, hb_colmap_name(cm, "portfolio"));
                rc = hb_err_set(HB_EDATA, where, "row %lld: the portfolio's name holds a NUL byte", (long long)(s + i));
            }
            w = n > w ? n : w;
        }
        char *b = rc == 0 ? hb_calloc((size_t)cnt, w) : NULL;
        if (rc == 0 && !b) rc = HB_EINTERNAL;
        for (int64_t i = 0; rc == 0 && i < cnt; i++)
            memcpy(b + (size_t)i * w, str.bytes + str.off[i], (size_t)(str.off[i + 1] - str.off[i]));
        if (rc == 0) rc = nameset_add(&set, b, (size_t)cnt, w);
        free(b);
        hb_strs_free(&str);
    }
    rc = hb_agree(rc);
    uint64_t W = set.w ? set.w : 1; /* every rank's names at the widest */
    if (rc == 0) MPI_Allreduce(MPI_IN_PLACE, &W, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    nameset wide = {NULL, 0, (size_t)W};
    if (rc == 0) rc = hb_agree(nameset_add(&wide, set.v, set.n, set.w ? set.w : 1));
    free(set.v);
    void *all = NULL;
    size_t total = 0;
    if (rc == 0) rc = hb_allgather(wide.v, wide.n, (size_t)W, &all, &total, "risk");
    free(wide.v);
    nameset every = {NULL, 0, (size_t)W};
    if (rc == 0) rc = hb_agree(nameset_add(&every, all, total, (size_t)W));
    free(all);
    if (rc) return free(every.v), rc;
    r->portfolio_names = every.v, r->portfolio_width = every.w, r->portfolio_derived = 1;
    *np = (int64_t)every.n;
    return 0;
}

/* Not collective. Reads this rank's rows of /transactions, checks them, and keeps
 * those dated on or before as_of in *recs; *pmax is the largest portfolio id seen. */
static int read_transactions(risk *r, hb_table *t, const hb_colmap *cm, int64_t per_s, int64_t P_attr,
                             const coordnames *pnames, txrec **recs, int64_t *nrec, int64_t *pmax)
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
    coordnames tick = {r->asset_names, r->asset_width, A, NULL, "/market/assets"}; /* assets named by ticker ("AAPL") */
    const int by_tick = hb_table_kind(t, 2) == HB_COL_STRING;
    if (rc == 0 && by_tick && !r->asset_names)
        rc = hb_err_set(HB_EDATA, r->ctx->input, "/transactions names its assets by strings, which need /market/assets "
                        "(the names of the columns of /market/prices) to find them");
    if (rc == 0 && by_tick) rc = name_order(r, &tick);
    int64_t n = 0;
    for (int64_t s = lo; rc == 0 && s < hi; s += piece) {
        int64_t cnt = hi - s < piece ? hi - s : piece;
        rc = per_s ? hb_table_read_time(t, 0, s, cnt, per_s, date, date) : hb_table_read(t, 0, s, cnt, HB_I64, date);
        for (int64_t i = 0; rc == 0 && per_s && i < cnt; i++) { /* a time: the yyyymmdd of its UTC day */
            if (date[i] == INT64_MIN) continue;
            int64_t y;
            int mo, d;
            hb_civil_from_days(hb_floordiv(date[i], 86400), &y, &mo, &d);
            date[i] = y * 10000 + mo * 100 + d;
        }
        if (rc == 0 && pnames) rc = name_places(r, t, cm, 1, "portfolio", s, cnt, pnames, port);
        else if (rc == 0) rc = hb_table_read(t, 1, s, cnt, HB_F64, port);
        if (rc == 0 && by_tick) rc = name_places(r, t, cm, 2, "asset", s, cnt, &tick, asset);
        else if (rc == 0) rc = hb_table_read(t, 2, s, cnt, HB_F64, asset);
        if (rc == 0) rc = hb_table_read(t, 3, s, cnt, HB_F64, qty);
        for (int64_t i = 0; rc == 0 && i < cnt; i++) {
            int64_t row = s + i;
            double p = port[i], a = asset[i];
            if (hb_days_from_yyyymmdd(date[i]) == INT64_MIN) {
                snprintf(where, sizeof where, "%s:/transactions/%s", r->ctx->input, hb_colmap_name(cm, "date"));
                rc = hb_err_set(HB_EDATA, where, "row %lld: %lld is not a date yyyymmdd", (long long)row,
                                (long long)date[i]);
            } else if (!(p >= 0 && p == floor(p) && p < (P_attr ? (double)P_attr : 9007199254740992.0))) {
                snprintf(where, sizeof where, "%s:/transactions/%s", r->ctx->input, hb_colmap_name(cm, "portfolio"));
                if (P_attr)
                    rc = hb_err_set(HB_EDATA, where, "row %lld: portfolio id %g is out of range [0, %lld)", (long long)row,
                                    p, (long long)P_attr);
                else rc = hb_err_set(HB_EDATA, where, "row %lld: %g is not a portfolio id", (long long)row, p);
            } else if (!(a >= 0 && a == floor(a) && a < (double)A)) {
                snprintf(where, sizeof where, "%s:/transactions/%s", r->ctx->input, hb_colmap_name(cm, "asset"));
                rc = hb_err_set(HB_EDATA, where, "row %lld: asset id %g is out of range [0, %lld)", (long long)row, a,
                                (long long)A);
            } else if (!isfinite(qty[i])) {
                snprintf(where, sizeof where, "%s:/transactions/%s", r->ctx->input, hb_colmap_name(cm, "quantity"));
                rc = hb_err_set(HB_EDATA, where, "row %lld: %g is not a finite quantity", (long long)row, qty[i]);
            } else {
                if ((int64_t)p > *pmax) *pmax = (int64_t)p;
                if (date[i] <= as_of) out[n++] = (txrec){row, (int64_t)p, (int64_t)a, qty[i]};
            }
        }
    }
    free(date), free(port), free(asset), free(qty), free(tick.order);
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
    static const char *const names[] = {"date", "portfolio", "asset", "quantity"};
    hb_colmap cm;
    char msg[256];
    if (hb_colmap_parse(hb_opt_str(ctx->opts, "columns"), &cm, msg, sizeof msg))
        return hb_err_set(HB_ECONFIG, ctx->step_name, "%s", msg); /* validate saw it first */
    const char *cols[4];
    for (int i = 0; i < 4; i++) cols[i] = hb_colmap_name(&cm, names[i]);
    hb_table *t = NULL;
    int rc = 0;
    if (!r->price)
        rc = hb_err_set(HB_EDATA, ctx->input, "/transactions need /market/prices to value positions (found /market/returns)");
    if (rc == 0) rc = hb_table_open_any(ctx->in, "/transactions", cols, 4, &t);
    for (int k = 0; rc == 0 && k < 4; k++) /* assets and portfolios may be named */
        if (k != 1 && k != 2 && hb_table_kind(t, k) == HB_COL_STRING)
            rc = hb_err_set(HB_EDATA, ctx->input, "/transactions column '%s' has string type; a number is needed", cols[k]);
    if (rc == 0 && hb_table_kind(t, 2) == HB_COL_STRING) rc = risk_load_asset_names(r);
    const int by_name = rc == 0 && hb_table_kind(t, 1) == HB_COL_STRING;
    const char *unit = NULL; /* unset and unstated: yyyymmdd */
    if (rc == 0) rc = hb_table_time_unit(t, 0, hb_opt_str(ctx->opts, "time_unit"), &unit);
    const int64_t per_s = unit ? hb_time_unit_per_s(unit) : 0;
    int64_t P_attr = 0, v;
    int present = 0;
    if (rc == 0) rc = hb_table_attr_i64(t, "n_portfolios", &v, &present);
    if (rc == 0 && present) {
        if (v >= 1) P_attr = v;
        else rc = hb_err_set(HB_EDATA, ctx->input, "/transactions: attribute n_portfolios = %lld is not positive", (long long)v);
    }
    /* portfolios named: by /portfolios/names when given, else by their sorted distinct
     * names; either way their number is P */
    coordnames pn = {NULL, 0, 0, NULL, "/portfolios/names"};
    int64_t P_names = 0;
    rc = hb_agree(rc);
    if (rc == 0 && by_name && hb_in_exists(ctx->in, "/portfolios/names")) {
        rc = risk_load_portfolio_names(r, &P_names);
        pn.v = r->portfolio_names, pn.w = r->portfolio_width, pn.n = P_names;
        if (rc == 0) rc = hb_agree(name_order(r, &pn));
    } else if (rc == 0 && by_name) {
        rc = portfolio_names_of(r, t, &cm, &P_names);
        pn.v = r->portfolio_names, pn.w = r->portfolio_width, pn.n = P_names;
    }
    if (rc == 0 && by_name && P_attr && P_attr != P_names)
        rc = hb_agree(hb_err_set(HB_EDATA, ctx->input, "/transactions: attribute n_portfolios = %lld, but its portfolios "
                                 "are named by %lld names", (long long)P_attr, (long long)P_names));
    if (rc == 0 && by_name) P_attr = P_names; /* 0: no names, and every row's is missing */
    txrec *recs = NULL, *rbuf = NULL;
    int64_t nrec = 0, pmax = -1;
    if (rc == 0) rc = read_transactions(r, t, &cm, per_s, P_attr, by_name ? &pn : NULL, &recs, &nrec, &pmax);
    free(pn.order);
    const int64_t M = t ? hb_table_rows(t) : 0;
    hb_table_close(t);
    rc = hb_agree(rc);
    if (rc) return free(recs), rc;
    MPI_Allreduce(MPI_IN_PLACE, &pmax, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    r->P = P_attr ? P_attr : pmax + 1;
    r->p_attr = P_attr, r->pmax = pmax;
    if (r->P < 1) return free(recs), hb_err_set(HB_EDATA, ctx->input, "/transactions is empty and has no n_portfolios attribute");
    char cause[200], a[32], b[32];
    int sparse = !P_attr && r->P > 16 && (double)r->P > 4.0 * (double)M;
    snprintf(cause, sizeof cause, "%s portfolios from %s%s x %s assets", hb_fmt_count(a, (uint64_t)r->P),
             by_name ? "their names" : P_attr ? "the attribute n_portfolios of /transactions" : "max(portfolio)+1",
             sparse ? " (ids are sparse)" : "", hb_fmt_count(b, (uint64_t)r->A));
    rc = risk_reserve_memory(r, cause,
                        P_attr ? "check n_portfolios" : "renumber the portfolio ids densely from 0");
    if (rc) return free(recs), rc;
    if ((double)r->P * (double)r->A >= INT32_MAX) /* one MPI count below */
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
    r->E = hb_malloc_array((size_t)P, (size_t)A, sizeof *r->E);
    rc = hb_agree(q && cnt && r->E ? 0 : HB_EINTERNAL);
    r->Q = hb_malloc_array((size_t)P, (size_t)A, sizeof *r->Q);
    rc = hb_agree(rc == 0 && !r->Q ? HB_EINTERNAL : rc);
    if (rc == 0) {
        /* whole quantities whose running sums stay below 2^53 add exactly in any order: a
         * partial state's sums then merge into the bits of one run (risk_check_exact) */
        double *qa = hb_calloc((size_t)((nown ? nown : 1) * A), sizeof *qa);
        rc = qa ? 0 : HB_EINTERNAL;
        for (size_t i = 0; rc == 0 && i < nrecv; i++) {
            const size_t at = (size_t)((rbuf[i].p - p_lo) * A + rbuf[i].a);
            q[at] += rbuf[i].q;
            qa[at] += fabs(rbuf[i].q);
            if (rbuf[i].q != floor(rbuf[i].q)) r->q_inexact = 1;
        }
        for (int64_t i = 0; rc == 0 && i < nown * A; i++) r->q_abs = fmax(r->q_abs, qa[i]);
        free(qa);
        rc = hb_agree(rc);
    }
    if (rc == 0) {
        double m[2] = {r->q_inexact, r->q_abs};
        MPI_Allreduce(MPI_IN_PLACE, m, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        r->q_inexact = m[0] != 0, r->q_abs = m[1];
        for (int d = 0; d < S; d++) {
            int64_t lo, hi;
            hb_range_of(P, d, S, &lo, &hi);
            cnt[d] = (int)((hi - lo) * A), dsp[d] = (int)(lo * A); /* P A < 2^31: checked above */
        }
        if (MPI_Allgatherv(q, (int)(nown * A), MPI_DOUBLE, r->Q, cnt, dsp, MPI_DOUBLE, MPI_COMM_WORLD) != MPI_SUCCESS)
            rc = hb_err_set(HB_EINTERNAL, "risk", "MPI_Allgatherv of the positions failed");
        rc = hb_agree(rc);
    }
    if (rc == 0) risk_value_positions(r);
    free(q), free(cnt), free(rbuf);
    return rc;
}

void risk_value_positions(risk *r)
{
    for (int64_t i = 0; i < r->P * r->A; i++) r->E[i] = r->Q[i] * r->price[i % r->A];
}

int risk_load_market(risk *r)
{
    HB_CALL(load_dates(r));
    return load_returns(r);
}

int risk_load_positions(risk *r)
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
