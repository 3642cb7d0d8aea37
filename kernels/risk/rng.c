/* Philox streams: a GSL generator type for GSL's samplers, and vectorized Box-Muller
 * normals for the Monte Carlo hot loop.
 *
 * The normals use only IEEE +, -, *, / and bit operations (no libm calls, whose scalar
 * and vector versions differ in the last bits), so a value has the same bits whether a
 * loop ran vectorized or not and whichever clone (AVX2 or baseline) the CPU picked. */
#include "kernels/risk/rng.h"

#include <Random123/philox.h>
#include <immintrin.h>
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

/* 16 lanes of Philox4x32-10 rounds on AVX-512: the products of even and odd lanes by
 * two 32 x 32 -> 64-bit multiplies, their halves blended back into lanes. */
__attribute__((target("avx512f"))) static inline void mulhilo16(__m512i x, __m512i m, __m512i *hi, __m512i *lo)
{
    const __m512i pe = _mm512_mul_epu32(x, m), po = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);
    *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}

/* philox_words for the blocks e = i nq + j of draws index + i (i < n), 16 blocks a
 * step, the lanes' (i, j) advanced by 16 with one wrap (nq >= 16). */
__attribute__((target("avx512f"))) static void philox_words_avx512(uint64_t seed, uint64_t index, uint32_t c3, int nq,
                                                                   int n, uint32_t *w0, uint32_t *w1, uint32_t *w2,
                                                                   uint32_t *w3)
{
    const __m512i m0 = _mm512_set1_epi32((int)PHILOX_M4x32_0), m1 = _mm512_set1_epi32((int)PHILOX_M4x32_1);
    const __m512i lo0 = _mm512_set1_epi32((int)(uint32_t)index), hi0 = _mm512_set1_epi32((int)(uint32_t)(index >> 32));
    const __m512i vq = _mm512_set1_epi32(nq), v16 = _mm512_set1_epi32(16), one = _mm512_set1_epi32(1);
    const __m512i vc3 = _mm512_set1_epi32((int)c3);
    __m512i ka[10], kb[10];
    uint32_t a = (uint32_t)seed, b = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++, a += PHILOX_W32_0, b += PHILOX_W32_1)
        ka[r] = _mm512_set1_epi32((int)a), kb[r] = _mm512_set1_epi32((int)b);
    uint32_t i0[16], j0[16];
    for (int l = 0; l < 16; l++) i0[l] = (uint32_t)(l / nq), j0[l] = (uint32_t)(l % nq);
    __m512i vi = _mm512_loadu_si512(i0), vj = _mm512_loadu_si512(j0);
    const int64_t total = (int64_t)n * nq;
    for (int64_t e = 0; e < total; e += 16) {
        __m512i x0 = _mm512_add_epi32(lo0, vi), x1 = hi0, x2 = vj, x3 = vc3;
        x1 = _mm512_mask_add_epi32(x1, _mm512_cmplt_epu32_mask(x0, vi), x1, one); /* the carry into the high word */
        for (int r = 0; r < 10; r++) {
            __m512i h0, l0, h1, l1;
            mulhilo16(x0, m0, &h0, &l0);
            mulhilo16(x2, m1, &h1, &l1);
            x0 = _mm512_ternarylogic_epi32(h1, x1, ka[r], 0x96);
            x1 = l1;
            x2 = _mm512_ternarylogic_epi32(h0, x3, kb[r], 0x96);
            x3 = l0;
        }
        const __mmask16 keep = total - e >= 16 ? 0xFFFF : (__mmask16)((1u << (total - e)) - 1);
        _mm512_mask_storeu_epi32(w0 + e, keep, x0);
        _mm512_mask_storeu_epi32(w1 + e, keep, x1);
        _mm512_mask_storeu_epi32(w2 + e, keep, x2);
        _mm512_mask_storeu_epi32(w3 + e, keep, x3);
        vj = _mm512_add_epi32(vj, v16);
        const __mmask16 wrap = _mm512_cmpge_epu32_mask(vj, vq);
        vj = _mm512_mask_sub_epi32(vj, wrap, vj, vq);
        vi = _mm512_mask_add_epi32(vi, wrap, vi, one);
    }
}

/* Words of all n draws (AVX-512 when the CPU has it, else draw by draw), one
 * Box-Muller pass over each word pair of all of them, then each draw's four parts to
 * its row of z. */
void hb_rng_normals_batch(uint64_t seed, uint64_t index, uint32_t stream, int nq, int n, uint32_t *words, double *tmp,
                          double *z, size_t ldz)
{
    const size_t t = (size_t)n * (size_t)nq;
    uint32_t *w0 = words, *w1 = words + t, *w2 = words + 2 * t, *w3 = words + 3 * t;
    if (nq >= 16 && __builtin_cpu_supports("avx512f"))
        philox_words_avx512(seed, index, stream, nq, n, w0, w1, w2, w3);
    else
        for (int i = 0; i < n; i++) {
            const uint64_t d = index + (uint64_t)i;
            const size_t o = (size_t)i * (size_t)nq;
            philox_words((uint32_t)seed, (uint32_t)(seed >> 32), (uint32_t)d, (uint32_t)(d >> 32), stream, nq, w0 + o,
                         w1 + o, w2 + o, w3 + o);
        }
    box_muller((int)t, w0, w1, tmp, tmp + t);
    box_muller((int)t, w2, w3, tmp + 2 * t, tmp + 3 * t);
    for (int i = 0; i < n; i++)
        for (int q = 0; q < 4; q++)
            memcpy(z + (size_t)i * ldz + (size_t)q * (size_t)nq, tmp + (size_t)q * t + (size_t)i * (size_t)nq,
                   (size_t)nq * sizeof *z);
}
