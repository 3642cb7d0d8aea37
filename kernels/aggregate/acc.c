/* Per-group accumulators of one value column: count, exact sums of x and x^2 in compact
 * windows, min/max, first/last by (time, value), counts above/below thresholds. Every
 * merge is exact and commutative, so a group's statistics do not depend on the order in
 * which its rows were combined, on which rank, or on how many times it was saved.
 *
 * The variance comes from the exact sums S1 = sum x and S2 = sum x^2 (each square split
 * exactly into two doubles with an FMA): n S2 - S1^2 is formed exactly as a big integer
 * and rounded once, so the result is within an ulp or two of the true sample variance
 * and has the same bits for any rank or thread count. No second pass over kept values
 * is needed, so std/var cost no per-row memory. */
#include "kernels/aggregate/agg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FULL HB_XSUM_WORDS

/* The three words (from word *j up) that hb_xsum_add adds for v: the same split. */
static inline void split(double v, unsigned *j, int64_t d[3])
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint64_t e = (bits >> 52) & 0x7ff, mant = bits & ((1ull << 52) - 1);
    unsigned pos = 0;
    if (e) mant |= 1ull << 52, pos = (unsigned)e - 1;
    unsigned __int128 t = (unsigned __int128)mant << (pos & 31);
    *j = pos >> 5;
    d[0] = (int64_t)(uint32_t)t, d[1] = (int64_t)(uint32_t)(t >> 32), d[2] = (int64_t)(t >> 64);
    if (bits >> 63) d[0] = -d[0], d[1] = -d[1], d[2] = -d[2];
}

/* Propagates carries so that every word but the last is a digit in [0, 2^32): words
 * stay far from overflow however many sums are merged. */
static void normalize(int64_t *w, int n)
{
    int64_t carry = 0;
    for (int i = 0; i < n - 1; i++) {
        int64_t v = w[i] + carry;
        carry = v >> 32; /* arithmetic shift: floor */
        w[i] = v - carry * 4294967296LL;
    }
    w[n - 1] += carry;
}

static hb_xsum *spill_of(const xwin *x, const xpool *p) { return &p->s[(size_t)x->w[0]]; }

/* Moves window x into a fresh full accumulator of the pool; -1 when it cannot grow. */
static int spill(xwin *x, xpool *p)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        hb_xsum *s = realloc(p->s, cap * sizeof *s); /* not hb_realloc: called from threads */
        if (!s) return -1;
        p->s = s, p->cap = cap;
    }
    hb_xsum *s = &p->s[p->n];
    memset(s, 0, sizeof *s);
    if (x->base >= 0)
        for (int i = 0; i < XW_WORDS; i++) s->w[x->base + i] = x->w[i];
    x->base = XW_SPILL;
    memset(x->w, 0, sizeof x->w);
    x->w[0] = (int64_t)p->n++;
    return 0;
}

/* Makes the window cover words [lo, hi] besides the ones it holds: moves it when all
 * fit in XW_WORDS, else spills. 1 when x is now spilled, -1 out of memory. */
static int cover(xwin *x, xpool *p, int lo, int hi)
{
    if (x->base == XW_EMPTY) {
        int b = lo - 1; /* a little room below: values of one group differ by a few bits */
        if (b + XW_WORDS - 1 < hi) b = hi - XW_WORDS + 1;
        if (b > FULL - XW_WORDS) b = FULL - XW_WORDS;
        if (b < 0) b = 0;
        x->base = b;
        memset(x->w, 0, sizeof x->w);
        return 0;
    }
    int first = -1, last = -1;
    for (int i = 0; i < XW_WORDS; i++)
        if (x->w[i]) last = x->base + i, first = first < 0 ? x->base + i : first;
    if (first < 0 || first > lo) first = lo;
    if (last < hi) last = hi;
    if (last - first + 1 > XW_WORDS) return spill(x, p) ? -1 : 1;
    int b = first;
    if (b > FULL - XW_WORDS) b = FULL - XW_WORDS;
    int64_t w[XW_WORDS] = {0};
    for (int i = 0; i < XW_WORDS; i++)
        if (x->w[i]) w[x->base + i - b] = x->w[i];
    memcpy(x->w, w, sizeof w);
    x->base = b;
    return 0;
}

/* Adds the words d to words j, j+1, j+2 (a split value, or the sum of a few million
 * split values of one j); norm: normalize the words after. */
