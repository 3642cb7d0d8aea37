/* `h5batch import`: the table and its provenance, written by rank 0 from every rank's rows. */
#include "import/internal.h"

#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Not collective (rank 0). Copies src to dst (for --append: the old file stays as it is
 * until the commit). */
int imp_copy_file(const char *src, const char *dst)
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
int imp_write_table(imp *m, int nsrc, const char *tmp, const char *table, int append,
                       const int64_t *counts, uint64_t total, hb_tw **wp)
{
    int rc = 0, direct = !append;
    *wp = NULL;
    /* the ranks of rank 0's node wait while it writes: their cores compress its chunks */
    const int local = hb_host_ranks();
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
int imp_write_meta(hb_tw *w, imp *m, source *src, int nsrc, int argc, char **argv, uint64_t rows,
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
