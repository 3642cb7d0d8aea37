/* The stall deadline (README "Running across hosts", docs/architecture.md "Errors"): the
 * agreements of a run wait at most `stall_timeout` seconds for every rank; a rank that
 * does not arrive (its host is down or cut off, its process stopped) is named with its
 * host, status.json says `failed` with that reason, and the job is aborted with exit 74,
 * instead of waiting until Open MPI's own timeouts notice, which can take minutes. */
#ifndef HB_CORE_STALL_H
#define HB_CORE_STALL_H

#include <mpi.h>

/* Collective. Learns every rank's host name and makes the communicator of the roll call;
 * the agreements wait without a deadline until it has run. */
void hb_stall_init(void);
/* Not collective. Frees what hb_stall_init made (before MPI_Finalize). */
void hb_stall_finalize(void);
/* Not collective; every rank sets the same. The deadline in seconds, 0 for none (the
 * agreements then block in MPI_Allreduce). The default is HB_STALL_DEFAULT. */
void hb_stall_set_timeout(double seconds);
double hb_stall_timeout(void);
#define HB_STALL_DEFAULT 60.0
/* Not collective. Names what the ranks are agreeing on, for the error line ("step
 * aggregate, round 3 of 12"); printf-style. */
void hb_stall_where(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Not collective. fn(user) runs on the rank that reports an expired deadline, after the
 * error is recorded (hb_err_msg) and before the job is aborted: the run writes
 * status.json there. NULL removes it. */
void hb_stall_on_expiry(void (*fn)(void *user), void *user);
/* Collective. MPI_Allreduce on MPI_COMM_WORLD (send may be MPI_IN_PLACE) that waits
 * polling, sleeping between polls, at most the deadline. On expiry it does not return:
 * rank 0 calls the roll, and it (or, when rank 0 itself does not answer, the first rank
 * on another host than rank 0's) records which ranks have not arrived, runs the expiry
 * function, prints one error line and aborts the job with exit 74 (HB_EIO). */
void hb_stall_allreduce(const void *send, void *recv, int count, MPI_Datatype type, MPI_Op op);

#endif
