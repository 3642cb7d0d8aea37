/* Inverted index (DESIGN.md 4.3): the CSR arrays of /index, sorted by term bytes, from
 * the documents of /corpus.
 *
 * map inverts one chunk of whole documents into a run: the chunk's distinct terms in
 * byte order, each with its postings (document, tf, positions) in document order. The
 * threads of a rank tokenize disjoint document ranges of the chunk with their own
 * lexers and merge their sorted term lists; the run is one block of memory, which is
 * also its checkpoint form. Runs stay on the rank that made them until finalize, so
 * exchange has nothing to do and a restart on any rank count just loads runs.
 *
 * finalize range-partitions the terms: every run contributes weighted samples of its
 * terms (allgathered), the weighted quantiles become splitters so that rank r's terms
 * all sort before rank r+1's, and the slices of every run go to their owners in one
 * MPI_Alltoallv. Each rank merges its slices with a heap, ties broken by chunk index so
 * that postings come out in document order, its threads taking sub-ranges of its terms;
 * then every rank writes its part of each array at offsets from MPI_Exscan. The result
 * depends only on the documents, never on ranks, threads or chunk placement. */
#include "kernels/kernel.h"

#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "kernels/index/format.h"
#include "kernels/index/tok.h"

#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define RUN_MAGIC "HBIXRUN1"
#define STATE_MAGIC "HBIXST01"
#define SAMPLES_PER_RUN 64
#define XBLOCK 4096            /* bytes per MPI block of the exchange of slices */
#define CHECK_BLOCK (1 << 20)  /* offsets validated this many at a time */

static const hb_option index_options[] = {
    {"stemmer", HB_OPT_STRING, "none", 1, 0, NULL, "Snowball stemmer language (english, french, ...), or none"},
    {"stopwords", HB_OPT_STRING, "none", 1, 0, NULL,
     "none, english (Snowball's list), or a file whose tokens are the stop words ('|' or '#' starts a comment)"},
    {"max_token_bytes", HB_OPT_INT, "64", 1, 65536, NULL, "longer tokens (normalized UTF-8) are dropped and counted"},
    {"positions", HB_OPT_BOOL, "false", 1, 0, NULL, "store token positions (phrase queries need them)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* A run's header; the sections follow it, each starting on 8 bytes:
 * doc_length u32[n_docs], term_off u64[n_terms+1], post_off u64[n_terms+1],
 * tf_off u64[n_terms+1] (cumulative tf), terms u8[term_bytes], doc u32[nnz] (relative to
 * doc0), tf u32[nnz], pos u32[npos] (npos = ntf with positions, else 0). A slice sent to
 * another rank has the same form with n_docs = 0. */
typedef struct run_hdr {
    char magic[8];
    uint64_t chunk, doc0, n_docs, n_terms, term_bytes, nnz, ntf, npos, bytes;
    uint64_t tokens, too_long, stop, invalid_bytes, empty_docs; /* zero in slices */
    uint64_t settings; /* hash of the tokenizer settings and stop words that made it */
} run_hdr;

typedef struct run_layout {
    size_t doclen, toff, poff, xoff, terms, doc, tf, pos, total;
} run_layout;

/* A parsed run or slice. */
typedef struct runv {
    const run_hdr *h;
    const uint32_t *doclen, *doc, *tf, *pos;
    const uint64_t *toff, *poff, *xoff;
    const uint8_t *terms;
} runv;

/* What a part knows of a lexer term, in one place so that a token costs one cache line. */
typedef struct tstate {
    uint32_t stamp;  /* document stamp of its last occurrence */
    uint32_t tf;     /* occurrences in that document; then a cursor into the positions */
    uint32_t lstamp; /* chunk stamp: the fields below are valid when it is the current one */
    uint32_t lid;    /* its local index in the chunk */
    uint32_t df;     /* documents of the chunk, so far */
    uint32_t unused; /* 32 bytes in all: two states a cache line */
    uint64_t cf;     /* occurrences in the chunk, so far */
} tstate;

/* A term of the chunk, as a part saw it, and where its postings go in the run. */
typedef struct lterm {
    uint32_t id, df;     /* lexer id; documents */
    uint64_t cf;         /* occurrences */
    uint64_t post, posn; /* next slot of its postings, of its positions */
} lterm;

/* One thread's share of a chunk, and the lexer it keeps from chunk to chunk. */
typedef struct part {
    hb_lexer *lx;
    tstate *ts; /* indexed by lexer term id */
    size_t cap;
    uint32_t docstamp, chunkstamp;
    /* the chunk's terms seen by this part, and their run index */
    lterm *lt;
    uint32_t *glob;
    uint32_t nl, capl;
    /* postings in document order: local term, document (relative), tf; positions */
    uint32_t *pl, *pd, *ptf, *ppos;
    size_t np, capp, npos, cappos;
    uint32_t *touched;
    size_t captouched;
    size_t *order;
    int64_t d0, d1;
    uint64_t empty_docs, doc_overflow;
    hb_tok_counts before;
    int rc;
} part;

typedef struct ix {
    hb_step_ctx *ctx;
    hb_dset *text, *offsets, *docid;
    int64_t N, B;
    int positions, max_bytes, wide;
    const char *stemmer, *stopwords;
    hb_analyzer *an;
    uint64_t settings; /* see run_hdr */
    int nparts;
    part *parts;
    int64_t *off;
    uint8_t *buf;
    size_t bufcap;
    uint32_t *doclen; /* of the chunk being mapped */
    uint8_t **runs;
    size_t nruns, caprun;
} ix;

/* x rounded up to a multiple of 8. */
static size_t pad8(size_t x) { return (x + 7) & ~(size_t)7; }

/* The offsets of a run's sections, from its header. */
static void layout(const run_hdr *h, run_layout *L)
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

/* Zeroes the padding after the posting sections of a run being built (the rest is all
 * written), so that checkpoints and messages never carry uninitialized bytes. */
static void zero_tails(uint8_t *b, const run_hdr *h, const run_layout *L)
{
    memset(b + L->doc + h->nnz * 4, 0, L->tf - L->doc - h->nnz * 4);
    memset(b + L->tf + h->nnz * 4, 0, L->pos - L->tf - h->nnz * 4);
    memset(b + L->pos + h->npos * 4, 0, L->total - L->pos - h->npos * 4);
}

/* Parses a run or slice known to be well formed. */
static void view(const void *blob, runv *v)
{
    const uint8_t *b = blob;
    v->h = blob;
    run_layout L;
    layout(v->h, &L);
    v->doclen = (const uint32_t *)(b + L.doclen);
    v->toff = (const uint64_t *)(b + L.toff);
    v->poff = (const uint64_t *)(b + L.poff);
    v->xoff = (const uint64_t *)(b + L.xoff);
    v->terms = b + L.terms;
    v->doc = (const uint32_t *)(b + L.doc);
    v->tf = (const uint32_t *)(b + L.tf);
    v->pos = (const uint32_t *)(b + L.pos);
}

/* Checks that len bytes at blob hold a well-formed run or slice (a checkpoint or a
 * message is not trusted to be one), and parses it. */
static int check_run(const void *blob, size_t len, int positions, runv *v)
{
    run_hdr h;
    if (len < sizeof h) return -1;
    memcpy(&h, blob, sizeof h);
    if (memcmp(h.magic, RUN_MAGIC, 8) != 0 || h.bytes > len || h.n_terms > len || h.term_bytes > len ||
        h.nnz > len || h.npos > len || h.n_docs > len || h.npos != (positions ? h.ntf : 0))
        return -1;
    run_layout L;
    layout(&h, &L);
    if (L.total != h.bytes) return -1;
    view(blob, v);
    const uint64_t n = h.n_terms;
    if (v->toff[0] || v->poff[0] || v->xoff[0] || v->toff[n] != h.term_bytes || v->poff[n] != h.nnz ||
        v->xoff[n] != h.ntf)
        return -1;
    for (uint64_t t = 0; t < n; t++)
        if (v->toff[t + 1] <= v->toff[t] || v->poff[t + 1] <= v->poff[t] || v->xoff[t + 1] < v->xoff[t]) return -1;
    return 0;
}

/* Byte order of two strings, a prefix first. */
static int bytes_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* The first 8 bytes of a term as a big-endian number: comparing these orders most
 * terms without touching their bytes again. */
static inline uint64_t prefix8(const uint8_t *s, uint32_t len)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < 8 && i < len; i++) v |= (uint64_t)s[i] << (56 - 8 * i);
    return v;
}

