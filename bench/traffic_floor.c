/* traffic_floor FILE: the read-only floor of the traffic benchmark (bench/traffic.sh):
 * each rank reads its contiguous share of /observations' time, segment and speed in
 * chunks of 2^20 rows, in their stored types (hb_table_read_raw, the reads traffic's map
 * makes), and touches every byte; nothing else. Prints "seconds bytes" of the slowest
 * rank, best of 3: what no traffic run on this file can beat. */
#include "h5batch/io.h"

#include <mpi.h>
#include <stdint.h>
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
    if (argc < 2) return fprintf(stderr, "usage: traffic_floor FILE\n"), 64;
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    hb_io_init();
    const char *cols[] = {"time", "segment", "speed"};
    hb_in *in;
    hb_table *t;
    if (hb_in_open(argv[1], &in) || hb_table_open(in, "/observations", cols, 3, &t)) {
        fprintf(stderr, "traffic_floor: cannot open %s\n", argv[1]);
        MPI_Abort(MPI_COMM_WORLD, 66);
    }
    for (int c = 0; c < 3; c++)
        if (hb_table_raw_kind(t, c) == HB_RAW_OTHER) {
            fprintf(stderr, "traffic_floor: column %s is not of a type read as stored\n", cols[c]);
            MPI_Abort(MPI_COMM_WORLD, 65);
        }
    const int64_t n = hb_table_rows(t), piece = 1 << 20;
    const int64_t lo = n * rank / size, hi = n * (rank + 1) / size;
    uint64_t *buf[3], bytes = 0;
    size_t esz[3];
    for (int c = 0; c < 3; c++) {
        hb_raw_kind k = hb_table_raw_kind(t, c);
        esz[c] = k == HB_RAW_I64 || k == HB_RAW_F64 ? 8 : 4;
        bytes += (uint64_t)n * esz[c];
        buf[c] = malloc((size_t)piece * 8);
    }
    double best = 1e30;
    uint64_t check = 0;
    for (int rep = 0; rep < 3; rep++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        for (int64_t s = lo; s < hi; s += piece) {
            int64_t m = hi - s < piece ? hi - s : piece;
            for (int c = 0; c < 3; c++) {
                if (hb_table_read_raw(t, c, s, m, buf[c])) MPI_Abort(MPI_COMM_WORLD, 74);
                const uint32_t *w = (const uint32_t *)buf[c]; /* every byte touched: 4-byte words */
                int64_t words = m * (int64_t)esz[c] / 4;
                for (int64_t i = 0; i < words; i++) check += w[i];
            }
        }
        double dt = now() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        best = dt < best ? dt : best;
    }
    if (rank == 0) printf("%.4f %llu %llu\n", best, (unsigned long long)bytes, (unsigned long long)(check & 1));
    for (int c = 0; c < 3; c++) free(buf[c]);
    hb_table_close(t);
    hb_in_close(in);
    MPI_Finalize();
    return 0;
}
