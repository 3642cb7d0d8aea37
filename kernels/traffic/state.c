/* The traffic kernel's saved state and its partial-state hooks (DESIGN.md 7).
 *
 * save writes this rank's counters and, for every cell of every owned segment, the
 * cell's speeds as sorted distinct values with their counts: speeds are quantized
 * (0.1 km/h, whole km/h), so a busy cell of thousands of observations keeps a few
 * hundred distinct values, and the exact percentiles cost little to ship. load expands
 * them back into records, staged for the next exchange like a checkpoint's.
 *
 * describe records what setup learnt from the input and finalize needs: the segment
 * count S and where it came from, whether speeds are float-exact, the event days, the
 * input's free-flow speeds. setup_parts combines the parts' descriptions into the state
 * one run over their concatenated input would start from: S is the largest when it came
 * from max(segment)+1 (a site's rows only name segments below its own S), else it must
 * agree; the side tables must agree; records are float-exact when every part's are. */
#include "kernels/traffic/internal.h"

#include "core/hb.h"
#include "kernels/common/sort.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Saved state, version 1 (read only: checkpoints of earlier builds): a header of
 * counters, then every owned record as (key, value). */
typedef struct saved1 {
    char magic[8]; /* "HBTRAF1" */
    uint64_t rows_total, bad_speed, bad_segment, bad_time, n_records, value_bytes;
} saved1;

/* Saved state, version 2: the header, then four streams: the cells' keys (segment *
 * CELLS + cell, ascending) as varints of the difference from the key before, each
 * cell's number of distinct values as varints, the distinct values (value_bytes each,
 * ascending within a cell), and their counts as varints (LEB128: 7 bits a byte, low
 * first). A cell of one observation costs its value and about 3 bytes; a busy cell of
 * quantized speeds a value and a byte per distinct speed. */
typedef struct saved2 {
    char magic[8]; /* "HBTRAF2" */
    uint64_t rows_total, bad_speed, bad_segment, bad_time, n_records, value_bytes, n_groups, n_distinct;
    uint64_t key_bytes, nd_bytes, count_bytes; /* the varint streams' lengths */
} saved2;

/* Appends v as a LEB128 varint at *p (room for 10 bytes). */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) p[n++] = (uint8_t)(v | 0x80), v >>= 7;
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from [*p, end); -1 when it is truncated or longer than 64 bits. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return *v = x, 0;
    }
    return -1;
}

/* One thread's share of a save: its segments' groups, in segment order. */
typedef struct pack {
    uint32_t *key, *nd, *cnt;
    uint64_t *val; /* value bits, widened; narrowed when copied out */
    size_t g, gcap, d, dcap;
    int failed;
} pack;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Not collective. Appends segment gs's cells (its records in b) to k; x is scratch of
 * at least b->n values. Speeds are non-negative and -0.0 is +0.0 (map), so the value
 * bits sort as unsigned integers in the order of the speeds: float records as one radix
 * sort of (cell, bits) keys, double records by cell, then qsort within each cell. */
