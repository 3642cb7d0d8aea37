/* table_read FILE TABLE COLUMN [ROWS_PER_READ]: seconds and MB/s to read one column of a
 * table in row ranges through io/table.c (hb_table_read, to double), the same calls the
 * kernels make; bench/tables.sh runs it on one data set in several layouts. */
#include "h5batch/io.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) return fprintf(stderr, "usage: table_read FILE TABLE COLUMN [ROWS]\n"), 64;
    MPI_Init(&argc, &argv);
    hb_io_init();
    int64_t piece = argc > 4 ? atoll(argv[4]) : 1 << 20;
    hb_in *in;
    hb_table *t;
    const char *cols[] = {argv[3]};
    if (hb_in_open(argv[1], &in) || hb_table_open(in, argv[2], cols, 1, &t)) return fprintf(stderr, "cannot open\n"), 66;
    int64_t n = hb_table_rows(t);
    double *buf = malloc((size_t)piece * sizeof *buf), sum = 0, best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (int64_t s = 0; s < n; s += piece) {
            int64_t c = n - s < piece ? n - s : piece;
            if (hb_table_read(t, 0, s, c, HB_F64, buf)) return fprintf(stderr, "read failed\n"), 74;
            sum += buf[0];
        }
        double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    printf("%s %s %s: %lld rows in %.3f s (best of 3), %.0f Mrows/s, %.0f MB/s of doubles (check %g)\n", argv[1],
           argv[2], argv[3], (long long)n, best, (double)n / best / 1e6, (double)n * 8 / best / 1e6, sum);
    hb_table_close(t);
    hb_in_close(in);
    free(buf);
    MPI_Finalize();
    return 0;
}
