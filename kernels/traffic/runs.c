/* The traffic kernel's spilled runs (docs/spill.md): when the records a rank keeps for
 * its segments outgrow max_memory, they are written as one run ordered by (segment, cell)
 * (kernels/common/spill.c) and their memory freed. finalize reads the runs back and
 * gives the reduction batches of whole segments in their buckets, so that the reduction
 * itself is the one of an in-memory run: the same bits, whatever was spilled when.
 *
 * A run is ordered by cell key only (segment * CELLS + cell): the records of a cell are
 * grouped, not sorted, since the reduction sorts each cell anyway.
 *
 * A run holds only segments of the rank that wrote it, until a resume on another rank
 * count hands a checkpoint's parts (with their runs) to other ranks; so finalize shares
 * every rank's run references first, and each rank reads the ranges of its own segments
 * from every run that has some (the scratch folder must then be one all ranks see). */
#include "kernels/traffic/internal.h"

#include "core/hb.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int traffic_runs_add(traffic *tr, const hb_spill_run *r)
{
    if (hb_grow((void **)&tr->runs, &tr->runcap, tr->nruns + 1, sizeof *tr->runs))
        return hb_err_set(HB_EINTERNAL, "traffic", "out of memory for the list of spilled runs");
    tr->runs[tr->nruns++] = *r;
    return 0;
}

/* Not collective. Segment gs's records (bucket b) into x (b->n records of TRAFFIC_REC
 * bytes) grouped by cell with one counting pass: a run is ordered by cell key only, so
 * nothing is sorted here (finalize sorts each cell, as for records kept in memory). */
static void group_segment(const traffic *tr, const bucket *b, int64_t gs, uint64_t *x)
{
    const uint64_t base = (uint64_t)gs * CELLS;
    size_t pos[CELLS + 1] = {0};
    for (const block *k = b->head; k; k = k->next)
        for (uint32_t j = 0; j < k->n; j++) pos[k->cell[j] + 1]++;
    for (int c = 0; c < CELLS; c++) pos[c + 1] += pos[c];
    for (const block *k = b->head; k; k = k->next)
        for (uint32_t j = 0; j < k->n; j++) {
            const uint64_t key = base + k->cell[j];
            size_t i = pos[k->cell[j]]++;
            if (tr->narrow) {
                uint32_t f;
                memcpy(&f, (const float *)k->val + j, 4);
                x[i] = key << 32 | f;
            } else {
                x[2 * i] = key;
                memcpy(&x[2 * i + 1], (const double *)k->val + j, 8);
            }
        }
}

int traffic_spill(traffic *tr)
{
    const int64_t ns = tr->s1 - tr->s0;
    uint64_t n, most;
    traffic_bucket_totals(tr, &n, &most);
    if (n == 0) return 0;
    double t0 = hb_now();
    uint64_t *x = hb_malloc((size_t)most * TRAFFIC_REC(tr));
    if (!x) return HB_EINTERNAL;
    hb_spill_writer *w = NULL;
    int rc = hb_spill_create("traffic", TRAFFIC_REC(tr), tr->narrow ? 32 : 0, &w);
    for (int64_t s = 0; rc == 0 && s < ns; s++) {
        const bucket *b = &tr->buckets[s];
        if (!b->n) continue;
        group_segment(tr, b, tr->s0 + s, x);
        rc = hb_spill_write(w, x, (size_t)b->n);
    }
    free(x);
    hb_spill_run run;
    if (rc == 0) rc = hb_spill_finish(w, &run), w = NULL;
    hb_spill_abort(w);
    if (rc == 0) rc = traffic_runs_add(tr, &run);
    if (rc) return rc;
    traffic_free_records(tr);
    tr->spilled += n, tr->nspills++;
    if (hb_log_level >= 2) /* every rank's, under -v */
        fprintf(stderr, "h5batch: traffic: rank %d spilled %llu records (%.1f MB) to %s/%s in %.2fs\n", hb_rank,
                (unsigned long long)n, (double)run.bytes / 1e6, hb_spill_dir(), run.name, hb_now() - t0);
    return 0;
}

