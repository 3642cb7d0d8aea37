/* Grouped aggregation (`kernel = aggregate`, DESIGN.md 4.4): per group of key values,
 * statistics of value columns. This file holds the kernel table and the data path up
 * to the owners: map a chunk to group keys, combine it per group, send the groups to
 * their owners after every round, save and load the state, and describe it for partial
 * states (DESIGN.md 7: setup_parts builds a merge's empty state from the parts'
 * descriptions). output.c turns the owners' groups into the dense or table layout.
 *
 * map: keys are read (integers as themselves, floats that hold integers, strings as
 * the XXH3 hash of their bytes, calendar keys from the local time through the day-offset
 * table of core/calendar.h), each row's key tuple is hashed, and each OpenMP thread
 * combines the rows of its part of the hash space: into the owned table when this rank
 * owns the group, else into the stage table. exchange sends every staged group as
 * records (keys + accumulators + the kept values of percentile stats) to its owner,
 * which merges them. A group's owner depends on its hash and the rank count only, and
 * every merge is exact, so no bit of the output depends on ranks, threads or chunks. */
#include "kernels/aggregate/agg.h"

#include "core/hb.h"
#include "kernels/common/sort.h"
#include "kernels/common/varint.h"

#include <float.h>
#include <malloc.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MISSING INT64_MIN

static const hb_option aggregate_options[] = {
    {"table", HB_OPT_STRING, "/table", 1, 0, NULL, "input table (a group of equal-length columns)"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL,
     "names of the table's columns for the names used here, e.g. 'time:timestamp, meter:meter_id'"},
    {"by", HB_OPT_STRING, NULL, 1, 0, NULL,
     "keys: columns (integers or strings) and calendar keys hour, day_of_week, date, week, month, quarter, year"},
    {"values", HB_OPT_STRING, NULL, 1, 0, NULL, "numeric columns to summarize"},
    {"stats", HB_OPT_STRING, "count, mean", 1, 0, NULL,
     "count, sum, mean, min, max, std, var, first, last, p<P> (exact, type 7), above:X, below:X"},
    {"valid", HB_OPT_STRING, NULL, 1, 0, NULL,
     "inclusive valid range per value, e.g. 'consumption:0:1e6, temp:-50:'; without one any finite value is valid"},
    {"time", HB_OPT_STRING, NULL, 1, 0, NULL, "time column (needed by calendar keys and first/last)"},
    {"time_unit", HB_OPT_CHOICE, NULL, 1, 0, "s|ms|us|ns",
     "unit of the time column since 1970-01-01 UTC; default what the column states (pandas datetime64: ns; a "
     "units attribute such as CF's 'seconds since 1970-01-01'), else s"},
    {"timezone", HB_OPT_STRING, "UTC", 1, 0, NULL, "IANA time zone of the calendar keys (DST-correct)"},
    {"layout", HB_OPT_CHOICE, "dense", 1, 0, "dense|table",
     "dense: arrays over the keys' observed values; table: one row per non-empty group"},
    {"max_memory", HB_OPT_SIZE, NULL, 1e6, 1e15, NULL,
     "memory one rank may use for groups and buffers, and the largest dense output; default [job] max_memory"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Not collective. The job-file check: every option rule, before any data is read. */
static int aggregate_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    agg_spec sp;
    return agg_spec_parse(o, &sp, key, msg, len);
}

void agg_colname(const agg *a, const char *name, char *buf, size_t len)
{
    const char *t = hb_colmap_name(&a->sp.cols, name);
    if (strcmp(t, name) == 0) snprintf(buf, len, "'%s'", name);
    else snprintf(buf, len, "'%s' (table column '%s')", name, t);
}

/* Adds name to the table's column list (once) and returns its index. */
static int add_column(const char **cols, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(cols[i], name) == 0) return i;
    cols[*n] = name;
    return (*n)++;
}

/* Not collective. The chunk buffers, sized by chunk_rows once, so that map allocates
 * only as groups appear. */
static int alloc_chunk(agg *a)
{
    const size_t cr = (size_t)a->ctx->chunk_rows;
    const agg_spec *sp = &a->sp;
    int ok = 1;
    for (int k = 0; k < sp->nkeys; k++) ok &= (a->kbuf[k] = hb_malloc(cr * 8)) != NULL;
    for (int v = 0; v < sp->nvals; v++) ok &= (a->vbuf[v] = hb_malloc(cr * 8)) != NULL;
    ok &= (a->dtmp = hb_malloc(cr * 8)) != NULL;
    ok &= (a->h = hb_malloc(cr * 8)) != NULL;
    ok &= (a->ok = hb_malloc(cr)) != NULL;
    if (sp->has_time) ok &= (a->traw = hb_malloc(cr * 8)) && (a->tloc = hb_malloc(cr * 8));
    ok &= (a->grec = hb_malloc(cr * 8 * (size_t)(1 + sp->nkeys + sp->nvals + sp->has_time))) != NULL;
    ok &= (a->gstart = hb_malloc(((size_t)a->nthreads * AGG_SUB * 2 + 1) * sizeof *a->gstart)) != NULL;
    return ok ? 0 : HB_EINTERNAL;
}

/* Not collective. The exchange's counters, sized by the rank and thread counts: a merge
 * needs them as a run does (the chunk buffers it does not). */
static int alloc_xchg(agg *a)
{
    const size_t T = (size_t)a->nthreads, P = (size_t)hb_size;
    int ok = 1;
    ok &= (a->tvalid = hb_calloc(T * 2 * (size_t)a->sp.nvals, 8)) != NULL;
    ok &= (a->tcnt = hb_calloc(T * P * 4, sizeof(size_t))) != NULL;
    ok &= (a->scount = hb_calloc(P * 9 + 1, sizeof(size_t))) != NULL; /* drdispl: P + 1 */
    ok &= (a->fwd = hb_calloc(T * P, sizeof *a->fwd)) != NULL;
    ok &= (a->fcount = hb_calloc(P * 3, sizeof(size_t))) != NULL;
    if (ok) {
        a->vcount = a->scount + P, a->rcount = a->scount + 2 * P, a->rdispl = a->scount + 3 * P;
        a->rvcount = a->scount + 4 * P, a->rvdispl = a->scount + 5 * P;
        a->dscount = a->scount + 6 * P, a->drcount = a->scount + 7 * P, a->drdispl = a->scount + 8 * P;
    }
    return ok ? 0 : HB_EINTERNAL;
}

/* Not collective. The accumulator layout, the empty group tables and the dictionaries,
 * once the key types are known (from the input, or from the parts' descriptions). */
static int init_tables(agg *a)
{
    const agg_spec *sp = &a->sp;
    acc_layout_init(&a->L, sp);
    a->A = a->L.size;
    a->rec = (size_t)sp->nkeys * 8 + (size_t)sp->nvals * a->A;
    a->fw = 1 + (size_t)sp->nkeys + (size_t)sp->nvals + (a->L.first || a->L.last ? 1 : 0);
    a->neutral = hb_malloc((size_t)sp->nvals * a->A);
    if (!a->neutral) return HB_EINTERNAL;
    for (int v = 0; v < sp->nvals; v++) acc_neutral(&a->L, a->neutral + (size_t)v * a->A);
    int rc = gtab_init(&a->own, a->nthreads, sp->nkeys, sp->nvals, a->A, a->L.kept, a->neutral);
    if (rc == 0) rc = gtab_init(&a->stage, a->nthreads, sp->nkeys, sp->nvals, a->A, a->L.kept, a->neutral);
    for (int k = 0; k < sp->nkeys && rc == 0; k++)
        if (a->ktype[k] == KT_STRING) rc = sdict_init(&a->dict[k], a->nthreads);
    return rc;
}

/* Not collective. A new state with the step's options parsed (78 naming the key). */
static int new_state(hb_step_ctx *ctx, void **state)
{
    agg *a = hb_calloc(1, sizeof *a);
    if (!a) return HB_EINTERNAL;
    *state = a;
    a->ctx = ctx;
    a->src = ctx->input ? ctx->input : "the merged parts";
    a->nthreads = ctx->threads > 0 ? ctx->threads : 1;
    const char *key = NULL;
    char msg[512];
    if (agg_spec_parse(ctx->opts, &a->sp, &key, msg, sizeof msg)) return hb_err_set(HB_ECONFIG, key, "%s", msg);
    if (a->sp.max_memory > 0) hb_mem_set_limit(a->sp.max_memory); /* the step's own limit, for this step */
    return 0;
}

/* The most chunk starts plan_owners reads, besides those where the ranks' blocks start. */
#define OWNER_SAMPLES 256

/* Collective. Decides who owns which groups: by hash, unless the first key is an integer
 * column whose values where chunks start (up to OWNER_SAMPLES chunks, the chunks where
 * the ranks' blocks start and the last row) never decrease, with at least four distinct
 * values a rank and a different one at each block's start. The input is then ordered by
 * that key (readings written meter after meter), and rank r owns the first key's values
 * from its block's first to the next block's: the groups of the rows a rank reads are
 * then mostly its own, and neither they nor their results travel. Which rank owns what
 * changes no bit of the output; an input that is not ordered after all, or a resume on
 * other ranks, only moves more. */
