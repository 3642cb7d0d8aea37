/* Partial-state files (partial.h): written by run --partial and merge --partial, read
 * and checked by merge. */
#include "partial.h"

#include "core/commit.h"
#include "core/hb.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define ZLEVEL 4 /* states are written once and read once: a fast level, most of the gain */

int hb_file_digest_quiet(const char *path, uint64_t *digest)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) return errno;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return EINVAL;
    }
    XXH3_state_t *h = XXH3_createState();
    char *buf = malloc(1 << 20);
    ssize_t n = 0;
    if (h && buf) {
        XXH3_64bits_reset(h);
        while ((n = read(fd, buf, 1 << 20)) > 0) XXH3_64bits_update(h, buf, (size_t)n);
        *digest = XXH3_64bits_digest(h);
    }
    int why = !h || !buf ? ENOMEM : n < 0 ? errno : 0;
    XXH3_freeState(h);
    free(buf);
    close(fd);
    return why;
}

int hb_file_digest(const char *path, uint64_t *digest)
{
    int why = hb_file_digest_quiet(path, digest);
    if (why == EINVAL) return hb_err_set(HB_ENOINPUT, path, "not a regular file");
    if (why) return hb_err_set(HB_ENOINPUT, path, "cannot read: %s", strerror(why));
    return 0;
}

char *hb_partial_options(const hb_option *table, const hb_optset *opts)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    for (const hb_option *o = table; o->name; o++) {
        const char *v = hb_opt_str(opts, o->name);
        fprintf(f, "%s=%s\n", o->name, v ? v : "");
        uint64_t d;
        struct stat sb;
        if (o->type == HB_OPT_FILE && v && *v && stat(v, &sb) == 0 && S_ISREG(sb.st_mode) &&
            hb_file_digest_quiet(v, &d) == 0)
            fprintf(f, "%s#content=%016llx\n", o->name, (unsigned long long)d);
    }
    if (fclose(f) != 0) return free(text), NULL;
    return text;
}

/* The value of key in an options text (a pointer to it, its length in *n), or NULL. */
static const char *opt_value(const char *text, const char *key, size_t *n)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            *n = l - kl - 1;
            return p + kl + 1;
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

int hb_partial_options_differ(const char *a, const char *b, char *key, size_t klen, char *va, char *vb,
                              size_t vlen)
{
    /* every key of either side, in a's order then b's */
    for (int side = 0; side < 2; side++) {
        const char *text = side ? b : a;
        for (const char *p = text; p && *p;) {
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p), kn = strcspn(p, "=\n");
            char k[256];
            snprintf(k, sizeof k, "%.*s", (int)(kn < l ? kn : l), p);
            p = e ? e + 1 : NULL;
            const char *hash = strchr(k, '#');
            char content[300];
            snprintf(content, sizeof content, "%s#content", k);
            size_t na = 0, nb = 0, ca = 0, cb = 0;
            const char *x = opt_value(a, k, &na), *y = opt_value(b, k, &nb);
            /* a file option agrees by content when both sides read the file: the paths
             * of one stop-word list differ from site to site */
            if (!hash && opt_value(a, content, &ca) && opt_value(b, content, &cb)) {
                x = opt_value(a, content, &na), y = opt_value(b, content, &nb);
            } else if (hash) {
                char base[256];
                snprintf(base, sizeof base, "%.*s", (int)(hash - k), k);
                size_t n1, n2;
                const char *p1 = opt_value(a, base, &n1), *p2 = opt_value(b, base, &n2);
                /* compared with its option above when both sides have it */
                if (x && y) continue;
                /* one side read the file, the other did not: the paths decide */
                if (p1 && p2 && n1 == n2 && memcmp(p1, p2, n1) == 0) continue;
                snprintf(k, sizeof k, "%s", base);
                x = p1, y = p2, na = n1, nb = n2;
            }
            if (x && y && na == nb && memcmp(x, y, na) == 0) continue;
            snprintf(key, klen, "%s", k);
            snprintf(va, vlen, "%.*s", x ? (int)na : 9, x ? x : "(not set)");
            snprintf(vb, vlen, "%.*s", y ? (int)nb : 9, y ? y : "(not set)");
            return 1;
        }
    }
    return 0;
}

/* Not collective. src[0..n) compressed (zlib) into *z (malloc'd): its length, or 0 when
 * out of memory (*z NULL or to be freed). */
