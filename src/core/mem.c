/* Allocation wrappers that record an error instead of failing silently; size products
 * checked for overflow; the memory a rank may plan for (max_memory) and the share of
 * invalid rows a run accepts (max_invalid_fraction), checked in one place for every
 * kernel. */
#include "core/hb.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *hb_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) hb_err_set(HB_EINTERNAL, "memory", "out of memory allocating %zu bytes", n);
    return p;
}

void *hb_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) hb_err_set(HB_EINTERNAL, "memory", "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *hb_realloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (!p) hb_err_set(HB_EINTERNAL, "memory", "out of memory growing to %zu bytes", n);
    return p;
}

char *hb_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = hb_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

int hb_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

int hb_mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? 1 : 0;
}

void *hb_malloc_array(size_t n, size_t m, size_t size)
{
    size_t a, b;
    if (hb_mul_size(n, m, &a) || hb_mul_size(a, size, &b)) {
        hb_err_set(HB_EDATA, "memory", "%zu x %zu x %zu bytes overflow the size of memory", n, m, size);
        return NULL;
    }
    return hb_malloc(b);
}

static double mem_limit;         /* bytes a rank's state and output may take; 0 before set */
static double invalid_limit = 0.5; /* the largest fraction of invalid rows a run accepts */

/* The default per rank: half the machine's physical memory, divided by the ranks on
 * this host, so that the ranks of one node together stay within half of it. */
static double default_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double phys = pages > 0 && page > 0 ? (double)pages * (double)page : 8e9;
    const int local = hb_host_ranks();
    return HB_MEM_DEFAULT_FRACTION * phys / (local > 0 ? local : 1);
}

int hb_host_ranks(void)
{
    static int local = 0;
    int init = 0;
    MPI_Initialized(&init);
    if (!init) return 1;
    if (local == 0) {
        MPI_Comm node;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    return local;
}

void hb_mem_set_limit(double bytes) { mem_limit = bytes > 0 ? bytes : default_limit(); }

double hb_mem_limit(void) { return mem_limit > 0 ? mem_limit : (mem_limit = default_limit()); }

void hb_invalid_set_limit(double fraction) { invalid_limit = fraction >= 0 && fraction <= 1 ? fraction : 1; }

double hb_invalid_limit(void) { return invalid_limit; }

const char *hb_fmt_count(char buf[32], uint64_t v)
{
    char d[24];
    int n = snprintf(d, sizeof d, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = d[i];
    }
    buf[o] = '\0';
    return buf;
}

/* Bytes with a unit of powers of 1000, as job files write sizes. */
static const char *fmt_bytes(char buf[32], double b)
{
    if (b >= 1e15) snprintf(buf, 32, "%.3g TB", b / 1e12);
    else if (b >= 1e12) snprintf(buf, 32, "%.1f TB", b / 1e12);
    else if (b >= 1e9) snprintf(buf, 32, "%.1f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, 32, "%.1f MB", b / 1e6);
    else snprintf(buf, 32, "%.1f kB", b / 1e3);
    return buf;
}

int hb_mem_reserve(double bytes, const char *where, const char *what, const char *cause, const char *remedy)
{
    double limit = hb_mem_limit();
    char need[32], lim[32];
    HB_DEBUG("memory: %s needs about %s per rank (max_memory = %s)", what, fmt_bytes(need, bytes),
             fmt_bytes(lim, limit));
    if (bytes <= limit) return 0;
    return hb_err_set(HB_EDATA, where, "%s would need about %s per rank%s%s%s, more than max_memory = %s: %s%s", what,
                      fmt_bytes(need, bytes), cause && *cause ? " (" : "", cause ? cause : "",
                      cause && *cause ? ")" : "", fmt_bytes(lim, limit), remedy && *remedy ? remedy : "",
                      remedy && *remedy ? ", or raise max_memory in [job]" : "raise max_memory in [job]");
}

int hb_invalid_check(uint64_t total, uint64_t invalid, const char *where, const char *what, const char *why)
{
    if (total == 0 || invalid == 0) return 0;
    double f = (double)invalid / (double)total;
    if (f <= invalid_limit) return 0;
    char a[32], b[32];
    return hb_err_set(HB_EDATA, where,
                      "%s of %s %s (%.1f%%) are invalid%s%s%s, more than max_invalid_fraction = %g: check the data "
                      "and the step's options, or raise max_invalid_fraction in [job] (1 accepts any)",
                      hb_fmt_count(a, invalid), hb_fmt_count(b, total), what, 100.0 * f, why && *why ? " (" : "",
                      why ? why : "", why && *why ? ")" : "", invalid_limit);
}
