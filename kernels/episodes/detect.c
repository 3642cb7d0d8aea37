/* The episodes kernel's finalize: every owned device's readings in (time, value) order,
 * its episodes and its period figures, then /episodes.
 *
 * The owner orders its runs by (device, first time) (ep_order_build), decodes each
 * device's readings into a thread's scratch, orders them by (time, value) where they are
 * not in order yet (ep_series), and walks them once (OpenMP over devices): the period
 * figures and the derived series when derive = rate in one loop, the median and MAD for
 * deviation:K (exact order statistics), the episodes. Readings are processed in an order
 * that depends on the data alone, so the sums have the same bits at any rank or thread
 * count.
 *
 * The output is in device order (integers ascending, strings by bytes), which the hash
 * owners do not follow: every rank learns the sorted list of all devices and of all
 * periods, and the results of device g go to the rank that owns g in contiguous ranges
 * (hb_owner_of), which writes its rows of the episode table and of the period arrays at
 * offsets in rank order. */
#include "kernels/episodes/internal.h"

#include "core/hb.h"
#include "kernels/common/order.h"
#include "kernels/common/period.h"
#include "kernels/common/sort.h"

#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One episode, from the owner to the writer of its device. */
typedef struct ep_row {
    uint64_t g; /* the device: local index at the owner, then its place in the sorted list */
    int64_t start, end;
    uint64_t readings;
    double peak, mean;
} ep_row;

/* One device's figures in one period. */
typedef struct per_row {
    uint64_t g;
    int64_t period; /* the code, then its place in the sorted list */
    uint64_t episodes, readings;
    double seconds, mean;
} per_row;

/* Per thread: its results and scratch. */
typedef struct worker {
    ep_row *ep;
    size_t nep, epcap;
    per_row *per;
    size_t nper, percap;
    int64_t *dt;
    double *dx, *tmp;
    size_t dcap, dxcap, tcap;
    ep_scratch sc;
    int failed;
} worker;

