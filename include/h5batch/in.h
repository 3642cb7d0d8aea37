/* Inputs: files opened read-only by each rank, whole and partial reads of numeric
 * datasets, attributes. */
#ifndef H5BATCH_IN_H
#define H5BATCH_IN_H

#include "h5batch/io.h"

#include <stddef.h>
#include <stdint.h>

/* Not collective. Opens an input file read-only: 66 when missing or unreadable. */
int hb_in_open(const char *path, hb_in **in);
void hb_in_close(hb_in *in);
/* 1 when the object (group or dataset) exists in the input. */
int hb_in_exists(hb_in *in, const char *path);
/* Reads a whole 1-D numeric dataset converted to want (HB_F64/HB_I64); *data is malloc'd. */
int hb_in_read_array(hb_in *in, const char *path, hb_elem want, int64_t *n, void **data);

/* Reads the string attribute name of obj into buf: 0 when found, 1 when absent. */
int hb_in_attr_str(hb_in *in, const char *obj, const char *name, char *buf, size_t len);
/* Reads the integer attribute name of obj: 65 when absent or not an integer. */
int hb_in_attr_i64(hb_in *in, const char *obj, const char *name, int64_t *v);
/* The same, checked to be one integer in [lo, hi]: 65 naming the attribute otherwise
 * (an array, a string, a fraction, inf, NaN, out of range). */
int hb_in_attr_range(hb_in *in, const char *obj, const char *name, int64_t lo, int64_t hi, int64_t *v);
/* Reads elements [start, start+count) of a 1-D dataset in its memory type t (no conversion
 * beyond HDF5's own): for checkpoints' bytes (HB_U8) and sizes (HB_U64). */
int hb_in_read_raw(hb_in *in, const char *path, hb_elem t, int64_t start, int64_t count, void *buf);


/* Not collective. The rank and dimensions (at most 8) of a numeric dataset; 65 when it
 * is missing, not a dataset, not numeric or of higher rank. */
int hb_in_dims(hb_in *in, const char *path, int *ndims, int64_t *dims);
/* Not collective. Reads rows [row0, row0+nrows) of a 2-D numeric dataset, converted to
 * double by HDF5, into buf (row-major, nrows x columns). */
int hb_in_read_rows(hb_in *in, const char *path, int64_t row0, int64_t nrows, double *buf);

typedef struct hb_dset hb_dset;

/* What a dataset stores: its length and element type. */
typedef struct hb_dset_info {
    int64_t n;         /* elements */
    size_t elem_bytes; /* bytes per stored element */
    int is_int;        /* integer (1) or float (0) */
    int is_signed;     /* a signed integer */
} hb_dset_info;

/* Not collective. Opens the 1-D integer or float dataset path of the input and
 * describes it in *info. 65 naming the dataset when it is missing, not a dataset, not
 * numeric or not one-dimensional. */
int hb_dset_open(hb_in *in, const char *path, hb_dset **d, hb_dset_info *info);
/* Not collective. Reads elements [start, start+count) into buf as t (HB_U8, HB_U32,
 * HB_U64, HB_I64 or HB_F64), converted by HDF5; an 8-bit integer dataset read as HB_U8
 * comes back byte for byte, signed or not. Out-of-range requests are 65. */
int hb_dset_read(hb_dset *d, hb_elem t, int64_t start, int64_t count, void *buf);
void hb_dset_close(hb_dset *d);

#endif