static int plan_owners(agg *a)
{
    const hb_step_ctx *ctx = a->ctx;
    const int P = hb_size;
    const int64_t nc = ctx->n_chunks;
    a->ranged = 0;
    if (P < 2 || a->sp.kkind[0] != KEY_COLUMN || a->ktype[0] != KT_INT || nc < 2 * P) return 0;
    const int64_t S = nc < OWNER_SAMPLES ? nc : OWNER_SAMPLES;
    const size_t cap = (size_t)S + (size_t)P + 1;
    int64_t *at = hb_malloc(cap * sizeof *at), *v = hb_malloc(cap * sizeof *v);
    a->split = hb_malloc((size_t)(P - 1) * sizeof *a->split);
    int rc = at && v && a->split ? 0 : HB_EINTERNAL, ranged = 0;
    if (rc == 0 && hb_rank == 0) {
        size_t n = 0;
        for (int64_t j = 0; j < S; j++) at[n++] = j * nc / S * ctx->chunk_rows;
        for (int r = 1; r < P; r++) at[n++] = nc * r / P * ctx->chunk_rows;
        at[n++] = ctx->n_rows - 1;
        qsort(at, n, sizeof *at, hb_cmp_i64);
        const size_t m = hb_unique_i64(at, n);
        for (size_t i = 0; rc == 0 && i < m; i++) rc = hb_table_read(a->tab, a->col_key[0], at[i], 1, HB_I64, &v[i]);
        int64_t prev = MISSING;
        size_t distinct = 0;
        ranged = rc == 0;
        for (size_t i = 0; ranged && i < m; i++) {
            if (v[i] == MISSING) continue;
            ranged = prev == MISSING || v[i] >= prev;
            distinct += prev == MISSING || v[i] > prev;
            prev = v[i];
        }
        ranged &= distinct >= 4 * (size_t)P;
        for (int r = 1; ranged && r < P; r++) {
            const int64_t row = nc * r / P * ctx->chunk_rows;
            const int64_t *hit = bsearch(&row, at, m, sizeof *at, hb_cmp_i64);
            a->split[r - 1] = v[hit - at];
            ranged = a->split[r - 1] != MISSING && (r == 1 || a->split[r - 1] > a->split[r - 2]);
        }
    }
    free(at), free(v);
    HB_CALL(hb_agree(rc));
    MPI_Bcast(&ranged, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (ranged) MPI_Bcast(a->split, P - 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    a->ranged = ranged;
    if (ranged) HB_DEBUG("aggregate: the input is ordered by %s: each rank owns a range of it", a->sp.key[0]);
    return 0;
}

/* Collective. Opens the table, decides each key's type from its column, lays out the
 * accumulators and refuses a chunk size over max_memory; the same status on every rank. */
static int aggregate_setup(hb_step_ctx *ctx, void **state)
{
    HB_CALL(hb_agree(new_state(ctx, state)));
    agg *a = *state;
    agg_spec *sp = &a->sp;
    HB_CALL(hb_agree(hb_tz_select(sp->tz)));

    const char *cols[AGG_MAX_KEYS + AGG_MAX_VALUES + 1];
    int n = 0;
    for (int k = 0; k < sp->nkeys; k++)
        a->col_key[k] = sp->kkind[k] == KEY_COLUMN ? add_column(cols, &n, hb_colmap_name(&sp->cols, sp->key[k])) : -1;
    a->col_time = sp->has_time ? add_column(cols, &n, hb_colmap_name(&sp->cols, sp->time)) : -1;
    for (int v = 0; v < sp->nvals; v++) a->col_val[v] = add_column(cols, &n, hb_colmap_name(&sp->cols, sp->val[v]));
    a->ncols = n;
    int rc = hb_table_open_any(ctx->in, sp->table, cols, n, &a->tab);
    HB_CALL(hb_agree(rc));
    ctx->n_rows = hb_table_rows(a->tab);
    ctx->n_chunks = (ctx->n_rows + ctx->chunk_rows - 1) / ctx->chunk_rows;

    char where[600], cn[400];
    snprintf(where, sizeof where, "%s:%s", ctx->input, sp->table);
    for (int k = 0; k < sp->nkeys && rc == 0; k++) {
        if (sp->kkind[k] != KEY_COLUMN) {
            a->ktype[k] = KT_CALENDAR;
            continue;
        }
        hb_col_kind kind = hb_table_kind(a->tab, a->col_key[k]);
        a->ktype[k] = kind == HB_COL_STRING ? KT_STRING : kind == HB_COL_FLOAT ? KT_FLOAT : KT_INT;
        rc = hb_table_check_unpacked(a->tab, a->col_key[k]);
    }
    for (int v = 0; v < sp->nvals && rc == 0; v++) {
        agg_colname(a, sp->val[v], cn, sizeof cn);
        if (hb_table_kind(a->tab, a->col_val[v]) == HB_COL_STRING)
            rc = hb_err_set(HB_EDATA, where, "value column %s has string type; values must be numeric (a string "
                            "column can be a key: by = %s)", cn, sp->val[v]);
        if (hb_table_col_attr_str(a->tab, a->col_val[v], "units", a->units[v], sizeof a->units[v]) != 0)
            a->units[v][0] = '\0';
    }
    if (rc == 0 && sp->has_time && hb_table_kind(a->tab, a->col_time) == HB_COL_STRING) {
        agg_colname(a, sp->time, cn, sizeof cn);
        rc = hb_err_set(HB_EDATA, where, "time column %s has string type; a number of %s since 1970-01-01 UTC is needed (text "
                        "times: parse them before writing, pandas.to_datetime; h5batch import reads ISO 8601 and D.M.YYYY, "
                        "--columns NAME:time:FORMAT any other)",
                        cn, sp->unit_name);
    }
    const char *unit = NULL;
    if (rc == 0 && sp->has_time) rc = hb_table_time_unit(a->tab, a->col_time, hb_opt_str(ctx->opts, "time_unit"), &unit);
    if (unit) sp->unit_name = unit, sp->unit = hb_time_unit_per_s(unit);
    HB_CALL(hb_agree(rc));
    a->dense_ok = 1;
    for (int k = 0; k < sp->nkeys; k++) a->dense_ok &= a->ktype[k] != KT_STRING;

    HB_CALL(hb_agree(init_tables(a)));
    HB_CALL(plan_owners(a));
    /* a waiting or travelling row of the dense path holds its values as floats where
     * every value of every value column is exactly one (float32 and small integer
     * columns): 4 bytes a value instead of 8, the same doubles when read back */
    a->dnarrow = !a->L.first && !a->L.last;
    for (int v = 0; v < sp->nvals; v++) a->dnarrow &= hb_table_exact_f32(a->tab, a->col_val[v]);
    a->dw = a->dnarrow ? (size_t)sp->nvals : 2 * ((size_t)sp->nvals + (a->L.first || a->L.last));

    /* the chunk's buffers are the one allocation that does not grow with the data:
     * refuse a chunk size that alone exceeds the limit before allocating it */
    size_t per_row = 8 * (size_t)sp->nkeys + 8 * (size_t)sp->nvals + 8 + 8 + 1 + (sp->has_time ? 16 : 0);
    per_row += 8 * (size_t)(1 + sp->nkeys + sp->nvals + sp->has_time); /* the regrouped records */
    for (int k = 0; k < sp->nkeys; k++) per_row += a->ktype[k] == KT_STRING ? 24 : 0;
    a->chunk_bytes = per_row * (size_t)ctx->chunk_rows;
    a->dbudget = 8 * (uint64_t)ctx->chunk_rows; /* rows the dense path lets wait between folds */
    char what[120], r[32];
    snprintf(what, sizeof what, "the buffers of chunks of %s rows", hb_fmt_count(r, (uint64_t)ctx->chunk_rows));
    HB_CALL(hb_agree(hb_mem_reserve((double)a->chunk_bytes, where, what, NULL, "lower chunk_rows")));
    rc = alloc_chunk(a);
    if (rc == 0) rc = alloc_xchg(a);
    return hb_agree(rc);
}

/* Reads the time column of rows [start, start+n): traw (as stored, for first/last); a
 * missing time clears ok; the day-offset table then covers the chunk (local_times). */
static int read_time(agg *a, int64_t start, int64_t n)
{
    const int64_t unit = a->sp.unit;
    HB_CALL(hb_table_read_time(a->tab, a->col_time, start, n, unit, a->traw, NULL)); /* checks 1900-2200 */
    const int64_t *traw = a->traw;
    uint8_t *ok = a->ok;
    int64_t tmin = INT64_MAX, tmax = INT64_MIN; /* without a branch: MISSING is the least value */
#pragma omp simd reduction(min : tmin) reduction(max : tmax)
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = traw[i], m = t == MISSING ? INT64_MAX : t;
        ok[i] &= (uint8_t)(t != MISSING);
        tmin = m < tmin ? m : tmin;
        tmax = t > tmax ? t : tmax;
    }
    if (tmax == INT64_MIN) return 0;
    return hb_tzmap_cover(&a->tzm, hb_floordiv(tmin, unit), hb_floordiv(tmax, unit));
}

/* tloc, the local seconds since the local epoch of every row with a time (read_time read
 * them), for calendar_keys. */
static void local_times(agg *a, int64_t n)
{
    const int64_t unit = a->sp.unit, *traw = a->traw;
    int64_t *tloc = a->tloc;
    const hb_tzmap *m = &a->tzm;
#pragma omp parallel for schedule(static) num_threads(a->nthreads)
    for (int64_t i = 0; i < n; i++)
        if (traw[i] != MISSING) tloc[i] = hb_tzmap_local(m, unit == 1 ? traw[i] : hb_floordiv(traw[i], unit));
}

/* The calendar of local days [d0, d0 + nd): date, ISO week, month, quarter, year. */
static int calendar_cover(agg *a, int64_t d0, int64_t d1)
{
    if (a->cal && d0 >= a->day0 && d1 < a->day0 + a->nday) return 0;
    size_t nd = (size_t)(d1 - d0 + 1);
    if (hb_grow((void **)&a->cal, &a->calcap, nd * 5, sizeof *a->cal)) return hb_err_set(HB_EINTERNAL, "memory", "calendar");
    for (size_t i = 0; i < nd; i++) {
        int64_t d = d0 + (int64_t)i, y, iy;
        int m, dd, im, idd;
        hb_civil_from_days(d, &y, &m, &dd);
        int dow = (int)((d % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday; Monday is 0 */
        int64_t thu = d - dow + 3;            /* ISO weeks belong to the year of their Thursday */
        hb_civil_from_days(thu, &iy, &im, &idd);
        int64_t week = (thu - hb_days_from_civil(iy, 1, 1)) / 7 + 1;
        int64_t *c = a->cal + i * 5;
        c[0] = y * 10000 + m * 100 + dd;
        c[1] = iy * 100 + week;
        c[2] = y * 100 + m;
        c[3] = y * 10 + (m - 1) / 3 + 1;
        c[4] = y;
    }
    a->day0 = d0, a->nday = (int64_t)nd;
    return 0;
}

/* The calendar keys of every row with a time, in one pass over the rows; the calendar of
 * local days is needed (and its day range looked for) only by date, week, month, quarter
 * and year. */
static int calendar_keys(agg *a, int64_t n)
{
    const agg_spec *sp = &a->sp;
    int nk = 0, days = 0, kidx[AGG_MAX_KEYS], kcol[AGG_MAX_KEYS];
    for (int k = 0; k < sp->nkeys; k++) {
        if (a->ktype[k] != KT_CALENDAR) continue;
        const key_kind kk = sp->kkind[k];
        kidx[nk] = k;
        kcol[nk++] = kk == KEY_HOUR ? -2 : kk == KEY_DOW ? -1 : kk == KEY_DATE ? 0 : kk == KEY_WEEK ? 1
                     : kk == KEY_MONTH ? 2 : kk == KEY_QUARTER ? 3 : 4;
        days |= kk != KEY_HOUR && kk != KEY_DOW;
    }
    if (!nk) return 0;
    const int64_t *tloc = a->tloc;
    const uint8_t *ok = a->ok;
    if (days) {
        int64_t dmin = INT64_MAX, dmax = INT64_MIN;
        for (int64_t i = 0; i < n; i++) {
            if (!ok[i]) continue;
            int64_t d = hb_floordiv(tloc[i], 86400);
            dmin = d < dmin ? d : dmin;
            dmax = d > dmax ? d : dmax;
        }
        if (dmax == INT64_MIN) return 0;
        HB_CALL(calendar_cover(a, dmin, dmax));
    }
    const int64_t *cal = a->cal, day0 = a->day0;
    int64_t *out[AGG_MAX_KEYS];
    for (int j = 0; j < nk; j++) out[j] = a->kbuf[kidx[j]];
    if (nk == 1 && kcol[0] >= 0) { /* one key of the calendar of days (month): a look-up a row */
        const int c = kcol[0];
        int64_t *o = out[0];
#pragma omp parallel for schedule(static) num_threads(a->nthreads)
        for (int64_t i = 0; i < n; i++)
            if (ok[i]) o[i] = cal[(hb_floordiv(tloc[i], 86400) - day0) * 5 + c];
        return 0;
    }
#pragma omp parallel for schedule(static) num_threads(a->nthreads)
    for (int64_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        const int64_t d = hb_floordiv(tloc[i], 86400);
        for (int j = 0; j < nk; j++) {
            const int c = kcol[j];
            out[j][i] = c == -2   ? (tloc[i] - d * 86400) / 3600
                        : c == -1 ? (d % 7 + 7 + 3) % 7 /* 1970-01-01 was a Thursday; Monday is 0 */
                                  : cal[(d - day0) * 5 + c];
        }
    }
    return 0;
}

/* Reads key column k of the chunk into kbuf[k]; a missing key (NaN) clears ok. */
static int read_key(agg *a, int k, int64_t start, int64_t n)
{
    int64_t *out = a->kbuf[k];
    char cn[400], where[600];
    switch (a->ktype[k]) {
    case KT_INT:
        HB_CALL(hb_table_read(a->tab, a->col_key[k], start, n, HB_I64, out));
        for (int64_t i = 0; i < n; i++)
            if (out[i] == MISSING) a->ok[i] = 0;
        return 0;
    case KT_FLOAT: {
        HB_CALL(hb_table_read(a->tab, a->col_key[k], start, n, HB_F64, a->dtmp));
        const double *d = a->dtmp;
        for (int64_t i = 0; i < n; i++) {
            if (isnan(d[i])) {
                a->ok[i] = 0; /* pandas' groupby(dropna=True) */
                out[i] = MISSING;
                continue;
            }
            if (d[i] != floor(d[i]) || !(d[i] > -9223372036854775808.0 && d[i] < 9223372036854775808.0)) {
                agg_colname(a, a->sp.key[k], cn, sizeof cn);
                snprintf(where, sizeof where, "%s:%s", a->src, a->sp.table);
                if (d[i] == floor(d[i])) /* whole, beyond int64: a uint64 id the file (or an import) made a float */
                    return hb_err_set(HB_EDATA, where, "key column %s, row %lld: %.17g is outside the int64 range, and "
                                      "as a float it may have lost digits (store such ids as strings)", cn,
                                      (long long)(start + i), d[i]);
                return hb_err_set(HB_EDATA, where, "key column %s, row %lld: %g is not an integer (keys are integers "
                                  "or strings)", cn, (long long)(start + i), d[i]);
            }
            out[i] = (int64_t)d[i];
        }
        return 0;
    }
    case KT_STRING: {
        hb_strs *s = &a->strs[k];
        HB_CALL(hb_table_read_str(a->tab, a->col_key[k], start, n, s));
        const char *b = s->bytes;
        const uint64_t *off = s->off;
#pragma omp parallel for schedule(static) num_threads(a->nthreads)
        for (int64_t i = 0; i < n; i++) {
            uint64_t h = XXH3_64bits(b + off[i], (size_t)(off[i + 1] - off[i]));
            out[i] = (int64_t)(h == (uint64_t)MISSING ? h ^ 1 : h); /* MISSING marks no key */
        }
        const uint8_t *miss = hb_table_str_missing(a->tab, a->col_key[k]);
        for (int64_t i = 0; miss && i < n; i++)
            if (miss[i]) a->ok[i] = 0, out[i] = MISSING; /* pandas' NaN: groupby(dropna=True) */
        return 0;
    }
    case KT_CALENDAR: return 0;
    }
    return 0;
}

/* Whether value d of column v is valid (finite, within its range); a valid -0.0 becomes
 * +0.0, as equal values must have equal bits. */
static inline int value_valid(const agg_spec *sp, int v, double *d)
{
    if (!(isfinite(*d) && *d >= sp->lo[v] && *d <= sp->hi[v])) return 0;
    *d += 0.0;
    return 1;
}

/* Adds the valid values of one row (its value words x, time t) to entry e of part p. */
static inline int add_row(agg *a, gtab *g, gpart *p, size_t e, const uint64_t *x, int64_t t, uint64_t *valid,
                          uint64_t *invalid)
{
    const agg_spec *sp = &a->sp;
    const acc_layout *L = &a->L;
    unsigned char *acc = gp_acc(g, p, e);
    for (int v = 0; v < sp->nvals; v++) {
        double d;
        memcpy(&d, &x[v], 8);
        if (!value_valid(sp, v, &d)) {
            invalid[v]++;
            continue;
        }
        valid[v]++;
        if (acc_add(L, acc + (size_t)v * a->A, &p->pool, d, t) || (L->kept && gpart_keep(g, p, e, v, &d, 1)))
            return -1;
    }
    return 0;
}

/* Combines the chunk's rows bucket by bucket (combine, when it pays): the valid rows are
 * first regrouped as records (hash, keys, values, time) by their thread part and AGG_SUB
 * buckets of other hash bits, so the rows of a group come together and a bucket's few
 * thousand groups stay in the cache while its rows are combined. The order in which a
 * group's rows are combined does not change its results (exact, commutative merges;
 * kept values are sorted at the end). */
static int combine_regrouped(agg *a, int64_t n)
{
    const agg_spec *sp = &a->sp;
    const int K = sp->nkeys, V = sp->nvals, T = a->nthreads, P = hb_size, me = hb_rank, TM = a->traw != NULL;
    const size_t RW = 1 + (size_t)K + (size_t)V + (size_t)TM, NBK = (size_t)T * AGG_SUB;
    const uint64_t *h = a->h;
    const uint8_t *ok = a->ok;
    size_t *st = a->gstart, *pos = a->gstart + NBK + 1;
    memset(st, 0, (NBK + 1) * sizeof *st);
    for (int64_t i = 0; i < n; i++)
        if (ok[i]) st[(size_t)agg_part(h[i], T) * AGG_SUB + agg_sub(h[i]) + 1]++;
    for (size_t b = 0; b < NBK; b++) st[b + 1] += st[b], pos[b] = st[b];
    uint64_t *grec = a->grec;
    for (int64_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        uint64_t *r = grec + pos[(size_t)agg_part(h[i], T) * AGG_SUB + agg_sub(h[i])]++ * RW;
        r[0] = h[i];
        for (int k = 0; k < K; k++) r[1 + k] = (uint64_t)a->kbuf[k][i];
        for (int v = 0; v < V; v++) memcpy(&r[1 + K + v], &a->vbuf[v][i], 8);
        if (TM) r[1 + K + V] = (uint64_t)a->traw[i];
    }
    int failed = 0;
#pragma omp parallel num_threads(T) reduction(| : failed)
    for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads()) {
        uint64_t *valid = a->tvalid + (size_t)part * 2 * (size_t)V, *invalid = valid + V;
        gpart *po = &a->own.p[part], *ps = &a->stage.p[part];
        const size_t j0 = st[(size_t)part * AGG_SUB], j1 = st[(size_t)(part + 1) * AGG_SUB];
        for (size_t j = j0; j < j1 && !failed; j++) {
            if (j + 16 < j1) {
                const uint64_t *r16 = grec + (j + 16) * RW;
                gpart_prefetch(P == 1 || agg_owner_of(a, r16[0], r16 + 1) == me ? po : ps, r16[0]);
            }
            if (j + 8 < j1) {
                const uint64_t *r8 = grec + (j + 8) * RW;
                const int m8 = P == 1 || agg_owner_of(a, r8[0], r8 + 1) == me;
                gpart_prefetch_entry(m8 ? &a->own : &a->stage, m8 ? po : ps, r8[0]);
            }
            const uint64_t *r = grec + j * RW;
            const int mine = P == 1 || agg_owner_of(a, r[0], r + 1) == me;
            gtab *g = mine ? &a->own : &a->stage;
            gpart *p = mine ? po : ps;
            size_t e = gpart_find(g, p, r[0], r + 1);
            if (e == (size_t)-1 || add_row(a, g, p, e, r + 1 + K, TM ? (int64_t)r[1 + K + V] : 0, valid, invalid))
                failed = 1;
        }
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
    return 0;
}

/* ---- the dense path: integer and calendar keys over a small box of cells ---- */

/* The most cells the dense path maps: twice a chunk's rows (at least 64k, at most 2^26),
 * so that its map (8 bytes a cell) stays within the size of the chunk's own buffers. */
static uint64_t dense_cap(const agg *a)
{
    const uint64_t c = 2 * (uint64_t)a->ctx->chunk_rows;
    return c < 65536 ? 65536 : c > ((uint64_t)1 << 26) ? (uint64_t)1 << 26 : c;
}

#define DENSE_NONE UINT64_MAX

/* A cell's entry as dmap holds it: the stage bit, the part and the entry. */
static inline uint64_t dense_ref(int stage, int part, size_t e)
{
    return (uint64_t)stage << 63 | (uint64_t)part << 32 | (uint64_t)e;
}

/* Rows of one group of cells waiting to be combined: a chain of blocks of growing size,
 * each of cap rows of W 32-bit words (dense_row: the values as floats where a->dnarrow,
 * else the values' bits, then the time when first or last need it), then the rows'
 * cells as offsets in the group. */
typedef struct dblk {
    struct dblk *next;
    uint32_t n, cap;
    uint32_t w[];
} dblk;

struct dpend {
    uint32_t *w; /* the tail block's arrays, kept here so that an append touches one line */
    uint16_t *cell;
    uint32_t used, cap;
    dblk *head, *tail;
    uint64_t done; /* rows in the blocks before the tail */
};

#define DBLK_MIN 32
#define DBLK_MAX 8192

static inline uint16_t *dblk_cell(dblk *b, size_t W) { return (uint16_t *)(void *)(b->w + (size_t)b->cap * W); }
static inline uint32_t dblk_len(const struct dpend *q, const dblk *b) { return b == q->tail ? q->used : b->n; }
static inline uint64_t dpend_n(const struct dpend *q) { return q->done + q->used; }

/* Not collective, thread-safe per group. Starts a new tail block for q; -1 when out of
 * memory (the caller reports). */
static int dpend_grow(struct dpend *q, size_t W, size_t *bytes)
{
    dblk *t = q->tail;
    const uint32_t cap = t ? (t->cap < DBLK_MAX ? t->cap * 2 : DBLK_MAX) : DBLK_MIN;
    const size_t b = sizeof(dblk) + (size_t)cap * (W * 4 + 2);
    dblk *nb = malloc(b); /* not hb_malloc: called from threads */
    if (!nb) return -1;
    nb->next = NULL, nb->n = 0, nb->cap = cap;
    if (t) t->n = q->used, t->next = nb, q->done += q->used;
    else q->head = nb;
    q->tail = nb, q->w = nb->w, q->cell = dblk_cell(nb, W), q->used = 0, q->cap = cap;
    *bytes += b;
    return 0;
}

/* Copies a row of W 32-bit words: up to two inline (a library call per row costs more
 * than the row). */
static inline void dense_copy(uint32_t *restrict d, const uint32_t *restrict w, size_t W)
{
    if (W == 1) d[0] = w[0];
    else if (W == 2) d[0] = w[0], d[1] = w[1];
    else memcpy(d, w, W * 4);
}

/* Writes row i of the chunk as the dense path's row (a->dw words, see dblk). */
static inline void dense_row(const agg *a, uint32_t *w, int64_t i, int V, int TM)
{
    if (a->dnarrow) {
        for (int v = 0; v < V; v++) {
            const float f = (float)a->vbuf[v][i]; /* exact: the column's values are floats */
            memcpy(&w[v], &f, 4);
        }
        return;
    }
    for (int v = 0; v < V; v++) memcpy(&w[2 * v], &a->vbuf[v][i], 8);
    if (TM) memcpy(&w[2 * V], &a->traw[i], 8);
}

/* Value v of a dense row (dense_row), as the chunk held it. */
static inline double dense_value(const agg *a, const uint32_t *w, int v)
{
    if (a->dnarrow) {
        float f;
        memcpy(&f, &w[v], 4);
        return f;
    }
    double d;
    memcpy(&d, &w[2 * v], 8);
    return d;
}

/* Not collective, thread-safe per group. Appends one row (W words, cell offset off). */
static inline int dpend_add(struct dpend *q, size_t W, const uint32_t *w, uint16_t off, size_t *bytes)
{
    if (q->used == q->cap && dpend_grow(q, W, bytes)) return -1;
    dense_copy(q->w + (size_t)q->used * W, w, W);
    q->cell[q->used++] = off;
    return 0;
}

/* Not collective. Frees the waiting rows (combined, or the state is going away). */
static void dpend_clear(agg *a)
{
    for (size_t g = 0; a->dpend && g < a->dngroups; g++) {
        for (dblk *b = a->dpend[g].head, *next; b; b = next) next = b->next, free(b);
        memset(&a->dpend[g], 0, sizeof a->dpend[g]);
    }
    a->dpending = 0, a->dpbytes = 0;
}

/* Whether value d of column v is valid (value_valid, without a branch). */
static inline int dense_good(const agg_spec *sp, int v, double d)
{
    return (fabs(d) <= DBL_MAX) & (d >= sp->lo[v]) & (d <= sp->hi[v]);
}

/* Not collective. Whether the rows waiting are due to be folded: when they are more than
 * dbudget, unless the kept values of percentiles would cost as much as the rows do (they
 * are floats, and most of their values valid: 4 bytes a value and 2 a row waiting,
 * against 8 a kept value). Such rows then wait until a fold is needed (a save, finalize,
 * a new box), so that one fold lays out each cell's values together: the log of kept
 * values comes in entry order, which finalize sorts in place, without a second array. */
static int dense_due(const agg *a)
{
    if (a->dpending < a->dbudget) return 0;
    const uint64_t V = (uint64_t)a->sp.nvals;
    return !(a->L.kept && a->dnarrow && 8 * a->dgood >= (4 * V + 2) * a->dseen);
}

/* Not collective. Finds (or makes) the entry of owned cell c, which the map does not name
 * yet, in the part its hash chooses. */
static int dense_resolve(agg *a, size_t c, const uint64_t *stride)
{
    const int K = a->sp.nkeys, T = a->nthreads;
    uint64_t keys[AGG_MAX_KEYS];
    for (int k = 0; k < K; k++) keys[k] = (uint64_t)a->dlo[k] + (c / stride[k]) % a->dspan[k];
    const uint64_t h = agg_hash(keys, K);
    const int part = agg_part(h, T);
    size_t e = gpart_find(&a->own, &a->own.p[part], h, keys);
    if (e == (size_t)-1) return -1;
    a->dmap[c] = dense_ref(0, part, e);
    return 0;
}

/* Not collective (OpenMP inside). Combines the waiting rows into the owned table. Each
 * thread takes the cells of its part, group by group; a group's rows are put in cell
 * order first (a counting sort over its 2^dsh cells), so that a cell's entry and the
 * tail of its kept values are touched once per fold however many rows it got, and its
 * valid values are kept in one append. The results are those of combining row by row
 * (exact, commutative merges; kept values are sorted at the end). */
static int dense_fold(agg *a)
{
    if (!a->dpending) return 0;
    const agg_spec *sp = &a->sp;
    const acc_layout *L = &a->L;
    const int K = sp->nkeys, V = sp->nvals, T = a->nthreads, TM = L->first || L->last;
    const size_t W = a->dw, CG = (size_t)1 << a->dsh, NG = a->dngroups, A = a->A;
    uint64_t most = 0;
    for (size_t g = 0; g < NG; g++) most = dpend_n(&a->dpend[g]) > most ? dpend_n(&a->dpend[g]) : most;
    uint64_t stride[AGG_MAX_KEYS], s = 1;
    for (int k = K - 1; k >= 0; k--) stride[k] = s, s *= a->dspan[k];
    const uint32_t *home = a->dhome;
    uint64_t *dmap = a->dmap;
    int failed = 0;
#pragma omp parallel num_threads(T) reduction(| : failed)
    {
        uint64_t valid[AGG_MAX_VALUES] = {0}, invalid[AGG_MAX_VALUES] = {0};
        uint32_t *start = malloc((CG + 1) * sizeof *start), *pos = malloc(CG * sizeof *pos);
        uint32_t *srt = malloc((size_t)most * W * 4 + 8);
        double *kv = malloc((size_t)most * 8 + 8);
        int64_t *kt = TM ? malloc((size_t)most * 8 + 8) : NULL;
        if (!start || !pos || !srt || !kv || (TM && !kt)) failed = 1;
        for (int part = omp_get_thread_num(); part < T && !failed; part += omp_get_num_threads()) {
            gpart *p = &a->own.p[part];
            for (size_t g = 0; g < NG && !failed; g++) {
                struct dpend *q = &a->dpend[g];
                if (!dpend_n(q)) continue;
                const size_t c0 = g << a->dsh;
                memset(start, 0, (CG + 1) * sizeof *start);
                for (dblk *b = q->head; b; b = b->next) {
                    const uint32_t nb = dblk_len(q, b);
                    const uint16_t *cl = dblk_cell(b, W);
                    for (uint32_t i = 0; i < nb; i++)
                        if (T == 1 || (int)(home[c0 + cl[i]] % (uint32_t)T) == part) start[cl[i] + 1]++;
                }
                for (size_t o = 0; o < CG; o++) start[o + 1] += start[o], pos[o] = start[o];
                if (!start[CG]) continue;
                for (dblk *b = q->head; b; b = b->next) {
                    const uint32_t nb = dblk_len(q, b);
                    const uint16_t *cl = dblk_cell(b, W);
                    for (uint32_t i = 0; i < nb; i++) {
                        if (T > 1 && (int)(home[c0 + cl[i]] % (uint32_t)T) != part) continue;
                        dense_copy(srt + (size_t)pos[cl[i]]++ * W, b->w + (size_t)i * W, W);
                    }
                }
                if (T == 1) { /* the group's rows are in srt: its blocks go before the kept values grow */
                    for (dblk *b = q->head, *next; b; b = next) next = b->next, free(b);
                    memset(q, 0, sizeof *q);
                    if (g % 16 == 15) malloc_trim(0); /* the heap's freed pages back: the logs are mapped apart */
                }
                for (size_t o = 0; o < CG && !failed; o++) {
                    const uint32_t r0 = start[o], r1 = start[o + 1];
                    if (r0 == r1) continue;
                    const size_t c = c0 + o;
                    if (dmap[c] == DENSE_NONE && dense_resolve(a, c, stride)) {
                        failed = 1;
                        break;
                    }
                    const size_t e = (uint32_t)dmap[c];
                    unsigned char *acc = gp_acc(&a->own, p, e);
                    for (int v = 0; v < V && !failed; v++) {
                        size_t m = 0;
                        for (uint32_t r = r0; r < r1; r++) {
                            const uint32_t *row = srt + (size_t)r * W;
                            double d = dense_value(a, row, v);
                            if (!value_valid(sp, v, &d)) continue;
                            kv[m] = d;
                            if (TM) memcpy(&kt[m], &row[2 * V], 8);
                            m++;
                        }
                        valid[v] += m, invalid[v] += (r1 - r0) - m;
                        if (acc_add_n(L, acc + (size_t)v * A, &p->pool, kv, m, TM ? kt : NULL) ||
                            (L->kept && m && gpart_keep(&a->own, p, e, v, kv, m)))
                            failed = 1;
                    }
                }
            }
        }
        free(start), free(pos), free(srt), free(kv), free(kt);
#pragma omp critical(agg_dense_fold)
        for (int v = 0; v < V; v++) a->valid[v] += valid[v], a->invalid[v] += invalid[v];
    }
    dpend_clear(a);
    if (failed) return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
    return 0;
}

/* Not collective. Makes [lo, lo + span) (cells of them, at most dense_cap) the box: the
 * rows waiting for the old box are combined first; then an empty map (its cells find
 * their entries again by hash), the groups of cells, and when ranks or threads are more
 * than one each cell's owner and part. */
static int dense_set_box(agg *a, const int64_t *lo, const uint64_t *span, size_t cells)
{
    HB_CALL(dense_fold(a));
    const int K = a->sp.nkeys, P = hb_size, T = a->nthreads;
    int sh = 8;
    while ((cells >> sh) >= 256 && sh < 15) sh++; /* few groups: their tails stay in the cache */
    const size_t NG = (cells >> sh) + 1;
    if (hb_grow((void **)&a->dmap, &a->dmcap, cells, sizeof *a->dmap) ||
        hb_grow((void **)&a->dpend, &a->dgcap, NG, sizeof *a->dpend) ||
        ((P > 1 || T > 1) && hb_grow((void **)&a->dhome, &a->dhcap, cells, sizeof *a->dhome)) ||
        (P > 1 && P <= 256 && hb_grow((void **)&a->downer, &a->docap, cells, 1)))
        return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory for the dense cells");
    memset(a->dmap, 0xff, cells * sizeof *a->dmap);
    memset(a->dpend, 0, NG * sizeof *a->dpend);
    for (int k = 0; k < K; k++) a->dlo[k] = lo[k], a->dspan[k] = span[k];
    a->dcells = cells, a->dsh = sh, a->dngroups = NG;
    if (P > 1 || T > 1) {
        uint64_t stride[AGG_MAX_KEYS], s = 1;
        for (int k = K - 1; k >= 0; k--) stride[k] = s, s *= span[k];
        uint32_t *home = a->dhome;
        uint8_t *own8 = a->downer;
#pragma omp parallel for schedule(static) num_threads(T)
        for (size_t c = 0; c < cells; c++) {
            uint64_t keys[AGG_MAX_KEYS];
            for (int k = 0; k < K; k++) keys[k] = (uint64_t)lo[k] + (c / stride[k]) % span[k];
            const uint64_t h = agg_hash(keys, K);
            const int owner = P == 1 ? 0 : agg_owner_of(a, h, keys);
            home[c] = (uint32_t)owner * (uint32_t)T + (uint32_t)agg_part(h, T);
            if (own8) own8[c] = (uint8_t)owner;
        }
    }
    return 0;
}

/* Not collective. Widens the key ranges [lo, hi] (inclusive, per key) to take in the box
 * so far; *fits 1 when the result holds at most dense_cap cells, after making it the box
 * (unchanged where it was already), 0 when it does not. */
static int dense_extend(agg *a, int64_t *lo, int64_t *hi, int *fits)
{
    const int K = a->sp.nkeys;
    int same = a->dmap != NULL;
    for (int k = 0; k < K && a->dmap; k++) {
        const int64_t l0 = a->dlo[k], h0 = (int64_t)((uint64_t)l0 + a->dspan[k] - 1);
        same &= lo[k] >= l0 && hi[k] <= h0;
        lo[k] = lo[k] < l0 ? lo[k] : l0;
        hi[k] = hi[k] > h0 ? hi[k] : h0;
    }
    *fits = 0;
    if (same) return *fits = 1, 0;
    const uint64_t cap = dense_cap(a);
    uint64_t cells = 1, span[AGG_MAX_KEYS];
    for (int k = 0; k < K; k++) {
        span[k] = (uint64_t)hi[k] - (uint64_t)lo[k] + 1; /* 0 when the range is all 2^64 words */
        if (span[k] == 0 || span[k] > cap || cells * span[k] > cap) return 0;
        cells *= span[k];
    }
    HB_CALL(dense_set_box(a, lo, span, (size_t)cells));
    *fits = 1;
    return 0;
}

/* Not collective. Whether the chunk's keys and the box so far fit a box of at most
 * dense_cap cells: *fits 1 after making that the box, 0 when they do not (combine takes
 * the chunk). Hour and day of week span their whole range, so that a box holds for every
 * chunk. */
static int dense_plan(agg *a, int64_t n, int *fits)
{
    *fits = 0;
    if (!a->dense_ok || n >= (int64_t)UINT32_MAX) return 0;
    const int K = a->sp.nkeys;
    const uint8_t *ok = a->ok;
    int64_t lo[AGG_MAX_KEYS], hi[AGG_MAX_KEYS];
    int any = 0;
    for (int64_t i = 0; i < n && !any; i++) any = ok[i];
    if (!any) return 0;
    for (int k = 0; k < K; k++) {
        const key_kind kk = a->sp.kkind[k];
        if (kk == KEY_HOUR || kk == KEY_DOW) {
            lo[k] = 0, hi[k] = kk == KEY_HOUR ? 23 : 6;
            continue;
        }
        const int64_t *w = a->kbuf[k];
        int64_t l = INT64_MAX, h = INT64_MIN;
#pragma omp parallel for schedule(static) num_threads(a->nthreads) reduction(min : l) reduction(max : h)
        for (int64_t i = 0; i < n; i++) {
            const int64_t x = ok[i] ? w[i] : l, y = ok[i] ? w[i] : h;
            l = x < l ? x : l;
            h = y > h ? y : h;
        }
        lo[k] = l, hi[k] = h;
    }
    return dense_extend(a, lo, hi, fits);
}

/* Not collective. Makes the box cover the box lo, span of another rank too, when the two
 * fit in dense_cap cells: *covers 1 when it covers it, 0 when not (rows of that box then
 * take the hash path). */
static int dense_cover(agg *a, const int64_t *lo, const uint64_t *span, int *covers)
{
    int64_t l[AGG_MAX_KEYS], h[AGG_MAX_KEYS];
    for (int k = 0; k < a->sp.nkeys; k++) l[k] = lo[k], h[k] = (int64_t)((uint64_t)lo[k] + span[k] - 1);
    return dense_extend(a, l, h, covers);
}

/* Writes row i of the chunk, of cell c, as a record to send: the cell, then the row
 * (dense_row). */
static inline void dense_send_row(const agg *a, uint32_t *r, uint32_t c, int64_t i, int V, int TM)
{
    r[0] = c;
    dense_row(a, r + 1, i, V, TM);
}

/* How combine_dense numbers a row's cell: with hour and day of week the only calendar
 * keys, from its time (the calendar keys' part of the cell by local hour of the week)
 * and its column keys; else from its key columns. */
typedef struct dweek {
    int week, ncol;
    uint64_t whc[168], clo[AGG_MAX_KEYS], cst[AGG_MAX_KEYS];
    const int64_t *cb[AGG_MAX_KEYS];
    int64_t unit, day0;
    const int64_t *traw;
    const hb_tzday *days;
} dweek;

static void dense_week(const agg *a, int fused, const int64_t *lo, const uint64_t *stride, dweek *dw)
{
    const agg_spec *sp = &a->sp;
    memset(dw, 0, sizeof *dw);
    dw->week = fused && sp->has_time; /* hour and day of week from the time, here (see aggregate_map) */
    for (int k = 0; k < sp->nkeys; k++) {
        if (!dw->week || a->ktype[k] != KT_CALENDAR) {
            dw->cb[dw->ncol] = a->kbuf[k], dw->clo[dw->ncol] = (uint64_t)lo[k], dw->cst[dw->ncol++] = stride[k];
            continue;
        }
        for (uint64_t wh = 0; wh < 168; wh++)
            dw->whc[wh] += ((sp->kkind[k] == KEY_HOUR ? wh % 24 : wh / 24) - (uint64_t)lo[k]) * stride[k];
    }
    dw->unit = sp->unit, dw->traw = a->traw, dw->days = a->tzm.days, dw->day0 = a->tzm.day0;
}

/* The cell of row i, which has a key (dense_week). */
static inline uint64_t dense_cell(const dweek *dw, int64_t i)
{
    uint64_t c = 0;
    if (dw->week) {
        /* hb_tzmap_local's offset, then the local hour of the week (Monday 00:00 is 0):
         * the hour since the UTC day began, (r + off) / 3600 rounded down, with the UTC
         * day's place in the week (1970-01-01 was a Thursday) */
        const int64_t t = dw->unit == 1 ? dw->traw[i] : hb_floordiv(dw->traw[i], dw->unit);
        int64_t day = t / 86400, r = t - day * 86400;
        if (r < 0) day--, r += 86400;
        const hb_tzday *z = &dw->days[day - dw->day0];
        const int64_t off = r < z->trans ? z->off_a : z->off_b;
        int64_t dm = (day + 3) % 7;
        dm += dm < 0 ? 7 : 0;
        int64_t wh = dm * 24 + (r + off + 86400) / 3600 - 24;
        wh += wh < 0 ? 168 : wh >= 168 ? -168 : 0;
        c = dw->whc[wh];
    }
    for (int j = 0; j < dw->ncol; j++) c += ((uint64_t)dw->cb[j][i] - dw->clo[j]) * dw->cst[j];
    return c;
}

/* Not collective. combine_dense at one thread and one or two ranks, in one pass: each
 * row's cell, owner and place at once, with no arrays of cells and owners between passes
 * and no count of the rows to send first (they fill the send buffer from its start,
 * which takes a chunk's rows). No branch on the row either: owners and validity come
 * in random order, and a mispredicted branch costs about what the row does. Every row
 * is written both to its group's next slot and as a record (the spare one past the
 * chunk's rows when it is not sent); only the place it belongs to takes it. */
static int dense_one_pass(agg *a, int64_t n, const dweek *dw)
{
    const agg_spec *sp = &a->sp;
    const int V = sp->nvals, P = hb_size, me = hb_rank, TM = a->L.first || a->L.last;
    const size_t W = a->dw, R = 1 + W, spare = (size_t)n;
    const int sh = a->dsh;
    const uint32_t mask = ((uint32_t)1 << sh) - 1;
    const uint8_t *ok = a->ok, *own8 = a->downer;
    if (P > 1 && hb_grow((void **)&a->dsend, &a->dscap, ((size_t)n + 1) * R, 4))
        return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory for %lld rows to send", (long long)n);
    uint32_t *ds = a->dsend;
    struct dpend *dp = a->dpend;
    uint64_t kept = 0, good = 0;
    size_t bytes = 0, ns = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint64_t c = ok[i] ? dense_cell(dw, i) : 0;
        const int d = !ok[i] ? -1 : P > 1 ? own8[c] : me, keep = d == me, send = !keep & (d >= 0);
        struct dpend *q = &dp[c >> sh];
        if (q->used == q->cap && dpend_grow(q, W, &bytes))
            return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
        uint32_t *w = q->w + (size_t)q->used * W;
        dense_row(a, w, i, V, TM);
        q->cell[q->used] = (uint16_t)(c & mask);
        q->used += (uint32_t)keep, kept += (uint64_t)keep;
        for (int v = 0; v < V; v++) good += (uint64_t)(keep & dense_good(sp, v, a->vbuf[v][i]));
        if (P > 1) {
            uint32_t *r = ds + (send ? ns : spare) * R;
            r[0] = (uint32_t)c;
            dense_copy(r + 1, w, W);
            ns += (size_t)send;
        }
    }
    if (P > 1) a->dscount[me] = 0, a->dscount[1 - me] = ns;
    a->dpending += kept, a->dpbytes += bytes, a->dseen += kept, a->dgood += good;
    return dense_due(a) ? dense_fold(a) : 0;
}

/* Combines the chunk's rows by cell (dense_plan said the keys fit its box): each row's key
 * tuple is its cell number in the box, so no row is hashed and no row looks its group
 * up. Rows of owned cells wait in their group of cells (dense_fold combines them when
 * enough wait, and before anything reads the tables); rows of cells another rank owns
 * are laid out by destination for the next exchange, as records (cell, value words). */
static int combine_dense(agg *a, int64_t n, int fused)
{
    const agg_spec *sp = &a->sp;
    const acc_layout *L = &a->L;
    const int K = sp->nkeys, V = sp->nvals, T = a->nthreads, P = hb_size, me = hb_rank, TM = L->first || L->last;
    const size_t W = a->dw, NG = a->dngroups;
    const int sh = a->dsh;
    const uint8_t *ok = a->ok;
    uint32_t *cell = (uint32_t *)(void *)a->h; /* the hashes' buffer: this path has none */
    uint64_t stride[AGG_MAX_KEYS], s = 1;
    int64_t lo[AGG_MAX_KEYS];
    for (int k = K - 1; k >= 0; k--) stride[k] = s, s *= a->dspan[k], lo[k] = a->dlo[k];
    /* and with more ranks each row's owner (-1 without a key), while the cell is at hand */
    const uint32_t *home = a->dhome;
    const uint32_t UT = (uint32_t)T;
    const uint8_t *own8 = a->downer; /* a quarter of home's bytes, and no division per row */
    int32_t *dest = (int32_t *)(void *)a->dtmp; /* the key reads' scratch is free */
    dweek dw;
    dense_week(a, fused, lo, stride, &dw);
    if (T == 1 && P <= 2) return dense_one_pass(a, n, &dw);
#pragma omp parallel for schedule(static) num_threads(T)
    for (int64_t i = 0; i < n; i++) {
        const uint64_t c = ok[i] ? dense_cell(&dw, i) : 0;
        cell[i] = (uint32_t)c;
        if (P > 1) dest[i] = !ok[i] ? -1 : own8 ? own8[c] : (int32_t)(home[c] / UT);
    }
    uint64_t kept = 0; /* rows of owned cells: they wait */
    if (P > 1) {
        size_t *sc = a->dscount, total = 0;
        memset(sc, 0, (size_t)P * sizeof *sc);
        for (int64_t i = 0; i < n; i++) { /* no branch on a row's destination: they come in random order */
            const int32_t d = dest[i];
            sc[d < 0 ? me : d]++;
            kept += d == me;
        }
        sc[me] = 0;
        for (int d = 0; d < P; d++) total += sc[d];
        /* and one record more, where the pass below writes the rows it does not send */
        if (hb_grow((void **)&a->dsend, &a->dscap, (total + 1) * (1 + W), 4))
            return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory for %zu rows to send", total);
        size_t *at = a->drdispl; /* fill positions, then the spare record's; the exchange sets them again */
        for (size_t d = 0, o = 0; d < (size_t)P; d++) at[d] = o, o += sc[d];
        at[P] = total;
        for (int64_t i = 0; i < n && T > 1; i++) { /* one thread: in the pass below */
            if (!ok[i]) continue;
            const int d = dest[i];
            if (d == me) continue;
            dense_send_row(a, a->dsend + at[d]++ * (1 + W), cell[i], i, V, TM);
        }
    }
    int failed = 0;
    uint64_t added = 0, good = 0;
    size_t bytes = 0;
    if (T == 1) {
        /* Without a branch on the row: owners and validity come in random order, and a
         * mispredicted branch costs about what the row does. Every row is written both to
         * its group's next slot and as a record (the spare one past the records to send
         * when it is not sent); only the place it belongs to takes it. */
        size_t *at = a->drdispl;
        uint32_t *ds = a->dsend;
        for (int64_t i = 0; i < n && P == 1; i++) kept += ok[i];
        added = kept;
        for (int64_t i = 0; i < n; i++) {
            const uint32_t c = cell[i];
            const int d = P > 1 ? dest[i] : ok[i] ? me : -1, keep = d == me, send = !keep & (d >= 0);
            for (int v = 0; v < V; v++) good += (uint64_t)(keep & dense_good(sp, v, a->vbuf[v][i]));
            struct dpend *q = &a->dpend[c >> sh];
            if (q->used == q->cap && dpend_grow(q, W, &bytes)) {
                failed = 1;
                break;
            }
            uint32_t *w = q->w + (size_t)q->used * W;
            dense_row(a, w, i, V, TM);
            q->cell[q->used] = (uint16_t)(c - ((c >> sh) << sh));
            q->used += (uint32_t)keep;
            if (P > 1) {
                const int to = send ? d : P;
                uint32_t *r = ds + at[to] * (1 + W);
                r[0] = c;
                dense_copy(r + 1, w, W);
                at[to] += (size_t)send;
            }
        }
    } else
#pragma omp parallel num_threads(T) reduction(| : failed) reduction(+ : added, good, bytes)
    for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads()) {
        const size_t g0 = NG * (size_t)part / (size_t)T, g1 = NG * (size_t)(part + 1) / (size_t)T;
        uint32_t w[2 * (AGG_MAX_VALUES + 1)];
        for (int64_t i = 0; i < n; i++) {
            if (!ok[i]) continue;
            const uint32_t c = cell[i];
            if (P > 1 && dest[i] != me) continue; /* laid out to send above */
            const size_t g = c >> sh;
            if (g < g0 || g >= g1) continue;
            for (int v = 0; v < V; v++) good += (uint64_t)dense_good(sp, v, a->vbuf[v][i]);
            dense_row(a, w, i, V, TM);
            if (dpend_add(&a->dpend[g], W, w, (uint16_t)(c - (g << sh)), &bytes)) {
                failed = 1;
                break;
            }
            added++;
        }
    }
    a->dpending += added, a->dpbytes += bytes, a->dseen += added, a->dgood += good;
    if (failed) return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
    return dense_due(a) ? dense_fold(a) : 0;
}

/* Collective. Sends the rows of cells other ranks own (combine_dense laid them out) and
 * files the rows received with the waiting ones, through the box of the rank that sent
 * them (this rank's box grows to cover it when the two fit, else they take the hash
 * path). The same status on every rank. */
static int dense_exchange(agg *a)
{
    const int P = hb_size, K = a->sp.nkeys, V = a->sp.nvals, T = a->nthreads;
    if (P == 1) return 0;
    const int TM = a->L.first || a->L.last;
    const size_t W = a->dw, R = 1 + W, BX = 1 + 2 * (size_t)K;
    int64_t mine[1 + 2 * AGG_MAX_KEYS] = {a->dmap != NULL};
    for (int k = 0; k < K; k++) mine[1 + k] = a->dlo[k], mine[1 + K + k] = (int64_t)a->dspan[k];
    int64_t *boxes = hb_malloc((size_t)P * BX * 8);
    int rc = hb_agree(boxes ? 0 : HB_EINTERNAL);
    if (rc) return free(boxes), rc;
    MPI_Allgather(mine, (int)BX, MPI_INT64_T, boxes, (int)BX, MPI_INT64_T, MPI_COMM_WORLD);
    size_t rn = 0;
    rc = agg_alltoallv(a->dsend ? (const void *)a->dsend : (const void *)boxes, a->dscount, R * 4, (void **)&a->drecv,
                       &a->drcap, a->drcount, a->drdispl, &rn);
    memset(a->dscount, 0, (size_t)P * sizeof *a->dscount);
    if (rc) return free(boxes), rc;
    uint64_t valid[AGG_MAX_VALUES] = {0}, invalid[AGG_MAX_VALUES] = {0};
    size_t bytes = 0;
    for (int src = 0; src < P && rc == 0; src++) {
        const size_t nr = a->drcount[src];
        if (!nr) continue;
        const int64_t *bx = boxes + (size_t)src * BX;
        const uint64_t *span = (const uint64_t *)(const void *)(bx + 1 + K);
        int covers = 0, same = a->dmap != NULL;
        rc = dense_cover(a, bx + 1, span, &covers);
        for (int k = 0; k < K && rc == 0; k++) same &= a->dmap && bx[1 + k] == a->dlo[k] && span[k] == a->dspan[k];
        uint64_t sstride[AGG_MAX_KEYS], mstride[AGG_MAX_KEYS], s = 1, m = 1;
        for (int k = K - 1; k >= 0; k--) sstride[k] = s, s *= span[k], mstride[k] = m, m *= covers ? a->dspan[k] : 1;
        const uint32_t *rec = a->drecv + a->drdispl[src] * R;
        if (rc == 0 && same && covers) { /* the sender's cells are this rank's: each row to its group */
            const int sh = a->dsh;
            const uint32_t mask = ((uint32_t)1 << sh) - 1;
            for (size_t j = 0; j < nr; j++, rec += R) {
                struct dpend *q = &a->dpend[rec[0] >> sh];
                if (q->used == q->cap && dpend_grow(q, W, &bytes)) {
                    rc = hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
                    break;
                }
                dense_copy(q->w + (size_t)q->used * W, rec + 1, W);
                q->cell[q->used++] = (uint16_t)(rec[0] & mask);
            }
            a->dpending += nr;
            continue;
        }
        for (size_t j = 0; j < nr && rc == 0; j++, rec += R) {
            uint64_t c = rec[0], keys[AGG_MAX_KEYS];
            if (!same) {
                for (int k = 0; k < K; k++) keys[k] = (uint64_t)bx[1 + k] + (rec[0] / sstride[k]) % span[k];
                c = 0;
                for (int k = 0; k < K && covers; k++) c += (keys[k] - (uint64_t)a->dlo[k]) * mstride[k];
            }
            if (covers) {
                const size_t g = c >> a->dsh;
                if (dpend_add(&a->dpend[g], W, rec + 1, (uint16_t)(c - (g << a->dsh)), &bytes))
                    rc = hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
                a->dpending++;
                continue;
            }
            const uint64_t h = agg_hash(keys, K);
            gpart *p = &a->own.p[agg_part(h, T)];
            size_t e = gpart_find(&a->own, p, h, keys);
            uint64_t x[AGG_MAX_VALUES];
            int64_t t = 0;
            for (int v = 0; v < V; v++) {
                const double d = dense_value(a, rec + 1, v);
                memcpy(&x[v], &d, 8);
            }
            if (TM) memcpy(&t, &rec[1 + 2 * V], 8);
            if (e == (size_t)-1 || add_row(a, &a->own, p, e, x, t, valid, invalid))
                rc = hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
        }
    }
    free(boxes);
    a->dpbytes += bytes;
    for (int v = 0; v < V; v++) a->valid[v] += valid[v], a->invalid[v] += invalid[v];
    if (rc == 0 && dense_due(a)) rc = dense_fold(a);
    return hb_agree(rc);
}

/* Not collective, thread-safe per buffer. Room for one more forwarded row in b. */
static uint64_t *fwd_row(agg *a, fwdbuf *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        uint64_t *w = realloc(b->w, cap * a->fw * 8); /* not hb_realloc: called from threads */
        if (!w) return NULL;
        b->w = w, b->cap = cap;
    }
    return b->w + b->n++ * a->fw;
}

