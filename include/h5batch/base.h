/* h5batch plugin API: memory, logging, the process's rank and the clock. */
#ifndef H5BATCH_BASE_H
#define H5BATCH_BASE_H

#include <stddef.h>
#include <stdint.h>

/* Allocation that records an error instead of returning NULL silently. */
void *hb_malloc(size_t n);
void *hb_calloc(size_t n, size_t size);
void *hb_realloc(void *p, size_t n);
char *hb_strdup(const char *s);
/* Grows *p (of *cap elements of elem bytes) by doubling to hold need elements; -1 when
 * out of memory (nothing recorded: callable from threads). */
int hb_grow(void **p, size_t *cap, size_t need, size_t elem);

/* *out = a * b: 1 (and nothing recorded) when the product overflows size_t, else 0. */
int hb_mul_size(size_t a, size_t b, size_t *out);

/* hb_malloc of n x m elements of size bytes; NULL (65 recorded: sizes come from the
 * data) when the product overflows size_t. */
void *hb_malloc_array(size_t n, size_t m, size_t size);

/* The memory a rank's state and output may take (the [job] option max_memory). The
 * default is HB_MEM_DEFAULT_FRACTION of the machine's physical memory divided by the
 * ranks on this host. Collective when bytes is 0 (the default is found with
 * MPI_Comm_split_type); the driver sets it before each step's setup. */
#define HB_MEM_DEFAULT_FRACTION 0.5
void hb_mem_set_limit(double bytes);
double hb_mem_limit(void);
/* Not collective (call it with the same estimate on every rank, or agree). Before a
 * kernel allocates its state and output: 0 when bytes (the estimate per rank) is
 * within max_memory, else 65 with the estimate, what needs it, the cause ("5,000,001
 * segments from max(segment)+1; ids are sparse") and the remedy. */
int hb_mem_reserve(double bytes, const char *where, const char *what, const char *cause, const char *remedy);
/* The largest share of invalid rows a run accepts (the [job] option
 * max_invalid_fraction, default 0.5; 1 accepts any). */
void hb_invalid_set_limit(double fraction);
double hb_invalid_limit(void);
/* Not collective (call it with totals over all ranks). 65 when invalid of total
 * records (what: "rows", "values of consumption") exceeds max_invalid_fraction; why
 * says what made them invalid. */
int hb_invalid_check(uint64_t total, uint64_t invalid, const char *where, const char *what, const char *why);
/* v with thousands separators ("5,000,001") in buf. */
const char *hb_fmt_count(char buf[32], uint64_t v);

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
