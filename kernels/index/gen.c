/* `h5batch gen corpus`: a synthetic text corpus in the index kernel's input layout
 * (/corpus/text, /corpus/offsets, /corpus/doc_id; DESIGN.md 4.3).
 *
 * Words come from a vocabulary drawn once from the seed: mostly word-like Latin
 * syllables, and a share in other forms (accented Latin precomposed and decomposed,
 * Greek, Cyrillic, CJK, hiragana, Devanagari with vowel signs, full-width Latin, words
 * with a soft hyphen, numbers, emoji), with a few words over 64 bytes. Word frequencies
 * are Zipfian (Walker's alias table), document lengths in bytes log-normal; some
 * documents are empty and some hold invalid UTF-8. Only code points assigned by Unicode
 * 6.1 are used, so references built on older Unicode tables agree with utf8proc.
 *
 * A document's length and bytes are functions of (seed, document) through Philox, so
 * each rank sizes its share of the documents, takes its byte offset from MPI_Exscan and
 * writes independently; the file is the same at any rank or thread count. */
#include "io/io.h"
#include "kernels/kernel.h"
#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "core/opts.h"

#include <Random123/philox.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GEN_BLOCK_BYTES ((int64_t)64 << 20) /* text generated and written at a time */
#define MAX_DOC_BYTES ((int64_t)1 << 20)
#define LONG_WORD_EVERY 4999 /* vocabulary ranks k > 0 with k % this == 0 are over 64 bytes */
#define LONG_SYLLABLES 33     /* at least two bytes each */
#define MAX_CP 320            /* code points of the longest word */

enum { S_LATIN, S_ACCENT, S_DECOMPOSED, S_GREEK, S_CYRILLIC, S_CJK, S_KANA, S_DEVANAGARI, S_FULLWIDTH,
       S_SOFT_HYPHEN, S_NUMBER, S_EMOJI, S_N };

typedef struct gen_corpus {
    int64_t docs, mean_bytes, vocab;
    double sigma, zipf, empty, invalid, other;
    uint64_t seed;
    int doc_ids;
} gen_corpus;

static const hb_option gen_options[] = {
    {"docs", HB_OPT_SIZE, "100k", 0, 4e9, NULL, "documents"},
    {"mean-bytes", HB_OPT_SIZE, "600", 1, 1e5, NULL, "mean document length in bytes (log-normal)"},
    {"sigma", HB_OPT_FLOAT, "1", 0, 3, NULL, "sigma of the log-normal document length"},
    {"vocab", HB_OPT_SIZE, "50k", 1, 1e8, NULL, "words of the vocabulary"},
    {"zipf", HB_OPT_FLOAT, "1.1", 0, 5, NULL, "exponent of the Zipf law of word frequencies"},
    {"empty", HB_OPT_FLOAT, "0.01", 0, 1, NULL, "fraction of empty documents"},
    {"invalid", HB_OPT_FLOAT, "0.002", 0, 1, NULL, "fraction of documents with invalid UTF-8"},
    {"other-scripts", HB_OPT_FLOAT, "0.12", 0, 1, NULL,
     "share of words in other forms (accents, Greek, Cyrillic, CJK, kana, Devanagari, numbers, emoji)"},
    {"no-doc-id", HB_OPT_BOOL, "false", 1, 0, NULL, "leave out /corpus/doc_id"},
    {"seed", HB_OPT_SIZE, "1", 0, 1e18, NULL, "random seed: the same seed gives the same file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* The vocabulary: each word as written, capitalized, and in capitals, concatenated. */
typedef struct vocab {
    char *bytes;
    uint64_t *off; /* word k, form f: bytes[off[3k+f] .. off[3k+f+1]) */
    double *prob;  /* alias table over ranks */
    uint32_t *alias;
    int64_t n;
} vocab;

/* A uniform double in (0, 1) from 32 random bits. */
static inline double u01(uint32_t x) { return ((double)x + 0.5) * 0x1p-32; }

/* Four random words for (document or word i, j, stream): Philox, keyed by the seed. */
static philox4x32_ctr_t draw(uint64_t seed, uint64_t i, uint32_t j, uint32_t stream)
{
    philox4x32_ctr_t c = {{(uint32_t)i, (uint32_t)(i >> 32), j, stream}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32) ^ 0x636f7270u}};
    return philox4x32(c, k);
}