static int win_add_words(xwin *x, xpool *p, unsigned j, const int64_t d[3], int norm)
{
    int b = x->base;
    if (b < 0 || (int)j < b || (int)j + 2 >= b + XW_WORDS) {
        if (b == XW_SPILL) {
            hb_xsum *s = spill_of(x, p);
            s->w[j] += d[0], s->w[j + 1] += d[1], s->w[j + 2] += d[2];
            if (norm) normalize(s->w, FULL);
            return 0;
        }
        int r = cover(x, p, (int)j, (int)j + 2);
        if (r < 0) return -1;
        if (r == 1) return win_add_words(x, p, j, d, norm);
        b = x->base;
    }
    int64_t *w = x->w + (j - (unsigned)b);
    w[0] += d[0], w[1] += d[1], w[2] += d[2];
    if (norm) normalize(x->w, XW_WORDS);
    return 0;
}

/* Adds v (finite) exactly; count is the number of values added so far, which decides
 * when the words are normalized. */
static inline int win_add(xwin *x, xpool *p, double v, uint64_t count)
{
    if (v == 0 || x->base == XW_INF) return 0;
    unsigned j;
    int64_t d[3];
    split(v, &j, d);
    return win_add_words(x, p, j, d, (count & ((1u << 28) - 1)) == 0);
}

/* dst += src (src a window or empty, never spilled). */
static int win_merge(xwin *dst, xpool *p, const xwin *src)
{
    if (src->base == XW_EMPTY || dst->base == XW_INF) return 0;
    if (src->base == XW_INF) {
        dst->base = XW_INF;
        return 0;
    }
    int64_t w[XW_WORDS];
    memcpy(w, src->w, sizeof w);
    normalize(w, XW_WORDS);
    int lo = -1, hi = -1;
    for (int i = 0; i < XW_WORDS; i++)
        if (w[i]) hi = src->base + i, lo = lo < 0 ? src->base + i : lo;
    if (lo < 0) return 0;
    if (dst->base != XW_SPILL) {
        int r = cover(dst, p, lo, hi);
        if (r < 0) return -1;
    }
    if (dst->base == XW_SPILL) {
        hb_xsum *s = spill_of(dst, p);
        normalize(s->w, FULL);
        for (int i = 0; i < XW_WORDS; i++) s->w[src->base + i] += w[i];
        return 0;
    }
    normalize(dst->w, XW_WORDS);
    for (int i = 0; i < XW_WORDS; i++)
        if (w[i]) dst->w[src->base + i - dst->base] += w[i];
    return 0;
}

/* The full accumulator a window stands for. */
static void win_full(const xwin *x, const xpool *p, hb_xsum *out)
{
    if (x->base == XW_SPILL) {
        *out = *spill_of(x, p);
        return;
    }
    memset(out, 0, sizeof *out);
    if (x->base >= 0)
        for (int i = 0; i < XW_WORDS; i++) out->w[x->base + i] = x->w[i];
}

/* Pieces a window travels in: a spilled one as windows over its nonzero words. */
static int win_pieces(const xwin *x, const xpool *p)
{
    if (x->base != XW_SPILL) return 1;
    hb_xsum s = *spill_of(x, p);
    normalize(s.w, FULL);
    int lo = -1, hi = -1;
    for (int i = 0; i < FULL; i++)
        if (s.w[i]) hi = i, lo = lo < 0 ? i : lo;
    return lo < 0 ? 1 : (hi - lo) / XW_WORDS + 1;
}

static void win_piece(const xwin *x, const xpool *p, int k, xwin *out)
{
    if (x->base != XW_SPILL) {
        if (k == 0) *out = *x;
        else out->base = XW_EMPTY, memset(out->w, 0, sizeof out->w);
        out->pad = 0;
        return;
    }
    hb_xsum s = *spill_of(x, p);
    normalize(s.w, FULL);
    int lo = -1;
    for (int i = 0; i < FULL && lo < 0; i++)
        if (s.w[i]) lo = i;
    memset(out, 0, sizeof *out);
    out->base = XW_EMPTY;
    if (lo < 0) return;
    int b = lo + k * XW_WORDS;
    if (b >= FULL) return;
    if (b > FULL - XW_WORDS) b = FULL - XW_WORDS; /* the last piece may overlap: only new words go in */
    out->base = b;
    for (int i = 0; i < XW_WORDS; i++)
        if (b + i >= lo + k * XW_WORDS) out->w[i] = s.w[b + i];
}

