/* `h5batch import`: the agreed column types, and pass 1's conversion kept as the rows. */
#include "import/internal.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Not collective. 65 when this rank's rows, in their HDF5 types, could never fit in the
 * machine's memory: a string column is as wide as its longest value in every row, so one
 * field of megabytes (a quote that swallowed many lines) makes its column rows times
 * that; said before any of it is allocated, naming the column. */
static int check_room(const imp *m)
{
    const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return 0;
    const double mem = (double)pages * (double)psz, rows = (double)m->nrows;
    double need = 0, widest = 0;
    int wc = -1;
    for (int c = 0; c < m->ncols; c++) {
        const double b = rows * (m->cols[c].type == HB_CT_STRING ? (double)m->cols[c].width : 8.0);
        need += b;
        if (m->cols[c].type == HB_CT_STRING && b > widest) widest = b, wc = c;
    }
    if (need <= mem) return 0;
    if (wc >= 0 && widest > need / 2)
        return hb_err_set(HB_EDATA, "import",
                          "column '%s' would take %.1f GB%s: its strings are stored as wide as the longest (%zu bytes) "
                          "in each of its %lld rows, more than this machine's %.1f GB of memory; a value that long is "
                          "usually a quote left open over many lines",
                          m->cols[wc].name, widest / 1e9, hb_size > 1 ? " on this rank" : "", m->cols[wc].width,
                          (long long)m->nrows, mem / 1e9);
    return hb_err_set(HB_EDATA, "import", "the %lld rows%s would take %.1f GB, more than this machine's %.1f GB of memory",
                      (long long)m->nrows, hb_size > 1 ? " of this rank" : "", need / 1e9, mem / 1e9);
}

/* Collective. The column types from the declarations and what pass 1 saw, agreed. */
int imp_decide_types(imp *m)
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
    rc = check_room(m);
    if (rc == 0 && strcmp(m->tzname, "UTC") != 0 && tmin <= tmax) {
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
int imp_spec_finish(imp *m)
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
    /* the string columns' rows are allocated before the ranks agree: where one cannot be,
     * pass 2 tries its own arrays and fails as every rank agrees (70), never an abort */
    const size_t n = (size_t)m->nrows;
    char **str = ok ? calloc((size_t)m->ncols, sizeof *str) : NULL;
    if (!str) ok = 0;
    for (int c = 0; ok && c < m->ncols; c++)
        if (m->cols[c].type == HB_CT_STRING && !(str[c] = malloc((n ? n : 1) * m->cols[c].width))) ok = 0;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok) {
        for (int c = 0; str && c < m->ncols; c++) free(str[c]);
        free(str);
        return 0;
    }
    m->data = hb_calloc((size_t)m->ncols, sizeof *m->data);
    if (!m->data) abort(); /* a pointer per column */
    for (int c = 0; c < m->ncols; c++) {
        spec *p = &m->sp[c];
        const hb_csv_col *col = &m->cols[c];
        if (p->kind == K_UNDECIDED) imp_spec_room(m, p, col->type == HB_CT_STRING ? HB_CT_STRING : HB_CT_FLOAT, m->nrows);
        if (p->kind == HB_CT_INT && col->type == HB_CT_FLOAT) imp_spec_to_float(p, m->nrows);
        if (p->failed) abort(); /* out of memory for rows already agreed on: no way to agree now */
        if (col->type == HB_CT_STRING) {
            char *d = str[c];
#pragma omp parallel for num_threads(m->threads) if (n > 65536) schedule(static)
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
#pragma omp parallel for num_threads(m->threads) if (n > 65536) schedule(static)
            for (size_t i = 0; i < n; i++)
                if (!p->inst[i]) v[i] = hb_csv_local_to_utc(&m->tz, v[i]);
        }
        m->data[c] = p->v;
        p->v = NULL;
    }
    free(str);
    return 1;
}

void imp_spec_free(imp *m)
{
    for (int c = 0; m->sp && c < m->ncols; c++) free(m->sp[c].v), free(m->sp[c].inst), free(m->sp[c].s);
    free(m->sp);
    m->sp = NULL;
}
