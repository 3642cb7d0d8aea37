/* Water billing (docs/bill.md): per account and month, the bill of a tiered tariff in
 * exact integer cents, and totals per district and month.
 *
 * The input is a table with one row per account and month (a table-layout output of
 * the aggregate kernel). map turns each row into a record (meter, district, month,
 * quantity in milli-units, exact); the state is the multiset of records, so saving is
 * writing them and loading is appending. finalize gathers every record on rank 0,
 * sorts them, sums duplicates and prices each bill with integer arithmetic: nothing
 * depends on which rank read which chunk, so the output has the same bits at any rank
 * count and after any interruption. Bills are few (accounts x months), so one rank
 * prices them all. */
#include "kernels/bill/internal.h"
#include "kernels/common/exchange.h"

#include "core/calendar.h"
#include "core/hb.h"

#include <float.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if LDBL_MANT_DIG < 64
#error "the exact quantity needs a long double of 64 significand bits (x86-64)"
#endif

enum { COL_METER, COL_DISTRICT, COL_MONTH, COL_CONSUMPTION, NCOLS };
/* The input columns, in COL_ order: the description table beside hb_kernel_bill, which
 * `h5batch kernels bill` lists, so that the names read and the names listed are one. */
static const hb_dataset_desc bill_inputs[NCOLS + 1];

