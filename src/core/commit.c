/* Files made safely: folders, the writability check and the atomic commit (temporary
 * name, fsync, rename, fsync of the folder) that outputs use. */
#include "core/commit.h"

#include "core/fault.h"
#include "core/hb.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
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

int hb_commit(const char *tmp, const char *path, int ok)
{
    int rc = hb_agree(ok);
    if (hb_rank == 0) {
        if (rc == 0) {
            /* the data is on disk before the name says it is complete */
            int fd = open(tmp, O_RDONLY);
            if (fd < 0 || fsync(fd) != 0 || hb_fault_write("output", "commit") || rename(tmp, path) != 0 ||
                hb_fsync_dir(path) != 0)
                rc = hb_err_set(HB_ECANTCREAT, path, "cannot commit output: %s", strerror(errno));
            if (fd >= 0) close(fd);
        }
        if (rc != 0) unlink(tmp);
    }
    return hb_agree(rc);
}

int hb_mkdir_p(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

int hb_output_check(const char *path, int force)
{
    struct stat sb;
    int rc = 0;
    if (hb_rank == 0 && !force && stat(path, &sb) == 0)
        rc = hb_err_set(HB_ECANTCREAT, path, "file exists; use --force to replace it");
    if (hb_rank == 0 && rc == 0) rc = hb_check_writable(path);
    return hb_agree(rc);
}
