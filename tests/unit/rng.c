/* Unit tests of the risk kernel's random streams (kernels/risk/rng.h).
 *
 * The reference is Random123's own philox4x32 (the header library, called directly),
 * first checked against Random123's published known-answer vectors (kat_vectors,
 * Philox4x32-10); the normals are checked against Box-Muller computed here with libm's
 * log, sqrt, cos and sin, and their moments against the normal distribution's. */
#include "unit.h"

#include "kernels/risk/rng.h"

#include <Random123/philox.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Random123's kat_vectors for philox4x32 with 10 rounds: counter, key, result. */
static const struct {
    uint32_t ctr[4], key[2], out[4];
} kat[3] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

/* The block of Random123's Philox at counter (index, j, stream) with key seed. */
static philox4x32_ctr_t ref_block(uint64_t seed, uint64_t index, uint32_t j, uint32_t stream)
{
    philox4x32_ctr_t c = {{(uint32_t)index, (uint32_t)(index >> 32), j, stream}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return philox4x32(c, k);
}

/* Box-Muller of the rng.h contract with libm: R cos(theta) or R sin(theta). */
static double ref_normal(uint32_t wu, uint32_t wt, int sine)
{
    double r = sqrt(-2 * log(((double)wu + 0.5) / 4294967296.0));
    double theta = 2 * M_PI * (((double)wt + 0.5) / 4294967296.0);
    return sine ? r * sin(theta) : r * cos(theta);
}

static void test_kat(void)
{
    for (int i = 0; i < 3; i++) {
        philox4x32_ctr_t c = {{kat[i].ctr[0], kat[i].ctr[1], kat[i].ctr[2], kat[i].ctr[3]}};
        philox4x32_key_t k = {{kat[i].key[0], kat[i].key[1]}};
        philox4x32_ctr_t o = philox4x32(c, k);
        CHECKF(memcmp(o.v, kat[i].out, sizeof o.v) == 0, "Random123 kat vector %d: %08x %08x %08x %08x", i, o.v[0],
               o.v[1], o.v[2], o.v[3]);
    }
    /* the GSL generator at (seed 0, index 0, stream 0) is counter 0, key 0: vector 0 */
    gsl_rng *r = gsl_rng_alloc(hb_rng_philox);
    if (!CHECK(r)) return;
    CHECK(gsl_rng_min(r) == 0 && gsl_rng_max(r) == 0xffffffffUL);
    hb_rng_seek(r, 0, 0, 0);
    for (int w = 0; w < 4; w++) CHECKF(gsl_rng_get(r) == kat[0].out[w], "word %d of kat vector 0", w);
    /* vector 2's key and words 0, 1, 3 of its counter, block 0 then 1 */
    const uint64_t seed = 0x299f31d0a4093822u, index = 0x85a308d3243f6a88u;
    hb_rng_seek(r, seed, index, 0x03707344u);
    for (uint32_t j = 0; j < 3; j++) {
        philox4x32_ctr_t o = ref_block(seed, index, j, 0x03707344u);
        for (int w = 0; w < 4; w++) CHECKF(gsl_rng_get(r) == o.v[w], "block %u word %d", j, w);
    }
    /* seeking again restarts the stream */
    hb_rng_seek(r, seed, index, 0x03707344u);
    CHECK(gsl_rng_get(r) == ref_block(seed, index, 0, 0x03707344u).v[0]);
    /* uniforms are word / 2^32 */
    hb_rng_seek(r, 0, 0, 0);
    CHECK(gsl_rng_uniform(r) == kat[0].out[0] * 0x1p-32);
    gsl_rng_free(r);
}

/* The normals of the documented layout against Box-Muller with libm, for several nq
 * (vectorized bodies and scalar tails), and the same bits whatever nq. */
static void test_normals(void)
{
    enum { NQ = 37 };
    uint32_t words[4 * NQ];
    double z[4 * NQ], z1[4];
    const uint64_t seeds[3] = {0, 1, 0xdeadbeefcafef00du};
    const uint64_t idx[3] = {0, 12345, 0xffffffff00000001u};
    /* seed 0, index 0, stream 0, block 0: kat vector 0's words */
    hb_rng_normals(0, 0, 0, 1, words, z1);
    CHECKF(NEAR(z1[0], ref_normal(0x6627e8d5, 0xe169c58d, 0), 1e-13), "kat: z0 %.17g", z1[0]);
    CHECKF(NEAR(z1[1], ref_normal(0x6627e8d5, 0xe169c58d, 1), 1e-13), "kat: z1 %.17g", z1[1]);
    CHECKF(NEAR(z1[2], ref_normal(0xbc57ac4c, 0x9b00dbd8, 0), 1e-13), "kat: z2 %.17g", z1[2]);
    CHECKF(NEAR(z1[3], ref_normal(0xbc57ac4c, 0x9b00dbd8, 1), 1e-13), "kat: z3 %.17g", z1[3]);
    double worst = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (uint32_t stream = 0; stream < 3; stream++)
                for (int nq = 1; nq <= NQ; nq += 4) {
                    hb_rng_normals(seeds[a], idx[b], stream, nq, words, z);
                    hb_rng_normals(seeds[a], idx[b], stream, 1, words, z1);
                    int bad = -1, same = 1;
                    for (int j = 0; j < nq; j++) {
                        philox4x32_ctr_t o = ref_block(seeds[a], idx[b], (uint32_t)j, stream);
                        const double want[4] = {ref_normal(o.v[0], o.v[1], 0), ref_normal(o.v[0], o.v[1], 1),
                                                ref_normal(o.v[2], o.v[3], 0), ref_normal(o.v[2], o.v[3], 1)};
                        for (int q = 0; q < 4; q++) {
                            double d = fabs(z[q * nq + j] - want[q]);
                            if (d > worst) worst = d;
                            if (!(d <= 1e-12) && bad < 0) bad = q * nq + j;
                        }
                    }
                    CHECKF(bad < 0, "seed %d index %d stream %u nq %d: z[%d] = %.17g differs", a, b, stream, nq, bad,
                           bad < 0 ? 0 : z[bad]);
                    for (int q = 0; q < 4; q++) same &= memcmp(&z[q * nq], &z1[q], sizeof *z) == 0;
                    CHECKF(same, "seed %d index %d stream %u nq %d: block 0 not the bits of nq 1", a, b, stream, nq);
                }
    CHECKF(worst <= 1e-12, "largest difference from libm's Box-Muller: %g", worst);
}

/* The batch of draws has each draw's bits of hb_rng_normals, at any nq (below 16 the
 * draw-by-draw words, at 16 and above the AVX-512 ones where the CPU has them), batch
 * size (a last, partial vector) and row stride, also where the index carries into its
 * high word inside a batch. */
static void test_normals_batch(void)
{
    enum { NQ = 53, N = 19, LD = 4 * NQ + 3 };
    static uint32_t words[4 * NQ * N], w1[4 * NQ];
    static double tmp[4 * NQ * N], z[N * LD], z1[4 * NQ];
    const uint64_t seeds[2] = {1, 0xdeadbeefcafef00du}, idx[3] = {0, 4096, 0xfffffff7u};
    const int nqs[6] = {1, 5, 15, 16, 17, NQ}, ns[4] = {1, 3, 16, N};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int q = 0; q < 6; q++)
                for (int m = 0; m < 4; m++) {
                    const int nq = nqs[q], n = ns[m];
                    hb_rng_normals_batch(seeds[a], idx[b], 3, nq, n, words, tmp, z, LD);
                    int bad = -1;
                    for (int i = 0; i < n && bad < 0; i++) {
                        hb_rng_normals(seeds[a], idx[b] + (uint64_t)i, 3, nq, w1, z1);
                        if (memcmp(z + (size_t)i * LD, z1, 4 * (size_t)nq * sizeof *z1) != 0) bad = i;
                    }
                    CHECKF(bad < 0, "seed %d index %d nq %d n %d: draw %d differs from hb_rng_normals", a, b, nq, n,
                           bad);
                }
}

