/* The aggregate kernel's finalize: from the groups each rank owns (by hash) to the
 * output layouts, ordered by key.
 *
 * 1. Coordinates: every rank gathers the distinct values of each key over all groups
 *    (strings with their bytes, from the ranks' dictionaries) and sorts them ascending
 *    (strings by bytes), so every rank knows every key's position table.
 * 2. Results: each owner computes its groups' statistics (percentiles by selection on
 *    the kept values) into fixed-size result records tagged with the groups' positions.
 * 3. Writers: the records go to the rank that writes their part of the output (a block
 *    of rows of the first key in the dense layout, a range of the row order in the table
 *    layout) and are written collectively.
 * No step depends on which rank owned which group, so the bits are the same for any
 * rank and thread count. */
#include "kernels/aggregate/agg.h"
#include "kernels/common/sort.h"

#include "core/hb.h"

#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One key's observed values, ascending; for a string key also the labels. */
typedef struct coord {
    size_t n;
    int64_t *v;      /* numeric: the values; string: the hashes, ascending as unsigned */
    uint32_t *rank;  /* string: the label position of v[i] */
    uint64_t *loff;  /* string: label i is lbytes[loff[i] .. loff[i+1]) */
    char *lbytes;
    size_t width;    /* string: the longest label, at least 1 */
    uint32_t *dir;   /* v[dir[b] .. dir[b+1]) are the values whose bucket (see bucket) is b */
    uint64_t dmin;   /* the smallest value, as ordered bits */
    int dshift;
} coord;

/* A key word as bits whose unsigned order is the coordinate's order. */
static inline uint64_t ordered(int str, int64_t w) { return str ? (uint64_t)w : (uint64_t)w ^ (uint64_t)1 << 63; }

static inline size_t bucket(const coord *c, uint64_t u) { return (size_t)((u - c->dmin) >> c->dshift); }

/* Not collective. The directory of c: about one bucket per value over the range of the
 * values, so that a position is a look-up and a short search, not a binary search's
 * twenty misses over a million coordinates. */
static int coord_dir(coord *c, int str)
{
    if (c->n == 0) return 0;
    const uint64_t lo = ordered(str, c->v[0]), span = ordered(str, c->v[c->n - 1]) - lo;
    size_t nb = 1;
    while (nb < c->n && nb < ((size_t)1 << 26)) nb <<= 1;
    int sh = 0;
    while (sh < 64 && (span >> sh) >= nb) sh++;
    c->dmin = lo, c->dshift = sh;
    c->dir = hb_malloc((nb + 2) * sizeof *c->dir);
    if (!c->dir) return HB_EINTERNAL;
    size_t b = 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t bi = bucket(c, ordered(str, c->v[i]));
        while (b <= bi) c->dir[b++] = (uint32_t)i;
    }
    while (b < nb + 2) c->dir[b++] = (uint32_t)c->n;
    return 0;
}

/* Blocks finalize is done with, kept for the buffers it needs next: a fresh page costs a
 * fault and the kernel's zeroing (about a second per GB on the benchmark VM), and the
 * group tables it frees are as large as the result records that follow them. */
#define SPARES 24
typedef struct spares {
    void *p[SPARES];
    size_t bytes[SPARES];
    int n;
} spares;

typedef struct out_ctx {
    spares sp;
    agg *a;
    coord c[AGG_MAX_KEYS];
    int nd;          /* datasets: values x stats */
    size_t rr;       /* bytes per result record */
    size_t pos_bytes;
    unsigned __int128 cells;
    /* the table layout where the cells (every key's positions, outermost first, as one
     * number) are few enough to list: which hold a group, over all ranks, and how many
     * groups the cells before each word's hold, so that a group's row in the table is a
     * count, not a sort; its record then carries the row in place of the positions */
    int direct;
    uint64_t *bits, *before;
    size_t nwords;
    uint64_t rows;
    uint64_t *cellv; /* direct: the cell of each owned group, part after part */
} out_ctx;

/* Not collective, thread-safe. Keeps block p of bytes for spare_take (frees it when the
 * list is full). */
static void spare_put(out_ctx *o, void *p, size_t bytes)
{
    if (!p) return;
    int kept = 0;
#pragma omp critical(agg_spares)
    if (o->sp.n < SPARES && bytes >= ((size_t)1 << 20)) {
        o->sp.p[o->sp.n] = p, o->sp.bytes[o->sp.n++] = bytes;
        kept = 1;
    }
    if (!kept) free(p);
}

/* Not collective. The smallest spare block of at least bytes (its size in *got), else a
 * new one; NULL (with the error set) when out of memory. largest: the largest block
 * instead, whatever its size (NULL, *got 0 when none). */
static void *spare_take(out_ctx *o, size_t bytes, size_t *got, int largest)
{
    int best = -1;
    for (int i = 0; i < o->sp.n; i++)
        if (largest ? best < 0 || o->sp.bytes[i] > o->sp.bytes[best]
                    : o->sp.bytes[i] >= bytes && (best < 0 || o->sp.bytes[i] < o->sp.bytes[best]))
            best = i;
    if (best < 0) {
        if (got) *got = largest ? 0 : bytes;
        return largest ? NULL : hb_malloc(bytes);
    }
    void *p = o->sp.p[best];
    if (got) *got = o->sp.bytes[best];
    o->sp.p[best] = o->sp.p[--o->sp.n], o->sp.bytes[best] = o->sp.bytes[o->sp.n];
    return p;
}

/* Not collective. A block of bytes: the largest spare, grown when it is smaller (the
 * pages it has are touched already; realloc moves a large block's pages, it does not
 * copy them), else a new one; NULL (with the error set) when out of memory. */
static void *spare_grow(out_ctx *o, size_t bytes)
{
    size_t got = 0;
    void *p = spare_take(o, 0, &got, 1);
    if (!p) return hb_malloc(bytes);
    if (got >= bytes) return p;
    void *q = realloc(p, bytes);
    if (q) return q;
    free(p);
    return hb_malloc(bytes);
}

static void spares_free(out_ctx *o)
{
    for (int i = 0; i < o->sp.n; i++) free(o->sp.p[i]);
    o->sp.n = 0;
}

/* Not collective. Before the writes of n rows: frees every spare block but the one the
 * key columns' buffer (write_key) takes. Pages just freed are the ones the output's page
 * cache then takes, where pages the kernel has not handed out lately can cost more to
 * take than to write (a VM whose host takes back free pages: 91 MB written in 0.29 s
 * into fresh pages, 0.02 s into just-freed ones). */
static void spares_trim(out_ctx *o, size_t n)
{
    size_t w = 8;
    for (int k = 0; k < o->a->sp.nkeys; k++)
        if (o->a->ktype[k] == KT_STRING && o->c[k].width > w) w = o->c[k].width;
    size_t got = 0;
    void *keep = spare_take(o, (n ? n : 1) * w, &got, 0);
    spares_free(o);
    spare_put(o, keep, got);
}

/* Collective. Gathers n elements of esz bytes from every rank into *all (malloc'd). */
static int gather_all(const void *mine, size_t n, size_t esz, void **all, size_t *total)
{
    return hb_allgather(mine, n, esz, all, total, "aggregate");
}

/* Byte order of two labels, then length: the order strings are sorted in. */
static const coord *sort_coord;
static int cmp_label(const void *x, const void *y)
{
    const coord *c = sort_coord;
    uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
    size_t li = c->loff[i + 1] - c->loff[i], lj = c->loff[j + 1] - c->loff[j];
    int r = memcmp(c->lbytes + c->loff[i], c->lbytes + c->loff[j], li < lj ? li : lj);
    return r ? r : (li > lj) - (li < lj);
}

