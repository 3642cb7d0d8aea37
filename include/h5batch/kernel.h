/* h5batch plugin API: the kernel interface. A kernel is one table of function pointers,
 * found by name in the registry: the built-in kernels are listed in kernels/registry.c,
 * plugin kernels register their tables from hb_plugin_init (DESIGN.md 8). The table
 * brings everything the driver knows about the kernel: its options, its functions, the
 * name of its unit of work, its data generator (`h5batch gen NAME`) and its own
 * commands (`h5batch query`).
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

#include "h5batch/base.h"
#include "h5batch/errors.h"
#include "h5batch/io.h"
#include "h5batch/opts.h"

#include <stddef.h>
#include <stdint.h>

/* The version of this interface: of the structures below and of every declaration in
 * include/h5batch/. It changes whenever a plugin built against the old headers could
 * misread the new ones; the host refuses a plugin built for another version. */
#define HB_ABI_VERSION 3

typedef struct hb_step_ctx {
    const char *job_name, *step_name;
    const char *input, *output;
    const hb_optset *opts;
    hb_in *in;          /* the step's input file, opened by the driver */
    int threads;        /* OpenMP threads per rank */
    int64_t chunk_rows; /* rows per chunk: from the job file, else the kernel's default */
    int64_t n_rows;     /* set by setup */
    int64_t n_chunks;   /* set by setup */
    /* Added in ABI version 3. 1 while the driver calls save for a partial state (run
     * --partial, merge --partial) rather than for a checkpoint: a kernel whose merges
     * read less than its checkpoints need (risk's merge recomputes from its description)
     * may leave the rest out. */
    int saving_partial;
} hb_step_ctx;

/* One part given to `h5batch merge` (DESIGN.md 7), in the order given: a partial-state
 * file written by `h5batch run --partial` or by `h5batch merge --partial`. */
typedef struct hb_part {
    const char *path;      /* the part's file, for messages */
    const void *desc;      /* what the kernel's describe wrote for it */
    size_t desc_len;
    int64_t rows;          /* rows (the kernel's units) of the input(s) it holds */
    int64_t row_offset;    /* the rows of the parts before it: the number its first row has in
                            * the concatenation of all the parts' inputs */
} hb_part;

/* A data generator: `h5batch gen NAME -o FILE [--option VALUE]...`. The driver reads
 * the command line through the option table (names as written after "--"; booleans
 * are flags), handles -o/--output, --force, -q and -v itself (so no option may have
 * those names), refuses an existing output without --force (73), creates the output
 * under a temporary name and commits it once every rank has succeeded. The file must
 * be the same for any rank and thread count. */
typedef struct hb_generator {
    const char *name;         /* h5batch gen NAME */
    const char *summary;      /* one line for `h5batch --help` */
    const hb_option *options; /* terminated by an entry with name == NULL */
    /* Not collective. Checks what the option table cannot (time zone names, rules
     * between options); 64 naming the option otherwise. Optional. */
    int (*check)(const hb_optset *o);
    /* Collective. Writes the data into out. */
    int (*write)(const hb_optset *o, hb_out *out);
} hb_generator;

/* A command of its own: `h5batch NAME ARGS...` (the index kernel's `query`). */
typedef struct hb_command {
    const char *name;
    const char *usage;   /* the arguments, for `h5batch --help`: "INDEX.h5 [--top K] WORDS..." */
    const char *summary; /* one line */
    int collective;      /* 1: runs under MPI (every rank calls main); 0: a plain process */
    /* argv holds the arguments after NAME; returns an exit code of the contract. */
    int (*main)(int argc, char **argv);
} hb_command;

/* One dataset or table column a kernel reads or writes, for `h5batch kernels NAME` and
 * `h5batch export` (which takes the dimension names of datasets without dimension
 * scales from it, and the first output of a group as that group's main dataset). A list
 * ends with an entry whose name is NULL. */
