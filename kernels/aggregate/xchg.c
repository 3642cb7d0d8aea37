/* The aggregate kernel's records to their owners, through the shared keyed exchange of
 * kernels/common: blocks of one record (an MPI datatype of esz bytes), so the parts need
 * no padding and the send buffer is laid out as the caller filled it, destination after
 * destination; counts travel as 64-bit numbers, so a round may move far past 2 GB. */
#include "kernels/aggregate/agg.h"

#include "core/hb.h"
#include "kernels/common/exchange.h"

#include <stdlib.h>

int agg_alltoallv(const void *send, const size_t *scount, size_t esz, void **recv, size_t *rcap, size_t *rcount,
                  size_t *rdispl, size_t *rtotal)
{
    hb_xchg x;
    int rc = hb_agree(hb_xchg_init(&x, 1));
    if (rc != 0) return rc;
    for (int d = 0; d < x.size; d++) x.scount[d] = scount[d];
    rc = hb_agree(hb_xchg_layout(&x));
    if (rc == 0) rc = hb_xchg_counts(&x);
    if (rc == 0) rc = hb_agree(x.rtotal > *rcap ? hb_xchg_reserve(recv, rcap, x.rtotal, esz) : 0);
    /* with blocks of one record there is no padding to zero: send is only read */
    if (rc == 0) rc = hb_xchg_move(&x, (void *)send, *recv, esz);
    for (int s = 0; rc == 0 && s < x.size; s++) rcount[s] = x.rcount[s], rdispl[s] = x.rdispl[s];
    *rtotal = rc == 0 ? x.received : 0;
    hb_xchg_free(&x);
    return rc;
}
