/* Checkpoint files, the manifest, validation and restore. */
#include "ckpt.h"

#include "io/io.h"
#include "core/fault.h"
#include "core/hb.h"
#include "core/commit.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MANIFEST "manifest"
#define KEEP 2 /* checkpoints kept per step: the newest and the one before */
#define MAX_ENTRIES 256

typedef struct entry {
    char step[128], file[256], fingerprint[64];
    int64_t seq;
    uint64_t size, hash;
} entry;

static int hash_file(const char *path, uint64_t *size, uint64_t *hash)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    static char buf[1 << 20];
    ssize_t n;
    uint64_t total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        XXH64_update(h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);
    *hash = XXH64_digest(h);
    *size = total;
    XXH64_freeState(h);
    return n < 0 ? -1 : 0;
}

/* A step name as the job file allows it (src/job.c): letters, digits, '_', '-', '.'. */
static int step_name_ok(const char *s)
{
    if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
    return 1;
}

/* True when file is ckpt-STEP-NNNNNN.h5 (six or more digits) for this step. */
static int ckpt_name_ok(const char *file, const char *step)
{
    size_t ls = strlen(step);
    if (!step_name_ok(step) || strncmp(file, "ckpt-", 5) != 0 || strncmp(file + 5, step, ls) != 0 ||
        file[5 + ls] != '-')
        return 0;
    const char *d = file + 6 + ls;
    size_t nd = strspn(d, "0123456789");
    return nd >= 6 && strcmp(d + nd, ".h5") == 0;
}

/* Reads the manifest; a missing one is empty, an unreadable line ends it. */
static int read_manifest(const char *dir, entry *e, int max)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/" MANIFEST, dir);
    /* O_NONBLOCK and fstat: a FIFO planted at the name is refused, never waited on */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) return 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        hb_warn("%s is not a regular file; ignoring it", path);
        close(fd);
        return 0;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) return close(fd), 0;
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        unsigned long long size, hash;
        long long seq;
        if (line[0] == '#') continue;
        if (sscanf(line, "%127s %lld %255s %llu %llx %63s", e[n].step, &seq, e[n].file, &size, &hash,
                   e[n].fingerprint) != 6) {
            hb_warn("%s: unreadable line '%.60s'; ignoring the rest", path, line);
            break;
        }
        /* only a checkpoint file of the run directory itself, named as hb_ckpt_write names
         * them: never restore from, nor delete, another */
        if (!ckpt_name_ok(e[n].file, e[n].step)) {
            hb_warn("%s: line names '%s', not a checkpoint file of step '%s' in the run directory; ignoring it", path,
                    e[n].file, e[n].step);
            continue;
        }
        e[n].seq = seq, e[n].size = size, e[n].hash = hash;
        n++;
    }
    fclose(f);
    return n;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Replaces the manifest atomically: a unique temporary, fsync, rename, fsync of the
 * directory (hb_write_atomic). */
static int write_manifest(const char *dir, const entry *e, int n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/" MANIFEST, dir);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int why = ENOMEM;
    if (f) {
        fprintf(f, "# h5batch checkpoints: step seq file bytes xxh64 fingerprint\n");
        for (int i = 0; i < n; i++)
            fprintf(f, "%s %lld %s %llu %016llx %s\n", e[i].step, (long long)e[i].seq, e[i].file,
                    (unsigned long long)e[i].size, (unsigned long long)e[i].hash, e[i].fingerprint);
        int bad = ferror(f);
        if (fclose(f) == 0 && !bad) {
            if (hb_fault_write("checkpoint", "commit")) why = EIO;
            else if (hb_write_atomic(path, buf, len, NULL) == 0) return free(buf), 0;
            else why = errno;
        }
    }
    free(buf);
    return hb_err_set(HB_EIO, path, "cannot write the checkpoint manifest: %s", strerror(why));
}

