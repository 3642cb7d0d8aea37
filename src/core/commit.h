/* Files made safely: run folders, output checks and the atomic commit of outputs. */
#ifndef HB_CORE_COMMIT_H
#define HB_CORE_COMMIT_H

/* Not collective (rank 0). 73 unless the folder of path exists and is writable. */
int hb_check_writable(const char *path);

/* Not collective. fsyncs the folder that holds path; -1 with errno on failure. */
int hb_fsync_dir(const char *path);

/* Not collective. Creates dir and its missing parents; -1 with errno on failure. */
int hb_mkdir_p(const char *dir);

/* Collective. Commits an output written under tmp: when every rank passes ok == 0,
 * rank 0 renames tmp to path and syncs the directory; otherwise removes tmp. Returns
 * the agreed status. */
int hb_commit(const char *tmp, const char *path, int ok);

/* Collective. 0 when path may be written: it does not exist (or force) and its folder is
 * writable; otherwise 73 on every rank. */
int hb_output_check(const char *path, int force);

#endif