static void pack_segment(const traffic *tr, const bucket *b, int64_t gs, uint64_t *x, pack *k)
{
    size_t start[CELLS + 1] = {0}, pos[CELLS];
    for (const block *blk = b->head; blk; blk = blk->next)
        for (uint32_t j = 0; j < blk->n; j++) start[blk->cell[j] + 1]++;
    for (int c = 0; c < CELLS; c++) start[c + 1] += start[c];
    memcpy(pos, start, sizeof pos);
    if (tr->narrow) { /* cell and float bits in one key: one radix sort of the segment */
        size_t i = 0;
        for (const block *blk = b->head; blk; blk = blk->next)
            for (uint32_t j = 0; j < blk->n; j++) {
                uint32_t f;
                memcpy(&f, (const float *)blk->val + j, sizeof f);
                x[i++] = (uint64_t)blk->cell[j] << 32 | f;
            }
        if (hb_sort_u64(x, i)) {
            k->failed = 1;
            return;
        }
    } else {
        for (const block *blk = b->head; blk; blk = blk->next)
            for (uint32_t j = 0; j < blk->n; j++) {
                uint64_t v;
                memcpy(&v, (const double *)blk->val + j, sizeof v);
                x[pos[blk->cell[j]]++] = v;
            }
    }
    for (int c = 0; c < CELLS; c++) {
        size_t lo = start[c], hi = start[c + 1];
        if (lo == hi) continue;
        if (!tr->narrow) qsort(x + lo, hi - lo, sizeof *x, cmp_u64);
        /* arrays that grow together: the first from a copy of the shared capacity, the
         * second updates it (hb_grow grows both the same way) */
        size_t gcap = k->gcap;
        if (hb_grow((void **)&k->key, &gcap, k->g + 1, sizeof *k->key) ||
            hb_grow((void **)&k->nd, &k->gcap, k->g + 1, sizeof *k->nd)) {
            k->failed = 1;
            return;
        }
        k->key[k->g] = (uint32_t)(gs * CELLS + c);
        uint32_t nd = 0;
        for (size_t i = lo; i < hi;) {
            size_t j = i + 1;
            while (j < hi && x[j] == x[i] && j - i < UINT32_MAX) j++;
            size_t cap = k->dcap;
            if (hb_grow((void **)&k->val, &cap, k->d + 1, sizeof *k->val) ||
                hb_grow((void **)&k->cnt, &k->dcap, k->d + 1, sizeof *k->cnt)) {
                k->failed = 1;
                return;
            }
            k->val[k->d] = tr->narrow ? x[i] & UINT32_MAX : x[i];
            k->cnt[k->d] = (uint32_t)(j - i);
            k->d++, nd++;
            i = j;
        }
        k->nd[k->g++] = nd;
    }
}

/* Not collective. The saved state (version 2) of the groups in the nth packs, in order:
 * the header with the counters (n records), then the four streams. */
static int pack_blob(const traffic *tr, const pack *k, int nth, uint64_t n, void **buf, size_t *len)
{
    size_t G = 0, D = 0;
    for (int p = 0; p < nth; p++) G += k[p].g, D += k[p].d;
    /* the streams, at most 5 bytes a key or group size and 10 a count (sized before) */
    size_t cap = sizeof(saved2) + G * 10 + D * (tr->esz + 10);
    char *out = hb_malloc(cap);
    if (!out) return HB_EINTERNAL;
    uint8_t *o = (uint8_t *)out + sizeof(saved2), *start = o;
    uint64_t prev = 0;
    for (int p = 0; p < nth; p++)
        for (size_t g = 0; g < k[p].g; g++) o += put_varint(o, k[p].key[g] - prev), prev = k[p].key[g];
    size_t kb = (size_t)(o - start);
    for (int p = 0; p < nth; p++)
        for (size_t g = 0; g < k[p].g; g++) o += put_varint(o, k[p].nd[g]);
    size_t nb = (size_t)(o - start) - kb;
    for (int p = 0; p < nth; p++)
        for (size_t i = 0; i < k[p].d; i++, o += tr->esz) {
            if (tr->narrow) {
                uint32_t f = (uint32_t)k[p].val[i];
                memcpy(o, &f, sizeof f);
            } else {
                memcpy(o, &k[p].val[i], sizeof k[p].val[i]);
            }
        }
    uint8_t *c0 = o;
    for (int p = 0; p < nth; p++)
        for (size_t i = 0; i < k[p].d; i++) o += put_varint(o, k[p].cnt[i]);
    saved2 h = {"HBTRAF2", tr->rows_total, tr->bad_speed, tr->bad_segment, tr->bad_time, n, tr->esz, G, D,
                kb, nb, (uint64_t)(o - c0)};
    memcpy(out, &h, sizeof h);
    *buf = out;
    *len = (size_t)(o - (uint8_t *)out);
    return 0;
}

/* Not collective. Appends group key to k: the n values v (bits, widened), sorted here,
 * as distinct values with their counts. */