static size_t zlib_pack(const void *src, size_t n, uint8_t **z)
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(ZLEVEL);
    size_t cap = c ? libdeflate_zlib_compress_bound(c, n) : 0, got = 0;
    *z = c ? hb_malloc(cap ? cap : 1) : NULL;
    if (*z) got = libdeflate_zlib_compress(c, src, n, *z, cap);
    if (c) libdeflate_free_compressor(c);
    return got;
}

int hb_partial_write(hb_out *out, const hb_partial_meta *m, const void *blob, size_t len, const void *desc,
                     size_t dlen)
{
    /* this rank's state, compressed on its own: the ranks compress in parallel */
    uint8_t *z = NULL;
    uint64_t mine[3] = {zlib_pack(blob, len, &z), len, XXH3_64bits(blob, len)};
    int rc = hb_agree(z && mine[0] > 0 ? 0 : hb_err_set(HB_EINTERNAL, "partial", "cannot compress the saved state"));
    uint64_t *all = rc == 0 ? hb_calloc((size_t)hb_size * 4, sizeof *all) : NULL;
    if (rc == 0) rc = hb_agree(all ? 0 : HB_EINTERNAL);
    if (rc != 0) return free(z), free(all), rc;
    MPI_Allgather(mine, 3, MPI_UINT64_T, all, 3, MPI_UINT64_T, MPI_COMM_WORLD);
    uint64_t *zs = all + 3 * (size_t)hb_size, off = 0, total = 0;
    for (int r = 0; r < hb_size; r++) {
        if (r < hb_rank) off += all[3 * r];
        total += all[3 * r];
    }
    /* the description, compressed like the states (an index's lists every document) */
    uint8_t *zd = NULL;
    uint64_t dhash[2] = {dlen, XXH3_64bits(desc, dlen)};
    size_t zdlen = hb_rank == 0 ? zlib_pack(desc, dlen, &zd) : 0;
    rc = hb_agree(hb_rank != 0 || zdlen > 0 ? 0 : hb_err_set(HB_EINTERNAL, "partial", "cannot compress the description"));
    if (rc != 0) return free(z), free(all), free(zd), rc;
    MPI_Bcast(dhash, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    /* what rank 0 alone knows: every rank creates the datasets and attributes alike */
    uint64_t lens[2] = {strlen(m->options), zdlen};
    char digest[32];
    snprintf(digest, sizeof digest, "%s", m->digest);
    MPI_Bcast(lens, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(digest, sizeof digest, MPI_CHAR, 0, MPI_COMM_WORLD);
    const size_t olen = lens[0];
    const uint64_t dn[1] = {(uint64_t)hb_size}, dz[1] = {total}, dd[1] = {lens[1]}, dl[1] = {(uint64_t)m->nleaves},
                   dopt[1] = {olen};
    const int r0 = hb_rank == 0;
    rc = hb_out_group(out, "/partial");
    if (rc == 0) rc = hb_out_attr_i64(out, "/", "h5batch_partial", HB_PARTIAL_FORMAT);
    if (rc == 0) rc = hb_out_attr_str(out, "/", "kernel", m->kernel);
    if (rc == 0) rc = hb_out_attr_i64(out, "/", "rows", m->rows);
    if (rc == 0) rc = hb_out_attr_str(out, "/", "digest", digest);
    if (rc == 0)
        rc = hb_out_write(out, "/partial/options", HB_U8, 1, dopt, 0, r0 ? olen : 0, m->options, NULL,
                          "the step's effective options, key=value lines");
    if (rc == 0)
        rc = hb_out_write(out, "/partial/desc", HB_U8, 1, dd, 0, r0 ? lens[1] : 0, zd, NULL,
                          "what the kernel recorded of its input (its describe), compressed (zlib)");
    if (rc == 0) rc = hb_out_attr_u64(out, "/partial/desc", "raw_size", dhash[0]);
    char hx[20];
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)dhash[1]);
    if (rc == 0) rc = hb_out_attr_str(out, "/partial/desc", "xxh3", hx);
    if (rc == 0)
        rc = hb_out_write(out, "/partial/leaves", HB_U64, 1, dl, 0, r0 ? (uint64_t)m->nleaves : 0, m->leaves, NULL,
                          "XXH3-64 of the content of each input file the partial holds, in order");
    for (int k = 0; k < 3 && rc == 0; k++) {
        static const char *const name[3] = {"/partial/sizes", "/partial/raw_sizes", "/partial/hashes"};
        static const char *const what[3] = {"compressed bytes of each saved state in /partial/state",
                                            "bytes of each saved state", "XXH3-64 of each saved state"};
        for (int r = 0; r < hb_size; r++) zs[r] = all[3 * r + k];
        rc = hb_out_write(out, name[k], HB_U64, 1, dn, 0, r0 ? (uint64_t)hb_size : 0, zs, k == 2 ? NULL : "bytes",
                          what[k]);
    }
    if (rc == 0)
        rc = hb_out_write(out, "/partial/state", HB_U8, 1, dz, off, mine[0], z, NULL,
                          "each rank's saved kernel state, each compressed on its own (zlib)");
    free(z);
    free(all);
    free(zd);
    return rc;
}

