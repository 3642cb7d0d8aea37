/* Unit tests of checkpoints and their manifest (src/ckpt.h, DESIGN.md 5), through the
 * public functions at one rank (MPI started as a singleton): write and restore, only the
 * two newest kept, a damaged newest falling back to the one before, a checkpoint of
 * another job refused, a manifest line naming a file outside the run directory neither
 * restored nor deleted, and removal. Expected states are the blobs the test wrote. */
#include "unit.h"

#include "ckpt.h"
#include "core/hb.h"
#include "io/io.h"

#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What restore handed to load: the blob of the one saved part. */
typedef struct loaded {
    int calls;
    char blob[64];
    size_t len;
} loaded;

static int load(void *user, const void *blob, size_t len)
{
    loaded *l = user;
    l->calls++;
    l->len = len;
    if (len < sizeof l->blob) memcpy(l->blob, blob, len);
    return 0;
}

static int exists(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* The number of manifest lines (comments aside) that contain part. */
static int manifest_lines(const char *dir, const char *part)
{
    char p[1024], line[1024];
    snprintf(p, sizeof p, "%s/manifest", dir);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (line[0] != '#' && strstr(line, part)) n++;
    fclose(f);
    return n;
}

/* Writes checkpoint seq of id with blob "state-<seq>" and a ledger of n chunks. */
static int write_seq(const hb_ckpt_id *id, int64_t seq, int restarts, int n)
{
    uint8_t ledger[16];
    char blob[32], name[256];
    for (int i = 0; i < n; i++) ledger[i] = (uint8_t)(i < seq);
    int len = snprintf(blob, sizeof blob, "state-%lld", (long long)seq);
    uint64_t bytes = 0;
    int rc = hb_ckpt_write(id, seq, restarts, ledger, n, blob, (size_t)len, &bytes, name, sizeof name);
    char want[256];
    snprintf(want, sizeof want, "ckpt-%s-%06lld.h5", id->step, (long long)seq);
    CHECKF(rc != 0 || (strcmp(name, want) == 0 && bytes > 0), "checkpoint %lld named '%s', %llu bytes", (long long)seq,
           name, (unsigned long long)bytes);
    return rc;
}

/* Restores id: rc, and what was found. */
static int restore(const hb_ckpt_id *id, int n, int64_t *seq, loaded *l, int *found, uint8_t *ledger)
{
    int restarts = -1;
    char name[256];
    memset(l, 0, sizeof *l);
    *seq = -1;
    int rc = hb_ckpt_restore(id, ledger, n, seq, &restarts, load, l, found, name, sizeof name);
    hb_err_clear();
    return rc;
}

static void damage(const char *dir, const char *file, int how)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (how == 0) {
        CHECK(truncate(p, 1000) == 0);
    } else {
        int fd = open(p, O_WRONLY);
        CHECK(fd >= 0 && pwrite(fd, "XXXXXXXX", 8, 3000) == 8);
        if (fd >= 0) close(fd);
    }
}

