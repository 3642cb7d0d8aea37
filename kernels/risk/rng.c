/* Philox streams: a GSL generator type for GSL's samplers, and vectorized Box-Muller
 * normals for the Monte Carlo hot loop.
 *
 * The normals use only IEEE +, -, *, / and bit operations (no libm calls, whose scalar
 * and vector versions differ in the last bits), so a value has the same bits whether a
 * loop ran vectorized or not and whichever clone (AVX2 or baseline) the CPU picked. */
#include "kernels/risk/rng.h"

#include <Random123/philox.h>
#include <string.h>

typedef struct philox_state {
    uint32_t key[2], ctr[4], buf[4];
    int left;
} philox_state;

/* One Philox4x32-10 block from Random123. */
static void block(philox_state *s)
{
    philox4x32_ctr_t c = {{s->ctr[0], s->ctr[1], s->ctr[2], s->ctr[3]}};
    philox4x32_key_t k = {{s->key[0], s->key[1]}};
    philox4x32_ctr_t o = philox4x32(c, k);
    memcpy(s->buf, o.v, sizeof s->buf);
    s->ctr[2]++;
    s->left = 4;
}

/* The next 32-bit word of the stream. */
static unsigned long philox_get(void *vs)
{
    philox_state *s = vs;
    if (s->left == 0) block(s);
    return s->buf[4 - s->left--];
}

/* A uniform in [0, 1) from the next word. */
static double philox_get_double(void *vs) { return (double)philox_get(vs) * 0x1p-32; }

/* GSL's seeding: key = seed, counter 0 (hb_rng_seek is the usual way in). */
static void philox_set(void *vs, unsigned long seed)
{
    philox_state *s = vs;
    memset(s, 0, sizeof *s);
    s->key[0] = (uint32_t)seed;
    s->key[1] = (uint32_t)((uint64_t)seed >> 32);
}

static const gsl_rng_type philox_type = {"philox4x32", 0xffffffffUL, 0, sizeof(philox_state), philox_set,
                                         philox_get, philox_get_double};
const gsl_rng_type *hb_rng_philox = &philox_type;

/* Sets key and counter, and drops buffered words. */
void hb_rng_seek(gsl_rng *r, uint64_t seed, uint64_t index, uint32_t stream)
{
    philox_state *s = r->state;
    s->key[0] = (uint32_t)seed, s->key[1] = (uint32_t)(seed >> 32);
    s->ctr[0] = (uint32_t)index, s->ctr[1] = (uint32_t)(index >> 32), s->ctr[2] = 0, s->ctr[3] = stream;
    s->left = 0;
}

