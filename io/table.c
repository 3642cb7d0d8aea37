/* Tables as users write them (DESIGN.md 4, docs/tables.md): a group of equal-length 1-D
 * columns; a 1-D compound dataset whose fields are the columns (h5py, PyTables, pandas
 * to_hdf(format="table") at /KEY/table, its values_block_N fields included); pandas
 * to_hdf(format="fixed") (/KEY/blockN_values [rows, k] with the names in blockN_items).
 * Every layout is read in row ranges through the same calls and converted to the
 * kernels' element types by our own loops. */
#include "internal.h"

#include "core/calendar.h"

#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { LAY_GROUP, LAY_COMPOUND, LAY_FIXED } layout;

#define CF_FILLS 16 /* fills a column may name */

typedef struct column {
    hid_t dset, space; /* its own (group layout, pandas fixed) or the table's compound dataset */
    int owned;         /* 1 when dset and space are this column's to close */
    src_kind kind;
    size_t size; /* bytes per element in memory for kind */
    hid_t mem;   /* the memory type its numbers are read as (io_mem_of) */
    char name[256];
    /* string columns (only opened by hb_table_open_any): fixed-length ones in size bytes
     * a row with this padding, or variable-length */
    int is_str, str_vlen;
    H5T_str_t str_pad;
    H5T_cset_t str_cset;
    /* a field of the compound dataset: its name and, for an array field (pandas'
     * values_block_N), its width k and this column's place j in it; for pandas fixed, column
     * j of the k columns of a 2-D dataset. Plain columns have k = 1, j = 0. */
    char field[256];
    int k, j, in2d, arr; /* arr: the field is an array (of k elements, maybe one) */
    /* a numeric field stored as the native type of kind: read from whole records at this
     * byte offset (HDF5 converting a compound one field at a time is ten times slower) */
    int raw_ok;
    size_t offset;
    /* a pandas categorical of strings (is_str too): its integer codes are read, and row i
     * is label cats[code] (code -1, pandas' NaN, the empty string) */
    int cat;
    hb_strs cats;
    int64_t ncats, *codes;
    size_t codes_cap;
    /* where the last read of a string column found missing values (a categorical's code
     * -1, pandas' nan_rep): 1 a row; has_miss 0 when the column has none to find */
    uint8_t *miss;
    size_t miss_cap;
    int has_miss;
    /* CF's mask and scale, as xarray decodes a variable (docs/tables.md): a row whose
     * stored number is one of the nfill fills (_FillValue, missing_value, in the column's
     * own type) is missing; a number read as a value is stored * scale + add (scaled:
     * either attribute given) */
    int nfill, scaled;
    uint64_t fill[CF_FILLS];
    double scale, add;
    /* the DataFrame's index of pandas format="fixed" (its axis1), read by the index's name */
    int pd_index;
    /* a numeric vector stored as a matrix of one column (N x 1, numpy's column vector: 1)
     * or of one row (1 x N, MATLAB's column vector in a v7.3 .mat file: 2), of n rows */
    int vec;
    int64_t n;
    /* a time counted in a coarser unit or from another epoch (CF "hours since 2024-01-01"):
     * read as stored * tmul + toff, in the unit hb_table_time_unit names (tmul 0: as stored) */
    int64_t tmul, toff;
} column;

struct hb_table {
    hb_in *in;
    layout lay;
    hid_t obj;   /* the object named by `table`: its attributes are the table's */
    hid_t cdset; /* the compound dataset (LAY_COMPOUND) */
    hid_t cspace;
    hid_t rec_type; /* its records as stored, when they hold no variable-length data */
    size_t rec_size;
    void *recs;     /* a piece of records */
    size_t recs_bytes;
    int ncols;
    column *cols;
    int64_t rows;
    void *scratch;
    size_t scratch_bytes;
    char where[512];
    /* pandas format="table": the group holding the compound dataset (its meta/ the
     * categoricals' labels) and the text pandas writes for a missing string (nan_rep) */
    char pgroup[1024], nan_rep[64];
    /* the name of the DataFrame's index (df.set_index("time")), which pandas stores as the
     * field "index": the column of that name is that field */
    char index_name[256];
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

/* LOOP(T) for the C type T of element kind k (K_OTHER: double, what HDF5 converts it to). */
#define KIND_SWITCH(k, LOOP)                  \
    switch (k) {                              \
    case K_I8: LOOP(int8_t); break;           \
    case K_U8: LOOP(uint8_t); break;          \
    case K_I16: LOOP(int16_t); break;         \
    case K_U16: LOOP(uint16_t); break;        \
    case K_I32: LOOP(int32_t); break;         \
    case K_U32: LOOP(uint32_t); break;        \
    case K_I64: LOOP(int64_t); break;         \
    case K_U64: LOOP(uint64_t); break;        \
    case K_F32: LOOP(float); break;           \
    default: LOOP(double); break;             \
    }

static void convert(src_kind k, const void *src, hb_elem want, void *dst, int64_t n)
{
    KIND_SWITCH(k, CONVERT_LOOP)
}


/* Fills c's element kind (or string layout when allow_str) from the HDF5 type of its
 * elements; where and name say what is wrong. */
static int column_type(hid_t type, const char *name, const char *where, int allow_str, column *c)
{
    c->kind = io_kind_of(type, &c->size);
    c->mem = c->kind == K_OTHER ? H5T_NATIVE_DOUBLE : io_mem_of(type, c->kind);
    if (c->kind != K_OTHER) return 0;
    H5T_class_t cls = H5Tget_class(type);
    if (allow_str && cls == H5T_STRING) {
        c->is_str = 1;
        c->str_vlen = H5Tis_variable_str(type) > 0;
        c->str_pad = H5Tget_strpad(type);
        c->str_cset = H5Tget_cset(type);
        return 0;
    }
    if (cls == H5T_STRING)
        return hb_err_set(HB_EDATA, where, "column '%s' has string type; a number is needed", name);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        return hb_err_set(HB_EDATA, where, "column '%s' has %s type; a number is needed", name, io_class_name(type));
    c->size = 8; /* let HDF5 convert exotic sizes to double */
    return 0;
}

/* A dataset whose storage was never written, whole or in part (h5py's create_dataset
 * with a shape and no data, a writer that preallocated 10^12 rows and stopped after
 * 1000): HDF5 reads the unwritten rows as the fill value, zeros that a kernel would take
 * for data (speed 0 at 1970-01-01), and a scan of a declared extent that was never
 * written can take hours. Refused at open (65), naming the column. */
static int check_written(hid_t dset, hid_t dcpl, const char *name, const char *where)
{
    hid_t sp = H5Dget_space(dset);
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK] = {0}, npts = 1, ch[H5S_MAX_RANK] = {0}, want = 1, have = 0;
    if (nd > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
    for (int i = 0; i < nd; i++) npts *= dims[i];
    const H5D_layout_t lay = nd < 1 || npts == 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(dcpl);
    int chunks_ok = 1; /* every chunk written, or none to count (HDF5 1.10 wants the space, 1.12 takes H5S_ALL) */
    if (lay == H5D_CHUNKED && H5Pget_chunk(dcpl, nd, ch) == nd) {
        for (int i = 0; i < nd; i++) want *= ch[i] ? (dims[i] + ch[i] - 1) / ch[i] : 1;
        chunks_ok = H5Dget_num_chunks(dset, sp, &have) < 0 || have >= want;
    }
    if (sp >= 0) H5Sclose(sp);
    if (lay == H5D_CHUNKED) {
        if (chunks_ok) return 0;
        return hb_err_set(HB_EDATA, where,
                          "column '%s' declares %llu rows in %llu chunks, of which %llu were ever written: the others "
                          "would read as its fill value, not as data: write only the rows there are (h5py shrinks a "
                          "dataset made with maxshape=(None,) by dset.resize((n,)))",
                          name, (unsigned long long)dims[0], (unsigned long long)want, (unsigned long long)have);
    }
    if (lay == H5D_CONTIGUOUS) {
        H5D_space_status_t st;
        if (H5Dget_space_status(dset, &st) >= 0 && st == H5D_SPACE_STATUS_NOT_ALLOCATED)
            return hb_err_set(HB_EDATA, where,
                              "column '%s' was created with %llu rows but never written: it would read as its fill "
                              "value, not as data", name, (unsigned long long)dims[0]);
    }
    return 0;
}

/* A dataset compressed with a filter this HDF5 cannot load (a plugin not installed)
 * would fail at its first read; say so at open, naming the filter (66). Then
 * check_written. */
static int check_filters(hid_t dset, const char *name, const char *where)
{
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0) return 0;
    int n = H5Pget_nfilters(dcpl), rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        unsigned flags, conf;
        size_t nv = 0;
        char fname[128] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nv, NULL, sizeof fname, fname, &conf);
        fname[strcspn(fname, ";")] = '\0'; /* "HDF5 zstd filter; see https://..." */
        if (id >= 0 && H5Zfilter_avail(id) <= 0)
            rc = hb_err_set(HB_ENOINPUT, where,
                            "column '%s' is compressed with HDF5 filter %d (%s), which is not installed: scripts/deps.sh "
                            "installs Debian's filter plugins, HDF5_PLUGIN_PATH names other folders (docs/tables.md)",
                            name, (int)id, fname[0] ? fname : "unknown");
    }
    if (rc == 0) rc = check_written(dset, dcpl, name, where);
    H5Pclose(dcpl);
    return rc;
}

