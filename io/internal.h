/* What the io/ files share and nobody else sees: the HDF5 handles behind the opaque
 * types, the source kinds of numeric columns and the helpers that read them. */
#ifndef HB_IO_INTERNAL_H
#define HB_IO_INTERNAL_H

#include "io/io.h"

#include "core/hb.h"

#include <hdf5.h>

/* A negative hid_t or herr_t is an HDF5 failure: record it as an I/O error and return it
 * (the HDF5 member of the checking macros of core/hb.h). */
#define HB_CALL_H5(expr, what)                                                            \
    do {                                                                               \
        if ((expr) < 0) return hb_err_set(HB_EIO, (what), "HDF5 call failed: %s", #expr); \
    } while (0)

struct hb_in {
    hid_t file;
    char *path;
};

typedef enum { K_I8, K_U8, K_I16, K_U16, K_I32, K_U32, K_I64, K_U64, K_F32, K_F64, K_OTHER } src_kind;

/* 1 when path exists in the file (every link on the way included). */
int io_path_exists(hid_t loc, const char *path);
/* The kind and in-memory size of a numeric HDF5 type; K_OTHER when not numeric. An
 * enumeration is read as the values of its integer type and a bitfield as an unsigned
 * integer of its size (the booleans of h5py, pandas and PyTables: 0 or 1). */
src_kind io_kind_of(hid_t type, size_t *size);
/* The native HDF5 type of a kind. */
hid_t io_native_of(src_kind k);
/* The memory type that reads elements of file type type as kind k (io_kind_of's):
 * io_native_of(k), or for a bitfield, which HDF5 converts only to bitfields, the native
 * bitfield of that size (the same bytes). */
hid_t io_mem_of(hid_t type, src_kind k);
/* A word for an HDF5 type class, for messages. */
const char *io_class_name(hid_t type);
/* Reads count elements of a 1-D dataset from start, retrying transient failures. */
int io_read_slab(hid_t dset, hid_t fspace, hid_t memtype, int64_t start, int64_t count, void *buf,
                 const char *where);
/* Reads the selection fspace of dset into mspace, retrying transient failures; what
 * names the rows in messages. */
int io_read_retry(hid_t dset, hid_t memtype, hid_t mspace, hid_t fspace, void *buf, const char *where,
                  const char *what);
/* Lets HDF5 find Debian's filter plugins (io/filters.c); once, from hb_io_init. */
void io_filters_init(void);
/* The native memory type of an element type. */
hid_t io_mem_type(hb_elem t);
/* Reads string attribute name of obj of file f into buf: 0 when found, 1 when not. */
/* The integer attribute name of object obj (relative to loc; "." is loc itself):
 * *present 0 when absent; 65 naming where and the attribute when it is not one value
 * (an array, empty), not an integer (a string, a fraction, inf or NaN) or outside
 * [lo, hi]. Every integer attribute of an input is read through it. */
int io_attr_i64(hid_t loc, const char *obj, const char *name, const char *where, int64_t lo, int64_t hi, int64_t *v,
                int *present);
int io_read_str_attr(hid_t f, const char *obj, const char *name, char *buf, size_t len);
/* 1 when attribute a holds one value (a scalar, or a 1-element array), which is what the
 * string readers read into room for one: an array attribute (units = ['km/h', 'm/s'])
 * would be read past it. */
int io_attr_one(hid_t a);

#endif