static const hb_option bill_options[] = {
    {"table", HB_OPT_STRING, "/aggregate", 1, 0, NULL,
     "input table: one row per account and month (an aggregate output with layout = table)"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL,
     "the table's names for meter, district, month, consumption (consumption:consumption_sum)"},
    {"time_unit", HB_OPT_CHOICE, NULL, 1, 0, "s|ms|us|ns",
     "month is a time since 1970-01-01 UTC in this unit (pandas datetime64: ns), billed in its UTC month (unset: "
     "month holds yyyymm)"},
    {"tiers", HB_OPT_STRING, NULL, 1, 0, NULL,
     "THRESHOLD:PRICE, ...: price per unit above each threshold, the first threshold 0 (0:1.20, 10:1.80)"},
    {"fixed_charge", HB_OPT_STRING, "0", 1, 0, NULL, "charge per bill (account and month), at most 2 decimals"},
    {"currency", HB_OPT_STRING, "EUR", 1, 0, NULL, "currency of prices and amounts (an attribute of the output)"},
    {"unit", HB_OPT_STRING, "m3", 1, 0, NULL, "unit of consumption, in which prices are per unit"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

typedef struct rec {
    int64_t meter, district, month, q;
} rec;

/* String accounts or districts (a CSV's "DE-001"): a record holds the label's place in
 * the sorted distinct labels of the whole column, which every rank reads at setup, so
 * records stay integers, the bills sort by label, and the output is the same at any
 * rank count and after any resume of the same input. */
typedef struct labels {
    hb_strs s;    /* the distinct labels, sorted by their bytes */
    int64_t n;
    size_t width; /* the longest (at least 1), the output's string width */
} labels;

typedef struct bill {
    hb_step_ctx *ctx;
    hb_table *tab;
    bill_tariff tf;
    hb_colmap cols;
    rec *r;
    size_t n, cap;
    int64_t *ibuf[3];
    double *cbuf;
    uint64_t rows_total, rows_missing;
    int64_t per_s; /* month as a time in this unit (time_unit), 0: as yyyymm */
    int has_lab[2];  /* meter, district: a string column, read as labels */
    int no_district; /* the table has none (and columns names none): one district, not written */
    labels lab[2];
    hb_strs cs; /* a chunk's strings */
} bill;

/* Not collective. Where errors about the data point: the input, or in a merge (no
 * input) the output. */
static const char *where(const bill *b)
{
    return b->ctx->input ? b->ctx->input : b->ctx->output ? b->ctx->output : "bill";
}

/* Not collective. Checks the tariff and the column mapping when the job file is read. */
static int bill_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    bill_tariff t;
    hb_colmap m;
    if (hb_colmap_parse(hb_opt_str(o, "columns"), &m, msg, len)) return *key = "columns", HB_ECONFIG;
    int rc = bill_tariff_parse(hb_opt_str(o, "tiers"), hb_opt_str(o, "fixed_charge"), &t, msg, len);
    if (rc) *key = strncmp(msg, "fixed_charge", 12) == 0 ? "fixed_charge" : "tiers";
    return rc;
}

/* Not collective. The state's part that does not depend on an input: the tariff and
 * the column mapping. */
static int new_state(hb_step_ctx *ctx, bill **out)
{
    bill *b = hb_calloc(1, sizeof *b);
    *out = b;
    if (!b) return HB_EINTERNAL;
    b->ctx = ctx;
    char msg[256];
    if (bill_tariff_parse(hb_opt_str(ctx->opts, "tiers"), hb_opt_str(ctx->opts, "fixed_charge"), &b->tf, msg,
                          sizeof msg) ||
        hb_colmap_parse(hb_opt_str(ctx->opts, "columns"), &b->cols, msg, sizeof msg))
        return hb_err_set(HB_ECONFIG, ctx->step_name, "%s", msg); /* validate saw it first */
    return 0;
}

/* Not collective (the same on every rank). Rank 0 prices every bill: the records
 * gathered, the bills and the district totals (at most one per row each: meter,
 * district, month, units, accounts, fixed, total, consumption and one amount per tier),
 * and the sort's keys and index; and chunk buffers of chunk_rows rows. */
static int reserve_memory(const bill *b, int64_t chunk_rows)
{
    const hb_step_ctx *ctx = b->ctx;
    char cause[120], r[32];
    snprintf(cause, sizeof cause, "%s rows of %s", hb_fmt_count(r, (uint64_t)ctx->n_rows), hb_opt_str(ctx->opts, "table"));
    double per_row = sizeof(rec) + 2.0 * 8 * (8 + b->tf.n) + 4 * 8;
    for (int k = 0; b->tab && k < 2; k++) /* string labels, read whole: offsets, an index and about 24 bytes each */
        if (hb_table_kind(b->tab, k) == HB_COL_STRING) per_row += 3 * 8 + 2 * 24;
    double chunk = (double)(chunk_rows < ctx->n_rows ? chunk_rows : ctx->n_rows);
    return hb_mem_reserve((double)ctx->n_rows * per_row + chunk * 32, where(b), "the bills, priced on rank 0,", cause,
                          "split the input into several jobs");
}

/* Label order: bytes, then length (a prefix first). */
static int label_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

typedef struct all_strs {
    char *bytes;
    uint64_t *off;
} all_strs;

static int by_label(const void *x, const void *y, void *arg)
{
    const all_strs *a = arg;
    const int64_t i = *(const int64_t *)x, j = *(const int64_t *)y;
    int c = label_cmp(a->bytes + a->off[i], a->off[i + 1] - a->off[i], a->bytes + a->off[j], a->off[j + 1] - a->off[j]);
    return c ? c : (i > j) - (i < j);
}

/* Not collective (every rank the same). The sorted distinct labels of string column k,
 * read whole; a missing one (pandas' NaN) is 65 naming the row. */
static int build_labels(bill *b, int k)
{
    const int64_t rows = hb_table_rows(b->tab), piece = 1 << 20;
    all_strs a = {NULL, hb_malloc(((size_t)rows + 1) * sizeof(uint64_t))};
    size_t cap = 0, used = 0;
    int64_t *ix = hb_malloc(((size_t)rows + 1) * sizeof *ix);
    int rc = a.off && ix ? 0 : HB_EINTERNAL;
    hb_strs s = {0};
    for (int64_t at = 0; rc == 0 && at < rows; at += piece) {
        const int64_t n = rows - at < piece ? rows - at : piece;
        rc = hb_table_read_str(b->tab, k, at, n, &s);
        const uint8_t *miss = rc ? NULL : hb_table_str_missing(b->tab, k);
        for (int64_t i = 0; rc == 0 && miss && i < n; i++)
            if (miss[i])
                rc = hb_err_set(HB_EDATA, b->ctx->input, "column '%s', row %lld: missing; an account or district "
                                "is needed", hb_colmap_name(&b->cols, bill_inputs[k].name), (long long)(at + i));
        const size_t len = rc ? 0 : (size_t)s.off[n];
        if (rc == 0 && hb_grow((void **)&a.bytes, &cap, used + len + 1, 1)) rc = HB_EINTERNAL;
        if (rc) break;
        memcpy(a.bytes + used, s.bytes, len);
        for (int64_t i = 0; i < n; i++) a.off[at + i] = used + s.off[i];
        used += len;
    }
    hb_strs_free(&s);
    if (rc == 0) {
        a.off[rows] = used;
        for (int64_t i = 0; i < rows; i++) ix[i] = i;
        if (rows) qsort_r(ix, (size_t)rows, sizeof *ix, by_label, &a);
    }
    labels *l = &b->lab[k];
    l->width = 1;
    /* the distinct labels take at most all the bytes read */
    if (rc == 0 && (!(l->s.bytes = hb_malloc(used + 1)) || !(l->s.off = hb_malloc(((size_t)rows + 1) * sizeof(uint64_t)))))
        rc = HB_EINTERNAL;
    size_t at = 0;
    for (int64_t i = 0; rc == 0 && i < rows; i++) {
        const char *p = a.bytes + a.off[ix[i]];
        const size_t n = a.off[ix[i] + 1] - a.off[ix[i]];
        if (l->n && label_cmp(l->s.bytes + l->s.off[l->n - 1], at - l->s.off[l->n - 1], p, n) == 0) continue;
        l->s.off[l->n++] = at;
        memcpy(l->s.bytes + at, p, n);
        at += n;
        if (n > l->width) l->width = n;
    }
    if (rc == 0) l->s.off[l->n] = at;
    free(a.bytes), free(a.off), free(ix);
    return rc;
}

/* Not collective. The place of label p (n bytes) in column k's labels; -1 when absent. */
static int64_t label_index(const labels *l, const char *p, size_t n)
{
    int64_t lo = 0, hi = l->n;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int c = label_cmp(l->s.bytes + l->s.off[mid], l->s.off[mid + 1] - l->s.off[mid], p, n);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* Not collective. Key v of column k (meter, district) as text, for a message. */
static const char *key_text(const bill *b, int k, int64_t v, char *buf, size_t len)
{
    if (!b->has_lab[k] || v < 0 || v >= b->lab[k].n) snprintf(buf, len, "%lld", (long long)v);
    else
        snprintf(buf, len, "'%.*s'", (int)(b->lab[k].s.off[v + 1] - b->lab[k].s.off[v]), b->lab[k].s.bytes + b->lab[k].s.off[v]);
    return buf;
}

/* Collective. Opens the input table and sizes the chunk buffers. */
static int bill_setup(hb_step_ctx *ctx, void **state)
{
    bill *b;
    int rc = new_state(ctx, &b);
    *state = b;
    HB_CALL(rc);
    const char *cols[NCOLS], *table = hb_opt_str(ctx->opts, "table");
    for (int i = 0; i < NCOLS; i++) cols[i] = hb_colmap_name(&b->cols, bill_inputs[i].name);
    /* without a district column (one not named in columns): every account in one district */
    if (cols[COL_DISTRICT] == bill_inputs[COL_DISTRICT].name) {
        hb_table *t = NULL;
        int missing = hb_table_open_any(ctx->in, table, &cols[COL_DISTRICT], 1, &t) == HB_EDATA &&
                      strstr(hb_err_msg(), "missing column 'district'") != NULL;
        hb_table_close(t);
        hb_err_clear();
        MPI_Allreduce(MPI_IN_PLACE, &missing, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD); /* one file: the same */
        if ((b->no_district = missing)) cols[COL_DISTRICT] = cols[COL_METER]; /* read, not used */
    }
    HB_CALL(hb_agree(hb_table_open_any(ctx->in, table, cols, NCOLS, &b->tab)));
    const char *unit; /* unset and unstated: yyyymm */
    HB_CALL(hb_agree(hb_table_time_unit(b->tab, COL_MONTH, hb_opt_str(ctx->opts, "time_unit"), &unit)));
    b->per_s = unit ? hb_time_unit_per_s(unit) : 0;
    ctx->n_rows = hb_table_rows(b->tab);
    ctx->n_chunks = (ctx->n_rows + ctx->chunk_rows - 1) / ctx->chunk_rows;
    HB_CALL(hb_agree(reserve_memory(b, ctx->chunk_rows)));
    for (int k = 0; k < 2 && rc == 0; k++)
        if ((b->has_lab[k] = hb_table_kind(b->tab, k) == HB_COL_STRING)) rc = build_labels(b, k);
    HB_CALL(hb_agree(rc));
    size_t cr = (size_t)ctx->chunk_rows;
    for (int i = 0; i < 3; i++)
        if (!(b->ibuf[i] = hb_malloc(cr * sizeof(int64_t)))) rc = HB_EINTERNAL;
    if (!(b->cbuf = hb_malloc(cr * sizeof(double)))) rc = HB_EINTERNAL;
    return hb_agree(rc);
}

/* Not collective. c (a float of the unit) in milli-units: the exact value of c x 1000
 * (exact in a 64-bit significand) rounded half to even; -1 when negative or too big. */
static int64_t milli(double c)
{
    long double x = (long double)c * 1000.0L;
    if (!(x >= 0) || x > (long double)BILL_MAX_MILLI) return -1;
    return (int64_t)nearbyintl(x); /* the default rounding mode: to nearest, ties to even */
}

/* Not collective. Rows [start, start+n) of integer column k (meter, district, month)
 * into out: a float column is read as floats, so that a fraction is refused (65 naming
 * the row) rather than floored into another account; NaN stays INT64_MIN (missing). */
static int read_key(bill *b, int k, int64_t start, int64_t n, int64_t *out)
{
    if (k < 2 && b->has_lab[k]) { /* a label's place (docs/bill.md) */
        HB_CALL(hb_table_read_str(b->tab, k, start, n, &b->cs));
        const uint8_t *miss = hb_table_str_missing(b->tab, k);
        for (int64_t i = 0; i < n; i++) {
            const int64_t x = label_index(&b->lab[k], b->cs.bytes + b->cs.off[i], (size_t)(b->cs.off[i + 1] - b->cs.off[i]));
            out[i] = (miss && miss[i]) || x < 0 ? INT64_MIN : x;
        }
        return 0;
    }
    if (hb_table_kind(b->tab, k) != HB_COL_FLOAT) return hb_table_read(b->tab, k, start, n, HB_I64, out);
    HB_CALL(hb_table_read(b->tab, k, start, n, HB_F64, b->cbuf));
    for (int64_t i = 0; i < n; i++) {
        const double d = b->cbuf[i];
        if (isnan(d)) out[i] = INT64_MIN;
        else if (d == floor(d) && d > -9223372036854775808.0 && d < 9223372036854775808.0) out[i] = (int64_t)d;
        else
            return hb_err_set(HB_EDATA, b->ctx->input, "column '%s', row %lld: %g is not an integer",
                              hb_colmap_name(&b->cols, bill_inputs[k].name), (long long)(start + i), d);
    }
    return 0;
}

/* Not collective. Reads chunk c and appends one record per row with a consumption. */
static int bill_map(void *state, int64_t c)
{
    bill *b = state;
    hb_step_ctx *ctx = b->ctx;
    int64_t start, n;
    hb_chunk_range(c, ctx->chunk_rows, ctx->n_rows, &start, &n);
    for (int i = 0; i < 2; i++) HB_CALL(read_key(b, i, start, n, b->ibuf[i]));
    if (b->per_s) {
        int64_t *m = b->ibuf[COL_MONTH];
        HB_CALL(hb_table_read_time(b->tab, COL_MONTH, start, n, b->per_s, m, m));
        for (int64_t i = 0; i < n; i++) {
            if (m[i] == INT64_MIN) continue;
            int64_t y;
            int mo, d;
            hb_civil_from_days(hb_floordiv(m[i], 86400), &y, &mo, &d);
            m[i] = y * 100 + mo;
        }
    } else {
        HB_CALL(read_key(b, COL_MONTH, start, n, b->ibuf[COL_MONTH]));
    }
    HB_CALL(hb_table_read(b->tab, COL_CONSUMPTION, start, n, HB_F64, b->cbuf));
    if (hb_grow((void **)&b->r, &b->cap, b->n + (size_t)n, sizeof *b->r))
        return hb_err_set(HB_EINTERNAL, "bill", "out of memory storing %lld bills", (long long)(b->n + (size_t)n));
    for (int64_t i = 0; i < n; i++) {
        int64_t row = start + i, m = b->ibuf[COL_MONTH][i];
        for (int k = 0; k < 3; k++)
            HB_CHECK(b->ibuf[k][i] != INT64_MIN, HB_EDATA, ctx->input,
                     "column '%s', row %lld: missing (NaN) or outside int64 (-2^63, a uint64 of 2^63 or more); an "
                     "integer is needed", hb_colmap_name(&b->cols, bill_inputs[k].name), (long long)row);
        HB_CHECK(m % 100 >= 1 && m % 100 <= 12 && m / 100 >= 1900 && m / 100 <= 2200, HB_EDATA, ctx->input,
                 "column '%s', row %lld: %lld is not a month yyyymm", hb_colmap_name(&b->cols, "month"),
                 (long long)row, (long long)m);
        double v = b->cbuf[i];
        if (isnan(v)) { /* an aggregate group without a valid reading */
            b->rows_missing++;
            continue;
        }
        int64_t q = milli(v);
        HB_CHECK(q >= 0, HB_EDATA, ctx->input, "column '%s', row %lld: consumption %g is negative or above 10^12",
                 hb_colmap_name(&b->cols, "consumption"), (long long)row, v);
        b->r[b->n++] = (rec){b->ibuf[COL_METER][i], b->no_district ? 0 : b->ibuf[COL_DISTRICT][i], m, q};
    }
    b->rows_total += (uint64_t)n;
    return 0;
}

static int by_account(const void *x, const void *y)
{
    const rec *a = x, *b = y;
    if (a->meter != b->meter) return a->meter < b->meter ? -1 : 1;
    if (a->month != b->month) return a->month < b->month ? -1 : 1;
    if (a->district != b->district) return a->district < b->district ? -1 : 1;
    return (a->q > b->q) - (a->q < b->q);
}

static int by_triple(const void *x, const void *y)
{
    const int64_t *a = x, *b = y;
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Saved state: two counters and the records. Version 1 (read only: checkpoints of
 * earlier builds) holds the records as they are; version 2 sorts them by account,
 * month and district, adds up a repeated (account, month, district) and stores the four
 * fields as columns, the meters as differences from the one before: columns of few
 * distinct values and small steps, which the partial file's compression shrinks to a
 * fraction. */
typedef struct saved {
    char magic[8]; /* "HBBILL1" or "HBBILL2" */
    uint64_t rows_total, rows_missing, n;
} saved;

/* Not collective. This rank's counters and records as bytes (sorts the records: their
 * order means nothing, finalize sorts them again). */
static int bill_save(void *state, void **buf, size_t *len)
{
    bill *b = state;
    if (b->ctx->saving_partial && (b->has_lab[0] || b->has_lab[1]))
        return hb_err_set(HB_ECONFIG, where(b), "bill has no partial states of string accounts or districts (their "
                          "numbers are places in this input's labels): bill the sites' rows in one job");
    if (b->n) qsort(b->r, b->n, sizeof *b->r, by_account);
    size_t n = 0; /* records after adding up repeats, in place */
    for (size_t i = 0; i < b->n; i++) {
        rec *last = n ? &b->r[n - 1] : NULL;
        if (last && last->meter == b->r[i].meter && last->month == b->r[i].month &&
            last->district == b->r[i].district && last->q <= BILL_MAX_MILLI - b->r[i].q)
            last->q += b->r[i].q; /* the sum finalize makes; one past the limit stays apart, for its message */
        else
            b->r[n++] = b->r[i];
    }
    b->n = n;
    saved h = {"HBBILL2", b->rows_total, b->rows_missing, n};
    *len = sizeof h + n * sizeof(rec);
    char *p = hb_malloc(*len);
    if (!p) return HB_EINTERNAL;
    memcpy(p, &h, sizeof h);
    int64_t *col = (int64_t *)(p + sizeof h), prev = 0;
    for (size_t i = 0; i < n; i++) {
        col[i] = (int64_t)((uint64_t)b->r[i].meter - (uint64_t)prev); /* wraps back exactly in load */
        prev = b->r[i].meter;
        col[n + i] = b->r[i].district, col[2 * n + i] = b->r[i].month, col[3 * n + i] = b->r[i].q;
    }
    *buf = p;
    return 0;
}

/* Not collective. Appends a saved part's records and counters. */
static int bill_load(void *state, const void *buf, size_t len)
{
    bill *b = state;
    saved h;
    HB_CHECK(len >= sizeof h, HB_EDATA, "checkpoint", "bill state is truncated");
    memcpy(&h, buf, sizeof h);
    int v2 = memcmp(h.magic, "HBBILL2", 8) == 0;
    HB_CHECK((v2 || memcmp(h.magic, "HBBILL1", 8) == 0) && h.n <= (len - sizeof h) / sizeof(rec) &&
                 len == sizeof h + h.n * sizeof(rec),
             HB_EDATA, "checkpoint", "not a bill state");
    if (hb_grow((void **)&b->r, &b->cap, b->n + h.n, sizeof *b->r)) return HB_EINTERNAL;
    const char *p = (const char *)buf + sizeof h;
    if (!v2) {
        if (h.n) memcpy(b->r + b->n, p, h.n * sizeof(rec));
    } else {
        uint64_t meter = 0;
        for (size_t i = 0; i < h.n; i++) {
            int64_t f[4];
            for (size_t k = 0; k < 4; k++) memcpy(&f[k], p + (k * h.n + i) * sizeof(int64_t), sizeof f[k]);
            meter += (uint64_t)f[0];
            HB_CHECK(f[3] >= 0 && f[3] <= BILL_MAX_MILLI, HB_EDATA, "checkpoint", "bill state is damaged");
            b->r[b->n + i] = (rec){(int64_t)meter, f[1], f[2], f[3]};
        }
    }
    b->n += h.n;
    b->rows_total += h.rows_total;
    b->rows_missing += h.rows_missing;
    return 0;
}

/* Partial states (DESIGN.md 7): the records are all the state, and setup learns nothing
 * else from the input, so the description is a version tag and the merge's empty
 * state is setup's without an input. The bills do not depend on the order of rows. */
#define BILL_DESC "HBBILLD1"

/* Not collective. */
static int bill_describe(void *state, void **buf, size_t *len)
{
    (void)state;
    char *p = hb_malloc(sizeof BILL_DESC);
    if (!p) return HB_EINTERNAL;
    memcpy(p, BILL_DESC, sizeof BILL_DESC);
    *buf = p;
    *len = sizeof BILL_DESC;
    return 0;
}

/* Collective. The empty state of the parts' concatenated input. */
static int bill_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    bill *b;
    int rc = new_state(ctx, &b);
    *state = b;
    for (int i = 0; i < n && rc == 0; i++)
        if (parts[i].desc_len != sizeof BILL_DESC || memcmp(parts[i].desc, BILL_DESC, sizeof BILL_DESC) != 0)
            rc = hb_err_set(HB_EDATA, parts[i].path, "its bill description is damaged or of another version");
    if (rc == 0) rc = reserve_memory(b, 0);
    return hb_agree(rc);
}

/* The priced table: bills (per account and month) or district totals. */
typedef struct priced {
    size_t n;
    int64_t *meter, *district, *month, *q, *accounts, *fixed, *total;
    int64_t *tier[BILL_MAX_TIERS];
    double *cons;
} priced;

static void priced_free(priced *p)
{
    free(p->meter), free(p->district), free(p->month), free(p->q), free(p->accounts), free(p->fixed),
        free(p->total), free(p->cons);
    for (int k = 0; k < BILL_MAX_TIERS; k++) free(p->tier[k]);
    memset(p, 0, sizeof *p);
}

static int priced_alloc(priced *p, size_t n, int ntiers)
{
    size_t m = n ? n : 1, e = sizeof(int64_t);
    p->n = n;
    p->meter = hb_calloc(m, e), p->district = hb_calloc(m, e), p->month = hb_calloc(m, e), p->q = hb_calloc(m, e);
    p->accounts = hb_calloc(m, e), p->fixed = hb_calloc(m, e), p->total = hb_calloc(m, e);
    p->cons = hb_calloc(m, sizeof(double));
    int ok = p->meter && p->district && p->month && p->q && p->accounts && p->fixed && p->total && p->cons;
    for (int k = 0; k < ntiers; k++) ok = ok && (p->tier[k] = hb_calloc(m, e));
    return ok ? 0 : HB_EINTERNAL;
}

/* Not collective (rank 0). Sorts the records, sums duplicate accounts and months, and
 * prices the bills into bl and the district totals into ds. */
static int price_all(bill *b, rec *r, size_t n, priced *bl, priced *ds)
{
    const bill_tariff *tf = &b->tf;
    if (n) qsort(r, n, sizeof *r, by_account);
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        if (nb && r[nb - 1].meter == r[i].meter && r[nb - 1].month == r[i].month) {
            char m[160], d1[160], d2[160];
            HB_CHECK(r[nb - 1].district == r[i].district, HB_EDATA, where(b),
                     "meter %s in month %lld is in two districts, %s and %s", key_text(b, 0, r[i].meter, m, sizeof m),
                     (long long)r[i].month, key_text(b, 1, r[nb - 1].district, d1, sizeof d1),
                     key_text(b, 1, r[i].district, d2, sizeof d2));
            r[nb - 1].q += r[i].q; /* both at most 10^12 units: no overflow */
            HB_CHECK(r[nb - 1].q <= BILL_MAX_MILLI, HB_EDATA, where(b), "meter %s: consumption above 10^12",
                     key_text(b, 0, r[i].meter, m, sizeof m));
        } else {
            r[nb++] = r[i];
        }
    }
    HB_CALL(priced_alloc(bl, nb, tf->n));
    int64_t cents[BILL_MAX_TIERS];
    for (size_t i = 0; i < nb; i++) {
        int64_t total;
        char m[160];
        HB_CHECK(bill_amounts(tf, r[i].q, cents, &total) == 0, HB_EDATA, where(b),
                 "meter %s, month %lld: the bill overflows 64-bit cents", key_text(b, 0, r[i].meter, m, sizeof m),
                 (long long)r[i].month);
        bl->meter[i] = r[i].meter, bl->district[i] = r[i].district, bl->month[i] = r[i].month;
        bl->q[i] = r[i].q, bl->cons[i] = (double)r[i].q / BILL_MILLI;
        bl->accounts[i] = 1, bl->fixed[i] = tf->fixed, bl->total[i] = total;
        for (int k = 0; k < tf->n; k++) bl->tier[k][i] = cents[k];
    }
    /* district totals: the bills in (district, month) order through an index */
    size_t *ix = hb_malloc((nb ? nb : 1) * sizeof *ix);
    if (!ix) return HB_EINTERNAL;
    for (size_t i = 0; i < nb; i++) ix[i] = i;
    int rc = 0;
    {
        /* sort indices by (district, month, index): a total order */
        int64_t *key = hb_malloc((nb ? nb : 1) * 3 * sizeof *key);
        if (!key) rc = HB_EINTERNAL;
        for (size_t i = 0; rc == 0 && i < nb; i++)
            key[3 * i] = bl->district[i], key[3 * i + 1] = bl->month[i], key[3 * i + 2] = (int64_t)i;
        if (rc == 0 && nb) qsort(key, nb, 3 * sizeof *key, by_triple);
        for (size_t i = 0; rc == 0 && i < nb; i++) ix[i] = (size_t)key[3 * i + 2];
        free(key);
    }
    size_t nd = 0;
    for (size_t j = 0; rc == 0 && j < nb; j++) {
        size_t i = ix[j];
        if (j == 0 || bl->district[ix[j - 1]] != bl->district[i] || bl->month[ix[j - 1]] != bl->month[i]) nd++;
    }
    if (rc == 0) rc = priced_alloc(ds, nd, tf->n);
    size_t d = 0;
    for (size_t j = 0; rc == 0 && j < nb; j++) {
        size_t i = ix[j];
        if (j > 0 && (bl->district[ix[j - 1]] != bl->district[i] || bl->month[ix[j - 1]] != bl->month[i])) d++;
        ds->district[d] = bl->district[i], ds->month[d] = bl->month[i];
        int ovf = __builtin_add_overflow(ds->q[d], bl->q[i], &ds->q[d]);
        ovf |= __builtin_add_overflow(ds->accounts[d], 1, &ds->accounts[d]);
        ovf |= __builtin_add_overflow(ds->fixed[d], bl->fixed[i], &ds->fixed[d]);
        ovf |= __builtin_add_overflow(ds->total[d], bl->total[i], &ds->total[d]);
        for (int k = 0; k < tf->n; k++) ovf |= __builtin_add_overflow(ds->tier[k][d], bl->tier[k][i], &ds->tier[k][d]);
        char dn[160];
        if (ovf)
            rc = hb_err_set(HB_EDATA, where(b), "district %s, month %lld: the total overflows 64-bit cents",
                            key_text(b, 1, bl->district[i], dn, sizeof dn), (long long)bl->month[i]);
    }
    for (size_t i = 0; rc == 0 && i < nd; i++) ds->cons[i] = (double)ds->q[i] / BILL_MILLI;
    free(ix);
    return rc;
}

/* Collective. Writes the int64 column name of p (rank 0 holds the rows). */
static int put_i64(hb_out *out, const char *g, const char *name, const priced *p, const int64_t *v,
                   const char *units, const char *desc)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g, name);
    uint64_t dims[1] = {p->n};
    static const int64_t none = 0;
    if (p->n == 0) return hb_out_dataset(out, path, HB_I64, 1, dims, units, desc); /* nothing to write */
    return hb_out_write(out, path, HB_I64, 1, dims, 0, hb_rank == 0 ? p->n : 0, hb_rank == 0 ? (const void *)v : &none,
                        units, desc);
}

