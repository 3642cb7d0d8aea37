/* h5batch: command line entry point. One table of the driver's commands, then the
 * kernels' own commands from the registry; errors become exit codes, printed once. */
#include "core/commit.h"
#include "core/hb.h"
#include "core/opts.h"
#include "core/stall.h"
#include "export.h"
#include "gen.h"
#include "import.h"
#include "io/io.h"
#include "kernels/kernel.h"
#include "mpienv.h"
#include "run.h"
#include "status.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int help_main(int argc, char **argv);
static int version_main(int argc, char **argv);
static int kernels_main(int argc, char **argv);

typedef struct command {
    const char *name;
    const char *usage; /* the arguments, for the help text; NULL: not listed */
    int collective;    /* runs under MPI: every rank calls main */
    int (*main)(int argc, char **argv);
} command;

static const command commands[] = {
    {"run", "JOB.ini [--set STEP.KEY=VALUE]... [--fresh] [--force] [--partial] [-v|-q]   (h5batch run --help)", 1,
     hb_run_main},
    {"merge",
     "PART.h5... -o OUT.h5 [--partial] [--run-dir DIR] [--fresh] [--force] [--threads N]\n"
     "                [--checkpoint-interval D] [--stall-timeout D] [-v|-q]   (h5batch merge --help)",
     1, hb_merge_main},
    {"gen", "NAME -o FILE [--OPTION VALUE]... [--force] [-q|-v]   (h5batch gen NAME --help: its options)", 1,
     hb_gen_main},
    {"status", "RUN_DIR [--json]   (h5batch status --help)", 0, hb_status_main},
    {"import",
     "FILE.csv[.gz]... -o OUT.h5 [--table NAME] [--columns SPEC] [--timezone TZ] [--delimiter C]\n"
     "                 [--null STR] [--decimal C] [--null-padding] [--on-error fail|skip] [--append] [--force]\n"
     "                 [-q|-v]   (h5batch import --help)",
     1, hb_import_main},
    {"kernels", "[NAME [--json]]", 0, kernels_main},
    {"export", HB_EXPORT_USAGE "   (h5batch export --help)", 0, hb_export_main},
    {"--help", NULL, 0, help_main},
    {"-h", NULL, 0, help_main},
    {"help", NULL, 0, help_main},
    {"--version", NULL, 0, version_main},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f)
{
    fprintf(f, "h5batch %s - batch analytics on HDF5 with MPI and OpenMP\n\nusage:\n", HB_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].usage) fprintf(f, "  h5batch %s %s\n", commands[i].name, commands[i].usage);
    for (const hb_kernel *const *k = hb_kernels(); *k; k++)
        for (const hb_command *const *c = (*k)->commands; c && *c; c++)
            fprintf(f, "  h5batch %s %s\n", (*c)->name, (*c)->usage ? (*c)->usage : "");
    fprintf(f, "  h5batch --help | --version\n\ngenerators (h5batch gen NAME):\n");
    for (const hb_kernel *const *k = hb_kernels(); *k; k++)
        if ((*k)->generator) fprintf(f, "  %-10s %s\n", (*k)->generator->name, (*k)->generator->summary);
    fprintf(f, "\nkernels (h5batch kernels NAME: options, inputs and outputs):\n");
    for (const hb_kernel *const *k = hb_kernels(); *k; k++)
        fprintf(f, "  %-10s %s%s\n", (*k)->name, (*k)->summary, hb_kernel_origin(*k) ? " (plugin)" : "");
    fputs("\nrun and gen work as a plain process or under mpirun/srun (one rank per process).\n"
          "Plugin kernels are loaded from the folders in H5BATCH_PLUGIN_PATH (colon-separated).\n"
          "Sizes take k/M/G (powers of 1000). Exit status: 0 ok, 64 usage, 65 bad input data,\n"
          "66 input missing, 70 internal error, 73 cannot create output, 74 I/O error,\n"
          "75 interrupted after a checkpoint (run again to resume), 78 bad job file.\n",
          f);
}

static int help_main(int argc, char **argv)
{
    (void)argc, (void)argv;
    print_usage(stdout);
    return 0;
}

static int version_main(int argc, char **argv)
{
    (void)argc, (void)argv;
    unsigned a, b, c;
    H5get_libversion(&a, &b, &c);
    printf("h5batch %s (HDF5 %u.%u.%u, MPI %d.%d, plugin ABI %d)\n", HB_VERSION, a, b, c, MPI_VERSION, MPI_SUBVERSION,
           HB_ABI_VERSION);
    return 0;
}

