/* libFuzzer harness: the job-file reader and the --set overrides (src/job.c, with the
 * option tables of src/core/opts.c and of every built-in kernel). The input is the job
 * file's text, then, after a NUL byte, up to 8 NUL-separated --set arguments
 * (STEP.KEY=VALUE). Any status is fine; what must not happen is a crash, a leak, a read
 * out of bounds or undefined behaviour. */
#include "job.h"

#include "core/hb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(path, sizeof path, "/tmp/h5batch-fuzz-job-%d.ini", (int)getpid());
    setenv("HB_FUZZ", "x", 1); /* one defined ${NAME} for the expansion */
    hb_log_level = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t flen = nul ? (size_t)(nul - data) : size;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, flen, f);
    fclose(f);
    char *sets[8], *rest = NULL;
    int nsets = 0;
    if (nul) {
        size_t rl = size - flen - 1;
        rest = malloc(rl + 1);
        memcpy(rest, nul + 1, rl);
        rest[rl] = '\0';
        for (char *p = rest; nsets < 8 && p <= rest + rl;) {
            sets[nsets++] = p;
            size_t l = strlen(p);
            p += l + 1;
        }
    }
    hb_job job;
    hb_job_load(path, sets, nsets, &job);
    hb_job_free(&job);
    hb_err_clear();
    free(rest);
    unlink(path);
    return 0;
}
