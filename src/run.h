/* The run driver: steps of a job in order, chunk rounds, progress and status, and the
 * atomic commit of outputs. */
#ifndef HB_RUN_H
#define HB_RUN_H

/* Collective. `h5batch run JOB.ini [--set STEP.KEY=VALUE]... [--fresh] [--force] [-v|-q]`. */
int hb_run_main(int argc, char **argv);

/* Collective. Commits an output written under tmp: when every rank passes ok == 0,
 * rank 0 renames tmp to path and syncs the directory; otherwise removes tmp. Returns
 * the agreed status. */
int hb_commit(const char *tmp, const char *path, int ok);

/* Not collective (rank 0). 73 unless the folder of path exists and is writable. */
int hb_check_writable(const char *path);

#endif
