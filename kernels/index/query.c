/* `h5batch query INDEX.h5 [--top K] [--json] [--k1 X] [--b Y] WORDS...` (DESIGN.md 4.3).
 *
 * The words are joined with spaces; text between double quotes is a phrase, the rest
 * single words. Both are cut into terms by the index's own tokenizer settings (stemmer,
 * stop words and length limit, read from the index), so a query matches what indexing
 * produced. Each distinct term and each phrase is one clause; a document's score is the
 * sum of the BM25 contributions of the clauses it matches, taken in a fixed order (terms
 * in byte order, then phrases in query order) so that the floating-point result is
 * reproducible. Only what the clauses need is read: a binary search in the term
 * dictionary, then each term's slice of the posting arrays (and of the positions, for a
 * phrase), and doc_length. */
#include "io/io.h"
#include "kernels/index/format.h"
#include "kernels/index/internal.h"
#include "kernels/kernel.h"
#include "kernels/index/tok.h"
#include "core/hb.h"
#include "core/opts.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct reader {
    const char *path;
    hb_in *in;
    hb_dset *terms, *toff, *poff, *pdoc, *ptf, *dl, *docid, *xoff, *pos;
    int64_t V, N, nnz, npos;
    size_t doc_bytes, xoff_bytes; /* element sizes of postings_doc and positions_offsets */
    int xoff_checked;             /* positions_offsets was checked (check_positions) */
    int positions;
    double avgdl;
    hb_analyzer *an;
    hb_lexer *lx;
    uint8_t *tbuf;
    size_t tcap;
    /* names of the documents (/docs) and the corpus, for titles and snippets */
    hb_table *ids, *titles;    /* string doc ids; titles */
    int title_is_id;           /* the titles are the string ids (the corpus had no titles) */
    const char *corpus_opt;    /* --corpus */
    char corpus[4096];         /* the corpus file */
    hb_in *cin;                /* NULL: no snippets */
    hb_dset *ctext, *coff;     /* text as bytes and offsets */
    int64_t ctext_n;           /* bytes of ctext */
    hb_table *cstr;            /* text as strings */
    /* a merged index's corpus files (/docs/corpora): the one open is seg_cur, whose first
     * document is seg_first[seg_cur] */
    int64_t nseg, seg_cur;
    uint64_t *seg_first;
    hb_strs seg_files;
    hb_lexer *slx;             /* a second lexer: the query's term bytes stay where they are */
    hb_strs s;
    uint8_t *dbuf;
    size_t dcap;
} reader;

/* One term's postings, with positions when a phrase needs them. */
typedef struct plist {
    uint64_t n, *doc, *xoff;
    uint32_t *tf, *pos;
} plist;

/* A clause: documents (ascending) with their tf for this clause, and its idf. */
typedef struct clause {
    uint64_t n, *doc;
    uint32_t *tf;
    double idf;
} clause;

/* A phrase: its terms (lexer ids, then bytes) and their positions relative to the first. */
typedef struct phrase {
    int m;
    uint32_t *id;
    const uint8_t **t;
    uint32_t *len, *delta;
} phrase;

typedef struct hit {
    double score;
    uint64_t doc;
} hit;

/* Opens the dataset at path, checking its length when want >= 0. */
static int open_set(reader *r, const char *path, hb_dset **d, int64_t want, size_t *elem_bytes, int64_t *n)
{
    hb_dset_info info;
    HB_CALL(hb_dset_open(r->in, path, d, &info));
    if (elem_bytes) *elem_bytes = info.elem_bytes;
    if (n) *n = info.n;
    HB_CHECK(want < 0 || info.n == want, HB_EDATA, r->path, "%s has %lld elements, expected %lld", path,
             (long long)info.n, (long long)want);
    return 0;
}

/* Not collective. Checks the index's format version (65 when this reader does not know
 * it); an index without one was written before versions were kept, in version 1's layout. */
static int check_format_version(reader *r)
{
    int64_t v;
    char s[64];
    if (hb_in_attr_i64(r->in, HB_INDEX_GROUP, HB_FORMAT_VERSION_ATTR, &v) != 0) {
        /* a string: the error recorded says it is not an integer */
        if (hb_in_attr_str(r->in, HB_INDEX_GROUP, HB_FORMAT_VERSION_ATTR, s, sizeof s) == 0) return HB_EDATA;
        hb_err_clear(); /* absent, which the reader reports as an error: an older index */
        return 0;
    }
    HB_CHECK(v == HB_INDEX_FORMAT_VERSION, HB_EDATA, r->path,
             "index format version %lld is unknown to this h5batch, which reads version %d (an index written by a newer "
             "h5batch? query it with that one, or index the corpus again with this one)",
             (long long)v, HB_INDEX_FORMAT_VERSION);
    return 0;
}

static int read_u64(hb_dset *d, size_t elem, int64_t start, int64_t n, uint64_t *out);

/* Checks that the offsets array d (n elements of elem bytes) starts at 0, never decreases
 * (strict: always increases) and ends at end, reading it in blocks: 65 naming the first
 * bad element. Every later read of a slice of d is then within the array it indexes. */
static int check_offsets(reader *r, hb_dset *d, size_t elem, const char *name, int64_t n, uint64_t end, const char *of,
                         int strict)
{
    enum { BLOCK = 1 << 20 };
    uint64_t *buf = hb_malloc((BLOCK + 1) * sizeof *buf), prev = 0;
    if (!buf) return HB_EINTERNAL;
    int rc = 0;
    for (int64_t a = 0; rc == 0 && a < n; a += BLOCK) {
        const int64_t m = n - a < BLOCK ? n - a : BLOCK;
        rc = read_u64(d, elem, a, m, buf);
        for (int64_t i = 0; rc == 0 && i < m; i++) {
            const uint64_t v = buf[i];
            if (a + i == 0 && v != 0)
                rc = hb_err_set(HB_EDATA, r->path, "%s[0] = %llu; offsets start at 0 (a corrupt index?)", name,
                                (unsigned long long)v);
            else if (v < prev || (strict && a + i > 0 && v == prev))
                rc = hb_err_set(HB_EDATA, r->path,
                                "%s[%lld] = %llu is %s the element before it, %llu (offsets must %s; a corrupt index?)",
                                name, (long long)(a + i), (unsigned long long)v, strict ? "not above" : "less than",
                                (unsigned long long)prev, strict ? "increase: no term is empty" : "not decrease");
            else if (v > end)
                rc = hb_err_set(HB_EDATA, r->path, "%s[%lld] = %llu is past the end of %s (%llu elements; a corrupt index?)",
                                name, (long long)(a + i), (unsigned long long)v, of, (unsigned long long)end);
            prev = v;
        }
    }
    if (rc == 0 && n > 0 && prev != end)
        rc = hb_err_set(HB_EDATA, r->path, "%s[%lld] = %llu is not the length of %s (%llu elements; a corrupt index?)",
                        name, (long long)(n - 1), (unsigned long long)prev, of, (unsigned long long)end);
    free(buf);
    return rc;
}

