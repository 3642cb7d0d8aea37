/* Variable-length unsigned integers (LEB128: 7 bits a byte, low bits first, the high bit
 * set on every byte but the last) for the compact saved states of partial states and
 * checkpoints (DESIGN.md 7): counts of repeated values, steps between sorted times. Not
 * collective; allocates nothing. */
#ifndef HB_COMMON_VARINT_H
#define HB_COMMON_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* The bytes hb_varint_put writes for x: 1 to 10. */
static inline size_t hb_varint_len(uint64_t x)
{
    size_t n = 1;
    while (x >= 0x80) x >>= 7, n++;
    return n;
}

/* Writes x at q; returns the byte after it. */
static inline unsigned char *hb_varint_put(unsigned char *q, uint64_t x)
{
    while (x >= 0x80) *q++ = (unsigned char)(x | 0x80), x >>= 7;
    *q++ = (unsigned char)x;
    return q;
}

/* Reads the varint at *q (before end) into *x and moves *q past it; -1 when it runs
 * past end or beyond 64 bits. */
static inline int hb_varint_get(const unsigned char **q, const unsigned char *end, uint64_t *x)
{
    uint64_t v = 0;
    for (int sh = 0; *q < end && sh < 64; sh += 7) {
        unsigned char b = *(*q)++;
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) return *x = v, 0;
    }
    return -1;
}

/* Signed numbers as unsigned ones whose varints are short when the number is small of
 * either sign: 0, -1, 1, -2 ... as 0, 1, 2, 3 ... */
static inline uint64_t hb_zigzag(int64_t d) { return ((uint64_t)d << 1) ^ (d < 0 ? UINT64_MAX : 0); }
static inline int64_t hb_unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

#endif