/* Not collective. About how many distinct groups the chunk's rows with a key have (a
 * HyperLogLog of 4096 registers over their hashes: within a few per cent), and how many
 * such rows there are. */
static double chunk_groups(const agg *a, int64_t n, size_t *rows)
{
    enum { B = 12, M = 1 << B };
    uint8_t reg[M];
    memset(reg, 0, sizeof reg);
    size_t r = 0;
    const uint64_t *h = a->h;
    const uint8_t *ok = a->ok;
    for (int64_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        r++;
        const uint64_t x = hb_mix64(h[i] ^ 0x5851f42d4c957f2dULL); /* bits unlike those of owner, part, slot */
        const unsigned j = (unsigned)(x >> (64 - B));
        const uint64_t w = x << B | (uint64_t)1 << (B - 1); /* never 0 */
        const uint8_t z = (uint8_t)(__builtin_clzll(w) + 1);
        if (z > reg[j]) reg[j] = z;
    }
    *rows = r;
    double sum = 0;
    int zeros = 0;
    for (int j = 0; j < M; j++) sum += ldexp(1.0, -reg[j]), zeros += reg[j] == 0;
    double e = 0.7213 / (1 + 1.079 / M) * M * (double)M / sum;
    if (e <= 2.5 * M && zeros) e = M * log((double)M / zeros);
    return e;
}

