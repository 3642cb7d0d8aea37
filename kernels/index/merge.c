/* finalize's merge and write (see index.c): the slices of this rank's terms merged with a
 * heap, ties broken by chunk so that postings come out in document order, one block per
 * thread; then every rank writes its part of each array at offsets from MPI_Exscan. */
#include "kernels/index/internal.h"

#include "core/hb.h"
#include "kernels/index/format.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* A source's current term in the merge heap. */
typedef struct mcur {
    uint64_t pre, t;
    const uint8_t *s;
    uint32_t len, src;
} mcur;

/* Not collective. Heap order: term bytes, then source (chunk) order. */
static inline int mless(const mcur *a, const mcur *b)
{
    if (a->pre != b->pre) return a->pre < b->pre;
    /* equal first 8 bytes (zero-padded): only the rest can differ */
    int c;
    if (a->len <= 8 && b->len <= 8) c = (a->len > b->len) - (a->len < b->len);
    else if (a->len >= 8 && b->len >= 8) c = bytes_cmp(a->s + 8, a->len - 8, b->s + 8, b->len - 8);
    else c = bytes_cmp(a->s, a->len, b->s, b->len);
    return c ? c < 0 : a->src < b->src;
}

/* Not collective. Restores the heap below i. */
static void sift_down(mcur *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && mless(&h[l], &h[m])) m = l;
        if (l + 1 < n && mless(&h[l + 1], &h[m])) m = l + 1;
        if (m == i) return;
        mcur t = h[i];
        h[i] = h[m], h[m] = t;
        i = m;
    }
}

/* Not collective. Points a cursor at term t of v. */
static void set_cur(mcur *c, const runv *v, uint64_t t)
{
    c->t = t;
    c->s = run_term(v, t, &c->len);
    c->pre = prefix8(c->s, c->len);
}

/* Not collective. The term range [a, b) of v that lies in [lo, hi) (NULL: unbounded),
 * within [t0, t1). */
static void clip(const runv *v, uint64_t t0, uint64_t t1, const sample *lo, const sample *hi, uint64_t *a, uint64_t *b)
{
    *a = lo ? ix_lower_bound(v, t0, t1, lo->s, lo->len) : t0;
    *b = hi ? ix_lower_bound(v, *a, t1, hi->s, hi->len) : t1;
}