static int pack_cell(pack *k, uint32_t key, uint64_t *v, size_t n)
{
    if (n > 32) {
        if (hb_sort_u64(v, n)) return HB_EINTERNAL;
    } else {
        for (size_t i = 1; i < n; i++) {
            uint64_t x = v[i];
            size_t j = i;
            for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
            v[j] = x;
        }
    }
    size_t gcap = k->gcap;
    if (hb_grow((void **)&k->key, &gcap, k->g + 1, sizeof *k->key) ||
        hb_grow((void **)&k->nd, &k->gcap, k->g + 1, sizeof *k->nd))
        return HB_EINTERNAL;
    k->key[k->g] = key, k->nd[k->g] = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j] == v[i] && j - i < UINT32_MAX) j++;
        size_t cap = k->dcap;
        if (hb_grow((void **)&k->val, &cap, k->d + 1, sizeof *k->val) ||
            hb_grow((void **)&k->cnt, &k->dcap, k->d + 1, sizeof *k->cnt))
            return HB_EINTERNAL;
        k->val[k->d] = v[i], k->cnt[k->d++] = (uint32_t)(j - i);
        k->nd[k->g]++;
        i = j;
    }
    k->g++;
    return 0;
}

/* Not collective. A partial's state when runs were spilled: what is kept is spilled too,
 * then every run of this rank is merged in cell order (the runs may hold other ranks'
 * segments after a resume), each cell's values sorted and counted as they come: the
 * groups of distinct values a save of the same records in memory writes. */
static int save_from_runs(traffic *tr, void **buf, size_t *len)
{
    HB_CALL(traffic_spill(tr));
    HB_CALL(traffic_runs_compact(tr, 0, UINT64_MAX));
    hb_spill_merge *m = NULL;
    HB_CALL(hb_spill_merge_open(tr->runs, (int)tr->nruns, 0, UINT64_MAX, &m));
    pack k = {0};
    uint64_t n = 0, ckey = UINT64_MAX, *v = NULL;
    size_t nv = 0, vcap = 0;
    int rc = 0;
    for (;;) {
        const void *p;
        rc = hb_spill_merge_next(m, &p);
        if (rc || !p) break;
        uint64_t w0, key, bits;
        memcpy(&w0, p, 8);
        if (tr->narrow) key = w0 >> 32, bits = w0 & UINT32_MAX;
        else key = w0, memcpy(&bits, (const char *)p + 8, 8);
        if (key / CELLS >= (uint64_t)tr->S) {
            rc = hb_err_set(HB_EDATA, hb_spill_dir(), "a spilled run names segment %llu of %lld",
                            (unsigned long long)(key / CELLS), (long long)tr->S);
            break;
        }
        if (key != ckey && nv) {
            if ((rc = pack_cell(&k, (uint32_t)ckey, v, nv))) break;
            nv = 0;
        }
        ckey = key;
        if (hb_grow((void **)&v, &vcap, nv + 1, sizeof *v)) {
            rc = HB_EINTERNAL;
            break;
        }
        v[nv++] = bits, n++;
    }
    hb_spill_merge_close(m);
    if (rc == 0 && nv) rc = pack_cell(&k, (uint32_t)ckey, v, nv);
    free(v);
    if (rc == HB_EINTERNAL) rc = hb_err_set(HB_EINTERNAL, "traffic", "out of memory saving the state");
    if (rc == 0) rc = pack_blob(tr, &k, 1, n, buf, len);
    free(k.key), free(k.nd), free(k.val), free(k.cnt);
    return rc;
}

/* The runs a checkpoint refers to, after the version 2 streams of what is kept: the
 * references (hb_spill_run each), then their number as a uint64. The header's magic is
 * then "HBTRAF3". */
