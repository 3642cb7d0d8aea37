/* h5batch export: one output group as a tidy CSV table for BI tools and spreadsheets
 * (DESIGN.md 6, docs/export.md). One row per cell of the group's main arrays, one
 * column per dimension (its coordinate labels) and one per dataset; read in blocks of
 * rows, so memory does not grow with the output. */
#include "export.h"

#include "core/calendar.h"
#include "core/commit.h"
#include "core/fault.h"
#include "core/hb.h"
#include "core/opts.h"
#include "io/browse.h"
#include "kernels/kernel.h"
#include "partial.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT_USAGE HB_EXPORT_USAGE
/* cells read per block: bounds the memory of an export of any size */
#define BLOCK_CELLS 65536

static const hb_option export_options[] = {
    {"group", HB_OPT_STRING, NULL, 1, 0, NULL, "the group to export; none: the file's only group of datasets"},
    {"datasets", HB_OPT_STRING, NULL, 1, 0, NULL,
     "comma-separated datasets of the group; none: its main dataset and all that share its dimensions"},
    {"output", HB_OPT_STRING, "-", 1, 0, NULL, "the CSV file (-o); - writes to stdout"},
    {"force", HB_OPT_BOOL, "false", 1, 0, NULL, "replace an existing file"},
    {"bom", HB_OPT_BOOL, "false", 1, 0, NULL, "start with a UTF-8 byte order mark (for Excel's encoding guess)"},
    {"quiet", HB_OPT_BOOL, "false", 1, 0, NULL, "no note of the datasets left out (-q)"},
    {"help", HB_OPT_BOOL, "false", 1, 0, NULL, "this help (-h)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* How the numbers of a column are written. */
typedef enum { F_PLAIN, F_YMD, F_YM, F_YW, F_YQ, F_EPOCH } fmt_kind;

/* A column of the CSV: a dimension's coordinate (a 1-D dataset or the index along the
 * dimension) or a dataset whose dimensions are some of the export's, in their order. */
typedef struct column {
    const hb_var *v; /* NULL: the index along dimension map[0] */
    char path[4096];
    const char *name;
    int ndims, map[HB_VAR_MAXDIMS]; /* its dimension k is the export's dimension map[k] */
    int64_t stride[HB_VAR_MAXDIMS];
    int blocked; /* read per block of the export's outer dimension; else read once */
    fmt_kind fmt;
    int dec;     /* an integer amount of 10^-dec units (its attribute scale = 10^dec: bill's cents) */
    hb_elem t;
    void *num;   /* the values read (double, int64 or uint64) */
    hb_strs s;   /* or the strings */
} column;

typedef struct exporter {
    hb_in *in;
    const char *src; /* its file name, for messages */
    const char *group;
    hb_var *vars;
    int nvars;
    int nd;                         /* the export's dimensions */
    char dim[HB_VAR_MAXDIMS][256];  /* their names */
    int64_t len[HB_VAR_MAXDIMS];
    column *cols;
    int ncols;
    char tz[128]; /* the group's timezone attribute, "" when none */
    const hb_dataset_desc *outputs; /* of the kernel that wrote the file, or NULL */
    FILE *f;
    const char *dest; /* the CSV's name in messages: FILE or stdout */
    char *line;
    size_t line_cap, line_len;
    int oom;
} exporter;

/* The name of dimension k of v: its scale's, else one made from its length (datasets of
 * a table, which share their length, then share it). */
static void dim_name(const hb_var *v, int k, char *buf, size_t len)
{
    if (v->dim[k][0]) snprintf(buf, len, "%s", v->dim[k]);
    else snprintf(buf, len, "#%" PRId64, v->dims[k]);
}

static int exportable(const hb_var *v) { return !v->is_scale && v->kind != HB_VAR_OTHER && v->ndims >= 1; }

/* 1 when the dimensions of v are among those of e, in the same order; fills map. */
static int fits(const exporter *e, const hb_var *v, int *map)
{
    int j = 0;
    for (int k = 0; k < v->ndims; k++) {
        char n[256];
        dim_name(v, k, n, sizeof n);
        while (j < e->nd && strcmp(e->dim[j], n) != 0) j++;
        if (j == e->nd || e->len[j] != v->dims[k]) return 0;
        if (map) map[k] = j;
        j++;
    }
    return 1;
}

/* Makes the dimensions of v the export's. */
static void take_dims(exporter *e, const hb_var *v)
{
    e->nd = v->ndims;
    for (int k = 0; k < v->ndims; k++) {
        dim_name(v, k, e->dim[k], sizeof e->dim[k]);
        e->len[k] = v->dims[k];
    }
}

/* 1 when name matches pattern, where "<WORD>" stands for one byte or more but no '/'. */
static int matches(const char *pat, const char *name)
{
    if (*pat == '\0') return *name == '\0';
    if (*pat == '<') {
        const char *close = strchr(pat, '>');
        if (!close) return strcmp(pat, name) == 0;
        for (const char *p = name; *p && *p != '/'; p++)
            if (matches(close + 1, p + 1)) return 1;
        return 0;
    }
    return *pat == *name && matches(pat + 1, name + 1);
}

/* The output descriptions of the kernel that wrote the file (its /provenance names
 * it) in *out, NULL for a file of another kind or a kernel that does not describe them;
 * 78 when the kernel is not here and a plugin could not be loaded (it may be that
 * plugin's: its descriptions would change the table). */
static int kernel_outputs(hb_in *in, const char *file, const hb_dataset_desc **out)
{
    char kname[256];
    *out = NULL;
    if (hb_in_attr_str(in, "/provenance", "kernel", kname, sizeof kname) != 0) return 0;
    const hb_kernel *k = hb_kernel_find(kname);
    if (k) *out = k->outputs;
    else if (hb_plugins_failed()) {
        char what[400];
        snprintf(what, sizeof what, "written by kernel '%s', which this h5batch does not have", kname);
        return hb_plugins_missing(HB_ECONFIG, file, what);
    }
    return 0;
}

/* The description of dataset v of the group, or NULL. */
static const hb_dataset_desc *desc_of(const exporter *e, const hb_var *v)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", strcmp(e->group, "/") ? e->group : "", v->name);
    for (const hb_dataset_desc *d = e->outputs; d && d->name; d++)
        if (matches(d->name, path)) return d;
    return NULL;
}

/* Names the dimensions that have no dimension scale after the kernel's description of
 * the dataset (the index's "doc" and "term"), when it gives plain names. */
static void name_dims(exporter *e, hb_var *v)
{
    const hb_dataset_desc *d = desc_of(e, v);
    if (!d || !d->dims || strpbrk(d->dims, "<+")) return;
    char buf[1024], *save = NULL;
    snprintf(buf, sizeof buf, "%s", d->dims);
    int k = 0;
    char names[HB_VAR_MAXDIMS][256];
    for (char *t = strtok_r(buf, ",", &save); t && k < HB_VAR_MAXDIMS; t = strtok_r(NULL, ",", &save))
        snprintf(names[k++], sizeof names[0], "%.255s", t);
    if (k != v->ndims) return;
    for (k = 0; k < v->ndims; k++)
        if (!v->dim[k][0]) snprintf(v->dim[k], sizeof v->dim[k], "%.255s", names[k]);
}

/* The dataset of the group that its kernel lists first among its outputs (the group's
 * main result), or -1 when the file names no known kernel or none matches. */
static int main_var(const exporter *e)
{
    for (const hb_dataset_desc *d = e->outputs; d && d->name; d++)
        for (int i = 0; i < e->nvars; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", strcmp(e->group, "/") ? e->group : "", e->vars[i].name);
            if (exportable(&e->vars[i]) && matches(d->name, path)) return i;
        }
    return -1;
}

static int find_var(const exporter *e, const char *name)
{
    for (int i = 0; i < e->nvars; i++)
        if (strcmp(e->vars[i].name, name) == 0) return i;
    return -1;
}

/* "a x b" for messages: the dimensions of v. */
static void dims_text(const hb_var *v, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < v->ndims && at < len; k++) {
        char n[256];
        dim_name(v, k, n, sizeof n);
        if (n[0] == '#') at += (size_t)snprintf(buf + at, len - at, "%s%s rows", k ? " x " : "", n + 1);
        else at += (size_t)snprintf(buf + at, len - at, "%s%s", k ? " x " : "", n);
    }
}

