/* What the files of the episodes kernel share (DESIGN.md 4.5, docs/episodes.md): the
 * parsed options, the reading records, the state, and finalize's detection and output
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

/* One valid reading on its way to (or at) its device's owner. */
typedef struct ep_rec {
    uint64_t dev; /* integer id, or the hash of the string id */
    int64_t t;    /* as stored, in time_unit */
    double v;
} ep_rec;

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
    /* a chunk's columns */
    int64_t *kbuf, *tbuf;
    double *vbuf, *dtmp;
    uint8_t *ok;
    int *dest;
    hb_strs strs;
    /* this rank's devices' readings, and the strings of their ids */
    ep_rec *own;
    size_t nown, owncap;
    ep_dict names;
    /* what goes to the other ranks after this round */
    hb_xchg xr, xs;
    ep_rec *srec, *rrec;
    size_t srcap, rrcap;
    char *sstr, *rstr;
    size_t sscap, rscap;
    ep_dict sent; /* hashes of string ids this rank has sent already (no bytes) */
    /* loaded from a checkpoint, to be sent to their owners by the next exchange */
    ep_rec *ld;
    size_t nld, ldcap;
    char *ldstr;
    size_t nldstr, ldstrcap;
} ep_state;

/* The owner rank of device key k among size ranks. */
static inline int ep_owner(uint64_t k, int size) { return (int)(((hb_mix64(k) >> 32) * (uint64_t)size) >> 32); }

/* Collective. Orders every owned device's readings, finds its episodes and period
 * figures, and writes /episodes (detect.c). */
int ep_finalize(ep_state *s, hb_out *out);

/* Not collective. The bytes one rank needs per owned reading at finalize (the record,
 * its sorted copy and its device index), for the memory estimate. */
#define EP_BYTES_PER_READING (sizeof(ep_rec) + 16 + 8)

#endif