static int add_runs(traffic *tr, void **buf, size_t *len)
{
    for (size_t i = 0; i < tr->nruns; i++) HB_CALL(hb_spill_sync(&tr->runs[i])); /* durable before it is named */
    size_t extra = tr->nruns * sizeof *tr->runs + sizeof(uint64_t);
    char *p = hb_realloc(*buf, *len + extra);
    if (!p) return HB_EINTERNAL;
    memcpy(p, "HBTRAF3", 8);
    memcpy(p + *len, tr->runs, tr->nruns * sizeof *tr->runs);
    uint64_t n = tr->nruns;
    memcpy(p + *len + tr->nruns * sizeof *tr->runs, &n, sizeof n);
    *buf = p;
    *len += extra;
    return 0;
}

int traffic_save(void *state, void **buf, size_t *len)
{
    traffic *tr = state;
    if (tr->nruns && tr->ctx->saving_partial) return save_from_runs(tr, buf, len);
    const int64_t ns = tr->s1 - tr->s0;
    uint64_t n, most;
    traffic_bucket_totals(tr, &n, &most);
    const int nth = tr->ctx->threads > 0 ? tr->ctx->threads : 1;
    pack *k = hb_calloc((size_t)nth, sizeof *k);
    if (!k) return HB_EINTERNAL;
#pragma omp parallel for schedule(static, 1) num_threads(nth)
    for (int part = 0; part < nth; part++) {
        int64_t lo = ns * part / nth, hi = ns * (part + 1) / nth;
        uint64_t *x = malloc((size_t)(most ? most : 1) * sizeof *x);
        if (!x) k[part].failed = 1;
        for (int64_t s = lo; s < hi && !k[part].failed; s++)
            if (tr->buckets[s].n) pack_segment(tr, &tr->buckets[s], tr->s0 + s, x, &k[part]);
        free(x);
    }
    int failed = 0;
    for (int p = 0; p < nth; p++) failed |= k[p].failed;
    int rc = failed ? hb_err_set(HB_EINTERNAL, "traffic", "out of memory saving the state") : pack_blob(tr, k, nth, n, buf, len);
    for (int p = 0; p < nth; p++) free(k[p].key), free(k[p].nd), free(k[p].val), free(k[p].cnt);
    free(k);
    if (rc == 0 && tr->nruns) rc = add_runs(tr, buf, len);
    if (rc) free(*buf), *buf = NULL;
    return rc;
}

/* Not collective. Room for n more loaded records. */
static int reserve_loaded(traffic *tr, size_t n)
{
    if (tr->ln + n <= tr->lcap) return 0;
    size_t cap = tr->ln + n;
    uint32_t *k = hb_realloc(tr->lkey, cap * sizeof *k);
    if (!k) return HB_EINTERNAL;
    tr->lkey = k;
    void *v = hb_realloc(tr->lval, cap * tr->esz);
    if (!v) return HB_EINTERNAL;
    tr->lval = v;
    tr->lcap = cap;
    return 0;
}

/* Not collective. Stores value p (vb bytes: a float or a double) as loaded record i, in
 * the state's width: a float part widens exactly into a state of doubles (a merge of
 * parts of both kinds). */
static void put_value(traffic *tr, size_t i, const char *p, size_t vb)
{
    char *dst = (char *)tr->lval + i * tr->esz;
    if (vb == tr->esz) {
        memcpy(dst, p, vb);
    } else {
        float f;
        memcpy(&f, p, sizeof f);
        double d = f;
        memcpy(dst, &d, sizeof d);
    }
}

static int bad_state(const char *what)
{
    return hb_err_set(HB_EDATA, "checkpoint", "traffic state %s", what);
}

