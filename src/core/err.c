/* Error state, its trail and collective agreement on errors (core/hb.h). */
#include "core/hb.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int err_code;
static char err_msg[1024];
static char err_trail[512]; /* "file:line <- file:line ...", innermost first */

/* Appends file:line to the trail while it has room. */
static void trail_add(const char *file, int line)
{
    size_t n = strlen(err_trail);
    if (n + 8 >= sizeof err_trail) return;
    snprintf(err_trail + n, sizeof err_trail - n, "%s%s:%d", n ? " <- " : "", file, line);
}

int hb_err_set_at(const char *file, int line, int code, const char *where, const char *fmt, ...)
{
    if (err_code != 0) return err_code; /* the first error is the cause; keep it */
    err_code = code;
    int n = 0;
    if (where && *where) n = snprintf(err_msg, sizeof err_msg, "%s: ", where);
    if (n < 0 || (size_t)n >= sizeof err_msg) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg + n, sizeof err_msg - (size_t)n, fmt, ap);
    va_end(ap);
    err_trail[0] = '\0';
    trail_add(file, line);
    return code;
}

int hb_err_at(int code, const char *file, int line, const char *what)
{
    return hb_err_set_at(file, line, code, "internal", "%s failed at %s:%d", what, file, line);
}

int hb_err_trace(int rc, const char *file, int line)
{
    if (err_code != 0) trail_add(file, line);
    return rc;
}

int hb_err_code(void) { return err_code; }
const char *hb_err_msg(void) { return err_code ? err_msg : ""; }
const char *hb_err_trail(void) { return err_code ? err_trail : ""; }
void hb_err_clear(void)
{
    err_code = 0;
    err_msg[0] = err_trail[0] = '\0';
}

void hb_err_report(void)
{
    if (hb_rank != 0 || !err_code) return;
    fprintf(stderr, "h5batch: error: %s\n", err_msg);
    if (hb_log_level >= 2 && err_trail[0]) fprintf(stderr, "h5batch: trail: %s\n", err_trail);
}

int hb_agree(int rc)
{
    if (hb_size == 1) return rc;
    int mine = rc ? hb_rank : hb_size, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == hb_size) return 0;
    struct {
        int code;
        char msg[sizeof err_msg];
        char trail[sizeof err_trail];
    } e;
    if (hb_rank == first) {
        e.code = rc;
        if (err_code) {
            snprintf(e.msg, sizeof e.msg, "%s", err_msg);
            snprintf(e.trail, sizeof e.trail, "%s", err_trail);
        } else {
            snprintf(e.msg, sizeof e.msg, "failed with status %d", rc);
            e.trail[0] = '\0';
        }
        if (first != 0 && strstr(e.msg, "(rank ") == NULL) {
            size_t l = strlen(e.msg);
            snprintf(e.msg + l, sizeof e.msg - l, " (rank %d)", first);
        }
        if (first != 0 && e.trail[0]) {
            size_t l = strlen(e.trail);
            snprintf(e.trail + l, sizeof e.trail - l, " (rank %d)", first);
        }
    }
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, MPI_COMM_WORLD);
    err_code = e.code;
    snprintf(err_msg, sizeof err_msg, "%s", e.msg);
    snprintf(err_trail, sizeof err_trail, "%s", e.trail);
    return e.code;
}