/* Term t of a run, and its length. */
static const uint8_t *run_term(const runv *v, uint64_t t, uint32_t *len)
{
    *len = (uint32_t)(v->toff[t + 1] - v->toff[t]);
    return v->terms + v->toff[t];
}

/* The first term index in [lo, hi) of v whose term is not below s. */
static uint64_t lower_bound(const runv *v, uint64_t lo, uint64_t hi, const uint8_t *s, uint32_t len)
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

/* ------------------------------------------------------------------ options, setup */

/* Reads the stop words the option names: NULL for none. */
static int stop_text(const char *opt, char **text, size_t *len, char *msg, size_t msglen)
{
    *text = NULL;
    *len = 0;
    if (strcmp(opt, "none") == 0) return 0;
    if (strcmp(opt, "english") == 0) {
        *text = hb_strdup(hb_tok_english_stopwords());
        *len = *text ? strlen(*text) : 0;
        return *text ? 0 : HB_EINTERNAL;
    }
    FILE *f = fopen(opt, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(msg, msglen, "stopwords = %s: %s (none, english, or a file of words)", opt,
                 f ? "not a regular file" : strerror(errno));
        if (f) fclose(f);
        return HB_ECONFIG;
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)sb.st_size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)sb.st_size) {
        free(buf);
        snprintf(msg, msglen, "stopwords = %s: cannot read the file", opt);
        return HB_ECONFIG;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* Checks the stemmer and the stop word list when the job file is read (78 with the line). */
static int index_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    const char *st = hb_opt_str(o, "stemmer");
    if (!hb_tok_stemmer_valid(st)) {
        *key = "stemmer";
        snprintf(msg, len, "unknown stemmer '%s' (none, or a Snowball language: %s)", st, hb_tok_stemmers());
        return HB_ECONFIG;
    }
    char *text;
    size_t n;
    int rc = stop_text(hb_opt_str(o, "stopwords"), &text, &n, msg, len);
    free(text);
    if (rc) *key = "stopwords";
    return rc;
}

