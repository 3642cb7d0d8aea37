/* Group tables and string dictionaries, split into parts by hash so that each OpenMP
 * thread inserts into its own part without locks; kept values of percentile stats in
 * chains of blocks carved from per-part arenas (a busy group has few blocks, a quiet one
 * wastes little). Nothing here is collective; a part is used by one thread at a time. */
#include "kernels/aggregate/agg.h"

#include "core/hb.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_BYTES (4u << 20)
#define BLOCK_MIN 8
#define BLOCK_MAX 8192
#define EMPTY_SLOT UINT32_MAX

struct arena {
    struct arena *next;
    size_t used, size;
    unsigned char data[];
};

/* Slot of hash h in an index of mask + 1 slots (Fibonacci hashing: the part's bits of h
 * are not reused). */
static inline uint64_t slot_of(uint64_t h, uint64_t mask) { return (h * 0x9e3779b97f4a7c15ULL) >> 20 & mask; }

static int index_grow(uint32_t **index, uint64_t *imask, const uint64_t *hash, size_t n)
{
    uint64_t cap = *index ? (*imask + 1) * 2 : 1024;
    while (cap < 2 * (uint64_t)n) cap *= 2;
    uint32_t *ix = malloc(cap * sizeof *ix); /* not hb_malloc: called from threads */
    if (!ix) return -1;
    memset(ix, 0xff, cap * sizeof *ix);
    uint64_t mask = cap - 1;
    for (size_t e = 0; e < n; e++) {
        uint64_t s = slot_of(hash[e], mask);
        while (ix[s] != EMPTY_SLOT) s = (s + 1) & mask;
        ix[s] = (uint32_t)e;
    }
    free(*index);
    *index = ix;
    *imask = mask;
    return 0;
}

int gtab_init(gtab *g, int nparts, int K, int V, size_t A, int kept, const unsigned char *neutral)
{
    memset(g, 0, sizeof *g);
    g->nparts = nparts, g->K = K, g->V = V, g->A = A, g->kept = kept, g->neutral = neutral;
    g->p = hb_calloc((size_t)nparts, sizeof *g->p);
    return g->p ? 0 : HB_EINTERNAL;
}

static void free_arenas(gpart *p)
{
    for (arena *a = p->arenas, *next; a; a = next) next = a->next, free(a);
    p->arenas = NULL;
}

static void part_clear(gpart *p)
{
    if (p->index) memset(p->index, 0xff, (p->imask + 1) * sizeof *p->index);
    p->n = 0;
    p->nkept = 0;
    p->pool.n = 0;
    free_arenas(p);
}

void gtab_clear(gtab *g)
{
    for (int i = 0; g->p && i < g->nparts; i++)
        if (g->p[i].n || g->p[i].arenas) part_clear(&g->p[i]);
}

void gtab_free(gtab *g)
{
    for (int i = 0; g->p && i < g->nparts; i++) {
        gpart *p = &g->p[i];
        free(p->index), free(p->hash), free(p->keys), free(p->acc), free(p->kept);
        xpool_free(&p->pool);
        free_arenas(p);
    }
    free(g->p);
    memset(g, 0, sizeof *g);
}

static int part_reserve(const gtab *g, gpart *p, size_t need)
{
    if (need <= p->cap) return 0;
    size_t cap = p->cap ? p->cap * 2 : 256;
    while (cap < need) cap *= 2;
    if (cap > EMPTY_SLOT) return -1;
    uint64_t *h = realloc(p->hash, cap * sizeof *h);
    if (!h) return -1;
    p->hash = h;
    uint64_t *k = realloc(p->keys, cap * (size_t)g->K * sizeof *k);
    if (!k) return -1;
    p->keys = k;
    unsigned char *a = realloc(p->acc, cap * (size_t)g->V * g->A);
    if (!a) return -1;
    p->acc = a;
    if (g->kept) {
        kchain *c = realloc(p->kept, cap * (size_t)g->V * sizeof *c);
        if (!c) return -1;
        p->kept = c;
    }
    p->cap = cap;
    return 0;
}

size_t gpart_find(const gtab *g, gpart *p, uint64_t h, const uint64_t *keys)
{
    const int K = g->K;
    if (p->index) {
        uint64_t s = slot_of(h, p->imask);
        for (uint32_t e; (e = p->index[s]) != EMPTY_SLOT; s = (s + 1) & p->imask)
            if (p->hash[e] == h && memcmp(p->keys + (size_t)e * K, keys, (size_t)K * 8) == 0) return e;
    }
    size_t e = p->n;
    if (part_reserve(g, p, e + 1)) return (size_t)-1;
    if (!p->index || 2 * (e + 1) > p->imask + 1) {
        if (index_grow(&p->index, &p->imask, p->hash, e)) return (size_t)-1;
    }
    p->hash[e] = h;
    memcpy(p->keys + e * K, keys, (size_t)K * 8);
    memcpy(p->acc + e * g->V * g->A, g->neutral, (size_t)g->V * g->A);
    if (g->kept) memset(p->kept + e * g->V, 0, (size_t)g->V * sizeof *p->kept);
    uint64_t s = slot_of(h, p->imask);
    while (p->index[s] != EMPTY_SLOT) s = (s + 1) & p->imask;
    p->index[s] = (uint32_t)e;
    p->n = e + 1;
    return e;
}

