/* The analyzer of the inverted index's tokenizer (see tok.h): what every lexer of one
 * index shares read-only, the stemmer's name and the stop words, normalized by a lexer
 * like the documents. Nothing here is collective. */
#include "kernels/index/tok.h"

#include "kernels/index/internal.h"
#include "core/hb.h"

#include <libstemmer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Snowball's English stop word list without its contractions ("don't", "i'm", ...),
 * which this tokenizer splits at the apostrophe into pieces that are words of their own. */
static const char english_stopwords[] =
    "i me my myself we our ours ourselves you your yours yourself yourselves\n"
    "he him his himself she her hers herself it its itself they them their theirs themselves\n"
    "what which who whom this that these those am is are was were be been being\n"
    "have has had having do does did doing would should could ought cannot\n"
    "a an the and but if or because as until while of at by for with about against\n"
    "between into through during before after above below to from up down in out on off\n"
    "over under again further then once here there when where why how all any both each\n"
    "few more most other some such no nor not only own same so than too very\n";

const char *hb_tok_english_stopwords(void) { return english_stopwords; }

const char *hb_tok_stemmers(void)
{
    static char list[1024];
    if (!list[0]) {
        size_t n = 0;
        for (const char **l = sb_stemmer_list(); *l && n + strlen(*l) + 3 < sizeof list; l++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *l);
    }
    return list;
}

int hb_tok_stemmer_valid(const char *name)
{
    if (strcmp(name, "none") == 0) return 1;
    struct sb_stemmer *s = sb_stemmer_new(name, "UTF_8");
    if (s) sb_stemmer_delete(s);
    return s != NULL;
}

int ix_is_stop(const hb_analyzer *a, const uint8_t *s, size_t len)
{
    size_t lo = 0, hi = a->nstop;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = bytes_cmp(a->stop[mid], a->stop_len[mid], s, len);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

typedef struct word {
    const uint8_t *s;
    uint32_t len;
} word;

/* Words by their bytes. */
static int word_cmp(const void *x, const void *y)
{
    const word *a = x, *b = y;
    return bytes_cmp(a->s, a->len, b->s, b->len);
}

/* Fills a's stop words with every token of text (normalized like the documents). */
static int load_stopwords(hb_analyzer *a, const char *text, size_t len)
{
    char *clean = malloc(len + 1);
    if (!clean) return HB_EINTERNAL;
    int comment = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') comment = 0;
        else if (text[i] == '|' || text[i] == '#') comment = 1;
        clean[i] = comment ? ' ' : text[i];
    }
    hb_analyzer plain = {.max_bytes = 4096};
    hb_lexer *lx = NULL;
    const uint32_t *ids;
    size_t n;
    int rc = hb_lexer_new(&plain, &lx);
    if (rc == 0 && hb_lexer_run(lx, (const uint8_t *)clean, len, &ids, &n) != 0) rc = HB_EINTERNAL;
    free(clean);
    uint32_t nw = rc == 0 ? hb_lexer_terms(lx) : 0;
    word *w = rc == 0 ? malloc((nw ? nw : 1) * sizeof *w) : NULL;
    if (rc == 0 && !w) rc = HB_EINTERNAL;
    size_t bytes = 0;
    for (uint32_t i = 0; rc == 0 && i < nw; i++) {
        w[i].s = hb_lexer_term(lx, i, &w[i].len);
        bytes += w[i].len + 1;
    }
    if (rc == 0) {
        qsort(w, nw, sizeof *w, word_cmp);
        a->stop_text = malloc(bytes ? bytes : 1);
        a->stop = malloc((nw ? nw : 1) * sizeof *a->stop);
        a->stop_len = malloc((nw ? nw : 1) * sizeof *a->stop_len);
        if (!a->stop_text || !a->stop || !a->stop_len) rc = HB_EINTERNAL;
    }
    for (uint32_t i = 0; rc == 0 && i < nw; i++) {
        uint8_t *p = a->stop_text + a->stop_text_len;
        memcpy(p, w[i].s, w[i].len);
        p[w[i].len] = '\n';
        a->stop[i] = p;
        a->stop_len[i] = w[i].len;
        a->stop_text_len += w[i].len + 1;
    }
    if (rc == 0) a->nstop = nw;
    free(w);
    hb_lexer_free(lx);
    return rc == 0 ? 0 : hb_err_set(rc, "index", "out of memory reading the stop words");
}

int hb_analyzer_new(const char *stemmer, int max_token_bytes, const char *stop_text, size_t stop_len,
                    hb_analyzer **ap)
{
    *ap = NULL;
    hb_analyzer *a = calloc(1, sizeof *a);
    if (!a) return hb_err_set(HB_EINTERNAL, "index", "out of memory");
    a->max_bytes = max_token_bytes;
    snprintf(a->stemmer, sizeof a->stemmer, "%s", stemmer);
    if (strcmp(stemmer, "none") != 0) {
        a->probe = sb_stemmer_new(stemmer, "UTF_8");
        if (!a->probe) {
            hb_analyzer_free(a);
            return hb_err_set(HB_ECONFIG, "index", "unknown stemmer '%s' (Snowball has: %s)", stemmer,
                              hb_tok_stemmers());
        }
    }
    if (stop_text) {
        int rc = load_stopwords(a, stop_text, stop_len);
        if (rc) {
            hb_analyzer_free(a);
            return rc;
        }
    }
    *ap = a;
    return 0;
}

void hb_analyzer_free(hb_analyzer *a)
{
    if (!a) return;
    if (a->probe) sb_stemmer_delete(a->probe);
    free(a->stop_text), free(a->stop), free(a->stop_len);
    free(a);
}

const char *hb_analyzer_stopwords(const hb_analyzer *a, size_t *len)
{
    *len = a->stop_text_len;
    return (const char *)a->stop_text;
}