typedef struct strent {
    uint64_t hash;
    uint64_t off;
    uint32_t len, pad;
} strent;

static int cmp_strent(const void *x, const void *y)
{
    const strent *a = x, *b = y;
    return (a->hash > b->hash) - (a->hash < b->hash);
}

/* Collective. The labels of string key k: every rank's dictionary gathered, matched to
 * the key's hashes, sorted by bytes. */
static int string_labels(agg *a, int k, coord *c)
{
    const sdict *d = &a->dict[k];
    size_t n = 0, nb = 0;
    for (int p = 0; p < d->nparts; p++) n += d->p[p].n, nb += d->p[p].nbytes;
    strent *mine = hb_malloc((n ? n : 1) * sizeof *mine);
    char *mbytes = hb_malloc(nb ? nb : 1);
    int rc = mine && mbytes ? 0 : HB_EINTERNAL;
    HB_CALL(hb_agree(rc));
    /* offsets into the gathered bytes: this rank's bytes follow those of lower ranks */
    uint64_t mine_b = nb, base = 0;
    MPI_Exscan(&mine_b, &base, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (hb_rank == 0) base = 0;
    size_t i = 0, pos = 0;
    for (int p = 0; p < d->nparts; p++)
        for (size_t e = 0; e < d->p[p].n; e++, i++) {
            mine[i] = (strent){d->p[p].hash[e], base + pos, d->p[p].len[e], 0};
            memcpy(mbytes + pos, d->p[p].bytes + d->p[p].off[e], d->p[p].len[e]);
            pos += d->p[p].len[e];
        }
    strent *all = NULL;
    char *allb = NULL;
    size_t na = 0, nab = 0;
    rc = gather_all(mine, n, sizeof *mine, (void **)&all, &na);
    if (rc == 0) rc = gather_all(mbytes, nb, 1, (void **)&allb, &nab);
    free(mine), free(mbytes);
    if (rc) return free(all), free(allb), rc;
    qsort(all, na, sizeof *all, cmp_strent);
    c->rank = hb_malloc((c->n ? c->n : 1) * sizeof *c->rank);
    c->loff = hb_malloc((c->n + 1) * sizeof *c->loff);
    uint64_t *src = hb_malloc((c->n ? c->n : 1) * sizeof *src);
    uint32_t *order = hb_malloc((c->n ? c->n : 1) * sizeof *order);
    rc = c->rank && c->loff && src && order ? 0 : HB_EINTERNAL;
    size_t total = 0, j = 0;
    for (size_t m = 0; rc == 0 && m < c->n; m++) {
        uint64_t h = (uint64_t)c->v[m];
        while (j < na && all[j].hash < h) j++;
        if (j == na || all[j].hash != h) {
            rc = hb_err_set(HB_EINTERNAL, "aggregate", "the string of a key hash was not kept");
            break;
        }
        for (size_t q = j + 1; q < na && all[q].hash == h; q++)
            if (all[q].len != all[j].len || memcmp(allb + all[q].off, allb + all[j].off, all[j].len) != 0)
                rc = hb_err_set(HB_EINTERNAL, "aggregate", "two different key strings have the same 64-bit hash");
        src[m] = all[j].off;
        c->loff[m] = total;
        total += all[j].len;
        c->loff[m + 1] = total;
    }
    if (rc == 0) {
        c->lbytes = hb_malloc(total ? total : 1);
        if (!c->lbytes) rc = HB_EINTERNAL;
    }
    if (rc == 0) {
        for (size_t m = 0; m < c->n; m++)
            memcpy(c->lbytes + c->loff[m], allb + src[m], c->loff[m + 1] - c->loff[m]);
        /* sort by bytes: order[r] is the hash index of label r */
        for (size_t m = 0; m < c->n; m++) order[m] = (uint32_t)m;
        sort_coord = c;
        qsort(order, c->n, sizeof *order, cmp_label);
        uint64_t *loff = hb_malloc((c->n + 1) * sizeof *loff);
        char *lb = hb_malloc(total ? total : 1);
        if (!loff || !lb) {
            free(loff), free(lb);
            rc = HB_EINTERNAL;
        } else {
            size_t q = 0;
            c->width = 1;
            for (size_t r = 0; r < c->n; r++) {
                uint32_t m = order[r];
                size_t l = c->loff[m + 1] - c->loff[m];
                c->rank[m] = (uint32_t)r;
                loff[r] = q;
                memcpy(lb + q, c->lbytes + c->loff[m], l);
                q += l;
                if (l > c->width) c->width = l;
            }
            loff[c->n] = q;
            free(c->loff), free(c->lbytes);
            c->loff = loff, c->lbytes = lb;
        }
    }
    free(all), free(allb), free(src), free(order);
    return hb_agree(rc);
}

/* Collective. The observed values of key k over all ranks' groups. */
static int gather_coord(agg *a, int k, coord *c)
{
    const gtab *g = &a->own;
    size_t n = gtab_entries(g), m = 0;
    int64_t *mine = hb_malloc((n ? n : 1) * sizeof *mine);
    HB_CALL(hb_agree(mine ? 0 : HB_EINTERNAL));
    /* groups appear in row order, so a key repeats for runs of them (a device for its
     * months when rows come device by device, a month when they come by time), and a key
     * of a few values (a month, an hour) repeats throughout: the values met last, in a
     * small table by hash, are not listed again, so that the sort that follows sorts
     * about the distinct values, not one per group */
    int64_t seen[256];
    uint8_t have[256] = {0};
    for (int p = 0; p < g->nparts; p++)
        for (size_t e = 0; e < g->p[p].n; e++) {
            const int64_t w = (int64_t)gp_keys(g, &g->p[p], e)[k];
            const unsigned h = (unsigned)(hb_mix64((uint64_t)w) >> 56);
            if (have[h] && seen[h] == w) continue;
            have[h] = 1, seen[h] = w;
            mine[m++] = w;
        }
    const int str = a->ktype[k] == KT_STRING;
    /* string keys are hashes, in unsigned order; integer keys in signed order */
    int rc = str ? hb_sort_u64((uint64_t *)mine, m) : hb_sort_i64(mine, m);
    if (rc) free(mine), mine = NULL;
    HB_CALL(hb_agree(rc ? HB_EINTERNAL : 0));
    m = hb_unique_i64(mine, m);
    int64_t *all = NULL;
    size_t na = 0;
    if (hb_size == 1) { /* this rank's values are all values, sorted and distinct already */
        all = mine, na = m;
    } else {
        rc = gather_all(mine, m, sizeof *mine, (void **)&all, &na);
        free(mine);
        HB_CALL(rc);
        rc = str ? hb_sort_u64((uint64_t *)all, na) : hb_sort_i64(all, na);
        if (rc) free(all), all = NULL;
        HB_CALL(hb_agree(rc ? HB_EINTERNAL : 0));
    }
    c->n = hb_unique_i64(all, na);
    c->v = all;
    HB_CALL(hb_agree(coord_dir(c, str)));
    return str ? string_labels(a, k, c) : 0;
}

/* Position of key word w in coordinate c (present by construction). */
static uint32_t position(const coord *c, int str, int64_t w)
{
    const uint64_t u = ordered(str, w);
    const size_t b = bucket(c, u);
    size_t lo = c->dir[b], hi = c->dir[b + 1];
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ordered(str, c->v[mid]) <= u) lo = mid;
        else hi = mid;
    }
    return str ? c->rank[lo] : (uint32_t)lo;
}

