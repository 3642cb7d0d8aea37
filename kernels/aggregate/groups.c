/* Group tables and string dictionaries, split into parts by hash so that each OpenMP
 * thread inserts into its own part without locks; kept values of percentile stats in
 * per-part logs (entry, value) in arrival order, laid out group by group by a counting
 * sort when they are needed. Nothing here is collective; a part is used by one thread
 * at a time. */
#include "kernels/aggregate/agg.h"

#include "core/hb.h"
#include "kernels/common/sort.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#define EMPTY_SLOT UINT32_MAX

#define slot_of agg_slot

/* The group index p->index grown to bytes bytes (its contents lost; free() frees it):
 * realloc moves a large block's pages rather than copying them, so the pages the index
 * had serve again (a fresh page costs a fault and the kernel's zeroing, 2-4 s a GB on
 * the benchmark VM); a large one is asked for huge pages where the system gives them, as
 * every lookup of a new group is a random slot, and in 4 kB pages a miss of the TLB (a
 * page walk, slower still in a VM) besides the cache's. NULL when out of memory, the
 * index left as it was. */
static uint64_t *index_realloc(gpart *p, size_t bytes)
{
    enum { HUGE = 2u << 20 };
    uint64_t *x = realloc(p->index, bytes); /* not hb_realloc: called from threads */
    if (!x) return NULL;
#ifdef MADV_HUGEPAGE
    const uintptr_t lo = ((uintptr_t)x + HUGE - 1) & ~(uintptr_t)(HUGE - 1), hi = ((uintptr_t)x + bytes) & ~(uintptr_t)(HUGE - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* advice: without it, 4 kB pages serve */
#endif
    return x;
}

/* The group index, twice the entries' size at least: rebuilt from the entries' hashes. */
static int gindex_grow(const gtab *g, gpart *p, size_t n)
{
    uint64_t cap = p->index ? (p->imask + 1) * 2 : 1024;
    while (cap < 2 * (uint64_t)n) cap *= 2;
    uint64_t *ix = index_realloc(p, cap * sizeof *ix);
    if (!ix) return -1;
    p->index = ix;
    memset(ix, 0xff, cap * sizeof *ix);
    uint64_t mask = cap - 1;
    for (size_t e = 0; e < n; e++) {
        if (e + 16 < n) __builtin_prefetch(&ix[slot_of(gp_hash(g, p, e + 16), mask)], 1);
        uint64_t h = gp_hash(g, p, e), s = slot_of(h, mask);
        while (ix[s] != UINT64_MAX) s = (s + 1) & mask;
        ix[s] = (h >> 32) << 32 | (uint64_t)e;
    }
    p->imask = mask;
    return 0;
}

static int index_grow(uint32_t **index, uint64_t *imask, const uint64_t *hash, size_t n)
{
    uint64_t cap = *index ? (*imask + 1) * 2 : 1024;
    while (cap < 2 * (uint64_t)n) cap *= 2;
    uint32_t *ix = malloc(cap * sizeof *ix); /* not hb_malloc: called from threads */
    if (!ix) return -1;
    memset(ix, 0xff, cap * sizeof *ix);
    uint64_t mask = cap - 1;
    for (size_t e = 0; e < n; e++) {
        uint64_t s = slot_of(hash[e], mask);
        while (ix[s] != EMPTY_SLOT) s = (s + 1) & mask;
        ix[s] = (uint32_t)e;
    }
    free(*index);
    *index = ix;
    *imask = mask;
    return 0;
}

int gtab_init(gtab *g, int nparts, int K, int V, size_t A, int kept, const unsigned char *neutral)
{
    memset(g, 0, sizeof *g);
    g->nparts = nparts, g->K = K, g->V = V, g->A = A, g->kept = kept, g->neutral = neutral;
    g->es = 8 + 8 * (size_t)K + (size_t)V * A;
    g->p = hb_calloc((size_t)nparts, sizeof *g->p);
    if (!g->p) return HB_EINTERNAL;
    for (int i = 0; kept && i < nparts; i++)
        if (!(g->p[i].kl = hb_calloc((size_t)V, sizeof *g->p[i].kl))) return HB_EINTERNAL;
    return 0;
}

static void free_logs(const gtab *g, gpart *p)
{
    for (int v = 0; p->kl && v < g->V; v++) {
        free(p->kl[v].e), free(p->kl[v].x), free(p->kl[v].re), free(p->kl[v].rend);
        memset(&p->kl[v], 0, sizeof p->kl[v]);
    }
}

/* Empties a part and keeps its memory: the stage fills the same pages round after round. */
static void part_clear(const gtab *g, gpart *p)
{
    if (p->index) memset(p->index, 0xff, (p->imask + 1) * sizeof *p->index);
    p->n = 0;
    p->pool.n = 0;
    for (int v = 0; p->kl && v < g->V; v++) p->kl[v].n = 0, p->kl[v].wide = 0, p->kl[v].nr = 0;
}

void gtab_clear(gtab *g)
{
    for (int i = 0; g->p && i < g->nparts; i++)
        if (g->p[i].n) part_clear(g, &g->p[i]);
}

void gtab_free(gtab *g)
{
    for (int i = 0; g->p && i < g->nparts; i++) {
        gpart *p = &g->p[i];
        free(p->index), free(p->ent);
        xpool_free(&p->pool);
        free_logs(g, p);
        free(p->kl);
    }
    free(g->p);
    memset(g, 0, sizeof *g);
}

static int part_reserve(const gtab *g, gpart *p, size_t need)
{
    if (need <= p->cap) return 0;
    size_t cap = p->cap ? p->cap * 2 : 256;
    while (cap < need) cap *= 2;
    if (cap > EMPTY_SLOT) return -1;
    unsigned char *ent = realloc(p->ent, cap * g->es);
    if (!ent) return -1;
    p->ent = ent;
    p->cap = cap;
    return 0;
}

size_t gpart_find(const gtab *g, gpart *p, uint64_t h, const uint64_t *keys)
{
    const int K = g->K;
    const uint64_t tag = h >> 32;
    if (p->index) {
        uint64_t s = slot_of(h, p->imask);
        for (uint64_t x; (x = p->index[s]) != UINT64_MAX; s = (s + 1) & p->imask) {
            if (x >> 32 != tag) continue;
            const unsigned char *ent = gp_ent(g, p, (uint32_t)x);
            uint64_t eh;
            memcpy(&eh, ent, 8);
            if (eh != h) continue;
            const uint64_t *k = (const uint64_t *)(const void *)(ent + 8);
            int same = 1;
            for (int i = 0; i < K; i++) same &= k[i] == keys[i];
            if (same) return (uint32_t)x;
        }
    }
    size_t e = p->n;
    if (part_reserve(g, p, e + 1)) return (size_t)-1;
    if (!p->index || 2 * (e + 1) > p->imask + 1) {
        if (gindex_grow(g, p, e)) return (size_t)-1;
    }
    unsigned char *ent = gp_ent(g, p, e);
    memcpy(ent, &h, 8);
    memcpy(ent + 8, keys, (size_t)K * 8);
    memcpy(ent + 8 + 8 * (size_t)K, g->neutral, (size_t)g->V * g->A);
    uint64_t s = slot_of(h, p->imask);
    while (p->index[s] != UINT64_MAX) s = (s + 1) & p->imask;
    p->index[s] = tag << 32 | (uint64_t)e;
    p->n = e + 1;
    return e;
}

/* Makes the log hold doubles: a value came that no float holds exactly. */
static int klog_widen(klog *l)
{
    double *d = malloc((l->cap ? l->cap : 1) * sizeof *d); /* not hb_malloc: called from threads */
    if (!d) return -1;
    const float *f = l->x;
    for (size_t i = 0; i < l->n; i++) d[i] = (double)f[i];
    free(l->x);
    l->x = d, l->wide = 1;
    return 0;
}

/* Makes the log hold an entry per value, from its runs; -1 when out of memory. */
static int klog_each(klog *l)
{
    uint32_t *e = malloc((l->cap ? l->cap : 1) * sizeof *e); /* not hb_malloc: called from threads */
    if (!e) return -1;
    for (size_t r = 0, i = 0; r < l->nr; r++)
        for (; i < l->rend[r]; i++) e[i] = l->re[r];
    free(l->re), free(l->rend);
    l->re = NULL, l->rend = NULL, l->nr = l->rcap = 0;
    l->e = e, l->each = 1;
    return 0;
}

int gpart_keep(const gtab *g, gpart *p, size_t e, int v, const double *x, size_t n)
{
    (void)g;
    if (n == 0) return 0;
    klog *l = &p->kl[v];
    const int extend = !l->each && l->nr && l->re[l->nr - 1] == (uint32_t)e;
    if (!l->each && !extend && 3 * (l->nr + 1) > l->n + n && klog_each(l)) return -1;
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        while (cap < l->n + n) cap *= 2;
        if (l->each) {
            uint32_t *ne = realloc(l->e, cap * sizeof *ne);
            if (!ne) return -1;
            l->e = ne;
        }
        void *nx = realloc(l->x, cap * (l->wide ? 8 : 4));
        if (!nx) return -1;
        l->x = nx, l->cap = cap;
    }
    if (!l->each && !extend && l->nr == l->rcap) {
        const size_t rcap = l->rcap ? l->rcap * 2 : 1024;
        uint32_t *re = realloc(l->re, rcap * sizeof *re);
        if (!re) return -1;
        l->re = re;
        uint64_t *rend = realloc(l->rend, rcap * sizeof *rend);
        if (!rend) return -1;
        l->rend = rend, l->rcap = rcap;
    }
    if (!l->wide)
        for (size_t i = 0; i < n && !l->wide; i++)
            if ((double)(float)x[i] != x[i] && klog_widen(l)) return -1;
    if (l->each) {
        uint32_t *le = l->e + l->n;
        for (size_t i = 0; i < n; i++) le[i] = (uint32_t)e;
    } else if (extend) {
        l->rend[l->nr - 1] += n;
    } else {
        l->re[l->nr] = (uint32_t)e, l->rend[l->nr++] = l->n + n;
    }
    if (l->wide) {
        double *lx = (double *)l->x + l->n;
        for (size_t i = 0; i < n; i++) lx[i] = x[i];
    } else {
        float *lx = (float *)l->x + l->n;
        for (size_t i = 0; i < n; i++) lx[i] = (float)x[i];
    }
    l->n += n;
    return 0;
}