/* Writes code point c as UTF-8 at p; returns its length. */
static size_t put_cp(char *p, uint32_t c)
{
    if (c < 0x80) return p[0] = (char)c, 1;
    if (c < 0x800) return p[0] = (char)(0xC0 | c >> 6), p[1] = (char)(0x80 | (c & 63)), 2;
    if (c < 0x10000)
        return p[0] = (char)(0xE0 | c >> 12), p[1] = (char)(0x80 | (c >> 6 & 63)), p[2] = (char)(0x80 | (c & 63)), 3;
    p[0] = (char)(0xF0 | c >> 18), p[1] = (char)(0x80 | (c >> 12 & 63));
    p[2] = (char)(0x80 | (c >> 6 & 63)), p[3] = (char)(0x80 | (c & 63));
    return 4;
}

/* The capital of a lowercase letter of the scripts used here (itself otherwise). */
static uint32_t upper_of(uint32_t c)
{
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;      /* Latin-1 */
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;   /* Greek */
    if (c == 0x3AC) return 0x386;                                /* Greek with tonos */
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c >= 0x430 && c <= 0x44F) return c - 32;                 /* Cyrillic */
    if (c >= 0xFF41 && c <= 0xFF5A) return c - 32;               /* full-width Latin */
    return c;
}

/* Word k's code points into w (at most MAX_CP), for script s; returns how many. */
static int make_word(const gen_corpus *g, int64_t k, int s, uint32_t *w)
{
    static const char *const cons[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s",
                                       "t", "v", "w", "z", "th", "st", "ch", "br", "tr", "pl", "gr"};
    static const char vowels[] = "aeiouaeioy";
    static const uint32_t accented[] = {0xE1, 0xE9, 0xED, 0xF3, 0xFA, 0xE0, 0xE8,
                                        0xE4, 0xF6, 0xFC, 0xE5, 0xF8, 0xE7, 0xF1};
    static const uint32_t marks[] = {0x301, 0x300, 0x308, 0x302, 0x303, 0x30A};
    static const uint32_t greek_v[] = {0x3B1, 0x3B5, 0x3B7, 0x3B9, 0x3BF, 0x3C5, 0x3C9, 0x3AC, 0x3AD, 0x3AF, 0x3CC, 0x3CD};
    static const uint32_t greek_c[] = {0x3B2, 0x3B3, 0x3B4, 0x3B8, 0x3BA, 0x3BB, 0x3BC, 0x3BD, 0x3BE, 0x3C0, 0x3C1, 0x3C3, 0x3C4, 0x3C6, 0x3C7};
    philox4x32_ctr_t r = draw(g->seed, (uint64_t)k, 0, 1), q = draw(g->seed, (uint64_t)k, 1, 1);
    uint32_t x = r.v[1];
    int syll = 1 + (int)(u01(r.v[2]) * (1.2 + log10((double)k + 1)));
    if (syll > 5) syll = 5;
    int n = 0;
    if (k > 0 && k % LONG_WORD_EVERY == 0) syll = LONG_SYLLABLES; /* over 64 bytes in every script */
    switch (s) {
    case S_CJK:
        for (int i = 0; i < (syll == LONG_SYLLABLES ? syll : 1 + syll % 4); i++, x = x * 1103515245u + 12345u)
            w[n++] = 0x4E00 + (x >> 8) % 0x51A6;
        return n;
    case S_KANA:
        for (int i = 0; i < 2 + syll; i++, x = x * 1103515245u + 12345u) w[n++] = 0x3041 + (x >> 8) % 0x53;
        return n;
    case S_DEVANAGARI:
        for (int i = 0; i < syll + 1; i++, x = x * 1103515245u + 12345u) {
            w[n++] = 0x915 + (x >> 8) % 0x25;
            uint32_t v = (x >> 16) % 6;
            if (v < 4) w[n++] = 0x93E + (x >> 20) % 0xF; /* a vowel sign */
            else if (v == 4 && i + 1 < syll + 1) w[n++] = 0x94D; /* virama: a conjunct */
        }
        return n;
    case S_NUMBER:
        for (int i = 0; i < 1 + syll; i++, x /= 10) w[n++] = '0' + x % 10;
        return n;
    case S_EMOJI:
        w[n++] = 0x1F600 + x % 0x50;
        if (x & 0x100) w[n++] = 0x1F600 + (x >> 9) % 0x50;
        return n;
    default:
        break;
    }
    for (int i = 0; i < syll; i++, x = x * 1103515245u + 12345u) {
        if (s == S_GREEK) {
            w[n++] = greek_c[(x >> 8) % 15];
            w[n++] = greek_v[(x >> 16) % 12];
        } else if (s == S_CYRILLIC) {
            w[n++] = 0x430 + (x >> 8) % 32;
            w[n++] = "\x30\x35\x38\x3e\x43\x4b\x4d\x4e\x4f"[(x >> 16) % 9] + 0x400;
        } else {
            for (const char *c = cons[(x >> 8) % 24]; *c; c++) w[n++] = (uint32_t)*c;
            w[n++] = (uint32_t)vowels[(x >> 16) % 10];
            if ((x >> 24) % 3 == 0) w[n++] = (uint32_t)cons[(x >> 26) % 17][0];
        }
    }
    if (s == S_GREEK && w[n - 1] == 0x3C3) w[n - 1] = 0x3C2; /* final sigma */
    if (s == S_ACCENT || s == S_DECOMPOSED) {
        for (int i = 0; i < n; i++) {
            if (!strchr("aeiouy", (int)w[i]) || (q.v[0] >> (i % 32) & 1)) continue;
            if (s == S_ACCENT) {
                w[i] = accented[(q.v[1] + (uint32_t)i) % 14];
            } else if (n < MAX_CP - 2) {
                memmove(w + i + 2, w + i + 1, (size_t)(n - i - 1) * sizeof *w);
                w[i + 1] = marks[(q.v[1] + (uint32_t)i) % 6];
                n++, i++;
            }
        }
    } else if (s == S_FULLWIDTH) {
        for (int i = 0; i < n; i++) w[i] += 0xFF41 - 'a';
    } else if (s == S_SOFT_HYPHEN && n > 2) {
        memmove(w + n / 2 + 1, w + n / 2, (size_t)(n - n / 2) * sizeof *w);
        w[n / 2] = 0xAD;
        n++;
    }
    return n;
}

