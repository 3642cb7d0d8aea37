/* Unit tests of the start-up and commit costs' fixes (src/mpienv.c, src/core/commit.c):
 * the Nagle switch on loopback TCP sockets and nothing else; the commit that replaces an
 * output through a second name removed on a thread, and the report write without the
 * folder's fsync. Expected values come from the kernel (getsockopt on the sockets the
 * test made itself; link counts, file contents and folder listings by stat and readdir).
 * Starts MPI as a singleton when it is not (hb_commit agrees); unit_ckpt ends it. */
#include "unit.h"

#include "core/commit.h"
#include "core/hb.h"
#include "mpienv.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <mpi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int nodelay(int fd)
{
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) != 0) return -1;
    return v != 0;
}

/* A listening socket on 127.0.0.1 (any port), a client connected to it and the accepted
 * end; 0 on success. */
static int loopback_pair(int *lst, int *cli, int *srv)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    *lst = socket(AF_INET, SOCK_STREAM, 0);
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    *srv = -1;
    if (*lst < 0 || *cli < 0 || bind(*lst, (struct sockaddr *)&a, sizeof a) != 0 || listen(*lst, 1) != 0 ||
        getsockname(*lst, (struct sockaddr *)&a, &len) != 0 || connect(*cli, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    *srv = accept(*lst, NULL, NULL);
    return *srv < 0 ? -1 : 0;
}

/* Loopback TCP connections get TCP_NODELAY (both ends: each is a process's connection to
 * this host); a listening socket, a UDP socket and a Unix socket pair are left as they
 * were; H5BATCH_MPI_DEFAULTS=0 leaves every socket alone. */
static void test_nodelay(void)
{
    int lst, cli, srv, udp = socket(AF_INET, SOCK_DGRAM, 0), ux[2] = {-1, -1};
    if (!CHECK(loopback_pair(&lst, &cli, &srv) == 0) || !CHECK(udp >= 0) ||
        !CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, ux) == 0))
        goto out;
    CHECK(nodelay(cli) == 0 && nodelay(srv) == 0); /* Linux's default: Nagle on */
    setenv("H5BATCH_MPI_DEFAULTS", "0", 1);
    CHECK(hb_mpi_env_after_init() == 0);
    CHECK(nodelay(cli) == 0 && nodelay(srv) == 0);
    unsetenv("H5BATCH_MPI_DEFAULTS");
    int n = hb_mpi_env_after_init();
    CHECKF(n >= 2, "%d sockets set", n);
    CHECK(nodelay(cli) == 1 && nodelay(srv) == 1);
    CHECK(nodelay(lst) == 0); /* not connected: no peer */
out:
    for (int fd = 0; fd < 2; fd++)
        if (ux[fd] >= 0) close(ux[fd]);
    if (udp >= 0) close(udp);
    if (lst >= 0) close(lst);
    if (cli >= 0) close(cli);
    if (srv >= 0) close(srv);
}

/* Writes text to path (a new file); 0 on success. */
static int put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int bad = fputs(text, f) < 0;
    return fclose(f) != 0 || bad ? -1 : 0;
}

/* 1 when path holds exactly text. */
static int holds(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

/* The number of entries of dir besides . and .. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* hb_commit to a new name, over an existing output (whose inode is gone once
 * hb_commit_drain returns, and no second name is left), and with a failed status (the
 * old output stays, the temporary goes); hb_write_report replaces a file whole. */
static void test_commit(const char *dir)
{
    char d[512], out[600], tmp[700];
    snprintf(d, sizeof d, "%s/commit", dir);
    snprintf(out, sizeof out, "%s/out.h5", d);
    if (!CHECK(mkdir(d, 0700) == 0)) return;
    int fd = hb_tmp_open(out, tmp, sizeof tmp);
    CHECK(fd >= 0 && write(fd, "first", 5) == 5);
    if (fd >= 0) close(fd);
    CHECK(hb_commit(tmp, out, 0) == 0);
    hb_commit_drain();
    CHECK(holds(out, "first") && access(tmp, F_OK) != 0 && entries(d) == 1);

    int old = open(out, O_RDONLY); /* the replaced inode, watched through a descriptor */
    fd = hb_tmp_open(out, tmp, sizeof tmp);
    CHECK(old >= 0 && fd >= 0 && write(fd, "second", 6) == 6);
    if (fd >= 0) close(fd);
    CHECK(hb_commit(tmp, out, 0) == 0);
    CHECK(holds(out, "second") && access(tmp, F_OK) != 0);
    hb_commit_drain();
    struct stat sb;
    CHECK(old >= 0 && fstat(old, &sb) == 0 && sb.st_nlink == 0);
    CHECK(entries(d) == 1);
    if (old >= 0) close(old);

    fd = hb_tmp_open(out, tmp, sizeof tmp);
    CHECK(fd >= 0 && write(fd, "third", 5) == 5);
    if (fd >= 0) close(fd);
    CHECK(hb_commit(tmp, out, HB_EIO) == HB_EIO);
    hb_commit_drain();
    CHECK(holds(out, "second") && entries(d) == 1);
    hb_err_clear();

    char rep[600];
    snprintf(rep, sizeof rep, "%s/status.json", d);
    CHECK(put(rep, "old") == 0);
    CHECK(hb_write_report(rep, "{\"state\": \"complete\"}\n", 22, NULL) == 0);
    CHECK(holds(rep, "{\"state\": \"complete\"}\n") && entries(d) == 2);
    unlink(rep);
    unlink(out);
    rmdir(d);
}

void unit_startup(const char *dir)
{
    unit_mpi_start();
    test_nodelay();
    test_commit(dir);
}
