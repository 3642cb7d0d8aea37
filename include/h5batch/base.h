/* h5batch plugin API: memory, logging, the process's rank and the clock. */
#ifndef H5BATCH_BASE_H
#define H5BATCH_BASE_H

#include <stddef.h>

/* Allocation that records an error instead of returning NULL silently. */
void *hb_malloc(size_t n);
void *hb_calloc(size_t n, size_t size);
void *hb_realloc(void *p, size_t n);
char *hb_strdup(const char *s);
/* Grows *p (of *cap elements of elem bytes) by doubling to hold need elements; -1 when
 * out of memory (nothing recorded: callable from threads). */
int hb_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Logging: level 0 quiet, 1 normal, 2 verbose. Only rank 0 prints unless all is set. */
extern int hb_log_level;
extern int hb_rank, hb_size;
void hb_log_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define HB_INFO(...)                                                                   \
    do {                                                                               \
        if (hb_log_level >= 1 && hb_rank == 0) hb_log_printf(__VA_ARGS__);             \
    } while (0)
#define HB_DEBUG(...)                                                                  \
    do {                                                                               \
        if (hb_log_level >= 2 && hb_rank == 0) hb_log_printf(__VA_ARGS__);             \
    } while (0)
void hb_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

double hb_now(void); /* wall-clock seconds, monotonic */

#endif