/* The log of value column v sorted by entry in its own arrays (each item swapped once
 * into its group's next free slot, the item found there examined next), so that no
 * second array of values is needed; end (n words) gets each group's end. */
#define KEPT_CYCLES(T)                                                                                                 \
    do {                                                                                                               \
        T *lx = l->x;                                                                                                  \
        uint64_t lo = 0;                                                                                               \
        for (size_t b = 0; b < n; b++) {                                                                               \
            const uint64_t lim = lo + acc_count(p->ent + b * es + co);                                                 \
            while (end[b] < lim) {                                                                                     \
                const uint64_t i = end[b];                                                                             \
                const uint32_t t = le[i];                                                                              \
                if (t == b) {                                                                                          \
                    end[b]++;                                                                                          \
                    continue;                                                                                          \
                }                                                                                                      \
                const uint64_t j = end[t]++;                                                                           \
                le[i] = le[j], le[j] = t;                                                                              \
                const T y = lx[i];                                                                                     \
                lx[i] = lx[j], lx[j] = y;                                                                              \
            }                                                                                                          \
            lo = lim;                                                                                                  \
        }                                                                                                              \
    } while (0)

/* The log of value column v scattered by entry into x (end: each group's first slot,
 * then its end), the misses of the slots a few items ahead prefetched. */
