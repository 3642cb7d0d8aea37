/* Inputs: files opened read-only by each rank, numeric datasets in hyperslabs with
 * retries, attributes, 2-D blocks and 1-D datasets held open for repeated reads. */
#include "internal.h"

#include "core/fault.h"
#include "core/commit.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void hb_io_init(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_filters_init();
}

/* 66 for a file that is not HDF5, saying what it is where its first bytes tell: another
 * format users bring (Parquet, a workbook), or text (a CSV for import). */
static int not_hdf5(const char *path)
{
    unsigned char b[16];
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) n = read(fd, b, sizeof b), close(fd);
    const char *what = n > 0 ? hb_file_format(b, (size_t)n) : NULL;
    if (what && strstr(what, "Parquet"))
        return hb_err_set(HB_ENOINPUT, path, "not an HDF5 file but %s; pandas converts it to a table h5batch reads: "
                          "pd.read_parquet(F).to_hdf(OUT, key='table', format='table')", what);
    if (what) return hb_err_set(HB_ENOINPUT, path, "not an HDF5 file but %s", what);
    int text = n > 0;
    for (ssize_t i = 0; i < n && text; i++) text = b[i] >= 0x20 || b[i] == '\t' || b[i] == '\n' || b[i] == '\r';
    if (text) return hb_err_set(HB_ENOINPUT, path, "not an HDF5 file but text; if it is CSV, "
                                "'h5batch import %s -o TABLE.h5' makes a table of it", path);
    return hb_err_set(HB_ENOINPUT, path, "not an HDF5 file");
}

/* H5Ewalk2's callback: the description of the error where it was found (the first one
 * walking upward), into the 256 bytes of d. */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *d)
{
    if (n == 0 && e->desc) snprintf(d, 256, "%s", e->desc);
    return 0;
}

int hb_in_open(const char *path, hb_in **inp)
{
    *inp = NULL;
    if (access(path, R_OK) != 0)
        return hb_err_set(HB_ENOINPUT, path, "%s", errno == ENOENT ? "no such file" : strerror(errno));
    struct stat sb; /* a FIFO or a device would block HDF5's open: refused before it */
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return hb_err_set(HB_ENOINPUT, path, "not a regular file (%s)", hb_file_kind(sb.st_mode));
    if (H5Fis_hdf5(path) <= 0) return not_hdf5(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char why[256] = "";
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, why);
        if (strstr(why, "truncated file"))
            return hb_err_set(HB_ENOINPUT, path, "cannot open HDF5 file: it is shorter than its superblock says (%s): "
                              "cut short while it was written or copied", why);
        return hb_err_set(HB_ENOINPUT, path, "cannot open HDF5 file%s%s", why[0] ? ": " : "", why);
    }
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
int io_path_exists(hid_t loc, const char *path)
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

int hb_in_exists(hb_in *in, const char *path) { return strcmp(path, "/") == 0 || io_path_exists(in->file, path); }

src_kind io_kind_of(hid_t type, size_t *size)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t sz = H5Tget_size(type);
    *size = sz;
    if (cls == H5T_FLOAT) return sz == 4 ? K_F32 : sz == 8 ? K_F64 : K_OTHER;
    if (cls == H5T_ENUM) { /* h5py's and pandas' booleans (FALSE = 0, TRUE = 1): the values of its integer type */
        hid_t base = H5Tget_super(type);
        src_kind k = base < 0 ? K_OTHER : io_kind_of(base, size);
        if (base >= 0) H5Tclose(base);
        return k;
    }
    if (cls == H5T_BITFIELD) /* PyTables' booleans (8 bits, 0 or 1): an unsigned integer of its size */
        return sz == 1 ? K_U8 : sz == 2 ? K_U16 : sz == 4 ? K_U32 : sz == 8 ? K_U64 : K_OTHER;
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

hid_t io_native_of(src_kind k)
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