static int cmp_ep(const void *a, const void *b)
{
    const ep_row *x = a, *y = b;
    if (x->g != y->g) return x->g < y->g ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* How far x lies beyond the rule's threshold (> 0 breaks it); m and w are the device's
 * median and K MAD for deviation. */
static inline double beyond(const ep_spec *sp, double x, double m, double w)
{
    switch (sp->rule) {
    case RULE_ABOVE: return x - sp->lo;
    case RULE_BELOW: return sp->lo - x;
    case RULE_OUTSIDE: return sp->lo - x > x - sp->hi ? sp->lo - x : x - sp->hi;
    default: return fabs(x - m) - w;
    }
}

/* The first i' >= i below m whose x[i'] breaks the rule (beyond > 0), or m: blocks of 8
 * tested without a branch (vector compares), the rule chosen once per scan. */
static size_t next_start(const ep_spec *sp, const double *x, size_t i, size_t m, double med, double w)
{
    const double lo = sp->lo, hi = sp->hi;
#define SCAN(B)                                                                                                        \
    do {                                                                                                               \
        for (; i + 8 <= m; i += 8) {                                                                                   \
            int any = 0;                                                                                               \
            for (int k = 0; k < 8; k++) {                                                                              \
                const double xx = x[i + k];                                                                            \
                any |= (B) > 0;                                                                                        \
            }                                                                                                          \
            if (any) break;                                                                                            \
        }                                                                                                              \
        for (; i < m; i++) {                                                                                           \
            const double xx = x[i];                                                                                    \
            if ((B) > 0) return i;                                                                                     \
        }                                                                                                              \
        return m;                                                                                                      \
    } while (0)
    switch (sp->rule) {
    case RULE_ABOVE: SCAN(xx - lo);
    case RULE_BELOW: SCAN(lo - xx);
    case RULE_OUTSIDE: SCAN(lo - xx > xx - hi ? lo - xx : xx - hi);
    default: SCAN(fabs(xx - med) - w);
    }
#undef SCAN
}

/* The period code of local day d: yyyymmdd, ISO yyyyww or yyyymm. */
static int64_t period_code(int kind, int64_t d)
{
    return kind == PERIOD_WEEK ? hb_period_week(d) : kind == PERIOD_MONTH ? hb_period_month(d) : hb_period_date(d);
}

/* The local day of time t (in units of unit per second), and the times [*lo, *hi) around
 * t that have the same local day: within t's UTC day and on t's side of that day's offset
 * change, between two local midnights. Readings in time order then leave it about once a
 * day, so the calendar's divisions are paid per day, not per reading. */
static int64_t local_day(const hb_tzmap *m, int64_t unit, int64_t t, int64_t *lo, int64_t *hi)
{
    const int64_t ts = hb_floordiv(t, unit), u = hb_floordiv(ts, 86400), u0 = u * 86400;
    const hb_tzday *d = &m->days[u - m->day0];
    const int32_t sec = (int32_t)(ts - u0);
    int64_t a = u0, b = u0 + 86400, off = d->off_b; /* hb_tzmap_local's offset of ts */
    if (sec < d->trans) b = u0 + d->trans, off = d->off_a;
    else a = u0 + d->trans;
    const int64_t day = hb_floordiv(ts + off, 86400), la = day * 86400 - off;
    if (la > a) a = la;
    if (la + 86400 < b) b = la + 86400;
    *lo = a * unit, *hi = b * unit;
    return day;
}

/* Not collective, thread-safe per worker. Grows *p (of *cap elements) to need; marks
 * the worker failed when out of memory. */
static int wgrow(worker *w, void **p, size_t *cap, size_t need, size_t esz)
{
    if (hb_grow(p, cap, need, esz)) return w->failed = 1, -1;
    return 0;
}

/* The period figures of a device as they accumulate: the readings go in time order, so
 * a period is almost always the last one seen. */
static per_row *period_of(worker *w, size_t first, uint64_t g, int64_t code)
{
    for (size_t i = w->nper; i > first; i--)
        if (w->per[i - 1].period == code) return &w->per[i - 1];
    if (wgrow(w, (void **)&w->per, &w->percap, w->nper + 1, sizeof *w->per)) return NULL;
    per_row *p = &w->per[w->nper++];
    *p = (per_row){g, code, 0, 0, 0, 0};
    return p;
}

/* Not collective, thread-safe per worker. The episodes and period figures of device g,
 * whose n readings (t, v) are in (time, value) order. */
static void device(const ep_state *s, worker *w, uint64_t g, const int64_t *t, const double *v, size_t n)
{
    const ep_spec *sp = &s->sp;
    const int64_t unit = sp->unit, gap = (int64_t)floor(sp->max_gap * (double)unit);
    const hb_tzmap *tzm = &s->tzm;
    const size_t first = w->nper;
    /* the series the rule applies to: the values, or their rates, derived in the loop of
     * the periodic figures (independent work beside that loop's chain of additions) */
    const int rate = sp->rate;
    if (rate) {
        if (wgrow(w, (void **)&w->dt, &w->dcap, n, sizeof *w->dt)) return;
        if (wgrow(w, (void **)&w->dx, &w->dxcap, n, sizeof *w->dx)) return;
    }
    int64_t *rt = w->dt;
    double *rx = w->dx;
    size_t m = 0;
    const double fu = (double)unit;
    /* the periodic figures, of the readings as they are */
    int64_t lastday = INT64_MIN, code = 0, lo = 0, hi = 0; /* [lo, hi): the times of lastday */
    per_row *cur = NULL;
    double sum = 0;
    uint64_t cnt = 0; /* readings of cur not yet added to it */
    for (size_t i = 0; i < n; i++) {
        if (rate && i > 0) {
            /* (v_i - v_i-1) / ((t_i - t_i-1) / unit), for 0 < t_i - t_i-1 <= max_gap (no
             * rate across a duplicate time or a gap): a division by 1.0 returns its
             * dividend exactly, so a step of one second (the common one) costs no division,
             * and with seconds as the unit the step is the divisor itself */
            const int64_t d = t[i] - t[i - 1];
            if (d > 0 && d <= gap) {
                const double dv = v[i] - v[i - 1];
                rt[m] = t[i];
                rx[m++] = d == unit ? dv : unit == 1 ? dv / (double)d : dv / ((double)d / fu);
            }
        }
        if (t[i] >= lo && t[i] < hi) {
            cnt++;
            sum += v[i];
            continue;
        }
        int64_t day = local_day(tzm, unit, t[i], &lo, &hi);
        if (day != lastday) {
            lastday = day;
            int64_t c = period_code(sp->period, day);
            if (!cur || c != code) {
                if (cur) cur->mean += sum, cur->readings += cnt;
                code = c, sum = 0, cnt = 0;
                if (!(cur = period_of(w, first, g, c))) return;
            }
        }
        cnt++;
        sum += v[i];
    }
    if (cur) cur->mean += sum, cur->readings += cnt;
    for (size_t i = first; i < w->nper; i++) w->per[i].mean /= (double)w->per[i].readings;

    const int64_t *st = rate ? rt : t;
    const double *sx = rate ? rx : v;
    if (!rate) m = n;
    double med = 0, width = 0;
    if (sp->rule == RULE_DEVIATION && m > 0) {
        if (wgrow(w, (void **)&w->tmp, &w->tcap, m, sizeof *w->tmp)) return;
        memcpy(w->tmp, sx, m * sizeof *sx);
        med = hb_percentile_select(w->tmp, m, 50);
        for (size_t i = 0; i < m; i++) w->tmp[i] = fabs(sx[i] - med);
        width = sp->k * hb_percentile_select(w->tmp, m, 50);
    }
    const double h = sp->hysteresis;
    for (size_t i = next_start(sp, sx, 0, m, med, width); i < m; i = next_start(sp, sx, i, m, med, width)) {
        size_t j = i;
        double best = beyond(sp, sx[i], med, width), peak = sx[i], esum = sx[i];
        while (j + 1 < m && st[j + 1] - st[j] <= gap) {
            double b = beyond(sp, sx[j + 1], med, width);
            if (!(b > -h)) break;
            j++;
            esum += sx[j];
            if (b > best) best = b, peak = sx[j];
        }
        double dur = (double)(st[j] - st[i]) / (double)unit;
        if (dur >= sp->min_duration) {
            if (wgrow(w, (void **)&w->ep, &w->epcap, w->nep + 1, sizeof *w->ep)) return;
            w->ep[w->nep++] = (ep_row){g, st[i], st[j], (uint64_t)(j - i + 1), peak, esum / (double)(j - i + 1)};
            int64_t day = hb_floordiv(hb_tzmap_local(tzm, hb_floordiv(st[i], unit)), 86400);
            per_row *p = period_of(w, first, g, period_code(sp->period, day));
            if (!p) return;
            p->episodes++;
            p->seconds += dur;
        }
        i = j + 1;
    }
}

/* A run in the order of the devices: its device, first time, place and length. */
typedef struct run_key {
    uint64_t dev;
    int64_t t0;
    uint64_t at, n;
} run_key;

static int cmp_run(const void *a, const void *b)
{
    const run_key *x = a, *y = b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->t0 != y->t0) return x->t0 < y->t0 ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

int ep_order_build(const ep_cols *c, ep_order *o)
{
    memset(o, 0, sizeof *o);
    const size_t R = c->nrun;
    run_key *k = hb_malloc((R ? R : 1) * sizeof *k);
    o->at = hb_malloc((R ? R : 1) * sizeof *o->at);
    o->len = hb_malloc((R ? R : 1) * sizeof *o->len);
    o->t0 = hb_malloc((R ? R : 1) * sizeof *o->t0);
    o->dev = hb_malloc((R ? R : 1) * sizeof *o->dev);
    if (!k || !o->at || !o->len || !o->t0 || !o->dev) {
        free(k), ep_order_free(o);
        return hb_err_set(HB_EINTERNAL, "episodes", "out of memory ordering %zu runs of readings", R);
    }
    for (size_t r = 0, at = 0; r < R; at += c->run[r].n, r++) k[r] = (run_key){c->run[r].dev, c->run[r].t0, at, c->run[r].n};
    /* runs come sorted when every device has one run: then skip the sort */
    size_t r = 1;
    while (r < R && cmp_run(&k[r - 1], &k[r]) < 0) r++;
    if (r < R) qsort(k, R, sizeof *k, cmp_run);
    for (r = 0; r < R; r++) {
        if (r == 0 || k[r].dev != k[r - 1].dev) o->dev[o->nd++] = (ep_dev){k[r].dev, r, 0, 0};
        ep_dev *d = &o->dev[o->nd - 1];
        d->nr++, d->n += k[r].n;
        o->at[r] = k[r].at, o->len[r] = k[r].n, o->t0[r] = k[r].t0;
    }
    free(k);
    return 0;
}

void ep_order_free(ep_order *o)
{
    free(o->dev), free(o->at), free(o->len), free(o->t0);
    memset(o, 0, sizeof *o);
}

void ep_scratch_free(ep_scratch *sc)
{
    free(sc->t), free(sc->v), free(sc->key);
    memset(sc, 0, sizeof *sc);
}

/* Whether n readings are in (time, value) order. */
static int in_order(const int64_t *t, const double *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (t[i - 1] > t[i] || (t[i - 1] == t[i] && v[i - 1] > v[i])) return 0;
    return 1;
}

/* The bits of a finite double as an unsigned integer of the same order (-0 is never
 * here: map makes it +0). */
static inline uint64_t ordered_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    return u >> 63 ? ~u : u | (1ULL << 63);
}