static int load_v1(traffic *tr, const void *buf, size_t len)
{
    saved1 h;
    memcpy(&h, buf, sizeof h);
    const size_t vb = (size_t)h.value_bytes;
    if ((vb != tr->esz && !(vb == 4 && tr->esz == 8)) || h.n_records > len ||
        len != sizeof h + h.n_records * (sizeof(uint32_t) + vb))
        return bad_state("does not match this job's input");
    size_t n = (size_t)h.n_records;
    HB_CALL(reserve_loaded(tr, n));
    const char *p = (const char *)buf + sizeof h;
    memcpy(tr->lkey + tr->ln, p, n * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) put_value(tr, tr->ln + i, p + n * sizeof(uint32_t) + i * vb, vb);
    for (size_t i = tr->ln; i < tr->ln + n; i++)
        if (tr->lkey[i] / CELLS >= (uint64_t)tr->S)
            return hb_err_set(HB_EDATA, "checkpoint", "traffic state names segment %u of %lld", tr->lkey[i] / CELLS,
                              (long long)tr->S);
    tr->ln += n;
    tr->rows_total += h.rows_total, tr->bad_speed += h.bad_speed;
    tr->bad_segment += h.bad_segment, tr->bad_time += h.bad_time;
    return 0;
}

static int load_v2(traffic *tr, const void *buf, size_t len)
{
    saved2 h;
    if (len < sizeof h) return bad_state("is too short");
    memcpy(&h, buf, sizeof h);
    const size_t vb = (size_t)h.value_bytes;
    if (vb != tr->esz && !(vb == 4 && tr->esz == 8)) return bad_state("does not match this job's input");
    const uint64_t body = len - sizeof h;
    if (h.n_groups > body || h.n_distinct > body || h.key_bytes > body || h.nd_bytes > body || h.count_bytes > body ||
        h.key_bytes + h.nd_bytes + h.n_distinct * vb + h.count_bytes != body)
        return bad_state("has a wrong size");
    const size_t G = (size_t)h.n_groups, D = (size_t)h.n_distinct;
    const uint8_t *pk = (const uint8_t *)buf + sizeof h, *pn = pk + h.key_bytes, *pv = pn + h.nd_bytes;
    const uint8_t *pc = pv + D * vb, *end = pc + h.count_bytes;
    /* check everything before expanding: the keys, the groups' sizes, the counts' total */
    uint64_t key = 0, nd = 0, c = 0, d = 0, total = 0;
    const uint8_t *q = pk, *qn = pn, *qc = pc;
    for (size_t g = 0; g < G; g++) {
        uint64_t dk = 0;
        if (get_varint(&q, pn, &dk) || get_varint(&qn, pv, &nd)) return bad_state("has a damaged group");
        if ((g > 0 && dk == 0) || dk > (uint64_t)tr->S * CELLS || (key += dk) / CELLS >= (uint64_t)tr->S)
            return hb_err_set(HB_EDATA, "checkpoint", "traffic state names segment %llu of %lld",
                              (unsigned long long)(key / CELLS), (long long)tr->S);
        if (nd == 0 || nd > D - d) return bad_state("has a group of a wrong size");
        d += nd;
    }
    for (size_t i = 0; i < D; i++) {
        if (get_varint(&qc, end, &c) || c == 0 || c > h.n_records - total) return bad_state("has a damaged count");
        total += c;
    }
    if (q != pn || qn != pv || qc != end || d != D || total != h.n_records)
        return bad_state("has counts that do not add up");
    if (total > (SIZE_MAX - tr->ln) / 16) return bad_state("claims more records than memory holds");
    HB_CALL(reserve_loaded(tr, (size_t)total));
    size_t i = 0, r = tr->ln;
    key = 0, q = pk, qn = pn, qc = pc;
    for (size_t g = 0; g < G; g++) {
        uint64_t dk = 0;
        get_varint(&q, pn, &dk), get_varint(&qn, pv, &nd); /* checked above */
        key += dk;
        for (uint64_t j = 0; j < nd; j++, i++) {
            get_varint(&qc, end, &c);
            for (uint64_t m = 0; m < c; m++, r++) {
                tr->lkey[r] = (uint32_t)key;
                put_value(tr, r, (const char *)pv + i * vb, vb);
            }
        }
    }
    tr->ln = r;
    tr->rows_total += h.rows_total, tr->bad_speed += h.bad_speed;
    tr->bad_segment += h.bad_segment, tr->bad_time += h.bad_time;
    return 0;
}