/* Chooses the dimensions and the datasets of the export: those named by --datasets, else
 * the main dataset's dimensions (the kernel's first output, else the dimensions most
 * datasets share) and every dataset that fits them. sel[i] = 1 for the chosen ones. */
static int choose(exporter *e, const char *datasets, int *sel, int quiet)
{
    for (int i = 0; i < e->nvars; i++) name_dims(e, &e->vars[i]);
    if (datasets && *datasets) {
        char buf[4096], *save = NULL;
        snprintf(buf, sizeof buf, "%s", datasets);
        int widest = -1;
        for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            int i = find_var(e, t);
            HB_CHECK(i >= 0 && exportable(&e->vars[i]), HB_EUSAGE, "export",
                     "%s has no dataset '%s' to export (numbers or strings, not a coordinate)", e->group, t);
            sel[i] = 1;
            if (widest < 0 || e->vars[i].ndims > e->vars[widest].ndims) widest = i;
        }
        HB_CHECK(widest >= 0, HB_EUSAGE, "export", "--datasets names no dataset");
        take_dims(e, &e->vars[widest]);
        for (int i = 0; i < e->nvars; i++)
            if (sel[i] && !fits(e, &e->vars[i], NULL)) {
                char a[1024], b[1024];
                dims_text(&e->vars[i], a, sizeof a);
                dims_text(&e->vars[widest], b, sizeof b);
                return hb_err_set(HB_EDATA, "export",
                                  "%s/%s (dimensions %s) does not share the dimensions of %s (%s): export them apart",
                                  e->group, e->vars[i].name, a, e->vars[widest].name, b);
            }
        return 0;
    }
    int m = main_var(e);
    if (m < 0) {
        int best = 0;
        for (int i = 0; i < e->nvars; i++) {
            if (!exportable(&e->vars[i])) continue;
            take_dims(e, &e->vars[i]);
            int n = 0;
            for (int j = 0; j < e->nvars; j++) n += exportable(&e->vars[j]) && fits(e, &e->vars[j], NULL);
            if (n > best) best = n, m = i;
        }
    }
    HB_CHECK(m >= 0, HB_EDATA, "export", "%s holds no dataset of numbers or strings to export", e->group);
    take_dims(e, &e->vars[m]);
    char left[2048] = "";
    size_t at = 0;
    for (int i = 0; i < e->nvars; i++) {
        if (e->vars[i].is_scale) continue;
        sel[i] = exportable(&e->vars[i]) && fits(e, &e->vars[i], NULL);
        if (!sel[i] && at < sizeof left) {
            char d[1024] = "neither numbers nor 1-D strings";
            if (exportable(&e->vars[i])) dims_text(&e->vars[i], d, sizeof d);
            at += (size_t)snprintf(left + at, sizeof left - at, "%s%s (%s)", at ? ", " : "", e->vars[i].name, d);
        }
    }
    if (left[0] && !quiet)
        fprintf(stderr,
                "h5batch: note: export of %s: left out: %s (--datasets exports those of other dimensions)\n",
                e->group, left);
    return 0;
}

