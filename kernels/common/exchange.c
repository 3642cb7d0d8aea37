/* The keyed exchange (see exchange.h): block-padded layouts and one MPI_Alltoallv per
 * array. With one rank nothing goes through MPI: the part to itself is copied. */
#include "kernels/common/exchange.h"

#include "core/hb.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* Not collective. Blocks that n elements fill. */
static size_t blocks_of(const hb_xchg *x, size_t n) { return (n + x->block - 1) / x->block; }

int hb_xchg_init(hb_xchg *x, size_t block)
{
    memset(x, 0, sizeof *x);
    x->size = hb_size;
    x->block = block ? block : 1;
    const size_t P = (size_t)hb_size;
    x->scount = hb_calloc(4 * P, sizeof *x->scount);
    x->sblocks = hb_calloc(4 * P, sizeof *x->sblocks);
    if (!x->scount || !x->sblocks) {
        hb_xchg_free(x);
        return HB_EINTERNAL;
    }
    x->sdispl = x->scount + P, x->rcount = x->scount + 2 * P, x->rdispl = x->scount + 3 * P;
    x->sbdispl = x->sblocks + P, x->rblocks = x->sblocks + 2 * P, x->rbdispl = x->sblocks + 3 * P;
    return 0;
}

void hb_xchg_free(hb_xchg *x)
{
    free(x->scount), free(x->sblocks);
    memset(x, 0, sizeof *x);
}

/* Not collective. Block counts and displacements of one side from its element counts;
 * -1 when they do not fit in ints. */
static int lay_out(const hb_xchg *x, const size_t *count, size_t *displ, int *blocks, int *bdispl, size_t *total)
{
    size_t at = 0; /* in blocks */
    for (int d = 0; d < x->size; d++) {
        size_t b = blocks_of(x, count[d]);
        if (b > INT_MAX || at > INT_MAX) return -1;
        blocks[d] = (int)b, bdispl[d] = (int)at;
        displ[d] = at * x->block;
        at += b;
    }
    *total = at * x->block;
    return 0;
}

int hb_xchg_layout(hb_xchg *x)
{
    if (lay_out(x, x->scount, x->sdispl, x->sblocks, x->sbdispl, &x->stotal) != 0)
        return hb_err_set(HB_EINTERNAL, "exchange", "the records for other ranks are too many for one exchange");
    return 0;
}

void hb_xchg_keep_own(hb_xchg *x)
{
    x->scount[hb_rank] = 0;
    x->sblocks[hb_rank] = 0;
}

int hb_xchg_counts(hb_xchg *x)
{
    int rc = 0;
    if (x->size == 1) {
        x->rcount[0] = x->scount[0];
    } else {
        uint64_t *s = hb_malloc(2 * (size_t)x->size * sizeof *s), *r = s ? s + x->size : NULL;
        rc = s ? 0 : HB_EINTERNAL;
        for (int d = 0; rc == 0 && d < x->size; d++) s[d] = x->scount[d];
        if (rc == 0 && MPI_Alltoall(s, 1, MPI_UINT64_T, r, 1, MPI_UINT64_T, MPI_COMM_WORLD) != MPI_SUCCESS)
            rc = hb_err_set(HB_EINTERNAL, "exchange", "MPI_Alltoall of the record counts failed");
        for (int d = 0; rc == 0 && d < x->size; d++) x->rcount[d] = (size_t)r[d];
        free(s);
    }
    if (rc == 0 && lay_out(x, x->rcount, x->rdispl, x->rblocks, x->rbdispl, &x->rtotal) != 0)
        rc = hb_err_set(HB_EINTERNAL, "exchange", "the records from other ranks are too many for one exchange");
    x->received = 0;
    for (int d = 0; rc == 0 && d < x->size; d++) x->received += x->rcount[d];
    return hb_agree(rc);
}

