/* Files made safely: run folders, output checks, unique temporaries, claims (lock files)
 * and the atomic commit of outputs (docs/architecture.md, "Files and claims"). */
#ifndef HB_CORE_COMMIT_H
#define HB_CORE_COMMIT_H

#include <stddef.h>

/* Not collective (rank 0). 73 unless the folder of path exists and is writable. */
int hb_check_writable(const char *path);

/* Not collective. fsyncs the folder that holds path; -1 with errno on failure. */
int hb_fsync_dir(const char *path);

/* Not collective. Creates dir and its missing parents; -1 with errno on failure. */
int hb_mkdir_p(const char *dir);

/* Not collective. hb_mkdir_p, with dir itself, when it is new, created with mode (the
 * run directory: 0700); an existing dir must be a directory. */
int hb_mkdir_mode(const char *dir, int mode);

/* Not collective. Creates a new, empty temporary file for path in path's folder, named
 * PATH.<pid>-<rank>-<random>.tmp, with O_CREAT|O_EXCL|O_NOFOLLOW: never an existing file
 * or a link. Returns its descriptor (its name in tmp), or -1 with errno. */
int hb_tmp_open(const char *path, char *tmp, size_t len);

/* Not collective. True when name is a temporary hb_tmp_open made for a file named base. */
int hb_tmp_name_of(const char *name, const char *base);

/* Collective. Rank 0 creates path's unique temporary (hb_tmp_open) and every rank gets
 * its name in tmp; 73 on every rank when it cannot be created. */
int hb_tmp_create(const char *path, char *tmp, size_t len);

/* Not collective. Replaces path by data atomically: unique temporary, write, fsync,
 * rename, fsync of the folder (fault injection as what: "data", then "commit"). -1 with
 * errno on failure, and nothing left behind. */
int hb_write_atomic(const char *path, const void *data, size_t len, const char *what);

/* Not collective. hb_write_atomic without the fsync of the folder, for a report such as
 * status.json: after a crash the file is the new content or the one before, never torn
 * or empty, but the new one may be lost. */
int hb_write_report(const char *path, const void *data, size_t len, const char *what);

/* Collective. Commits an output written under tmp: when every rank passes ok == 0,
 * rank 0 fsyncs tmp, renames it to path and syncs the directory; otherwise removes tmp.
 * Returns the agreed status. An output it replaces keeps a second name (a temporary
 * beside it) through the rename, which a thread then removes, so that freeing its
 * blocks is off the critical path: hb_commit_drain waits for that thread. */
int hb_commit(const char *tmp, const char *path, int ok);

/* Not collective. Waits until the blocks of the output the last hb_commit replaced are
 * freed; main calls it before it returns. */
void hb_commit_drain(void);

/* Collective. 0 when path may be written: it does not exist, or it is a regular file and
 * force is given; and its folder is writable. Otherwise 73 on every rank. */
int hb_output_check(const char *path, int force);

/* Not collective (rank 0). 0 when an existing path may be replaced by --force: a regular
 * file (never a link, directory, device, FIFO or socket). 73 with why otherwise. */
int hb_replaceable(const char *path);

/* Not collective. Takes the claim at path (a lock file: exclusive flock, opened with
 * O_NOFOLLOW, a regular file) and writes "PID HOST RUN_DIR" into it; what names the
 * claimed thing in messages ("run directory DIR", "output FILE"). 73 naming the other run
 * when a live process holds it; a claim a dead process left is taken over with a warning.
 * Returns 0 and the descriptor in *fd. */
int hb_claim_take(const char *path, const char *what, const char *run_dir, int *fd);

/* Not collective. Releases a claim: removes the lock file (remove) or empties it. */
void hb_claim_release(const char *path, int fd, int remove);

/* Not collective. What a lock file says of its holder ("pid 12 on host h, run directory
 * d") into buf; 0 when it names one, -1 when it is empty or unreadable. */
int hb_claim_holder(int fd, char *buf, size_t len, long *pid, char *host, size_t hlen);

/* The type of a file that is not regular, in words ("a FIFO", "a directory"). */
const char *hb_file_kind(unsigned mode);

/* Not collective. The format of the first n bytes b of a file, in words ("a Parquet
 * file"), when they are the magic of a format users bring instead of CSV or HDF5; NULL
 * otherwise. */
const char *hb_file_format(const unsigned char *b, size_t n);

#endif
