/* The exact sum's rounding to double (see xsum.h). */
#include "kernels/common/xsum.h"

#include <math.h>

double hb_xsum_words_value(const int64_t *w, int nw, int n, int base)
{
    /* carry into base-2^32 digits (the sign ends up in the top digit) */
    int64_t d[HB_XSUM_WORDS];
    int64_t carry = 0;
    for (int i = 0; i < n; i++) {
        int64_t v = (i < nw ? w[i] : 0) + carry;
        carry = v >> 32; /* arithmetic shift: floor division */
        d[i] = v - carry * 4294967296LL;
    }
    int neg = carry < 0;
    if (neg) { /* negate the whole number so the digits are a magnitude */
        int64_t b = 0;
        for (int i = 0; i < n; i++) {
            int64_t v = -d[i] - b;
            b = v < 0;
            d[i] = v + b * 4294967296LL;
        }
    }
    int top = n - 1;
    while (top >= 0 && d[top] == 0) top--;
    if (top < 0) return 0.0;
    long double v = 0;
    int low = top - 3 < 0 ? 0 : top - 3;
    for (int i = top; i >= low; i--) v = v * 4294967296.0L + (long double)d[i];
    double r = (double)ldexpl(v, 32 * (base + low) - 1074);
    return neg ? -r : r;
}

double hb_xsum_value(const hb_xsum *s) { return hb_xsum_words_value(s->w, HB_XSUM_WORDS, HB_XSUM_WORDS, 0); }
