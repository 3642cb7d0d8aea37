/* The tokenizer of the inverted index (see tok.h): a lexer cuts, normalizes and looks up
 * tokens; its analyzer (stemmer and stop words) is in analyzer.c.
 *
 * A boundary before an ASCII character is a normalization boundary: ASCII characters
 * are starters that nothing composes with as a second character, so NFKC_Casefold of a
 * text is the concatenation of NFKC_Casefold of its pieces cut before each ASCII
 * character. An ASCII character whose next byte is ASCII too is therefore a piece of its
 * own, normalized by folding A-Z to a-z; letters and digits are token bytes and the rest
 * separators. Runs of such bytes are classified and folded 16 at a time (SSE2) into bit
 * masks, and tokens are cut out of the masks with bit scans: there is no branch per byte
 * to mispredict. Only pieces with non-ASCII text (one ASCII character and the non-ASCII
 * run after it, which may hold combining marks for it) go through utf8proc, and their
 * normalized form is cached, as the same pieces recur.
 *
 * A lexer maps each distinct token to what it became (a term id, or a stop word), so stop
 * words and stems are worked out once per distinct token. Tokens are looked up in
 * batches whose hash slots are prefetched first, so that the cache misses of a large
 * vocabulary overlap instead of adding up. Nothing here is collective. */
#include "kernels/index/tok.h"

#include "kernels/index/internal.h"

#include "core/hb.h"

#include <libstemmer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define XXH_INLINE_ALL
#include <xxhash.h>

#define BATCH 32               /* tokens looked up together */
#define PIECE_CACHE_MAX 64     /* longest piece whose normalization is cached (bytes) */
#define PIECE_CACHE_ENTRIES (1 << 16)
#define PIECE_CACHE_BYTES (8u << 20)

/* utf8proc_NFKC_Casefold's options, without NUL termination: we pass lengths. */
#define NFKC_CF (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE)

const char *hb_tok_unicode_version(void) { return utf8proc_unicode_version(); }

/* The first 8 bytes of s, zero-padded; reads only len bytes. */
static inline uint64_t key_of(const uint8_t *s, uint32_t len)
{
    uint8_t b[8] = {0};
    memcpy(b, s, len < 8 ? len : 8);
    uint64_t k;
    memcpy(&k, b, 8);
    return k;
}

/* The same from a buffer with at least 8 readable bytes at s: one load and a mask. */
static inline uint64_t key_of_padded(const uint8_t *s, uint32_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t k;
    memcpy(&k, s, 8);
    return len >= 8 ? k : k & (((uint64_t)1 << (8 * len)) - 1);
#else
    return key_of(s, len);
#endif
}

/* A string's hash: strings of up to 8 bytes, most tokens, are hashed from their key
 * with splitmix64's finalizer; longer ones with XXH3. */
static inline uint64_t hash_of(const uint8_t *s, uint32_t len, uint64_t key)
{
    if (len > 8) return XXH3_64bits(s, len);
    uint64_t z = key + (uint64_t)len * 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* A set of byte strings with a value each, by open addressing. A slot holds the
 * string's first 8 bytes and, with its length, part of the hash, so looking up a string
 * of up to 8 bytes touches one 16-byte slot and nothing else; longer strings compare the
 * rest with the copy in a byte arena. */
typedef struct slot {
    uint64_t key; /* first 8 bytes, zero-padded */
    uint32_t tag; /* hash bits << 8 | min(length, 255); 0 marks an empty slot */
    uint32_t e;   /* entry index */
} slot;

typedef struct strtab {
    slot *slot;
    size_t mask;
    uint8_t *bytes;
    size_t nbytes, capbytes;
    uint64_t *off;
    uint32_t *len, *val;
    uint32_t n, cap;
} strtab;

/* A slot's tag: hash bits and the length, never 0. */
static inline uint32_t tag_of(uint64_t h, uint32_t len) { return (uint32_t)(h >> 40) << 8 | (len < 255 ? len : 255); }

/* An empty table; -1 when out of memory. */
static int strtab_init(strtab *t)
{
    memset(t, 0, sizeof *t);
    t->mask = 1023;
    t->slot = calloc(t->mask + 1, sizeof *t->slot);
    t->cap = 512;
    t->off = malloc(t->cap * sizeof *t->off);
    t->len = malloc(t->cap * sizeof *t->len);
    t->val = malloc(t->cap * sizeof *t->val);
    t->capbytes = 1 << 16;
    t->bytes = malloc(t->capbytes);
    return t->slot && t->off && t->len && t->val && t->bytes ? 0 : -1;
}

/* Frees a table; safe on an empty one. */
static void strtab_free(strtab *t)
{
    free(t->slot), free(t->off), free(t->len), free(t->val), free(t->bytes);
    memset(t, 0, sizeof *t);
}

/* Whether a[8..len) equals b[8..len), for strings of 9 to 16 bytes with 8 readable bytes
 * at a + 8 and b + 8: one load each, not a call to memcmp. */
static inline int same_second_word(const uint8_t *a, const uint8_t *b, uint32_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x, y;
    memcpy(&x, a + 8, 8);
    memcpy(&y, b + 8, 8);
    return ((x ^ y) & (len >= 16 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * (len - 8))) - 1)) == 0;
