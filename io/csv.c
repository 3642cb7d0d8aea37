/* CSV records and values for `h5batch import`: a tokenizer that reads fields in place
 * (no copy unless a field holds doubled quotes), number and time parsers that accept
 * exactly the text they describe, and local time to UTC (docs/import.md). */
#include "io/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The first i in [i, end) where buf[i] is the delimiter, a quote or LF (end when none):
 * 16 bytes at a time with SSE2, else a byte at a time. */
static inline size_t scan_unquoted(const char *buf, size_t i, size_t end, char delim)
{
#if defined(__SSE2__)
    const __m128i d = _mm_set1_epi8(delim), q = _mm_set1_epi8('"'), n = _mm_set1_epi8('\n');
    for (; i + 16 <= end; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, d), _mm_cmpeq_epi8(x, q)), _mm_cmpeq_epi8(x, n));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask) return i + (size_t)__builtin_ctz(mask);
    }
#endif
    for (; i < end; i++) {
        char c = buf[i];
        if (c == delim || c == '\n' || c == '"') break;
    }
    return i;
}

const char *hb_csv_bad_text(hb_csv_bad b)
{
    switch (b) {
    case HB_CSV_AFTER_QUOTE: return "text after the closing quote of a quoted field";
    case HB_CSV_STRAY_QUOTE: return "a quote inside an unquoted field (quote the whole field and double the quote)";
    case HB_CSV_UNTERMINATED: return "a quoted field is not closed before the end of the file";
    case HB_CSV_TOO_LONG: return "a field of 4 GiB or more";
    default: return "well-formed";
    }
}

/* From i (outside quotes, or at the stray quote itself) to the first line break with the
 * quotes balanced; the position after it. */
static size_t resync(const char *buf, size_t end, size_t i, int64_t *nl, int *open)
{
    int q = 0;
    for (; i < end; i++) {
        char c = buf[i];
        if (c == '"') q ^= 1;
        else if (c == '\n') {
            ++*nl;
            if (!q) return i + 1;
        }
    }
    *open = q;
    return end;
}

hb_csv_bad hb_csv_record(const char *buf, size_t end, size_t *pos, char delim, hb_csv_field *f, int maxf, int *nf,
                         int64_t *newlines)
{
    size_t i = *pos;
    int n = 0;
    int64_t nl = 0;
    hb_csv_bad bad = HB_CSV_OK;
    *nf = 0;
    *newlines = 0;
    if (i >= end) return HB_CSV_OK;
    if (buf[i] == '\n' || (buf[i] == '\r' && i + 1 < end && buf[i + 1] == '\n')) { /* a blank line */
        *pos = i + (buf[i] == '\r' ? 2 : 1);
        *newlines = 1;
        return HB_CSV_OK;
    }
    for (;;) {
        size_t s, len;
        uint32_t esc = 0;
        if (i < end && buf[i] == '"') {
            s = ++i;
            for (;;) {
                if (i >= end) {
                    *pos = end;
                    *nf = n + 1;
                    *newlines = nl;
                    return HB_CSV_UNTERMINATED;
                }
                char c = buf[i];
                if (c == '"') {
                    if (i + 1 < end && buf[i + 1] == '"') {
                        esc = 1;
                        i += 2;
                        continue;
                    }
                    break;
                }
                nl += c == '\n';
                i++;
            }
            len = i - s;
            i++;
            if (i < end && buf[i] != delim && buf[i] != '\n' &&
                !(buf[i] == '\r' && (i + 1 == end || buf[i + 1] == '\n'))) {
                bad = HB_CSV_AFTER_QUOTE;
                break;
            }
        } else {
            s = i;
            i = scan_unquoted(buf, i, end, delim);
            if (i < end && buf[i] == '"') {
                bad = HB_CSV_STRAY_QUOTE;
                break;
            }
            len = i - s;
            if (len && buf[s + len - 1] == '\r' && (i == end || buf[i] == '\n')) len--;
        }
        if (len >= UINT32_MAX) {
            bad = HB_CSV_TOO_LONG;
            break;
        }
        if (n < maxf) f[n] = (hb_csv_field){buf + s, (uint32_t)len, esc};
        n++;
        if (i >= end) break;
        if (buf[i] == delim) {
            i++;
            continue;
        }
        if (buf[i] == '\r') i++;
        if (i < end) {
            nl++;
            i++;
        }
        break;
    }
    if (bad != HB_CSV_OK) {
        int open = 0;
        i = resync(buf, end, i, &nl, &open);
        if (open) bad = HB_CSV_UNTERMINATED;
    }
    *pos = i;
    *nf = n;
    *newlines = nl;
    return bad;
}

