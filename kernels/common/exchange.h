/* The keyed exchange every kernel uses to bring records to the rank that owns their key,
 * and the ranges that decide who owns what (docs/architecture.md, "Data path").
 *
 * An exchange moves, from every rank to every rank, parts of one or more arrays that
 * share a layout: the caller counts the elements it sends to each destination, lays
 * out its send buffers with hb_xchg_layout, fills them, and calls hb_xchg_run (or its
 * steps: hb_xchg_counts, then hb_xchg_move and hb_xchg_compact for each array). MPI
 * counts are ints, so elements travel in blocks of `block` elements (an MPI datatype of
 * block * esz bytes) and each part starts on a block boundary, padded to whole blocks:
 * a rank may send and receive up to INT_MAX blocks, far past 2 GB. Counts of real
 * elements travel as 64-bit numbers beside them, so the receiver knows where each part
 * ends.
 *
 * Keys are owned in contiguous ranges: of n keys, rank r owns [n r / size,
 * n (r+1) / size), so the owners depend on nothing but the key count and the rank
 * count, and rank order is key order: what the ranks write at offsets in rank order
 * comes out in key order. Work is split into chunks of chunk_rows rows whose boundaries
 * do not depend on the rank count. */
#ifndef HB_COMMON_EXCHANGE_H
#define HB_COMMON_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

/* One exchange's layout. Fill scount, then hb_xchg_layout sets the send side and
 * hb_xchg_counts the receive side; the arrays have one entry per rank. */
typedef struct hb_xchg {
    int size;     /* ranks */
    size_t block; /* elements per MPI block */
    /* in elements: what this rank sends to each destination and where that part starts
     * in the send buffers; what it receives from each source and where that starts */
    size_t *scount, *sdispl, *rcount, *rdispl;
    size_t stotal, rtotal; /* elements the send and receive buffers need, padding included */
    size_t received;       /* elements received, padding excluded */
    int *sblocks, *sbdispl, *rblocks, *rbdispl; /* the same in blocks, as MPI takes them */
} hb_xchg;

/* Not collective. An exchange among all ranks in blocks of block >= 1 elements, with
 * every count zero; 70 when out of memory. */
int hb_xchg_init(hb_xchg *x, size_t block);
/* Not collective. Frees the layout's arrays; safe on a zeroed or freed one. */
void hb_xchg_free(hb_xchg *x);
/* Not collective. Lays out the send side from x->scount: part d of every send buffer
 * starts at element x->sdispl[d], and the buffers need x->stotal elements. 70 when the
 * parts are too large for int counts of blocks. */
int hb_xchg_layout(hb_xchg *x);
/* Not collective. After hb_xchg_layout: leaves this rank's part to itself out of the
 * exchange (its count and blocks become 0; the other parts stay where the layout put
 * them), for a caller that takes those elements from its send buffers itself instead
 * of having MPI copy them. */
void hb_xchg_keep_own(hb_xchg *x);
/* Collective. Tells every rank what the others send it (after hb_xchg_layout on every
 * rank): x->rcount, x->rdispl, x->rtotal and x->received. The same status on every rank. */
int hb_xchg_counts(hb_xchg *x);
/* Collective. Moves one array of esz-byte elements: part d of send (as laid out) to rank
 * d, whose recv (of x->rtotal elements) gets it at its x->rdispl[this rank]. Zeroes the
 * padding of send first, so that no uninitialized byte travels. The same status on
 * every rank. */
int hb_xchg_move(const hb_xchg *x, void *send, void *recv, size_t esz);
/* Not collective. Moves the received parts of recv together, in rank order, so that its
 * first x->received elements are all that arrived; returns x->received. */
size_t hb_xchg_compact(const hb_xchg *x, void *recv, size_t esz);
/* Not collective. Makes *buf (of *cap esz-byte elements) hold at least n (and never be
 * NULL), keeping its contents; 70 (recorded) when out of memory. */
int hb_xchg_reserve(void **buf, size_t *cap, size_t n, size_t esz);

/* One array of an exchange: its send buffer (laid out by hb_xchg_layout), and the
 * receive buffer *recv of *cap elements of esz bytes, grown as needed. */
typedef struct hb_xchg_array {
    void *send;
    void **recv;
    size_t *cap;
    size_t esz;
} hb_xchg_array;

/* Collective. The whole exchange after hb_xchg_layout: counts, then each of the n arrays
 * moved and compacted, so that the first x->received elements of each *a[i].recv are
 * what arrived, in rank order. The same status on every rank. */
int hb_xchg_run(hb_xchg *x, const hb_xchg_array *a, int n);

/* Collective. Every rank's n elements of esz bytes, gathered in rank order on every rank
 * into *all (malloc'd, *total elements; NULL on failure); what says whose in the message
 * when they exceed MPI's 2 GB. The same status on every rank. */
int hb_allgather(const void *mine, size_t n, size_t esz, void **all, size_t *total, const char *what);

/* Not collective. A 64-bit mix of x (MurmurHash3's finalizer): every bit of x reaches
 * every bit of the result, for hash tables and for owners of sparse keys. */
static inline uint64_t hb_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Not collective. The rank that owns key k of n keys (0 <= k < n) among size ranks: the
 * r with n r / size <= k < n (r+1) / size. Inline: hot loops call it for every record. */
static inline int hb_owner_of(int64_t k, int64_t n, int size) { return (int)(((k + 1) * size - 1) / n); }

/* Not collective. The keys [*lo, *hi) of n that rank r of size owns (see hb_owner_of). */
static inline void hb_range_of(int64_t n, int r, int size, int64_t *lo, int64_t *hi)
{
    *lo = n * r / size;
    *hi = n * (r + 1) / size;
}

/* Not collective. The rows [*start, *start + *count) of chunk c of n_rows rows cut into
 * chunks of chunk_rows (the last one shorter). */
static inline void hb_chunk_range(int64_t c, int64_t chunk_rows, int64_t n_rows, int64_t *start, int64_t *count)
{
    *start = c * chunk_rows;
    *count = *start + chunk_rows > n_rows ? n_rows - *start : chunk_rows;
}

#endif
