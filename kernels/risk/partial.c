/* Partial states of risk (DESIGN.md 7, docs/risk.md "Partial states").
 *
 * What a site holds is its share of the trades: the rows of /transactions, with the
 * market (/market: dates, prices, asset names) and /portfolios/names the same at every
 * site. The concatenation of the sites' inputs is then one market and all their trades,
 * and one run over it values the summed quantities at as_of. VaR, ES and the backtest
 * are not sums of per-site figures, so a site's computed results cannot be merged; its
 * positions can: the partial describes the market window the results need and the
 * quantities summed per (portfolio, asset), and a merge adds them up and computes every
 * chunk in finalize, with the bits one run writes. Adding is exact, and so independent of
 * the order of the parts, because whole quantities add exactly while their sums stay
 * below 2^53 (the check below); the quantities of one run are added in row order, which
 * is then exact too. Positions given as /portfolios/exposure, or fractional quantities,
 * are refused (78): stacked exposure rows would be portfolios numbered by the order of
 * the parts, and fractional sums in row order cannot be rebuilt from the sites' sums. */
#include "kernels/risk/internal.h"

#include "core/hb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESC_MAGIC "HBRKDS01"
#define EXACT_LIMIT 9007199254740992.0 /* 2^53 */

enum { F_ANAMES = 1, F_PNAMES = 2, F_PDERIVED = 4 /* the portfolio names are the transactions' own, sorted */ };

/* The head of a description; then dates [D] (int64), the returns R [D x A], the prices
 * at as_of [A], the asset names [A x asset_width], the portfolio names [P x pname_width]
 * and the quantity sums Q [P x A]. */
typedef struct dhead {
    char magic[8];
    int64_t p_attr, pmax, P, A, D, asset_width, pname_width, flags;
    double q_abs;
} dhead;

int risk_describe(void *state, void **buf, size_t *len)
{
    risk *r = state;
    char where[300];
    snprintf(where, sizeof where, "[step %s]", r->ctx->step_name);
    if (strcmp(r->positions, "transactions") != 0)
        return hb_err_set(HB_ECONFIG, where,
                          "risk keeps partial states of positions from /transactions only: rows of "
                          "/portfolios/exposure from several sites would be new portfolios numbered by the order of "
                          "the parts, and results already computed cannot be combined (give the trades as "
                          "/transactions, positions = transactions)");
    if (r->q_inexact || r->q_abs >= EXACT_LIMIT)
        return hb_err_set(HB_ECONFIG, where,
                          "%s: a partial state of risk needs whole quantities whose sums stay below 2^53, which add "
                          "exactly in any order; the sum of fractional ones in row order (what one run computes) "
                          "cannot be rebuilt from the sites' sums",
                          r->q_inexact ? "a quantity of /transactions is not a whole number" : "a quantity sum is too large");
    const int64_t P = r->P, A = r->A, D = r->D;
    const dhead h = {DESC_MAGIC, r->p_attr, r->pmax, P, A, D, r->asset_names ? (int64_t)r->asset_width : 0,
                     r->portfolio_names ? (int64_t)r->portfolio_width : 0,
                     (r->asset_names ? F_ANAMES : 0) | (r->portfolio_names ? F_PNAMES : 0) |
                         (r->portfolio_derived ? F_PDERIVED : 0), r->q_abs};
    const size_t n = sizeof h + (size_t)D * 8 + (size_t)(D * A) * 8 + (size_t)A * 8 + (size_t)(A * h.asset_width) +
                     (size_t)(P * h.pname_width) + (size_t)(P * A) * 8;
    uint8_t *b = hb_malloc(n), *at = b;
    if (!b) return HB_EINTERNAL;
    memcpy(at, &h, sizeof h), at += sizeof h;
    memcpy(at, r->dates + r->d0, (size_t)D * 8), at += (size_t)D * 8;
    memcpy(at, r->R, (size_t)(D * A) * 8), at += (size_t)(D * A) * 8;
    memcpy(at, r->price, (size_t)A * 8), at += (size_t)A * 8;
    if (h.asset_width) memcpy(at, r->asset_names, (size_t)(A * h.asset_width)), at += (size_t)(A * h.asset_width);
    if (h.pname_width) memcpy(at, r->portfolio_names, (size_t)(P * h.pname_width)), at += (size_t)(P * h.pname_width);
    memcpy(at, r->Q, (size_t)(P * A) * 8);
    *buf = b;
    *len = n;
    return 0;
}

