/* The table `h5batch import` writes: a group of equal-length 1-D columns, chunked,
 * shuffled and gzip-compressed (level 1 by default) so that h5py and pandas read them fast, with
 * unlimited length so that --append can extend them. Written by rank 0 alone, into a
 * temporary file the import commits (docs/import.md). */
#include "internal.h"

#include "io/csv.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* One thread's deflate compressor for one level: ISA-L's igzip for level 1 (lvl, its
 * level buffer), libdeflate (ld) for the other levels and as the fallback. */
struct zc {
    struct libdeflate_compressor *ld;
    unsigned char *lvl;
};

#define TIME_UNITS "seconds since 1970-01-01" /* CF units: xarray decodes the column to datetime64 */
#define CHUNK_BYTES (1 << 20)

struct hb_tw {
    hid_t file, group, scale; /* scale: the row dimension of the columns, for xarray (-1 when none) */
    hid_t *dsets;
    int ncols;
    hb_csv_col *cols;
    uint64_t base; /* rows the columns held before this import */
    int failed;
    /* a new table's chunks are filtered here, by threads, and written whole (direct) */
    int direct, threads;
    uint64_t *next;   /* per column: the next row expected */
    char **stage;     /* per column: the rows of its current, unfinished chunk */
    size_t *staged;   /* per column: rows in stage */
    char **zbuf, **sbuf; /* per chunk of a batch: its compressed bytes; per thread: shuffled bytes */
    struct zc **dc[10]; /* per level used, per thread: a compressor, made when needed */
    size_t *zlen, zcap;
    char path[4096];
};

/* The file type of a column (to be closed by the caller). */
static hid_t file_type(const hb_csv_col *c)
{
    if (c->type == HB_CT_FLOAT) return H5Tcopy(H5T_IEEE_F64LE);
    if (c->type != HB_CT_STRING) return H5Tcopy(H5T_STD_I64LE);
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, c->width ? c->width : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        if (t >= 0) H5Tclose(t);
        return -1;
    }
    return t;
}

static hid_t mem_type(const hb_csv_col *c)
{
    if (c->type == HB_CT_FLOAT) return H5Tcopy(H5T_NATIVE_DOUBLE);
    if (c->type != HB_CT_STRING) return H5Tcopy(H5T_NATIVE_INT64);
    return file_type(c);
}

static size_t elem_bytes(const hb_csv_col *c)
{
    return c->type == HB_CT_STRING ? (c->width ? c->width : 1) : 8;
}

static uint64_t chunk_rows(const hb_csv_col *c)
{
    size_t r = CHUNK_BYTES / elem_bytes(c);
    return r ? r : 1;
}

static int set_str_attr(hid_t obj, const char *name, const char *v, const char *where)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR), a = -1;
    int rc = 0;
    if (t < 0 || s < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) rc = -1;
    if (rc == 0 && H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    if (rc == 0 && (a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) < 0) rc = -1;
    if (rc == 0 && H5Awrite(a, t, &v) < 0) rc = -1;
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return rc ? hb_err_set(HB_EIO, where, "cannot write attribute '%s'", name) : 0;
}

/* A string attribute of obj, variable or fixed length, into buf ("" when absent). */
static void get_str_attr(hid_t obj, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Aexists(obj, name) <= 0) return;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING && io_attr_one(a)) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            if (H5Aread(a, t, &s) >= 0 && s) snprintf(buf, len, "%s", s);
            H5free_memory(s);
        } else {
            size_t n = H5Tget_size(t);
            char *s = calloc(1, n + 1);
            if (s && H5Aread(a, t, s) >= 0) snprintf(buf, len, "%s", s);
            free(s);
        }
    }
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
}

/* The netCDF-4 mark of a dimension that has no coordinate variable (h5netcdf and
 * netCDF-C then show the columns with a named dimension instead of phony_dim_0). */
#define NC_DIM_ONLY "This is a netCDF dimension but not a netCDF variable."

/* Creates the dimension scale `row` (`rows` when the table itself is /row) beside the
 * table group: no data is stored for it. */
