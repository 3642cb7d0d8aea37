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
    va_list ap;
    va_start(ap, fmt);
    fputs("h5batch: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double hb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