/* The cell of a group: its positions, outermost first, as one number. */
static uint64_t cell_of(const out_ctx *o, const uint64_t *keys)
{
    const agg *a = o->a;
    uint64_t l = 0;
    for (int k = 0; k < a->sp.nkeys; k++)
        l = l * o->c[k].n + position(&o->c[k], a->ktype[k] == KT_STRING, (int64_t)keys[k]);
    return l;
}

/* The table row of a cell that holds a group (direct). */
static inline uint64_t row_of(const out_ctx *o, uint64_t cell)
{
    const uint64_t w = o->bits[cell >> 6], below = w & (((uint64_t)1 << (cell & 63)) - 1);
    return o->before[cell >> 6] + (uint64_t)__builtin_popcountll(below);
}

/* The first row rank r writes (direct): the rows in P even ranges, in rank order. */
static inline uint64_t first_row(const out_ctx *o, int r)
{
    return (uint64_t)((unsigned __int128)o->rows * (unsigned)r / (unsigned)hb_size);
}

/* The rank that writes row (direct). */
static inline int row_writer(const out_ctx *o, uint64_t row)
{
    return (int)((((unsigned __int128)row + 1) * (unsigned)hb_size - 1) / o->rows);
}

/* Collective. Decides whether the table's rows are found by listing the cells (direct):
 * where the list takes at most 8 bytes a group (or 1 MB), as meters x months does; then
 * lists the cell of every owned group and, over all ranks, the cells that hold one. */
static int list_cells(out_ctx *o)
{
    const uint64_t groups = o->rows;
    agg *a = o->a;
    const gtab *g = &a->own;
    const int T = g->nparts;
    o->direct = o->a->sp.layout == LAYOUT_TABLE && o->cells < ((unsigned __int128)1 << 36) && o->cells <= (unsigned __int128)groups * 64 + ((uint64_t)1 << 23);
    if (!o->direct) return 0;
    const uint64_t cells = (uint64_t)o->cells;
    o->nwords = (size_t)(cells / 64 + 1);
    const size_t n = gtab_entries(g);
    o->bits = hb_calloc(o->nwords, sizeof *o->bits);
    o->before = hb_malloc(o->nwords * sizeof *o->before);
    o->cellv = hb_malloc((n ? n : 1) * sizeof *o->cellv);
    size_t *first = hb_calloc((size_t)T + 1, sizeof *first);
    int rc = o->bits && o->before && o->cellv && first ? 0 : HB_EINTERNAL;
    for (int p = 0; rc == 0 && p < T; p++) first[p + 1] = first[p] + g->p[p].n;
    if (rc == 0) {
        uint64_t *bits = o->bits, *cellv = o->cellv;
#pragma omp parallel for schedule(dynamic, 1) num_threads(a->nthreads)
        for (int p = 0; p < T; p++)
            for (size_t e = 0; e < g->p[p].n; e++) {
                const uint64_t l = cell_of(o, gp_keys(g, &g->p[p], e));
                cellv[first[p] + e] = l;
                if (T > 1) __atomic_fetch_or(&bits[l >> 6], (uint64_t)1 << (l & 63), __ATOMIC_RELAXED);
                else bits[l >> 6] |= (uint64_t)1 << (l & 63);
            }
    }
    free(first);
    HB_CALL(hb_agree(rc));
    for (size_t w = 0; w < o->nwords; w += (size_t)1 << 26) {
        const size_t m = o->nwords - w < ((size_t)1 << 26) ? o->nwords - w : (size_t)1 << 26;
        MPI_Allreduce(MPI_IN_PLACE, o->bits + w, (int)m, MPI_UINT64_T, MPI_BOR, MPI_COMM_WORLD);
    }
    uint64_t t = 0;
    for (size_t w = 0; w < o->nwords; w++) o->before[w] = t, t += (uint64_t)__builtin_popcountll(o->bits[w]);
    /* two groups in one cell would be two equal key tuples: a string hash collision is
     * reported before this */
    if (t != groups) rc = hb_err_set(HB_EINTERNAL, "aggregate", "%llu groups fill %llu cells", (unsigned long long)groups,
                                     (unsigned long long)t);
    return hb_agree(rc);
}

static int stat_is_count(stat_kind s) { return s == ST_COUNT || s == ST_ABOVE || s == ST_BELOW; }

/* Groups of up to this many kept values are sorted by insertion: selection's partitions
 * and recursion cost more than they save below it. */
#define SMALL_N 32
/* Up to this many, by compare-exchanges without branches: the few values of a group are
 * in random order, and an insertion's mispredicted branches would cost more. */
#define TINY_N 12

/* A double's bits as an integer whose signed order is the numeric order (NaN excluded;
 * the kept values hold no -0.0), and back: the same map. Compilers make integer minima
 * and maxima into conditional moves, where a double's compare stays a branch. */
static inline int64_t dkey(int64_t u) { return u ^ (int64_t)((uint64_t)(u >> 63) >> 1); }

static void sort_small(double *x, size_t n)
{
    if (n <= TINY_N) {
        int64_t k[TINY_N];
        memcpy(k, x, n * sizeof *x);
        for (size_t i = 0; i < n; i++) k[i] = dkey(k[i]);
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0; j--) {
                const int64_t lo = k[j - 1], hi = k[j];
                k[j - 1] = hi < lo ? hi : lo;
                k[j] = hi < lo ? lo : hi;
            }
        for (size_t i = 0; i < n; i++) k[i] = dkey(k[i]);
        memcpy(x, k, n * sizeof *x);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        double v = x[i];
        size_t j = i;
        while (j > 0 && x[j - 1] > v) x[j] = x[j - 1], j--;
        x[j] = v;
    }
}

/* Percentiles p[0..np) of the m kept values x when every one is exactly a float (speeds
 * stored as float32, whole numbers below 2^24: most readings), as 4-byte keys whose
 * unsigned order is numeric order, in place of x (its 8 m bytes hold the m keys and m
 * of scratch): one pass counts the keys in up to 256 buckets of their range (about 8
 * keys a bucket), and only the keys of the buckets that hold the ranks the percentiles
 * read are sorted. The order statistics are the values a sort of x finds: the same
 * bits. 0, x untouched, when a value is not a float. */
