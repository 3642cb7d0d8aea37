/* Error state, its trail and collective agreement on errors (core/hb.h). */
#include "core/hb.h"
#include "core/stall.h"

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

size_t hb_err_escape(const char *s, char *buf, size_t len)
{
    size_t n = 0;
    if (len == 0) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 5 < len; p++) {
        /* C0 controls, DEL, C1 controls (U+0080-U+009F as UTF-8) and bytes that are not
         * UTF-8 would reach the terminal as commands: written as \xHH instead */
        int c1 = p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F;
        const int u = *p >= 0x80 ? hb_utf8_len(p, 4) : 0; /* NUL-terminated: a cut sequence stops at the NUL */
        const int lead = u > 1, cont = u - 1;
        if (*p < 0x20 || *p == 0x7f || c1 || (*p >= 0x80 && !lead)) {
            n += (size_t)snprintf(buf + n, len - n, "\\x%02x", *p);
            if (c1) n += (size_t)snprintf(buf + n, len - n, "\\x%02x", *++p);
        } else if (lead) {
            if (n + (size_t)cont + 2 >= len) break;
            for (int i = 0; i <= cont; i++) buf[n++] = (char)p[i];
            p += cont;
        } else {
            buf[n++] = (char)*p;
        }
    }
    buf[n] = '\0';
    return n;
}

void hb_err_report(void)
{
    if (hb_rank != 0 || !err_code) return;
    /* a job file's or a path's bytes are in the message: never the terminal's commands */
    char buf[4 * sizeof err_msg + 8];
    hb_err_escape(err_msg, buf, sizeof buf);
    fprintf(stderr, "h5batch: error: %s\n", buf);
    if (hb_log_level >= 2 && err_trail[0]) fprintf(stderr, "h5batch: trail: %s\n", err_trail);
}

int hb_agree(int rc)
{
    if (hb_size == 1) return rc;
    int mine = rc ? hb_rank : hb_size, first;
    hb_stall_allreduce(&mine, &first, 1, MPI_INT, MPI_MIN); /* with the deadline (core/stall.h) */
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