/* Prints a dataset description list for people: path or column, kind, dims, units. */
static void print_descs(const char *title, const hb_dataset_desc *d)
{
    printf("\n%s:\n", title);
    if (!d) {
        printf("  (not described by this kernel)\n");
        return;
    }
    for (; d->name; d++) {
        char what[512], shape[300];
        if (d->table) snprintf(what, sizeof what, "column %s of %s%s", d->name, d->table[0] == '/' ? "" : "the ",
                               d->table[0] == '/' ? d->table : "table (option table)");
        else snprintf(what, sizeof what, "%s", d->name);
        snprintf(shape, sizeof shape, "%s%s%s", d->dims && d->dims[0] ? " [" : "", d->dims ? d->dims : "",
                 d->dims && d->dims[0] ? "]" : "");
        printf("  %s\n      %s%s%s%s%s\n      %s\n", what, d->kind, shape, d->units ? ", units " : "",
               d->units ? d->units : "", d->optional ? ", optional" : "", d->help ? d->help : "");
    }
}

/* Prints s as a JSON string (NULL as null). */
static void json_str(const char *s) { hb_json_str(stdout, s, s ? strlen(s) : 0); }

static void json_descs(const char *key, const hb_dataset_desc *d)
{
    printf(",\n  \"%s\": ", key);
    if (!d) {
        fputs("null", stdout);
        return;
    }
    fputs("[", stdout);
    for (const hb_dataset_desc *e = d; e->name; e++) {
        fputs(e == d ? "\n    {\"name\": " : ",\n    {\"name\": ", stdout);
        json_str(e->name);
        fputs(", \"table\": ", stdout);
        json_str(e->table);
        fputs(", \"kind\": ", stdout);
        json_str(e->kind);
        fputs(", \"dims\": [", stdout);
        const char *p = e->dims ? e->dims : "";
        for (int first = 1; *p; first = 0) {
            size_t n = strcspn(p, ",");
            char dim[256];
            snprintf(dim, sizeof dim, "%.*s", (int)n, p);
            if (!first) fputs(", ", stdout);
            json_str(dim);
            p += n + (p[n] == ',');
        }
        fputs("], \"units\": ", stdout);
        json_str(e->units);
        printf(", \"optional\": %s, \"help\": ", e->optional ? "true" : "false");
        json_str(e->help);
        fputs("}", stdout);
    }
    fputs("\n  ]", stdout);
}

/* `h5batch kernels NAME --json`: the kernel's options, inputs and outputs as JSON. */
static void kernel_json(const hb_kernel *k)
{
    fputs("{\n  \"name\": ", stdout);
    json_str(k->name);
    fputs(",\n  \"summary\": ", stdout);
    json_str(k->summary);
    fputs(",\n  \"plugin\": ", stdout);
    json_str(hb_kernel_origin(k));
    fputs(",\n  \"options\": [", stdout);
    for (const hb_option *o = k->options; o->name; o++) {
        fputs(o == k->options ? "\n    {\"name\": " : ",\n    {\"name\": ", stdout);
        json_str(o->name);
        fputs(", \"default\": ", stdout);
        json_str(o->def);
        fputs(", \"help\": ", stdout);
        json_str(o->help);
        fputs("}", stdout);
    }
    fputs("\n  ]", stdout);
    json_descs("inputs", k->inputs);
    json_descs("outputs", k->outputs);
    printf(",\n  \"partial_states\": %s", k->describe && k->setup_parts ? "true" : "false");
    fputs("\n}\n", stdout);
}

/* `h5batch kernels [NAME [--json]]`: the kernels, or one kernel's options, what it reads
 * and what it writes (the description tables of its hb_kernel). The list is 78 when a
 * plugin could not be loaded: its kernels are missing from it. */