/* The calendar format of an integer column: seconds since the epoch when the kernel
 * describes it as a time or its units say so (CF: "seconds since 1970-01-01"), calendar
 * integers by their units or, without units, their names (kernel aggregate's keys). */
static fmt_kind fmt_of(const exporter *e, const hb_var *v, const char *name)
{
    if (v->kind == HB_VAR_STRING || v->kind == HB_VAR_FLOAT) return F_PLAIN;
    const hb_dataset_desc *d = desc_of(e, v);
    if (d && d->kind && strcmp(d->kind, "time") == 0) return F_EPOCH;
    const char *u = v->units;
    if (strcmp(u, "yyyymmdd") == 0 || (!*u && strcmp(name, "date") == 0)) return F_YMD;
    if (strcmp(u, "yyyymm") == 0 || (!*u && strcmp(name, "month") == 0)) return F_YM;
    if (strcmp(u, "yyyyww") == 0 || (!*u && strcmp(name, "week") == 0)) return F_YW;
    if (strcmp(u, "yyyyq") == 0 || (!*u && strcmp(name, "quarter") == 0)) return F_YQ;
    if (strncmp(u, "seconds since 1970-01-01", 24) == 0 || strncmp(u, "s since 1970-01-01", 18) == 0) return F_EPOCH;
    return F_PLAIN;
}

