/* Browsing any HDF5 file read-only, for `h5batch export`: the groups that hold datasets,
 * the datasets of a group with their shapes, element kinds, units and attached
 * dimension scales, and block reads of numeric and string datasets. All Not collective. */
#ifndef HB_IO_BROWSE_H
#define HB_IO_BROWSE_H

#include "io/io.h"

#include <stdint.h>

#define HB_VAR_MAXDIMS 8

typedef enum { HB_VAR_INT, HB_VAR_UINT, HB_VAR_FLOAT, HB_VAR_STRING, HB_VAR_OTHER } hb_var_kind;

/* A dataset directly in a group. */
typedef struct hb_var {
    char name[256];      /* its link name in the group */
    hb_var_kind kind;    /* HB_VAR_OTHER: compound, enum, references... (not exported) */
    int ndims;
    int64_t dims[HB_VAR_MAXDIMS];
    /* Per dimension: the attached dimension scale's path and name ("" when none). */
    char scale[HB_VAR_MAXDIMS][512];
    char dim[HB_VAR_MAXDIMS][256];
    int is_scale;        /* the dataset is itself a dimension scale (a coordinate) */
    char units[64];      /* its `units` attribute, "" when none */
} hb_var;

/* The groups of the file that hold at least one dataset, /provenance left out, in name
 * order; *groups is malloc'd, each entry too (hb_browse_free_groups). */
int hb_browse_groups(hb_in *in, char ***groups, int *n);
void hb_browse_free_groups(char **groups, int n);

/* 1 when group is a group of the file. */
int hb_browse_is_group(hb_in *in, const char *group);

/* The datasets directly in group, in name order; *vars is malloc'd. */
int hb_browse_vars(hb_in *in, const char *group, hb_var **vars, int *n);

/* Reads the block start[d] .. start[d]+count[d] of the numeric dataset path (ndims
 * dimensions) into buf as t (HB_F64, HB_I64 or HB_U64), converted by HDF5. */
int hb_browse_read(hb_in *in, const char *path, hb_elem t, int ndims, const int64_t *start, const int64_t *count,
                   void *buf);

/* Reads elements [start, start+count) of the 1-D string dataset path (fixed or variable
 * length) into s, padding dropped. */
int hb_browse_read_str(hb_in *in, const char *path, int64_t start, int64_t count, hb_strs *s);

#endif
