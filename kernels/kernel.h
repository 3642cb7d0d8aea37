/* The kernel interface as the driver sees it: the table itself is the plugin API's
 * (include/h5batch/kernel.h); the registry that finds kernels by name is internal. */
#ifndef HB_KERNEL_H
#define HB_KERNEL_H

#include "h5batch/kernel.h"

/* The registry: NULL-terminated list of kernels, and lookup by name. */
const hb_kernel *const *hb_kernels(void);
const hb_kernel *hb_kernel_find(const char *name);

#endif
