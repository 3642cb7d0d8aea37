/* Sorted runs on disk, for kernels whose kept records outgrow max_memory (docs/spill.md).
 *
 * A run is a file of fixed-size records (a multiple of 8 bytes, read as 64-bit words)
 * in ascending order of their key, word 0 shifted right by the run's key_shift (a kernel
 * keeps a payload in the low bits; records of one key come in any order): a reader
 * selects a range of keys, a merge gives the runs' records in key order. It is written under a unique temporary in the step's
 * scratch folder (O_CREAT|O_EXCL|O_NOFOLLOW, relative to the folder's descriptor) and
 * renamed to its name when complete; blocks of records carry an XXH3 checksum each, an
 * index of the blocks' first keys and checksums and a footer follow them, and the run's
 * checksum covers the index and the footer, so a reference (hb_spill_run: name, sizes,
 * checksum) names one exact content. Reading streams a block at a time; a k-way merge
 * (a heap over the runs' current records) gives the records of several runs in order.
 *
 * Errors: a write that fails (disk full) is 74, a run missing is 66, a damaged one (its
 * size, footer, index or a block's checksum) 65, each naming the file. Nothing here is
 * collective. */
#ifndef HB_COMMON_SPILL_H
#define HB_COMMON_SPILL_H

#include <stddef.h>
#include <stdint.h>

/* What a checkpoint records of a run. */
typedef struct hb_spill_run {
    char name[64];      /* file name in the step's scratch folder */
    uint64_t records;   /* records in it */
    uint64_t bytes;     /* file size */
    uint64_t checksum;  /* XXH3-64 of its index and footer (which hold every block's checksum) */
    uint64_t key_min, key_max; /* the key of its first and last record */
    uint32_t rec_size;  /* bytes per record */
    uint32_t key_shift; /* key = word 0 >> key_shift */
    uint32_t synced;    /* 1 once fsynced (a loaded run is durable) */
    uint32_t reserved;
} hb_spill_run;

/* The step's scratch folder: base/sub (sub: "scratch/STEP", "h5batch-JOB-HASH/STEP"),
 * the subfolder made (0700) on the first run written, each part of it checked to be the
 * user's own folder, never a link. base NULL: the step has none (runs are refused, 70).
 * The driver sets it before each step. */
void hb_spill_set_dir(const char *base, const char *sub);
/* base/sub, or NULL. */
const char *hb_spill_dir(void);

/* Removes the runs and temporaries this module names (spill-*.run, spill-*.tmp) from the
 * step's folder, then its subfolders while empty (never base); a missing folder is fine.
 * Never follows a link. 0, or -1 with errno (nothing recorded). */
int hb_spill_cleanup(void);

typedef struct hb_spill_writer hb_spill_writer;

/* Starts a run of rec_size-byte records (a multiple of 8, at most 64) whose key is word 0
 * >> key_shift (0 to 63), named after tag (letters, digits: "traffic"). */
int hb_spill_create(const char *tag, size_t rec_size, unsigned key_shift, hb_spill_writer **w);
/* Appends n records, whose keys must continue the run's ascending order (70 otherwise). */
int hb_spill_write(hb_spill_writer *w, const void *recs, size_t n);
/* Completes the run: the rest of the blocks, the index and footer, the rename; fills
 * *run. Frees w whatever happens; on failure nothing is left behind. */
int hb_spill_finish(hb_spill_writer *w, hb_spill_run *run);
/* Drops an unfinished run and its temporary. */
void hb_spill_abort(hb_spill_writer *w);
/* fsyncs the run and the folder (before a checkpoint that refers to it is committed). */
int hb_spill_sync(hb_spill_run *run);
/* 0 when the run is there with its reference's size and checksum; 66 when missing, 65
 * when it differs. */
int hb_spill_check(const hb_spill_run *run);

typedef struct hb_spill_reader hb_spill_reader;

/* Opens run for its records whose key lies in [lo, hi), checked against its
 * reference (hb_spill_check); one block is buffered. */
int hb_spill_open(const hb_spill_run *run, uint64_t lo, uint64_t hi, hb_spill_reader **r);
/* The next records of the range: *recs, *n (0 at the end); valid until the next call. */
int hb_spill_read(hb_spill_reader *r, const void **recs, size_t *n);
void hb_spill_close(hb_spill_reader *r);

typedef struct hb_spill_merge hb_spill_merge;

/* Opens the n runs (of one record size and key) over [lo, hi) for a merge in key order. */
int hb_spill_merge_open(const hb_spill_run *runs, int n, uint64_t lo, uint64_t hi, hb_spill_merge **m);
/* The next record of all runs in key order (*rec NULL at the end), valid until the next
 * call; records of one key come run after run. */
int hb_spill_merge_next(hb_spill_merge *m, const void **rec);
void hb_spill_merge_close(hb_spill_merge *m);

/* The bytes a reader buffers (one block), for memory budgets. */
size_t hb_spill_reader_bytes(size_t rec_size);

#endif