#define KEPT_SCATTER(T)                                                                                                \
    do {                                                                                                               \
        const T *lx = l->x;                                                                                            \
        T *o = x;                                                                                                      \
        for (size_t i = 0; i < l->n; i++) {                                                                            \
            if (i + 16 < l->n) __builtin_prefetch(&end[le[i + 16]], 1);                                                \
            if (i + 8 < l->n) __builtin_prefetch(&o[end[le[i + 8]]], 1);                                               \
            o[end[le[i]]++] = lx[i];                                                                                   \
        }                                                                                                              \
    } while (0)

/* Whether the log lies nearly in entry order: at most one value in 16 more than 2^15
 * values from its group's place (end holds each group's first slot). In place, a swap's
 * next item is the one the swap brought, so every swap waits for its miss: that costs
 * little where values stay near their place (a sparse key's readings ordered by key, as
 * they usually are), and about 100 ns a value where they move far (the dense path folds
 * the cells of every round in turn, so a cell's values lie in as many places as rounds),
 * where the scatter into a second array, its misses prefetched, is many times faster. */
static int log_local(const klog *l, const uint64_t *end)
{
    size_t far = 0;
    for (size_t i = 0; i < l->n; i++) {
        const uint64_t to = end[l->e[i]];
        far += (to > i ? to - i : i - to) > ((uint64_t)1 << 15);
    }
    return far <= l->n / 16;
}