/* Reads the integer attribute name of the index group, which must lie in [lo, hi]. */
static int attr_in(reader *r, const char *name, int64_t lo, int64_t hi, int64_t *v)
{
    HB_CALL(hb_in_attr_i64(r->in, HB_INDEX_GROUP, name, v));
    HB_CHECK(*v >= lo && *v <= hi, HB_EDATA, r->path, HB_INDEX_GROUP " attribute %s = %lld is out of range (%lld to %lld)",
             name, (long long)*v, (long long)lo, (long long)hi);
    return 0;
}

/* Checks the term and postings offsets against the arrays they index, once, before any
 * is used: a damaged index is 65 naming the dataset, never a read out of bounds. */
static int check_index(reader *r, int64_t terms_bytes, int64_t nnz, int64_t npos)
{
    HB_CALL(check_offsets(r, r->toff, 8, HB_INDEX_TERM_OFFSETS, r->V + 1, (uint64_t)terms_bytes, HB_INDEX_TERMS, 1));
    HB_CALL(check_offsets(r, r->poff, 8, HB_INDEX_POSTINGS_OFFSETS, r->V + 1, (uint64_t)nnz, HB_INDEX_POSTINGS_DOC, 0));
    r->nnz = nnz, r->npos = npos;
    return 0;
}

/* Checks positions_offsets like the others, once, before a phrase first needs it: it is
 * as long as the postings, and only phrases read it. */
static int check_positions(reader *r)
{
    if (r->xoff_checked) return 0;
    HB_CALL(check_offsets(r, r->xoff, r->xoff_bytes, HB_INDEX_POSITIONS_OFFSETS, r->nnz + 1, (uint64_t)r->npos,
                          HB_INDEX_POSITIONS, 0));
    r->xoff_checked = 1;
    return 0;
}

/* Opens the string column name of /docs (absent: *t stays NULL), which must hold N strings. */
static int open_docs_column(reader *r, const char *name, hb_table **t)
{
    char path[64];
    snprintf(path, sizeof path, HB_INDEX_DOCS_GROUP "/%s", name);
    *t = NULL;
    if (!hb_in_exists(r->in, path)) return 0;
    const char *const cols[1] = {name};
    HB_CALL(hb_table_open_any(r->in, HB_INDEX_DOCS_GROUP, cols, 1, t));
    HB_CHECK(hb_table_kind(*t, 0) == HB_COL_STRING && hb_table_rows(*t) == r->N, HB_EDATA, r->path,
             "%s is not %lld strings, one per document", path, (long long)r->N);
    return 0;
}

/* Opens corpus file r->corpus of n documents, for snippets; when it is gone or no longer
 * fits the index, says so once and answers without snippets (from it). */
static int open_corpus_file(reader *r, int64_t n)
{
    char text[600] = "", off[600] = "";
    if (hb_in_attr_str(r->in, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_CORPUS_TEXT, text, sizeof text) != 0 ||
        hb_in_attr_str(r->in, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_CORPUS_OFFSETS, off, sizeof off) != 0)
        return hb_err_set(HB_EDATA, r->path, HB_INDEX_DOCS_GROUP " names its corpus file but not its text");
    int rc = hb_in_open(r->corpus, &r->cin);
    hb_dset_info ti = {0}, oi = {0};
    if (rc == 0 && off[0]) {
        rc = hb_dset_open(r->cin, text, &r->ctext, &ti);
        r->ctext_n = ti.n;
        if (rc == 0) rc = hb_dset_open(r->cin, off, &r->coff, &oi);
        if (rc == 0 && oi.n != n + 1)
            rc = hb_err_set(HB_EDATA, r->corpus, "%s has %lld entries, but the index has %lld documents%s", off,
                            (long long)oi.n, (long long)n, r->nseg ? " from it" : "");
    } else if (rc == 0) {
        char *slash = strrchr(text, '/');
        const char *col = slash ? slash + 1 : text;
        if (slash && slash != text) *slash = '\0';
        else if (slash) snprintf(text, sizeof text, "/");
        const char *const cols[1] = {col};
        rc = hb_table_open_any(r->cin, text, cols, 1, &r->cstr);
        if (rc == 0 && (hb_table_kind(r->cstr, 0) != HB_COL_STRING || hb_table_rows(r->cstr) != n))
            rc = hb_err_set(HB_EDATA, r->corpus, "the corpus's text is not %lld strings, one per document",
                            (long long)n);
    }
    if (rc == 0) return 0;
    fprintf(stderr, "h5batch: warning: query: no snippets%s: %s (give the corpus with --corpus FILE)\n",
            r->nseg ? " from one of the merged corpus files" : "", hb_err_msg());
    hb_err_clear();
    hb_dset_close(r->ctext), hb_dset_close(r->coff), hb_table_close(r->cstr), hb_in_close(r->cin);
    r->ctext = r->coff = NULL, r->cstr = NULL, r->cin = NULL;
    return 0;
}

/* Reads the corpus files of a merged index (/docs/corpora), opened one at a time as the
 * hits need them. */
static int open_corpora(reader *r)
{
    const char *const cols[1] = {"file"};
    hb_table *t = NULL;
    int64_t n = 0;
    int rc = hb_in_read_array(r->in, HB_INDEX_CORPORA_FIRST_DOC, HB_U64, &n, (void **)&r->seg_first);
    if (rc == 0) rc = hb_table_open_any(r->in, HB_INDEX_CORPORA_GROUP, cols, 1, &t);
    if (rc == 0 && (hb_table_kind(t, 0) != HB_COL_STRING || hb_table_rows(t) != n || n < 1))
        rc = hb_err_set(HB_EDATA, r->path, HB_INDEX_CORPORA_GROUP " is not one file name per first document");
    if (rc == 0) rc = hb_table_read_str(t, 0, 0, n, &r->seg_files);
    for (int64_t k = 0; rc == 0 && k < n; k++)
        if ((k == 0 && r->seg_first[0] != 0) || (k > 0 && r->seg_first[k] < r->seg_first[k - 1]) ||
            r->seg_first[k] > (uint64_t)r->N)
            rc = hb_err_set(HB_EDATA, r->path, HB_INDEX_CORPORA_FIRST_DOC "[%lld] is out of order", (long long)k);
    hb_table_close(t);
    r->nseg = rc == 0 ? n : 0;
    r->seg_cur = -1;
    return rc;
}