int hb_partial_is(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    hb_in *in = NULL;
    if (hb_in_open(path, &in) != 0) return hb_err_clear(), 0;
    int64_t v = 0;
    int yes = hb_in_exists(in, "/partial") && hb_in_attr_i64(in, "/", "h5batch_partial", &v) == 0;
    hb_err_clear();
    hb_in_close(in);
    return yes;
}

/* Reads the 1-D dataset name of the part whole into *buf (elements of type t, 8 or 1
 * bytes); its length in *n. */
static int read_whole(hb_partinfo *p, const char *name, hb_elem t, void **buf, int64_t *n)
{
    int nd = 0;
    int64_t dims[8] = {0};
    *buf = NULL;
    HB_CALL(hb_in_dims(p->in, name, &nd, dims));
    if (nd != 1) return hb_err_set(HB_EDATA, p->path, "%s is not 1-D: not a partial state", name);
    size_t es = t == HB_U8 ? 1 : 8;
    *buf = hb_malloc((size_t)dims[0] * es + 1);
    if (!*buf) return HB_EINTERNAL;
    *n = dims[0];
    return hb_in_read_raw(p->in, name, t, 0, dims[0], *buf);
}

/* Inflates z (zlen bytes, zlib) into *out (raw bytes, malloc'd) and checks it against
 * hash: 65 naming the part and what when it does not match. */
static int inflate_checked(const hb_partinfo *p, const void *z, size_t zlen, size_t raw, uint64_t hash,
                           const char *what, void **out)
{
    *out = NULL;
    uint8_t *buf = hb_malloc(raw ? raw : 1);
    if (!buf) return HB_EINTERNAL;
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t got = 0;
    enum libdeflate_result r = d ? libdeflate_zlib_decompress(d, z, zlen, buf, raw, &got) : LIBDEFLATE_SHORT_OUTPUT;
    if (d) libdeflate_free_decompressor(d);
    if (!d) return free(buf), HB_EINTERNAL;
    if (r != LIBDEFLATE_SUCCESS || got != raw || XXH3_64bits(buf, got) != hash) {
        free(buf);
        return hb_err_set(HB_EDATA, p->path, "damaged partial state: %s does not match its checksum", what);
    }
    *out = buf;
    return 0;
}

