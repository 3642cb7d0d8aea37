/* What the files of `h5batch import` share (DESIGN.md 6, docs/import.md).
 *
 * Every rank maps every plain file and takes an equal byte range of its data; record
 * boundaries follow from the parity of the quotes before a position, which the ranks
 * learn with one exchange of their ranges' quote and line counts, so a quoted line break
 * never splits a record and every rank knows the line numbers of its records. A gzip
 * file is read whole by one rank (rank = file index mod ranks). Pass 1 checks the records,
 * gathers what the columns hold and converts each column as the type of its first value;
 * the ranks agree on the types (inferred as pandas would, or declared); pass 2 converts
 * only when a column was kept as another type. Rank 0 then writes the columns, rank by rank in
 * file order, into a temporary file that is committed when all went well: the table is
 * the same for any rank count.
 *
 * The files: cli.c (options, --columns, the command), input.c (opening, headers, the
 * split between ranks), convert.c (checking and converting records: passes 1 and 2),
 * infer.c (the agreed types, pass 1's conversion kept), write.c (the table and its
 * provenance), import.c (the import, step by step). */
#ifndef HB_IMPORT_INTERNAL_H
#define HB_IMPORT_INTERNAL_H

#include "core/calendar.h"
#include "core/hb.h"
#include "io/csv.h"

#include <stddef.h>
#include <stdint.h>

#define MAX_COLS 4096

enum { T_AUTO = -1 };

/* A column as --columns declares it. */
typedef struct decl {
    char name[256];
    int type; /* hb_ctype, or T_AUTO */
    char fmt[128];
} decl;

/* One input file as this rank sees it. */
typedef struct source {
    const char *path;
    int gz;
    char *buf;    /* the whole file (mapped), or decompressed (gz, on its rank); NULL when empty here */
    size_t len;   /* bytes in buf */
    int mapped;
    size_t start, hi;  /* this rank's records start in [start, hi) */
    int64_t line;      /* the line number of the record at start */
    uint64_t bytes;    /* the file's size on disk */
    int64_t rows;      /* this rank's rows of this file after pass 2 */
    uint64_t lines;    /* line breaks in this rank's byte range: its records are at most one more */
} source;

enum { K_UNDECIDED = -1 };

/* What pass 1 converted of a column while it checked it (docs/import.md, Performance):
 * the values as the kind its first value had, so that when the agreed type is that kind
 * no second pass is needed. */
typedef struct spec {
    int kind;        /* K_UNDECIDED (only missing values so far), or an hb_ctype */
    int failed;      /* a value did not fit the kind: pass 2 converts (every column) */
    int negzero;     /* an integer -0 was kept as 0 (as a real it is -0.0) */
    int64_t lead;    /* the missing values before the kind was known */
    int shared;      /* a pass-1 worker's: v, inst and s point into the rank's arrays (not its own) */
    void *v;         /* 8-byte values: int64, double, or local/UTC seconds */
    uint8_t *inst;   /* times: 1 when the value had an offset (an instant), else local */
    hb_csv_field *s; /* strings: the fields, in the mapped input */
} spec;

/* What pass 1 learns of a column. */
typedef struct colstat {
    int64_t maybe_int, maybe_float, maybe_time, tmin; /* reduced with MPI_MIN */
    int64_t has_empty, has_value, maxlen, tmax;       /* reduced with MPI_MAX */
} colstat;

/* A parsed field: integers and times in i, reals in d. */
typedef union value {
    int64_t i;
    double d;
} value;

#define IMP_NULLS 16 /* --null texts at most */