/* The log sorted in its own arrays (end: each group's first slot, then its end). */
static void kept_in_place(const gtab *g, gpart *p, int v, uint64_t *end, kgroups *out)
{
    klog *l = &p->kl[v];
    const size_t n = p->n, es = g->es, co = 8 + 8 * (size_t)g->K + (size_t)v * g->A;
    uint32_t *le = l->e;
    if (l->wide) KEPT_CYCLES(double);
    else KEPT_CYCLES(float);
    out->end = end, out->x = l->x, out->wide = l->wide;
    out->log[0] = l->e, out->log_bytes[0] = l->cap * sizeof *l->e; /* its pages serve again */
    memset(l, 0, sizeof *l);
}

/* The log of value column v in entry order, in its own arrays, from a log that mostly
 * is: entries are numbered as they are made and a value comes at or after its entry's
 * first, so in rows ordered by key only the values of a group met again later (a patient
 * whose readings span two chunks, a group merged from another rank's record) come after
 * a later entry's. Those strays (st: their entry and number, sorted) are taken out as
 * the rest closes up (sx: their values, by number) and merged back from the end: a few
 * sequential passes, where swapping each value into its place waits on a cache miss
 * per value. Equal entries keep their log order. */
#define KEPT_MERGE(T)                                                                                                  \
    do {                                                                                                               \
        T *lx = l->x, *sv = sx;                                                                                        \
        size_t j = first, k = 0;                                                                                       \
        for (size_t i = first; i < l->n; i++) {                                                                        \
            const uint32_t t = le[i];                                                                                  \
            if (t >= top) top = t, le[j] = t, lx[j++] = lx[i];                                                         \
            else sv[k++] = lx[i];                                                                                      \
        }                                                                                                              \
        size_t w = l->n, q = ns;                                                                                       \
        while (q > 0) {                                                                                                \
            if (j > 0 && le[j - 1] > (uint32_t)(st[q - 1] >> 32)) lx[--w] = lx[--j];                                   \
            else lx[--w] = sv[(uint32_t)st[--q]];                                                                      \
        }                                                                                                              \
    } while (0)

/* Hands a log in entry order over to out (end: each group's first slot, made each
 * group's end) and empties it; its entry numbers' pages, if any, serve again. */
static void laid_out(klog *l, uint64_t *end, size_t n, kgroups *out)
{
    for (size_t e = 0; e + 1 < n; e++) end[e] = end[e + 1];
    if (n) end[n - 1] = l->n;
    out->end = end, out->x = l->x, out->wide = l->wide;
    out->log[0] = l->e, out->log_bytes[0] = l->e ? l->cap * sizeof *l->e : 0;
    free(l->re), free(l->rend);
    memset(l, 0, sizeof *l);
}

