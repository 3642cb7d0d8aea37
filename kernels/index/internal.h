/* What the files of the index kernel share: the run format (run.c), the state, and the
 * steps of map (invert.c) and finalize (partition.c, merge.c); index.c holds the kernel
 * and its data path. Tokenizer internals shared by tok.c and analyzer.c are at the end.
 * Not an interface outside kernels/index/. */
#ifndef HB_INDEX_INTERNAL_H
#define HB_INDEX_INTERNAL_H

#include "kernels/kernel.h"
#include "kernels/index/tok.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RUN_MAGIC "HBIXRUN1"

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
    const char *table; /* the corpus group, its columns renamed by cols */
    hb_colmap cols;
    hb_dset *text, *offsets, *docid;   /* text as bytes; integer doc ids */
    hb_table *ttab, *idtab, *titletab; /* text as strings; string doc ids; titles */
    hb_strs strs;                      /* a chunk's text, as strings */
    int strings;                       /* text is one string per document */
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
    /* a merge's state (setup_parts, partial.c): no input; what finalize writes about the
     * documents comes from the parts' descriptions */
    int merged;
    int has_ids, has_sids, has_titles; /* integer doc ids; string ids; titles */
    int64_t *ids;                      /* [N] integer doc ids */
    hb_strs sids, titles;              /* [N] string ids, titles */
    struct ix_seg *segs;               /* the corpus files the documents come from, in order */
    size_t nsegs;
} ix;

/* A corpus file of a merged index: documents [first, first + n) are its documents. */
typedef struct ix_seg {
    char *file;
    uint64_t first, n;
} ix_seg;

/* A term range [t0, t1) of one chunk's run, local or received. */
typedef struct source {
    runv v;
    uint64_t t0, t1;
} source;

/* A term sampled from a run, with the weight of the terms it stands for. */
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

/* x rounded up to a multiple of 8. */
static inline size_t pad8(size_t x) { return (x + 7) & ~(size_t)7; }

/* Byte order of two strings, a prefix first. */
static inline int bytes_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
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
static inline const uint8_t *run_term(const runv *v, uint64_t t, uint32_t *len)
{
    *len = (uint32_t)(v->toff[t + 1] - v->toff[t]);
    return v->terms + v->toff[t];
}

/* run.c: the run format. Not collective. */

/* The offsets of a run's sections, from its header. */
void ix_layout(const run_hdr *h, run_layout *L);
/* Zeroes the padding after the posting sections of a run being built (the rest is all
 * written), so that checkpoints and messages never carry uninitialized bytes. */
void ix_zero_tails(uint8_t *b, const run_hdr *h, const run_layout *L);
/* Parses a run or slice known to be well formed. */
void ix_view(const void *blob, runv *v);
/* Checks that len bytes at blob hold a well-formed run or slice (a checkpoint or a
 * message is not trusted to be one), and parses it; -1 when they do not. */
int ix_check_run(const void *blob, size_t len, int positions, runv *v);
/* The first term index in [lo, hi) of v whose term is not below s. */
uint64_t ix_lower_bound(const runv *v, uint64_t lo, uint64_t hi, const uint8_t *s, uint32_t len);
/* Bytes of the slice of terms [a, b) of v. */
size_t ix_slice_bytes(const runv *v, uint64_t a, uint64_t b, int positions);
/* Writes terms [a, b) of v as a slice at dst (ix_slice_bytes of them). */
void ix_put_slice(const runv *v, uint64_t a, uint64_t b, int positions, uint8_t *dst);

/* invert.c: a chunk into a run. */

/* Not collective. Inverts documents [start, start + n) of chunk c, whose offsets are in
 * x->off and bytes in x->buf, into a run (*blob, malloc'd): the parts tokenize, invert
 * and sort their documents in parallel, then their term lists are merged. */
int ix_invert(ix *x, int64_t c, int64_t start, int64_t n, uint8_t **blob);

/* partition.c: the terms range-partitioned among the ranks. */

/* Collective. Every run's weighted samples (its terms at equal steps of weight), from
 * all ranks, sorted; *store holds their bytes. */
int ix_gather_samples(ix *x, uint8_t **store, sample **out, size_t *nout);
/* Not collective. Cuts samples [i0, i1) into k parts of equal weight: cut[j] (j < k-1)
 * is the index of the first sample of part j+1, so part j holds the terms below sample
 * cut[j]. */