/* Opens the corpus the index was made from, for snippets (a merged index's: see
 * open_corpora). */
static int open_corpus(reader *r)
{
    if (!r->corpus_opt && hb_in_exists(r->in, HB_INDEX_CORPORA_FILE)) return open_corpora(r);
    if (!r->corpus_opt &&
        hb_in_attr_str(r->in, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_CORPUS_FILE, r->corpus, sizeof r->corpus) != 0)
        return 0; /* an index from before /docs: no snippets */
    if (r->corpus_opt) snprintf(r->corpus, sizeof r->corpus, "%s", r->corpus_opt);
    return open_corpus_file(r, r->N);
}

/* Document d's number in its corpus file, opening the file of a merged index that holds
 * it; -1 when no file can give its snippet. */
static int64_t corpus_doc(reader *r, uint64_t d)
{
    if (!r->nseg) return r->cin ? (int64_t)d : -1;
    int64_t lo = 0, hi = r->nseg - 1; /* the last file whose first document is not after d */
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (r->seg_first[mid] <= d) lo = mid;
        else hi = mid - 1;
    }
    if (lo != r->seg_cur) {
        hb_dset_close(r->ctext), hb_dset_close(r->coff), hb_table_close(r->cstr), hb_in_close(r->cin);
        r->ctext = r->coff = NULL, r->cstr = NULL, r->cin = NULL;
        const uint64_t end = lo + 1 < r->nseg ? r->seg_first[lo + 1] : (uint64_t)r->N;
        const size_t len = (size_t)(r->seg_files.off[lo + 1] - r->seg_files.off[lo]);
        snprintf(r->corpus, sizeof r->corpus, "%.*s", (int)len, r->seg_files.bytes + r->seg_files.off[lo]);
        r->seg_cur = lo;
        if (open_corpus_file(r, (int64_t)(end - r->seg_first[lo])) != 0) return -1;
    }
    return r->cin ? (int64_t)(d - r->seg_first[lo]) : -1;
}

/* The names of the documents and their corpus. */
static int open_names(reader *r)
{
    char from[16];
    HB_CALL(open_docs_column(r, "doc_id", &r->ids));
    HB_CALL(open_docs_column(r, "title", &r->titles));
    r->title_is_id = r->titles &&
                     hb_in_attr_str(r->in, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_TITLE_FROM, from, sizeof from) == 0 &&
                     strcmp(from, "doc_id") == 0;
    return open_corpus(r);
}

/* Opens the index and its arrays, and builds the index's own tokenizer from its attributes. */
static int open_index(reader *r)
{
    HB_CALL(hb_in_open(r->path, &r->in));
    HB_CHECK(hb_in_exists(r->in, HB_INDEX_GROUP), HB_EDATA, r->path,
             "not an index: no " HB_INDEX_GROUP " group (h5batch run with kernel = index)");
    HB_CALL(check_format_version(r));
    int64_t ntok, maxb, pos;
    char stemmer[64];
    /* document numbers are uint32 or uint64 and BM25 needs N > 0 only when a term is found */
    HB_CALL(attr_in(r, HB_INDEX_ATTR_N_DOCS, 0, INT64_MAX / 16, &r->N));
    HB_CALL(attr_in(r, HB_INDEX_ATTR_N_TERMS, 0, INT64_MAX / 16, &r->V));
    HB_CALL(attr_in(r, HB_INDEX_ATTR_TOTAL_TOKENS, 0, INT64_MAX, &ntok));
    HB_CALL(attr_in(r, HB_INDEX_ATTR_MAX_TOKEN_BYTES, 1, 65536, &maxb));
    HB_CALL(attr_in(r, HB_INDEX_ATTR_POSITIONS, 0, 1, &pos));
    HB_CHECK(hb_in_attr_str(r->in, HB_INDEX_GROUP, HB_INDEX_ATTR_STEMMER, stemmer, sizeof stemmer) == 0, HB_EDATA,
             r->path, HB_INDEX_GROUP " has no attribute '" HB_INDEX_ATTR_STEMMER "'");
    r->positions = pos != 0;
    r->avgdl = r->N > 0 ? (double)ntok / (double)r->N : 0.0;
    hb_dset_info ti;
    int64_t npos = 0;
    HB_CALL(hb_dset_open(r->in, HB_INDEX_TERMS, &r->terms, &ti));
    HB_CALL(open_set(r, HB_INDEX_TERM_OFFSETS, &r->toff, r->V + 1, NULL, NULL));
    HB_CALL(open_set(r, HB_INDEX_POSTINGS_OFFSETS, &r->poff, r->V + 1, NULL, NULL));
    int64_t nnz = 0;
    HB_CALL(open_set(r, HB_INDEX_POSTINGS_DOC, &r->pdoc, -1, &r->doc_bytes, &nnz));
    HB_CALL(open_set(r, HB_INDEX_POSTINGS_TF, &r->ptf, nnz, NULL, NULL));
    HB_CALL(open_set(r, HB_INDEX_DOC_LENGTH, &r->dl, r->N, NULL, NULL));
    if (hb_in_exists(r->in, HB_INDEX_DOC_ID)) HB_CALL(open_set(r, HB_INDEX_DOC_ID, &r->docid, r->N, NULL, NULL));
    if (r->positions) {
        HB_CALL(open_set(r, HB_INDEX_POSITIONS_OFFSETS, &r->xoff, nnz + 1, &r->xoff_bytes, NULL));
        HB_CALL(open_set(r, HB_INDEX_POSITIONS, &r->pos, -1, NULL, &npos));
    }
    HB_CALL(check_index(r, ti.n, nnz, npos));
    char *stop = NULL;
    int64_t sl = 0;
    int rc = 0;
    if (hb_in_exists(r->in, HB_INDEX_STOPWORDS)) {
        hb_dset *sd = NULL;
        hb_dset_info info = {0};
        rc = hb_dset_open(r->in, HB_INDEX_STOPWORDS, &sd, &info);
        sl = info.n;
        stop = rc == 0 ? hb_malloc((size_t)sl + 1) : NULL;
        if (rc == 0 && !stop) rc = HB_EINTERNAL;
        if (rc == 0) rc = hb_dset_read(sd, HB_U8, 0, sl, stop);
        hb_dset_close(sd);
    }
    /* checked here, not by the analyzer: its 78 (a job file's error) would be the first error kept */
    if (rc == 0 && !hb_tok_stemmer_valid(stemmer))
        rc = hb_err_set(HB_EDATA, r->path, HB_INDEX_GROUP " attribute " HB_INDEX_ATTR_STEMMER " = '%s' is not a stemmer this h5batch knows (none, or: %s)",
                        stemmer, hb_tok_stemmers());
    /* a stop list as stored is already normalized; the tokenizer reads it back the same */
    if (rc == 0) rc = hb_analyzer_new(stemmer, (int)maxb, stop ? stop : NULL, (size_t)sl, &r->an);
    free(stop);
    if (rc == 0) rc = hb_lexer_new(r->an, &r->lx);
    if (rc == 0) rc = hb_lexer_new(r->an, &r->slx);
    if (rc == 0) rc = open_names(r);
    return rc;
}

