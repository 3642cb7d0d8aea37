/* The kernel interface as the driver sees it: the table itself is the plugin API's
 * (include/h5batch/kernel.h); the registry that finds kernels, their generators and
 * their commands by name is the driver's (kernels/registry.c). */
#ifndef HB_KERNEL_H
#define HB_KERNEL_H

#include "h5batch/kernel.h"

/* The registry: NULL-terminated list of kernels, built-in ones first, and lookup by
 * name. Not collective. */
const hb_kernel *const *hb_kernels(void);
const hb_kernel *hb_kernel_find(const char *name);
/* The path of the plugin kernel k came from; NULL for a built-in kernel. */
const char *hb_kernel_origin(const hb_kernel *k);
/* The generator called name (`h5batch gen NAME`), or NULL. */
const hb_generator *hb_generator_find(const char *name);
/* The kernels' command called name and (when owner is not NULL) its kernel, or NULL. */
const hb_command *hb_command_find(const char *name, const hb_kernel **owner);

/* Not collective; runs before MPI_Init. Loads every *.so in the folders of
 * H5BATCH_PLUGIN_PATH (colon-separated; missing folders are skipped) in name order,
 * checks its ABI version and calls its hb_plugin_init. reserved lists the driver's
 * own commands, which no kernel command may take. A plugin that cannot be loaded, was
 * built for another ABI version, has no hb_plugin_init or registers a table that is
 * incomplete or whose names are taken is kept as a failure ("PATH: why") and the others
 * are loaded: only a command that needs one of its kernels fails (hb_plugins_missing).
 * Nonzero only for a built-in table that does not pass, or out of memory. */
int hb_plugins_load(const char *const *reserved);
/* How many plugins could not be loaded. */
int hb_plugins_failed(void);
/* What a "not found" message adds when a plugin could not be loaded (the name may be
 * one of its kernels): ", and a plugin could not be loaded: PATH: why" (the first one
 * of several), in buf; "" when every plugin was loaded. Returns buf. */
const char *hb_plugins_note(char *buf, size_t len);
/* Rank 0 warns once per plugin that could not be loaded, naming it and why. */
void hb_plugins_warn(void);
/* For a kernel, generator or command name that was not found: records what (at where)
 * with code, or, when a plugin could not be loaded, with 78 and that plugin's failure
 * (the name may be one of its kernels). Returns the code recorded. */
int hb_plugins_missing(int code, const char *where, const char *what);

/* What a row of kernel k's input is called: "rows" unless the kernel says. */
static inline const char *hb_kernel_unit(const hb_kernel *k) { return k->unit ? k->unit : "rows"; }

#endif
