/* The stall deadline of the agreements (core/stall.h): a nonblocking MPI_Iallreduce polled
 * against the deadline, and on expiry a roll call that names the ranks that have not
 * arrived. Nothing of it runs while every rank arrives in time: the roll call's messages
 * are sent only once a deadline has passed. */
#include "core/stall.h"

#include "core/hb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_ROLL = 1, TAG_HERE = 2, HOST_LEN = MPI_MAX_PROCESSOR_NAME, MAX_NAMED = 8 };

static MPI_Comm roll = MPI_COMM_NULL; /* a duplicate of MPI_COMM_WORLD: the roll call's tags are its own */
static char *hosts;                   /* HOST_LEN bytes per rank */
static double timeout = HB_STALL_DEFAULT;
static char where[256] = "agreement";
static void (*on_expiry)(void *);
static void *on_expiry_user;

void hb_stall_init(void)
{
    if (hb_size == 1 || roll != MPI_COMM_NULL) return;
    char name[HOST_LEN] = "";
    int len;
    MPI_Get_processor_name(name, &len);
    hosts = calloc((size_t)hb_size, HOST_LEN);
    int ok = hosts != NULL, all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (!all) { /* no names, no deadline: the agreements block as they did before */
        free(hosts);
        hosts = NULL;
        return;
    }
    MPI_Allgather(name, HOST_LEN, MPI_CHAR, hosts, HOST_LEN, MPI_CHAR, MPI_COMM_WORLD);
    MPI_Comm_dup(MPI_COMM_WORLD, &roll);
}

void hb_stall_finalize(void)
{
    if (roll != MPI_COMM_NULL) MPI_Comm_free(&roll);
    free(hosts);
    hosts = NULL;
}

void hb_stall_set_timeout(double seconds) { timeout = seconds > 0 ? seconds : 0; }
double hb_stall_timeout(void) { return timeout; }

void hb_stall_where(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where, sizeof where, fmt, ap);
    va_end(ap);
}

