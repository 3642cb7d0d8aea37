/* CSV reading for `h5batch import` (docs/import.md): an RFC 4180 record tokenizer over a
 * buffer, the value parsers (integers, reals, ISO 8601 and strptime-style times), local
 * time to UTC with the project's zone table, and the HDF5 table writer (csv_h5.c). */
#ifndef HB_IO_CSV_H
#define HB_IO_CSV_H

#include "core/calendar.h"

#include <stddef.h>
#include <stdint.h>

/* One field of a record: p[0..len) inside the buffer, without its quotes; escaped when
 * it holds doubled quotes ("" for ") that hb_csv_unescape turns into one. */
typedef struct hb_csv_field {
    const char *p;
    uint32_t len;
    uint32_t escaped;
} hb_csv_field;

/* Why a record is malformed (HB_CSV_OK when it is not). */
typedef enum {
    HB_CSV_OK = 0,
    HB_CSV_AFTER_QUOTE,  /* text between a closing quote and the delimiter */
    HB_CSV_STRAY_QUOTE,  /* a quote inside an unquoted field */
    HB_CSV_UNTERMINATED, /* a quoted field still open at the end of the file */
    HB_CSV_TOO_LONG      /* a field of 4 GiB or more */
} hb_csv_bad;

const char *hb_csv_bad_text(hb_csv_bad b);

/* Reads the record that starts at buf[*pos] (buf[0..end)), storing up to maxf fields;
 * *nf is the number of fields it has (0 for a blank line), *newlines the line breaks it
 * spans, *pos moves past its line break. A record ends at a line break outside quotes:
 * also a malformed one, read on to the first line break where the file's quotes are
 * balanced, so that record boundaries are a property of the bytes alone (the split of
 * a file between ranks relies on it). A CR before the line break is dropped. */
hb_csv_bad hb_csv_record(const char *buf, size_t end, size_t *pos, char delim, hb_csv_field *f, int maxf, int *nf,
                         int64_t *newlines);

/* Quote characters and line breaks in buf[lo..hi). */
void hb_csv_count(const char *buf, size_t lo, size_t hi, uint64_t *quotes, uint64_t *newlines);

/* The first record start at or after lo, given the parity of the quotes before lo
 * (odd: inside a quoted field); hi when none starts before hi. *newlines: the line
 * breaks skipped. */
size_t hb_csv_sync(const char *buf, size_t lo, size_t hi, int odd, int64_t *newlines);

/* Unescaped length of a field; hb_csv_unescape writes it to dst (no NUL). */
size_t hb_csv_unescaped_len(const hb_csv_field *f);
void hb_csv_unescape(const hb_csv_field *f, char *dst);

/* Value parsers: 0 when the whole field is one, -1 otherwise. */
int hb_csv_int(const char *p, size_t n, int64_t *v);
int hb_csv_float(const char *p, size_t n, double *v);
/* 0 when hb_csv_float would read the field (the syntax alone, without converting). */
int hb_csv_float_syntax(const char *p, size_t n);

/* A time read from text: civil seconds (as if UTC) and whether an offset was given (then
 * utc is the instant). */
typedef struct hb_csv_time {
    int64_t secs; /* local civil seconds since 1970-01-01 00:00, or UTC when has_offset */
    int has_offset;
} hb_csv_time;
/* A missing time as stored: the least int64, pandas' NaT, which every kernel counts as a
 * missing time and export writes as an empty field. */
#define HB_CSV_NAT INT64_MIN

/* ISO 8601: YYYY-MM-DD, optionally [T or space]HH:MM[:SS[.fraction]] and Z or +HH[:MM]
 * / -HH[MM]; or the date day first with dots, D.M.YYYY (30.03.2024), with the same time.
 * Fractions of a second are dropped (times are whole seconds, floor). */
int hb_csv_iso(const char *p, size_t n, hb_csv_time *t);
/* strptime-style: %Y %m %d %e %H %M %S %y %b %B %j %p %I %f %z %Z(literal UTC/Z) %T %F %% and
 * literal text; a space in fmt matches any run of blanks. */