static char *attr_text(hid_t obj, const char *name);

/* ---- CF's mask and scale (docs/tables.md "Missing and packed values") ---- */

/* The unsigned kind of a signed one, for netCDF's _Unsigned = "true". */
static src_kind unsigned_kind(src_kind k)
{
    return k == K_I8 ? K_U8 : k == K_I16 ? K_U16 : k == K_I32 ? K_U32 : k == K_I64 ? K_U64 : k;
}

/* Adds the numbers of attribute name of c's dataset to c's fills, each as stored in the
 * column's own type; a number that type cannot hold matches no row and is left out. */
static int cf_fills(column *c, const char *name, const char *where)
{
    if (H5Aexists(c->dset, name) <= 0) return 0;
    hid_t a = H5Aopen(c->dset, name, H5P_DEFAULT), ty = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
    const H5T_class_t cls = ty < 0 ? H5T_NO_CLASS : H5Tget_class(ty);
    const hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int rc = 0;
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        rc = hb_err_set(HB_EDATA, where, "column '%s': attribute %s is not a number", c->name, name);
    else if (n < 0 || n > CF_FILLS - c->nfill)
        rc = hb_err_set(HB_EDATA, where, "column '%s': attribute %s names more than %d missing values", c->name,
                        name, CF_FILLS);
    unsigned char own[CF_FILLS * 8];
    double d[CF_FILLS];
    if (rc == 0 && n > 0 && (H5Aread(a, c->mem, own) < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, d) < 0))
        rc = hb_err_set(HB_EIO, where, "column '%s': cannot read attribute %s", c->name, name);
    for (hssize_t i = 0; rc == 0 && i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, own + (size_t)i * c->size, c->size);
        /* what HDF5 made of it in the column's type, as a double: not the number when
         * the type cannot hold it (HDF5 clips -9999 to 0 as uint8) */
        double back = 0;
#define BACK(T) do { T x; memcpy(&x, &v, sizeof x); back = (double)x; } while (0)
        KIND_SWITCH(c->mem == H5T_NATIVE_DOUBLE ? K_F64 : io_kind_of(c->mem, &(size_t){0}), BACK)
#undef BACK
        /* a float column's fill is compared in its own type, as xarray casts it (1e30 given
         * as a double is float32's 1e30f); an integer's must be the number itself */
        const int fl = c->kind == K_F32 || c->kind == K_F64 || c->kind == K_OTHER;
        if (back == d[i] || (isnan(back) && isnan(d[i])) || (fl && isfinite(back) == isfinite(d[i])))
            c->fill[c->nfill++] = v;
    }
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* The number of attribute name (one, finite) into *v; *v unchanged when absent. */
static int cf_number(column *c, const char *name, const char *where, double *v)
{
    if (H5Aexists(c->dset, name) <= 0) return 0;
    hid_t a = H5Aopen(c->dset, name, H5P_DEFAULT), ty = a < 0 ? -1 : H5Aget_type(a);
    const H5T_class_t cls = ty < 0 ? H5T_NO_CLASS : H5Tget_class(ty);
    double x = NAN;
    int ok = (cls == H5T_INTEGER || cls == H5T_FLOAT) && io_attr_one(a) && H5Aread(a, H5T_NATIVE_DOUBLE, &x) >= 0;
    if (ty >= 0) H5Tclose(ty);
    if (a >= 0) H5Aclose(a);
    if (!ok || !isfinite(x))
        return hb_err_set(HB_EDATA, where, "column '%s': attribute %s is not one finite number", c->name, name);
    *v = x;
    c->scaled = 1;
    return 0;
}

/* Reads the CF attributes of numeric column c (a dataset of its own) as xarray's
 * decoding does: _Unsigned, _FillValue, missing_value, scale_factor, add_offset. */
static int open_cf(column *c, const char *where)
{
    char *u = attr_text(c->dset, "_Unsigned");
    if (u && strcasecmp(u, "true") == 0) c->kind = unsigned_kind(c->kind); /* c->mem, the bytes read, unchanged */
    free(u);
    c->scale = 1, c->add = 0;
    HB_CALL(cf_fills(c, "_FillValue", where));
    HB_CALL(cf_fills(c, "missing_value", where));
    HB_CALL(cf_number(c, "scale_factor", where, &c->scale));
    return cf_number(c, "add_offset", where, &c->add);
}

/* Marks the missing rows of n stored numbers raw (of c's kind) in dst, converted to
 * want: NaN for values, INT64_MIN (a missing time or key) or -1 (an invalid id). */
#define MASK_LOOP(T)                                                                     \
    do {                                                                                 \
        const T *s = (const T *)raw;                                                     \
        for (int f = 0; f < c->nfill; f++) {                                             \
            T fv;                                                                        \
            memcpy(&fv, &c->fill[f], sizeof fv);                                         \
            if (want == HB_F64) {                                                        \
                double *d = dst;                                                         \
                for (int64_t i = 0; i < n; i++) d[i] = s[i] == fv ? (double)NAN : d[i];  \
            } else {                                                                     \
                int64_t *d = dst, m = want == HB_ID ? -1 : INT64_MIN;                    \
                for (int64_t i = 0; i < n; i++) d[i] = s[i] == fv ? m : d[i];            \
            }                                                                            \
        }                                                                                \
    } while (0)

static void cf_mask(const column *c, const void *raw, hb_elem want, void *dst, int64_t n)
{
    KIND_SWITCH(c->kind, MASK_LOOP)
}

/* The error of a column name of loc that did not open as a dataset: a link to a file or
 * an object that is not there (66, naming its target), else an object of another kind
 * (65). */
static int link_error(hid_t loc, const char *name, const char *where)
{
    H5L_info_t li;
    char val[2048];
    const char *file = NULL, *obj = NULL;
    unsigned flags = 0;
    if (H5Lget_info(loc, name, &li, H5P_DEFAULT) >= 0 && li.type == H5L_TYPE_EXTERNAL && li.u.val_size <= sizeof val &&
        H5Lget_val(loc, name, val, sizeof val, H5P_DEFAULT) >= 0 &&
        H5Lunpack_elink_val(val, li.u.val_size, &flags, &file, &obj) >= 0)
        return hb_err_set(HB_ENOINPUT, where, "'%s' is an external link to %s:%s, which cannot be opened", name, file, obj);
    if (H5Lget_info(loc, name, &li, H5P_DEFAULT) >= 0 && li.type == H5L_TYPE_SOFT && li.u.val_size <= sizeof val &&
        H5Lget_val(loc, name, val, sizeof val, H5P_DEFAULT) >= 0 && H5Oexists_by_name(loc, name, H5P_DEFAULT) <= 0)
        return hb_err_set(HB_EDATA, where, "'%s' is a soft link to %.*s, which is not there", name, (int)li.u.val_size, val);
    return hb_err_set(HB_EDATA, where, "'%s' is not a dataset", name);
}

/* Opens the 1-D dataset name of loc as column c (numeric, or string when allow_str). */
static int open_column_as(hid_t loc, const char *name, const char *where, int allow_str, column *c)
{
    snprintf(c->name, sizeof c->name, "%s", name);
    c->k = 1;
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return hb_err_set(HB_EDATA, where, "missing column '%s'", name);
    c->dset = H5Dopen2(loc, name, H5P_DEFAULT);
    if (c->dset < 0) return link_error(loc, name, where);
    c->owned = 1;
    hid_t type = H5Dget_type(c->dset);
    HB_CALL_H5(type, where);
    int rc = column_type(type, name, where, allow_str, c);
    H5Tclose(type);
    HB_CALL(rc);
    c->space = H5Dget_space(c->dset);
    HB_CALL_H5(c->space, where);
    const int nd = H5Sget_simple_extent_ndims(c->space);
    hsize_t d[H5S_MAX_RANK] = {0};
    if (nd >= 1 && nd <= H5S_MAX_RANK) H5Sget_simple_extent_dims(c->space, d, NULL);
    c->n = nd >= 1 ? (int64_t)d[0] : 0;
    if (nd == 2 && !c->is_str && (d[1] == 1 || d[0] == 1)) { /* a column or a row vector: a column */
        c->vec = d[1] == 1 ? 1 : 2;
        c->n = (int64_t)(d[1] == 1 ? d[0] : d[1]);
    } else if (nd != 1) {
        char shape[200] = "a scalar";
        for (int i = 0, at = 0; i < nd && at < (int)sizeof shape - 24; i++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%llu", i ? " x " : "", (unsigned long long)d[i]);
        return hb_err_set(HB_EDATA, where, "column '%s' is %s (%s), where a table's columns are one-dimensional: "
                          "flatten the grid into rows, a column for each variable and coordinate (xarray: "
                          "ds.to_dataframe().reset_index())", name, nd ? "an array" : "one value", shape);
    }
    HB_CALL(check_filters(c->dset, name, where));
    return c->is_str ? 0 : open_cf(c, where);
}

static int open_column(hid_t loc, const char *name, const char *where, column *c)
{
    return open_column_as(loc, name, where, 0, c);
}

/* ---- compound datasets ---- */

/* Appends the UTF-8 encoding of code point u to out (of room len, pos advanced). */
static void put_utf8(char *out, size_t len, size_t *pos, unsigned long u)
{
    unsigned char b[4];
    size_t n = u < 0x80 ? 1 : u < 0x800 ? 2 : u < 0x10000 ? 3 : 4;
    if (n == 1) b[0] = (unsigned char)u;
    else if (n == 2) b[0] = (unsigned char)(0xC0 | (u >> 6)), b[1] = (unsigned char)(0x80 | (u & 0x3F));
    else if (n == 3)
        b[0] = (unsigned char)(0xE0 | (u >> 12)), b[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3F)),
        b[2] = (unsigned char)(0x80 | (u & 0x3F));
    else
        b[0] = (unsigned char)(0xF0 | (u >> 18)), b[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3F)),
        b[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3F)), b[3] = (unsigned char)(0x80 | (u & 0x3F));
    if (*pos + n < len) memcpy(out + *pos, b, n), *pos += n;
}

