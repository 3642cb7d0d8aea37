/* Unit tests of the start-up and commit costs' fixes (src/mpienv.c, src/core/commit.c):
 * the Nagle switch on loopback TCP sockets and nothing else. Expected values come from
 * the kernel (getsockopt on the sockets the test made itself). */
#include "unit.h"

#include "mpienv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

void unit_startup(const char *dir)
{
    (void)dir;
    test_nodelay();
}