int hb_partial_open(const char *path, hb_partinfo *p)
{
    memset(p, 0, sizeof *p);
    p->path = hb_strdup(path);
    if (!p->path) return HB_EINTERNAL;
    struct stat sb;
    if (stat(path, &sb) != 0) return hb_err_set(HB_ENOINPUT, path, "%s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return hb_err_set(HB_ENOINPUT, path, "not a regular file (%s)", hb_file_kind(sb.st_mode));
    int rc = hb_in_open(path, &p->in);
    if (rc != 0) {
        /* a part cut short in transfer opens as no HDF5 file at all */
        hb_err_clear();
        return hb_err_set(HB_EDATA, path, "not a readable partial state (truncated or damaged, or not HDF5)");
    }
    int64_t fmt = 0;
    if (!hb_in_exists(p->in, "/partial") || hb_in_attr_i64(p->in, "/", "h5batch_partial", &fmt) != 0) {
        hb_err_clear();
        return hb_err_set(HB_EDATA, path, "not a partial state (h5batch run --partial writes them)");
    }
    if (fmt != HB_PARTIAL_FORMAT)
        return hb_err_set(HB_EDATA, path, "partial-state format %lld; this h5batch reads format %d", (long long)fmt,
                          HB_PARTIAL_FORMAT);
    int64_t n = 0, nz = 0, nr = 0, nh = 0, nstate = 0;
    void *opt = NULL;
    rc = hb_in_attr_str(p->in, "/", "kernel", p->kernel, sizeof p->kernel);
    if (rc == 0) rc = hb_in_attr_str(p->in, "/", "digest", p->digest, sizeof p->digest);
    if (rc == 0) rc = hb_in_attr_range(p->in, "/", "rows", 0, INT64_MAX, &p->rows);
    if (rc == 0) rc = read_whole(p, "/partial/options", HB_U8, &opt, &n);
    if (rc == 0) ((char *)opt)[n] = '\0', p->options = opt, opt = NULL;
    int64_t dl = 0, draw = 0;
    char hx[32] = "";
    void *zd = NULL;
    if (rc == 0) rc = read_whole(p, "/partial/desc", HB_U8, &zd, &dl);
    if (rc == 0) rc = hb_in_attr_range(p->in, "/partial/desc", "raw_size", 0, (int64_t)1 << 40, &draw);
    if (rc == 0) rc = hb_in_attr_str(p->in, "/partial/desc", "xxh3", hx, sizeof hx);
    if (rc == 0) rc = read_whole(p, "/partial/leaves", HB_U64, (void **)&p->leaves, &p->nleaves);
    if (rc == 0) rc = read_whole(p, "/partial/sizes", HB_U64, (void **)&p->zsize, &nz);
    if (rc == 0) rc = read_whole(p, "/partial/raw_sizes", HB_U64, (void **)&p->rsize, &nr);
    if (rc == 0) rc = read_whole(p, "/partial/hashes", HB_U64, (void **)&p->hash, &nh);
    int nd = 0;
    if (rc == 0) rc = hb_in_dims(p->in, "/partial/state", &nd, &nstate);
    free(opt);
    if (rc != 0) {
        char why[600];
        snprintf(why, sizeof why, "%s", hb_err_msg());
        hb_err_clear();
        free(zd);
        return hb_err_set(HB_EDATA, path, "damaged partial state: %s", why);
    }
    rc = inflate_checked(p, zd, (size_t)dl, (size_t)draw, strtoull(hx, NULL, 16), "its description", &p->desc);
    free(zd);
    if (rc != 0) return rc;
    p->desc_len = (size_t)draw;
    if (nz != nr || nz != nh || nz < 1 || p->nleaves < 1)
        return hb_err_set(HB_EDATA, path, "damaged partial state: %lld, %lld and %lld saved-state sizes and hashes",
                          (long long)nz, (long long)nr, (long long)nh);
    p->nblobs = nz;
    p->off = hb_malloc_array((size_t)nz, 1, sizeof *p->off);
    if (!p->off) return HB_EINTERNAL;
    uint64_t sum = 0;
    for (int64_t b = 0; b < nz; b++) {
        p->off[b] = sum;
        if (p->zsize[b] > (uint64_t)nstate - sum)
            return hb_err_set(HB_EDATA, path,
                              "damaged partial state: saved state %lld (%llu bytes) runs past the %lld bytes of "
                              "/partial/state",
                              (long long)b, (unsigned long long)p->zsize[b], (long long)nstate);
        sum += p->zsize[b];
        if (p->rsize[b] > (1ull << 40))
            return hb_err_set(HB_EDATA, path, "damaged partial state: saved state %lld claims %llu bytes",
                              (long long)b, (unsigned long long)p->rsize[b]);
    }
    if (sum != (uint64_t)nstate)
        return hb_err_set(HB_EDATA, path, "damaged partial state: its saved states hold %llu of %lld bytes",
                          (unsigned long long)sum, (long long)nstate);
    /* reopened for each saved state it gives: a merge of thousands of parts holds no
     * thousands of open files */
    hb_in_close(p->in);
    p->in = NULL;
    return 0;
}

int hb_partial_blob(hb_partinfo *p, int64_t b, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    uint8_t *z = hb_malloc(p->zsize[b] ? p->zsize[b] : 1);
    int rc = z ? 0 : HB_EINTERNAL;
    hb_in *in = NULL;
    if (rc == 0 && hb_in_open(p->path, &in) != 0) {
        hb_err_clear();
        rc = hb_err_set(HB_EDATA, p->path, "not a readable partial state any more (changed during the merge?)");
    }
    if (rc == 0) rc = hb_in_read_raw(in, "/partial/state", HB_U8, (int64_t)p->off[b], (int64_t)p->zsize[b], z);
    if (in) hb_in_close(in);
    char what[64];
    snprintf(what, sizeof what, "saved state %lld", (long long)b);
    if (rc == 0) rc = inflate_checked(p, z, p->zsize[b], p->rsize[b], p->hash[b], what, buf);
    free(z);
    if (rc == 0) *len = p->rsize[b];
    return rc;
}

void hb_partial_close(hb_partinfo *p)
{
    if (p->in) hb_in_close(p->in);
    free(p->path), free(p->options), free(p->desc), free(p->leaves);
    free(p->zsize), free(p->rsize), free(p->hash), free(p->off);
    memset(p, 0, sizeof *p);
}