/* Closes everything open_index opened; safe on a partly opened reader. */
static void close_index(reader *r)
{
    hb_dset *all[] = {r->terms, r->toff, r->poff, r->pdoc, r->ptf, r->dl, r->docid, r->xoff, r->pos, r->ctext, r->coff};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hb_dset_close(all[i]);
    hb_table_close(r->ids), hb_table_close(r->titles), hb_table_close(r->cstr);
    hb_in_close(r->cin);
    hb_strs_free(&r->s);
    free(r->seg_first);
    hb_strs_free(&r->seg_files);
    free(r->dbuf);
    hb_lexer_free(r->slx);
    hb_lexer_free(r->lx);
    hb_analyzer_free(r->an);
    hb_in_close(r->in);
    free(r->tbuf);
}

/* The index of term s in the dictionary, or -1: a binary search reading one entry of
 * term_offsets and one term's bytes per step. */
static int find_term(reader *r, const uint8_t *s, uint32_t len, int64_t *idx)
{
    int64_t lo = 0, hi = r->V;
    *idx = -1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        uint64_t o[2];
        HB_CALL(hb_dset_read(r->toff, HB_U64, mid, 2, o));
        HB_CHECK(o[1] >= o[0] && o[1] - o[0] < (1u << 24), HB_EDATA, r->path, HB_INDEX_TERM_OFFSETS "[%lld] is corrupt",
                 (long long)mid);
        size_t tl = (size_t)(o[1] - o[0]);
        if (tl > r->tcap) {
            uint8_t *p = hb_realloc(r->tbuf, tl);
            if (!p) return HB_EINTERNAL;
            r->tbuf = p, r->tcap = tl;
        }
        HB_CALL(hb_dset_read(r->terms, HB_U8, (int64_t)o[0], (int64_t)tl, r->tbuf));
        int c = bytes_cmp(r->tbuf, tl, s, len);
        if (c == 0) return *idx = mid, 0;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* Reads n elements of an unsigned integer dataset of elem-byte elements as uint64 into
 * out: 4-byte ones are read as they are and widened here, which is much faster than
 * HDF5's conversion. */
static int read_u64(hb_dset *d, size_t elem, int64_t start, int64_t n, uint64_t *out)
{
    if (elem != 4) return hb_dset_read(d, HB_U64, start, n, out);
    uint32_t *narrow = (uint32_t *)(out + n) - n; /* the upper half of out */
    HB_CALL(hb_dset_read(d, HB_U32, start, n, narrow));
    /* forward: element i lands at bytes [8i, 8i+8), never past what is still unread */
    for (int64_t i = 0; i < n; i++) out[i] = narrow[i];
    return 0;
}

/* Frees a posting list. */
static void free_plist(plist *p)
{
    free(p->doc), free(p->tf), free(p->xoff), free(p->pos);
    memset(p, 0, sizeof *p);
}

/* Term s's postings (empty when it is not in the index), with positions when asked. */
static int read_postings(reader *r, const uint8_t *s, uint32_t len, int with_pos, plist *p)
{
    memset(p, 0, sizeof *p);
    int64_t t;
    HB_CALL(find_term(r, s, len, &t));
    if (t < 0) return 0;
    uint64_t o[2];
    HB_CALL(hb_dset_read(r->poff, HB_U64, t, 2, o));
    HB_CHECK(o[1] >= o[0] && o[1] - o[0] <= (uint64_t)r->N, HB_EDATA, r->path,
             HB_INDEX_POSTINGS_OFFSETS "[%lld] is corrupt", (long long)t);
    uint64_t n = o[1] - o[0];
    p->n = n;
    p->doc = hb_malloc((n ? n : 1) * sizeof *p->doc);
    p->tf = hb_malloc((n ? n : 1) * sizeof *p->tf);
    if (!p->doc || !p->tf) return HB_EINTERNAL;
    HB_CALL(read_u64(r->pdoc, r->doc_bytes, (int64_t)o[0], (int64_t)n, p->doc));
    HB_CALL(hb_dset_read(r->ptf, HB_U32, (int64_t)o[0], (int64_t)n, p->tf));
    if (with_pos) {
        p->xoff = hb_malloc((n + 1) * sizeof *p->xoff);
        if (!p->xoff) return HB_EINTERNAL;
        HB_CALL(read_u64(r->xoff, r->xoff_bytes, (int64_t)o[0], (int64_t)n + 1, p->xoff));
        uint64_t np = p->xoff[n] - p->xoff[0];
        HB_CHECK(p->xoff[n] >= p->xoff[0], HB_EDATA, r->path, HB_INDEX_POSITIONS_OFFSETS " is corrupt");
        p->pos = hb_malloc((np ? np : 1) * sizeof *p->pos);
        if (!p->pos) return HB_EINTERNAL;
        HB_CALL(hb_dset_read(r->pos, HB_U32, (int64_t)p->xoff[0], (int64_t)np, p->pos));
    }
    return 0;
}

/* BM25's idf of a clause found in df documents. */
static double idf_of(const reader *r, uint64_t df)
{
    return log(1 + ((double)((uint64_t)r->N - df) + 0.5) / ((double)df + 0.5));
}

/* The documents containing the phrase, with how often they contain it. */
static int phrase_clause(reader *r, const phrase *ph, clause *c)
{
    plist *l = hb_calloc((size_t)ph->m, sizeof *l);
    uint64_t *at = hb_calloc((size_t)ph->m, sizeof *at);
    int rc = l && at ? check_positions(r) : HB_EINTERNAL;
    for (int k = 0; rc == 0 && k < ph->m; k++) rc = read_postings(r, ph->t[k], ph->len[k], 1, &l[k]);
    if (rc == 0) {
        c->doc = hb_malloc((l[0].n ? l[0].n : 1) * sizeof *c->doc);
        c->tf = hb_malloc((l[0].n ? l[0].n : 1) * sizeof *c->tf);
        if (!c->doc || !c->tf) rc = HB_EINTERNAL;
    }
    for (uint64_t j = 0; rc == 0 && j < l[0].n; j++) {
        const uint64_t d = l[0].doc[j];
        int all = 1;
        for (int k = 1; k < ph->m && all; k++) {
            while (at[k] < l[k].n && l[k].doc[at[k]] < d) at[k]++;
            all = at[k] < l[k].n && l[k].doc[at[k]] == d;
        }
        if (!all) continue;
        /* positions ascend in every list: one pointer per later term walks along */
        uint64_t cur[64] = {0}, count = 0;
        const uint32_t *p0 = l[0].pos + (l[0].xoff[j] - l[0].xoff[0]);
        const uint64_t n0 = l[0].xoff[j + 1] - l[0].xoff[j];
        for (uint64_t i = 0; i < n0; i++) {
            int ok = 1;
            for (int k = 1; k < ph->m && ok; k++) {
                const uint64_t a = at[k];
                const uint32_t *pk = l[k].pos + (l[k].xoff[a] - l[k].xoff[0]);
                const uint64_t nk = l[k].xoff[a + 1] - l[k].xoff[a];
                const uint64_t want = (uint64_t)p0[i] + ph->delta[k];
                while (cur[k] < nk && pk[cur[k]] < want) cur[k]++;
                ok = cur[k] < nk && pk[cur[k]] == want;
            }
            count += ok;
        }
        if (count) c->doc[c->n] = d, c->tf[c->n] = (uint32_t)count, c->n++;
    }
    for (int k = 0; l && k < ph->m; k++) free_plist(&l[k]);
    free(l), free(at);
    c->idf = idf_of(r, c->n);
    return rc;
}

/* hit a ranks below hit b: a lower score, or the same score and a later document. */
static int worse(const hit *a, const hit *b)
{
    return a->score < b->score || (a->score == b->score && a->doc > b->doc);
}

/* Restores the min-heap of hits (worst on top) below i. */
static void heap_down(hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && worse(&h[l], &h[m])) m = l;
        if (l + 1 < n && worse(&h[l + 1], &h[m])) m = l + 1;
        if (m == i) return;
        hit t = h[i];
        h[i] = h[m], h[m] = t;
        i = m;
    }
}

