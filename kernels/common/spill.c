/* Sorted runs on disk (spill.h, docs/spill.md): written atomically in the step's scratch
 * folder, checked block by block when read back, merged in order with a heap. */
#include "kernels/common/spill.h"

#include "core/fault.h"
#include "core/hb.h"

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define BLOCK_BYTES (128u << 10) /* records per block: this many bytes' worth */
#define MAX_WORDS 8

/* The end of a run: after its blocks and its index (a first key and a checksum per block). */
typedef struct footer {
    char magic[8]; /* "HBSPIL1" */
    uint64_t rec_size, key_shift, records, block_records, blocks, key_min, key_max;
    uint64_t sum; /* XXH3-64 of the index and of this footer up to here: the run's checksum */
} footer;

static char spill_base[4096], spill_sub[512], spill_dir[4700];

void hb_spill_set_dir(const char *base, const char *sub)
{
    snprintf(spill_base, sizeof spill_base, "%s", base ? base : "");
    snprintf(spill_sub, sizeof spill_sub, "%s", base && sub ? sub : "");
    if (base) snprintf(spill_dir, sizeof spill_dir, "%s/%s", spill_base, spill_sub);
    else *spill_dir = '\0';
}

const char *hb_spill_dir(void) { return *spill_dir ? spill_dir : NULL; }

/* The step folder's descriptor: the base opened without following a link, then each
 * component of the subfolder below it, made (0700) when create, each ours and never a
 * link (a shared $TMPDIR may hold names planted by others). 73 when it cannot be made or
 * used, 66 when it is missing and not to be made. */
static int open_dir(int create, int *dfd)
{
    if (!*spill_dir) return hb_err_set(HB_EINTERNAL, "spill", "no scratch folder set for this step");
    if (create && mkdir(spill_base, 0700) != 0 && errno != EEXIST)
        return hb_err_set(HB_ECANTCREAT, spill_base, "cannot create the scratch folder: %s", strerror(errno));
    int fd = open(spill_base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char sub[512], *save = NULL;
    snprintf(sub, sizeof sub, "%s", spill_sub);
    for (char *c = strtok_r(sub, "/", &save); fd >= 0 && c; c = strtok_r(NULL, "/", &save)) {
        if (create && mkdirat(fd, c, 0700) != 0 && errno != EEXIST) break;
        int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat sb;
        if (nfd >= 0 && (fstat(nfd, &sb) != 0 || sb.st_uid != geteuid())) {
            close(nfd), close(fd);
            return hb_err_set(HB_ECANTCREAT, spill_dir, "the scratch folder %s belongs to another user", c);
        }
        close(fd);
        fd = nfd;
    }
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && !create)
            return hb_err_set(HB_ENOINPUT, spill_dir, "the scratch folder of the spilled runs is missing");
        return hb_err_set(HB_ECANTCREAT, spill_dir, "cannot use the scratch folder: %s",
                          e == ELOOP || e == ENOTDIR ? "a part of it is a symbolic link or not a folder" : strerror(e));
    }
    *dfd = fd;
    return 0;
}

/* The key of a record. */
static inline uint64_t key_of(const void *rec, unsigned shift)
{
    uint64_t w0;
    memcpy(&w0, rec, sizeof w0);
    return w0 >> shift;
}

/* Writes all n bytes (a short write goes on); -1 with errno. */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            return -1;
        }
        c += k, n -= (size_t)k;
    }
    return 0;
}

