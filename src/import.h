/* `h5batch import`: CSV files (plain or gzip) to an h5batch table (DESIGN.md 6,
 * docs/import.md). */
#ifndef HB_IMPORT_H
#define HB_IMPORT_H

/* Collective. `h5batch import FILE.csv[.gz]... -o OUT.h5 [options]`: reads the files as
 * one table (each rank a byte range of every plain file), infers or takes the column
 * types, writes the table under a temporary name and commits it; an exit code. */
int hb_import_main(int argc, char **argv);

#endif
