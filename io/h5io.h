/* The HDF5 layer: the only code in h5batch that calls HDF5.
 *
 * Inputs are opened by each rank on its own (reads are independent hyperslab reads of
 * that rank's chunks); outputs are created with MPI-IO and written collectively under a
 * temporary name, then committed by hb_commit once every rank has succeeded. */
#ifndef HB_H5IO_H
#define HB_H5IO_H

#include <stddef.h>
#include <stdint.h>

/* Element types the kernels see; the I/O layer converts any integer or float column. */
typedef enum {
    HB_F64, /* double; integers converted exactly up to 2^53 */
    HB_I64, /* int64; floats floored, non-finite or out of range -> INT64_MIN */
    HB_ID,  /* int64 identifier; non-integral, non-finite or out of range -> -1 */
    HB_U64, /* output only */
    HB_U32, /* output only */
    HB_U8,  /* output only */
    HB_I32, /* output only */
    HB_F32  /* output only */
} hb_elem;

typedef struct hb_in hb_in;
typedef struct hb_table hb_table;
typedef struct hb_out hb_out;

/* Disables HDF5's own error printing; call once after MPI_Init. */
void hb_io_init(void);

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
/* Reads elements [start, start+count) of a 1-D dataset in its memory type t (no conversion
 * beyond HDF5's own): for checkpoints' bytes (HB_U8) and sizes (HB_U64). */
int hb_in_read_raw(hb_in *in, const char *path, hb_elem t, int64_t start, int64_t count, void *buf);

/* Opens a table: a group whose members named in cols are equal-length 1-D numeric
 * datasets. Checks presence, rank, type and lengths, naming what is wrong (65). */
int hb_table_open(hb_in *in, const char *group, const char *const *cols, int ncols, hb_table **t);
int64_t hb_table_rows(const hb_table *t);
/* Reads rows [start, start+count) of column col into buf, converted to want. Memory
 * used beyond buf is bounded by count. */
int hb_table_read(hb_table *t, int col, int64_t start, int64_t count, hb_elem want, void *buf);
/* 1 when every value of column col converts to float exactly (float32, 8/16-bit ints). */
int hb_table_exact_f32(const hb_table *t, int col);
/* Reads an integer attribute of the table group; *present = 0 when absent. */
int hb_table_attr_i64(hb_table *t, const char *name, int64_t *v, int *present);
void hb_table_close(hb_table *t);

/* Collective. Creates (truncating) the output file at path for writing. */
int hb_out_create(const char *path, hb_out **out);
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
/* Collective. Attaches scale to dimension dim of dataset. */
int hb_out_attach(hb_out *out, const char *dataset, int dim, const char *scale);
/* Collective attribute writers on a group or dataset (same value on every rank). */
int hb_out_attr_u64(hb_out *out, const char *obj, const char *name, uint64_t v);
int hb_out_attr_i64(hb_out *out, const char *obj, const char *name, int64_t v);
int hb_out_attr_f64(hb_out *out, const char *obj, const char *name, const double *v, int n);
int hb_out_attr_str(hb_out *out, const char *obj, const char *name, const char *v);
/* Collective. Flushes and closes; returns the first error seen on this rank. */
int hb_out_close(hb_out *out);

/* Not collective. Reads the string attribute name of /provenance of an existing file
 * into buf: 0 when found, 1 when the file is not an h5batch output or lacks it. */
int hb_out_probe(const char *path, const char *name, char *buf, size_t len);

/* ---- 2-D inputs and block writes (added for the risk kernel and gen market) ---- */

/* Not collective. The rank and dimensions (at most 8) of a numeric dataset; 65 when it
 * is missing, not a dataset, not numeric or of higher rank. */
int hb_in_dims(hb_in *in, const char *path, int *ndims, int64_t *dims);
/* Not collective. Reads rows [row0, row0+nrows) of a 2-D numeric dataset, converted to
 * double by HDF5, into buf (row-major, nrows x columns). */
int hb_in_read_rows(hb_in *in, const char *path, int64_t row0, int64_t nrows, double *buf);
/* Collective (every rank calls it for the same dataset). Writes this rank's block
 * [start, start+count) of an existing dataset from data (row-major, count's shape); a
 * rank with nothing to write passes count[0] == 0. */
int hb_out_block(hb_out *out, const char *path, hb_elem t, int ndims, const uint64_t *start, const uint64_t *count,
                 const void *data);

/* ---- 1-D datasets held open for repeated reads (added for the index kernel and query) ---- */

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

/* An output dataset open for independent writes: ranks write their own ranges at their
 * own pace, as many times as they need. */
typedef struct hb_oset hb_oset;

/* Collective. Opens the existing 1-D dataset path of the output for independent writes. */
int hb_oset_open(hb_out *out, const char *path, hb_oset **d);
/* Not collective. Writes elements [off, off+cnt) of the dataset from data, of type t. */
int hb_oset_write(hb_oset *d, hb_elem t, uint64_t off, uint64_t cnt, const void *data);
/* Collective. Closes the dataset; safe on NULL. */
void hb_oset_close(hb_oset *d);

#endif
