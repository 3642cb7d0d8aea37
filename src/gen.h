/* Synthetic data generators (`h5batch gen KIND`). */
#ifndef HB_GEN_H
#define HB_GEN_H

#include <stdint.h>

/* Collective. `h5batch gen KIND -o FILE [options]`; returns an exit code. */
int hb_gen_main(int argc, char **argv);

/* Not collective. Parses v, the value of option opt of generator gen, as a whole number
 * in [lo, hi] (k/M/G allowed) into *out; 64 naming the option otherwise. */
int hb_gen_int(const char *gen, const char *opt, const char *v, double lo, double hi, int64_t *out);
/* Collective. 0 when path may be written: it does not exist (or force) and its folder is
 * writable; otherwise 73 on every rank. */
int hb_gen_output(const char *path, int force);

/* Collective. One generator each: argv holds the options after KIND. */
int hb_gen_traffic(int argc, char **argv);
int hb_gen_market(int argc, char **argv);
int hb_gen_corpus(int argc, char **argv);

#endif