_Static_assert(AGG_MAX_STATS <= HB_KEYS_PCT_MAX, "a group's percentiles fit one hb_keys_percentiles");
static int float_percentiles(double *x, size_t m, const double *p, int np, double *out)
{
    int exact = m > 0 && m < ((size_t)1 << 31) && np <= AGG_MAX_STATS;
    double lo = x[0], hi = x[0];
    for (size_t i = 0; i < m && exact; i++) {
        exact = (double)(float)x[i] == x[i];
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    if (!exact) return 0;
    const uint32_t kmin = hb_f32_key((float)lo), kmax = hb_f32_key((float)hi);
    uint32_t nb = 16;
    while (nb < 256 && nb * 8 < m) nb *= 2;
    int shift = 0;
    while (((kmax - kmin) >> shift) >= nb) shift++;
    uint32_t h[256] = {0};
    unsigned char *b = (unsigned char *)x; /* bytes, so that no load moves past a store */
    for (size_t i = 0; i < m; i++) {
        double d;
        memcpy(&d, b + 8 * i, 8);
        const uint32_t key = hb_f32_key((float)d);
        memcpy(b + 4 * i, &key, 4); /* key i overwrites no value j > i */
        h[(key - kmin) >> shift]++;
    }
    uint32_t *k = (uint32_t *)(void *)x; /* after the gather, the sort's scratch */
    hb_keys_percentiles(k, m, h, nb, kmin, shift, p, np, out, k + m, k);
    return 1;
}

/* The statistics of one group's value v into out[0..nstats). x is scratch for the kept
 * values (reordered). */
static void group_stats(const agg *a, const gpart *p, size_t e, int v, const kgroups *kg, double *x, unsigned char *out)
{
    const agg_spec *sp = &a->sp;
    const acc_layout *L = &a->L;
    const unsigned char *acc = gp_acc(&a->own, p, e) + (size_t)v * a->A;
    const uint64_t n = acc_count(acc);
    double pct[AGG_MAX_STATS], pv[AGG_MAX_STATS];
    int np = 0;
    for (int s = 0; s < sp->nstats; s++)
        if (sp->st[s] == ST_PCT) pct[np++] = sp->arg[s];
    /* with the kept values at hand (they are the values the sum was taken of), a plain
     * double sum whose every addition was exact (no TwoSum error) is the exact sum, which
     * is a double: the bits hb_xsum_value rounds the window's words to. Readings of a few
     * significant bits in a group of a few values always are, so the words need no
     * rounding for them. */
    int plain = 0;
    double psum = 0;
    if (np) {
        const size_t f = kgroups_first(kg, e), m = (size_t)kg->end[e] - f;
        if (kg->wide) memcpy(x, (const double *)kg->x + f, m * sizeof *x);
        else
            for (size_t i = 0; i < m; i++) x[i] = (double)((const float *)kg->x)[f + i];
        if (L->sum && m == n) {
            double err = 0;
            for (size_t i = 0; i < m; i++) {
                const double t = psum + x[i], bp = t - psum;
                err += fabs((psum - (t - bp)) + (x[i] - bp));
                psum = t;
            }
            plain = err == 0; /* NaN (an infinite sum) is not 0 */
        }
        if (m <= SMALL_N) { /* most groups of a fine grouping: sort the few, read type 7 off */
            sort_small(x, m);
            for (int j = 0; j < np; j++) pv[j] = hb_percentile_sorted(x, m, pct[j]);
        } else if (!float_percentiles(x, m, pct, np, pv)) {
            hb_percentiles_select(x, m, pct, np, pv);
        }
    }
    double sum = L->sum && n ? (plain ? psum : acc_sum(L, acc, &p->pool)) : NAN;
    int ip = 0, it = 0;
    for (int s = 0; s < sp->nstats; s++) {
        unsigned char *o = out + 8 * (size_t)s;
        double d = NAN;
        uint64_t u = 0;
        switch (sp->st[s]) {
        case ST_COUNT: u = n; break;
        case ST_SUM: d = sum; break;
        case ST_MEAN: d = n ? sum / (double)n : NAN; break;
        case ST_MIN: d = n ? *(const double *)(acc + L->off_min) : NAN; break;
        case ST_MAX: d = n ? *(const double *)(acc + L->off_max) : NAN; break;
        case ST_VAR: d = acc_var(L, acc, &p->pool); break;
        case ST_STD: d = sqrt(acc_var(L, acc, &p->pool)); break;
        case ST_FIRST: d = n ? *(const double *)(acc + L->off_fv) : NAN; break;
        case ST_LAST: d = n ? *(const double *)(acc + L->off_lv) : NAN; break;
        case ST_PCT: d = pv[ip++]; break;
        case ST_ABOVE: case ST_BELOW: u = ((const uint64_t *)(acc + L->off_thr))[it++]; break;
        }
        if (stat_is_count(sp->st[s])) memcpy(o, &u, 8);
        else memcpy(o, &d, 8);
    }
}

/* Not collective, thread-safe per part. The kept values of every value column of part p,
 * group by group, into kg[V] (nothing when no values are kept); the logs are freed. */
static int part_kept(const agg *a, gpart *p, kgroups *kg)
{
    memset(kg, 0, (size_t)a->sp.nvals * sizeof *kg);
    for (int v = 0; a->L.kept && v < a->sp.nvals; v++)
        if (gpart_kept_groups(&a->own, p, v, 1, &kg[v])) return -1;
    return 0;
}

/* The rank that writes a result: by the first key's position (dense) or by the place in
 * the row order (table), in contiguous ranges, so rank order is output order. */
static int writer_of(const out_ctx *o, const uint32_t *pos)
{
    const int P = hb_size, K = o->a->sp.nkeys;
    if (o->a->sp.layout == LAYOUT_TABLE && o->cells < ((unsigned __int128)1 << 100)) {
        unsigned __int128 l = 0;
        for (int k = 0; k < K; k++) l = l * o->c[k].n + pos[k];
        return (int)(((l + 1) * (unsigned)P - 1) / o->cells);
    }
    return (int)((((uint64_t)pos[0] + 1) * (uint64_t)P - 1) / o->c[0].n);
}

/* The result record of entry e of part p at r: positions, then every value's stats. */
static int result_of(const out_ctx *o, const gpart *p, size_t e, const kgroups *kg, double **x, size_t *xcap,
                     const uint64_t *row, unsigned char *r)
{
    const agg *a = o->a;
    const gtab *g = &a->own;
    for (int v = 0; a->L.kept && v < a->sp.nvals; v++) {
        size_t c = (size_t)acc_count(gp_acc(g, p, e) + (size_t)v * a->A);
        if (c > *xcap) {
            size_t cap = *xcap ? *xcap : 64;
            while (cap < c) cap *= 2;
            double *nx = realloc(*x, cap * sizeof *nx); /* not hb_realloc: called from threads */
            if (!nx) return -1;
            *x = nx, *xcap = cap;
        }
    }
    uint32_t *pos = (uint32_t *)(void *)r;
    memset(r, 0, o->pos_bytes);
    if (row) memcpy(r, row, 8);
    for (int k = 0; !row && k < a->sp.nkeys; k++)
        pos[k] = position(&o->c[k], a->ktype[k] == KT_STRING, (int64_t)gp_keys(g, p, e)[k]);
    for (int v = 0; v < a->sp.nvals; v++)
        group_stats(a, p, e, v, &kg[v], *x, r + o->pos_bytes + 8 * (size_t)v * (size_t)a->sp.nstats);
    return 0;
}

/* Asks the cache for what entry e's results read: its kept values. */
static inline void result_prefetch(const agg *a, const kgroups *kg, size_t e)
{
    for (int v = 0; a->L.kept && v < a->sp.nvals; v++)
        __builtin_prefetch((const char *)kg[v].x + kgroups_first(&kg[v], e) * (kg[v].wide ? 8 : 4));
}

/* Collective. Every owned group's results, sent to its writer; *res (malloc'd) gets the
 * nres records this rank writes. The records are made in place in the send buffer,
 * destination after destination (one rank: in table order, and that buffer is *res). */
static int results(out_ctx *o, unsigned char **res, size_t *nres)
{
    agg *a = o->a;
    const int K = a->sp.nkeys, P = hb_size, T = a->own.nparts;
    const gtab *g = &a->own;
    const size_t n = gtab_entries(g), rr = o->rr;
    /* [part][dest] counts, then each part's first slot per destination */
    size_t *cnt = hb_calloc((size_t)T * P * 2 + (size_t)P, sizeof *cnt);
    HB_CALL(hb_agree(cnt ? 0 : HB_EINTERNAL));
    size_t *slot = cnt + (size_t)T * P, *dcount = slot + (size_t)T * P;
    /* one rank and one part: each record overwrites the entries already read, in the
     * table's own array, so the results need no memory beside the groups' */
    const int inplace = P == 1 && T == 1 && n > 0 && rr <= g->es;
    /* every part's kept values group by group first, each log given up as it is laid
     * out (its entry numbers' pages then hold the records sent, unless they are made in
     * place), so that the logs and the records are never held at once */
    kgroups *kgs = hb_calloc((size_t)T * (size_t)a->sp.nvals, sizeof *kgs);
    int kfail = !kgs;
#pragma omp parallel for schedule(dynamic, 1) num_threads(a->nthreads) reduction(| : kfail)
    for (int p = 0; p < T; p++) {
        kgroups *kg = kgs ? kgs + (size_t)p * (size_t)a->sp.nvals : NULL;
        if (kg && part_kept(a, &a->own.p[p], kg)) kfail = 1;
        for (int v = 0; kg && v < a->sp.nvals; v++) {
            if (inplace) free(kg[v].log[0]), free(kg[v].log[1]); /* no buffer of the records to hold */
            else spare_put(o, kg[v].log[0], kg[v].log_bytes[0]), spare_put(o, kg[v].log[1], kg[v].log_bytes[1]);
            kg[v].log[0] = kg[v].log[1] = NULL;
        }
    }
    /* after the logs are laid out, which frees their entry numbers */
    int rc = hb_agree(kfail ? HB_EINTERNAL : 0);
    if (rc == 0) rc = list_cells(o);
    /* with more ranks, where each record goes first: by its row (direct), else by its
     * positions (computed again when the record is made, rather than kept for every group) */
    int *dest = rc == 0 && P > 1 && !o->direct ? hb_malloc((n ? n : 1) * sizeof *dest) : NULL;
    unsigned char *send = inplace || rc ? NULL : spare_grow(o, (n ? n : 1) * rr);
    if (rc == 0 && !((send || inplace) && (P == 1 || dest || o->direct))) rc = HB_EINTERNAL;
    size_t *first = rc == 0 ? hb_calloc((size_t)T + 1, sizeof *first) : NULL;
    if (rc == 0 && !first) rc = HB_EINTERNAL;
    for (int p = 0; rc == 0 && p < T; p++) first[p + 1] = first[p] + g->p[p].n;
    if (rc == 0 && P > 1 && o->direct) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(a->nthreads)
        for (int p = 0; p < T; p++)
            for (size_t e = 0; e < g->p[p].n; e++) cnt[(size_t)p * P + row_writer(o, row_of(o, o->cellv[first[p] + e]))]++;
    } else if (rc == 0 && P > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(a->nthreads)
        for (int p = 0; p < T; p++) {
            uint32_t pos[AGG_MAX_KEYS];
            for (size_t e = 0; e < g->p[p].n; e++) {
                for (int k = 0; k < K; k++)
                    pos[k] = position(&o->c[k], a->ktype[k] == KT_STRING, (int64_t)gp_keys(g, &g->p[p], e)[k]);
                int d = writer_of(o, pos);
                dest[first[p] + e] = d;
                cnt[(size_t)p * P + d]++;
            }
        }
    } else if (rc == 0) {
        for (int p = 0; p < T; p++) cnt[p] = g->p[p].n;
    }
    if (rc == 0) {
        size_t at = 0;
        for (int d = 0; d < P; d++)
            for (int p = 0; p < T; p++) {
                slot[(size_t)p * P + d] = at;
                at += cnt[(size_t)p * P + d];
                dcount[d] += cnt[(size_t)p * P + d];
            }
    }
    int failed = 0;
    if (rc == 0) {
#pragma omp parallel num_threads(a->nthreads) reduction(| : failed)
        {
            double *x = NULL; /* the kept values of one group, sorted or selected */
            size_t xcap = 0;
            unsigned char *one = inplace ? malloc(rr) : NULL; /* a record, until its entry is read */
            if (inplace && !one) failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int p = 0; p < T; p++) {
                gpart *gp = &a->own.p[p];
                size_t *sl = slot + (size_t)p * P;
                kgroups *kg = kgs + (size_t)p * (size_t)a->sp.nvals;
                for (size_t e = 0; e < gp->n && !failed; e++) {
                    if (e + 4 < gp->n) result_prefetch(a, kg, e + 4);
                    uint64_t row = 0;
                    if (o->direct) row = row_of(o, o->cellv[first[p] + e]);
                    const int d = P == 1 ? 0 : o->direct ? row_writer(o, row) : dest[first[p] + e];
                    const uint64_t *rowp = o->direct ? &row : NULL;
                    if (inplace) {
                        if (result_of(o, gp, e, kg, &x, &xcap, rowp, one)) failed = 1;
                        memcpy(gp->ent + e * rr, one, rr); /* entries 0..e are read: e rr + rr <= (e + 1) es */
                    } else if (result_of(o, gp, e, kg, &x, &xcap, rowp, send + sl[d]++ * rr)) {
                        failed = 1;
                    }
                }
                for (int v = 0; a->L.kept && v < a->sp.nvals; v++) {
                    const size_t nk = gp->n && kg[v].end ? (size_t)kg[v].end[gp->n - 1] : 0;
                    spare_put(o, kg[v].x, nk * (kg[v].wide ? 8 : 4));
                    spare_put(o, kg[v].end, gp->n * sizeof *kg[v].end);
                    kg[v].x = NULL, kg[v].end = NULL;
                }
            }
            free(x), free(one);
        }
    }
    if (failed) rc = hb_err_set(HB_EINTERNAL, "aggregate", "out of memory for the kept values of one group");
    spare_put(o, o->cellv, n * sizeof *o->cellv);
    o->cellv = NULL;
    for (size_t i = 0; kgs && i < (size_t)T * (size_t)a->sp.nvals; i++) kgroups_free(&kgs[i]); /* after a failure */
    free(dest), free(first), free(kgs);
    rc = hb_agree(rc);
    if (rc == 0 && inplace) { /* the entries' array, cut to the records, leaves the table */
        gpart *gp = &a->own.p[0];
        unsigned char *r = realloc(gp->ent, n * rr);
        send = r ? r : gp->ent;
        gp->ent = NULL, gp->n = gp->cap = 0;
    }
    /* the groups are results now: their tables go before the records move and sort, and
     * their largest arrays serve for what comes next */
    if (rc == 0) {
        for (int p = 0; p < T; p++) {
            gpart *gp = &a->own.p[p];
            spare_put(o, gp->ent, gp->cap * g->es);
            if (gp->index) spare_put(o, gp->index, (gp->imask + 1) * sizeof *gp->index);
            gp->ent = NULL, gp->index = NULL;
        }
        gtab_free(&a->own);
    }
    *res = NULL;
    *nres = 0;
    if (rc == 0 && P == 1) {
        *res = send, *nres = n;
        send = NULL;
    } else if (rc == 0) {
        size_t *rcount = hb_malloc((size_t)P * 2 * sizeof *rcount), rcap = 0;
        rc = hb_agree(rcount ? 0 : HB_EINTERNAL);
        if (rc == 0) { /* into the largest spare block (grown when too small) */
            size_t got = 0;
            *res = spare_take(o, 0, &got, 1);
            rcap = got / rr;
            if (!rcap) free(*res), *res = NULL;
            rc = agg_alltoallv(send, dcount, rr, (void **)res, &rcap, rcount, rcount + P, nres);
        }
        free(rcount);
    }
    spare_put(o, send, n * rr);
    free(cnt);
    return rc;
}

