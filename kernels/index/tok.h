/* The tokenizer of the inverted index (DESIGN.md 4.3), shared by the index kernel and
 * `h5batch query` so that a query is cut into terms exactly as the documents were.
 *
 * A text is decoded as UTF-8 (an invalid byte separates tokens and is counted), each
 * stretch between invalid bytes is normalized with utf8proc's NFKC_Casefold (NFKC, full
 * case folding, default-ignorable code points removed), and tokens are the maximal runs
 * of letters, marks and numbers (L*, M*, N*) of the normalized text. A token longer than
 * max_token_bytes (normalized UTF-8) is dropped; a stop word is dropped; the others are
 * stemmed by Snowball when a stemmer is set. Dropped tokens keep their position, so
 * positions count every token of a document. Nothing in the tokenizer is collective: it
 * needs no MPI. */
#ifndef HB_INDEX_TOK_H
#define HB_INDEX_TOK_H

#include <stddef.h>
#include <stdint.h>

#define HB_TOK_NORMALIZATION "NFKC_Casefold"
#define HB_TOK_LONG UINT32_MAX       /* token id of a token over max_token_bytes */
#define HB_TOK_STOP (UINT32_MAX - 1) /* token id of a stop word */

/* Settings shared read-only by every thread: stemmer, stop words, length limit. */
typedef struct hb_analyzer hb_analyzer;
/* One thread's tokenizer: buffers, its own stemmer and a cache of the terms it saw. */
typedef struct hb_lexer hb_lexer;

/* Not collective. The Snowball languages libstemmer knows, for messages. */
const char *hb_tok_stemmers(void);
/* Not collective. 1 when name is "none" or a language libstemmer knows. */
int hb_tok_stemmer_valid(const char *name);
/* The Unicode version of utf8proc's tables, which decides what normalization does. */
const char *hb_tok_unicode_version(void);
/* The English stop word list (Snowball's), as text with one or more words a line. */
const char *hb_tok_english_stopwords(void);

/* Not collective. An analyzer with stemmer ("none" or a Snowball language) and token
 * limit; stop words come from text (every token of it, after '|' or '#' a line is a
 * comment), or none when stop_text is NULL. 78 for an unknown stemmer. */
int hb_analyzer_new(const char *stemmer, int max_token_bytes, const char *stop_text, size_t stop_len,
                    hb_analyzer **a);
void hb_analyzer_free(hb_analyzer *a);
/* The stop words, normalized, sorted by bytes and unique, each followed by '\n'. */
const char *hb_analyzer_stopwords(const hb_analyzer *a, size_t *len);

/* Not collective. A tokenizer for one thread. */
int hb_lexer_new(const hb_analyzer *a, hb_lexer **lx);
void hb_lexer_free(hb_lexer *lx);
/* Tokenizes text[0..len): *ids gets one entry per token, in order: the term id (see
 * hb_lexer_term), HB_TOK_STOP or HB_TOK_LONG; *n their number. The array belongs to the
 * lexer and lives until the next call. Term ids are the lexer's own: stable for its
 * lifetime, the same id for the same term. Returns 0, or 70 when out of memory without
 * recording a message (threads call it; the caller reports). */
int hb_lexer_run(hb_lexer *lx, const uint8_t *text, size_t len, const uint32_t **ids, size_t *n);
/* The bytes of term id (not NUL-terminated) and their length. */
const uint8_t *hb_lexer_term(const hb_lexer *lx, uint32_t id, uint32_t *len);
/* Number of distinct terms the lexer has seen: ids are 0 .. count-1. */
uint32_t hb_lexer_terms(const hb_lexer *lx);

/* Counters of everything the lexer has tokenized since it was made. */
typedef struct hb_tok_counts {
    uint64_t tokens;        /* every token, dropped ones included */
    uint64_t too_long;      /* dropped: over max_token_bytes */
    uint64_t stop;          /* dropped: stop words */
    uint64_t invalid_bytes; /* bytes that are not UTF-8 */
} hb_tok_counts;
const hb_tok_counts *hb_lexer_counts(const hb_lexer *lx);

#endif
