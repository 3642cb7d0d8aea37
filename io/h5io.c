/* HDF5 layer: input tables read in hyperslabs with our own type conversion, collective
 * output writes, attributes and dimension scales. */
#include "h5io.h"

#include "../src/hb.h"

#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A negative hid_t or herr_t is an HDF5 failure: record it as an I/O error. */
#define H5_CALL(expr, what)                                                            \
    do {                                                                               \
        if ((expr) < 0) return hb_err_set(HB_EIO, (what), "HDF5 call failed: %s", #expr); \
    } while (0)

struct hb_in {
    hid_t file;
    char *path;
};

typedef enum { K_I8, K_U8, K_I16, K_U16, K_I32, K_U32, K_I64, K_U64, K_F32, K_F64, K_OTHER } src_kind;

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

struct hb_out {
    hid_t file, dcpl, gcpl, dxpl;
    char *path;
};

static hid_t mem_type(hb_elem t);

void hb_io_init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

int hb_in_open(const char *path, hb_in **inp)
{
    *inp = NULL;
    if (access(path, R_OK) != 0)
        return hb_err_set(HB_ENOINPUT, path, "%s", errno == ENOENT ? "no such file" : strerror(errno));
    if (H5Fis_hdf5(path) <= 0) return hb_err_set(HB_ENOINPUT, path, "not an HDF5 file");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return hb_err_set(HB_ENOINPUT, path, "cannot open HDF5 file");
    hb_in *in = hb_calloc(1, sizeof *in);
    if (!in) return H5Fclose(f), HB_EINTERNAL;
    in->file = f;
    in->path = hb_strdup(path);
    *inp = in;
    return in->path ? 0 : (hb_in_close(in), HB_EINTERNAL);
}

void hb_in_close(hb_in *in)
{
    if (!in) return;
    H5Fclose(in->file);
    free(in->path);
    free(in);
}

/* H5Lexists needs every parent to exist, so walk the path one link at a time. */
static int path_exists(hid_t loc, const char *path)
{
    if (strcmp(path, "/") == 0) return 1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0 || H5Oexists_by_name(loc, buf, H5P_DEFAULT) <= 0) return 0;
            if (c == '\0') return 1;
            *p = c;
        }
    }
}

int hb_in_exists(hb_in *in, const char *path) { return strcmp(path, "/") == 0 || path_exists(in->file, path); }

static src_kind kind_of(hid_t type, size_t *size)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t sz = H5Tget_size(type);
    *size = sz;
    if (cls == H5T_FLOAT) return sz == 4 ? K_F32 : sz == 8 ? K_F64 : K_OTHER;
    if (cls != H5T_INTEGER) return K_OTHER;
    int sgn = H5Tget_sign(type) == H5T_SGN_2;
    switch (sz) {
    case 1: return sgn ? K_I8 : K_U8;
    case 2: return sgn ? K_I16 : K_U16;
    case 4: return sgn ? K_I32 : K_U32;
    case 8: return sgn ? K_I64 : K_U64;
    }
    return K_OTHER;
}

static hid_t native_of(src_kind k)
{
    switch (k) {
    case K_I8: return H5T_NATIVE_INT8;
    case K_U8: return H5T_NATIVE_UINT8;
    case K_I16: return H5T_NATIVE_INT16;
    case K_U16: return H5T_NATIVE_UINT16;
    case K_I32: return H5T_NATIVE_INT32;
    case K_U32: return H5T_NATIVE_UINT32;
    case K_I64: return H5T_NATIVE_INT64;
    case K_U64: return H5T_NATIVE_UINT64;
    case K_F32: return H5T_NATIVE_FLOAT;
    default: return H5T_NATIVE_DOUBLE;
    }
}

