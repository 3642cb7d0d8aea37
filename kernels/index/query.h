/* `h5batch query`: BM25 ranking over an index written by the index kernel. */
#ifndef HB_QUERY_H
#define HB_QUERY_H

/* Not collective; needs no MPI. `h5batch query INDEX.h5 [--top K] [--json] [--k1 X]
 * [--b Y] WORDS...`: prints `rank doc score` lines (or JSON); returns an exit code. */
int hb_query_main(int argc, char **argv);

#endif
