/* Partial-state files (DESIGN.md 7): what `h5batch run --partial` and
 * `h5batch merge --partial` write at a step's output path, and what `h5batch merge` reads.
 *
 * Layout (format 1):
 *   /                 attrs h5batch_partial = 1, kernel, rows (int64: the rows of the
 *                     inputs it holds), digest (16 hex digits: its identity)
 *   /partial/options  uint8: the step's effective options, "key=value\n" lines in the
 *                     order of the kernel's table; "key#content=HEX\n" after an option
 *                     that names a file (the file's XXH3-64)
 *   /partial/desc     uint8: what the kernel's describe wrote, compressed (zlib); attrs
 *                     raw_size (its bytes) and xxh3 (16 hex digits of their XXH3-64)
 *   /partial/leaves   uint64: the content digests (XXH3-64) of the input files it holds,
 *                     in order: one for a site's partial, the union for a merge's
 *   /partial/state    uint8: every rank's saved state, one after the other, each
 *                     compressed on its own (zlib format: Python's zlib.decompress reads it)
 *   /partial/sizes, /partial/raw_sizes, /partial/hashes   uint64 per saved state: its
 *                     compressed bytes, its bytes, its XXH3-64 (checked when it is loaded)
 *   /provenance       as in every output
 */
#ifndef HB_PARTIAL_H
#define HB_PARTIAL_H

#include "core/opts.h"
#include "io/io.h"

#include <stddef.h>
#include <stdint.h>

#define HB_PARTIAL_FORMAT 1

typedef struct hb_partial_meta {
    const char *kernel;
    const char *options; /* hb_partial_options */
    int64_t rows;
    const uint64_t *leaves;
    int64_t nleaves;
    const char *digest;
} hb_partial_meta;

/* A part as merge reads it. */
typedef struct hb_partinfo {
    char *path;
    char kernel[64], digest[32];
    char *options; /* NUL-terminated */
    int64_t rows;
    uint64_t *leaves;
    int64_t nleaves;
    void *desc;
    size_t desc_len;
    int64_t nblobs;
    uint64_t *zsize, *rsize, *hash, *off;
    hb_in *in; /* open while hb_partial_open reads it */
} hb_partinfo;

/* Not collective. The canonical options text of a step (malloc'd): every option of the
 * kernel's table as key=value with its effective value, and the content digest of a
 * file an HB_OPT_FILE option names. */
char *hb_partial_options(const hb_option *table, const hb_optset *opts);

/* Not collective. XXH3-64 of a file's content; 66 when it cannot be read. */
int hb_file_digest(const char *path, uint64_t *digest);
/* The same, recording nothing: 0, EINVAL for a file that is not regular, else errno. */
int hb_file_digest_quiet(const char *path, uint64_t *digest);

/* Collective. Writes the partial into out (created by the caller, who adds /provenance
 * and commits): this rank's saved state blob[0..len), and on rank 0 m and desc. */
int hb_partial_write(hb_out *out, const hb_partial_meta *m, const void *blob, size_t len, const void *desc,
                     size_t dlen);

/* Not collective. 1 when path is a partial-state file (a quick look, no error). */
int hb_partial_is(const char *path);

/* Not collective. Opens and checks a part: 66 when it is missing or not a regular file,
 * 65 when it is not a partial state or is damaged or truncated, naming path. */
int hb_partial_open(const char *path, hb_partinfo *p);

/* Not collective. Saved state b of the part, uncompressed and checked against its
 * hash (65 naming the part when it differs); *buf malloc'd. */
int hb_partial_blob(hb_partinfo *p, int64_t b, void **buf, size_t *len);

void hb_partial_close(hb_partinfo *p);

/* Not collective. 0 when a's and b's options agree (an option naming a file agrees when
 * the files' contents do); otherwise 1 and the first option that differs in key (with
 * both values in va and vb). */
int hb_partial_options_differ(const char *a, const char *b, char *key, size_t klen, char *va, char *vb,
                              size_t vlen);

#endif