/* Restores the min-heap of hits above i. */
static void heap_up(hit *h, size_t i)
{
    while (i > 0 && worse(&h[i], &h[(i - 1) / 2])) {
        hit t = h[i];
        h[i] = h[(i - 1) / 2], h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* Hits best first: higher score, then lower document number. */
static int hit_cmp(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    return worse(x, y) ? 1 : worse(y, x) ? -1 : 0;
}

/* The top k documents over the clauses, document at a time; *n gets how many. */
static int rank_docs(reader *r, const clause *c, int nc, double k1, double b, hit *top, size_t k, size_t *n)
{
    *n = 0;
    uint64_t total = 0;
    for (int i = 0; i < nc; i++) total += c[i].n;
    if (total == 0) return 0;
    uint32_t *dl = hb_malloc((size_t)r->N * sizeof *dl);
    size_t *at = hb_calloc((size_t)nc, sizeof *at);
    int rc = dl && at ? hb_dset_read(r->dl, HB_U32, 0, r->N, dl) : HB_EINTERNAL;
    const double avgdl = r->avgdl;
    for (;;) {
        if (rc) break;
        uint64_t d = UINT64_MAX;
        for (int i = 0; i < nc; i++)
            if (at[i] < c[i].n && c[i].doc[at[i]] < d) d = c[i].doc[at[i]];
        if (d == UINT64_MAX) break;
        if (d >= (uint64_t)r->N) {
            rc = hb_err_set(HB_EDATA, r->path, HB_INDEX_POSTINGS_DOC " names document %llu of %lld",
                            (unsigned long long)d, (long long)r->N);
            break;
        }
        double score = 0;
        for (int i = 0; i < nc; i++) {
            if (at[i] >= c[i].n || c[i].doc[at[i]] != d) continue;
            const double tf = c[i].tf[at[i]++];
            score += c[i].idf * (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * (double)dl[d] / avgdl));
        }
        hit h = {score, d};
        if (*n < k) {
            top[*n] = h;
            heap_up(top, (*n)++);
        } else if (worse(&top[0], &h)) {
            top[0] = h;
            heap_down(top, *n, 0);
        }
    }
    free(dl), free(at);
    if (rc == 0) qsort(top, *n, sizeof *top, hit_cmp);
    return rc;
}

/* JSON string of len bytes of UTF-8 (not UTF-8: U+FFFD). */
static void json_str(FILE *f, const uint8_t *s, size_t len) { hb_json_str(f, (const char *)s, len); }

/* A word of the query: its term id in the reader's lexer, then its bytes. */
typedef struct term {
    uint32_t id;
    const uint8_t *s;
    uint32_t len;
} term;

/* Terms by their bytes. */
static int term_cmp(const void *a, const void *b)
{
    const term *x = a, *y = b;
    return bytes_cmp(x->s, x->len, y->s, y->len);
}

typedef struct query {
    term *words;
    int nwords;
    phrase *ph;
    int nph;
} query;

/* Cuts text into the query's words and phrases with the index's tokenizer. Terms are
 * kept as lexer ids while the lexer grows, and turned into bytes at the end. */
static int parse_query(reader *r, const char *text, query *q)
{
    size_t len = strlen(text), nq = 0;
    for (size_t i = 0; i < len; i++) nq += text[i] == '"';
    if (nq % 2) return hb_err_set(HB_EUSAGE, "query", "unbalanced double quote in the query");
    q->words = hb_malloc((len + 1) * sizeof *q->words);
    q->ph = hb_calloc(nq / 2 + 1, sizeof *q->ph);
    if (!q->words || !q->ph) return HB_EINTERNAL;
    size_t start = 0;
    for (int part = 0; start <= len; part++) {
        const char *e = strchr(text + start, '"');
        size_t end = e ? (size_t)(e - text) : len;
        const uint32_t *ids;
        size_t n;
        if (hb_lexer_run(r->lx, (const uint8_t *)text + start, end - start, &ids, &n))
            return hb_err_set(HB_EINTERNAL, "query", "out of memory in the tokenizer");
        size_t kept = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (ids[i] < HB_TOK_STOP && kept++ == 0) first = i;
        if (part % 2 == 1 && kept >= 2) {
            HB_CHECK(r->positions, HB_EUSAGE, r->path,
                     "the index has no positions, so it cannot match the phrase \"%.*s\" (index with positions = true)",
                     (int)(end - start), text + start);
            HB_CHECK(kept <= 64, HB_EUSAGE, "query", "a phrase may hold at most 64 terms");
            phrase *ph = &q->ph[q->nph++];
            ph->id = hb_malloc(kept * sizeof *ph->id);
            ph->t = hb_malloc(kept * sizeof *ph->t);
            ph->len = hb_malloc(kept * sizeof *ph->len);
            ph->delta = hb_malloc(kept * sizeof *ph->delta);
            if (!ph->id || !ph->t || !ph->len || !ph->delta) return HB_EINTERNAL;
            for (size_t i = first; i < n; i++) {
                if (ids[i] >= HB_TOK_STOP) continue;
                ph->id[ph->m] = ids[i];
                ph->delta[ph->m++] = (uint32_t)(i - first);
            }
            /* the same phrase twice is one clause */
            for (int j = 0; j + 1 < q->nph; j++) {
                const phrase *o = &q->ph[j];
                int same = o->m == ph->m;
                for (int k = 0; same && k < ph->m; k++) same = o->delta[k] == ph->delta[k] && o->id[k] == ph->id[k];
                if (same) {
                    free(ph->id), free(ph->t), free(ph->len), free(ph->delta);
                    memset(ph, 0, sizeof *ph);
                    q->nph--;
                    break;
                }
            }
        } else {
            for (size_t i = 0; i < n; i++)
                if (ids[i] < HB_TOK_STOP) q->words[q->nwords++].id = ids[i];
        }
        start = end + 1;
    }
    for (int i = 0; i < q->nwords; i++) q->words[i].s = hb_lexer_term(r->lx, q->words[i].id, &q->words[i].len);
    for (int i = 0; i < q->nph; i++)
        for (int k = 0; k < q->ph[i].m; k++) q->ph[i].t[k] = hb_lexer_term(r->lx, q->ph[i].id[k], &q->ph[i].len[k]);
    qsort(q->words, (size_t)q->nwords, sizeof *q->words, term_cmp);
    int u = 0;
    for (int i = 0; i < q->nwords; i++)
        if (u == 0 || term_cmp(&q->words[u - 1], &q->words[i]) != 0) q->words[u++] = q->words[i];
    q->nwords = u;
    return 0;
}

/* Frees a parsed query. */
static void free_query(query *q)
{
    for (int i = 0; q->ph && i < q->nph; i++)
        free(q->ph[i].id), free(q->ph[i].t), free(q->ph[i].len), free(q->ph[i].delta);
    free(q->ph), free(q->words);
}

/* A snippet: words around the first match, the words cut at white space. */
enum { SNIP_BEFORE = 8, SNIP_AFTER = 16, SNIP_BYTES = 320, SNIP_SCAN = 1 << 20, NAME_BYTES = 512 };

/* What is printed of a hit besides its numbers: NUL-terminated, displayable UTF-8. */
typedef struct shown {
    char doc[NAME_BYTES], title[NAME_BYTES], snippet[SNIP_BYTES + 8];
    int has_doc, has_title, has_snippet;
} shown;

/* White space that separates the words of a snippet. */
static int is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Copies s[0..n) to out (at most cap bytes and a NUL) as displayable UTF-8: an invalid byte
 * becomes U+FFFD, control characters (terminal escapes too) and runs of white space one
 * space, none at the ends. *cut = 1 when it did not all fit. */
static size_t clean(const uint8_t *s, size_t n, char *out, size_t cap, int *cut)
{
    size_t o = 0;
    int pending = 0;
    *cut = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) c = 0xFFFD, k = 1;
        i += (size_t)k;
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0x2028 || c == 0x2029) {
            pending = o > 0;
            continue;
        }
        if (c == ' ') {
            pending = o > 0;
            continue;
        }
        utf8proc_uint8_t enc[4];
        const size_t el = (size_t)utf8proc_encode_char(c, enc);
        if (o + el + (size_t)pending > cap) {
            *cut = 1;
            break;
        }
        if (pending) out[o++] = ' ', pending = 0;
        memcpy(out + o, enc, el);
        o += el;
    }
    out[o] = '\0';
    return o;
}

