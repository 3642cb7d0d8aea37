/* Checkpoints (DESIGN.md 5): the ledger of finished chunks and every rank's saved kernel
 * state, in one HDF5 file per checkpoint in the run directory, listed in a manifest with
 * sizes and xxHash checksums. The last two of a step are kept; the newest valid one is
 * restored on any rank count. */
#ifndef HB_CKPT_H
#define HB_CKPT_H

#include <stddef.h>
#include <stdint.h>

typedef struct hb_ckpt_id {
    const char *run_dir, *step;
    const char *fingerprint; /* the step's identity: a checkpoint of another is refused */
} hb_ckpt_id;

/* Collective. Writes checkpoint seq: ledger[n_chunks] (same on every rank) and this
 * rank's state blob; commits it only when every rank wrote its part, then drops the
 * step's checkpoints older than the previous one. *bytes is the file size. */
int hb_ckpt_write(const hb_ckpt_id *id, int64_t seq, int restarts, const uint8_t *ledger, int64_t n_chunks,
                  const void *blob, size_t len, uint64_t *bytes, char *name, size_t name_len);

/* Collective. Restores the newest valid checkpoint of the step: fills ledger, *seq and
 * *restarts, and calls load(user, blob, len) for each saved part this rank takes (part i
 * goes to rank i mod size). A damaged checkpoint is skipped with a warning; one of a
 * different job is refused (78). *found = 0 when there is none to restore. */
int hb_ckpt_restore(const hb_ckpt_id *id, uint8_t *ledger, int64_t n_chunks, int64_t *seq, int *restarts,
                    int (*load)(void *user, const void *blob, size_t len), void *user, int *found, char *name,
                    size_t name_len);

/* Rank 0. Removes the step's checkpoints (all steps' when step is NULL) and its manifest lines. */
int hb_ckpt_remove(const char *run_dir, const char *step);


#endif
