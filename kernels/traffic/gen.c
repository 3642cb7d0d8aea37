/* `h5batch gen traffic`: realistic synthetic vehicle observations.
 *
 * Segments have their own road class and free-flow speed; speeds follow weekday peak
 * hours, quieter weekends and event-day evening congestion in local wall-clock time
 * (so DST shifts the pattern in UTC), with noise and a small fraction of invalid rows.
 * Every value is a function of (seed, row) through Philox, so the file is the same for
 * any rank or thread count. */
#include "io/io.h"
#include "kernels/kernel.h"
#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "core/opts.h"
#include "core/calendar.h"

#include <Random123/philox.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GEN_CHUNK (1 << 20)
#define CLASSES 3

typedef struct gen_traffic {
    int64_t rows, segments, days, start_ymd, events;
    double invalid;
    uint64_t seed;
    const char *tz;
} gen_traffic;

static const hb_option gen_options[] = {
    {"rows", HB_OPT_SIZE, "10M", 1, 1e12, NULL, "observations"},
    {"segments", HB_OPT_SIZE, "2000", 1, 2e7, NULL, "road segments"},
    {"days", HB_OPT_SIZE, "365", 1, 36500, NULL, "days the observations cover"},
    {"start", HB_OPT_SIZE, "20240101", 10101, 99991231, NULL, "first local date, yyyymmdd"},
    {"timezone", HB_OPT_STRING, "Europe/Berlin", 1, 0, NULL, "IANA time zone of the traffic's local time"},
    {"events", HB_OPT_SIZE, "8", 0, 36500, NULL, "event days (/calendar/event_days), at most --days"},
    {"invalid", HB_OPT_FLOAT, "0.001", 0, 1, NULL, "fraction of invalid rows (bad speed or segment)"},
    {"seed", HB_OPT_SIZE, "1", 0, 1e18, NULL, "random seed: the same seed gives the same file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

typedef struct model {
    int64_t t0, span;
    float *ffs;                  /* [S] */
    uint8_t *cls;                /* [S] road class */
    float week[CLASSES][7][24];  /* speed factor by local day of week and hour */
    float event[CLASSES][24];    /* speed factor on event days */
    uint8_t *is_event;           /* by local day, relative to day0 */
    int64_t day0, ndays;
} model;

static inline double u01(uint32_t x) { return ((double)x + 0.5) * 0x1p-32; }

static philox4x32_ctr_t draw(uint64_t seed, uint64_t i, uint32_t stream)
{
    philox4x32_ctr_t c = {{(uint32_t)i, (uint32_t)(i >> 32), stream, 0}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return philox4x32(c, k);
}

static float bump(double h, double mu, double sd) { return (float)exp(-(h - mu) * (h - mu) / (2 * sd * sd)); }

static void build_profiles(model *m)
{
    static const float depth[CLASSES] = {0.45f, 0.55f, 0.62f};
    for (int c = 0; c < CLASSES; c++) {
        for (int d = 0; d < 7; d++)
            for (int h = 0; h < 24; h++) {
                double x = h + 0.5;
                float f;
                if (d < 5) {
                    float evening = d == 4 ? 1.1f : 0.9f; /* Friday evenings are worst */
                    f = 1 - depth[c] * (bump(x, 8.0, 1.0) + evening * bump(x, 17.5, 1.3));
                } else {
                    f = 1 - 0.3f * depth[c] * bump(x, 13.5, 2.5);
                }
                if (h < 5) f += 0.04f;
                m->week[c][d][h] = f < 0.08f ? 0.08f : f;
            }
        for (int h = 0; h < 24; h++) {
            float f = 1 - 0.2f * depth[c] * bump(h + 0.5, 13.0, 3.0) - 0.75f * bump(h + 0.5, 20.0, 1.6);
            m->event[c][h] = f < 0.06f ? 0.06f : f;
        }
    }
}

static int build_model(const gen_traffic *g, model *m)
{
    int64_t d0 = hb_days_from_yyyymmdd(g->start_ymd);
    HB_CHECK(d0 != INT64_MIN, HB_EUSAGE, "gen traffic", "--start %lld is not a date yyyymmdd", (long long)g->start_ymd);
    HB_CALL(hb_tz_select(g->tz));
    /* local midnight of the start date, in UTC: the offset at UTC midnight is close enough
     * except within hours of a transition, which a start date never is in practice */
    hb_tzmap tm = {0};
    HB_CALL(hb_tzmap_cover(&tm, d0 * 86400, d0 * 86400));
    m->t0 = d0 * 86400 - (hb_tzmap_local(&tm, d0 * 86400) - d0 * 86400);
    hb_tzmap_free(&tm);
    m->span = g->days * 86400;
    m->day0 = d0;
    m->ndays = g->days + 2;
    size_t S = (size_t)g->segments;
    m->ffs = hb_malloc(S * sizeof *m->ffs);
    m->cls = hb_malloc(S);
    m->is_event = hb_calloc((size_t)m->ndays, 1);
    if (!m->ffs || !m->cls || !m->is_event) return HB_EINTERNAL;
    for (size_t s = 0; s < S; s++) {
        philox4x32_ctr_t r = draw(g->seed, s, 1);
        double u = u01(r.v[0]), v = u01(r.v[1]);
        int c = u < 0.55 ? 0 : u < 0.85 ? 1 : 2;
        static const double lo[CLASSES] = {30, 55, 100}, width[CLASSES] = {25, 30, 30};
        m->cls[s] = (uint8_t)c;
        m->ffs[s] = (float)(lo[c] + width[c] * v);
    }
    for (int64_t k = 0, tries = 0; k < g->events && tries < 1000 * (g->events + 1); tries++) {
        philox4x32_ctr_t r = draw(g->seed, (uint64_t)tries, 2);
        int64_t d = (int64_t)(u01(r.v[0]) * (double)g->days);
        if (!m->is_event[d]) m->is_event[d] = 1, k++;
    }
    build_profiles(m);
    return 0;
}

/* Fills rows [start, start+n) of the three columns. */
static void fill(const gen_traffic *g, const model *m, const hb_tzmap *tzm, int64_t start, int64_t n, int64_t *time,
                 uint32_t *seg, float *speed)
{
    const int64_t S = g->segments, N = g->rows;
    const uint64_t mult = S % 7919 ? 7919 : 1; /* scatters the busy segments over the id range */
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++) {
        int64_t i = start + j;
        philox4x32_ctr_t a = draw(g->seed, (uint64_t)i, 3), b = draw(g->seed, (uint64_t)i, 4);
        int64_t t = m->t0 + (int64_t)(((double)i + u01(a.v[0])) * (double)m->span / (double)N);
        double us = u01(a.v[1]);
        int64_t s = (int64_t)((uint64_t)((double)S * us * us) * mult % (uint64_t)S);
        int64_t local = hb_tzmap_local(tzm, t);
        int64_t day = hb_floordiv(local, 86400);
        int hour = (int)((local - day * 86400) / 3600), dow = (int)((day % 7 + 10) % 7);
        int64_t rel = day - m->day0;
        int c = m->cls[s];
        float f = (rel >= 0 && rel < m->ndays && m->is_event[rel]) ? m->event[c][hour] : m->week[c][dow][hour];
        double z = (u01(a.v[2]) + u01(a.v[3]) + u01(b.v[0]) + u01(b.v[1]) - 2.0) * 1.7320508075688772;
        double v = m->ffs[s] * f * (1 + 0.12 * z);
        v = v < 0 ? 0 : floor(v * 10 + 0.5) / 10;
        if (u01(b.v[2]) < g->invalid) {
            switch (b.v[3] % 4) {
            case 0: v = NAN; break;
            case 1: v = -1 - (double)(b.v[3] % 50); break;
            case 2: v = 300 + (double)(b.v[3] % 500); break;
            default: s = S + (int64_t)(b.v[3] % 16); break;
            }
        }
        time[j] = t;
        seg[j] = (uint32_t)s;
        speed[j] = (float)v;
    }
}

/* Collective. The observations, event days and speed limits, into out. */
static int write_file(const gen_traffic *g, model *m, hb_out *out)
{
    hb_tzmap tzm = {0};
    int64_t *time = NULL;
    uint32_t *seg = NULL;
    float *speed = NULL;
    int rc = hb_tzmap_cover(&tzm, m->t0 - 86400, m->t0 + m->span + 86400);
    if (rc == 0) {
        time = hb_malloc(GEN_CHUNK * sizeof *time);
        seg = hb_malloc(GEN_CHUNK * sizeof *seg);
        speed = hb_malloc(GEN_CHUNK * sizeof *speed);
        if (!time || !seg || !speed) rc = HB_EINTERNAL;
    }
    rc = hb_agree(rc);
    const uint64_t N = (uint64_t)g->rows, dims[1] = {N};
    if (rc == 0) rc = hb_out_group(out, "/observations");
    if (rc == 0) rc = hb_out_dataset(out, "/observations/time", HB_I64, 1, dims, "s", "UTC seconds since 1970-01-01");
    if (rc == 0) rc = hb_out_dataset(out, "/observations/segment", HB_U32, 1, dims, "1", "road segment id");
    if (rc == 0) rc = hb_out_dataset(out, "/observations/speed", HB_F32, 1, dims, "km/h", "observed vehicle speed");
    if (rc == 0) rc = hb_out_attr_i64(out, "/observations", "n_segments", g->segments);
    if (rc == 0) rc = hb_out_attr_str(out, "/observations", "timezone", g->tz);
    int64_t lo, hi;
    hb_range_of(g->rows, hb_rank, hb_size, &lo, &hi);
    int64_t most = (g->rows + hb_size - 1) / hb_size, rounds = (most + GEN_CHUNK - 1) / GEN_CHUNK;
    double t0 = hb_now(), last = t0;
    for (int64_t r = 0; r < rounds && rc == 0; r++) {
        int64_t a = lo + r * GEN_CHUNK, n = a >= hi ? 0 : (hi - a < GEN_CHUNK ? hi - a : GEN_CHUNK);
        if (n > 0) fill(g, m, &tzm, a, n, time, seg, speed);
        rc = hb_out_slab(out, "/observations/time", HB_I64, 1, dims, (uint64_t)a, (uint64_t)n, time);
        if (rc == 0) rc = hb_out_slab(out, "/observations/segment", HB_U32, 1, dims, (uint64_t)a, (uint64_t)n, seg);
        if (rc == 0) rc = hb_out_slab(out, "/observations/speed", HB_F32, 1, dims, (uint64_t)a, (uint64_t)n, speed);
        if (hb_now() - last > 5) {
            last = hb_now();
            HB_INFO("gen traffic: %.0f%%", 100.0 * (double)(r + 1) / (double)rounds);
        }
    }
    /* event days as local dates yyyymmdd, ascending */
    int32_t *ev = hb_malloc((size_t)m->ndays * sizeof *ev);
    uint64_t nev = 0;
    for (int64_t d = 0; ev && d < m->ndays; d++) {
        if (!m->is_event[d]) continue;
        int64_t y;
        int mo, da;
        hb_civil_from_days(m->day0 + d, &y, &mo, &da);
        ev[nev++] = (int32_t)(y * 10000 + mo * 100 + da);
    }
    rc = hb_agree(rc == 0 && !ev ? HB_EINTERNAL : rc);
    if (rc == 0 && g->events > 0) {
        const uint64_t de[1] = {nev};
        rc = hb_out_write(out, "/calendar/event_days", HB_I32, 1, de, 0, hb_rank == 0 ? nev : 0, ev, "yyyymmdd",
                          "local dates of special events");
    }
    free(ev);
    if (rc == 0) {
        const uint64_t ds[1] = {(uint64_t)g->segments};
        double *limit = hb_malloc((size_t)g->segments * sizeof *limit);
        if (!limit) rc = HB_EINTERNAL;
        for (int64_t s = 0; rc == 0 && s < g->segments; s++) limit[s] = 10 * ceil(m->ffs[s] / 10);
        if (rc == 0)
            rc = hb_out_write(out, "/segments/speed_limit", HB_F64, 1, ds, 0, hb_rank == 0 ? ds[0] : 0, limit, "km/h",
                              "posted speed limit");
        free(limit);
    }
    free(time), free(seg), free(speed);
    hb_tzmap_free(&tzm);
    if (rc == 0)
        HB_INFO("gen traffic: %lld rows, %lld segments, %lld days in %.1fs", (long long)g->rows,
                (long long)g->segments, (long long)g->days, hb_now() - t0);
    return rc;
}

/* The generator's settings from its options. */
static gen_traffic read_options(const hb_optset *o)
{
    return (gen_traffic){.rows = (int64_t)hb_opt_num(o, "rows"),
                         .segments = (int64_t)hb_opt_num(o, "segments"),
                         .days = (int64_t)hb_opt_num(o, "days"),
                         .start_ymd = (int64_t)hb_opt_num(o, "start"),
                         .events = (int64_t)hb_opt_num(o, "events"),
                         .invalid = hb_opt_num(o, "invalid"),
                         .seed = (uint64_t)(int64_t)hb_opt_num(o, "seed"),
                         .tz = hb_opt_str(o, "timezone")};
}

/* Not collective. What the option table cannot check. */
static int gen_check(const hb_optset *o)
{
    gen_traffic g = read_options(o);
    if (!hb_tz_valid(g.tz)) return hb_err_set(HB_EUSAGE, "gen traffic", "unknown time zone '%s'", g.tz);
    HB_CHECK(g.events <= g.days, HB_EUSAGE, "gen traffic", "--events %lld is more than --days %lld",
             (long long)g.events, (long long)g.days);
    return 0;
}

/* Collective. The model, then the file. */
static int gen_write(const hb_optset *o, hb_out *out)
{
    gen_traffic g = read_options(o);
    model m = {0};
    int rc = hb_agree(build_model(&g, &m));
    if (rc == 0) rc = write_file(&g, &m, out);
    free(m.ffs), free(m.cls), free(m.is_event);
    return rc;
}

const hb_generator hb_generator_traffic = {
    .name = "traffic",
    .summary = "synthetic vehicle speed observations for kernel traffic",
    .options = gen_options,
    .check = gen_check,
    .write = gen_write,
};