/* Whether t is one of the query's terms, a word's or a phrase's. */
static int is_query_term(const query *q, const uint8_t *t, uint32_t len)
{
    for (int i = 0; i < q->nwords; i++)
        if (bytes_cmp(q->words[i].s, q->words[i].len, t, len) == 0) return 1;
    for (int i = 0; i < q->nph; i++)
        for (int k = 0; k < q->ph[i].m; k++)
            if (bytes_cmp(q->ph[i].t[k], q->ph[i].len[k], t, len) == 0) return 1;
    return 0;
}

/* The first SNIP_SCAN bytes at most of document d of the corpus; *n = 0 when the corpus
 * does not have it where the index says (it changed since). */
static int doc_text(reader *r, uint64_t d, const uint8_t **text, size_t *n)
{
    *n = 0;
    if (r->cstr) {
        HB_CALL(hb_table_read_text(r->cstr, 0, (int64_t)d, 1, &r->s));
        *text = (const uint8_t *)r->s.bytes;
        *n = (size_t)(r->s.off[1] < SNIP_SCAN ? r->s.off[1] : SNIP_SCAN);
        return 0;
    }
    int64_t o[2];
    HB_CALL(hb_dset_read(r->coff, HB_I64, (int64_t)d, 2, o));
    if (o[0] < 0 || o[1] < o[0] || o[1] > r->ctext_n) return 0;
    const size_t len = (size_t)(o[1] - o[0] < SNIP_SCAN ? o[1] - o[0] : SNIP_SCAN);
    if (len > r->dcap) {
        uint8_t *p = hb_realloc(r->dbuf, len);
        if (!p) return HB_EINTERNAL;
        r->dbuf = p, r->dcap = len;
    }
    HB_CALL(hb_dset_read(r->ctext, HB_U8, o[0], (int64_t)len, r->dbuf));
    *text = r->dbuf;
    *n = len;
    return 0;
}