/* Collective. Key column k (meter, district) of p: int64, or the labels of a string column. */
static int put_key(const bill *b, hb_out *out, const char *g, const char *name, const priced *p, const int64_t *v,
                   int k, const char *desc)
{
    if (!b->has_lab[k]) return put_i64(out, g, name, p, v, NULL, desc);
    const labels *l = &b->lab[k];
    char path[256], *buf = hb_rank == 0 ? hb_calloc(p->n ? p->n : 1, l->width) : NULL;
    snprintf(path, sizeof path, "%s/%s", g, name);
    HB_CALL(hb_agree(hb_rank == 0 && !buf ? HB_EINTERNAL : 0));
    for (size_t i = 0; buf && i < p->n; i++)
        memcpy(buf + i * l->width, l->s.bytes + l->s.off[v[i]], (size_t)(l->s.off[v[i] + 1] - l->s.off[v[i]]));
    int rc = hb_out_strings(out, path, p->n, 0, hb_rank == 0 ? p->n : 0, l->width, buf ? buf : "", NULL);
    free(buf);
    return rc;
}

/* Collective. The attributes of a money column: currency and scale (amount / scale is
 * in the currency). */
static int money_attrs(hb_out *out, const char *g, const char *name, const char *currency)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g, name);
    HB_CALL(hb_out_attr_str(out, path, "currency", currency));
    return hb_out_attr_i64(out, path, "scale", 100);
}

