/* map's work (see index.c): one chunk of documents inverted into a run. Each thread has a
 * part (a lexer it keeps from chunk to chunk and its share of the chunk's documents); the
 * parts' sorted term lists are merged into the run's order and each part scatters its
 * postings into their slots. Nothing here is collective. */
#include "kernels/index/internal.h"

#include "core/hb.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Sizes the per-term arrays of a part to its lexer's vocabulary. */
static int part_fit_terms(part *pt)
{
    size_t need = hb_lexer_terms(pt->lx);
    if (need <= pt->cap) return 0;
    size_t c = pt->cap ? pt->cap : 1024;
    while (c < need) c *= 2;
    /* aligned, so that a term's state is one cache line */
    tstate *q = aligned_alloc(64, c * sizeof *q);
    if (!q) return -1;
    if (pt->cap) memcpy(q, pt->ts, pt->cap * sizeof *q);
    memset(q + pt->cap, 0, (c - pt->cap) * sizeof *q); /* stamp 0 is never current */
    free(pt->ts);
    pt->ts = q;
    pt->cap = c;
    return 0;
}

/* Room for need postings in the part's three posting arrays. */
static int part_fit_postings(part *pt, size_t need)
{
    if (need <= pt->capp) return 0;
    size_t c = pt->capp ? pt->capp : 4096;
    while (c < need) c *= 2;
    uint32_t **arr[3] = {&pt->pl, &pt->pd, &pt->ptf};
    for (int i = 0; i < 3; i++) {
        uint32_t *q = realloc(*arr[i], c * sizeof *q);
        if (!q) return -1;
        *arr[i] = q;
    }
    pt->capp = c;
    return 0;
}

/* The local index of lexer term id in the current chunk, added on first sight. */
static inline int local_term(part *pt, uint32_t id, uint32_t *l)
{
    tstate *t = &pt->ts[id];
    if (t->lstamp == pt->chunkstamp) return *l = t->lid, 0;
    if (pt->nl == pt->capl) {
        uint32_t c = pt->capl ? pt->capl * 2 : 1024;
        lterm *a = realloc(pt->lt, c * sizeof *a);
        if (!a) return -1;
        pt->lt = a;
        pt->capl = c;
    }
    *l = pt->nl++;
    t->lstamp = pt->chunkstamp;
    t->lid = *l;
    t->df = 0;
    t->cf = 0;
    pt->lt[*l].id = id;
    return 0;
}

/* Tokenizes documents [d0, d1) of the chunk into the part's postings. */
static int part_invert(ix *x, part *pt)
{
    const int positions = x->positions;
    pt->nl = pt->np = pt->npos = 0;
    pt->empty_docs = 0;
    pt->before = *hb_lexer_counts(pt->lx);
    if (++pt->chunkstamp == 0) { /* wrapped: forget every stamp */
        for (size_t i = 0; i < pt->cap; i++) pt->ts[i].lstamp = 0;
        pt->chunkstamp = 1;
    }
    for (int64_t d = pt->d0; d < pt->d1; d++) {
        const uint8_t *text = x->buf + (x->off[d] - x->off[0]);
        size_t len = (size_t)(x->off[d + 1] - x->off[d]);
        const uint32_t *ids;
        size_t n;
        HB_CALL(hb_lexer_run(pt->lx, text, len, &ids, &n));
        if (n > UINT32_MAX) {
            pt->doc_overflow = (uint64_t)d + 1;
            return HB_EDATA;
        }
        if (part_fit_terms(pt) || hb_grow((void **)&pt->touched, &pt->captouched, n, sizeof *pt->touched))
            return HB_EINTERNAL;
        if (positions && pt->npos + n > UINT32_MAX) { /* tf holds position cursors */
            pt->doc_overflow = (uint64_t)d + 1;
            return HB_EDATA;
        }
        if (++pt->docstamp == 0) {
            for (size_t i = 0; i < pt->cap; i++) pt->ts[i].stamp = 0;
            pt->docstamp = 1;
        }
        const uint32_t ds = pt->docstamp;
        tstate *ts = pt->ts;
        uint32_t *touched = pt->touched;
        size_t nt = 0, kept = 0;
        for (size_t k = 0; k < n; k++) {
            uint32_t id = ids[k];
            if (k + 16 < n && ids[k + 16] < HB_TOK_STOP) __builtin_prefetch(&ts[ids[k + 16]]);
            if (id >= HB_TOK_STOP) continue;
            kept++;
            if (ts[id].stamp != ds) ts[id].stamp = ds, ts[id].tf = 0, touched[nt++] = id;
            ts[id].tf++;
        }
        x->doclen[d] = (uint32_t)kept;
        pt->empty_docs += kept == 0;
        if (part_fit_postings(pt, pt->np + nt)) return HB_EINTERNAL;
        if (positions && hb_grow((void **)&pt->ppos, &pt->cappos, pt->npos + kept, sizeof *pt->ppos))
            return HB_EINTERNAL;
        for (size_t j = 0; j < nt; j++) {
            uint32_t id = touched[j], l, tf = ts[id].tf;
            if (local_term(pt, id, &l)) return HB_EINTERNAL;
            pt->pl[pt->np] = l;
            pt->pd[pt->np] = (uint32_t)d;
            pt->ptf[pt->np] = tf;
            pt->np++;
            ts[id].df++;
            ts[id].cf += tf;
            if (positions) ts[id].tf = (uint32_t)pt->npos, pt->npos += tf; /* now a cursor into ppos */
        }
        if (positions)
            for (size_t k = 0; k < n; k++)
                if (ids[k] < HB_TOK_STOP) pt->ppos[ts[ids[k]].tf++] = (uint32_t)k;
    }
    for (uint32_t l = 0; l < pt->nl; l++) {
        const tstate *t = &pt->ts[pt->lt[l].id];
        pt->lt[l].df = t->df;
        pt->lt[l].cf = t->cf;
    }
    return 0;
}