/* Sets up column c for dataset v (NULL: the index along dimension dim). */
static int add_column(exporter *e, const hb_var *v, int dim)
{
    column *c = &e->cols[e->ncols++];
    memset(c, 0, sizeof *c);
    c->v = v;
    if (!v) {
        c->name = e->dim[dim];
        c->ndims = 1;
        c->map[0] = dim;
        return 0;
    }
    c->name = v->name;
    snprintf(c->path, sizeof c->path, "%s/%s", strcmp(e->group, "/") ? e->group : "", v->name);
    c->ndims = v->ndims;
    if (dim >= 0) c->map[0] = dim;
    else fits(e, v, c->map);
    c->blocked = c->map[0] == 0;
    c->t = v->kind == HB_VAR_FLOAT ? HB_F64 : v->kind == HB_VAR_UINT ? HB_U64 : HB_I64;
    c->fmt = fmt_of(e, v, v->name);
    if (c->t == HB_I64 && c->fmt == F_PLAIN) { /* money: cents with scale = 100 written as 75.50 */
        int64_t sc = 0;
        if (hb_in_attr_i64(e->in, c->path, "scale", &sc) != 0) sc = 0;
        hb_err_clear(); /* no scale, or one that is no power of ten up to 10^9: the integers as they are */
        for (int64_t p = 10, k = 1; k <= 9; p *= 10, k++)
            if (p == sc) c->dec = (int)k;
    }
    int64_t st = 1;
    for (int k = c->ndims - 1; k >= 0; k--) c->stride[k] = st, st *= v->dims[k];
    return 0;
}

/* A coordinate's dataset: the scale attached to dimension d, a 1-D dataset of the group. */
static const hb_var *coordinate(const exporter *e, int d)
{
    for (int i = 0; i < e->nvars; i++) {
        const hb_var *v = &e->vars[i];
        if (v->is_scale && v->ndims == 1 && strcmp(v->dim[0], e->dim[d]) == 0 && v->dims[0] == e->len[d]) return v;
    }
    return NULL;
}

/* Reads what column c needs for outer rows [i0, i0+b): its block, or (once) all of it. */
static int read_column(exporter *e, column *c, int64_t i0, int64_t b, int first)
{
    if (!c->v || (!c->blocked && !first)) return 0;
    int64_t start[HB_VAR_MAXDIMS] = {0}, count[HB_VAR_MAXDIMS];
    size_t n = 1;
    for (int k = 0; k < c->ndims; k++) {
        count[k] = c->v->dims[k];
        if (k == 0 && c->blocked) start[0] = i0, count[0] = b;
        n *= (size_t)count[k];
    }
    if (c->v->kind == HB_VAR_STRING) return hb_browse_read_str(e->in, c->path, start[0], count[0], &c->s);
    if (!c->num && !(c->num = hb_malloc(n ? n * 8 : 8))) return HB_EINTERNAL; /* the first block is the largest */
    return hb_browse_read(e->in, c->path, c->t, c->ndims, start, count, c->num);
}

/* Appends n bytes to the line being built. */
static void put(exporter *e, const char *p, size_t n)
{
    if (hb_grow((void **)&e->line, &e->line_cap, e->line_len + n + 1, 1) != 0) {
        e->oom = 1;
        return;
    }
    memcpy(e->line + e->line_len, p, n);
    e->line_len += n;
}

/* A text field, quoted as RFC 4180 says when it holds a comma, a quote or a line break. */
static void put_text(exporter *e, const char *p, size_t n)
{
    int quote = 0;
    for (size_t i = 0; i < n && !quote; i++) quote = p[i] == ',' || p[i] == '"' || p[i] == '\n' || p[i] == '\r';
    if (!quote) return put(e, p, n);
    put(e, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') put(e, "\"", 1);
        put(e, p + i, 1);
    }
    put(e, "\"", 1);
}

/* Writes the p significant digits dig[0..p) with decimal exponent x10 (the value is
 * d.ddd x 10^x10) as printf's %.<p>g does: fixed notation when -4 <= x10 < p, else
 * d.ddde+XX, trailing zeros dropped. Returns the length. */
static int g_style(int neg, const char *dig, int p, int x10, char *out)
{
    int fixed = x10 >= -4 && x10 < p;
    while (p > 1 && dig[p - 1] == '0') p--;
    char *o = out;
    if (neg) *o++ = '-';
    if (fixed) {
        if (x10 < 0) {
            *o++ = '0', *o++ = '.';
            for (int i = 0; i < -x10 - 1; i++) *o++ = '0';
            memcpy(o, dig, (size_t)p), o += p;
        } else {
            for (int i = 0; i <= x10; i++) *o++ = i < p ? dig[i] : '0';
            if (p > x10 + 1) {
                *o++ = '.';
                memcpy(o, dig + x10 + 1, (size_t)(p - x10 - 1)), o += p - x10 - 1;
            }
        }
        return (int)(o - out);
    }
    *o++ = dig[0];
    if (p > 1) {
        *o++ = '.';
        memcpy(o, dig + 1, (size_t)(p - 1)), o += p - 1;
    }
    return (int)(o - out) + sprintf(o, "e%c%02d", x10 < 0 ? '-' : '+', x10 < 0 ? -x10 : x10);
}

