/* Fault injection (README, "Fault injection"): test hooks driven by environment
 * variables, acting on the rank named by H5BATCH_FAULT_RANK (default 0). */
#ifndef HB_CORE_FAULT_H
#define HB_CORE_FAULT_H

/* Kills this process with SIGKILL when the variable `what` equals n on the chosen rank. */
void hb_fault_point(const char *what, long n);
/* Sleeps H5BATCH_FAULT_SLOW_CHUNK_MS milliseconds (after every chunk). */
void hb_fault_delay(void);
/* 1 when read number read_no (1-based, counted per process) is to fail on this attempt:
 * H5BATCH_FAULT_READ_FAIL=N[:TIMES]. */
int hb_fault_read(long read_no, int attempt);

#endif