int hb_ckpt_write(const hb_ckpt_id *id, int64_t seq, int restarts, const uint8_t *ledger, int64_t n_chunks,
                  const void *blob, size_t len, uint64_t *bytes, char *name, size_t name_len)
{
    char file[256], path[4200], tmp[4300] = "";
    snprintf(file, sizeof file, "ckpt-%s-%06lld.h5", id->step, (long long)seq);
    snprintf(path, sizeof path, "%s/%s", id->run_dir, file);
    snprintf(name, name_len, "%s", file);

    /* where each rank's part goes */
    uint64_t mine = len, *sizes = hb_calloc((size_t)hb_size, sizeof *sizes);
    hb_fault_hold("H5BATCH_FAULT_HOLD_CHECKPOINT", (long)seq); /* the others wait in the agreement */
    int rc = hb_agree(sizes ? 0 : HB_EINTERNAL);
    if (rc != 0) return free(sizes), rc;
    MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    uint64_t off = 0, total = 0;
    for (int r = 0; r < hb_size; r++) {
        if (r < hb_rank) off += sizes[r];
        total += sizes[r];
    }
    hb_out *out = NULL;
    /* a unique name rank 0 creates (O_EXCL|O_NOFOLLOW): never a link planted in its place */
    rc = hb_tmp_create(path, tmp, sizeof tmp);
    if (rc == 0) rc = hb_out_create_for(tmp, "checkpoint", &out);
    const uint64_t dl[1] = {(uint64_t)n_chunks}, ds[1] = {(uint64_t)hb_size}, db[1] = {total};
    if (rc == 0)
        rc = hb_out_write(out, "/ledger", HB_U8, 1, dl, 0, hb_rank == 0 ? dl[0] : 0, ledger, "1",
                          "1 where the chunk is finished and its results are in the saved state");
    if (rc == 0)
        rc = hb_out_write(out, "/sizes", HB_U64, 1, ds, (uint64_t)hb_rank, 1, &sizes[hb_rank], "bytes",
                          "bytes of each rank's saved state in /state");
    if (rc == 0) hb_fault_point("H5BATCH_FAULT_KILL_IN_CHECKPOINT", (long)seq);
    if (rc == 0)
        rc = hb_out_write(out, "/state", HB_U8, 1, db, off, len, blob, NULL, "each rank's saved kernel state");
    if (rc == 0) rc = hb_out_attr_str(out, "/", "fingerprint", id->fingerprint);
    if (rc == 0) rc = hb_out_attr_str(out, "/", "step", id->step);
    if (rc == 0) rc = hb_out_attr_i64(out, "/", "seq", seq);
    if (rc == 0) rc = hb_out_attr_i64(out, "/", "restarts", restarts);
    if (out) {
        int crc = hb_out_close(out);
        if (rc == 0) rc = crc;
    }
    free(sizes);
    /* the hb_out calls agreed: every rank wrote its part, or every rank knows one did not */
    if (hb_rank == 0) {
        entry e[MAX_ENTRIES + 1];
        int n = rc == 0 ? read_manifest(id->run_dir, e, MAX_ENTRIES) : 0;
        uint64_t size = 0, hash = 0;
        if (rc == 0 && (fsync_path(tmp, 0) != 0 || hash_file(tmp, &size, &hash) != 0 ||
                        hb_fault_write("checkpoint", "commit") || rename(tmp, path) != 0 ||
                        fsync_path(id->run_dir, 1) != 0))
            rc = hb_err_set(HB_EIO, path, "cannot commit checkpoint: %s", strerror(errno));
        if (rc == 0) {
            entry *ne = &e[n++];
            snprintf(ne->step, sizeof ne->step, "%s", id->step);
            snprintf(ne->file, sizeof ne->file, "%s", file);
            snprintf(ne->fingerprint, sizeof ne->fingerprint, "%s", id->fingerprint);
            ne->seq = seq, ne->size = size, ne->hash = hash;
            /* keep this step's newest KEEP; the older ones go only after the manifest says so */
            int mine = 0, m = 0, nd = 0;
            for (int i = 0; i < n; i++) mine += strcmp(e[i].step, id->step) == 0;
            entry drop[MAX_ENTRIES];
            for (int i = 0; i < n; i++) {
                if (strcmp(e[i].step, id->step) == 0 && mine-- > KEEP) drop[nd++] = e[i];
                else e[m++] = e[i];
            }
            rc = write_manifest(id->run_dir, e, m);
            for (int i = 0; rc == 0 && i < nd; i++) {
                char old[4200];
                snprintf(old, sizeof old, "%s/%s", id->run_dir, drop[i].file);
                unlink(old);
            }
            if (rc != 0) unlink(path); /* not in the manifest: it would never count, nor go */
            *bytes = size;
        }
        if (rc != 0 && *tmp) unlink(tmp);
    }
    MPI_Bcast(bytes, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    return hb_agree(rc);
}

/* Rank 0: 0 when the checkpoint e is intact and of this step's job, 1 when damaged
 * (why says how), 78 when it belongs to another job. */
static int validate(const hb_ckpt_id *id, const entry *e, char *why, size_t len)
{
    char path[4200], fp[64];
    snprintf(path, sizeof path, "%s/%s", id->run_dir, e->file);
    if (strcmp(e->fingerprint, id->fingerprint) != 0)
        return hb_err_set(HB_ECONFIG, id->run_dir,
                          "holds a checkpoint of a different job (the job file, its options or the input of step "
                          "'%s' changed since %s was written); rerun with --fresh to discard it",
                          id->step, e->file);
    struct stat sb;
    uint64_t size, hash;
    if (lstat(path, &sb) != 0) return snprintf(why, len, "missing"), 1;
    if (!S_ISREG(sb.st_mode)) return snprintf(why, len, "%s", hb_file_kind(sb.st_mode)), 1;
    if ((uint64_t)sb.st_size != e->size)
        return snprintf(why, len, "%lld bytes, the manifest says %llu", (long long)sb.st_size,
                        (unsigned long long)e->size),
               1;
    if (hash_file(path, &size, &hash) != 0 || hash != e->hash) return snprintf(why, len, "checksum mismatch"), 1;
    hb_in *in = NULL;
    if (hb_in_open(path, &in) != 0) {
        hb_err_clear();
        return snprintf(why, len, "not a readable HDF5 file"), 1;
    }
    int bad = hb_in_attr_str(in, "/", "fingerprint", fp, sizeof fp) != 0 || strcmp(fp, id->fingerprint) != 0;
    hb_in_close(in);
    if (bad) return snprintf(why, len, "its fingerprint does not match its manifest line"), 1;
    return 0;
}

/* Not collective. The parts' sizes are checked against /state before anything is
 * allocated from them: none negative, and their sum within /state's length (65). */
static int check_sizes(hb_in *in, const char *path, const int64_t *sizes, int64_t parts)
{
    hb_dset *d = NULL;
    hb_dset_info info;
    HB_CALL(hb_dset_open(in, "/state", &d, &info));
    hb_dset_close(d);
    int64_t sum = 0;
    for (int64_t p = 0; p < parts; p++) {
        if (sizes[p] < 0 || sizes[p] > info.n - sum)
            return hb_err_set(HB_EDATA, path, "/sizes[%lld] = %lld does not fit the %lld bytes of /state", (long long)p,
                              (long long)sizes[p], (long long)info.n);
        sum += sizes[p];
    }
    return 0;
}

int hb_ckpt_restore(const hb_ckpt_id *id, uint8_t *ledger, int64_t n_chunks, int64_t *seq, int *restarts,
                    int (*load)(void *user, const void *blob, size_t len), void *user, int *found, char *name,
                    size_t name_len)
{
    *found = 0;
    char chosen[256] = "";
    int rc = 0;
    if (hb_rank == 0) {
        entry e[MAX_ENTRIES];
        int n = read_manifest(id->run_dir, e, MAX_ENTRIES), damaged = 0;
        for (int i = n - 1; i >= 0 && rc == 0 && !*chosen; i--) {
            if (strcmp(e[i].step, id->step) != 0) continue;
            char why[256];
            int v = validate(id, &e[i], why, sizeof why);
            if (v == 1) {
                hb_warn("checkpoint %s/%s is damaged (%s); trying the one before", id->run_dir, e[i].file, why);
                damaged++;
            } else if (v == 0) {
                snprintf(chosen, sizeof chosen, "%s", e[i].file);
            } else {
                rc = v;
            }
        }
        if (rc == 0 && !*chosen && damaged)
            hb_warn("no intact checkpoint of step '%s' in %s: starting the step from the beginning", id->step,
                    id->run_dir);
    }
    HB_CALL(hb_agree(rc));
    MPI_Bcast(chosen, sizeof chosen, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!*chosen) return 0;

    char path[4200];
    snprintf(path, sizeof path, "%s/%s", id->run_dir, chosen);
    hb_in *in = NULL;
    int64_t parts = 0, *sizes = NULL, sq = 0, rs = 0;
    rc = hb_in_open(path, &in);
    if (rc == 0) rc = hb_in_read_raw(in, "/ledger", HB_U8, 0, n_chunks, ledger);
    if (rc == 0) rc = hb_in_attr_range(in, "/", "seq", 0, INT64_MAX, &sq);
    if (rc == 0) rc = hb_in_attr_range(in, "/", "restarts", 0, INT32_MAX, &rs);
    /* one part per rank that wrote it: part p is loaded by rank p mod size */
    if (rc == 0) rc = hb_in_read_array(in, "/sizes", HB_I64, &parts, (void **)&sizes);
    if (rc == 0) rc = check_sizes(in, path, sizes, parts);
    int64_t off = 0;
    for (int64_t p = 0; rc == 0 && p < parts; p++) {
        if (p % hb_size == hb_rank) {
            void *blob = hb_malloc(sizes[p] ? (size_t)sizes[p] : 1);
            rc = blob ? hb_in_read_raw(in, "/state", HB_U8, off, sizes[p], blob) : HB_EINTERNAL;
            if (rc == 0) rc = load(user, blob, (size_t)sizes[p]);
            free(blob);
        }
        off += sizes[p];
    }
    free(sizes);
    hb_in_close(in);
    HB_CALL(hb_agree(rc));
    *seq = sq;
    *restarts = (int)rs;
    *found = 1;
    snprintf(name, name_len, "%s", chosen);
    return 0;
}

/* True when name is what a checkpoint write of step (of any step when NULL) leaves when
 * it is killed: the unique temporary of ckpt-STEP-N.h5 (hb_tmp_open; the fixed .h5.tmp of
 * older versions), or a lock file MPI-IO made beside that temporary (*.lock). */
static int stale_temp(const char *name, const char *step)
{
    const char *h5 = strncmp(name, "ckpt-", 5) == 0 ? strstr(name, ".h5.") : NULL;
    if (!h5 || h5 - name >= 256) return 0;
    char base[256], st[256];
    snprintf(base, sizeof base, "%.*s", (int)(h5 + 3 - name), name);
    const char *dash = strrchr(base, '-');
    if (!dash || dash - base <= 5) return 0;
    snprintf(st, sizeof st, "%.*s", (int)(dash - base - 5), base + 5);
    if (!ckpt_name_ok(base, st) || (step && strcmp(st, step) != 0)) return 0;
    size_t n = strlen(name);
    return strcmp(h5 + 3, ".tmp") == 0 || hb_tmp_name_of(name, base) || (n > 5 && strcmp(name + n - 5, ".lock") == 0);
}

/* Removes the temporary files of checkpoint writes that a killed run left behind (of
 * every step when step is NULL): they are ours, and no manifest line names them. */
static void remove_stale_temps(const char *run_dir, const char *step)
{
    DIR *d = opendir(run_dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));) {
        if (!stale_temp(de->d_name, step)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", run_dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

int hb_ckpt_remove(const char *run_dir, const char *step)
{
    remove_stale_temps(run_dir, step);
    entry e[MAX_ENTRIES];
    int n = read_manifest(run_dir, e, MAX_ENTRIES), m = 0;
    for (int i = 0; i < n; i++) {
        if (step && strcmp(e[i].step, step) != 0) {
            e[m++] = e[i];
            continue;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", run_dir, e[i].file);
        unlink(path);
    }
    return n == m ? 0 : write_manifest(run_dir, e, m);
}
