/* The run format (see internal.h): a chunk's inverted postings in one block of memory,
 * which is also its checkpoint form and, cut into slices, what ranks send each other.
 * Nothing here is collective. */
#include "kernels/index/internal.h"

void ix_layout(const run_hdr *h, run_layout *L)
{
    size_t o = pad8(sizeof *h);
    L->doclen = o, o += pad8(h->n_docs * 4);
    L->toff = o, o += (h->n_terms + 1) * 8;
    L->poff = o, o += (h->n_terms + 1) * 8;
    L->xoff = o, o += (h->n_terms + 1) * 8;
    L->terms = o, o += pad8(h->term_bytes);
    L->doc = o, o += pad8(h->nnz * 4);
    L->tf = o, o += pad8(h->nnz * 4);
    L->pos = o, o += pad8(h->npos * 4);
    L->total = o;
}

void ix_zero_tails(uint8_t *b, const run_hdr *h, const run_layout *L)
{
    memset(b + L->doc + h->nnz * 4, 0, L->tf - L->doc - h->nnz * 4);
    memset(b + L->tf + h->nnz * 4, 0, L->pos - L->tf - h->nnz * 4);
    memset(b + L->pos + h->npos * 4, 0, L->total - L->pos - h->npos * 4);
}

void ix_view(const void *blob, runv *v)
{
    const uint8_t *b = blob;
    v->h = blob;
    run_layout L;
    ix_layout(v->h, &L);
    v->doclen = (const uint32_t *)(b + L.doclen);
    v->toff = (const uint64_t *)(b + L.toff);
    v->poff = (const uint64_t *)(b + L.poff);
    v->xoff = (const uint64_t *)(b + L.xoff);
    v->terms = b + L.terms;
    v->doc = (const uint32_t *)(b + L.doc);
    v->tf = (const uint32_t *)(b + L.tf);
    v->pos = (const uint32_t *)(b + L.pos);
}

int ix_check_run(const void *blob, size_t len, int positions, runv *v)
{
    run_hdr h;
    if (len < sizeof h) return -1;
    memcpy(&h, blob, sizeof h);
    if (memcmp(h.magic, RUN_MAGIC, 8) != 0 || h.bytes > len || h.n_terms > len || h.term_bytes > len ||
        h.nnz > len || h.npos > len || h.n_docs > len || h.npos != (positions ? h.ntf : 0))
        return -1;
    run_layout L;
    ix_layout(&h, &L);
    if (L.total != h.bytes) return -1;
    ix_view(blob, v);
    const uint64_t n = h.n_terms;
    if (v->toff[0] || v->poff[0] || v->xoff[0] || v->toff[n] != h.term_bytes || v->poff[n] != h.nnz ||
        v->xoff[n] != h.ntf)
        return -1;
    for (uint64_t t = 0; t < n; t++)
        if (v->toff[t + 1] <= v->toff[t] || v->poff[t + 1] <= v->poff[t] || v->xoff[t + 1] < v->xoff[t]) return -1;
    return 0;
}

uint64_t ix_lower_bound(const runv *v, uint64_t lo, uint64_t hi, const uint8_t *s, uint32_t len)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint32_t ml;
        const uint8_t *m = run_term(v, mid, &ml);
        if (bytes_cmp(m, ml, s, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

size_t ix_slice_bytes(const runv *v, uint64_t a, uint64_t b, int positions)
{
    run_hdr h = {.n_terms = b - a, .term_bytes = v->toff[b] - v->toff[a], .nnz = v->poff[b] - v->poff[a],
                 .ntf = v->xoff[b] - v->xoff[a]};
    h.npos = positions ? h.ntf : 0;
    run_layout L;
    ix_layout(&h, &L);
    return L.total;
}

void ix_put_slice(const runv *v, uint64_t a, uint64_t b, int positions, uint8_t *dst)
{
    run_hdr h = {.chunk = v->h->chunk, .doc0 = v->h->doc0, .n_terms = b - a,
                 .term_bytes = v->toff[b] - v->toff[a], .nnz = v->poff[b] - v->poff[a],
                 .ntf = v->xoff[b] - v->xoff[a]};
    memcpy(h.magic, RUN_MAGIC, 8);
    h.npos = positions ? h.ntf : 0;
    run_layout L;
    ix_layout(&h, &L);
    h.bytes = L.total;
    memset(dst, 0, L.doc);
    ix_zero_tails(dst, &h, &L);
    memcpy(dst, &h, sizeof h);
    uint64_t *toff = (uint64_t *)(dst + L.toff), *poff = (uint64_t *)(dst + L.poff), *xoff = (uint64_t *)(dst + L.xoff);
    for (uint64_t t = a; t <= b; t++) {
        toff[t - a] = v->toff[t] - v->toff[a];
        poff[t - a] = v->poff[t] - v->poff[a];
        xoff[t - a] = v->xoff[t] - v->xoff[a];
    }
    memcpy(dst + L.terms, v->terms + v->toff[a], h.term_bytes);
    memcpy(dst + L.doc, v->doc + v->poff[a], h.nnz * 4);
    memcpy(dst + L.tf, v->tf + v->poff[a], h.nnz * 4);
    if (positions) memcpy(dst + L.pos, v->pos + v->xoff[a], h.npos * 4);
}