hid_t io_mem_of(hid_t type, src_kind k)
{
    if (H5Tget_class(type) != H5T_BITFIELD) return io_native_of(k);
    switch (k) {
    case K_U8: return H5T_NATIVE_B8;
    case K_U16: return H5T_NATIVE_B16;
    case K_U32: return H5T_NATIVE_B32;
    default: return H5T_NATIVE_B64;
    }
}

const char *io_class_name(hid_t type)
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


/* Reads the selection, retrying a failed read (a transient I/O error on a network file
 * system should not cost the run); 74 once the attempts are spent. what names the rows. */
int io_read_retry(hid_t dset, hid_t memtype, hid_t mspace, hid_t fspace, void *buf, const char *where,
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
        e = hb_fault_read(read_no, attempt) ? -1 : H5Dread(dset, memtype, mspace, fspace, H5P_DEFAULT, buf);
    }
    if (e < 0) return hb_err_set(HB_EIO, where, "read of %s failed %d times", what, ATTEMPTS);
    return 0;
}

/* Reads count elements of a 1-D dataset from start (with retries). */
int io_read_slab(hid_t dset, hid_t fspace, hid_t memtype, int64_t start, int64_t count, void *buf,
                     const char *where)
{
    hsize_t st = (hsize_t)start, cn = (hsize_t)count;
    HB_CALL_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &st, NULL, &cn, NULL), where);
    hid_t mspace = H5Screate_simple(1, &cn, NULL);
    HB_CALL_H5(mspace, where);
    char what[96];
    snprintf(what, sizeof what, "rows %lld..%lld", (long long)start, (long long)(start + count - 1));
    int rc = io_read_retry(dset, memtype, mspace, fspace, buf, where, what);
    H5Sclose(mspace);
    return rc;
}

int io_attr_one(hid_t a)
{
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    if (sp < 0) return 0;
    H5S_class_t c = H5Sget_simple_extent_type(sp);
    int one = c == H5S_SCALAR || (c == H5S_SIMPLE && H5Sget_simple_extent_npoints(sp) == 1);
    H5Sclose(sp);
    return one;
}

/* Reads the string attribute name of object obj of file f into buf: 0 when found (one
 * variable-length string; an array of them is not one). */
int io_read_str_attr(hid_t f, const char *obj, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!io_path_exists(f, obj) || H5Aexists_by_name(f, obj, name, H5P_DEFAULT) <= 0) return 1;
    int rc = 1;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0 && io_attr_one(a)) {
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
    int rc = io_read_str_attr(f, "/provenance", name, buf, len);
    H5Fclose(f);
    return rc;
}

int hb_in_attr_str(hb_in *in, const char *obj, const char *name, char *buf, size_t len)
{
    return io_read_str_attr(in->file, obj, name, buf, len);
}

