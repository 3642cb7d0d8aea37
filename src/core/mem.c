/* Allocation wrappers that record an error instead of failing silently. */
#include "core/hb.h"

#include <stdlib.h>
#include <string.h>

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
