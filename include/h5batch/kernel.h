/* The kernel interface: one table of function pointers per kernel, found by name in
 * the registry (kernels/registry.c). Adding a kernel means adding a file and one line
 * to the registry.
 *
 * The driver splits the input into fixed-size chunks whose boundaries depend only on
 * chunk_rows, never on the rank count, and runs rounds: in each round every rank maps
 * at most one chunk, then all ranks call exchange (where a kernel moves keyed records
 * to the rank that owns their key). A kernel's state is therefore mergeable by
 * construction: sums, counts and keyed records that do not depend on which rank saw
 * which chunk, which is what makes outputs bit-identical at any rank count and lets
 * checkpoints record "finished chunks + state". */
#ifndef H5BATCH_KERNEL_H
#define H5BATCH_KERNEL_H

#include "h5batch/io.h"
#include "h5batch/opts.h"

#include <stddef.h>
#include <stdint.h>

typedef struct hb_step_ctx {
    const char *job_name, *step_name;
    const char *input, *output;
    const hb_optset *opts;
    hb_in *in;          /* the step's input file, opened by the driver */
    int threads;        /* OpenMP threads per rank */
    int64_t chunk_rows; /* rows per chunk: from the job file, else the kernel's default */
    int64_t n_rows;     /* set by setup */
    int64_t n_chunks;   /* set by setup */
} hb_step_ctx;

typedef struct hb_kernel {
    const char *name;
    const char *summary;
    const hb_option *options;
    int64_t default_chunk_rows;
    /* Not collective. Checks what the option table cannot (zone names, cross-option
     * rules); on failure names the offending key in *key and returns 78. Optional. */
    int (*validate)(const hb_optset *o, const char **key, char *msg, size_t len);
    /* Collective. Validates the input, builds the state, sets ctx->n_rows/n_chunks. */
    int (*setup)(hb_step_ctx *ctx, void **state);
    /* Not collective. Adds chunk c (rows [c*chunk_rows, ...)) to the state. */
    int (*map)(void *state, int64_t c);
    /* Collective, optional. Called after every round of chunks. */
    int (*exchange)(void *state);
    /* Collective. Reduces the state and writes the results into out. */
    int (*finalize)(void *state, hb_out *out);
    /* Not collective. Serializes this rank's part of the state (everything it has
     * mapped and received so far) into *buf (malloc'd), for checkpoints. */
    int (*save)(void *state, void **buf, size_t *len);
    /* Not collective. Merges a part saved by any rank of an earlier run (at any rank
     * count) into the state. Records another rank owns now may be staged for sending:
     * the driver calls exchange once after loading, before the next round. */
    int (*load)(void *state, const void *buf, size_t len);
    /* Not collective. Frees the state; safe on a partly built one. */
    void (*destroy)(void *state);
} hb_kernel;

#endif