void hb_csv_count(const char *buf, size_t lo, size_t hi, uint64_t *quotes, uint64_t *newlines)
{
    uint64_t q = 0, l = 0;
#pragma omp simd reduction(+ : q, l)
    for (size_t i = lo; i < hi; i++) {
        q += buf[i] == '"';
        l += buf[i] == '\n';
    }
    *quotes = q;
    *newlines = l;
}

size_t hb_csv_sync(const char *buf, size_t lo, size_t hi, int odd, int64_t *newlines)
{
    *newlines = 0;
    if (lo == 0 || (!odd && buf[lo - 1] == '\n')) return lo;
    int q = odd;
    for (size_t i = lo; i < hi; i++) {
        char c = buf[i];
        if (c == '"') q ^= 1;
        else if (c == '\n') {
            ++*newlines;
            if (!q) return i + 1 < hi ? i + 1 : hi;
        }
    }
    return hi;
}

size_t hb_csv_unescaped_len(const hb_csv_field *f)
{
    if (!f->escaped) return f->len;
    size_t n = 0;
    for (uint32_t i = 0; i < f->len; i++, n++)
        if (f->p[i] == '"') i++;
    return n;
}

void hb_csv_unescape(const hb_csv_field *f, char *dst)
{
    if (!f->escaped) {
        memcpy(dst, f->p, f->len);
        return;
    }
    for (uint32_t i = 0; i < f->len; i++) {
        *dst++ = f->p[i];
        if (f->p[i] == '"') i++;
    }
}

int hb_csv_int(const char *p, size_t n, int64_t *v)
{
    size_t i = 0;
    int neg = 0;
    if (n && (p[0] == '-' || p[0] == '+')) neg = p[i++] == '-';
    if (i == n) return -1;
    uint64_t x = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9) return -1;
        if (x > (lim - d) / 10) return -1;
        x = x * 10 + d;
    }
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

/* The decimal syntax pandas reads as a number: digits with an optional point and
 * exponent, or inf/infinity/nan; never hex or leading/trailing blanks. */
static int float_syntax(const char *p, size_t n)
{
    size_t i = 0;
    if (n && (p[0] == '-' || p[0] == '+')) i++;
    size_t r = n - i;
    char c0 = i < n ? (char)(p[i] | 0x20) : 0;
    if ((c0 == 'i' || c0 == 'n') && ((r == 3 && (!strncasecmp(p + i, "inf", 3) || !strncasecmp(p + i, "nan", 3))) ||
        (r == 8 && !strncasecmp(p + i, "infinity", 8))))
        return 0;
    size_t d = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++, d++;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9') i++, d++;
    }
    if (d == 0) return -1;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '-' || p[i] == '+')) i++;
        size_t e = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9') i++, e++;
        if (e == 0) return -1;
    }
    return i == n ? 0 : -1;
}

int hb_csv_float_syntax(const char *p, size_t n) { return n == 0 ? -1 : float_syntax(p, n); }

/* Clinger's fast path: a decimal of at most 15 digits times a power of ten of at most 22
 * is one correctly rounded operation on two exact doubles; anything else goes to strtod. */
