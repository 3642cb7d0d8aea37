/* Tables: groups of equal-length 1-D columns read in row ranges, converted to the
 * kernels' element types by our own loops. */
#include "internal.h"

#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


typedef struct column {
    hid_t dset, space;
    src_kind kind;
    size_t size; /* bytes per element in memory for kind */
    char name[64];
    /* string columns (only opened by hb_table_open_any): fixed-length ones in size bytes
     * a row with this padding, or variable-length */
    int is_str, str_vlen;
    H5T_str_t str_pad;
    H5T_cset_t str_cset;
} column;

struct hb_table {
    hb_in *in;
    hid_t group;
    int ncols;
    column *cols;
    int64_t rows;
    void *scratch;
    size_t scratch_bytes;
    char where[512];
};

/* Converts n elements of kind k from src to want. Hot path: plain loops the compiler vectorizes. */
#define CONVERT_LOOP(T)                                                                \
    do {                                                                               \
        const T *s = (const T *)src;                                                   \
        if (want == HB_F64) {                                                          \
            double *d = dst;                                                           \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = (double)s[i];   \
        } else {                                                                       \
            int64_t *d = dst;                                                          \
            for (int64_t i = 0; i < n; i++) d[i] = to_i64_##T(s[i], want);              \
        }                                                                              \
    } while (0)

static inline int64_t int_to_id(int64_t v, hb_elem want) { return want == HB_ID && v < 0 ? -1 : v; }
static inline int64_t to_i64_int8_t(int8_t v, hb_elem w) { return int_to_id(v, w); }
static inline int64_t to_i64_uint8_t(uint8_t v, hb_elem w) { (void)w; return v; }
static inline int64_t to_i64_int16_t(int16_t v, hb_elem w) { return int_to_id(v, w); }
static inline int64_t to_i64_uint16_t(uint16_t v, hb_elem w) { (void)w; return v; }
static inline int64_t to_i64_int32_t(int32_t v, hb_elem w) { return int_to_id(v, w); }
static inline int64_t to_i64_uint32_t(uint32_t v, hb_elem w) { (void)w; return v; }
static inline int64_t to_i64_int64_t(int64_t v, hb_elem w) { return int_to_id(v, w); }
static inline int64_t to_i64_uint64_t(uint64_t v, hb_elem w)
{
    return v > (uint64_t)INT64_MAX ? (w == HB_ID ? -1 : INT64_MIN) : (int64_t)v;
}
static inline int64_t to_i64_double(double v, hb_elem w)
{
    /* 2^63 is the first double out of int64 range */
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0)) return w == HB_ID ? -1 : INT64_MIN;
    double f = floor(v);
    if (w == HB_ID && (f != v || v < 0)) return -1;
    return (int64_t)f;
}
static inline int64_t to_i64_float(float v, hb_elem w) { return to_i64_double((double)v, w); }

static void convert(src_kind k, const void *src, hb_elem want, void *dst, int64_t n)
{
    switch (k) {
    case K_I8: CONVERT_LOOP(int8_t); break;
    case K_U8: CONVERT_LOOP(uint8_t); break;
    case K_I16: CONVERT_LOOP(int16_t); break;
    case K_U16: CONVERT_LOOP(uint16_t); break;
    case K_I32: CONVERT_LOOP(int32_t); break;
    case K_U32: CONVERT_LOOP(uint32_t); break;
    case K_I64: CONVERT_LOOP(int64_t); break;
    case K_U64: CONVERT_LOOP(uint64_t); break;
    case K_F32: CONVERT_LOOP(float); break;
    default: CONVERT_LOOP(double); break;
    }
}

/* Opens a 1-D numeric dataset (or string one when allow_str) and fills c; where names
 * it in errors. */
static int open_column_as(hid_t loc, const char *name, const char *where, int allow_str, column *c)
{
    snprintf(c->name, sizeof c->name, "%s", name);
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return hb_err_set(HB_EDATA, where, "missing column '%s'", name);
    c->dset = H5Dopen2(loc, name, H5P_DEFAULT);
    if (c->dset < 0) return hb_err_set(HB_EDATA, where, "'%s' is not a dataset", name);
    hid_t type = H5Dget_type(c->dset);
    HB_CALL_H5(type, where);
    c->kind = io_kind_of(type, &c->size);
    if (c->kind == K_OTHER && allow_str && H5Tget_class(type) == H5T_STRING) {
        c->is_str = 1;
        c->str_vlen = H5Tis_variable_str(type) > 0;
        c->str_pad = H5Tget_strpad(type);
        c->str_cset = H5Tget_cset(type);
        H5Tclose(type);
    } else if (c->kind == K_OTHER) {
        H5T_class_t cls = H5Tget_class(type);
        int numeric = cls == H5T_INTEGER || cls == H5T_FLOAT;
        const char *cn = numeric ? "an unusual numeric" : io_class_name(type);
        H5Tclose(type);
        if (!numeric) return hb_err_set(HB_EDATA, where, "column '%s' has %s type; a number is needed", name, cn);
        c->size = 8; /* let HDF5 convert exotic sizes to double */
        c->kind = K_OTHER;
    } else {
        H5Tclose(type);
    }
    c->space = H5Dget_space(c->dset);
    HB_CALL_H5(c->space, where);
    if (H5Sget_simple_extent_ndims(c->space) != 1)
        return hb_err_set(HB_EDATA, where, "column '%s' is not one-dimensional", name);
    return 0;
}

