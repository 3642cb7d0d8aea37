/* Browsing any HDF5 file read-only (io/browse.h): what `h5batch export` needs to turn a
 * group of datasets into rows without knowing the kernel that wrote it. */
#include "io/browse.h"

#include "io/internal.h"

#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct name_list {
    char **v;
    int n;
    size_t cap;
    int failed;
} name_list;

static void list_add(name_list *l, const char *s)
{
    char *c = hb_strdup(s);
    if (!c || hb_grow((void **)&l->v, &l->cap, (size_t)l->n + 1, sizeof *l->v) != 0) {
        free(c);
        l->failed = 1;
        return;
    }
    l->v[l->n++] = c;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* H5Ovisit callback: groups that hold a dataset, named by the dataset's parent. A
 * dimension scale alone (import's /row beside its /table) makes no group of datasets. */
static herr_t visit_group(hid_t o, const char *name, const H5O_info_t *info, void *data)
{
    name_list *l = data;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(o, name, H5P_DEFAULT);
    int scale = d >= 0 && H5DSis_scale(d) > 0;
    if (d >= 0) H5Dclose(d);
    if (scale) return 0;
    char parent[4096];
    snprintf(parent, sizeof parent, "/%s", name);
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = '\0';
    else *slash = '\0';
    if (strcmp(parent, "/provenance") == 0 || strncmp(parent, "/provenance/", 12) == 0) return 0;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], parent) == 0) return 0;
    list_add(l, parent);
    return l->failed ? -1 : 0;
}

int hb_browse_groups(hb_in *in, char ***groups, int *n)
{
    name_list l = {0};
    herr_t e = H5Ovisit(in->file, H5_INDEX_NAME, H5_ITER_INC, visit_group, &l);
    if (l.failed) {
        hb_browse_free_groups(l.v, l.n);
        return HB_EINTERNAL;
    }
    if (e < 0) {
        hb_browse_free_groups(l.v, l.n);
        return hb_err_set(HB_EDATA, in->path, "cannot list the groups of the file");
    }
    if (l.n > 1) qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_str);
    *groups = l.v;
    *n = l.n;
    return 0;
}

void hb_browse_free_groups(char **groups, int n)
{
    for (int i = 0; i < n; i++) free(groups[i]);
    free(groups);
}