/* The column names pandas keeps for the block values_block_N: its attribute
 * values_block_N_kind, a Python list of str pickled with protocol 0, "(lp0\nVtime\np1\naVspeed\np2\na."
 * (each name a line 'V' + raw-unicode-escape: Latin-1 bytes as they are, others as \uXXXX).
 * Fills names (k of them, each of room 256); -1 when the text is not such a list. */
static int pandas_kind_names(const char *s, int k, char (*names)[256])
{
    int n = 0;
    for (const char *line = s; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *p = line;
        while (p < end && *p == 'a') p++;
        if (p < end && *p == 'V') {
            if (n == k) return -1;
            size_t pos = 0;
            for (p++; p < end;) {
                unsigned char ch = (unsigned char)*p;
                if (ch == '\\' && p + 1 < end && (p[1] == 'u' || p[1] == 'U')) {
                    int w = p[1] == 'u' ? 4 : 8;
                    if (end - p < 2 + w) return -1;
                    char hex[9] = {0};
                    memcpy(hex, p + 2, (size_t)w);
                    put_utf8(names[n], 255, &pos, strtoul(hex, NULL, 16));
                    p += 2 + w;
                } else {
                    put_utf8(names[n], 255, &pos, ch); /* Latin-1 */
                    p++;
                }
            }
            names[n++][pos] = '\0';
        }
        line = *end ? end + 1 : end;
    }
    return n == k ? 0 : -1;
}

/* Reads the string attribute name of obj (fixed or variable length) into a new buffer;
 * NULL when absent, not a string or not one (an array of strings). */
static char *attr_text(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t ty = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(ty) == H5T_STRING && io_attr_one(a)) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ty));
        if (H5Tis_variable_str(ty) > 0) {
            char *v = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &v) >= 0 && v) out = hb_strdup(v);
            H5free_memory(v);
        } else {
            size_t n = H5Tget_size(ty);
            out = calloc(n + 1, 1);
            H5Tset_size(mt, n + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            if (out && H5Aread(a, mt, out) < 0) free(out), out = NULL;
        }
        H5Tclose(mt);
    }
    H5Tclose(ty);
    H5Aclose(a);
    return out;
}

/* The columns of a compound type: one per scalar field, and one per name of a pandas
 * values_block_N array field. */
typedef struct fieldcol {
    char name[256], field[256];
    int member, k, j, arr;
} fieldcol;

static int compound_columns(hid_t dset, hid_t ftype, const char *where, fieldcol **out, int *nout)
{
    int nm = H5Tget_nmembers(ftype), n = 0, cap = nm + 8;
    fieldcol *fc = hb_calloc((size_t)cap, sizeof *fc);
    if (!fc) return HB_EINTERNAL;
    int rc = 0;
    for (int m = 0; m < nm && rc == 0; m++) {
        char *fname = H5Tget_member_name(ftype, (unsigned)m);
        hid_t mt = H5Tget_member_type(ftype, (unsigned)m);
        int k = 1, arr = H5Tget_class(mt) == H5T_ARRAY;
        if (arr) {
            hsize_t dims[4] = {0};
            int nd = H5Tget_array_ndims(mt);
            if (nd == 1) H5Tget_array_dims2(mt, dims), k = (int)dims[0];
            else k = -1;
        }
        char kattr[300];
        snprintf(kattr, sizeof kattr, "%s_kind", fname ? fname : "");
        char *kind = fname && k >= 1 && strncmp(fname, "values_block_", 13) == 0 ? attr_text(dset, kattr) : NULL;
        if (kind) {
            char (*names)[256] = hb_calloc((size_t)k, sizeof *names);
            if (!names) rc = HB_EINTERNAL;
            else if (pandas_kind_names(kind, k, names) != 0)
                rc = hb_err_set(HB_EDATA, where,
                                "cannot read the column names of pandas' block %s (attribute %s): write the table "
                                "with to_hdf(..., format=\"table\", data_columns=True)",
                                fname, kattr);
            for (int j = 0; rc == 0 && j < k; j++) {
                if (n == cap) {
                    fieldcol *p = hb_realloc(fc, (size_t)(cap *= 2) * sizeof *fc);
                    if (!p) {
                        rc = HB_EINTERNAL;
                        break;
                    }
                    fc = p;
                }
                fc[n] = (fieldcol){.member = m, .k = k, .j = j, .arr = arr};
                snprintf(fc[n].name, sizeof fc[n].name, "%s", names[j]);
                snprintf(fc[n].field, sizeof fc[n].field, "%s", fname);
                n++;
            }
            free(names);
            free(kind);
        } else if (fname && k == 1) {
            if (n == cap) {
                fieldcol *p = hb_realloc(fc, (size_t)(cap *= 2) * sizeof *fc);
                if (!p) rc = HB_EINTERNAL;
                else fc = p;
            }
            if (rc == 0) {
                fc[n] = (fieldcol){.member = m, .k = 1, .j = 0, .arr = arr};
                snprintf(fc[n].name, sizeof fc[n].name, "%s", fname);
                snprintf(fc[n].field, sizeof fc[n].field, "%s", fname);
                n++;
            }
        } /* other array fields are not columns */
        H5Tclose(mt);
        H5free_memory(fname);
    }
    if (rc) return free(fc), rc;
    *out = fc;
    *nout = n;
    return 0;
}

/* "a, b, c" of the available names, for the message of a missing column. */
static void list_names(const fieldcol *fc, int n, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && pos + 1 < len; i++) {
        int w = snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", fc[i].name);
        if (w < 0 || (size_t)w >= len - pos) {
            snprintf(buf + (len > 5 ? len - 5 : 0), len > 5 ? 5 : len, " ...");
            return;
        }
        pos += (size_t)w;
    }
}

/* 1 when a member of compound type ct (or of its arrays) is a variable-length string. */
static int has_vlen_str(hid_t ct)
{
    int nm = H5Tget_nmembers(ct), found = 0;
    for (int m = 0; m < nm && !found; m++) {
        hid_t mt = H5Tget_member_type(ct, (unsigned)m);
        hid_t base = H5Tget_class(mt) == H5T_ARRAY ? H5Tget_super(mt) : H5Tcopy(mt);
        found = H5Tget_class(base) == H5T_COMPOUND ? has_vlen_str(base)
                : H5Tget_class(base) == H5T_STRING && H5Tis_variable_str(base) > 0;
        H5Tclose(base);
        H5Tclose(mt);
    }
    return found;
}

static int read_str(hb_table *t, int col, int64_t start, int64_t count, int check, hb_strs *s);

/* A pandas categorical (attribute FIELD_meta "category"): the codes are the field, the
 * labels the column "values" of the table meta/FIELD/meta/table beside the compound
 * dataset. String labels make the column a string one (allow_str; 65 where the kernel
 * reads numbers); numeric labels are 65 too: reading the codes would give numbers the
 * user never wrote. */
static int open_categories(hb_table *t, column *c, int allow_str)
{
    char attr[300], path[1400];
    snprintf(attr, sizeof attr, "%s_meta", c->field);
    char *meta = attr_text(t->cdset, attr);
    const int is_cat = meta && strcmp(meta, "category") == 0;
    free(meta);
    if (!is_cat || c->kind == K_F64 || c->kind == K_OTHER) return 0;
    snprintf(path, sizeof path, "%s/meta/%s/meta/table", t->pgroup, c->field);
    hb_table *ct = NULL;
    const char *vals[] = {"values"};
    int rc = hb_in_exists(t->in, path) ? hb_table_open_any(t->in, path, vals, 1, &ct)
                                        : hb_err_set(HB_EDATA, t->where, "column '%s' is a pandas categorical whose "
                                                     "categories (%s) are missing", c->name, path);
    if (rc == 0 && !ct->cols[0].is_str)
        rc = hb_err_set(HB_EDATA, t->where, "column '%s' is a pandas categorical of numbers, whose codes are not its "
                        "values: store the values (df['%s'] = df['%s'].astype(float))", c->name, c->name, c->name);
    else if (rc == 0 && !allow_str)
        rc = hb_err_set(HB_EDATA, t->where, "column '%s' is a pandas categorical of strings; a number is needed "
                        "here: store numbers, or its codes (df['%s'].cat.codes)", c->name, c->name);
    if (rc == 0) rc = read_str(ct, 0, 0, hb_table_rows(ct), 1, &c->cats);
    if (rc == 0) c->cat = 1, c->is_str = 1, c->has_miss = 1, c->ncats = hb_table_rows(ct);
    hb_table_close(ct);
    return rc;
}

/* The group holding the compound dataset and, where pandas wrote it (attribute
 * pandas_type), its nan_rep: strings equal to it are pandas' missing values. */