static int open_column(hid_t loc, const char *name, const char *where, column *c)
{
    return open_column_as(loc, name, where, 0, c);
}

static int table_open(hb_in *in, const char *group, const char *const *cols, int ncols, int allow_str,
                      hb_table **tp)
{
    *tp = NULL;
    hb_table *t = hb_calloc(1, sizeof *t);
    if (!t) return HB_EINTERNAL;
    *tp = t;
    t->in = in;
    t->group = -1;
    snprintf(t->where, sizeof t->where, "%s:%s", in->path, group);
    if (!hb_in_exists(in, group)) return hb_err_set(HB_EDATA, t->where, "no such table (group)");
    t->group = H5Gopen2(in->file, group, H5P_DEFAULT);
    if (t->group < 0) return hb_err_set(HB_EDATA, t->where, "not a group");
    t->cols = hb_calloc((size_t)ncols, sizeof *t->cols);
    if (!t->cols) return HB_EINTERNAL;
    for (int i = 0; i < ncols; i++) t->cols[i].dset = t->cols[i].space = -1;
    t->ncols = ncols;
    for (int i = 0; i < ncols; i++) {
        HB_CALL(open_column_as(t->group, cols[i], t->where, allow_str, &t->cols[i]));
        hsize_t n;
        H5Sget_simple_extent_dims(t->cols[i].space, &n, NULL);
        if (i == 0) t->rows = (int64_t)n;
        else if ((int64_t)n != t->rows)
            return hb_err_set(HB_EDATA, t->where, "columns have unequal lengths: '%s' has %lld rows, '%s' has %llu",
                              cols[0], (long long)t->rows, cols[i], (unsigned long long)n);
    }
    return 0;
}

int hb_table_open(hb_in *in, const char *group, const char *const *cols, int ncols, hb_table **tp)
{
    return table_open(in, group, cols, ncols, 0, tp);
}

int hb_table_open_any(hb_in *in, const char *group, const char *const *cols, int ncols, hb_table **tp)
{
    return table_open(in, group, cols, ncols, 1, tp);
}

int64_t hb_table_rows(const hb_table *t) { return t->rows; }

hb_col_kind hb_table_kind(const hb_table *t, int col)
{
    const column *c = &t->cols[col];
    if (c->is_str) return HB_COL_STRING;
    return c->kind == K_F32 || c->kind == K_F64 || c->kind == K_OTHER ? HB_COL_FLOAT : HB_COL_INT;
}

int hb_table_read(hb_table *t, int col, int64_t start, int64_t count, hb_elem want, void *buf)
{
    if (count <= 0) return 0;
    column *c = &t->cols[col];
    char where[600];
    snprintf(where, sizeof where, "%s/%s", t->where, c->name);
    if (c->is_str) return hb_err_set(HB_EDATA, t->where, "column '%s' has string type; a number is needed", c->name);
    if ((c->kind == K_F64 && want == HB_F64) || (c->kind == K_I64 && want == HB_I64))
        return io_read_slab(c->dset, c->space, io_native_of(c->kind), start, count, buf, where);
    size_t need = (size_t)count * c->size;
    if (need > t->scratch_bytes) {
        void *p = hb_realloc(t->scratch, need);
        if (!p) return HB_EINTERNAL;
        t->scratch = p;
        t->scratch_bytes = need;
    }
    HB_CALL(io_read_slab(c->dset, c->space, io_native_of(c->kind), start, count, t->scratch, where));
    convert(c->kind == K_OTHER ? K_F64 : c->kind, t->scratch, want, buf, count);
    return 0;
}

int hb_table_exact_f32(const hb_table *t, int col)
{
    if (t->cols[col].is_str) return 0;
    src_kind k = t->cols[col].kind;
    return k == K_F32 || k == K_I8 || k == K_U8 || k == K_I16 || k == K_U16;
}