void acc_layout_init(acc_layout *L, const agg_spec *sp)
{
    memset(L, 0, sizeof *L);
    for (int i = 0; i < sp->nstats; i++) {
        switch (sp->st[i]) {
        case ST_SUM: case ST_MEAN: L->sum = 1; break;
        case ST_STD: case ST_VAR: L->sum = L->sq = 1; break;
        case ST_MIN: case ST_MAX: L->mm = 1; break;
        case ST_FIRST: L->first = 1; break;
        case ST_LAST: L->last = 1; break;
        case ST_PCT: L->kept = 1; break;
        case ST_ABOVE: case ST_BELOW:
            L->thr[L->nthr] = sp->arg[i];
            L->thr_above[L->nthr++] = sp->st[i] == ST_ABOVE;
            break;
        case ST_COUNT: break;
        }
    }
    size_t o = 8; /* the count */
    if (L->sum) L->off_sum = o, o += sizeof(xwin);
    if (L->sq) L->off_sq = o, o += sizeof(xwin);
    if (L->mm) L->off_min = o, L->off_max = o + 8, o += 16;
    if (L->first) L->off_ft = o, L->off_fv = o + 8, o += 16;
    if (L->last) L->off_lt = o, L->off_lv = o + 8, o += 16;
    L->off_thr = o;
    o += 8 * (size_t)L->nthr;
    L->size = o;
}

#define AT(T, a, off) (*(T *)((a) + (off)))

void acc_neutral(const acc_layout *L, unsigned char *a)
{
    memset(a, 0, L->size);
    if (L->sum) AT(xwin, a, L->off_sum).base = XW_EMPTY;
    if (L->sq) AT(xwin, a, L->off_sq).base = XW_EMPTY;
    if (L->mm) AT(double, a, L->off_min) = INFINITY, AT(double, a, L->off_max) = -INFINITY;
    if (L->first) AT(int64_t, a, L->off_ft) = INT64_MAX, AT(double, a, L->off_fv) = INFINITY;
    if (L->last) AT(int64_t, a, L->off_lt) = INT64_MIN, AT(double, a, L->off_lv) = -INFINITY;
}

/* (t, x) before (ft, fv): the total order first and last are taken by. */
static inline int before(int64_t t, double x, int64_t ft, double fv) { return t < ft || (t == ft && x < fv); }

int acc_add(const acc_layout *L, unsigned char *a, xpool *pool, double x, int64_t t)
{
    uint64_t n = ++AT(uint64_t, a, 0);
    if (L->sum && win_add(&AT(xwin, a, L->off_sum), pool, x, n)) return -1;
    if (L->sq) {
        xwin *q = &AT(xwin, a, L->off_sq);
        double hi = x * x;
        if (!isfinite(hi)) {
            q->base = XW_INF;
        } else {
            double lo = fma(x, x, -hi); /* x^2 == hi + lo exactly */
            if (win_add(q, pool, hi, n) || win_add(q, pool, lo, n)) return -1;
        }
    }
    if (L->mm) {
        double *mn = &AT(double, a, L->off_min), *mx = &AT(double, a, L->off_max);
        if (x < *mn) *mn = x;
        if (x > *mx) *mx = x;
    }
    if (L->first && before(t, x, AT(int64_t, a, L->off_ft), AT(double, a, L->off_fv)))
        AT(int64_t, a, L->off_ft) = t, AT(double, a, L->off_fv) = x;
    if (L->last && before(AT(int64_t, a, L->off_lt), AT(double, a, L->off_lv), t, x))
        AT(int64_t, a, L->off_lt) = t, AT(double, a, L->off_lv) = x;
    uint64_t *c = &AT(uint64_t, a, L->off_thr);
    for (int i = 0; i < L->nthr; i++) c[i] += L->thr_above[i] ? x > L->thr[i] : x < L->thr[i];
    return 0;
}

int acc_add_n(const acc_layout *L, unsigned char *a, xpool *pool, const double *x, size_t n, const int64_t *t)
{
    if (L->sq || L->mm || L->first || L->last || L->nthr || n >= (1u << 27)) {
        for (size_t i = 0; i < n; i++)
            if (acc_add(L, a, pool, x[i], t ? t[i] : 0)) return -1;
        return 0;
    }
    const uint64_t c0 = AT(uint64_t, a, 0), c1 = c0 + n;
    AT(uint64_t, a, 0) = c1;
    if (!L->sum || !n) return 0;
    /* the split words of a run of values with one j summed here, then added at once:
     * fewer than 2^27 values keep every sum below 2^60; the words are normalized when
     * the count passes a multiple of 2^28, as value by value */
    xwin *w = &AT(xwin, a, L->off_sum);
    unsigned j = 0, cj = UINT32_MAX;
    int64_t d[3], s[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (x[i] == 0) continue;
        split(x[i], &j, d);
        if (j != cj) {
            if (cj != UINT32_MAX && win_add_words(w, pool, cj, s, 0)) return -1;
            cj = j, s[0] = d[0], s[1] = d[1], s[2] = d[2];
            continue;
        }
        s[0] += d[0], s[1] += d[1], s[2] += d[2];
    }
    const int norm = c0 >> 28 != c1 >> 28;
    if (cj != UINT32_MAX) return win_add_words(w, pool, cj, s, norm);
    if (norm && w->base >= 0) normalize(w->w, XW_WORDS);
    else if (norm && w->base == XW_SPILL) normalize(spill_of(w, pool)->w, FULL);
    return 0;
}

