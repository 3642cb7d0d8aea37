/* Text for people and programs: UTF-8 validation and JSON strings, for status.json,
 * `kernels --json`, `query --json` and error lines. */
#include "core/hb.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int hb_utf8_len(const unsigned char *p, size_t avail)
{
    if (avail == 0) return 0;
    int n = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (size_t)n > avail || (n == 2 && p[0] < 0xC2) || (n == 4 && p[0] > 0xF4)) return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))) return 0; /* overlong, surrogate */
    if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))) return 0;
    return n;
}

/* 1 when the word w holds a NUL or a byte above 0x7f (a word has a zero byte when
 * (w - 0x01..01) & ~w & 0x80..80 is not 0). */
static inline uint64_t word_bad(uint64_t w)
{
    return (w | ((w - 0x0101010101010101u) & ~w)) & 0x8080808080808080u;
}

/* 1 when u[0, n) is ASCII without NUL: whole words, the last one overlapping. */
static inline int plain_ascii(const unsigned char *u, size_t n)
{
    uint64_t w, bad = 0;
    if (n < 8) {
        for (size_t i = 0; i < n; i++) bad |= u[i] >= 0x80 || u[i] == 0;
        return !bad;
    }
    for (size_t i = 0; i + 8 < n; i += 8) memcpy(&w, u + i, 8), bad |= word_bad(w);
    memcpy(&w, u + n - 8, 8);
    return !(bad | word_bad(w));
}

/* Plain ASCII goes eight bytes at a time (import checks every record, tables every label). */
size_t hb_utf8_first_bad(const unsigned char *p, size_t n)
{
    if (plain_ascii(p, n)) return n;
    size_t i = 0;
    while (i < n) {
        uint64_t w;
        if (i + 8 <= n && (memcpy(&w, p + i, 8), !word_bad(w))) {
            i += 8;
            continue;
        }
        if (p[i] && p[i] < 0x80) {
            i++;
            continue;
        }
        int k = p[i] ? hb_utf8_len(p + i, n - i) : 0;
        if (k == 0) return i;
        i += (size_t)k;
    }
    return n;
}

void hb_utf8_why(const unsigned char *p, size_t i, char *buf, size_t len)
{
    if (!p[i]) snprintf(buf, len, "byte %zu is a NUL", i + 1);
    else snprintf(buf, len, "byte %zu is 0x%02x, not UTF-8", i + 1, p[i]);
}

void hb_json_str(FILE *f, const char *s, size_t len)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        int n = hb_utf8_len(p, (size_t)(end - p));
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else if (n == 0) fputs("\\ufffd", f);
        else fwrite(p, 1, (size_t)n, f);
        p += n ? n : 1;
    }
    fputc('"', f);
}