/* Collective. One priced table into group g: bills (with meter) or district totals. */
static int write_table(bill *b, hb_out *out, const char *g, const priced *p, int bills)
{
    const char *cur = hb_opt_str(b->ctx->opts, "currency"), *unit = hb_opt_str(b->ctx->opts, "unit");
    char units[96], desc[160], name[32];
    snprintf(units, sizeof units, "%s/100", cur);
    HB_CALL(hb_out_group(out, g));
    if (bills) HB_CALL(put_key(b, out, g, "meter", p, p->meter, 0, "account (meter)"));
    if (!b->no_district) HB_CALL(put_key(b, out, g, "district", p, p->district, 1, "district"));
    HB_CALL(put_i64(out, g, "month", p, p->month, NULL, "month yyyymm"));
    if (!bills) HB_CALL(put_i64(out, g, "accounts", p, p->accounts, NULL, "bills in the district and month"));
    char path[256];
    snprintf(path, sizeof path, "%s/consumption", g);
    uint64_t dims[1] = {p->n};
    static const double none = 0;
    const char *cdesc = "billed consumption: consumption_milli / 1000";
    HB_CALL(p->n == 0 ? hb_out_dataset(out, path, HB_F64, 1, dims, unit, cdesc)
                      : hb_out_write(out, path, HB_F64, 1, dims, 0, hb_rank == 0 ? p->n : 0,
                                     hb_rank == 0 ? (const void *)p->cons : &none, unit, cdesc));
    snprintf(units, sizeof units, "%s/1000", unit);
    HB_CALL(put_i64(out, g, "consumption_milli", p, p->q, units,
                    "billed consumption in thousandths of the unit, exact (rounded half to even)"));
    snprintf(units, sizeof units, "%s/100", cur);
    for (int k = 0; k < b->tf.n; k++) {
        snprintf(name, sizeof name, "tier_%d", k + 1);
        snprintf(desc, sizeof desc, "amount of tier %d in cents, rounded half to even", k + 1);
        HB_CALL(put_i64(out, g, name, p, p->tier[k], units, desc));
        HB_CALL(money_attrs(out, g, name, cur));
    }
    HB_CALL(put_i64(out, g, "fixed_charge", p, p->fixed, units, "fixed charge in cents"));
    HB_CALL(money_attrs(out, g, "fixed_charge", cur));
    HB_CALL(put_i64(out, g, "total", p, p->total, units, "total in cents: the tiers plus the fixed charge"));
    HB_CALL(money_attrs(out, g, "total", cur));
    return 0;
}