#else
    return memcmp(a + 8, b + 8, len - 8) == 0;
#endif
}

/* The entry holding s (hash h, key k), or -1. s has 8 readable bytes past its end. */
static inline int64_t strtab_find(const strtab *t, const uint8_t *s, uint32_t len, uint64_t h, uint64_t k)
{
    const uint32_t tag = tag_of(h, len);
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        const slot *sl = &t->slot[i];
        if (!sl->tag) return -1;
        if (sl->tag != tag || sl->key != k) continue;
        if (len <= 8) return sl->e;
        const uint8_t *b = t->bytes + t->off[sl->e];
        /* below 255 bytes the tag holds the length */
        if (len <= 16 ? same_second_word(b, s, len) : t->len[sl->e] == len && memcmp(b + 8, s + 8, len - 8) == 0)
            return sl->e;
    }
}

/* Doubles the slots, keeping the load at most one half. */
static int strtab_grow_slots(strtab *t)
{
    size_t nmask = t->mask * 2 + 1;
    slot *ns = calloc(nmask + 1, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        const slot *sl = &t->slot[i];
        if (!sl->tag) continue;
        const uint8_t *s = t->bytes + t->off[sl->e];
        size_t j = (size_t)hash_of(s, t->len[sl->e], sl->key) & nmask;
        while (ns[j].tag) j = (j + 1) & nmask;
        ns[j] = *sl;
    }
    free(t->slot);
    t->slot = ns;
    t->mask = nmask;
    return 0;
}

/* Adds s (known to be absent; hash h, key k) with value val; returns its entry or -1
 * when out of memory. */
static int64_t strtab_add(strtab *t, const uint8_t *s, uint32_t len, uint64_t h, uint64_t k, uint32_t val)
{
    if (t->n == UINT32_MAX - 2) return -1; /* ids must stay below HB_TOK_STOP */
    if ((size_t)(t->n + 1) * 2 > t->mask && strtab_grow_slots(t) != 0) return -1;
    if (t->n == t->cap) {
        uint32_t cap = t->cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : t->cap * 2;
        uint64_t *o = realloc(t->off, cap * sizeof *o);
        if (o) t->off = o;
        uint32_t *l = realloc(t->len, cap * sizeof *l);
        if (l) t->len = l;
        uint32_t *v = realloc(t->val, cap * sizeof *v);
        if (v) t->val = v;
        if (!o || !l || !v) return -1;
        t->cap = cap;
    }
    if (t->nbytes + len + 8 > t->capbytes) { /* 8 spare bytes for same_second_word */
        size_t cap = t->capbytes * 2 > t->nbytes + len + 8 ? t->capbytes * 2 : t->nbytes + len + 8;
        uint8_t *b = realloc(t->bytes, cap);
        if (!b) return -1;
        t->bytes = b;
        t->capbytes = cap;
    }
    uint32_t e = t->n++;
    memcpy(t->bytes + t->nbytes, s, len);
    t->off[e] = t->nbytes;
    t->len[e] = len;
    t->val[e] = val;
    t->nbytes += len;
    size_t i = (size_t)h & t->mask;
    while (t->slot[i].tag) i = (i + 1) & t->mask;
    t->slot[i] = (slot){k, tag_of(h, len), e};
    return e;
}