typedef struct skey {
    uint64_t pre;
    const uint8_t *s;
    uint32_t len, l;
} skey;

/* Terms by their first 8 bytes, then by all of them. */
static int skey_cmp(const void *a, const void *b)
{
    const skey *x = a, *y = b;
    if (x->pre != y->pre) return x->pre < y->pre ? -1 : 1;
    return bytes_cmp(x->s, x->len, y->s, y->len);
}

/* The part's chunk terms in byte order, as local indices in pt->order. */
static int part_sort(part *pt)
{
    skey *k = malloc((pt->nl ? pt->nl : 1) * sizeof *k);
    size_t *o = realloc(pt->order, (pt->nl ? pt->nl : 1) * sizeof *o);
    if (o) pt->order = o;
    if (!k || !o) return free(k), HB_EINTERNAL;
    for (uint32_t l = 0; l < pt->nl; l++) {
        k[l].s = hb_lexer_term(pt->lx, pt->lt[l].id, &k[l].len);
        k[l].pre = prefix8(k[l].s, k[l].len);
        k[l].l = l;
    }
    qsort(k, pt->nl, sizeof *k, skey_cmp);
    for (uint32_t i = 0; i < pt->nl; i++) pt->order[i] = k[i].l;
    free(k);
    return 0;
}

/* Merges the parts' sorted term lists into the run's term order and builds the run:
 * terms and offsets here, postings scattered by the parts afterwards. */
static int assemble(ix *x, int64_t c, int64_t n, uint8_t **blob)
{
    const int T = x->nparts;
    size_t *at = calloc((size_t)T, sizeof *at);
    if (!at) return HB_EINTERNAL;
    for (int p = 0; p < T; p++) {
        part *pt = &x->parts[p];
        uint32_t *g = realloc(pt->glob, (pt->nl ? pt->nl : 1) * sizeof *g);
        if (!g) return free(at), HB_EINTERNAL;
        pt->glob = g;
    }
    /* pass 1: the merged order; the run index of every part's terms */
    uint64_t nterms = 0, tbytes = 0, nnz = 0, ntf = 0;
    for (;;) {
        int best = -1;
        const uint8_t *bs = NULL;
        uint32_t bl = 0;
        for (int p = 0; p < T; p++) {
            part *pt = &x->parts[p];
            if (at[p] == pt->nl) continue;
            uint32_t len;
            const uint8_t *s = hb_lexer_term(pt->lx, pt->lt[pt->order[at[p]]].id, &len);
            if (best < 0 || bytes_cmp(s, len, bs, bl) < 0) best = p, bs = s, bl = len;
        }
        if (best < 0) break;
        for (int p = best; p < T; p++) {
            part *pt = &x->parts[p];
            if (at[p] == pt->nl) continue;
            uint32_t len, l = (uint32_t)pt->order[at[p]];
            const uint8_t *s = hb_lexer_term(pt->lx, pt->lt[l].id, &len);
            if (bytes_cmp(s, len, bs, bl) != 0) continue;
            pt->glob[l] = (uint32_t)nterms;
            nnz += pt->lt[l].df;
            ntf += pt->lt[l].cf;
            at[p]++;
        }
        nterms++;
        tbytes += bl;
    }
    run_hdr h = {.chunk = (uint64_t)c, .doc0 = (uint64_t)(c * x->ctx->chunk_rows), .n_docs = (uint64_t)n,
                 .n_terms = nterms, .term_bytes = tbytes, .nnz = nnz, .ntf = ntf, .npos = x->positions ? ntf : 0,
                 .settings = x->settings};
    memcpy(h.magic, RUN_MAGIC, 8);
    run_layout L;
    ix_layout(&h, &L);
    h.bytes = L.total;
    for (int p = 0; p < T; p++) {
        part *pt = &x->parts[p];
        const hb_tok_counts *now = hb_lexer_counts(pt->lx);
        h.tokens += now->tokens - pt->before.tokens;
        h.too_long += now->too_long - pt->before.too_long;
        h.stop += now->stop - pt->before.stop;
        h.invalid_bytes += now->invalid_bytes - pt->before.invalid_bytes;
        h.empty_docs += pt->empty_docs;
    }
    uint8_t *b = malloc(L.total);
    if (!b) return free(at), HB_EINTERNAL;
    memset(b, 0, L.doc); /* header, offsets and terms, with their padding */
    ix_zero_tails(b, &h, &L);
    memcpy(b, &h, sizeof h);
    runv v;
    ix_view(b, &v);
    memcpy((void *)v.doclen, x->doclen, (size_t)n * sizeof *x->doclen);
    uint64_t *toff = (uint64_t *)v.toff, *poff = (uint64_t *)v.poff, *xoff = (uint64_t *)v.xoff;
    uint8_t *terms = (uint8_t *)v.terms;
    /* pass 2: per run term counts, then the offsets and the parts' slots, parts in order */
    for (int p = 0; p < T; p++) {
        part *pt = &x->parts[p];
        for (uint32_t l = 0; l < pt->nl; l++) {
            uint32_t u = pt->glob[l], len;
            hb_lexer_term(pt->lx, pt->lt[l].id, &len);
            poff[u + 1] += pt->lt[l].df;
            xoff[u + 1] += pt->lt[l].cf;
            toff[u + 1] = len;
        }
    }
    for (uint64_t u = 0; u < nterms; u++) toff[u + 1] += toff[u], poff[u + 1] += poff[u], xoff[u + 1] += xoff[u];
    uint64_t *pc = malloc((nterms ? nterms : 1) * sizeof *pc), *xc = malloc((nterms ? nterms : 1) * sizeof *xc);
    if (!pc || !xc) return free(pc), free(xc), free(at), free(b), HB_EINTERNAL;
    memcpy(pc, poff, nterms * sizeof *pc);
    memcpy(xc, xoff, nterms * sizeof *xc);
    for (int p = 0; p < T; p++) {
        part *pt = &x->parts[p];
        for (uint32_t l = 0; l < pt->nl; l++) {
            uint32_t u = pt->glob[l], len;
            const uint8_t *s = hb_lexer_term(pt->lx, pt->lt[l].id, &len);
            memcpy(terms + toff[u], s, len);
            pt->lt[l].post = pc[u], pc[u] += pt->lt[l].df;
            pt->lt[l].posn = xc[u], xc[u] += pt->lt[l].cf;
        }
    }
    free(pc), free(xc), free(at);
    *blob = b;
    return 0;
}

