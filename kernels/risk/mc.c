/* The Monte Carlo method (see risk.c): the factor and B = E L on rank 0, scenario blocks
 * (normals from Philox at (seed, scenario), losses by DGEMM in tiles, each portfolio's
 * top-k losses), and finalize's merge of every rank's top-k sets. */
#include "kernels/risk/internal.h"

#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "kernels/risk/rng.h"

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define TAIL_BLOCK 512         /* top-k losses per MPI block of their exchange */
#define STREAM_NORMAL 0u
#define STREAM_CHISQ 1u

int risk_mc_prepare(risk *r)
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
    MPI_Bcast(&r->factor, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(r->mu, (int)P, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    for (int64_t off = 0; off < P * A; off += 1 << 26) {
        int n = (int)(P * A - off < (1 << 26) ? P * A - off : (1 << 26));
        MPI_Bcast(r->Bt + off, n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    }
    return 0;
}

int risk_mc_alloc(risk *r)
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
    r->words = hb_malloc((size_t)(th * MC_BATCH * r->apad) * sizeof *r->words);
    r->ztmp = hb_malloc((size_t)(th * MC_BATCH * r->apad) * sizeof *r->ztmp);
    r->ldy = r->y_cols + 8;
    r->y = hb_malloc((size_t)(r->P * r->ldy) * sizeof *r->y);
    r->rng = hb_calloc((size_t)th, sizeof *r->rng);
    if (!r->top || !r->topbuf || !r->z || !r->w || !r->words || !r->ztmp || !r->y || !r->rng) return HB_EINTERNAL;
    for (int i = 0; i < th; i++)
        if (!(r->rng[i] = gsl_rng_alloc(hb_rng_philox)))
            return hb_err_set(HB_EINTERNAL, "risk", "out of memory for a random number generator");
    for (int64_t p = 0; p < r->P; p++)
        r->top[p] = (hb_topk){.buf = r->topbuf + p * cap, .n = 0, .cap = cap, .k = r->kmax, .thr = -INFINITY};
    return 0;
}

/* Not collective. Losses of scenarios [s, s + n) (n <= MC_TILE) into columns [col, col
 * + n) of y. */
static void mc_tile(risk *r, int th, int64_t s, int64_t n, int64_t col, double *tprod)
{
    const int64_t A = r->A, P = r->P, ap = r->apad, yc = r->ldy;
    double *z = r->z + (size_t)th * MC_TILE * (size_t)ap, *w = r->w + (size_t)th * MC_TILE;
    uint32_t *words = r->words + (size_t)th * MC_BATCH * (size_t)ap;
    double *tmp = r->ztmp + (size_t)th * MC_BATCH * (size_t)ap;
    for (int64_t i = 0; i < n; i += MC_BATCH) {
        const int b = n - i < MC_BATCH ? (int)(n - i) : MC_BATCH;
        hb_rng_normals_batch(r->seed, (uint64_t)(s + i), STREAM_NORMAL, (int)r->J, b, words, tmp, z + i * ap, (size_t)ap);
    }
    for (int64_t i = 0; r->mc_t && i < n; i++) {
        hb_rng_seek(r->rng[th], r->seed, (uint64_t)(s + i), STREAM_CHISQ);
        w[i] = sqrt((r->dof - 2) / gsl_ran_chisq(r->rng[th], r->dof));
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

int risk_map_mc(risk *r, int64_t c)
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

int risk_mc_tails(risk *r, int64_t p_lo, int64_t p_hi, double *var, double *es)
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