int acc_merge(const acc_layout *L, unsigned char *dst, xpool *pool, const unsigned char *src)
{
    AT(uint64_t, dst, 0) += AT(uint64_t, src, 0);
    if (L->sum && win_merge(&AT(xwin, dst, L->off_sum), pool, &AT(const xwin, src, L->off_sum))) return -1;
    if (L->sq && win_merge(&AT(xwin, dst, L->off_sq), pool, &AT(const xwin, src, L->off_sq))) return -1;
    if (L->mm) {
        double *mn = &AT(double, dst, L->off_min), *mx = &AT(double, dst, L->off_max);
        double smn = AT(const double, src, L->off_min), smx = AT(const double, src, L->off_max);
        if (smn < *mn) *mn = smn;
        if (smx > *mx) *mx = smx;
    }
    if (L->first && before(AT(const int64_t, src, L->off_ft), AT(const double, src, L->off_fv),
                           AT(int64_t, dst, L->off_ft), AT(double, dst, L->off_fv)))
        AT(int64_t, dst, L->off_ft) = AT(const int64_t, src, L->off_ft),
        AT(double, dst, L->off_fv) = AT(const double, src, L->off_fv);
    if (L->last && before(AT(int64_t, dst, L->off_lt), AT(double, dst, L->off_lv), AT(const int64_t, src, L->off_lt),
                          AT(const double, src, L->off_lv)))
        AT(int64_t, dst, L->off_lt) = AT(const int64_t, src, L->off_lt),
        AT(double, dst, L->off_lv) = AT(const double, src, L->off_lv);
    uint64_t *c = &AT(uint64_t, dst, L->off_thr);
    const uint64_t *sc = &AT(const uint64_t, src, L->off_thr);
    for (int i = 0; i < L->nthr; i++) c[i] += sc[i];
    return 0;
}

int acc_pieces(const acc_layout *L, const unsigned char *a, const xpool *pool)
{
    int n = 1;
    if (L->sum) {
        int k = win_pieces(&AT(const xwin, a, L->off_sum), pool);
        n = k > n ? k : n;
    }
    if (L->sq) {
        int k = win_pieces(&AT(const xwin, a, L->off_sq), pool);
        n = k > n ? k : n;
    }
    return n;
}

void acc_piece(const acc_layout *L, const unsigned char *a, const xpool *pool, int k, unsigned char *out)
{
    if (k == 0) memcpy(out, a, L->size);
    else acc_neutral(L, out);
    if (L->sum) win_piece(&AT(const xwin, a, L->off_sum), pool, k, &AT(xwin, out, L->off_sum));
    if (L->sq) win_piece(&AT(const xwin, a, L->off_sq), pool, k, &AT(xwin, out, L->off_sq));
}

/* Digits a window's value is rounded from: its words, then room for their carries. */
#define WV_DIGITS (XW_WORDS + 3)

/* hb_xsum_value of the full accumulator window x stands for, from its few words: the same
 * carries, negation and rounding of the top four digits, skipping the words that are
 * zero (a zero digit below the top ones only scales the long double exactly). */
static double win_value(const xwin *x, const xpool *p)
{
    if (x->base == XW_SPILL) return hb_xsum_value(spill_of(x, p));
    if (x->base < 0) return 0.0;
    if (x->base + WV_DIGITS > FULL) {
        hb_xsum s;
        win_full(x, p, &s);
        return hb_xsum_value(&s);
    }
    return hb_xsum_words_value(x->w, XW_WORDS, WV_DIGITS, x->base);
}

double acc_sum(const acc_layout *L, const unsigned char *a, const xpool *pool)
{
    return win_value(&AT(const xwin, a, L->off_sum), pool);
}

/* ---- big integers for the variance: little-endian base-2^32 digits ---- */

#define BIG 2 * FULL + 40

