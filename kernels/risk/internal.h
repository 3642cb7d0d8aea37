/* What the files of the risk kernel share: the state and the steps of setup (input.c),
 * of the Monte Carlo blocks (mc.c), of finalize (output.c) and the checkpoint form
 * (state.c); risk.c holds the kernel and its chunk plan. Not an interface outside
 * kernels/risk/. */
#ifndef HB_RISK_INTERNAL_H
#define HB_RISK_INTERNAL_H

#include "kernels/kernel.h"
#include "kernels/risk/calc.h"

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

#define PORTFOLIO_BLOCK 64 /* portfolios per chunk */
#define MC_TILE 256        /* scenarios per DGEMM; tiles start at multiples of it */
#define MC_BATCH 16        /* scenarios whose normals are drawn together */
#define MC_Y_DOUBLES (1 << 22) /* losses buffered per pass over the portfolios (32 MB) */
#define RISK_SAVE_MAGIC 0x31304b5349524248ull /* "HBRISK01": the first 8 bytes of a saved state */

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
    /* positions from /transactions: the quantities summed [P x A], and what a partial
     * state needs to merge them (partial.c) */
    double *Q;
    int q_inexact;        /* a quantity is not a whole number */
    double q_abs;         /* the largest sum of |quantity| of a (portfolio, asset) */
    int64_t p_attr, pmax; /* n_portfolios of /transactions (0: none), the largest portfolio id (-1: none) */
    int merged;           /* a merge's state (setup_parts): finalize computes every chunk */
    char *asset_names, *portfolio_names; /* [A], [P] names of *_width bytes, NUL-padded; NULL: none */
    size_t asset_width, portfolio_width;
    int portfolio_derived; /* the names are the transactions' own, sorted (no /portfolios/names) */
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
    uint32_t *words;  /* per thread [MC_BATCH x apad] */
    double *ztmp;     /* per thread [MC_BATCH x apad]: normals before they go to z */
    gsl_rng **rng;    /* per thread */
    double t_products, t_scenarios; /* time in this run's Monte Carlo blocks, for -v */
    int64_t mc_mapped;              /* scenarios this rank drew in this run */
} risk;

/* input.c */

/* Not collective. The returns of the window and backtest days ending at as_of, from
 * /market/dates and /market/prices or /market/returns, every value checked (78 when
 * there is too little history). */
int risk_load_market(risk *r);
/* Collective. The exposures r->E [P x A], from the source the positions option names. */
int risk_load_positions(risk *r);

/* Not collective. E = Q x the prices at as_of. */
void risk_value_positions(risk *r);
/* Not collective (the same on every rank). The memory estimate, refused over max_memory. */
int risk_reserve_memory(const risk *r, const char *cause, const char *remedy);

/* names.c */

/* Collective. The optional names of the assets and portfolios (/market/assets,
 * /portfolios/names): strings, one per asset and portfolio, else 65. */
int risk_load_names(risk *r);
/* Collective. Only /market/assets (transactions naming their assets by ticker need them
 * first); risk_load_names then keeps them. */
int risk_load_asset_names(risk *r);
/* Collective. /portfolios/names, as many as it holds (*n), before P is known, for
 * transactions that name their portfolios; risk_load_names then keeps them. */
int risk_load_portfolio_names(risk *r, int64_t *n);

/* mc.c */

/* Collective. Rank 0 factors the covariance and computes B = E L and the mean P&L;
 * every rank gets them. */
int risk_mc_prepare(risk *r);
/* Not collective. Buffers and top-k sets of the Monte Carlo blocks. */
int risk_mc_alloc(risk *r);
/* Not collective. Scenarios of Monte Carlo block c: losses in passes of y_cols scenarios
 * (tiles in parallel), then each portfolio's top-k (portfolios in parallel). */
int risk_map_mc(risk *r, int64_t c);
/* Collective. Monte Carlo VaR [np x nc] and ES [np x ne] of this rank's output rows
 * [p_lo, p_hi): the union of every rank's top-k of a portfolio holds its global top-k. */
int risk_mc_tails(risk *r, int64_t p_lo, int64_t p_hi, double *var, double *es);

/* output.c */

/* Collective. The records of this rank's output rows [p_lo, p_hi) from the ranks that
 * computed them, into mine. */
int risk_gather_records(risk *r, int64_t p_lo, int64_t p_hi, double *mine);
/* Collective. Every dataset of /risk, this rank writing rows [p_lo, p_lo + np) from its
 * records and Monte Carlo VaR and ES. */
int risk_write_results(risk *r, hb_out *out, int64_t p_lo, int64_t np, const double *rec, const double *mcv,
                       const double *mce);
/* Collective. The attributes of /risk: what was computed, from what, as of when. */
int risk_write_attrs(risk *r, hb_out *out);

/* risk.c */

/* Not collective. A state with the step's options read, and nothing else; NULL when out
 * of memory. */
risk *risk_new(hb_step_ctx *ctx);
/* Collective. The chunk plan, the per-portfolio buffers and the Monte Carlo factor, once
 * the market and the positions are known. */
int risk_plan(risk *r);
/* Not collective. Chunk c, whichever kind it is. */
int risk_map(void *state, int64_t c);

/* partial.c: partial states (DESIGN.md 7). */

/* Not collective. The market, the quantity sums and the names, as bytes (rank 0); 78
 * for positions that cannot be merged exactly. */
int risk_describe(void *state, void **buf, size_t *len);
/* Collective. A merge's state: the parts' market (which must agree) and their summed
 * quantities; finalize computes every chunk. */
int risk_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state);
/* Not collective. A part's saved results hold its own positions only: checked, not kept. */
int risk_load_part(void *state, const hb_part *part, const void *buf, size_t len);

/* state.c */

/* Not collective. This rank's finished portfolio blocks and top-k sets, as bytes. */
int risk_save(void *state, void **buf, size_t *len);
/* Not collective. Merges a part saved by any rank of an earlier run of this job. */
int risk_load(void *state, const void *buf, size_t len);

#endif
