/* Option tables and the command-line reader: declared in the plugin API
 * (include/h5batch/opts.h), since plugin kernels and generators bring their own. */
#ifndef HB_OPTS_H
#define HB_OPTS_H

#include "h5batch/opts.h"

#endif