/* Collective. Checks that offsets start at or above 0, never decrease and end at the
 * text's length, naming the first bad index. */
static int check_offsets(ix *x)
{
    const int64_t n = x->N + 1;
    int64_t lo, hi;
    hb_range_of(n, hb_rank, hb_size, &lo, &hi);
    int64_t *buf = hb_malloc((size_t)(CHECK_BLOCK + 1) * sizeof *buf);
    int rc = buf ? 0 : HB_EINTERNAL;
    int64_t bad = INT64_MAX, badv = 0, prevv = 0;
    /* each block starts one element early, to compare across the block boundary */
    for (int64_t a = lo; rc == 0 && a < hi && bad == INT64_MAX; a += CHECK_BLOCK) {
        int64_t s = a > 0 ? a - 1 : 0, e = a + CHECK_BLOCK < hi ? a + CHECK_BLOCK : hi;
        rc = hb_dset_read(x->offsets, HB_I64, s, e - s, buf);
        for (int64_t i = a; rc == 0 && i < e; i++) {
            int64_t v = buf[i - s];
            if ((i == 0 && v < 0) || (i > 0 && v < buf[i - 1 - s])) {
                bad = i, badv = v, prevv = i > 0 ? buf[i - 1 - s] : 0;
                break;
            }
        }
    }
    if ((rc = hb_agree(rc)) != 0) return free(buf), rc;
    int64_t first;
    MPI_Allreduce(&bad, &first, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
    if (first != INT64_MAX) {
        if (bad == first && first == 0)
            rc = hb_err_set(HB_EDATA, x->ctx->input, "/corpus/offsets[0] = %lld is negative", (long long)badv);
        else if (bad == first)
            rc = hb_err_set(HB_EDATA, x->ctx->input,
                            "/corpus/offsets[%lld] = %lld is less than offsets[%lld] = %lld (offsets must not "
                            "decrease)",
                            (long long)first, (long long)badv, (long long)(first - 1), (long long)prevv);
        free(buf);
        return hb_agree(rc);
    }
    int64_t last = 0;
    rc = hb_dset_read(x->offsets, HB_I64, x->N, 1, &last);
    if (rc == 0 && last != x->B)
        rc = hb_err_set(HB_EDATA, x->ctx->input,
                        "/corpus/offsets[%lld] = %lld is not the length of /corpus/text (%lld bytes)", (long long)x->N,
                        (long long)last, (long long)x->B);
    free(buf);
    return hb_agree(rc);
}

/* Opens /corpus/text, /corpus/offsets and /corpus/doc_id and checks their types and lengths. */
static int open_corpus(ix *x)
{
    hb_step_ctx *ctx = x->ctx;
    hb_dset_info ti, oi;
    HB_CALL(hb_dset_open(ctx->in, "/corpus/text", &x->text, &ti));
    HB_CHECK(ti.is_int && ti.elem_bytes == 1, HB_EDATA, ctx->input,
             "/corpus/text has %zu-byte %s elements; UTF-8 bytes (uint8) are needed", ti.elem_bytes,
             ti.is_int ? "integer" : "float");
    HB_CALL(hb_dset_open(ctx->in, "/corpus/offsets", &x->offsets, &oi));
    HB_CHECK(oi.is_int, HB_EDATA, ctx->input, "/corpus/offsets has float elements; integers are needed");
    HB_CHECK(oi.n >= 1, HB_EDATA, ctx->input, "/corpus/offsets is empty; it needs N+1 entries for N documents");
    x->N = oi.n - 1;
    x->B = ti.n;
    if (hb_in_exists(ctx->in, "/corpus/doc_id")) {
        hb_dset_info di;
        HB_CALL(hb_dset_open(ctx->in, "/corpus/doc_id", &x->docid, &di));
        HB_CHECK(di.is_int, HB_EDATA, ctx->input, "/corpus/doc_id has float elements; integers are needed");
        HB_CHECK(di.n == x->N, HB_EDATA, ctx->input, "/corpus/doc_id has %lld entries for %lld documents",
                 (long long)di.n, (long long)x->N);
    }
    return 0;
}

/* Collective. Opens and checks the corpus; one lexer per thread. */
static int index_setup(hb_step_ctx *ctx, void **state)
{
    ix *x = hb_calloc(1, sizeof *x);
    if (!x) return hb_agree(HB_EINTERNAL);
    *state = x;
    x->ctx = ctx;
    x->stemmer = hb_opt_str(ctx->opts, "stemmer");
    x->stopwords = hb_opt_str(ctx->opts, "stopwords");
    x->max_bytes = (int)hb_opt_num(ctx->opts, "max_token_bytes");
    x->positions = hb_opt_bool(ctx->opts, "positions");
    x->nparts = ctx->threads;
    char *text = NULL, msg[512];
    size_t len = 0;
    int rc = stop_text(x->stopwords, &text, &len, msg, sizeof msg);
    if (rc == HB_ECONFIG) rc = hb_err_set(HB_ENOINPUT, "index", "%s", msg); /* it was there when the job started */
    if (rc == 0) rc = hb_analyzer_new(x->stemmer, x->max_bytes, text, len, &x->an);
    free(text);
    if (rc == 0) {
        /* the job's fingerprint sees the stop word file's name, not its words */
        size_t sl;
        const char *sw = hb_analyzer_stopwords(x->an, &sl);
        char head[256];
        int hl = snprintf(head, sizeof head, "%s|%d|%d|%s|", x->stemmer, x->max_bytes, x->positions,
                          hb_tok_unicode_version());
        XXH3_state_t *st = XXH3_createState();
        rc = st ? 0 : hb_err_set(HB_EINTERNAL, "index", "out of memory");
        if (st) {
            XXH3_64bits_reset(st);
            XXH3_64bits_update(st, head, (size_t)hl);
            if (sl) XXH3_64bits_update(st, sw, sl);
            x->settings = XXH3_64bits_digest(st);
            XXH3_freeState(st);
        }
    }
    if (rc == 0) rc = open_corpus(x);
    HB_CALL(hb_agree(rc));
    HB_CALL(check_offsets(x));
    ctx->n_rows = x->N;
    ctx->n_chunks = (x->N + ctx->chunk_rows - 1) / ctx->chunk_rows;
    x->wide = x->N > (int64_t)UINT32_MAX;
    x->parts = hb_calloc((size_t)x->nparts, sizeof *x->parts);
    x->off = hb_malloc((size_t)(ctx->chunk_rows + 1) * sizeof *x->off);
    x->doclen = hb_malloc((size_t)ctx->chunk_rows * sizeof *x->doclen);
    rc = x->parts && x->off && x->doclen ? 0 : HB_EINTERNAL;
    for (int p = 0; rc == 0 && p < x->nparts; p++) rc = hb_lexer_new(x->an, &x->parts[p].lx);
    return hb_agree(rc);
}

/* ------------------------------------------------------------------ map */

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
    layout(&h, &L);
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
    zero_tails(b, &h, &L);
    memcpy(b, &h, sizeof h);
    runv v;
    view(b, &v);
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
    view(blob, &v);
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

/* Adds a run to this rank's state. */
static int add_run(ix *x, uint8_t *blob)
{
    if (x->nruns == x->caprun) {
        size_t c = x->caprun ? x->caprun * 2 : 16;
        uint8_t **r = hb_realloc(x->runs, c * sizeof *r);
        if (!r) return HB_EINTERNAL;
        x->runs = r;
        x->caprun = c;
    }
    x->runs[x->nruns++] = blob;
    return 0;
}

/* Inverts chunk c into a run: its threads tokenize, invert and sort their documents, then merge. */
static int index_map(void *state, int64_t c)
{
    ix *x = state;
    hb_step_ctx *ctx = x->ctx;
    int64_t start, n;
    hb_chunk_range(c, ctx->chunk_rows, x->N, &start, &n);
    HB_CALL(hb_dset_read(x->offsets, HB_I64, start, n + 1, x->off));
    const int64_t b0 = x->off[0], bytes = x->off[n] - b0;
    if ((size_t)bytes > x->bufcap) {
        uint8_t *p = hb_realloc(x->buf, (size_t)bytes);
        if (!p) return HB_EINTERNAL;
        x->buf = p;
        x->bufcap = (size_t)bytes;
    }
    HB_CALL(hb_dset_read(x->text, HB_U8, b0, bytes, x->buf));
    /* documents relative to the chunk; parts cut at equal shares of the bytes */
    const int T = x->nparts;
    int64_t d = 0;
    for (int p = 0; p < T; p++) {
        int64_t cut = b0 + bytes * (p + 1) / T;
        x->parts[p].d0 = d;
        while (d < n && (p == T - 1 || x->off[d] < cut)) d++;
        x->parts[p].d1 = d;
    }
    int rc = 0;
    uint8_t *blob = NULL;
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
            if (rc == 0) rc = assemble(x, c, n, &blob);
        }
        if (rc == 0)
            for (int p = omp_get_thread_num(); p < T; p += omp_get_num_threads()) part_scatter(x, &x->parts[p], blob);
    }
    for (int p = 0; p < T; p++)
        if (x->parts[p].doc_overflow) {
            free(blob);
            return hb_err_set(HB_EDATA, ctx->input,
                              "more than 2^32-1 tokens in chunk %lld at document %lld; lower chunk_rows",
                              (long long)c, (long long)(start + (int64_t)x->parts[p].doc_overflow - 1));
        }
    if (rc) {
        free(blob);
        return hb_err_set(rc, "index", "out of memory inverting chunk %lld", (long long)c);
    }
    rc = add_run(x, blob);
    if (rc) free(blob);
    return rc;
}

