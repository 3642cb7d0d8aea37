/* psum: a test plugin kernel for the partial-state core (DESIGN.md 7), independent of
 * the built-in kernels: per integer key of table /t (columns key, value), the count, the
 * sum of value times the option scale, and the first row (in the concatenation of the
 * inputs) where the key appears; dense over 0..max(key). Its describe is max(key)+1,
 * its saved state the keys seen with their figures, and its first_row is what
 * load_part's row_offset is for. tests/partial/ref.py computes the same with numpy. */
#include <h5batch/kernel.h>

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

typedef struct psum {
    hb_step_ctx *ctx;
    hb_table *tab;
    int64_t K, scale;
    int64_t *cnt, *sum, *first;
} psum;

static const hb_option options[] = {
    {"table", HB_OPT_STRING, "/t", 1, 0, NULL, "the input table"},
    {"scale", HB_OPT_INT, "1", 1, 1000, NULL, "values are multiplied by it"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int alloc_state(psum *p)
{
    size_t k = (size_t)(p->K ? p->K : 1);
    p->cnt = hb_calloc(k, sizeof *p->cnt);
    p->sum = hb_calloc(k, sizeof *p->sum);
    p->first = hb_malloc(k * sizeof *p->first);
    if (!p->cnt || !p->sum || !p->first) return HB_EINTERNAL;
    for (size_t i = 0; i < k; i++) p->first[i] = INT64_MAX;
    return 0;
}

static int psum_setup(hb_step_ctx *ctx, void **state)
{
    psum *p = hb_calloc(1, sizeof *p);
    if (!p) return hb_agree(HB_EINTERNAL);
    *state = p;
    p->ctx = ctx;
    p->scale = (int64_t)hb_opt_num(ctx->opts, "scale");
    const char *cols[] = {"key", "value"};
    int rc = hb_table_open(ctx->in, hb_opt_str(ctx->opts, "table"), cols, 2, &p->tab);
    int64_t n = rc == 0 ? hb_table_rows(p->tab) : 0;
    int64_t *key = rc == 0 ? hb_malloc((size_t)(n ? n : 1) * sizeof *key) : NULL;
    if (rc == 0 && !key) rc = HB_EINTERNAL;
    if (rc == 0) rc = hb_table_read(p->tab, 0, 0, n, HB_I64, key);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        if (key[i] < 0 || key[i] > 1000000) rc = hb_err_set(HB_EDATA, ctx->input, "row %lld: bad key", (long long)i);
        else if (key[i] + 1 > p->K) p->K = key[i] + 1;
    }
    free(key);
    ctx->n_rows = n;
    ctx->n_chunks = (n + ctx->chunk_rows - 1) / ctx->chunk_rows;
    if (rc == 0) rc = alloc_state(p);
    return hb_agree(rc);
}

static int psum_map(void *state, int64_t c)
{
    psum *p = state;
    int64_t r0 = c * p->ctx->chunk_rows, n = p->ctx->n_rows - r0 < p->ctx->chunk_rows ? p->ctx->n_rows - r0
                                                                                         : p->ctx->chunk_rows;
    int64_t *k = hb_malloc((size_t)n * sizeof *k), *v = hb_malloc((size_t)n * sizeof *v);
    int rc = k && v ? 0 : HB_EINTERNAL;
    if (rc == 0) rc = hb_table_read(p->tab, 0, r0, n, HB_I64, k);
    if (rc == 0) rc = hb_table_read(p->tab, 1, r0, n, HB_I64, v);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        p->cnt[k[i]]++;
        p->sum[k[i]] += v[i] * p->scale;
        if (r0 + i < p->first[k[i]]) p->first[k[i]] = r0 + i;
    }
    free(k), free(v);
    return rc;
}

