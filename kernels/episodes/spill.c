/* The episodes kernel's spilled runs (docs/spill.md, "Episodes"): when the readings a
 * rank owns would pass what max_memory leaves, they are written as one run of 24-byte
 * records (device, time, value bits: kernels/common/spill.c) in ascending device order,
 * each device's readings in (time, value) order, and the columns are emptied for the next
 * readings. finalize reads the runs back device by device (each run's readings of a
 * device are contiguous), in batches of whole devices, into the columns that an in-memory
 * run holds, and detects them with the unchanged code: the same bits, since a device's
 * readings are ordered by (time, value) whatever order they came in.
 *
 * The run's key is the device shifted right by one (key_shift 1): the module's ranges are
 * half-open, and a key of 2^64 - 1 (device -1) would fall outside every one. The records
 * are in full device order all the same.
 *
 * A run holds only devices of the rank that wrote it at the rank count it ran at; a
 * resume on another rank count hands checkpoint parts (and their runs) to ranks that do
 * not own all of those devices, so finalize shares every rank's references and each rank
 * reads the runs that may hold its devices, keeping the devices it owns. */
#include "kernels/episodes/internal.h"

#include "core/hb.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC 24      /* bytes a spilled reading: device, time, value bits */
#define OUT_RECS 4096 /* records written at a time */
#define SCRATCH 40  /* bytes a reading of one device takes at finalize beside the columns
                     * (decoded times and values, the sort's keys and records) */

int ep_runs_add(ep_state *s, const ep_ref *r)
{
    if (hb_grow((void **)&s->runs, &s->runcap, s->nruns + 1, sizeof *s->runs))
        return hb_err_set(HB_EINTERNAL, "episodes", "out of memory for the list of spilled runs");
    s->runs[s->nruns++] = *r;
    return 0;
}

int ep_spill(ep_state *s)
{
    ep_cols *c = &s->own;
    if (c->n == 0) return 0;
    const double t0 = hb_now();
    ep_order o;
    ep_scratch sc = {0};
    HB_CALL(ep_order_build(c, &o));
    uint64_t *buf = hb_malloc(OUT_RECS * REC);
    hb_spill_writer *w = NULL;
    int rc = buf ? hb_spill_create("episodes", REC, 1, &w) : HB_EINTERNAL;
    for (size_t d = 0; rc == 0 && d < o.nd; d++) {
        const int64_t *t;
        const double *v;
        if ((rc = ep_series(c, &o, d, &sc, &t, &v))) break;
        const uint64_t dev = o.dev[d].dev;
        for (size_t i = 0, m = o.dev[d].n; rc == 0 && i < m;) {
            size_t k = m - i < OUT_RECS ? m - i : OUT_RECS;
            for (size_t j = 0; j < k; j++) {
                buf[3 * j] = dev;
                memcpy(&buf[3 * j + 1], &t[i + j], 8);
                memcpy(&buf[3 * j + 2], &v[i + j], 8);
            }
            rc = hb_spill_write(w, buf, k);
            i += k;
        }
    }
    free(buf);
    ep_order_free(&o);
    ep_scratch_free(&sc);
    ep_ref ref = {.size = hb_size, .rank = hb_rank};
    if (rc == 0) rc = hb_spill_finish(w, &ref.run), w = NULL;
    hb_spill_abort(w);
    if (rc == 0) rc = ep_runs_add(s, &ref);
    if (rc) return rc;
    s->spilled += c->n, s->nspills++;
    if (hb_log_level >= 2) /* every rank's, under -v */
        fprintf(stderr, "h5batch: episodes: rank %d spilled %zu readings (%.1f MB) to %s/%s in %.2fs\n", hb_rank, c->n,
                (double)ref.run.bytes / 1e6, hb_spill_dir(), ref.run.name, hb_now() - t0);
    c->n = 0, c->nrun = 0; /* the memory stays, for the next readings */
    return 0;
}

int ep_spill_check(ep_state *s, size_t more)
{
    const double per = (double)ep_bytes_per_reading(&s->own);
    if (s->own.n == 0 || (double)(s->own.n + more) * per <= s->budget * 0.6) return 0;
    return ep_spill(s);
}

int ep_runs_share(ep_state *s)
{
    if (hb_size == 1) return 0;
    ep_ref *all;
    size_t total;
    int rc = hb_allgather(s->runs, s->nruns, sizeof *s->runs, (void **)&all, &total, "episodes");
    if (rc) return rc;
    s->nruns = 0;
    for (size_t i = 0; rc == 0 && i < total; i++) {
        const ep_ref *r = &all[i];
        if (r->size == hb_size && r->rank != hb_rank) continue; /* another rank's devices only */
        int seen = 0;
        for (size_t j = 0; j < s->nruns && !seen; j++) seen = strcmp(s->runs[j].run.name, r->run.name) == 0;
        if (!seen) rc = ep_runs_add(s, r);
    }
    free(all);
    return hb_agree(rc);
}

/* One run being read: its current slice of records. */
typedef struct src {
    hb_spill_reader *r;
    const uint64_t *p;
    size_t n;
} src;

/* What a walk over runs does with a device's records. */
typedef struct sink {
    int (*take)(ep_state *, struct sink *, uint64_t dev, const uint64_t *rec, size_t n);
    int (*done)(ep_state *, struct sink *, uint64_t dev);
    hb_spill_writer *w;
    size_t cap, dev_n;
    int (*fn)(ep_state *, void *);
    void *user;
} sink;

/* Not collective. The records of runs[0..k) device by device in ascending order, each
 * run's slice of a device in turn (contiguous in a run), given to the sink: every
 * device's, or (mine) only those this rank owns. */
static int walk(ep_state *s, const ep_ref *runs, size_t k, int mine, sink *o)
{
    src *q = hb_calloc(k ? k : 1, sizeof *q);
    if (!q) return HB_EINTERNAL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        const void *recs;
        rc = hb_spill_open(&runs[i].run, 0, UINT64_MAX, &q[i].r);
        if (rc == 0) rc = hb_spill_read(q[i].r, &recs, &q[i].n), q[i].p = recs;
    }
    while (rc == 0) {
        int any = 0;
        uint64_t dev = 0;
        for (size_t i = 0; i < k; i++)
            if (q[i].n && (!any || q[i].p[0] < dev)) dev = q[i].p[0], any = 1;
        if (!any) break;
        const int keep = !mine || ep_owner(dev, hb_size) == hb_rank;
        o->dev_n = 0;
        for (size_t i = 0; rc == 0 && i < k; i++)
            while (rc == 0 && q[i].n && q[i].p[0] == dev) {
                size_t j = 1;
                while (j < q[i].n && q[i].p[3 * j] == dev) j++;
                if (keep) rc = o->take(s, o, dev, q[i].p, j);
                q[i].p += 3 * j, q[i].n -= j;
                if (rc == 0 && q[i].n == 0) {
                    const void *recs;
                    rc = hb_spill_read(q[i].r, &recs, &q[i].n), q[i].p = recs;
                }
            }
        if (rc == 0 && keep && o->done) rc = o->done(s, o, dev);
    }
    for (size_t i = 0; i < k; i++) hb_spill_close(q[i].r);
    free(q);
    return rc;
}

