/* Partial states of the index (DESIGN.md 7, docs/index.md "Partial states"). A partial
 * holds the runs a checkpoint holds, and a description of what finalize needs besides
 * them and would otherwise read from the input: the tokenizer settings with the stop
 * words themselves (a file of stop words need not be at the centre), the corpus's
 * layout, the documents' integer or string ids and titles, and the corpus files the
 * documents come from (for the snippets of `h5batch query`).
 *
 * A merge concatenates the parts' documents in the order given: part p's document d is
 * document row_offset + d of the merge. Its runs keep their postings relative to their
 * first document, so load_part only moves a run's doc0, and numbers the run by it (its
 * chunk): finalize merges equal terms in chunk order, which is then document order, and
 * the result has the bits one run over the concatenated corpus writes. Postings are
 * already compact (a run stores each term once per chunk, its documents as 32-bit
 * numbers relative to the chunk, and the driver compresses the saved state); the
 * description stores each document's names once. */
#include "kernels/index/internal.h"

#include "core/hb.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESC_MAGIC "HBIXDS01"

enum { F_STRINGS = 1, F_IDS = 2, F_SIDS = 4, F_TITLES = 8 };

/* The head of a description; then the stop words, the segments (first, n, length of the
 * file name, its bytes), the integer ids [N], and the string ids and titles, each as
 * offsets [N+1] and bytes. Every field is 8 bytes: the description is read with memcpy. */
typedef struct dhead {
    char magic[8];
    uint64_t settings, n_docs, text_bytes, flags, stop_bytes, nsegs;
} dhead;

/* A growing byte buffer for a description. */
typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    int fail;
} wbuf;

