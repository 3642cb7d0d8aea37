/* h5batch: command line entry point. Turns errors into exit codes, printed once. */
#include "kernels/kernel.h"
#include "io/io.h"
#include "gen.h"
#include "core/hb.h"
#include "kernels/index/query.h"
#include "run.h"
#include "status.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "h5batch " HB_VERSION " - batch analytics on HDF5 with MPI and OpenMP\n"
    "\n"
    "usage:\n"
    "  h5batch run JOB.ini [--set STEP.KEY=VALUE]... [--fresh] [--force] [-v|-q]\n"
    "  h5batch gen traffic -o FILE [--rows N] [--segments S] [--days D] [--start YYYYMMDD]\n"
    "                      [--timezone ZONE] [--events K] [--invalid FRACTION] [--seed N] [--force] [-q]\n"
    "  h5batch gen market -o FILE [--assets A] [--days T] [--portfolios P] [--transactions M]\n"
    "                     [--start YYYYMMDD] [--factors K] [--dof NU] [--seed N] [--force] [-q]\n"
    "  h5batch gen corpus -o FILE [--docs N] [--mean-bytes B] [--sigma S] [--vocab V] [--zipf S]\n"
    "                     [--empty F] [--invalid F] [--other-scripts F] [--no-doc-id] [--seed N] [--force] [-q]\n"
    "  h5batch status RUN_DIR [--json]\n"
    "  h5batch query INDEX.h5 [--top K] [--json] [--k1 X] [--b Y] WORDS...   (\"a phrase\" in double quotes)\n"
    "  h5batch kernels [NAME]\n"
    "  h5batch --help | --version\n"
    "\n"
    "run and gen work as a plain process or under mpirun/srun (one rank per process).\n"
    "Sizes take k/M/G (powers of 1000). Exit status: 0 ok, 64 usage, 65 bad input data,\n"
    "66 input missing, 70 internal error, 73 cannot create output, 74 I/O error,\n"
    "75 interrupted after a checkpoint (run again to resume), 78 bad job file.\n";

static int kernels_main(int argc, char **argv)
{
    if (argc == 0) {
        for (const hb_kernel *const *k = hb_kernels(); *k; k++) printf("%-10s %s\n", (*k)->name, (*k)->summary);
        return 0;
    }
    const hb_kernel *k = hb_kernel_find(argv[0]);
    if (!k) return hb_err_set(HB_EUSAGE, "kernels", "unknown kernel '%s' (h5batch kernels lists them)", argv[0]);
    printf("kernel %s: %s\ndefault chunk_rows: %lld\n\noptions of [step NAME] with kernel = %s:\n", k->name,
           k->summary, (long long)k->default_chunk_rows, k->name);
    printf("  %-20s %s\n  %-20s %s\n  %-20s %s\n", "kernel", "kernel name", "input", "input HDF5 file", "output",
           "output HDF5 file (written under a temporary name, committed when complete)");
    hb_opt_print(k->options, "  ");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? HB_EUSAGE : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0) {
        unsigned a, b, c;
        H5get_libversion(&a, &b, &c);
        printf("h5batch %s (HDF5 %u.%u.%u, MPI %d.%d)\n", HB_VERSION, a, b, c, MPI_VERSION, MPI_SUBVERSION);
        return 0;
    }
    int rc;
    if (strcmp(cmd, "kernels") == 0 || strcmp(cmd, "status") == 0) {
        rc = cmd[0] == 'k' ? kernels_main(argc - 2, argv + 2) : hb_status_main(argc - 2, argv + 2);
        hb_err_report();
        return rc;
    }
    if (strcmp(cmd, "query") == 0) {
        rc = hb_query_main(argc - 2, argv + 2);
        hb_err_report();
        return rc;
    }
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "gen") != 0) {
        fprintf(stderr, "h5batch: error: unknown command '%s' (h5batch --help)\n", cmd);
        return HB_EUSAGE;
    }
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL); /* core/hb.h: MPI errors abort */
    MPI_Comm_rank(MPI_COMM_WORLD, &hb_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &hb_size);
    hb_io_init();
    /* OpenMP threads run beside MPI; only the main thread calls MPI */
    if (provided < MPI_THREAD_FUNNELED)
        rc = hb_err_set(HB_EINTERNAL, "MPI",
                        "the MPI library provides thread level %d, h5batch needs MPI_THREAD_FUNNELED (%d)", provided,
                        MPI_THREAD_FUNNELED);
    else
        rc = cmd[0] == 'r' ? hb_run_main(argc - 2, argv + 2) : hb_gen_main(argc - 2, argv + 2);
    hb_err_report();
    MPI_Finalize();
    return rc;
}
