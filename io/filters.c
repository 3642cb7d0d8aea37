/* HDF5 filter plugins (Blosc, LZ4, Zstd, bitshuffle ...; docs/tables.md): HDF5 loads a
 * filter's shared object on first use from its plugin path. Debian's parallel HDF5 looks
 * only in its own folder, where few plugins are installed (bitshuffle, LZF), while
 * hdf5-filter-plugin and the Blosc plugin install into the serial HDF5's folder; the
 * plugins call nothing of the library's that differs between the two builds. So unless
 * the user chose the path with HDF5_PLUGIN_PATH, the serial folder is searched after
 * the parallel one. */
#include "internal.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef HB_HDF5_PLUGIN_DIRS
#define HB_HDF5_PLUGIN_DIRS                                                                                   \
    "/usr/lib/x86_64-linux-gnu/hdf5/openmpi/plugins", "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins",       \
        "/usr/lib/aarch64-linux-gnu/hdf5/openmpi/plugins", "/usr/lib/aarch64-linux-gnu/hdf5/serial/plugins", \
        "/usr/local/hdf5/lib/plugin"
#endif

/* 1 when dir is already one of HDF5's plugin folders. */
static int in_path(const char *dir)
{
    unsigned n = 0;
    if (H5PLsize(&n) < 0) return 0;
    for (unsigned i = 0; i < n; i++) {
        char buf[1024];
        if (H5PLget(i, buf, sizeof buf) > 0 && strcmp(buf, dir) == 0) return 1;
    }
    return 0;
}

void io_filters_init(void)
{
    const char *env = getenv("HDF5_PLUGIN_PATH");
    if (env && *env) return; /* the user's choice, which HDF5 has read */
    static const char *const dirs[] = {HB_HDF5_PLUGIN_DIRS};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        struct stat st;
        if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode) && !in_path(dirs[i])) H5PLappend(dirs[i]);
    }
}