static int psum_finalize(void *state, hb_out *out)
{
    psum *p = state;
    size_t k = (size_t)(p->K ? p->K : 1);
    MPI_Allreduce(MPI_IN_PLACE, p->cnt, (int)k, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, p->sum, (int)k, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, p->first, (int)k, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
    for (size_t i = 0; i < k; i++)
        if (p->first[i] == INT64_MAX) p->first[i] = -1;
    const uint64_t dims[1] = {k};
    const uint64_t mine = hb_rank == 0 ? k : 0;
    HB_CALL(hb_out_write(out, "/psum/count", HB_I64, 1, dims, 0, mine, p->cnt, NULL, "rows per key"));
    HB_CALL(hb_out_write(out, "/psum/sum", HB_I64, 1, dims, 0, mine, p->sum, NULL, "sum of value x scale"));
    return hb_out_write(out, "/psum/first_row", HB_I64, 1, dims, 0, mine, p->first, NULL, "first row of the key");
}

static int psum_save(void *state, void **buf, size_t *len)
{
    psum *p = state;
    int64_t n = 0;
    for (int64_t i = 0; i < p->K; i++) n += p->cnt[i] > 0;
    int64_t *b = hb_malloc((size_t)(1 + 4 * n) * sizeof *b);
    if (!b) return HB_EINTERNAL;
    b[0] = n;
    int64_t j = 1;
    for (int64_t i = 0; i < p->K; i++)
        if (p->cnt[i] > 0) b[j++] = i, b[j++] = p->cnt[i], b[j++] = p->sum[i], b[j++] = p->first[i];
    *buf = b;
    *len = (size_t)j * sizeof *b;
    return 0;
}

static int load_at(psum *p, const void *buf, size_t len, int64_t offset)
{
    const int64_t *b = buf;
    if (len < 8 || (len - 8) % 32 != 0 || (size_t)b[0] != (len - 8) / 32)
        return hb_err_set(HB_EDATA, "psum", "saved state of %zu bytes is damaged", len);
    for (int64_t i = 0; i < b[0]; i++) {
        const int64_t *e = b + 1 + 4 * i;
        if (e[0] < 0 || e[0] >= p->K) return hb_err_set(HB_EDATA, "psum", "saved key %lld out of range", (long long)e[0]);
        p->cnt[e[0]] += e[1];
        p->sum[e[0]] += e[2];
        if (e[3] + offset < p->first[e[0]]) p->first[e[0]] = e[3] + offset;
    }
    return 0;
}

static int psum_load(void *state, const void *buf, size_t len) { return load_at(state, buf, len, 0); }

static int psum_load_part(void *state, const hb_part *part, const void *buf, size_t len)
{
    return load_at(state, buf, len, part->row_offset);
}

static int psum_describe(void *state, void **buf, size_t *len)
{
    psum *p = state;
    int64_t *d = hb_malloc(sizeof *d);
    if (!d) return HB_EINTERNAL;
    *d = p->K;
    *buf = d;
    *len = sizeof *d;
    return 0;
}

static int psum_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    psum *p = hb_calloc(1, sizeof *p);
    if (!p) return hb_agree(HB_EINTERNAL);
    *state = p;
    p->ctx = ctx;
    p->scale = (int64_t)hb_opt_num(ctx->opts, "scale");
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t k;
        if (parts[i].desc_len != sizeof k) {
            rc = hb_err_set(HB_EDATA, parts[i].path, "psum: a description of %zu bytes", parts[i].desc_len);
            break;
        }
        memcpy(&k, parts[i].desc, sizeof k);
        if (k > p->K) p->K = k;
    }
    if (rc == 0) rc = alloc_state(p);
    return hb_agree(rc);
}

static void psum_destroy(void *state)
{
    psum *p = state;
    if (!p) return;
    if (p->tab) hb_table_close(p->tab);
    free(p->cnt), free(p->sum), free(p->first);
    free(p);
}

static const hb_kernel kernel = {
    .name = "psum",
    .summary = "test kernel of the partial-state core: count, sum and first row per key",
    .options = options,
    .default_chunk_rows = 7,
    .setup = psum_setup,
    .map = psum_map,
    .finalize = psum_finalize,
    .save = psum_save,
    .load = psum_load,
    .destroy = psum_destroy,
    .describe = psum_describe,
    .setup_parts = psum_setup_parts,
    .load_part = psum_load_part,
};

/* The same kernel under another name, for "a part of another kernel"; and one that
 * keeps checkpoints but no partial states, for the refusal of --partial and merge. */
static const hb_kernel other = {
    .name = "psumb",
    .summary = "psum under another name",
    .options = options,
    .default_chunk_rows = 7,
    .setup = psum_setup,
    .map = psum_map,
    .finalize = psum_finalize,
    .save = psum_save,
    .load = psum_load,
    .destroy = psum_destroy,
    .describe = psum_describe,
    .setup_parts = psum_setup_parts,
    .load_part = psum_load_part,
};
static const hb_kernel nohooks = {
    .name = "pnohooks",
    .summary = "psum without partial states",
    .options = options,
    .default_chunk_rows = 7,
    .setup = psum_setup,
    .map = psum_map,
    .finalize = psum_finalize,
    .save = psum_save,
    .load = psum_load,
    .destroy = psum_destroy,
};

HB_PLUGIN_ABI;
int hb_plugin_init(int host_abi)
{
    (void)host_abi;
    int rc = hb_kernel_register(&kernel);
    if (rc == 0) rc = hb_kernel_register(&other);
    if (rc == 0) rc = hb_kernel_register(&nohooks);
    return rc;
}