int traffic_spill_check(traffic *tr)
{
    size_t bytes = 0;
    for (int th = 0; th < tr->ctx->threads; th++)
        for (const arena *a = tr->arenas[th]; a; a = a->next) bytes += sizeof *a + a->size;
    if (tr->budget <= 0 || (double)bytes <= tr->budget * 0.6) return 0;
    return traffic_spill(tr);
}

int traffic_runs_share(traffic *tr)
{
    const uint64_t lo = (uint64_t)tr->s0 * CELLS, hi = (uint64_t)tr->s1 * CELLS; /* cell keys */
    if (hb_size == 1) return 0;
    hb_spill_run *all;
    size_t total;
    int rc = hb_allgather(tr->runs, (size_t)tr->nruns, sizeof *tr->runs, (void **)&all, &total, "traffic");
    if (rc) return rc;
    tr->nruns = 0;
    for (size_t i = 0; rc == 0 && i < total; i++) {
        const hb_spill_run *r = &all[i];
        if (r->key_max < lo || r->key_min >= hi) continue; /* none of my segments */
        int seen = 0;
        for (size_t j = 0; j < tr->nruns && !seen; j++) seen = strcmp(tr->runs[j].name, r->name) == 0;
        if (!seen) rc = traffic_runs_add(tr, r);
    }
    free(all);
    return hb_agree(rc);
}

int traffic_runs_compact(traffic *tr, uint64_t lo, uint64_t hi)
{
    /* as many runs as a quarter of the budget holds read buffers of, 4 to 256 (the
     * descriptors open at once stay far below the usual limit of 1024) */
    double fit = tr->budget * 0.25 / (double)hb_spill_reader_bytes(TRAFFIC_REC(tr));
    const size_t fanin = fit < 4 ? 4 : fit > 256 ? 256 : (size_t)fit;
    while (tr->nruns > fanin) {
        /* the first fanin runs merged into one, which takes their place at the end; the
         * old files stay until the step commits (a checkpoint may name them) */
        hb_spill_merge *m = NULL;
        hb_spill_writer *w = NULL;
        HB_CALL(hb_spill_merge_open(tr->runs, (int)fanin, lo, hi, &m));
        int rc = hb_spill_create("traffic", TRAFFIC_REC(tr), tr->narrow ? 32 : 0, &w);
        uint64_t n = 0;
        for (const void *p; rc == 0;) {
            rc = hb_spill_merge_next(m, &p);
            if (rc || !p) break;
            rc = hb_spill_write(w, p, 1);
            n++;
        }
        hb_spill_merge_close(m);
        hb_spill_run run;
        if (rc == 0 && n == 0) { /* none of the range: nothing to write */
            hb_spill_abort(w), w = NULL;
        } else if (rc == 0) {
            rc = hb_spill_finish(w, &run), w = NULL;
        }
        hb_spill_abort(w);
        if (rc) return rc;
        memmove(tr->runs, tr->runs + fanin, (tr->nruns - fanin) * sizeof *tr->runs);
        tr->nruns -= fanin;
        if (n) HB_CALL(traffic_runs_add(tr, &run));
        if (hb_log_level >= 2)
            fprintf(stderr, "h5batch: traffic: rank %d merged %zu runs into one of %llu records\n", hb_rank, fanin,
                    (unsigned long long)n);
    }
    return 0;
}

/* One run being read in finalize: its current slice of records. */
typedef struct src {
    hb_spill_reader *r;
    const unsigned char *p;
    size_t n;
} src;

/* The cell key of a record. */
static inline uint64_t rec_key(const traffic *tr, const unsigned char *p)
{
    uint64_t w0;
    memcpy(&w0, p, 8);
    return tr->narrow ? w0 >> 32 : w0;
}

/* Not collective. Appends the records of s's run that belong to segment ls (local) to its
 * bucket, reading on while they do; *held counts them. */