/* The snippet of document d: from SNIP_BEFORE words before the first word that holds a
 * term of the query to SNIP_AFTER words after it (the document's first words when none
 * does), at most SNIP_BYTES bytes, with "…" where text is left out. */
static int snippet(reader *r, const query *q, uint64_t d, shown *sh)
{
    const uint8_t *t = NULL;
    size_t n;
    HB_CALL(doc_text(r, d, &t, &n));
    if (n == 0) return 0;
    size_t ring[SNIP_BEFORE + 1], nw = 0, i = 0, at = SIZE_MAX;
    while (i < n && at == SIZE_MAX) {
        while (i < n && is_space(t[i])) i++;
        if (i >= n) break;
        const size_t a = i;
        while (i < n && !is_space(t[i])) i++;
        ring[nw++ % (SNIP_BEFORE + 1)] = a;
        const uint32_t *ids;
        size_t k;
        if (hb_lexer_run(r->slx, t + a, i - a, &ids, &k))
            return hb_err_set(HB_EINTERNAL, "query", "out of memory in the tokenizer");
        for (size_t j = 0; j < k && at == SIZE_MAX; j++) {
            uint32_t tl;
            if (ids[j] < HB_TOK_STOP) {
                const uint8_t *ts = hb_lexer_term(r->slx, ids[j], &tl);
                if (is_query_term(q, ts, tl)) at = nw - 1;
            }
        }
    }
    size_t first = 0, start = 0, end = 0, more = SNIP_BEFORE + SNIP_AFTER + 1;
    if (at != SIZE_MAX) {
        first = at >= SNIP_BEFORE ? at - SNIP_BEFORE : 0;
        start = ring[first % (SNIP_BEFORE + 1)];
        end = i, more = SNIP_AFTER;
    }
    for (size_t w = 0; end < n && w < more; w++) {
        while (end < n && is_space(t[end])) end++;
        while (end < n && !is_space(t[end])) end++;
    }
    size_t rest = end;
    while (rest < n && is_space(t[rest])) rest++;
    int cut;
    size_t o = 0;
    if (first > 0) o = (size_t)sprintf(sh->snippet, "\u2026 ");
    o += clean(t + start, end - start, sh->snippet + o, SNIP_BYTES - o, &cut);
    if (cut || rest < n) sprintf(sh->snippet + o, " \u2026");
    sh->has_snippet = 1;
    return 0;
}

/* Row d of a /docs string column, cleaned, into out. */
static int doc_name(reader *r, hb_table *t, uint64_t d, char *out)
{
    HB_CALL(hb_table_read_str(t, 0, (int64_t)d, 1, &r->s));
    int cut;
    clean((const uint8_t *)r->s.bytes, (size_t)r->s.off[1], out, NAME_BYTES - 1, &cut);
    return 0;
}

/* What is shown of each hit: its doc (string id, integer id or number), title, snippet. */
static int show_hits(reader *r, const query *q, const hit *top, size_t n, shown *sh)
{
    for (size_t i = 0; i < n; i++) {
        const uint64_t d = top[i].doc;
        if (r->ids) {
            HB_CALL(doc_name(r, r->ids, d, sh[i].doc));
            sh[i].has_doc = 1;
        } else if (r->docid) {
            int64_t id;
            HB_CALL(hb_dset_read(r->docid, HB_I64, (int64_t)d, 1, &id));
            snprintf(sh[i].doc, sizeof sh[i].doc, "%lld", (long long)id);
            sh[i].has_doc = 1;
        } else {
            snprintf(sh[i].doc, sizeof sh[i].doc, "%llu", (unsigned long long)d);
        }
        if (r->titles) {
            HB_CALL(doc_name(r, r->titles, d, sh[i].title));
            sh[i].has_title = 1;
        }
        const int64_t cd = corpus_doc(r, d);
        if (cd >= 0) HB_CALL(snippet(r, q, (uint64_t)cd, &sh[i]));
    }
    return 0;
}

/* Prints the hits: a `rank doc score` line (with the title after it when the corpus had
 * titles) and the snippet indented below, or JSON; no hits is said on stderr. */
static void print_hits(reader *r, const query *q, const hit *top, const shown *sh, size_t n, double k1, double b,
                       int json, double ms)
{
    if (!json) {
        for (size_t i = 0; i < n; i++) {
            printf("%zu %s %.6f", i + 1, sh[i].doc, top[i].score);
            if (sh[i].has_title && !r->title_is_id && sh[i].title[0]) printf("  %s", sh[i].title);
            putchar('\n');
            if (sh[i].has_snippet && sh[i].snippet[0]) printf("    %s\n", sh[i].snippet);
        }
        if (n == 0) fprintf(stderr, "h5batch: query: no document matches\n");
        return;
    }
    printf("{\"index\": ");
    json_str(stdout, (const uint8_t *)r->path, strlen(r->path));
    printf(", \"n_docs\": %lld, \"avg_doc_length\": %.17g, \"k1\": %.17g, \"b\": %.17g,\n \"terms\": [",
           (long long)r->N, r->avgdl, k1, b);
    for (int i = 0; i < q->nwords; i++) {
        if (i) printf(", ");
        json_str(stdout, q->words[i].s, q->words[i].len);
    }
    printf("],\n \"phrases\": [");
    for (int i = 0; i < q->nph; i++) {
        printf("%s[", i ? ", " : "");
        for (int k = 0; k < q->ph[i].m; k++) {
            if (k) printf(", ");
            json_str(stdout, q->ph[i].t[k], q->ph[i].len[k]);
        }
        printf("]");
    }
    printf("],\n \"time_ms\": %.3f,\n \"n_hits\": %zu,\n \"hits\": [", ms, n);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n  {\"rank\": %zu, \"doc\": ", i ? "," : "", i + 1);
        if (r->ids) json_str(stdout, (const uint8_t *)sh[i].doc, strlen(sh[i].doc));
        else printf("%s", sh[i].doc);
        printf(", \"doc_number\": %llu, \"score\": %.17g, \"doc_id\": ", (unsigned long long)top[i].doc, top[i].score);
        if (r->ids) json_str(stdout, (const uint8_t *)sh[i].doc, strlen(sh[i].doc));
        else printf("%s", sh[i].has_doc ? sh[i].doc : "null");
        printf(", \"title\": ");
        if (sh[i].has_title) json_str(stdout, (const uint8_t *)sh[i].title, strlen(sh[i].title));
        else printf("null");
        printf(", \"snippet\": ");
        if (sh[i].has_snippet) json_str(stdout, (const uint8_t *)sh[i].snippet, strlen(sh[i].snippet));
        else printf("null");
        printf("}");
    }
    printf("%s]}\n", n ? "\n " : "");
}