/* The log laid out by KEPT_MERGE where its strays are at most one value in 16 (end:
 * each group's first slot, then its end); 1, nothing changed, where they are more or
 * their buffers cannot be had; -1 when a value names no entry. */
static int kept_merge(gpart *p, int v, uint64_t *end, kgroups *out)
{
    klog *l = &p->kl[v];
    uint32_t *le = l->e, top = 0, bad = 0;
    uint64_t *st = NULL;
    size_t ns = 0, scap = 0, first = l->n;
    for (size_t i = 0; i < l->n; i++) {
        const uint32_t t = le[i];
        bad |= t >= p->n;
        if (t >= top) {
            top = t;
            continue;
        }
        if (ns == scap) {
            const size_t cap = scap ? 2 * scap : 1024;
            uint64_t *ns_ = cap <= l->n / 16 + 1024 ? realloc(st, cap * sizeof *st) : NULL; /* not hb_realloc: threads */
            if (!ns_) return free(st), 1;
            st = ns_, scap = cap;
        }
        if (ns == 0) first = i;
        st[ns] = (uint64_t)t << 32 | ns, ns++;
    }
    if (bad) return free(st), -1;
    if (ns > l->n / 16) return free(st), 1;
    if (ns) {
        void *sx = malloc(ns * (l->wide ? 8 : 4)); /* not hb_malloc: called from threads */
        const int ok = sx && hb_sort_u64(st, ns) == 0;
        /* the log before the first stray is in place: the passes start there */
        top = first ? le[first - 1] : 0;
        if (ok && l->wide) KEPT_MERGE(double);
        else if (ok) KEPT_MERGE(float);
        free(st), free(sx);
        if (!ok) return 1;
    }
    laid_out(l, end, p->n, out);
    return 0;
}

/* Whether the runs of a log lie in entry order, each its entry's whole slot (end: each
 * group's first slot; the counts at co in the n entries of ent, es bytes each). */
static int runs_laid(const klog *l, const uint64_t *end, size_t n, const unsigned char *ent, size_t es, size_t co)
{
    uint64_t from = 0;
    for (size_t r = 0; r < l->nr; r++) {
        const uint32_t t = l->re[r];
        if (t >= n || (r && t <= l->re[r - 1]) || end[t] != from) return 0;
        if (l->rend[r] - from != acc_count(ent + t * es + co)) return 0;
        from = l->rend[r];
    }
    return from == l->n;
}

/* The runs of a log put in entry order in its own arrays, where the runs out of order
 * (strays: a group met again after later groups had started, as where a dense fold's
 * box moves on) hold at most one value in 16: the runs in order close up, the strays'
 * values wait in a side buffer (sorted by entry, stably), and the two merge from the
 * end, as KEPT_MERGE does with values. Values of one group stay in log order except
 * that a stray's come after the in-order ones; no statistic depends on that order. 0
 * when done (the runs then name the groups in order), 1 when there are more strays or
 * their buffers cannot be had (nothing changed), -1 when a run names no entry of the
 * n or the runs are in order already (runs_laid found them not to match the counts). */