/* The most rows of one group combine adds at once. */
#define RUN_MAX 64

/* Asks the cache for the slot of row i's group in part's table (slot), or for the entry
 * its slot names (entry), where the group is part's and a table of this rank holds it. */
AGG_PREFETCH_FN void combine_prefetch(agg *a, int64_t i, int part, int fwd, int entry)
{
    const int T = a->nthreads, P = hb_size;
    const uint64_t x = a->h[i];
    if (agg_part(x, T) != part) return;
    const int mine = P == 1 || agg_owner_of(a, x, (const uint64_t *)&a->kbuf[0][i]) == hb_rank;
    if (!mine && fwd) return;
    gtab *g = mine ? &a->own : &a->stage;
    if (entry) gpart_prefetch_entry(g, &g->p[part], x);
    else gpart_prefetch(&g->p[part], x);
}

/* The chunk's runs, the rows with a key that follow a row of the same group (readings
 * ordered by key: a meter-month's readings), at most RUN_MAX rows each: where each
 * starts, in rs; how many there are. */
static size_t chunk_runs(const agg *a, int64_t n, uint32_t *rs)
{
    const int K = a->sp.nkeys;
    const uint64_t *h = a->h;
    const uint8_t *ok = a->ok;
    size_t nr = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        int same = i > 0 && ok[i - 1] && h[i] == h[i - 1] && i - rs[nr - 1] < RUN_MAX;
        for (int k = 0; k < K && same; k++) same = a->kbuf[k][i] == a->kbuf[k][i - 1];
        if (!same) rs[nr++] = (uint32_t)i;
    }
    return nr;
}

