/* The corpus as users write it (docs/index.md "Input"), and the names the index keeps.
 *
 * Two layouts of the table (option `table`, default /corpus; `columns` renames): `text`
 * as bytes (uint8 [B]) with `offsets` [N+1], or `text` as strings, one per document
 * (variable or fixed length, as h5py and pandas write them). `doc_id` [N] may be
 * integers or strings, `title` [N] strings. String ids and titles are written to /docs
 * as fixed-length UTF-8 beside a `doc` dimension; /docs also says where the corpus is,
 * which `h5batch query` reads for its snippets. The index's arrays get named
 * dimensions, so that xarray shows no phony ones. */
#include "kernels/index/internal.h"

#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "kernels/index/format.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The path of the table's column for the kernel's name (a mapped one when `columns` maps it). */
static void col_path(const ix *x, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", x->table, hb_colmap_name(&x->cols, name));
}

/* Not collective. Opens column name of the table alone, as strings or numbers; *t stays
 * NULL when the column is absent. */
static int open_one(ix *x, const char *name, hb_table **t)
{
    char path[600];
    col_path(x, name, path, sizeof path);
    *t = NULL;
    if (!hb_in_exists(x->ctx->in, path)) return 0;
    const char *const cols[1] = {hb_colmap_name(&x->cols, name)};
    return hb_table_open_any(x->ctx->in, x->table, cols, 1, t);
}

int ix_open_corpus(ix *x)
{
    hb_step_ctx *ctx = x->ctx;
    char tpath[600], opath[600], ipath[600], npath[600];
    col_path(x, "text", tpath, sizeof tpath);
    col_path(x, "offsets", opath, sizeof opath);
    col_path(x, "doc_id", ipath, sizeof ipath);
    col_path(x, "title", npath, sizeof npath);
    HB_CALL(open_one(x, "text", &x->ttab));
    if (x->ttab && hb_table_kind(x->ttab, 0) == HB_COL_STRING) {
        x->strings = 1;
        x->N = hb_table_rows(x->ttab);
        HB_CHECK(!hb_in_exists(ctx->in, opath), HB_EDATA, ctx->input,
                 "%s holds strings, one per document, and %s is there too: give text as bytes with offsets, or as "
                 "strings without them",
                 tpath, opath);
    } else {
        hb_table_close(x->ttab);
        x->ttab = NULL;
        hb_dset_info ti, oi;
        HB_CALL(hb_dset_open(ctx->in, tpath, &x->text, &ti));
        HB_CHECK(ti.is_int && ti.elem_bytes == 1, HB_EDATA, ctx->input,
                 "%s has %zu-byte %s elements; UTF-8 bytes (uint8) or strings are needed", tpath, ti.elem_bytes,
                 ti.is_int ? "integer" : "float");
        HB_CALL(hb_dset_open(ctx->in, opath, &x->offsets, &oi));
        HB_CHECK(oi.is_int, HB_EDATA, ctx->input, "%s has float elements; integers are needed", opath);
        HB_CHECK(oi.n >= 1, HB_EDATA, ctx->input, "%s is empty; it needs N+1 entries for N documents", opath);
        x->N = oi.n - 1;
        x->B = ti.n;
    }
    HB_CALL(open_one(x, "doc_id", &x->idtab));
    if (x->idtab && hb_table_kind(x->idtab, 0) != HB_COL_STRING) {
        hb_table_close(x->idtab);
        x->idtab = NULL;
        hb_dset_info di;
        HB_CALL(hb_dset_open(ctx->in, ipath, &x->docid, &di));
        HB_CHECK(di.is_int, HB_EDATA, ctx->input, "%s has float elements; integers or strings are needed", ipath);
        HB_CHECK(di.n == x->N, HB_EDATA, ctx->input, "%s has %lld entries for %lld documents", ipath, (long long)di.n,
                 (long long)x->N);
    }
    HB_CHECK(!x->idtab || hb_table_rows(x->idtab) == x->N, HB_EDATA, ctx->input, "%s has %lld entries for %lld documents",
             ipath, (long long)hb_table_rows(x->idtab), (long long)x->N);
    HB_CALL(open_one(x, "title", &x->titletab));
    HB_CHECK(!x->titletab || hb_table_kind(x->titletab, 0) == HB_COL_STRING, HB_EDATA, ctx->input,
             "%s holds numbers; titles are strings", npath);
    HB_CHECK(!x->titletab || hb_table_rows(x->titletab) == x->N, HB_EDATA, ctx->input,
             "%s has %lld entries for %lld documents", npath, (long long)hb_table_rows(x->titletab), (long long)x->N);
    return 0;
}