/* Not collective. Orders n readings by (time, value): insertion for a few, else two
 * stable radix sorts (by value, then by time) of (t, v) pairs in key[n..3n). */
static int sort_tv(ep_scratch *sc, int64_t *t, double *v, size_t n)
{
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            int64_t a = t[i];
            double b = v[i];
            size_t j = i;
            for (; j > 0 && (t[j - 1] > a || (t[j - 1] == a && v[j - 1] > b)); j--) t[j] = t[j - 1], v[j] = v[j - 1];
            t[j] = a, v[j] = b;
        }
        return 0;
    }
    if (hb_grow((void **)&sc->key, &sc->kcap, 3 * n, sizeof *sc->key)) return HB_EINTERNAL;
    uint64_t *key = sc->key, *rec = sc->key + n;
    for (size_t i = 0; i < n; i++) {
        memcpy(&rec[2 * i], &t[i], 8), memcpy(&rec[2 * i + 1], &v[i], 8);
        key[i] = ordered_bits(v[i]);
    }
    if (hb_sort_records_u64(key, rec, 16, n)) return HB_EINTERNAL;
    for (size_t i = 0; i < n; i++) key[i] = rec[2 * i] ^ (1ULL << 63);
    if (hb_sort_records_u64(key, rec, 16, n)) return HB_EINTERNAL;
    for (size_t i = 0; i < n; i++) memcpy(&t[i], &rec[2 * i], 8), memcpy(&v[i], &rec[2 * i + 1], 8);
    return 0;
}

int ep_series(const ep_cols *c, const ep_order *o, size_t d, ep_scratch *sc, const int64_t **t, const double **v)
{
    const ep_dev *e = &o->dev[d];
    if (hb_grow((void **)&sc->t, &sc->cap, e->n, sizeof *sc->t)) return HB_EINTERNAL;
    double *nv = hb_realloc(sc->v, sc->cap * sizeof *nv);
    if (!nv) return HB_EINTERNAL;
    sc->v = nv;
    const size_t R = e->r0 + e->nr;
    for (size_t r = e->r0, p = 0; r < R; p += o->len[r], r++) {
        const int64_t t0 = o->t0[r];
        int64_t *ot = sc->t + p;
        double *ov = sc->v + p;
        const size_t m = o->len[r];
        if (c->tsz == 4) {
            const int32_t *dt = (const int32_t *)c->dt + o->at[r];
            for (size_t i = 0; i < m; i++) ot[i] = t0 + dt[i];
        } else {
            const int64_t *dt = (const int64_t *)c->dt + o->at[r];
            for (size_t i = 0; i < m; i++) ot[i] = t0 + dt[i];
        }
        if (c->vsz == 4) {
            const float *f = (const float *)c->v + o->at[r];
            for (size_t i = 0; i < m; i++) ov[i] = (double)f[i];
        } else {
            memcpy(ov, (const double *)c->v + o->at[r], m * sizeof *ov);
        }
    }
    if (!in_order(sc->t, sc->v, e->n)) HB_CALL(sort_tv(sc, sc->t, sc->v, e->n));
    *t = sc->t, *v = sc->v;
    return 0;
}

