/* Logging, warnings, the process's rank and the monotonic clock. */
#include "core/hb.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int hb_log_level = 1;
int hb_rank = 0, hb_size = 1;

void hb_log_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("h5batch: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void hb_warn(const char *fmt, ...)
{
    if (hb_rank != 0) return;
    /* warnings name what a run directory or a job file says: never terminal commands */
    char msg[1024], out[4 * sizeof msg + 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hb_err_escape(msg, out, sizeof out);
    fprintf(stderr, "h5batch: warning: %s\n", out);
}

double hb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
