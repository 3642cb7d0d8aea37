/* libFuzzer harness: the query parser of `h5batch query` (parse_query in
 * kernels/index/query.c, included here so that the harness reaches its static parser
 * without a change to the file). The first byte picks the index settings (stemmer,
 * stop words, positions, token length), the rest is the query text. */
#include "kernels/index/query.c"

static const char *const stemmers[] = {"none", "english", "german", "russian"};

/* The analyzer of each setting, made once: building one (the stemmer, the stop words)
 * costs more than parsing a query. */
static hb_analyzer *analyzers[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned sel = data[0];
    static const char stop[] = "the\nand\nof\n";
    if (!analyzers[sel] && hb_analyzer_new(stemmers[sel & 3], 4 + (int)(sel >> 3 & 15), sel & 0x80 ? stop : NULL,
                                           sel & 0x80 ? sizeof stop - 1 : 0, &analyzers[sel]) != 0) {
        hb_err_clear();
        return 0;
    }
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    reader r = {.path = "fuzz.h5", .positions = (int)(sel >> 2 & 1)};
    if (hb_lexer_new(analyzers[sel], &r.lx) == 0) {
        query q = {0};
        parse_query(&r, text, &q);
        free_query(&q);
    }
    if (r.lx) hb_lexer_free(r.lx);
    hb_err_clear();
    free(text);
    return 0;
}
