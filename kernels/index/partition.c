/* finalize's partitioning (see index.c): weighted samples of every run's terms, gathered
 * from all ranks, cut into equal shares that become the ranks' term ranges, and every
 * run's slices sent to the ranks that own them. */
#include "kernels/index/internal.h"

#include "core/hb.h"
#include "kernels/common/exchange.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES_PER_RUN 64
#define XBLOCK 4096 /* bytes per MPI block of the exchange of slices */

/* Not collective. Samples by term, then weight. */
static int sample_cmp(const void *a, const void *b)
{
    const sample *x = a, *y = b;
    int c = bytes_cmp(x->s, x->len, y->s, y->len);
    return c ? c : (x->w > y->w) - (x->w < y->w);
}

/* Not collective. What a term of a run will cost its owner: bytes out, plus a little
 * per term. */
static double term_weight(const runv *v, uint64_t t, int positions)
{
    double p = (double)(v->poff[t + 1] - v->poff[t]), x = (double)(v->xoff[t + 1] - v->xoff[t]);
    return 32.0 + (double)(v->toff[t + 1] - v->toff[t]) + 8.0 * p + (positions ? 4.0 * x : 0.0);
}

int ix_gather_samples(ix *x, uint8_t **store, sample **out, size_t *nout)
{
    size_t cap = 0, len = 0;
    uint8_t *mine = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < x->nruns; i++) {
        runv v;
        ix_view(x->runs[i], &v);
        const uint64_t n = v.h->n_terms;
        double total = 0, acc = 0;
        for (uint64_t t = 0; t < n; t++) total += term_weight(&v, t, x->positions);
        uint64_t s = n < SAMPLES_PER_RUN ? n : SAMPLES_PER_RUN, j = 0;
        for (uint64_t t = 0; t < n && j < s; t++) {
            acc += term_weight(&v, t, x->positions);
            if (acc < ((double)j + 0.5) * total / (double)s) continue;
            uint32_t tl;
            const uint8_t *term = run_term(&v, t, &tl);
            double w = total / (double)s;
            if (hb_grow((void **)&mine, &cap, len + 12 + tl, 1)) {
                rc = HB_EINTERNAL;
                break;
            }
            memcpy(mine + len, &tl, 4);
            memcpy(mine + len + 4, &w, 8);
            memcpy(mine + len + 12, term, tl);
            len += 12 + tl;
            j++;
        }
    }
    uint8_t *buf = NULL;
    size_t all = 0;
    if ((rc = hb_agree(rc)) == 0) rc = hb_allgather(mine, len, 1, (void **)&buf, &all, "index");
    free(mine);
    size_t ns = 0;
    for (size_t at = 0; rc == 0 && at < all; ns++) {
        uint32_t tl;
        memcpy(&tl, buf + at, 4);
        at += 12 + tl;
    }
    sample *s = rc == 0 ? hb_malloc((ns ? ns : 1) * sizeof *s) : NULL;
    if (rc == 0 && !s) rc = HB_EINTERNAL;
    for (size_t at = 0, i = 0; rc == 0 && at < all; i++) {
        memcpy(&s[i].len, buf + at, 4);
        memcpy(&s[i].w, buf + at + 4, 8);
        s[i].s = buf + at + 12;
        at += 12 + s[i].len;
    }
    if (rc == 0) qsort(s, ns, sizeof *s, sample_cmp);
    *store = buf;
    *out = s;
    *nout = ns;
    return hb_agree(rc);
}

void ix_cut_samples(const sample *s, size_t i0, size_t i1, int k, size_t *cut)
{
    double total = 0, acc = 0;
    for (size_t i = i0; i < i1; i++) total += s[i].w;
    size_t i = i0;
    for (int j = 1; j < k; j++) {
        double goal = total * j / k;
        while (i < i1 && acc + s[i].w <= goal) acc += s[i++].w;
        cut[j - 1] = i;
    }
}

