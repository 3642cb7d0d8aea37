/* What the files of the episodes kernel share (DESIGN.md 4.5, docs/episodes.md): the
 * parsed options, the readings' columns, the state, and finalize's detection and output
 * (detect.c); episodes.c holds the kernel table, map, the exchange and save/load. Not an
 * interface outside kernels/episodes/.
 *
 * A device is a 64-bit key: an integer id as itself, a string id as the XXH3 hash of its
 * bytes (the bytes travel once per device and rank to the owner, which keeps them for
 * the labels). The owner of a device is a function of its hash and the rank count only;
 * every reading of a device ends on its owner, whatever chunk or rank read it. */
#ifndef HB_EPISODES_INTERNAL_H
#define HB_EPISODES_INTERNAL_H

#include "kernels/kernel.h"

#include "core/calendar.h"
#include "kernels/common/exchange.h"
#include "kernels/common/spill.h"

#include <stddef.h>
#include <stdint.h>

enum { RULE_ABOVE, RULE_BELOW, RULE_OUTSIDE, RULE_DEVIATION };
enum { PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH };

/* The step's options, parsed and checked (the same on every rank). */
typedef struct ep_spec {
    int rule;
    double lo, hi, k; /* above/below: lo; outside: lo, hi; deviation: k */
    int rate;         /* derive = rate */
    double hysteresis, max_gap, min_duration;
    int period;
    int64_t unit; /* time column units per second */
    const char *unit_name, *tz, *table, *rule_text;
    double max_memory;
    hb_colmap cols;
    char dev[64], time[64], value[64];
} ep_spec;

/* Not collective. Parses and checks the options; on failure names the key in *key and
 * says why in msg, returning 78. */
int ep_spec_parse(const hb_optset *o, ep_spec *sp, const char **key, char *msg, size_t len);

/* Readings as columns: the times and values of n readings, cut into runs of
 * consecutive readings of one device (a run's readings follow the previous run's). A
 * time is stored as a step from its run's first time t0: an int32 for times in s or ms
 * (a run is cut where a time is further away: 68 years, 24 days), an int64 in us or ns;
 * a value as a float when the value column is float32 (exact),
 * else a double. What a rank owns, stages for another rank, or loaded from a checkpoint
 * is such a list: 8 to 16 bytes a reading, and 24 a run (a chunk of readings grouped by
 * device has about one run per device). */
typedef struct ep_run {
    uint64_t dev; /* integer id, or the hash of the string id */
    int64_t t0;   /* the run's first time, as stored (in time_unit) */
    uint64_t n;   /* readings */
} ep_run;

typedef struct ep_cols {
    void *dt; /* time - t0 of the reading's run: int32 (tsz 4) or int64 (tsz 8) */
    void *v;  /* float or double values, vsz bytes each */
    size_t n, cap, tsz, vsz;
    ep_run *run;
    size_t nrun, runcap;
} ep_cols;

/* Not collective. Room for n more readings and nrun more runs in c; 70 when out of memory
 * (recorded). */
int ep_cols_reserve(ep_cols *c, size_t n, size_t nrun);
/* Frees the columns; keeps vsz. */
void ep_cols_free(ep_cols *c);

/* The strings of string ids by hash: an open-addressing set of (hash, offset, length). */
typedef struct ep_dict {
    uint64_t *hash; /* 0 marks an empty slot: a hash of 0 is stored as 1 */
    uint64_t *off;
    uint32_t *len;
    size_t mask, n;
    char *bytes;
    size_t nbytes, bcap;
} ep_dict;

/* Not collective. 0 when (h, s) is added or already there, 1 when another string has
 * hash h, 70 out of memory (recorded). s may be NULL to test for h alone (2: absent). */
int ep_dict_add(ep_dict *d, uint64_t h, const char *s, uint32_t len);
/* Not collective. The slot of h, or (size_t)-1 when absent. */
size_t ep_dict_find(const ep_dict *d, uint64_t h);
void ep_dict_free(ep_dict *d);

/* What one rank has staged for one other rank: readings, and string id entries. */
typedef struct ep_pend {
    ep_cols c;
    char *str;
    size_t nstr, strcap;
} ep_pend;