static int take_segment(traffic *tr, src *s, int64_t ls, uint64_t *held)
{
    const size_t rec = TRAFFIC_REC(tr);
    const uint64_t end = (uint64_t)(tr->s0 + ls + 1) * CELLS, base = (uint64_t)(tr->s0 + ls) * CELLS;
    bucket *b = &tr->buckets[ls];
    while (s->n > 0) {
        size_t i = 0;
        for (; i < s->n; i++) {
            const unsigned char *p = s->p + i * rec;
            uint64_t key = rec_key(tr, p);
            if (key >= end) break;
            if (b->used == b->cap && traffic_grow(tr, &tr->arenas[0], b))
                return hb_err_set(HB_EINTERNAL, "traffic", "out of memory merging spilled runs");
            if (tr->narrow) memcpy((float *)b->val + b->used, p, 4); /* the low word: little-endian */
            else memcpy((double *)b->val + b->used, p + 8, 8);
            b->cell[b->used++] = (uint8_t)(key - base);
        }
        b->n += i, *held += i;
        s->p += i * rec, s->n -= i;
        if (s->n > 0) return 0; /* the next segment's records follow */
        const void *recs;
        HB_CALL(hb_spill_read(s->r, &recs, &s->n));
        s->p = recs;
    }
    return 0;
}

int traffic_runs_batches(traffic *tr, int (*fn)(traffic *, int64_t, int64_t, void *), void *user)
{
    const int64_t ns = tr->s1 - tr->s0;
    const uint64_t lo = (uint64_t)tr->s0 * CELLS, hi = (uint64_t)tr->s1 * CELLS; /* cell keys */
    /* half the budget for a batch's records (a value and a cell byte, in blocks); the
     * reduction's scratch and the runs' read buffers take from the rest */
    double cap = tr->budget * 0.5 / ((double)tr->esz + 1) / 1.2;
    if (cap < 4096) cap = 4096;
    HB_CALL(traffic_runs_compact(tr, lo, hi));
    const size_t k = tr->nruns;
    src *s = hb_calloc(k ? k : 1, sizeof *s);
    if (!s) return HB_EINTERNAL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        rc = hb_spill_open(&tr->runs[i], lo, hi, &s[i].r);
        const void *recs;
        if (rc == 0) rc = hb_spill_read(s[i].r, &recs, &s[i].n), s[i].p = recs;
    }
    /* segment by segment, each run's records of it in turn (they are contiguous in a run:
     * the reduction does not need them in order), in batches of whole segments */
    int64_t a = 0;
    uint64_t held = 0;
    while (rc == 0) {
        int64_t seg = ns;
        for (size_t i = 0; i < k; i++)
            if (s[i].n) {
                uint64_t g = rec_key(tr, s[i].p) / CELLS;
                if (g < (uint64_t)tr->s0 || g >= (uint64_t)tr->s1) { /* the reader keeps to the range */
                    rc = hb_err_set(HB_EDATA, hb_spill_dir(), "a spilled run holds segment %llu outside [%lld, %lld)",
                                    (unsigned long long)g, (long long)tr->s0, (long long)tr->s1);
                    break;
                }
                if ((int64_t)g - tr->s0 < seg) seg = (int64_t)g - tr->s0;
            }
        if (rc || seg == ns) break;
        if (held >= (uint64_t)cap && seg > a) { /* the batch so far: whole segments [a, seg) */
            rc = fn(tr, a, seg, user);
            traffic_free_records(tr);
            a = seg, held = 0;
        }
        for (size_t i = 0; rc == 0 && i < k; i++)
            if (s[i].n && rec_key(tr, s[i].p) / CELLS == (uint64_t)(tr->s0 + seg)) rc = take_segment(tr, &s[i], seg, &held);
    }
    for (size_t i = 0; i < k; i++) hb_spill_close(s[i].r);
    free(s);
    if (rc == 0) rc = fn(tr, a, ns, user);
    traffic_free_records(tr);
    return rc;
}