static const char *class_name(hid_t type)
{
    switch (H5Tget_class(type)) {
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length";
    case H5T_OPAQUE: return "opaque";
    case H5T_BITFIELD: return "bitfield";
    case H5T_REFERENCE: return "reference";
    case H5T_TIME: return "time";
    default: return "non-numeric";
    }
}

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
    H5_CALL(type, where);
    c->kind = kind_of(type, &c->size);
    if (c->kind == K_OTHER) {
        H5T_class_t cls = H5Tget_class(type);
        int numeric = cls == H5T_INTEGER || cls == H5T_FLOAT;
        const char *cn = numeric ? "an unusual numeric" : class_name(type);
        H5Tclose(type);
        if (!numeric) return hb_err_set(HB_EDATA, where, "column '%s' has %s type; a number is needed", name, cn);
        c->size = 8; /* let HDF5 convert exotic sizes to double */
        c->kind = K_OTHER;
    } else {
        H5Tclose(type);
    }
    c->space = H5Dget_space(c->dset);
    H5_CALL(c->space, where);
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

/* Test hook (README, "Fault injection"): H5BATCH_FAULT_READ_FAIL=N[:TIMES] makes the
 * N-th hyperslab read of rank H5BATCH_FAULT_RANK (default 0) fail TIMES times (default 1). */
static int injected_read_failure(long read_no, int attempt)
{
    static long at = -1, times = 1, rank = 0;
    if (at < 0) {
        const char *v = getenv("H5BATCH_FAULT_READ_FAIL"), *r = getenv("H5BATCH_FAULT_RANK");
        at = 0;
        if (v && sscanf(v, "%ld:%ld", &at, &times) < 1) at = 0;
        if (r) rank = atol(r);
    }
    return at > 0 && read_no == at && attempt < times && hb_rank == rank;
}

/* Reads the selection, retrying a failed read (a transient I/O error on a network file
 * system should not cost the run); 74 once the attempts are spent. what names the rows. */
static int read_retry(hid_t dset, hid_t memtype, hid_t mspace, hid_t fspace, void *buf, const char *where,
                      const char *what)
{
    enum { ATTEMPTS = 3 };
    static long reads;
    long read_no = ++reads;
    herr_t e = -1;
    for (int attempt = 0; attempt < ATTEMPTS && e < 0; attempt++) {
        if (attempt > 0) {
            fprintf(stderr, "h5batch: warning: rank %d: %s: read of %s failed; retrying (%d of %d)\n", hb_rank, where,
                    what, attempt, ATTEMPTS - 1);
            usleep(100000u * (unsigned)attempt);
        }
        e = injected_read_failure(read_no, attempt) ? -1 : H5Dread(dset, memtype, mspace, fspace, H5P_DEFAULT, buf);
    }
    if (e < 0) return hb_err_set(HB_EIO, where, "read of %s failed %d times", what, ATTEMPTS);
    return 0;
}

/* Reads count elements of a 1-D dataset from start (with retries). */
static int read_slab(hid_t dset, hid_t fspace, hid_t memtype, int64_t start, int64_t count, void *buf,
                     const char *where)
{
    hsize_t st = (hsize_t)start, cn = (hsize_t)count;
    H5_CALL(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &st, NULL, &cn, NULL), where);
    hid_t mspace = H5Screate_simple(1, &cn, NULL);
    H5_CALL(mspace, where);
    char what[96];
    snprintf(what, sizeof what, "rows %lld..%lld", (long long)start, (long long)(start + count - 1));
    int rc = read_retry(dset, memtype, mspace, fspace, buf, where, what);
    H5Sclose(mspace);
    return rc;
}

