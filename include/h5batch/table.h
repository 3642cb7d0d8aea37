/* Tables (DESIGN.md 4, docs/tables.md): a group of equal-length 1-D columns, or a 1-D
 * compound dataset whose fields are the columns (h5py, PyTables, pandas
 * to_hdf(format="table") at /KEY/table, named /KEY or /KEY/table), or pandas
 * to_hdf(format="fixed") numeric blocks; read in row ranges and converted. */
#ifndef H5BATCH_TABLE_H
#define H5BATCH_TABLE_H

#include "h5batch/io.h"

#include <stddef.h>
#include <stdint.h>

/* Not collective. Opens a table at path (a group, a compound dataset, or a group holding
 * the compound dataset `table`) whose columns named in cols are numeric. Checks presence,
 * rank, type, lengths and that the filters of compressed columns are installed, naming
 * what is wrong (65; 66 for a missing filter plugin). */
int hb_table_open(hb_in *in, const char *group, const char *const *cols, int ncols, hb_table **t);
int64_t hb_table_rows(const hb_table *t);
/* Reads rows [start, start+count) of column col into buf, converted to want. Memory
 * used beyond buf is bounded by count. */
int hb_table_read(hb_table *t, int col, int64_t start, int64_t count, hb_elem want, void *buf);
/* What hb_table_read_raw gives: a numeric column's elements as stored, in the machine's
 * byte order (HB_RAW_OTHER: a type read only through hb_table_read). */
typedef enum { HB_RAW_OTHER, HB_RAW_I32, HB_RAW_U32, HB_RAW_I64, HB_RAW_F32, HB_RAW_F64 } hb_raw_kind;
/* Not collective. The stored kind of numeric column col, for hb_table_read_raw. */
hb_raw_kind hb_table_raw_kind(const hb_table *t, int col);
/* Not collective. Reads rows [start, start+count) of column col, whose kind is not
 * HB_RAW_OTHER, into buf as stored (4 or 8 bytes an element), converting nothing: for
 * kernels that convert in their own loop rather than in a pass of their own. */
int hb_table_read_raw(hb_table *t, int col, int64_t start, int64_t count, void *buf);
/* 1 when every value of column col converts to float exactly (float32, 8/16-bit ints). */
int hb_table_exact_f32(const hb_table *t, int col);
/* Not collective. Ticks per second of a time_unit (s, ms, us, ns; NULL is s); 0 when unknown. */
int64_t hb_time_unit_per_s(const char *unit);
/* Not collective. The time_unit (s, ms, us, ns) of time column col: set (a step's option
 * time_unit) when not NULL, else what the column states, else NULL (the kernel's default): pandas' datetime64 (ns; datetime64[UNIT] its UNIT), or a units attribute
 * naming the unit alone or as CF's "UNIT since 1970-01-01" (what h5batch's import and
 * xarray write). 65 when it states a unit or an epoch h5batch does not read (pandas
 * datetime64[D], "hours since 2024-01-01"). */
int hb_table_time_unit(hb_table *t, int col, const char *set, const char **unit);
/* Not collective. Reads rows [start, start+count) of time column col, counts of 1/per_s
 * second since 1970-01-01 UTC (floats floored), into raw (INT64_MIN where missing) and,
 * when secs is not NULL (it may be raw), whole seconds (floor division, so -1 ms is
 * second -1). A time outside the years 1900-2200 in that unit is 65, naming the column,
 * the row, the value and the time_unit that fits the rows read. */
int hb_table_read_time(hb_table *t, int col, int64_t start, int64_t count, int64_t per_s, int64_t *raw,
                       int64_t *secs);
/* Reads an integer attribute of the table (its group or compound dataset); *present = 0 when absent. */
int hb_table_attr_i64(hb_table *t, const char *name, int64_t *v, int *present);
void hb_table_close(hb_table *t);

/* What a column of a table holds. */
typedef enum { HB_COL_INT, HB_COL_FLOAT, HB_COL_STRING } hb_col_kind;

/* Not collective. Opens a table like hb_table_open, but columns may also be strings
 * (fixed-length or variable-length, ASCII or UTF-8, as h5py and pandas write them):
 * hb_table_kind says which, hb_table_read_str reads them; hb_table_read on a string
 * column is 65. */
int hb_table_open_any(hb_in *in, const char *group, const char *const *cols, int ncols, hb_table **t);
/* Not collective. The kind of column col. */
hb_col_kind hb_table_kind(const hb_table *t, int col);
/* Not collective. 65 (with the error set, naming the column) when column col is packed
 * (CF scale_factor or add_offset): its stored numbers are not the key or id values a
 * kernel reads as integers; else 0. */
int hb_table_check_unpacked(const hb_table *t, int col);

/* Strings read from a column: row i is bytes[off[i] .. off[i+1]) (no terminator). The
 * caller owns it and reuses it across reads, so a chunk's strings cost one buffer. */
typedef struct hb_strs {
    char *bytes;
    uint64_t *off;
    size_t bytes_cap, off_cap;
} hb_strs;

/* Not collective. Reads rows [start, start+count) of string column col into s: the
 * padding of fixed-length strings (NULs, or spaces for space-padded ones) is dropped, a
 * missing variable-length string reads as the empty string. These are keys and labels:
 * a string that is not UTF-8, or holds a NUL before its padding, is 65 naming the column
 * and row. */
int hb_table_read_str(hb_table *t, int col, int64_t start, int64_t count, hb_strs *s);
/* Not collective. hb_table_read_str without that check, for text that its reader decodes
 * itself (the index's documents, whose invalid bytes the tokenizer counts). */
int hb_table_read_text(hb_table *t, int col, int64_t start, int64_t count, hb_strs *s);
void hb_strs_free(hb_strs *s);
/* Not collective. Where the last hb_table_read_str of column col read a missing value, 1
 * a row: pandas' NaN, which a categorical stores as code -1 (read as the empty string) and
 * a string column of pandas' format="table" as its nan_rep text ("nan"); NULL for a
 * column that cannot hold one. */
const uint8_t *hb_table_str_missing(const hb_table *t, int col);
/* Not collective. Reads the string attribute name (e.g. units) of column col into buf:
 * 0 when found, 1 when absent. */
int hb_table_col_attr_str(hb_table *t, int col, const char *name, char *buf, size_t len);

/* The option `columns` every table-reading kernel takes (DESIGN.md 3): a mapping from the
 * kernel's column names to the table's, "time:timestamp, segment:meter_id". */
#define HB_COLMAP_MAX 32
typedef struct hb_colmap {
    int n;
    char from[HB_COLMAP_MAX][64], to[HB_COLMAP_MAX][256];
} hb_colmap;

/* Not collective. Parses a mapping (NULL or empty: none); -1 with the reason in msg when
 * it is malformed or maps a name twice (a job-file error). */
int hb_colmap_parse(const char *spec, hb_colmap *m, char *msg, size_t len);
/* Not collective. The table's name for the kernel's column name: mapped, else itself. */
const char *hb_colmap_name(const hb_colmap *m, const char *name);

#endif