/* x as the shortest of %.15g, %.16g, %.17g that reads back as x, into out (40 bytes).
 * One %.16e gives the 17 correctly rounded digits; those rounded to 15 and 16 digits
 * are what %.15g and %.16g print, except when the digits dropped are exactly a half
 * (a 5 then zeros: the exact value may lie on either side), where printf decides. */
static int shortest(double x, char *out)
{
    char e[40], dig[18];
    snprintf(e, sizeof e, "%.16e", x); /* [-]d.dddddddddddddddde[+-]XX */
    int neg = e[0] == '-';
    const char *m = e + neg;
    dig[0] = m[0];
    memcpy(dig + 1, m + 2, 16);
    int x10 = atoi(m + 19);
    for (int p = 15; p <= 16; p++) {
        int half = dig[p] == '5';
        for (int i = p + 1; half && i < 17; i++) half = dig[i] == '0';
        int n;
        if (half) {
            n = snprintf(out, 40, "%.*g", p, x);
        } else {
            char r[18];
            memcpy(r, dig, (size_t)p);
            int rx = x10;
            if (dig[p] >= '5') {
                int i = p - 1;
                while (i >= 0 && r[i] == '9') r[i--] = '0';
                if (i >= 0) r[i]++;
                else {
                    memmove(r + 1, r, (size_t)p - 1);
                    r[0] = '1';
                    rx++;
                }
            }
            n = g_style(neg, r, p, rx, out);
            out[n] = '\0';
        }
        if (strtod(out, NULL) == x) return n;
    }
    int n = g_style(neg, dig, 17, x10, out);
    out[n] = '\0';
    return n;
}

/* A float field: NaN is the empty field, infinities inf and -inf. */
static void put_double(exporter *e, double x)
{
    char buf[40];
    if (isnan(x)) return;
    if (isinf(x)) {
        put(e, x > 0 ? "inf" : "-inf", x > 0 ? 3 : 4);
        return;
    }
    put(e, buf, (size_t)shortest(x, buf));
}

/* An integer as a calendar text (2024-01-31, 2024-01, 2024-W05, 2024-Q1, a date-time),
 * nothing for the least int64 (a missing time, as pandas' NaT), or as itself when it is
 * not a valid value of its calendar. */
static void put_int(exporter *e, int64_t x, fmt_kind f, int dec)
{
    char buf[64];
    int n = -1;
    if (dec > 0) { /* exact: the integer's digits with a decimal point, 7550 at scale 100 is 75.50 */
        uint64_t p = 1, u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
        for (int k = 0; k < dec; k++) p *= 10;
        n = snprintf(buf, sizeof buf, "%s%" PRIu64 ".%0*" PRIu64, x < 0 ? "-" : "", u / p, dec, u % p);
        put(e, buf, (size_t)n);
        return;
    }
    if (f != F_PLAIN && x == INT64_MIN) return; /* a missing time or date (NaT): an empty field */
    if (f == F_YMD && hb_days_from_yyyymmdd(x) != INT64_MIN)
        n = snprintf(buf, sizeof buf, "%04" PRId64 "-%02d-%02d", x / 10000, (int)(x / 100 % 100), (int)(x % 100));
    else if (f == F_YM && x > 0 && x % 100 >= 1 && x % 100 <= 12)
        n = snprintf(buf, sizeof buf, "%04" PRId64 "-%02d", x / 100, (int)(x % 100));
    else if (f == F_YW && x > 0 && x % 100 >= 1 && x % 100 <= 53)
        n = snprintf(buf, sizeof buf, "%04" PRId64 "-W%02d", x / 100, (int)(x % 100));
    else if (f == F_YQ && x > 0 && x % 10 >= 1 && x % 10 <= 4)
        n = snprintf(buf, sizeof buf, "%04" PRId64 "-Q%d", x / 10, (int)(x % 10));
    else if (f == F_EPOCH && x > -62135596800LL && x < 253402300800LL) {
        time_t t = (time_t)x;
        struct tm tm;
        if (e->tz[0]) localtime_r(&t, &tm);
        else gmtime_r(&t, &tm);
        n = (int)strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        long off = e->tz[0] ? tm.tm_gmtoff : 0;
        if (!e->tz[0]) n += snprintf(buf + n, sizeof buf - (size_t)n, "Z");
        else
            n += snprintf(buf + n, sizeof buf - (size_t)n, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                          labs(off) % 3600 / 60);
    }
    if (n < 0) n = snprintf(buf, sizeof buf, "%" PRId64, x);
    put(e, buf, (size_t)n);
}