/* The kernel's state on one rank. */
typedef struct ep_state {
    hb_step_ctx *ctx;
    const char *src; /* the input's name in messages: the file, or "the merged parts" */
    ep_spec sp;
    hb_table *tab;
    int col_dev, col_time, col_val;
    int str_dev, float_dev; /* the device column holds strings / floats */
    char units[64];         /* of the value column */
    int nthreads;
    hb_tzmap tzm;
    /* counters of the rows this rank read (or loaded) */
    uint64_t rows_total, rows_missing, rows_invalid;
    /* a chunk's columns, and its valid readings' runs */
    int64_t *kbuf, *tbuf;
    double *vbuf, *dtmp;
    void *vraw;            /* the value column as stored, when val_raw */
    int dev_raw, val_raw;  /* hb_raw_kind of the device and value columns read as stored, or HB_RAW_OTHER */
    uint8_t *ok;
    int *dest;
    hb_strs strs;
    size_t chunk_cap; /* rows the chunk buffers hold */
    ep_run *crun;     /* the chunk's valid readings as runs: time steps cdt, values in place */
    void *cdt;
    /* a chunk regrouped by device when its runs are short: the times and values grouped,
     * the devices' totals and places, and a table of the chunk's devices */
    int64_t *gt;
    void *gv;
    ep_run *grun;
    size_t *gpos;
    uint64_t *hkey;
    uint32_t *hidx;
    size_t hcap;
    /* this rank's devices' readings, and the strings of their ids */
    ep_cols own;
    ep_dict names;
    /* what goes to the other ranks at the next exchange: per destination its runs and
     * their readings, and its string ids; then the buffers of the exchange itself:
     * readings (xr), runs (xu) and strings (xs), laid out by destination */
    ep_pend *pend;
    long xcalls;
    hb_xchg xr, xu, xs;
    void *st, *sv;
    ep_run *srun, *rrun;
    size_t stcap, svcap, sruncap, rruncap;
    char *sstr, *rstr;
    size_t sscap, rscap;
    ep_dict sent; /* hashes of string ids this rank has staged already (no bytes) */
    /* spill (spill.c, docs/spill.md): the bytes the owned readings may take before they
     * are written as a run (0: never), and the runs this rank holds */
    double budget;
    struct ep_ref *runs;
    size_t nruns, runcap;
    uint64_t spilled, nspills;
} ep_state;

/* A spilled run of readings (spill.c): 24-byte records (device, time, value bits) in
 * ascending device order, each device's readings in (time, value) order; the rank count
 * and rank that wrote it (such a run holds only that rank's devices at that count). */
typedef struct ep_ref {
    hb_spill_run run;
    int32_t size, rank;
} ep_ref;

/* Not collective. Writes the owned readings as one run and empties the columns (their
 * memory is kept for the next readings); 74 when the write fails. */
int ep_spill(ep_state *s);
/* Not collective. Spills when the owned readings and `more` coming would pass the
 * budget; without a scratch folder (merge) refuses beyond max_memory as before (65). */
int ep_spill_check(ep_state *s, size_t more);
/* Not collective. Adds a run reference. */
int ep_runs_add(ep_state *s, const ep_ref *r);
/* Collective. Every rank learns every rank's runs and keeps those that may hold its
 * devices (a resume on another rank count hands runs to ranks that do not own them). */
int ep_runs_share(ep_state *s);
/* Not collective. Reads this rank's devices from its runs, in device order, into the
 * owned columns (emptied after each call), calling fn whenever they hold `cap` readings
 * or more (whole devices) and at the end; refuses a device whose readings alone pass the
 * budget (65 naming it). fn NULL: every reading of the runs, owned or not, stays in the
 * columns and the runs are dropped from the list (a partial's save). */
int ep_runs_batches(ep_state *s, size_t cap, int (*fn)(ep_state *, void *), void *user);

/* The owner rank of device key k among size ranks. */
static inline int ep_owner(uint64_t k, int size) { return (int)(((hb_mix64(k) >> 32) * (uint64_t)size) >> 32); }

/* The owned devices in ascending key order, each with its runs ordered by their first
 * time: device d's runs are at[dev[d].r0 ..] (offsets in the columns) of len[..]. */
typedef struct ep_dev {
    uint64_t dev;
    size_t r0, nr, n; /* first run, runs, readings */
} ep_dev;

typedef struct ep_order {
    ep_dev *dev;
    size_t nd;
    uint64_t *at, *len; /* a run's first reading in the columns, and its readings */
    int64_t *t0;
} ep_order;

/* A thread's room for a device's readings when they are not one ordered run. */
typedef struct ep_scratch {
    int64_t *t;
    double *v;
    size_t cap;
    uint64_t *key;
    size_t kcap;
} ep_scratch;

/* Not collective. The order of the devices of c (detect.c); 70 when out of memory. */
int ep_order_build(const ep_cols *c, ep_order *o);
void ep_order_free(ep_order *o);
/* Not collective, thread-safe with one scratch per thread. Device d's readings in (time,
 * value) order, decoded into the scratch (a device's readings, cache-sized) and ordered
 * there when they are not in order already (the common case: they arrive in order). */
int ep_series(const ep_cols *c, const ep_order *o, size_t d, ep_scratch *sc, const int64_t **t, const double **v);
void ep_scratch_free(ep_scratch *sc);

/* Collective. Orders every owned device's readings, finds its episodes and period
 * figures, and writes /episodes (detect.c). */
int ep_finalize(ep_state *s, hb_out *out);

/* Not collective. The bytes one rank needs per owned reading (its time step and value,
 * as c stores them; the runs, a device's ordered copy at finalize and the chunk buffers are
 * small beside them), for the memory estimate. */
static inline size_t ep_bytes_per_reading(const ep_cols *c) { return c->tsz + c->vsz; }

/* Step i of a column of steps tsz bytes wide. */
static inline int64_t ep_dt_get(const void *dt, size_t tsz, size_t i)
{
    return tsz == 4 ? ((const int32_t *)dt)[i] : ((const int64_t *)dt)[i];
}
static inline void ep_dt_put(void *dt, size_t tsz, size_t i, int64_t x)
{
    if (tsz == 4) ((int32_t *)dt)[i] = (int32_t)x;
    else ((int64_t *)dt)[i] = x;
}

#endif