/* Writes a part's postings into their slots of the run. */
static void part_scatter(ix *x, part *pt, uint8_t *blob)
{
    runv v;
    ix_view(blob, &v);
    uint32_t *doc = (uint32_t *)v.doc, *tf = (uint32_t *)v.tf, *pos = (uint32_t *)v.pos;
    size_t xs = 0;
    for (size_t j = 0; j < pt->np; j++) {
        uint32_t l = pt->pl[j];
        lterm *t = &pt->lt[l];
        uint64_t s = t->post++;
        doc[s] = pt->pd[j];
        tf[s] = pt->ptf[j];
        if (x->positions) { /* a few positions each: a loop beats a call to memcpy */
            uint32_t *dst = pos + t->posn;
            const uint32_t *src = pt->ppos + xs, n = pt->ptf[j];
            for (uint32_t k = 0; k < n; k++) dst[k] = src[k];
            t->posn += n;
            xs += n;
        }
    }
}

int ix_invert(ix *x, int64_t c, int64_t start, int64_t n, uint8_t **blob)
{
    /* documents relative to the chunk; parts cut at equal shares of the bytes */
    const int T = x->nparts;
    const int64_t b0 = x->off[0], bytes = x->off[n] - b0;
    int64_t d = 0;
    for (int p = 0; p < T; p++) {
        int64_t cut = b0 + bytes * (p + 1) / T;
        x->parts[p].d0 = d;
        while (d < n && (p == T - 1 || x->off[d] < cut)) d++;
        x->parts[p].d1 = d;
    }
    int rc = 0;
    uint8_t *b = NULL;
#pragma omp parallel num_threads(T)
    {
        for (int p = omp_get_thread_num(); p < T; p += omp_get_num_threads()) {
            part *pt = &x->parts[p];
            pt->rc = part_invert(x, pt);
            if (pt->rc == 0) pt->rc = part_sort(pt);
        }
#pragma omp barrier
#pragma omp single
        {
            for (int p = 0; p < T && rc == 0; p++) rc = x->parts[p].rc;
            if (rc == 0) rc = assemble(x, c, n, &b);
        }
        if (rc == 0)
            for (int p = omp_get_thread_num(); p < T; p += omp_get_num_threads()) part_scatter(x, &x->parts[p], b);
    }
    for (int p = 0; p < T; p++)
        if (x->parts[p].doc_overflow) {
            free(b);
            return hb_err_set(HB_EDATA, x->ctx->input,
                              "more than 2^32-1 tokens in chunk %lld at document %lld; lower chunk_rows",
                              (long long)c, (long long)(start + (int64_t)x->parts[p].doc_overflow - 1));
        }
    if (rc) {
        free(b);
        return hb_err_set(rc, "index", "out of memory inverting chunk %lld", (long long)c);
    }
    *blob = b;
    return 0;
}
