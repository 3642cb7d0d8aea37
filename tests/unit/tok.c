/* Unit tests of the index tokenizer (kernels/index/tok.h, DESIGN.md 4.3).
 *
 * The expected tokens are written by hand from the Unicode rules the contract names:
 * NFKC (compatibility forms: ligatures, full-width and circled letters, superscripts,
 * fractions, Roman numerals), full case folding (ß -> ss, final sigma -> σ, İ -> i +
 * U+0307), default-ignorable code points removed (soft hyphen, zero-width joiner),
 * tokens as maximal runs of letters, marks and numbers; every byte that is not part of
 * a valid UTF-8 sequence counted and separating; the length limit on the normalized
 * bytes; Snowball's published English stems (running -> run, easily -> easili, skies ->
 * sky) and its English stop word list. */
#include "unit.h"

#include "kernels/index/tok.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tokens of text[0..len) as "a|b|<stop>|<long>" into out, with a fresh lexer, and
 * its counts; -1 when the lexer failed. */
static int toks(const hb_analyzer *a, const char *text, size_t len, char *out, size_t cap, hb_tok_counts *c)
{
    hb_lexer *lx = NULL;
    const uint32_t *ids;
    size_t n = 0, o = 0;
    out[0] = 0;
    if (hb_lexer_new(a, &lx) != 0) return -1;
    if (hb_lexer_run(lx, (const uint8_t *)text, len, &ids, &n) != 0) {
        hb_lexer_free(lx);
        return -1;
    }
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (i) out[o++] = '|';
        if (ids[i] == HB_TOK_STOP) {
            o += (size_t)snprintf(out + o, cap - o, "<stop>");
        } else if (ids[i] == HB_TOK_LONG) {
            o += (size_t)snprintf(out + o, cap - o, "<long>");
        } else {
            uint32_t tl;
            const uint8_t *t = hb_lexer_term(lx, ids[i], &tl);
            o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)tl, (const char *)t);
        }
        if (o >= cap) o = cap - 1;
    }
    out[o] = 0;
    if (c) *c = *hb_lexer_counts(lx);
    hb_lexer_free(lx);
    return (int)n;
}

/* expect(a, text, want): the tokens of the NUL-terminated text are want. */
#define EXPECT_TOKS(a, text, want)                                                                                     \
    do {                                                                                                               \
        char got_[1024];                                                                                               \
        int n_ = toks((a), (text), strlen(text), got_, sizeof got_, NULL);                                             \
        CHECKF(n_ >= 0 && strcmp(got_, (want)) == 0, "'%s': got '%s', want '%s'", (text), got_, (want));              \
    } while (0)

static void test_ascii(hb_analyzer *a)
{
    EXPECT_TOKS(a, "", "");
    EXPECT_TOKS(a, " ,.;-- ", "");
    EXPECT_TOKS(a, "Hello, World!", "hello|world");
    EXPECT_TOKS(a, "abc123 x-y_z 42", "abc123|x|y|z|42");
    EXPECT_TOKS(a, "don't", "don|t");
    EXPECT_TOKS(a, "MiXeD CASE", "mixed|case");
    /* runs longer than one 16-byte block, and a token across a block boundary */
    EXPECT_TOKS(a, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbb ccccccccccccccc ddddddddddddddddd",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|bbb|ccccccccccccccc|ddddddddddddddddd");
    EXPECT_TOKS(a, "tab\there\nnew\rline", "tab|here|new|line");
}