/* The exact value of s as a magnitude (digits of 2^-1074 units) and a sign. */
static int to_digits(const hb_xsum *s, uint32_t *d, int n)
{
    int64_t v[FULL];
    memcpy(v, s->w, sizeof v);
    int64_t carry = 0;
    memset(d, 0, (size_t)n * sizeof *d);
    for (int i = 0; i < FULL; i++) {
        int64_t x = v[i] + carry;
        carry = x >> 32;
        v[i] = x - carry * 4294967296LL;
    }
    int neg = carry < 0;
    /* carry beyond the top word: at most a few digits more */
    int64_t top[3] = {0};
    for (int i = 0; i < 3; i++) {
        int64_t x = carry;
        carry = x >> 32;
        top[i] = x - carry * 4294967296LL;
    }
    for (int i = 0; i < FULL; i++) d[i] = (uint32_t)v[i];
    for (int i = 0; i < 3; i++) d[FULL + i] = (uint32_t)top[i];
    if (neg) { /* two's complement over the digits -> magnitude */
        uint64_t b = 1;
        for (int i = 0; i < n; i++) {
            uint64_t x = (uint64_t)(uint32_t)~d[i] + b;
            d[i] = (uint32_t)x;
            b = x >> 32;
        }
    }
    return neg;
}

double acc_var(const acc_layout *L, const unsigned char *a, const xpool *pool)
{
    uint64_t n = acc_count(a);
    if (n < 2) return NAN;
    const xwin *q = &AT(const xwin, a, L->off_sq);
    if (q->base == XW_INF) return INFINITY;
    hb_xsum s1, s2;
    win_full(&AT(const xwin, a, L->off_sum), pool, &s1);
    win_full(q, pool, &s2);
    /* S1 = A 2^-1074, S2 = B 2^-1074; n S2 - S1^2 = (n B 2^1074 - A^2) 2^-2148 */
    uint32_t A[FULL + 3], B[FULL + 3];
    to_digits(&s1, A, FULL + 3);
    to_digits(&s2, B, FULL + 3); /* S2 >= 0 */
    static const int SH_DIG = 1074 / 32, SH_BIT = 1074 % 32;
    uint64_t D[BIG] = {0}; /* n B 2^1074, digits in the low 32 bits of each word */
    uint64_t carry = 0;
    for (int i = 0; i < FULL + 3; i++) {
        unsigned __int128 x = (unsigned __int128)B[i] * n + carry;
        uint64_t lo = (uint64_t)x & 0xffffffffu;
        carry = (uint64_t)(x >> 32);
        /* place digit lo, shifted by SH_BIT bits, at SH_DIG + i */
        uint64_t sh = lo << SH_BIT;
        D[SH_DIG + i] += sh & 0xffffffffu;
        D[SH_DIG + i + 1] += sh >> 32;
    }
    for (int k = 0; carry; k++) {
        uint64_t sh = (carry & 0xffffffffu) << SH_BIT;
        D[SH_DIG + FULL + 3 + k] += sh & 0xffffffffu;
        D[SH_DIG + FULL + 3 + k + 1] += sh >> 32;
        carry >>= 32;
    }
    int alo = -1, ahi = -1;
    for (int i = 0; i < FULL + 3; i++)
        if (A[i]) ahi = i, alo = alo < 0 ? i : alo;
    /* D -= A^2, as signed 64-bit accumulations then one borrow pass */
    int64_t R[BIG];
    for (int i = 0; i < BIG; i++) R[i] = (int64_t)D[i];
    for (int i = alo; alo >= 0 && i <= ahi; i++) {
        if (!A[i]) continue;
        uint64_t c = 0;
        int k = alo;
        for (; k <= ahi; k++) {
            uint64_t x = (uint64_t)A[i] * A[k] + c;
            R[i + k] -= (int64_t)(x & 0xffffffffu);
            c = x >> 32;
        }
        for (int m = i + k; c; m++) {
            R[m] -= (int64_t)(c & 0xffffffffu);
            c >>= 32;
        }
        /* keep the words small: fold their carries up now and then */
        if (((i - alo) & 15) == 15) normalize(R, BIG);
    }
    normalize(R, BIG);
    if (R[BIG - 1] < 0) return 0.0; /* only when a square lost bits below 2^-1074 */
    int top = BIG - 1;
    while (top >= 0 && R[top] == 0) top--;
    if (top < 0) return 0.0;
    long double v = 0;
    int low = top - 3 < 0 ? 0 : top - 3;
    for (int i = top; i >= low; i--) v = v * 4294967296.0L + (long double)R[i];
    v = ldexpl(v, 32 * low - 2148);
    return (double)(v / ((long double)n * (long double)(n - 1)));
}

void xpool_free(xpool *p)
{
    free(p->s);
    memset(p, 0, sizeof *p);
}
