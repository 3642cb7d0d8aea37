/* `h5batch import`: opening the inputs, their headers, and the split of each between the ranks. */
#include "import/internal.h"

#include "core/commit.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* zlib's message for g without the "PATH: " it starts with (the error names the file). */
static const char *gz_why(gzFile g, const char *path, int *e)
{
    const char *why = gzerror(g, e);
    size_t n = strlen(path);
    return strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0 ? why + n + 2 : why;
}

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
            rc = hb_err_set(HB_EDATA, s->path, "bad gzip data: %s", gz_why(g, s->path, &e));
        } else if (got == 0) {
            /* zlib ends a stream cut short (no trailer, or cut inside a block) like a
             * whole one and only records Z_BUF_ERROR: the rows read would pass for all */
            int e;
            const char *why = gz_why(g, s->path, &e);
            if (e != Z_OK) rc = hb_err_set(HB_EDATA, s->path, "bad gzip data: %s", why);
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
int imp_open_source(source *s, int index)
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
    unsigned char magic[16] = {0};
    ssize_t nm = 0;
    int rc = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        rc = hb_err_set(HB_ENOINPUT, s->path, "is %s, not a regular file", hb_file_kind(sb.st_mode));
    if (rc == 0 && sb.st_size > 0 && (nm = pread(fd, magic, sizeof magic, 0)) <= 0)
        rc = hb_err_set(HB_ENOINPUT, s->path, "cannot read: %s", strerror(errno));
    const char *what = rc == 0 && nm > 0 ? hb_file_format(magic, (size_t)nm) : NULL;
    if (what && !(magic[0] == 0x1f && magic[1] == 0x8b)) /* gzip is read, every other format named */
        rc = hb_err_set(HB_EDATA, s->path, "is %s, not CSV text%s", what,
                        strstr(what, "HDF5") ? ": kernels read HDF5 tables directly (input = FILE in the job file)"
                        : strstr(what, "Parquet") ? ": pandas' pd.read_parquet(F).to_csv(OUT, index=False) writes it as CSV"
                        : "");
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

void imp_close_source(source *s)
{
    if (s->mapped) munmap(s->buf, s->len);
    else free(s->buf);
    s->buf = NULL;
}

/* Collective. The header of file s (read by the rank that holds it): its names into
 * names[] (unescaped, NUL-terminated, in one block), and where the data starts. */
int imp_read_header(source *s, int index, char delim, char **names, int *ncols, size_t *data0, int64_t *hdr_lines)
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
        if (rc == 0 && s->len >= 2 && (!memcmp(s->buf, "\xFF\xFE", 2) || !memcmp(s->buf, "\xFE\xFF", 2)))
            rc = hb_err_set(HB_EDATA, s->path, "starts with a UTF-16 byte order mark: import reads UTF-8 text; convert the "
                                               "file (iconv -f UTF-16 -t UTF-8)");
        if (rc == 0 && pos >= s->len) rc = hb_err_set(HB_EDATA, s->path, "empty file: a header line is needed");
        hb_csv_bad bad = HB_CSV_OK;
        if (rc == 0) bad = hb_csv_record(s->buf, s->len, &pos, delim, f, MAX_COLS + 1, &n, &nl);
        if (rc == 0 && bad) rc = hb_err_set(HB_EDATA, s->path, "line 1: the header: %s", hb_csv_bad_text(bad));
        if (rc == 0 && n == 0) rc = hb_err_set(HB_EDATA, s->path, "line 1: the header line is empty");
        if (rc == 0 && n > MAX_COLS) rc = hb_err_set(HB_EDATA, s->path, "line 1: more than %d columns", MAX_COLS);
        size_t bytes = 0;
        for (int i = 0; rc == 0 && i < n; i++) {
            char what[64], why[400];
            snprintf(what, sizeof what, "column %d of the header", i + 1);
            if (imp_bad_text(f[i].p, f[i].len, what, why, sizeof why)) rc = hb_err_set(HB_EDATA, s->path, "line 1: %s", why);
            else if (memchr(f[i].p, '\r', f[i].len)) /* the CR of a CRLF is not in the field */
                rc = hb_err_set(HB_EDATA, s->path,
                                "line 1: %s holds a carriage return: lines that end with CR alone (classic Mac OS) "
                                "are not lines here; convert them to LF (tr '\\r' '\\n')",
                                what);
            bytes += hb_csv_unescaped_len(&f[i]) + 1;
        }
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

/* Quote characters and line breaks in buf[lo..hi), on threads when there is 1 MiB for
 * each: the first touch of the mapped file, whose page faults the threads share. */
static void count(const char *buf, size_t lo, size_t hi, int threads, uint64_t *quotes, uint64_t *newlines)
{
    uint64_t q = 0, l = 0;
    const int n = hi - lo >= ((size_t)threads << 20) ? threads : 1;
#pragma omp parallel for num_threads(n) reduction(+ : q, l) if (n > 1)
    for (int k = 0; k < n; k++) {
        uint64_t a, b;
        hb_csv_count(buf, lo + (size_t)((__uint128_t)(hi - lo) * (unsigned)k / (unsigned)n),
                     lo + (size_t)((__uint128_t)(hi - lo) * (unsigned)(k + 1) / (unsigned)n), &a, &b);
        q += a, l += b;
    }
    *quotes = q;
    *newlines = l;
}

/* Collective. This rank's record range of a plain file (data from data0): an equal byte
 * range, moved to record starts by the parity of the quotes before it. */
void imp_split(source *s, size_t data0, int64_t hdr_lines, int index, int threads)
{
    if (s->gz) {
        int mine = index % hb_size == hb_rank;
        s->start = data0;
        s->hi = mine ? s->len : data0;
        s->line = 1 + hdr_lines;
        uint64_t q = 0;
        s->lines = 0;
        if (mine && s->buf) count(s->buf, s->start, s->hi, threads, &q, &s->lines);
        return;
    }
    size_t n = s->len > data0 ? s->len - data0 : 0;
    size_t lo = data0 + (size_t)((__uint128_t)n * (unsigned)hb_rank / (unsigned)hb_size);
    size_t hi = data0 + (size_t)((__uint128_t)n * (unsigned)(hb_rank + 1) / (unsigned)hb_size);
    uint64_t mine[2] = {0, 0}, *all = NULL;
    if (s->buf) count(s->buf, lo, hi, threads, &mine[0], &mine[1]);
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