/* Version 3: version 2 and the runs it refers to (add_runs); each is checked to be there
 * with its recorded size and checksum (66 missing, 65 damaged). */
static int load_v3(traffic *tr, const void *buf, size_t len)
{
    uint64_t n;
    if (len < sizeof(saved2) + sizeof n) return bad_state("is too short");
    memcpy(&n, (const char *)buf + len - sizeof n, sizeof n);
    if (n > (len - sizeof(saved2) - sizeof n) / sizeof(hb_spill_run)) return bad_state("has a wrong size");
    const size_t rb = (size_t)n * sizeof(hb_spill_run), body = len - sizeof n - rb;
    HB_CALL(load_v2(tr, buf, body));
    for (size_t i = 0; i < n; i++) {
        hb_spill_run r;
        memcpy(&r, (const char *)buf + body + i * sizeof r, sizeof r);
        if (!memchr(r.name, '\0', sizeof r.name) || strncmp(r.name, "spill-", 6) != 0 || strchr(r.name, '/'))
            return bad_state("names a spilled run that is not one");
        if (r.rec_size != TRAFFIC_REC(tr) || r.key_shift != (tr->narrow ? 32u : 0u))
            return bad_state("has spilled runs that do not match this job's input");
        HB_CALL(hb_spill_check(&r));
        r.synced = 1;
        HB_CALL(traffic_runs_add(tr, &r));
    }
    return 0;
}

int traffic_load(void *state, const void *buf, size_t len)
{
    traffic *tr = state;
    if (len < sizeof(saved1)) return hb_err_set(HB_EDATA, "checkpoint", "traffic state of %zu bytes is too short", len);
    if (memcmp(buf, "HBTRAF1", 8) == 0) return load_v1(tr, buf, len);
    if (memcmp(buf, "HBTRAF2", 8) == 0) return load_v2(tr, buf, len);
    if (memcmp(buf, "HBTRAF3", 8) == 0) return load_v3(tr, buf, len);
    return bad_state("does not match this job's input");
}

/* The description: this header, then ev_ndays bytes (1: an event day, from ev_day0),
 * then S float64 free-flow speeds when has_ffs. */
typedef struct tdesc {
    char magic[8]; /* "HBTRDS1" */
    int64_t S, ev_day0, ev_ndays;
    int32_t s_from, narrow, has_events, has_ffs;
} tdesc;

int traffic_describe(void *state, void **buf, size_t *len)
{
    traffic *tr = state;
    tdesc h = {"HBTRDS1", tr->S, tr->ev_day0, tr->ev ? tr->ev_ndays : 0, tr->s_from, tr->narrow, tr->has_events,
               tr->ffs_in != NULL};
    size_t bytes = sizeof h + (size_t)h.ev_ndays + (h.has_ffs ? (size_t)tr->S * sizeof(double) : 0);
    char *p = hb_malloc(bytes);
    if (!p) return HB_EINTERNAL;
    memcpy(p, &h, sizeof h);
    if (h.ev_ndays) memcpy(p + sizeof h, tr->ev, (size_t)h.ev_ndays);
    if (h.has_ffs) memcpy(p + sizeof h + h.ev_ndays, tr->ffs_in, (size_t)tr->S * sizeof(double));
    *buf = p;
    *len = bytes;
    return 0;
}

static const char *s_from_name(int32_t f)
{
    return f == TRAFFIC_S_OPTION ? "the option segments" : f == TRAFFIC_S_ATTR ? "the attribute n_segments"
                                                                              : "max(segment)+1";
}