static void test_normalization(hb_analyzer *a)
{
    EXPECT_TOKS(a, "Stra\xc3\x9f" "e", "strasse");                         /* ß folds to ss */
    EXPECT_TOKS(a, "\xef\xac\x81nance", "finance");                        /* U+FB01 ligature fi */
    EXPECT_TOKS(a, "\xef\xbc\xa7\xef\xbd\x89\xef\xbd\x86 WI", "gif|wi");   /* full-width Ｇｉｆ */
    EXPECT_TOKS(a, "\xce\xa3\xce\x8a\xce\xa3\xce\xa5\xce\xa6\xce\x9f\xce\xa3", /* ΣΊΣΥΦΟΣ */
                "\xcf\x83\xce\xaf\xcf\x83\xcf\x85\xcf\x86\xce\xbf\xcf\x83"); /* σίσυφοσ: final Σ folds to σ */
    EXPECT_TOKS(a, "\xcf\x82", "\xcf\x83");                                /* ς folds to σ */
    EXPECT_TOKS(a, "e\xcc\x81t\xc3\xa9", "\xc3\xa9t\xc3\xa9");             /* e + U+0301 composes to é */
    EXPECT_TOKS(a, "abc\xcc\x81", "ab\xc4\x87");                            /* c + acute after ASCII: ć */
    EXPECT_TOKS(a, "x\xc2\xb2 \xc2\xbd \xe2\x85\xab", "x2|1|2|xii");       /* x², ½ = 1⁄2, Ⅻ = XII */
    EXPECT_TOKS(a, "\xe2\x92\xb6\xe2\x93\x91", "ab");                       /* circled Ⓐⓑ */
    EXPECT_TOKS(a, "\xc3\x85NGSTR\xc3\x96M", "\xc3\xa5ngstr\xc3\xb6m");    /* ÅNGSTRÖM */
    EXPECT_TOKS(a, "\xc4\xb0stanbul", "i\xcc\x87stanbul");                 /* İ folds to i + U+0307 */
    EXPECT_TOKS(a, "\xc7\x85" "emal", "d\xc5\xbe" "emal");                /* ǅ (title case) = dž */
    EXPECT_TOKS(a, "co\xc2\xadoperate zero\xe2\x80\x8dwidth", "cooperate|zerowidth"); /* ignorables go */
}

static void test_categories(hb_analyzer *a)
{
    EXPECT_TOKS(a, "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87", /* नमस्ते: marks */
                "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87");
    EXPECT_TOKS(a, "\xe6\x9d\xb1\xe4\xba\xac \xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc", /* 東京 タワー (ー is Lm) */
                "\xe6\x9d\xb1\xe4\xba\xac|\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc");
    EXPECT_TOKS(a, "\xe0\xa5\xa7\xe0\xa5\xa8\xe0\xa5\xa9 \xd9\xa4\xd9\xa5", /* १२३ ٤٥: digits of other scripts */
                "\xe0\xa5\xa7\xe0\xa5\xa8\xe0\xa5\xa9|\xd9\xa4\xd9\xa5");
    EXPECT_TOKS(a, "a\xf0\x9f\x98\x80" "b", "a|b");                        /* an emoji (So) separates */
    EXPECT_TOKS(a, "caf\xc3\xa9\xe2\x82\xac" "5", "caf\xc3\xa9|5");        /* € (Sc) separates */
    EXPECT_TOKS(a, "e\xcc\x81\xcc\x81", "\xc3\xa9\xcc\x81");               /* two accents: é + U+0301 */
}