int hb_table_attr_i64(hb_table *t, const char *name, int64_t *v, int *present)
{
    return io_attr_i64(t->group, ".", name, t->where, INT64_MIN, INT64_MAX, v, present);
}

/* Makes s hold count rows of up to bytes bytes in all. */
static int strs_reserve(hb_strs *s, int64_t count, size_t bytes)
{
    if (hb_grow((void **)&s->off, &s->off_cap, (size_t)count + 1, sizeof *s->off) ||
        hb_grow((void **)&s->bytes, &s->bytes_cap, bytes ? bytes : 1, 1))
        return hb_err_set(HB_EINTERNAL, "memory", "out of memory reading %lld strings", (long long)count);
    return 0;
}

/* Fixed-length strings: the stored bytes less their padding. */
static int read_fixed(hb_table *t, column *c, int64_t start, int64_t count, const char *where, hb_strs *s)
{
    size_t w = c->size, need = (size_t)count * w;
    if (need > t->scratch_bytes) {
        void *p = hb_realloc(t->scratch, need);
        if (!p) return HB_EINTERNAL;
        t->scratch = p;
        t->scratch_bytes = need;
    }
    hid_t mt = H5Tcopy(H5T_C_S1);
    HB_CALL_H5(mt, where);
    H5Tset_size(mt, w);
    H5Tset_strpad(mt, c->str_pad); /* the file's own layout: HDF5 moves the bytes as they are */
    H5Tset_cset(mt, c->str_cset);
    int rc = io_read_slab(c->dset, c->space, mt, start, count, t->scratch, where);
    H5Tclose(mt);
    HB_CALL(rc);
    HB_CALL(strs_reserve(s, count, need));
    const char *raw = t->scratch;
    size_t pos = 0;
    for (int64_t i = 0; i < count; i++) {
        const char *r = raw + (size_t)i * w;
        size_t n = c->str_pad == H5T_STR_SPACEPAD ? w : strnlen(r, w);
        if (c->str_pad == H5T_STR_SPACEPAD)
            while (n > 0 && r[n - 1] == ' ') n--;
        s->off[i] = pos;
        memcpy(s->bytes + pos, r, n);
        pos += n;
    }
    s->off[count] = pos;
    return 0;
}

/* Variable-length strings: HDF5 allocates each; they are copied and given back. */
static int read_vlen(hb_table *t, column *c, int64_t start, int64_t count, const char *where, hb_strs *s)
{
    size_t need = (size_t)count * sizeof(char *);
    if (need > t->scratch_bytes) {
        void *p = hb_realloc(t->scratch, need);
        if (!p) return HB_EINTERNAL;
        t->scratch = p;
        t->scratch_bytes = need;
    }
    char **p = t->scratch;
    memset(p, 0, need);
    hid_t mt = H5Tcopy(H5T_C_S1);
    HB_CALL_H5(mt, where);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, c->str_cset);
    int rc = io_read_slab(c->dset, c->space, mt, start, count, p, where);
    size_t total = 0;
    for (int64_t i = 0; rc == 0 && i < count; i++) total += p[i] ? strlen(p[i]) : 0;
    if (rc == 0) rc = strs_reserve(s, count, total);
    size_t pos = 0;
    for (int64_t i = 0; rc == 0 && i < count; i++) {
        size_t n = p[i] ? strlen(p[i]) : 0;
        s->off[i] = pos;
        memcpy(s->bytes + pos, p[i], n);
        pos += n;
    }
    if (rc == 0) s->off[count] = pos;
    hsize_t cn = (hsize_t)count;
    hid_t ms = H5Screate_simple(1, &cn, NULL);
    if (ms >= 0) {
        H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, p);
        H5Sclose(ms);
    }
    H5Tclose(mt);
    return rc;
}

int hb_table_read_str(hb_table *t, int col, int64_t start, int64_t count, hb_strs *s)
{
    column *c = &t->cols[col];
    char where[600];
    snprintf(where, sizeof where, "%s/%s", t->where, c->name);
    if (!c->is_str) return hb_err_set(HB_EDATA, t->where, "column '%s' is numeric; a string column is needed", c->name);
    if (count <= 0) {
        HB_CALL(strs_reserve(s, 0, 1));
        s->off[0] = 0;
        return 0;
    }
    return c->str_vlen ? read_vlen(t, c, start, count, where, s) : read_fixed(t, c, start, count, where, s);
}

void hb_strs_free(hb_strs *s)
{
    free(s->bytes);
    free(s->off);
    memset(s, 0, sizeof *s);
}

