/* Episodes (`kernel = episodes`, DESIGN.md 4.5): per device, the stretches of time in
 * which a reading breaks a rule, and the device's figures per calendar period beside
 * them. This file holds the kernel table and the data path up to the owners; detect.c
 * orders each device's readings and finds its episodes.
 *
 * map reads a chunk (device, time, value), drops rows without a device or time and rows
 * whose value is not finite (counted), and keeps the valid readings as runs of one device
 * (internal.h, ep_cols: a time step and a value, 8 to 16 bytes a reading): in this rank's
 * columns when it owns the device, else staged for the owner. exchange sends what is
 * staged (and, once per device and sender, the bytes of a string id) with the keyed
 * exchange of kernels/common/exchange.h every few rounds, finalize the rest. An owner
 * thus holds every reading of its devices, from every chunk, whatever rank read it;
 * nothing is decided before finalize, when the device's whole history is there, so an
 * episode that crosses a chunk or a rank boundary is found whole. The state is the owned
 * and staged readings, so save/load is that list, and a restart at another rank count
 * sends each loaded device's readings to its new owner; a merge of partial states
 * (DESIGN.md 7) loads every part's lists the same way, so a device read at several sites
 * has all its readings on its owner. */
#include "kernels/episodes/internal.h"

#include "core/hb.h"
#include "kernels/common/varint.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#define XCHG_BLOCK 512    /* elements (steps, values, runs) per MPI block */
#define XCHG_SBLOCK 4096  /* bytes per MPI block of the string stream */
#define EXCHANGE_EVERY 8  /* rounds between exchanges: 8 chunks staged at most */
#define MISSING INT64_MIN /* what hb_table_read gives for a missing integer */