static void test_write_restore(const char *dir)
{
    hb_ckpt_id id = {.run_dir = dir, .step = "aggregate", .fingerprint = "f00d"};
    uint8_t ledger[10];
    int64_t seq;
    int found;
    loaded l;
    /* nothing there yet */
    CHECK(restore(&id, 10, &seq, &l, &found, ledger) == 0 && !found && l.calls == 0);
    CHECK(write_seq(&id, 1, 0, 10) == 0);
    CHECK(restore(&id, 10, &seq, &l, &found, ledger) == 0 && found);
    CHECK(seq == 1 && l.calls == 1 && l.len == 7 && memcmp(l.blob, "state-1", 7) == 0);
    CHECK(ledger[0] == 1 && ledger[1] == 0 && ledger[9] == 0);
    /* the two newest are kept; the older go once the manifest no longer names them */
    CHECK(write_seq(&id, 2, 1, 10) == 0);
    CHECK(write_seq(&id, 3, 1, 10) == 0);
    CHECK(!exists(dir, "ckpt-aggregate-000001.h5") && manifest_lines(dir, "ckpt-aggregate-000001") == 0);
    CHECK(exists(dir, "ckpt-aggregate-000002.h5") && exists(dir, "ckpt-aggregate-000003.h5"));
    CHECK(manifest_lines(dir, "aggregate ") == 2);
    CHECK(restore(&id, 10, &seq, &l, &found, ledger) == 0 && found && seq == 3 && memcmp(l.blob, "state-3", 7) == 0);
    CHECK(ledger[2] == 1 && ledger[3] == 0);
    /* no temporary left behind */
    CHECK(!exists(dir, "ckpt-aggregate-000003.h5.tmp") && !exists(dir, "manifest.tmp"));

    /* a damaged newest falls back to the one before: truncated, then bytes flipped */
    for (int how = 0; how < 2; how++) {
        CHECK(write_seq(&id, 4 + 2 * how, 1, 10) == 0);
        CHECK(write_seq(&id, 5 + 2 * how, 1, 10) == 0);
        char newest[64];
        snprintf(newest, sizeof newest, "ckpt-aggregate-%06d.h5", 5 + 2 * how);
        damage(dir, newest, how);
        CHECKF(restore(&id, 10, &seq, &l, &found, ledger) == 0 && found && seq == 4 + 2 * how, "damage %d: seq %lld",
               how, (long long)seq);
        char want[16];
        snprintf(want, sizeof want, "state-%d", 4 + 2 * how);
        CHECKF(l.calls == 1 && memcmp(l.blob, want, 7) == 0, "damage %d: restored '%.*s'", how, (int)l.len, l.blob);
    }
    /* both damaged: nothing to restore, not an error */
    damage(dir, "ckpt-aggregate-000006.h5", 0);
    CHECK(restore(&id, 10, &seq, &l, &found, ledger) == 0 && !found && l.calls == 0);

    /* a checkpoint of another job is refused */
    CHECK(write_seq(&id, 8, 1, 10) == 0);
    hb_ckpt_id other = id;
    other.fingerprint = "beef";
    CHECK(restore(&other, 10, &seq, &l, &found, ledger) == HB_ECONFIG && l.calls == 0);

    /* removal: this step's files and lines go, another step's stay */
    hb_ckpt_id second = {.run_dir = dir, .step = "second", .fingerprint = "f00d"};
    CHECK(write_seq(&second, 1, 0, 4) == 0);
    CHECK(hb_ckpt_remove(dir, "aggregate") == 0);
    CHECK(!exists(dir, "ckpt-aggregate-000008.h5") && manifest_lines(dir, "aggregate ") == 0);
    CHECK(exists(dir, "ckpt-second-000001.h5") && manifest_lines(dir, "second ") == 1);
    CHECK(restore(&id, 10, &seq, &l, &found, ledger) == 0 && !found);
    CHECK(restore(&second, 4, &seq, &l, &found, ledger) == 0 && found && seq == 1);
    CHECK(hb_ckpt_remove(dir, NULL) == 0);
    CHECK(!exists(dir, "ckpt-second-000001.h5") && manifest_lines(dir, "ckpt-") == 0);
}

/* A manifest line naming ../x (a good checkpoint, outside the run directory) is not
 * restored from, and removing the step does not delete it. */
static void test_outside(const char *base)
{
    char dir[512], outside[600], inside[700], line[1024];
    snprintf(dir, sizeof dir, "%s/run", base);
    CHECK(mkdir(dir, 0700) == 0);
    hb_ckpt_id id = {.run_dir = dir, .step = "s", .fingerprint = "f00d"};
    CHECK(write_seq(&id, 1, 0, 4) == 0);
    CHECK(write_seq(&id, 2, 0, 4) == 0);
    /* move the newest out of the run directory, and name it by ../ in the manifest */
    snprintf(inside, sizeof inside, "%s/ckpt-s-000002.h5", dir);
    snprintf(outside, sizeof outside, "%s/x", base);
    CHECK(rename(inside, outside) == 0);
    char mpath[600], tmp[700];
    snprintf(mpath, sizeof mpath, "%s/manifest", dir);
    snprintf(tmp, sizeof tmp, "%s/manifest.new", dir);
    FILE *in = fopen(mpath, "r"), *out = fopen(tmp, "w");
    if (!CHECK(in && out)) return;
    while (fgets(line, sizeof line, in)) {
        char *p = strstr(line, "ckpt-s-000002.h5");
        if (p) {
            fprintf(out, "%.*s../x%s", (int)(p - line), line, p + strlen("ckpt-s-000002.h5"));
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    fclose(out);
    CHECK(rename(tmp, mpath) == 0);
    CHECK(manifest_lines(dir, " ../x ") == 1);

    uint8_t ledger[4];
    int64_t seq;
    int found;
    loaded l;
    int rc = restore(&id, 4, &seq, &l, &found, ledger);
    /* rejected (an error) or ignored (the checkpoint inside is restored): never the one outside */
    CHECKF(rc != 0 || !found || (seq == 1 && memcmp(l.blob, "state-1", 7) == 0),
           "restored seq %lld '%.*s' from a file outside the run directory", (long long)seq, (int)l.len, l.blob);
    hb_ckpt_remove(dir, "s");
    hb_err_clear();
    CHECK(access(outside, F_OK) == 0); /* removing the step's checkpoints left ../x alone */
    unlink(outside);
    hb_ckpt_remove(dir, NULL);
    hb_err_clear();
    unlink(mpath);
    rmdir(dir);
}

void unit_ckpt(const char *dir)
{
    unit_mpi_start();
    hb_io_init();
    char run[512];
    snprintf(run, sizeof run, "%s/ckpt.run", dir);
    if (!CHECK(mkdir(run, 0700) == 0)) return;
    test_write_restore(run);
    test_outside(dir);
    MPI_Finalize();
}