/* Not collective. Part i's description into *h, checked for its size; 65 naming the part. */
static int read_desc(const hb_part *part, tdesc *h)
{
    if (part->desc_len < sizeof *h) goto bad;
    memcpy(h, part->desc, sizeof *h);
    if (memcmp(h->magic, "HBTRDS1", 8) != 0 || h->S < 0 || h->S > UINT32_MAX / CELLS || h->ev_ndays < 0 ||
        h->ev_ndays > (int64_t)part->desc_len || h->s_from < TRAFFIC_S_OPTION || h->s_from > TRAFFIC_S_MAX)
        goto bad;
    if (part->desc_len != sizeof *h + (size_t)h->ev_ndays + (h->has_ffs ? (size_t)h->S * sizeof(double) : 0))
        goto bad;
    return 0;
bad:
    return hb_err_set(HB_EDATA, part->path, "its traffic description is damaged or of another version");
}

/* Not collective. 65 unless part i's side tables (event days, free-flow speeds) are the
 * first part's. */
static int same_sides(const hb_part *parts, int i, const tdesc *h0, const tdesc *h)
{
    const char *d0 = (const char *)parts[0].desc + sizeof *h0, *d = (const char *)parts[i].desc + sizeof *h;
    if (h->has_events != h0->has_events || h->ev_ndays != h0->ev_ndays ||
        (h->ev_ndays && (h->ev_day0 != h0->ev_day0 || memcmp(d, d0, (size_t)h->ev_ndays) != 0)))
        return hb_err_set(HB_EDATA, parts[i].path, "its /calendar/event_days differ from those of %s", parts[0].path);
    if (h->has_ffs != h0->has_ffs || (h->has_ffs && (h->S != h0->S || memcmp(d + h->ev_ndays, d0 + h0->ev_ndays,
                                                                            (size_t)h->S * sizeof(double)) != 0)))
        return hb_err_set(HB_EDATA, parts[i].path, "its /segments/free_flow_speed differs from that of %s",
                          parts[0].path);
    return 0;
}

/* Not collective (every rank does the same). Combines the descriptions into tr. */
static int combine(traffic *tr, const hb_part *parts, int n)
{
    HB_CHECK(n > 0, HB_EINTERNAL, "traffic", "no parts to merge");
    tdesc h0, h;
    HB_CALL(read_desc(&parts[0], &h0));
    tr->S = h0.S, tr->s_from = h0.s_from, tr->narrow = h0.narrow != 0;
    for (int i = 1; i < n; i++) {
        HB_CALL(read_desc(&parts[i], &h));
        if (h.s_from != h0.s_from || (h.s_from != TRAFFIC_S_MAX && h.S != h0.S))
            return hb_err_set(HB_EDATA, parts[i].path, "its %lld segments (from %s) differ from the %lld of %s (from %s)",
                              (long long)h.S, s_from_name(h.s_from), (long long)h0.S, parts[0].path,
                              s_from_name(h0.s_from));
        HB_CALL(same_sides(parts, i, &h0, &h));
        if (h.S > tr->S) tr->S = h.S;
        tr->narrow = tr->narrow && h.narrow;
    }
    const char *d0 = (const char *)parts[0].desc + sizeof h0;
    tr->has_events = h0.has_events;
    if (h0.ev_ndays) {
        tr->ev_day0 = h0.ev_day0, tr->ev_ndays = h0.ev_ndays;
        tr->ev = hb_malloc((size_t)h0.ev_ndays);
        if (!tr->ev) return HB_EINTERNAL;
        memcpy(tr->ev, d0, (size_t)h0.ev_ndays);
    }
    if (h0.has_ffs) {
        tr->ffs_in = hb_malloc((size_t)h0.S * sizeof(double));
        if (!tr->ffs_in) return HB_EINTERNAL;
        memcpy(tr->ffs_in, d0 + h0.ev_ndays, (size_t)h0.S * sizeof(double));
    }
    return 0;
}

int traffic_setup_parts(hb_step_ctx *ctx, const hb_part *parts, int n, void **state)
{
    HB_CALL(traffic_new(ctx, state));
    traffic *tr = *state;
    HB_CALL(hb_agree(combine(tr, parts, n)));
    HB_CALL(hb_agree(traffic_reserve_memory(tr, tr->narrow, 1, "the parts' descriptions")));
    return traffic_alloc_state(tr, 1); /* no chunks to map: a merge only loads */
}
