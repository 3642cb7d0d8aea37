/* Outputs: one HDF5 file per step written by all ranks (MPI-IO), datasets, attributes
 * and dimension scales.
 *
 * Every function documented Collective returns the same status on every rank: the first
 * failure of any rank, with its message (h5batch/errors.h, hb_agree). After a failure the output
 * is failed: later calls return that status at once, and hb_out_close closes it cleanly,
 * so that hb_commit can remove it. A full disk is found before HDF5 writes: the disk space
 * of what the file allocates is reserved as it grows. */
#ifndef H5BATCH_OUT_H
#define H5BATCH_OUT_H

#include "h5batch/io.h"

#include <stddef.h>
#include <stdint.h>

/* Collective. Creates (truncating) the output file at path for writing; on failure *out
 * is NULL and the file is removed. */
int hb_out_create(const char *path, hb_out **out);
/* Collective. The same for a file that is not an output: what names it in messages and
 * for fault injection ("checkpoint"). */
int hb_out_create_for(const char *path, const char *what, hb_out **out);
/* Collective. Creates a group (and missing parents). */
int hb_out_group(hb_out *out, const char *path);
/* Collective. Creates dataset path of type t and shape dims[0..ndims-1]; this rank
 * writes rows [off0, off0+cnt0) of dimension 0 from data (row-major). units and desc
 * become attributes when not NULL. */
int hb_out_write(hb_out *out, const char *path, hb_elem t, int ndims, const uint64_t *dims, uint64_t off0,
                 uint64_t cnt0, const void *data, const char *units, const char *desc);
/* Collective. Creates dataset path of type t and shape dims without writing it. */
int hb_out_dataset(hb_out *out, const char *path, hb_elem t, int ndims, const uint64_t *dims, const char *units,
                   const char *desc);
/* Collective (every rank calls it the same number of times). Writes this rank's rows
 * [off0, off0+cnt0) of dimension 0 of an existing dataset. */
int hb_out_slab(hb_out *out, const char *path, hb_elem t, int ndims, const uint64_t *dims, uint64_t off0,
                uint64_t cnt0, const void *data);
/* Collective. Writes a 1-D coordinate dataset (same data on every rank) and makes it
 * an HDF5 dimension scale named name. */
int hb_out_scale(hb_out *out, const char *path, const char *name, hb_elem t, uint64_t n, const void *data,
                 const char *units);
/* Collective. Writes a 1-D dataset of n fixed-length UTF-8 strings, NUL-padded to width
 * bytes (width >= 1, the same on every rank): this rank writes rows [off0, off0+cnt0)
 * from data (cnt0 x width bytes). With scale not NULL the dataset becomes an HDF5
 * dimension scale of that name (string coordinates, labels in xarray). */
int hb_out_strings(hb_out *out, const char *path, uint64_t n, uint64_t off0, uint64_t cnt0, size_t width,
                   const char *data, const char *scale);
/* Collective. Creates path as a dimension without coordinate values (netCDF-4's
 * convention, which xarray reads as a named dimension): n long, storing nothing. */
int hb_out_dim(hb_out *out, const char *path, uint64_t n);
/* Collective. Attaches scale to dimension dim of dataset. */
int hb_out_attach(hb_out *out, const char *dataset, int dim, const char *scale);
/* Collective attribute writers on a group or dataset (same value on every rank). */
int hb_out_attr_u64(hb_out *out, const char *obj, const char *name, uint64_t v);
int hb_out_attr_i64(hb_out *out, const char *obj, const char *name, int64_t v);
int hb_out_attr_f64(hb_out *out, const char *obj, const char *name, const double *v, int n);
int hb_out_attr_str(hb_out *out, const char *obj, const char *name, const char *v);
/* Collective. Closes every handle and the file, also after a failure (a failed output is
 * emptied first), and frees out; returns the first failure of any call on out, else the
 * agreed status of the close. NULL on every rank returns 0. */
int hb_out_close(hb_out *out);

/* Not collective. Reads the string attribute name of /provenance of an existing file
 * into buf: 0 when found, 1 when the file is not an h5batch output or lacks it. */
int hb_out_probe(const char *path, const char *name, char *buf, size_t len);

/* Collective (every rank calls it for the same dataset). Writes this rank's block
 * [start, start+count) of an existing dataset from data (row-major, count's shape); a
 * rank with nothing to write passes count[0] == 0. */
int hb_out_block(hb_out *out, const char *path, hb_elem t, int ndims, const uint64_t *start, const uint64_t *count,
                 const void *data);

/* An output dataset open for independent writes: ranks write their own ranges at their
 * own pace, as many times as they need. */
typedef struct hb_oset hb_oset;

/* Collective. Opens the existing 1-D dataset path of the output for independent writes. */
int hb_oset_open(hb_out *out, const char *path, hb_oset **d);
/* Not collective. Writes elements [off, off+cnt) of the dataset from data, of type t;
 * the caller agrees on the status with the other ranks (hb_agree) once they are done. */
int hb_oset_write(hb_oset *d, hb_elem t, uint64_t off, uint64_t cnt, const void *data);
/* Collective. Closes the dataset; safe on NULL. */
void hb_oset_close(hb_oset *d);

#endif
