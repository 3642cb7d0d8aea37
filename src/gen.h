/* Synthetic data generators (`h5batch gen KIND`). */
#ifndef HB_GEN_H
#define HB_GEN_H

#include <stdint.h>

/* Collective. `h5batch gen KIND -o FILE [options]`; returns an exit code. */
int hb_gen_main(int argc, char **argv);

/* Collective. One generator each: argv holds the options after KIND. */
int hb_gen_traffic(int argc, char **argv);
int hb_gen_market(int argc, char **argv);
int hb_gen_corpus(int argc, char **argv);

#endif