static int create_scale(hb_tw *w, const char *table, uint64_t n)
{
    char parent[512], name[16];
    snprintf(parent, sizeof parent, "%s", table);
    char *slash = strrchr(parent, '/');
    snprintf(name, sizeof name, "%s", strcmp(slash + 1, "row") ? "row" : "rows");
    if (slash == parent) slash[1] = '\0';
    else *slash = '\0';
    hsize_t dims = n, maxd = H5S_UNLIMITED, chunk = CHUNK_BYTES / 4;
    hid_t g = H5Gopen2(w->file, parent, H5P_DEFAULT), sp = H5Screate_simple(1, &dims, &maxd),
          dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int rc = g < 0 || sp < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 1, &chunk) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0;
    if (!rc) rc = (w->scale = H5Dcreate2(g, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0;
    if (!rc) rc = H5DSset_scale(w->scale, NC_DIM_ONLY) < 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (g >= 0) H5Gclose(g);
    return rc ? hb_err_set(HB_EIO, w->path, "cannot create the row dimension of the table") : 0;
}

/* The scale of an existing table (for --append), -1 when it has none. */
static hid_t open_scale(hb_tw *w)
{
    hid_t s = -1;
    if (w->ncols == 0 || H5Aexists(w->dsets[0], "DIMENSION_LIST") <= 0) return -1;
    hid_t a = H5Aopen(w->dsets[0], "DIMENSION_LIST", H5P_DEFAULT), t = H5Tvlen_create(H5T_STD_REF_OBJ);
    hvl_t vl = {0, NULL};
    if (a >= 0 && t >= 0 && H5Aread(a, t, &vl) >= 0 && vl.len > 0)
        s = H5Rdereference2(w->dsets[0], H5P_DEFAULT, H5R_OBJECT, vl.p);
    if (vl.p) free(vl.p);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return s;
}

/* The missing time's attribute _FillValue (HB_CSV_NAT), by which xarray reads it as NaT
 * (without it, CF decoding makes the least int64 seconds a wrong date). */
static int set_nat_attr(hid_t obj, const char *where)
{
    const int64_t nat = HB_CSV_NAT;
    hid_t s = H5Screate(H5S_SCALAR), a = s < 0 ? -1 : H5Acreate2(obj, "_FillValue", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &nat) < 0;
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    return rc ? hb_err_set(HB_EIO, where, "cannot write attribute '_FillValue'") : 0;
}

/* Creates column c of the group with n rows (the attributes included). */
static hid_t create_column(hb_tw *w, const hb_csv_col *c, const char *name, uint64_t n)
{
    hsize_t dims = n, maxd = H5S_UNLIMITED, chunk = chunk_rows(c);
    hid_t ft = file_type(c), sp = H5Screate_simple(1, &dims, &maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    const int64_t nat = HB_CSV_NAT; /* a time column's fill value: its _FillValue, as netCDF wants */
    if (ft >= 0 && sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0 &&
        (c->type != HB_CT_TIME || H5Pset_fill_value(dcpl, H5T_NATIVE_INT64, &nat) >= 0) &&
        (c->gzip == 0 || ((c->type == HB_CT_STRING || H5Pset_shuffle(dcpl) >= 0) &&
                          H5Pset_deflate(dcpl, (unsigned)c->gzip) >= 0)))
        d = H5Dcreate2(w->group, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (d < 0) {
        hb_err_set(HB_EIO, w->path, "cannot create column '%s'", c->name);
        return -1;
    }
    if (w->scale >= 0 && H5DSattach_scale(d, w->scale, 0) < 0) {
        hb_err_set(HB_EIO, w->path, "cannot attach the row dimension to column '%s'", c->name);
        H5Dclose(d);
        return -1;
    }
    if ((c->type == HB_CT_TIME && (set_str_attr(d, "units", TIME_UNITS, w->path) || set_nat_attr(d, w->path))) ||
        (c->desc[0] && set_str_attr(d, "description", c->desc, w->path))) {
        H5Dclose(d);
        return -1;
    }
    return d;
}

/* The column kinds an existing dataset can be appended to. */
static int column_of(hid_t d, const char *name, hb_csv_col *c, uint64_t *rows, const char *where)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d), p = H5Dget_create_plist(d);
    int rc = 0;
    hsize_t dims = 0, maxd = 0;
    if (t < 0 || s < 0 || p < 0 || H5Sget_simple_extent_ndims(s) != 1 || H5Sget_simple_extent_dims(s, &dims, &maxd) < 0)
        rc = hb_err_set(HB_EDATA, where, "column '%s' is not a 1-D dataset", name);
    if (rc == 0 && (H5Pget_layout(p) != H5D_CHUNKED || maxd != H5S_UNLIMITED))
        rc = hb_err_set(HB_EDATA, where, "column '%s' cannot grow (not chunked with unlimited size); import without --append",
                        name);
    H5T_class_t k = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (rc == 0 && k == H5T_INTEGER) {
        c->type = HB_CT_INT;
        char u[64];
        get_str_attr(d, "units", u, sizeof u);
        if (strncmp(u, "seconds since 1970-01-01", 24) == 0)
            c->type = HB_CT_TIME;
    } else if (rc == 0 && k == H5T_FLOAT) {
        c->type = HB_CT_FLOAT;
    } else if (rc == 0 && k == H5T_STRING && H5Tis_variable_str(t) <= 0) {
        c->type = HB_CT_STRING;
        c->width = H5Tget_size(t);
    } else if (rc == 0) {
        rc = hb_err_set(HB_EDATA, where, "column '%s' has a type import cannot append to", name);
    }
    if (rc == 0) get_str_attr(d, "description", c->desc, sizeof c->desc);
    *rows = dims;
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return rc;
}

typedef struct walk {
    hid_t group;
    hb_csv_col *cols;
    int n, cap, rc;
    uint64_t rows;
    const char *where;
} walk;

static herr_t walk_one(hid_t g, const char *name, const H5L_info_t *info, void *user)
{
    (void)info;
    walk *wk = user;
    H5O_info_t oi;
    if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return 0;
    if (wk->n == wk->cap) {
        wk->cap = wk->cap ? 2 * wk->cap : 16;
        hb_csv_col *c = hb_realloc(wk->cols, (size_t)wk->cap * sizeof *c);
        if (!c) return wk->rc = HB_EINTERNAL, -1;
        wk->cols = c;
    }
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    uint64_t rows = 0;
    int rc = d < 0 ? hb_err_set(HB_EDATA, wk->where, "cannot open column '%s'", name)
                   : column_of(d, name, &wk->cols[wk->n], &rows, wk->where);
    if (d >= 0) H5Dclose(d);
    if (rc == 0 && wk->n > 0 && rows != wk->rows)
        rc = hb_err_set(HB_EDATA, wk->where, "column '%s' has %llu rows, the others %llu", name,
                        (unsigned long long)rows, (unsigned long long)wk->rows);
    if (rc) return wk->rc = rc, -1;
    wk->rows = rows;
    wk->n++;
    return 0;
}

int hb_tw_schema(const char *path, const char *table, hb_csv_col **cols, int *ncols, uint64_t *rows,
                 uint64_t *skipped)
{
    *cols = NULL;
    *ncols = 0;
    *rows = *skipped = 0;
    char where[4400];
    snprintf(where, sizeof where, "%s:%s", path, table);
    if (H5Fis_hdf5(path) <= 0) return hb_err_set(HB_EDATA, path, "not an HDF5 file; --append needs an h5batch table");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return hb_err_set(HB_ENOINPUT, path, "cannot open the file to append to");
    hid_t g = io_path_exists(f, table) ? H5Gopen2(f, table, H5P_DEFAULT) : -1;
    walk wk = {g, NULL, 0, 0, 0, 0, where};
    int rc = g < 0 ? hb_err_set(HB_EDATA, where, "no table group to append to") : 0;
    if (rc == 0) {
        /* the order the columns were created in, else by name */
        H5E_BEGIN_TRY
        {
            if (H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, walk_one, &wk) < 0 && wk.rc == 0 && wk.n == 0)
                H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, walk_one, &wk);
        }
        H5E_END_TRY;
        rc = wk.rc;
    }
    if (rc == 0 && wk.n == 0) rc = hb_err_set(HB_EDATA, where, "the table has no columns");
    if (rc == 0 && H5Aexists(g, "rows_skipped") > 0) {
        hid_t a = H5Aopen(g, "rows_skipped", H5P_DEFAULT);
        if (a < 0 || H5Aread(a, H5T_NATIVE_UINT64, skipped) < 0) *skipped = 0;
        if (a >= 0) H5Aclose(a);
    }
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    if (rc) {
        free(wk.cols);
        return rc;
    }
    *cols = wk.cols;
    *ncols = wk.n;
    *rows = wk.rows;
    return 0;
}