/* Not collective. Part p's head and sections, checked against its length: 65 naming it. */
static int parse(const hb_part *pt, dhead *h, const uint8_t **sec)
{
    if (pt->desc_len < sizeof *h) return hb_err_set(HB_EDATA, pt->path, "its risk description is truncated");
    memcpy(h, pt->desc, sizeof *h);
    if (memcmp(h->magic, DESC_MAGIC, 8) != 0) return hb_err_set(HB_EDATA, pt->path, "not a risk description");
    const int64_t lim = (int64_t)1 << 31;
    if (h->P < 1 || h->P > lim || h->A < 1 || h->A > lim || h->D < 1 || h->D > lim || h->asset_width < 0 ||
        h->asset_width > 4096 || h->pname_width < 0 || h->pname_width > 4096 || h->pmax >= h->P ||
        (h->p_attr && h->p_attr != h->P) || !(h->q_abs >= 0 && h->q_abs < EXACT_LIMIT))
        return hb_err_set(HB_EDATA, pt->path, "its risk description is damaged");
    const double need = (double)sizeof *h + 8.0 * ((double)h->D * (1 + (double)h->A) + (double)h->A) +
                        (double)(h->A * h->asset_width) + (double)(h->P * h->pname_width) + 8.0 * (double)h->P * (double)h->A;
    if (need != (double)pt->desc_len) return hb_err_set(HB_EDATA, pt->path, "its risk description is damaged");
    *sec = (const uint8_t *)pt->desc + sizeof *h;
    return 0;
}

/* Not collective. The bytes of a description's market sections: dates, returns, prices, asset names. */
static size_t market_bytes(const dhead *h) { return (size_t)(h->D * 8 + h->D * h->A * 8 + h->A * 8 + h->A * h->asset_width); }

