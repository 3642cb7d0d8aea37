/* Files made safely: folders, the writability check, unique temporaries, claims and the
 * atomic commit (unique temporary, fsync, rename, fsync of the folder) that outputs,
 * checkpoints, the manifest and status.json use. Which fsync protects what:
 * docs/architecture.md, "Files and claims". */
#include "core/commit.h"

#include "core/fault.h"
#include "core/hb.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int hb_check_writable(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    const char *dir = dirname(buf);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return hb_err_set(HB_ECANTCREAT, path, "output folder '%s' does not exist", dir);
    if (access(dir, W_OK) != 0)
        return hb_err_set(HB_ECANTCREAT, path, "output folder '%s' is not writable", dir);
    return 0;
}

int hb_fsync_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* A fresh name PATH.<pid>-<rank>-<random>.tmp for path in tmp; -1 when too long. */
static int tmp_name(const char *path, char *tmp, size_t len)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r ^= (uint32_t)rand() * 2654435761u;
    int n = snprintf(tmp, len, "%s.%ld-%d-%08x.tmp", path, (long)getpid(), hb_rank, (unsigned)r);
    return n < 0 || (size_t)n >= len ? (errno = ENAMETOOLONG, -1) : 0;
}

int hb_tmp_open(const char *path, char *tmp, size_t len)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        if (tmp_name(path, tmp, len) != 0) return -1;
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return errno = EEXIST, -1;
}

int hb_tmp_name_of(const char *name, const char *base)
{
    size_t lb = strlen(base);
    if (strncmp(name, base, lb) != 0 || name[lb] != '.') return 0;
    const char *p = name + lb + 1;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) p++;
    if (*p++ != '-' || !isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) p++;
    if (*p++ != '-') return 0;
    for (int i = 0; i < 8; i++, p++)
        if (!isxdigit((unsigned char)*p)) return 0;
    return strcmp(p, ".tmp") == 0;
}

int hb_tmp_create(const char *path, char *tmp, size_t len)
{
    int rc = 0;
    if (hb_rank == 0) {
        int fd = hb_tmp_open(path, tmp, len);
        if (fd < 0) rc = hb_err_set(HB_ECANTCREAT, path, "cannot create a temporary file: %s", strerror(errno));
        else close(fd);
    }
    rc = hb_agree(rc);
    if (rc != 0) return rc;
    int n = hb_rank == 0 ? (int)strlen(tmp) + 1 : 0;
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (n > (int)len) return hb_err_set(HB_EINTERNAL, path, "temporary name too long");
    MPI_Bcast(tmp, n, MPI_CHAR, 0, MPI_COMM_WORLD);
    return 0;
}

/* hb_write_atomic, and hb_write_report when durable is 0 (no fsync of the folder). */
static int write_replace(const char *path, const void *data, size_t len, const char *what, int durable)
{
    char tmp[4300];
    if (what && hb_fault_write(what, "data")) return errno = EIO, -1;
    int fd = hb_tmp_open(path, tmp, sizeof tmp);
    if (fd < 0) return -1;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto werr;
        p += n, left -= (size_t)n;
    }
    if (fsync(fd) != 0) goto werr;
    if (close(fd) != 0) {
        fd = -1;
        goto werr;
    }
    fd = -1;
    if ((what && hb_fault_write(what, "commit") && (errno = EIO)) || rename(tmp, path) != 0) goto werr;
    if (durable) hb_fsync_dir(path);
    return 0;
werr:;
    int why = errno ? errno : EIO;
    if (fd >= 0) close(fd);
    unlink(tmp);
    errno = why;
    return -1;
}

int hb_write_atomic(const char *path, const void *data, size_t len, const char *what)
{
    return write_replace(path, data, len, what, 1);
}

int hb_write_report(const char *path, const void *data, size_t len, const char *what)
{
    return write_replace(path, data, len, what, 0);
}

/* Rank 0: the thread that removes the second name of a replaced output (hb_commit). */
static pthread_t reaper;
static int reaping;
static char reap_path[4300];