static void pandas_group(hb_table *t)
{
    H5Iget_name(t->cdset, t->pgroup, sizeof t->pgroup);
    char *slash = strrchr(t->pgroup, '/');
    if (slash) *slash = '\0';
    hid_t g = H5Oopen(t->in->file, t->pgroup[0] ? t->pgroup : "/", H5P_DEFAULT);
    if (g < 0) return;
    char *type = attr_text(g, "pandas_type"), *rep = type ? attr_text(g, "nan_rep") : NULL;
    if (rep && strlen(rep) < sizeof t->nan_rep) snprintf(t->nan_rep, sizeof t->nan_rep, "%s", rep);
    /* info, a pickle (protocol 0) of {..., "index": {"index_name": NAME}}: the text line
     * after the key's memo line, "VNAME" (N for None, g for a name met before: neither read) */
    char *info = type ? attr_text(g, "info") : NULL, *at = info ? strstr(info, "\nVindex_name\n") : NULL;
    if (at) {
        const char *memo = at + strlen("\nVindex_name\n"), *val = memo[0] == 'p' ? strchr(memo, '\n') : NULL;
        char one[1][256];
        const char *end = val ? strchr(val + 1, '\n') : NULL;
        if (end && val[1] == 'V') {
            char line[300];
            snprintf(line, sizeof line, "%.*s", (int)(end - val - 1), val + 1);
            if (pandas_kind_names(line, 1, one) == 0) snprintf(t->index_name, sizeof t->index_name, "%s", one[0]);
        }
    }
    free(type), free(rep), free(info);
    H5Oclose(g);
}

static int open_compound(hb_table *t, const char *const *cols, int ncols, int allow_str)
{
    t->lay = LAY_COMPOUND;
    pandas_group(t);
    t->cspace = H5Dget_space(t->cdset);
    HB_CALL_H5(t->cspace, t->where);
    if (H5Sget_simple_extent_ndims(t->cspace) != 1)
        return hb_err_set(HB_EDATA, t->where, "the compound dataset is not one-dimensional");
    hsize_t n;
    H5Sget_simple_extent_dims(t->cspace, &n, NULL);
    t->rows = (int64_t)n;
    hid_t ftype = H5Dget_type(t->cdset);
    HB_CALL_H5(ftype, t->where);
    if (H5Tdetect_class(ftype, H5T_VLEN) == 0 && !has_vlen_str(ftype)) {
        t->rec_type = H5Tcopy(ftype);
        t->rec_size = H5Tget_size(ftype);
    }
    fieldcol *fc = NULL;
    int nfc = 0;
    int rc = compound_columns(t->cdset, ftype, t->where, &fc, &nfc);
    for (int i = 0; i < ncols && rc == 0; i++) {
        column *c = &t->cols[i];
        snprintf(c->name, sizeof c->name, "%s", cols[i]);
        int f = -1;
        for (int x = 0; x < nfc && f < 0; x++)
            if (strcmp(fc[x].name, cols[i]) == 0) f = x;
        for (int x = 0; x < nfc && f < 0 && t->index_name[0] && strcmp(cols[i], t->index_name) == 0; x++)
            if (strcmp(fc[x].name, "index") == 0) f = x; /* the DataFrame's index, by its name */
        if (f < 0) {
            char names[400];
            list_names(fc, nfc, names, sizeof names);
            int am = H5Tget_member_index(ftype, cols[i]); /* a field of several values a row is no column */
            if (am >= 0)
                rc = hb_err_set(HB_EDATA, t->where, "column '%s' is a field of several values a row (an array field "
                                "of the compound dataset); a column holds one value a row: write each as a field of "
                                "its own", cols[i]);
            else
                rc = hb_err_set(HB_EDATA, t->where, "missing column '%s' (the compound dataset's columns: %s)", cols[i],
                                names);
            break;
        }
        c->dset = t->cdset, c->space = t->cspace;
        c->k = fc[f].k, c->j = fc[f].j, c->arr = fc[f].arr;
        snprintf(c->field, sizeof c->field, "%s", fc[f].field);
        hid_t mt = H5Tget_member_type(ftype, (unsigned)fc[f].member);
        hid_t base = H5Tget_class(mt) == H5T_ARRAY ? H5Tget_super(mt) : H5Tcopy(mt);
        rc = column_type(base, cols[i], t->where, allow_str, c);
        if (rc == 0 && t->rec_type >= 0 && !c->is_str && c->kind != K_OTHER &&
            H5Tequal(base, io_native_of(c->kind)) > 0) {
            c->raw_ok = 1;
            c->offset = H5Tget_member_offset(ftype, (unsigned)fc[f].member) + (size_t)c->j * c->size;
        }
        if (rc == 0 && c->is_str && c->str_vlen && c->k > 1)
            rc = hb_err_set(HB_EDATA, t->where, "column '%s' is in an array of variable-length strings; a field "
                            "of its own is needed", cols[i]);
        if (rc == 0 && !c->is_str) rc = open_categories(t, c, allow_str);
        else if (rc == 0 && t->nan_rep[0]) c->has_miss = 1;
        H5Tclose(base);
        H5Tclose(mt);
    }
    free(fc);
    H5Tclose(ftype);
    HB_CALL(rc);
    return check_filters(t->cdset, ncols ? cols[0] : "", t->where);
}

/* ---- pandas format="fixed": blockN_items names the columns of blockN_values [rows, k] ---- */

static int read_strs_col(hb_table *t, column *c, int64_t start, int64_t count, int check, hb_strs *s);

static int open_fixed(hb_table *t, hid_t g, const char *const *cols, int ncols)
{
    t->lay = LAY_FIXED;
    int found = 0;
    hb_strs items = {0};
    int rc = 0;
    for (int b = 0; rc == 0 && found < ncols; b++) {
        char iname[64], vname[64];
        snprintf(iname, sizeof iname, "block%d_items", b);
        snprintf(vname, sizeof vname, "block%d_values", b);
        if (H5Lexists(g, iname, H5P_DEFAULT) <= 0) break;
        column ic = {.dset = -1, .space = -1};
        rc = open_column_as(g, iname, t->where, 1, &ic);
        hsize_t k = 0;
        if (rc == 0) H5Sget_simple_extent_dims(ic.space, &k, NULL);
        if (rc == 0 && !ic.is_str) rc = hb_err_set(HB_EDATA, t->where, "%s is not a list of names", iname);
        if (rc == 0) rc = read_strs_col(t, &ic, 0, (int64_t)k, 0, &items);
        if (ic.space >= 0) H5Sclose(ic.space);
        if (ic.dset >= 0) H5Dclose(ic.dset);
        for (int64_t j = 0; rc == 0 && j < (int64_t)k; j++) {
            size_t len = (size_t)(items.off[j + 1] - items.off[j]);
            for (int i = 0; rc == 0 && i < ncols; i++) {
                column *c = &t->cols[i];
                if (c->dset >= 0 || strlen(cols[i]) != len || memcmp(cols[i], items.bytes + items.off[j], len) != 0)
                    continue;
                snprintf(c->name, sizeof c->name, "%s", cols[i]);
                c->dset = H5Dopen2(g, vname, H5P_DEFAULT);
                if (c->dset < 0) {
                    rc = hb_err_set(HB_EDATA, t->where, "missing %s for column '%s'", vname, cols[i]);
                    break;
                }
                c->owned = 1;
                c->space = H5Dget_space(c->dset);
                hid_t ty = H5Dget_type(c->dset);
                hsize_t dims[2] = {0, 0};
                if (c->space < 0 || ty < 0) {
                    rc = hb_err_set(HB_EIO, t->where, "cannot read %s", vname);
                } else if (H5Tget_class(ty) != H5T_INTEGER && H5Tget_class(ty) != H5T_FLOAT &&
                           io_kind_of(ty, &(size_t){0}) == K_OTHER) {
                    rc = hb_err_set(HB_EDATA, t->where,
                                    "column '%s' is stored by pandas' format=\"fixed\" as pickled Python objects "
                                    "(%s): write it with to_hdf(..., format=\"table\")",
                                    cols[i], vname);
                } else if (H5Sget_simple_extent_ndims(c->space) != 2) {
                    rc = hb_err_set(HB_EDATA, t->where, "%s is not a two-dimensional array", vname);
                } else {
                    H5Sget_simple_extent_dims(c->space, dims, NULL);
                    rc = column_type(ty, cols[i], t->where, 0, c);
                    c->k = 1, c->j = (int)j, c->in2d = 1;
                    if (rc == 0 && dims[1] != k)
                        rc = hb_err_set(HB_EDATA, t->where, "%s has %llu columns for %llu names", vname,
                                        (unsigned long long)dims[1], (unsigned long long)k);
                    if (rc == 0 && found == 0) t->rows = (int64_t)dims[0];
                    else if (rc == 0 && (int64_t)dims[0] != t->rows)
                        rc = hb_err_set(HB_EDATA, t->where, "blocks have unequal lengths");
                    if (rc == 0) rc = check_filters(c->dset, cols[i], t->where);
                }
                if (ty >= 0) H5Tclose(ty);
                found++;
            }
        }
    }
    hb_strs_free(&items);
    /* the DataFrame's index, axis1, by its name (the attribute name; "N." is pickled None) or as "index" */
    char *iname = NULL;
    hid_t ax = rc == 0 && H5Lexists(g, "axis1", H5P_DEFAULT) > 0 ? H5Dopen2(g, "axis1", H5P_DEFAULT) : -1;
    if (ax >= 0) iname = attr_text(ax, "name"), H5Dclose(ax);
    for (int i = 0; rc == 0 && i < ncols; i++) {
        column *c = &t->cols[i];
        if (c->dset >= 0 || !(strcmp(cols[i], "index") == 0 || (iname && strcmp(iname, "N.") != 0 && strcmp(iname, cols[i]) == 0)))
            continue;
        rc = open_column_as(g, "axis1", t->where, 0, c);
        snprintf(c->name, sizeof c->name, "%s", cols[i]);
        c->pd_index = 1;
        if (rc == 0 && found == 0) t->rows = c->n;
        else if (rc == 0 && c->n != t->rows)
            rc = hb_err_set(HB_EDATA, t->where, "the index has %lld rows, the blocks %lld", (long long)c->n,
                            (long long)t->rows);
        found++;
    }
    free(iname);
    for (int i = 0; rc == 0 && i < ncols; i++)
        if (t->cols[i].dset < 0) rc = hb_err_set(HB_EDATA, t->where, "missing column '%s' (pandas format=\"fixed\")", cols[i]);
    return rc;
}