int ix_read_text(ix *x, int64_t start, int64_t n)
{
    if (x->strings) {
        HB_CALL(hb_table_read_text(x->ttab, 0, start, n, &x->strs));
        for (int64_t i = 0; i <= n; i++) x->off[i] = (int64_t)x->strs.off[i];
    } else {
        HB_CALL(hb_dset_read(x->offsets, HB_I64, start, n + 1, x->off));
    }
    const int64_t b0 = x->off[0], bytes = x->off[n] - b0;
    if ((size_t)bytes > x->bufcap) {
        uint8_t *p = hb_realloc(x->buf, (size_t)bytes);
        if (!p) return HB_EINTERNAL;
        x->buf = p;
        x->bufcap = (size_t)bytes;
    }
    if (x->strings) {
        if (bytes) memcpy(x->buf, x->strs.bytes, (size_t)bytes);
        return 0;
    }
    return hb_dset_read(x->text, HB_U8, b0, bytes, x->buf);
}

/* Collective. Writes string column t of the input (a merge: all, every document's
 * strings) as /docs/<name> [N], fixed-length UTF-8 as wide as the longest, each rank its
 * share of the rows, on the doc dimension. */
static int write_strings(ix *x, hb_out *out, hb_table *t, const hb_strs *all, const char *name)
{
    int64_t lo, hi;
    hb_range_of(x->N, hb_rank, hb_size, &lo, &hi);
    hb_strs s = {0};
    int rc = t ? hb_table_read_str(t, 0, lo, hi - lo, &s) : 0;
    /* row i of this rank's share: its bytes and length */
    const char *base = t ? s.bytes : all->bytes;
    const uint64_t *off = t ? s.off : all->off + lo;
    uint64_t w = 1;
    for (int64_t i = 0; rc == 0 && i < hi - lo; i++)
        if (off[i + 1] - off[i] > w) w = off[i + 1] - off[i];
    rc = hb_agree(rc);
    if (rc == 0) MPI_Allreduce(MPI_IN_PLACE, &w, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    char *b = rc == 0 ? hb_calloc((size_t)(hi > lo ? hi - lo : 1), (size_t)w) : NULL;
    rc = hb_agree(rc == 0 && !b ? HB_EINTERNAL : rc);
    for (int64_t i = 0; rc == 0 && i < hi - lo; i++)
        memcpy(b + (size_t)i * w, base + off[i], (size_t)(off[i + 1] - off[i]));
    char path[64];
    snprintf(path, sizeof path, HB_INDEX_DOCS_GROUP "/%s", name);
    if (rc == 0) rc = hb_out_strings(out, path, (uint64_t)x->N, (uint64_t)lo, (uint64_t)(hi - lo), (size_t)w, b, NULL);
    if (rc == 0) rc = hb_out_attach(out, path, 0, HB_INDEX_DOCS_DOC);
    free(b);
    hb_strs_free(&s);
    return rc;
}

/* Collective. A merge's corpus files, when there are several: /docs/corpora/file [K]
 * and first_doc [K], for the snippets of `h5batch query`. */
static int write_corpora(ix *x, hb_out *out)
{
    const uint64_t K = x->nsegs;
    size_t w = 1;
    for (size_t k = 0; k < K; k++)
        if (strlen(x->segs[k].file) > w) w = strlen(x->segs[k].file);
    char *b = hb_calloc(K, w);
    uint64_t *first = hb_malloc(K * sizeof *first);
    int rc = hb_agree(b && first ? 0 : HB_EINTERNAL);
    for (size_t k = 0; rc == 0 && k < K; k++) {
        memcpy(b + k * w, x->segs[k].file, strlen(x->segs[k].file));
        first[k] = x->segs[k].first;
    }
    if (rc == 0) rc = hb_out_group(out, HB_INDEX_CORPORA_GROUP);
    if (rc == 0) rc = hb_out_strings(out, HB_INDEX_CORPORA_FILE, K, 0, hb_rank == 0 ? K : 0, w, b, NULL);
    if (rc == 0)
        rc = hb_out_write(out, HB_INDEX_CORPORA_FIRST_DOC, HB_U64, 1, &K, 0, hb_rank == 0 ? K : 0, first, "1",
                          "the first document of each corpus file, in the order of the files");
    free(b), free(first);
    return rc;
}

int ix_write_names(ix *x, hb_out *out)
{
    hb_step_ctx *ctx = x->ctx;
    HB_CALL(hb_out_group(out, HB_INDEX_DOCS_GROUP));
    /* where the documents are, for the snippets of `h5batch query`; a merge of several
     * corpus files lists them in /docs/corpora */
    char file[PATH_MAX] = "";
    if (x->merged) {
        if (x->nsegs == 1) snprintf(file, sizeof file, "%s", x->segs[0].file);
    } else if (hb_rank == 0) { /* rank 0's view of the path: an attribute is the same on every rank */
        char *full = realpath(ctx->input, NULL);
        snprintf(file, sizeof file, "%s", full ? full : ctx->input);
        free(full);
    }
    MPI_Bcast(file, (int)sizeof file, MPI_CHAR, 0, MPI_COMM_WORLD);
    int rc = hb_out_attr_str(out, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_CORPUS_FILE, file);
    char path[600];
    col_path(x, "text", path, sizeof path);
    if (rc == 0) rc = hb_out_attr_str(out, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_CORPUS_TEXT, path);
    col_path(x, "offsets", path, sizeof path);
    if (rc == 0) rc = hb_out_attr_str(out, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_CORPUS_OFFSETS, x->strings ? "" : path);
    if (rc == 0 && x->merged && x->nsegs > 1) rc = write_corpora(x, out);
    const int sids = x->merged ? x->has_sids : x->idtab != NULL, titles = x->merged ? x->has_titles : x->titletab != NULL;
    if (rc == 0 && (sids || titles)) rc = hb_out_dim(out, HB_INDEX_DOCS_DOC, (uint64_t)x->N);
    if (rc == 0 && sids) rc = write_strings(x, out, x->idtab, &x->sids, "doc_id");
    /* the title column, else the string ids */
    if (rc == 0 && (titles || sids))
        rc = write_strings(x, out, titles ? x->titletab : x->idtab, titles ? &x->titles : &x->sids, "title");
    if (rc == 0 && (titles || sids))
        rc = hb_out_attr_str(out, HB_INDEX_DOCS_GROUP, HB_INDEX_ATTR_TITLE_FROM, titles ? "title" : "doc_id");
    return rc;
}

/* Whether the array at path s of /index is written for this index. */
static int written(const ix *x, const char *s)
{
    if (strcmp(s, HB_INDEX_DOC_ID) == 0) return x->merged ? x->has_ids : x->docid != NULL;
    if (strcmp(s, HB_INDEX_POSITIONS_OFFSETS) == 0 || strcmp(s, HB_INDEX_POSITIONS) == 0) return x->positions;
    if (strcmp(s, HB_INDEX_STOPWORDS) == 0) return strcmp(x->stopwords, "none") != 0;
    return 1;
}

int ix_write_dims(ix *x, hb_out *out, const uint64_t *n)
{
    static const struct {
        const char *dim;
        int size; /* index into n */
        const char *sets[3];
    } d[] = {
        {HB_INDEX_GROUP "/doc", IX_N_DOCS, {HB_INDEX_DOC_LENGTH, HB_INDEX_DOC_ID, NULL}},
        {HB_INDEX_GROUP "/term", IX_N_TERMS, {HB_INDEX_DF, HB_INDEX_CF, NULL}},
        {HB_INDEX_GROUP "/term_bound", IX_N_TERM_BOUNDS, {HB_INDEX_TERM_OFFSETS, HB_INDEX_POSTINGS_OFFSETS, NULL}},
        {HB_INDEX_GROUP "/term_byte", IX_N_TERM_BYTES, {HB_INDEX_TERMS, NULL}},
        {HB_INDEX_GROUP "/posting", IX_N_POSTINGS, {HB_INDEX_POSTINGS_DOC, HB_INDEX_POSTINGS_TF, NULL}},
        {HB_INDEX_GROUP "/posting_bound", IX_N_POSTING_BOUNDS, {HB_INDEX_POSITIONS_OFFSETS, NULL}},
        {HB_INDEX_GROUP "/position", IX_N_POSITIONS, {HB_INDEX_POSITIONS, NULL}},
        {HB_INDEX_GROUP "/stopword_byte", IX_N_STOP_BYTES, {HB_INDEX_STOPWORDS, NULL}},
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        int any = 0; /* a dimension only where one of its arrays is written */
        for (int k = 0; d[i].sets[k]; k++) any |= written(x, d[i].sets[k]);
        if (!any) continue;
        HB_CALL(hb_out_dim(out, d[i].dim, n[d[i].size]));
        for (int k = 0; d[i].sets[k]; k++)
            if (written(x, d[i].sets[k])) HB_CALL(hb_out_attach(out, d[i].sets[k], 0, d[i].dim));
    }
    return 0;
}
