/* Error state and collective agreement on errors (docs/architecture.md, "Errors"). */
#include "core/hb.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int err_code;
static char err_msg[1024];

int hb_err_set(int code, const char *where, const char *fmt, ...)
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
    return code;
}

int hb_err_at(int code, const char *file, int line, const char *what)
{
    return hb_err_set(code, "internal", "%s failed at %s:%d", what, file, line);
}

int hb_err_code(void) { return err_code; }
const char *hb_err_msg(void) { return err_code ? err_msg : ""; }
void hb_err_clear(void)
{
    err_code = 0;
    err_msg[0] = '\0';
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
    } e;
    if (hb_rank == first) {
        e.code = rc;
        if (err_code) {
            snprintf(e.msg, sizeof e.msg, "%s", err_msg);
        } else {
            snprintf(e.msg, sizeof e.msg, "failed with status %d", rc);
        }
        if (first != 0 && strstr(e.msg, "(rank ") == NULL) {
            size_t l = strlen(e.msg);
            snprintf(e.msg + l, sizeof e.msg - l, " (rank %d)", first);
        }
    }
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, MPI_COMM_WORLD);
    err_code = e.code;
    snprintf(err_msg, sizeof err_msg, "%s", e.msg);
    return e.code;
}