/* Writes the value of column c at the export's cell idx (in the block from i0). */
static void put_cell(exporter *e, const column *c, const int64_t *idx, int64_t i0)
{
    if (!c->v) {
        char buf[32];
        put(e, buf, (size_t)snprintf(buf, sizeof buf, "%" PRId64, idx[c->map[0]]));
        return;
    }
    int64_t at = 0;
    for (int k = 0; k < c->ndims; k++) at += (idx[c->map[k]] - (k == 0 && c->blocked ? i0 : 0)) * c->stride[k];
    if (c->v->kind == HB_VAR_STRING) {
        put_text(e, c->s.bytes + c->s.off[at], (size_t)(c->s.off[at + 1] - c->s.off[at]));
        return;
    }
    if (c->t == HB_F64) put_double(e, ((const double *)c->num)[at]);
    else if (c->t == HB_U64) {
        char buf[32];
        put(e, buf, (size_t)snprintf(buf, sizeof buf, "%" PRIu64, ((const uint64_t *)c->num)[at]));
    } else
        put_int(e, ((const int64_t *)c->num)[at], c->fmt, c->dec);
}

/* Ends the line and writes it; 74 on a write error. */
static int flush_line(exporter *e)
{
    put(e, "\n", 1);
    if (e->oom) return hb_err_set(HB_EINTERNAL, "export", "out of memory");
    size_t n = e->line_len;
    e->line_len = 0;
    if (hb_fault_write("output", "data") || fwrite(e->line, 1, n, e->f) != n)
        return hb_err_set(HB_EIO, e->dest, "cannot write the CSV: %s", strerror(errno ? errno : EIO));
    return 0;
}

/* Writes the header and every row. */
static int write_rows(exporter *e)
{
    for (int j = 0; j < e->ncols; j++) {
        if (j) put(e, ",", 1);
        put_text(e, e->cols[j].name, strlen(e->cols[j].name));
    }
    HB_CALL(flush_line(e));
    int64_t inner = 1, outer = e->len[0];
    for (int k = 1; k < e->nd; k++) inner *= e->len[k];
    if (inner == 0 || outer == 0) return 0;
    int64_t b = BLOCK_CELLS / inner > 1 ? BLOCK_CELLS / inner : 1;
    for (int64_t i0 = 0; i0 < outer; i0 += b) {
        int64_t nb = outer - i0 < b ? outer - i0 : b;
        for (int j = 0; j < e->ncols; j++) HB_CALL(read_column(e, &e->cols[j], i0, nb, i0 == 0));
        int64_t idx[HB_VAR_MAXDIMS] = {0};
        idx[0] = i0;
        for (int64_t cell = 0; cell < nb * inner; cell++) {
            for (int j = 0; j < e->ncols; j++) {
                if (j) put(e, ",", 1);
                put_cell(e, &e->cols[j], idx, i0);
            }
            HB_CALL(flush_line(e));
            for (int k = e->nd - 1; k >= 0; k--) {
                if (++idx[k] < e->len[k] || k == 0) break;
                idx[k] = 0;
            }
        }
    }
    return 0;
}

/* The group to export: the one asked for, else the file's only group of datasets (64
 * listing them when there are several). */
static int pick_group(hb_in *in, const char *file, const char *asked, char *group, size_t len)
{
    char **g = NULL;
    int n = 0;
    HB_CALL(hb_browse_groups(in, &g, &n));
    char list[2048] = "";
    size_t at = 0;
    for (int i = 0; i < n && at < sizeof list; i++) at += (size_t)snprintf(list + at, sizeof list - at, " %s", g[i]);
    int rc = 0;
    if (asked) {
        snprintf(group, len, "%s%s", asked[0] == '/' ? "" : "/", asked);
        size_t l = strlen(group);
        while (l > 1 && group[l - 1] == '/') group[--l] = '\0';
        if (!hb_browse_is_group(in, group))
            rc = hb_err_set(HB_EUSAGE, file, "no group %s (groups with datasets:%s)", group, n ? list : " none");
    } else if (n == 1) {
        snprintf(group, len, "%s", g[0]);
    } else if (n == 0) {
        rc = hb_err_set(HB_EDATA, file, "no group holds datasets to export");
    } else {
        rc = hb_err_set(HB_EUSAGE, file, "%d groups hold datasets; choose one with --group:%s", n, list);
    }
    hb_browse_free_groups(g, n);
    return rc;
}

