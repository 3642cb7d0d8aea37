/* Outputs: one file created with MPI-IO, datasets written collectively (each rank its
 * own block where all run on one host), attributes, dimension scales and datasets held
 * open for independent writes.
 *
 * Every function documented Collective ends in finish(): rank 0 reserves the disk space
 * of everything the file has allocated so far, then all ranks agree on the status before
 * any of them makes its next collective call. A full disk thus shows as a plain error of
 * rank 0 (the reservation), never inside an HDF5 write, where one rank would fail and the
 * others would not, and the metadata HDF5 writes at close always has room, so that
 * every rank's close succeeds (HDF5 1.10 cannot recover a file whose close failed: it
 * crashes in MPI_Finalize, or the ranks part ways inside the close and hang). Once a call
 * has failed, the output is failed on every rank: later calls return that status without
 * touching the file, and hb_out_close closes every handle and the file; where no space
 * could be reserved it first empties the file, whose data's room then takes the
 * metadata. */
#include "internal.h"

#include "core/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct hb_out {
    hid_t file, dcpl, gcpl, dxpl;
    char *path;
    const char *what;  /* "output" or "checkpoint": for messages and fault injection */
    int failed;        /* the agreed status of the first call that failed; 0 while none has */
    int fd;            /* rank 0: the file, to reserve its space or empty it; -1 elsewhere */
    uint64_t reserved; /* rank 0: bytes from the start of the file the disk holds for it */
    uint64_t data_end; /* rank 0: the end of the data of the datasets created so far */
    uint64_t meta;     /* a bound on the metadata allocated so far (META_*) */
    int no_reserve;    /* rank 0: the file system cannot reserve space */
    int own_blocks;    /* every rank on this host: each writes its own block, independently */
    int dfd, bfd;      /* this rank's descriptors of the file for direct_write: -1 not yet opened, -2 not usable */
    uint64_t direct;   /* bytes this rank wrote so */
    void *bounce;      /* DIRECT_PIECE bytes on a DIRECT_ALIGN boundary, for direct_write */
};

/* A bound on the metadata HDF5 allocates (object headers, B-trees, local and global heaps),
 * many times what it takes (a few kB per output): a file's first part (superblock, root
 * group), then each object, each attribute or scale attachment and twice the bytes of
 * attribute values. What the finished file does not use goes back at close. */
enum { META_FILE = 64 << 10, META_OBJECT = 4 << 10, META_ATTR = 2 << 10 };

/* Rank 0: makes the disk hold the file's data and room for its metadata (without changing
 * its size), so that no later write into it, of data or of metadata at close, can fail
 * for want of room. HDF5 does not tell the end of what it allocated (H5Fget_filesize
 * fails once MPI-IO has written, H5Fget_eoa wants a SWMR driver): the end of the data
 * and the bound on the metadata stand for it. */
static int reserve(hb_out *o)
{
    if (o->fd < 0 || o->no_reserve) return 0;
    const uint64_t want = o->data_end + o->meta;
    if (want <= o->reserved) return 0;
    int e;
    do e = fallocate(o->fd, FALLOC_FL_KEEP_SIZE, (off_t)o->reserved, (off_t)(want - o->reserved));
    while (e != 0 && errno == EINTR);
    if (e == 0) {
        o->reserved = want;
        return 0;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS) { /* a full disk then shows in the writes */
        HB_DEBUG("%s: the file system reserves no space (%s)", o->path, strerror(errno));
        o->no_reserve = 1;
        return 0;
    }
    return hb_err_set(HB_EIO, o->path, "cannot reserve %.1f MB of disk space for the %s: %s", (double)want / 1e6,
                      o->what, strerror(errno));
}

/* Every Collective function ends here: reserves what the file has grown to, then returns
 * the status all ranks agree on; a failure marks the output failed on every rank. */