int hb_table_read(hb_table *t, int col, int64_t start, int64_t count, hb_elem want, void *buf)
{
    if (count <= 0) return 0;
    column *c = &t->cols[col];
    char where[600];
    snprintf(where, sizeof where, "%s/%s", t->where, c->name);
    if ((c->kind == K_F64 && want == HB_F64) || (c->kind == K_I64 && want == HB_I64))
        return read_slab(c->dset, c->space, native_of(c->kind), start, count, buf, where);
    size_t need = (size_t)count * c->size;
    if (need > t->scratch_bytes) {
        void *p = hb_realloc(t->scratch, need);
        if (!p) return HB_EINTERNAL;
        t->scratch = p;
        t->scratch_bytes = need;
    }
    HB_CALL(read_slab(c->dset, c->space, native_of(c->kind), start, count, t->scratch, where));
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
    H5_CALL(a, t->where);
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
    H5_CALL(g, where);
    int rc = open_column(g, slash + 1, where, &c);
    H5Oclose(g);
    hsize_t len = 0;
    if (rc == 0) {
        H5Sget_simple_extent_dims(c.space, &len, NULL);
        void *buf = hb_malloc((size_t)len * 8);
        void *raw = hb_malloc((size_t)len * c.size);
        if (!buf || !raw) rc = HB_EINTERNAL;
        if (rc == 0 && len > 0) rc = read_slab(c.dset, c.space, native_of(c.kind), 0, (int64_t)len, raw, where);
        if (rc == 0) convert(c.kind == K_OTHER ? K_F64 : c.kind, raw, want, buf, (int64_t)len);
        free(raw);
        if (rc == 0) *data = buf, *n = (int64_t)len;
        else free(buf);
    }
    if (c.space >= 0) H5Sclose(c.space);
    if (c.dset >= 0) H5Dclose(c.dset);
    return rc;
}

/* ---- outputs ---- */

int hb_out_create(const char *path, hb_out **outp)
{
    *outp = NULL;
    hb_out *o = hb_calloc(1, sizeof *o);
    if (!o) return HB_EINTERNAL;
    o->file = o->dcpl = o->gcpl = o->dxpl = -1;
    *outp = o;
    o->path = hb_strdup(path);
    if (!o->path) return HB_EINTERNAL;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5_CALL(fapl, path);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    H5Pset_all_coll_metadata_ops(fapl, 1);
    H5Pset_coll_metadata_write(fapl, 1);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    o->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fapl);
    H5Pclose(fcpl);
    if (o->file < 0) return hb_err_set(HB_ECANTCREAT, path, "cannot create output file");
    o->dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(o->dcpl, 0); /* no creation times: outputs stay bit-identical */
    H5Pset_fill_time(o->dcpl, H5D_FILL_TIME_NEVER);
    H5Pset_alloc_time(o->dcpl, H5D_ALLOC_TIME_EARLY);
    o->gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(o->gcpl, 0);
    o->dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(o->dxpl, H5FD_MPIO_COLLECTIVE);
    return 0;
}