/* Combines the rows of the chunk into the owned and the stage tables: each thread takes
 * the groups of its part of the hash space, so no two threads touch one group. Where
 * the groups seen so far are few beside the chunk's rows (its rows then meet groups
 * again within the chunk), the rows are regrouped by bucket first.
 *
 * With more ranks, a chunk whose rows mostly meet their group once in it (under two
 * rows per group: readings ordered by time, 1.2 x 10^7 meter-months) would stage a group
 * per row of a group another rank owns, to travel as a record of its accumulators (80
 * bytes here) and its kept value: such a row is forwarded to its owner as itself (hash,
 * keys, values, time for first/last: 32 bytes here) instead, and the owner adds it as it
 * adds its own rows (exact, commutative accumulators: the same bits either way). The
 * valid and invalid counts are this rank's, as for the rows it combines. */
static int combine(agg *a, int64_t n)
{
    if (gtab_entries(&a->own) + gtab_entries(&a->stage) <= 2 * (size_t)n) return combine_regrouped(a, n);
    const agg_spec *sp = &a->sp;
    const int K = sp->nkeys, V = sp->nvals, T = a->nthreads, P = hb_size, me = hb_rank;
    const size_t A = a->A;
    const acc_layout *L = &a->L;
    const int TM = L->first || L->last;
    const uint64_t *h = a->h;
    const uint8_t *ok = a->ok;
    size_t rows = 0;
    const double groups = P > 1 ? chunk_groups(a, n, &rows) : 0;
    const int fwd = P > 1 && (double)rows < 2 * groups;
    int failed = 0;
    /* the rows of a run are one group's: one lookup each, their values added at once;
     * the slots and entries of runs a little ahead are fetched while one is combined */
    uint32_t *rs = (uint32_t *)(void *)a->grec;
    const size_t nr = chunk_runs(a, n, rs);
#pragma omp parallel num_threads(T) reduction(| : failed)
    for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads()) {
        uint64_t *valid = a->tvalid + (size_t)part * 2 * (size_t)V, *invalid = valid + V;
        gpart *po = &a->own.p[part], *ps = &a->stage.p[part];
        uint64_t keys[AGG_MAX_KEYS];
        double run[RUN_MAX];
        int64_t runt[RUN_MAX];
        for (size_t r = 0; r < nr && !failed; r++) {
            if (r + 16 < nr) combine_prefetch(a, rs[r + 16], part, fwd, 0);
            if (r + 8 < nr) combine_prefetch(a, rs[r + 8], part, fwd, 1);
            const int64_t i = rs[r], next = r + 1 < nr ? rs[r + 1] : n;
            if (agg_part(h[i], T) != part) continue;
            int64_t j = i + 1;
            while (j < next && ok[j]) j++;
            const int owner = P == 1 ? me : agg_owner_of(a, h[i], (const uint64_t *)&a->kbuf[0][i]);
            if (owner != me && fwd) {
                for (int64_t q = i; q < j && !failed; q++) {
                    uint64_t x[AGG_MAX_VALUES];
                    for (int v = 0; v < V; v++) {
                        double d = a->vbuf[v][q];
                        if (!value_valid(sp, v, &d)) {
                            invalid[v]++;
                            d = NAN; /* no value of this column: the owner skips it */
                        } else {
                            valid[v]++;
                        }
                        memcpy(&x[v], &d, 8);
                    }
                    /* a row without a valid value travels too: its group exists (count 0) */
                    uint64_t *w = fwd_row(a, &a->fwd[(size_t)part * P + owner]);
                    if (!w) {
                        failed = 1;
                        break;
                    }
                    w[0] = h[q];
                    for (int k = 0; k < K; k++) w[1 + k] = (uint64_t)a->kbuf[k][q];
                    memcpy(w + 1 + K, x, 8 * (size_t)V);
                    if (TM) w[1 + K + V] = (uint64_t)a->traw[q];
                }
                continue;
            }
            for (int k = 0; k < K; k++) keys[k] = (uint64_t)a->kbuf[k][i];
            gtab *g = owner == me ? &a->own : &a->stage;
            gpart *p = owner == me ? po : ps;
            size_t e = gpart_find(g, p, h[i], keys);
            if (e == (size_t)-1) {
                failed = 1;
                break;
            }
            unsigned char *acc = gp_acc(g, p, e);
            for (int v = 0; v < V && !failed; v++) {
                size_t m = 0;
                for (int64_t q = i; q < j; q++) {
                    double x = a->vbuf[v][q];
                    const int good = value_valid(sp, v, &x);
                    run[m] = x, runt[m] = TM ? a->traw[q] : 0;
                    m += (size_t)good;
                }
                valid[v] += m, invalid[v] += (uint64_t)(j - i) - m;
                if (acc_add_n(L, acc + (size_t)v * A, &p->pool, run, m, TM ? runt : NULL) ||
                    (L->kept && m && gpart_keep(g, p, e, v, run, m)))
                    failed = 1;
            }
        }
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory combining groups");
    return 0;
}

