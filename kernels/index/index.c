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
#include "kernels/index/internal.h"

#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "kernels/index/format.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define STATE_MAGIC "HBIXST01"
#define CHECK_BLOCK (1 << 20) /* offsets validated this many at a time */

static const hb_option index_options[] = {
    {"stemmer", HB_OPT_STRING, "none", 1, 0, NULL, "Snowball stemmer language (english, french, ...), or none"},
    {"stopwords", HB_OPT_FILE, "none", 1, 0, NULL,
     "none, english (Snowball's list), or a file whose tokens are the stop words ('|' or '#' starts a comment)"},
    {"max_token_bytes", HB_OPT_INT, "64", 1, 65536, NULL, "longer tokens (normalized UTF-8) are dropped and counted"},
    {"positions", HB_OPT_BOOL, "false", 1, 0, NULL, "store token positions (phrase queries need them)"},
    {"table", HB_OPT_STRING, "/corpus", 1, 0, NULL,
     "the corpus group: text (bytes with offsets, or one string per document), optional doc_id and title"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL, "the table's names for text, offsets, doc_id, title (text:body, title:subject)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Not collective. Reads the stop words the option names: NULL for none. */
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

/* Not collective. Checks the stemmer and the stop word list when the job file is read
 * (78 with the line). */
static int index_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    const char *st = hb_opt_str(o, "stemmer");
    if (!hb_tok_stemmer_valid(st)) {
        *key = "stemmer";
        snprintf(msg, len, "unknown stemmer '%s' (none, or a Snowball language: %s)", st, hb_tok_stemmers());
        return HB_ECONFIG;
    }
    hb_colmap m;
    if (hb_colmap_parse(hb_opt_str(o, "columns"), &m, msg, len)) return *key = "columns", HB_ECONFIG;
    for (int i = 0; i < m.n; i++)
        if (strcmp(m.from[i], "text") && strcmp(m.from[i], "offsets") && strcmp(m.from[i], "doc_id") &&
            strcmp(m.from[i], "title")) {
            *key = "columns";
            snprintf(msg, len, "columns maps '%s', which is not a column of the index (text, offsets, doc_id, title)",
                     m.from[i]);
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

/* Not collective (the same on every rank). The bytes a rank will need: its share of
 * the posting runs and of the merged index (about 4 bytes per byte of text, measured
 * on generated corpora; 6 with positions), its documents' lengths and ids, and a
 * chunk's text and offsets. Refused over max_memory. */
int ix_reserve_memory(const ix *x)
{
    const hb_step_ctx *ctx = x->ctx;
    const double P = hb_size, B = (double)x->B, N = (double)x->N, cr = (double)ctx->chunk_rows;
    const double chunk_text = N > 0 ? B / N * (cr < N ? cr : N) : 0;
    double bytes = B / P * (x->positions ? 6 : 4) + N / P * 24 + N * 8 / P + chunk_text * 2 + cr * 16;
    char cause[160], a[32], b[32];
    snprintf(cause, sizeof cause, "%s documents, %s bytes of text", hb_fmt_count(a, (uint64_t)x->N),
             hb_fmt_count(b, (uint64_t)x->B));
    return hb_mem_reserve(bytes, ctx->input ? ctx->input : "merge", "the index", cause,
                          "run on more ranks or hosts, or index the corpus in parts");
}

int ix_settings_hash(ix *x)
{
    /* the job's fingerprint sees the stop word file's name, not its words */
    size_t sl;
    const char *sw = hb_analyzer_stopwords(x->an, &sl);
    char head[256];
    int hl = snprintf(head, sizeof head, "%s|%d|%d|%s|", x->stemmer, x->max_bytes, x->positions, hb_tok_unicode_version());
    XXH3_state_t *st = XXH3_createState();
    if (!st) return hb_err_set(HB_EINTERNAL, "index", "out of memory");
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, head, (size_t)hl);
    if (sl) XXH3_64bits_update(st, sw, sl);
    x->settings = XXH3_64bits_digest(st);
    XXH3_freeState(st);
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
    x->table = hb_opt_str(ctx->opts, "table");
    char *text = NULL, msg[512];
    size_t len = 0;
    int rc = hb_colmap_parse(hb_opt_str(ctx->opts, "columns"), &x->cols, msg, sizeof msg) ? hb_err_set(HB_ECONFIG, "index", "%s", msg) : 0;
    if (rc == 0) rc = stop_text(x->stopwords, &text, &len, msg, sizeof msg);
    if (rc == HB_ECONFIG) rc = hb_err_set(HB_ENOINPUT, "index", "%s", msg); /* it was there when the job started */
    if (rc == 0) rc = hb_analyzer_new(x->stemmer, x->max_bytes, text, len, &x->an);
    free(text);
    if (rc == 0) rc = ix_settings_hash(x);
    if (rc == 0) rc = ix_open_corpus(x);
    HB_CALL(hb_agree(rc));
    if (!x->strings) HB_CALL(check_offsets(x));
    HB_CALL(hb_agree(ix_reserve_memory(x)));
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

int ix_add_run(ix *x, uint8_t *blob)
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

/* Not collective. Inverts chunk c into a run, kept on this rank until finalize. */
static int index_map(void *state, int64_t c)
{
    ix *x = state;
    hb_step_ctx *ctx = x->ctx;
    int64_t start, n;
    hb_chunk_range(c, ctx->chunk_rows, x->N, &start, &n);
    HB_CALL(ix_read_text(x, start, n));
    uint8_t *blob;
    HB_CALL(ix_invert(x, c, start, n, &blob));
    int rc = ix_add_run(x, blob);
    if (rc) free(blob);
    return rc;
}

/* Saved state: a header, then this rank's runs as they are in memory. */
typedef struct saved {
    char magic[8];
    uint64_t nruns;
} saved;

/* Not collective. This rank's runs, concatenated behind a header. */
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

/* Not collective. Takes the runs of a saved part, checking each against this job. */
static int index_load(void *state, const void *buf, size_t len)
{
    return ix_load_runs(state, buf, len, NULL, "checkpoint");
}

int ix_load_runs(ix *x, const void *buf, size_t len, const hb_part *part, const char *where)
{
    const uint64_t shift = part ? (uint64_t)part->row_offset : 0;
    const hb_step_ctx *ctx = x->ctx;
    saved h;
    if (len < sizeof h) return hb_err_set(HB_EDATA, where, "index state of %zu bytes is too short", len);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, STATE_MAGIC, 8) != 0) return hb_err_set(HB_EDATA, where, "not an index state");
    const uint8_t *p = (const uint8_t *)buf + sizeof h;
    size_t left = len - sizeof h;
    for (uint64_t i = 0; i < h.nruns; i++) {
        run_hdr rh;
        if (left < sizeof rh) return hb_err_set(HB_EDATA, where, "index state is truncated");
        memcpy(&rh, p, sizeof rh);
        if (rh.bytes > left || rh.bytes < sizeof rh) return hb_err_set(HB_EDATA, where, "index state is truncated");
        if (rh.settings != x->settings)
            return hb_err_set(HB_ECONFIG, where,
                              "its index runs were made with other tokenizer settings (a changed stop word file?); "
                              "run with --fresh");
        uint8_t *blob = hb_malloc(rh.bytes); /* aligned, unlike the checkpoint's buffer */
        if (!blob) return HB_EINTERNAL;
        memcpy(blob, p, rh.bytes);
        int ok;
        if (x->merged) {
            /* a merge numbers its runs by their first document, in the order of all the parts */
            run_hdr *bh = (run_hdr *)blob;
            ok = (part || rh.chunk == rh.doc0) && rh.doc0 <= (uint64_t)x->N && rh.n_docs >= 1 &&
                 rh.doc0 + shift + rh.n_docs <= (uint64_t)x->N;
            bh->doc0 = rh.doc0 + shift;
            bh->chunk = bh->doc0;
        } else {
            int64_t c = (int64_t)rh.chunk, start, n = -1;
            if (c >= 0 && c < ctx->n_chunks) hb_chunk_range(c, ctx->chunk_rows, x->N, &start, &n);
            ok = n >= 0 && rh.n_docs == (uint64_t)n && rh.doc0 == (uint64_t)(c * ctx->chunk_rows);
        }
        runv v;
        if (!ok || ix_check_run(blob, rh.bytes, x->positions, &v) != 0 || ix_add_run(x, blob) != 0) {
            free(blob);
            return hb_err_set(HB_EDATA, where, "index state holds a damaged run of chunk %llu",
                              (unsigned long long)rh.chunk);
        }
        p += rh.bytes;
        left -= rh.bytes;
    }
    return 0;
}

/* Not collective. Runs by chunk. */
static int run_chunk_cmp(const void *a, const void *b)
{
    uint64_t x = (*(const run_hdr *const *)a)->chunk, y = (*(const run_hdr *const *)b)->chunk;
    return (x > y) - (x < y);
}

/* Not collective. Sources by chunk: equal terms merge in document order. */
static int source_cmp(const void *a, const void *b)
{
    uint64_t x = ((const source *)a)->v.h->chunk, y = ((const source *)b)->v.h->chunk;
    return (x > y) - (x < y);
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
    HB_CALL(ix_write_documents(x, out));
    t[0] = hb_now();

    uint8_t *store = NULL, *recv = NULL;
    sample *smp = NULL;
    source *src = NULL;
    block *blk = hb_calloc((size_t)T, sizeof *blk);
    size_t nsmp = 0, nsrc = 0;
    size_t *split = hb_malloc((size_t)hb_size * sizeof *split);
    int rc = hb_agree(blk && split ? 0 : HB_EINTERNAL);
    if (rc == 0) rc = ix_gather_samples(x, &store, &smp, &nsmp);
    t[1] = hb_now();
    if (rc == 0) {
        /* split[d] = first sample of rank d+1's terms; SIZE_MAX when no sample bounds it */
        ix_cut_samples(smp, 0, nsmp, hb_size, split);
        for (int d = 0; d + 1 < hb_size; d++)
            if (split[d] >= nsmp) split[d] = SIZE_MAX;
    }
    if (rc == 0) rc = ix_exchange_slices(x, smp, split, &src, &nsrc, &recv);
    t[2] = hb_now();
    if (rc == 0) {
        qsort(src, nsrc, sizeof *src, source_cmp);
        /* this rank's samples */
        size_t i0 = hb_rank == 0 ? 0 : split[hb_rank - 1], i1 = hb_rank == hb_size - 1 ? nsmp : split[hb_rank];
        if (i0 == SIZE_MAX) i0 = nsmp;
        if (i1 == SIZE_MAX) i1 = nsmp;
        if (i1 < i0) i1 = i0;
        rc = ix_merge(x, src, nsrc, smp, nsmp, i0, i1, blk);
    }
    rc = hb_agree(rc);
    t[3] = hb_now();
    /* the merged blocks hold everything now */
    free(src), free(recv), free(smp), free(store), free(split);
    for (size_t i = 0; i < x->nruns; i++) free(x->runs[i]);
    x->nruns = 0;
    if (rc == 0) rc = ix_write_index(x, out, blk);
    t[4] = hb_now();
    HB_DEBUG("index: finalize: documents %.2fs, samples %.2fs, exchange %.2fs, merge %.2fs, write %.2fs", t[0] - t0,
             t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3]);
    uint64_t nt = 0, nnz = 0, tbytes = 0;
    for (int k = 0; blk && k < T; k++)
        nt += blk[k].nterms, nnz += blk[k].nnz, tbytes += blk[k].tbytes, ix_free_block(&blk[k]);
    free(blk);
    if (rc == 0) {
        uint64_t v[2] = {nt, nnz};
        MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        rc = ix_write_attributes(x, out, c, v[0], v[1]);
        size_t sl = 0;
        hb_analyzer_stopwords(x->an, &sl);
        MPI_Allreduce(MPI_IN_PLACE, &tbytes, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        const uint64_t dims[IX_N_DIMS] = {[IX_N_DOCS] = (uint64_t)x->N, [IX_N_TERMS] = v[0], [IX_N_TERM_BOUNDS] = v[0] + 1,
                                          [IX_N_TERM_BYTES] = tbytes, [IX_N_POSTINGS] = v[1], [IX_N_POSTING_BOUNDS] = v[1] + 1,
                                          [IX_N_POSITIONS] = c[0], [IX_N_STOP_BYTES] = sl};
        if (rc == 0) rc = ix_write_names(x, out);
        if (rc == 0) rc = ix_write_dims(x, out, dims);
    }
    return rc;
}

/* Not collective. Frees the state; safe on a partly built one. */
static void index_destroy(void *state)
{
    ix *x = state;
    if (!x) return;
    hb_dset_close(x->text), hb_dset_close(x->offsets), hb_dset_close(x->docid);
    hb_table_close(x->ttab), hb_table_close(x->idtab), hb_table_close(x->titletab);
    hb_strs_free(&x->strs);
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
    free(x->ids);
    hb_strs_free(&x->sids), hb_strs_free(&x->titles);
    for (size_t i = 0; i < x->nsegs; i++) free(x->segs[i].file);
    free(x->segs);
    free(x);
}

extern const hb_generator hb_generator_corpus; /* gen.c */
extern const hb_command hb_command_query;     /* query.c */
static const hb_command *const index_commands[] = {&hb_command_query, NULL};

/* What the kernel reads and writes (DESIGN.md 4.3), listed by `h5batch kernels index`;
 * the output paths are the ones the writer uses (format.h). The document table comes
 * first: `h5batch export` takes the first output as the group's main dataset. */
static const hb_dataset_desc index_inputs[] = {
    {"/corpus/text", NULL, "uint8", "byte", NULL, 0, "UTF-8 of all documents, concatenated"},
    {"/corpus/offsets", NULL, "int", "doc+1", NULL, 0, "document i is text[offsets[i]:offsets[i+1]]"},
    {"/corpus/doc_id", NULL, "int", "doc", NULL, 1, "external document ids"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};
static const hb_dataset_desc index_outputs[] = {
    {HB_INDEX_DOC_LENGTH, NULL, "uint32", "doc", "1", 0, "tokens kept per document"},
    {HB_INDEX_DOC_ID, NULL, "int64", "doc", NULL, 1, "document id from /corpus/doc_id"},
    {HB_INDEX_TERMS, NULL, "uint8", "term_byte", "1", 0, "UTF-8 of the terms, concatenated, sorted by bytes"},
    {HB_INDEX_TERM_OFFSETS, NULL, "uint64", "term_bound", "1", 0, "term i is terms[term_offsets[i]:term_offsets[i+1]]"},
    {HB_INDEX_DF, NULL, "uint32", "term", "1", 0, "documents containing the term"},
    {HB_INDEX_CF, NULL, "uint64", "term", "1", 0, "occurrences of the term in the corpus"},
    {HB_INDEX_POSTINGS_OFFSETS, NULL, "uint64", "term_bound", "1", 0, "postings of term i: [offsets[i], offsets[i+1])"},
    {HB_INDEX_POSTINGS_DOC, NULL, "uint32", "posting", "1", 0, "document numbers, ascending within a term"},
    {HB_INDEX_POSTINGS_TF, NULL, "uint32", "posting", "1", 0, "occurrences of the term in the document"},
    {HB_INDEX_POSITIONS_OFFSETS, NULL, "uint32", "posting_bound", "1", 1, "positions of posting j (positions = true)"},
    {HB_INDEX_POSITIONS, NULL, "uint32", "position", "1", 1, "token positions in the document (positions = true)"},
    {HB_INDEX_STOPWORDS, NULL, "uint8", "stopword_byte", "1", 1, "the stop words, one a line (stopwords)"},
    /* the named dimensions (netCDF dimensions without values, for xarray) */
    {HB_INDEX_GROUP "/doc", NULL, "dimension", "doc", NULL, 0, "dimension: documents"},
    {HB_INDEX_GROUP "/term", NULL, "dimension", "term", NULL, 0, "dimension: terms"},
    {HB_INDEX_GROUP "/term_bound", NULL, "dimension", "term_bound", NULL, 0, "dimension: terms + 1 (offsets)"},
    {HB_INDEX_GROUP "/term_byte", NULL, "dimension", "term_byte", NULL, 0, "dimension: bytes of the terms"},
    {HB_INDEX_GROUP "/posting", NULL, "dimension", "posting", NULL, 0, "dimension: postings"},
    {HB_INDEX_GROUP "/posting_bound", NULL, "dimension", "posting_bound", NULL, 1, "dimension: postings + 1"},
    {HB_INDEX_GROUP "/position", NULL, "dimension", "position", NULL, 1, "dimension: positions"},
    {HB_INDEX_GROUP "/stopword_byte", NULL, "dimension", "stopword_byte", NULL, 1, "dimension: stop-word bytes"},
    {HB_INDEX_DOCS_DOC, NULL, "dimension", "doc", NULL, 1, "dimension: documents (string ids or titles)"},
    {HB_INDEX_DOCS_DOC_ID, NULL, "string", "doc", NULL, 1, "document id strings of the corpus"},
    {HB_INDEX_DOCS_TITLE, NULL, "string", "doc", NULL, 1, "titles (the corpus's title column, else the id strings)"},
    {HB_INDEX_CORPORA_FILE, NULL, "string", "corpus", NULL, 1, "a merge's corpus files, one per site with documents"},
    {HB_INDEX_CORPORA_FIRST_DOC, NULL, "uint64", "corpus", "1", 1, "the first document of each corpus file"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};

const hb_kernel hb_kernel_index = {
    .name = "index",
    .summary = "inverted index of a UTF-8 corpus: sorted terms, postings with tf (and positions), for BM25",
    .options = index_options,
    .default_chunk_rows = 65536,
    .unit = "documents",
    .generator = &hb_generator_corpus,
    .commands = index_commands,
    .validate = index_validate,
    .setup = index_setup,
    .map = index_map,
    .finalize = index_finalize,
    .save = index_save,
    .load = index_load,
    .destroy = index_destroy,
    .inputs = index_inputs,
    .outputs = index_outputs,
    .describe = ix_describe,
    .setup_parts = ix_setup_parts,
    .load_part = ix_load_part,
};
