/* Counter-based random numbers for the risk kernel and `h5batch gen market`: Random123's
 * Philox4x32-10 keyed by the seed, so that every draw is a function of (seed, index,
 * stream) alone and any part of a stream can be drawn on any rank, in any order.
 *
 * Counter words: {index low 32 bits, index high 32 bits, block j, stream}. */
#ifndef HB_RISK_RNG_H
#define HB_RISK_RNG_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

/* A GSL generator over one Philox stream, for GSL's samplers (gamma, chi-squared, t):
 * allocate it with gsl_rng_alloc(hb_rng_philox) and position it with hb_rng_seek. */
extern const gsl_rng_type *hb_rng_philox;

/* Not collective. Positions r (of type hb_rng_philox) at block 0 of draw index in
 * stream: the values that follow depend on (seed, index, stream) only. */
void hb_rng_seek(gsl_rng *r, uint64_t seed, uint64_t index, uint32_t stream);

/* Not collective. The 4*nq standard normals of draw index in stream, by Box-Muller on
 * the nq Philox blocks j = 0..nq-1 at counter (index, j, stream): block j's words
 * (w0, w1) give z[j] = R cos(theta) and z[nq + j] = R sin(theta), its words (w2, w3)
 * give z[2 nq + j] and z[3 nq + j], with R = sqrt(-2 ln((w_even + 1/2) / 2^32)) and
 * theta = 2 pi (w_odd + 1/2) / 2^32. words is scratch of 4*nq values. The result is
 * the same bits on every machine with IEEE doubles, vectorized or not. */
void hb_rng_normals(uint64_t seed, uint64_t index, uint32_t stream, int nq, uint32_t *words, double *z);

/* Not collective. The normals of draws index .. index + n - 1, draw i's 4*nq of
 * hb_rng_normals at z + i*ldz: the same values, computed for all n draws at once
 * (vectors never run short of a draw's blocks). words is scratch of 4*n*nq values, tmp of
 * 4*n*nq doubles. */
void hb_rng_normals_batch(uint64_t seed, uint64_t index, uint32_t stream, int nq, int n, uint32_t *words, double *tmp,
                          double *z, size_t ldz);

#endif