static int fast_float(const char *p, size_t n, double *v)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    int neg = 0, digits = 0, frac = 0;
    if (p[0] == '-' || p[0] == '+') neg = p[i++] == '-';
    uint64_t m = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, digits++) m = m * 10 + (uint64_t)(p[i] - '0');
    if (i < n && p[i] == '.')
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++, digits++, frac++) m = m * 10 + (uint64_t)(p[i] - '0');
    if (i != n || digits == 0 || digits > 15) return -1;
    double d = (double)m / pow10[frac];
    *v = neg ? -d : d;
    return 0;
}

int hb_csv_float(const char *p, size_t n, double *v)
{
    char buf[512];
    if (n == 0 || n >= sizeof buf) return -1;
    if (fast_float(p, n, v) == 0) return 0; /* what it reads is float syntax */
    if (float_syntax(p, n)) return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    *v = strtod(buf, NULL); /* correctly rounded in glibc, in the C locale h5batch runs in */
    return 0;
}

/* Reads 1 to max digits at p[*i]; exactly max when exact. */
static int digits(const char *p, size_t n, size_t *i, int max, int exact, int *v)
{
    int k = 0, x = 0;
    while (*i < n && k < max && p[*i] >= '0' && p[*i] <= '9') x = x * 10 + (p[(*i)++] - '0'), k++;
    if (k == 0 || (exact && k != max)) return -1;
    *v = x;
    return 0;
}

/* Civil date and time to seconds; -1 when not a real date or time. */
static int civil(int64_t y, int mo, int d, int h, int mi, int s, int64_t *out)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 59 || y < 1 || y > 9999) return -1;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return -1;
    *out = hb_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return 0;
}

/* Z, or +HH, +HHMM, +HH:MM (and -) at p[*i]: the offset in seconds. */
static int offset(const char *p, size_t n, size_t *i, int *off)
{
    if (*i < n && p[*i] == 'Z') {
        ++*i;
        *off = 0;
        return 0;
    }
    if (*i >= n || (p[*i] != '+' && p[*i] != '-')) return -1;
    int sign = p[(*i)++] == '-' ? -1 : 1, h, m = 0;
    if (digits(p, n, i, 2, 1, &h)) return -1;
    if (*i < n && p[*i] == ':') ++*i;
    if (*i < n && digits(p, n, i, 2, 1, &m)) return -1;
    if (h > 23 || m > 59) return -1;
    *off = sign * (h * 3600 + m * 60);
    return 0;
}

/* Two digits at p, or -1. */
static inline int two(const char *p)
{
    unsigned a = (unsigned char)p[0] - '0', b = (unsigned char)p[1] - '0';
    return a > 9 || b > 9 ? -1 : (int)(a * 10 + b);
}

/* The common layouts at fixed places: YYYY-MM-DD, and with [T ]HH:MM:SS and an optional
 * Z. 1 when it is not one of them (the general reader decides), else what it returns. */
static int iso_fixed(const char *p, size_t n, hb_csv_time *t)
{
    if (!(n == 10 || n == 19 || (n == 20 && p[19] == 'Z')) || p[4] != '-' || p[7] != '-') return 1;
    int yh = two(p), yl = two(p + 2), mo = two(p + 5), d = two(p + 8), h = 0, mi = 0, s = 0;
    if (yh < 0 || yl < 0 || mo < 0 || d < 0) return 1;
    if (n > 10) {
        if ((p[10] != 'T' && p[10] != ' ') || p[13] != ':' || p[16] != ':') return 1;
        h = two(p + 11), mi = two(p + 14), s = two(p + 17);
        if (h < 0 || mi < 0 || s < 0) return 1;
    }
    if (civil(yh * 100 + yl, mo, d, h, mi, s, &t->secs)) return -1;
    t->has_offset = n == 20;
    return 0;
}