int hb_browse_is_group(hb_in *in, const char *group)
{
    if (strcmp(group, "/") == 0) return 1;
    if (!io_path_exists(in->file, group)) return 0;
    H5O_info_t info;
    return H5Oget_info_by_name(in->file, group, &info, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_GROUP;
}

/* H5Literate callback: the names of the datasets of a group. */
static herr_t visit_dataset(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    name_list *l = data;
    H5O_info_t oi;
    if (info->type != H5L_TYPE_HARD || H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) return 0;
    if (oi.type == H5O_TYPE_DATASET) list_add(l, name);
    return l->failed ? -1 : 0;
}

/* The kind of an HDF5 type as export sees it: booleans (an enum, h5py's; a bitfield,
 * PyTables') are integers, as the tables reader takes them (docs/tables.md). */
static hb_var_kind kind_of(hid_t t)
{
    switch (H5Tget_class(t)) {
    case H5T_INTEGER: return H5Tget_sign(t) == H5T_SGN_NONE ? HB_VAR_UINT : HB_VAR_INT;
    case H5T_ENUM: {
        hid_t base = H5Tget_super(t);
        hb_var_kind k = base < 0 ? HB_VAR_OTHER : kind_of(base);
        if (base >= 0) H5Tclose(base);
        return k;
    }
    case H5T_BITFIELD: return H5Tget_size(t) <= 8 ? HB_VAR_UINT : HB_VAR_OTHER;
    case H5T_FLOAT: return HB_VAR_FLOAT;
    case H5T_STRING: return HB_VAR_STRING;
    default: return HB_VAR_OTHER;
    }
}

/* Describes dataset d (named name) in *v: its shape, kind and whether it is a scale. */
static void describe(hid_t d, const char *name, hb_var *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    v->kind = t < 0 ? HB_VAR_OTHER : kind_of(t);
    int nd = s < 0 ? -1 : H5Sget_simple_extent_ndims(s);
    if (nd < 1 || nd > HB_VAR_MAXDIMS) v->kind = HB_VAR_OTHER;
    else {
        hsize_t dims[HB_VAR_MAXDIMS];
        H5Sget_simple_extent_dims(s, dims, NULL);
        v->ndims = nd;
        for (int i = 0; i < nd; i++) v->dims[i] = (int64_t)dims[i];
    }
    if (v->kind == HB_VAR_STRING && nd != 1) v->kind = HB_VAR_OTHER;
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    v->is_scale = H5DSis_scale(d) > 0;
}

/* netCDF-4's mark of a dimension that is not a variable (hb_out_dim writes it): a name
 * without coordinate values. */
#define DIM_ONLY "This is a netCDF dimension but not a netCDF variable."
static int dim_only(const char *name)
{
    return strncmp(name, DIM_ONLY, sizeof DIM_ONLY - 1) == 0;
}

static int dim_only_scale(hid_t d)
{
    char name[256];
    return H5DSget_scale_name(d, name, sizeof name) > 0 && dim_only(name);
}

/* H5DSiterate_scales callback: keeps the first scale's path and name. */
static herr_t first_scale(hid_t d, unsigned dim, hid_t scale, void *data)
{
    (void)d, (void)dim;
    char **out = data;
    H5Iget_name(scale, out[0], 512);
    if (H5DSget_scale_name(scale, out[1], 256) <= 0 || dim_only(out[1])) {
        const char *base = strrchr(out[0], '/');
        snprintf(out[1], 256, "%s", base ? base + 1 : out[0]);
    }
    if (dim_only_scale(scale)) out[0][0] = '\0'; /* a named dimension without labels: its index */
    return 1;
}

int hb_browse_vars(hb_in *in, const char *group, hb_var **vars, int *n)
{
    *vars = NULL;
    *n = 0;
    hid_t g = H5Gopen2(in->file, group, H5P_DEFAULT);
    if (g < 0) return hb_err_set(HB_EDATA, in->path, "cannot open group %s", group);
    name_list l = {0};
    hsize_t idx = 0;
    herr_t e = -1;
    /* the order the datasets were made in where the group keeps it (an imported table:
     * the CSV's columns in order; h5py's track_order), else by name, as h5py lists them */
    H5E_BEGIN_TRY
    {
        e = H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, visit_dataset, &l);
    }
    H5E_END_TRY;
    if (e < 0 && !l.failed && l.n == 0) idx = 0, e = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_dataset, &l);
    hb_var *v = l.failed || e < 0 || l.n == 0 ? NULL : hb_calloc((size_t)l.n, sizeof *v);
    int rc = l.failed || (l.n && !v) ? HB_EINTERNAL : 0;
    if (rc == 0 && e < 0) rc = hb_err_set(HB_EDATA, in->path, "cannot list the datasets of %s", group);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        hid_t d = H5Dopen2(g, l.v[i], H5P_DEFAULT);
        if (d < 0) {
            rc = hb_err_set(HB_EDATA, in->path, "cannot open dataset %s/%s", group, l.v[i]);
            break;
        }
        describe(d, l.v[i], &v[i]);
        if (v[i].is_scale && dim_only_scale(d)) v[i].kind = HB_VAR_OTHER; /* a name, no values */
        for (int k = 0; k < v[i].ndims; k++) {
            if (H5DSget_num_scales(d, (unsigned)k) <= 0) continue;
            char *out[2] = {v[i].scale[k], v[i].dim[k]};
            H5DSiterate_scales(d, (unsigned)k, NULL, first_scale, out);
        }
        if (v[i].is_scale && v[i].ndims == 1 && !v[i].dim[0][0]) {
            char *out[2] = {v[i].scale[0], v[i].dim[0]};
            H5Iget_name(d, out[0], 512);
            if (H5DSget_scale_name(d, out[1], 256) <= 0) snprintf(out[1], 256, "%s", l.v[i]);
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", strcmp(group, "/") ? group : "", l.v[i]);
        io_read_str_attr(in->file, path, "units", v[i].units, sizeof v[i].units);
        H5Dclose(d);
    }
    hb_browse_free_groups(l.v, l.n);
    H5Gclose(g);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *vars = v;
    *n = v ? (int)(l.n) : 0;
    return 0;
}

/* The native memory type of an element type export reads. */
static hid_t mem_type(hb_elem t)
{
    return t == HB_F64 ? H5T_NATIVE_DOUBLE : t == HB_U64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64;
}