typedef struct imp {
    char delim;
    char decimal; /* --decimal: '.' or ',' */
    const char *null[IMP_NULLS]; /* --null, each time it is given */
    size_t null_len[IMP_NULLS];
    int nnull;
    int skip;
    int pad; /* --null-padding: a short record's missing last fields are empty */
    int gzip;    /* --compression: 0 none, else the deflate level */
    int threads; /* --threads */
    int convert1; /* pass 1 converts (spec); 0: always two passes (H5BATCH_IMPORT_TWO_PASSES, for tests) */
    size_t block_min; /* the least bytes of a pass-1 block (1 MiB; H5BATCH_IMPORT_BLOCK, for tests) */
    int blocks;       /* the most blocks pass 1 cut a file into (for -v) */
    double block_cpu, block_cpu_max; /* pass 1's CPU seconds in blocks: all, and the longest block's (-v) */
    const char *tzname;
    int ncols;
    hb_csv_col *cols;
    decl *decl;    /* per column: the declared type and format (T_AUTO when none) */
    colstat *st;
    hb_tzmap tz;
    int use_tz;
    hb_csv_field *f;
    int64_t *ival;  /* pass 1 scratch: a parsed value per column */
    value *rv;      /* pass 1 scratch: the declared columns' values of the record */
    int *rr;        /* ... and check_value's result (1: a time with an offset) */
    spec *sp;       /* per column: pass 1's conversion (NULL: pass 1 does not convert) */
    int64_t spcap;  /* rows room was made for */
    /* pass 2: the rows of this rank, every file after the other */
    void **data;
    int64_t cap, nrows;
    uint64_t skipped;
    int64_t first_key; /* (file << 40) + line of the first skipped record; INT64_MAX none */
    char first_msg[700];
} imp;


/* cli.c. Not collective: --columns 'name:type[:format], ...' into *dp (malloc'd). */
int imp_parse_columns(const char *spec, decl **dp, int *np);

/* input.c. Not collective: opens the file (plain files mapped by every rank, a gzip file
 * decompressed by its rank only). */
int imp_open_source(source *s, int index);
void imp_close_source(source *s);
/* Collective: the header of file s (names, NUL-terminated in one block) and where its
 * data starts. */
int imp_read_header(source *s, int index, char delim, char **names, int *ncols, size_t *data0, int64_t *hdr_lines);
/* Collective: this rank's record range of file s (its quotes counted on threads). */
void imp_split(source *s, size_t data0, int64_t hdr_lines, int index, int threads);

/* convert.c. Not collective. 0 when the n bytes at p are UTF-8 text without a NUL byte
 * (the output's strings are UTF-8), else 1 and, in why, what is wrong and where (what
 * names the text: "field 'x' (column 2)"). */
int imp_bad_text(const char *p, size_t n, const char *what, char *why, size_t len);
/* Not collective: one pass (1 or 2) over this rank's records of file s. */
int imp_scan(imp *m, source *s, int fi, int pass);
/* Not collective: pass 1 over this rank's records of file s on m->threads threads (blocks
 * cut at record starts, scanned at once, joined in order): the same statistics, rows,
 * skipped records and first error as imp_scan(m, s, fi, 1). */
int imp_scan_blocks(imp *m, source *s, int fi);
/* Room for column p's values of kind, known at row (the rows before: missing). */
void imp_spec_room(imp *m, spec *p, int kind, int64_t row);
/* The integers of rows [0, n) of p as reals (fails p for -0). */
void imp_spec_to_float(spec *p, int64_t n);

/* infer.c. Collective: the agreed column types. */
int imp_decide_types(imp *m);
/* Collective: 1 when pass 1's conversion became the rows, 0 when pass 2 must convert. */
int imp_spec_finish(imp *m);
void imp_spec_free(imp *m);

/* write.c. Not collective (rank 0): copies src to dst. */
int imp_copy_file(const char *src, const char *dst);
/* Collective: writes every rank's rows into tmp (rank 0 writes; *wp its writer). */
int imp_write_table(imp *m, int nsrc, const char *tmp, const char *table, int append, const int64_t *counts,
                    uint64_t total, hb_tw **wp);
/* Rank 0: the provenance and the table's attributes. */
int imp_write_meta(hb_tw *w, imp *m, source *src, int nsrc, int argc, char **argv, uint64_t rows, uint64_t skipped,
                   uint64_t base, double secs);

/* import.c. Collective: the import, once the options are read. */
int imp_run(imp *m, char **paths, int nsrc, const char *out, const char *table, const char *spec, int append,
            int force, int argc, char **argv);
void imp_free(imp *m);

#endif