int hb_xchg_move(const hb_xchg *x, void *send, void *recv, size_t esz)
{
    char *s = send;
    for (int d = 0; d < x->size; d++) {
        size_t end = x->sdispl[d] + x->scount[d], pad = (size_t)x->sblocks[d] * x->block - x->scount[d];
        if (pad) memset(s + end * esz, 0, pad * esz);
    }
    if (x->size == 1) {
        if (x->scount[0]) memmove(recv, send, (size_t)x->sblocks[0] * x->block * esz);
        return 0;
    }
    int rc = 0;
    MPI_Datatype t = MPI_DATATYPE_NULL;
    if (x->block * esz > INT_MAX) rc = hb_err_set(HB_EINTERNAL, "exchange", "a block of %zu bytes is too large", x->block * esz);
    if (rc == 0 && (MPI_Type_contiguous((int)(x->block * esz), MPI_BYTE, &t) != MPI_SUCCESS ||
                    MPI_Type_commit(&t) != MPI_SUCCESS))
        rc = hb_err_set(HB_EINTERNAL, "exchange", "cannot make the MPI datatype of a block");
    rc = hb_agree(rc);
    if (rc == 0 && MPI_Alltoallv(send, x->sblocks, x->sbdispl, t, recv, x->rblocks, x->rbdispl, t, MPI_COMM_WORLD) !=
                       MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "exchange", "MPI_Alltoallv of the records failed");
    if (t != MPI_DATATYPE_NULL) MPI_Type_free(&t);
    return hb_agree(rc);
}

size_t hb_xchg_compact(const hb_xchg *x, void *recv, size_t esz)
{
    char *r = recv;
    size_t at = 0;
    for (int d = 0; d < x->size; d++) {
        if (x->rcount[d] && at != x->rdispl[d]) memmove(r + at * esz, r + x->rdispl[d] * esz, x->rcount[d] * esz);
        at += x->rcount[d];
    }
    return at;
}

int hb_xchg_reserve(void **buf, size_t *cap, size_t n, size_t esz)
{
    if (*buf && n <= *cap) return 0;
    if (n == 0) n = 1; /* never NULL: callers pass it to memcpy and MPI */
    void *p = hb_realloc(*buf, n * esz);
    if (!p) return HB_EINTERNAL;
    *buf = p;
    *cap = n;
    return 0;
}

int hb_xchg_run(hb_xchg *x, const hb_xchg_array *a, int n)
{
    HB_CALL(hb_xchg_counts(x));
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = hb_xchg_reserve(a[i].recv, a[i].cap, x->rtotal, a[i].esz);
    HB_CALL(hb_agree(rc));
    for (int i = 0; i < n; i++) {
        HB_CALL(hb_xchg_move(x, a[i].send, *a[i].recv, a[i].esz));
        hb_xchg_compact(x, *a[i].recv, a[i].esz);
    }
    return 0;
}

int hb_allgather(const void *mine, size_t n, size_t esz, void **all, size_t *total, const char *what)
{
    const int P = hb_size;
    int *cnt = hb_malloc((size_t)P * 2 * sizeof *cnt);
    uint64_t me = n, *each = hb_malloc((size_t)P * sizeof *each);
    *all = NULL, *total = 0;
    int rc = cnt && each ? 0 : HB_EINTERNAL;
    if ((rc = hb_agree(rc)) != 0) return free(cnt), free(each), rc;
    MPI_Allgather(&me, 1, MPI_UINT64_T, each, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    uint64_t sum = 0;
    for (int r = 0; r < P && rc == 0; r++) {
        if (each[r] * esz > INT_MAX || sum * esz > INT_MAX || (sum + each[r]) * esz > INT_MAX)
            rc = hb_err_set(HB_EINTERNAL, what, "too much to gather on every rank (over 2 GB)");
        else cnt[r] = (int)(each[r] * esz), cnt[P + r] = (int)(sum * esz);
        sum += each[r];
    }
    void *buf = rc ? NULL : hb_malloc(sum ? sum * esz : 1);
    if (rc == 0 && !buf) rc = HB_EINTERNAL;
    rc = hb_agree(rc);
    if (rc == 0) MPI_Allgatherv(mine, (int)(n * esz), MPI_BYTE, buf, cnt, cnt + P, MPI_BYTE, MPI_COMM_WORLD);
    free(cnt), free(each);
    if (rc) return free(buf), rc;
    *all = buf, *total = sum;
    return 0;
}