int hb_browse_read(hb_in *in, const char *path, hb_elem t, int ndims, const int64_t *start, const int64_t *count,
                   void *buf)
{
    hid_t d = H5Dopen2(in->file, path, H5P_DEFAULT);
    if (d < 0) return hb_err_set(HB_EDATA, in->path, "cannot open dataset %s", path);
    hsize_t st[HB_VAR_MAXDIMS], ct[HB_VAR_MAXDIMS];
    for (int i = 0; i < ndims; i++) st[i] = (hsize_t)start[i], ct[i] = (hsize_t)count[i];
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(ndims, ct, NULL);
    herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, ct, NULL);
    hid_t ft = H5Dget_type(d); /* HDF5 converts a bitfield only to a bitfield: 64 bits are a uint64 */
    hid_t mt = ft >= 0 && H5Tget_class(ft) == H5T_BITFIELD && t != HB_F64 ? H5T_NATIVE_B64 : mem_type(t);
    if (ft >= 0) H5Tclose(ft);
    if (e >= 0) e = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    if (e < 0) return hb_err_set(HB_EIO, in->path, "cannot read %s", path);
    return 0;
}

/* Appends string p (n bytes, padding dropped as pad says: a NUL-terminated string ends
 * at its first NUL) to s as row i of dataset path; 65 when it is not UTF-8 or holds a
 * NUL before its padding, which would be written to the CSV as it is. */
static int strs_add(hb_strs *s, int64_t i, const char *p, size_t n, H5T_str_t pad, const hb_in *in, const char *path,
                    int64_t row)
{
    if (pad == H5T_STR_NULLTERM) n = strnlen(p, n);
    while (n > 0 && (p[n - 1] == '\0' || (pad == H5T_STR_SPACEPAD && p[n - 1] == ' '))) n--;
    size_t bad = hb_utf8_first_bad((const unsigned char *)p, n);
    if (bad < n) {
        char why[64];
        hb_utf8_why((const unsigned char *)p, bad, why, sizeof why);
        return hb_err_set(HB_EDATA, in->path, "dataset %s, row %lld: %s: strings are exported as UTF-8 text", path,
                          (long long)row, why);
    }
    uint64_t at = s->off[i];
    if (hb_grow((void **)&s->bytes, &s->bytes_cap, at + n + 1, 1) != 0) return HB_EINTERNAL;
    memcpy(s->bytes + at, p, n);
    s->off[i + 1] = at + n;
    return 0;
}

int hb_browse_read_str(hb_in *in, const char *path, int64_t start, int64_t count, hb_strs *s)
{
    if (hb_grow((void **)&s->off, &s->off_cap, (size_t)count + 1, sizeof *s->off) != 0 ||
        hb_grow((void **)&s->bytes, &s->bytes_cap, 1, 1) != 0)
        return hb_err_set(HB_EINTERNAL, path, "out of memory");
    s->off[0] = 0;
    hid_t d = H5Dopen2(in->file, path, H5P_DEFAULT);
    if (d < 0) return hb_err_set(HB_EDATA, in->path, "cannot open dataset %s", path);
    hid_t ft = H5Dget_type(d), fs = H5Dget_space(d);
    hsize_t st = (hsize_t)start, ct = (hsize_t)count;
    hid_t ms = H5Screate_simple(1, &ct, NULL);
    int vlen = ft >= 0 && H5Tis_variable_str(ft) > 0;
    size_t width = ft >= 0 && !vlen ? H5Tget_size(ft) : sizeof(char *);
    H5T_str_t pad = ft >= 0 ? H5Tget_strpad(ft) : H5T_STR_NULLTERM;
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (mt >= 0) {
        H5Tset_size(mt, vlen ? H5T_VARIABLE : width);
        H5Tset_cset(mt, ft >= 0 ? H5Tget_cset(ft) : H5T_CSET_ASCII);
        H5Tset_strpad(mt, vlen ? H5T_STR_NULLTERM : pad);
    }
    char *buf = count > 0 ? hb_malloc((size_t)count * width) : NULL;
    herr_t e = ft < 0 || fs < 0 || ms < 0 || mt < 0 || (count > 0 && !buf) ? -1 : 0;
    if (e >= 0 && count > 0) e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &ct, NULL);
    if (e >= 0 && count > 0) e = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf);
    int rc = e < 0 ? hb_err_set(HB_EIO, in->path, "cannot read the strings of %s", path) : 0;
    for (int64_t i = 0; rc == 0 && i < count; i++) {
        if (vlen) {
            const char *p = ((char **)(void *)buf)[i];
            rc = strs_add(s, i, p ? p : "", p ? strlen(p) : 0, H5T_STR_NULLTERM, in, path, start + i);
        } else {
            rc = strs_add(s, i, buf + (size_t)i * width, width, pad, in, path, start + i);
        }
    }
    if (vlen && e >= 0 && count > 0) H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, buf);
    free(buf);
    if (mt >= 0) H5Tclose(mt);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (ft >= 0) H5Tclose(ft);
    H5Dclose(d);
    return rc;
}