int hb_csv_strptime(const char *p, size_t n, const char *fmt, hb_csv_time *t);
/* 0 when fmt uses only the conversions hb_csv_strptime knows; else -1, bad names it ('\0'
 * when a lone '%' ends fmt). */
int hb_csv_format_check(const char *fmt, char *bad);

/* Local civil seconds L in the zone of map m (covering L's days, hb_tzmap_cover) to
 * UTC: a time in a gap (spring forward) becomes the instant the clocks change, as
 * pandas' nonexistent='shift_forward'; a repeated time (fall back) is its first
 * occurrence, as pandas' ambiguous=True. */
int64_t hb_csv_local_to_utc(const hb_tzmap *m, int64_t local);

/* ---- the table an import writes (csv_h5.c); not collective: rank 0 writes ---- */

typedef enum { HB_CT_INT, HB_CT_FLOAT, HB_CT_TIME, HB_CT_STRING } hb_ctype;

/* One column of the table: its name (the header's), type and, for strings, the fixed
 * width in bytes (UTF-8, NUL-padded). */
typedef struct hb_csv_col {
    char name[256];
    hb_ctype type;
    size_t width;
    char desc[320]; /* the description attribute; "" for none */
    int gzip;       /* a new column's compression: 0 none (no filters), 1-9 shuffle (numbers) + deflate level */
} hb_csv_col;

typedef struct hb_tw hb_tw;

/* The columns, in order, the row count and the skipped-row count of the table group of
 * an existing file (for --append); 65 when it is not a table import can extend. *cols is
 * malloc'd. */
int hb_tw_schema(const char *path, const char *table, hb_csv_col **cols, int *ncols, uint64_t *rows,
                 uint64_t *skipped);
/* Creates path (a new file) with the table group and its columns sized rows; with
 * append, path is a copy of the existing file whose columns grow by rows (strings widen
 * to cols[i].width when that is more). Columns are chunked and, as cols[i].gzip says,
 * shuffled and deflated (libdeflate: a zlib stream HDF5's deflate filter reads); a new
 * table's chunks are compressed by threads (OpenMP) and written whole. */
int hb_tw_open(const char *path, const char *table, const hb_csv_col *cols, int ncols, uint64_t rows, int append,
               int threads, hb_tw **w);
/* Writes rows [off, off+cnt) of the new rows of column c (for a new table, each column's
 * rows in order) (int64, double, int64 seconds,
 * or cnt x width bytes for strings). */
int hb_tw_write(hb_tw *w, int c, uint64_t off, uint64_t cnt, const void *data);
/* The rows of one chunk of column c. */
uint64_t hb_tw_chunk_rows(const hb_csv_col *c);
/* Not collective, no HDF5: filters (shuffle, deflate) nchunks whole chunks of column c
 * from src on threads, as the table's datasets store them: *out (malloc'd) holds them one
 * after the other, sizes[k] the bytes of chunk k. What any rank can do for rank 0. */
int hb_tw_compress(const hb_csv_col *c, const char *src, size_t nchunks, int threads, char **out, uint64_t *sizes);
/* Writes nchunks chunks filtered by hb_tw_compress as rows [off, ...) of a new table's
 * column c; off is the next row the column expects and a chunk boundary. */
int hb_tw_write_chunks(hb_tw *w, int c, uint64_t off, size_t nchunks, const char *z, const uint64_t *sizes);
/* Attributes: of the table group (obj NULL), or of /provenance (obj "/provenance"); an
 * integer attribute with n == 1 is a scalar, with n < 0 an array of -n values. */
int hb_tw_attr_str(hb_tw *w, const char *obj, const char *name, const char *v);
int hb_tw_attr_u64(hb_tw *w, const char *obj, const char *name, const uint64_t *v, int n);
/* Closes the file; the first failure of any call, else the close's. Safe on NULL. */
int hb_tw_close(hb_tw *w);

#endif