static const hb_option episodes_options[] = {
    {"table", HB_OPT_STRING, "/table", 1, 0, NULL, "input table (a group of equal-length columns)"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL,
     "names of the table's columns for the names used here, e.g. 'device:patient, value:heart_rate'"},
    {"device", HB_OPT_STRING, "device", 1, 0, NULL, "device column (integer or string ids)"},
    {"time", HB_OPT_STRING, "time", 1, 0, NULL, "time column"},
    {"time_unit", HB_OPT_CHOICE, NULL, 1, 0, "s|ms|us|ns",
     "unit of the time column since 1970-01-01 UTC; default what the column states (pandas datetime64: ns; a "
     "units attribute such as CF's 'seconds since 1970-01-01'), else s"},
    {"value", HB_OPT_STRING, "value", 1, 0, NULL, "the reading's column"},
    {"derive", HB_OPT_CHOICE, "none", 1, 0, "none|rate",
     "rate: the rule applies to the change per second between consecutive readings of a device"},
    {"rule", HB_OPT_STRING, NULL, 1, 0, NULL, "above:X, below:X, outside:LO:HI, or deviation:K (|x - median| > K MAD)"},
    {"hysteresis", HB_OPT_FLOAT, "0", 0, 1e300, NULL,
     "an episode goes on while the value stays beyond the threshold moved back by this much"},
    {"max_gap", HB_OPT_DURATION, "5m", 0, 1e12, NULL, "a longer gap between consecutive readings ends an episode"},
    {"min_duration", HB_OPT_DURATION, "0", 0, 1e12, NULL, "shorter episodes are dropped"},
    {"period", HB_OPT_CHOICE, "day", 1, 0, "day|week|month", "the periods of the per-device summaries (local time)"},
    {"timezone", HB_OPT_STRING, "UTC", 1, 0, NULL, "IANA time zone of the periods (DST-correct)"},
    {"max_memory", HB_OPT_SIZE, NULL, 1e6, 1e15, NULL,
     "memory one rank may use; readings beyond it spill to scratch_dir (docs/spill.md); default [job] max_memory"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* A real number filling all of s; -1 otherwise. */
static int number(const char *s, double *out)
{
    char *end;
    while (isspace((unsigned char)*s)) s++;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == s || *end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int ep_spec_parse(const hb_optset *o, ep_spec *sp, const char **key, char *msg, size_t len)
{
    memset(sp, 0, sizeof *sp);
    const char *r = hb_opt_str(o, "rule");
    if (!r) {
        *key = "rule";
        snprintf(msg, len, "rule is required: above:X, below:X, outside:LO:HI or deviation:K");
        return HB_ECONFIG;
    }
    sp->rule_text = r;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", r);
    char *a = strchr(buf, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    if (a) *a++ = '\0';
    if (b) *b++ = '\0';
    int bad = 0;
    if (strcmp(buf, "above") == 0 || strcmp(buf, "below") == 0) {
        sp->rule = buf[0] == 'a' ? RULE_ABOVE : RULE_BELOW;
        bad = !a || b || number(a, &sp->lo);
    } else if (strcmp(buf, "outside") == 0) {
        sp->rule = RULE_OUTSIDE;
        bad = !a || !b || strchr(b, ':') || number(a, &sp->lo) || number(b, &sp->hi);
        if (!bad && !(sp->lo < sp->hi)) {
            *key = "rule";
            snprintf(msg, len, "rule '%s': LO must be below HI", r);
            return HB_ECONFIG;
        }
    } else if (strcmp(buf, "deviation") == 0) {
        sp->rule = RULE_DEVIATION;
        bad = !a || b || number(a, &sp->k) || sp->k < 0;
    } else {
        bad = 1;
    }
    if (bad) {
        *key = "rule";
        snprintf(msg, len, "rule '%s' is not above:X, below:X, outside:LO:HI or deviation:K (K >= 0)", r);
        return HB_ECONFIG;
    }
    sp->rate = strcmp(hb_opt_str(o, "derive"), "rate") == 0;
    sp->hysteresis = hb_opt_num(o, "hysteresis");
    sp->max_gap = hb_opt_num(o, "max_gap");
    sp->min_duration = hb_opt_num(o, "min_duration");
    const char *p = hb_opt_str(o, "period");
    sp->period = strcmp(p, "week") == 0 ? PERIOD_WEEK : strcmp(p, "month") == 0 ? PERIOD_MONTH : PERIOD_DAY;
    sp->unit_name = hb_opt_str(o, "time_unit") ? hb_opt_str(o, "time_unit") : "s"; /* setup: what the column states */
    sp->unit = hb_time_unit_per_s(sp->unit_name);
    sp->tz = hb_opt_str(o, "timezone");
    if (!hb_tz_valid(sp->tz)) {
        *key = "timezone";
        snprintf(msg, len, "unknown time zone '%s' (an IANA name like Europe/Berlin)", sp->tz);
        return HB_ECONFIG;
    }
    sp->table = hb_opt_str(o, "table");
    sp->max_memory = isnan(hb_opt_num(o, "max_memory")) ? 0 : hb_opt_num(o, "max_memory"); /* 0: the job's */
    if (hb_colmap_parse(hb_opt_str(o, "columns"), &sp->cols, msg, len)) {
        *key = "columns";
        return HB_ECONFIG;
    }
    const char *names[3] = {"device", "time", "value"};
    char *dst[3] = {sp->dev, sp->time, sp->value};
    for (int i = 0; i < 3; i++) {
        const char *n = hb_opt_str(o, names[i]);
        if (!*n || strlen(n) >= 64) {
            *key = names[i];
            snprintf(msg, len, "%s: a column name of 1 to 63 bytes", names[i]);
            return HB_ECONFIG;
        }
        snprintf(dst[i], 64, "%s", n);
    }
    return 0;
}

/* Not collective. The job-file check: every option rule, before any data is read. */
static int episodes_validate(const hb_optset *o, const char **key, char *msg, size_t len)
{
    ep_spec sp;
    return ep_spec_parse(o, &sp, key, msg, len);
}

/* ---- the dictionary of string ids ---- */

static int dict_grow(ep_dict *d)
{
    size_t cap = d->mask ? (d->mask + 1) * 2 : 1024;
    uint64_t *h = calloc(cap, sizeof *h), *off = malloc(cap * sizeof *off);
    uint32_t *len = malloc(cap * sizeof *len);
    if (!h || !off || !len) {
        free(h), free(off), free(len);
        return hb_err_set(HB_EINTERNAL, "episodes", "out of memory for the device names");
    }
    for (size_t i = 0; d->mask && i <= d->mask; i++) {
        if (!d->hash[i]) continue;
        size_t j = hb_mix64(d->hash[i]) & (cap - 1);
        while (h[j]) j = (j + 1) & (cap - 1);
        h[j] = d->hash[i], off[j] = d->off[i], len[j] = d->len[i];
    }
    free(d->hash), free(d->off), free(d->len);
    d->hash = h, d->off = off, d->len = len, d->mask = cap - 1;
    return 0;
}

size_t ep_dict_find(const ep_dict *d, uint64_t h)
{
    if (!d->mask) return (size_t)-1;
    h = h ? h : 1;
    for (size_t j = hb_mix64(h) & d->mask;; j = (j + 1) & d->mask) {
        if (!d->hash[j]) return (size_t)-1;
        if (d->hash[j] == h) return j;
    }
}

int ep_dict_add(ep_dict *d, uint64_t h, const char *s, uint32_t len)
{
    h = h ? h : 1;
    size_t j = ep_dict_find(d, h);
    if (j != (size_t)-1) {
        if (!s) return 0;
        return d->len[j] == len && memcmp(d->bytes + d->off[j], s, len) == 0 ? 0 : 1;
    }
    if ((d->n + 1) * 2 > d->mask + 1 && dict_grow(d)) return HB_EINTERNAL;
    if (s && hb_grow((void **)&d->bytes, &d->bcap, d->nbytes + len + 1, 1))
        return hb_err_set(HB_EINTERNAL, "episodes", "out of memory for the device names");
    for (j = hb_mix64(h) & d->mask; d->hash[j]; j = (j + 1) & d->mask) {
    }
    d->hash[j] = h, d->off[j] = d->nbytes, d->len[j] = s ? len : 0;
    if (s) memcpy(d->bytes + d->nbytes, s, len), d->nbytes += len;
    d->n++;
    return 0;
}

void ep_dict_free(ep_dict *d)
{
    free(d->hash), free(d->off), free(d->len), free(d->bytes);
    memset(d, 0, sizeof *d);
}

/* ---- setup ---- */

static void colname(const ep_state *s, const char *name, char *buf, size_t len)
{
    const char *t = hb_colmap_name(&s->sp.cols, name);
    if (strcmp(t, name) == 0) snprintf(buf, len, "'%s'", name);
    else snprintf(buf, len, "'%s' (table column '%s')", name, t);
}

/* Not collective. Sizes the columns for the unit: time steps as int32 for s and ms, int64
 * for us and ns; values as doubles unless setup finds float32 ones. */
static void time_steps(ep_state *s)
{
    s->own.tsz = s->sp.unit <= 1000 ? 4 : 8, s->own.vsz = 8;
    for (int d = 0; d < hb_size; d++) s->pend[d].c.tsz = s->own.tsz, s->pend[d].c.vsz = 8;
}

/* Collective. A new state with the step's options parsed (78 naming the key), its time
 * zone selected and its memory limit set: what setup and setup_parts share. */
static int new_state(hb_step_ctx *ctx, void **state)
{
    ep_state *s = hb_calloc(1, sizeof *s);
    if (!s) return HB_EINTERNAL;
    *state = s;
    s->ctx = ctx;
    s->src = ctx->input ? ctx->input : "the merged parts";
    s->nthreads = ctx->threads > 0 ? ctx->threads : 1;
    if (!(s->pend = hb_calloc((size_t)hb_size, sizeof *s->pend))) return HB_EINTERNAL;
    const char *key = NULL;
    char msg[512];
    if (ep_spec_parse(ctx->opts, &s->sp, &key, msg, sizeof msg)) return hb_err_set(HB_ECONFIG, key, "%s", msg);
    time_steps(s);
    HB_CALL(hb_agree(hb_tz_select(s->sp.tz)));
    if (s->sp.max_memory > 0) hb_mem_set_limit(s->sp.max_memory); /* the step's own limit, for this step */
    s->sp.max_memory = hb_mem_limit();
    return 0;
}

/* Collective. Opens the table, decides the device column's type, estimates the memory
 * of the rank's share of readings and refuses it beyond max_memory (65), and sizes the
 * buffers of a chunk; the same status on every rank. */
static int episodes_setup(hb_step_ctx *ctx, void **state)
{
    HB_CALL(hb_agree(new_state(ctx, state)));
    ep_state *s = *state;
    ep_spec *sp = &s->sp;
    const char *cols[3] = {hb_colmap_name(&sp->cols, sp->dev), hb_colmap_name(&sp->cols, sp->time),
                           hb_colmap_name(&sp->cols, sp->value)};
    HB_CALL(hb_agree(hb_table_open_any(ctx->in, sp->table, cols, 3, &s->tab)));
    s->col_dev = 0, s->col_time = 1, s->col_val = 2;
    ctx->n_rows = hb_table_rows(s->tab);
    ctx->n_chunks = (ctx->n_rows + ctx->chunk_rows - 1) / ctx->chunk_rows;

    char where[600], cn[400];
    snprintf(where, sizeof where, "%s:%s", ctx->input, sp->table);
    hb_col_kind kd = hb_table_kind(s->tab, s->col_dev);
    s->str_dev = kd == HB_COL_STRING, s->float_dev = kd == HB_COL_FLOAT;
    int rc = hb_table_check_unpacked(s->tab, s->col_dev); /* ids are integers as stored */
    if (rc == 0 && hb_table_kind(s->tab, s->col_time) == HB_COL_STRING) {
        colname(s, sp->time, cn, sizeof cn);
        rc = hb_err_set(HB_EDATA, where, "time column %s has string type; a number of %s since 1970-01-01 UTC is needed (text "
                        "times: parse them before writing, pandas.to_datetime; h5batch import reads ISO 8601 and D.M.YYYY, "
                        "--columns NAME:time:FORMAT any other)",
                        cn, sp->unit_name);
    } else if (rc == 0 && hb_table_kind(s->tab, s->col_val) == HB_COL_STRING) {
        colname(s, sp->value, cn, sizeof cn);
        rc = hb_err_set(HB_EDATA, where, "value column %s has string type; readings must be numeric", cn);
    }
    if (hb_table_col_attr_str(s->tab, s->col_val, "units", s->units, sizeof s->units) != 0) s->units[0] = '\0';
    const char *unit = NULL;
    if (rc == 0) rc = hb_table_time_unit(s->tab, s->col_time, hb_opt_str(ctx->opts, "time_unit"), &unit);
    if (unit) sp->unit_name = unit, sp->unit = hb_time_unit_per_s(unit), time_steps(s);
    HB_CALL(hb_agree(rc));
    /* integer ids and float values are read as stored; float32 values are kept as floats
     * (exact), 4 bytes a reading instead of 8 */
    const hb_raw_kind dk = hb_table_raw_kind(s->tab, s->col_dev), vk = hb_table_raw_kind(s->tab, s->col_val);
    s->dev_raw = !s->str_dev && (dk == HB_RAW_I32 || dk == HB_RAW_U32 || dk == HB_RAW_I64) ? (int)dk : HB_RAW_OTHER;
    s->val_raw = vk == HB_RAW_F32 || vk == HB_RAW_F64 ? (int)vk : HB_RAW_OTHER;
    s->own.vsz = vk == HB_RAW_F32 ? 4 : 8;
    for (int d = 0; d < hb_size; d++) s->pend[d].c.vsz = s->own.vsz;

    /* the rank's share of the readings, if the devices spread evenly, as finalize holds
     * them (steps and values; see ep_bytes_per_reading), and the chunk buffers */
    const double share = (double)ctx->n_rows / hb_size * (double)ep_bytes_per_reading(&s->own);
    const int64_t rows_per_chunk = ctx->chunk_rows < ctx->n_rows ? ctx->chunk_rows : (ctx->n_rows > 0 ? ctx->n_rows : 1);
    /* the chunk's columns, its runs, the regrouped copy; at several ranks the readings
     * staged for the others between two exchanges, and the exchange's send buffers */
    const double per = (double)ep_bytes_per_reading(&s->own);
    const double chunk = (double)rows_per_chunk * (8 + 8 + 8 + 8 + 8 + 1 + 4 + 24 + 24 + 16 + 12 + (s->str_dev ? 40 : 0)) +
                         (hb_size > 1 ? (double)rows_per_chunk * (EXCHANGE_EVERY + 1) * per : 0);
    /* with a scratch folder, readings beyond the budget are spilled (docs/spill.md): only
     * the chunk buffers and room for two chunks' readings and the runs' read buffers
     * must fit; what is left is the budget of the owned readings */
    const int spill = hb_spill_dir() != NULL;
    const double least = 2.0 * (double)rows_per_chunk * (per + 40) + 4.0 * (double)hb_spill_reader_bytes(24);
    if (spill) s->budget = sp->max_memory - chunk;
    /* the message names the larger part: the readings (more ranks share them) or the
     * chunk buffers (chunk_rows sets them, whatever the ranks) */
    const int spilled = spill && least < share;
    const double kept = spilled ? least : share;
    char cause[240];
    if (spilled)
        snprintf(cause, sizeof cause, "room for two chunks' readings %.1f MB, the rest spilled; chunk buffers of %lld rows %.1f MB",
                 kept / 1e6, (long long)rows_per_chunk, chunk / 1e6);
    else
        snprintf(cause, sizeof cause, "%lld readings at %d rank%s, %.0f bytes a reading: %.1f MB; chunk buffers of %lld rows %.1f MB",
                 (long long)ctx->n_rows, hb_size, hb_size == 1 ? "" : "s", per, kept / 1e6, (long long)rows_per_chunk,
                 chunk / 1e6);
    HB_CALL(hb_agree(hb_mem_reserve(kept + chunk, where, "the readings of the rank's devices and the chunk buffers", cause,
                                    spilled || chunk >= kept ? "lower chunk_rows" : "run on more ranks")));

    const size_t cr = (size_t)rows_per_chunk;
    const int P = hb_size;
    s->kbuf = hb_malloc(cr * 8), s->tbuf = hb_malloc(cr * 8), s->vbuf = hb_malloc(cr * 8);
    s->dtmp = s->float_dev ? hb_malloc(cr * 8) : NULL;
    if (s->val_raw != HB_RAW_OTHER && !(s->vraw = hb_malloc(cr * 8))) rc = HB_EINTERNAL;
    s->ok = hb_malloc(cr), s->dest = hb_malloc(cr * sizeof *s->dest);
    if (!s->kbuf || !s->tbuf || !s->vbuf || (s->float_dev && !s->dtmp) || !s->ok || !s->dest) rc = HB_EINTERNAL;
    if (rc == 0) rc = hb_xchg_init(&s->xr, XCHG_BLOCK);
    if (rc == 0) rc = hb_xchg_init(&s->xu, XCHG_BLOCK);
    if (rc == 0) rc = hb_xchg_init(&s->xs, XCHG_SBLOCK);
    s->chunk_cap = cr;
    if (rc == 0 && !(s->crun = hb_malloc(cr * sizeof *s->crun))) rc = HB_EINTERNAL;
    if (rc == 0 && !(s->cdt = hb_malloc(cr * s->own.tsz))) rc = HB_EINTERNAL;
    if (rc == 0 && P > 1) {
        rc = hb_xchg_reserve(&s->st, &s->stcap, cr + P * XCHG_BLOCK, s->own.tsz);
        if (rc == 0) rc = hb_xchg_reserve(&s->sv, &s->svcap, cr + P * XCHG_BLOCK, s->own.vsz);
    }
    /* room for the rank's share and a little more, so that the readings are not copied as
     * they grow (untouched pages of it cost nothing) */
    size_t expect = (size_t)(ctx->n_rows / hb_size) + (size_t)(ctx->n_rows / hb_size / 8) + 1024;
    if (spill && (double)expect > s->budget * 0.6 / per + (double)cr) expect = (size_t)(s->budget * 0.6 / per) + cr;
    if (rc == 0) rc = ep_cols_reserve(&s->own, expect, 1024);
    return hb_agree(rc);
}

/* ---- map ---- */

/* Not collective. Reads the device column of rows [start, start+n) as keys; a missing
 * id clears ok. */
static int read_devices(ep_state *s, int64_t start, int64_t n)
{
    int64_t *k = s->kbuf;
    if (s->str_dev) {
        HB_CALL(hb_table_read_str(s->tab, s->col_dev, start, n, &s->strs));
        const char *b = s->strs.bytes;
        const uint64_t *off = s->strs.off;
#pragma omp parallel for schedule(static) num_threads(s->nthreads)
        for (int64_t i = 0; i < n; i++) k[i] = (int64_t)XXH3_64bits(b + off[i], (size_t)(off[i + 1] - off[i]));
        const uint8_t *miss = hb_table_str_missing(s->tab, s->col_dev); /* pandas' NaN: no device */
        for (int64_t i = 0; miss && i < n; i++)
            if (miss[i]) s->ok[i] = 0;
        return 0;
    }
    if (!s->float_dev) {
        HB_CALL(hb_table_read(s->tab, s->col_dev, start, n, HB_I64, k));
        for (int64_t i = 0; i < n; i++)
            if (k[i] == MISSING) s->ok[i] = 0;
        return 0;
    }
    HB_CALL(hb_table_read(s->tab, s->col_dev, start, n, HB_F64, s->dtmp));
    for (int64_t i = 0; i < n; i++) {
        double d = s->dtmp[i];
        if (isnan(d)) {
            s->ok[i] = 0;
            continue;
        }
        if (d != floor(d) || !(d > -9223372036854775808.0 && d < 9223372036854775808.0)) {
            char cn[400], where[600];
            colname(s, s->sp.dev, cn, sizeof cn);
            snprintf(where, sizeof where, "%s:%s", s->src, s->sp.table);
            return hb_err_set(HB_EDATA, where, "device column %s, row %lld: %g is not an integer (device ids are "
                              "integers or strings)", cn, (long long)(start + i), d);
        }
        k[i] = (int64_t)d;
    }
    return 0;
}

/* Not collective. 65 when a rank's readings (need of them) would take more than
 * max_memory at finalize: a device or a rank with far more than its share. */
static int check_memory(const ep_state *s, size_t need)
{
    const double bytes = (double)need * (double)ep_bytes_per_reading(&s->own);
    if (bytes <= s->sp.max_memory) return 0; /* every chunk: the message only when it fails */
    char cause[96], n[32];
    snprintf(cause, sizeof cause, "rank %d holds %s readings of its devices", hb_rank, hb_fmt_count(n, need));
    return hb_mem_reserve(bytes, s->src, "the readings at finalize", cause, "run on more ranks");
}

/* Not collective. Room for more owned readings: with a budget, what is owned is spilled
 * when it and they would pass it; without (no scratch folder: merge) 65 as check_memory. */
static int keep_room(ep_state *s, size_t more)
{
    if (s->budget > 0 && hb_spill_dir()) return ep_spill_check(s, more);
    return check_memory(s, s->own.n + more);
}

/* Not collective. Asks for huge pages for the whole 2 MB pages inside [p, p + bytes): a
 * rank's readings are touched once each as they arrive, and one fault per 2 MB instead
 * of per 4 kB is most of that cost (a hint: nothing changes where the kernel says no). */
static void huge_pages(void *p, size_t bytes)
{
    const uintptr_t H = (uintptr_t)2 << 20, a = ((uintptr_t)p + H - 1) & ~(H - 1), b = ((uintptr_t)p + bytes) & ~(H - 1);
    if (bytes >= 2 * H && b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
}

int ep_cols_reserve(ep_cols *c, size_t n, size_t nrun)
{
    if (!c->dt || c->n + n > c->cap) { /* dt and v grow together */
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->n + n) cap *= 2;
        void *dt = hb_realloc(c->dt, cap * c->tsz);
        if (dt) c->dt = dt;
        void *v = dt ? hb_realloc(c->v, cap * c->vsz) : NULL;
        if (!v) return hb_err_set(HB_EINTERNAL, "episodes", "out of memory for %zu readings", c->n + n);
        c->v = v, c->cap = cap;
        huge_pages(c->dt, cap * c->tsz), huge_pages(c->v, cap * c->vsz);
    }
    if (hb_grow((void **)&c->run, &c->runcap, c->nrun + (nrun ? nrun : 1), sizeof *c->run))
        return hb_err_set(HB_EINTERNAL, "episodes", "out of memory for %zu readings", c->n + n);
    return 0;
}

void ep_cols_free(ep_cols *c)
{
    const size_t tsz = c->tsz, vsz = c->vsz;
    free(c->dt), free(c->v), free(c->run);
    memset(c, 0, sizeof *c);
    c->tsz = tsz, c->vsz = vsz;
}

/* Not collective. Appends encoded run r (dt, v) to c (room reserved). */
static inline void cols_copy(ep_cols *c, ep_run r, const void *dt, const void *v)
{
    memcpy((char *)c->dt + c->n * c->tsz, dt, r.n * c->tsz);
    memcpy((char *)c->v + c->n * c->vsz, v, r.n * c->vsz);
    c->n += r.n;
    c->run[c->nrun++] = r;
}

/* Whether time t can be stored as a step from t0 in a signed integer of at most lim. */
static inline int fits(int64_t t, int64_t t0, uint64_t lim)
{
    return t >= t0 ? (uint64_t)t - (uint64_t)t0 <= lim : (uint64_t)t0 - (uint64_t)t <= lim + 1;
}

/* The largest step a column of tsz-byte steps holds. */
static inline uint64_t step_limit(size_t tsz) { return tsz == 4 ? INT32_MAX : INT64_MAX; }

/* Bytes one string id takes in the stream: hash, length, bytes, padded to 8. */
static inline size_t str_entry(uint32_t len) { return (12 + (size_t)len + 7) & ~(size_t)7; }

static void put_entry(char *p, uint64_t h, const char *b, uint32_t len)
{
    memcpy(p, &h, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, b, len);
    memset(p + 12 + len, 0, str_entry(len) - 12 - len);
}

/* The entry at p (put_entry's): its hash and length; returns the bytes it takes. */
static size_t get_entry(const char *p, uint64_t *h, uint32_t *len)
{
    memcpy(h, p, 8);
    memcpy(len, p + 8, 4);
    return str_entry(*len);
}

/* Not collective. Appends the string entry (h, b[0..len)) to destination d's pending stream. */
static int pend_string(ep_state *s, int d, uint64_t h, const char *b, uint32_t len)
{
    ep_pend *q = &s->pend[d];
    if (hb_grow((void **)&q->str, &q->strcap, q->nstr + str_entry(len), 1))
        return hb_err_set(HB_EINTERNAL, "episodes", "out of memory for the device names");
    put_entry(q->str + q->nstr, h, b, len);
    q->nstr += str_entry(len);
    return 0;
}

/* Not collective. Stages the string ids of the chunk's valid rows that this rank has not
 * sent before: to their owner's pending stream, or straight into the names when this
 * rank owns them. */
static int stage_strings(ep_state *s, int64_t n)
{
    const char *b = s->strs.bytes;
    const uint64_t *off = s->strs.off;
    for (int64_t i = 0; i < n; i++) {
        if (!s->ok[i]) continue;
        uint64_t h = (uint64_t)s->kbuf[i];
        uint32_t len = (uint32_t)(off[i + 1] - off[i]);
        if (s->dest[i] == hb_rank) {
            int rc = ep_dict_add(&s->names, h, b + off[i], len);
            if (rc == 1)
                return hb_err_set(HB_EDATA, s->src, "device ids '%.*s' and another have the same 64-bit hash",
                                  (int)len, b + off[i]);
            HB_CALL(rc);
            continue;
        }
        if (ep_dict_find(&s->sent, h) != (size_t)-1) continue;
        HB_CALL(ep_dict_add(&s->sent, h, NULL, 0));
        HB_CALL(pend_string(s, s->dest[i], h, b + off[i], len));
    }
    return 0;
}

/* Not collective. Regroups the chunk's m valid readings (dt, v and their runs run[0..*nr),
 * shorter than a few readings: devices interleaved row by row) in place, by device in
 * order of the device's first row, each device's readings in row order, cut into runs
 * where a time lies too far from its run's first; the scratch is kept for the next chunk. */
static int regroup(ep_state *s, void *dt, void *v, ep_run *run, size_t m, size_t *nr)
{
    const size_t R = *nr, cr = s->chunk_cap, vsz = s->own.vsz, tsz = s->own.tsz;
    const uint64_t lim = step_limit(tsz);
    size_t cap = 1024;
    while (cap < 2 * R) cap *= 2;
    if (cap > s->hcap) {
        free(s->hkey), free(s->hidx);
        s->hkey = hb_malloc(cap * sizeof *s->hkey), s->hidx = hb_malloc(cap * sizeof *s->hidx);
        s->hcap = s->hkey && s->hidx ? cap : 0;
    }
    if (!s->gt) s->gt = hb_malloc(cr * sizeof *s->gt), s->gv = hb_malloc(cr * sizeof(double));
    if (!s->grun) s->grun = hb_malloc(cr * sizeof *s->grun), s->gpos = hb_malloc(cr * sizeof *s->gpos);
    if (!s->hcap || !s->gt || !s->gv || !s->grun || !s->gpos)
        return hb_err_set(HB_EINTERNAL, "episodes", "out of memory grouping a chunk's readings");
    uint64_t *hk = s->hkey;
    uint32_t *hi = s->hidx;
    memset(hi, 0xff, cap * sizeof *hi);
    ep_run *g = s->grun; /* per device of the chunk: its key and readings */
    int *idx = s->dest;  /* per run: its device's place among the chunk's */
    size_t nd = 0;
    for (size_t r = 0; r < R; r++) {
        size_t j = hb_mix64(run[r].dev) & (cap - 1);
        while (hi[j] != UINT32_MAX && hk[j] != run[r].dev) j = (j + 1) & (cap - 1);
        if (hi[j] == UINT32_MAX) hk[j] = run[r].dev, hi[j] = (uint32_t)nd, g[nd++] = (ep_run){run[r].dev, 0, 0};
        idx[r] = (int)hi[j];
        g[hi[j]].n += run[r].n;
    }
    size_t *pos = s->gpos;
    for (size_t d = 0, at = 0; d < nd; d++) pos[d] = at, at += g[d].n;
    char *gv = s->gv;
    for (size_t r = 0, at = 0; r < R; at += run[r].n, r++) {
        const size_t p = pos[idx[r]], n = run[r].n;
        for (size_t i = 0; i < n; i++) s->gt[p + i] = run[r].t0 + ep_dt_get(dt, tsz, at + i);
        memcpy(gv + p * vsz, (const char *)v + at * vsz, n * vsz);
        pos[idx[r]] = p + n;
    }
    memcpy(v, gv, m * vsz);
    const int64_t *t = s->gt;
    size_t n = 0;
    for (size_t d = 0, at = 0; d < nd; at += g[d].n, d++)
        for (size_t i = at; i < at + g[d].n; i++) {
            if (i > at && fits(t[i], run[n - 1].t0, lim)) run[n - 1].n++;
            else run[n++] = (ep_run){g[d].dev, t[i], 1};
            ep_dt_put(dt, tsz, i, t[i] - run[n - 1].t0);
        }
    *nr = n;
    return 0;
}

/* Not collective. Reads chunk c, keeps its valid readings as runs of one device: the
 * owned ones here, the others staged for their owners. The row loop encodes them as
 * they are kept (time steps, values of the stored width): at 1 rank straight into the
 * owned columns, else into the chunk's, copied by run to their destinations. */
static int episodes_map(void *state, int64_t c)
{
    ep_state *s = state;
    hb_step_ctx *ctx = s->ctx;
    int64_t start, n;
    hb_chunk_range(c, ctx->chunk_rows, ctx->n_rows, &start, &n);
    memset(s->ok, 1, (size_t)n);
    /* integer ids and float32/float64 values are read as stored and converted in the loop
     * below (no pass of their own); other types through hb_table_read */
    if (s->dev_raw) HB_CALL(hb_table_read_raw(s->tab, s->col_dev, start, n, s->kbuf));
    else HB_CALL(read_devices(s, start, n));
    /* times in their unit, checked to lie in the years 1900-2200 (65 suggesting the unit) */
    HB_CALL(hb_table_read_time(s->tab, s->col_time, start, n, s->sp.unit, s->tbuf, NULL));
    if (s->val_raw) HB_CALL(hb_table_read_raw(s->tab, s->col_val, start, n, s->vraw));
    else HB_CALL(hb_table_read(s->tab, s->col_val, start, n, HB_F64, s->vbuf));
    uint64_t missing = 0, invalid = 0;
    const int P = hb_size;
    const size_t vsz = s->own.vsz, tsz = s->own.tsz;
    const int64_t *k = s->kbuf, *t = s->tbuf;
    uint8_t *ok = s->ok;
    void *vin = s->val_raw ? s->vraw : (void *)s->vbuf;
    void *dt = s->cdt;
    void *vout = vin; /* v[m] is written after v[i], i >= m, is read */
    ep_run *run = s->crun;
    if (P == 1) {
        HB_CALL(keep_room(s, (size_t)n));
        HB_CALL(ep_cols_reserve(&s->own, (size_t)n, (size_t)n));
        dt = (char *)s->own.dt + s->own.n * tsz, vout = (char *)s->own.v + s->own.n * vsz, run = s->own.run + s->own.nrun;
    }
    size_t m = 0, nr = 0;
#define MAP_ROWS(KT, VT, TT, KMISSING)                                                                                 \
    do {                                                                                                               \
        const KT *kin = (const KT *)(const void *)k;                                                                   \
        const VT *vi = vin;                                                                                            \
        VT *vo = vout;                                                                                                 \
        TT *dto = dt;                                                                                                  \
        const uint64_t lim = step_limit(sizeof(TT));                                                                   \
        int64_t t0 = 0;                                                                                                \
        for (int64_t i = 0; i < n; i++) {                                                                              \
            const uint64_t key = (uint64_t)(int64_t)kin[i];                                                            \
            const int64_t ti = t[i];                                                                                   \
            if (ti == MISSING || !ok[i] || (KMISSING)) {                                                               \
                ok[i] = 0;                                                                                             \
                missing++;                                                                                             \
                continue;                                                                                              \
            }                                                                                                          \
            const VT x = vi[i];                                                                                        \
            if (!isfinite(x)) {                                                                                        \
                ok[i] = 0;                                                                                             \
                invalid++;                                                                                             \
                continue;                                                                                              \
            }                                                                                                          \
            if (nr && run[nr - 1].dev == key && fits(ti, t0, lim)) run[nr - 1].n++;                                    \
            else run[nr++] = (ep_run){key, ti, 1}, t0 = ti;                                                            \
            dto[m] = (TT)(ti - t0);                                                                                    \
            vo[m] = x + (VT)0; /* -0.0 becomes +0.0: equal values must have equal bits */                              \
            m++;                                                                                                       \
        }                                                                                                              \
    } while (0)
    const int dk = s->dev_raw;
#define MAP_KINDS(VT, TT)                                                                                              \
    do {                                                                                                               \
        if (dk == HB_RAW_I32) MAP_ROWS(int32_t, VT, TT, 0);                                                            \
        else if (dk == HB_RAW_U32) MAP_ROWS(uint32_t, VT, TT, 0);                                                      \
        else if (dk == HB_RAW_I64) MAP_ROWS(int64_t, VT, TT, kin[i] == MISSING);                                       \
        else MAP_ROWS(int64_t, VT, TT, 0); /* read_devices cleared ok where missing */                                 \
    } while (0)
    if (vsz == 4 && tsz == 4) MAP_KINDS(float, int32_t);
    else if (vsz == 4) MAP_KINDS(float, int64_t);
    else if (tsz == 4) MAP_KINDS(double, int32_t);
    else MAP_KINDS(double, int64_t);
#undef MAP_KINDS
#undef MAP_ROWS
    if (s->str_dev) {
        for (int64_t i = 0; i < n; i++)
            if (ok[i]) s->dest[i] = ep_owner((uint64_t)k[i], P);
        HB_CALL(stage_strings(s, n));
    }
    s->rows_total += (uint64_t)n, s->rows_missing += missing, s->rows_invalid += invalid;
    if (nr > 64 && nr > m / 8) HB_CALL(regroup(s, dt, vout, run, m, &nr)); /* devices interleaved */
    if (P == 1) {
        if (s->budget <= 0 || !hb_spill_dir()) HB_CALL(check_memory(s, s->own.n + m));
        s->own.n += m, s->own.nrun += nr;
        return 0;
    }
    /* keep this rank's runs, and stage the others' for their owners */
    size_t *cnt = s->xr.rcount, *ncnt = s->xu.rcount; /* scratch: set again by the exchange */
    memset(cnt, 0, (size_t)P * sizeof *cnt);
    memset(ncnt, 0, (size_t)P * sizeof *ncnt);
    int *dest = s->dest;
    for (size_t r = 0; r < nr; r++) {
        int d = dest[r] = ep_owner(run[r].dev, P);
        cnt[d] += run[r].n, ncnt[d]++;
    }
    HB_CALL(keep_room(s, cnt[hb_rank]));
    for (int d = 0; d < P; d++)
        if (ncnt[d]) HB_CALL(ep_cols_reserve(d == hb_rank ? &s->own : &s->pend[d].c, cnt[d], ncnt[d]));
    for (size_t r = 0, at = 0; r < nr; at += run[r].n, r++) {
        const int d = dest[r];
        cols_copy(d == hb_rank ? &s->own : &s->pend[d].c, run[r], (const char *)dt + at * tsz,
                  (const char *)vout + at * vsz);
    }
    return 0;
}

/* ---- exchange ---- */

/* Not collective. Adds the string entries of stream p[0..n) to the names (each owner's
 * ids only). */
static int take_strings(ep_state *s, const char *p, size_t n)
{
    for (size_t i = 0; i + 12 <= n;) {
        uint64_t h;
        uint32_t len;
        const size_t e = get_entry(p + i, &h, &len);
        if (i + e > n) break;
        int rc = ep_dict_add(&s->names, h, p + i + 12, len);
        if (rc == 1)
            return hb_err_set(HB_EDATA, s->src, "device ids '%.*s' and another have the same 64-bit hash",
                              (int)len, p + i + 12);
        HB_CALL(rc);
        i += e;
    }
    return 0;
}

/* Collective. Sends every rank's pending runs, their time steps and values, and string
 * ids to their owners, which keep them: the runs first, then the steps and values
 * straight into the owned columns, behind the runs' readings. The pending buffers are
 * kept for the next readings. */
static int exchange_now(ep_state *s)
{
    const int P = hb_size;
    hb_xchg *x = &s->xr, *xu = &s->xu, *xs = &s->xs;
    for (int d = 0; d < P; d++) {
        x->scount[d] = s->pend[d].c.n, xu->scount[d] = s->pend[d].c.nrun, xs->scount[d] = s->pend[d].nstr;
    }
    const size_t vsz = s->own.vsz, tsz = s->own.tsz;
    int rc = hb_xchg_layout(x);
    if (rc == 0) rc = hb_xchg_layout(xu);
    if (rc == 0) rc = hb_xchg_layout(xs);
    if (rc == 0) rc = hb_xchg_reserve(&s->st, &s->stcap, x->stotal, tsz);
    if (rc == 0) rc = hb_xchg_reserve(&s->sv, &s->svcap, x->stotal, vsz);
    if (rc == 0) rc = hb_xchg_reserve((void **)&s->srun, &s->sruncap, xu->stotal, sizeof *s->srun);
    if (rc == 0) rc = hb_xchg_reserve((void **)&s->sstr, &s->sscap, xs->stotal, 1);
    for (int d = 0; rc == 0 && d < P; d++) {
        ep_pend *q = &s->pend[d];
        if (q->c.n) {
            memcpy((char *)s->st + x->sdispl[d] * tsz, q->c.dt, q->c.n * tsz);
            memcpy((char *)s->sv + x->sdispl[d] * vsz, q->c.v, q->c.n * vsz);
        }
        if (q->c.nrun) memcpy(s->srun + xu->sdispl[d], q->c.run, q->c.nrun * sizeof *q->c.run);
        if (q->nstr) memcpy(s->sstr + xs->sdispl[d], q->str, q->nstr);
        q->c.n = q->c.nrun = q->nstr = 0;
    }
    HB_CALL(hb_agree(rc));
    const hb_xchg_array a = {s->srun, (void **)&s->rrun, &s->rruncap, sizeof *s->srun};
    HB_CALL(hb_xchg_run(xu, &a, 1));
    HB_CALL(hb_xchg_counts(x));
    rc = keep_room(s, x->received);
    if (rc == 0) rc = ep_cols_reserve(&s->own, x->rtotal, xu->received);
    HB_CALL(hb_agree(rc));
    ep_cols *o = &s->own;
    char *to = (char *)o->dt + o->n * tsz;
    HB_CALL(hb_xchg_move(x, s->st, to, tsz));
    hb_xchg_compact(x, to, tsz);
    char *vo = (char *)o->v + o->n * vsz;
    HB_CALL(hb_xchg_move(x, s->sv, vo, vsz));
    hb_xchg_compact(x, vo, vsz);
    size_t got = 0;
    for (size_t r = 0; r < xu->received; r++) {
        got += s->rrun[r].n;
        o->run[o->nrun++] = s->rrun[r];
    }
    o->n += x->received;
    rc = got == x->received ? 0 : hb_err_set(HB_EINTERNAL, "episodes", "the exchange's runs do not match its readings");
    HB_CALL(hb_agree(rc));
    if (s->str_dev) {
        const hb_xchg_array b = {s->sstr, (void **)&s->rstr, &s->rscap, 1};
        HB_CALL(hb_xchg_run(xs, &b, 1));
        rc = take_strings(s, s->rstr, s->xs.received);
    }
    return hb_agree(rc);
}

/* Collective. After every round: every EXCHANGE_EVERY-th call exchanges what the ranks
 * staged since the last (finalize exchanges the rest). Fewer, larger exchanges: each is a
 * dozen collective calls, and on a loaded machine a rank that waits in one spins while
 * the other waits for a core. Every rank calls it as often, so all agree on when. */
static int episodes_exchange(void *state)
{
    ep_state *s = state;
    if (hb_size == 1 || ++s->xcalls % EXCHANGE_EVERY) return 0;
    return exchange_now(s);
}

/* ---- save and load ---- */

/* Saved state: a header; the owned readings ordered by (device, time, value) and stored
 * by columns: per device its key (8 bytes) and its number of readings (a varint); per
 * reading its time, the first of a device as a zigzag varint, the others as the step
 * since the device's previous reading (a varint: a reading every 15 s takes 1 byte, not
 * 8); then every reading's value (8 bytes); then the owned string ids as a stream. */
typedef struct saved {
    char magic[8]; /* "HBEPIS2" */
    uint64_t rows_total, rows_missing, rows_invalid, n_records, n_devices, dev_bytes, time_bytes, str_bytes;
} saved;

/* Not collective. This rank's counters, readings and string ids as bytes (see saved),
 * the devices in ascending key order, each one's readings in (time, value) order as
 * finalize orders them (two readings that compare equal are equal bit for bit). */
static int save_readings(ep_state *s, void **buf, size_t *len);

/* Saved state with spilled runs (version 3, "HBEPIS3"): the version 2 state of what is
 * held in memory, then the references of the runs (ep_ref each, every run fsynced
 * first) and their number as a uint64. A partial's state never refers to a run: the runs'
 * readings are read back and saved with the rest (the same file as without spill). */
static int episodes_save(void *state, void **buf, size_t *len)
{
    ep_state *s = state;
    if (s->nruns && s->ctx->saving_partial) HB_CALL(ep_runs_batches(s, 0, NULL, NULL));
    HB_CALL(save_readings(s, buf, len));
    if (!s->nruns) return 0;
    for (size_t i = 0; i < s->nruns; i++) HB_CALL(hb_spill_sync(&s->runs[i].run)); /* durable before it is named */
    const size_t extra = s->nruns * sizeof *s->runs + sizeof(uint64_t);
    unsigned char *p = hb_realloc(*buf, *len + extra);
    if (!p) return free(*buf), *buf = NULL, HB_EINTERNAL;
    memcpy(p, "HBEPIS3", 8);
    memcpy(p + *len, s->runs, s->nruns * sizeof *s->runs);
    const uint64_t n = s->nruns;
    memcpy(p + *len + s->nruns * sizeof *s->runs, &n, sizeof n);
    *buf = p, *len += extra;
    return 0;
}

/* Not collective. The version 2 state of the readings held in memory. */
static int save_readings(ep_state *s, void **buf, size_t *len)
{
    /* the staged readings are this rank's too: saved with the owned ones, behind them for
     * the save (a restart sends every saved reading to its owner) */
    const size_t n0 = s->own.n, r0 = s->own.nrun;
    size_t pn = 0, pr = 0, ps = 0;
    for (int d = 0; d < hb_size; d++) pn += s->pend[d].c.n, pr += s->pend[d].c.nrun, ps += s->pend[d].nstr;
    HB_CALL(ep_cols_reserve(&s->own, pn, pr));
    for (int d = 0; d < hb_size; d++) {
        const ep_cols *q = &s->pend[d].c;
        for (size_t r = 0, at = 0; r < q->nrun; at += q->run[r].n, r++)
            cols_copy(&s->own, q->run[r], (const char *)q->dt + at * q->tsz, (const char *)q->v + at * q->vsz);
    }
    const size_t n = s->own.n;
    ep_order o;
    ep_scratch sc = {0};
    int rc = ep_order_build(&s->own, &o);
    if (rc) return s->own.n = n0, s->own.nrun = r0, rc;
    size_t sb = ps, db = 0, tb = 0;
    const int64_t *t;
    const double *v;
    for (size_t j = 0; s->names.mask && j <= s->names.mask; j++)
        if (s->names.hash[j]) sb += str_entry(s->names.len[j]);
    for (size_t d = 0; d < o.nd && rc == 0; d++) {
        const size_t m = o.dev[d].n;
        if ((rc = ep_series(&s->own, &o, d, &sc, &t, &v))) break;
        tb += hb_varint_len(hb_zigzag(t[0]));
        for (size_t k = 1; k < m; k++) tb += hb_varint_len((uint64_t)t[k] - (uint64_t)t[k - 1]);
        db += 8 + hb_varint_len(m);
    }
    size_t bytes = sizeof(saved) + db + tb + 8 * n + sb;
    unsigned char *p = rc ? NULL : hb_malloc(bytes);
    if (rc == 0 && !p) rc = HB_EINTERNAL;
    if (rc == 0) {
        saved h = {"HBEPIS2", s->rows_total, s->rows_missing, s->rows_invalid, n, o.nd, db, tb, sb};
        memcpy(p, &h, sizeof h);
        unsigned char *qd = p + sizeof h, *qt = qd + db, *qv = qt + tb;
        char *q = (char *)(qv + 8 * n);
        for (size_t d = 0; d < o.nd && rc == 0; d++) {
            const size_t m = o.dev[d].n;
            if ((rc = ep_series(&s->own, &o, d, &sc, &t, &v))) break;
            memcpy(qd, &o.dev[d].dev, 8);
            qd = hb_varint_put(qd + 8, m);
            qt = hb_varint_put(qt, hb_zigzag(t[0]));
            /* steps as unsigned: they fit even between times 300 years apart in nanoseconds */
            for (size_t k = 1; k < m; k++) qt = hb_varint_put(qt, (uint64_t)t[k] - (uint64_t)t[k - 1]);
            memcpy(qv, v, 8 * m);
            qv += 8 * m;
        }
        for (size_t j = 0; s->names.mask && j <= s->names.mask; j++)
            if (s->names.hash[j]) {
                put_entry(q, s->names.hash[j], s->names.bytes + s->names.off[j], s->names.len[j]);
                q += str_entry(s->names.len[j]);
            }
        for (int d = 0; d < hb_size; d++)
            if (s->pend[d].nstr) memcpy(q, s->pend[d].str, s->pend[d].nstr), q += s->pend[d].nstr;
    }
    ep_order_free(&o);
    ep_scratch_free(&sc);
    s->own.n = n0, s->own.nrun = r0;
    if (rc) return free(p), rc;
    *buf = p;
    *len = bytes;
    return 0;
}

/* Not collective. Keeps the readings and string ids of a part saved by any rank of an
 * earlier run (or of a partial state) for the next exchange to send to their owners, and
 * adds its counters. */
static int episodes_load(void *state, const void *buf, size_t len)
{
    ep_state *s = state;
    saved h;
    if (len < sizeof h) return hb_err_set(HB_EDATA, "checkpoint", "episodes state of %zu bytes is too short", len);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, "HBEPIS3", 8) == 0) { /* version 2 and the runs it refers to */
        uint64_t nr;
        if (len < sizeof h + sizeof nr) goto bad;
        memcpy(&nr, (const char *)buf + len - sizeof nr, sizeof nr);
        if (nr == 0 || nr > (len - sizeof h - sizeof nr) / sizeof(ep_ref)) goto bad;
        len -= sizeof nr + (size_t)nr * sizeof(ep_ref);
        const char *rp = (const char *)buf + len;
        for (uint64_t i = 0; i < nr; i++) {
            ep_ref r;
            memcpy(&r, rp + i * sizeof r, sizeof r);
            if (!memchr(r.run.name, '\0', sizeof r.run.name) || strncmp(r.run.name, "spill-", 6) != 0 ||
                strchr(r.run.name, '/') || r.run.rec_size != 24 || r.run.key_shift != 1 || r.size < 1 || r.rank < 0 ||
                r.rank >= r.size)
                return hb_err_set(HB_EDATA, "checkpoint", "episodes state names a spilled run that is not one");
            HB_CALL(hb_spill_check(&r.run));
            HB_CALL(ep_runs_add(s, &r));
        }
        memcpy(h.magic, "HBEPIS2", 8);
    }
    const size_t body = len - sizeof h;
    if (memcmp(h.magic, "HBEPIS2", 8) != 0 || h.dev_bytes > body || h.time_bytes > body || h.str_bytes > body ||
        h.n_records > body / 8 || h.n_devices > h.dev_bytes / 9 ||
        body != h.dev_bytes + h.time_bytes + 8 * h.n_records + h.str_bytes)
        return hb_err_set(HB_EDATA, "checkpoint", "episodes state does not match this job's input");
    const size_t n = (size_t)h.n_records, sb = (size_t)h.str_bytes;
    const unsigned char *qd = (const unsigned char *)buf + sizeof h, *dend = qd + h.dev_bytes;
    const unsigned char *qt = dend, *tend = qt + h.time_bytes, *qv = tend;
    size_t m = 0;
    for (uint64_t d = 0; d < h.n_devices; d++) {
        uint64_t dev, c, u;
        if (dend - qd < 8) goto bad;
        memcpy(&dev, qd, 8), qd += 8;
        if (hb_varint_get(&qd, dend, &c) || c == 0 || c > n - m) goto bad;
        /* the device's readings go to its owner's columns: this rank's, or staged */
        const int owner = ep_owner(dev, hb_size);
        ep_cols *l = owner == hb_rank ? &s->own : &s->pend[owner].c;
        if (ep_cols_reserve(l, c, 1)) return HB_EINTERNAL;
        int64_t t = 0;
        for (uint64_t k = 0; k < c; k++, m++) {
            if (hb_varint_get(&qt, tend, &u)) goto bad;
            t = k ? (int64_t)((uint64_t)t + u) : hb_unzigzag(u); /* steps wrap as unsigned, never overflow */
            if (k == 0 || !fits(t, l->run[l->nrun - 1].t0, step_limit(l->tsz))) { /* a new run: the device's first, or a step too far */
                if (hb_grow((void **)&l->run, &l->runcap, l->nrun + 1, sizeof *l->run))
                    return hb_err_set(HB_EINTERNAL, "checkpoint", "out of memory loading %zu readings", n);
                l->run[l->nrun++] = (ep_run){dev, t, 0};
            }
            ep_run *r = &l->run[l->nrun - 1];
            double x;
            memcpy(&x, qv + 8 * m, 8);
            ep_dt_put(l->dt, l->tsz, l->n, t - r->t0);
            if (l->vsz == 4) { /* a restart of a job whose values are float32: every one is a float */
                float f = (float)x;
                if ((double)f != x)
                    return hb_err_set(HB_EDATA, "checkpoint", "episodes state: value %.17g is not one of this "
                                      "input's float32 values", x);
                ((float *)l->v)[l->n] = f;
            } else {
                ((double *)l->v)[l->n] = x;
            }
            l->n++, r->n++;
        }
    }
    if (m != n || qd != dend || qt != tend) goto bad;
    HB_CALL(keep_room(s, 0));
    const char *str = (const char *)qv + 8 * n;
    for (size_t i = 0; i + 12 <= sb;) {
        uint64_t hh;
        uint32_t len;
        const size_t e = get_entry(str + i, &hh, &len);
        if (e > sb - i) goto bad;
        int d = ep_owner(hh, hb_size);
        if (d == hb_rank) HB_CALL(take_strings(s, str + i, e));
        else HB_CALL(pend_string(s, d, hh, str + i + 12, len));
        i += e;
    }
    s->rows_total += h.rows_total, s->rows_missing += h.rows_missing, s->rows_invalid += h.rows_invalid;
    return 0;
bad:
    return hb_err_set(HB_EDATA, "checkpoint", "episodes state: the readings are damaged");
}

/* What setup learnt from the input that finalize depends on: whether device ids are
 * strings (labels) or integers, and the value column's units. The readings themselves,
 * the devices and the periods are in the saved records, so merging the records is
 * merging the inputs: a device whose readings lie in several parts has them all on its
 * owner before finalize orders them. */
typedef struct ep_desc {
    char magic[8]; /* "HBEPID1" */
    uint32_t str_dev, pad;
    char units[64];
} ep_desc;

/* Not collective. The description above, of this state. */
static int episodes_describe(void *state, void **buf, size_t *len)
{
    const ep_state *s = state;
    ep_desc *d = hb_calloc(1, sizeof *d);
    if (!d) return HB_EINTERNAL;
    memcpy(d->magic, "HBEPID1", 8);
    d->str_dev = (uint32_t)s->str_dev;
    memcpy(d->units, s->units, sizeof d->units);
    *buf = d;
    *len = sizeof *d;
    return 0;
}

/* Collective. The empty state of one run over the parts' inputs: every part must have
 * string ids or every part integer ones, and one value unit (65 naming the first part
 * that differs); the rows are the parts' sum. */
static int episodes_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    HB_CALL(hb_agree(new_state(ctx, state)));
    ep_state *s = *state;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        ep_desc d;
        if (parts[i].desc_len != sizeof d) {
            rc = hb_err_set(HB_EDATA, parts[i].path, "not an episodes partial of this version (description of %zu "
                            "bytes, %zu expected)", parts[i].desc_len, sizeof d);
            break;
        }
        memcpy(&d, parts[i].desc, sizeof d);
        d.units[sizeof d.units - 1] = '\0';
        if (memcmp(d.magic, "HBEPID1", 8) != 0 || d.str_dev > 1)
            rc = hb_err_set(HB_EDATA, parts[i].path, "its description is not an episodes description");
        else if (i == 0)
            s->str_dev = (int)d.str_dev, memcpy(s->units, d.units, sizeof s->units);
        else if ((int)d.str_dev != s->str_dev)
            rc = hb_err_set(HB_EDATA, parts[i].path, "its device ids are %s, those of %s %s", d.str_dev ? "strings" : "integers",
                            parts[0].path, s->str_dev ? "strings" : "integers");
        else if (strcmp(d.units, s->units) != 0)
            rc = hb_err_set(HB_EDATA, parts[i].path, "its values have units '%s', those of %s '%s'", d.units,
                            parts[0].path, s->units);
    }
    HB_CALL(hb_agree(rc));
    /* the rank's share of the readings, as setup estimates it for one run (no chunks) */
    char cause[160];
    snprintf(cause, sizeof cause, "%lld readings at %d ranks, %.0f bytes a reading", (long long)ctx->n_rows, hb_size,
             (double)ep_bytes_per_reading(&s->own));
    HB_CALL(hb_agree(hb_mem_reserve((double)ctx->n_rows / hb_size * (double)ep_bytes_per_reading(&s->own), s->src,
                                    "the readings of the rank's devices", cause, "run on more ranks")));
    rc = hb_xchg_init(&s->xr, XCHG_BLOCK);
    if (rc == 0) rc = hb_xchg_init(&s->xu, XCHG_BLOCK);
    if (rc == 0) rc = hb_xchg_init(&s->xs, XCHG_SBLOCK);
    return hb_agree(rc);
}