/* Not collective. Merges terms [lo, hi) of the sources (sorted by chunk) into out. */
static int merge_range(const ix *x, const source *src, size_t ns, const sample *lo, const sample *hi, block *out)
{
    memset(out, 0, sizeof *out);
    uint64_t *ra = malloc((ns ? ns : 1) * 2 * sizeof *ra);
    mcur *heap = malloc((ns ? ns : 1) * sizeof *heap);
    if (!ra || !heap) return free(ra), free(heap), -1;
    uint64_t mt = 0, mb = 0, mn = 0, mp = 0;
    size_t n = 0;
    for (size_t i = 0; i < ns; i++) {
        const runv *v = &src[i].v;
        clip(v, src[i].t0, src[i].t1, lo, hi, &ra[2 * i], &ra[2 * i + 1]);
        uint64_t a = ra[2 * i], b = ra[2 * i + 1];
        mt += b - a, mb += v->toff[b] - v->toff[a], mn += v->poff[b] - v->poff[a], mp += v->xoff[b] - v->xoff[a];
        if (a < b) {
            heap[n].src = (uint32_t)i;
            set_cur(&heap[n], v, a);
            n++;
        }
    }
    const size_t dsz = x->wide ? 8 : 4;
    out->terms = malloc(mb ? mb : 1);
    out->tlen = malloc((mt ? mt : 1) * 4), out->df = malloc((mt ? mt : 1) * 4);
    out->cf = malloc((mt ? mt : 1) * 8);
    out->doc = malloc((mn ? mn : 1) * dsz), out->tf = malloc((mn ? mn : 1) * 4);
    out->pos = malloc((x->positions && mp ? mp : 1) * 4);
    int rc = out->terms && out->tlen && out->df && out->cf && out->doc && out->tf && out->pos ? 0 : -1;
    for (size_t i = n / 2; rc == 0 && i-- > 0;) sift_down(heap, n, i);
    uint32_t *d32 = out->doc;
    uint64_t *d64 = out->doc;
    while (rc == 0 && n > 0) {
        const uint8_t *term = heap[0].s;
        const uint32_t tl = heap[0].len;
        const uint64_t pre = heap[0].pre;
        uint64_t df = 0, cf = 0;
        memcpy(out->terms + out->tbytes, term, tl);
        do {
            mcur *c = &heap[0];
            const runv *v = &src[c->src].v;
            const uint64_t t = c->t, p0 = v->poff[t], p1 = v->poff[t + 1], x0 = v->xoff[t], x1 = v->xoff[t + 1];
            const uint64_t doc0 = v->h->doc0;
            if (x->wide)
                for (uint64_t j = p0; j < p1; j++) d64[out->nnz + j - p0] = doc0 + v->doc[j];
            else
                for (uint64_t j = p0; j < p1; j++) d32[out->nnz + j - p0] = (uint32_t)(doc0 + v->doc[j]);
            memcpy(out->tf + out->nnz, v->tf + p0, (p1 - p0) * 4);
            if (x->positions) memcpy(out->pos + out->npos, v->pos + x0, (x1 - x0) * 4);
            out->nnz += p1 - p0;
            out->npos += x->positions ? x1 - x0 : 0;
            df += p1 - p0;
            cf += x1 - x0;
            if (t + 1 < ra[2 * c->src + 1]) set_cur(c, v, t + 1);
            else heap[0] = heap[--n];
            sift_down(heap, n, 0);
        } while (n > 0 && heap[0].pre == pre && heap[0].len == tl && (tl <= 8 || memcmp(heap[0].s, term, tl) == 0));
        if (df > UINT32_MAX) rc = -2;
        out->tlen[out->nterms] = tl;
        out->df[out->nterms] = (uint32_t)df;
        out->cf[out->nterms] = cf;
        out->nterms++;
        out->tbytes += tl;
    }
    free(ra), free(heap);
    return rc;
}

int ix_merge(const ix *x, const source *src, size_t nsrc, const sample *smp, size_t nsmp, size_t i0, size_t i1,
             block *blk)
{
    const int T = x->nparts;
    size_t *tsplit = hb_malloc((size_t)T * sizeof *tsplit);
    if (!tsplit) return HB_EINTERNAL;
    ix_cut_samples(smp, i0, i1, T, tsplit);
    int fail = 0;
#pragma omp parallel for schedule(static, 1) num_threads(T) reduction(min : fail)
    for (int k = 0; k < T; k++) {
        const sample *lo = k == 0 ? NULL : tsplit[k - 1] < nsmp ? &smp[tsplit[k - 1]] : NULL;
        const sample *hi = k == T - 1 ? NULL : tsplit[k] < nsmp ? &smp[tsplit[k]] : NULL;
        int empty = (k > 0 && !lo) || (k > 0 && lo && hi && tsplit[k - 1] == tsplit[k]);
        int r = empty ? (memset(&blk[k], 0, sizeof blk[k]), 0) : merge_range(x, src, nsrc, lo, hi, &blk[k]);
        fail = r < fail ? r : fail;
    }
    free(tsplit);
    if (fail == -2) return hb_err_set(HB_EDATA, "index", "a term is in more than 2^32-1 documents (df is uint32)");
    if (fail) return hb_err_set(HB_EINTERNAL, "index", "out of memory merging the postings");
    return 0;
}

void ix_free_block(block *b)
{
    free(b->terms), free(b->tlen), free(b->df), free(b->cf), free(b->doc), free(b->tf), free(b->pos);
    memset(b, 0, sizeof *b);
}