static const out_ctx *sort_ctx;
static int cmp_result(const void *x, const void *y)
{
    const uint32_t *a = x, *b = y;
    for (int k = 0; k < sort_ctx->a->sp.nkeys; k++)
        if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
    return 0;
}

/* Not collective. Puts the result records in key order: by radix on each record's cell
 * number (its positions, outermost first, as one integer) where the cells fit 64 bits,
 * else by comparing positions. The sorted records are gathered into a new buffer that
 * replaces *res. */
static int sort_results(out_ctx *o, unsigned char **res, size_t nres)
{
    if (nres < 2) return 0; /* *res is NULL when nothing came */
    const int K = o->a->sp.nkeys;
    const size_t rr = o->rr;
    if (o->cells > UINT64_MAX) {
        sort_ctx = o;
        qsort(*res, nres, rr, cmp_result);
        return 0;
    }
    size_t cb, pb;
    uint64_t *cell = spare_take(o, nres * sizeof *cell, &cb, 0);
    uint32_t *perm = spare_take(o, nres * sizeof *perm, &pb, 0);
    int rc = cell && perm && nres <= UINT32_MAX ? 0 : HB_EINTERNAL;
    for (size_t i = 0; rc == 0 && i < nres; i++) {
        const uint32_t *pos = (const uint32_t *)(const void *)(*res + i * rr);
        uint64_t l = pos[0];
        for (int k = 1; k < K; k++) l = l * o->c[k].n + pos[k];
        cell[i] = l;
        perm[i] = (uint32_t)i;
    }
    if (rc == 0) rc = hb_sort_u64_perm(cell, perm, nres) ? HB_EINTERNAL : 0;
    spare_put(o, cell, cb);
    unsigned char *out = rc == 0 ? spare_take(o, nres * rr, NULL, 0) : NULL;
    if (rc == 0 && !out) rc = HB_EINTERNAL;
    if (rc == 0) {
        const unsigned char *in = *res;
        for (size_t i = 0; i < nres; i++) {
            if (i + 8 < nres) __builtin_prefetch(in + (size_t)perm[i + 8] * rr);
            memcpy(out + i * rr, in + (size_t)perm[i] * rr, rr);
        }
        spare_put(o, *res, nres * rr);
        *res = out;
    }
    spare_put(o, perm, pb);
    return rc ? hb_err_set(HB_EINTERNAL, "aggregate", "out of memory sorting %zu groups", nres) : 0;
}

