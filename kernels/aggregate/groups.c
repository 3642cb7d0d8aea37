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

#define slot_of agg_slot

/* The group index, twice the entries' size at least: rebuilt from the entries' hashes. */
static int gindex_grow(const gtab *g, gpart *p, size_t n)
{
    uint64_t cap = p->index ? (p->imask + 1) * 2 : 1024;
    while (cap < 2 * (uint64_t)n) cap *= 2;
    uint64_t *ix = malloc(cap * sizeof *ix); /* not hb_malloc: called from threads */
    if (!ix) return -1;
    memset(ix, 0xff, cap * sizeof *ix);
    uint64_t mask = cap - 1;
    for (size_t e = 0; e < n; e++) {
        uint64_t h = gp_hash(g, p, e), s = slot_of(h, mask);
        while (ix[s] != UINT64_MAX) s = (s + 1) & mask;
        ix[s] = (h >> 32) << 32 | (uint64_t)e;
    }
    free(p->index);
    p->index = ix;
    p->imask = mask;
    return 0;
}

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
    g->es = 8 + 8 * (size_t)K + (size_t)V * A + (kept ? (size_t)V * sizeof(kchain) : 0);
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
        free(p->index), free(p->ent);
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
    unsigned char *ent = realloc(p->ent, cap * g->es);
    if (!ent) return -1;
    p->ent = ent;
    p->cap = cap;
    return 0;
}

size_t gpart_find(const gtab *g, gpart *p, uint64_t h, const uint64_t *keys)
{
    const int K = g->K;
    const uint64_t tag = h >> 32;
    if (p->index) {
        uint64_t s = slot_of(h, p->imask);
        for (uint64_t x; (x = p->index[s]) != UINT64_MAX; s = (s + 1) & p->imask) {
            if (x >> 32 != tag) continue;
            const unsigned char *ent = gp_ent(g, p, (uint32_t)x);
            uint64_t eh;
            memcpy(&eh, ent, 8);
            if (eh != h) continue;
            const uint64_t *k = (const uint64_t *)(const void *)(ent + 8);
            int same = 1;
            for (int i = 0; i < K; i++) same &= k[i] == keys[i];
            if (same) return (uint32_t)x;
        }
    }
    size_t e = p->n;
    if (part_reserve(g, p, e + 1)) return (size_t)-1;
    if (!p->index || 2 * (e + 1) > p->imask + 1) {
        if (gindex_grow(g, p, e)) return (size_t)-1;
    }
    unsigned char *ent = gp_ent(g, p, e);
    memcpy(ent, &h, 8);
    memcpy(ent + 8, keys, (size_t)K * 8);
    memcpy(ent + 8 + 8 * (size_t)K, g->neutral, (size_t)g->V * g->A);
    if (g->kept) memset(gp_kept(g, p, e, 0), 0, (size_t)g->V * sizeof(kchain));
    uint64_t s = slot_of(h, p->imask);
    while (p->index[s] != UINT64_MAX) s = (s + 1) & p->imask;
    p->index[s] = tag << 32 | (uint64_t)e;
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
    kchain *c = gp_kept(g, p, e, v);
    if (n == 1 && c->used < c->cap) { /* the common case, kept short */
        c->dst[c->used++] = x[0];
        p->nkept++;
        return 0;
    }
    while (n > 0) {
        if (c->used == c->cap) {
            /* 8, 8, 16, 32...: the second block doubles what the group holds rather than
             * tripling it, as most groups of a fine grouping end in their second block */
            uint32_t cap = !c->tail ? BLOCK_MIN : c->head == c->tail ? c->cap : c->cap < BLOCK_MAX ? c->cap * 2 : BLOCK_MAX;
            while (cap < BLOCK_MAX && cap < n) cap *= 2;
            kblock *b = arena_alloc(p, sizeof *b + (size_t)cap * sizeof(double));
            if (!b) return -1;
            b->next = NULL, b->cap = cap, b->pad = 0;
            if (c->tail) c->tail->next = b;
            else c->head = b;
            c->tail = b, c->dst = b->v, c->used = 0, c->cap = cap;
        }
        size_t m = c->cap - c->used < n ? c->cap - c->used : n;
        memcpy(c->dst + c->used, x, m * sizeof *x);
        c->used += (uint32_t)m;
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
        b += p->cap * g->es;
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