int risk_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    risk *r = risk_new(ctx);
    *state = r;
    if (!r) return hb_agree(HB_EINTERNAL);
    r->merged = 1;
    r->positions = "transactions";
    r->source = "prices";
    /* every rank reads the same descriptions, so every rank fails alike */
    dhead h0 = {0}, h;
    const uint8_t *s0 = NULL, *s;
    int rc = n >= 1 ? parse(&parts[0], &h0, &s0) : hb_err_set(HB_EINTERNAL, "risk", "a merge of no parts");
    double q_abs = 0;
    for (int p = 0; rc == 0 && p < n; p++) {
        rc = parse(&parts[p], &h, &s);
        if (rc) break;
        if (h.A != h0.A || h.D != h0.D || h.asset_width != h0.asset_width || (h.flags & F_ANAMES) != (h0.flags & F_ANAMES) ||
            memcmp(s, s0, market_bytes(&h0)) != 0)
            rc = hb_err_set(HB_EDATA, parts[p].path,
                            "its market (the dates, prices and asset names of the window) differs from %s's: the "
                            "sites of a risk merge share one market and hold their own trades",
                            parts[0].path);
        else if (h.p_attr != h0.p_attr)
            rc = hb_err_set(HB_EDATA, parts[p].path, "its /transactions has n_portfolios = %lld, %s's %lld",
                            (long long)h.p_attr, parts[0].path, (long long)h0.p_attr);
        else if ((h.flags & F_PNAMES) != (h0.flags & F_PNAMES) ||
                 ((h.flags & F_PNAMES) && (h.P != h0.P || h.pname_width != h0.pname_width ||
                                           memcmp(s + market_bytes(&h), s0 + market_bytes(&h0),
                                                  (size_t)(h.P * h.pname_width)) != 0)))
            rc = hb_err_set(HB_EDATA, parts[p].path, "its /portfolios/names differ from %s's", parts[0].path);
        if (rc) break;
        if (h.pmax > r->pmax) r->pmax = h.pmax;
        q_abs += h.q_abs;
        if (r->window + r->backtest != h.D)
            rc = hb_err_set(HB_EDATA, parts[p].path, "its market window has %lld days, but window + backtest_days are %lld",
                            (long long)h.D, (long long)(r->window + r->backtest));
    }
    if (rc == 0 && !(q_abs < EXACT_LIMIT))
        rc = hb_err_set(HB_EDATA, "merge", "the parts' quantity sums reach 2^53, where they no longer add exactly");
    HB_CALL(hb_agree(rc));
    r->p_attr = h0.p_attr;
    r->P = r->p_attr ? r->p_attr : r->pmax + 1;
    r->A = h0.A, r->D = h0.D, r->T = h0.D, r->d0 = 0, r->ia = h0.D - 1;
    r->q_abs = q_abs;
    const int64_t P = r->P, A = r->A, D = r->D;
    char cause[160], a[32], b[32];
    snprintf(cause, sizeof cause, "%s portfolios x %s assets of %d parts", hb_fmt_count(a, (uint64_t)P),
             hb_fmt_count(b, (uint64_t)A), n);
    HB_CALL(hb_agree(risk_reserve_memory(r, cause, "split the portfolios into several jobs")));
    r->dates = hb_malloc((size_t)D * sizeof *r->dates);
    r->R = hb_malloc_array((size_t)D, (size_t)A, sizeof *r->R);
    r->price = hb_malloc((size_t)A * sizeof *r->price);
    r->Q = hb_calloc((size_t)(P * A), sizeof *r->Q);
    r->E = hb_malloc_array((size_t)P, (size_t)A, sizeof *r->E);
    if (h0.asset_width) r->asset_names = hb_malloc((size_t)(A * h0.asset_width));
    if (h0.pname_width) r->portfolio_names = hb_malloc((size_t)(P * h0.pname_width));
    rc = r->dates && r->R && r->price && r->Q && r->E && (!h0.asset_width || r->asset_names) &&
                 (!h0.pname_width || r->portfolio_names)
             ? 0
             : HB_EINTERNAL;
    if (rc == 0) {
        const uint8_t *at = s0;
        memcpy(r->dates, at, (size_t)D * 8), at += (size_t)D * 8;
        memcpy(r->R, at, (size_t)(D * A) * 8), at += (size_t)(D * A) * 8;
        memcpy(r->price, at, (size_t)A * 8), at += (size_t)A * 8;
        if (h0.asset_width) memcpy(r->asset_names, at, (size_t)(A * h0.asset_width));
        r->asset_width = (size_t)h0.asset_width;
        at += (size_t)(A * h0.asset_width);
        if (h0.pname_width) memcpy(r->portfolio_names, at, (size_t)(P * h0.pname_width));
        r->portfolio_width = (size_t)h0.pname_width;
        r->portfolio_derived = (h0.flags & F_PDERIVED) != 0;
        /* the sums of whole numbers below 2^53: exact, in any order */
        for (int p = 0; p < n; p++) {
            parse(&parts[p], &h, &s);
            const uint8_t *q = s + market_bytes(&h) + (size_t)(h.P * h.pname_width);
            for (int64_t i = 0; i < h.P * A; i++) {
                double v;
                memcpy(&v, q + (size_t)i * 8, 8);
                r->Q[i] += v;
            }
        }
        risk_value_positions(r);
    }
    HB_CALL(hb_agree(rc));
    return risk_plan(r);
}

int risk_load_part(void *state, const hb_part *part, const void *buf, size_t len)
{
    (void)state;
    int64_t magic;
    if (len < sizeof magic) return hb_err_set(HB_EDATA, part->path, "its risk state is truncated");
    memcpy(&magic, buf, sizeof magic);
    if (magic != (int64_t)RISK_SAVE_MAGIC) return hb_err_set(HB_EDATA, part->path, "not a risk state");
    return 0;
}