static int kernels_main(int argc, char **argv)
{
    if (argc == 0) {
        for (const hb_kernel *const *k = hb_kernels(); *k; k++) {
            const char *from = hb_kernel_origin(*k);
            printf("%-10s %s%s%s%s\n", (*k)->name, (*k)->summary, from ? " (plugin " : "", from ? from : "",
                   from ? ")" : "");
        }
        if (hb_plugins_failed())
            return hb_err_set(HB_ECONFIG, "kernels", "%d plugin%s could not be loaded (the warnings above say why)",
                              hb_plugins_failed(), hb_plugins_failed() == 1 ? "" : "s");
        return 0;
    }
    int json = 0;
    const char *name = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (!name && argv[i][0] != '-') name = argv[i];
        else return hb_err_set(HB_EUSAGE, "kernels", "unexpected '%s' (usage: h5batch kernels [NAME [--json]])", argv[i]);
    }
    const hb_kernel *k = name ? hb_kernel_find(name) : NULL;
    if (!name) return hb_err_set(HB_EUSAGE, "kernels", "--json needs a kernel name (usage: h5batch kernels NAME --json)");
    if (!k) {
        char what[400];
        snprintf(what, sizeof what, "unknown kernel '%.256s' (h5batch kernels lists them)", name);
        return hb_plugins_missing(HB_EUSAGE, "kernels", what);
    }
    if (json) {
        kernel_json(k);
        return 0;
    }
    printf("kernel %s: %s\n", k->name, k->summary);
    if (hb_kernel_origin(k)) printf("plugin: %s\n", hb_kernel_origin(k));
    printf("default chunk_rows: %lld %s\n", (long long)k->default_chunk_rows, hb_kernel_unit(k));
    if (k->generator) printf("generator: h5batch gen %s (h5batch gen %s --help)\n", k->generator->name, k->generator->name);
    for (const hb_command *const *c = k->commands; c && *c; c++)
        printf("command: h5batch %s %s\n", (*c)->name, (*c)->usage ? (*c)->usage : "");
    printf("partial states: %s\n", k->describe && k->setup_parts ? "yes (h5batch run --partial, h5batch merge)"
                                                                  : "no (a step of it cannot run with --partial)");
    printf("\noptions of [step NAME] with kernel = %s:\n", k->name);
    printf("  %-20s %s\n  %-20s %s\n  %-20s %s\n", "kernel", "kernel name", "input", "input HDF5 file", "output",
           "output HDF5 file (written under a temporary name, committed when complete)");
    hb_opt_print(k->options, "  ");
    print_descs("inputs (datasets and table columns it reads; <NAME>: a name given in the options)", k->inputs);
    print_descs("outputs (datasets it writes)", k->outputs);
    return 0;
}

/* 64 for an unknown command name, suggesting the closest one. */
static int unknown_command(const char *name)
{
    const char *names[NCOMMANDS + 64];
    size_t n = 0;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].usage) names[n++] = commands[i].name;
    for (const hb_kernel *const *k = hb_kernels(); *k; k++)
        for (const hb_command *const *c = (*k)->commands; c && *c && n + 1 < sizeof names / sizeof names[0]; c++)
            names[n++] = (*c)->name;
    names[n] = NULL;
    const char *best = hb_suggest(name, names);
    char what[600];
    if (best) snprintf(what, sizeof what, "unknown command '%.256s' (did you mean '%s'?)", name, best);
    else snprintf(what, sizeof what, "unknown command '%.256s' (h5batch --help)", name);
    return hb_plugins_missing(HB_EUSAGE, NULL, what);
}

int main(int argc, char **argv)
{
    const char *reserved[NCOMMANDS + 1];
    for (size_t i = 0; i < NCOMMANDS; i++) reserved[i] = commands[i].name;
    reserved[NCOMMANDS] = NULL;
    /* before MPI_Init, so that a plugin's command can say whether it needs MPI; the
     * error, if any, is printed once MPI tells who rank 0 is */
    int rc = hb_plugins_load(reserved);
    if (argc < 2) {
        hb_plugins_warn();
        if (rc == 0) print_usage(stderr);
        hb_err_report();
        return rc ? rc : HB_EUSAGE;
    }
    const char *name = argv[1];
    int (*fn)(int, char **) = NULL;
    int collective = 0;
    for (size_t i = 0; i < NCOMMANDS && !fn; i++)
        if (strcmp(commands[i].name, name) == 0) fn = commands[i].main, collective = commands[i].collective;
    const hb_command *kc = fn ? NULL : hb_command_find(name, NULL);
    if (kc) fn = kc->main, collective = kc->collective;
    if (collective) {
        int provided;
        hb_mpi_env_defaults(); /* no probing for fabrics the host lacks (mpienv.h) */
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        hb_mpi_env_after_init(); /* no Nagle delay on the PMIx connection (mpienv.h) */
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL); /* h5batch/errors.h: MPI errors abort */
        MPI_Comm_rank(MPI_COMM_WORLD, &hb_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &hb_size);
        hb_stall_init(); /* the agreements' deadline (core/stall.h) */
        hb_io_init();
        /* OpenMP threads run beside MPI; only the main thread calls MPI */
        if (rc == 0 && provided < MPI_THREAD_FUNNELED)
            rc = hb_err_set(HB_EINTERNAL, "MPI",
                            "the MPI library provides thread level %d, h5batch needs MPI_THREAD_FUNNELED (%d)",
                            provided, MPI_THREAD_FUNNELED);
        rc = hb_agree(rc);
    }
    hb_plugins_warn(); /* once, by rank 0; only a command that needs the plugin fails */
    if (rc == 0) rc = fn ? fn(argc - 2, argv + 2) : unknown_command(name);
    hb_err_report();
    if (collective) {
        hb_stall_finalize();
        MPI_Finalize();
        hb_mpi_env_cleanup(); /* a plain process's own session folder (mpienv.h) */
    }
    hb_commit_drain(); /* a replaced output's blocks are freed meanwhile (core/commit.h) */
    return rc;
}