int ix_write_documents(ix *x, hb_out *out)
{
    const uint64_t N = (uint64_t)x->N;
    const int has_ids = x->merged ? x->has_ids : x->docid != NULL;
    if (has_ids) /* made first: readers list the document's id before its length */
        HB_CALL(hb_out_dataset(out, HB_INDEX_DOC_ID, HB_I64, 1, &N, NULL, "document id from /corpus/doc_id"));
    HB_CALL(hb_out_dataset(out, HB_INDEX_DOC_LENGTH, HB_U32, 1, &N, "1", "tokens kept per document"));
    hb_oset *dl = NULL, *di = NULL;
    int rc = hb_oset_open(out, HB_INDEX_DOC_LENGTH, &dl);
    if (has_ids && rc == 0) rc = hb_oset_open(out, HB_INDEX_DOC_ID, &di);
    int64_t *ids = NULL;
    size_t idcap = 0;
    for (size_t i = 0; rc == 0 && i < x->nruns;) {
        size_t j = i + 1;
        const run_hdr *h = (const run_hdr *)x->runs[i];
        /* runs of consecutive documents: one read and write of their ids */
        while (j < x->nruns && ((const run_hdr *)x->runs[j])->doc0 ==
                                   ((const run_hdr *)x->runs[j - 1])->doc0 + ((const run_hdr *)x->runs[j - 1])->n_docs)
            j++;
        for (size_t k = i; rc == 0 && k < j; k++) {
            runv v;
            ix_view(x->runs[k], &v);
            rc = hb_oset_write(dl, HB_U32, v.h->doc0, v.h->n_docs, v.doclen);
        }
        const run_hdr *last = (const run_hdr *)x->runs[j - 1];
        uint64_t n = last->doc0 + last->n_docs - h->doc0;
        if (rc == 0 && di && hb_grow((void **)&ids, &idcap, n, sizeof *ids)) rc = HB_EINTERNAL;
        if (rc == 0 && di && x->merged) memcpy(ids, x->ids + h->doc0, n * sizeof *ids);
        else if (rc == 0 && di) rc = hb_dset_read(x->docid, HB_I64, (int64_t)h->doc0, (int64_t)n, ids);
        if (rc == 0 && di) rc = hb_oset_write(di, HB_I64, h->doc0, n, ids);
        i = j;
    }
    free(ids);
    hb_oset_close(dl);
    hb_oset_close(di);
    return hb_agree(rc);
}

/* Bases of this rank's part of each array, and the totals. */
typedef struct sizes {
    uint64_t v[4]; /* terms, term bytes, postings, positions */
} sizes;

/* Not collective. Writes the thread blocks of this rank at the bases of *base. */
static int write_blocks(ix *x, hb_oset *const *ds, const block *blk, sizes base, const sizes *tot)
{
    enum { TERMS, TOFF, DF, CF, POFF, DOC, TF, XOFF, POS };
    const int last = hb_rank == hb_size - 1, xwide = tot->v[3] > UINT32_MAX;
    const size_t SCR = 1 << 20;
    uint64_t *scr = malloc((SCR + 1) * sizeof *scr);
    int rc = scr ? 0 : HB_EINTERNAL;
    for (int k = 0; rc == 0 && k < x->nparts; k++) {
        const block *b = &blk[k];
        rc = hb_oset_write(ds[TERMS], HB_U8, base.v[1], b->tbytes, b->terms);
        if (rc == 0) rc = hb_oset_write(ds[DF], HB_U32, base.v[0], b->nterms, b->df);
        if (rc == 0) rc = hb_oset_write(ds[CF], HB_U64, base.v[0], b->nterms, b->cf);
        if (rc == 0) rc = hb_oset_write(ds[DOC], x->wide ? HB_U64 : HB_U32, base.v[2], b->nnz, b->doc);
        if (rc == 0) rc = hb_oset_write(ds[TF], HB_U32, base.v[2], b->nnz, b->tf);
        if (rc == 0 && x->positions) rc = hb_oset_write(ds[POS], HB_U32, base.v[3], b->npos, b->pos);
        /* offsets: running sums from the bases, a scratch buffer at a time */
        uint64_t tb = base.v[1], pb = base.v[2], xb = base.v[3];
        for (uint64_t a = 0; rc == 0 && a < b->nterms; a += SCR) {
            uint64_t n = b->nterms - a < SCR ? b->nterms - a : SCR;
            for (uint64_t i = 0; i < n; i++) scr[i] = tb, tb += b->tlen[a + i];
            rc = hb_oset_write(ds[TOFF], HB_U64, base.v[0] + a, n, scr);
            for (uint64_t i = 0; rc == 0 && i < n; i++) scr[i] = pb, pb += b->df[a + i];
            if (rc == 0) rc = hb_oset_write(ds[POFF], HB_U64, base.v[0] + a, n, scr);
        }
        uint32_t *scr32 = (uint32_t *)scr;
        for (uint64_t a = 0; rc == 0 && x->positions && a < b->nnz; a += SCR) {
            uint64_t n = b->nnz - a < SCR ? b->nnz - a : SCR;
            if (xwide)
                for (uint64_t i = 0; i < n; i++) scr[i] = xb, xb += b->tf[a + i];
            else
                for (uint64_t i = 0; i < n; i++) scr32[i] = (uint32_t)xb, xb += b->tf[a + i];
            rc = hb_oset_write(ds[XOFF], xwide ? HB_U64 : HB_U32, base.v[2] + a, n, scr);
        }
        base.v[0] += b->nterms, base.v[1] += b->tbytes, base.v[2] += b->nnz, base.v[3] += b->npos;
    }
    /* the closing entries of the offsets arrays */
    if (rc == 0 && last) rc = hb_oset_write(ds[TOFF], HB_U64, tot->v[0], 1, &tot->v[1]);
    if (rc == 0 && last) rc = hb_oset_write(ds[POFF], HB_U64, tot->v[0], 1, &tot->v[2]);
    const uint32_t npos32 = (uint32_t)tot->v[3];
    if (rc == 0 && last && x->positions)
        rc = hb_oset_write(ds[XOFF], xwide ? HB_U64 : HB_U32, tot->v[2], 1, xwide ? (const void *)&tot->v[3] : &npos32);
    free(scr);
    return rc;
}