static int runs_merge(klog *l, size_t n)
{
    const size_t esz = l->wide ? 8 : 4, nr = l->nr;
    unsigned char *x = l->x;
    uint32_t top = 0;
    size_t nsr = 0, nsv = 0;
    for (size_t r = 0; r < nr; r++) {
        const uint32_t t = l->re[r];
        if (t >= n) return -1;
        if (t >= top) top = t;
        else nsr++, nsv += l->rend[r] - (r ? l->rend[r - 1] : 0);
    }
    if (nsr == 0) return -1; /* in order, and yet not laid out (runs_laid): the counts do not match */
    if (nsv > l->n / 16) return 1;
    /* not hb_malloc: called from threads */
    uint64_t *st = malloc(nsr * sizeof *st), *soff = malloc((nsr + 1) * sizeof *soff);
    unsigned char *sx = malloc(nsv * esz);
    if (!st || !soff || !sx) return free(st), free(soff), free(sx), 1;
    size_t w = 0, wr = 0, k = 0;
    soff[0] = 0, top = 0;
    for (size_t r = 0; r < nr; r++) {
        const uint32_t t = l->re[r];
        const uint64_t s0 = r ? l->rend[r - 1] : 0, len = l->rend[r] - s0;
        if (t >= top) {
            top = t;
            memmove(x + w * esz, x + s0 * esz, len * esz);
            w += len;
            l->re[wr] = t, l->rend[wr++] = w;
        } else {
            memcpy(sx + soff[k] * esz, x + s0 * esz, len * esz);
            st[k] = (uint64_t)t << 32 | k;
            soff[k + 1] = soff[k] + len;
            k++;
        }
    }
    if (hb_sort_u64(st, nsr)) return free(st), free(soff), free(sx), -1;
    size_t at = l->n, j = wr, q = nsr;
    while (q > 0) {
        if (j > 0 && l->re[j - 1] > (uint32_t)(st[q - 1] >> 32)) {
            const uint64_t s0 = j > 1 ? l->rend[j - 2] : 0, len = l->rend[j - 1] - s0;
            at -= len;
            memmove(x + at * esz, x + s0 * esz, len * esz);
            j--;
        } else {
            const uint32_t i = (uint32_t)st[--q];
            const uint64_t len = soff[i + 1] - soff[i];
            at -= len;
            memcpy(x + at * esz, sx + soff[i] * esz, len * esz);
        }
    }
    free(st), free(soff), free(sx);
    return 0; /* the caller lays the groups out by their counts; the runs are stale */
}

int gpart_kept_groups(const gtab *g, gpart *p, int v, int consume, kgroups *out)
{
    memset(out, 0, sizeof *out);
    klog *l = &p->kl[v];
    const size_t n = p->n, es = g->es, co = 8 + 8 * (size_t)g->K + (size_t)v * g->A;
    uint64_t *end = malloc((n ? n : 1) * sizeof *end); /* not hb_malloc: called from threads */
    if (!end) return -1;
    /* each group's first slot (its count of v is its number of kept values), then the
     * log scattered: every group's slot moves on to its end */
    uint64_t at = 0;
    for (size_t e = 0; e < n; e++) {
        end[e] = at;
        at += acc_count(p->ent + e * es + co);
    }
    if (at != l->n) return free(end), -1;
    int laid = !l->each && runs_laid(l, end, n, p->ent, es, co);
    if (!l->each && !laid && consume) {
        const int m = runs_merge(l, n);
        if (m < 0) return free(end), -1;
        laid = m == 0;
    }
    if (laid && consume) return laid_out(l, end, n, out), 0;
    if (laid) { /* in entry order already: each group's end is the next one's first slot */
        void *x = malloc((l->n ? l->n : 1) * (l->wide ? 8 : 4));
        if (!x) return free(end), -1;
        if (l->n) memcpy(x, l->x, l->n * (l->wide ? 8 : 4));
        for (size_t e = 0; e + 1 < n; e++) end[e] = end[e + 1];
        if (n) end[n - 1] = l->n;
        out->end = end, out->x = x, out->wide = l->wide;
        return 0;
    }
    if (!l->each && klog_each(l)) return free(end), -1;
    const int merged = consume ? kept_merge(p, v, end, out) : 1;
    if (merged <= 0) return merged ? (free(end), -1) : 0;
    const uint32_t *le = l->e;
    for (size_t i = 0; i < l->n && at == l->n; i++)
        if (le[i] >= n) at = UINT64_MAX;
    if (at != l->n) return free(end), -1;
    if (consume && log_local(l, end)) return kept_in_place(g, p, v, end, out), 0;
    void *x = malloc((l->n ? l->n : 1) * (l->wide ? 8 : 4));
    if (!x) return free(end), -1;
    if (l->wide) KEPT_SCATTER(double);
    else KEPT_SCATTER(float);
    out->end = end, out->x = x, out->wide = l->wide;
    if (consume) {
        out->log[0] = l->e, out->log_bytes[0] = l->cap * sizeof *l->e;
        out->log[1] = l->x, out->log_bytes[1] = l->cap * (l->wide ? 8 : 4);
        memset(l, 0, sizeof *l);
    }
    return 0;
}