/* 2^18 normals: mean 0, variance 1, skewness 0, kurtosis 3, P(|z| > 1.96) = 0.05, and no
 * correlation between the cosine and sine of one pair, each within 4 standard errors. */
static void test_moments(void)
{
    enum { NQ = 8, DRAWS = 8192, N = 4 * NQ * DRAWS };
    uint32_t words[4 * NQ];
    double z[4 * NQ];
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, tail = 0, cs = 0;
    for (uint64_t i = 0; i < DRAWS; i++) {
        hb_rng_normals(42, i, 7, NQ, words, z);
        for (int k = 0; k < 4 * NQ; k++) {
            double x = z[k], x2 = x * x;
            s1 += x, s2 += x2, s3 += x2 * x, s4 += x2 * x2;
            tail += fabs(x) > 1.959963984540054;
        }
        for (int j = 0; j < NQ; j++) cs += z[j] * z[NQ + j];
    }
    double mean = s1 / N, var = s2 / N - mean * mean, skew = s3 / N, kurt = s4 / N, ptail = tail / N;
    double corr = cs / (N / 4.0);
    CHECKF(fabs(mean) < 4 / sqrt(N), "mean %g", mean);
    CHECKF(fabs(var - 1) < 4 * sqrt(2.0 / N), "variance %g", var);
    CHECKF(fabs(skew) < 4 * sqrt(15.0 / N), "third moment %g", skew);
    CHECKF(fabs(kurt - 3) < 4 * sqrt(96.0 / N), "fourth moment %g", kurt);
    CHECKF(fabs(ptail - 0.05) < 4 * sqrt(0.05 * 0.95 / N), "P(|z| > 1.96) = %g", ptail);
    CHECKF(fabs(corr) < 4 / sqrt(N / 4.0), "cos-sin correlation %g", corr);

    /* the GSL generator's uniforms: mean 1/2, variance 1/12 */
    gsl_rng *r = gsl_rng_alloc(hb_rng_philox);
    if (!CHECK(r)) return;
    hb_rng_seek(r, 3, 0, 1);
    double u1 = 0, u2 = 0;
    const int M = 1 << 18;
    for (int i = 0; i < M; i++) {
        double u = gsl_rng_uniform(r);
        u1 += u, u2 += u * u;
    }
    double um = u1 / M, uv = u2 / M - um * um;
    CHECKF(fabs(um - 0.5) < 4 * sqrt(1.0 / 12 / M), "uniform mean %g", um);
    CHECKF(fabs(uv - 1.0 / 12) < 4 * sqrt(1.0 / 180 / M), "uniform variance %g", uv);
    gsl_rng_free(r);
}

void unit_rng(void)
{
    test_kat();
    test_normals();
    test_normals_batch();
    test_moments();
}