/* Philox4x32-10 of counters (c0, c1, j, c3) for j = 0..n-1, written as four word
 * arrays. The rounds and constants are Random123's, spelled out on plain integers so
 * that the loop vectorizes across j; tests/risk_ref.py --mc-exact checks the stream
 * against an independent Philox. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
philox_words(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c3, int n, uint32_t *restrict w0,
             uint32_t *restrict w1, uint32_t *restrict w2, uint32_t *restrict w3)
{
#pragma omp simd
    for (int j = 0; j < n; j++) {
        uint32_t x0 = c0, x1 = c1, x2 = (uint32_t)j, x3 = c3, a = k0, b = k1;
        for (int r = 0; r < 10; r++) {
            uint64_t p0 = (uint64_t)PHILOX_M4x32_0 * x0, p1 = (uint64_t)PHILOX_M4x32_1 * x2;
            x0 = (uint32_t)(p1 >> 32) ^ x1 ^ a;
            x1 = (uint32_t)p1;
            x2 = (uint32_t)(p0 >> 32) ^ x3 ^ b;
            x3 = (uint32_t)p0;
            a += PHILOX_W32_0;
            b += PHILOX_W32_1;
        }
        w0[j] = x0, w1[j] = x1, w2[j] = x2, w3[j] = x3;
    }
}

/* The double with bits b. */
static inline double as_f64(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* The bits of d. */
static inline uint64_t as_u64(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* a where mask is all ones, else b: a select the vectorizer takes without if-conversion
 * (which -ftrapping-math forbids for floating-point operands). */
static inline double pick(uint64_t mask, double a, double b) { return as_f64((as_u64(a) & mask) | (as_u64(b) & ~mask)); }

/* Box-Muller on word pairs: z0[j] = R cos(theta), z1[j] = R sin(theta). ln by the
 * atanh series on the mantissa in [sqrt(1/2), sqrt(2)), sqrt by Newton iterations on
 * the reciprocal root (libm's sqrt sets errno, which keeps loops from vectorizing), sin
 * and cos by Taylor series on |phi| <= pi/4 and quadrant symmetry: each within a few ulp. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
box_muller(int n, const uint32_t *restrict wu, const uint32_t *restrict wt, double *restrict z0, double *restrict z1)
{
#pragma omp simd
    for (int j = 0; j < n; j++) {
        double u = ((double)wu[j] + 0.5) * 0x1p-32; /* in (0, 1): ln u < 0 */
        uint64_t bits = as_u64(u);
        double e = as_f64((bits >> 52) | 0x4330000000000000ull) - 0x1p52 - 1023;
        double m = as_f64((bits & 0xfffffffffffffull) | 0x3ff0000000000000ull);
        uint64_t big = (uint64_t)0 - (uint64_t)(m > 1.4142135623730951);
        m = pick(big, m * 0.5, m);
        e = e + as_f64(as_u64(1.0) & big);
        double f = (m - 1) / (m + 1), f2 = f * f;
        double s = 1.0 / 19;
        s = s * f2 + 1.0 / 17, s = s * f2 + 1.0 / 15, s = s * f2 + 1.0 / 13, s = s * f2 + 1.0 / 11;
        s = s * f2 + 1.0 / 9, s = s * f2 + 1.0 / 7, s = s * f2 + 1.0 / 5, s = s * f2 + 1.0 / 3, s = s * f2 + 1;
        double ln = e * 0x1.62e42fee00000p-1 + (e * 0x1.a39ef35793c76p-33 + 2 * f * s);
        double v = -2 * ln;
        double y = as_f64(0x5fe6eb50c7b537a9ull - (as_u64(v) >> 1));
        y = y * (1.5 - 0.5 * v * y * y);
        y = y * (1.5 - 0.5 * v * y * y);
        y = y * (1.5 - 0.5 * v * y * y);
        y = y * (1.5 - 0.5 * v * y * y);
        double r = v * y;

        uint64_t q = wt[j] >> 30; /* quadrant of theta */
        double ph = (((double)(wt[j] & 0x3fffffffu) + 0.5) * 0x1p-30 - 0.5) * 1.5707963267948966;
        double p2 = ph * ph;
        double sn = 1.0 / 355687428096000;
        sn = sn * p2 - 1.0 / 1307674368000, sn = sn * p2 + 1.0 / 6227020800, sn = sn * p2 - 1.0 / 39916800;
        sn = sn * p2 + 1.0 / 362880, sn = sn * p2 - 1.0 / 5040, sn = sn * p2 + 1.0 / 120, sn = sn * p2 - 1.0 / 6;
        sn = ph + ph * p2 * sn;
        double cs = 1.0 / 20922789888000;
        cs = cs * p2 - 1.0 / 87178291200, cs = cs * p2 + 1.0 / 479001600, cs = cs * p2 - 1.0 / 3628800;
        cs = cs * p2 + 1.0 / 40320, cs = cs * p2 - 1.0 / 720, cs = cs * p2 + 1.0 / 24, cs = cs * p2 - 0.5;
        cs = 1 + p2 * cs;
        /* theta = q pi/2 + pi/4 + ph */
        double c45 = (cs - sn) * 0.70710678118654752, s45 = (cs + sn) * 0.70710678118654752;
        uint64_t odd = (uint64_t)0 - (q & 1u);
        double a = pick(odd, s45, c45), b = pick(odd, c45, s45);
        uint64_t neg_c = (((q + 1u) >> 1) & 1u) << 63, neg_s = (q >> 1) << 63;
        z0[j] = r * as_f64(as_u64(a) ^ neg_c);
        z1[j] = r * as_f64(as_u64(b) ^ neg_s);
    }
}

/* Words for all blocks, then the two Box-Muller passes of the documented layout. */
void hb_rng_normals(uint64_t seed, uint64_t index, uint32_t stream, int nq, uint32_t *words, double *z)
{
    uint32_t *w0 = words, *w1 = words + nq, *w2 = words + 2 * nq, *w3 = words + 3 * nq;
    philox_words((uint32_t)seed, (uint32_t)(seed >> 32), (uint32_t)index, (uint32_t)(index >> 32), stream, nq, w0, w1,
                 w2, w3);
    box_muller(nq, w0, w1, z, z + nq);
    box_muller(nq, w2, w3, z + 2 * nq, z + 3 * nq);
}