/* Not collective. Appends n bytes of v. */
static void put(wbuf *b, const void *v, size_t n)
{
    if (b->fail || n == 0) return;
    if (hb_grow((void **)&b->p, &b->cap, b->n + n, 1)) {
        b->fail = 1;
        return;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

/* Not collective. Appends v. */
static void put_u64(wbuf *b, uint64_t v) { put(b, &v, sizeof v); }

/* Not collective. Appends n strings: their offsets from 0, then their bytes. */
static void put_strs(wbuf *b, const hb_strs *s, uint64_t n)
{
    const uint64_t o0 = n ? s->off[0] : 0;
    for (uint64_t i = 0; i <= n; i++) put_u64(b, n ? s->off[i] - o0 : 0);
    if (n) put(b, s->bytes + o0, s->off[n] - o0);
}

/* Not collective. The corpus layout and names of a state, as flags. */
static uint64_t flags_of(const ix *x)
{
    if (x->merged)
        return (x->strings ? F_STRINGS : 0) | (x->has_ids ? F_IDS : 0) | (x->has_sids ? F_SIDS : 0) |
               (x->has_titles ? F_TITLES : 0);
    return (x->strings ? F_STRINGS : 0) | (x->docid ? F_IDS : 0) | (x->idtab ? F_SIDS : 0) | (x->titletab ? F_TITLES : 0);
}

int ix_describe(void *state, void **buf, size_t *len)
{
    ix *x = state;
    const uint64_t N = (uint64_t)x->N, flags = flags_of(x);
    size_t sl;
    const char *sw = hb_analyzer_stopwords(x->an, &sl);
    /* a run's names come from its input, read here on rank 0 alone */
    int64_t *ids = x->ids;
    hb_strs sids = {0}, titles = {0};
    const hb_strs *ps = &x->sids, *pt = &x->titles;
    ix_seg one = {NULL, 0, N};
    int rc = 0;
    if (!x->merged) {
        one.file = realpath(x->ctx->input, NULL);
        if (!one.file) one.file = hb_strdup(x->ctx->input);
        if (!one.file) rc = HB_EINTERNAL;
        ids = (flags & F_IDS) && N ? hb_malloc(N * sizeof *ids) : NULL;
        if (rc == 0 && (flags & F_IDS) && N) rc = ids ? hb_dset_read(x->docid, HB_I64, 0, x->N, ids) : HB_EINTERNAL;
        if (rc == 0 && (flags & F_SIDS) && N) rc = hb_table_read_str(x->idtab, 0, 0, x->N, &sids);
        if (rc == 0 && (flags & F_TITLES) && N) rc = hb_table_read_str(x->titletab, 0, 0, x->N, &titles);
        ps = &sids, pt = &titles;
    }
    const ix_seg *segs = x->merged ? x->segs : &one;
    const size_t nsegs = x->merged ? x->nsegs : 1;
    wbuf b = {0};
    dhead h = {DESC_MAGIC, x->settings, N, (uint64_t)x->B, flags, sl, nsegs};
    put(&b, &h, sizeof h);
    put(&b, sw, sl);
    for (size_t k = 0; k < nsegs; k++) {
        const size_t fl = strlen(segs[k].file);
        put_u64(&b, segs[k].first), put_u64(&b, segs[k].n), put_u64(&b, fl);
        put(&b, segs[k].file, fl);
    }
    if ((flags & F_IDS) && N) put(&b, ids, N * sizeof *ids);
    if (flags & F_SIDS) put_strs(&b, ps, N);
    if (flags & F_TITLES) put_strs(&b, pt, N);
    if (!x->merged) free(ids);
    free(one.file);
    hb_strs_free(&sids), hb_strs_free(&titles);
    if (rc == 0 && b.fail) rc = hb_err_set(HB_EINTERNAL, "index", "out of memory describing the partial state");
    if (rc) return free(b.p), rc;
    *buf = b.p;
    *len = b.n;
    return 0;
}

/* A description being read. */
typedef struct rbuf {
    const uint8_t *p;
    size_t n, at;
} rbuf;

/* Not collective. Takes n bytes (NULL when there are not that many). */
static const uint8_t *take(rbuf *r, uint64_t n)
{
    if (n > r->n - r->at) return NULL;
    const uint8_t *p = r->p + r->at;
    r->at += (size_t)n;
    return p;
}

/* Not collective. Takes 8 bytes into *v: -1 when there are not that many. */
static int take_u64(rbuf *r, uint64_t *v)
{
    const uint8_t *p = take(r, sizeof *v);
    if (p) memcpy(v, p, sizeof *v);
    return p ? 0 : -1;
}

/* Not collective. Appends a part's n strings to s (of *have strings so far). */
static int take_strs(rbuf *r, uint64_t n, hb_strs *s, uint64_t *have)
{
    const uint64_t base = *have ? s->off[*have] : 0;
    if (hb_grow((void **)&s->off, &s->off_cap, *have + n + 1, sizeof *s->off)) return HB_EINTERNAL;
    uint64_t prev = 0;
    for (uint64_t i = 0; i <= n; i++) {
        uint64_t o;
        if (take_u64(r, &o) || o < prev || (i == 0 && o != 0)) return HB_EDATA;
        s->off[*have + i] = base + o;
        prev = o;
    }
    const uint8_t *p = take(r, prev);
    if (!p) return HB_EDATA;
    if (hb_grow((void **)&s->bytes, &s->bytes_cap, base + prev + 1, 1)) return HB_EINTERNAL;
    if (prev) memcpy(s->bytes + base, p, prev);
    *have += n;
    return 0;
}

/* Not collective. Adds part p's description to the merge's state: 65 when it is damaged or
 * its corpus is laid out otherwise than the first part's, 78 when its tokenizer differs. */
static int add_part(ix *x, const hb_part *parts, int p, uint64_t *nsids, uint64_t *ntitles)
{
    const hb_part *pt = &parts[p];
    rbuf r = {pt->desc, pt->desc_len, 0};
    dhead h;
    const uint8_t *hp = take(&r, sizeof h);
    if (!hp) return hb_err_set(HB_EDATA, pt->path, "its index description is truncated");
    memcpy(&h, hp, sizeof h);
    if (memcmp(h.magic, DESC_MAGIC, 8) != 0) return hb_err_set(HB_EDATA, pt->path, "not an index description");
    const uint8_t *stop = take(&r, h.stop_bytes);
    if (!stop) return hb_err_set(HB_EDATA, pt->path, "its index description is truncated");
    if (p == 0) {
        x->strings = (h.flags & F_STRINGS) != 0;
        x->has_ids = (h.flags & F_IDS) != 0;
        x->has_sids = (h.flags & F_SIDS) != 0;
        x->has_titles = (h.flags & F_TITLES) != 0;
        /* the stop words as the first part normalized them: normalizing them again gives them back */
        HB_CALL(hb_analyzer_new(x->stemmer, x->max_bytes, (const char *)stop, h.stop_bytes, &x->an));
        HB_CALL(ix_settings_hash(x));
    }
    if (h.settings != x->settings)
        return hb_err_set(HB_ECONFIG, pt->path,
                          "its tokenizer differs from %s's (other stop words for stopwords = %s, or another Unicode "
                          "version): the parts must be indexed with the same settings",
                          parts[0].path, x->stopwords);
    if (h.flags != flags_of(x))
        return hb_err_set(HB_EDATA, pt->path,
                          "its corpus is laid out otherwise than %s's (text as %s; doc_id %s; title %s): the parts "
                          "of an index must have the same columns",
                          parts[0].path, h.flags & F_STRINGS ? "strings" : "bytes",
                          h.flags & F_IDS ? "as integers" : h.flags & F_SIDS ? "as strings" : "absent",
                          h.flags & F_TITLES ? "present" : "absent");
    if ((int64_t)h.n_docs != pt->rows || h.n_docs > (uint64_t)INT64_MAX - (uint64_t)x->N)
        return hb_err_set(HB_EDATA, pt->path, "its index description has %llu documents, but the part %lld rows",
                          (unsigned long long)h.n_docs, (long long)pt->rows);
    const uint64_t first = (uint64_t)x->N;
    for (uint64_t k = 0; k < h.nsegs; k++) {
        uint64_t f, n, fl;
        const uint8_t *name;
        if (take_u64(&r, &f) || take_u64(&r, &n) || take_u64(&r, &fl) || !(name = take(&r, fl)) || fl >= PATH_MAX)
            return hb_err_set(HB_EDATA, pt->path, "its index description is truncated");
        if (n == 0) continue; /* a file of no documents holds no snippets */
        ix_seg *grown = hb_realloc(x->segs, (x->nsegs + 1) * sizeof *x->segs);
        if (!grown) return HB_EINTERNAL;
        x->segs = grown;
        ix_seg *s = &x->segs[x->nsegs];
        s->file = hb_malloc(fl + 1);
        if (!s->file) return HB_EINTERNAL;
        memcpy(s->file, name, fl);
        s->file[fl] = '\0';
        s->first = first + f, s->n = n;
        x->nsegs++;
    }
    if (x->has_ids && h.n_docs) {
        const uint8_t *ids = take(&r, h.n_docs * sizeof *x->ids);
        int64_t *grown = ids ? hb_realloc(x->ids, (size_t)(first + h.n_docs) * sizeof *x->ids) : NULL;
        if (!grown) return ids ? HB_EINTERNAL : hb_err_set(HB_EDATA, pt->path, "its index description is truncated");
        x->ids = grown;
        memcpy(x->ids + first, ids, h.n_docs * sizeof *x->ids);
    }
    int rc = 0;
    if (x->has_sids) rc = take_strs(&r, h.n_docs, &x->sids, nsids);
    if (rc == 0 && x->has_titles) rc = take_strs(&r, h.n_docs, &x->titles, ntitles);
    if (rc == HB_EDATA || (rc == 0 && r.at != r.n)) return hb_err_set(HB_EDATA, pt->path, "its index description is damaged");
    if (rc) return hb_err_set(rc, "index", "out of memory reading the parts' descriptions");
    x->N += (int64_t)h.n_docs;
    x->B += (int64_t)h.text_bytes;
    return 0;
}

int ix_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    ix *x = hb_calloc(1, sizeof *x);
    if (!x) return hb_agree(HB_EINTERNAL);
    *state = x;
    x->ctx = ctx;
    x->merged = 1;
    x->stemmer = hb_opt_str(ctx->opts, "stemmer");
    x->stopwords = hb_opt_str(ctx->opts, "stopwords");
    x->max_bytes = (int)hb_opt_num(ctx->opts, "max_token_bytes");
    x->positions = hb_opt_bool(ctx->opts, "positions");
    x->nparts = ctx->threads;
    x->table = hb_opt_str(ctx->opts, "table");
    char msg[512];
    int rc = hb_colmap_parse(hb_opt_str(ctx->opts, "columns"), &x->cols, msg, sizeof msg)
                 ? hb_err_set(HB_ECONFIG, "index", "%s", msg)
                 : 0;
    /* every rank reads the same descriptions, so every rank fails alike */
    uint64_t nsids = 0, ntitles = 0;
    for (int p = 0; rc == 0 && p < n; p++) rc = add_part(x, parts, p, &nsids, &ntitles);
    if (rc == 0 && n == 0) rc = hb_err_set(HB_EINTERNAL, "index", "a merge of no parts");
    HB_CALL(hb_agree(rc));
    x->wide = x->N > (int64_t)UINT32_MAX;
    ctx->n_rows = x->N;
    return hb_agree(ix_reserve_memory(x));
}

int ix_load_part(void *state, const hb_part *part, const void *buf, size_t len)
{
    return ix_load_runs(state, buf, len, part, part->path);
}