/* The export of group into e->f. */
static int run_export(exporter *e, const char *datasets, int quiet)
{
    HB_CALL(hb_browse_vars(e->in, e->group, &e->vars, &e->nvars));
    HB_CALL(kernel_outputs(e->in, e->src, &e->outputs));
    int *sel = hb_calloc((size_t)e->nvars + 1, sizeof *sel);
    e->cols = hb_calloc((size_t)e->nvars + HB_VAR_MAXDIMS, sizeof *e->cols);
    if (!sel || !e->cols) {
        free(sel);
        return HB_EINTERNAL;
    }
    int rc = choose(e, datasets, sel, quiet);
    if (rc == 0 && hb_in_attr_str(e->in, e->group, "timezone", e->tz, sizeof e->tz) == 0 && e->tz[0]) {
        if (!hb_tz_valid(e->tz) || hb_tz_select(e->tz) != 0) e->tz[0] = '\0';
    }
    /* one coordinate column per dimension; a table's rows (a lone dimension without a
     * coordinate) need none */
    for (int d = 0; rc == 0 && d < e->nd; d++) {
        const hb_var *c = coordinate(e, d);
        if (c) rc = add_column(e, c, d);
        else if (e->nd > 1) rc = add_column(e, NULL, d);
    }
    for (int i = 0; rc == 0 && i < e->nvars; i++)
        if (sel[i]) rc = add_column(e, &e->vars[i], -1);
    /* nameless dimensions are named by place only now: the datasets' columns find their
     * dimensions by the names they have (fits), and an index column's name is e->dim[d] */
    for (int d = 0; rc == 0 && e->nd > 1 && d < e->nd; d++)
        if (e->dim[d][0] == '#') snprintf(e->dim[d], sizeof e->dim[d], "dim_%d", d);
    free(sel);
    if (rc == 0) rc = write_rows(e);
    return rc;
}

static void free_exporter(exporter *e)
{
    for (int j = 0; j < e->ncols; j++) {
        free(e->cols[j].num);
        hb_strs_free(&e->cols[j].s);
    }
    free(e->cols);
    free(e->vars);
    free(e->line);
}

/* 0 when path may be written: not there, or there and a regular file with force. A
 * symbolic link is never followed nor replaced. */
static int check_destination(const char *path, const char *input, int force)
{
    struct stat sb, in;
    if (lstat(path, &sb) == 0) {
        HB_CHECK(!(stat(input, &in) == 0 && sb.st_dev == in.st_dev && sb.st_ino == in.st_ino), HB_ECANTCREAT, path,
                 "is the input; never replaced (not even with --force): choose another output");
        HB_CHECK(!S_ISLNK(sb.st_mode), HB_ECANTCREAT, path, "is a symbolic link; not followed, not replaced");
        HB_CHECK(S_ISREG(sb.st_mode), HB_ECANTCREAT, path, "exists and is not a regular file");
        HB_CHECK(force, HB_ECANTCREAT, path, "file exists; use --force to replace it");
    }
    return hb_check_writable(path);
}

/* Under mpirun or srun, the rank of this process (0 when not started by either; a Slurm
 * batch script itself is task 0). */
static long launcher_rank(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID", NULL};
    for (const char *const *v = vars; *v; v++) {
        const char *s = getenv(*v);
        if (s && *s) return strtol(s, NULL, 10);
    }
    return 0;
}

static void print_help(void)
{
    printf("usage: h5batch export " EXPORT_USAGE "\n\n"
           "Writes one group of an HDF5 output as a tidy CSV table (docs/export.md): one row per\n"
           "cell of the group's main arrays (or per row of a table), a column per dimension\n"
           "(its labels; dates and times as ISO 8601) and a column per dataset; NaN is an empty\n"
           "field. Datasets with other dimensions are left out (a note says which): export them\n"
           "with --datasets. Under mpirun only rank 0 writes.\n\noptions:\n");
    hb_opt_print_cli(export_options, "  ");
}