/* ------------------------------------------------------------------ checkpoints */

/* Saved state: a header, then this rank's runs as they are in memory. */
typedef struct saved {
    char magic[8];
    uint64_t nruns;
} saved;

/* This rank's runs, concatenated behind a header. */
static int index_save(void *state, void **buf, size_t *len)
{
    ix *x = state;
    size_t bytes = sizeof(saved);
    for (size_t i = 0; i < x->nruns; i++) bytes += ((const run_hdr *)x->runs[i])->bytes;
    uint8_t *p = hb_malloc(bytes);
    if (!p) return HB_EINTERNAL;
    saved h = {STATE_MAGIC, x->nruns};
    memcpy(p, &h, sizeof h);
    size_t at = sizeof h;
    for (size_t i = 0; i < x->nruns; i++) {
        size_t n = ((const run_hdr *)x->runs[i])->bytes;
        memcpy(p + at, x->runs[i], n);
        at += n;
    }
    *buf = p;
    *len = bytes;
    return 0;
}

/* Takes the runs of a saved part, checking each against this job. */
static int index_load(void *state, const void *buf, size_t len)
{
    ix *x = state;
    const hb_step_ctx *ctx = x->ctx;
    saved h;
    if (len < sizeof h) return hb_err_set(HB_EDATA, "checkpoint", "index state of %zu bytes is too short", len);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, STATE_MAGIC, 8) != 0) return hb_err_set(HB_EDATA, "checkpoint", "not an index state");
    const uint8_t *p = (const uint8_t *)buf + sizeof h;
    size_t left = len - sizeof h;
    for (uint64_t i = 0; i < h.nruns; i++) {
        run_hdr rh;
        if (left < sizeof rh) return hb_err_set(HB_EDATA, "checkpoint", "index state is truncated");
        memcpy(&rh, p, sizeof rh);
        if (rh.bytes > left || rh.bytes < sizeof rh)
            return hb_err_set(HB_EDATA, "checkpoint", "index state is truncated");
        uint8_t *blob = hb_malloc(rh.bytes); /* aligned, unlike the checkpoint's buffer */
        if (!blob) return HB_EINTERNAL;
        memcpy(blob, p, rh.bytes);
        if (rh.settings != x->settings)
            return hb_err_set(HB_ECONFIG, "checkpoint",
                              "its index runs were made with other tokenizer settings (a changed stop word file?); "
                              "run with --fresh");
        runv v;
        int64_t c = (int64_t)rh.chunk, start, n = -1;
        if (c >= 0 && c < ctx->n_chunks) hb_chunk_range(c, ctx->chunk_rows, x->N, &start, &n);
        if (check_run(blob, rh.bytes, x->positions, &v) != 0 || n < 0 || rh.n_docs != (uint64_t)n ||
            rh.doc0 != (uint64_t)(c * ctx->chunk_rows) || add_run(x, blob) != 0) {
            free(blob);
            return hb_err_set(HB_EDATA, "checkpoint", "index state holds a damaged run of chunk %llu",
                              (unsigned long long)rh.chunk);
        }
        p += rh.bytes;
        left -= rh.bytes;
    }
    return 0;
}