/* Collective. Gathers every record on rank 0, prices the bills there and writes /bill
 * and /bill/districts. */
static int bill_finalize(void *state, hb_out *out)
{
    bill *b = state;
    int cnt = (int)(b->n * sizeof(rec)), rc = 0;
    HB_CALL(hb_agree(b->n * sizeof(rec) > (size_t)INT32_MAX
                         ? hb_err_set(HB_EINTERNAL, "bill", "more than 2 GB of bills on one rank")
                         : 0));
    int *counts = NULL, *displ = NULL;
    rec *all = NULL;
    uint64_t tot[2] = {b->rows_total, b->rows_missing};
    MPI_Allreduce(MPI_IN_PLACE, tot, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    HB_CALL(hb_invalid_check(tot[0], tot[1], where(b), "rows", "consumption is NaN: no valid reading"));
    if (hb_rank == 0) {
        counts = hb_malloc((size_t)hb_size * sizeof *counts);
        displ = hb_malloc((size_t)hb_size * sizeof *displ);
        if (!counts || !displ) rc = HB_EINTERNAL;
    }
    HB_CALL(hb_agree(rc));
    MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    size_t total_bytes = 0;
    if (hb_rank == 0) {
        for (int r = 0; r < hb_size; r++) {
            displ[r] = (int)total_bytes;
            total_bytes += (size_t)counts[r];
        }
        if (total_bytes > (size_t)INT32_MAX) rc = hb_err_set(HB_EINTERNAL, "bill", "more than 2 GB of bills");
        else if (!(all = hb_malloc(total_bytes ? total_bytes : 1))) rc = HB_EINTERNAL;
    }
    rc = hb_agree(rc);
    if (rc) {
        free(counts), free(displ);
        return rc;
    }
    MPI_Gatherv(b->r, cnt, MPI_BYTE, all, counts, displ, MPI_BYTE, 0, MPI_COMM_WORLD);
    free(counts), free(displ);
    priced bl = {0}, ds = {0};
    if (hb_rank == 0) rc = price_all(b, all, total_bytes / sizeof(rec), &bl, &ds);
    free(all);
    rc = hb_agree(rc);
    uint64_t n[2] = {bl.n, ds.n};
    if (rc == 0) {
        MPI_Bcast(n, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        bl.n = n[0], ds.n = n[1];
        rc = write_table(b, out, "/bill", &bl, 1);
    }
    if (rc == 0) rc = write_table(b, out, "/bill/districts", &ds, 0);
    if (rc == 0) {
        const char *g = "/bill";
        rc = hb_out_attr_str(out, g, "currency", hb_opt_str(b->ctx->opts, "currency"));
        if (rc == 0) rc = hb_out_attr_i64(out, g, "scale", 100);
        if (rc == 0) rc = hb_out_attr_str(out, g, "unit", hb_opt_str(b->ctx->opts, "unit"));
        if (rc == 0) rc = hb_out_attr_str(out, g, "tiers", hb_opt_str(b->ctx->opts, "tiers"));
        if (rc == 0) rc = hb_out_attr_str(out, g, "fixed_charge", hb_opt_str(b->ctx->opts, "fixed_charge"));
        if (rc == 0)
            rc = hb_out_attr_str(out, g, "rounding",
                                 "consumption to 1/1000 unit half to even; each tier to the cent half to even");
        if (rc == 0) rc = hb_out_attr_u64(out, g, "rows_total", tot[0]);
        if (rc == 0) rc = hb_out_attr_u64(out, g, "rows_missing", tot[1]);
    }
    priced_free(&bl), priced_free(&ds);
    return rc;
}

/* Not collective. Frees the state, also a partly built one. */
static void bill_destroy(void *state)
{
    bill *b = state;
    if (!b) return;
    hb_table_close(b->tab);
    for (int k = 0; k < 2; k++) hb_strs_free(&b->lab[k].s);
    hb_strs_free(&b->cs);
    for (int i = 0; i < 3; i++) free(b->ibuf[i]);
    free(b->cbuf), free(b->r);
    free(b);
}

/* What the kernel reads (its columns in COL_ order: the names setup reads) and writes
 * (docs/bill.md), listed by `h5batch kernels bill`. */
static const hb_dataset_desc bill_inputs[NCOLS + 1] = {
    {"meter", "table", "int|string", "", NULL, 0, "account (meter) id"},
    {"district", "table", "int|string", "", NULL, 0, "district of the account (optional: without it, one)"},
    {"month", "table", "int", "", "yyyymm", 0, "billing month"},
    {"consumption", "table", "number", "", NULL, 0, "quantity of the month in unit; NaN rows are skipped"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};
static const hb_dataset_desc bill_outputs[] = {
    {"/bill/total", NULL, "int64", "bill", "<currency>/100", 0, "cents of the bill (units: the currency / 100)"},
    {"/bill/meter", NULL, "int64|string", "bill", NULL, 0, "account, sorted by meter then month"},
    {"/bill/district", NULL, "int64|string", "bill", NULL, 0, "district"},
    {"/bill/month", NULL, "int64", "bill", NULL, 0, "month, yyyymm"},
    {"/bill/consumption", NULL, "float64", "bill", "<unit>", 0, "billed quantity (consumption_milli / 1000)"},
    {"/bill/consumption_milli", NULL, "int64", "bill", "<unit>/1000", 0, "billed quantity in thousandths, exact"},
    {"/bill/tier_<K>", NULL, "int64", "bill", "<currency>/100", 0, "cents of tier K"},
    {"/bill/fixed_charge", NULL, "int64", "bill", "<currency>/100", 0, "cents"},
    {"/bill/districts/total", NULL, "int64", "district_month", "<currency>/100", 0, "cents per district and month"},
    {"/bill/districts/district", NULL, "int64|string", "district_month", NULL, 0, "district"},
    {"/bill/districts/month", NULL, "int64", "district_month", NULL, 0, "month, yyyymm"},
    {"/bill/districts/accounts", NULL, "int64", "district_month", NULL, 0, "bills in the district and month"},
    {"/bill/districts/consumption", NULL, "float64", "district_month", "<unit>", 0, "billed quantity"},
    {"/bill/districts/consumption_milli", NULL, "int64", "district_month", "<unit>/1000", 0, "thousandths, exact"},
    {"/bill/districts/tier_<K>", NULL, "int64", "district_month", "<currency>/100", 0, "cents of tier K"},
    {"/bill/districts/fixed_charge", NULL, "int64", "district_month", "<currency>/100", 0, "cents"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};

const hb_kernel hb_kernel_bill = {
    .name = "bill",
    .summary = "per account and month, the bill of a tiered tariff in exact integer cents; totals per district "
               "and month",
    .options = bill_options,
    .default_chunk_rows = 1 << 20,
    .generator = &bill_meters_generator,
    .validate = bill_validate,
    .setup = bill_setup,
    .map = bill_map,
    .finalize = bill_finalize,
    .save = bill_save,
    .load = bill_load,
    .destroy = bill_destroy,
    .inputs = bill_inputs,
    .outputs = bill_outputs,
    .describe = bill_describe,
    .setup_parts = bill_setup_parts,
};