/* Reads all n bytes at off; -1 on an error or a short file. */
static int read_at(int fd, void *p, size_t n, uint64_t off)
{
    char *c = p;
    while (n > 0) {
        ssize_t k = pread(fd, c, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k, n -= (size_t)k, off += (uint64_t)k;
    }
    return 0;
}

struct hb_spill_writer {
    int dfd, fd;
    char tmp[96], name[64];
    size_t rec, brec;
    unsigned shift;
    unsigned char *buf;
    size_t nbuf;
    uint64_t records, blocks, last; /* last: the key of the last record */
    uint64_t *index; /* 2 words a block: first key, checksum */
    size_t icap;
};

int hb_spill_create(const char *tag, size_t rec_size, unsigned key_shift, hb_spill_writer **wp)
{
    static unsigned seq;
    *wp = NULL;
    HB_CHECK(rec_size >= 8 && rec_size % 8 == 0 && rec_size <= 8 * MAX_WORDS && key_shift < 64, HB_EINTERNAL,
             "spill", "records of %zu bytes, keys shifted by %u", rec_size, key_shift);
    hb_spill_writer *w = hb_calloc(1, sizeof *w);
    if (!w) return HB_EINTERNAL;
    w->fd = w->dfd = -1;
    w->rec = rec_size, w->shift = key_shift, w->brec = BLOCK_BYTES / rec_size;
    w->buf = hb_malloc(w->brec * w->rec);
    int rc = w->buf ? open_dir(1, &w->dfd) : HB_EINTERNAL;
    for (int attempt = 0; rc == 0 && attempt < 16 && w->fd < 0; attempt++) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)rand();
        snprintf(w->name, sizeof w->name, "spill-%.16s-r%d-%ld-%08x-%u.run", tag, hb_rank, (long)getpid(), (unsigned)r,
                 ++seq);
        snprintf(w->tmp, sizeof w->tmp, "%.*s.tmp", (int)(strlen(w->name) - 4), w->name);
        if (hb_fault_write("spill", "create")) break;
        w->fd = openat(w->dfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (w->fd < 0 && errno != EEXIST) break;
    }
    if (rc == 0 && w->fd < 0)
        rc = hb_err_set(errno == ENOSPC || errno == EIO ? HB_EIO : HB_ECANTCREAT, spill_dir,
                        "cannot create a spilled run: %s", strerror(errno));
    if (rc) {
        hb_spill_abort(w);
        return rc;
    }
    *wp = w;
    return 0;
}

/* Writes the buffered block and records its first key and checksum. */
static int flush_block(hb_spill_writer *w)
{
    if (w->nbuf == 0) return 0;
    size_t bytes = w->nbuf * w->rec;
    if (hb_grow((void **)&w->index, &w->icap, 2 * (w->blocks + 1), sizeof *w->index)) return HB_EINTERNAL;
    w->index[2 * w->blocks] = key_of(w->buf, w->shift);
    w->index[2 * w->blocks + 1] = XXH3_64bits(w->buf, bytes);
    if (hb_fault_write("spill", "data") || write_all(w->fd, w->buf, bytes) != 0)
        return hb_err_set(HB_EIO, spill_dir, "cannot write spilled run %s: %s", w->tmp, strerror(errno));
    w->blocks++;
    w->nbuf = 0;
    return 0;
}

int hb_spill_write(hb_spill_writer *w, const void *recs, size_t n)
{
    const unsigned char *p = recs;
    while (n > 0) {
        size_t m = w->brec - w->nbuf < n ? w->brec - w->nbuf : n; /* what fits the block */
        /* the order: each key against the one before, the first against the run's last */
        uint64_t prev = w->records ? w->last : 0;
        for (size_t i = 0; i < m; i++) {
            uint64_t k = key_of(p + i * w->rec, w->shift);
            if (k < prev)
                return hb_err_set(HB_EINTERNAL, "spill", "record %llu of run %s is out of order",
                                  (unsigned long long)(w->records + i), w->name);
            prev = k;
        }
        memcpy(w->buf + w->nbuf * w->rec, p, m * w->rec);
        w->last = prev;
        w->nbuf += m, w->records += m, p += m * w->rec, n -= m;
        if (w->nbuf == w->brec) HB_CALL(flush_block(w));
    }
    return 0;
}