static int finish(hb_out *o, int rc)
{
    if (rc == 0 && hb_rank == 0) rc = reserve(o);
    rc = hb_agree(rc);
    if (rc != 0 && o->failed == 0) o->failed = rc;
    return rc;
}

/* A failed output takes no more calls: each returns the agreed status at once. */
#define OUT_LIVE(o)                                                                    \
    do {                                                                               \
        if ((o)->failed) return (o)->failed;                                           \
    } while (0)

/* Fault injection (core/fault.h) after the call named has run: the file is the same on
 * every rank and only this rank's status differs, as when a write fails on one rank. */
static int injected(hb_out *o, const char *kind, const char *name)
{
    if (!hb_fault_write(o->what, kind)) return 0;
    return hb_err_set(HB_EIO, o->path, "%s %s: injected write failure", kind, name);
}

/* Rank 0: gives back the disk space of a failed file (it is removed after close), so that
 * the metadata HDF5 writes at close finds room; not needed where the space is reserved. */
static void empty_file(hb_out *o)
{
    if (hb_rank != 0 || (o->reserved > 0 && !o->no_reserve)) return;
    if ((o->fd >= 0 ? ftruncate(o->fd, 0) : truncate(o->path, 0)) != 0)
        HB_DEBUG("%s: cannot empty the failed file: %s", o->path, strerror(errno));
}

/* Rank 0, after a good close: the reservation past the end of the closed file goes back. */
static void trim_reservation(hb_out *o)
{
    struct stat sb;
    if (o->fd >= 0 && o->reserved > 0 && fstat(o->fd, &sb) == 0 && (uint64_t)sb.st_size < o->reserved &&
        ftruncate(o->fd, sb.st_size) != 0)
        HB_DEBUG("%s: cannot trim the reserved space: %s", o->path, strerror(errno));
}

/* Files up to this size start their writeback after each write (start_writeback). */
#define WRITEBACK_MAX ((uint64_t)64 << 20)

/* Rank 0, after a write of data: starts the disk's writeback of what the file holds so
 * far (of every rank's writes on this host) without waiting for it, so that the fsync of
 * the commit (hb_commit) finds most of the data written while the ranks went on with
 * the next dataset, the attributes and the close. Only while the file is small (a 16 MB
 * output's fsync: 45 ms against 87): past WRITEBACK_MAX the writeback contends with the
 * writes that follow (ext4 converts the reserved extents as it goes: 672 MB written by
 * two ranks in 48 MB pieces took 1.2 s beside it, 0.36 s and a 0.2 s fsync without). */