static int write_recs(ep_state *s, sink *o, uint64_t dev, const uint64_t *rec, size_t n)
{
    (void)s, (void)dev;
    return hb_spill_write(o->w, rec, n);
}

/* Not collective. While the runs are more than a quarter of the budget holds read
 * buffers of (4 to 256), the oldest are merged into one of this rank's devices; the old
 * files stay until the step commits (a checkpoint may name them). */
static int compact(ep_state *s)
{
    double fit = s->budget * 0.25 / (double)hb_spill_reader_bytes(REC);
    const size_t fanin = fit < 4 ? 4 : fit > 256 ? 256 : (size_t)fit;
    while (s->nruns > fanin) {
        sink o = {.take = write_recs};
        ep_ref ref = {.size = hb_size, .rank = hb_rank};
        int rc = hb_spill_create("episodes", REC, 1, &o.w);
        if (rc == 0) rc = walk(s, s->runs, fanin, 1, &o);
        if (rc == 0) rc = hb_spill_finish(o.w, &ref.run), o.w = NULL;
        hb_spill_abort(o.w);
        if (rc) return rc;
        memmove(s->runs, s->runs + fanin, (s->nruns - fanin) * sizeof *s->runs);
        s->nruns -= fanin;
        if (ref.run.records) HB_CALL(ep_runs_add(s, &ref));
        if (hb_log_level >= 2)
            fprintf(stderr, "h5batch: episodes: rank %d merged %zu runs into one of %llu readings\n", hb_rank, fanin,
                    (unsigned long long)ref.run.records);
    }
    return 0;
}