/* What the file's root holds, for a table not found: its groups and datasets, and
 * `table = /` where the root itself holds columns (h5py, xarray's netCDF). */
typedef struct roothint {
    char names[240];
    int n, dsets;
} roothint;

static herr_t root_entry(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    roothint *h = op;
    H5O_info_t oi;
    if (info->type != H5L_TYPE_HARD || H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) return 0;
    if (oi.type == H5O_TYPE_DATASET) h->dsets++;
    if (h->n < 6) {
        size_t at = strlen(h->names);
        snprintf(h->names + at, sizeof h->names - at, "%s%s%s", h->n ? ", " : "", name,
                 oi.type == H5O_TYPE_GROUP ? "/" : "");
    } else if (h->n == 6) {
        size_t at = strlen(h->names);
        snprintf(h->names + at, sizeof h->names - at, ", ...");
    }
    h->n++;
    return 0;
}

static void table_hint(hb_in *in, char *hint, size_t len)
{
    roothint h = {.names = ""};
    hint[0] = '\0';
    if (H5Literate(in->file, H5_INDEX_NAME, H5_ITER_INC, NULL, root_entry, &h) < 0 || h.n == 0) return;
    snprintf(hint, len, "; the file holds %s%s", h.names,
             h.dsets ? " (table = / reads the root's datasets as columns)" : "");
}