void ix_cut_samples(const sample *s, size_t i0, size_t i1, int k, size_t *cut);
/* Collective. Sends every run's slice of rank d's terms to rank d, split[d-1] being the
 * first sample of rank d's terms (SIZE_MAX: none); *src gets this rank's own slices
 * (pointing into its runs) and the received ones (into *recv, which the caller frees). */
int ix_exchange_slices(ix *x, const sample *smp, const size_t *split, source **src, size_t *nsrc, uint8_t **recv);

/* merge.c: this rank's terms merged and written. */

/* Not collective. Merges the sources (sorted by chunk) into one block per thread, the
 * threads taking sub-ranges of samples [i0, i1) of equal weight; 65 when a term is in
 * more than 2^32-1 documents, 70 when out of memory. */
int ix_merge(const ix *x, const source *src, size_t nsrc, const sample *smp, size_t nsmp, size_t i0, size_t i1,
             block *blk);
/* Not collective. Frees a thread's merged block. */
void ix_free_block(block *b);
/* Collective. The documents of the local runs (sorted by chunk), in runs of consecutive
 * documents: doc_length, and doc_id copied from the input (a merge: from its state). */
int ix_write_documents(ix *x, hb_out *out);
/* Collective. Creates the arrays of /index and writes every rank's blocks into them. */
int ix_write_index(ix *x, hb_out *out, const block *blk);
/* Collective. The attributes of /index (c: the token counters summed over the runs) and
 * the stop word list. */
int ix_write_attributes(ix *x, hb_out *out, const uint64_t *c, uint64_t n_terms, uint64_t nnz);

/* partial.c: partial states (DESIGN.md 7). */

/* Not collective. What finalize needs besides the runs: the tokenizer settings, the
 * documents' ids and names and the corpus files, as bytes (rank 0). */
int ix_describe(void *state, void **buf, size_t *len);
/* Collective. The empty state of a merge of the parts, from their descriptions. */
int ix_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state);
/* Not collective. Takes the runs a part saved, its documents numbered after the parts
 * before it. */
int ix_load_part(void *state, const hb_part *part, const void *buf, size_t len);
/* Not collective. Takes the runs of a saved state, checked against the chunk plan (a
 * run's checkpoint) or, in a merge, numbered by their first document (a merge's
 * checkpoint; with part, a part's runs, their documents moved by its row_offset). */
int ix_load_runs(ix *x, const void *buf, size_t len, const hb_part *part, const char *where);
/* Not collective. The hash of the tokenizer settings and stop words (run_hdr.settings). */
int ix_settings_hash(ix *x);
/* Not collective. Adds a run to this rank's state. */
int ix_add_run(ix *x, uint8_t *blob);
/* Not collective (the same on every rank). The memory estimate, refused over max_memory. */
int ix_reserve_memory(const ix *x);

/* corpus.c: the corpus's layouts, the documents' names and the named dimensions. */

/* Not collective. Opens the corpus table: text as bytes with offsets, or as strings;
 * doc_id as integers or strings; title; checking types and lengths (65). */
int ix_open_corpus(ix *x);
/* Not collective. Reads the text of documents [start, start + n) into x->buf, their
 * offsets into x->off (relative to x->off[0]). */
int ix_read_text(ix *x, int64_t start, int64_t n);
/* Collective. The group /docs: where the corpus is, and string doc ids and titles. */
int ix_write_names(ix *x, hb_out *out);
/* The lengths of the index's dimensions, for ix_write_dims. */
enum { IX_N_DOCS, IX_N_TERMS, IX_N_TERM_BOUNDS, IX_N_TERM_BYTES, IX_N_POSTINGS, IX_N_POSTING_BOUNDS, IX_N_POSITIONS,
       IX_N_STOP_BYTES, IX_N_DIMS };
/* Collective. Named dimensions of the arrays of /index (dimension scales without
 * values), so that xarray and netCDF tools see no phony ones. */
int ix_write_dims(ix *x, hb_out *out, const uint64_t *n);

/* tok.c and analyzer.c: the tokenizer's analyzer, which lexers read. Not collective. */

struct sb_stemmer;
/* Settings shared read-only by every lexer of an index (see tok.h). */
struct hb_analyzer {
    struct sb_stemmer *probe; /* NULL when stemmer is none; kept to check the name once */
    char stemmer[64];
    int max_bytes;
    uint8_t *stop_text; /* normalized stop words, sorted, each followed by '\n' */
    size_t stop_text_len;
    const uint8_t **stop;
    uint32_t *stop_len;
    size_t nstop;
};

/* Whether the normalized token s is one of a's stop words. */
int ix_is_stop(const hb_analyzer *a, const uint8_t *s, size_t len);

#endif