int hb_out_group(hb_out *o, const char *path)
{
    if (path_exists(o->file, path)) return 0;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(o->file, path, lcpl, o->gcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5_CALL(g, path);
    H5Gclose(g);
    return 0;
}

static hid_t file_type(hb_elem t)
{
    switch (t) {
    case HB_F64: return H5T_IEEE_F64LE;
    case HB_I64: case HB_ID: return H5T_STD_I64LE;
    case HB_U64: return H5T_STD_U64LE;
    case HB_U32: return H5T_STD_U32LE;
    case HB_U8: return H5T_STD_U8LE;
    case HB_I32: return H5T_STD_I32LE;
    case HB_F32: return H5T_IEEE_F32LE;
    }
    return H5T_IEEE_F64LE;
}

static hid_t mem_type(hb_elem t)
{
    switch (t) {
    case HB_F64: return H5T_NATIVE_DOUBLE;
    case HB_I64: case HB_ID: return H5T_NATIVE_INT64;
    case HB_U64: return H5T_NATIVE_UINT64;
    case HB_U32: return H5T_NATIVE_UINT32;
    case HB_U8: return H5T_NATIVE_UINT8;
    case HB_I32: return H5T_NATIVE_INT32;
    case HB_F32: return H5T_NATIVE_FLOAT;
    }
    return H5T_NATIVE_DOUBLE;
}

static int write_slab(hb_out *o, hid_t d, hb_elem t, int ndims, const uint64_t *dims, uint64_t off0, uint64_t cnt0,
                      const void *data, const char *path)
{
    hsize_t start[8] = {0}, count[8];
    for (int i = 0; i < ndims; i++) count[i] = dims[i];
    start[0] = off0;
    count[0] = cnt0;
    hid_t fs = H5Dget_space(d);
    H5_CALL(fs, path);
    hid_t ms = H5Screate_simple(ndims, count, NULL);
    if (cnt0 == 0) {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    } else {
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    herr_t e = H5Dwrite(d, mem_type(t), ms, fs, o->dxpl, data);
    H5Sclose(ms);
    H5Sclose(fs);
    if (e < 0) return hb_err_set(HB_EIO, o->path, "write of %s failed", path);
    return 0;
}

int hb_out_dataset(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *dims, const char *units,
                   const char *desc)
{
    hsize_t hd[8];
    for (int i = 0; i < ndims; i++) hd[i] = dims[i];
    hid_t space = H5Screate_simple(ndims, hd, NULL);
    H5_CALL(space, path);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(o->file, path, file_type(t), space, lcpl, o->dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Sclose(space);
    if (d < 0) return hb_err_set(HB_EIO, o->path, "cannot create dataset %s", path);
    H5Dclose(d);
    if (units) HB_CALL(hb_out_attr_str(o, path, "units", units));
    if (desc) HB_CALL(hb_out_attr_str(o, path, "description", desc));
    return 0;
}

int hb_out_slab(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *dims, uint64_t off0,
                uint64_t cnt0, const void *data)
{
    hid_t d = H5Dopen2(o->file, path, H5P_DEFAULT);
    if (d < 0) return hb_err_set(HB_EIO, o->path, "cannot open dataset %s", path);
    int rc = write_slab(o, d, t, ndims, dims, off0, cnt0, data, path);
    H5Dclose(d);
    return rc;
}

int hb_out_write(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *dims, uint64_t off0,
                 uint64_t cnt0, const void *data, const char *units, const char *desc)
{
    HB_CALL(hb_out_dataset(o, path, t, ndims, dims, units, desc));
    return hb_out_slab(o, path, t, ndims, dims, off0, cnt0, data);
}

int hb_out_scale(hb_out *o, const char *path, const char *name, hb_elem t, uint64_t n, const void *data,
                 const char *units)
{
    uint64_t dims[1] = {n};
    HB_CALL(hb_out_write(o, path, t, 1, dims, 0, hb_rank == 0 ? n : 0, data, units, NULL));
    hid_t d = H5Dopen2(o->file, path, H5P_DEFAULT);
    H5_CALL(d, path);
    herr_t e = H5DSset_scale(d, name);
    H5Dclose(d);
    H5_CALL(e, path);
    return 0;
}

int hb_out_attach(hb_out *o, const char *dataset, int dim, const char *scale)
{
    hid_t d = H5Dopen2(o->file, dataset, H5P_DEFAULT);
    H5_CALL(d, dataset);
    hid_t s = H5Dopen2(o->file, scale, H5P_DEFAULT);
    herr_t e = s < 0 ? -1 : H5DSattach_scale(d, s, (unsigned)dim);
    if (s >= 0) H5Dclose(s);
    H5Dclose(d);
    if (e < 0) return hb_err_set(HB_EIO, o->path, "cannot attach scale %s to %s", scale, dataset);
    return 0;
}

/* Creates (or replaces) attribute name on obj with the given type and shape. */
static int put_attr(hb_out *o, const char *obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                    const void *v)
{
    hid_t h = H5Oopen(o->file, obj, H5P_DEFAULT);
    if (h < 0) return hb_err_set(HB_EIO, o->path, "cannot open %s for attribute %s", obj, name);
    if (H5Aexists(h, name) > 0) H5Adelete(h, name);
    hid_t a = H5Acreate2(h, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, mtype, v);
    if (a >= 0) H5Aclose(a);
    H5Oclose(h);
    if (e < 0) return hb_err_set(HB_EIO, o->path, "cannot write attribute %s of %s", name, obj);
    return 0;
}

int hb_out_attr_u64(hb_out *o, const char *obj, const char *name, uint64_t v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = put_attr(o, obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, s, &v);
    H5Sclose(s);
    return rc;
}

int hb_out_attr_i64(hb_out *o, const char *obj, const char *name, int64_t v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = put_attr(o, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, s, &v);
    H5Sclose(s);
    return rc;
}

int hb_out_attr_f64(hb_out *o, const char *obj, const char *name, const double *v, int n)
{
    hsize_t len = (hsize_t)n;
    hid_t s = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &len, NULL);
    int rc = put_attr(o, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, v);
    H5Sclose(s);
    return rc;
}

int hb_out_attr_str(hb_out *o, const char *obj, const char *name, const char *v)
{
    /* variable-length UTF-8: h5py and pandas read it as str */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = put_attr(o, obj, name, t, t, s, &v);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

int hb_out_close(hb_out *o)
{
    if (!o) return 0;
    int rc = 0;
    if (o->dcpl >= 0) H5Pclose(o->dcpl);
    if (o->gcpl >= 0) H5Pclose(o->gcpl);
    if (o->dxpl >= 0) H5Pclose(o->dxpl);
    if (o->file >= 0 && H5Fclose(o->file) < 0) rc = hb_err_set(HB_EIO, o->path, "closing the output failed");
    free(o->path);
    free(o);
    return rc;
}

/* Reads the string attribute name of object obj of file f into buf: 0 when found. */
static int read_str_attr(hid_t f, const char *obj, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!path_exists(f, obj) || H5Aexists_by_name(f, obj, name, H5P_DEFAULT) <= 0) return 1;
    int rc = 1;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &s) >= 0 && s) {
            snprintf(buf, len, "%s", s);
            rc = 0;
        }
        H5free_memory(s);
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int hb_out_probe(const char *path, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Fis_hdf5(path) <= 0) return 1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 1;
    int rc = read_str_attr(f, "/provenance", name, buf, len);
    H5Fclose(f);
    return rc;
}