/* Parses, ranks and prints one query. */
static int run_query(reader *r, const char *text, long top_k, double k1, double b, int json)
{
    double t0 = hb_now();
    query q = {0};
    int rc = parse_query(r, text, &q);
    int nc = q.nwords + q.nph;
    clause *c = rc == 0 ? hb_calloc((size_t)(nc ? nc : 1), sizeof *c) : NULL;
    if (rc == 0 && !c) rc = HB_EINTERNAL;
    for (int i = 0; rc == 0 && i < q.nwords; i++) {
        plist p;
        rc = read_postings(r, q.words[i].s, q.words[i].len, 0, &p);
        c[i].n = p.n, c[i].doc = p.doc, c[i].tf = p.tf;
        c[i].idf = idf_of(r, p.n);
        free(p.xoff), free(p.pos);
    }
    for (int i = 0; rc == 0 && i < q.nph; i++) rc = phrase_clause(r, &q.ph[i], &c[q.nwords + i]);
    hit *top = rc == 0 ? hb_malloc((size_t)top_k * sizeof *top) : NULL;
    if (rc == 0 && !top) rc = HB_EINTERNAL;
    size_t n = 0;
    if (rc == 0) rc = rank_docs(r, c, nc, k1, b, top, (size_t)top_k, &n);
    shown *sh = rc == 0 ? hb_calloc(n ? n : 1, sizeof *sh) : NULL;
    if (rc == 0 && !sh) rc = HB_EINTERNAL;
    if (rc == 0) rc = show_hits(r, &q, top, n, sh);
    if (rc == 0) print_hits(r, &q, top, sh, n, k1, b, json, 1e3 * (hb_now() - t0));
    if (rc == 0 && hb_log_level >= 2)
        fprintf(stderr, "h5batch: query: %d terms, %d phrases, %zu hits in %.3f ms\n", q.nwords, q.nph, n,
                1e3 * (hb_now() - t0));
    for (int i = 0; c && i < nc; i++) free(c[i].doc), free(c[i].tf);
    free(c), free(top), free(sh);
    free_query(&q);
    return rc;
}

#define QUERY_USAGE \
    "INDEX.h5 [--top K] [--json] [--k1 X] [--b Y] [--corpus FILE] [-v] WORDS...   (\"a phrase\" in double quotes)"

static const hb_option query_options[] = {
    {"top", HB_OPT_INT, "10", 1, 1e7, NULL, "documents to print"},
    {"json", HB_OPT_BOOL, "false", 1, 0, NULL, "print JSON: the terms, phrases, time and hits"},
    {"k1", HB_OPT_FLOAT, "1.2", 0, HUGE_VAL, NULL, "BM25 term frequency saturation"},
    {"b", HB_OPT_FLOAT, "0.75", 0, 1, NULL, "BM25 document length normalization"},
    {"verbose", HB_OPT_BOOL, "false", 1, 0, NULL, "the time and counts of the query on stderr"},
    {"corpus", HB_OPT_STRING, NULL, 1, 0, NULL,
     "the corpus file for snippets, when it is no longer where the index was made (the index's /docs names it)"},
    {"help", HB_OPT_BOOL, "false", 1, 0, NULL, "print these options (-h)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Not collective; needs no MPI. Reads the command line, the index, and answers. */
static int query_main(int argc, char **argv)
{
    hb_io_init();
    static const char *const aliases[] = {"-v", "verbose", "-h", "help", NULL};
    const hb_option *const tables[] = {query_options, NULL};
    hb_args a;
    int rc = hb_args_parse("query", tables, aliases, argc, argv, &a);
    const hb_optset given = rc == 0 ? hb_args_opts(&a, query_options) : (hb_optset){0};
    if (rc == 0 && hb_opt_bool(&given, "help")) {
        printf("h5batch query: BM25 search of an index written by kernel index; each hit with its doc id, title and a\n"
               "snippet of the words around its first match (docs/index.md)\n\nusage: h5batch query " QUERY_USAGE
               "\n\noptions:\n");
        hb_opt_print_cli(query_options, "  ");
        return hb_args_free(&a), 0;
    }
    if (rc == 0 && a.npos < 2) rc = hb_err_set(HB_EUSAGE, "query", "usage: h5batch query " QUERY_USAGE);
    size_t len = 1;
    for (int i = 1; rc == 0 && i < a.npos; i++) len += strlen(a.pos[i]) + 1;
    char *text = rc == 0 ? hb_malloc(len) : NULL;
    if (rc == 0 && !text) rc = HB_EINTERNAL;
    if (rc != 0) return hb_args_free(&a), rc;
    text[0] = '\0';
    for (int i = 1; i < a.npos; i++) strcat(strcat(text, i > 1 ? " " : ""), a.pos[i]);
    const hb_optset o = hb_args_opts(&a, query_options);
    if (hb_opt_bool(&o, "verbose")) hb_log_level = 2;
    reader r = {.path = a.pos[0], .corpus_opt = hb_opt_str(&o, "corpus")};
    rc = open_index(&r);
    if (rc == 0)
        rc = run_query(&r, text, (long)hb_opt_num(&o, "top"), hb_opt_num(&o, "k1"), hb_opt_num(&o, "b"),
                       hb_opt_bool(&o, "json"));
    close_index(&r);
    free(text);
    hb_args_free(&a);
    return rc;
}

const hb_command hb_command_query = {
    .name = "query",
    .usage = QUERY_USAGE,
    .summary = "BM25 search of an index written by kernel index",
    .collective = 0,
    .main = query_main,
};