/* The sorted list of every rank's devices. */
typedef struct devlist {
    size_t n;
    int64_t *id;          /* integer ids, ascending */
    char *bytes;          /* string ids */
    uint64_t *off, *hash; /* string i is bytes[off[i] .. off[i+1]), hash[i] its key */
    size_t width;         /* the longest string, at least 1 */
    size_t *order;        /* string ids: positions in sorted order */
} devlist;

static const devlist *sort_ctx; /* qsort has no context argument */

static int cmp_str(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const devlist *L = sort_ctx;
    size_t li = L->off[i + 1] - L->off[i], lj = L->off[j + 1] - L->off[j];
    int c = memcmp(L->bytes + L->off[i], L->bytes + L->off[j], li < lj ? li : lj);
    return c ? c : li < lj ? -1 : li > lj;
}

/* Collective. Every rank's n integers, gathered on every rank: *all of *total. */
static int allgather_i64(const int64_t *mine, size_t n, int64_t **all, size_t *total)
{
    return hb_allgather(mine, n, sizeof *mine, (void **)all, total, "episodes");
}

/* Collective. The sorted list of all devices; keys[nd] are this rank's. */
static int list_devices(ep_state *s, const uint64_t *keys, size_t nd, devlist *L)
{
    memset(L, 0, sizeof *L);
    L->width = 1;
    if (!s->str_dev) {
        HB_CALL(allgather_i64((const int64_t *)(const void *)keys, nd, &L->id, &L->n));
        qsort(L->id, L->n, sizeof *L->id, hb_cmp_i64);
        return 0;
    }
    /* strings: gather the lengths with the hashes, then the bytes */
    int64_t *mine = hb_malloc((2 * nd + 1) * sizeof *mine);
    size_t nb = 0;
    int rc = mine ? 0 : HB_EINTERNAL;
    for (size_t d = 0; d < nd && rc == 0; d++) {
        size_t j = ep_dict_find(&s->names, keys[d]);
        if (j == (size_t)-1) rc = hb_err_set(HB_EINTERNAL, "episodes", "a device's id string is missing");
        else mine[2 * d] = (int64_t)keys[d], mine[2 * d + 1] = s->names.len[j], nb += s->names.len[j];
    }
    char *mb = rc ? NULL : hb_malloc(nb + 1);
    if (rc == 0 && !mb) rc = HB_EINTERNAL;
    for (size_t d = 0, p = 0; d < nd && rc == 0; d++) {
        size_t j = ep_dict_find(&s->names, keys[d]);
        memcpy(mb + p, s->names.bytes + s->names.off[j], s->names.len[j]);
        p += s->names.len[j];
    }
    rc = hb_agree(rc);
    int64_t *all = NULL;
    size_t tot = 0;
    if (rc == 0) rc = allgather_i64(mine, 2 * nd, &all, &tot);
    free(mine);
    if (rc) return free(mb), rc;
    L->n = tot / 2;
    L->hash = hb_malloc((L->n + 1) * sizeof *L->hash);
    L->off = hb_malloc((L->n + 1) * sizeof *L->off);
    L->order = hb_malloc((L->n + 1) * sizeof *L->order);
    int *cnt = hb_malloc((size_t)hb_size * sizeof *cnt), *dis = hb_malloc((size_t)hb_size * sizeof *dis);
    rc = L->hash && L->off && L->order && cnt && dis && nb < (size_t)INT32_MAX ? 0 : HB_EINTERNAL;
    if (rc == 0) {
        L->off[0] = 0;
        for (size_t i = 0; i < L->n; i++) {
            L->hash[i] = (uint64_t)all[2 * i];
            L->off[i + 1] = L->off[i] + (uint64_t)all[2 * i + 1];
            if ((size_t)all[2 * i + 1] > L->width) L->width = (size_t)all[2 * i + 1];
            L->order[i] = i;
        }
        L->bytes = hb_malloc(L->off[L->n] + 1);
        if (!L->bytes || L->off[L->n] >= (uint64_t)INT32_MAX) rc = HB_EINTERNAL;
    }
    free(all);
    rc = hb_agree(rc);
    if (rc == 0) {
        int me = (int)nb;
        MPI_Allgather(&me, 1, MPI_INT, cnt, 1, MPI_INT, MPI_COMM_WORLD);
        int tot2 = 0;
        for (int r = 0; r < hb_size; r++) dis[r] = tot2, tot2 += cnt[r];
        MPI_Allgatherv(mb, me, MPI_CHAR, L->bytes, cnt, dis, MPI_CHAR, MPI_COMM_WORLD);
        sort_ctx = L;
        qsort(L->order, L->n, sizeof *L->order, cmp_str);
    }
    free(mb), free(cnt), free(dis);
    return rc;
}