void kgroups_free(kgroups *k)
{
    free(k->end), free(k->x), free(k->log[0]), free(k->log[1]);
    memset(k, 0, sizeof *k);
}

size_t gtab_entries(const gtab *g)
{
    size_t n = 0;
    for (int i = 0; g->p && i < g->nparts; i++) n += g->p[i].n;
    return n;
}

size_t gtab_bytes(const gtab *g)
{
    size_t b = 0;
    for (int i = 0; g->p && i < g->nparts; i++) {
        const gpart *p = &g->p[i];
        b += p->cap * g->es;
        b += p->index ? (p->imask + 1) * sizeof *p->index : 0;
        b += p->pool.cap * sizeof(hb_xsum);
        for (int v = 0; p->kl && v < g->V; v++) {
            const klog *l = &p->kl[v];
            b += l->cap * ((l->each ? 4 : 0) + (l->wide ? 8 : 4)) + l->rcap * (4 + 8);
        }
    }
    return b;
}

/* ---- string dictionaries ---- */

int sdict_init(sdict *d, int nparts)
{
    d->nparts = nparts;
    d->p = hb_calloc((size_t)nparts, sizeof *d->p);
    return d->p ? 0 : HB_EINTERNAL;
}

void sdict_free(sdict *d)
{
    for (int i = 0; d->p && i < d->nparts; i++) {
        spart *p = &d->p[i];
        free(p->index), free(p->hash), free(p->off), free(p->len), free(p->bytes);
    }
    free(d->p);
    memset(d, 0, sizeof *d);
}

int spart_add(spart *p, uint64_t h, const char *s, uint32_t len)
{
    if (p->index) {
        uint64_t slot = slot_of(h, p->imask);
        for (uint32_t e; (e = p->index[slot]) != EMPTY_SLOT; slot = (slot + 1) & p->imask)
            if (p->hash[e] == h)
                return p->len[e] == len && memcmp(p->bytes + p->off[e], s, len) == 0 ? 0 : 1;
    }
    size_t e = p->n;
    if (e + 1 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        uint64_t *hh = realloc(p->hash, cap * sizeof *hh);
        if (!hh) return -1;
        p->hash = hh;
        uint64_t *o = realloc(p->off, cap * sizeof *o);
        if (!o) return -1;
        p->off = o;
        uint32_t *l = realloc(p->len, cap * sizeof *l);
        if (!l) return -1;
        p->len = l;
        p->cap = cap;
    }
    if (hb_grow((void **)&p->bytes, &p->bcap, p->nbytes + len + 1, 1)) return -1;
    if (!p->index || 2 * (e + 1) > p->imask + 1) {
        if (index_grow(&p->index, &p->imask, p->hash, e)) return -1;
    }
    p->hash[e] = h, p->off[e] = p->nbytes, p->len[e] = len;
    memcpy(p->bytes + p->nbytes, s, len);
    p->nbytes += len;
    uint64_t slot = slot_of(h, p->imask);
    while (p->index[slot] != EMPTY_SLOT) slot = (slot + 1) & p->imask;
    p->index[slot] = (uint32_t)e;
    p->n = e + 1;
    return 0;
}

size_t sdict_bytes(const sdict *d)
{
    size_t b = 0;
    for (int i = 0; d->p && i < d->nparts; i++) {
        const spart *p = &d->p[i];
        b += p->cap * 20 + p->bcap + (p->index ? (p->imask + 1) * 4 : 0);
    }
    return b;
}