static void describe(const agg *a, int v, int s, char *desc, size_t len, const char **units)
{
    const agg_spec *sp = &a->sp;
    const char *u = a->units[v][0] ? a->units[v] : NULL, *val = sp->val[v];
    static char sq[80];
    switch (sp->st[s]) {
    case ST_COUNT: snprintf(desc, len, "valid values of %s", val), u = "1"; break;
    case ST_SUM: snprintf(desc, len, "exact sum of the valid values of %s; NaN where count is 0", val); break;
    case ST_MEAN: snprintf(desc, len, "mean of %s (exact sum / count); NaN where count is 0", val); break;
    case ST_MIN: snprintf(desc, len, "smallest valid %s; NaN where count is 0", val); break;
    case ST_MAX: snprintf(desc, len, "largest valid %s; NaN where count is 0", val); break;
    case ST_STD: snprintf(desc, len, "sample standard deviation of %s (ddof 1); NaN for fewer than 2", val); break;
    case ST_VAR:
        snprintf(desc, len, "sample variance of %s (ddof 1); NaN for fewer than 2", val);
        if (u) snprintf(sq, sizeof sq, "(%s)^2", u), u = sq;
        break;
    case ST_FIRST: snprintf(desc, len, "%s at the earliest time (ties: the smallest); NaN where count is 0", val); break;
    case ST_LAST: snprintf(desc, len, "%s at the latest time (ties: the largest); NaN where count is 0", val); break;
    case ST_PCT:
        snprintf(desc, len, "%g-th percentile of %s (exact, linear, type 7); NaN where count is 0", sp->arg[s], val);
        break;
    case ST_ABOVE: snprintf(desc, len, "valid values of %s above %g", val, sp->arg[s]), u = "1"; break;
    case ST_BELOW: snprintf(desc, len, "valid values of %s below %g", val, sp->arg[s]), u = "1"; break;
    }
    *units = u;
}

static const char *key_desc(const agg *a, int k, char *buf, size_t len)
{
    const char *tz = a->sp.tz;
    switch (a->sp.kkind[k]) {
    case KEY_HOUR: snprintf(buf, len, "hour of local time (%s), 0-23", tz); break;
    case KEY_DOW: snprintf(buf, len, "ISO day of week of local time (%s), 0 = Monday", tz); break;
    case KEY_DATE: snprintf(buf, len, "local date (%s) as yyyymmdd", tz); break;
    case KEY_WEEK: snprintf(buf, len, "ISO week of local time (%s) as yyyyww", tz); break;
    case KEY_MONTH: snprintf(buf, len, "local month (%s) as yyyymm", tz); break;
    case KEY_QUARTER: snprintf(buf, len, "local quarter (%s) as yyyyq", tz); break;
    case KEY_YEAR: snprintf(buf, len, "local year (%s)", tz); break;
    case KEY_COLUMN: {
        char cn[400];
        agg_colname(a, a->sp.key[k], cn, sizeof cn);
        snprintf(buf, len, "observed values of the key column %s, ascending", cn);
        break;
    }
    }
    return buf;
}

/* Collective. Writes key k's column for the n rows of this rank whose positions are
 * pos[0], pos[stride], ..., rows [off, off + n) of total (table layout), or its
 * coordinates as a scale (dense: pos NULL). */
static int write_key(out_ctx *o, hb_out *out, int k, const uint32_t *pos, size_t stride, size_t n, uint64_t off,
                     uint64_t total)
{
    const void *res = pos;
    const agg *a = o->a;
    const coord *c = &o->c[k];
    const int str = a->ktype[k] == KT_STRING;
    char path[128], desc[512];
    snprintf(path, sizeof path, "/aggregate/%s", a->sp.key[k]);
    size_t m = res ? n : (hb_rank == 0 ? c->n : 0);
    size_t bufb;
    void *buf = spare_take(o, (m ? m : 1) * (str ? c->width : 8), &bufb, 0);
    HB_CALL(hb_agree(buf ? 0 : HB_EINTERNAL));
    for (size_t i = 0; i < m; i++) {
        uint32_t p = res ? pos[i * stride] : (uint32_t)i;
        if (str) {
            char *b = (char *)buf + i * c->width;
            size_t l = c->loff[p + 1] - c->loff[p];
            memset(b, 0, c->width);
            memcpy(b, c->lbytes + c->loff[p], l);
        } else if (res) {
            ((int64_t *)buf)[i] = c->v[p];
        }
    }
    int rc;
    if (!str && (res ? total : c->n) == 0) {
        /* no group at all: an empty column (HDF5 writes no zero-sized selection) */
        uint64_t dims[1] = {0};
        rc = hb_out_dataset(out, path, HB_I64, 1, dims, NULL, NULL);
    } else if (!res && !str) {
        rc = hb_out_scale(out, path, a->sp.key[k], HB_I64, c->n, c->v, NULL);
    } else if (!res) {
        rc = hb_out_strings(out, path, c->n, 0, m, c->width, buf, a->sp.key[k]);
    } else if (str) {
        rc = hb_out_strings(out, path, total, off, n, c->width, buf, NULL);
    } else {
        uint64_t dims[1] = {total};
        rc = hb_out_write(out, path, HB_I64, 1, dims, off, n, buf, NULL, NULL);
    }
    spare_put(o, buf, bufb);
    HB_CALL(rc);
    /* the netCDF convention for character data: xarray decodes the labels to str */
    if (str) HB_CALL(hb_out_attr_str(out, path, "_Encoding", "utf-8"));
    return hb_out_attr_str(out, path, "description", key_desc(a, k, desc, sizeof desc));
}