static void *reap(void *arg)
{
    unlink(arg);
    return NULL;
}

void hb_commit_drain(void)
{
    if (!reaping) return;
    pthread_join(reaper, NULL);
    reaping = 0;
}

/* Rank 0: a second name in old for the regular file at path, so that a rename over path
 * leaves its blocks allocated; 0 when made. */
static int keep_replaced(const char *path, char *old, size_t len)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return -1;
    for (int attempt = 0; attempt < 16; attempt++) {
        if (tmp_name(path, old, len) != 0) return -1;
        if (link(path, old) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    return -1;
}

/* Rank 0: frees the replaced output's blocks (its second name, old) on a thread, so that
 * the file system's work of freeing them (13 ms for 16 MB here) overlaps the rest of the
 * run; at once when no thread can be made. */
static void reap_replaced(const char *old)
{
    snprintf(reap_path, sizeof reap_path, "%s", old);
    reaping = pthread_create(&reaper, NULL, reap, reap_path) == 0;
    if (!reaping) unlink(reap_path);
}

int hb_commit(const char *tmp, const char *path, int ok)
{
    int rc = hb_agree(ok);
    if (hb_rank == 0) {
        hb_commit_drain(); /* one replaced output at a time */
        if (rc == 0) {
            /* the data is on disk before the name says it is complete; O_NOFOLLOW: the
             * temporary is ours, a link in its place is not */
            int fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            char old[4300];
            const int kept = fd >= 0 && keep_replaced(path, old, sizeof old) == 0;
            if (fd < 0 || fsync(fd) != 0 || hb_fault_write("output", "commit") || rename(tmp, path) != 0 ||
                hb_fsync_dir(path) != 0)
                rc = hb_err_set(HB_ECANTCREAT, path, "cannot commit output: %s", strerror(errno));
            if (fd >= 0) close(fd);
            /* the old output's name was replaced (or, when the rename failed, it still has
             * its own): its second name goes either way */
            if (kept && rc == 0) reap_replaced(old);
            else if (kept) unlink(old);
        }
        if (rc != 0) unlink(tmp);
    }
    return hb_agree(rc);
}

int hb_mkdir_p(const char *dir) { return hb_mkdir_mode(dir, 0777); }

int hb_mkdir_mode(const char *dir, int mode)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) == 0) return 0;
    struct stat sb;
    if (errno != EEXIST) return -1;
    if (stat(buf, &sb) != 0) return -1;
    return S_ISDIR(sb.st_mode) ? 0 : (errno = ENOTDIR, -1);
}

const char *hb_file_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symbolic link";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "not a regular file";
    }
}

