/* RUN_DIR/status.json (DESIGN.md 5): written atomically by rank 0 as the job goes, and
 * shown by `h5batch status`. */
#ifndef HB_STATUS_H
#define HB_STATUS_H

#include <stdint.h>

typedef struct hb_status {
    const char *job, *state, *step, *error, *last_checkpoint;
    const char *unit; /* what the step's rows are (hb_kernel.unit): rows_* count these */
    int step_index, steps_total, ranks, restarts;
    int64_t chunks_done, chunks_total, rows_done, rows_total;
    double rate, eta;
    double started_at, updated_at; /* Unix time */
} hb_status;

/* Not collective (rank 0). Replaces dir/status.json atomically; 73 on failure. */
int hb_status_write(const char *dir, const hb_status *s);
/* `h5batch status RUN_DIR [--json]`: returns an exit code. */
int hb_status_main(int argc, char **argv);
/* Formats Unix time t as ISO 8601 UTC into buf. */
void hb_iso_time(double t, char *buf, unsigned len);

#endif