int hb_in_attr_str(hb_in *in, const char *obj, const char *name, char *buf, size_t len)
{
    return read_str_attr(in->file, obj, name, buf, len);
}

int hb_in_attr_i64(hb_in *in, const char *obj, const char *name, int64_t *v)
{
    if (!path_exists(in->file, obj) || H5Aexists_by_name(in->file, obj, name, H5P_DEFAULT) <= 0)
        return hb_err_set(HB_EDATA, in->path, "%s has no attribute '%s'", obj, name);
    hid_t a = H5Aopen_by_name(in->file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Aread(a, H5T_NATIVE_INT64, v);
    if (a >= 0) H5Aclose(a);
    if (e < 0) return hb_err_set(HB_EDATA, in->path, "attribute '%s' of %s is not an integer", name, obj);
    return 0;
}

int hb_in_read_raw(hb_in *in, const char *path, hb_elem t, int64_t start, int64_t count, void *buf)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%s", in->path, path);
    if (count <= 0) return 0;
    if (!hb_in_exists(in, path)) return hb_err_set(HB_EDATA, where, "missing dataset");
    hid_t d = H5Dopen2(in->file, path, H5P_DEFAULT);
    H5_CALL(d, where);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    int rc = 0;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1) rc = hb_err_set(HB_EDATA, where, "not a 1-D dataset");
    if (rc == 0) H5Sget_simple_extent_dims(sp, &n, NULL);
    if (rc == 0 && (start < 0 || (hsize_t)(start + count) > n))
        rc = hb_err_set(HB_EDATA, where, "rows %lld..%lld are past its %llu rows", (long long)start,
                        (long long)(start + count - 1), (unsigned long long)n);
    if (rc == 0) rc = read_slab(d, sp, mem_type(t), start, count, buf, where);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

/* ---- 2-D inputs and block writes (added for the risk kernel and gen market) ---- */

/* Opens dataset path of the input and checks that it is numeric; where names it. */
static int open_numeric(hb_in *in, const char *path, const char *where, hid_t *dset)
{
    *dset = -1;
    if (!hb_in_exists(in, path)) return hb_err_set(HB_EDATA, where, "missing dataset");
    hid_t d = H5Dopen2(in->file, path, H5P_DEFAULT);
    if (d < 0) return hb_err_set(HB_EDATA, where, "not a dataset");
    hid_t type = H5Dget_type(d);
    H5T_class_t cls = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    const char *cn = type < 0 ? "unknown" : class_name(type);
    if (type >= 0) H5Tclose(type);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        H5Dclose(d);
        return hb_err_set(HB_EDATA, where, "has %s type; numbers are needed", cn);
    }
    *dset = d;
    return 0;
}

