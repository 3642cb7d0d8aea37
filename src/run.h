/* The run driver: steps of a job in order, chunk rounds, progress and status, and the
 * atomic commit of outputs. */
#ifndef HB_RUN_H
#define HB_RUN_H

/* Collective. `h5batch run JOB.ini [--set STEP.KEY=VALUE]... [--fresh] [--force] [--partial] [-v|-q]`. */
int hb_run_main(int argc, char **argv);
/* Collective. `h5batch merge PART.h5... -o OUT.h5 [--partial] ...` (DESIGN.md 7). */
int hb_merge_main(int argc, char **argv);


#endif