int hb_csv_iso(const char *p, size_t n, hb_csv_time *t)
{
    int fixed = iso_fixed(p, n, t);
    if (fixed <= 0) return fixed;
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, s = 0, off = 0, has = 0;
    if (n > 2 && (p[1] == '.' || p[2] == '.')) {
        /* D.M.YYYY, day first, as German, Swiss, Austrian, Nordic and Russian exports write
         * dates (DuckDB's sniffer reads them so too): no other reading of two dots */
        if (digits(p, n, &i, 2, 0, &d) || i >= n || p[i++] != '.' || digits(p, n, &i, 2, 0, &mo) || i >= n ||
            p[i++] != '.' || digits(p, n, &i, 4, 1, &y))
            return -1;
    } else if (digits(p, n, &i, 4, 1, &y) || i >= n || p[i++] != '-' || digits(p, n, &i, 2, 1, &mo) || i >= n ||
               p[i++] != '-' || digits(p, n, &i, 2, 1, &d)) {
        return -1;
    }
    if (i < n) {
        if (p[i] != 'T' && p[i] != ' ') return -1;
        i++;
        if (digits(p, n, &i, 2, 1, &h) || i >= n || p[i++] != ':' || digits(p, n, &i, 2, 1, &mi)) return -1;
        if (i < n && p[i] == ':') {
            i++;
            if (digits(p, n, &i, 2, 1, &s)) return -1;
            if (i < n && (p[i] == '.' || p[i] == ',')) {
                size_t k = ++i;
                while (i < n && p[i] >= '0' && p[i] <= '9') i++;
                if (i == k) return -1;
            }
        }
        if (i < n) {
            if (offset(p, n, &i, &off)) return -1;
            has = 1;
        }
    }
    if (i != n || civil(y, mo, d, h, mi, s, &t->secs)) return -1;
    t->secs -= off;
    t->has_offset = has;
    return 0;
}

static const char *const months[12] = {"january", "february", "march",     "april",   "may",      "june",
                                       "july",    "august",   "september", "october", "november", "december"};

/* A month name, full or abbreviated to three letters, any case: 1-12, or -1. */
static int month_name(const char *p, size_t n, size_t *i)
{
    for (int m = 0; m < 12; m++) {
        size_t full = strlen(months[m]);
        if (*i + full <= n && !strncasecmp(p + *i, months[m], full)) {
            *i += full;
            return m + 1;
        }
    }
    for (int m = 0; m < 12; m++)
        if (*i + 3 <= n && !strncasecmp(p + *i, months[m], 3)) {
            *i += 3;
            return m + 1;
        }
    return -1;
}

int hb_csv_format_check(const char *fmt, char *bad)
{
    for (const char *c = fmt; *c; c++) {
        if (*c != '%') continue;
        c++;
        if (!*c || !strchr("YmdeHMSybBhjpIfzZTF%", *c)) {
            *bad = *c; /* '\0': a '%' ends the format */
            return -1;
        }
    }
    return 0;
}

