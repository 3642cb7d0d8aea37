/* Outputs: one file created with MPI-IO, datasets written collectively, attributes,
 * dimension scales and datasets held open for independent writes. */
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


struct hb_out {
    hid_t file, dcpl, gcpl, dxpl;
    char *path;
};

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
    if (io_path_exists(o->file, path)) return 0;
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

hid_t io_mem_type(hb_elem t)
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
    herr_t e = H5Dwrite(d, io_mem_type(t), ms, fs, o->dxpl, data);
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

int hb_out_strings(hb_out *o, const char *path, uint64_t n, uint64_t off0, uint64_t cnt0, size_t width,
                   const char *data, const char *scale)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5_CALL(t, path);
    H5Tset_size(t, width ? width : 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t hn = n, st = off0, cn = cnt0;
    hid_t space = H5Screate_simple(1, &hn, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = space < 0 ? -1 : H5Dcreate2(o->file, path, t, space, lcpl, o->dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (space >= 0) H5Sclose(space);
    herr_t e = d < 0 ? -1 : 0;
    hid_t fs = d < 0 ? -1 : H5Dget_space(d), ms = H5Screate_simple(1, &cn, NULL);
    if (e == 0 && (fs < 0 || ms < 0)) e = -1;
    if (e == 0 && cnt0 == 0) H5Sselect_none(fs), H5Sselect_none(ms);
    else if (e == 0) e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &cn, NULL);
    if (e >= 0 && n > 0) e = H5Dwrite(d, t, ms, fs, o->dxpl, data);
    if (e >= 0 && scale) e = H5DSset_scale(d, scale);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    H5Tclose(t);
    if (e < 0) return hb_err_set(HB_EIO, o->path, "write of %s failed", path);
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
    if (e >= 0) e = H5Dwrite(d, io_mem_type(t), ms, fs, o->dxpl, data);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    if (e < 0) return hb_err_set(HB_EIO, o->path, "write of %s failed", path);
    return 0;
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
    const uint64_t piece = ((uint64_t)1 << 30) / H5Tget_size(io_mem_type(t));
    for (uint64_t a = 0; a < cnt; a += piece) {
        hsize_t st = off + a, n = cnt - a < piece ? cnt - a : piece;
        hid_t fs = H5Dget_space(d->dset), ms = H5Screate_simple(1, &n, NULL);
        herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &n, NULL);
        if (e >= 0)
            e = H5Dwrite(d->dset, io_mem_type(t), ms, fs, d->dxpl,
                         (const char *)data + a * H5Tget_size(io_mem_type(t)));
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