/* Adds the chunk's strings to the dictionaries of the string keys (each thread its part). */
static int remember_strings(agg *a, int64_t n)
{
    const int T = a->nthreads;
    int failed = 0, collided = 0;
    for (int k = 0; k < a->sp.nkeys; k++) {
        if (a->ktype[k] != KT_STRING) continue;
        const hb_strs *s = &a->strs[k];
        const int64_t *key = a->kbuf[k];
        const uint8_t *ok = a->ok;
        spart *parts = a->dict[k].p;
#pragma omp parallel num_threads(T) reduction(| : failed, collided)
        for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads())
            for (int64_t i = 0; i < n && !failed && !collided; i++) {
                if (!ok[i] || agg_part((uint64_t)key[i], T) != part) continue;
                int r = spart_add(&parts[part], (uint64_t)key[i], s->bytes + s->off[i],
                                  (uint32_t)(s->off[i + 1] - s->off[i]));
                failed |= r < 0;
                collided |= r > 0;
            }
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory keeping the key strings");
    if (collided) return hb_err_set(HB_EINTERNAL, "aggregate", "two different key strings have the same 64-bit hash");
    return 0;
}

/* Not collective. Reads chunk c and combines its rows into this rank's tables. */
static int aggregate_map(void *state, int64_t c)
{
    agg *a = state;
    hb_step_ctx *ctx = a->ctx;
    const agg_spec *sp = &a->sp;
    int64_t start = c * ctx->chunk_rows;
    int64_t n = start + ctx->chunk_rows > ctx->n_rows ? ctx->n_rows - start : ctx->chunk_rows;
    memset(a->ok, 1, (size_t)n);
    if (sp->has_time) HB_CALL(read_time(a, start, n));
    for (int k = 0; k < sp->nkeys; k++) HB_CALL(read_key(a, k, start, n));
    for (int v = 0; v < sp->nvals; v++) HB_CALL(hb_table_read(a->tab, a->col_val[v], start, n, HB_F64, a->vbuf[v]));

    /* with hour and day of week the only calendar keys, the box does not depend on them:
     * the dense path computes them with the cells, in the same pass */
    int fused = a->dense_ok, dense = 0;
    for (int k = 0; k < sp->nkeys; k++)
        fused &= a->ktype[k] != KT_CALENDAR || sp->kkind[k] == KEY_HOUR || sp->kkind[k] == KEY_DOW;
    if (fused) HB_CALL(dense_plan(a, n, &dense));
    if (!dense) {
        if (sp->has_time) local_times(a, n);
        HB_CALL(calendar_keys(a, n));
        if (!fused) HB_CALL(dense_plan(a, n, &dense));
    }
    const int K = sp->nkeys;
    uint64_t missing = 0;
    /* in blocks, each a thread's: a row with the keys of the row before it (readings
     * ordered by key) takes that row's hash */
    enum { HBLK = 4096 };
    const int64_t nblk = (n + HBLK - 1) / HBLK;
#pragma omp parallel for schedule(static) num_threads(a->nthreads) reduction(+ : missing)
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t i0 = b * HBLK, i1 = i0 + HBLK < n ? i0 + HBLK : n;
        for (int64_t i = i0; i < i1; i++) {
            missing += !a->ok[i];
            if (dense) continue;
            if (!a->ok[i]) {
                a->h[i] = 0;
                continue;
            }
            int same = i > i0 && a->ok[i - 1];
            for (int k = 0; k < K && same; k++) same = a->kbuf[k][i] == a->kbuf[k][i - 1];
            if (same) {
                a->h[i] = a->h[i - 1];
                continue;
            }
            uint64_t keys[AGG_MAX_KEYS];
            for (int k = 0; k < K; k++) keys[k] = (uint64_t)a->kbuf[k][i];
            a->h[i] = agg_hash(keys, K);
        }
    }
    memset(a->tvalid, 0, (size_t)a->nthreads * 2 * (size_t)sp->nvals * 8);
    HB_CALL(dense ? combine_dense(a, n, fused) : combine(a, n));
    HB_CALL(remember_strings(a, n));
    a->rows_total += (uint64_t)n;
    a->rows_missing += missing;
    for (int th = 0; th < a->nthreads; th++)
        for (int v = 0; v < sp->nvals; v++) {
            a->valid[v] += a->tvalid[(size_t)th * 2 * (size_t)sp->nvals + (size_t)v];
            a->invalid[v] += a->tvalid[(size_t)th * 2 * (size_t)sp->nvals + (size_t)sp->nvals + (size_t)v];
        }
    return 0;
}

/* ---- records: what groups travel and are saved as ---- */

/* Records and kept values entry e of part p travels as. */
static void entry_size(const agg *a, const gtab *g, const gpart *p, size_t e, size_t *nrec, size_t *nval)
{
    const unsigned char *acc = gp_acc(g, p, e);
    int pieces = 1;
    size_t vals = 0;
    for (int v = 0; v < a->sp.nvals; v++) {
        int k = acc_pieces(&a->L, acc + (size_t)v * a->A, &p->pool);
        pieces = k > pieces ? k : pieces;
        if (a->L.kept) vals += acc_count(acc + (size_t)v * a->A);
    }
    *nrec = (size_t)pieces, *nval = vals;
}

/* Writes entry e as records at rec and its kept values (kg: the part's, per value
 * column, from gpart_kept_groups) at vals, value column by value column. */
static void entry_write(const agg *a, const gtab *g, const gpart *p, size_t e, unsigned char *rec, double *vals,
                        const kgroups *kg)
{
    const int K = a->sp.nkeys, V = a->sp.nvals;
    const unsigned char *acc = gp_acc(g, p, e);
    size_t nrec, nval;
    entry_size(a, g, p, e, &nrec, &nval);
    for (size_t k = 0; k < nrec; k++, rec += a->rec) {
        memcpy(rec, gp_keys(g, p, e), (size_t)K * 8);
        for (int v = 0; v < V; v++)
            acc_piece(&a->L, acc + (size_t)v * a->A, &p->pool, (int)k, rec + (size_t)K * 8 + (size_t)v * a->A);
    }
    if (!a->L.kept) return;
    for (int v = 0; v < V; v++)
        for (size_t i = kgroups_first(&kg[v], e); i < kg[v].end[e]; i++) *vals++ = klog_x(kg[v].x, kg[v].wide, i);
}

/* Not collective, thread-safe per part. The kept values of every value column of part p
 * of g, group by group, into kg[V] (nothing when no values are kept); -1 out of memory. */
static int part_kept(const agg *a, const gtab *g, gpart *p, int consume, kgroups *kg)
{
    memset(kg, 0, (size_t)a->sp.nvals * sizeof *kg);
    for (int v = 0; a->L.kept && v < a->sp.nvals; v++)
        if (gpart_kept_groups(g, p, v, consume, &kg[v])) return -1;
    return 0;
}

static void part_kept_free(const agg *a, kgroups *kg)
{
    for (int v = 0; v < a->sp.nvals; v++) kgroups_free(&kg[v]);
}

/* Not collective, thread-safe per part. The entry of keys (hash h) in part `part` of g, as
 * gpart_find, through the dense map when g is the owned table and the keys lie in the box
 * (the map then names the entry for the next time). */
static size_t dense_own(agg *a, gtab *g, int part, const uint64_t *keys, uint64_t h)
{
    if (g != &a->own || !a->dmap) return gpart_find(g, &g->p[part], h, keys);
    uint64_t c = 0;
    for (int k = 0; k < a->sp.nkeys; k++) {
        const uint64_t d = keys[k] - (uint64_t)a->dlo[k];
        if (d >= a->dspan[k]) return gpart_find(g, &g->p[part], h, keys);
        c = c * a->dspan[k] + d;
    }
    const uint64_t ref = a->dmap[c];
    if (ref != DENSE_NONE && !(ref >> 63)) return (uint32_t)ref;
    size_t e = gpart_find(g, &g->p[part], h, keys);
    if (e != (size_t)-1) a->dmap[c] = dense_ref(0, part, e);
    return e;
}

int agg_merge_records(agg *a, gtab *g, unsigned char *rec, size_t n, const double *vals, int parallel)
{
    const int K = a->sp.nkeys, V = a->sp.nvals, T = g->nparts;
    const size_t A = a->A, R = a->rec;
    if (a->L.kept) {
        if (hb_grow((void **)&a->voff, &a->voffcap, n + 1, sizeof *a->voff))
            return hb_err_set(HB_EINTERNAL, "memory", "out of memory merging %zu records", n);
        size_t pos = 0;
        for (size_t r = 0; r < n; r++) {
            a->voff[r] = pos;
            for (int v = 0; v < V; v++) pos += acc_count(rec + r * R + (size_t)K * 8 + (size_t)v * A);
        }
    }
    int failed = 0;
#pragma omp parallel num_threads(parallel ? T : 1) reduction(| : failed)
    for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads()) {
        gpart *p = &g->p[part];
        for (size_t r = 0; r < n && !failed; r++) {
            const unsigned char *src = rec + r * R;
            uint64_t keys[AGG_MAX_KEYS];
            /* as combine does for rows: the slots of records ahead, then their entries */
            if (r + 16 < n) {
                memcpy(keys, src + 16 * R, (size_t)K * 8);
                uint64_t ha = agg_hash(keys, K);
                if (agg_part(ha, T) == part) gpart_prefetch(p, ha);
            }
            if (r + 8 < n) {
                memcpy(keys, src + 8 * R, (size_t)K * 8);
                uint64_t ha = agg_hash(keys, K);
                if (agg_part(ha, T) == part) gpart_prefetch_entry(g, p, ha);
            }
            memcpy(keys, src, (size_t)K * 8);
            uint64_t h = agg_hash(keys, K);
            if (agg_part(h, T) != part) continue;
            size_t e = dense_own(a, g, part, keys, h);
            if (e == (size_t)-1) {
                failed = 1;
                break;
            }
            unsigned char *dst = gp_acc(g, p, e);
            size_t off = a->L.kept ? a->voff[r] : 0;
            for (int v = 0; v < V && !failed; v++) {
                const unsigned char *s = src + (size_t)K * 8 + (size_t)v * A;
                if (acc_merge(&a->L, dst + (size_t)v * A, &p->pool, s)) failed = 1;
                if (a->L.kept) {
                    size_t c = acc_count(s);
                    if (c && gpart_keep(g, p, e, v, vals + off, c)) failed = 1;
                    off += c;
                }
            }
        }
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory merging groups");
    return 0;
}

int agg_merge_rows(agg *a, gtab *g, const uint64_t *rows, size_t n)
{
    const int K = a->sp.nkeys, V = a->sp.nvals, T = g->nparts, TM = a->L.first || a->L.last;
    const size_t A = a->A, W = a->fw;
    const acc_layout *L = &a->L;
    int failed = 0;
#pragma omp parallel num_threads(T) reduction(| : failed)
    for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads()) {
        gpart *p = &g->p[part];
        for (size_t r = 0; r < n && !failed; r++) {
            /* as combine does: the slots of rows ahead, then their entries */
            if (r + 16 < n && agg_part(rows[(r + 16) * W], T) == part) gpart_prefetch(p, rows[(r + 16) * W]);
            if (r + 8 < n && agg_part(rows[(r + 8) * W], T) == part) gpart_prefetch_entry(g, p, rows[(r + 8) * W]);
            const uint64_t *row = rows + r * W;
            if (agg_part(row[0], T) != part) continue;
            size_t e = dense_own(a, g, part, row + 1, row[0]);
            if (e == (size_t)-1) {
                failed = 1;
                break;
            }
            unsigned char *acc = gp_acc(g, p, e);
            const int64_t t = TM ? (int64_t)row[1 + K + V] : 0;
            for (int v = 0; v < V; v++) {
                double x;
                memcpy(&x, &row[1 + K + v], 8);
                if (isnan(x)) continue;
                if (acc_add(L, acc + (size_t)v * A, &p->pool, x, t) || (L->kept && gpart_keep(g, p, e, v, &x, 1))) {
                    failed = 1;
                    break;
                }
            }
        }
    }
    if (failed) return hb_err_set(HB_EINTERNAL, "aggregate", "out of memory merging forwarded rows");
    return 0;
}

/* Not collective. Adds the rows still waiting to be forwarded into the stage (a save
 * between a map and its exchange keeps them as staged groups). */
static int fwd_to_stage(agg *a)
{
    for (size_t i = 0; a->fwd && i < (size_t)a->nthreads * (size_t)hb_size; i++) {
        if (a->fwd[i].n) HB_CALL(agg_merge_rows(a, &a->stage, a->fwd[i].w, a->fwd[i].n));
        a->fwd[i].n = 0;
    }
    return 0;
}

/* Collective. The largest state on any rank must stay within max_memory: refused (65)
 * with the rank and the size before memory runs out. */