int hb_spill_finish(hb_spill_writer *w, hb_spill_run *run)
{
    int rc = flush_block(w);
    footer f = {"HBSPIL1", w->rec, w->shift, w->records, w->brec, w->blocks, 0, 0, 0};
    if (w->blocks) f.key_min = w->index[0];
    f.key_max = w->last;
    XXH3_state_t *h = XXH3_createState();
    if (!h && rc == 0) rc = HB_EINTERNAL;
    if (rc == 0) {
        XXH3_64bits_reset(h);
        XXH3_64bits_update(h, w->index, w->blocks * 2 * sizeof *w->index);
        XXH3_64bits_update(h, &f, offsetof(footer, sum));
        f.sum = XXH3_64bits_digest(h);
    }
    XXH3_freeState(h);
    if (rc == 0 && (write_all(w->fd, w->index, w->blocks * 2 * sizeof *w->index) != 0 ||
                    hb_fault_write("spill", "close") || write_all(w->fd, &f, sizeof f) != 0 || close(w->fd) != 0))
        rc = hb_err_set(HB_EIO, spill_dir, "cannot write spilled run %s: %s", w->tmp, strerror(errno));
    else if (rc == 0)
        w->fd = -1;
    if (rc == 0 && (hb_fault_write("spill", "commit") || renameat(w->dfd, w->tmp, w->dfd, w->name) != 0))
        rc = hb_err_set(HB_EIO, spill_dir, "cannot commit spilled run %s: %s", w->name, strerror(errno));
    if (rc == 0) {
        memset(run, 0, sizeof *run);
        snprintf(run->name, sizeof run->name, "%s", w->name);
        run->records = w->records;
        run->bytes = w->records * w->rec + w->blocks * 2 * sizeof(uint64_t) + sizeof f;
        run->checksum = f.sum, run->key_min = f.key_min, run->key_max = f.key_max;
        run->rec_size = (uint32_t)w->rec, run->key_shift = w->shift;
        *w->tmp = '\0'; /* renamed: nothing to remove */
    }
    hb_spill_abort(w);
    return rc;
}

void hb_spill_abort(hb_spill_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->dfd >= 0 && *w->tmp) unlinkat(w->dfd, w->tmp, 0);
    if (w->dfd >= 0) close(w->dfd);
    free(w->buf), free(w->index), free(w);
}

