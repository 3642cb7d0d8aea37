/* `h5batch export` (DESIGN.md 6): one output group as a tidy CSV table. */
#ifndef HB_EXPORT_H
#define HB_EXPORT_H

#define HB_EXPORT_USAGE "OUT.h5 [--group G] [--datasets A,B...] [-o FILE.csv|-] [--force] [--bom] [-q]"

/* Not collective; needs no MPI (under mpirun only rank 0 writes). Returns an exit code. */
int hb_export_main(int argc, char **argv);

#endif