int io_attr_i64(hid_t loc, const char *obj, const char *name, const char *where, int64_t lo, int64_t hi, int64_t *v,
                int *present)
{
    *present = 0;
    if ((strcmp(obj, ".") != 0 && !io_path_exists(loc, obj)) || H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) <= 0)
        return 0;
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return hb_err_set(HB_EDATA, where, "cannot open attribute '%s'", name);
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    H5T_class_t cls = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    int sgn = cls == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
    H5S_class_t scls = space < 0 ? H5S_NO_CLASS : H5Sget_simple_extent_type(space);
    hssize_t npts = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    const char *cn = type < 0 ? "unknown" : io_class_name(type);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    int rc = 0;
    if (scls != H5S_SCALAR && !(scls == H5S_SIMPLE && npts == 1)) {
        rc = hb_err_set(HB_EDATA, where, "attribute '%s' is %s; one integer is expected", name,
                        scls == H5S_SIMPLE ? "an array" : "empty");
    } else if (cls == H5T_INTEGER && !sgn) {
        uint64_t u = 0;
        if (H5Aread(a, H5T_NATIVE_UINT64, &u) < 0) rc = hb_err_set(HB_EDATA, where, "cannot read attribute '%s'", name);
        else if (u > (uint64_t)INT64_MAX || (int64_t)u > hi)
            rc = hb_err_set(HB_EDATA, where, "attribute '%s' = %llu is out of range [%lld, %lld]", name,
                            (unsigned long long)u, (long long)lo, (long long)hi);
        else *v = (int64_t)u;
    } else if (cls == H5T_INTEGER) {
        if (H5Aread(a, H5T_NATIVE_INT64, v) < 0) rc = hb_err_set(HB_EDATA, where, "cannot read attribute '%s'", name);
    } else if (cls == H5T_FLOAT) {
        double d = 0;
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &d) < 0) rc = hb_err_set(HB_EDATA, where, "cannot read attribute '%s'", name);
        else if (!isfinite(d) || d != floor(d))
            rc = hb_err_set(HB_EDATA, where, "attribute '%s' = %g is not an integer", name, d);
        else if (!(d >= -0x1p63 && d < 0x1p63))
            rc = hb_err_set(HB_EDATA, where, "attribute '%s' = %g is out of range [%lld, %lld]", name, d, (long long)lo,
                            (long long)hi);
        else *v = (int64_t)d;
    } else {
        rc = hb_err_set(HB_EDATA, where, "attribute '%s' has %s type; an integer is expected", name, cn);
    }
    H5Aclose(a);
    if (rc == 0 && (*v < lo || *v > hi))
        rc = hb_err_set(HB_EDATA, where, "attribute '%s' = %lld is out of range [%lld, %lld]", name, (long long)*v,
                        (long long)lo, (long long)hi);
    if (rc == 0) *present = 1;
    return rc;
}

int hb_in_attr_i64(hb_in *in, const char *obj, const char *name, int64_t *v)
{
    return hb_in_attr_range(in, obj, name, INT64_MIN, INT64_MAX, v);
}

int hb_in_attr_range(hb_in *in, const char *obj, const char *name, int64_t lo, int64_t hi, int64_t *v)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%s", in->path, obj);
    int present;
    HB_CALL(io_attr_i64(in->file, obj, name, where, lo, hi, v, &present));
    HB_CHECK(present, HB_EDATA, in->path, "%s has no attribute '%s'", obj, name);
    return 0;
}

int hb_in_read_raw(hb_in *in, const char *path, hb_elem t, int64_t start, int64_t count, void *buf)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%s", in->path, path);
    if (count <= 0) return 0;
    if (!hb_in_exists(in, path)) return hb_err_set(HB_EDATA, where, "missing dataset");
    hid_t d = H5Dopen2(in->file, path, H5P_DEFAULT);
    HB_CALL_H5(d, where);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    int rc = 0;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1) rc = hb_err_set(HB_EDATA, where, "not a 1-D dataset");
    if (rc == 0) H5Sget_simple_extent_dims(sp, &n, NULL);
    if (rc == 0 && (start < 0 || (hsize_t)(start + count) > n))
        rc = hb_err_set(HB_EDATA, where, "rows %lld..%lld are past its %llu rows", (long long)start,
                        (long long)(start + count - 1), (unsigned long long)n);
    if (rc == 0) rc = io_read_slab(d, sp, io_mem_type(t), start, count, buf, where);
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
    const char *cn = type < 0 ? "unknown" : io_class_name(type);
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
                   : io_read_retry(d, H5T_NATIVE_DOUBLE, ms, fs, buf, where, what);
        if (ms >= 0) H5Sclose(ms);
    }
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    return rc;
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
                                                                                                 : io_mem_type(t);
    return io_read_slab(d->dset, d->space, mt, start, count, buf, d->where);
}

void hb_dset_close(hb_dset *d)
{
    if (!d) return;
    if (d->native >= 0) H5Tclose(d->native);
    if (d->space >= 0) H5Sclose(d->space);
    if (d->dset >= 0) H5Dclose(d->dset);
    free(d);
}