int hb_export_main(int argc, char **argv)
{
    hb_io_init();
    static const char *const aliases[] = {"-o", "output", "-q", "quiet", "-h", "help", NULL};
    const hb_option *const tables[] = {export_options, NULL};
    hb_args a;
    int rc = hb_args_parse("export", tables, aliases, argc, argv, &a);
    const hb_optset o = hb_args_opts(&a, export_options);
    if (rc == 0 && hb_opt_bool(&o, "help")) {
        print_help();
        hb_args_free(&a);
        return 0;
    }
    if (rc == 0 && a.npos != 1) rc = hb_err_set(HB_EUSAGE, "export", "usage: h5batch export " EXPORT_USAGE);
    /* a partial state's datasets are the kernel's encoded state, no result */
    if (rc == 0 && hb_partial_is(a.pos[0]))
        rc = hb_err_set(HB_EDATA, a.pos[0], "is a partial state (run --partial), not a result: merge it first "
                        "(h5batch merge PART.h5... -o OUT.h5) and export OUT.h5");
    if (rc != 0 || launcher_rank() != 0) return hb_args_free(&a), rc;
    const char *dest = hb_opt_str(&o, "output");
    int to_stdout = !dest || strcmp(dest, "-") == 0;
    exporter e = {0};
    char group[4096], tmp[4300] = "";
    rc = to_stdout ? 0 : check_destination(dest, a.pos[0], hb_opt_bool(&o, "force"));
    /* the output claimed as `run` and `import` claim theirs: DEST.lock beside it */
    char lock[4300] = "", what[4300];
    int lock_fd = -1;
    if (rc == 0 && !to_stdout) {
        snprintf(lock, sizeof lock, "%s.lock", dest);
        snprintf(what, sizeof what, "output %s", dest);
        rc = hb_claim_take(lock, what, NULL, &lock_fd);
    }
    if (rc == 0) rc = hb_in_open(a.pos[0], &e.in);
    if (rc == 0) rc = pick_group(e.in, a.pos[0], hb_opt_str(&o, "group"), group, sizeof group);
    e.group = group;
    e.src = a.pos[0];
    e.dest = to_stdout ? "stdout" : dest;
    int fd = -1;
    if (rc == 0 && !to_stdout) {
        /* the project's unique temporary (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0666 less the umask) */
        fd = hb_tmp_open(dest, tmp, sizeof tmp);
        if (fd < 0) {
            rc = hb_err_set(HB_ECANTCREAT, dest, "cannot create a temporary file beside it: %s", strerror(errno));
            tmp[0] = '\0';
        } else {
            e.f = fdopen(fd, "w");
            if (!e.f) rc = hb_err_set(HB_EINTERNAL, dest, "out of memory");
        }
    } else if (rc == 0) {
        e.f = stdout;
    }
    if (rc == 0) {
        static char buf[1 << 20];
        setvbuf(e.f, buf, _IOFBF, sizeof buf);
        if (hb_opt_bool(&o, "bom")) put(&e, "\xef\xbb\xbf", 3);
        rc = run_export(&e, hb_opt_str(&o, "datasets"), hb_opt_bool(&o, "quiet"));
    }
    if (e.f) {
        errno = 0;
        int bad = fflush(e.f) != 0 || ferror(e.f);
        if (rc == 0 && !to_stdout && !bad && fsync(fileno(e.f)) != 0) bad = 1;
        if (rc == 0 && bad) rc = hb_err_set(HB_EIO, to_stdout ? "stdout" : dest, "cannot write the CSV: %s",
                                            strerror(errno ? errno : EIO));
        if (!to_stdout && fclose(e.f) != 0 && rc == 0)
            rc = hb_err_set(HB_EIO, dest, "cannot write the CSV: %s", strerror(errno));
    } else if (fd >= 0) {
        close(fd);
    }
    if (rc == 0 && tmp[0]) {
        if (rename(tmp, dest) != 0 || hb_fsync_dir(dest) != 0)
            rc = hb_err_set(HB_ECANTCREAT, dest, "cannot commit the CSV: %s", strerror(errno));
        else tmp[0] = '\0';
    }
    if (tmp[0]) unlink(tmp);
    hb_claim_release(lock, lock_fd, 1);
    free_exporter(&e);
    hb_in_close(e.in);
    hb_args_free(&a);
    return rc;
}
