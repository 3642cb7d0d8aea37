/* The HDF5 layer as the rest of h5batch sees it: its declarations are the plugin API's
 * (include/h5batch/io.h, in.h, out.h, table.h); io/internal.h is what io/ shares. */
#ifndef HB_IO_H
#define HB_IO_H

#include "h5batch/io.h"

#endif
