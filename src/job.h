/* Job files (DESIGN.md 3): INI with [job] and [step NAME] sections, ${VAR} expansion,
 * --set STEP.KEY=VALUE overrides, and validation of every key against the tables. */
#ifndef HB_JOB_H
#define HB_JOB_H

#include "kernels/kernel.h"
#include "core/opts.h"

#include <stdint.h>

typedef struct hb_step {
    char *name;
    int line;
    const hb_kernel *kernel;
    const char *input, *output; /* point into kv */
    hb_kv *kv;                  /* every key of the section, in file order, then --set */
    int nkv, cap;
    hb_kv *okv; /* kernel options only (a view for hb_optset) */
    int nokv;
    hb_optset opts;
} hb_step;

typedef struct hb_job {
    char *path, *text; /* job file and its full text, plus the --set arguments */
    char *name, *run_dir;
    double checkpoint_interval;
    int threads;
    int64_t chunk_rows; /* 0: each kernel's default */
    double max_memory;  /* bytes per rank; 0: the default (hb_mem_set_limit) */
    double max_invalid_fraction;
    const char *scratch_dir; /* [job] scratch_dir, or NULL: $SLURM_TMPDIR, $TMPDIR, <run_dir>/scratch */
    double stall_timeout; /* seconds a rank waits at an agreement for the others; 0: forever */
    hb_kv *kv;          /* [job] keys */
    int nkv, cap;
    hb_step *steps;
    int nsteps, scap;
} hb_job;

/* Not collective (every rank parses the same file the same way). Reads, expands and
 * validates path with the --set overrides; 66 when unreadable, 78 when wrong, with
 * file:line in the message. */
int hb_job_load(const char *path, char *const *sets, int nsets, hb_job *job);
void hb_job_free(hb_job *job);

#endif