/* Collective. The readings still staged go to their owners, then the episodes. */
static int episodes_finalize(void *state, hb_out *out)
{
    ep_state *s = state;
    if (hb_size > 1) HB_CALL(exchange_now(s));
    return ep_finalize(s, out);
}

/* Not collective. Frees the state; safe on a partly built one. */
static void episodes_destroy(void *state)
{
    ep_state *s = state;
    if (!s) return;
    hb_table_close(s->tab);
    hb_tzmap_free(&s->tzm);
    free(s->kbuf), free(s->tbuf), free(s->vbuf), free(s->vraw), free(s->dtmp), free(s->ok), free(s->dest), free(s->crun), free(s->cdt);
    free(s->gt), free(s->gv), free(s->grun), free(s->gpos), free(s->hkey), free(s->hidx);
    hb_strs_free(&s->strs);
    ep_cols_free(&s->own);
    for (int d = 0; s->pend && d < hb_size; d++) ep_cols_free(&s->pend[d].c), free(s->pend[d].str);
    free(s->pend);
    free(s->st), free(s->sv), free(s->srun), free(s->rrun), free(s->sstr), free(s->rstr);
    free(s->runs);
    ep_dict_free(&s->names), ep_dict_free(&s->sent);
    hb_xchg_free(&s->xr), hb_xchg_free(&s->xu), hb_xchg_free(&s->xs);
    free(s);
}

