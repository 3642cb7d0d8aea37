/* Tables: a group of equal-length 1-D columns, read in row ranges and converted. */
#ifndef H5BATCH_TABLE_H
#define H5BATCH_TABLE_H

#include "h5batch/io.h"

#include <stddef.h>
#include <stdint.h>

/* Opens a table: a group whose members named in cols are equal-length 1-D numeric
 * datasets. Checks presence, rank, type and lengths, naming what is wrong (65). */
int hb_table_open(hb_in *in, const char *group, const char *const *cols, int ncols, hb_table **t);
int64_t hb_table_rows(const hb_table *t);
/* Reads rows [start, start+count) of column col into buf, converted to want. Memory
 * used beyond buf is bounded by count. */
int hb_table_read(hb_table *t, int col, int64_t start, int64_t count, hb_elem want, void *buf);
/* 1 when every value of column col converts to float exactly (float32, 8/16-bit ints). */
int hb_table_exact_f32(const hb_table *t, int col);
/* Reads an integer attribute of the table group; *present = 0 when absent. */
int hb_table_attr_i64(hb_table *t, const char *name, int64_t *v, int *present);
void hb_table_close(hb_table *t);

#endif