static void start_writeback(const hb_out *o)
{
    if (o->fd >= 0 && o->data_end <= WRITEBACK_MAX) (void)sync_file_range(o->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* Closes every handle of o and frees it; an output that failed is emptied first, on rank
 * 0, before any rank closes (and so writes metadata). The status of this rank's close. */
static int close_out(hb_out *o)
{
    int rc = 0;
    if (o->failed) { /* agreed: every rank is here */
        if (o->file >= 0) empty_file(o);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (o->dcpl >= 0) H5Pclose(o->dcpl);
    if (o->gcpl >= 0) H5Pclose(o->gcpl);
    if (o->dxpl >= 0) H5Pclose(o->dxpl);
    if (o->file >= 0 && H5Fclose(o->file) < 0) rc = hb_err_set(HB_EIO, o->path, "closing the %s failed", o->what);
    if (rc == 0 && o->file >= 0 && !o->failed) rc = injected(o, "close", "of the file");
    if (rc == 0 && !o->failed && hb_rank == 0) trim_reservation(o);
    if (o->direct) HB_DEBUG("%s: %.1f MB of data written around the page cache", o->path, (double)o->direct / 1e6);
    if (o->fd >= 0) close(o->fd);
    if (o->dfd >= 0) close(o->dfd);
    if (o->bfd >= 0) close(o->bfd);
    free(o->bounce);
    free(o->path);
    free(o);
    return rc;
}

/* ---- outputs ---- */

/* Collective the first time. Whether every rank runs on this host: the ranks' writes
 * then meet in one page cache, and gathering them first to a few writers (MPI-IO's
 * collective buffering, meant for shared file systems across hosts) only adds an
 * exchange and a wait for the slowest rank to every dataset. */
static int one_host(void) { return hb_host_ranks() == hb_size; }

int hb_out_create(const char *path, hb_out **outp) { return hb_out_create_for(path, "output", outp); }

int hb_out_create_for(const char *path, const char *what, hb_out **outp)
{
    *outp = NULL;
    const int own_blocks = one_host(); /* before anything a rank can fail alone */
    hb_out *o = hb_calloc(1, sizeof *o);
    if (o) {
        o->file = o->dcpl = o->gcpl = o->dxpl = -1;
        o->fd = o->dfd = o->bfd = -1;
        o->own_blocks = own_blocks;
        o->meta = META_FILE;
        o->what = what;
        o->path = hb_strdup(path);
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE);
    int rc = o && o->path && fapl >= 0 && fcpl >= 0 ? 0 : HB_EINTERNAL;
    if (rc == 0 && (H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL) < 0 ||
                    H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0 ||
                    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
                    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0))
        rc = hb_err_set(HB_EINTERNAL, path, "cannot set up the file access properties");
    /* every rank or none creates the file */
    rc = hb_agree(rc);
    if (rc == 0) {
        o->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
        if (o->file < 0) rc = hb_err_set(HB_ECANTCREAT, path, "cannot create %s file", what);
    }
    if (fapl >= 0) H5Pclose(fapl);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (rc != 0 && (!o || o->file < 0)) { /* agreed before the file, or not created: nothing to close */
        if (o) free(o->path);
        free(o);
        if (hb_rank == 0) unlink(path); /* whatever a failed create left */
        return hb_agree(rc);
    }
    if (rc == 0) {
        o->dcpl = H5Pcreate(H5P_DATASET_CREATE);
        o->gcpl = H5Pcreate(H5P_GROUP_CREATE);
        o->dxpl = H5Pcreate(H5P_DATASET_XFER);
        /* no creation times and no fill: outputs stay bit-identical, and nothing is written
         * twice; groups keep the order their members were made in, which h5py, xarray and
         * export list them in (a step's keys and statistics as the job file names them) */
        if (o->dcpl < 0 || o->gcpl < 0 || o->dxpl < 0 || H5Pset_obj_track_times(o->dcpl, 0) < 0 ||
            H5Pset_fill_time(o->dcpl, H5D_FILL_TIME_NEVER) < 0 || H5Pset_alloc_time(o->dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
            H5Pset_obj_track_times(o->gcpl, 0) < 0 ||
            H5Pset_link_creation_order(o->gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
            H5Pset_dxpl_mpio(o->dxpl, own_blocks ? H5FD_MPIO_INDEPENDENT : H5FD_MPIO_COLLECTIVE) < 0)
            rc = hb_err_set(HB_EINTERNAL, path, "cannot set up the dataset properties");
    }
    if (rc == 0 && hb_rank == 0) {
        o->fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        o->no_reserve = o->fd < 0 || hb_fault_no_reserve();
    }
    if (rc == 0) rc = injected(o, "create", path);
    rc = finish(o, rc);
    if (rc != 0) {
        close_out(o);
        if (hb_rank == 0) unlink(path); /* nobody will commit it */
        return rc;
    }
    *outp = o;
    return 0;
}

int hb_out_group(hb_out *o, const char *path)
{
    OUT_LIVE(o);
    int rc = 0;
    if (!io_path_exists(o->file, path)) {
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        hid_t g = lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0
                      ? H5Gcreate2(o->file, path, lcpl, o->gcpl, H5P_DEFAULT)
                      : -1;
        if (lcpl >= 0) H5Pclose(lcpl);
        rc = g < 0 ? hb_err_set(HB_EIO, o->path, "cannot create group %s", path) : injected(o, "group", path);
        o->meta += META_OBJECT;
        if (g >= 0) H5Gclose(g);
    }
    return finish(o, rc);
}

static hid_t file_type(hb_elem t)
{
    switch (t) {
    case HB_F64: return H5T_IEEE_F64LE;
    case HB_I64: case HB_ID: return H5T_STD_I64LE;
    case HB_U64: return H5T_STD_U64LE;
    case HB_U32: return H5T_STD_U32LE;
    case HB_U8: return H5T_STD_U8LE;
    case HB_I32: return H5T_STD_I32LE;
    case HB_F32: return H5T_IEEE_F32LE;
    }
    return H5T_IEEE_F64LE;
}

hid_t io_mem_type(hb_elem t)
{
    switch (t) {
    case HB_F64: return H5T_NATIVE_DOUBLE;
    case HB_I64: case HB_ID: return H5T_NATIVE_INT64;
    case HB_U64: return H5T_NATIVE_UINT64;
    case HB_U32: return H5T_NATIVE_UINT32;
    case HB_U8: return H5T_NATIVE_UINT8;
    case HB_I32: return H5T_NATIVE_INT32;
    case HB_F32: return H5T_NATIVE_FLOAT;
    }
    return H5T_NATIVE_DOUBLE;
}

/* Direct writes (direct_write): blocks of at least DIRECT_MIN bytes, in pieces of
 * DIRECT_PIECE through the bounce buffer, at offsets and lengths on DIRECT_ALIGN (the
 * largest logical block size of a disk). */
#define DIRECT_ALIGN ((uint64_t)4096)
#define DIRECT_PIECE ((size_t)8 << 20)
#define DIRECT_MIN ((uint64_t)4 << 20)

/* Writes all of buf (n bytes) at off of fd; 0, or -1 with errno. */
static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        p += w, n -= (size_t)w, off += (uint64_t)w;
    }
    return 0;
}

/* This rank's block of a large dataset written around the page cache, where every rank
 * runs on this host and the block is one run of bytes in the file (a contiguous
 * dataset, a range of its first dimension): its whole DIRECT_ALIGN blocks with O_DIRECT,
 * its partial ones at either end through the page cache. A buffered write of hundreds of
 * MB spends most of its time taking fresh pages for the cache and copying into them (672
 * MB of results: 2.1 s at 2 ranks, where the disk takes the same bytes directly in
 * 0.3-0.5 s), and the pages then push other data out. The bytes are those H5Dwrite
 * would write: the file's types are the native ones, little-endian. 1 when it did not
 * apply or did not work (the caller writes the block with H5Dwrite, which writes every
 * byte again), 0 when written. */
static int direct_write(hb_out *o, hid_t d, hb_elem t, int ndims, const uint64_t *start, const uint64_t *count,
                        const void *data)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    return 1;
#endif
    if (!o->own_blocks || o->dfd == -2) return 1;
    const size_t elem = H5Tget_size(io_mem_type(t));
    uint64_t bytes = elem; /* the block's; most writes are small, and need no more look */
    for (int i = 0; i < ndims && bytes < DIRECT_MIN; i++) bytes = count[i] && bytes > UINT64_MAX / count[i] ? UINT64_MAX : bytes * count[i];
    if (bytes < DIRECT_MIN) return 1;
    hid_t fs = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    hsize_t dims[8];
    int contiguous = fs >= 0 && dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS &&
                     H5Sget_simple_extent_dims(fs, dims, NULL) == ndims;
    if (fs >= 0) H5Sclose(fs);
    if (dcpl >= 0) H5Pclose(dcpl);
    uint64_t row = elem;
    for (int i = 1; contiguous && i < ndims; i++) {
        contiguous = start[i] == 0 && count[i] == dims[i];
        row *= dims[i];
    }
    const haddr_t base = contiguous ? H5Dget_offset(d) : HADDR_UNDEF;
    if (base == HADDR_UNDEF || count[0] > (UINT64_MAX - base) / row / 2) return 1;
    const uint64_t off = (uint64_t)base + start[0] * row, len = count[0] * row;
    const uint64_t a = (off + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN, b = (off + len) / DIRECT_ALIGN * DIRECT_ALIGN;
    if (b <= a || b - a < DIRECT_MIN) return 1;
    if (o->dfd == -1) {
        o->dfd = hb_fault_no_direct() ? (errno = EINVAL, -1) : open(o->path, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
        o->bfd = o->dfd < 0 ? -1 : open(o->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        o->bounce = o->bfd < 0 ? NULL : aligned_alloc(DIRECT_ALIGN, DIRECT_PIECE);
        if (!o->bounce) {
            HB_DEBUG("%s: no direct writes (%s)", o->path, strerror(errno));
            if (o->dfd >= 0) close(o->dfd);
            if (o->bfd >= 0) close(o->bfd);
            o->dfd = -2, o->bfd = -1;
            return 1;
        }
    }
    const char *p = data;
    int e = pwrite_all(o->bfd, p, (size_t)(a - off), off);
    if (e == 0) e = pwrite_all(o->bfd, p + (b - off), (size_t)(off + len - b), b);
    for (uint64_t at = a; e == 0 && at < b; at += DIRECT_PIECE) {
        const size_t n = b - at < DIRECT_PIECE ? (size_t)(b - at) : DIRECT_PIECE;
        memcpy(o->bounce, p + (at - off), n);
        e = pwrite_all(o->dfd, o->bounce, n, at);
        o->direct += e == 0 ? n : 0;
    }
    if (e != 0) { /* a file system that takes no direct writes (EINVAL): the page cache for good */
        HB_DEBUG("%s: a direct write failed (%s): writing through the page cache", o->path, strerror(errno));
        close(o->dfd);
        o->dfd = -2;
        return 1;
    }
    return 0;
}

/* This rank's block [start, start+count) of dataset d: in one collective write across
 * hosts, where a rank with count[0] == 0, or whose selection failed, takes part with an
 * empty selection, so that the collective write never waits for a rank; on one host
 * each rank writes its own block (one_host). */
static int write_block(hb_out *o, hid_t d, hb_elem t, int ndims, const uint64_t *start, const uint64_t *count,
                       const void *data, const char *path)
{
    hsize_t st[8], cn[8];
    for (int i = 0; i < ndims; i++) st[i] = start[i], cn[i] = count[i];
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(ndims, cn, NULL);
    if (fs < 0 || ms < 0) {
        if (fs >= 0) H5Sclose(fs);
        if (ms >= 0) H5Sclose(ms);
        return hb_err_set(HB_EIO, o->path, "write of %s failed: no dataspace", path);
    }
    int bad = count[0] > 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, cn, NULL) < 0;
    if (count[0] == 0 || bad) {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    }
    herr_t e = 0;
    if (bad || count[0] == 0 || direct_write(o, d, t, ndims, start, count, data))
        e = H5Dwrite(d, io_mem_type(t), ms, fs, o->dxpl, data);
    H5Sclose(ms);
    H5Sclose(fs);
    if (e < 0 || bad) return hb_err_set(HB_EIO, o->path, "write of %s failed", path);
    start_writeback(o);
    return injected(o, "data", path);
}

int hb_out_dataset(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *dims, const char *units,
                   const char *desc)
{
    OUT_LIVE(o);
    hsize_t hd[8];
    for (int i = 0; i < ndims; i++) hd[i] = dims[i];
    hid_t space = H5Screate_simple(ndims, hd, NULL), lcpl = H5Pcreate(H5P_LINK_CREATE), d = -1;
    if (space >= 0 && lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0)
        d = H5Dcreate2(o->file, path, file_type(t), space, lcpl, o->dcpl, H5P_DEFAULT);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (space >= 0) H5Sclose(space);
    int rc = d < 0 ? hb_err_set(HB_EIO, o->path, "cannot create dataset %s", path) : injected(o, "dataset", path);
    o->meta += META_OBJECT;
    if (d >= 0 && hb_rank == 0) { /* allocated at creation: its place is known */
        haddr_t at = H5Dget_offset(d);
        uint64_t end = at == HADDR_UNDEF ? 0 : (uint64_t)at + (uint64_t)H5Dget_storage_size(d);
        if (end > o->data_end) o->data_end = end;
    }
    if (d >= 0) H5Dclose(d);
    /* the room for its data is reserved before any rank writes it */
    HB_CALL(finish(o, rc));
    if (units) HB_CALL(hb_out_attr_str(o, path, "units", units));
    if (desc) HB_CALL(hb_out_attr_str(o, path, "description", desc));
    return 0;
}

int hb_out_block(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *start, const uint64_t *count,
                 const void *data)
{
    OUT_LIVE(o);
    hid_t d = H5Dopen2(o->file, path, H5P_DEFAULT);
    int rc = d < 0 ? hb_err_set(HB_EIO, o->path, "cannot open dataset %s", path)
                   : write_block(o, d, t, ndims, start, count, data, path);
    if (d >= 0) H5Dclose(d);
    return finish(o, rc);
}

int hb_out_slab(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *dims, uint64_t off0,
                uint64_t cnt0, const void *data)
{
    uint64_t start[8] = {0}, count[8];
    for (int i = 0; i < ndims; i++) count[i] = dims[i];
    start[0] = off0;
    count[0] = cnt0;
    return hb_out_block(o, path, t, ndims, start, count, data);
}

int hb_out_write(hb_out *o, const char *path, hb_elem t, int ndims, const uint64_t *dims, uint64_t off0,
                 uint64_t cnt0, const void *data, const char *units, const char *desc)
{
    HB_CALL(hb_out_dataset(o, path, t, ndims, dims, units, desc));
    return hb_out_slab(o, path, t, ndims, dims, off0, cnt0, data);
}

int hb_out_scale(hb_out *o, const char *path, const char *name, hb_elem t, uint64_t n, const void *data,
                 const char *units)
{
    uint64_t dims[1] = {n};
    HB_CALL(hb_out_write(o, path, t, 1, dims, 0, hb_rank == 0 ? n : 0, data, units, NULL));
    hid_t d = H5Dopen2(o->file, path, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : H5DSset_scale(d, name);
    o->meta += META_ATTR;
    if (d >= 0) H5Dclose(d);
    int rc = e < 0 ? hb_err_set(HB_EIO, o->path, "cannot make %s a dimension scale", path) : injected(o, "attr", path);
    return finish(o, rc);
}

int hb_out_dim(hb_out *o, const char *path, uint64_t n)
{
    OUT_LIVE(o);
    hsize_t hn = n;
    float fill = 0;
    hid_t space = H5Screate_simple(1, &hn, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    /* a virtual dataset without sources has a shape but no storage, even where MPI-IO
     * allocates every other dataset's space at creation */
    if (space >= 0 && dcpl >= 0 && H5Pset_layout(dcpl, H5D_VIRTUAL) >= 0 &&
        H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &fill) >= 0)
        d = H5Dcreate2(o->file, path, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    char name[96]; /* netCDF-4's mark of a dimension that is not a variable, with its length */
    snprintf(name, sizeof name, "This is a netCDF dimension but not a netCDF variable.%10llu", (unsigned long long)n);
    herr_t e = d < 0 ? -1 : H5DSset_scale(d, name);
    o->meta += META_OBJECT + META_ATTR;
    if (d >= 0) H5Dclose(d);
    int rc = e < 0 ? hb_err_set(HB_EIO, o->path, "cannot create the dimension %s", path) : injected(o, "dataset", path);
    return finish(o, rc);
}

int hb_out_strings(hb_out *o, const char *path, uint64_t n, uint64_t off0, uint64_t cnt0, size_t width,
                   const char *data, const char *scale)
{
    OUT_LIVE(o);
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0) {
        H5Tset_size(t, width ? width : 1);
        H5Tset_strpad(t, H5T_STR_NULLPAD);
        H5Tset_cset(t, H5T_CSET_UTF8);
    }
    hsize_t hn = n, st = off0, cn = cnt0;
    hid_t space = H5Screate_simple(1, &hn, NULL), lcpl = H5Pcreate(H5P_LINK_CREATE), d = -1;
    if (t >= 0 && space >= 0 && lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0)
        d = H5Dcreate2(o->file, path, t, space, lcpl, o->dcpl, H5P_DEFAULT);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (space >= 0) H5Sclose(space);
    int rc = d < 0 ? hb_err_set(HB_EIO, o->path, "cannot create dataset %s", path) : injected(o, "dataset", path);
    o->meta += META_OBJECT + (scale ? META_ATTR : 0);
    if (d >= 0 && hb_rank == 0) { /* allocated at creation: its place is known */
        haddr_t at = H5Dget_offset(d);
        uint64_t end = at == HADDR_UNDEF ? 0 : (uint64_t)at + (uint64_t)H5Dget_storage_size(d);
        if (end > o->data_end) o->data_end = end;
    }
    /* the room for its data is reserved before any rank writes it */
    rc = finish(o, rc);
    if (rc == 0) {
        hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &cn, NULL);
        herr_t e = fs < 0 || ms < 0 ? -1 : 0;
        if (e == 0 && cnt0 == 0) H5Sselect_none(fs), H5Sselect_none(ms);
        else if (e == 0) e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &cn, NULL);
        if (e >= 0 && n > 0) e = H5Dwrite(d, t, ms, fs, o->dxpl, data);
        if (e >= 0) start_writeback(o);
        if (e >= 0 && scale) e = H5DSset_scale(d, scale);
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        rc = e < 0 ? hb_err_set(HB_EIO, o->path, "write of %s failed", path) : injected(o, "data", path);
        rc = finish(o, rc);
    }
    if (d >= 0) H5Dclose(d);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int hb_out_attach(hb_out *o, const char *dataset, int dim, const char *scale)
{
    OUT_LIVE(o);
    hid_t d = H5Dopen2(o->file, dataset, H5P_DEFAULT), s = H5Dopen2(o->file, scale, H5P_DEFAULT);
    herr_t e = d < 0 || s < 0 ? -1 : H5DSattach_scale(d, s, (unsigned)dim);
    o->meta += 2 * META_ATTR; /* the dataset's list of scales, the scale's list of datasets */
    if (s >= 0) H5Dclose(s);
    if (d >= 0) H5Dclose(d);
    int rc = e < 0 ? hb_err_set(HB_EIO, o->path, "cannot attach scale %s to %s", scale, dataset)
                   : injected(o, "attr", dataset);
    return finish(o, rc);
}

/* Creates (or replaces) attribute name on obj with the given type and shape (space < 0:
 * making the space failed). */
static int put_attr(hb_out *o, const char *obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                    const void *v, size_t bytes)
{
    OUT_LIVE(o);
    o->meta += META_ATTR + 2 * (bytes + strlen(name));
    hid_t h = H5Oopen(o->file, obj, H5P_DEFAULT);
    herr_t e = -1;
    if (h >= 0 && space >= 0 && ftype >= 0) {
        if (H5Aexists(h, name) > 0) H5Adelete(h, name);
        hid_t a = H5Acreate2(h, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
        e = a < 0 ? -1 : H5Awrite(a, mtype, v);
        if (a >= 0) H5Aclose(a);
    }
    if (h >= 0) H5Oclose(h);
    char what[320];
    snprintf(what, sizeof what, "%s of %s", name, obj);
    int rc = h < 0    ? hb_err_set(HB_EIO, o->path, "cannot open %s for attribute %s", obj, name)
             : e < 0 ? hb_err_set(HB_EIO, o->path, "cannot write attribute %s", what)
                     : injected(o, "attr", what);
    return finish(o, rc);
}

int hb_out_attr_u64(hb_out *o, const char *obj, const char *name, uint64_t v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = put_attr(o, obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, s, &v, sizeof v);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int hb_out_attr_i64(hb_out *o, const char *obj, const char *name, int64_t v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = put_attr(o, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, s, &v, sizeof v);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int hb_out_attr_f64(hb_out *o, const char *obj, const char *name, const double *v, int n)
{
    hsize_t len = (hsize_t)n;
    hid_t s = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &len, NULL);
    int rc = put_attr(o, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, v, (size_t)n * sizeof *v);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int hb_out_attr_str(hb_out *o, const char *obj, const char *name, const char *v)
{
    /* variable-length UTF-8: h5py and pandas read it as str */
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) H5Tclose(t), t = -1;
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = put_attr(o, obj, name, t, t, s, &v, strlen(v) + 1);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int hb_out_close(hb_out *o)
{
    if (!o) return 0;
    int failed = o->failed, rc = close_out(o);
    return failed ? failed : hb_agree(rc);
}

struct hb_oset {
    hid_t dset, dxpl;
    hb_out *out;
    char path[256];
};

int hb_oset_open(hb_out *out, const char *path, hb_oset **dp)
{
    *dp = NULL;
    OUT_LIVE(out);
    hid_t dset = H5Dopen2(out->file, path, H5P_DEFAULT), dxpl = H5Pcreate(H5P_DATASET_XFER);
    hb_oset *d = hb_calloc(1, sizeof *d);
    int rc = 0;
    if (dset < 0 || dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT) < 0)
        rc = hb_err_set(HB_EIO, out->path, "cannot open dataset %s", path);
    else if (!d)
        rc = HB_EINTERNAL;
    rc = finish(out, rc);
    if (rc != 0) {
        if (dxpl >= 0) H5Pclose(dxpl);
        if (dset >= 0) H5Dclose(dset);
        free(d);
        return rc;
    }
    d->dset = dset, d->dxpl = dxpl, d->out = out;
    snprintf(d->path, sizeof d->path, "%s", path);
    *dp = d;
    return 0;
}

int hb_oset_write(hb_oset *d, hb_elem t, uint64_t off, uint64_t cnt, const void *data)
{
    if (d->out->failed) return d->out->failed;
    /* pieces well below 2 GB: MPI-IO counts are ints */
    const size_t elem = H5Tget_size(io_mem_type(t));
    const uint64_t piece = ((uint64_t)1 << 30) / elem;
    for (uint64_t a = 0; a < cnt; a += piece) {
        hsize_t st = off + a, n = cnt - a < piece ? cnt - a : piece;
        hid_t fs = H5Dget_space(d->dset), ms = H5Screate_simple(1, &n, NULL);
        herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &n, NULL);
        if (e >= 0) e = H5Dwrite(d->dset, io_mem_type(t), ms, fs, d->dxpl, (const char *)data + a * elem);
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        if (e < 0) return hb_err_set(HB_EIO, d->out->path, "write of %s failed", d->path);
    }
    start_writeback(d->out);
    return injected(d->out, "data", d->path);
}

void hb_oset_close(hb_oset *d)
{
    if (!d) return;
    if (d->dxpl >= 0) H5Pclose(d->dxpl);
    if (d->dset >= 0) H5Dclose(d->dset);
    free(d);
}
