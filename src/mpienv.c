/* The MPI library's transport choice before MPI_Init (see mpienv.h and README "Start-up
 * cost"). Open MPI's default PML, when it has a choice, first tries the matching
 * transports (MTLs) for Intel Omni-Path and TrueScale (psm2, psm) and libfabric (ofi):
 * on a host without that hardware each one still loads its library and probes for
 * devices, psm and psm2 with a sleep loop of about 0.1 s each and libfabric with a scan
 * of every provider, and then Open MPI falls back to ob1 anyway. That was 0.2-0.6 s of
 * every command's start, most of a small job's time. After MPI_Init, the PMIx
 * connection's Nagle delay (mpienv.h): another 40 ms of every command's end. A plain
 * process is made an isolated singleton with a session folder of its own (mpienv.h). */
#include "mpienv.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <glob.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Not collective. Whether the host has a device that an MTL or a fast BTL would drive:
 * Omni-Path (hfi1), TrueScale (ipath, qib), any RDMA device (InfiniBand, RoCE, iWARP,
 * EFA), HPE Slingshot (cxi). */
static int has_fabric(void)
{
    static const char *const patterns[] = {"/dev/hfi1*", "/dev/ipath*", "/dev/infiniband/*", "/sys/class/infiniband/*",
                                           "/sys/class/cxi/*", "/dev/cxi*", NULL};
    for (const char *const *p = patterns; *p; p++) {
        glob_t g;
        int found = glob(*p, GLOB_NOSORT, NULL, &g) == 0 && g.gl_pathc > 0;
        globfree(&g);
        if (found) return 1;
    }
    return 0;
}

/* Not collective. Whether the Open MPI parameter file at path chooses the transport: a
 * pml or mtl line that selects components, or a pml exclusion that names ob1. An
 * exclusion of other components (Debian's own file has "pml = ^ucx" and "mtl = ^ofi")
 * is no choice, and ob1 keeps to it. */
static int file_chooses(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int chooses = 0;
    while (!chooses && fgets(line, sizeof line, f)) {
        const char *s = line + strspn(line, " \t");
        int pml = strncmp(s, "pml", 3) == 0, mtl = strncmp(s, "mtl", 3) == 0;
        if (!pml && !mtl) continue;
        s += 3 + strspn(s + 3, " \t");
        if (*s != '=') continue; /* another parameter, such as pml_ob1_priority */
        s += 1 + strspn(s + 1, " \t");
        chooses = *s != '^' || (pml && strstr(s, "ob1"));
    }
    fclose(f);
    return chooses;
}

static int defaults_off(void)
{
    const char *v = getenv("H5BATCH_MPI_DEFAULTS");
    return v && strcmp(v, "0") == 0;
}

/* The private session folder of an isolated singleton (hb_mpi_env_defaults), "" when none. */
static char session_base[4096];

/* Not collective. Whether a launcher started this process: mpirun (OMPI_COMM_WORLD_SIZE),
 * a PMIx server such as srun --mpi=pmix (PMIX_RANK), or a PMI-2 one (PMI_RANK, PMI_FD).
 * Otherwise MPI_Init makes it a singleton. */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_FD", NULL};
    for (const char *const *v = vars; *v; v++)
        if (getenv(*v)) return 1;
    return 0;
}

/* Not collective. A plain process: an isolated singleton (no orted) whose Open MPI
 * session folder is a fresh one of its own, unless the environment chooses either. The
 * default singleton forks an orted and talks to it from a progress thread, which at
 * MPI_Finalize can still run an event of a component already unloaded: the command, its
 * work done, died of SIGSEGV (exit 139; 11 of 1,200 short failing commands, four side by
 * side at load 6-9; none of 800 so). Isolated singletons all name their session folder
 * jf.0 under one base (/tmp/ompi.HOST.UID), and the first to finish removes it under
 * the others; each gets its own base instead, in $TMPDIR or /tmp as Open MPI's would
 * be, removed after MPI_Finalize (hb_mpi_env_cleanup). Where no folder can be made, the
 * default singleton runs as before. */
static void singleton_defaults(void)
{
    if (launched() || getenv("OMPI_MCA_ess_singleton_isolated") || getenv("OMPI_MCA_orte_tmpdir_base")) return;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    char path[sizeof session_base];
    if (snprintf(path, sizeof path, "%s/h5batch-mpi.XXXXXX", tmp) >= (int)sizeof path || !mkdtemp(path)) return;
    memcpy(session_base, path, sizeof path);
    setenv("OMPI_MCA_orte_tmpdir_base", session_base, 1);
    setenv("OMPI_MCA_ess_singleton_isolated", "1", 1);
}

/* nftw's visit: removes one file or (emptied) folder. */
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void hb_mpi_env_cleanup(void)
{
    if (!session_base[0]) return;
    /* bottom up, without following links: only what Open MPI left in the folder made for it */
    nftw(session_base, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    session_base[0] = '\0';
}

/* Not collective. Without a fabric, Open MPI's topology discovery (each rank's own when
 * mpirun binds nothing) needs no I/O devices: hwloc's Linux I/O component reads every
 * PCI device's config space, slow in a virtual machine, and its PCI, OpenCL, GL and
 * libxml2 plugins load about 20 shared libraries at the first topology. Without both,
 * MPI_Init took 20 ms of CPU per rank instead of 34 (medians of 12, 2 ranks, mpirun
 * --bind-to none). The user's choice of hwloc components or plugins wins. */
static void hwloc_defaults(int fabric)
{
    if (fabric) return;
    if (!getenv("HWLOC_COMPONENTS")) setenv("HWLOC_COMPONENTS", "-linuxio", 0);
    if (!getenv("HWLOC_PLUGINS_BLACKLIST"))
        setenv("HWLOC_PLUGINS_BLACKLIST", "hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_xml_libxml", 0);
}

void hb_mpi_env_defaults(void)
{
    if (defaults_off()) return;
    singleton_defaults();
    const int fabric = has_fabric();
    hwloc_defaults(fabric);
    /* the user's (or mpirun --mca's, or the site's) choice wins */
    if (getenv("OMPI_MCA_pml") || getenv("OMPI_MCA_mtl") || getenv("OMPI_MCA_param_files")) return;
    char user[4096];
    const char *home = getenv("HOME");
    if (home && snprintf(user, sizeof user, "%s/.openmpi/mca-params.conf", home) < (int)sizeof user &&
        file_chooses(user))
        return;
    if (file_chooses("/etc/openmpi/openmpi-mca-params.conf")) return;
    if (fabric) return;
    setenv("OMPI_MCA_pml", "ob1", 0); /* shared memory and TCP: what Open MPI ends up with here anyway */
}

/* Not collective. Whether fd is a TCP socket connected to this host (a loopback address). */
static int loopback_tcp(int fd)
{
    int type, proto;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return 0;
    len = sizeof proto;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0 || proto != IPPROTO_TCP) return 0;
    struct sockaddr_storage peer;
    len = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0) return 0;
    if (peer.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&peer)->sin_addr.s_addr) >> 24) == 127;
    if (peer.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&peer)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

int hb_mpi_env_after_init(void)
{
    if (defaults_off()) return 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    int n = 0;
    const int self = dirfd(d), one = 1;
    for (struct dirent *e; (e = readdir(d));) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == self || !loopback_tcp((int)fd)) continue;
        n += setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
    }
    closedir(d);
    return n;
}
