/* The risk kernel's checkpoint form (see risk.c): finished portfolio blocks, whole, and
 * each portfolio's top-k losses, which merge into any rank's sets. */
#include "kernels/risk/internal.h"

#include "core/hb.h"

#include <stdlib.h>
#include <string.h>

/* Not collective. Ascending order of doubles. */
static int cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int risk_save(void *state, void **buf, size_t *len)
{
    risk *r = state;
    const int64_t rw = r->lay.size;
    /* only the k largest of each set can be among the global top k: the rest need not be
     * saved; sorted, the losses' leading bytes repeat, which the compression of
     * checkpoints and partials finds (the tails are selections and exact sums, so the
     * order of a set never reaches the output) */
    if (r->methods & M_MC)
        for (int64_t p = 0; p < r->P; p++) {
            hb_topk_compact(&r->top[p]);
            qsort(r->top[p].buf, (size_t)r->top[p].n, sizeof *r->top[p].buf, cmp_f64);
        }
    /* a merge recomputes every chunk from the parts' descriptions (kernels/risk/partial.c)
     * and reads no saved record: a partial's saved state is its header alone */
    const int bare = r->ctx && r->ctx->saving_partial;
    size_t n = 6 * sizeof(int64_t);
    for (int64_t b = 0; b < r->npb && !bare; b++)
        if (r->done[b]) n += sizeof(int64_t) + (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double);
    if ((r->methods & M_MC) && !bare)
        for (int64_t p = 0; p < r->P; p++) n += sizeof(int64_t) + (size_t)r->top[p].n * sizeof(double);
    unsigned char *out = hb_malloc(n), *at = out;
    if (!out) return HB_EINTERNAL;
    int64_t nb = 0;
    for (int64_t b = 0; b < r->npb && !bare; b++) nb += r->done[b];
    int64_t head[6] = {(int64_t)RISK_SAVE_MAGIC, r->P, r->npb, rw, (r->methods & M_MC) && !bare ? r->kmax : 0, nb};
    memcpy(at, head, sizeof head), at += sizeof head;
    for (int64_t b = 0; b < r->npb && !bare; b++) {
        if (!r->done[b]) continue;
        int64_t np = r->P - b * PORTFOLIO_BLOCK < PORTFOLIO_BLOCK ? r->P - b * PORTFOLIO_BLOCK : PORTFOLIO_BLOCK;
        memcpy(at, &b, sizeof b), at += sizeof b;
        memset(at, 0, (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double));
        memcpy(at, r->rec + b * PORTFOLIO_BLOCK * rw, (size_t)(np * rw) * sizeof(double));
        at += (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double);
    }
    if ((r->methods & M_MC) && !bare)
        for (int64_t p = 0; p < r->P; p++) {
            memcpy(at, &r->top[p].n, sizeof(int64_t)), at += sizeof(int64_t);
            memcpy(at, r->top[p].buf, (size_t)r->top[p].n * sizeof(double)), at += (size_t)r->top[p].n * sizeof(double);
        }
    *buf = out;
    *len = n;
    return 0;
}

int risk_load(void *state, const void *buf, size_t len)
{
    risk *r = state;
    const unsigned char *at = buf, *end = at + len;
    const int64_t rw = r->lay.size;
    int64_t head[6];
    HB_CHECK(len >= sizeof head, HB_EINTERNAL, "risk", "checkpoint part is truncated");
    memcpy(head, at, sizeof head), at += sizeof head;
    HB_CHECK(head[0] == (int64_t)RISK_SAVE_MAGIC && head[1] == r->P && head[2] == r->npb && head[3] == rw &&
                 head[4] == ((r->methods & M_MC) ? r->kmax : 0),
             HB_EINTERNAL, "risk", "checkpoint part does not match this job's portfolios and options");
    const size_t bbytes = (size_t)PORTFOLIO_BLOCK * (size_t)rw * sizeof(double);
    for (int64_t i = 0; i < head[5]; i++) {
        int64_t b;
        HB_CHECK((size_t)(end - at) >= sizeof b + bbytes, HB_EINTERNAL, "risk", "checkpoint part is truncated");
        memcpy(&b, at, sizeof b), at += sizeof b;
        HB_CHECK(b >= 0 && b < r->npb, HB_EINTERNAL, "risk", "checkpoint part names block %lld of %lld", (long long)b,
                 (long long)r->npb);
        int64_t np = r->P - b * PORTFOLIO_BLOCK < PORTFOLIO_BLOCK ? r->P - b * PORTFOLIO_BLOCK : PORTFOLIO_BLOCK;
        memcpy(r->rec + b * PORTFOLIO_BLOCK * rw, at, (size_t)(np * rw) * sizeof(double));
        at += bbytes;
        r->done[b] = 1;
    }
    if (r->methods & M_MC)
        for (int64_t p = 0; p < r->P; p++) {
            int64_t n;
            HB_CHECK((size_t)(end - at) >= sizeof n, HB_EINTERNAL, "risk", "checkpoint part is truncated");
            memcpy(&n, at, sizeof n), at += sizeof n;
            HB_CHECK(n >= 0 && (size_t)(end - at) / sizeof(double) >= (size_t)n, HB_EINTERNAL, "risk",
                     "checkpoint part is truncated");
            /* unaligned in the buffer: add through a bounded copy */
            double v[256];
            for (int64_t i = 0; i < n; i += 256) {
                int64_t m = n - i < 256 ? n - i : 256;
                memcpy(v, at + (size_t)i * sizeof(double), (size_t)m * sizeof(double));
                hb_topk_add(&r->top[p], v, m);
            }
            at += (size_t)n * sizeof(double);
        }
    HB_CHECK(at == end, HB_EINTERNAL, "risk", "checkpoint part has %zu bytes too many", (size_t)(end - at));
    return 0;
}