int hb_spill_sync(hb_spill_run *run)
{
    if (run->synced) return 0;
    int dfd;
    HB_CALL(open_dir(0, &dfd));
    int fd = openat(dfd, run->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;
    if (fd < 0 || fsync(fd) != 0 || fsync(dfd) != 0)
        rc = hb_err_set(HB_EIO, spill_dir, "cannot sync spilled run %s: %s", run->name, strerror(errno));
    if (fd >= 0) close(fd);
    close(dfd);
    if (rc == 0) run->synced = 1;
    return rc;
}

struct hb_spill_reader {
    int fd;
    char path[4800];
    size_t rec;
    unsigned shift;
    uint64_t brec, blocks, records, blk, lo, hi;
    uint64_t *index;
    unsigned char *buf;
    int done;
};

/* 65 naming the run's file and what is wrong with it. */
static int damaged(const char *path, const char *what)
{
    return hb_err_set(HB_EDATA, path, "spilled run is damaged (%s); rerun with --fresh", what);
}

int hb_spill_open(const hb_spill_run *run, uint64_t lo, uint64_t hi, hb_spill_reader **rp)
{
    *rp = NULL;
    int dfd;
    HB_CALL(open_dir(0, &dfd));
    hb_spill_reader *r = hb_calloc(1, sizeof *r);
    if (!r) return close(dfd), HB_EINTERNAL;
    snprintf(r->path, sizeof r->path, "%s/%s", spill_dir, run->name);
    r->fd = openat(dfd, run->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno, rc = 0;
    close(dfd);
    struct stat sb;
    footer f;
    if (r->fd < 0)
        rc = e == ENOENT ? hb_err_set(HB_ENOINPUT, r->path, "spilled run is missing (a checkpoint refers to it; "
                                                            "scratch_dir must be the one it was written in)")
                         : hb_err_set(HB_ENOINPUT, r->path, "cannot open spilled run: %s", strerror(e));
    else if (fstat(r->fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != run->bytes ||
             run->bytes < sizeof f)
        rc = damaged(r->path, "its size is not the one recorded");
    else if (read_at(r->fd, &f, sizeof f, run->bytes - sizeof f) != 0 || memcmp(f.magic, "HBSPIL1", 8) != 0 ||
             f.sum != run->checksum || f.rec_size != run->rec_size || f.key_shift != run->key_shift ||
             f.key_shift >= 64 || f.records != run->records ||
             f.block_records == 0 || f.rec_size == 0 || f.rec_size > 8 * MAX_WORDS || f.rec_size % 8 ||
             f.blocks != (f.records + f.block_records - 1) / f.block_records ||
             f.records > run->bytes / f.rec_size ||
             f.records * f.rec_size + f.blocks * 16 + sizeof f != run->bytes)
        rc = damaged(r->path, "its footer does not match the checkpoint's reference");
    if (rc == 0) {
        r->rec = f.rec_size, r->shift = (unsigned)f.key_shift, r->brec = f.block_records, r->blocks = f.blocks;
        r->records = f.records, r->lo = lo, r->hi = hi;
        r->index = hb_malloc(f.blocks * 16 + 1);
        r->buf = hb_malloc(f.block_records * f.rec_size);
        if (!r->index || !r->buf) rc = HB_EINTERNAL;
    }
    if (rc == 0 && read_at(r->fd, r->index, f.blocks * 16, f.records * f.rec_size) != 0)
        rc = damaged(r->path, "its index cannot be read");
    if (rc == 0) {
        XXH3_state_t *h = XXH3_createState();
        if (!h) rc = HB_EINTERNAL;
        else {
            XXH3_64bits_reset(h);
            XXH3_64bits_update(h, r->index, f.blocks * 16);
            XXH3_64bits_update(h, &f, offsetof(footer, sum));
            if (XXH3_64bits_digest(h) != f.sum) rc = damaged(r->path, "its index checksum does not match");
            XXH3_freeState(h);
        }
    }
    if (rc) {
        hb_spill_close(r);
        return rc;
    }
    /* the block where keys >= lo may begin: the last whose first key is below lo */
    uint64_t a = 0, b = r->blocks;
    while (b - a > 1) {
        uint64_t mid = (a + b) / 2;
        if (r->index[2 * mid] < lo) a = mid;
        else b = mid;
    }
    r->blk = a;
    r->done = r->blocks == 0 || lo >= hi;
    *rp = r;
    return 0;
}

int hb_spill_read(hb_spill_reader *r, const void **recs, size_t *n)
{
    *n = 0;
    while (!r->done && r->blk < r->blocks) {
        uint64_t b = r->blk++;
        size_t cnt = (size_t)(b + 1 < r->blocks ? r->brec : r->records - b * r->brec);
        if (read_at(r->fd, r->buf, cnt * r->rec, b * r->brec * r->rec) != 0)
            return damaged(r->path, "a block cannot be read");
        if (XXH3_64bits(r->buf, cnt * r->rec) != r->index[2 * b + 1]) return damaged(r->path, "a block's checksum");
        size_t s = 0, e = cnt;
        while (s < e && key_of(r->buf + s * r->rec, r->shift) < r->lo) s++;
        size_t lo = s, hi = e; /* the first record at or above hi, by bisection */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (key_of(r->buf + mid * r->rec, r->shift) < r->hi) lo = mid + 1;
            else hi = mid;
        }
        if (lo < cnt) r->done = 1;
        if (lo > s) {
            *recs = r->buf + s * r->rec;
            *n = lo - s;
            return 0;
        }
    }
    r->done = 1;
    return 0;
}

void hb_spill_close(hb_spill_reader *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r->index), free(r->buf), free(r);
}

int hb_spill_check(const hb_spill_run *run)
{
    hb_spill_reader *r;
    HB_CALL(hb_spill_open(run, 0, 0, &r));
    hb_spill_close(r);
    return 0;
}

size_t hb_spill_reader_bytes(size_t rec_size) { return BLOCK_BYTES / rec_size * rec_size + 4096; }

/* One run's cursor in a merge: its current slice of records. */
typedef struct cursor {
    hb_spill_reader *r;
    const unsigned char *p;
    size_t n;
} cursor;

struct hb_spill_merge {
    cursor *c;
    int *heap, nheap, n, pending; /* pending: the cursor whose record was handed out last */
    size_t rec;
    unsigned shift;
};

static inline const uint64_t *top_of(const hb_spill_merge *m, int i)
{
    return (const uint64_t *)(const void *)m->c[i].p;
}

/* Cursor a's key below cursor b's. */
static inline int below(const hb_spill_merge *m, int a, int b)
{
    return *top_of(m, a) >> m->shift < *top_of(m, b) >> m->shift;
}

static void sift_down(hb_spill_merge *m, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->nheap && below(m, m->heap[l], m->heap[s])) s = l;
        if (r < m->nheap && below(m, m->heap[r], m->heap[s])) s = r;
        if (s == i) return;
        int t = m->heap[i];
        m->heap[i] = m->heap[s], m->heap[s] = t;
        i = s;
    }
}