/* Collective. The dense layout: coordinates as scales, then one array per value x stat,
 * this rank writing its rows of the first key. */
static int write_dense(out_ctx *o, hb_out *out, const unsigned char *res, size_t nres)
{
    agg *a = o->a;
    const agg_spec *sp = &a->sp;
    const int K = sp->nkeys;
    uint64_t dims[AGG_MAX_KEYS];
    size_t inner = 1;
    for (int k = 0; k < K; k++) dims[k] = o->c[k].n, inner *= k ? o->c[k].n : 1;
    for (int k = 0; k < K; k++) HB_CALL(write_key(o, out, k, NULL, 0, 0, 0, 0));
    const uint64_t r0 = dims[0] * (uint64_t)hb_rank / (uint64_t)hb_size;
    const uint64_t r1 = dims[0] * (uint64_t)(hb_rank + 1) / (uint64_t)hb_size;
    const size_t cells = (size_t)(r1 - r0) * inner, cells_all = (size_t)dims[0] * inner;
    unsigned char *block = hb_malloc((cells ? cells : 1) * 8);
    size_t *at = hb_malloc((nres ? nres : 1) * sizeof *at);
    HB_CALL(hb_agree(block && at ? 0 : HB_EINTERNAL));
    for (size_t i = 0; i < nres; i++) {
        const uint32_t *pos = (const uint32_t *)(const void *)(res + i * o->rr);
        size_t l = (size_t)(pos[0] - r0);
        for (int k = 1; k < K; k++) l = l * o->c[k].n + pos[k];
        at[i] = l;
    }
    int rc = 0;
    for (int v = 0; v < sp->nvals && rc == 0; v++)
        for (int s = 0; s < sp->nstats && rc == 0; s++) {
            const int isc = stat_is_count(sp->st[s]);
            if (isc) memset(block, 0, cells * 8);
            else
                for (size_t i = 0; i < cells; i++) ((double *)(void *)block)[i] = NAN;
            const size_t col = o->pos_bytes + 8 * ((size_t)v * (size_t)sp->nstats + (size_t)s);
            for (size_t i = 0; i < nres; i++) memcpy(block + at[i] * 8, res + i * o->rr + col, 8);
            char path[200], desc[400];
            const char *units;
            snprintf(path, sizeof path, "/aggregate/%s_%s", sp->val[v], sp->stname[s]);
            describe(a, v, s, desc, sizeof desc, &units);
            if (cells_all == 0) { /* no group: empty arrays, and no scales to attach */
                rc = hb_out_dataset(out, path, isc ? HB_U64 : HB_F64, K, dims, units, desc);
                continue;
            }
            rc = hb_out_write(out, path, isc ? HB_U64 : HB_F64, K, dims, r0, r1 - r0, block, units, desc);
            for (int k = 0; k < K && rc == 0; k++) {
                char scale[128];
                snprintf(scale, sizeof scale, "/aggregate/%s", sp->key[k]);
                rc = hb_out_attach(out, path, k, scale);
            }
        }
    free(block), free(at);
    return rc;
}

/* Collective. Value v's statistic s: this rank's nres rows of the column (8 bytes each)
 * at row off of total. */
static int write_stat(out_ctx *o, hb_out *out, int v, int s, const unsigned char *col, uint64_t off, size_t nres,
                      uint64_t total)
{
    const agg_spec *sp = &o->a->sp;
    char path[200], desc[400];
    const char *units;
    snprintf(path, sizeof path, "/aggregate/%s_%s", sp->val[v], sp->stname[s]);
    describe(o->a, v, s, desc, sizeof desc, &units);
    uint64_t dims[1] = {total};
    hb_elem t = stat_is_count(sp->st[s]) ? HB_U64 : HB_F64;
    return total ? hb_out_write(out, path, t, 1, dims, off, nres, col, units, desc)
                 : hb_out_dataset(out, path, t, 1, dims, units, desc);
}

/* Collective. The table layout by rows (direct): each record's stats go straight to its
 * row of every column, and the keys come from the cells of this rank's rows, in order. */
static int write_rows(out_ctx *o, hb_out *out, unsigned char **resp, size_t nres)
{
    agg *a = o->a;
    const agg_spec *sp = &a->sp;
    const int K = sp->nkeys, nd = o->nd;
    const uint64_t off = first_row(o, hb_rank), total = o->rows;
    int rc = nres == first_row(o, hb_rank + 1) - off ? 0 : HB_EINTERNAL;
    size_t cb = 0, pb = 0;
    unsigned char *cols = rc == 0 ? spare_take(o, (nres ? nres : 1) * 8 * (size_t)nd, &cb, 0) : NULL;
    uint32_t *pos = rc == 0 ? spare_take(o, (nres ? nres : 1) * sizeof *pos, &pb, 0) : NULL;
    if (rc == 0 && (!cols || !pos)) rc = HB_EINTERNAL;
    const unsigned char *res = *resp;
    for (size_t i = 0; rc == 0 && i < nres; i++) {
        const unsigned char *r = res + i * o->rr;
        uint64_t row;
        memcpy(&row, r, 8);
        row -= off;
        if (row >= nres) {
            rc = HB_EINTERNAL;
            break;
        }
        for (int d = 0; d < nd; d++) memcpy(cols + ((size_t)d * nres + row) * 8, r + o->pos_bytes + 8 * (size_t)d, 8);
    }
    if (rc == HB_EINTERNAL) rc = hb_err_set(HB_EINTERNAL, "aggregate", "the rows of the table do not match its groups");
    free(*resp);
    *resp = NULL;
    spares_trim(o, nres);
    rc = hb_agree(rc);
    if (rc) {
        spare_put(o, cols, cb), spare_put(o, pos, pb);
        return rc;
    }
    /* this rank's first cell: the word that holds its first row, then that row's bit */
    size_t w0 = 0, lo = 0, hi = o->nwords;
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (o->before[mid] <= off) lo = mid;
        else hi = mid;
    }
    w0 = lo;
    for (int k = 0; k < K && rc == 0; k++) {
        uint64_t inner = 1;
        for (int j = k + 1; j < K; j++) inner *= o->c[j].n;
        size_t w = w0;
        uint64_t bw = o->bits[w];
        for (uint64_t skip = off - o->before[w]; skip > 0; skip--) bw &= bw - 1;
        for (size_t i = 0; i < nres; i++) {
            while (!bw) bw = o->bits[++w];
            const uint64_t cell = (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bw);
            bw &= bw - 1;
            pos[i] = (uint32_t)(cell / inner % o->c[k].n);
        }
        rc = write_key(o, out, k, pos, 1, nres, off, total);
    }
    spare_put(o, pos, pb);
    for (int v = 0; v < sp->nvals && rc == 0; v++)
        for (int s = 0; s < sp->nstats && rc == 0; s++)
            rc = write_stat(o, out, v, s, cols + (size_t)(v * sp->nstats + s) * nres * 8, off, nres, total);
    spare_put(o, cols, cb);
    return rc;
}

