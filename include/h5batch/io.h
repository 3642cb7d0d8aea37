/* h5batch plugin API, the HDF5 layer: the only code in h5batch that calls HDF5
 * (kernels see arrays).
 *
 * Inputs are opened by each rank on its own (reads are independent hyperslab reads of
 * that rank's chunks, in.h and table.h); outputs are created with MPI-IO and written
 * collectively under a temporary name, then committed once every rank has succeeded
 * (out.h). docs/architecture.md describes the layer. */
#ifndef H5BATCH_IO_H
#define H5BATCH_IO_H

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

#include "h5batch/in.h"
#include "h5batch/out.h"
#include "h5batch/table.h"

#endif