struct hb_lexer {
    const hb_analyzer *a;
    struct sb_stemmer *stem;
    int direct;           /* no stemmer and no stop words: a token is its own term */
    strtab terms, cache;  /* terms; and tokens -> term ids when not direct */
    strtab pieces;        /* non-ASCII pieces -> offset of their normalization in pout */
    uint8_t *pout;        /* per piece: u32 length, then token bytes with 0 for separators */
    size_t npout, cappout;
    uint8_t *tok;         /* a token cut by a piece boundary, being built */
    size_t toklen;
    int toolong;
    uint8_t *fold;        /* the document's ASCII bytes, folded, and 16 spare bytes */
    size_t capfold;
    uint64_t *masks;      /* of an ASCII run: bit i set when byte i is a letter or digit */
    size_t capmasks;
    int32_t *cp;          /* code points of the piece being normalized */
    size_t cpcap;
    uint8_t *norm;        /* its normalization */
    size_t capnorm;
    uint8_t piece[PIECE_CACHE_MAX + 8]; /* a cached piece's bytes, with spare bytes */
    uint8_t *stembuf;     /* a stem, with spare bytes */
    size_t capstem;
    uint32_t *ids;
    size_t nids, capids;
    /* tokens waiting for their ids */
    uint8_t *pbuf; /* bytes of the waiting tokens that were built in tok */
    size_t pbytes;
    const uint8_t *pptr[BATCH];
    uint64_t phash[BATCH], pkey[BATCH];
    uint32_t plen[BATCH];
    size_t pidx[BATCH];
    int npend;
    int failed;
    hb_tok_counts counts;
};

/* The term id of a token seen for the first time: stop word, or its stem's id. */
static uint32_t resolve(hb_lexer *lx, const uint8_t *s, uint32_t len)
{
    if (ix_is_stop(lx->a, s, len)) return HB_TOK_STOP;
    const uint8_t *t = s;
    uint32_t tl = len;
    if (lx->stem) {
        const sb_symbol *st = sb_stemmer_stem(lx->stem, s, (int)len);
        if (!st) {
            lx->failed = 1;
            return HB_TOK_STOP;
        }
        int sl = sb_stemmer_length(lx->stem);
        if (sl > 0) { /* an empty stem would be no term at all */
            /* a copy with the spare bytes strtab_find reads */
            if (hb_grow((void **)&lx->stembuf, &lx->capstem, (size_t)sl + 8, 1)) {
                lx->failed = 1;
                return HB_TOK_STOP;
            }
            memcpy(lx->stembuf, st, (size_t)sl);
            memset(lx->stembuf + sl, 0, 8);
            t = lx->stembuf, tl = (uint32_t)sl;
        }
    }
    uint64_t k = key_of(t, tl), h = hash_of(t, tl, k);
    int64_t e = strtab_find(&lx->terms, t, tl, h, k);
    if (e < 0) e = strtab_add(&lx->terms, t, tl, h, k, lx->terms.n);
    if (e < 0) {
        lx->failed = 1;
        return HB_TOK_STOP;
    }
    return (uint32_t)e;
}

/* Looks up the ids of the waiting tokens. */
static void flush(hb_lexer *lx)
{
    strtab *t = lx->direct ? &lx->terms : &lx->cache;
    for (int j = 0; j < lx->npend; j++) __builtin_prefetch(&t->slot[lx->phash[j] & t->mask]);
    for (int j = 0; j < lx->npend; j++) {
        const uint8_t *s = lx->pptr[j];
        const uint32_t len = lx->plen[j];
        int64_t e = strtab_find(t, s, len, lx->phash[j], lx->pkey[j]);
        uint32_t id;
        if (e >= 0) {
            id = lx->direct ? (uint32_t)e : t->val[e];
        } else if (lx->direct) {
            e = strtab_add(t, s, len, lx->phash[j], lx->pkey[j], t->n);
            if (e < 0) lx->failed = 1;
            id = e < 0 ? HB_TOK_STOP : (uint32_t)e;
        } else {
            id = resolve(lx, s, len);
            if (strtab_add(t, s, len, lx->phash[j], lx->pkey[j], id) < 0) lx->failed = 1;
        }
        lx->counts.stop += id == HB_TOK_STOP;
        lx->ids[lx->pidx[j]] = id;
    }
    lx->npend = 0;
    lx->pbytes = 0;
}

/* Records a complete token of len bytes at s, which stay readable (with 8 more bytes)
 * until the next flush; its id comes with the batch, or is HB_TOK_LONG. */