/* Collective. The table layout: one row per group in key order, key columns first. */
static int write_table(out_ctx *o, hb_out *out, unsigned char **resp, size_t nres)
{
    agg *a = o->a;
    const agg_spec *sp = &a->sp;
    if (o->direct) return write_rows(o, out, resp, nres);
    HB_CALL(hb_agree(sort_results(o, resp, nres)));
    /* never NULL: write_key takes a NULL res for the dense layout's coordinates, and a
     * rank that read no row holds none (it would make other collective calls: a hang) */
    static unsigned char no_rows;
    unsigned char *res = *resp ? *resp : &no_rows;
    uint64_t mine = nres, off = 0, total = 0;
    MPI_Exscan(&mine, &off, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (hb_rank == 0) off = 0;
    MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    size_t colb;
    unsigned char *col = spare_take(o, (nres ? nres : 1) * 8, &colb, 0);
    HB_CALL(hb_agree(col ? 0 : HB_EINTERNAL));
    spares_trim(o, nres);
    int rc = 0;
    for (int k = 0; k < sp->nkeys && rc == 0; k++)
        rc = write_key(o, out, k, res ? (const uint32_t *)(const void *)res + k : NULL, o->rr / 4, nres, off, total);
    for (int v = 0; v < sp->nvals && rc == 0; v++)
        for (int s = 0; s < sp->nstats && rc == 0; s++) {
            const size_t c = o->pos_bytes + 8 * ((size_t)v * (size_t)sp->nstats + (size_t)s);
            for (size_t i = 0; i < nres; i++) memcpy(col + i * 8, res + i * o->rr + c, 8);
            rc = write_stat(o, out, v, s, col, off, nres, total);
        }
    spare_put(o, col, colb);
    return rc;
}

static int write_attrs(out_ctx *o, hb_out *out, uint64_t groups)
{
    agg *a = o->a;
    const agg_spec *sp = &a->sp;
    const int V = sp->nvals;
    uint64_t c[2 + 2 * AGG_MAX_VALUES] = {a->rows_total, a->rows_missing};
    for (int v = 0; v < V; v++) c[2 + v] = a->valid[v], c[2 + V + v] = a->invalid[v];
    MPI_Allreduce(MPI_IN_PLACE, c, 2 + 2 * V, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    const char *g = "/aggregate";
    char name[128], list[2048];
    HB_CALL(hb_out_attr_u64(out, g, "rows_total", c[0]));
    HB_CALL(hb_out_attr_u64(out, g, "rows_missing_key", c[1]));
    for (int v = 0; v < V; v++) {
        snprintf(name, sizeof name, "rows_valid_%s", sp->val[v]);
        HB_CALL(hb_out_attr_u64(out, g, name, c[2 + v]));
        snprintf(name, sizeof name, "rows_invalid_%s", sp->val[v]);
        HB_CALL(hb_out_attr_u64(out, g, name, c[2 + V + v]));
    }
    HB_CALL(hb_out_attr_u64(out, g, "groups", groups));
    size_t l = 0;
    list[0] = '\0';
    for (int k = 0; k < sp->nkeys; k++) l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", k ? ", " : "", sp->key[k]);
    HB_CALL(hb_out_attr_str(out, g, "by", list));
    l = 0;
    for (int v = 0; v < V; v++) l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", v ? ", " : "", sp->val[v]);
    HB_CALL(hb_out_attr_str(out, g, "values", list));
    l = 0;
    for (int s = 0; s < sp->nstats; s++)
        l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", s ? ", " : "", sp->stname[s]);
    HB_CALL(hb_out_attr_str(out, g, "stats", list));
    HB_CALL(hb_out_attr_str(out, g, "timezone", sp->tz));
    HB_CALL(hb_out_attr_str(out, g, "layout", sp->layout == LAYOUT_TABLE ? "table" : "dense"));
    if (sp->has_time) {
        HB_CALL(hb_out_attr_str(out, g, "time", sp->time));
        HB_CALL(hb_out_attr_str(out, g, "time_unit", sp->unit_name));
    }
    HB_INFO("aggregate: %llu rows, %llu without a key; %llu groups", (unsigned long long)c[0], (unsigned long long)c[1],
            (unsigned long long)groups);
    return 0;
}

int agg_write(agg *a, hb_out *out)
{
    const agg_spec *sp = &a->sp;
    const int K = sp->nkeys;
    out_ctx o = {.a = a};
    int rc = 0;
    for (int k = 0; k < K && rc == 0; k++) rc = gather_coord(a, k, &o.c[k]);
    o.nd = sp->nvals * sp->nstats;
    o.pos_bytes = ((size_t)K * 4 + 7) / 8 * 8;
    o.rr = o.pos_bytes + 8 * (size_t)o.nd;
    o.cells = 1;
    for (int k = 0; k < K && rc == 0; k++) o.cells *= o.c[k].n;
    uint64_t groups = gtab_entries(&a->own);
    if (rc == 0) MPI_Allreduce(MPI_IN_PLACE, &groups, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    /* the dense layout's size is known now, before any of it is allocated */
    if (rc == 0 && sp->layout == LAYOUT_DENSE) {
        double bytes = (double)o.cells * 8.0 * (double)o.nd;
        char dims[600], what[800], remedy[160], g[32];
        size_t l = 0;
        for (int k = 0; k < K; k++)
            l += (size_t)snprintf(dims + l, sizeof dims - l, "%s%s %zu", k ? " x " : "", sp->key[k], o.c[k].n);
        snprintf(what, sizeof what, "layout = dense over the observed keys (%s = %.4g cells, %d arrays)", dims,
                 (double)o.cells, o.nd);
        snprintf(remedy, sizeof remedy, "use layout = table (one row per non-empty group, %s rows)",
                 hb_fmt_count(g, groups));
        char where[600];
        snprintf(where, sizeof where, "%s:%s", a->src, sp->table);
        rc = hb_mem_reserve(bytes, where, what, NULL, remedy);
    }
    rc = hb_agree(rc);
    o.rows = groups;
    unsigned char *res = NULL;
    size_t nres = 0;
    const double t0 = hb_now();
    if (rc == 0) rc = results(&o, &res, &nres);
    const double t1 = hb_now();
    if (rc == 0) rc = hb_agree(hb_out_group(out, "/aggregate"));
    if (rc == 0) rc = sp->layout == LAYOUT_TABLE ? write_table(&o, out, &res, nres) : write_dense(&o, out, res, nres);
    const double t2 = hb_now();
    if (rc == 0) rc = write_attrs(&o, out, groups);
    HB_DEBUG("aggregate: finalize on rank 0: results %.2fs, writing %.2fs, attributes %.2fs", t1 - t0, t2 - t1, hb_now() - t2);
    free(res);
    spares_free(&o);
    free(o.bits), free(o.before), free(o.cellv);
    for (int k = 0; k < K; k++) free(o.c[k].v), free(o.c[k].rank), free(o.c[k].loff), free(o.c[k].lbytes), free(o.c[k].dir);
    return rc;
}
