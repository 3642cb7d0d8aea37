/* `h5batch import`: the import, step by step (docs/import.md). */
#include "import/internal.h"

#include "core/commit.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

void imp_free(imp *m)
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
    imp_spec_free(m);
    hb_tzmap_free(&m->tz);
}

/* The name a header's column is stored as in dst (len bytes): '/' separates HDF5 groups,
 * so a unit's slash ("Speed [km/h]") becomes '_'. */
static void stored_name(const char *header, char *dst, size_t len)
{
    snprintf(dst, len, "%s", header);
    for (char *q = dst; (q = strchr(q, '/'));) *q = '_';
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
        if (!strcmp(p, ".") || !strcmp(p, "..") || strlen(p) >= sizeof m->cols[c].name)
            return hb_err_set(HB_EDATA, path,
                              "line 1: column %d: '%s' cannot name an HDF5 dataset (not '.' or '..', under 256 bytes)",
                              c + 1, p);
        char name[sizeof m->cols[c].name];
        stored_name(p, name, sizeof name);
        if (strcmp(name, p) != 0 && hb_rank == 0)
            hb_warn("import: column %d, '%s', is stored as '%s' ('/' separates HDF5 groups)", c + 1, p, name);
        for (int k = 0; k < c; k++)
            if (!strcmp(m->cols[k].name, name))
                return hb_err_set(HB_EDATA, path, "line 1: column name '%s' appears twice (columns %d and %d)", name,
                                  k + 1, c + 1);
        snprintf(m->cols[c].name, sizeof m->cols[c].name, "%s", name);
        m->decl[c].type = T_AUTO;
        m->cols[c].gzip = m->gzip;
        colstat *s = &m->st[c];
        s->maybe_int = s->maybe_float = s->maybe_time = 1;
        s->tmin = INT64_MAX;
        s->tmax = INT64_MIN;
    }
    for (int i = 0; i < nd; i++) {
        int c = 0;
        char want[sizeof m->cols[0].name]; /* the header's name or the name it is stored as */
        stored_name(d[i].name, want, sizeof want);
        while (c < n && strcmp(m->cols[c].name, want)) c++;
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
int imp_run(imp *m, char **paths, int nsrc, const char *out, const char *table, const char *spec,
                      int append, int force, int argc, char **argv)
{
    double t0 = hb_now();
    decl *d = NULL;
    int nd = 0;
    int rc = hb_agree(imp_parse_columns(spec, &d, &nd));
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
        rc = hb_agree(imp_open_source(&src[i], i));
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
        rc = imp_read_header(&src[i], i, m->delim, &names, &n, &data0, &hl);
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
        if (rc == 0) imp_split(&src[i], data0, hl, i, m->threads);
    }
    free(first);
    /* room for this rank's records: at most one more than the line breaks of its ranges,
     * or of each block of them that a thread reads (imp_scan_blocks) */
    int64_t cap = 0;
    for (int i = 0; i < nsrc && rc == 0; i++) cap += src[i].buf ? (int64_t)src[i].lines + m->threads : 0;
    /* pass 1, file by file, so that the error reported is the first of the files; it
     * converts each column as the type of its first value (spec) while it checks */
    double t1 = hb_now();
    m->first_key = INT64_MAX;
    if (rc == 0 && m->convert1 && (m->sp = hb_calloc((size_t)m->ncols, sizeof *m->sp))) {
        m->spcap = cap;
        for (int c = 0; c < m->ncols; c++) {
            m->sp[c].kind = K_UNDECIDED;
            if (m->decl[c].type != T_AUTO) imp_spec_room(m, &m->sp[c], m->decl[c].type, 0);
        }
    }
    for (int i = 0; i < nsrc && rc == 0; i++) {
        int64_t before = m->nrows;
        rc = hb_agree(imp_scan_blocks(m, &src[i], i));
        src[i].rows = m->nrows - before;
    }
    if (rc == 0) rc = imp_decide_types(m);
    int converted = rc == 0 && imp_spec_finish(m);
    imp_spec_free(m);
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
            rc = hb_agree(imp_scan(m, &src[i], i, 2));
            src[i].rows = m->nrows - before;
        }
    }
    for (int i = 0; i < nsrc; i++) imp_close_source(&src[i]);
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
    if (rc == 0 && exists && hb_rank == 0) rc = imp_copy_file(out, tmp);
    rc = hb_agree(rc);
    if (rc == 0) rc = imp_write_table(m, nsrc, tmp, table, exists, counts, total, &w);
    double secs = hb_now() - t0;
    HB_DEBUG("import: open and split %.2f s, pass 1 (check, infer%s; %d block%s) %.2f s, pass 2 (convert) %s%.2f s, "
             "write %.2f s",
             t1 - t0, converted ? ", convert" : "", m->blocks > 1 ? m->blocks : 1, m->blocks > 1 ? "s" : "", t2 - t1,
             converted ? "not needed " : "", t3 - t2, hb_now() - t3);
    if (m->blocks > 1)
        HB_DEBUG("import: pass 1's blocks took %.2f CPU s on the threads, the longest of each file %.2f s in all",
                 m->block_cpu, m->block_cpu_max);
    if (rc == 0 && hb_rank == 0) rc = imp_write_meta(w, m, src, nsrc, argc, argv, total, skipped + old_skipped, base, secs);
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