/* ------------------------------------------------------------------ finalize */

/* A term range [t0, t1) of one chunk's run, local or received. */
typedef struct source {
    runv v;
    uint64_t t0, t1;
} source;

typedef struct sample {
    const uint8_t *s;
    uint32_t len;
    double w;
} sample;

/* One thread's share of the merged index. */
typedef struct block {
    uint8_t *terms;
    uint32_t *tlen, *df, *tf, *pos;
    uint64_t *cf;
    void *doc; /* uint32, or uint64 when wide */
    uint64_t nterms, tbytes, nnz, npos;
} block;

/* Runs by chunk. */
static int run_chunk_cmp(const void *a, const void *b)
{
    uint64_t x = (*(const run_hdr *const *)a)->chunk, y = (*(const run_hdr *const *)b)->chunk;
    return (x > y) - (x < y);
}

/* Sources by chunk: equal terms merge in document order. */
static int source_cmp(const void *a, const void *b)
{
    uint64_t x = ((const source *)a)->v.h->chunk, y = ((const source *)b)->v.h->chunk;
    return (x > y) - (x < y);
}

/* Samples by term, then weight. */
static int sample_cmp(const void *a, const void *b)
{
    const sample *x = a, *y = b;
    int c = bytes_cmp(x->s, x->len, y->s, y->len);
    return c ? c : (x->w > y->w) - (x->w < y->w);
}

/* What a term of a run will cost its owner: bytes out, plus a little per term. */
static double term_weight(const runv *v, uint64_t t, int positions)
{
    double p = (double)(v->poff[t + 1] - v->poff[t]), x = (double)(v->xoff[t + 1] - v->xoff[t]);
    return 32.0 + (double)(v->toff[t + 1] - v->toff[t]) + 8.0 * p + (positions ? 4.0 * x : 0.0);
}

/* Collective. Every run's weighted samples (its terms at equal steps of weight), from
 * all ranks, sorted; *store holds their bytes. */