/* The vocabulary (three forms of every word) and the alias table of its Zipf law. */
static int build_vocab(const gen_corpus *g, vocab *v)
{
    const int64_t V = g->vocab;
    v->n = V;
    v->off = hb_malloc((size_t)(3 * V + 1) * sizeof *v->off);
    size_t cap = 1 << 20;
    v->bytes = hb_malloc(cap);
    v->prob = hb_malloc((size_t)V * sizeof *v->prob);
    v->alias = hb_malloc((size_t)V * sizeof *v->alias);
    double *w = hb_malloc((size_t)V * sizeof *w);
    int64_t *small = hb_malloc((size_t)V * sizeof *small), *large = hb_malloc((size_t)V * sizeof *large);
    int rc = v->off && v->bytes && v->prob && v->alias && w && small && large ? 0 : HB_EINTERNAL;
    uint64_t at = 0;
    uint32_t cp[MAX_CP];
    for (int64_t k = 0; rc == 0 && k < V; k++) {
        philox4x32_ctr_t r = draw(g->seed, (uint64_t)k, 0, 1);
        /* the most frequent words are plain Latin; others take a script by the draw */
        int s = S_LATIN;
        if (k >= 20 && u01(r.v[0]) < g->other) s = 1 + (int)(r.v[3] % (S_N - 1));
        int n = make_word(g, k, s, cp);
        if (at + 3 * 4 * (size_t)n > cap) {
            char *b = hb_realloc(v->bytes, cap *= 2);
            if (!b) {
                rc = HB_EINTERNAL;
                break;
            }
            v->bytes = b;
        }
        for (int f = 0; f < 3; f++) {
            v->off[3 * k + f] = at;
            for (int i = 0; i < n; i++) {
                uint32_t c = cp[i];
                if (f == 2 || (f == 1 && i == 0)) c = upper_of(c);
                at += put_cp(v->bytes + at, c);
            }
        }
    }
    if (rc == 0) v->off[3 * V] = at;
    /* Vose's alias method: one uniform bucket and one coin per word drawn */
    double sum = 0;
    for (int64_t k = 0; rc == 0 && k < V; k++) sum += w[k] = pow((double)k + 1, -g->zipf);
    int64_t ns = 0, nl = 0;
    for (int64_t k = 0; rc == 0 && k < V; k++) {
        w[k] *= (double)V / sum;
        if (w[k] < 1) small[ns++] = k;
        else large[nl++] = k;
    }
    while (rc == 0 && ns > 0 && nl > 0) {
        int64_t s = small[--ns], l = large[nl - 1];
        v->prob[s] = w[s];
        v->alias[s] = (uint32_t)l;
        w[l] -= 1 - w[s];
        if (w[l] < 1) nl--, small[ns++] = l;
    }
    while (rc == 0 && nl > 0) v->prob[large[--nl]] = 1, v->alias[large[nl]] = (uint32_t)large[nl];
    while (rc == 0 && ns > 0) v->prob[small[--ns]] = 1, v->alias[small[ns]] = (uint32_t)small[ns];
    free(w), free(small), free(large);
    return rc;
}

