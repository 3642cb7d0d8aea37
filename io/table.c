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

/* Opens a 1-D numeric dataset and fills c; where names it in errors. */
static int open_column(hid_t loc, const char *name, const char *where, column *c)
{
    snprintf(c->name, sizeof c->name, "%s", name);
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return hb_err_set(HB_EDATA, where, "missing column '%s'", name);
    c->dset = H5Dopen2(loc, name, H5P_DEFAULT);
    if (c->dset < 0) return hb_err_set(HB_EDATA, where, "'%s' is not a dataset", name);
    hid_t type = H5Dget_type(c->dset);
    HB_CALL_H5(type, where);
    c->kind = io_kind_of(type, &c->size);
    if (c->kind == K_OTHER) {
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

int hb_table_open(hb_in *in, const char *group, const char *const *cols, int ncols, hb_table **tp)
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
        HB_CALL(open_column(t->group, cols[i], t->where, &t->cols[i]));
        hsize_t n;
        H5Sget_simple_extent_dims(t->cols[i].space, &n, NULL);
        if (i == 0) t->rows = (int64_t)n;
        else if ((int64_t)n != t->rows)
            return hb_err_set(HB_EDATA, t->where, "columns have unequal lengths: '%s' has %lld rows, '%s' has %llu",
                              cols[0], (long long)t->rows, cols[i], (unsigned long long)n);
    }
    return 0;
}

int64_t hb_table_rows(const hb_table *t) { return t->rows; }

int hb_table_read(hb_table *t, int col, int64_t start, int64_t count, hb_elem want, void *buf)
{
    if (count <= 0) return 0;
    column *c = &t->cols[col];
    char where[600];
    snprintf(where, sizeof where, "%s/%s", t->where, c->name);
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
    src_kind k = t->cols[col].kind;
    return k == K_F32 || k == K_I8 || k == K_U8 || k == K_I16 || k == K_U16;
}

int hb_table_attr_i64(hb_table *t, const char *name, int64_t *v, int *present)
{
    *present = 0;
    if (H5Aexists(t->group, name) <= 0) return 0;
    hid_t a = H5Aopen(t->group, name, H5P_DEFAULT);
    HB_CALL_H5(a, t->where);
    hid_t type = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(type);
    H5Tclose(type);
    double d = 0;
    herr_t e = (cls == H5T_INTEGER || cls == H5T_FLOAT) ? H5Aread(a, H5T_NATIVE_DOUBLE, &d) : -1;
    H5Aclose(a);
    if (e < 0 || d != floor(d)) return hb_err_set(HB_EDATA, t->where, "attribute '%s' is not an integer", name);
    *v = (int64_t)d;
    *present = 1;
    return 0;
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
