/* Fault injection for the tests (README, "Fault injection"): kills, slow chunks and
 * failed reads at chosen points on a chosen rank. */
#include "core/fault.h"

#include "core/hb.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void hb_fault_point(const char *what, long n)
{
    const char *v = getenv(what);
    const char *r = getenv("H5BATCH_FAULT_RANK");
    if (v && atol(v) == n && (r ? atoi(r) : 0) == hb_rank) {
        fprintf(stderr, "h5batch: fault injection: rank %d kills itself at %s=%ld\n", hb_rank, what, n);
        fflush(stderr);
        raise(SIGKILL);
    }
}

void hb_fault_delay(void)
{
    static long ms = -1;
    if (ms < 0) {
        const char *v = getenv("H5BATCH_FAULT_SLOW_CHUNK_MS");
        ms = v ? atol(v) : 0;
    }
    if (ms > 0) usleep((useconds_t)ms * 1000u);
}

/* Test hook (README, "Fault injection"): H5BATCH_FAULT_READ_FAIL=N[:TIMES] makes the
 * N-th hyperslab read of rank H5BATCH_FAULT_RANK (default 0) fail TIMES times (default 1). */
int hb_fault_read(long read_no, int attempt)
{
    static long at = -1, times = 1, rank = 0;
    if (at < 0) {
        const char *v = getenv("H5BATCH_FAULT_READ_FAIL"), *r = getenv("H5BATCH_FAULT_RANK");
        at = 0;
        if (v && sscanf(v, "%ld:%ld", &at, &times) < 1) at = 0;
        if (r) rank = atol(r);
    }
    return at > 0 && read_no == at && attempt < times && hb_rank == rank;
}