/* Document i's length in bytes. */
static int64_t doc_bytes(const gen_corpus *g, int64_t i)
{
    philox4x32_ctr_t r = draw(g->seed, (uint64_t)i, 0xFFFFFFFFu, 2);
    if (u01(r.v[0]) < g->empty) return 0;
    double mu = log((double)g->mean_bytes) - g->sigma * g->sigma / 2;
    double z = sqrt(-2 * log(u01(r.v[1]))) * cos(2 * M_PI * u01(r.v[2]));
    double len = floor(exp(mu + g->sigma * z) + 0.5);
    return len < 1 ? 1 : len > (double)MAX_DOC_BYTES ? MAX_DOC_BYTES : (int64_t)len;
}

/* Writes document i's len bytes at p. */
static void fill_doc(const gen_corpus *g, const vocab *v, int64_t i, int64_t len, char *p)
{
    int64_t at = 0;
    int cap = 1;
    for (uint32_t j = 0; at < len; j++) {
        philox4x32_ctr_t r = draw(g->seed, (uint64_t)i, j, 3);
        uint64_t b = ((uint64_t)r.v[0] * (uint64_t)v->n) >> 32;
        uint64_t k = u01(r.v[1]) < v->prob[b] ? b : v->alias[b];
        int form = cap ? 1 : (r.v[3] % 200 == 0 ? 2 : 0);
        const char *word = v->bytes + v->off[3 * k + (uint64_t)form];
        int64_t wl = (int64_t)(v->off[3 * k + (uint64_t)form + 1] - v->off[3 * k + (uint64_t)form]);
        static const char *const seps[] = {", ", ", ", ", ", ", ", ". ", ". ", ". ", "\n", "\n", " - ",
                                           "'s ", "! ", " (", ") ", ": ", "? ", "; ", " / ", " \"", "\" "};
        uint32_t sp = r.v[2] % 100;
        const char *sep = sp < 80 ? " " : seps[sp - 80];
        int64_t sl = (int64_t)strlen(sep);
        if (at + wl > len) { /* pad with spaces rather than cut a character */
            memset(p + at, ' ', (size_t)(len - at));
            break;
        }
        memcpy(p + at, word, (size_t)wl);
        at += wl;
        if (at + sl <= len) memcpy(p + at, sep, (size_t)sl), at += sl;
        cap = sep[0] == '.' || sep[0] == '!' || sep[0] == '?';
    }
    philox4x32_ctr_t r = draw(g->seed, (uint64_t)i, 0xFFFFFFFEu, 2);
    if (len > 0 && u01(r.v[0]) < g->invalid) {
        static const char *const bad[] = {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\x80", "\xf8\x88\x80"};
        const char *s = bad[r.v[1] % 6];
        int64_t n = (int64_t)strlen(s), a = (int64_t)(r.v[2] % (uint32_t)len);
        if (a + n > len) a = len - n;
        if (a < 0) a = 0, n = len;
        memcpy(p + a, s, (size_t)n);
    }
}

/* Collective. Sizes, generates and writes the corpus into out. */
static int write_file(const gen_corpus *g, const vocab *v, hb_out *out)
{
    const int64_t N = g->docs;
    int64_t lo, hi;
    hb_range_of(N, hb_rank, hb_size, &lo, &hi);
    const int64_t n = hi - lo;
    uint64_t *off = hb_malloc((size_t)(n + 1) * sizeof *off);
    int rc = hb_agree(off ? 0 : HB_EINTERNAL);
    if (rc) return rc;
    double t0 = hb_now();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) off[i + 1] = (uint64_t)doc_bytes(g, lo + i);
    uint64_t mine = 0, base = 0, total = 0;
    for (int64_t i = 0; i < n; i++) mine += off[i + 1];
    MPI_Exscan(&mine, &base, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (hb_rank == 0) base = 0;
    off[0] = base;
    for (int64_t i = 0; i < n; i++) off[i + 1] += off[i];

    hb_oset *dt = NULL, *doff = NULL, *did = NULL;
    const uint64_t dtext[1] = {total}, doffs[1] = {(uint64_t)N + 1}, dids[1] = {(uint64_t)N};
    rc = hb_out_group(out, "/corpus");
    if (rc == 0) rc = hb_out_dataset(out, "/corpus/text", HB_U8, 1, dtext, "1", "UTF-8 text of all documents, concatenated");
    if (rc == 0)
        rc = hb_out_dataset(out, "/corpus/offsets", HB_U64, 1, doffs, "1",
                            "document i is text[offsets[i]:offsets[i+1]]");
    if (rc == 0 && g->doc_ids)
        rc = hb_out_dataset(out, "/corpus/doc_id", HB_I64, 1, dids, NULL, "external document id");
    if (rc == 0) rc = hb_out_attr_u64(out, "/corpus", "n_docs", (uint64_t)N);
    if (rc == 0) rc = hb_out_attr_u64(out, "/corpus", "seed", g->seed);
    if (rc == 0) rc = hb_out_attr_u64(out, "/corpus", "vocabulary", (uint64_t)g->vocab);
    if (rc == 0) rc = hb_out_attr_f64(out, "/corpus", "zipf_exponent", &g->zipf, 1);
    if (rc == 0) rc = hb_oset_open(out, "/corpus/text", &dt);
    if (rc == 0) rc = hb_oset_open(out, "/corpus/offsets", &doff);
    if (rc == 0 && g->doc_ids) rc = hb_oset_open(out, "/corpus/doc_id", &did);
    rc = hb_agree(rc);
    /* independent writes from here: every rank goes at its own pace */
    int lrc = rc;
    if (lrc == 0) lrc = hb_oset_write(doff, HB_U64, (uint64_t)lo, (uint64_t)n + (hi == N), off);
    int64_t *ids = lrc == 0 && g->doc_ids ? hb_malloc((size_t)(n ? n : 1) * sizeof *ids) : NULL;
    if (lrc == 0 && g->doc_ids && !ids) lrc = HB_EINTERNAL;
    for (int64_t i = 0; lrc == 0 && ids && i < n; i++) /* odd multiplier: distinct below 2^31 */
        ids[i] = (int64_t)(((uint64_t)(lo + i) * 2654435761u) & 0x7fffffffu) + 1;
    if (lrc == 0 && ids) lrc = hb_oset_write(did, HB_I64, (uint64_t)lo, (uint64_t)n, ids);
    free(ids);
    char *buf = lrc == 0 ? hb_malloc((size_t)GEN_BLOCK_BYTES + (size_t)MAX_DOC_BYTES) : NULL;
    if (lrc == 0 && !buf) lrc = HB_EINTERNAL;
    double last = hb_now();
    for (int64_t a = 0; lrc == 0 && a < n;) {
        int64_t b = a + 1;
        while (b < n && (int64_t)(off[b + 1] - off[a]) <= GEN_BLOCK_BYTES) b++;
#pragma omp parallel for schedule(dynamic, 256)
        for (int64_t i = a; i < b; i++)
            fill_doc(g, v, lo + i, (int64_t)(off[i + 1] - off[i]), buf + (off[i] - off[a]));
        lrc = hb_oset_write(dt, HB_U8, off[a], off[b] - off[a], buf);
        a = b;
        if (hb_now() - last > 5) {
            last = hb_now();
            HB_INFO("gen corpus: %.0f%%", 100.0 * (double)a / (double)n);
        }
    }
    free(buf);
    free(off);
    hb_oset_close(dt), hb_oset_close(doff), hb_oset_close(did);
    rc = hb_agree(lrc);
    if (rc == 0)
        HB_INFO("gen corpus: %lld documents, %.1f MB of text, %lld words of vocabulary in %.1fs", (long long)N,
                (double)total / 1e6, (long long)g->vocab, hb_now() - t0);
    return rc;
}

/* The generator's settings from its options. */
static gen_corpus read_options(const hb_optset *o)
{
    return (gen_corpus){.docs = (int64_t)hb_opt_num(o, "docs"),
                        .mean_bytes = (int64_t)hb_opt_num(o, "mean-bytes"),
                        .vocab = (int64_t)hb_opt_num(o, "vocab"),
                        .sigma = hb_opt_num(o, "sigma"),
                        .zipf = hb_opt_num(o, "zipf"),
                        .empty = hb_opt_num(o, "empty"),
                        .invalid = hb_opt_num(o, "invalid"),
                        .other = hb_opt_num(o, "other-scripts"),
                        .seed = (uint64_t)hb_opt_num(o, "seed"),
                        .doc_ids = !hb_opt_bool(o, "no-doc-id")};
}

/* Collective. The vocabulary, then the corpus. */
static int gen_write(const hb_optset *o, hb_out *out)
{
    gen_corpus g = read_options(o);
    vocab v = {0};
    int rc = hb_agree(build_vocab(&g, &v));
    if (rc == 0) rc = write_file(&g, &v, out);
    free(v.bytes), free(v.off), free(v.prob), free(v.alias);
    return rc;
}

const hb_generator hb_generator_corpus = {
    .name = "corpus",
    .summary = "a synthetic multilingual text corpus for kernel index",
    .options = gen_options,
    .write = gen_write,
};
