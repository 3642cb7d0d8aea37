/* `h5batch import`: its options, --columns and the command (docs/import.md). */
#include "import/internal.h"

#include "import.h"

#include "core/opts.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define USAGE                                                                                                     \
    "FILE.csv[.gz]... -o OUT.h5 [--table NAME] [--columns SPEC] [--timezone TZ] [--delimiter C] [--null STR]\n" \
    "               [--decimal C] [--null-padding] [--on-error fail|skip] [--compression none|gzip[:LEVEL]] [--threads N] [--append] [--force] [-q|-v]"

static const hb_option options[] = {
    {"output", HB_OPT_STRING, NULL, 1, 0, NULL, "the HDF5 file to write (-o; required)"},
    {"table", HB_OPT_STRING, "/table", 1, 0, NULL, "the table group to write"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL,
     "declared types, 'name:type[:format], ...' (type int, float, time, string; format strptime-style)"},
    {"timezone", HB_OPT_STRING, "UTC", 1, 0, NULL, "zone of times without an offset (IANA name)"},
    {"delimiter", HB_OPT_STRING, ",", 1, 0, NULL, "field delimiter, one character ('\\t' or tab for a tab)"},
    {"null", HB_OPT_STRING, NULL, 1, 0, NULL, "a text that means a missing value, besides the empty field (e.g. NA); may be given more than once"},
    {"decimal", HB_OPT_STRING, ".", 1, 0, NULL, "the decimal mark of numbers: . or , (1,5; with --delimiter ';')"},
    {"null-padding", HB_OPT_BOOL, "false", 1, 0, NULL,
     "a record with fewer fields than the header gets missing values for the rest (as pandas does)"},
    {"on-error", HB_OPT_CHOICE, "fail", 1, 0, "fail|skip", "a malformed record fails (65) or is skipped and counted"},
    {"compression", HB_OPT_STRING, "gzip:1", 1, 0, NULL,
     "none, or gzip[:LEVEL] (LEVEL 1-9; shuffle + deflate, what every HDF5 build reads)"},
    {"threads", HB_OPT_INT, NULL, 1, 1024, NULL,
     "threads per rank: reading blocks of the input and compressing (default OMP_NUM_THREADS, else 1)"},
    {"append", HB_OPT_BOOL, "false", 1, 0, NULL, "add the rows to the existing table of OUT (same columns)"},
    {"force", HB_OPT_BOOL, "false", 1, 0, NULL, "replace an existing OUT"},
    {"quiet", HB_OPT_BOOL, "false", 1, 0, NULL, "no progress messages (-q)"},
    {"verbose", HB_OPT_BOOL, "false", 1, 0, NULL, "more messages (-v)"},
    {"help", HB_OPT_BOOL, "false", 1, 0, NULL, "print these options (-h)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

static const char *const aliases[] = {"-o", "output", "-q", "quiet", "-v", "verbose", "-h", "help", NULL};

static int type_of(const char *s)
{
    if (!strcmp(s, "int") || !strcmp(s, "int64") || !strcmp(s, "integer")) return HB_CT_INT;
    if (!strcmp(s, "float") || !strcmp(s, "float64") || !strcmp(s, "double")) return HB_CT_FLOAT;
    if (!strcmp(s, "time") || !strcmp(s, "datetime")) return HB_CT_TIME;
    if (!strcmp(s, "string") || !strcmp(s, "str")) return HB_CT_STRING;
    return T_AUTO;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

/* --columns 'name:type[:format], ...' into d[]; a piece that is not name:type continues
 * the format before it (a format may hold a comma: `%b %d, %Y`). */
int imp_parse_columns(const char *spec, decl **dp, int *np)
{
    *dp = NULL;
    *np = 0;
    if (!spec) return 0;
    char *copy = hb_strdup(spec);
    decl *d = hb_calloc(MAX_COLS, sizeof *d);
    if (!copy || !d) return free(copy), free(d), HB_EINTERNAL;
    int n = 0, rc = 0;
    char *save = NULL;
    for (char *piece = strtok_r(copy, ",", &save); piece && rc == 0; piece = strtok_r(NULL, ",", &save)) {
        char raw[512];
        snprintf(raw, sizeof raw, "%s", piece);
        char *e = trim(piece), *c1 = strchr(e, ':'), *c2 = NULL;
        int t = T_AUTO;
        if (c1) {
            *c1 = '\0';
            c2 = strchr(c1 + 1, ':');
            if (c2) *c2 = '\0';
            t = type_of(trim(c1 + 1));
        }
        if (t == T_AUTO && n > 0 && d[n - 1].type == HB_CT_TIME && d[n - 1].fmt[0]) {
            size_t l = strlen(d[n - 1].fmt);
            snprintf(d[n - 1].fmt + l, sizeof d[n - 1].fmt - l, ",%s", raw);
            continue;
        }
        if (!c1 || !*trim(e))
            rc = hb_err_set(HB_EUSAGE, "import", "--columns: '%s' is not name:type (types int, float, time, string)",
                            trim(raw));
        else if (t == T_AUTO)
            rc = hb_err_set(HB_EUSAGE, "import", "--columns: unknown type '%s' for '%s' (int, float, time, string)",
                            trim(c1 + 1), trim(e));
        else if (n == MAX_COLS)
            rc = hb_err_set(HB_EUSAGE, "import", "--columns: more than %d columns", MAX_COLS);
        if (rc) break;
        snprintf(d[n].name, sizeof d[n].name, "%s", trim(e));
        d[n].type = t;
        if (c2) {
            const char *fmt = c2 + 1;
            while (*fmt == ' ') fmt++;
            if (t != HB_CT_TIME)
                rc = hb_err_set(HB_EUSAGE, "import", "--columns: a format is for time columns, not '%s'", d[n].name);
            snprintf(d[n].fmt, sizeof d[n].fmt, "%s", fmt);
        }
        for (int i = 0; i < n && rc == 0; i++)
            if (!strcmp(d[i].name, d[n].name))
                rc = hb_err_set(HB_EUSAGE, "import", "--columns: column '%s' given twice", d[n].name);
        n++;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        char bad;
        if (d[i].fmt[0] && hb_csv_format_check(d[i].fmt, &bad))
            rc = bad ? hb_err_set(HB_EUSAGE, "import", "--columns: format '%s' of '%s': %%%c is not a known conversion",
                                  d[i].fmt, d[i].name, bad)
                     : hb_err_set(HB_EUSAGE, "import", "--columns: format '%s' of '%s' ends in a lone %% (%%%% is a percent sign)",
                                  d[i].fmt, d[i].name);
    }
    free(copy);
    if (rc) return free(d), rc;
    *dp = d;
    *np = n;
    return 0;
}

static void print_help(void)
{
    if (hb_rank != 0) return;
    printf("usage: h5batch import %s\n\n"
           "Reads CSV files (plain or gzip; RFC 4180 quoting; a header line) as one table into OUT.h5.\n"
           "Types are inferred (int64, float64, ISO 8601 time, string) or declared with --columns,\n"
           "e.g. 'date:time:%%Y/%%m/%%d, precipitation:float, weather:string, meter:int'.\n"
           "Times become seconds since 1970-01-01 UTC. docs/import.md has the details.\n\noptions:\n",
           USAGE);
    hb_opt_print_cli(options, "  ");
}

/* 1 when name (starting with '/') is a path of groups to create: not "/", no '/' at the
 * end, no ".." part (HDF5 has no parent links: it would make a group named ".."). */
static int table_name_ok(const char *name)
{
    if (strlen(name) < 2 || name[strlen(name) - 1] == '/') return 0;
    for (const char *p = name + 1; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        p += n + (p[n] == '/');
    }
    return 1;
}

/* 1 when the group name lies in /provenance (HDF5 reads "//" and "/./" as "/"), where
 * what describes a run is kept and every comparison of outputs leaves out. */
static int in_provenance(const char *name)
{
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n && !(n == 1 && p[0] == '.')) return n == 10 && !strncmp(p, "provenance", 10);
        p += n + (p[n] == '/');
    }
    return 0;
}

int hb_import_main(int argc, char **argv)
{
    const hb_option *const tables[] = {options, NULL};
    hb_args a;
    int rc = hb_args_parse("import", tables, aliases, argc, argv, &a);
    const hb_optset o = hb_args_opts(&a, options);
    if (rc == 0 && hb_opt_bool(&o, "help")) {
        print_help();
        return hb_args_free(&a), 0;
    }
    if (rc == 0 && hb_opt_bool(&o, "quiet")) hb_log_level = 0;
    if (rc == 0 && hb_opt_bool(&o, "verbose")) hb_log_level = 2;
    imp m = {0};
    const char *out = hb_opt_str(&o, "output"), *delim = hb_opt_str(&o, "delimiter");
    m.tzname = hb_opt_str(&o, "timezone");
    for (int i = 0; i < a.n; i++) /* --null may be given more than once, as pandas' na_values is a list */
        if (!strcmp(a.kv[i].key, "null")) {
            if (m.nnull == IMP_NULLS) {
                rc = hb_err_set(HB_EUSAGE, "import", "--null is given more than %d times", IMP_NULLS);
                break;
            }
            if (!*a.kv[i].value) rc = hb_err_set(HB_EUSAGE, "import", "--null needs a text (empty fields are missing already)");
            m.null[m.nnull] = a.kv[i].value, m.null_len[m.nnull++] = strlen(a.kv[i].value);
        }
    m.skip = rc == 0 && !strcmp(hb_opt_str(&o, "on-error"), "skip");
    m.pad = rc == 0 && hb_opt_bool(&o, "null-padding");
    char table[512];
    const char *t = hb_opt_str(&o, "table");
    snprintf(table, sizeof table, "%s%s", t && t[0] == '/' ? "" : "/", t ? t : "table");
    for (int i = 0; rc == 0 && i < a.npos; i++)
        if (a.pos[i][0] == '-' && a.pos[i][1])
            rc = hb_err_set(HB_EUSAGE, "import", "unknown option '%s' (h5batch import --help)", a.pos[i]);
    if (rc == 0 && a.npos == 0)
        rc = hb_err_set(HB_EUSAGE, "import", "no CSV file given (h5batch import FILE.csv... -o OUT.h5; --help lists the options)");
    if (rc == 0 && !out) rc = hb_err_set(HB_EUSAGE, "import", "-o OUT.h5 is required");
    for (int j = 1; rc == 0 && j < a.npos; j++) /* its rows would be read twice, as merge refuses a part twice */
        for (int i = 0; rc == 0 && i < j; i++) {
            struct stat si, sj;
            if (stat(a.pos[i], &si) == 0 && stat(a.pos[j], &sj) == 0 && si.st_dev == sj.st_dev && si.st_ino == sj.st_ino)
                rc = hb_err_set(HB_EUSAGE, "import", "%s is given twice (also as %s): its rows would be read twice",
                                a.pos[j], a.pos[i]);
        }
    if (rc == 0) {
        if (!strcmp(delim, "\\t") || !strcmp(delim, "tab")) m.delim = '\t';
        else if (strlen(delim) == 1 && delim[0] != '"' && delim[0] != '\n' && delim[0] != '\r') m.delim = delim[0];
        else rc = hb_err_set(HB_EUSAGE, "import", "--delimiter must be one character (not a quote), got '%s'", delim);
    }
    const char *dec = hb_opt_str(&o, "decimal");
    m.decimal = dec && !strcmp(dec, ",") ? ',' : '.';
    if (rc == 0 && strcmp(dec, ".") && strcmp(dec, ","))
        rc = hb_err_set(HB_EUSAGE, "import", "--decimal must be '.' or ',', got '%s'", dec);
    if (rc == 0 && m.decimal == m.delim)
        rc = hb_err_set(HB_EUSAGE, "import", "--decimal ',' needs another --delimiter (e.g. ';'), as such files use");
    const char *comp = hb_opt_str(&o, "compression");
    if (rc == 0) {
        char extra;
        if (!strcmp(comp, "none")) m.gzip = 0;
        else if (!strcmp(comp, "gzip")) m.gzip = 1;
        else if (sscanf(comp, "gzip:%d%c", &m.gzip, &extra) != 1 || m.gzip < 1 || m.gzip > 9)
            rc = hb_err_set(HB_EUSAGE, "import", "--compression: '%s' is not none, gzip or gzip:LEVEL (1-9)", comp);
    }
    /* threads: --threads, else OMP_NUM_THREADS, else 1 (not every core: the ranks have them) */
    m.threads = hb_opt_str(&o, "threads") ? (int)hb_opt_num(&o, "threads")
                : getenv("OMP_NUM_THREADS") ? omp_get_max_threads() : 1;
    if (m.threads < 1) m.threads = 1;
    m.convert1 = !getenv("H5BATCH_IMPORT_TWO_PASSES");
    const char *bm = getenv("H5BATCH_IMPORT_BLOCK");
    m.block_min = bm && atol(bm) > 0 ? (size_t)atol(bm) : (size_t)1 << 20;
    if (rc == 0 && !hb_tz_valid(m.tzname))
        rc = hb_err_set(HB_EUSAGE, "import", "--timezone: unknown time zone '%s' (an IANA name like Europe/Berlin)",
                        m.tzname);
    if (rc == 0 && (!table_name_ok(table) || (t && strlen(t) + 2 > sizeof table)))
        rc = hb_err_set(HB_EUSAGE, "import", "--table: '%s' is not a group name (like /table or /site/readings)",
                        t ? t : table);
    if (rc == 0 && in_provenance(table))
        rc = hb_err_set(HB_EUSAGE, "import", "--table: '%s' is in /provenance, which describes the run (and comparisons "
                        "of outputs leave out): choose another group", t ? t : table);
    rc = hb_agree(rc);
    if (rc == 0)
        rc = imp_run(&m, a.pos, a.npos, out, table, hb_opt_str(&o, "columns"), hb_opt_bool(&o, "append"),
                        hb_opt_bool(&o, "force"), argc, argv);
    imp_free(&m);
    hb_args_free(&a);
    return rc;
}