int hb_in_dims(hb_in *in, const char *path, int *ndims, int64_t *dims)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%s", in->path, path);
    hid_t d;
    HB_CALL(open_numeric(in, path, where, &d));
    hid_t space = H5Dget_space(d);
    int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    hsize_t hd[8];
    if (nd >= 0 && nd <= 8) H5Sget_simple_extent_dims(space, hd, NULL);
    if (space >= 0) H5Sclose(space);
    H5Dclose(d);
    if (nd < 0) return hb_err_set(HB_EIO, where, "cannot read the shape");
    if (nd > 8) return hb_err_set(HB_EDATA, where, "has %d dimensions; at most 8 are supported", nd);
    *ndims = nd;
    for (int i = 0; i < nd; i++) dims[i] = (int64_t)hd[i];
    return 0;
}

int hb_in_read_rows(hb_in *in, const char *path, int64_t row0, int64_t nrows, double *buf)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%s", in->path, path);
    hid_t d;
    HB_CALL(open_numeric(in, path, where, &d));
    hid_t fs = H5Dget_space(d);
    hsize_t hd[2] = {0, 0};
    int rc = 0;
    if (fs < 0 || H5Sget_simple_extent_ndims(fs) != 2) {
        rc = hb_err_set(HB_EDATA, where, "is not two-dimensional");
    } else {
        H5Sget_simple_extent_dims(fs, hd, NULL);
        if (row0 < 0 || nrows < 0 || (hsize_t)(row0 + nrows) > hd[0])
            rc = hb_err_set(HB_EDATA, where, "rows %lld..%lld are out of range (%llu rows)", (long long)row0,
                            (long long)(row0 + nrows - 1), (unsigned long long)hd[0]);
    }
    if (rc == 0 && nrows > 0 && hd[1] > 0) {
        hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)nrows, hd[1]};
        hid_t ms = H5Screate_simple(2, count, NULL);
        herr_t e = ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        char what[96];
        snprintf(what, sizeof what, "rows %lld..%lld", (long long)row0, (long long)(row0 + nrows - 1));
        rc = e < 0 ? hb_err_set(HB_EIO, where, "cannot select %s", what)
                   : read_retry(d, H5T_NATIVE_DOUBLE, ms, fs, buf, where, what);
        if (ms >= 0) H5Sclose(ms);
    }
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    return rc;
}

int hb_out_block(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *start, const uint64_t *count,
                 const void *data)
{
    hid_t d = H5Dopen2(o->file, path, H5P_DEFAULT);
    if (d < 0) return hb_err_set(HB_EIO, o->path, "cannot open dataset %s", path);
    hsize_t st[8], cn[8];
    for (int i = 0; i < ndims; i++) st[i] = start[i], cn[i] = count[i];
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(ndims, cn, NULL);
    herr_t e = fs < 0 || ms < 0 ? -1 : 0;
    if (e == 0 && count[0] == 0) {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    } else if (e == 0) {
        e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, cn, NULL);
    }
    if (e >= 0) e = H5Dwrite(d, mem_type(t), ms, fs, o->dxpl, data);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    if (e < 0) return hb_err_set(HB_EIO, o->path, "write of %s failed", path);
    return 0;
}

/* ---- 1-D datasets held open for repeated reads (added for the index kernel and query) ---- */

struct hb_dset {
    hid_t dset, space, native;
    int64_t n;
    char where[600];
};

