/* Fault injection (README, "Fault injection"): test hooks driven by environment
 * variables, acting on the rank named by H5BATCH_FAULT_RANK (default 0). */
#ifndef HB_CORE_FAULT_H
#define HB_CORE_FAULT_H

/* Kills this process with SIGKILL when the variable `what` equals n on the chosen rank. */
void hb_fault_point(const char *what, long n);
/* Sleeps MS milliseconds when the variable `what` is N:MS and N equals n, on the chosen
 * rank, after saying so on stderr: holds a run at a known point (a test cuts a host's
 * link meanwhile). */
void hb_fault_hold(const char *what, long n);
/* Sleeps H5BATCH_FAULT_SLOW_CHUNK_MS milliseconds (after every chunk). */
void hb_fault_delay(void);
/* 1 when read number read_no (1-based, counted per process) is to fail on this attempt:
 * H5BATCH_FAULT_READ_FAIL=N[:TIMES]. */
int hb_fault_read(long read_no, int attempt);
/* 1 when this write is to fail: H5BATCH_FAULT_WRITE_FAIL=N[+][:WORD]...[,...] names the
 * N-th write (N+: the N-th and every later one) of the chosen rank, counted per process
 * among those that match every WORD: a file, `output`, `checkpoint` or `status`, or a
 * kind, `create`, `group`, `dataset`, `data`, `attr`, `close` or `commit`. file and kind
 * name this write; errno is EIO when it fails. Not collective. */
int hb_fault_write(const char *file, const char *kind);
/* 1 when H5BATCH_FAULT_NO_RESERVE is set: outputs reserve no disk space ahead, as on a
 * file system without fallocate. */
int hb_fault_no_reserve(void);
/* 1 when H5BATCH_FAULT_NO_DIRECT is set: outputs write every block through the page
 * cache, as on a file system without O_DIRECT. */
int hb_fault_no_direct(void);

#endif
