/* Fault injection for the tests (README, "Fault injection"): kills, slow chunks and
 * failed reads and writes at chosen points on a chosen rank. */
#include "core/fault.h"

#include "core/hb.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void hb_fault_hold(const char *what, long n)
{
    const char *v = getenv(what), *r = getenv("H5BATCH_FAULT_RANK");
    long at = 0, ms = 0;
    if (!v || sscanf(v, "%ld:%ld", &at, &ms) != 2 || at != n || ms <= 0 || (r ? atoi(r) : 0) != hb_rank) return;
    fprintf(stderr, "h5batch: fault injection: rank %d holds at %s=%ld for %ld ms\n", hb_rank, what, n, ms);
    fflush(stderr);
    usleep((useconds_t)ms * 1000u);
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


/* The words H5BATCH_FAULT_WRITE_FAIL may name after a count. */
static const char *const write_files[] = {"output", "checkpoint", "status", "spill", NULL};
static const char *const write_kinds[] = {"create", "group", "dataset", "data", "attr", "close", "commit", NULL};

static int is_one_of(const char *w, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(w, *set) == 0) return 1;
    return 0;
}

/* One N[+][:WORD]... of H5BATCH_FAULT_WRITE_FAIL: the writes it counts and the one (or,
 * with +, the first of those) that fails. */
typedef struct write_fault {
    long at, seen;
    int and_later;
    char file[16], kind[16];
} write_fault;

enum { MAX_WRITE_FAULTS = 8 };

static int parse_write_fault(char *spec, write_fault *f)
{
    char *save = NULL, *w = strtok_r(spec, ":", &save), *end;
    memset(f, 0, sizeof *f);
    f->at = w ? strtol(w, &end, 10) : 0;
    if (!w || f->at <= 0 || (*end && strcmp(end, "+") != 0)) return -1;
    f->and_later = *end == '+';
    for (w = strtok_r(NULL, ":", &save); w; w = strtok_r(NULL, ":", &save)) {
        if (is_one_of(w, write_files)) snprintf(f->file, sizeof f->file, "%s", w);
        else if (is_one_of(w, write_kinds)) snprintf(f->kind, sizeof f->kind, "%s", w);
        else return -1;
    }
    return 0;
}

int hb_fault_write(const char *file, const char *kind)
{
    static write_fault faults[MAX_WRITE_FAULTS];
    static int nfaults = -1, rank;
    if (nfaults < 0) {
        const char *v = getenv("H5BATCH_FAULT_WRITE_FAIL"), *r = getenv("H5BATCH_FAULT_RANK");
        char specs[256] = "", *save = NULL;
        nfaults = 0;
        if (v) snprintf(specs, sizeof specs, "%s", v);
        for (char *sp = strtok_r(specs, ",", &save); sp && nfaults < MAX_WRITE_FAULTS; sp = strtok_r(NULL, ",", &save)) {
            char copy[256];
            snprintf(copy, sizeof copy, "%s", sp);
            if (parse_write_fault(sp, &faults[nfaults]) == 0) nfaults++;
            else fprintf(stderr, "h5batch: fault injection: H5BATCH_FAULT_WRITE_FAIL: cannot read '%s'\n", copy);
        }
        if (r) rank = atoi(r);
    }
    if (hb_rank != rank) return 0;
    int fail = 0;
    for (int i = 0; i < nfaults; i++) {
        write_fault *f = &faults[i];
        if ((*f->file && strcmp(file, f->file) != 0) || (*f->kind && strcmp(kind, f->kind) != 0)) continue;
        f->seen++;
        if (f->seen == f->at || (f->and_later && f->seen > f->at)) fail = 1;
    }
    if (!fail) return 0;
    fprintf(stderr, "h5batch: fault injection: rank %d fails a write (%s %s)\n", hb_rank, file, kind);
    errno = EIO;
    return 1;
}

int hb_fault_no_reserve(void) { return getenv("H5BATCH_FAULT_NO_RESERVE") != NULL; }

int hb_fault_no_direct(void) { return getenv("H5BATCH_FAULT_NO_DIRECT") != NULL; }
