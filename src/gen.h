/* `h5batch gen NAME`: the data generators of the kernels, found in the registry. */
#ifndef HB_GEN_H
#define HB_GEN_H

/* Collective. `h5batch gen NAME -o FILE [--force] [-q|-v] [options]`: reads the
 * options through the generator's table, writes the file under a temporary name and
 * commits it; returns an exit code. */
int hb_gen_main(int argc, char **argv);

#endif