static inline void emit(hb_lexer *lx, const uint8_t *s, size_t len, int toolong)
{
    if (lx->nids == lx->capids && hb_grow((void **)&lx->ids, &lx->capids, lx->nids + 1, sizeof *lx->ids)) {
        lx->failed = 1;
        return;
    }
    lx->counts.tokens++;
    if (toolong || len > (size_t)lx->a->max_bytes) {
        lx->ids[lx->nids++] = HB_TOK_LONG;
        lx->counts.too_long++;
        return;
    }
    const int j = lx->npend++;
    lx->pptr[j] = s;
    lx->plen[j] = (uint32_t)len;
    lx->pkey[j] = key_of_padded(s, (uint32_t)len);
    lx->phash[j] = hash_of(s, (uint32_t)len, lx->pkey[j]);
    lx->pidx[j] = lx->nids++;
    if (lx->npend == BATCH) flush(lx);
}

/* Ends the token being built in tok, if any. */
static void end_token(hb_lexer *lx)
{
    if (!lx->toklen && !lx->toolong) return;
    uint8_t *p = lx->pbuf + lx->pbytes;
    if (!lx->toolong) {
        memcpy(p, lx->tok, lx->toklen);
        memset(p + lx->toklen, 0, 8);
        lx->pbytes += lx->toklen + 8;
    }
    emit(lx, p, lx->toklen, lx->toolong);
    lx->toklen = 0;
    lx->toolong = 0;
}

/* Appends k bytes to the token in tok; past the limit it only remembers that it is too long. */
static inline void tok_append(hb_lexer *lx, const uint8_t *b, size_t k)
{
    if (lx->toolong) return;
    if (lx->toklen + k > (size_t)lx->a->max_bytes) {
        lx->toolong = 1;
        return;
    }
    memcpy(lx->tok + lx->toklen, b, k);
    lx->toklen += k;
}

/* Length of the valid UTF-8 sequence of a non-ASCII lead byte at s (utf8proc's rules:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or 0 when invalid. */
static inline size_t utf8_seq(const uint8_t *s, size_t avail)
{
    uint8_t c = s[0];
    if (c < 0xC2 || c > 0xF4) return 0;
    if (c < 0xE0) return avail >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;
        if (c == 0xED && s[1] > 0x9F) return 0;
        return 3;
    }
    if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;
    if (c == 0xF4 && s[1] > 0x8F) return 0;
    return 4;
}

/* The normalization of the valid UTF-8 piece s[0..len) into lx->norm: the UTF-8 of its
 * letters, marks and numbers, and a 0 byte for every other character; its length. */
static size_t normalize(hb_lexer *lx, const uint8_t *s, size_t len)
{
    utf8proc_ssize_t m = utf8proc_decompose_custom(s, (utf8proc_ssize_t)len, lx->cp, (utf8proc_ssize_t)lx->cpcap,
                                                   NFKC_CF, NULL, NULL);
    if (m > (utf8proc_ssize_t)lx->cpcap) {
        if (hb_grow((void **)&lx->cp, &lx->cpcap, (size_t)m, sizeof *lx->cp)) return lx->failed = 1, 0;
        m = utf8proc_decompose_custom(s, (utf8proc_ssize_t)len, lx->cp, (utf8proc_ssize_t)lx->cpcap, NFKC_CF, NULL,
                                      NULL);
    }
    if (m < 0) return lx->failed = 1, 0; /* cannot happen on valid UTF-8 */
    m = utf8proc_normalize_utf32(lx->cp, m, NFKC_CF);
    if (hb_grow((void **)&lx->norm, &lx->capnorm, 4 * (size_t)m + 1, 1)) return lx->failed = 1, 0;
    size_t n = 0;
    for (utf8proc_ssize_t i = 0; i < m; i++) {
        const int32_t c = lx->cp[i];
        const utf8proc_category_t cat = utf8proc_category(c);
        if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO)
            n += (size_t)utf8proc_encode_char(c, lx->norm + n);
        else
            lx->norm[n++] = 0;
    }
    return n;
}

/* Feeds a normalized piece (token bytes, 0 for separators) to the tokens. */
static void feed(hb_lexer *lx, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) tok_append(lx, p + i, 1);
        else end_token(lx);
    }
}