extern const hb_generator hb_generator_fleet; /* gen.c */

/* What `h5batch kernels episodes` lists and `h5batch export` reads (DESIGN.md 4.5). */
static const hb_dataset_desc episodes_inputs[] = {
    {"device", "table", "int|string", "", NULL, 0, "device id (the option device names the column)"},
    {"time", "table", "number", "", "<time_unit>", 0, "reading time since 1970-01-01 UTC (the option time)"},
    {"value", "table", "number", "", NULL, 0, "the reading (the option value); NaN and inf rows are invalid"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};
static const hb_dataset_desc episodes_outputs[] = {
    {"/episodes/device", NULL, "int64|string", "episode", NULL, 0, "device of the episode, sorted by device then start"},
    {"/episodes/start", NULL, "int64", "episode", "<time_unit> since 1970-01-01 00:00:00", 0, "first reading"},
    {"/episodes/end", NULL, "int64", "episode", "<time_unit> since 1970-01-01 00:00:00", 0, "last reading"},
    {"/episodes/duration_s", NULL, "float64", "episode", "s", 0, "end - start"},
    {"/episodes/readings", NULL, "uint64", "episode", NULL, 0, "readings in the episode"},
    {"/episodes/peak", NULL, "float64", "episode", "<value units>", 0, "the value furthest beyond the threshold"},
    {"/episodes/mean", NULL, "float64", "episode", "<value units>", 0, "mean of the episode's values"},
    {"/episodes/periods/episodes", NULL, "uint64", "device,period", NULL, 0, "episodes that start in the period"},
    {"/episodes/periods/seconds_in_episode", NULL, "float64", "device,period", "s", 0,
     "duration of the episodes that start in the period"},
    {"/episodes/periods/readings", NULL, "uint64", "device,period", NULL, 0, "readings in the period"},
    {"/episodes/periods/value_mean", NULL, "float64", "device,period", "<value units>", 0, "mean of the readings"},
    {"/episodes/periods/device", NULL, "int64|string", "device", NULL, 0, "device ids (dimension scale)"},
    {"/episodes/periods/period", NULL, "int64", "period", "yyyymmdd|yyyyww|yyyymm", 0,
     "local day, ISO week or month (dimension scale)"},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL}};

const hb_kernel hb_kernel_episodes = {
    .name = "episodes",
    .summary = "per device, episodes of readings beyond a rule, in time order, beside per-period figures",
    .options = episodes_options,
    .default_chunk_rows = 1 << 20,
    .unit = "readings",
    .generator = &hb_generator_fleet,
    .validate = episodes_validate,
    .setup = episodes_setup,
    .map = episodes_map,
    .exchange = episodes_exchange,
    .finalize = episodes_finalize,
    .save = episodes_save,
    .load = episodes_load,
    .destroy = episodes_destroy,
    .inputs = episodes_inputs,
    .outputs = episodes_outputs,
    .describe = episodes_describe,
    .setup_parts = episodes_setup_parts,
};