int hb_table_col_attr_str(hb_table *t, int col, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Aexists(t->cols[col].dset, name) <= 0) return 1;
    hid_t a = H5Aopen(t->cols[col].dset, name, H5P_DEFAULT);
    if (a < 0) return 1;
    hid_t ty = H5Aget_type(a);
    int rc = 1;
    if (H5Tget_class(ty) == H5T_STRING) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ty)); /* HDF5 converts no string between ASCII and UTF-8 */
        if (H5Tis_variable_str(ty) > 0) {
            char *v = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &v) >= 0 && v) snprintf(buf, len, "%s", v), rc = 0;
            H5free_memory(v);
        } else {
            size_t n = H5Tget_size(ty);
            char *v = calloc(n + 1, 1);
            H5Tset_size(mt, n + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            if (v && H5Aread(a, mt, v) >= 0) snprintf(buf, len, "%s", v), rc = 0;
            free(v);
        }
        H5Tclose(mt);
    }
    H5Tclose(ty);
    H5Aclose(a);
    return rc;
}

int hb_colmap_parse(const char *spec, hb_colmap *m, char *msg, size_t len)
{
    memset(m, 0, sizeof *m);
    if (!spec) return 0;
    char buf[4096];
    if (strlen(spec) >= sizeof buf) return snprintf(msg, len, "columns: the mapping is too long"), -1;
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ' || *item == '\t') item++;
        char *end = item + strlen(item);
        while (end > item && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
        if (!*item) continue;
        char *colon = strchr(item, ':');
        if (!colon || colon == item || !colon[1])
            return snprintf(msg, len, "columns: '%s' is not NAME:COLUMN (the kernel's name, then the table's)", item), -1;
        *colon = '\0';
        char *from = item, *to = colon + 1;
        for (char *e = colon; e > from && (e[-1] == ' ' || e[-1] == '\t');) *--e = '\0';
        while (*to == ' ' || *to == '\t') to++;
        if (strlen(from) >= sizeof m->from[0] || strlen(to) >= sizeof m->to[0])
            return snprintf(msg, len, "columns: '%s' is too long", from), -1;
        if (m->n == HB_COLMAP_MAX) return snprintf(msg, len, "columns: more than %d names", HB_COLMAP_MAX), -1;
        for (int i = 0; i < m->n; i++)
            if (strcmp(m->from[i], from) == 0) return snprintf(msg, len, "columns: '%s' is mapped twice", from), -1;
        snprintf(m->from[m->n], sizeof m->from[0], "%s", from);
        snprintf(m->to[m->n], sizeof m->to[0], "%s", to);
        m->n++;
    }
    return 0;
}

const char *hb_colmap_name(const hb_colmap *m, const char *name)
{
    for (int i = 0; m && i < m->n; i++)
        if (strcmp(m->from[i], name) == 0) return m->to[i];
    return name;
}

void hb_table_close(hb_table *t)
{
    if (!t) return;
    for (int i = 0; i < t->ncols; i++) {
        if (t->cols[i].space >= 0) H5Sclose(t->cols[i].space);
        if (t->cols[i].dset >= 0) H5Dclose(t->cols[i].dset);
    }
    if (t->group >= 0) H5Gclose(t->group);
    free(t->cols);
    free(t->scratch);
    free(t);
}

int hb_in_read_array(hb_in *in, const char *path, hb_elem want, int64_t *n, void **data)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%s", in->path, path);
    *data = NULL;
    *n = 0;
    if (!hb_in_exists(in, path)) return hb_err_set(HB_EDATA, where, "missing dataset");
    column c = {.dset = -1, .space = -1};
    const char *slash = strrchr(path, '/');
    char parent[512];
    snprintf(parent, sizeof parent, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    hid_t g = H5Oopen(in->file, parent, H5P_DEFAULT);
    HB_CALL_H5(g, where);
    int rc = open_column(g, slash + 1, where, &c);
    H5Oclose(g);
    hsize_t len = 0;
    if (rc == 0) {
        H5Sget_simple_extent_dims(c.space, &len, NULL);
        void *buf = hb_malloc((size_t)len * 8);
        void *raw = hb_malloc((size_t)len * c.size);
        if (!buf || !raw) rc = HB_EINTERNAL;
        if (rc == 0 && len > 0) rc = io_read_slab(c.dset, c.space, io_native_of(c.kind), 0, (int64_t)len, raw, where);
        if (rc == 0) convert(c.kind == K_OTHER ? K_F64 : c.kind, raw, want, buf, (int64_t)len);
        free(raw);
        if (rc == 0) *data = buf, *n = (int64_t)len;
        else free(buf);
    }
    if (c.space >= 0) H5Sclose(c.space);
    if (c.dset >= 0) H5Dclose(c.dset);
    return rc;
}