static int gather_samples(ix *x, uint8_t **store, sample **out, size_t *nout)
{
    size_t cap = 0, len = 0;
    uint8_t *mine = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < x->nruns; i++) {
        runv v;
        view(x->runs[i], &v);
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
    int *cnt = hb_malloc((size_t)hb_size * sizeof *cnt), *dis = hb_malloc((size_t)hb_size * sizeof *dis);
    int c = (int)len;
    uint8_t *buf = NULL;
    size_t all = 0;
    if (rc == 0 && (!cnt || !dis || len >= INT_MAX)) rc = HB_EINTERNAL;
    if ((rc = hb_agree(rc)) == 0) {
        MPI_Allgather(&c, 1, MPI_INT, cnt, 1, MPI_INT, MPI_COMM_WORLD);
        for (int r = 0; r < hb_size; r++) dis[r] = (int)all, all += (size_t)cnt[r];
        buf = all < INT_MAX ? hb_malloc(all ? all : 1) : NULL;
        rc = hb_agree(buf ? 0 : HB_EINTERNAL);
    }
    if (rc == 0)
        rc = MPI_Allgatherv(mine, c, MPI_BYTE, buf, cnt, dis, MPI_BYTE, MPI_COMM_WORLD) == MPI_SUCCESS ? 0
                                                                                                     : HB_EINTERNAL;
    free(mine), free(cnt), free(dis);
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

/* Cuts samples [i0, i1) into k parts of equal weight: cut[j] (j < k-1) is the index of
 * the first sample of part j+1, so part j holds the terms below sample cut[j]. */
static void cut_samples(const sample *s, size_t i0, size_t i1, int k, size_t *cut)
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

/* The term range [a, b) of v that lies in [lo, hi) (NULL: unbounded), within [t0, t1). */
static void clip(const runv *v, uint64_t t0, uint64_t t1, const sample *lo, const sample *hi, uint64_t *a, uint64_t *b)
{
    *a = lo ? lower_bound(v, t0, t1, lo->s, lo->len) : t0;
    *b = hi ? lower_bound(v, *a, t1, hi->s, hi->len) : t1;
}

/* Bytes of the slice of terms [a, b) of v. */
static size_t slice_bytes(const runv *v, uint64_t a, uint64_t b, int positions)
{
    run_hdr h = {.n_terms = b - a, .term_bytes = v->toff[b] - v->toff[a], .nnz = v->poff[b] - v->poff[a],
                 .ntf = v->xoff[b] - v->xoff[a]};
    h.npos = positions ? h.ntf : 0;
    run_layout L;
    layout(&h, &L);
    return L.total;
}

/* Writes terms [a, b) of v as a slice at dst. */
static void put_slice(const runv *v, uint64_t a, uint64_t b, int positions, uint8_t *dst)
{
    run_hdr h = {.chunk = v->h->chunk, .doc0 = v->h->doc0, .n_terms = b - a,
                 .term_bytes = v->toff[b] - v->toff[a], .nnz = v->poff[b] - v->poff[a],
                 .ntf = v->xoff[b] - v->xoff[a]};
    memcpy(h.magic, RUN_MAGIC, 8);
    h.npos = positions ? h.ntf : 0;
    run_layout L;
    layout(&h, &L);
    h.bytes = L.total;
    memset(dst, 0, L.doc);
    zero_tails(dst, &h, &L);
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

/* Collective. Sends every run's slice of rank d's terms to rank d (one exchange of
 * bytes in blocks of XBLOCK, so that counts stay ints far past 2 GB); *src gets this
 * rank's own slices (pointing into its runs) and the received ones (into *recv). */
static int exchange_slices(ix *x, const sample *smp, const size_t *split, source **src, size_t *nsrc, uint8_t **recv)
{
    const int P = hb_size, me = hb_rank;
    uint64_t *a = hb_malloc((x->nruns ? x->nruns : 1) * (size_t)(P + 1) * sizeof *a);
    hb_xchg xc;
    int rc = hb_xchg_init(&xc, XBLOCK);
    if (rc == 0 && !a) rc = HB_EINTERNAL;
    /* a[i*(P+1) + d] is the first term of run i that rank d owns */
    for (size_t i = 0; rc == 0 && i < x->nruns; i++) {
        runv v;
        view(x->runs[i], &v);
        uint64_t *ai = a + i * (size_t)(P + 1);
        ai[0] = 0, ai[P] = v.h->n_terms;
        for (int d = 1; d < P; d++) {
            const sample *s = split[d - 1] < SIZE_MAX ? &smp[split[d - 1]] : NULL;
            ai[d] = s ? lower_bound(&v, ai[d - 1], v.h->n_terms, s->s, s->len) : v.h->n_terms;
        }
        for (int d = 0; d < P; d++)
            if (d != me && ai[d + 1] > ai[d]) xc.scount[d] += slice_bytes(&v, ai[d], ai[d + 1], x->positions);
    }
    if (rc == 0) rc = hb_xchg_layout(&xc);
    uint8_t *send = NULL, *rbuf = NULL;
    size_t scap = 0, rcap = 0;
    if (rc == 0) rc = hb_xchg_reserve((void **)&send, &scap, xc.stotal, 1);
    for (int d = 0; rc == 0 && d < P; d++) {
        uint8_t *p = send + xc.sdispl[d];
        for (size_t i = 0; d != me && i < x->nruns; i++) {
            runv v;
            view(x->runs[i], &v);
            const uint64_t *ai = a + i * (size_t)(P + 1);
            if (ai[d + 1] == ai[d]) continue;
            put_slice(&v, ai[d], ai[d + 1], x->positions, p);
            p += slice_bytes(&v, ai[d], ai[d + 1], x->positions);
        }
    }
    rc = hb_agree(rc);
    const hb_xchg_array xa = {send, (void **)&rbuf, &rcap, 1};
    if (rc == 0) rc = hb_xchg_run(&xc, &xa, 1);
    free(send);
    /* this rank's sources: its own runs' slices, then what it received, rank by rank */
    size_t ns = 0, cap = 0;
    source *s = NULL;
    for (size_t i = 0; rc == 0 && i < x->nruns; i++) {
        const uint64_t *ai = a + i * (size_t)(P + 1);
        if (ai[me + 1] == ai[me]) continue;
        if (hb_grow((void **)&s, &cap, ns + 1, sizeof *s)) rc = hb_err_set(HB_EINTERNAL, "index", "out of memory");
        else view(x->runs[i], &s[ns].v), s[ns].t0 = ai[me], s[ns].t1 = ai[me + 1], ns++;
    }
    const uint8_t *p = rbuf;
    for (int d = 0; rc == 0 && d < P; d++) {
        const uint8_t *end = p + xc.rcount[d];
        while (rc == 0 && p < end) {
            if (hb_grow((void **)&s, &cap, ns + 1, sizeof *s)) {
                rc = hb_err_set(HB_EINTERNAL, "index", "out of memory");
            } else if (check_run(p, (size_t)(end - p), x->positions, &s[ns].v) != 0) {
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

/* A source's current term in the merge heap. */
typedef struct mcur {
    uint64_t pre, t;
    const uint8_t *s;
    uint32_t len, src;
} mcur;

/* Heap order: term bytes, then source (chunk) order. */
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

/* Restores the heap below i. */
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

/* Points a cursor at term t of v. */
static void set_cur(mcur *c, const runv *v, uint64_t t)
{
    c->t = t;
    c->s = run_term(v, t, &c->len);
    c->pre = prefix8(c->s, c->len);
}

/* Merges terms [lo, hi) of the sources (sorted by chunk) into out. */
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

/* Frees a thread's merged block. */
static void free_block(block *b)
{
    free(b->terms), free(b->tlen), free(b->df), free(b->cf), free(b->doc), free(b->tf), free(b->pos);
    memset(b, 0, sizeof *b);
}

/* Collective. The local runs' documents, in runs of consecutive chunks: doc_length, and
 * doc_id copied from the input. Runs are sorted by chunk. */
static int write_documents(ix *x, hb_out *out)
{
    const uint64_t N = (uint64_t)x->N;
    HB_CALL(hb_out_dataset(out, HB_INDEX_DOC_LENGTH, HB_U32, 1, &N, "1", "tokens kept per document"));
    if (x->docid)
        HB_CALL(hb_out_dataset(out, HB_INDEX_DOC_ID, HB_I64, 1, &N, NULL, "document id from /corpus/doc_id"));
    hb_oset *dl = NULL, *di = NULL;
    int rc = hb_oset_open(out, HB_INDEX_DOC_LENGTH, &dl);
    if (x->docid && rc == 0) rc = hb_oset_open(out, HB_INDEX_DOC_ID, &di);
    int64_t *ids = NULL;
    size_t idcap = 0;
    for (size_t i = 0; rc == 0 && i < x->nruns;) {
        size_t j = i + 1;
        const run_hdr *h = (const run_hdr *)x->runs[i];
        while (j < x->nruns && ((const run_hdr *)x->runs[j])->chunk == ((const run_hdr *)x->runs[j - 1])->chunk + 1)
            j++;
        for (size_t k = i; rc == 0 && k < j; k++) {
            runv v;
            view(x->runs[k], &v);
            rc = hb_oset_write(dl, HB_U32, v.h->doc0, v.h->n_docs, v.doclen);
        }
        const run_hdr *last = (const run_hdr *)x->runs[j - 1];
        uint64_t n = last->doc0 + last->n_docs - h->doc0;
        if (rc == 0 && di && hb_grow((void **)&ids, &idcap, n, sizeof *ids)) rc = HB_EINTERNAL;
        if (rc == 0 && di) rc = hb_dset_read(x->docid, HB_I64, (int64_t)h->doc0, (int64_t)n, ids);
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

/* Collective. Creates the arrays of /index and writes every rank's blocks into them. */
static int write_index(ix *x, hb_out *out, const block *blk)
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

/* Collective. The attributes of /index and the stop word list. */
static int write_attributes(ix *x, hb_out *out, const uint64_t *c, uint64_t n_terms, uint64_t nnz)
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

/* Collective. Range-partitions the terms, moves the slices, merges and writes /index. */
static int index_finalize(void *state, hb_out *out)
{
    ix *x = state;
    const int T = x->nparts;
    if (x->nruns) qsort(x->runs, x->nruns, sizeof *x->runs, run_chunk_cmp);
    uint64_t c[6] = {0};
    for (size_t i = 0; i < x->nruns; i++) {
        const run_hdr *h = (const run_hdr *)x->runs[i];
        c[0] += h->ntf, c[1] += h->tokens, c[2] += h->too_long, c[3] += h->stop, c[4] += h->invalid_bytes;
        c[5] += h->empty_docs;
    }
    MPI_Allreduce(MPI_IN_PLACE, c, 6, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    double t0 = hb_now(), t[5];
    HB_CALL(hb_out_group(out, HB_INDEX_GROUP));
    HB_CALL(hb_out_attr_i64(out, HB_INDEX_GROUP, HB_FORMAT_VERSION_ATTR, HB_INDEX_FORMAT_VERSION));
    HB_CALL(write_documents(x, out));
    t[0] = hb_now();

    uint8_t *store = NULL, *recv = NULL;
    sample *smp = NULL;
    source *src = NULL;
    block *blk = hb_calloc((size_t)T, sizeof *blk);
    size_t nsmp = 0, nsrc = 0;
    size_t *split = hb_malloc((size_t)(hb_size + T) * sizeof *split), *tsplit = split ? split + hb_size : NULL;
    int rc = hb_agree(blk && split ? 0 : HB_EINTERNAL);
    if (rc == 0) rc = gather_samples(x, &store, &smp, &nsmp);
    t[1] = hb_now();
    if (rc == 0) {
        /* split[d] = first sample of rank d+1's terms; SIZE_MAX when no sample bounds it */
        cut_samples(smp, 0, nsmp, hb_size, split);
        for (int d = 0; d + 1 < hb_size; d++)
            if (split[d] >= nsmp) split[d] = SIZE_MAX;
    }
    if (rc == 0 && hb_size > 1) {
        rc = exchange_slices(x, smp, split, &src, &nsrc, &recv);
    } else if (rc == 0) {
        src = hb_malloc((x->nruns ? x->nruns : 1) * sizeof *src);
        rc = src ? 0 : HB_EINTERNAL;
        for (size_t i = 0; rc == 0 && i < x->nruns; i++) {
            view(x->runs[i], &src[i].v);
            src[i].t0 = 0, src[i].t1 = src[i].v.h->n_terms;
        }
        nsrc = x->nruns;
    }
    t[2] = hb_now();
    if (rc == 0) {
        qsort(src, nsrc, sizeof *src, source_cmp);
        /* threads take sub-ranges of this rank's samples of equal weight */
        size_t i0 = hb_rank == 0 ? 0 : split[hb_rank - 1], i1 = hb_rank == hb_size - 1 ? nsmp : split[hb_rank];
        if (i0 == SIZE_MAX) i0 = nsmp;
        if (i1 == SIZE_MAX) i1 = nsmp;
        if (i1 < i0) i1 = i0;
        cut_samples(smp, i0, i1, T, tsplit);
        int fail = 0;
#pragma omp parallel for schedule(static, 1) num_threads(T) reduction(min : fail)
        for (int k = 0; k < T; k++) {
            const sample *lo = k == 0 ? NULL : tsplit[k - 1] < nsmp ? &smp[tsplit[k - 1]] : NULL;
            const sample *hi = k == T - 1 ? NULL : tsplit[k] < nsmp ? &smp[tsplit[k]] : NULL;
            int empty = (k > 0 && !lo) || (k > 0 && lo && hi && tsplit[k - 1] == tsplit[k]);
            int r = empty ? (memset(&blk[k], 0, sizeof blk[k]), 0) : merge_range(x, src, nsrc, lo, hi, &blk[k]);
            fail = r < fail ? r : fail;
        }
        if (fail == -2) rc = hb_err_set(HB_EDATA, "index", "a term is in more than 2^32-1 documents (df is uint32)");
        else if (fail) rc = hb_err_set(HB_EINTERNAL, "index", "out of memory merging the postings");
    }
    rc = hb_agree(rc);
    t[3] = hb_now();
    /* the merged blocks hold everything now */
    free(src), free(recv), free(smp), free(store), free(split);
    for (size_t i = 0; i < x->nruns; i++) free(x->runs[i]);
    x->nruns = 0;
    if (rc == 0) rc = write_index(x, out, blk);
    t[4] = hb_now();
    HB_DEBUG("index: finalize: documents %.2fs, samples %.2fs, exchange %.2fs, merge %.2fs, write %.2fs", t[0] - t0,
             t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3]);
    uint64_t nt = 0, nnz = 0;
    for (int k = 0; blk && k < T; k++) nt += blk[k].nterms, nnz += blk[k].nnz, free_block(&blk[k]);
    free(blk);
    if (rc == 0) {
        uint64_t v[2] = {nt, nnz};
        MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        rc = write_attributes(x, out, c, v[0], v[1]);
    }
    return rc;
}

/* Frees the state; safe on a partly built one. */
static void index_destroy(void *state)
{
    ix *x = state;
    if (!x) return;
    hb_dset_close(x->text), hb_dset_close(x->offsets), hb_dset_close(x->docid);
    for (int p = 0; x->parts && p < x->nparts; p++) {
        part *pt = &x->parts[p];
        hb_lexer_free(pt->lx);
        free(pt->ts), free(pt->lt);
        free(pt->glob), free(pt->pl), free(pt->pd);
        free(pt->ptf), free(pt->ppos), free(pt->touched), free(pt->order);
    }
    free(x->parts);
    hb_analyzer_free(x->an);
    for (size_t i = 0; i < x->nruns; i++) free(x->runs[i]);
    free(x->runs), free(x->off), free(x->buf), free(x->doclen);
    free(x);
}

const hb_kernel hb_kernel_index = {
    .name = "index",
    .summary = "inverted index of a UTF-8 corpus: sorted terms, postings with tf (and positions), for BM25",
    .options = index_options,
    .default_chunk_rows = 65536,
    .validate = index_validate,
    .setup = index_setup,
    .map = index_map,
    .finalize = index_finalize,
    .save = index_save,
    .load = index_load,
    .destroy = index_destroy,
};