static inline int fits(int64_t t, int64_t t0, uint64_t lim)
{
    return t >= t0 ? (uint64_t)t - (uint64_t)t0 <= lim : (uint64_t)t0 - (uint64_t)t <= lim + 1;
}

/* The device's id as the output shows it: the integer, or the string. */
static void device_name(const ep_state *s, uint64_t dev, char *buf, size_t len)
{
    size_t j = s->str_dev ? ep_dict_find(&s->names, dev) : (size_t)-1;
    if (j != (size_t)-1) snprintf(buf, len, "'%.*s'", (int)s->names.len[j], s->names.bytes + s->names.off[j]);
    else snprintf(buf, len, "%lld", (long long)dev);
}

/* Appends a device's records to the owned columns, as map keeps readings. */
static int take_recs(ep_state *s, sink *o, uint64_t dev, const uint64_t *rec, size_t n)
{
    ep_cols *c = &s->own;
    o->dev_n += n;
    const double per = (double)ep_bytes_per_reading(c);
    if (o->fn && s->budget > 0 && (double)o->dev_n * (per + SCRATCH) > s->budget * 0.6) {
        char name[160], a[32];
        device_name(s, dev, name, sizeof name);
        return hb_err_set(HB_EDATA, s->src, "device %s has more than %s readings, more than the %.1f MB that max_memory "
                          "= %.1f MB leaves for one device at finalize (%.0f bytes a reading; a device's readings must "
                          "fit in memory): raise max_memory in [job]", name, hb_fmt_count(a, o->dev_n),
                          s->budget * 0.6 / 1e6, hb_mem_limit() / 1e6, per + SCRATCH);
    }
    HB_CALL(ep_cols_reserve(c, n, 1));
    const uint64_t lim = c->tsz == 4 ? INT32_MAX : INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t t;
        double v;
        memcpy(&t, &rec[3 * i + 1], 8);
        memcpy(&v, &rec[3 * i + 2], 8);
        if (c->nrun && c->run[c->nrun - 1].dev == dev && fits(t, c->run[c->nrun - 1].t0, lim)) {
            c->run[c->nrun - 1].n++;
        } else {
            if (c->nrun == c->runcap && hb_grow((void **)&c->run, &c->runcap, c->nrun + 1, sizeof *c->run))
                return hb_err_set(HB_EINTERNAL, "episodes", "out of memory merging spilled runs");
            c->run[c->nrun++] = (ep_run){dev, t, 1};
        }
        ep_dt_put(c->dt, c->tsz, c->n, t - c->run[c->nrun - 1].t0);
        if (c->vsz == 4) ((float *)c->v)[c->n] = (float)v; /* a float's value: exact */
        else ((double *)c->v)[c->n] = v;
        c->n++;
    }
    return 0;
}

/* After a whole device: the batch goes to fn once it holds cap readings. */
static int done_dev(ep_state *s, sink *o, uint64_t dev)
{
    (void)dev;
    if (!o->fn || s->own.n < o->cap) return 0;
    int rc = o->fn(s, o->user);
    s->own.n = 0, s->own.nrun = 0;
    return rc;
}

int ep_runs_batches(ep_state *s, size_t cap, int (*fn)(ep_state *, void *), void *user)
{
    if (fn) HB_CALL(compact(s)); /* a partial's save keeps every device: not compacted */
    sink o = {.take = take_recs, .done = done_dev, .cap = cap, .fn = fn, .user = user};
    int rc = walk(s, s->runs, s->nruns, fn != NULL, &o);
    if (!fn) {
        s->nruns = 0; /* their readings are in the columns now */
        return rc;
    }
    if (rc == 0 && s->own.n) rc = fn(s, user);
    s->own.n = 0, s->own.nrun = 0;
    return rc;
}