int ix_write_index(ix *x, hb_out *out, const block *blk)
{
    sizes mine = {{0}}, base = {{0}}, tot;
    for (int k = 0; k < x->nparts; k++) {
        mine.v[0] += blk[k].nterms, mine.v[1] += blk[k].tbytes;
        mine.v[2] += blk[k].nnz, mine.v[3] += blk[k].npos;
    }
    MPI_Exscan(mine.v, base.v, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (hb_rank == 0) memset(&base, 0, sizeof base);
    MPI_Allreduce(mine.v, tot.v, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    const uint64_t V = tot.v[0], V1 = V + 1, TB = tot.v[1], NNZ = tot.v[2], NNZ1 = NNZ + 1, NPOS = tot.v[3];
    static const char *const names[] = {HB_INDEX_TERMS, HB_INDEX_TERM_OFFSETS, HB_INDEX_DF,
                                        HB_INDEX_CF, HB_INDEX_POSTINGS_OFFSETS, HB_INDEX_POSTINGS_DOC,
                                        HB_INDEX_POSTINGS_TF, HB_INDEX_POSITIONS_OFFSETS, HB_INDEX_POSITIONS};
    HB_CALL(hb_out_dataset(out, names[0], HB_U8, 1, &TB, "1",
                           "UTF-8 bytes of the terms, concatenated in byte order; term i is "
                           "terms[term_offsets[i]:term_offsets[i+1]]"));
    HB_CALL(hb_out_dataset(out, names[1], HB_U64, 1, &V1, "1",
                           "start of each term in terms, and their length at the end"));
    HB_CALL(hb_out_dataset(out, names[2], HB_U32, 1, &V, "1", "documents containing the term"));
    HB_CALL(hb_out_dataset(out, names[3], HB_U64, 1, &V, "1", "occurrences of the term in the corpus"));
    HB_CALL(hb_out_dataset(out, names[4], HB_U64, 1, &V1, "1",
                           "postings of term i are [postings_offsets[i], postings_offsets[i+1])"));
    HB_CALL(hb_out_dataset(out, names[5], x->wide ? HB_U64 : HB_U32, 1, &NNZ, "1",
                           "document numbers (0 ... N-1), ascending within a term"));
    HB_CALL(hb_out_dataset(out, names[6], HB_U32, 1, &NNZ, "1", "occurrences of the term in the document"));
    if (x->positions) {
        HB_CALL(hb_out_dataset(out, names[7], NPOS > UINT32_MAX ? HB_U64 : HB_U32, 1, &NNZ1, "1",
                               "positions of posting j are positions[positions_offsets[j]:positions_offsets[j+1]]"));
        HB_CALL(hb_out_dataset(out, names[8], HB_U32, 1, &NPOS, "1",
                               "token positions in the document (every token counts, dropped ones too), ascending"));
    }
    hb_oset *ds[9] = {NULL};
    int rc = 0;
    for (int i = 0; i < (x->positions ? 9 : 7); i++)
        if (hb_oset_open(out, names[i], &ds[i]) != 0 && rc == 0) rc = HB_EIO;
    if (rc == 0) rc = write_blocks(x, ds, blk, base, &tot);
    for (int i = 0; i < 9; i++) hb_oset_close(ds[i]);
    return hb_agree(rc);
}

int ix_write_attributes(ix *x, hb_out *out, const uint64_t *c, uint64_t n_terms, uint64_t nnz)
{
    const char *g = HB_INDEX_GROUP;
    double avg = x->N > 0 ? (double)c[0] / (double)x->N : 0.0;
    HB_CALL(hb_out_attr_u64(out, g, HB_INDEX_ATTR_N_DOCS, (uint64_t)x->N));
    HB_CALL(hb_out_attr_u64(out, g, HB_INDEX_ATTR_N_TERMS, n_terms));
    HB_CALL(hb_out_attr_u64(out, g, "n_postings", nnz));
    HB_CALL(hb_out_attr_u64(out, g, HB_INDEX_ATTR_TOTAL_TOKENS, c[0]));
    HB_CALL(hb_out_attr_f64(out, g, "avg_doc_length", &avg, 1));
    HB_CALL(hb_out_attr_u64(out, g, "tokens_seen", c[1]));
    HB_CALL(hb_out_attr_u64(out, g, "tokens_too_long", c[2]));
    HB_CALL(hb_out_attr_u64(out, g, "tokens_stopwords", c[3]));
    HB_CALL(hb_out_attr_u64(out, g, "invalid_bytes", c[4]));
    HB_CALL(hb_out_attr_u64(out, g, "empty_docs", c[5]));
    HB_CALL(hb_out_attr_str(out, g, "normalization", HB_TOK_NORMALIZATION));
    HB_CALL(hb_out_attr_str(out, g, "unicode_version", hb_tok_unicode_version()));
    HB_CALL(hb_out_attr_str(out, g, "token_pattern", "maximal runs of general categories L*, M*, N*"));
    HB_CALL(hb_out_attr_str(out, g, HB_INDEX_ATTR_STEMMER, x->stemmer));
    HB_CALL(hb_out_attr_str(out, g, "stopwords", x->stopwords));
    HB_CALL(hb_out_attr_i64(out, g, HB_INDEX_ATTR_MAX_TOKEN_BYTES, x->max_bytes));
    HB_CALL(hb_out_attr_i64(out, g, HB_INDEX_ATTR_POSITIONS, x->positions));
    size_t sl;
    const char *sw = hb_analyzer_stopwords(x->an, &sl);
    if (strcmp(x->stopwords, "none") != 0) {
        const uint64_t n = sl;
        HB_CALL(hb_out_write(out, HB_INDEX_STOPWORDS, HB_U8, 1, &n, 0, hb_rank == 0 ? n : 0, sw ? sw : "", "1",
                             "the stop words, normalized, sorted by bytes, each followed by a newline"));
    }
    HB_INFO("index: %lld documents, %llu terms, %llu postings, %llu tokens kept of %llu (%llu too long, %llu stop "
            "words), %llu invalid bytes",
            (long long)x->N, (unsigned long long)n_terms, (unsigned long long)nnz, (unsigned long long)c[0],
            (unsigned long long)c[1], (unsigned long long)c[2], (unsigned long long)c[3], (unsigned long long)c[4]);
    return 0;
}