/* Invalid bytes separate tokens and are counted one by one. */
static void test_invalid(hb_analyzer *a)
{
    const struct {
        const char *text;
        size_t len;
        const char *want;
        uint64_t invalid;
    } cases[] = {
        {"ab\xff" "cd", 5, "ab|cd", 1},
        {"ab\xc3", 3, "ab", 1},                 /* truncated at the end */
        {"\xc0\xafz", 3, "z", 2},               /* overlong '/' */
        {"\xed\xa0\x80q", 4, "q", 3},           /* a surrogate */
        {"\xe6\x9d", 2, "", 2},                 /* truncated 3-byte sequence */
        {"\xf4\x90\x80\x80x", 5, "x", 4},       /* above U+10FFFF */
        {"ok\xe6\x9d\xb1ok", 7, "ok\xe6\x9d\xb1ok", 0},
        {"a\x80\x80\x80" "b", 5, "a|b", 3},     /* lone continuation bytes */
        {"e\xcc", 2, "e", 1},                   /* a mark cut off */
        {"x\0y", 3, "x|y", 0},                  /* NUL is a separator, not invalid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char got[256];
        hb_tok_counts c;
        int n = toks(a, cases[i].text, cases[i].len, got, sizeof got, &c);
        CHECKF(n >= 0 && strcmp(got, cases[i].want) == 0, "invalid case %zu: got '%s', want '%s'", i, got,
               cases[i].want);
        CHECKF(c.invalid_bytes == cases[i].invalid, "invalid case %zu: %llu invalid bytes, want %llu", i,
               (unsigned long long)c.invalid_bytes, (unsigned long long)cases[i].invalid);
    }
}

/* max_token_bytes limits the normalized UTF-8; a long token keeps its position. */
static void test_max_bytes(void)
{
    hb_analyzer *a5 = NULL, *a2 = NULL, *a6 = NULL;
    if (!CHECK(hb_analyzer_new("none", 5, NULL, 0, &a5) == 0 && hb_analyzer_new("none", 2, NULL, 0, &a2) == 0 &&
               hb_analyzer_new("none", 6, NULL, 0, &a6) == 0))
        return;
    char got[256];
    hb_tok_counts c;
    toks(a5, "abcde abcdef x", 14, got, sizeof got, &c);
    CHECKF(strcmp(got, "abcde|<long>|x") == 0, "got '%s'", got);
    CHECK(c.tokens == 3 && c.too_long == 1 && c.stop == 0);
    EXPECT_TOKS(a5, "\xc3\xa9\xc3\xa9\xc3\xa9", "<long>");                  /* ééé: 6 bytes */
    EXPECT_TOKS(a5, "\xc3\xa9\xc3\xa9z", "\xc3\xa9\xc3\xa9z");              /* ééz: 5 bytes */
    EXPECT_TOKS(a2, "\xef\xac\x81", "fi");                                 /* 3 bytes in, 2 normalized */
    EXPECT_TOKS(a2, "\xef\xbc\xa1\xef\xbc\xa2", "ab");                      /* ＡＢ: 6 bytes in, 2 out */
    EXPECT_TOKS(a6, "Stra\xc3\x9f" "e", "<long>");                          /* strasse: 7 bytes */
    EXPECT_TOKS(a6, "Stra\xc3\x9f", "strass");                              /* 6 */
    /* a long token across ASCII and non-ASCII pieces */
    EXPECT_TOKS(a5, "abc\xc3\xa9xyz q", "<long>|q");
    hb_analyzer_free(a5);
    hb_analyzer_free(a2);
    hb_analyzer_free(a6);
}

static void test_stem_stop(void)
{
    CHECK(hb_tok_stemmer_valid("none") && hb_tok_stemmer_valid("english") && hb_tok_stemmer_valid("german"));
    CHECK(!hb_tok_stemmer_valid("klingon"));
    hb_analyzer *bad = NULL;
    CHECK(hb_analyzer_new("klingon", 64, NULL, 0, &bad) == 78);

    hb_analyzer *st = NULL;
    if (!CHECK(hb_analyzer_new("english", 64, NULL, 0, &st) == 0)) return;
    EXPECT_TOKS(st, "Running runs runner EASILY generously fairly skies dying",
                "run|run|runner|easili|generous|fair|sky|die");
    hb_analyzer_free(st);

    const char *en = hb_tok_english_stopwords();
    hb_analyzer *sw = NULL, *both = NULL;
    if (!CHECK(hb_analyzer_new("none", 64, en, strlen(en), &sw) == 0)) return;
    char got[256];
    hb_tok_counts c;
    toks(sw, "The cat and THE hat of running", 30, got, sizeof got, &c);
    CHECKF(strcmp(got, "<stop>|cat|<stop>|<stop>|hat|<stop>|running") == 0, "got '%s'", got);
    CHECK(c.tokens == 7 && c.stop == 4 && c.too_long == 0);
    hb_analyzer_free(sw);
    /* stop words are dropped before stemming: "running" stems, "being" is a stop word */
    if (!CHECK(hb_analyzer_new("english", 64, en, strlen(en), &both) == 0)) return;
    EXPECT_TOKS(both, "being running is very easily done", "<stop>|run|<stop>|<stop>|easili|done");
    hb_analyzer_free(both);

    /* a stop list of one's own: '|' and '#' start comments, words are normalized */
    const char list[] = "# a stop list\nHello world | a comment\n\tSTRASSE\n\n\xef\xac\x81nance # the ligature folds\n";
    hb_analyzer *own = NULL;
    if (!CHECK(hb_analyzer_new("none", 64, list, sizeof list - 1, &own) == 0)) return;
    size_t len = 0;
    const char *words = hb_analyzer_stopwords(own, &len);
    CHECKF(len == 28 && memcmp(words, "finance\nhello\nstrasse\nworld\n", 28) == 0, "stop words '%.*s'", (int)len, words);
    EXPECT_TOKS(own, "Hello a comment Stra\xc3\x9f" "e FINANCE worlds", "<stop>|a|comment|<stop>|<stop>|worlds");
    hb_analyzer_free(own);
}

/* One lexer over many texts: the same term keeps its id, ids count from 0. */
static void test_ids(void)
{
    hb_analyzer *a = NULL;
    hb_lexer *lx = NULL;
    if (!CHECK(hb_analyzer_new("none", 64, NULL, 0, &a) == 0 && hb_lexer_new(a, &lx) == 0)) return;
    const uint32_t *ids;
    size_t n;
    CHECK(hb_lexer_run(lx, (const uint8_t *)"Hello hello HELLO world", 23, &ids, &n) == 0);
    CHECK(n == 4 && ids[0] == ids[1] && ids[1] == ids[2] && ids[3] != ids[0]);
    uint32_t hello = ids[0], world = ids[3];
    CHECK(hb_lexer_terms(lx) == 2 && hello < 2 && world < 2);
    CHECK(hb_lexer_run(lx, (const uint8_t *)"world, \xef\xbd\x88\xef\xbd\x85llo!", 17, &ids, &n) == 0);
    CHECK(n == 2 && ids[0] == world && ids[1] == hello && hb_lexer_terms(lx) == 2);
    uint32_t tl;
    const uint8_t *t = hb_lexer_term(lx, hello, &tl);
    CHECK(tl == 5 && memcmp(t, "hello", 5) == 0);
    /* many distinct terms: the tables grow, every id maps back to its term */
    char doc[64];
    int ok = 1;
    for (int i = 0; i < 5000; i++) {
        int len = snprintf(doc, sizeof doc, "term%d x%dy", i, i % 7);
        if (hb_lexer_run(lx, (const uint8_t *)doc, (size_t)len, &ids, &n) != 0 || n != 2) {
            ok = 0;
            break;
        }
        char want[32];
        int wl = snprintf(want, sizeof want, "term%d", i);
        t = hb_lexer_term(lx, ids[0], &tl);
        ok &= tl == (uint32_t)wl && memcmp(t, want, tl) == 0;
    }
    CHECK(ok);
    CHECK(hb_lexer_terms(lx) == 2 + 5000 + 7);
    CHECK(hb_lexer_counts(lx)->tokens == 4 + 2 + 2 * 5000);
    hb_lexer_free(lx);
    hb_analyzer_free(a);
}

void unit_tok(void)
{
    hb_analyzer *a = NULL;
    if (!CHECK(hb_analyzer_new("none", 64, NULL, 0, &a) == 0)) return;
    test_ascii(a);
    test_normalization(a);
    test_categories(a);
    test_invalid(a);
    hb_analyzer_free(a);
    test_max_bytes();
    test_stem_stop();
    test_ids();
}