int hb_csv_strptime(const char *p, size_t n, const char *fmt, hb_csv_time *t)
{
    size_t i = 0;
    int y = 1970, mo = 1, d = 1, h = 0, mi = 0, s = 0, doy = 0, pm = -1, off = 0, has = 0, v;
    for (const char *c = fmt; *c; c++) {
        if (*c == ' ') {
            while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
            continue;
        }
        if (*c != '%') {
            if (i >= n || p[i] != *c) return -1;
            i++;
            continue;
        }
        switch (*++c) {
        case 'Y': if (digits(p, n, &i, 4, 0, &y)) return -1; break;
        case 'y':
            if (digits(p, n, &i, 2, 1, &v)) return -1;
            y = v < 69 ? 2000 + v : 1900 + v; /* POSIX: 69-99 are 19xx */
            break;
        case 'm': if (digits(p, n, &i, 2, 0, &mo)) return -1; break;
        case 'e':
            while (i < n && p[i] == ' ') i++;
            if (digits(p, n, &i, 2, 0, &d)) return -1;
            break;
        case 'd': if (digits(p, n, &i, 2, 0, &d)) return -1; break;
        case 'H': if (digits(p, n, &i, 2, 0, &h)) return -1; break;
        case 'I':
            if (digits(p, n, &i, 2, 0, &h) || h < 1 || h > 12) return -1;
            if (pm < 0) pm = 0;
            break;
        case 'M': if (digits(p, n, &i, 2, 0, &mi)) return -1; break;
        case 'S': if (digits(p, n, &i, 2, 0, &s)) return -1; break;
        case 'j': if (digits(p, n, &i, 3, 0, &doy) || doy < 1 || doy > 366) return -1; break;
        case 'b': case 'B': case 'h':
            if ((mo = month_name(p, n, &i)) < 0) return -1;
            break;
        case 'p':
            if (i + 2 > n) return -1;
            if (!strncasecmp(p + i, "AM", 2)) pm = 0;
            else if (!strncasecmp(p + i, "PM", 2)) pm = 1;
            else return -1;
            i += 2;
            break;
        case 'f': {
            size_t k = i;
            while (i < n && p[i] >= '0' && p[i] <= '9') i++;
            if (i == k) return -1;
            break;
        }
        case 'z':
            if (offset(p, n, &i, &off)) return -1;
            has = 1;
            break;
        case 'Z':
            if (i + 3 <= n && !strncmp(p + i, "UTC", 3)) i += 3;
            else if (i + 3 <= n && !strncmp(p + i, "GMT", 3)) i += 3;
            else if (i < n && p[i] == 'Z') i++;
            else return -1;
            has = 1;
            break;
        case 'T':
            if (digits(p, n, &i, 2, 0, &h) || i >= n || p[i++] != ':' || digits(p, n, &i, 2, 0, &mi) || i >= n ||
                p[i++] != ':' || digits(p, n, &i, 2, 0, &s))
                return -1;
            break;
        case 'F':
            if (digits(p, n, &i, 4, 0, &y) || i >= n || p[i++] != '-' || digits(p, n, &i, 2, 0, &mo) || i >= n ||
                p[i++] != '-' || digits(p, n, &i, 2, 0, &d))
                return -1;
            break;
        case '%':
            if (i >= n || p[i] != '%') return -1;
            i++;
            break;
        default: return -1;
        }
    }
    if (i != n) return -1;
    if (pm >= 0) {
        if (h < 1 || h > 12) return -1;
        h = h % 12 + (pm ? 12 : 0);
    }
    if (doy) {
        int64_t days = hb_days_from_civil(y, 1, 1) + doy - 1;
        int64_t yy;
        hb_civil_from_days(days, &yy, &mo, &d);
        if (yy != y) return -1;
    }
    if (civil(y, mo, d, h, mi, s, &t->secs)) return -1;
    t->secs -= off;
    t->has_offset = has;
    return 0;
}

static inline int64_t off_at(const hb_tzmap *m, int64_t t) { return hb_tzmap_local(m, t) - t; }

int64_t hb_csv_local_to_utc(const hb_tzmap *m, int64_t local)
{
    int64_t oa = off_at(m, local - 86400), ob = off_at(m, local + 86400);
    int va = off_at(m, local - oa) == oa, vb = off_at(m, local - ob) == ob;
    if (oa == ob || (va && !vb)) return local - oa;
    if (vb && !va) return local - ob;
    if (va && vb) return local - oa < local - ob ? local - oa : local - ob; /* first occurrence */
    /* in the gap: the instant the offset becomes ob, between local - max and local - min */
    int64_t lo = local - (oa > ob ? oa : ob), hi = local - (oa > ob ? ob : oa);
    if (off_at(m, lo) == ob) return lo;
    while (hi - lo > 1) { /* off(lo) != ob, off(hi) == ob */
        int64_t mid = lo + (hi - lo) / 2;
        if (off_at(m, mid) == ob) hi = mid;
        else lo = mid;
    }
    return hi;
}
