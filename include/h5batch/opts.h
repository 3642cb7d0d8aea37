/* h5batch plugin API: declarative option tables. One table per kernel (and one for
 * [job]) drives job-file validation, typed access and the `h5batch kernels NAME`
 * listing; one per generator or command drives its command line (hb_args_parse). */
#ifndef H5BATCH_OPTS_H
#define H5BATCH_OPTS_H

#include <stddef.h>

typedef enum {
    HB_OPT_STRING,   /* free text (paths, names) */
    HB_OPT_CHOICE,   /* one of the '|'-separated words in choices */
    HB_OPT_INT,      /* integer, bounds inclusive */
    HB_OPT_FLOAT,    /* real number, bounds inclusive */
    HB_OPT_LIST,     /* comma-separated reals, each within bounds */
    HB_OPT_BOOL,     /* true/false, yes/no, on/off, 1/0 */
    HB_OPT_SIZE,     /* integer with optional k/M/G suffix (powers of 1000) */
    HB_OPT_DURATION, /* seconds with optional s/m/h suffix */
    HB_OPT_FILE      /* free text that may name a file the step reads besides its input (a
                      * stop-word list, a calendar, a tariff): when it names an existing
                      * path, the driver refuses anything but a regular file (66) and the
                      * step's fingerprint covers the file's content */
} hb_opt_type;

typedef struct hb_option {
    const char *name;
    hb_opt_type type;
    const char *def; /* default as it would be written in a job file; NULL: none */
    double min, max; /* bounds for numeric types; min > max means unbounded */
    const char *choices;
    const char *help;
} hb_option;

/* One `key = value` from a job file (or --set), with where it came from. */
typedef struct hb_kv {
    char *key, *value;
    int line; /* 0 when it came from --set */
} hb_kv;

/* The options given to one step, read through the kernel's table. */
typedef struct hb_optset {
    const hb_option *table; /* terminated by an entry with name == NULL */
    const hb_kv *kv;
    int n;
} hb_optset;

#define HB_OPT_LIST_MAX 32

const hb_option *hb_opt_find(const hb_option *table, const char *name);
/* Checks value against the option's type and bounds: 0, or 78 (a bad job file) with why
 * in msg. Records no error: the caller knows the file and line. */
int hb_opt_check(const hb_option *opt, const char *value, char *msg, size_t len);

/* Typed accessors: the given value, else the default. Values were checked already. */
const char *hb_opt_str(const hb_optset *o, const char *name);
double hb_opt_num(const hb_optset *o, const char *name);
int hb_opt_bool(const hb_optset *o, const char *name);
/* Fills out[] with up to HB_OPT_LIST_MAX values and returns how many. */
int hb_opt_list(const hb_optset *o, const char *name, double *out);

/* Parsers shared with the command line: 0, or 64 (usage) when s is not of the kind. They
 * record no error: the caller names the option (and returns 78 for a job file). */
int hb_parse_number(const char *s, double *out);
int hb_parse_size(const char *s, double *out);
int hb_parse_duration(const char *s, double *out);
int hb_parse_bool(const char *s, int *out);

/* The closest of names[] (NULL-terminated) to word, or NULL when none is close. */
const char *hb_suggest(const char *word, const char *const *names);

/* Prints an option table for people (`h5batch kernels NAME`). */
void hb_opt_print(const hb_option *table, const char *indent);
/* Prints an option table as command-line options (`--name VALUE`, booleans as flags). */
void hb_opt_print_cli(const hb_option *table, const char *indent);

/* A command line read against option tables by hb_args_parse. */
typedef struct hb_args {
    hb_kv *kv;  /* the options given, in order, as key = value (line 0) */
    int n;
    char **pos; /* the other arguments, in order */
    int npos;
} hb_args;

/* Not collective. Reads argv[0..argc) against the options of tables (a NULL-terminated
 * list): `--name VALUE` or `--name=VALUE`, `--name` alone for a boolean (true;
 * `--name=false` also works), short forms from aliases (pairs like "-o", "output",
 * NULL-terminated; may be NULL), and `--` ends the options; every other argument is
 * positional. Each value is checked against its option's type and bounds. Returns 64
 * naming the option for a bad or missing value or an unknown `--name` (suggesting the
 * closest name), 70 when out of memory; messages start with where, the command
 * ("gen traffic"). *a is to be freed with hb_args_free, also after a failure. */
int hb_args_parse(const char *where, const hb_option *const *tables, const char *const *aliases, int argc,
                  char **argv, hb_args *a);
void hb_args_free(hb_args *a);
/* The options given, read through table: hb_opt_str and the other accessors then give
 * each option's value, the last given winning, or its default. */
hb_optset hb_args_opts(const hb_args *a, const hb_option *table);

#endif
