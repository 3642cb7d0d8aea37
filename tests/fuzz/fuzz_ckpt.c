/* libFuzzer harness: the checkpoint reader (src/ckpt.c's hb_ckpt_restore: the manifest,
 * each listed file's size, checksum and fingerprint, then the checkpoint's attributes,
 * /ledger, /sizes and /state). The first byte picks what the rest is: even, the
 * manifest's text (naming files that may or may not be there); odd, a description of a
 * checkpoint file that the harness writes with HDF5 (each attribute's shape, type and
 * value, the lengths of /ledger and /state, the values of /sizes) and lists in a
 * manifest with its true size and xxh64, so that the fuzzer gets past the checksum to
 * the code that trusts the file's contents. Raw file bytes are not fuzzed: that finds
 * the HDF5 library's own parser bugs (an overflow in H5O__attr_exists on a corrupt
 * object header, in HDF5 1.10), which the manifest's checksum keeps away from it. One
 * rank. */
#include "ckpt.h"

#include "core/hb.h"
#include "io/io.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define N_CHUNKS 4

static char dir[64];

static int load(void *user, const void *blob, size_t len)
{
    const unsigned char *b = blob;
    unsigned s = 0;
    for (size_t i = 0; i < len; i++) s += b[i]; /* every byte handed over must be readable */
    *(unsigned *)user += s;
    return 0;
}

static void put(const char *name, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &hb_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &hb_size);
    hb_io_init();
    hb_log_level = 0;
    snprintf(dir, sizeof dir, "/tmp/h5batch-fuzz-ckpt-%d", (int)getpid());
    mkdir(dir, 0700);
    return 0;
}

/* Reads the next byte of the description (0 past its end). */
static unsigned next(const uint8_t **p, const uint8_t *end) { return *p < end ? *(*p)++ : 0; }

static int64_t next64(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | next(p, end);
    return (int64_t)v;
}

/* An integer attribute as the description says: absent, a scalar int64, uint64 or
 * double, an array of two, or a string. */
static void put_attr(hid_t f, const char *name, const uint8_t **p, const uint8_t *end)
{
    unsigned kind = next(p, end) % 6;
    int64_t v = next64(p, end);
    if (kind == 0) return;
    hsize_t two = 2;
    hid_t sp = kind == 4 ? H5Screate_simple(1, &two, NULL) : H5Screate(H5S_SCALAR);
    hid_t t = kind == 2 ? H5T_NATIVE_UINT64 : kind == 3 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
    if (kind == 5) {
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 8);
    }
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int64_t vv[2] = {v, v};
    double d;
    memcpy(&d, &v, sizeof d); /* any bits: inf, NaN, huge */
    H5Awrite(a, t, kind == 3 ? (const void *)&d : (const void *)vv);
    H5Aclose(a);
    if (kind == 5) H5Tclose(t);
    H5Sclose(sp);
}

static void put_u8(hid_t f, const char *name, hsize_t n, const uint8_t **p, const uint8_t *end)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    uint8_t buf[256];
    for (hsize_t i = 0; i < n; i++) buf[i] = (uint8_t)next(p, end);
    hid_t d = H5Dcreate2(f, name, H5T_NATIVE_UINT8, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    H5Sclose(sp);
}

/* Writes the checkpoint the description p..end gives at path. */
static void make_ckpt(const char *path, const uint8_t *p, const uint8_t *end)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return;
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    hid_t sc = H5Screate(H5S_SCALAR);
    const char *fp = next(&p, end) % 8 ? "fp" : "other";
    hid_t a = H5Acreate2(f, "fingerprint", st, sc, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, &fp);
    H5Aclose(a);
    H5Sclose(sc);
    H5Tclose(st);
    put_attr(f, "seq", &p, end);
    put_attr(f, "restarts", &p, end);
    put_u8(f, "ledger", next(&p, end) % 8, &p, end);
    hsize_t ns = next(&p, end) % 5;
    int64_t sizes[4];
    for (hsize_t i = 0; i < ns; i++) sizes[i] = next(&p, end) & 1 ? next64(&p, end) : (int64_t)(next(&p, end) % 64);
    hid_t sp = H5Screate_simple(1, &ns, NULL);
    hid_t d = H5Dcreate2(f, "sizes", next(&p, end) & 1 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, sp, H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, sizes);
    H5Dclose(d);
    H5Sclose(sp);
    put_u8(f, "state", next(&p, end) % 128, &p, end);
    H5Fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *file = "ckpt-s-000001.h5";
    if (data[0] & 1) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        make_ckpt(path, data + 1, data + size);
        FILE *f = fopen(path, "rb");
        if (!f) return 0;
        static unsigned char bytes[1 << 16];
        size_t n = fread(bytes, 1, sizeof bytes, f);
        fclose(f);
        char line[256];
        int l = snprintf(line, sizeof line, "s 1 %s %zu %016llx fp\n", file, n,
                         (unsigned long long)XXH64(bytes, n, 0));
        put("manifest", line, (size_t)l);
    } else {
        put("manifest", data + 1, size - 1);
    }
    hb_ckpt_id id = {.run_dir = dir, .step = "s", .fingerprint = "fp"};
    uint8_t ledger[N_CHUNKS];
    int64_t seq;
    int restarts, found;
    unsigned sum = 0;
    char name[256];
    hb_ckpt_restore(&id, ledger, N_CHUNKS, &seq, &restarts, load, &sum, &found, name, sizeof name);
    hb_err_clear();
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    unlink(path);
    snprintf(path, sizeof path, "%s/manifest", dir);
    unlink(path);
    return 0;
}
