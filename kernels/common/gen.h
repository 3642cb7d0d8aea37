/* What the data generators share: whole-number options. */
#ifndef HB_KERNELS_GEN_H
#define HB_KERNELS_GEN_H

#include <stdint.h>

/* Not collective. Parses v, the value of option opt of generator gen, as a whole number
 * in [lo, hi] (k/M/G allowed) into *out; 64 naming the option otherwise. */
int hb_gen_int(const char *gen, const char *opt, const char *v, double lo, double hi, int64_t *out);

#endif