void hb_stall_on_expiry(void (*fn)(void *user), void *user)
{
    on_expiry = fn;
    on_expiry_user = user;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void nap(long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

/* How long the roll call waits for answers: long enough for ranks that arrived a little
 * later than the caller, short beside the deadline. */
static double grace(void)
{
    double g = timeout / 4;
    return g < 0.5 ? 0.5 : g > 5 ? 5 : g;
}

static const char *host_of(int r) { return hosts + (size_t)r * HOST_LEN; }

/* Rank 0's roll call has reached this rank: it answers at once. */
static int answer_roll(void)
{
    static int v; /* the answer's buffer outlives the send, which is never waited for */
    int flag = 0;
    MPI_Iprobe(0, TAG_ROLL, roll, &flag, MPI_STATUS_IGNORE);
    if (!flag) return 0;
    MPI_Recv(&v, 1, MPI_INT, 0, TAG_ROLL, roll, MPI_STATUS_IGNORE);
    MPI_Request rq;
    MPI_Isend(&v, 1, MPI_INT, 0, TAG_HERE, roll, &rq);
    MPI_Request_free(&rq);
    return 1;
}

/* Records the error naming the ranks whose `here` is 0, runs the expiry function, prints
 * the error line on this rank and aborts the job. */
static _Noreturn void report(const char *here, double waited)
{
    char list[1024] = "";
    int missing = 0;
    size_t n = 0;
    for (int r = 0; r < hb_size; r++) {
        if (here[r]) continue;
        if (missing++ < MAX_NAMED && n < sizeof list)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%d (host %s)", n ? ", " : "", r, host_of(r));
    }
    if (missing > MAX_NAMED && n < sizeof list)
        snprintf(list + n, sizeof list - n, " and %d more", missing - MAX_NAMED);
    if (missing)
        hb_err_set(HB_EIO, where,
                   "rank%s %s did not arrive within %.0fs (stall_timeout): a host is down or cut off, or a "
                   "process stopped; the last checkpoint is kept: run the same command again, on the hosts that "
                   "remain, to resume",
                   missing > 1 ? "s" : "", list, waited);
    else
        hb_err_set(HB_EIO, where,
                   "every rank answered the roll call, but the agreement did not complete within %.0fs "
                   "(stall_timeout); the last checkpoint is kept: run the same command again to resume",
                   waited);
    if (on_expiry) on_expiry(on_expiry_user);
    char buf[4 * 1024 + 8];
    hb_err_escape(hb_err_msg(), buf, sizeof buf);
    fprintf(stderr, "h5batch: error: %s\n", buf);
    fflush(stderr);
    /* a communication that did not complete cannot be agreed on, nor returned from: the
     * job ends here, as with MPI_ERRORS_ARE_FATAL (docs/architecture.md, "Errors") */
    MPI_Abort(MPI_COMM_WORLD, HB_EIO);
    abort();
}

/* Rank 0: calls the roll, waits the grace for answers and reports who has not answered. */
static _Noreturn void expire_root(double waited)
{
    char *here = calloc((size_t)hb_size, 1);
    MPI_Request *rq = calloc((size_t)hb_size, sizeof *rq);
    static int token = 1;
    if (!here || !rq) {
        hb_err_set(HB_EIO, where, "the agreement did not complete within %.0fs (stall_timeout)", waited);
        if (on_expiry) on_expiry(on_expiry_user);
        MPI_Abort(MPI_COMM_WORLD, HB_EIO);
        abort();
    }
    here[0] = 1;
    for (int r = 1; r < hb_size; r++) MPI_Isend(&token, 1, MPI_INT, r, TAG_ROLL, roll, &rq[r]);
    int answered = 1;
    const double until = mono_now() + grace();
    while (answered < hb_size && mono_now() < until) {
        int flag = 0, v;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_HERE, roll, &flag, &st);
        if (!flag) {
            nap(1000000);
            continue;
        }
        MPI_Recv(&v, 1, MPI_INT, st.MPI_SOURCE, TAG_HERE, roll, MPI_STATUS_IGNORE);
        if (!here[st.MPI_SOURCE]) answered++;
        here[st.MPI_SOURCE] = 1;
    }
    report(here, waited);
}

/* Any other rank: answers the roll call when it comes and waits for rank 0 to end the
 * job; when no roll call comes, rank 0 is the one lost, and the first rank on another
 * host than rank 0's (the one least likely to be lost with it) reports that. */
static _Noreturn void expire_other(double waited, int answered)
{
    double until = mono_now() + 2 * grace();
    while (mono_now() < until) {
        if (!answered && answer_roll()) {
            answered = 1;
            until = mono_now() + 3 * grace(); /* rank 0 reports and aborts the job meanwhile */
        }
        nap(1000000);
    }
    int reporter = 1;
    for (int r = 1; r < hb_size; r++)
        if (strcmp(host_of(r), host_of(0)) != 0) {
            reporter = r;
            break;
        }
    if (!answered && hb_rank == reporter) {
        char *here = malloc((size_t)hb_size);
        if (here) {
            memset(here, 1, (size_t)hb_size);
            here[0] = 0;
            report(here, waited);
        }
    }
    MPI_Abort(MPI_COMM_WORLD, HB_EIO);
    abort();
}

void hb_stall_allreduce(const void *send, void *recv, int count, MPI_Datatype type, MPI_Op op)
{
    if (roll == MPI_COMM_NULL || timeout <= 0) {
        MPI_Allreduce(send, recv, count, type, op, MPI_COMM_WORLD);
        return;
    }
    MPI_Request req;
    MPI_Iallreduce(send, recv, count, type, op, MPI_COMM_WORLD, &req);
    const double t0 = mono_now();
    long ns = 10000; /* between polls: from 10 us, doubling to 1 ms, so that a waiting rank leaves its core */
    for (int done = 0;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        const double waited = mono_now() - t0;
        if (hb_rank != 0 && waited > 0.01 && answer_roll()) expire_other(timeout, 1);
        if (waited >= timeout) {
            if (hb_rank == 0) expire_root(waited);
            expire_other(waited, 0);
        }
        if (waited < 1e-4) continue; /* the common case: the others are a few microseconds away */
        nap(ns);
        if (ns < 1000000) ns *= 2;
    }
}
