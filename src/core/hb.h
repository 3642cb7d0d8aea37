/* Common definitions for h5batch: the version, and the base layer that plugins see too
 * (errors and agreement, memory, logging: include/h5batch/). */
#ifndef HB_H
#define HB_H

#include "h5batch/base.h"
#include "h5batch/errors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HB_VERSION "0.1.0"

/* Not collective. Copies s into buf (len bytes) for a terminal: control bytes, C1
 * controls and bytes that are not UTF-8 written as \xHH. Returns the length. */
size_t hb_err_escape(const char *s, char *buf, size_t len);

/* Collective the first time after MPI_Init (1 before it, not kept): how many ranks run
 * on this host (MPI_COMM_TYPE_SHARED); later calls answer from the first. */
int hb_host_ranks(void);

/* Not collective. The length (1-4) of the valid UTF-8 sequence at p, of the avail bytes
 * there; 0 when none starts at p (a stray, overlong or surrogate byte, or a cut one). */
int hb_utf8_len(const unsigned char *p, size_t avail);
/* Not collective. The offset of the first byte of p[0, n) that is a NUL or not part of
 * UTF-8; n when there is none. */
size_t hb_utf8_first_bad(const unsigned char *p, size_t n);
/* Not collective. What is wrong with byte i of p (as hb_utf8_first_bad found it), for a
 * message: "byte 3 is 0xff, not UTF-8" or "byte 3 is a NUL". */
void hb_utf8_why(const unsigned char *p, size_t i, char *buf, size_t len);
/* Not collective. Writes the len bytes at s to f as a JSON string: quotes, backslashes and
 * control bytes escaped, a byte that is not UTF-8 as U+FFFD, so the output is always
 * JSON; s NULL writes null. */
void hb_json_str(FILE *f, const char *s, size_t len);

#endif
