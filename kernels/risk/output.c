/* finalize's output (see risk.c): each portfolio's record brought to the rank that
 * writes its rows, and the datasets and attributes of /risk. */
#include "kernels/risk/internal.h"

#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "kernels/risk/format.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int risk_gather_records(risk *r, int64_t p_lo, int64_t p_hi, double *mine)
{
    const int S = hb_size, rw = r->lay.size;
    const int64_t P = r->P;
    hb_xchg xc;
    int rc = hb_xchg_init(&xc, 1); /* a record is large: one per block */
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

/* Collective. The dimension scales of /risk. */
static int write_scales(risk *r, hb_out *out)
{
    const int64_t P = r->P, A = r->A, n = P > A ? (P > r->window ? P : r->window) : (A > r->window ? A : r->window);
    uint32_t *ids = hb_malloc((size_t)n * sizeof *ids);
    int32_t *dates = hb_malloc((size_t)r->window * sizeof *dates);
    int rc = hb_agree(ids && dates ? 0 : HB_EINTERNAL);
    for (int64_t i = 0; rc == 0 && i < n; i++) ids[i] = (uint32_t)i;
    for (int64_t i = 0; rc == 0 && i < r->window; i++) dates[i] = (int32_t)r->dates[r->ia - r->window + 1 + i];
    /* names given in the input are the coordinates' values; else the row and column numbers */
    if (rc == 0 && r->portfolio_names)
        rc = hb_out_strings(out, HB_RISK_PORTFOLIO, (uint64_t)P, 0, hb_rank == 0 ? (uint64_t)P : 0, r->portfolio_width,
                            r->portfolio_names, "portfolio");
    else if (rc == 0) rc = hb_out_scale(out, HB_RISK_PORTFOLIO, "portfolio", HB_U32, (uint64_t)P, ids, "1");
    if (rc == 0)
        rc = hb_out_attr_str(out, HB_RISK_PORTFOLIO, "description",
                             r->portfolio_derived ? "portfolio name (from /transactions, in sorted order)"
                             : r->portfolio_names ? "portfolio name (from /portfolios/names, in the order of the positions' rows)"
                                                  : "portfolio id (row of the positions)");
    if (rc == 0 && r->asset_names)
        rc = hb_out_strings(out, HB_RISK_ASSET, (uint64_t)A, 0, hb_rank == 0 ? (uint64_t)A : 0, r->asset_width,
                            r->asset_names, "asset");
    else if (rc == 0) rc = hb_out_scale(out, HB_RISK_ASSET, "asset", HB_U32, (uint64_t)A, ids, "1");
    if (rc == 0)
        rc = hb_out_attr_str(out, HB_RISK_ASSET, "description",
                             r->asset_names ? "asset name (from /market/assets, in the order of the columns of /market/prices)"
                                            : "asset id (column of /market/prices)");
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

/* Not collective. Column off (count n) of records rec [np x rw] into out [np x n]. */
static void column(const double *rec, int64_t np, int rw, int off, int n, double *out)
{
    for (int64_t i = 0; i < np; i++)
        for (int j = 0; j < n; j++) out[i * n + j] = rec[i * rw + off + j];
}

int risk_write_results(risk *r, hb_out *out, int64_t p_lo, int64_t np, const double *rec, const double *mcv,
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

int risk_write_attrs(risk *r, hb_out *out)
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