static int check_memory(agg *a)
{
    size_t b = gtab_bytes(&a->own) + gtab_bytes(&a->stage) + a->chunk_bytes + a->scap * a->rec + a->rcap * a->rec +
               (a->svcap + a->rvcap) * 8 + a->dmcap * 8 + a->dhcap * 4 + a->docap + a->dgcap * sizeof(struct dpend) +
               a->dpbytes + (a->dscap + a->drcap * (1 + a->dw)) * 4 + (a->fscap + a->frcap) * a->fw * 8;
    for (size_t i = 0; a->fwd && i < (size_t)a->nthreads * (size_t)hb_size; i++) b += a->fwd[i].cap * a->fw * 8;
    for (int k = 0; k < a->sp.nkeys; k++) b += sdict_bytes(&a->dict[k]);
    struct {
        double bytes;
        int rank;
    } in = {(double)b, hb_rank}, out;
    MPI_Allreduce(&in, &out, 1, MPI_DOUBLE_INT, MPI_MAXLOC, MPI_COMM_WORLD);
    char where[600], what[80];
    snprintf(where, sizeof where, "%s:%s", a->src, a->sp.table);
    snprintf(what, sizeof what, "the groups on rank %d", out.rank);
    return hb_mem_reserve(out.bytes, where, what, NULL,
                          "run on more ranks, or drop percentile stats (they keep every value)");
}

/* Collective. Sends every staged group to its owner, which merges it. */
static int aggregate_exchange(void *state)
{
    agg *a = state;
    HB_CALL(dense_exchange(a));
    const int P = hb_size, T = a->nthreads;
    size_t *tc = a->tcnt; /* [part][dest] records, [part][dest] values, then their offsets */
    size_t *trec = tc, *tval = tc + (size_t)T * P, *orec = tc + 2 * (size_t)T * P, *oval = tc + 3 * (size_t)T * P;
    memset(tc, 0, 2 * (size_t)T * P * sizeof *tc);
#pragma omp parallel num_threads(T)
    for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads()) {
        const gpart *p = &a->stage.p[part];
        for (size_t e = 0; e < p->n; e++) {
            size_t nr, nv;
            entry_size(a, &a->stage, p, e, &nr, &nv);
            int d = agg_owner_of(a, gp_hash(&a->stage, p, e), gp_keys(&a->stage, p, e));
            trec[(size_t)part * P + d] += nr;
            tval[(size_t)part * P + d] += nv;
        }
    }
    size_t nrec = 0, nval = 0;
    for (int d = 0; d < P; d++) {
        a->scount[d] = a->vcount[d] = 0;
        for (int part = 0; part < T; part++) {
            size_t i = (size_t)part * P + d;
            orec[i] = nrec, oval[i] = nval;
            nrec += trec[i], nval += tval[i];
            a->scount[d] += trec[i], a->vcount[d] += tval[i];
        }
    }
    int rc = 0;
    if (hb_grow((void **)&a->sbuf, &a->scap, nrec, a->rec) || hb_grow((void **)&a->svals, &a->svcap, nval, 8))
        rc = hb_err_set(HB_EINTERNAL, "aggregate", "out of memory for %zu records to send", nrec);
    HB_CALL(hb_agree(rc));
    int failed = 0;
#pragma omp parallel num_threads(T) reduction(| : failed)
    for (int part = omp_get_thread_num(); part < T; part += omp_get_num_threads()) {
        gpart *p = &a->stage.p[part];
        kgroups kg[AGG_MAX_VALUES];
        if (part_kept(a, &a->stage, p, 0, kg)) {
            part_kept_free(a, kg);
            failed = 1;
            continue;
        }
        for (size_t e = 0; e < p->n; e++) {
            size_t nr, nv, i = (size_t)part * P + (size_t)agg_owner_of(a, gp_hash(&a->stage, p, e), gp_keys(&a->stage, p, e));
            entry_size(a, &a->stage, p, e, &nr, &nv);
            entry_write(a, &a->stage, p, e, a->sbuf + orec[i] * a->rec, a->svals + oval[i], kg);
            orec[i] += nr, oval[i] += nv;
        }
        part_kept_free(a, kg);
    }
    HB_CALL(hb_agree(failed ? hb_err_set(HB_EINTERNAL, "aggregate", "out of memory for the kept values to send") : 0));
    gtab_clear(&a->stage);
    unsigned char *rrec = a->sbuf;
    double *rvals = a->svals;
    size_t rn = nrec;
    if (P > 1) {
        HB_CALL(agg_alltoallv(a->sbuf, a->scount, a->rec, (void **)&a->rbuf, &a->rcap, a->rcount, a->rdispl, &rn));
        size_t rv = 0;
        if (a->L.kept)
            HB_CALL(agg_alltoallv(a->svals, a->vcount, 8, (void **)&a->rvals, &a->rvcap, a->rvcount, a->rvdispl, &rv));
        rrec = a->rbuf, rvals = a->rvals;
    }
    rc = rn ? agg_merge_records(a, &a->own, rrec, rn, rvals, 1) : 0;
    HB_CALL(hb_agree(rc));
    /* the forwarded rows, destination after destination */
    size_t nfw = 0, *fcount = a->fcount;
    for (int d = 0; d < P; d++) {
        fcount[d] = 0;
        for (int part = 0; part < T; part++) fcount[d] += a->fwd[(size_t)part * P + d].n;
        nfw += fcount[d];
    }
    uint64_t any = nfw;
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
        rc = hb_grow((void **)&a->fsend, &a->fscap, nfw, a->fw * 8)
                 ? hb_err_set(HB_EINTERNAL, "aggregate", "out of memory for %zu rows to send", nfw)
                 : 0;
        HB_CALL(hb_agree(rc));
        size_t at = 0;
        for (int d = 0; d < P; d++)
            for (int part = 0; part < T; part++) {
                fwdbuf *b = &a->fwd[(size_t)part * P + d];
                if (b->n) memcpy(a->fsend + at * a->fw, b->w, b->n * a->fw * 8);
                at += b->n;
                b->n = 0;
            }
        size_t fn = 0;
        HB_CALL(agg_alltoallv(a->fsend, fcount, a->fw * 8, (void **)&a->frecv, &a->frcap, fcount + P, fcount + 2 * P, &fn));
        HB_CALL(hb_agree(fn ? agg_merge_rows(a, &a->own, a->frecv, fn) : 0));
    }
    return check_memory(a);
}

/* ---- checkpoints and partial states ---- */

/* Saved state of one rank: a header, the counters, every group as records, the kept
 * values of the records (compact: see put_kept), then the strings of each string key. */
typedef struct saved {
    char magic[8]; /* "HBAGG02" */
    uint32_t K, V, A, pad;
    uint64_t signature; /* the keys, values and stats this state is for */
    uint64_t rows_total, rows_missing, n_records, n_values, kept_bytes;
} saved;

/* An integer and a float key column give the same key words: a state of one merges with
 * a state of the other. */
static key_type key_class(key_type t) { return t == KT_FLOAT ? KT_INT : t; }

static uint64_t signature(const agg *a)
{
    XXH64_state_t *s = XXH64_createState();
    XXH64_reset(s, 13);
    for (int k = 0; k < a->sp.nkeys; k++) {
        key_type t = key_class(a->ktype[k]);
        XXH64_update(s, a->sp.key[k], strlen(a->sp.key[k]) + 1);
        XXH64_update(s, &t, sizeof t);
    }
    for (int v = 0; v < a->sp.nvals; v++) XXH64_update(s, a->sp.val[v], strlen(a->sp.val[v]) + 1);
    for (int i = 0; i < a->sp.nstats; i++) XXH64_update(s, a->sp.stname[i], strlen(a->sp.stname[i]) + 1);
    uint64_t h = XXH64_digest(s);
    XXH64_freeState(s);
    return h;
}

static int cmp_f64(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The c kept values of one group's value column x (sorted here; they are a copy) as
 * distinct values and their counts, for quantized readings that repeat: the number d of
 * distinct values (varint), the d values ascending, then, when d < c, their d counts
 * (varints). Kept values are finite and never -0.0, so equal values have equal bits and
 * the percentiles, which depend on the values alone, keep theirs. Returns the bytes
 * (q NULL: only counts them). */
static size_t put_kept(unsigned char *q, double *x, size_t c)
{
    if (c > 1) qsort(x, c, sizeof *x, cmp_f64);
    size_t d = 0, bytes = 0;
    for (size_t i = 0; i < c; i++) d += i == 0 || x[i] != x[i - 1];
    bytes = hb_varint_len(d) + 8 * d;
    if (d < c)
        for (size_t i = 0, j; i < c; i = j) {
            for (j = i + 1; j < c && x[j] == x[i]; j++) {
            }
            bytes += hb_varint_len(j - i);
        }
    if (!q) return bytes;
    q = hb_varint_put(q, d);
    for (size_t i = 0; i < c; i++)
        if (i == 0 || x[i] != x[i - 1]) memcpy(q, &x[i], 8), q += 8;
    if (d < c)
        for (size_t i = 0, j; i < c; i = j) {
            for (j = i + 1; j < c && x[j] == x[i]; j++) {
            }
            q = hb_varint_put(q, j - i);
        }
    return bytes;
}

/* put_kept's reverse: the c values at *q into x; -1 when the bytes do not hold them. */
static int get_kept(const unsigned char **q, const unsigned char *end, double *x, size_t c)
{
    uint64_t d;
    if (hb_varint_get(q, end, &d) || d == 0 || d > c || (uint64_t)(end - *q) / 8 < d) return -1;
    const unsigned char *vals = *q;
    *q += 8 * d;
    if (d == c) {
        memcpy(x, vals, 8 * c);
        return 0;
    }
    size_t m = 0;
    for (uint64_t i = 0; i < d; i++) {
        uint64_t n;
        if (hb_varint_get(q, end, &n) || n == 0 || n > c - m) return -1;
        double v;
        memcpy(&v, vals + 8 * i, 8);
        for (uint64_t j = 0; j < n; j++) x[m++] = v;
    }
    return m == c ? 0 : -1;
}

/* Not collective. This rank's groups, kept values and strings as one blob (see saved). */
static int aggregate_save(void *state, void **buf, size_t *len)
{
    agg *a = state;
    HB_CALL(dense_fold(a)); /* the rows waiting in the dense path's groups */
    const int K = a->sp.nkeys, V = a->sp.nvals;
    size_t nrec = 0, nval = 0, sbytes = 0;
    HB_CALL(fwd_to_stage(a));
    gtab *tabs[2] = {&a->own, &a->stage};
    for (int t = 0; t < 2; t++)
        for (int part = 0; part < tabs[t]->nparts; part++)
            for (size_t e = 0; e < tabs[t]->p[part].n; e++) {
                size_t nr, nv;
                entry_size(a, tabs[t], &tabs[t]->p[part], e, &nr, &nv);
                nrec += nr, nval += nv;
            }
    for (int k = 0; k < K; k++) {
        sbytes += a->ktype[k] == KT_STRING ? 16 : 0;
        for (int part = 0; a->ktype[k] == KT_STRING && part < a->dict[k].nparts; part++)
            sbytes += a->dict[k].p[part].n * 12 + a->dict[k].p[part].nbytes;
    }
    /* the records and the plain kept values first, then the values are encoded */
    unsigned char *recs = hb_malloc(nrec ? nrec * a->rec : 1);
    double *vals = hb_malloc(nval ? nval * 8 : 8);
    if (!recs || !vals) return free(recs), free(vals), HB_EINTERNAL;
    unsigned char *rec = recs;
    double *vp = vals;
    for (int t = 0; t < 2; t++)
        for (int part = 0; part < tabs[t]->nparts; part++) {
            kgroups kg[AGG_MAX_VALUES];
            if (part_kept(a, tabs[t], &tabs[t]->p[part], 0, kg)) {
                part_kept_free(a, kg);
                return free(recs), free(vals), hb_err_set(HB_EINTERNAL, "aggregate", "out of memory saving kept values");
            }
            for (size_t e = 0; e < tabs[t]->p[part].n; e++) {
                size_t nr, nv;
                entry_size(a, tabs[t], &tabs[t]->p[part], e, &nr, &nv);
                entry_write(a, tabs[t], &tabs[t]->p[part], e, rec, vp, kg);
                rec += nr * a->rec, vp += nv;
            }
            part_kept_free(a, kg);
        }
    size_t kb = 0;
    if (a->L.kept) {
        vp = vals;
        for (size_t r = 0; r < nrec; r++)
            for (int v = 0; v < V; v++) {
                size_t c = (size_t)acc_count(recs + r * a->rec + (size_t)K * 8 + (size_t)v * a->A);
                if (c) kb += put_kept(NULL, vp, c), vp += c;
            }
    }
    size_t bytes = sizeof(saved) + 16 * (size_t)V + nrec * a->rec + kb + sbytes;
    unsigned char *p = hb_malloc(bytes);
    if (!p) return free(recs), free(vals), HB_EINTERNAL;
    saved h = {"HBAGG02", (uint32_t)K, (uint32_t)V, (uint32_t)a->A, 0, signature(a), a->rows_total, a->rows_missing,
               nrec, nval, kb};
    unsigned char *q = p;
    memcpy(q, &h, sizeof h), q += sizeof h;
    memcpy(q, a->valid, 8 * (size_t)V), q += 8 * (size_t)V;
    memcpy(q, a->invalid, 8 * (size_t)V), q += 8 * (size_t)V;
    if (nrec) memcpy(q, recs, nrec * a->rec), q += nrec * a->rec;
    if (a->L.kept) {
        vp = vals;
        for (size_t r = 0; r < nrec; r++)
            for (int v = 0; v < V; v++) {
                size_t c = (size_t)acc_count(recs + r * a->rec + (size_t)K * 8 + (size_t)v * a->A);
                if (c) q += put_kept(q, vp, c), vp += c;
            }
    }
    free(recs), free(vals);
    for (int k = 0; k < K; k++) {
        if (a->ktype[k] != KT_STRING) continue;
        const sdict *d = &a->dict[k];
        uint64_t hd[2] = {0, 0};
        for (int part = 0; part < d->nparts; part++) hd[0] += d->p[part].n, hd[1] += d->p[part].nbytes;
        memcpy(q, hd, 16), q += 16;
        for (int part = 0; part < d->nparts; part++)
            for (size_t i = 0; i < d->p[part].n; i++) {
                uint32_t l = d->p[part].len[i];
                memcpy(q, &d->p[part].hash[i], 8), memcpy(q + 8, &l, 4), q += 12;
            }
        for (int part = 0; part < d->nparts; part++)
            for (size_t i = 0; i < d->p[part].n; i++)
                memcpy(q, d->p[part].bytes + d->p[part].off[i], d->p[part].len[i]), q += d->p[part].len[i];
    }
    *buf = p;
    *len = bytes;
    return 0;
}

/* Not collective. Merges a part saved by any rank of any earlier run (or of a partial
 * state) into the stage; the exchange the driver runs next brings its groups to their
 * owners. */
static int aggregate_load(void *state, const void *buf, size_t len)
{
    agg *a = state;
    const int K = a->sp.nkeys, V = a->sp.nvals;
    saved h;
    if (len < sizeof h) return hb_err_set(HB_EDATA, "checkpoint", "aggregate state of %zu bytes is too short", len);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, "HBAGG02", 8) != 0 || h.K != (uint32_t)K || h.V != (uint32_t)V || h.A != (uint32_t)a->A ||
        h.signature != signature(a) || h.n_records > len / (a->rec ? a->rec : 1) || h.kept_bytes > len ||
        len < sizeof h + 16 * (size_t)V + h.n_records * a->rec + h.kept_bytes || (!a->L.kept && h.n_values))
        return hb_err_set(HB_EDATA, "checkpoint", "aggregate state does not match this job's keys, values and stats");
    const unsigned char *q = (const unsigned char *)buf + sizeof h;
    const unsigned char *end = (const unsigned char *)buf + len;
    uint64_t c[2 * AGG_MAX_VALUES];
    memcpy(c, q, 16 * (size_t)V), q += 16 * (size_t)V;
    /* the records are merged from a copy: the blob need not be aligned for their words */
    size_t rb = h.n_records * a->rec;
    unsigned char *rec = hb_malloc(rb ? rb : 1);
    double *vals = NULL;
    int rc = rec ? 0 : HB_EINTERNAL;
    uint64_t total = 0;
    if (rc == 0) {
        memcpy(rec, q, rb);
        q += rb;
        for (size_t r = 0; a->L.kept && r < h.n_records; r++)
            for (int v = 0; v < V; v++) total += acc_count(rec + r * a->rec + (size_t)K * 8 + (size_t)v * a->A);
        if (total != h.n_values) rc = hb_err_set(HB_EDATA, "checkpoint", "aggregate state: the kept values are damaged");
    }
    if (rc == 0 && !(vals = hb_malloc(total ? total * 8 : 8))) rc = HB_EINTERNAL;
    if (rc == 0) {
        const unsigned char *kq = q, *kend = q + h.kept_bytes;
        size_t m = 0;
        for (size_t r = 0; rc == 0 && a->L.kept && r < h.n_records; r++)
            for (int v = 0; rc == 0 && v < V; v++) {
                uint64_t n = acc_count(rec + r * a->rec + (size_t)K * 8 + (size_t)v * a->A);
                if (n && get_kept(&kq, kend, vals + m, (size_t)n))
                    rc = hb_err_set(HB_EDATA, "checkpoint", "aggregate state: the kept values are damaged");
                m += (size_t)n;
            }
        if (rc == 0 && kq != kend) rc = hb_err_set(HB_EDATA, "checkpoint", "aggregate state: the kept values are damaged");
        if (rc == 0) rc = agg_merge_records(a, &a->stage, rec, h.n_records, vals, 1);
    }
    free(rec), free(vals);
    HB_CALL(rc);
    for (int v = 0; v < V; v++) a->valid[v] += c[v], a->invalid[v] += c[V + v];
    a->rows_total += h.rows_total, a->rows_missing += h.rows_missing;
    q += h.kept_bytes;
    for (int k = 0; k < K; k++) {
        if (a->ktype[k] != KT_STRING) continue;
        uint64_t hd[2];
        if ((size_t)(end - q) < 16) return hb_err_set(HB_EDATA, "checkpoint", "aggregate state: the strings are missing");
        memcpy(hd, q, 16);
        if ((size_t)(end - q - 16) / 12 < hd[0] || (size_t)(end - q) - 16 - hd[0] * 12 < hd[1])
            return hb_err_set(HB_EDATA, "checkpoint", "aggregate state: the strings are cut short");
        const unsigned char *ent = q + 16, *bytes = ent + hd[0] * 12;
        for (uint64_t i = 0; i < hd[0]; i++) {
            uint64_t sh;
            uint32_t l;
            memcpy(&sh, ent + i * 12, 8), memcpy(&l, ent + i * 12 + 8, 4);
            if ((size_t)(end - bytes) < l) return hb_err_set(HB_EDATA, "checkpoint", "aggregate state: a string is cut short");
            int r = spart_add(&a->dict[k].p[agg_part(sh, a->nthreads)], sh, (const char *)bytes, l);
            if (r < 0) return hb_err_set(HB_EINTERNAL, "memory", "out of memory loading key strings");
            if (r > 0) return hb_err_set(HB_EDATA, "checkpoint", "aggregate state: two key strings with one hash");
            bytes += l;
        }
        q = bytes;
    }
    return 0;
}

