/* `h5batch import`: CSV to an h5batch table (DESIGN.md 6, docs/import.md).
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
 * the same for any rank count. */
#include "import.h"

#include "core/calendar.h"
#include "core/commit.h"
#include "core/hb.h"
#include "core/opts.h"
#include "io/csv.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_COLS 4096
#define USAGE                                                                                                     \
    "FILE.csv[.gz]... -o OUT.h5 [--table NAME] [--columns SPEC] [--timezone TZ] [--delimiter C] [--null STR]\n" \
    "               [--on-error fail|skip] [--compression none|gzip[:LEVEL]] [--threads N] [--append] [--force] [-q|-v]"

static const hb_option options[] = {
    {"output", HB_OPT_STRING, NULL, 1, 0, NULL, "the HDF5 file to write (-o; required)"},
    {"table", HB_OPT_STRING, "/table", 1, 0, NULL, "the table group to write"},
    {"columns", HB_OPT_STRING, NULL, 1, 0, NULL,
     "declared types, 'name:type[:format], ...' (type int, float, time, string; format strptime-style)"},
    {"timezone", HB_OPT_STRING, "UTC", 1, 0, NULL, "zone of times without an offset (IANA name)"},
    {"delimiter", HB_OPT_STRING, ",", 1, 0, NULL, "field delimiter, one character ('\\t' or tab for a tab)"},
    {"null", HB_OPT_STRING, NULL, 1, 0, NULL, "a text that means a missing value, besides the empty field (e.g. NA)"},
    {"on-error", HB_OPT_CHOICE, "fail", 1, 0, "fail|skip", "a malformed record fails (65) or is skipped and counted"},
    {"compression", HB_OPT_STRING, "gzip:1", 1, 0, NULL,
     "none, or gzip[:LEVEL] (LEVEL 1-9; shuffle + deflate, what every HDF5 build reads)"},
    {"threads", HB_OPT_INT, NULL, 1, 1024, NULL,
     "threads per rank for compressing (default OMP_NUM_THREADS, else 1)"},
    {"append", HB_OPT_BOOL, "false", 1, 0, NULL, "add the rows to the existing table of OUT (same columns)"},
    {"force", HB_OPT_BOOL, "false", 1, 0, NULL, "replace an existing OUT"},
    {"quiet", HB_OPT_BOOL, "false", 1, 0, NULL, "no progress messages (-q)"},
    {"verbose", HB_OPT_BOOL, "false", 1, 0, NULL, "more messages (-v)"},
    {"help", HB_OPT_BOOL, "false", 1, 0, NULL, "print these options (-h)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

static const char *const aliases[] = {"-o", "output", "-q", "quiet", "-v", "verbose", "-h", "help", NULL};

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

typedef struct imp {
    char delim;
    const char *null;
    size_t null_len;
    int skip;
    int gzip;    /* --compression: 0 none, else the deflate level */
    int threads; /* --threads */
    int convert1; /* pass 1 converts (spec); 0: always two passes (H5BATCH_IMPORT_TWO_PASSES, for tests) */
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

/* ---- options ---- */

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
static int parse_columns(const char *spec, decl **dp, int *np)
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
            rc = hb_err_set(HB_EUSAGE, "import", "--columns: format '%s' of '%s': %%%c is not a known conversion",
                            d[i].fmt, d[i].name, bad);
    }
    free(copy);
    if (rc) return free(d), rc;
    *dp = d;
    *np = n;
    return 0;
}

/* ---- inputs ---- */

/* Not collective. Reads a whole gzip file into s->buf. */
static int read_gz(source *s)
{
    gzFile g = gzopen(s->path, "rb");
    if (!g) return hb_err_set(HB_ENOINPUT, s->path, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *b = hb_malloc(cap);
    int rc = b ? 0 : HB_EINTERNAL;
    while (rc == 0) {
        if (n == cap && hb_grow((void **)&b, &cap, cap + 1, 1)) {
            rc = hb_err_set(HB_EINTERNAL, s->path, "out of memory decompressing the file");
            break;
        }
        size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
        int got = gzread(g, b + n, (unsigned)want);
        if (got < 0) {
            int e;
            rc = hb_err_set(HB_EDATA, s->path, "bad gzip data: %s", gzerror(g, &e));
        } else if (got == 0) {
            break;
        }
        if (got > 0) n += (size_t)got;
    }
    gzclose(g);
    if (rc) return free(b), rc;
    s->buf = b;
    s->len = n;
    return 0;
}

/* Not collective. Opens the file: plain files are mapped by every rank, a gzip file is
 * decompressed by its rank only. */
static int open_source(source *s, int index)
{
    /* a FIFO or a device is refused before it is opened (opening a FIFO waits for a
     * writer); O_NONBLOCK for one put in its place meanwhile, checked again by fstat */
    struct stat sb;
    if (stat(s->path, &sb) != 0)
        return hb_err_set(HB_ENOINPUT, s->path, "%s", errno == ENOENT ? "no such file" : strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return hb_err_set(HB_ENOINPUT, s->path, "is %s, not a regular file", hb_file_kind(sb.st_mode));
    int fd = open(s->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return hb_err_set(HB_ENOINPUT, s->path, "%s", errno == ENOENT ? "no such file" : strerror(errno));
    unsigned char magic[2] = {0, 0};
    int rc = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        rc = hb_err_set(HB_ENOINPUT, s->path, "is %s, not a regular file", hb_file_kind(sb.st_mode));
    if (rc == 0 && sb.st_size >= 2 && pread(fd, magic, 2, 0) != 2)
        rc = hb_err_set(HB_ENOINPUT, s->path, "cannot read: %s", strerror(errno));
    if (rc == 0) {
        s->bytes = (uint64_t)sb.st_size;
        s->gz = magic[0] == 0x1f && magic[1] == 0x8b; /* by the bytes, whatever the name */
        if (!s->gz && sb.st_size > 0) {
            s->buf = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (s->buf == MAP_FAILED) {
                s->buf = NULL;
                rc = hb_err_set(HB_ENOINPUT, s->path, "cannot map: %s", strerror(errno));
            } else {
                s->mapped = 1;
                s->len = (size_t)sb.st_size;
                madvise(s->buf, s->len, MADV_SEQUENTIAL);
            }
        }
    }
    close(fd);
    if (rc == 0 && s->gz && index % hb_size == hb_rank) rc = read_gz(s);
    return rc;
}

static void close_source(source *s)
{
    if (s->mapped) munmap(s->buf, s->len);
    else free(s->buf);
    s->buf = NULL;
}

/* Collective. The header of file s (read by the rank that holds it): its names into
 * names[] (unescaped, NUL-terminated, in one block), and where the data starts. */
static int read_header(source *s, int index, char delim, char **names, int *ncols, size_t *data0, int64_t *hdr_lines)
{
    int holder = s->gz ? index % hb_size : 0;
    int64_t meta[5] = {0, 0, 0, 0, 0}; /* status, text bytes, data start, names, line breaks */
    char *text = NULL;
    int64_t nl = 0;
    int n = 0;
    if (hb_rank == holder) {
        size_t pos = 0;
        if (s->len >= 3 && !memcmp(s->buf, "\xEF\xBB\xBF", 3)) pos = 3; /* a UTF-8 byte order mark */
        hb_csv_field *f = hb_malloc((MAX_COLS + 1) * sizeof *f);
        int rc = f ? 0 : HB_EINTERNAL;
        if (rc == 0 && pos >= s->len) rc = hb_err_set(HB_EDATA, s->path, "empty file: a header line is needed");
        hb_csv_bad bad = HB_CSV_OK;
        if (rc == 0) bad = hb_csv_record(s->buf, s->len, &pos, delim, f, MAX_COLS + 1, &n, &nl);
        if (rc == 0 && bad) rc = hb_err_set(HB_EDATA, s->path, "line 1: the header: %s", hb_csv_bad_text(bad));
        if (rc == 0 && n == 0) rc = hb_err_set(HB_EDATA, s->path, "line 1: the header line is empty");
        if (rc == 0 && n > MAX_COLS) rc = hb_err_set(HB_EDATA, s->path, "line 1: more than %d columns", MAX_COLS);
        size_t bytes = 0;
        for (int i = 0; rc == 0 && i < n; i++) bytes += hb_csv_unescaped_len(&f[i]) + 1;
        if (rc == 0 && !(text = hb_malloc(bytes ? bytes : 1))) rc = HB_EINTERNAL;
        for (int i = 0, o = 0; rc == 0 && i < n; i++) {
            hb_csv_unescape(&f[i], text + o);
            o += (int)hb_csv_unescaped_len(&f[i]);
            text[o++] = '\0';
        }
        free(f);
        meta[0] = rc;
        meta[1] = (int64_t)bytes;
        meta[2] = (int64_t)pos;
        meta[3] = n;
        meta[4] = nl;
    }
    int rc = hb_agree(hb_rank == holder ? (int)meta[0] : 0);
    if (rc) return free(text), rc;
    MPI_Bcast(meta, 5, MPI_INT64_T, holder, MPI_COMM_WORLD);
    n = (int)meta[3];
    size_t bytes = (size_t)meta[1];
    if (hb_rank != holder && !(text = hb_malloc(bytes ? bytes : 1))) rc = HB_EINTERNAL;
    rc = hb_agree(rc);
    if (rc) return free(text), rc;
    MPI_Bcast(text, (int)bytes, MPI_BYTE, holder, MPI_COMM_WORLD);
    *names = text;
    *ncols = n;
    *data0 = (size_t)meta[2];
    *hdr_lines = meta[4];
    return 0;
}

/* Collective. This rank's record range of a plain file (data from data0): an equal byte
 * range, moved to record starts by the parity of the quotes before it. */
static void split(source *s, size_t data0, int64_t hdr_lines, int index)
{
    if (s->gz) {
        int mine = index % hb_size == hb_rank;
        s->start = data0;
        s->hi = mine ? s->len : data0;
        s->line = 1 + hdr_lines;
        uint64_t q = 0;
        s->lines = 0;
        if (mine && s->buf) hb_csv_count(s->buf, s->start, s->hi, &q, &s->lines);
        return;
    }
    size_t n = s->len > data0 ? s->len - data0 : 0;
    size_t lo = data0 + (size_t)((__uint128_t)n * (unsigned)hb_rank / (unsigned)hb_size);
    size_t hi = data0 + (size_t)((__uint128_t)n * (unsigned)(hb_rank + 1) / (unsigned)hb_size);
    uint64_t mine[2] = {0, 0}, *all = NULL;
    if (s->buf) hb_csv_count(s->buf, lo, hi, &mine[0], &mine[1]);
    uint64_t before[2] = {0, 0};
    if (hb_size > 1) {
        /* one exchange: the quotes and line breaks of every range before this one */
        all = malloc(2 * sizeof *all * (size_t)hb_size);
        if (!all) abort(); /* a few bytes per rank */
        MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, MPI_COMM_WORLD);
        for (int r = 0; r < hb_rank; r++) before[0] += all[2 * r], before[1] += all[2 * r + 1];
        free(all);
    }
    int64_t skipped = 0;
    s->start = hb_rank == 0 ? lo : hb_csv_sync(s->buf, lo, hi, (int)(before[0] & 1), &skipped);
    s->hi = hi;
    s->line = 1 + hdr_lines + (int64_t)before[1] + skipped;
    s->lines = mine[1];
}

/* ---- fields ---- */

static int is_missing(const imp *m, const hb_csv_field *f)
{
    return f->len == 0 || (m->null && !f->escaped && f->len == m->null_len && !memcmp(f->p, m->null, f->len));
}

static int parse_time(const imp *m, int c, const hb_csv_field *f, hb_csv_time *t)
{
    if (f->escaped) return -1;
    if (m->decl[c].fmt[0]) return hb_csv_strptime(f->p, f->len, m->decl[c].fmt, t);
    return hb_csv_iso(f->p, f->len, t);
}

/* The field's text for a message, shortened. */
static void quote_field(const hb_csv_field *f, char *buf, size_t len)
{
    int n = f->len > 40 ? 40 : (int)f->len;
    snprintf(buf, len, "'%.*s%s'", n, f->p, f->len > 40 ? "..." : "");
}

/* Checks field c as type t and parses it into *v (a missing real is NaN): 0, 1 for a
 * time with an offset (an instant), or -1 with why. */
static int check_value(imp *m, int c, int t, const hb_csv_field *f, value *v, char *why, size_t len)
{
    char q[64];
    hb_csv_time tm;
    const char *name = m->cols[c].name;
    if (is_missing(m, f)) {
        v->d = NAN;
        if (t == HB_CT_INT || t == HB_CT_TIME) {
            snprintf(why, len, "field '%s' (column %d) is empty; a%s %s column needs a value", name, c + 1,
                     t == HB_CT_INT ? "n" : "", t == HB_CT_INT ? "integer" : "time");
            return -1;
        }
        return 0;
    }
    switch (t) {
    case HB_CT_INT:
        if (!f->escaped && hb_csv_int(f->p, f->len, &v->i) == 0) return 0;
        quote_field(f, q, sizeof q);
        snprintf(why, len, "field '%s' (column %d): %s is not an integer", name, c + 1, q);
        return -1;
    case HB_CT_FLOAT:
        if (!f->escaped && hb_csv_float(f->p, f->len, &v->d) == 0) return 0;
        quote_field(f, q, sizeof q);
        snprintf(why, len, "field '%s' (column %d): %s is not a number", name, c + 1, q);
        return -1;
    case HB_CT_TIME:
        if (parse_time(m, c, f, &tm) == 0) {
            v->i = tm.secs;
            return tm.has_offset ? 1 : 0;
        }
        quote_field(f, q, sizeof q);
        snprintf(why, len, "field '%s' (column %d): %s is not a time (%s)", name, c + 1, q,
                 m->decl[c].fmt[0] ? m->decl[c].fmt : "ISO 8601, e.g. 2024-03-31 or 2024-03-31T02:30:00+02:00");
        return -1;
    default: return 0;
    }
}

/* Why a record as tokenized is malformed (ragged, bad quoting): 0 when it is not. */
static int check_shape(const imp *m, hb_csv_bad bad, int nf, char *why, size_t len)
{
    if (bad) return snprintf(why, len, "%s", hb_csv_bad_text(bad)), -1;
    if (nf != m->ncols)
        return snprintf(why, len, "the record has %d field%s, the header %d", nf, nf == 1 ? "" : "s", m->ncols), -1;
    return 0;
}

/* ---- pass 1's conversion (docs/import.md, Performance) ---- */

/* Room for the values of column c, whose kind (the type of its first value here) is now
 * known, at row: the rows before it held missing values (NaN, empty strings). */
static void spec_room(imp *m, spec *p, int kind, int64_t row)
{
    const size_t cap = (size_t)(m->spcap ? m->spcap : 1);
    if (kind == HB_CT_INT && row > 0) kind = HB_CT_FLOAT; /* missing values: not an int64 column */
    p->kind = kind;
    if (kind == HB_CT_TIME && row > 0) {
        p->failed = 1; /* a missing time is a malformed record: pass 2 says which */
        return;
    }
    if (kind == HB_CT_STRING) {
        if (!(p->s = malloc(cap * sizeof *p->s))) p->failed = 1;
        for (int64_t i = 0; !p->failed && i < row; i++) p->s[i] = (hb_csv_field){"", 0, 0};
        return;
    }
    p->v = malloc(cap * 8);
    if (kind == HB_CT_TIME) p->inst = malloc(cap);
    if (!p->v || (kind == HB_CT_TIME && !p->inst)) p->failed = 1;
    for (int64_t i = 0; !p->failed && i < row; i++) ((double *)p->v)[i] = NAN;
}

/* The integers of rows [0, n) as reals (an integer column that turns out to be a real
 * one): exact as read from the text, except -0 (kept as 0), which fails the column. */
static void spec_to_float(spec *p, int64_t n)
{
    if (p->negzero) {
        p->failed = 1;
        return;
    }
    char *v = p->v;
    for (int64_t i = 0; i < n; i++) {
        int64_t x;
        memcpy(&x, v + 8 * i, 8);
        double d = (double)x; /* correctly rounded, as the decimal text of x would be */
        memcpy(v + 8 * i, &d, 8);
    }
    p->kind = HB_CT_FLOAT;
}

/* Pass 1 of one record: checks it against the declared types, adds what it holds to the
 * column statistics and, when pass 1 converts, keeps its values as row m->nrows. 0, or -1
 * with why (the record is then not kept). */
static int pass1_record(imp *m, hb_csv_bad bad, int nf, char *why, size_t len)
{
    if (check_shape(m, bad, nf, why, len)) return -1;
    for (int c = 0; c < m->ncols; c++) {
        int t = m->decl[c].type;
        value v = {0};
        int r = t == T_AUTO ? 0 : check_value(m, c, t, &m->f[c], &v, why, len);
        if (r < 0) return -1;
        m->ival[c] = t == HB_CT_TIME && r == 0 ? v.i : INT64_MIN; /* an instant has no local time to cover */
        m->rv[c] = v;
        m->rr[c] = r;
    }
    const int64_t row = m->nrows;
    spec *const sp = m->sp && row < m->spcap ? m->sp : NULL;
    if (m->sp && !sp)
        for (int c = 0; c < m->ncols; c++) m->sp[c].failed = 1; /* more records than room: cannot be */
    for (int c = 0; c < m->ncols; c++) {
        const hb_csv_field *f = &m->f[c];
        colstat *s = &m->st[c];
        spec *p = sp && !sp[c].failed ? &sp[c] : NULL;
        int t = m->decl[c].type;
        if (is_missing(m, f)) {
            s->has_empty = 1;
            if (!p) continue;
            switch (p->kind) {
            case K_UNDECIDED: break; /* the room for it is made with the first value */
            case HB_CT_INT:
                if (t == T_AUTO) spec_to_float(p, row); /* declared: check_value refused it */
                if (!p->failed) ((double *)p->v)[row] = NAN;
                break;
            case HB_CT_FLOAT: ((double *)p->v)[row] = NAN; break;
            case HB_CT_STRING: p->s[row] = (hb_csv_field){"", 0, 0}; break;
            default: p->failed = 1; /* an auto time column: pass 2 reports the record */
            }
            continue;
        }
        s->has_value = 1;
        int64_t l = (int64_t)hb_csv_unescaped_len(f);
        if (l > s->maxlen) s->maxlen = l;
        int64_t local = INT64_MIN;
        if (t == T_AUTO) {
            int64_t iv = 0;
            double dv = 0;
            hb_csv_time tm = {0, 0};
            int gi = 0, gf = 0, gt = 0; /* this value is an integer, a real, a time */
            if (s->maybe_int) {
                if (f->escaped || hb_csv_int(f->p, f->len, &iv)) s->maybe_int = 0;
                else gi = 1;
            }
            if (s->maybe_float && !s->maybe_int) {
                if (!f->escaped && hb_csv_float(f->p, f->len, &dv) == 0) gf = 1;
                else if (f->escaped || hb_csv_float_syntax(f->p, f->len)) s->maybe_float = 0;
                else if (p) p->failed = 1; /* a number too long to convert here: pass 2 says so */
            }
            if (s->maybe_time) {
                if (f->escaped || hb_csv_iso(f->p, f->len, &tm)) s->maybe_time = 0;
                else {
                    gt = 1;
                    if (!tm.has_offset) local = tm.secs;
                }
            }
            if (p && p->kind == K_UNDECIDED)
                spec_room(m, p, gi ? HB_CT_INT : gf ? HB_CT_FLOAT : gt ? HB_CT_TIME : HB_CT_STRING, row);
            if (p && !p->failed) {
                switch (p->kind) {
                case HB_CT_INT:
                    if (gi) {
                        ((int64_t *)p->v)[row] = iv;
                        if (iv == 0 && f->p[0] == '-') p->negzero = 1;
                        break;
                    }
                    if (!gf) {
                        p->failed = 1;
                        break;
                    }
                    spec_to_float(p, row);
                    if (!p->failed) ((double *)p->v)[row] = dv;
                    break;
                case HB_CT_FLOAT:
                    if (gi && hb_csv_float(f->p, f->len, &dv) == 0) gf = 1; /* an integer's text as a real */
                    if (gf) ((double *)p->v)[row] = dv;
                    else p->failed = 1;
                    break;
                case HB_CT_TIME:
                    if (gt) {
                        ((int64_t *)p->v)[row] = tm.secs;
                        p->inst[row] = (uint8_t)tm.has_offset;
                    } else {
                        p->failed = 1;
                    }
                    break;
                default: p->s[row] = *f; break;
                }
            }
        } else {
            if (t == HB_CT_TIME) local = m->ival[c];
            if (p) {
                switch (t) {
                case HB_CT_INT: ((int64_t *)p->v)[row] = m->rv[c].i; break;
                case HB_CT_FLOAT: ((double *)p->v)[row] = m->rv[c].d; break;
                case HB_CT_TIME:
                    ((int64_t *)p->v)[row] = m->rv[c].i;
                    p->inst[row] = (uint8_t)(m->rr[c] == 1);
                    break;
                default: p->s[row] = *f; break;
                }
            }
        }
        if (local != INT64_MIN) {
            if (local < s->tmin) s->tmin = local;
            if (local > s->tmax) s->tmax = local;
        }
    }
    if (m->sp) m->nrows++;
    return 0;
}

/* Pass 2 of one record: converts it into row m->nrows with the agreed types. 0, or -1
 * with why (the record is then not kept). */
static int pass2_record(imp *m, hb_csv_bad bad, int nf, char *why, size_t len)
{
    if (check_shape(m, bad, nf, why, len)) return -1;
    int64_t row = m->nrows;
    for (int c = 0; c < m->ncols; c++) {
        const hb_csv_field *f = &m->f[c];
        const hb_csv_col *col = &m->cols[c];
        value v = {0};
        int r = check_value(m, c, (int)col->type, f, &v, why, len);
        if (r < 0) return -1;
        switch (col->type) {
        case HB_CT_INT: ((int64_t *)m->data[c])[row] = v.i; break;
        case HB_CT_FLOAT: ((double *)m->data[c])[row] = v.d; break;
        case HB_CT_TIME:
            ((int64_t *)m->data[c])[row] = r == 0 && m->use_tz ? hb_csv_local_to_utc(&m->tz, v.i) : v.i;
            break;
        case HB_CT_STRING: {
            char *dst = (char *)m->data[c] + (size_t)row * col->width;
            memset(dst, 0, col->width);
            if (!is_missing(m, f)) hb_csv_unescape(f, dst);
            break;
        }
        }
    }
    m->nrows++;
    return 0;
}

/* Not collective. One pass over this rank's records of file s (index fi). */
static int scan(imp *m, source *s, int fi, int pass)
{
    size_t pos = s->start;
    int64_t line = s->line;
    char why[600];
    while (pos < s->hi) {
        int nf;
        int64_t nl, at = line;
        hb_csv_bad bad = hb_csv_record(s->buf, s->len, &pos, m->delim, m->f, m->ncols, &nf, &nl);
        line += nl;
        if (nf == 0 && bad == HB_CSV_OK) continue; /* a blank line */
        int r = pass == 1 ? pass1_record(m, bad, nf, why, sizeof why) : pass2_record(m, bad, nf, why, sizeof why);
        if (r == 0) continue;
        if (!m->skip || bad == HB_CSV_UNTERMINATED) {
            char where[4200];
            snprintf(where, sizeof where, "%s:%lld", s->path, (long long)at);
            return hb_err_set(HB_EDATA, where, "%s%s", why,
                              m->skip || bad == HB_CSV_UNTERMINATED ? "" : " (--on-error skip skips such records)");
        }
        {
            m->skipped++; /* in pass 1; again in pass 2 when it runs */
            int64_t key = ((int64_t)fi << 40) + at;
            if (key < m->first_key) {
                m->first_key = key;
                snprintf(m->first_msg, sizeof m->first_msg, "%s:%lld: %s", s->path, (long long)at, why);
            }
        }
    }
    return 0;
}

/* ---- types ---- */

/* Collective. The column types from the declarations and what pass 1 saw, agreed. */
static int decide_types(imp *m)
{
    int n = m->ncols;
    int64_t *lo = hb_malloc(4 * sizeof *lo * (size_t)n), *hi = hb_malloc(4 * sizeof *hi * (size_t)n);
    int rc = hb_agree(lo && hi ? 0 : HB_EINTERNAL);
    if (rc) return free(lo), free(hi), rc;
    for (int c = 0; c < n; c++) {
        const colstat *s = &m->st[c];
        lo[4 * c] = s->maybe_int, lo[4 * c + 1] = s->maybe_float, lo[4 * c + 2] = s->maybe_time, lo[4 * c + 3] = s->tmin;
        hi[4 * c] = s->has_empty, hi[4 * c + 1] = s->has_value, hi[4 * c + 2] = s->maxlen, hi[4 * c + 3] = s->tmax;
    }
    MPI_Allreduce(MPI_IN_PLACE, lo, 4 * n, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, hi, 4 * n, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    int64_t tmin = INT64_MAX, tmax = INT64_MIN;
    for (int c = 0; c < n; c++) {
        hb_csv_col *col = &m->cols[c];
        int t = m->decl[c].type;
        if (t == T_AUTO) {
            if (!hi[4 * c + 1]) t = HB_CT_FLOAT; /* nothing but missing values: NaN, as pandas */
            else if (lo[4 * c] && !hi[4 * c]) t = HB_CT_INT;
            else if (lo[4 * c + 1]) t = HB_CT_FLOAT; /* integers with missing values become floats */
            else if (lo[4 * c + 2]) t = HB_CT_TIME;
            else t = HB_CT_STRING;
        }
        col->type = t;
        if (t == HB_CT_STRING && (size_t)hi[4 * c + 2] > col->width) col->width = (size_t)hi[4 * c + 2];
        if (t == HB_CT_STRING && col->width == 0) col->width = 1;
        if (t == HB_CT_TIME) {
            if (lo[4 * c + 3] < tmin) tmin = lo[4 * c + 3];
            if (hi[4 * c + 3] > tmax) tmax = hi[4 * c + 3];
            snprintf(col->desc, sizeof col->desc, "%.200s: seconds since 1970-01-01 UTC%s%.64s", col->name,
                     strcmp(m->tzname, "UTC") ? "; local times without an offset read in " : "",
                     strcmp(m->tzname, "UTC") ? m->tzname : "");
        }
    }
    free(lo);
    free(hi);
    if (strcmp(m->tzname, "UTC") != 0 && tmin <= tmax) {
        /* the days of every naive time, with a margin for the offsets */
        rc = hb_tz_select(m->tzname);
        if (rc == 0) rc = hb_tzmap_cover(&m->tz, tmin - 3 * 86400, tmax + 3 * 86400);
        m->use_tz = rc == 0;
    }
    return hb_agree(rc);
}

/* Collective. After the types are agreed: when pass 1 converted every column of every
 * rank as the type agreed, its values become the rows (1 returned), else 0 and pass 2
 * converts. */
static int spec_finish(imp *m)
{
    int ok = m->sp != NULL;
    for (int c = 0; ok && c < m->ncols; c++) {
        const spec *p = &m->sp[c];
        const int t = (int)m->cols[c].type;
        if (p->failed) ok = 0;
        else if (p->kind == K_UNDECIDED) ok = m->nrows == 0 || t == HB_CT_FLOAT || t == HB_CT_STRING;
        else if (p->kind == HB_CT_INT && t == HB_CT_FLOAT) ok = !p->negzero;
        else ok = p->kind == t;
    }
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok) return 0;
    m->data = hb_calloc((size_t)m->ncols, sizeof *m->data);
    if (!m->data) abort(); /* a pointer per column */
    const size_t n = (size_t)m->nrows;
    for (int c = 0; c < m->ncols; c++) {
        spec *p = &m->sp[c];
        const hb_csv_col *col = &m->cols[c];
        if (p->kind == K_UNDECIDED) spec_room(m, p, col->type == HB_CT_STRING ? HB_CT_STRING : HB_CT_FLOAT, m->nrows);
        if (p->kind == HB_CT_INT && col->type == HB_CT_FLOAT) spec_to_float(p, m->nrows);
        if (p->failed) abort(); /* out of memory for rows already agreed on: no way to agree now */
        if (col->type == HB_CT_STRING) {
            char *d = malloc((n ? n : 1) * col->width);
            if (!d) abort();
            for (size_t i = 0; i < n; i++) {
                memset(d + i * col->width, 0, col->width);
                hb_csv_unescape(&p->s[i], d + i * col->width);
            }
            m->data[c] = d;
            free(p->s);
            p->s = NULL;
            continue;
        }
        if (col->type == HB_CT_TIME && m->use_tz) {
            int64_t *v = p->v;
            for (size_t i = 0; i < n; i++)
                if (!p->inst[i]) v[i] = hb_csv_local_to_utc(&m->tz, v[i]);
        }
        m->data[c] = p->v;
        p->v = NULL;
    }
    return 1;
}

static void spec_free(imp *m)
{
    for (int c = 0; m->sp && c < m->ncols; c++) free(m->sp[c].v), free(m->sp[c].inst), free(m->sp[c].s);
    free(m->sp);
    m->sp = NULL;
}

/* ---- output ---- */

/* Not collective (rank 0). Copies src to dst (for --append: the old file stays as it is
 * until the commit). */
static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1, rc = 0;
    if (in < 0) return hb_err_set(HB_ENOINPUT, src, "cannot open: %s", strerror(errno));
    out = open(dst, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC); /* the temporary hb_tmp_create made */
    if (out < 0) rc = hb_err_set(HB_ECANTCREAT, dst, "cannot create: %s", strerror(errno));
    char *buf = rc == 0 ? hb_malloc(1 << 20) : NULL;
    if (rc == 0 && !buf) rc = HB_EINTERNAL;
    while (rc == 0) {
        ssize_t n = read(in, buf, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = hb_err_set(HB_EIO, src, "cannot read: %s", strerror(errno));
        if (n <= 0) break;
        for (ssize_t o = 0; o < n && rc == 0;) {
            ssize_t w = write(out, buf + o, (size_t)(n - o));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) rc = hb_err_set(HB_EIO, dst, "cannot write: %s", strerror(errno));
            else o += w;
        }
    }
    free(buf);
    close(in);
    if (out >= 0) close(out);
    return rc;
}

/* A rank's rows of one column of one file as they go to rank 0: the rows before the
 * first chunk boundary (head), whole chunks, compressed by the rank itself (full), and
 * the rest (tail). Appending, every row is head: rank 0 writes them through HDF5. */
typedef struct part {
    uint64_t head, full, tail;
    char *z;         /* the full chunks, filtered, one after the other */
    uint64_t *sizes; /* bytes of each */
} part;

static part cut(uint64_t off, uint64_t n, uint64_t cr, int direct)
{
    part p = {n, 0, 0, NULL, NULL};
    if (!direct) return p;
    p.head = (cr - off % cr) % cr;
    if (p.head > n) p.head = n;
    p.full = (n - p.head) / cr;
    p.tail = n - p.head - p.full * cr;
    return p;
}

/* Rank 0 receives bytes from rank r into p (blocking, in pieces of 256 MiB); rank r sends
 * them (not blocking: its requests are waited for at the end). */
static void move(char *p, size_t bytes, int r, MPI_Request **req, size_t *nreq, size_t *capreq)
{
    const size_t piece = (size_t)1 << 28;
    for (size_t o = 0; o < bytes; o += piece) {
        int k = (int)(bytes - o < piece ? bytes - o : piece);
        if (hb_rank == 0) {
            MPI_Recv(p + o, k, MPI_BYTE, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            if (*nreq == *capreq && hb_grow((void **)req, capreq, *nreq + 1, sizeof **req)) abort();
            MPI_Isend(p + o, k, MPI_BYTE, 0, 7, MPI_COMM_WORLD, &(*req)[(*nreq)++]);
        }
    }
}

/* Rank 0's buffer of at least n bytes. */
static char *room(char **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        free(*buf);
        *buf = malloc(n);
        *cap = *buf ? n : 0;
        if (!*buf) abort(); /* rank 0 cannot take the other ranks' rows: no way to agree */
    }
    return *buf;
}

/* Collective. Every rank compresses the whole chunks of its rows; rank 0 writes every
 * rank's rows of every column into tmp: rank r's rows of file f go to the offset of
 * (f, r) in file-then-rank order, the same chunks whatever the rank count. */
static int write_table(imp *m, int nsrc, const char *tmp, const char *table, int append,
                       const int64_t *counts, uint64_t total, hb_tw **wp)
{
    int rc = 0, direct = !append;
    *wp = NULL;
    /* the ranks of rank 0's node wait while it writes: their cores compress its chunks */
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    int threads = m->threads > local ? m->threads : local;
    if (hb_rank == 0) rc = hb_tw_open(tmp, table, m->cols, m->ncols, total, append, threads, wp);
    rc = hb_agree(rc);
    if (rc) return rc;
    const size_t nf = (size_t)nsrc;
#define COUNT(r, f) ((uint64_t)counts[(size_t)(r) * nf + (size_t)(f)])
    /* this rank's whole chunks, filtered here, all columns first: the ranks work at once */
    part *mine = hb_calloc((size_t)m->ncols * nf, sizeof *mine);
    if (!mine) rc = HB_EINTERNAL;
    for (int c = 0; c < m->ncols && rc == 0; c++) {
        const size_t eb = m->cols[c].type == HB_CT_STRING ? m->cols[c].width : 8;
        const uint64_t cr = hb_tw_chunk_rows(&m->cols[c]);
        uint64_t off = 0, local_row = 0;
        for (int f = 0; f < nsrc && rc == 0; f++) {
            for (int r = 0; r < hb_rank; r++) off += COUNT(r, f);
            part *p = &mine[(size_t)c * nf + (size_t)f];
            *p = cut(off, COUNT(hb_rank, f), cr, direct);
            if (p->full && !(p->sizes = hb_malloc(p->full * sizeof *p->sizes))) rc = HB_EINTERNAL;
            if (rc == 0 && p->full)
                rc = hb_tw_compress(&m->cols[c], (char *)m->data[c] + (local_row + p->head) * eb, p->full,
                                    m->threads, &p->z, p->sizes);
            for (int r = hb_rank; r < hb_size; r++) off += COUNT(r, f);
            local_row += COUNT(hb_rank, f);
        }
    }
    rc = hb_agree(rc);
    char *buf = NULL, *zbuf = NULL;
    uint64_t *sbuf = NULL;
    size_t bufcap = 0, zcap = 0, scap = 0, nreq = 0, capreq = 0;
    MPI_Request *req = NULL;
    for (int c = 0; c < m->ncols && rc == 0; c++) {
        const size_t eb = m->cols[c].type == HB_CT_STRING ? m->cols[c].width : 8;
        const uint64_t cr = hb_tw_chunk_rows(&m->cols[c]);
        uint64_t off = 0, local_row = 0;
        for (int f = 0; f < nsrc; f++) {
            for (int r = 0; r < hb_size; r++) {
                const uint64_t n = COUNT(r, f);
                if (n == 0) continue;
                const part q = cut(off, n, cr, direct);
                const uint64_t at_full = off + q.head, at_tail = at_full + q.full * cr;
                if (hb_rank == 0 && r == 0) {
                    const part *p = &mine[(size_t)c * nf + (size_t)f];
                    const char *d = (char *)m->data[c] + local_row * eb;
                    if (rc == 0) rc = hb_tw_write(*wp, c, off, q.head, d);
                    if (rc == 0) rc = hb_tw_write_chunks(*wp, c, at_full, q.full, p->z, p->sizes);
                    if (rc == 0) rc = hb_tw_write(*wp, c, at_tail, q.tail, d + (q.head + q.full * cr) * eb);
                } else if (hb_rank == 0) {
                    /* every message is taken, also after a failure, so that no rank waits */
                    move(room(&buf, &bufcap, q.head * eb), q.head * eb, r, &req, &nreq, &capreq);
                    if (rc == 0) rc = hb_tw_write(*wp, c, off, q.head, buf);
                    if (q.full) {
                        if (q.full > scap) {
                            free(sbuf);
                            if (!(sbuf = malloc(q.full * sizeof *sbuf))) abort();
                            scap = q.full;
                        }
                        move((char *)sbuf, q.full * sizeof *sbuf, r, &req, &nreq, &capreq);
                        size_t zb = 0;
                        for (uint64_t k = 0; k < q.full; k++) zb += sbuf[k];
                        move(room(&zbuf, &zcap, zb), zb, r, &req, &nreq, &capreq);
                        if (rc == 0) rc = hb_tw_write_chunks(*wp, c, at_full, q.full, zbuf, sbuf);
                    }
                    move(room(&buf, &bufcap, q.tail * eb), q.tail * eb, r, &req, &nreq, &capreq);
                    if (rc == 0) rc = hb_tw_write(*wp, c, at_tail, q.tail, buf);
                } else if (hb_rank == r) {
                    const part *p = &mine[(size_t)c * nf + (size_t)f];
                    char *d = (char *)m->data[c] + local_row * eb;
                    move(d, q.head * eb, 0, &req, &nreq, &capreq);
                    if (q.full) {
                        size_t zb = 0;
                        for (uint64_t k = 0; k < q.full; k++) zb += p->sizes[k];
                        move((char *)p->sizes, q.full * sizeof *p->sizes, 0, &req, &nreq, &capreq);
                        move(p->z, zb, 0, &req, &nreq, &capreq);
                    }
                    move(d + (q.head + q.full * cr) * eb, q.tail * eb, 0, &req, &nreq, &capreq);
                }
                if (hb_rank == r) local_row += n;
                off += n;
            }
        }
    }
#undef COUNT
    free(buf);
    free(zbuf);
    free(sbuf);
    /* the other ranks wait for rank 0 to take their rows: asleep, so that its threads
     * have the cores (a blocking wait would spin on one) */
    for (int done = nreq == 0; !done;) {
        MPI_Testall((int)nreq, req, &done, MPI_STATUSES_IGNORE);
        if (!done) usleep(500);
    }
    free(req);
    for (size_t k = 0; mine && k < (size_t)m->ncols * nf; k++) free(mine[k].z), free(mine[k].sizes);
    free(mine);
    return hb_agree(rc);
}

/* ---- the command ---- */

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

static char *join_args(int argc, char **argv)
{
    size_t n = 16;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = hb_malloc(n);
    if (!s) return NULL;
    strcpy(s, "h5batch import");
    for (int i = 0; i < argc; i++) strcat(s, " "), strcat(s, argv[i]);
    return s;
}

/* Rank 0: the provenance (what depends on the run) and the table's attributes. */
static int write_meta(hb_tw *w, imp *m, source *src, int nsrc, int argc, char **argv, uint64_t rows,
                      uint64_t skipped, uint64_t base, double secs)
{
    const char *p = "/provenance";
    char iso[32], *cmd = join_args(argc, argv);
    size_t n = 1;
    for (int i = 0; i < nsrc; i++) n += strlen(src[i].path) + 1;
    char *files = hb_calloc(1, n);
    uint64_t *sizes = hb_calloc((size_t)nsrc, sizeof *sizes);
    int rc = cmd && files && sizes ? 0 : HB_EINTERNAL;
    for (int i = 0; i < nsrc && rc == 0; i++) {
        if (i) strcat(files, "\n");
        strcat(files, src[i].path);
        sizes[i] = src[i].bytes;
    }
    hb_iso_time((double)time(NULL), iso, sizeof iso);
    uint64_t ranks = (uint64_t)hb_size, msecs = (uint64_t)(secs * 1000);
    if (rc == 0) rc = hb_tw_attr_str(w, p, "h5batch_version", HB_VERSION);
    if (rc == 0) rc = hb_tw_attr_str(w, p, "command", cmd);
    if (rc == 0) rc = hb_tw_attr_str(w, p, "sources", files);
    if (rc == 0) rc = hb_tw_attr_u64(w, p, "source_bytes", sizes, -nsrc);
    if (rc == 0) rc = hb_tw_attr_str(w, p, "timezone", m->tzname);
    if (rc == 0) rc = hb_tw_attr_str(w, p, "started_at", iso);
    if (rc == 0) rc = hb_tw_attr_u64(w, p, "ranks", &ranks, 1);
    if (rc == 0) rc = hb_tw_attr_u64(w, p, "rows_imported", &rows, 1);
    if (rc == 0) rc = hb_tw_attr_u64(w, p, "rows_before", &base, 1);
    if (rc == 0) rc = hb_tw_attr_u64(w, p, "time_ms", &msecs, 1);
    if (rc == 0) rc = hb_tw_attr_u64(w, NULL, "rows_skipped", &skipped, 1);
    free(cmd);
    free(files);
    free(sizes);
    return rc;
}

/* Collective. The first skipped record of all ranks (smallest file, line), for the message. */
static void first_skipped(imp *m)
{
    if (hb_size == 1) return;
    /* MPI has MINLOC for (long, int) pairs: (file << 40) + line fits a long on LP64 */
    struct {
        long key;
        int rank;
    } a = {(long)m->first_key, hb_rank}, b;
    MPI_Allreduce(&a, &b, 1, MPI_LONG_INT, MPI_MINLOC, MPI_COMM_WORLD);
    if (b.key != (long)INT64_MAX) MPI_Bcast(m->first_msg, (int)sizeof m->first_msg, MPI_CHAR, b.rank, MPI_COMM_WORLD);
}

static void free_imp(imp *m)
{
    for (int c = 0; m->data && c < m->ncols; c++) free(m->data[c]);
    free(m->data);
    free(m->cols);
    free(m->decl);
    free(m->st);
    free(m->f);
    free(m->ival);
    free(m->rv);
    free(m->rr);
    spec_free(m);
    hb_tzmap_free(&m->tz);
}

/* Collective. Matches the header to the declarations (and, with --append, the existing
 * table's columns) and sets up the columns. */
static int setup_columns(imp *m, const char *names, int n, const decl *d, int nd, const hb_csv_col *old, int nold,
                         const char *path, const char *out)
{
    m->ncols = n;
    m->cols = hb_calloc((size_t)n, sizeof *m->cols);
    m->decl = hb_calloc((size_t)n, sizeof *m->decl);
    m->st = hb_calloc((size_t)n, sizeof *m->st);
    m->f = hb_calloc((size_t)n + 1, sizeof *m->f);
    m->ival = hb_calloc((size_t)n + 1, sizeof *m->ival);
    m->rv = hb_calloc((size_t)n + 1, sizeof *m->rv);
    m->rr = hb_calloc((size_t)n + 1, sizeof *m->rr);
    if (!m->cols || !m->decl || !m->st || !m->f || !m->ival || !m->rv || !m->rr) return HB_EINTERNAL;
    const char *p = names;
    for (int c = 0; c < n; c++, p += strlen(p) + 1) {
        if (!*p) return hb_err_set(HB_EDATA, path, "line 1: column %d of the header has no name", c + 1);
        if (strchr(p, '/') || !strcmp(p, ".") || strlen(p) >= sizeof m->cols[c].name)
            return hb_err_set(HB_EDATA, path, "line 1: column %d: '%s' cannot name an HDF5 dataset (no '/', not '.', under 256 bytes)",
                              c + 1, p);
        for (int k = 0; k < c; k++)
            if (!strcmp(m->cols[k].name, p))
                return hb_err_set(HB_EDATA, path, "line 1: column name '%s' appears twice (columns %d and %d)", p, k + 1,
                                  c + 1);
        snprintf(m->cols[c].name, sizeof m->cols[c].name, "%s", p);
        m->decl[c].type = T_AUTO;
        m->cols[c].gzip = m->gzip;
        colstat *s = &m->st[c];
        s->maybe_int = s->maybe_float = s->maybe_time = 1;
        s->tmin = INT64_MAX;
        s->tmax = INT64_MIN;
    }
    for (int i = 0; i < nd; i++) {
        int c = 0;
        while (c < n && strcmp(m->cols[c].name, d[i].name)) c++;
        if (c == n) return hb_err_set(HB_EDATA, path, "--columns names '%s', which is not in the header", d[i].name);
        m->decl[c] = d[i];
    }
    if (old) {
        int same = nold == n;
        for (int c = 0; same && c < n; c++) same = !strcmp(old[c].name, m->cols[c].name);
        if (!same) {
            char buf[600] = "";
            for (int c = 0; c < nold && strlen(buf) < 500; c++)
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", c ? ", " : "", old[c].name);
            return hb_err_set(HB_EDATA, path, "the header's columns differ from those of the table in %s (%s)", out, buf);
        }
        for (int c = 0; c < n; c++) {
            if (m->decl[c].type != T_AUTO && m->decl[c].type != (int)old[c].type)
                return hb_err_set(HB_EDATA, path, "--columns: '%s' is of another type in the table of %s", old[c].name, out);
            m->decl[c].type = (int)old[c].type;
            m->cols[c].width = old[c].width;
        }
    }
    return 0;
}

/* Collective. Claims the output for this import (rank 0: OUT.lock beside it, as `run`
 * does), so that two imports never write one file, once it is known not to be one of the
 * inputs (never replaced, not even with --force or --append); 73 otherwise. */
static int claim_output(const char *out, char **paths, int nsrc, char *lock, size_t len, int *fd)
{
    int rc = 0;
    *fd = -1;
    if (hb_rank == 0) {
        struct stat o, in;
        for (int i = 0; i < nsrc && rc == 0; i++)
            if (stat(out, &o) == 0 && stat(paths[i], &in) == 0 && o.st_dev == in.st_dev && o.st_ino == in.st_ino)
                rc = hb_err_set(HB_ECANTCREAT, out, "output is the input %s; it is never replaced (not even with --force): "
                                                    "choose another output",
                                paths[i]);
        snprintf(lock, len, "%s.lock", out);
        char what[4300];
        snprintf(what, sizeof what, "output %s", out);
        if (rc == 0) rc = hb_claim_take(lock, what, NULL, fd);
    }
    return hb_agree(rc);
}

/* Collective. The import itself, once the options are read. */
static int run_import(imp *m, char **paths, int nsrc, const char *out, const char *table, const char *spec,
                      int append, int force, int argc, char **argv)
{
    double t0 = hb_now();
    decl *d = NULL;
    int nd = 0;
    int rc = hb_agree(parse_columns(spec, &d, &nd));
    if (rc == 0) rc = hb_output_check(out, force || append);
    char lock[4300];
    int lock_fd = -1;
    if (rc == 0) rc = claim_output(out, paths, nsrc, lock, sizeof lock, &lock_fd);
    struct stat sb;
    int exists = append && stat(out, &sb) == 0;
    MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
    /* --append: the existing table's columns and types, from rank 0 */
    hb_csv_col *old = NULL;
    int nold = 0;
    uint64_t base = 0, old_skipped = 0;
    if (rc == 0 && exists) {
        if (hb_rank == 0) rc = hb_tw_schema(out, table, &old, &nold, &base, &old_skipped);
        rc = hb_agree(rc);
        if (rc == 0) {
            MPI_Bcast(&nold, 1, MPI_INT, 0, MPI_COMM_WORLD);
            if (hb_rank != 0 && !(old = hb_calloc((size_t)nold, sizeof *old))) abort();
            MPI_Bcast(old, (int)(sizeof *old * (size_t)nold), MPI_BYTE, 0, MPI_COMM_WORLD);
            MPI_Bcast(&base, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
            MPI_Bcast(&old_skipped, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        }
    }
    source *src = hb_calloc((size_t)nsrc, sizeof *src);
    if (rc == 0 && !src) rc = HB_EINTERNAL;
    rc = hb_agree(rc);
    /* the inputs: missing ones are found before any work */
    for (int i = 0; i < nsrc && rc == 0; i++) {
        src[i].path = paths[i];
        rc = hb_agree(open_source(&src[i], i));
    }
    char *first = NULL;
    int nfirst = 0;
    uint64_t in_bytes = 0;
    for (int i = 0; i < nsrc && rc == 0; i++) {
        char *names = NULL;
        int n = 0;
        size_t data0 = 0;
        int64_t hl = 0;
        in_bytes += src[i].bytes;
        rc = read_header(&src[i], i, m->delim, &names, &n, &data0, &hl);
        if (rc) break;
        if (i == 0) {
            first = names, nfirst = n;
            rc = hb_agree(setup_columns(m, names, n, d, nd, old, nold, src[i].path, out));
        } else {
            int same = n == nfirst;
            const char *a = first, *b = names;
            for (int c = 0; same && c < n; c++, a += strlen(a) + 1, b += strlen(b) + 1) same = !strcmp(a, b);
            free(names);
            if (!same)
                rc = hb_err_set(HB_EDATA, src[i].path, "the header (line 1) differs from that of %s", src[0].path);
            rc = hb_agree(rc);
        }
        if (rc == 0) split(&src[i], data0, hl, i);
    }
    free(first);
    /* room for this rank's records: at most one more than the line breaks of its ranges */
    int64_t cap = 0;
    for (int i = 0; i < nsrc && rc == 0; i++) cap += src[i].buf ? (int64_t)src[i].lines + 1 : 0;
    /* pass 1, file by file, so that the error reported is the first of the files; it
     * converts each column as the type of its first value (spec) while it checks */
    double t1 = hb_now();
    m->first_key = INT64_MAX;
    if (rc == 0 && m->convert1 && (m->sp = hb_calloc((size_t)m->ncols, sizeof *m->sp))) {
        m->spcap = cap;
        for (int c = 0; c < m->ncols; c++) {
            m->sp[c].kind = K_UNDECIDED;
            if (m->decl[c].type != T_AUTO) spec_room(m, &m->sp[c], m->decl[c].type, 0);
        }
    }
    for (int i = 0; i < nsrc && rc == 0; i++) {
        int64_t before = m->nrows;
        rc = hb_agree(scan(m, &src[i], i, 1));
        src[i].rows = m->nrows - before;
    }
    if (rc == 0) rc = decide_types(m);
    int converted = rc == 0 && spec_finish(m);
    spec_free(m);
    double t2 = hb_now();
    if (rc == 0 && !converted) { /* pass 2 into arrays sized by this rank's records */
        m->nrows = 0;
        m->skipped = 0;
        m->first_key = INT64_MAX;
        m->data = hb_calloc((size_t)m->ncols, sizeof *m->data);
        int ok = m->data != NULL;
        for (int c = 0; ok && c < m->ncols; c++) {
            size_t eb = m->cols[c].type == HB_CT_STRING ? m->cols[c].width : 8;
            ok = (m->data[c] = hb_malloc((size_t)(cap ? cap : 1) * eb)) != NULL;
        }
        rc = hb_agree(ok ? 0 : hb_err_set(HB_EINTERNAL, "import", "out of memory for %lld rows", (long long)cap));
        for (int i = 0; i < nsrc && rc == 0; i++) {
            int64_t before = m->nrows;
            rc = hb_agree(scan(m, &src[i], i, 2));
            src[i].rows = m->nrows - before;
        }
    }
    for (int i = 0; i < nsrc; i++) close_source(&src[i]);
    double t3 = hb_now();
    /* the row counts of every (rank, file), for the offsets */
    int64_t *counts = NULL;
    uint64_t total = 0, skipped = m->skipped;
    if (rc == 0) {
        counts = hb_malloc(sizeof *counts * (size_t)nsrc * (size_t)hb_size);
        int64_t *mine = hb_malloc(sizeof *mine * (size_t)nsrc);
        if (!counts || !mine) abort(); /* a few bytes per file and rank */
        for (int i = 0; i < nsrc; i++) mine[i] = src[i].rows;
        MPI_Allgather(mine, nsrc, MPI_INT64_T, counts, nsrc, MPI_INT64_T, MPI_COMM_WORLD);
        free(mine);
        for (size_t k = 0; k < (size_t)nsrc * (size_t)hb_size; k++) total += (uint64_t)counts[k];
        MPI_Allreduce(MPI_IN_PLACE, &skipped, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        if (skipped) first_skipped(m);
    }
    /* a unique temporary, created exclusively by rank 0 and named to all: never a link
     * planted at a name one could guess */
    char tmp[4300] = "";
    hb_tw *w = NULL;
    int made = 0;
    if (rc == 0) made = (rc = hb_tmp_create(out, tmp, sizeof tmp)) == 0; /* the commit renames or removes it */
    if (rc == 0 && exists && hb_rank == 0) rc = copy_file(out, tmp);
    rc = hb_agree(rc);
    if (rc == 0) rc = write_table(m, nsrc, tmp, table, exists, counts, total, &w);
    double secs = hb_now() - t0;
    HB_DEBUG("import: open and split %.2f s, pass 1 (check, infer%s) %.2f s, pass 2 (convert) %s%.2f s, write %.2f s",
             t1 - t0, converted ? ", convert" : "", t2 - t1, converted ? "not needed " : "", t3 - t2, hb_now() - t3);
    if (rc == 0 && hb_rank == 0) rc = write_meta(w, m, src, nsrc, argc, argv, total, skipped + old_skipped, base, secs);
    if (hb_rank == 0 && w) {
        int crc = hb_tw_close(w);
        if (rc == 0) rc = crc;
    }
    if (made) rc = hb_commit(tmp, out, rc);
    if (rc == 0 && skipped)
        hb_warn("import: skipped %llu malformed record%s (--on-error skip); the first: %s", (unsigned long long)skipped,
                skipped == 1 ? "" : "s", m->first_msg);
    if (rc == 0)
        HB_INFO("import: %llu rows, %d columns from %d file%s (%.1f MB) in %.2f s (%.0f MB/s) -> %s:%s",
                (unsigned long long)total, m->ncols, nsrc, nsrc == 1 ? "" : "s", (double)in_bytes / 1e6, secs,
                (double)in_bytes / 1e6 / (secs > 0 ? secs : 1e-9), out, table);
    if (hb_rank == 0) hb_claim_release(lock, lock_fd, 1);
    free(counts);
    free(src);
    free(old);
    free(d);
    return rc;
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
    m.null = hb_opt_str(&o, "null");
    m.null_len = m.null ? strlen(m.null) : 0;
    m.skip = rc == 0 && !strcmp(hb_opt_str(&o, "on-error"), "skip");
    char table[512];
    const char *t = hb_opt_str(&o, "table");
    snprintf(table, sizeof table, "%s%s", t && t[0] == '/' ? "" : "/", t ? t : "table");
    for (int i = 0; rc == 0 && i < a.npos; i++)
        if (a.pos[i][0] == '-' && a.pos[i][1])
            rc = hb_err_set(HB_EUSAGE, "import", "unknown option '%s' (h5batch import --help)", a.pos[i]);
    if (rc == 0 && a.npos == 0)
        rc = hb_err_set(HB_EUSAGE, "import", "no CSV file given (h5batch import FILE.csv... -o OUT.h5; --help lists the options)");
    if (rc == 0 && !out) rc = hb_err_set(HB_EUSAGE, "import", "-o OUT.h5 is required");
    if (rc == 0) {
        if (!strcmp(delim, "\\t") || !strcmp(delim, "tab")) m.delim = '\t';
        else if (strlen(delim) == 1 && delim[0] != '"' && delim[0] != '\n' && delim[0] != '\r') m.delim = delim[0];
        else rc = hb_err_set(HB_EUSAGE, "import", "--delimiter must be one character (not a quote), got '%s'", delim);
    }
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
    if (rc == 0 && m.null && !*m.null) rc = hb_err_set(HB_EUSAGE, "import", "--null needs a text (empty fields are missing already)");
    if (rc == 0 && !hb_tz_valid(m.tzname))
        rc = hb_err_set(HB_EUSAGE, "import", "--timezone: unknown time zone '%s' (an IANA name like Europe/Berlin)",
                        m.tzname);
    if (rc == 0 && (strlen(table) < 2 || table[strlen(table) - 1] == '/'))
        rc = hb_err_set(HB_EUSAGE, "import", "--table: '%s' is not a group name", table);
    rc = hb_agree(rc);
    if (rc == 0)
        rc = run_import(&m, a.pos, a.npos, out, table, hb_opt_str(&o, "columns"), hb_opt_bool(&o, "append"),
                        hb_opt_bool(&o, "force"), argc, argv);
    free_imp(&m);
    hb_args_free(&a);
    return rc;
}