int ix_exchange_slices(ix *x, const sample *smp, const size_t *split, source **src, size_t *nsrc, uint8_t **recv)
{
    const int P = hb_size, me = hb_rank;
    uint64_t *a = hb_malloc((x->nruns ? x->nruns : 1) * (size_t)(P + 1) * sizeof *a);
    hb_xchg xc;
    int rc = hb_xchg_init(&xc, XBLOCK);
    if (rc == 0 && !a) rc = HB_EINTERNAL;
    /* a[i*(P+1) + d] is the first term of run i that rank d owns */
    for (size_t i = 0; rc == 0 && i < x->nruns; i++) {
        runv v;
        ix_view(x->runs[i], &v);
        uint64_t *ai = a + i * (size_t)(P + 1);
        ai[0] = 0, ai[P] = v.h->n_terms;
        for (int d = 1; d < P; d++) {
            const sample *s = split[d - 1] < SIZE_MAX ? &smp[split[d - 1]] : NULL;
            ai[d] = s ? ix_lower_bound(&v, ai[d - 1], v.h->n_terms, s->s, s->len) : v.h->n_terms;
        }
        for (int d = 0; d < P; d++)
            if (d != me && ai[d + 1] > ai[d]) xc.scount[d] += ix_slice_bytes(&v, ai[d], ai[d + 1], x->positions);
    }
    if (rc == 0) rc = hb_xchg_layout(&xc);
    uint8_t *send = NULL, *rbuf = NULL;
    size_t scap = 0, rcap = 0;
    if (rc == 0) rc = hb_xchg_reserve((void **)&send, &scap, xc.stotal, 1);
    for (int d = 0; rc == 0 && d < P; d++) {
        uint8_t *p = send + xc.sdispl[d];
        for (size_t i = 0; d != me && i < x->nruns; i++) {
            runv v;
            ix_view(x->runs[i], &v);
            const uint64_t *ai = a + i * (size_t)(P + 1);
            if (ai[d + 1] == ai[d]) continue;
            ix_put_slice(&v, ai[d], ai[d + 1], x->positions, p);
            p += ix_slice_bytes(&v, ai[d], ai[d + 1], x->positions);
        }
    }
    rc = hb_agree(rc);
    const hb_xchg_array xa = {send, (void **)&rbuf, &rcap, 1};
    if (rc == 0) rc = hb_xchg_run(&xc, &xa, 1);
    free(send);
    /* this rank's sources: its own runs' slices, then what it received, rank by rank */
    size_t ns = 0, cap = 1;
    source *s = hb_malloc(sizeof *s); /* never NULL, even with no source: callers sort it */
    if (rc == 0 && !s) rc = HB_EINTERNAL;
    for (size_t i = 0; rc == 0 && i < x->nruns; i++) {
        const uint64_t *ai = a + i * (size_t)(P + 1);
        if (ai[me + 1] == ai[me]) continue;
        if (hb_grow((void **)&s, &cap, ns + 1, sizeof *s)) rc = hb_err_set(HB_EINTERNAL, "index", "out of memory");
        else ix_view(x->runs[i], &s[ns].v), s[ns].t0 = ai[me], s[ns].t1 = ai[me + 1], ns++;
    }
    const uint8_t *p = rbuf;
    for (int d = 0; rc == 0 && d < P; d++) {
        const uint8_t *end = p + xc.rcount[d];
        while (rc == 0 && p < end) {
            if (hb_grow((void **)&s, &cap, ns + 1, sizeof *s)) {
                rc = hb_err_set(HB_EINTERNAL, "index", "out of memory");
            } else if (ix_check_run(p, (size_t)(end - p), x->positions, &s[ns].v) != 0) {
                rc = hb_err_set(HB_EINTERNAL, "index", "a slice received from rank %d is malformed", d);
            } else {
                s[ns].t0 = 0, s[ns].t1 = s[ns].v.h->n_terms;
                p += s[ns++].v.h->bytes;
            }
        }
    }
    free(a);
    hb_xchg_free(&xc);
    *src = s;
    *nsrc = ns;
    *recv = rbuf;
    return hb_agree(rc);
}