/* Widens string column c (held as d, base rows) to the width the new rows need: a new
 * dataset takes the old strings, then the name. */
static int widen(hb_tw *w, int c, const hb_csv_col *old)
{
    const hb_csv_col *nc = &w->cols[c];
    char tmpname[300];
    snprintf(tmpname, sizeof tmpname, "%s.widen", nc->name);
    char *buf = hb_calloc(w->base ? w->base : 1, nc->width);
    if (!buf) return HB_EINTERNAL;
    hid_t mt = mem_type(nc);
    int rc = mt < 0 || (w->base && H5Dread(w->dsets[c], mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
                 ? hb_err_set(HB_EIO, w->path, "cannot read column '%s'", old->name)
                 : 0;
    hid_t d = rc == 0 ? create_column(w, nc, tmpname, w->base) : -1;
    if (rc == 0 && d < 0) rc = HB_EIO;
    if (rc == 0 && w->base && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = hb_err_set(HB_EIO, w->path, "cannot write column '%s'", nc->name);
    free(buf);
    if (mt >= 0) H5Tclose(mt);
    if (rc == 0 && w->scale >= 0 && H5DSis_attached(w->dsets[c], w->scale, 0) > 0 &&
        H5DSdetach_scale(w->dsets[c], w->scale, 0) < 0)
        rc = hb_err_set(HB_EIO, w->path, "cannot detach the row dimension of column '%s'", old->name);
    H5Dclose(w->dsets[c]);
    w->dsets[c] = -1;
    if (rc == 0 && (H5Ldelete(w->group, nc->name, H5P_DEFAULT) < 0 ||
                    H5Lmove(w->group, tmpname, w->group, nc->name, H5P_DEFAULT, H5P_DEFAULT) < 0))
        rc = hb_err_set(HB_EIO, w->path, "cannot replace column '%s'", nc->name);
    if (rc) {
        if (d >= 0) H5Dclose(d);
        return rc;
    }
    w->dsets[c] = d;
    return 0;
}

int hb_tw_open(const char *path, const char *table, const hb_csv_col *cols, int ncols, uint64_t rows, int append,
               int threads, hb_tw **wp)
{
    *wp = NULL;
    hb_tw *w = hb_calloc(1, sizeof *w);
    if (!w) return HB_EINTERNAL;
    snprintf(w->path, sizeof w->path, "%s", path);
    w->file = w->group = w->scale = -1;
    w->ncols = ncols;
    w->dsets = hb_malloc((size_t)ncols * sizeof *w->dsets);
    w->cols = hb_malloc((size_t)ncols * sizeof *w->cols);
    *wp = w;
    if (!w->dsets || !w->cols) return w->failed = HB_EINTERNAL;
    memcpy(w->cols, cols, (size_t)ncols * sizeof *cols);
    for (int i = 0; i < ncols; i++) w->dsets[i] = -1;
    int rc = 0, widened = 0;
    if (append) {
        w->file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        if (w->file < 0) return w->failed = hb_err_set(HB_ECANTCREAT, path, "cannot open the copy of the output");
        w->group = H5Gopen2(w->file, table, H5P_DEFAULT);
        if (w->group < 0) return w->failed = hb_err_set(HB_EDATA, path, "no table '%s'", table);
        for (int i = 0; i < ncols && rc == 0; i++) {
            uint64_t n = 0;
            hb_csv_col old;
            w->dsets[i] = H5Dopen2(w->group, cols[i].name, H5P_DEFAULT);
            if (w->dsets[i] < 0) rc = hb_err_set(HB_EDATA, path, "no column '%s'", cols[i].name);
            if (rc == 0 && i == 0) w->scale = open_scale(w);
            if (rc == 0) rc = column_of(w->dsets[i], cols[i].name, &old, &n, path);
            w->base = n;
            if (rc == 0 && old.type == HB_CT_STRING && cols[i].width > old.width) rc = widen(w, i, &old), widened = 1;
            if (rc == 0 && old.type == HB_CT_STRING && cols[i].width < old.width) w->cols[i].width = old.width;
            hsize_t size = w->base + rows;
            if (rc == 0 && H5Dset_extent(w->dsets[i], &size) < 0)
                rc = hb_err_set(HB_EIO, path, "cannot extend column '%s'", cols[i].name);
        }
        hsize_t size = w->base + rows;
        if (rc == 0 && w->scale >= 0 && H5Dset_extent(w->scale, &size) < 0)
            rc = hb_err_set(HB_EIO, path, "cannot extend the row dimension");
        /* a widened column's link is new, so it came last in creation order, which is the
         * columns' order: every column's link is made again, in their order */
        for (int i = 0; i < ncols && rc == 0 && widened; i++) {
            char tmpname[300];
            snprintf(tmpname, sizeof tmpname, "%s.order", cols[i].name);
            if (H5Lmove(w->group, cols[i].name, w->group, tmpname, H5P_DEFAULT, H5P_DEFAULT) < 0 ||
                H5Lmove(w->group, tmpname, w->group, cols[i].name, H5P_DEFAULT, H5P_DEFAULT) < 0)
                rc = hb_err_set(HB_EIO, path, "cannot keep the order of column '%s'", cols[i].name);
        }
        return w->failed = rc;
    }
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), gcpl = H5Pcreate(H5P_GROUP_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (fcpl < 0 || gcpl < 0 || lcpl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
        H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
        H5Pset_obj_track_times(gcpl, 0) < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0)
        rc = hb_err_set(HB_EINTERNAL, path, "cannot set up the file properties");
    if (rc == 0 && (w->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT)) < 0)
        rc = hb_err_set(HB_ECANTCREAT, path, "cannot create the output file");
    if (rc == 0 && (w->group = H5Gcreate2(w->file, table, lcpl, gcpl, H5P_DEFAULT)) < 0)
        rc = hb_err_set(HB_ECANTCREAT, path, "cannot create the table group '%s'", table);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (gcpl >= 0) H5Pclose(gcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (rc == 0) rc = create_scale(w, table, rows);
    for (int i = 0; i < ncols && rc == 0; i++)
        if ((w->dsets[i] = create_column(w, &cols[i], cols[i].name, rows)) < 0) rc = HB_EIO;
    if (rc == 0) {
        w->direct = 1;
        w->threads = threads > 0 ? threads : 1;
        w->zcap = compressBound(CHUNK_BYTES) + 64;
        size_t nb = (size_t)(4 * w->threads);
        w->next = hb_calloc((size_t)ncols, sizeof *w->next);
        w->staged = hb_calloc((size_t)ncols, sizeof *w->staged);
        w->stage = hb_calloc((size_t)ncols, sizeof *w->stage);
        w->zbuf = hb_calloc(nb, sizeof *w->zbuf);
        w->zlen = hb_calloc(nb, sizeof *w->zlen);
        w->sbuf = hb_calloc((size_t)w->threads, sizeof *w->sbuf);
        rc = w->next && w->staged && w->stage && w->zbuf && w->zlen && w->sbuf ? 0 : HB_EINTERNAL;
        for (size_t i = 0; rc == 0 && i < nb; i++)
            if (!(w->zbuf[i] = hb_malloc(w->zcap))) rc = HB_EINTERNAL;
        for (int i = 0; rc == 0 && i < w->threads; i++)
            if (!(w->sbuf[i] = hb_malloc(CHUNK_BYTES + 64))) rc = HB_EINTERNAL;
    }
    return w->failed = rc;
}

/* Bytes of a plane that compress to more than this share of themselves are stored. */
#define STORED_SHARE 0.97
#define SAMPLE_BYTES 8192

/* ISA-L's igzip at level 1 (zc->lvl is its level buffer) of the n bytes at src into out
 * (cap bytes): a raw deflate stream (flag IGZIP_DEFLATE) or a zlib one (IGZIP_ZLIB).
 * Returns the length, 0 when it does not fit. */
static size_t igzip(const struct zc *zc, const char *src, size_t n, char *out, size_t cap, int flag)
{
    struct isal_zstream z;
    isal_deflate_stateless_init(&z);
    z.level = 1;
    z.level_buf = zc->lvl;
    z.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    z.gzip_flag = (uint16_t)flag;
    z.next_in = (uint8_t *)src, z.avail_in = (uint32_t)n;
    z.next_out = (uint8_t *)out, z.avail_out = (uint32_t)cap;
    z.end_of_stream = 1;
    z.flush = NO_FLUSH;
    return isal_deflate_stateless(&z) == COMP_OK ? z.total_out : 0;
}

/* The raw deflate stream of n bytes: igzip at level 1, libdeflate at the others. */
static size_t deflate_raw(const struct zc *zc, const char *src, size_t n, char *out, size_t cap)
{
    if (zc->lvl) return igzip(zc, src, n, out, cap, IGZIP_DEFLATE);
    return zc->ld ? libdeflate_deflate_compress(zc->ld, src, n, out, cap) : 0;
}

/* Whether the byte plane p (n bytes) looks incompressible: a sample from its middle,
 * deflated, keeps more than STORED_SHARE of its size. The low bytes of measured
 * values (the mantissa of a reading, the last digits of an id) are such noise, and
 * searching them for matches is most of the time deflate takes on a numeric table. */
static int plane_is_noise(const struct zc *zc, const char *p, size_t n, char *scratch, size_t cap)
{
    if (n < 4 * SAMPLE_BYTES) return 0;
    size_t l = deflate_raw(zc, p + n / 2 - SAMPLE_BYTES / 2, SAMPLE_BYTES, scratch, cap);
    return l == 0 || (double)l > STORED_SHARE * SAMPLE_BYTES;
}

/* The zlib stream (RFC 1950) of the n shuffled bytes at src whose first pre bytes are
 * stored (RFC 1951 blocks of type 0, which inflate copies) and the rest deflated:
 * any inflate, HDF5's deflate filter among them, reads it as the chunk.
 * Returns the length, 0 when it does not fit in cap. */
static size_t zlib_stored_prefix(const struct zc *zc, const char *src, size_t n, size_t pre, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 2 + 4) return 0;
    out[o++] = 0x78, out[o++] = 0x01; /* deflate, 32 KiB window, check bits; (0x78 << 8 | 0x01) % 31 == 0 */
    for (size_t at = 0; at < pre;) {
        size_t len = pre - at < 65535 ? pre - at : 65535;
        int last = at + len == n; /* everything stored: this block ends the stream */
        if (o + 5 + len + 4 > cap) return 0;
        out[o++] = (char)(last ? 1 : 0); /* BFINAL, BTYPE 00, then padding to the byte */
        out[o++] = (char)(len & 0xff), out[o++] = (char)(len >> 8);
        out[o++] = (char)(~len & 0xff), out[o++] = (char)((~len >> 8) & 0xff);
        memcpy(out + o, src + at, len);
        o += len, at += len;
    }
    if (pre < n) {
        if (o + 4 >= cap) return 0;
        size_t l = deflate_raw(zc, src + pre, n - pre, out + o, cap - o - 4);
        if (l == 0) return 0;
        o += l;
    }
    if (o + 4 > cap) return 0;
    uint32_t a = libdeflate_adler32(1, src, n);
    out[o++] = (char)(a >> 24), out[o++] = (char)(a >> 16), out[o++] = (char)(a >> 8), out[o++] = (char)a;
    return o;
}

/* HDF5's shuffle of ne 8-byte elements from src into dst: byte j of element i goes to
 * dst[j * ne + i]. With SSE2, 16 elements at a time: their 128 bytes transposed in
 * registers by rounds of unpacking bytes, words, double and quad words (the scheme of
 * c-blosc's SSE2 shuffle), one 16-byte store per plane; 3-4 times the byte loop's speed.
 * The last elements, and every element without SSE2, byte by byte. */
static void shuffle8(const char *src, size_t ne, char *dst)
{
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= ne; i += 16) {
        __m128i a[8], b[8];
        for (int k = 0; k < 8; k++) { /* a[k]: elements 2k, 2k+1; b[k]: their bytes interleaved */
            a[k] = _mm_loadu_si128((const __m128i *)(const void *)(src + 8 * i + 16 * k));
            b[k] = _mm_unpacklo_epi8(a[k], _mm_shuffle_epi32(a[k], 0x4e));
        }
        for (int k = 0; k < 4; k++) {
            a[2 * k] = _mm_unpacklo_epi16(b[2 * k], b[2 * k + 1]);
            a[2 * k + 1] = _mm_unpackhi_epi16(b[2 * k], b[2 * k + 1]);
        }
        for (int k = 0, l = 0; k < 4; k++, l++) {
            if (k == 2) l += 2;
            b[2 * k] = _mm_unpacklo_epi32(a[l], a[l + 2]);
            b[2 * k + 1] = _mm_unpackhi_epi32(a[l], a[l + 2]);
        }
        for (int k = 0; k < 4; k++) { /* a[j]: byte j of the 16 elements */
            a[2 * k] = _mm_unpacklo_epi64(b[k], b[k + 4]);
            a[2 * k + 1] = _mm_unpackhi_epi64(b[k], b[k + 4]);
        }
        for (int j = 0; j < 8; j++) _mm_storeu_si128((__m128i *)(void *)(dst + (size_t)j * ne + i), a[j]);
    }
#endif
    for (; i < ne; i++) {
        uint64_t v;
        memcpy(&v, src + 8 * i, 8);
        for (size_t j = 0; j < 8; j++) dst[j * ne + i] = (char)(v >> (8 * j)); /* little-endian bytes */
    }
}

/* Shuffles (as HDF5's shuffle filter: byte j of every element together) and deflates one
 * chunk of n bytes into out (cap at least compressBound(n)): what HDF5's filter pipeline
 * stores, a zlib stream. At level 1 (the default) ISA-L's igzip deflates: 2-4 times
 * faster than libdeflate's level 1 on the shuffled columns of a table, for about 1%
 * more bytes (docs/import.md, Performance); libdeflate at the other levels (and when
 * igzip fails), zlib when neither fits. The leading byte planes that are noise
 * (plane_is_noise) are stored rather than searched, so a column of measured values
 * costs deflate its compressible high bytes only. Level 0: the bytes as they are (no
 * filters). */
static int filter_chunk(const char *src, size_t n, size_t elem, int shuffle, int level, const struct zc *zc, char *tmp,
                        char *out, size_t cap, size_t *len)
{
    if (level == 0) {
        if (n > cap) return -1;
        memcpy(out, src, n);
        *len = n;
        return 0;
    }
    if (shuffle && elem == 8) {
        shuffle8(src, n / 8, tmp);
        src = tmp;
    } else if (shuffle && elem > 1) {
        size_t ne = n / elem;
        for (size_t j = 0; j < elem; j++)
            for (size_t i = 0; i < ne; i++) tmp[j * ne + i] = src[i * elem + j];
        src = tmp;
    }
    size_t l = 0;
    if (zc && (zc->lvl || zc->ld) && shuffle && elem > 1) {
        const size_t ne = n / elem;
        size_t planes = 0;
        while (planes < elem && plane_is_noise(zc, src + planes * ne, ne, out, cap)) planes++;
        if (planes) l = zlib_stored_prefix(zc, src, n, planes * ne, out, cap);
    }
    if (l == 0 && zc && zc->lvl) l = igzip(zc, src, n, out, cap, IGZIP_ZLIB);
    if (l == 0 && zc && zc->ld) l = libdeflate_zlib_compress(zc->ld, src, n, out, cap);
    if (l == 0) {
        uLongf zl = (uLongf)cap;
        if (compress2((Bytef *)out, &zl, (const Bytef *)src, (uLong)n, level) != Z_OK) return -1;
        l = zl;
    }
    *len = l;
    return 0;
}

/* Per thread, a compressor of the level (NULL for level 0; fields NULL when they cannot
 * be made: libdeflate, then zlib, take over). Freed with free_compressors. */
static struct zc **make_compressors(int level, int threads)
{
    struct zc **zc = hb_calloc((size_t)threads, sizeof *zc);
    for (int t = 0; zc && level > 0 && t < threads; t++) {
        if (!(zc[t] = hb_calloc(1, sizeof *zc[t]))) break;
        zc[t]->ld = libdeflate_alloc_compressor(level);
        if (level == 1) zc[t]->lvl = malloc(ISAL_DEF_LVL1_DEFAULT);
    }
    return zc;
}

static void free_compressors(struct zc **zc, int threads)
{
    for (int t = 0; zc && t < threads; t++)
        if (zc[t]) {
            if (zc[t]->ld) libdeflate_free_compressor(zc[t]->ld);
            free(zc[t]->lvl);
            free(zc[t]);
        }
    free(zc);
}

/* Filters nchunks whole chunks of column c (from src, the first at row first) on the
 * threads and writes them in order. */
static int write_chunks(hb_tw *w, int c, uint64_t first, const char *src, size_t nchunks)
{
    const hb_csv_col *col = &w->cols[c];
    const size_t eb = elem_bytes(col), cr = chunk_rows(col), cb = cr * eb, nb = (size_t)(4 * w->threads);
    const int shuffle = col->type != HB_CT_STRING, level = col->gzip;
    if (level > 0 && !w->dc[level] && !(w->dc[level] = make_compressors(level, w->threads))) return HB_EINTERNAL;
    for (size_t b0 = 0; b0 < nchunks; b0 += nb) {
        size_t nbatch = nchunks - b0 < nb ? nchunks - b0 : nb;
        int bad = 0;
#pragma omp parallel for num_threads(w->threads) schedule(dynamic) reduction(| : bad)
        for (size_t k = 0; k < nbatch; k++) {
            const int t = omp_get_thread_num();
            bad |= filter_chunk(src + (b0 + k) * cb, cb, eb, shuffle, level, level ? w->dc[level][t] : NULL,
                                w->sbuf[t], w->zbuf[k], w->zcap, &w->zlen[k]) != 0;
        }
        if (bad) return hb_err_set(HB_EINTERNAL, w->path, "compressing column '%s' failed", col->name);
        for (size_t k = 0; k < nbatch; k++) {
            hsize_t at = w->base + first + (b0 + k) * cr;
            if (H5Dwrite_chunk(w->dsets[c], H5P_DEFAULT, 0, &at, w->zlen[k], w->zbuf[k]) < 0)
                return hb_err_set(HB_EIO, w->path, "cannot write rows of column '%s'", col->name);
        }
    }
    return 0;
}

uint64_t hb_tw_chunk_rows(const hb_csv_col *c) { return chunk_rows(c); }

int hb_tw_compress(const hb_csv_col *c, const char *src, size_t nchunks, int threads, char **out, uint64_t *sizes)
{
    *out = NULL;
    if (nchunks == 0) return 0;
    const size_t eb = elem_bytes(c), cb = chunk_rows(c) * eb, cap = compressBound(cb) + 64;
    const int shuffle = c->type != HB_CT_STRING, level = c->gzip;
    char *z = hb_malloc(nchunks * cap), **tmp = hb_calloc((size_t)threads, sizeof *tmp);
    struct zc **dc = make_compressors(level, threads);
    int bad = !z || !tmp || !dc;
    for (int t = 0; !bad && t < threads; t++) bad = !(tmp[t] = hb_malloc(cb));
    if (!bad) {
#pragma omp parallel for num_threads(threads) schedule(dynamic) reduction(| : bad)
        for (size_t k = 0; k < nchunks; k++) {
            size_t len = 0;
            const int t = omp_get_thread_num();
            bad |= filter_chunk(src + k * cb, cb, eb, shuffle, level, dc[t], tmp[t], z + k * cap, cap, &len) != 0;
            sizes[k] = len;
        }
    }
    for (int t = 0; tmp && t < threads; t++) free(tmp[t]);
    free(tmp);
    free_compressors(dc, threads);
    if (bad) {
        free(z);
        return hb_err_set(HB_EINTERNAL, "import", "compressing column '%s' failed", c->name);
    }
    size_t o = 0; /* the chunks one after the other */
    for (size_t k = 0; k < nchunks; o += sizes[k], k++) memmove(z + o, z + k * cap, sizes[k]);
    *out = z;
    return 0;
}

int hb_tw_write_chunks(hb_tw *w, int c, uint64_t off, size_t nchunks, const char *z, const uint64_t *sizes)
{
    if (w->failed || nchunks == 0) return w->failed;
    const uint64_t cr = chunk_rows(&w->cols[c]);
    if (!w->direct || off != w->next[c] || w->staged[c] || off % cr)
        return w->failed = hb_err_set(HB_EINTERNAL, w->path, "column '%s': compressed chunks out of place",
                                      w->cols[c].name);
    for (size_t k = 0; k < nchunks; z += sizes[k], k++) {
        hsize_t at = w->base + off + k * cr;
        if (H5Dwrite_chunk(w->dsets[c], H5P_DEFAULT, 0, &at, sizes[k], z) < 0)
            return w->failed = hb_err_set(HB_EIO, w->path, "cannot write rows of column '%s'", w->cols[c].name);
    }
    w->next[c] = off + nchunks * cr;
    return 0;
}

/* Direct writes of a new table: rows arrive in order; whole chunks go out filtered, the
 * rest waits in the column's stage for the next rows (or hb_tw_close). */
static int write_direct(hb_tw *w, int c, uint64_t off, uint64_t cnt, const char *p)
{
    const hb_csv_col *col = &w->cols[c];
    const size_t eb = elem_bytes(col), cr = chunk_rows(col);
    if (off != w->next[c]) return hb_err_set(HB_EINTERNAL, w->path, "column '%s': rows out of order", col->name);
    w->next[c] = off + cnt;
    if (!w->stage[c] && !(w->stage[c] = hb_calloc(cr, eb))) return HB_EINTERNAL;
    if (w->staged[c]) {
        size_t k = cr - w->staged[c] < cnt ? cr - w->staged[c] : (size_t)cnt;
        memcpy(w->stage[c] + w->staged[c] * eb, p, k * eb);
        w->staged[c] += k, p += k * eb, cnt -= k, off += k;
        if (w->staged[c] < cr) return 0;
        HB_CALL(write_chunks(w, c, off - cr, w->stage[c], 1));
        w->staged[c] = 0;
    }
    size_t whole = (size_t)(cnt / cr);
    if (whole) HB_CALL(write_chunks(w, c, off, p, whole));
    p += whole * cr * eb, cnt -= whole * cr;
    memcpy(w->stage[c], p, (size_t)cnt * eb);
    w->staged[c] = (size_t)cnt;
    return 0;
}

int hb_tw_write(hb_tw *w, int c, uint64_t off, uint64_t cnt, const void *data)
{
    if (w->failed) return w->failed;
    if (cnt == 0) return 0;
    if (w->direct) return w->failed = write_direct(w, c, off, cnt, data);
    hsize_t start = w->base + off, count = cnt;
    hid_t fs = H5Dget_space(w->dsets[c]), ms = H5Screate_simple(1, &count, NULL), mt = mem_type(&w->cols[c]);
    int rc = 0;
    if (fs < 0 || ms < 0 || mt < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
        H5Dwrite(w->dsets[c], mt, ms, fs, H5P_DEFAULT, data) < 0)
        rc = hb_err_set(HB_EIO, w->path, "cannot write rows of column '%s'", w->cols[c].name);
    if (mt >= 0) H5Tclose(mt);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return w->failed = rc;
}

/* The group an attribute goes to: the table, or /provenance (created once). */
static hid_t attr_obj(hb_tw *w, const char *obj)
{
    if (!obj) return H5Iinc_ref(w->group) < 0 ? -1 : w->group;
    if (H5Lexists(w->file, obj, H5P_DEFAULT) > 0) return H5Gopen2(w->file, obj, H5P_DEFAULT);
    return H5Gcreate2(w->file, obj, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

int hb_tw_attr_str(hb_tw *w, const char *obj, const char *name, const char *v)
{
    if (w->failed) return w->failed;
    hid_t g = attr_obj(w, obj);
    int rc = g < 0 ? hb_err_set(HB_EIO, w->path, "cannot open group for attribute '%s'", name)
                   : set_str_attr(g, name, v, w->path);
    if (g >= 0) H5Gclose(g);
    return w->failed = rc;
}

int hb_tw_attr_u64(hb_tw *w, const char *obj, const char *name, const uint64_t *v, int n)
{
    int array = n < 0; /* -n values as a 1-D array even when there is one */
    if (array) n = -n;
    if (w->failed) return w->failed;
    hid_t g = attr_obj(w, obj);
    hsize_t dims = (hsize_t)n;
    hid_t s = n == 1 && !array ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, NULL), a = -1;
    int rc = g < 0 || s < 0 ? -1 : 0;
    if (rc == 0 && H5Aexists(g, name) > 0) H5Adelete(g, name);
    if (rc == 0 && (a = H5Acreate2(g, name, H5T_STD_U64LE, s, H5P_DEFAULT, H5P_DEFAULT)) < 0) rc = -1;
    if (rc == 0 && H5Awrite(a, H5T_NATIVE_UINT64, v) < 0) rc = -1;
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    if (g >= 0) H5Gclose(g);
    return w->failed = rc ? hb_err_set(HB_EIO, w->path, "cannot write attribute '%s'", name) : 0;
}

int hb_tw_close(hb_tw *w)
{
    if (!w) return 0;
    int rc = w->failed;
    for (int c = 0; rc == 0 && w->direct && c < w->ncols; c++)
        if (w->staged[c]) { /* the last, partial chunk: its unused rows zero */
            const size_t eb = elem_bytes(&w->cols[c]), cr = chunk_rows(&w->cols[c]);
            memset(w->stage[c] + w->staged[c] * eb, 0, (cr - w->staged[c]) * eb);
            rc = write_chunks(w, c, w->next[c] - w->staged[c], w->stage[c], 1);
        }
    if (w->direct) {
        for (int c = 0; w->stage && c < w->ncols; c++) free(w->stage[c]);
        for (int i = 0; w->zbuf && i < 4 * w->threads; i++) free(w->zbuf[i]);
        for (int i = 0; w->sbuf && i < w->threads; i++) free(w->sbuf[i]);
        for (int l = 0; l < 10; l++) free_compressors(w->dc[l], w->threads);
    }
    free(w->next), free(w->staged), free(w->stage), free(w->zbuf), free(w->zlen), free(w->sbuf);
    for (int i = 0; w->dsets && i < w->ncols; i++)
        if (w->dsets[i] >= 0) H5Dclose(w->dsets[i]);
    if (w->group >= 0) H5Gclose(w->group);
    if (w->scale >= 0) H5Dclose(w->scale);
    if (w->file >= 0 && H5Fclose(w->file) < 0 && rc == 0) rc = hb_err_set(HB_EIO, w->path, "closing the file failed");
    free(w->dsets);
    free(w->cols);
    free(w);
    return rc;
}
