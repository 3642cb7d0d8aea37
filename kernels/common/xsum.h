/* An exact, order-independent sum of finite doubles: every value is added into a
 * fixed-point accumulator spanning the whole double range, so the result has the same
 * bits whatever order the values came in (any rank count, any thread schedule). One
 * accumulator takes up to 2^31 values. Not collective; allocates nothing. */
#ifndef HB_COMMON_XSUM_H
#define HB_COMMON_XSUM_H

#include <stdint.h>
#include <string.h>

#define HB_XSUM_WORDS 68
typedef struct hb_xsum {
    int64_t w[HB_XSUM_WORDS]; /* word i weighs 2^(32 i - 1074) */
} hb_xsum;

/* Not collective. Adds the finite value v to s exactly; inline, as hot loops call it for
 * every value. */
static inline void hb_xsum_add(hb_xsum *s, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint64_t e = (bits >> 52) & 0x7ff, mant = bits & ((1ull << 52) - 1);
    unsigned pos = 0; /* bit position of the mantissa's lowest bit above 2^-1074 */
    if (e) mant |= 1ull << 52, pos = (unsigned)e - 1;
    unsigned __int128 t = (unsigned __int128)mant << (pos & 31);
    int64_t *w = s->w + (pos >> 5);
    int64_t lo = (int64_t)(uint32_t)t, mid = (int64_t)(uint32_t)(t >> 32), hi = (int64_t)(t >> 64);
    if (bits >> 63) lo = -lo, mid = -mid, hi = -hi;
    w[0] += lo;
    w[1] += mid;
    w[2] += hi;
}

/* Not collective. The accumulated sum, rounded to double (deterministically; within an ulp). */
double hb_xsum_value(const hb_xsum *s);
/* Not collective. hb_xsum_value of the accumulator whose words base .. base + nw - 1 are
 * w[0 .. nw) and every other word is zero, carried over n digits (nw <= n, base + n <=
 * HB_XSUM_WORDS, n enough for the carries): a compact window's sum, the same bits. */
double hb_xsum_words_value(const int64_t *w, int nw, int n, int base);

#endif
