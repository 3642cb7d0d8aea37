/* Common definitions for h5batch: the version, and the base layer that plugins see too
 * (errors and agreement, memory, logging: include/h5batch/). */
#ifndef HB_H
#define HB_H

#include "h5batch/base.h"
#include "h5batch/errors.h"

#include <stddef.h>
#include <stdint.h>

#define HB_VERSION "0.1.0"

#endif