int hb_dset_open(hb_in *in, const char *path, hb_dset **dp, hb_dset_info *info)
{
    *dp = NULL;
    memset(info, 0, sizeof *info);
    hb_dset *d = hb_calloc(1, sizeof *d);
    if (!d) return HB_EINTERNAL;
    d->dset = d->space = d->native = -1;
    snprintf(d->where, sizeof d->where, "%s:%s", in->path, path);
    int rc = open_numeric(in, path, d->where, &d->dset);
    if (rc == 0) {
        hid_t type = H5Dget_type(d->dset);
        d->native = type < 0 ? -1 : H5Tget_native_type(type, H5T_DIR_ASCEND);
        if (type >= 0) {
            info->elem_bytes = H5Tget_size(type);
            info->is_int = H5Tget_class(type) == H5T_INTEGER;
            info->is_signed = info->is_int && H5Tget_sign(type) == H5T_SGN_2;
            H5Tclose(type);
        }
        d->space = H5Dget_space(d->dset);
        if (d->native < 0 || d->space < 0) rc = hb_err_set(HB_EIO, d->where, "cannot read the type or shape");
    }
    if (rc == 0 && H5Sget_simple_extent_ndims(d->space) != 1)
        rc = hb_err_set(HB_EDATA, d->where, "is not one-dimensional");
    if (rc == 0) {
        hsize_t len = 0;
        H5Sget_simple_extent_dims(d->space, &len, NULL);
        d->n = info->n = (int64_t)len;
        *dp = d;
        return 0;
    }
    hb_dset_close(d);
    return rc;
}

int hb_dset_read(hb_dset *d, hb_elem t, int64_t start, int64_t count, void *buf)
{
    if (count <= 0) return 0;
    if (start < 0 || start > d->n - count)
        return hb_err_set(HB_EDATA, d->where, "elements %lld..%lld are past its %lld elements", (long long)start,
                          (long long)(start + count - 1), (long long)d->n);
    /* text bytes keep their bits even when the file calls them signed */
    hid_t mt = t == HB_U8 && H5Tget_class(d->native) == H5T_INTEGER && H5Tget_size(d->native) == 1 ? d->native
                                                                                                 : mem_type(t);
    return read_slab(d->dset, d->space, mt, start, count, buf, d->where);
}

void hb_dset_close(hb_dset *d)
{
    if (!d) return;
    if (d->native >= 0) H5Tclose(d->native);
    if (d->space >= 0) H5Sclose(d->space);
    if (d->dset >= 0) H5Dclose(d->dset);
    free(d);
}

struct hb_oset {
    hid_t dset, dxpl;
    hb_out *out;
    char path[256];
};

int hb_oset_open(hb_out *out, const char *path, hb_oset **dp)
{
    *dp = NULL;
    hb_oset *d = hb_calloc(1, sizeof *d);
    if (!d) return HB_EINTERNAL;
    d->out = out;
    snprintf(d->path, sizeof d->path, "%s", path);
    d->dset = H5Dopen2(out->file, path, H5P_DEFAULT);
    d->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (d->dxpl >= 0) H5Pset_dxpl_mpio(d->dxpl, H5FD_MPIO_INDEPENDENT);
    *dp = d;
    if (d->dset < 0 || d->dxpl < 0) return hb_err_set(HB_EIO, out->path, "cannot open dataset %s", path);
    return 0;
}

int hb_oset_write(hb_oset *d, hb_elem t, uint64_t off, uint64_t cnt, const void *data)
{
    /* pieces well below 2 GB: MPI-IO counts are ints */
    const uint64_t piece = ((uint64_t)1 << 30) / H5Tget_size(mem_type(t));
    for (uint64_t a = 0; a < cnt; a += piece) {
        hsize_t st = off + a, n = cnt - a < piece ? cnt - a : piece;
        hid_t fs = H5Dget_space(d->dset), ms = H5Screate_simple(1, &n, NULL);
        herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &n, NULL);
        if (e >= 0)
            e = H5Dwrite(d->dset, mem_type(t), ms, fs, d->dxpl,
                         (const char *)data + a * H5Tget_size(mem_type(t)));
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        if (e < 0) return hb_err_set(HB_EIO, d->out->path, "write of %s failed", d->path);
    }
    return 0;
}

void hb_oset_close(hb_oset *d)
{
    if (!d) return;
    if (d->dxpl >= 0) H5Pclose(d->dxpl);
    if (d->dset >= 0) H5Dclose(d->dset);
    free(d);
}