typedef struct hb_dataset_desc {
    /* The dataset's path ("/market/dates", "/traffic/speed_p<P>": a <WORD> stands for
     * a name given in the options, any text without '/'), or a column's name when table
     * is set. */
    const char *name;
    /* For a column: the option that names its table ("table"), or the table's path
     * ("/transactions"); NULL for a dataset. */
    const char *table;
    /* The element kind: "float64", "uint64", "int64", "int32", "uint32", "uint8",
     * "string", "time" (int64 seconds since 1970-01-01 UTC), or for inputs "number" (any
     * integer or float type) and "int" (any integer type); "a|b" when either. */
    const char *kind;
    /* Comma-separated dimension names, outermost first ("segment,day_of_week,hour");
     * "" for a table column (its rows); "doc+1" for an offsets array of one more. */
    const char *dims;
    const char *units; /* NULL: none */
    int optional;      /* 1: may be absent (inputs) or is written only under an option (outputs) */
    const char *help;  /* one line */
} hb_dataset_desc;

typedef struct hb_kernel {
    const char *name;
    const char *summary;
    const hb_option *options;
    int64_t default_chunk_rows;
    /* What the rows of the input are, in progress lines and status.json ("rows",
     * "scenarios", "documents"); NULL means "rows". */
    const char *unit;
    /* Its data generator, or NULL. */
    const hb_generator *generator;
    /* Its own commands, NULL-terminated, or NULL. */
    const hb_command *const *commands;
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
    /* Added in ABI version 2. What the kernel reads and what it writes (NULL: not
     * described), listed by `h5batch kernels NAME`. */
    const hb_dataset_desc *inputs, *outputs;
    /* Added in ABI version 3: partial states (DESIGN.md 7). A kernel that sets describe
     * and setup_parts can write partials (`h5batch run --partial`) and be merged
     * (`h5batch merge`); for one that does not, both are refused (78).
     *
     * A partial holds what a checkpoint holds (every rank's save), plus what describe
     * writes. Merging n parts builds an empty state with setup_parts, loads every saved
     * blob of every part with load_part (on whichever rank; then exchange is called, as
     * after a checkpoint's load), and finalizes: the output must be bit-identical to
     * what one run over the concatenation of the parts' inputs, in the order given,
     * writes, at any rank counts of the parts and of the merge and in any grouping of
     * merges (sites -> regions -> centre). So finalize may use only the state and what
     * describe recorded, never the input file. */
    /* Not collective; called on rank 0 after setup, or after setup_parts and the
     * loads. What the state's meaning depends on besides the saved records: what setup
     * learnt from the input (dimensions, labels, time range, side tables finalize
     * writes), as bytes (*buf malloc'd) stored in the partial. A merged state describes
     * the combination of its parts, so a merge can be merged again. */
    int (*describe)(void *state, void **buf, size_t *len);
    /* Collective (every rank gets every part's description). Builds the empty state
     * setup would build for the concatenation of the parts' inputs, from their
     * descriptions instead of an input (ctx->in and ctx->input are NULL). The driver
     * has set ctx->n_rows to the sum of the parts' rows, and sets n_chunks itself: a
     * merge's units of work are the saved blobs. Descriptions that cannot be combined (an
     * input dimension or side table that differs) are 65 naming the part's path; the
     * memory estimate is checked here as in setup. */
    int (*setup_parts)(hb_step_ctx *ctx, const hb_part *parts, int n, void **state);
    /* Not collective. Like load, for a blob that part saved: row numbers in it count
     * from that part's first row, so the kernel adds part->row_offset where its state
     * records row numbers (document ids, tie-breaks by row). NULL: load is used. */
    int (*load_part)(void *state, const hb_part *part, const void *buf, size_t len);
} hb_kernel;

/* Not collective. Adds a kernel (with its generator and commands) to the registry;
 * the table must live as long as the process. 78 when it is incomplete or a name of it
 * is taken (by a built-in kernel, another plugin's or a command). */
int hb_kernel_register(const hb_kernel *k);

/* A plugin is a shared object that defines both of the following. The host reads
 * hb_plugin_abi before it runs any of the plugin's code and refuses the plugin when it
 * is not the host's HB_ABI_VERSION (exit 78, naming both versions); then it calls
 * hb_plugin_init with its own version, and the plugin registers its kernel tables. */
extern const int hb_plugin_abi;
int hb_plugin_init(int host_abi);

/* Defines hb_plugin_abi: write `HB_PLUGIN_ABI;` once in a plugin's source. */
#define HB_PLUGIN_ABI const int hb_plugin_abi = HB_ABI_VERSION

#endif