/* Normalizes the valid UTF-8 piece s[0..len) into the tokens, through the cache. */
static void normalize_piece(hb_lexer *lx, const uint8_t *s, size_t len)
{
    if (len > PIECE_CACHE_MAX) {
        feed(lx, lx->norm, normalize(lx, s, len));
        return;
    }
    memcpy(lx->piece, s, len); /* the text may end right after the piece */
    memset(lx->piece + len, 0, 8);
    s = lx->piece;
    uint64_t k = key_of(s, (uint32_t)len), h = hash_of(s, (uint32_t)len, k);
    int64_t e = strtab_find(&lx->pieces, s, (uint32_t)len, h, k);
    if (e >= 0) {
        const uint8_t *p = lx->pout + lx->pieces.val[e];
        uint32_t n;
        memcpy(&n, p, 4);
        feed(lx, p + 4, n);
        return;
    }
    size_t n = normalize(lx, s, len);
    /* a full cache starts over: it only saves time */
    if (lx->pieces.n >= PIECE_CACHE_ENTRIES || lx->npout + n + 4 > PIECE_CACHE_BYTES) {
        strtab_free(&lx->pieces);
        lx->npout = 0;
        if (strtab_init(&lx->pieces)) lx->failed = 1;
    }
    if (!lx->failed && !hb_grow((void **)&lx->pout, &lx->cappout, lx->npout + n + 4, 1) &&
        strtab_add(&lx->pieces, s, (uint32_t)len, h, k, (uint32_t)lx->npout) >= 0) {
        uint32_t n32 = (uint32_t)n;
        memcpy(lx->pout + lx->npout, &n32, 4);
        memcpy(lx->pout + lx->npout + 4, lx->norm, n);
        lx->npout += n + 4;
    }
    feed(lx, lx->norm, n);
}

/* The end of the run of ASCII bytes of t that starts at i, 8 bytes at a step. */
static inline size_t ascii_run(const uint8_t *t, size_t i, size_t len)
{
    for (uint64_t w; i + 8 <= len; i += 8) {
        memcpy(&w, t + i, 8);
        if (w & 0x8080808080808080u) break;
    }
    while (i < len && t[i] < 0x80) i++;
    return i;
}

/* Folds the n ASCII bytes at b into f and sets mask bit i when b[i] is a letter or a
 * digit (bits past n stay clear). */
static void classify(const uint8_t *b, size_t n, uint8_t *f, uint64_t *mk)
{
    memset(mk, 0, (n + 63) / 64 * sizeof *mk);
    size_t j = 0;
#ifdef __SSE2__
    const __m128i a = _mm_set1_epi8('a'), z = _mm_set1_epi8(25), d0 = _mm_set1_epi8('0'), d9 = _mm_set1_epi8(9);
    const __m128i sp = _mm_set1_epi8(0x20);
    for (; j + 16 <= n; j += 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + j));
        const __m128i t = _mm_sub_epi8(_mm_or_si128(v, sp), a), d = _mm_sub_epi8(v, d0);
        const __m128i alpha = _mm_cmpeq_epi8(_mm_min_epu8(t, z), t), digit = _mm_cmpeq_epi8(_mm_min_epu8(d, d9), d);
        _mm_storeu_si128((__m128i *)(void *)(f + j), _mm_or_si128(v, _mm_and_si128(alpha, sp)));
        mk[j >> 6] |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_or_si128(alpha, digit)) << (j & 63);
    }
#endif
    for (; j < n; j++) {
        const uint8_t c = b[j], l = c | 0x20;
        const int alpha = (uint8_t)(l - 'a') < 26, digit = (uint8_t)(c - '0') < 10;
        f[j] = alpha ? l : c;
        mk[j >> 6] |= (uint64_t)(alpha | digit) << (j & 63);
    }
}

/* The first index >= pos (below n) whose mask bit is want, else n. */
static inline size_t next_bit(const uint64_t *mk, size_t pos, size_t n, int want)
{
    if (pos >= n) return n;
    const uint64_t flip = want ? 0 : ~(uint64_t)0;
    size_t w = pos >> 6;
    uint64_t x = (mk[w] ^ flip) & (~(uint64_t)0 << (pos & 63));
    while (!x) {
        if (++w * 64 >= n) return n;
        x = mk[w] ^ flip;
    }
    size_t r = w * 64 + (size_t)__builtin_ctzll(x);
    return r < n ? r : n;
}

/* Cuts the tokens out of the n ASCII bytes at doc[i..], each a piece of its own. A token
 * already being built continues into them; one that reaches their end continues after. */
