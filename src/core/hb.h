/* Common definitions for h5batch: the version, and the base layer that plugins see too
 * (errors and agreement, memory, logging: include/h5batch/). */
#ifndef HB_H
#define HB_H

#include "h5batch/base.h"
#include "h5batch/errors.h"

#include <stddef.h>
#include <stdint.h>

#define HB_VERSION "0.1.0"

/* Not collective. Copies s into buf (len bytes) for a terminal: control bytes, C1
 * controls and bytes that are not UTF-8 written as \xHH. Returns the length. */
size_t hb_err_escape(const char *s, char *buf, size_t len);

#endif