/* The place in the sorted list of this rank's device key k. */
static size_t place_of(const devlist *L, uint64_t k, const size_t *rank_of_hash, const uint64_t *hsorted)
{
    if (!L->bytes) {
        size_t lo = 0, hi = L->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (L->id[mid] < (int64_t)k) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
    size_t lo = 0, hi = L->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (hsorted[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    return rank_of_hash[lo];
}

typedef struct hpair {
    uint64_t h;
    size_t place;
} hpair;

static int cmp_hpair(const void *a, const void *b)
{
    const hpair *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* Collective. Sends n rows of esz bytes to the rank that writes row i's device (dest
 * from the row's first word, a device place of nd) and returns what arrives in *got. */
static int to_writers(const void *rows, size_t n, size_t esz, size_t nd, void **got, size_t *ngot)
{
    hb_xchg x = {0};
    int rc = hb_xchg_init(&x, 64);
    const char *r = rows;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t g;
        memcpy(&g, r + i * esz, 8);
        x.scount[hb_owner_of((int64_t)g, (int64_t)nd, hb_size)]++;
    }
    if (rc == 0) rc = hb_xchg_layout(&x);
    char *send = rc ? NULL : hb_malloc((x.stotal ? x.stotal : 1) * esz);
    size_t *pos = hb_malloc((size_t)hb_size * sizeof *pos);
    if (rc == 0 && (!send || !pos)) rc = HB_EINTERNAL;
    if (rc == 0) {
        memcpy(pos, x.sdispl, (size_t)hb_size * sizeof *pos);
        for (size_t i = 0; i < n; i++) {
            uint64_t g;
            memcpy(&g, r + i * esz, 8);
            memcpy(send + pos[hb_owner_of((int64_t)g, (int64_t)nd, hb_size)]++ * esz, r + i * esz, esz);
        }
    }
    free(pos);
    rc = hb_agree(rc);
    void *recv = NULL;
    size_t cap = 0;
    const hb_xchg_array a = {send, &recv, &cap, esz};
    if (rc == 0) rc = hb_xchg_run(&x, &a, 1);
    free(send);
    if (rc == 0) *got = recv, *ngot = x.received;
    else free(recv);
    hb_xchg_free(&x);
    return rc;
}

/* Collective. The /episodes group from the rows this rank writes. */
static int write_output(ep_state *s, hb_out *out, const devlist *L, const int64_t *periods, size_t np, ep_row *ep,
                        size_t nep, const per_row *per, size_t nper)
{
    const ep_spec *sp = &s->sp;
    const size_t nd = L->n;
    int64_t g0, g1;
    hb_range_of((int64_t)nd, hb_rank, hb_size, &g0, &g1);
    qsort(ep, nep, sizeof *ep, cmp_ep);
    uint64_t mine = nep, before = 0, total = 0;
    MPI_Exscan(&mine, &before, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (hb_rank == 0) before = 0;
    MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);

    const size_t cells = (size_t)(g1 - g0) * np;
    int64_t *i1 = hb_malloc((nep ? nep : 1) * 8), *i2 = hb_malloc((nep ? nep : 1) * 8);
    double *f1 = hb_malloc((nep ? nep : 1) * 8), *f2 = hb_malloc((nep ? nep : 1) * 8), *f3 = hb_malloc((nep ? nep : 1) * 8);
    uint64_t *u1 = hb_malloc((nep ? nep : 1) * 8);
    uint64_t *c_ep = hb_calloc(cells ? cells : 1, 8), *c_rd = hb_calloc(cells ? cells : 1, 8);
    double *c_sec = hb_calloc(cells ? cells : 1, 8), *c_mean = hb_malloc((cells ? cells : 1) * 8);
    char *strs = hb_calloc((nep > (size_t)(g1 - g0) ? nep : (size_t)(g1 - g0)) + 1, L->width);
    int rc = i1 && i2 && f1 && f2 && f3 && u1 && c_ep && c_rd && c_sec && c_mean && strs ? 0 : HB_EINTERNAL;
    rc = hb_agree(rc);
    char tunits[64], vunits[80], runits[90], desc[300];
    /* CF units, so that xarray decodes the times and export writes them as ISO text */
    static const char *const cf[] = {"seconds", "milliseconds", "microseconds", "nanoseconds"};
    const int cu = sp->unit == 1000 ? 1 : sp->unit == 1000000 ? 2 : sp->unit == 1000000000 ? 3 : 0;
    snprintf(tunits, sizeof tunits, "%s since 1970-01-01 00:00:00", cf[cu]);
    snprintf(vunits, sizeof vunits, "%s", s->units);
    if (sp->rate) snprintf(runits, sizeof runits, "%s%s/s", s->units[0] ? s->units : "1", "");
    else snprintf(runits, sizeof runits, "%s", s->units);
    const uint64_t dims1[1] = {total};
#define OUT(call)                                                                      \
    do {                                                                               \
        if (rc == 0) rc = (call);                                                      \
    } while (0)
    OUT(hb_out_group(out, "/episodes"));
    OUT(hb_out_group(out, "/episodes/periods"));
    if (rc == 0) {
        for (size_t i = 0; i < nep; i++) {
            i1[i] = ep[i].start, i2[i] = ep[i].end, u1[i] = ep[i].readings;
            f1[i] = (double)(ep[i].end - ep[i].start) / (double)sp->unit, f2[i] = ep[i].peak, f3[i] = ep[i].mean;
        }
    }
    /* the device column: ids, or labels */
    if (total == 0) {
        OUT(hb_out_dataset(out, "/episodes/device", HB_I64, 1, dims1, NULL, "device id"));
    } else if (!L->bytes) {
        for (size_t i = 0; i < nep; i++) i1[i] = L->id[ep[i].g];
        OUT(hb_out_write(out, "/episodes/device", HB_I64, 1, dims1, before, nep, i1, NULL, "device id"));
        for (size_t i = 0; i < nep; i++) i1[i] = ep[i].start;
    } else {
        for (size_t i = 0; i < nep; i++) {
            size_t o = L->order[ep[i].g];
            memcpy(strs + i * L->width, L->bytes + L->off[o], L->off[o + 1] - L->off[o]);
        }
        OUT(hb_out_strings(out, "/episodes/device", total, before, nep, L->width, strs, NULL));
        OUT(hb_out_attr_str(out, "/episodes/device", "_Encoding", "utf-8"));
    }
    struct {
        const char *name;
        hb_elem t;
        const void *data;
        const char *units, *desc;
    } cols[] = {
        {"start", HB_I64, i1, tunits, "time of the first reading of the episode, since 1970-01-01 UTC"},
        {"end", HB_I64, i2, tunits, "time of the last reading of the episode, since 1970-01-01 UTC"},
        {"duration_s", HB_F64, f1, "s", "end - start in seconds"},
        {"readings", HB_U64, u1, NULL, "readings in the episode"},
        {"peak", HB_F64, f2, runits, "the reading furthest beyond the threshold"},
        {"mean", HB_F64, f3, runits, "mean of the episode's readings"},
    };
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
        char path[64];
        snprintf(path, sizeof path, "/episodes/%s", cols[c].name);
        if (total == 0) OUT(hb_out_dataset(out, path, cols[c].t, 1, dims1, cols[c].units, cols[c].desc));
        else OUT(hb_out_write(out, path, cols[c].t, 1, dims1, before, nep, cols[c].data, cols[c].units, cols[c].desc));
    }

    /* the period arrays, device x period */
    for (size_t i = 0; i < cells; i++) c_mean[i] = NAN;
    for (size_t i = 0; i < nper; i++) {
        size_t at = (size_t)(per[i].g - (uint64_t)g0) * np + (size_t)per[i].period;
        c_ep[at] = per[i].episodes, c_rd[at] = per[i].readings, c_sec[at] = per[i].seconds;
        if (per[i].readings) c_mean[at] = per[i].mean;
    }
    const uint64_t dims2[2] = {nd, np};
    static const char *const pnames[] = {"day", "week", "month"};
    static const char *const punits[] = {"yyyymmdd", "yyyyww (ISO week)", "yyyymm"};
    if (nd == 0 || np == 0) {
        OUT(hb_out_dataset(out, "/episodes/periods/device", L->bytes ? HB_U8 : HB_I64, 1, dims2, NULL, "device"));
        OUT(hb_out_dataset(out, "/episodes/periods/period", HB_I64, 1, dims2 + 1, punits[sp->period], "period"));
    } else {
        if (!L->bytes) {
            OUT(hb_out_scale(out, "/episodes/periods/device", "device", HB_I64, nd, L->id, NULL));
        } else {
            for (int64_t g = g0; g < g1; g++) {
                size_t o = L->order[g];
                memset(strs + (size_t)(g - g0) * L->width, 0, L->width);
                memcpy(strs + (size_t)(g - g0) * L->width, L->bytes + L->off[o], L->off[o + 1] - L->off[o]);
            }
            OUT(hb_out_strings(out, "/episodes/periods/device", nd, (uint64_t)g0, (uint64_t)(g1 - g0), L->width, strs,
                               "device"));
            OUT(hb_out_attr_str(out, "/episodes/periods/device", "_Encoding", "utf-8"));
        }
        OUT(hb_out_scale(out, "/episodes/periods/period", "period", HB_I64, np, periods, punits[sp->period]));
    }
    OUT(hb_out_attr_str(out, "/episodes/periods/period", "period", pnames[sp->period]));
    struct {
        const char *name;
        hb_elem t;
        const void *data;
        const char *units, *desc;
    } arr[] = {
        {"episodes", HB_U64, c_ep, NULL, "episodes that start in the period"},
        {"seconds_in_episode", HB_F64, c_sec, "s", "total duration of the episodes that start in the period"},
        {"readings", HB_U64, c_rd, NULL, "valid readings in the period"},
        {"value_mean", HB_F64, c_mean, vunits, "mean of the valid readings in the period (NaN: none)"},
    };
    for (size_t c = 0; c < sizeof arr / sizeof arr[0]; c++) {
        char path[80];
        snprintf(path, sizeof path, "/episodes/periods/%s", arr[c].name);
        if (nd == 0 || np == 0) {
            OUT(hb_out_dataset(out, path, arr[c].t, 2, dims2, arr[c].units, arr[c].desc));
            continue;
        }
        OUT(hb_out_write(out, path, arr[c].t, 2, dims2, (uint64_t)g0, (uint64_t)(g1 - g0), arr[c].data, arr[c].units,
                         arr[c].desc));
        OUT(hb_out_attach(out, path, 0, "/episodes/periods/device"));
        OUT(hb_out_attach(out, path, 1, "/episodes/periods/period"));
    }

    /* the counts of every rank, and the settings */
    uint64_t c[3] = {s->rows_total, s->rows_missing, s->rows_invalid};
    MPI_Allreduce(MPI_IN_PLACE, c, 3, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    /* mostly invalid readings fail the step ([job] max_invalid_fraction); the same totals on every rank */
    char why[160];
    snprintf(why, sizeof why, "%llu without a device or time, %llu with a value that is NaN or inf",
             (unsigned long long)c[1], (unsigned long long)c[2]);
    if (rc == 0) rc = hb_invalid_check(c[0], c[1] + c[2], s->src, "readings", why);
    const char *g = "/episodes";
    OUT(hb_out_attr_u64(out, g, "rows_total", c[0]));
    OUT(hb_out_attr_u64(out, g, "rows_valid", c[0] - c[1] - c[2]));
    OUT(hb_out_attr_u64(out, g, "rows_missing", c[1]));
    OUT(hb_out_attr_u64(out, g, "rows_invalid_value", c[2]));
    OUT(hb_out_attr_u64(out, g, "n_devices", nd));
    OUT(hb_out_attr_u64(out, g, "n_episodes", total));
    OUT(hb_out_attr_str(out, g, "rule", sp->rule_text));
    OUT(hb_out_attr_str(out, g, "derive", sp->rate ? "rate" : "none"));
    OUT(hb_out_attr_f64(out, g, "hysteresis", &sp->hysteresis, 1));
    OUT(hb_out_attr_f64(out, g, "max_gap_s", &sp->max_gap, 1));
    OUT(hb_out_attr_f64(out, g, "min_duration_s", &sp->min_duration, 1));
    OUT(hb_out_attr_str(out, g, "period", pnames[sp->period]));
    OUT(hb_out_attr_str(out, g, "timezone", sp->tz));
    OUT(hb_out_attr_str(out, g, "time_unit", sp->unit_name));
    snprintf(desc, sizeof desc, "one row per episode of rule %s%s, sorted by device then start", sp->rule_text,
             sp->rate ? " on the rate of change per second" : "");
    OUT(hb_out_attr_str(out, g, "description", desc));
#undef OUT
    free(i1), free(i2), free(f1), free(f2), free(f3), free(u1);
    free(c_ep), free(c_rd), free(c_sec), free(c_mean), free(strs);
    return rc;
}

/* What the batches of finalize gather: the workers' rows, and the devices' keys (a
 * device's index is its place among them). */
typedef struct found {
    worker *w;
    uint64_t *keys;
    size_t nd, kcap;
} found;

/* Not collective. The episodes and period figures of the devices in the owned columns
 * (all of them, or a batch read back from spilled runs), added to f. */
static int detect_batch(ep_state *s, void *user)
{
    found *f = user;
    const ep_cols *c = &s->own;
    const size_t base = f->nd;
    ep_order o;
    HB_CALL(ep_order_build(c, &o));
    const size_t nd = o.nd;
    int rc = hb_grow((void **)&f->keys, &f->kcap, base + nd + 1, sizeof *f->keys) ? HB_EINTERNAL : 0;
    for (size_t d = 0; rc == 0 && d < nd; d++) f->keys[base + d] = o.dev[d].dev;
    /* the local calendar of every reading */
    int64_t tmin = INT64_MAX, tmax = INT64_MIN;
    for (size_t r = 0, at = 0; r < c->nrun; at += c->run[r].n, r++) { /* t0 + the run's extreme steps */
        int64_t hi = INT64_MIN, lo = INT64_MAX;
        if (c->tsz == 4) {
            const int32_t *dt = (const int32_t *)c->dt + at;
            for (size_t i = 0; i < c->run[r].n; i++) hi = dt[i] > hi ? dt[i] : hi, lo = dt[i] < lo ? dt[i] : lo;
        } else {
            const int64_t *dt = (const int64_t *)c->dt + at;
            for (size_t i = 0; i < c->run[r].n; i++) hi = dt[i] > hi ? dt[i] : hi, lo = dt[i] < lo ? dt[i] : lo;
        }
        if (c->run[r].n && c->run[r].t0 + hi > tmax) tmax = c->run[r].t0 + hi;
        if (c->run[r].n && c->run[r].t0 + lo < tmin) tmin = c->run[r].t0 + lo;
    }
    if (rc == 0 && nd) rc = hb_tzmap_cover(&s->tzm, hb_floordiv(tmin, s->sp.unit), hb_floordiv(tmax, s->sp.unit));
    if (rc == 0) {
        worker *w = f->w;
#pragma omp parallel for schedule(dynamic, 8) num_threads(s->nthreads)
        for (size_t d = 0; d < nd; d++) {
            worker *me = &w[omp_get_thread_num()];
            const int64_t *t;
            const double *v;
            if (me->failed) continue;
            if (ep_series(c, &o, d, &me->sc, &t, &v)) me->failed = 1;
            else device(s, me, base + d, t, v, o.dev[d].n);
        }
        f->nd = base + nd;
    }
    ep_order_free(&o);
    return rc;
}

int ep_finalize(ep_state *s, hb_out *out)
{
    uint64_t *keys = NULL;
    size_t nd = 0;
    int64_t *periods = NULL;
    worker *w = NULL;
    devlist L = {0};
    ep_row *ep = NULL, *gep = NULL;
    per_row *per = NULL, *gper = NULL;
    size_t nep = 0, nper = 0, ngep = 0, ngper = 0, np = 0;
    hpair *hp = NULL;
    size_t *rank_of_hash = NULL;
    uint64_t *hsorted = NULL;
    const int T = s->nthreads;

    /* with runs spilled anywhere, every rank reads its devices back from them in batches
     * (what it still holds joins them as one more run); else all at once */
    uint64_t sp[2] = {s->nruns, 0};
    MPI_Allreduce(MPI_IN_PLACE, sp, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    int rc = 0;
    if (!(w = hb_calloc((size_t)T, sizeof *w))) rc = HB_EINTERNAL;
    found f = {w, NULL, 0, 0};
    if (sp[0] == 0) {
        if (rc == 0) rc = detect_batch(s, &f);
    } else {
        if (rc == 0) rc = ep_spill(s);
        rc = hb_agree(rc);
        if (rc == 0) rc = ep_runs_share(s);
        uint64_t tot[2] = {s->spilled, s->nspills};
        MPI_Allreduce(MPI_IN_PLACE, tot, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        if (tot[1])
            HB_INFO("episodes: spilled %llu readings in %llu runs to %s (max_memory %.1f MB)", (unsigned long long)tot[0],
                    (unsigned long long)tot[1], hb_spill_dir() ? hb_spill_dir() : "?", hb_mem_limit() / 1e6);
        /* a batch: 40% of the budget, a reading in the columns and its scratch */
        double cap = s->budget * 0.4 / ((double)ep_bytes_per_reading(&s->own) + 40);
        if (rc == 0) rc = ep_runs_batches(s, cap < 4096 ? 4096 : (size_t)cap, detect_batch, &f);
    }
    keys = f.keys, nd = f.nd;
    if (rc == 0 && !keys && !(keys = hb_malloc(sizeof *keys))) rc = HB_EINTERNAL;
    rc = hb_agree(rc);
    if (rc == 0) {
        for (int i = 0; i < T; i++) nep += w[i].nep, nper += w[i].nper, rc |= w[i].failed;
        rc = rc ? hb_err_set(HB_EINTERNAL, "episodes", "out of memory finding the episodes") : 0;
        ep = hb_malloc((nep ? nep : 1) * sizeof *ep);
        per = hb_malloc((nper ? nper : 1) * sizeof *per);
        if (rc == 0 && (!ep || !per)) rc = HB_EINTERNAL;
        for (int i = 0, a = 0, b = 0; rc == 0 && i < T; i++) {
            if (w[i].nep) memcpy(ep + a, w[i].ep, w[i].nep * sizeof *ep);
            if (w[i].nper) memcpy(per + b, w[i].per, w[i].nper * sizeof *per);
            a += (int)w[i].nep, b += (int)w[i].nper;
        }
    }
    for (int i = 0; w && i < T; i++) {
        free(w[i].ep), free(w[i].per), free(w[i].dt), free(w[i].dx), free(w[i].tmp);
        ep_scratch_free(&w[i].sc);
    }
    free(w);
    ep_cols_free(&s->own);
    rc = hb_agree(rc);

    /* every rank's devices and periods, sorted */
    if (rc == 0) rc = list_devices(s, keys, nd, &L);
    if (rc == 0 && L.bytes) {
        hp = hb_malloc((L.n + 1) * sizeof *hp);
        rank_of_hash = hb_malloc((L.n + 1) * sizeof *rank_of_hash);
        hsorted = hb_malloc((L.n + 1) * sizeof *hsorted);
        if (!hp || !rank_of_hash || !hsorted) rc = HB_EINTERNAL;
        for (size_t i = 0; rc == 0 && i < L.n; i++) hp[i] = (hpair){L.hash[L.order[i]], i};
        if (rc == 0) qsort(hp, L.n, sizeof *hp, cmp_hpair);
        for (size_t i = 0; rc == 0 && i < L.n; i++) hsorted[i] = hp[i].h, rank_of_hash[i] = hp[i].place;
        /* order[i] is the gathered position of place i: keep it for the labels */
    }
    rc = hb_agree(rc);
    if (rc == 0) {
        size_t *place = hb_malloc((nd ? nd : 1) * sizeof *place);
        int64_t *codes = hb_malloc((nper ? nper : 1) * sizeof *codes);
        if (!place || !codes) rc = HB_EINTERNAL;
        for (size_t d = 0; rc == 0 && d < nd; d++) place[d] = place_of(&L, keys[d], rank_of_hash, hsorted);
        for (size_t i = 0; rc == 0 && i < nep; i++) ep[i].g = place[ep[i].g];
        for (size_t i = 0; rc == 0 && i < nper; i++) per[i].g = place[per[i].g], codes[i] = per[i].period;
        size_t nc = 0;
        if (rc == 0) {
            qsort(codes, nper, sizeof *codes, hb_cmp_i64);
            for (size_t i = 0; i < nper; i++)
                if (nc == 0 || codes[i] != codes[nc - 1]) codes[nc++] = codes[i];
        }
        free(place);
        rc = hb_agree(rc);
        size_t na = 0;
        if (rc == 0) rc = allgather_i64(codes, nc, &periods, &na);
        free(codes);
        if (rc == 0) {
            qsort(periods, na, sizeof *periods, hb_cmp_i64);
            for (size_t i = 0; i < na; i++)
                if (np == 0 || periods[i] != periods[np - 1]) periods[np++] = periods[i];
            for (size_t i = 0; i < nper; i++) {
                size_t lo = 0, hi = np;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (periods[mid] < per[i].period) lo = mid + 1;
                    else hi = mid;
                }
                per[i].period = (int64_t)lo;
            }
        }
    }
    /* the rows to the ranks that write them */
    if (rc == 0) rc = to_writers(ep, nep, sizeof *ep, L.n, (void **)&gep, &ngep);
    if (rc == 0) rc = to_writers(per, nper, sizeof *per, L.n, (void **)&gper, &ngper);
    free(ep), free(per);
    if (rc == 0) rc = write_output(s, out, &L, periods, np, gep, ngep, gper, ngper);
    free(gep), free(gper), free(periods), free(keys), free(hp), free(rank_of_hash), free(hsorted);
    free(L.id), free(L.bytes), free(L.off), free(L.hash), free(L.order);
    return rc;
}