static void scan_ascii(hb_lexer *lx, const uint8_t *doc, size_t i, size_t n)
{
    if (hb_grow((void **)&lx->masks, &lx->capmasks, (n + 63) / 64, sizeof *lx->masks)) {
        lx->failed = 1;
        return;
    }
    const uint64_t *mk = lx->masks;
    uint8_t *f = lx->fold + i; /* tokens wait in fold for their batch: it covers the document */
    classify(doc + i, n, f, lx->masks);
    size_t pos = 0;
    if (lx->toklen || lx->toolong) {
        size_t e = next_bit(mk, 0, n, 0);
        tok_append(lx, f, e);
        if (e == n) return;
        end_token(lx);
        pos = e;
    }
    for (;;) {
        const size_t s = next_bit(mk, pos, n, 1);
        if (s >= n) return;
        const size_t e = next_bit(mk, s, n, 0);
        if (e == n) {
            tok_append(lx, f + s, e - s);
            return;
        }
        emit(lx, f + s, e - s, 0);
        pos = e;
    }
}

int hb_lexer_run(hb_lexer *lx, const uint8_t *text, size_t len, const uint32_t **ids, size_t *n)
{
    lx->nids = 0;
    lx->toklen = 0;
    lx->toolong = 0;
    if (hb_grow((void **)&lx->fold, &lx->capfold, len + 16, 1)) return HB_EINTERNAL;
    memset(lx->fold + len, 0, 16);
    size_t i = 0;
    while (i < len) {
        /* ASCII followed by ASCII is a piece of its own; the last ASCII byte before
         * non-ASCII text starts the next piece, as marks after it may combine with it */
        size_t r = ascii_run(text, i, len), fast = r < len && r > i ? r - 1 : r;
        if (fast > i) scan_ascii(lx, text, i, fast - i);
        i = fast;
        if (i == len) break;
        size_t q = i + (text[i] < 0x80);
        while (q < len && text[q] >= 0x80) {
            size_t k = utf8_seq(text + q, len - q);
            if (!k) break;
            q += k;
        }
        if (q > i) normalize_piece(lx, text + i, q - i);
        i = q;
        if (i < len && text[i] >= 0x80) { /* an invalid byte: counted, and a separator */
            lx->counts.invalid_bytes++;
            end_token(lx);
            i++;
        }
    }
    end_token(lx);
    flush(lx);
    *ids = lx->ids;
    *n = lx->nids;
    return lx->failed ? HB_EINTERNAL : 0;
}

const uint8_t *hb_lexer_term(const hb_lexer *lx, uint32_t id, uint32_t *len)
{
    *len = lx->terms.len[id];
    return lx->terms.bytes + lx->terms.off[id];
}

uint32_t hb_lexer_terms(const hb_lexer *lx) { return lx->terms.n; }

const hb_tok_counts *hb_lexer_counts(const hb_lexer *lx) { return &lx->counts; }

int hb_lexer_new(const hb_analyzer *a, hb_lexer **lxp)
{
    *lxp = NULL;
    hb_lexer *lx = calloc(1, sizeof *lx);
    if (!lx) return hb_err_set(HB_EINTERNAL, "index", "out of memory for a tokenizer");
    lx->a = a;
    lx->direct = !a->probe && a->nstop == 0;
    lx->tok = malloc((size_t)a->max_bytes + 8);
    lx->pbuf = malloc(BATCH * ((size_t)a->max_bytes + 8));
    int ok = lx->tok && lx->pbuf && strtab_init(&lx->terms) == 0 && strtab_init(&lx->pieces) == 0 &&
             (lx->direct || strtab_init(&lx->cache) == 0);
    if (ok && a->probe) ok = (lx->stem = sb_stemmer_new(a->stemmer, "UTF_8")) != NULL;
    if (!ok) {
        hb_lexer_free(lx);
        return hb_err_set(HB_EINTERNAL, "index", "out of memory for a tokenizer");
    }
    *lxp = lx;
    return 0;
}

void hb_lexer_free(hb_lexer *lx)
{
    if (!lx) return;
    if (lx->stem) sb_stemmer_delete(lx->stem);
    strtab_free(&lx->terms);
    strtab_free(&lx->cache);
    strtab_free(&lx->pieces);
    free(lx->pout), free(lx->tok), free(lx->fold), free(lx->masks), free(lx->cp), free(lx->norm);
    free(lx->ids), free(lx->pbuf), free(lx->stembuf);
    free(lx);
}