/* What setup learnt from the input that the state's meaning and finalize depend on:
 * each key's type (integer keys, from integer or float columns, alike) and each value
 * column's units. Everything else finalize writes comes from the options and the groups
 * (the coordinates are the keys' observed values), so merging the groups is merging the
 * inputs. */
typedef struct agg_desc {
    char magic[8]; /* "HBAGGD1" */
    uint32_t K, V;
    uint32_t ktype[AGG_MAX_KEYS];
    char units[AGG_MAX_VALUES][AGG_UNITS];
} agg_desc;

static const char *key_type_name(uint32_t t)
{
    return t == KT_STRING ? "a string column" : t == KT_CALENDAR ? "a calendar key" : "an integer column";
}

/* Not collective. The description above, of this state (a merged one describes what its
 * parts agreed on). */
static int aggregate_describe(void *state, void **buf, size_t *len)
{
    const agg *a = state;
    agg_desc *d = hb_calloc(1, sizeof *d);
    if (!d) return HB_EINTERNAL;
    memcpy(d->magic, "HBAGGD1", 8);
    d->K = (uint32_t)a->sp.nkeys, d->V = (uint32_t)a->sp.nvals;
    for (int k = 0; k < a->sp.nkeys; k++) d->ktype[k] = (uint32_t)key_class(a->ktype[k]);
    for (int v = 0; v < a->sp.nvals; v++) memcpy(d->units[v], a->units[v], AGG_UNITS);
    *buf = d;
    *len = sizeof *d;
    return 0;
}

/* Collective. The empty state of one run over the parts' inputs: every part must have
 * the same key types and value units (65 naming the first part that differs); the rows
 * are the parts' sum. */
static int aggregate_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    HB_CALL(hb_agree(new_state(ctx, state)));
    agg *a = *state;
    agg_spec *sp = &a->sp;
    HB_CALL(hb_agree(hb_tz_select(sp->tz)));
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        agg_desc d;
        if (parts[i].desc_len != sizeof d) {
            rc = hb_err_set(HB_EDATA, parts[i].path, "not an aggregate partial of this version (description of %zu "
                            "bytes, %zu expected)", parts[i].desc_len, sizeof d);
            break;
        }
        memcpy(&d, parts[i].desc, sizeof d);
        if (memcmp(d.magic, "HBAGGD1", 8) != 0 || d.K != (uint32_t)sp->nkeys || d.V != (uint32_t)sp->nvals) {
            rc = hb_err_set(HB_EDATA, parts[i].path, "its description does not match the step's keys and values");
            break;
        }
        for (int k = 0; k < sp->nkeys && rc == 0; k++) {
            if (i == 0) a->ktype[k] = (key_type)d.ktype[k];
            else if ((key_type)d.ktype[k] != a->ktype[k])
                rc = hb_err_set(HB_EDATA, parts[i].path, "key %s is %s there but %s in %s", sp->key[k],
                                key_type_name(d.ktype[k]), key_type_name(a->ktype[k]), parts[0].path);
        }
        for (int v = 0; v < sp->nvals && rc == 0; v++) {
            d.units[v][AGG_UNITS - 1] = '\0';
            if (i == 0) memcpy(a->units[v], d.units[v], AGG_UNITS);
            else if (strcmp(a->units[v], d.units[v]) != 0)
                rc = hb_err_set(HB_EDATA, parts[i].path, "value column %s has units '%s' there but '%s' in %s",
                                sp->val[v], d.units[v], a->units[v], parts[0].path);
        }
    }
    HB_CALL(hb_agree(rc));
    HB_CALL(hb_agree(init_tables(a)));
    return hb_agree(alloc_xchg(a));
}

/* Collective. See output.c. */
/* Collective. Refuses (65), before anything is written, rows none of which has a key (an
 * empty result would look like an answer; max_invalid_fraction = 1 accepts it), a value column with a valid range most of
 * whose values are invalid (out of the range or not finite), and one without a range
 * none of whose values is finite. Rows without a key count for no column (pandas drops
 * them), and a column without a range may well be mostly missing (NaN) by design. */
static int check_invalid(const agg *a)
{
    const agg_spec *sp = &a->sp;
    const int V = sp->nvals;
    uint64_t c[2 + 2 * AGG_MAX_VALUES] = {a->rows_total, a->rows_missing};
    for (int v = 0; v < V; v++) c[2 + v] = a->valid[v], c[2 + V + v] = a->invalid[v];
    MPI_Allreduce(MPI_IN_PLACE, c, 2 + 2 * V, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    char where[600], what[400], why[200], x[32];
    snprintf(where, sizeof where, "%s:%s", a->src, sp->table);
    const uint64_t keyed = c[0] - c[1];
    if (keyed == 0)
        HB_CALL(hb_invalid_check(c[0], c[1], where, "rows",
                                 "none has a key: NaN in a float key, a uint64 key of 2^63 or more, a missing time"));
    for (int v = 0; v < V; v++) {
        if (isinf(sp->lo[v]) && isinf(sp->hi[v])) {
            HB_CHECK(keyed == 0 || c[2 + v] > 0, HB_EDATA, where,
                     "none of the %s rows with a key has a finite value of value column %s", hb_fmt_count(x, keyed),
                     sp->val[v]);
            continue;
        }
        snprintf(what, sizeof what, "rows with a key of value column %s", sp->val[v]);
        snprintf(why, sizeof why, "out of its valid range [%g, %g] or not finite", sp->lo[v], sp->hi[v]);
        HB_CALL(hb_invalid_check(keyed, c[2 + V + v], where, what, why));
    }
    return 0;
}

static int aggregate_finalize(void *state, hb_out *out)
{
    HB_CALL(hb_agree(dense_fold(state)));
    HB_CALL(check_invalid(state));
    return agg_write(state, out);
}

/* Not collective. Frees the state; safe on a partly built one. */
static void aggregate_destroy(void *state)
{
    agg *a = state;
    if (!a) return;
    hb_table_close(a->tab);
    hb_tzmap_free(&a->tzm);
    gtab_free(&a->own), gtab_free(&a->stage);
    for (int k = 0; k < AGG_MAX_KEYS; k++) {
        sdict_free(&a->dict[k]);
        hb_strs_free(&a->strs[k]);
        free(a->kbuf[k]);
    }
    for (int v = 0; v < AGG_MAX_VALUES; v++) free(a->vbuf[v]);
    free(a->neutral), free(a->dtmp), free(a->traw), free(a->tloc), free(a->h), free(a->ok), free(a->cal);
    free(a->tvalid), free(a->tcnt), free(a->scount), free(a->voff);
    dpend_clear(a);
    free(a->grec), free(a->gstart), free(a->dmap), free(a->dhome), free(a->downer), free(a->dpend);
    free(a->dsend), free(a->drecv);
    free(a->sbuf), free(a->rbuf), free(a->svals), free(a->rvals);
    for (size_t i = 0; a->fwd && i < (size_t)a->nthreads * (size_t)hb_size; i++) free(a->fwd[i].w);
    free(a->fwd), free(a->fsend), free(a->frecv), free(a->fcount);
    free(a->split);
    free(a);
}

extern const hb_generator hb_generator_vitals; /* gen_vitals.c */

/* What the kernel reads and writes (DESIGN.md 4.4), listed by `h5batch kernels aggregate`.
 * <key>, <value> and <stat> stand for the names given in by, values and stats. */
static const hb_dataset_desc aggregate_inputs[] = {
    {"<key>", "table", "int|string", "", NULL, 0, "each column key of by (calendar keys come from time)"},
    {"<value>", "table", "number", "", NULL, 0, "each column of values"},
    {"<time>", "table", "number", "", "s", 1, "the time column (time; time_unit), for calendar keys, first, last"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};
static const hb_dataset_desc aggregate_outputs[] = {
    {"/aggregate/<value>_<stat>", NULL, "float64|uint64", "<key>...", NULL, 0,
     "one per value and stat (count, above, below: uint64); dims: the keys (dense) or rows (table)"},
    {"/aggregate/<key>", NULL, "int64|string", "<key>", NULL, 0,
     "the key's coordinates (dense: a dimension scale) or column (table)"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};

const hb_kernel hb_kernel_aggregate = {
    .name = "aggregate",
    .summary = "per group of key values (columns, calendar keys): count, sum, mean, min, max, std, var, first, "
               "last, exact percentiles, above/below counts",
    .options = aggregate_options,
    .default_chunk_rows = 1 << 20,
    .generator = &hb_generator_vitals,
    .validate = aggregate_validate,
    .setup = aggregate_setup,
    .map = aggregate_map,
    .exchange = aggregate_exchange,
    .finalize = aggregate_finalize,
    .save = aggregate_save,
    .load = aggregate_load,
    .destroy = aggregate_destroy,
    .inputs = aggregate_inputs,
    .outputs = aggregate_outputs,
    .describe = aggregate_describe,
    .setup_parts = aggregate_setup_parts,
};