const char *hb_file_format(const unsigned char *b, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
        const char *what;
    } known[] = {
        {"\x89HDF\r\n\x1a\n", 8, "an HDF5 file"},
        {"PAR1", 4, "a Parquet file"},
        {"ARROW1", 6, "an Arrow (Feather) file"},
        {"PK\x03\x04", 4, "a ZIP archive (an .xlsx workbook is one)"},
        {"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8, "an old Office document (.xls)"},
        {"CDF\x01", 4, "a netCDF-3 file"},
        {"CDF\x02", 4, "a netCDF-3 file"},
        {"\x1f\x8b", 2, "a gzip file"},
        {"BZh", 3, "a bzip2 file"},
        {"\xfd" "7zXZ", 5, "an xz file"},
        {"\x28\xb5\x2f\xfd", 4, "a Zstandard file"},
        {"SQLite format 3", 16, "an SQLite database"},
        {"%PDF-", 5, "a PDF document"},
        {"Obj\x01", 4, "an Avro file"},
        {"ORC", 3, "an ORC file"},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (n >= known[i].len && memcmp(b, known[i].magic, known[i].len) == 0) return known[i].what;
    return NULL;
}

int hb_replaceable(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return 0;
    if (S_ISREG(sb.st_mode)) return 0;
    return hb_err_set(HB_ECANTCREAT, path, "output exists and is %s, which h5batch never replaces (not even with --force)",
                      hb_file_kind(sb.st_mode));
}

int hb_output_check(const char *path, int force)
{
    struct stat sb;
    int rc = 0;
    if (hb_rank == 0 && lstat(path, &sb) == 0) {
        rc = hb_replaceable(path);
        if (rc == 0 && !force) rc = hb_err_set(HB_ECANTCREAT, path, "file exists; use --force to replace it");
    }
    if (hb_rank == 0 && rc == 0) rc = hb_check_writable(path);
    return hb_agree(rc);
}

int hb_claim_holder(int fd, char *buf, size_t len, long *pid, char *host, size_t hlen)
{
    char text[1200];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return -1;
    text[n] = '\0';
    text[strcspn(text, "\n")] = '\0';
    char *end;
    long p = strtol(text, &end, 10);
    if (end == text || *end != ' ') return -1;
    const char *h = end + 1;
    size_t hl = strcspn(h, " ");
    const char *rd = h[hl] ? h + hl + 1 : "?";
    if (pid) *pid = p;
    if (host) snprintf(host, hlen, "%.*s", (int)hl, h);
    snprintf(buf, len, "pid %ld on host %.*s, run directory %s", p, (int)hl, h, rd);
    return 0;
}

int hb_claim_take(const char *path, const char *what, const char *run_dir, int *fd)
{
    *fd = -1;
    /* the file is removed when a claim is released: retry when the one locked is no
     * longer the one at path */
    for (int attempt = 0; attempt < 8; attempt++) {
        int f = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
        if (f < 0)
            return hb_err_set(HB_ECANTCREAT, path, "cannot create the lock file of %s: %s", what,
                              errno == ELOOP ? "it is a symbolic link" : strerror(errno));
        struct stat a, b;
        if (fstat(f, &a) != 0 || !S_ISREG(a.st_mode)) {
            close(f);
            return hb_err_set(HB_ECANTCREAT, path, "the lock file of %s is %s", what, hb_file_kind(a.st_mode));
        }
        char holder[1400];
        if (flock(f, LOCK_EX | LOCK_NB) != 0) {
            if (hb_claim_holder(f, holder, sizeof holder, NULL, NULL, 0) != 0) snprintf(holder, sizeof holder, "?");
            close(f);
            return hb_err_set(HB_ECANTCREAT, path, "%s is in use by another run (%s)", what, holder);
        }
        if (lstat(path, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
            close(f);
            continue;
        }
        if (hb_claim_holder(f, holder, sizeof holder, NULL, NULL, 0) == 0)
            hb_warn("%s: taking over the claim on %s that a run which is gone left (%s)", path, what, holder);
        char host[256] = "?", rd[4200] = "", line[4600];
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        for (char *h = host; *h; h++)
            if (*h == ' ' || *h == '\n') *h = '_';
        char *abs = run_dir ? realpath(run_dir, NULL) : NULL;
        snprintf(rd, sizeof rd, "%s", abs ? abs : run_dir ? run_dir : "-");
        free(abs);
        rd[strcspn(rd, "\n")] = '\0';
        int n = snprintf(line, sizeof line, "%ld %s %s\n", (long)getpid(), host, rd);
        if (n < 0 || (size_t)n >= sizeof line) n = (int)strlen(line);
        if (ftruncate(f, 0) != 0 || pwrite(f, line, (size_t)n, 0) != n) {
            close(f);
            return hb_err_set(HB_ECANTCREAT, path, "cannot write the lock file of %s: %s", what, strerror(errno));
        }
        *fd = f;
        return 0;
    }
    return hb_err_set(HB_ECANTCREAT, path, "cannot take the lock file of %s: it keeps being replaced", what);
}

void hb_claim_release(const char *path, int fd, int remove)
{
    if (fd < 0) return;
    if (remove) unlink(path);
    else if (ftruncate(fd, 0) != 0) hb_warn("%s: cannot empty the lock file", path);
    close(fd);
}
