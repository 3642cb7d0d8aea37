/* Tariffs in exact decimals (docs/bill.md): prices and thresholds are parsed from their
 * decimal text into integers, never through binary floating point, and amounts are
 * products of integers rounded once, half to even, to whole cents. */
#include "kernels/bill/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Not collective. Parses a non-negative decimal "12", "1.2", "0.035" into an integer
 * of 10^-digits units; -1 when it is not such a number, has more than digits decimals,
 * or exceeds max. */
int bill_decimal(const char *s, int digits, int64_t max, int64_t *out)
{
    while (isspace((unsigned char)*s)) s++;
    int64_t v = 0;
    int nint = 0, nfrac = 0;
    for (; isdigit((unsigned char)*s); s++, nint++) {
        if (v > (max - (*s - '0')) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    if (*s == '.') {
        for (s++; isdigit((unsigned char)*s); s++, nfrac++) {
            if (nfrac >= digits) {
                if (*s != '0') return -1; /* a trailing zero beyond the resolution is harmless */
                continue;
            }
            if (v > (max - (*s - '0')) / 10) return -1;
            v = v * 10 + (*s - '0');
        }
        if (nfrac == 0) return -1;
    }
    if (nint == 0) return -1;
    for (int d = nfrac < digits ? nfrac : digits; d < digits; d++) {
        if (v > max / 10) return -1;
        v *= 10;
    }
    while (isspace((unsigned char)*s)) s++;
    if (*s) return -1;
    *out = v;
    return 0;
}

/* Not collective. Parses "0:1.20, 10:1.80, 30:2.50" (threshold in units: price per unit
 * above it) into t; 78 with the reason in msg. */
int bill_tariff_parse(const char *tiers, const char *fixed, bill_tariff *t, char *msg, size_t len)
{
    memset(t, 0, sizeof *t);
    if (!tiers || !*tiers) return snprintf(msg, len, "'tiers' is missing (e.g. tiers = 0:1.20, 10:1.80)"), HB_ECONFIG;
    char buf[1024];
    if (strlen(tiers) >= sizeof buf) return snprintf(msg, len, "tiers: the list is too long"), HB_ECONFIG;
    strcpy(buf, tiers);
    /* items split at every comma, so that an empty one (a doubled or trailing comma, a
     * tier left out) is an error, not skipped */
    for (char *item = buf, *next; item; item = next) {
        next = strchr(item, ',');
        if (next) *next++ = 0;
        if (t->n == BILL_MAX_TIERS)
            return snprintf(msg, len, "tiers: more than %d tiers", BILL_MAX_TIERS), HB_ECONFIG;
        char *colon = strchr(item, ':');
        while (isspace((unsigned char)*item)) item++;
        if (!*item)
            return snprintf(msg, len, "tiers: item %d is empty (a doubled or trailing comma?)", t->n + 1), HB_ECONFIG;
        if (!colon) return snprintf(msg, len, "tiers: '%s' is not THRESHOLD:PRICE", item), HB_ECONFIG;
        *colon = 0;
        if (bill_decimal(item, 3, BILL_MAX_MILLI, &t->from[t->n]))
            return snprintf(msg, len, "tiers: threshold '%s' is not a non-negative decimal with at most 3 decimals",
                            item),
                   HB_ECONFIG;
        if (bill_decimal(colon + 1, 6, BILL_MAX_PRICE, &t->price[t->n]))
            return snprintf(msg, len, "tiers: price '%s' is not a non-negative decimal with at most 6 decimals",
                            colon + 1),
                   HB_ECONFIG;
        if (t->n == 0 && t->from[0] != 0)
            return snprintf(msg, len, "tiers: the first threshold must be 0, not '%s'", item), HB_ECONFIG;
        if (t->n > 0 && t->from[t->n] <= t->from[t->n - 1])
            return snprintf(msg, len, "tiers: threshold '%s' is not above the one before", item), HB_ECONFIG;
        t->n++;
    }
    if (t->n == 0) return snprintf(msg, len, "tiers: no tier given"), HB_ECONFIG;
    if (bill_decimal(fixed ? fixed : "0", 2, BILL_MAX_CENTS, &t->fixed))
        return snprintf(msg, len, "fixed_charge '%s' is not a non-negative amount with at most 2 decimals", fixed),
               HB_ECONFIG;
    return 0;
}

/* Not collective. n / d rounded half to even (n >= 0, d > 0). */
static __int128 div_half_even(__int128 n, __int128 d)
{
    __int128 q = n / d, r = n % d;
    if (2 * r > d || (2 * r == d && (q & 1))) q++;
    return q;
}

/* Not collective. The bill of q milli-units: cents per tier (each rounded half to even)
 * into cents[0..n), and the total with the fixed charge; -1 when an amount overflows
 * int64. */
int bill_amounts(const bill_tariff *t, int64_t q, int64_t *cents, int64_t *total)
{
    int64_t sum = t->fixed;
    for (int k = 0; k < t->n; k++) {
        int64_t lo = t->from[k], hi = k + 1 < t->n ? t->from[k + 1] : INT64_MAX;
        int64_t in = q <= lo ? 0 : (q < hi ? q : hi) - lo;
        /* milli-units x micro-currency per unit = 10^-9 currency; a cent is 10^7 of them */
        __int128 c = div_half_even((__int128)in * t->price[k], (__int128)10000000);
        if (c > INT64_MAX) return -1;
        cents[k] = (int64_t)c;
        if (__builtin_add_overflow(sum, cents[k], &sum)) return -1;
    }
    *total = sum;
    return 0;
}