static void *arena_alloc(gpart *p, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    arena *a = p->arenas;
    if (!a || a->size - a->used < bytes) {
        size_t size = bytes > ARENA_BYTES ? bytes : ARENA_BYTES;
        a = malloc(sizeof *a + size);
        if (!a) return NULL;
        a->next = p->arenas, a->used = 0, a->size = size;
        p->arenas = a;
    }
    void *r = a->data + a->used;
    a->used += bytes;
    return r;
}

int gpart_keep(const gtab *g, gpart *p, size_t e, int v, const double *x, size_t n)
{
    kchain *c = &p->kept[e * (size_t)g->V + (size_t)v];
    while (n > 0) {
        kblock *t = c->tail;
        if (!t || t->n == t->cap) {
            uint32_t cap = t ? (t->cap < BLOCK_MAX ? t->cap * 2 : BLOCK_MAX) : BLOCK_MIN;
            while (cap < BLOCK_MAX && cap < n) cap *= 2;
            kblock *b = arena_alloc(p, sizeof *b + (size_t)cap * sizeof(double));
            if (!b) return -1;
            b->next = NULL, b->n = 0, b->cap = cap;
            if (t) t->next = b;
            else c->head = b;
            c->tail = t = b;
        }
        size_t m = t->cap - t->n < n ? t->cap - t->n : n;
        memcpy(t->v + t->n, x, m * sizeof *x);
        t->n += (uint32_t)m;
        x += m, n -= m;
        p->nkept += m;
    }
    return 0;
}

size_t gtab_entries(const gtab *g)
{
    size_t n = 0;
    for (int i = 0; g->p && i < g->nparts; i++) n += g->p[i].n;
    return n;
}

size_t gtab_bytes(const gtab *g)
{
    size_t b = 0;
    for (int i = 0; g->p && i < g->nparts; i++) {
        const gpart *p = &g->p[i];
        b += p->cap * (8 + (size_t)g->K * 8 + (size_t)g->V * g->A + (g->kept ? (size_t)g->V * sizeof(kchain) : 0));
        b += p->index ? (p->imask + 1) * sizeof *p->index : 0;
        b += p->pool.cap * sizeof(hb_xsum);
        for (const arena *a = p->arenas; a; a = a->next) b += sizeof *a + a->size;
    }
    return b;
}

/* ---- string dictionaries ---- */

int sdict_init(sdict *d, int nparts)
{
    d->nparts = nparts;
    d->p = hb_calloc((size_t)nparts, sizeof *d->p);
    return d->p ? 0 : HB_EINTERNAL;
}

void sdict_free(sdict *d)
{
    for (int i = 0; d->p && i < d->nparts; i++) {
        spart *p = &d->p[i];
        free(p->index), free(p->hash), free(p->off), free(p->len), free(p->bytes);
    }
    free(d->p);
    memset(d, 0, sizeof *d);
}

int spart_add(spart *p, uint64_t h, const char *s, uint32_t len)
{
    if (p->index) {
        uint64_t slot = slot_of(h, p->imask);
        for (uint32_t e; (e = p->index[slot]) != EMPTY_SLOT; slot = (slot + 1) & p->imask)
            if (p->hash[e] == h)
                return p->len[e] == len && memcmp(p->bytes + p->off[e], s, len) == 0 ? 0 : 1;
    }
    size_t e = p->n;
    if (e + 1 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        uint64_t *hh = realloc(p->hash, cap * sizeof *hh);
        if (!hh) return -1;
        p->hash = hh;
        uint64_t *o = realloc(p->off, cap * sizeof *o);
        if (!o) return -1;
        p->off = o;
        uint32_t *l = realloc(p->len, cap * sizeof *l);
        if (!l) return -1;
        p->len = l;
        p->cap = cap;
    }
    if (hb_grow((void **)&p->bytes, &p->bcap, p->nbytes + len + 1, 1)) return -1;
    if (!p->index || 2 * (e + 1) > p->imask + 1) {
        if (index_grow(&p->index, &p->imask, p->hash, e)) return -1;
    }
    p->hash[e] = h, p->off[e] = p->nbytes, p->len[e] = len;
    memcpy(p->bytes + p->nbytes, s, len);
    p->nbytes += len;
    uint64_t slot = slot_of(h, p->imask);
    while (p->index[slot] != EMPTY_SLOT) slot = (slot + 1) & p->imask;
    p->index[slot] = (uint32_t)e;
    p->n = e + 1;
    return 0;
}

size_t sdict_bytes(const sdict *d)
{
    size_t b = 0;
    for (int i = 0; d->p && i < d->nparts; i++) {
        const spart *p = &d->p[i];
        b += p->cap * 20 + p->bcap + (p->index ? (p->imask + 1) * 4 : 0);
    }
    return b;
}
