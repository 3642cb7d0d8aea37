/* The aggregate kernel's exchange plumbing, kept to one function in one file so that the
 * shared keyed exchange of kernels/common can take its place: counts travel as 64-bit
 * numbers, elements as an MPI datatype of esz bytes, so a round may move far more than
 * 2 GB as long as each rank pair moves fewer than 2^31 elements. */
#include "kernels/aggregate/agg.h"

#include "core/hb.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

int agg_alltoallv(const void *send, const size_t *scount, size_t esz, void **recv, size_t *rcap, size_t *rcount,
                  size_t *rdispl, size_t *rtotal)
{
    const int P = hb_size;
    uint64_t *sc = hb_malloc((size_t)P * 2 * sizeof *sc);
    int *ic = hb_malloc((size_t)P * 4 * sizeof *ic);
    int rc = sc && ic ? 0 : HB_EINTERNAL;
    HB_CALL(hb_agree(rc));
    uint64_t *rc64 = sc + P;
    for (int d = 0; d < P; d++) sc[d] = scount[d];
    rc = MPI_Alltoall(sc, 1, MPI_UINT64_T, rc64, 1, MPI_UINT64_T, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : HB_EINTERNAL;
    size_t total = 0, spos = 0;
    int *scn = ic, *sdi = ic + P, *rcn = ic + 2 * P, *rdi = ic + 3 * P;
    for (int d = 0; rc == 0 && d < P; d++) {
        if (sc[d] > INT_MAX || rc64[d] > INT_MAX || spos > INT_MAX || total > INT_MAX)
            rc = hb_err_set(HB_EINTERNAL, "exchange", "more than 2^31 records between two ranks in one round; use a "
                                                      "smaller chunk_rows");
        scn[d] = (int)sc[d], sdi[d] = (int)spos, spos += sc[d];
        rcount[d] = rc64[d], rdispl[d] = total, rcn[d] = (int)rc64[d], rdi[d] = (int)total;
        total += rc64[d];
    }
    if (rc == 0 && total > *rcap) {
        void *p = hb_realloc(*recv, total * esz);
        if (p) *recv = p, *rcap = total;
        else rc = HB_EINTERNAL;
    }
    rc = hb_agree(rc);
    MPI_Datatype t = MPI_DATATYPE_NULL;
    if (rc == 0 && (MPI_Type_contiguous((int)esz, MPI_BYTE, &t) != MPI_SUCCESS || MPI_Type_commit(&t) != MPI_SUCCESS))
        rc = HB_EINTERNAL;
    rc = hb_agree(rc);
    if (rc == 0 && MPI_Alltoallv(send, scn, sdi, t, *recv, rcn, rdi, t, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = hb_err_set(HB_EINTERNAL, "exchange", "MPI_Alltoallv failed");
    if (t != MPI_DATATYPE_NULL) MPI_Type_free(&t);
    *rtotal = total;
    free(sc), free(ic);
    return hb_agree(rc);
}