/* Moves cursor c to its next record, reading the next slice when its own is used up;
 * *more = 0 when the run has no more. */
static int advance(hb_spill_merge *m, cursor *c, int *more)
{
    if (c->n > 1) {
        c->p += m->rec, c->n--;
        return *more = 1, 0;
    }
    const void *recs;
    size_t n;
    HB_CALL(hb_spill_read(c->r, &recs, &n));
    c->p = recs, c->n = n;
    *more = n > 0;
    return 0;
}

int hb_spill_merge_open(const hb_spill_run *runs, int n, uint64_t lo, uint64_t hi, hb_spill_merge **mp)
{
    *mp = NULL;
    hb_spill_merge *m = hb_calloc(1, sizeof *m);
    if (!m) return HB_EINTERNAL;
    m->c = hb_calloc((size_t)(n ? n : 1), sizeof *m->c);
    m->heap = hb_calloc((size_t)(n ? n : 1), sizeof *m->heap);
    m->pending = -1;
    int rc = m->c && m->heap ? 0 : HB_EINTERNAL;
    m->rec = n ? runs[0].rec_size : 8, m->shift = n ? runs[0].key_shift : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (runs[i].rec_size != m->rec || runs[i].key_shift != m->shift) {
            rc = hb_err_set(HB_EINTERNAL, "spill", "runs of other records in one merge");
            break;
        }
        m->n++;
        rc = hb_spill_open(&runs[i], lo, hi, &m->c[i].r);
        int more = 0;
        if (rc == 0) m->c[i].n = 0, rc = advance(m, &m->c[i], &more);
        if (rc == 0 && more) m->heap[m->nheap++] = i;
    }
    for (int i = m->nheap / 2 - 1; rc == 0 && i >= 0; i--) sift_down(m, i);
    if (rc) {
        hb_spill_merge_close(m);
        return rc;
    }
    *mp = m;
    return 0;
}

int hb_spill_merge_next(hb_spill_merge *m, const void **rec)
{
    *rec = NULL;
    if (m->pending >= 0) { /* the record handed out last stays valid until now */
        int more = 0;
        HB_CALL(advance(m, &m->c[m->pending], &more));
        if (!more) m->heap[0] = m->heap[--m->nheap];
        if (m->nheap > 1) sift_down(m, 0);
        m->pending = -1;
    }
    if (m->nheap == 0) return 0;
    m->pending = m->heap[0];
    *rec = m->c[m->pending].p;
    return 0;
}

void hb_spill_merge_close(hb_spill_merge *m)
{
    if (!m) return;
    for (int i = 0; m->c && i < m->n; i++) hb_spill_close(m->c[i].r);
    free(m->c), free(m->heap), free(m);
}

int hb_spill_cleanup(void)
{
    if (!*spill_dir) return 0;
    int dfd = open(spill_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(dfd);
    if (!d) return close(dfd), -1;
    for (struct dirent *de; (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "spill-", 6) == 0 && l > 10 &&
            (strcmp(de->d_name + l - 4, ".run") == 0 || strcmp(de->d_name + l - 4, ".tmp") == 0))
            unlinkat(dfd, de->d_name, 0);
    }
    closedir(d);
    /* the subfolders, deepest first, while empty; never the base */
    char path[4700];
    snprintf(path, sizeof path, "%s", spill_dir);
    for (size_t keep = strlen(spill_base); strlen(path) > keep;) {
        if (rmdir(path) != 0) return errno == ENOTEMPTY || errno == EEXIST || errno == ENOENT ? 0 : -1;
        char *slash = strrchr(path, '/');
        if (!slash) break;
        *slash = '\0';
    }
    return 0;
}