static int table_open(hb_in *in, const char *path, const char *const *cols, int ncols, int allow_str,
                      hb_table **tp)
{
    *tp = NULL;
    hb_table *t = hb_calloc(1, sizeof *t);
    if (!t) return HB_EINTERNAL;
    *tp = t;
    t->in = in;
    t->obj = t->cdset = t->cspace = t->rec_type = -1;
    snprintf(t->where, sizeof t->where, "%s:%s", in->path, path);
    t->cols = hb_calloc((size_t)(ncols > 0 ? ncols : 1), sizeof *t->cols);
    if (!t->cols) return HB_EINTERNAL;
    for (int i = 0; i < ncols; i++) t->cols[i].dset = t->cols[i].space = -1, t->cols[i].k = 1;
    t->ncols = ncols;
    if (!hb_in_exists(in, path)) {
        char hint[400];
        table_hint(in, hint, sizeof hint);
        return hb_err_set(HB_EDATA, t->where, "no such table (group or compound dataset)%s", hint);
    }
    t->obj = H5Oopen(in->file, path, H5P_DEFAULT);
    if (t->obj < 0) return hb_err_set(HB_EDATA, t->where, "not a group or compound dataset");
    H5I_type_t it = H5Iget_type(t->obj);
    if (it == H5I_DATASET) {
        hid_t ty = H5Dget_type(t->obj);
        int compound = ty >= 0 && H5Tget_class(ty) == H5T_COMPOUND;
        if (ty >= 0) H5Tclose(ty);
        if (!compound) return hb_err_set(HB_EDATA, t->where, "not a group of columns or a compound dataset");
        t->cdset = H5Dopen2(t->obj, ".", H5P_DEFAULT);
        HB_CALL_H5(t->cdset, t->where);
        return open_compound(t, cols, ncols, allow_str);
    }
    if (it != H5I_GROUP) return hb_err_set(HB_EDATA, t->where, "not a group or compound dataset");
    /* pandas format="table" keeps its compound dataset at /KEY/table */
    if (H5Lexists(t->obj, "table", H5P_DEFAULT) > 0 && H5Oexists_by_name(t->obj, "table", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(t->obj, "table", H5P_DEFAULT);
        hid_t ty = d >= 0 ? H5Dget_type(d) : -1;
        int compound = ty >= 0 && H5Tget_class(ty) == H5T_COMPOUND;
        if (ty >= 0) H5Tclose(ty);
        if (compound) {
            t->cdset = d;
            return open_compound(t, cols, ncols, allow_str);
        }
        if (d >= 0) H5Dclose(d);
    }
    if (H5Lexists(t->obj, "block0_items", H5P_DEFAULT) > 0 && H5Lexists(t->obj, "axis0", H5P_DEFAULT) > 0)
        return open_fixed(t, t->obj, cols, ncols);
    t->lay = LAY_GROUP;
    for (int i = 0; i < ncols; i++) /* every column's shape before the lengths: a grid is named as one */
        HB_CALL(open_column_as(t->obj, cols[i], t->where, allow_str, &t->cols[i]));
    for (int i = 0; i < ncols; i++) {
        const hsize_t n = (hsize_t)t->cols[i].n;
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

int hb_table_check_unpacked(const hb_table *t, int col)
{
    const column *c = &t->cols[col];
    if (!c->scaled) return 0;
    return hb_err_set(HB_EDATA, t->where, "column '%s' is packed (scale_factor %g, add_offset %g): its numbers are "
                      "scaled values, where a time, key or id is stored as integers", c->name, c->scale, c->add);
}

hb_col_kind hb_table_kind(const hb_table *t, int col)
{
    const column *c = &t->cols[col];
    if (c->is_str) return HB_COL_STRING;
    return c->scaled || c->kind == K_F32 || c->kind == K_F64 || c->kind == K_OTHER ? HB_COL_FLOAT : HB_COL_INT;
}

/* Makes the table's scratch buffer hold at least need bytes. */
static int scratch_reserve(hb_table *t, size_t need)
{
    if (need <= t->scratch_bytes) return 0;
    void *p = hb_realloc(t->scratch, need);
    if (!p) return hb_err_set(HB_EINTERNAL, "memory", "out of memory reading a table (%zu bytes)", need);
    t->scratch = p;
    t->scratch_bytes = need;
    return 0;
}

/* Reads rows [start, start+count) of column c as elements of memory type elem (esz
 * bytes) into buf, which holds count * c->k elements: a compound field through a
 * memory compound type of that one field (HDF5 moves only its bytes), then the column's
 * element of an array field moved to the front; a pandas fixed column as a hyperslab
 * of one column of its 2-D block. */
static int read_elems(column *c, hid_t elem, size_t esz, int64_t start, int64_t count, void *buf, const char *where)
{
    if (c->in2d || c->vec) {
        const int row = c->vec == 2; /* a 1 x N row: the hyperslab runs along the second dimension */
        hsize_t st[2] = {row ? 0 : (hsize_t)start, row ? (hsize_t)start : (hsize_t)c->j},
                cn[2] = {row ? 1 : (hsize_t)count, row ? (hsize_t)count : 1}, mn = (hsize_t)count;
        HB_CALL_H5(H5Sselect_hyperslab(c->space, H5S_SELECT_SET, st, NULL, cn, NULL), where);
        hid_t ms = H5Screate_simple(1, &mn, NULL);
        HB_CALL_H5(ms, where);
        char what[96];
        snprintf(what, sizeof what, "rows %lld..%lld", (long long)start, (long long)(start + count - 1));
        int rc = io_read_retry(c->dset, elem, ms, c->space, buf, where, what);
        H5Sclose(ms);
        return rc;
    }
    if (!c->field[0]) return io_read_slab(c->dset, c->space, elem, start, count, buf, where);
    hid_t member = elem, mt = -1;
    if (c->arr) {
        hsize_t k = (hsize_t)c->k;
        member = H5Tarray_create2(elem, 1, &k);
        HB_CALL_H5(member, where);
    }
    mt = H5Tcreate(H5T_COMPOUND, esz * (size_t)c->k);
    int rc = mt < 0 || H5Tinsert(mt, c->field, 0, member) < 0 ? hb_err_set(HB_EIO, where, "cannot make the memory type of field '%s'", c->field) : 0;
    if (rc == 0) rc = io_read_slab(c->dset, c->space, mt, start, count, buf, where);
    if (mt >= 0) H5Tclose(mt);
    if (c->arr) H5Tclose(member);
    if (rc == 0 && c->k > 1) {
        char *b = buf;
        for (int64_t i = 0; i < count; i++) memmove(b + (size_t)i * esz, b + ((size_t)i * (size_t)c->k + (size_t)c->j) * esz, esz);
    }
    return rc;
}

/* A numeric field's elements (c->size bytes each) gathered from whole records read in
 * pieces of at most 16 MB; out holds count of them. */
static int read_from_records(hb_table *t, column *c, int64_t start, int64_t count, void *out, const char *where)
{
    int64_t piece = (int64_t)((16u << 20) / t->rec_size);
    if (piece < 1) piece = 1;
    if (piece > count) piece = count;
    size_t need = (size_t)piece * t->rec_size;
    if (need > t->recs_bytes) {
        void *p = hb_realloc(t->recs, need);
        if (!p) return hb_err_set(HB_EINTERNAL, "memory", "out of memory reading a table (%zu bytes)", need);
        t->recs = p;
        t->recs_bytes = need;
    }
    const size_t rs = t->rec_size, off = c->offset, es = c->size;
    for (int64_t s = 0; s < count; s += piece) {
        int64_t n = count - s < piece ? count - s : piece;
        HB_CALL(io_read_slab(t->cdset, t->cspace, t->rec_type, start + s, n, t->recs, where));
        const char *r = (const char *)t->recs + off;
        char *o = (char *)out + (size_t)s * es;
        if (es == 8)
            for (int64_t i = 0; i < n; i++) memcpy(o + (size_t)i * 8, r + (size_t)i * rs, 8);
        else
            for (int64_t i = 0; i < n; i++) memcpy(o + (size_t)i * es, r + (size_t)i * rs, es);
    }
    return 0;
}

/* Rows [start, start+count) of numeric column c (or a categorical's codes) as want. */
static int read_num(hb_table *t, column *c, int64_t start, int64_t count, hb_elem want, void *buf)
{
    char where[800];
    snprintf(where, sizeof where, "%s/%s", t->where, c->name);
    hid_t nt = c->mem;
    if (c->scaled && want != HB_F64)
        return hb_err_set(HB_EDATA, t->where, "column '%s' is packed (scale_factor %g, add_offset %g): its numbers "
                          "are scaled values, where a time, key or id is stored as integers", c->name, c->scale, c->add);
    const int same = !c->nfill && !c->scaled &&
                     ((c->kind == K_F64 && want == HB_F64) || (c->kind == K_I64 && want == HB_I64));
    if (c->raw_ok && same) return read_from_records(t, c, start, count, buf, where);
    if (c->k == 1 && same) return read_elems(c, nt, 8, start, count, buf, where);
    HB_CALL(scratch_reserve(t, (size_t)count * (size_t)c->k * c->size));
    if (c->raw_ok) HB_CALL(read_from_records(t, c, start, count, t->scratch, where));
    else HB_CALL(read_elems(c, nt, c->size, start, count, t->scratch, where));
    convert(c->kind == K_OTHER ? K_F64 : c->kind, t->scratch, want, buf, count);
    if (c->nfill) cf_mask(c, t->scratch, want, buf, count);
    if (c->scaled) {
        double *d = buf;
        const double a = c->scale, b = c->add;
#pragma omp simd
        for (int64_t i = 0; i < count; i++) d[i] = d[i] * a + b;
    }
    return 0;
}

int hb_table_read(hb_table *t, int col, int64_t start, int64_t count, hb_elem want, void *buf)
{
    if (count <= 0) return 0;
    column *c = &t->cols[col];
    if (c->is_str) return hb_err_set(HB_EDATA, t->where, "column '%s' has string type; a number is needed", c->name);
    return read_num(t, c, start, count, want, buf);
}

hb_raw_kind hb_table_raw_kind(const hb_table *t, int col)
{
    const column *c = &t->cols[col];
    if (c->is_str || c->nfill || c->scaled) return HB_RAW_OTHER; /* decoded by read_num */
    switch (c->kind) {
    case K_I32: return HB_RAW_I32;
    case K_U32: return HB_RAW_U32;
    case K_I64: return HB_RAW_I64;
    case K_F32: return HB_RAW_F32;
    case K_F64: return HB_RAW_F64;
    default: return HB_RAW_OTHER;
    }
}

int hb_table_read_raw(hb_table *t, int col, int64_t start, int64_t count, void *buf)
{
    if (count <= 0) return 0;
    column *c = &t->cols[col];
    char where[800];
    snprintf(where, sizeof where, "%s/%s", t->where, c->name);
    if (hb_table_raw_kind(t, col) == HB_RAW_OTHER)
        return hb_err_set(HB_EINTERNAL, t->where, "column '%s' is not of a type read as stored", c->name);
    if (c->raw_ok) return read_from_records(t, c, start, count, buf, where);
    if (c->k == 1) return read_elems(c, c->mem, c->size, start, count, buf, where);
    HB_CALL(scratch_reserve(t, (size_t)count * (size_t)c->k * c->size)); /* an array field: its element moved to the front */
    HB_CALL(read_elems(c, c->mem, c->size, start, count, t->scratch, where));
    memcpy(buf, t->scratch, (size_t)count * c->size);
    return 0;
}

/* ---- times (DESIGN.md 4): counts of a unit since the epoch, checked to lie in 1900-2200 ---- */

int64_t hb_time_unit_per_s(const char *unit)
{
    if (!unit || strcmp(unit, "s") == 0) return 1;
    if (strcmp(unit, "ms") == 0) return 1000;
    if (strcmp(unit, "us") == 0) return 1000000;
    if (strcmp(unit, "ns") == 0) return 1000000000;
    return 0;
}

/* The time_unit a unit's name stands for (s, ms, us, ns, or their words, any case); NULL
 * for any other name. n: the name's length. */
static const char *unit_word(const char *w, size_t n)
{
    static const char *const names[][4] = {{"s", "sec", "second", "seconds"},
                                           {"ms", "msec", "millisecond", "milliseconds"},
                                           {"us", "usec", "microsecond", "microseconds"},
                                           {"ns", "nsec", "nanosecond", "nanoseconds"}};
    static const char *const unit[] = {"s", "ms", "us", "ns"};
    for (int u = 0; u < 4; u++)
        for (int j = 0; j < 4; j++)
            if (strlen(names[u][j]) == n && strncasecmp(w, names[u][j], n) == 0) return unit[u];
    return NULL;
}

/* Reads a number of at most max digits at *s (advanced); -1 when there is none. */
static int64_t cf_digits(const char **s, int max)
{
    int64_t v = 0;
    int n = 0;
    for (; n < max && **s >= '0' && **s <= '9'; n++, (*s)++) v = v * 10 + (**s - '0');
    return n ? v : -1;
}

/* The instant CF's "since" names, as whole seconds since 1970-01-01 UTC (*sec) and a
 * fraction of a second in ns (*ns): "Y-M-D", then optionally a time "h:m[:s[.f]]" after
 * a space or a T, then optionally a zone "Z", "UTC", "GMT" or an offset "+hh[:mm]",
 * "-hhmm". 0 when s is none of these. */
static int cf_epoch(const char *s, int64_t *sec, int64_t *ns)
{
    int64_t y = cf_digits(&s, 4), mo = -1, d = -1, h = 0, mi = 0, se = 0, f = 0;
    if (y < 0 || *s++ != '-' || (mo = cf_digits(&s, 2)) < 1 || mo > 12 || *s++ != '-' || (d = cf_digits(&s, 2)) < 1 ||
        d > 31)
        return 0;
    if ((*s == ' ' || *s == 'T') && s[1] >= '0' && s[1] <= '9') {
        s++;
        if ((h = cf_digits(&s, 2)) < 0 || h > 23 || *s++ != ':' || (mi = cf_digits(&s, 2)) < 0 || mi > 59) return 0;
        if (*s == ':') {
            s++;
            if ((se = cf_digits(&s, 2)) < 0 || se > 60) return 0;
            if (*s == '.') {
                s++;
                int k = 0;
                for (; *s >= '0' && *s <= '9'; s++, k++)
                    if (k < 9) f = f * 10 + (*s - '0');
                for (; k < 9; k++) f *= 10;
            }
        }
    }
    while (*s == ' ') s++;
    int64_t off = 0;
    if (*s == 'Z') s++;
    else if (strncmp(s, "UTC", 3) == 0 || strncmp(s, "GMT", 3) == 0) s += 3;
    else if (*s == '+' || *s == '-') {
        const int sign = *s++ == '-' ? -1 : 1;
        int64_t oh = cf_digits(&s, 2), om = 0;
        if (oh < 0 || oh > 14) return 0;
        if (*s == ':') s++;
        if (*s >= '0' && *s <= '9' && (om = cf_digits(&s, 2)) > 59) return 0;
        off = sign * (oh * 3600 + om * 60);
    }
    while (*s == ' ') s++;
    if (*s) return 0;
    *sec = hb_days_from_civil(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + se - off;
    *ns = f;
    return 1;
}

/* The seconds one of a CF time unit's names stands for, beyond time_unit's own (unit_word):
 * minutes, hours, days (udunits' names and abbreviations); 0 for any other. */
static int64_t coarse_unit(const char *w, size_t n)
{
    static const struct {
        const char *name;
        int64_t sec;
    } names[] = {{"min", 60},         {"mins", 60},   {"minute", 60}, {"minutes", 60}, {"h", 3600},
                 {"hr", 3600},        {"hrs", 3600},  {"hour", 3600}, {"hours", 3600}, {"d", 86400},
                 {"day", 86400},      {"days", 86400}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i].name) == n && strncasecmp(w, names[i].name, n) == 0) return names[i].sec;
    return 0;
}

/* The time_unit a units attribute states: a unit alone ("s", "ms", "seconds") or CF's
 * "UNIT since EPOCH" (what h5batch's import and xarray write), with *mul and *off such
 * that stored * mul + off counts that unit since 1970-01-01 UTC (minutes, hours and days
 * are read as seconds); NULL when it states no time unit (km/h). *foreign 1 when it
 * counts in a unit or from an instant h5batch does not read ("months since 2024-01",
 * an epoch with a fraction finer than the unit): read as seconds, such times would be
 * wrong without an error. */
static const char *units_time_unit(const char *u, int *foreign, int64_t *mul, int64_t *off)
{
    *foreign = 0, *mul = 1, *off = 0;
    while (*u == ' ') u++;
    size_t n = strcspn(u, " ");
    const char *unit = unit_word(u, n), *rest = u + n;
    const int64_t coarse = unit ? 0 : coarse_unit(u, n);
    while (*rest == ' ') rest++;
    if (strncasecmp(rest, "since ", 6) != 0) return *rest || coarse ? NULL : unit;
    for (rest += 6; *rest == ' ';) rest++;
    int64_t sec, ns;
    if ((unit || coarse) && cf_epoch(rest, &sec, &ns)) {
        const char *base = unit ? unit : "s";
        const int64_t per_s = hb_time_unit_per_s(base), step = 1000000000 / per_s;
        /* the epoch in the base unit, which must hold it: |sec| < 2^63 / 10^9 for ns */
        if (ns % step == 0 && sec > INT64_MIN / per_s + 1 && sec < INT64_MAX / per_s - 1) {
            *mul = coarse ? coarse : 1;
            *off = sec * per_s + ns / step;
            return base;
        }
    }
    *foreign = 1;
    return NULL;
}

int hb_table_time_unit(hb_table *t, int col, const char *set, const char **unit)
{
    *unit = set;
    t->cols[col].tmul = 0, t->cols[col].toff = 0;
    if (set) return 0;
    const column *c = &t->cols[col];
    /* pandas: the dtype of a table's column (or of its block), or a fixed block's value type */
    char *dtype = NULL;
    if (c->field[0]) {
        char name[300];
        snprintf(name, sizeof name, "%s_dtype", c->field);
        dtype = attr_text(c->dset, name);
        if (!dtype && strcmp(c->field, "index") == 0) dtype = attr_text(c->dset, "index_kind"); /* the DataFrame's index */
    } else if (c->in2d) {
        dtype = attr_text(c->dset, "value_type");
    } else if (c->pd_index) {
        dtype = attr_text(c->dset, "kind"); /* format="fixed": the index's axis1 */
    }
    if (dtype && strncmp(dtype, "datetime64", 10) == 0) {
        /* "datetime64" (pandas' nanoseconds) or "datetime64[UNIT]", with a time zone after a comma */
        const char *b = dtype + 10;
        size_t n = *b == '[' ? strcspn(b + 1, ",]") : 0;
        *unit = *b == '\0' ? "ns" : *b == '[' ? unit_word(b + 1, n) : NULL;
        int rc = 0;
        if (!*unit)
            rc = hb_err_set(HB_EDATA, t->where,
                            "time column '%s' is pandas %s, a unit h5batch does not read: store it as "
                            "datetime64[s], [ms], [us] or [ns], or set time_unit to read its numbers as they are",
                            c->name, dtype);
        free(dtype);
        return rc;
    }
    free(dtype);
    if (c->field[0] || c->in2d) return 0; /* a field or a block has no attributes of its own */
    char *u = attr_text(c->dset, "units");
    if (!u) return 0;
    int foreign = 0;
    int64_t mul, off;
    *unit = units_time_unit(u, &foreign, &mul, &off);
    if (*unit && (mul != 1 || off != 0)) t->cols[col].tmul = mul, t->cols[col].toff = off;
    int rc = 0;
    if (foreign)
        rc = hb_err_set(HB_EDATA, t->where,
                        "time column '%s' has units '%s': h5batch reads times counted in days, hours, minutes, "
                        "s, ms, us or ns since a date; write them so (xarray: to_netcdf(..., encoding={'%s': "
                        "{'units': 'seconds since 1970-01-01', 'dtype': 'int64'}})), or set time_unit to read the "
                        "numbers as they are",
                        c->name, u, c->name);
    free(u);
    /* CF's calendars other than the Gregorian one (noleap, 360_day ...) count other days */
    char *cal = rc ? NULL : attr_text(c->dset, "calendar");
    if (cal && strcasecmp(cal, "standard") != 0 && strcasecmp(cal, "gregorian") != 0 &&
        strcasecmp(cal, "proleptic_gregorian") != 0)
        rc = hb_err_set(HB_EDATA, t->where,
                        "time column '%s' counts in calendar '%s': h5batch reads times of the Gregorian calendar "
                        "(standard, proleptic_gregorian); convert them (xarray: ds.convert_calendar('standard'))",
                        c->name, cal);
    free(cal);
    return rc;
}

/* Seconds since 1970 of the edges of the years 1900 and 2200, the times accepted. */
#define T_LO (-2208988800LL) /* 1900-01-01T00:00:00Z */
#define T_HI 7289654400LL    /* 2201-01-01T00:00:00Z */

/* The time error: names the column, the row and the unit that would fit these times. */
static int time_error(hb_table *t, column *c, int64_t per_s, int64_t row, int64_t raw, int64_t tmin, int64_t tmax)
{
    static const char *const names[] = {"s", "ms", "us", "ns"}, *const words[] = {"seconds", "milliseconds",
                                                                                "microseconds", "nanoseconds"};
    static const int64_t units[] = {1, 1000, 1000000, 1000000000};
    int fits = -1, self = 0;
    for (int u = 0; u < 4; u++)
        if (units[u] == per_s) self = u;
    for (int u = 0; u < 4 && fits < 0; u++)
        if (hb_floordiv(tmin, units[u]) >= T_LO && hb_floordiv(tmax, units[u]) < T_HI) fits = u;
    char hint[160];
    if (fits >= 0)
        snprintf(hint, sizeof hint, "; they look like %s: time_unit = %s fits these times", words[fits], names[fits]);
    else snprintf(hint, sizeof hint, "; no time_unit (s, ms, us, ns) fits: times are counted from 1970-01-01 UTC");
    return hb_err_set(HB_EDATA, t->where,
                      "time column '%s', row %lld: %lld is not a time between the years 1900 and 2200 in %s "
                      "(time_unit = %s)%s",
                      c->name, (long long)row, (long long)raw, words[self], names[self], hint);
}

int hb_table_read_time(hb_table *t, int col, int64_t start, int64_t count, int64_t per_s, int64_t *raw,
                       int64_t *secs)
{
    if (count <= 0) return 0;
    const column *c = &t->cols[col];
    const int64_t m = c->tmul, o = c->toff;
    if (m > 0 && hb_table_kind(t, col) == HB_COL_FLOAT) {
        /* fractions of the coarse unit count: stored * tmul, floored, + toff; beyond int64
         * is a time out of range (INT64_MAX), reported below */
        HB_CALL(hb_table_read(t, col, start, count, HB_F64, raw));
        const double lim = 4.6e18; /* |floor(v m)| and |toff| both under 2^62 */
        const int off_ok = o > -(1LL << 62) && o < (1LL << 62);
        for (int64_t i = 0; i < count; i++) {
            double v;
            memcpy(&v, &raw[i], sizeof v);
            const double w = floor(v * (double)m);
            raw[i] = isnan(v) ? INT64_MIN : off_ok && w > -lim && w < lim ? (int64_t)w + o : INT64_MAX;
        }
    } else {
        HB_CALL(hb_table_read(t, col, start, count, HB_I64, raw));
        for (int64_t i = 0; m > 0 && i < count; i++) { /* stored * tmul + toff, as above */
            int64_t v = raw[i], w;
            if (v != INT64_MIN) raw[i] = __builtin_mul_overflow(v, m, &w) || __builtin_add_overflow(w, o, &w) ? INT64_MAX : w;
        }
    }
    if (per_s <= 0) per_s = 1;
    /* the edges in the unit: 2201 in ns is 7.3e18, within int64 */
    const int64_t lo = T_LO * per_s, hi = T_HI * per_s;
    int64_t tmin = INT64_MAX, tmax = INT64_MIN, bad = -1;
    /* the range first, without a branch (missing times, INT64_MIN, are the kernel's to
     * count: the least value, they never raise tmax), then the first bad row if any */
#pragma omp simd reduction(min : tmin) reduction(max : tmax)
    for (int64_t i = 0; i < count; i++) {
        const int64_t v = raw[i], m = v == INT64_MIN ? INT64_MAX : v;
        tmin = m < tmin ? m : tmin;
        tmax = v > tmax ? v : tmax;
    }
    for (int64_t i = 0; i < count && tmax != INT64_MIN && (tmin < lo || tmax >= hi) && bad < 0; i++)
        if (raw[i] != INT64_MIN && (raw[i] < lo || raw[i] >= hi)) bad = i;
    if (bad >= 0) return time_error(t, &t->cols[col], per_s, start + bad, raw[bad], tmin, tmax);
    if (secs && per_s == 1 && secs != raw) memcpy(secs, raw, (size_t)count * sizeof *secs);
    else if (secs && per_s != 1)
#pragma omp simd
        for (int64_t i = 0; i < count; i++) secs[i] = raw[i] == INT64_MIN ? INT64_MIN : hb_floordiv(raw[i], per_s);
    return 0;
}

int hb_table_exact_f32(const hb_table *t, int col)
{
    if (t->cols[col].is_str || t->cols[col].scaled) return 0;
    src_kind k = t->cols[col].kind;
    return k == K_F32 || k == K_I8 || k == K_U8 || k == K_I16 || k == K_U16;
}

int hb_table_attr_i64(hb_table *t, const char *name, int64_t *v, int *present)
{
    return io_attr_i64(t->obj, ".", name, t->where, INT64_MIN, INT64_MAX, v, present);
}

/* Makes s hold count rows of up to bytes bytes in all. */
static int strs_reserve(hb_strs *s, int64_t count, size_t bytes)
{
    if (hb_grow((void **)&s->off, &s->off_cap, (size_t)count + 1, sizeof *s->off) ||
        hb_grow((void **)&s->bytes, &s->bytes_cap, bytes ? bytes : 1, 1))
        return hb_err_set(HB_EINTERNAL, "memory", "out of memory reading %lld strings", (long long)count);
    return 0;
}

/* 0 when the n bytes of row (a string of column c) are UTF-8 without a NUL, else 65
 * naming the column and row: keys and labels are written as UTF-8 strings, and a NUL
 * inside one would end it there, so "a\0b" and "a\0c" would be one group. */
static int check_text(const hb_table *t, const column *c, int64_t row, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t bad = hb_utf8_first_bad(u, n);
    if (bad == n) return 0;
    char why[64];
    hb_utf8_why(u, bad, why, sizeof why);
    return hb_err_set(HB_EDATA, t->where, "column '%s', row %lld: %s: strings are read as UTF-8 text",
                      c->name, (long long)row, why);
}

/* Fixed-length strings: the stored bytes less their padding (a NUL ends a NUL-terminated
 * string; a NUL-padded one ends at its last byte that is not NUL). */
static int read_fixed(hb_table *t, column *c, int64_t start, int64_t count, const char *where, int check,
                      hb_strs *s)
{
    size_t w = c->size, need = (size_t)count * w * (size_t)c->k;
    HB_CALL(scratch_reserve(t, need));
    hid_t mt = H5Tcopy(H5T_C_S1);
    HB_CALL_H5(mt, where);
    H5Tset_size(mt, w);
    H5Tset_strpad(mt, c->str_pad); /* the file's own layout: HDF5 moves the bytes as they are */
    H5Tset_cset(mt, c->str_cset);
    int rc = read_elems(c, mt, w, start, count, t->scratch, where);
    H5Tclose(mt);
    HB_CALL(rc);
    HB_CALL(strs_reserve(s, count, (size_t)count * w));
    const char *raw = t->scratch;
    size_t pos = 0;
    for (int64_t i = 0; i < count; i++) {
        const char *r = raw + (size_t)i * w;
        size_t n = c->str_pad == H5T_STR_NULLTERM ? strnlen(r, w) : w;
        while (n > 0 && r[n - 1] == (c->str_pad == H5T_STR_SPACEPAD ? ' ' : '\0')) n--;
        if (check) HB_CALL(check_text(t, c, start + i, r, n));
        s->off[i] = pos;
        memcpy(s->bytes + pos, r, n);
        pos += n;
    }
    s->off[count] = pos;
    return 0;
}

/* Variable-length strings: HDF5 allocates each; they are copied and given back. */
static int read_vlen(hb_table *t, column *c, int64_t start, int64_t count, const char *where, int check,
                     hb_strs *s)
{
    size_t need = (size_t)count * sizeof(char *);
    HB_CALL(scratch_reserve(t, need));
    char **p = t->scratch;
    memset(p, 0, need);
    hid_t mt = H5Tcopy(H5T_C_S1);
    HB_CALL_H5(mt, where);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, c->str_cset);
    int rc = read_elems(c, mt, sizeof(char *), start, count, p, where);
    size_t total = 0;
    for (int64_t i = 0; rc == 0 && i < count; i++) total += p[i] ? strlen(p[i]) : 0;
    if (rc == 0) rc = strs_reserve(s, count, total);
    size_t pos = 0;
    for (int64_t i = 0; rc == 0 && i < count; i++) {
        size_t n = p[i] ? strlen(p[i]) : 0;
        if (check && (rc = check_text(t, c, start + i, p[i], n)) != 0) break;
        s->off[i] = pos;
        memcpy(s->bytes + pos, p[i], n);
        pos += n;
    }
    if (rc == 0) s->off[count] = pos;
    for (int64_t i = 0; i < count; i++) H5free_memory(p[i]); /* what HDF5 allocated; NULL where it read nothing */
    H5Tclose(mt);
    return rc;
}

/* A categorical's labels: its codes read, each looked up (the labels were checked at open). */
static int read_labels(hb_table *t, column *c, int64_t start, int64_t count, const char *where, hb_strs *s)
{
    if (hb_grow((void **)&c->codes, &c->codes_cap, (size_t)count, sizeof *c->codes))
        return hb_err_set(HB_EINTERNAL, "memory", "out of memory reading a table (%lld codes)", (long long)count);
    HB_CALL(read_num(t, c, start, count, HB_I64, c->codes));
    size_t total = 0;
    for (int64_t i = 0; i < count; i++) {
        const int64_t k = c->codes[i];
        if (k < -1 || k >= c->ncats)
            return hb_err_set(HB_EDATA, where, "row %lld: code %lld of the pandas categorical is not one of its %lld "
                              "categories", (long long)(start + i), (long long)k, (long long)c->ncats);
        total += k < 0 ? 0 : (size_t)(c->cats.off[k + 1] - c->cats.off[k]);
    }
    HB_CALL(strs_reserve(s, count, total));
    size_t pos = 0;
    for (int64_t i = 0; i < count; i++) {
        const int64_t k = c->codes[i];
        const size_t n = k < 0 ? 0 : (size_t)(c->cats.off[k + 1] - c->cats.off[k]);
        s->off[i] = pos;
        if (n) memcpy(s->bytes + pos, c->cats.bytes + c->cats.off[k], n);
        pos += n;
    }
    s->off[count] = pos;
    return 0;
}

/* Rows [start, start+count) of string column c; check: refuse text that is not UTF-8. */
static int read_strs_col(hb_table *t, column *c, int64_t start, int64_t count, int check, hb_strs *s)
{
    char where[800];
    snprintf(where, sizeof where, "%s/%s", t->where, c->name);
    if (count <= 0) {
        HB_CALL(strs_reserve(s, 0, 1));
        s->off[0] = 0;
        return 0;
    }
    HB_CALL(c->cat        ? read_labels(t, c, start, count, where, s)
            : c->str_vlen ? read_vlen(t, c, start, count, where, check, s)
                          : read_fixed(t, c, start, count, where, check, s));
    if (!c->has_miss) return 0;
    if (hb_grow((void **)&c->miss, &c->miss_cap, (size_t)count, 1))
        return hb_err_set(HB_EINTERNAL, "memory", "out of memory reading a table (%lld rows)", (long long)count);
    const size_t nr = strlen(t->nan_rep);
    for (int64_t i = 0; i < count; i++)
        c->miss[i] = c->cat ? c->codes[i] < 0
                            : s->off[i + 1] - s->off[i] == nr && memcmp(s->bytes + s->off[i], t->nan_rep, nr) == 0;
    return 0;
}

/* Strings of column col, checked (labels) or not (text its reader decodes itself). */
static int read_str(hb_table *t, int col, int64_t start, int64_t count, int check, hb_strs *s)
{
    column *c = &t->cols[col];
    if (!c->is_str) return hb_err_set(HB_EDATA, t->where, "column '%s' is numeric; a string column is needed", c->name);
    return read_strs_col(t, c, start, count, check, s);
}

int hb_table_read_str(hb_table *t, int col, int64_t start, int64_t count, hb_strs *s)
{
    return read_str(t, col, start, count, 1, s);
}

int hb_table_read_text(hb_table *t, int col, int64_t start, int64_t count, hb_strs *s)
{
    return read_str(t, col, start, count, 0, s);
}

const uint8_t *hb_table_str_missing(const hb_table *t, int col) { return t->cols[col].has_miss ? t->cols[col].miss : NULL; }

void hb_strs_free(hb_strs *s)
{
    free(s->bytes);
    free(s->off);
    memset(s, 0, sizeof *s);
}

int hb_table_col_attr_str(hb_table *t, int col, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (t->cols[col].field[0] || t->cols[col].in2d) return 1; /* a field or a block column has no attributes of its own */
    char *v = attr_text(t->cols[col].dset, name);
    if (!v) return 1;
    snprintf(buf, len, "%s", v);
    free(v);
    return 0;
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
        hb_strs_free(&t->cols[i].cats);
        free(t->cols[i].codes), free(t->cols[i].miss);
        if (!t->cols[i].owned) continue;
        if (t->cols[i].space >= 0) H5Sclose(t->cols[i].space);
        if (t->cols[i].dset >= 0) H5Dclose(t->cols[i].dset);
    }
    if (t->cspace >= 0) H5Sclose(t->cspace);
    if (t->rec_type >= 0) H5Tclose(t->rec_type);
    free(t->recs);
    if (t->cdset >= 0) H5Dclose(t->cdset);
    if (t->obj >= 0) H5Oclose(t->obj);
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
    column c = {.dset = -1, .space = -1, .k = 1};
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
        if (rc == 0 && len > 0) rc = io_read_slab(c.dset, c.space, c.mem, 0, (int64_t)len, raw, where);
        if (rc == 0) convert(c.kind == K_OTHER ? K_F64 : c.kind, raw, want, buf, (int64_t)len);
        free(raw);
        if (rc == 0) *data = buf, *n = (int64_t)len;
        else free(buf);
    }
    if (c.space >= 0) H5Sclose(c.space);
    if (c.dset >= 0) H5Dclose(c.dset);
    return rc;
}
