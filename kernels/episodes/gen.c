/* `h5batch gen fleet`: per-second speed of a fleet of vehicles, for kernel episodes
 * (harsh braking from derive = rate on speed).
 *
 * Each vehicle drives 1 to --trips trips a day in local daytime, urban (8-15 m/s legs of
 * 10-70 s between stops) or highway (22-33 m/s legs of 1-10 minutes). A leg accelerates
 * at 0.8-2.5 m/s^2, cruises with a little noise, brakes to a stop and stands still.
 * Brakes take 0.8-2.6 m/s^2; the drivers marked harsh (--harsh of them) brake at
 * 3.5-6.5 m/s^2 in a third of their stops, the others in one stop of a hundred. Some
 * trips lose the GPS for 10-120 s (--dropouts): no readings then.
 *
 * Every draw is a function of (seed, vehicle, day, trip, leg) through Philox, and every
 * rank computes the row counts of all vehicles alike, so each rank writes whole
 * vehicles at offsets that do not depend on the rank count: the same file for any rank
 * or thread count. Rows are grouped by vehicle and ordered by time. */
#include "core/calendar.h"
#include "core/hb.h"
#include "core/opts.h"
#include "io/io.h"
#include "kernels/common/exchange.h"
#include "kernels/kernel.h"

#include <Random123/philox.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_CHUNK (1 << 20)
#define ID_BASE 1001
#define MAX_LEGS 4096

typedef struct fleet {
    int64_t vehicles, days, trips, start_ymd;
    double minutes, harsh, dropouts;
    uint64_t seed;
    const char *tz;
    int64_t t0; /* local midnight of the first day, UTC seconds */
} fleet;

static const hb_option gen_options[] = {
    {"vehicles", HB_OPT_SIZE, "100", 1, 1e7, NULL, "vehicles"},
    {"days", HB_OPT_SIZE, "7", 1, 3660, NULL, "days the readings cover"},
    {"trips", HB_OPT_SIZE, "4", 1, 12, NULL, "at most this many trips per vehicle and day (at least 1)"},
    {"minutes", HB_OPT_FLOAT, "25", 0.5, 600, NULL, "mean length of a trip in minutes"},
    {"harsh", HB_OPT_FLOAT, "0.15", 0, 1, NULL, "fraction of drivers who brake harshly"},
    {"dropouts", HB_OPT_FLOAT, "0.3", 0, 1, NULL, "fraction of trips with a GPS dropout of 10-120 s"},
    {"start", HB_OPT_SIZE, "20240101", 10101, 99991231, NULL, "first local date, yyyymmdd"},
    {"timezone", HB_OPT_STRING, "Europe/Berlin", 1, 0, NULL, "IANA time zone of the daytime the trips fall in"},
    {"seed", HB_OPT_SIZE, "1", 0, 1e18, NULL, "random seed: the same seed gives the same file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

enum { S_DRIVER = 1, S_DAY, S_TRIP, S_LEG };

static inline double u01(uint32_t x) { return ((double)x + 0.5) * 0x1p-32; }

static philox4x32_ctr_t draw(uint64_t seed, uint64_t a, uint32_t b, uint32_t stream)
{
    philox4x32_ctr_t c = {{(uint32_t)a, (uint32_t)(a >> 32), b, stream}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return philox4x32(c, k);
}

/* One leg: accelerate for ta s, cruise tc s at vc, brake td s at dec, stand ts s. */
typedef struct leg {
    double vc, acc, dec, noise_key;
    int64_t ta, tc, td, ts;
} leg;

/* A trip: start (UTC s), its legs' total length, and the dropout [drop, drop + dlen). */
typedef struct trip {
    int64_t start, len, drop, dlen;
    int highway, nlegs;
} trip;

static leg make_leg(const fleet *g, uint64_t p, uint32_t tripid, int j, int highway, int harsh)
{
    philox4x32_ctr_t r = draw(g->seed, p, tripid, S_LEG + 16u * (uint32_t)j);
    leg l;
    l.vc = highway ? 22 + 11 * u01(r.v[0]) : 8 + 7 * u01(r.v[0]);
    l.acc = 0.8 + 1.7 * u01(r.v[1]);
    double hard = u01(r.v[2]);
    l.dec = (harsh ? hard < 0.35 : hard < 0.01) ? 3.5 + 3 * u01(r.v[3]) : 0.8 + 1.8 * u01(r.v[3]);
    l.ta = (int64_t)ceil(l.vc / l.acc);
    l.td = (int64_t)ceil(l.vc / l.dec);
    philox4x32_ctr_t q = draw(g->seed, p, tripid, S_LEG + 16u * (uint32_t)j + 1);
    l.tc = highway ? 60 + (int64_t)(540 * u01(q.v[0])) : 10 + (int64_t)(60 * u01(q.v[0]));
    l.ts = highway ? 10 + (int64_t)(30 * u01(q.v[1])) : 5 + (int64_t)(40 * u01(q.v[1]));
    l.noise_key = u01(q.v[2]);
    return l;
}

/* Trip k of vehicle p on day d; its legs through make_leg. */
static trip make_trip(const fleet *g, uint64_t p, int64_t d, int k, int ntrips, int harsh)
{
    uint32_t id = (uint32_t)(d * 16 + k);
    philox4x32_ctr_t r = draw(g->seed, p, id, S_TRIP);
    trip t;
    const int64_t slot = 57600 / ntrips; /* 06:00 to 22:00 local, one slot per trip */
    t.start = g->t0 + d * 86400 + 21600 + k * slot + (int64_t)(u01(r.v[0]) * (double)slot / 3);
    t.highway = u01(r.v[1]) < 0.3;
    double want = g->minutes * 60 * (0.4 + 1.2 * u01(r.v[2]));
    if (want > (double)slot * 2 / 3) want = (double)slot * 2 / 3;
    t.len = 0, t.nlegs = 0;
    while ((double)t.len < want && t.nlegs < MAX_LEGS) {
        leg l = make_leg(g, p, id, t.nlegs++, t.highway, harsh);
        t.len += l.ta + l.tc + l.td + l.ts;
    }
    philox4x32_ctr_t q = draw(g->seed, p, id, S_TRIP + 100);
    t.drop = t.dlen = 0;
    if (u01(q.v[0]) < g->dropouts) {
        t.drop = (int64_t)(u01(q.v[1]) * (double)t.len);
        t.dlen = 10 + (int64_t)(110 * u01(q.v[2]));
        if (t.drop + t.dlen > t.len) t.dlen = t.len - t.drop;
    }
    return t;
}

static int trips_of_day(const fleet *g, uint64_t p, int64_t d)
{
    return 1 + (int)(draw(g->seed, p, (uint32_t)d, S_DAY).v[0] % (uint32_t)g->trips);
}

static int is_harsh(const fleet *g, uint64_t p) { return u01(draw(g->seed, p, 0, S_DRIVER).v[0]) < g->harsh; }

/* The readings of vehicle p: how many, and with t/v not NULL, the rows themselves. */
static int64_t vehicle(const fleet *g, uint64_t p, int64_t *tt, float *vv)
{
    int harsh = is_harsh(g, p);
    int64_t n = 0;
    for (int64_t d = 0; d < g->days; d++) {
        int nt = trips_of_day(g, p, d);
        for (int k = 0; k < nt; k++) {
            trip tr = make_trip(g, p, d, k, nt, harsh);
            if (!tt) {
                n += tr.len - tr.dlen;
                continue;
            }
            int64_t tau = 0;
            uint32_t id = (uint32_t)(d * 16 + k);
            for (int j = 0; j < tr.nlegs; j++) {
                leg l = make_leg(g, p, id, j, tr.highway, harsh);
                int64_t L = l.ta + l.tc + l.td + l.ts;
                for (int64_t s = 0; s < L; s++, tau++) {
                    if (tau >= tr.drop && tau < tr.drop + tr.dlen) continue;
                    double v;
                    if (s < l.ta) {
                        v = l.acc * (double)s;
                        if (v > l.vc) v = l.vc;
                    } else if (s < l.ta + l.tc) {
                        /* cruise noise: a smooth wobble of +-0.2 m/s */
                        v = l.vc + 0.2 * sin(0.3 * (double)(s - l.ta) + 6.283 * l.noise_key);
                    } else if (s < l.ta + l.tc + l.td) {
                        v = l.vc - l.dec * (double)(s - l.ta - l.tc);
                        if (v < 0) v = 0;
                    } else {
                        v = 0;
                    }
                    tt[n] = tr.start + tau;
                    vv[n++] = (float)(nearbyint(v * 100) / 100);
                }
            }
        }
    }
    return n;
}

/* Collective. The table, into out. */
static int write_file(fleet *g, hb_out *out)
{
    int64_t d0 = hb_days_from_yyyymmdd(g->start_ymd);
    int rc = d0 == INT64_MIN ? hb_err_set(HB_EUSAGE, "gen fleet", "--start %lld is not a date yyyymmdd",
                                          (long long)g->start_ymd)
                             : 0;
    hb_tzmap tzm = {0};
    if (rc == 0) rc = hb_tz_select(g->tz);
    if (rc == 0) rc = hb_tzmap_cover(&tzm, d0 * 86400 - 2 * 86400, d0 * 86400 + 2 * 86400);
    if (rc == 0) g->t0 = d0 * 86400 - (hb_tzmap_local(&tzm, d0 * 86400 + 43200) - (d0 * 86400 + 43200));
    hb_tzmap_free(&tzm);
    const size_t V = (size_t)g->vehicles;
    int64_t *off = rc ? NULL : hb_malloc((V + 1) * sizeof *off);
    if (rc == 0 && !off) rc = HB_EINTERNAL;
    if (rc == 0) {
        off[0] = 0;
        for (size_t p = 0; p < V; p++) off[p + 1] = off[p] + vehicle(g, p, NULL, NULL);
    }
    int64_t v0 = 0, v1 = 0;
    hb_range_of(g->vehicles, hb_rank, hb_size, &v0, &v1);
    int64_t most = 0;
    for (int r = 0; rc == 0 && r < hb_size; r++) {
        int64_t a, b;
        hb_range_of(g->vehicles, r, hb_size, &a, &b);
        if (off[b] - off[a] > most) most = off[b] - off[a];
    }
    /* buffers: a batch, and the vehicle being written */
    int64_t vmax = 0;
    for (int64_t p = v0; rc == 0 && p < v1; p++)
        if (off[p + 1] - off[p] > vmax) vmax = off[p + 1] - off[p];
    int32_t *bd = rc ? NULL : hb_malloc(GEN_CHUNK * sizeof *bd);
    int64_t *bt = rc ? NULL : hb_malloc(GEN_CHUNK * sizeof *bt), *vt = rc ? NULL : hb_malloc((size_t)(vmax + 1) * 8);
    float *bv = rc ? NULL : hb_malloc(GEN_CHUNK * sizeof *bv), *vv = rc ? NULL : hb_malloc((size_t)(vmax + 1) * 4);
    if (rc == 0 && !(bd && bt && vt && bv && vv)) rc = hb_err_set(HB_EINTERNAL, "gen fleet", "out of memory");
    rc = hb_agree(rc);
    const int64_t rows = rc == 0 ? off[V] : 0;
    const uint64_t dims[1] = {(uint64_t)rows};
    if (rc == 0) rc = hb_out_group(out, "/table");
    if (rc == 0) rc = hb_out_dataset(out, "/table/vehicle", HB_I32, 1, dims, "1", "vehicle id");
    if (rc == 0) rc = hb_out_dataset(out, "/table/time", HB_I64, 1, dims, "s", "UTC seconds since 1970-01-01");
    if (rc == 0) rc = hb_out_dataset(out, "/table/speed", HB_F32, 1, dims, "m/s", "GPS speed");
    if (rc == 0) rc = hb_out_attr_str(out, "/table", "kind", "fleet");
    if (rc == 0) rc = hb_out_attr_i64(out, "/table", "n_devices", g->vehicles);
    if (rc == 0) rc = hb_out_attr_str(out, "/table", "timezone", g->tz);
    const int64_t rounds = (most + GEN_CHUNK - 1) / GEN_CHUNK;
    int64_t pos = rc == 0 ? off[v0] : 0, p = v0, vn = 0, vi = 0;
    double t_start = hb_now();
    for (int64_t r = 0; r < rounds && rc == 0; r++) {
        int64_t end = off[v1], n = end - pos < GEN_CHUNK ? end - pos : GEN_CHUNK, filled = 0;
        while (filled < n) {
            if (vi == vn) {
                vn = vehicle(g, (uint64_t)p, vt, vv), vi = 0;
                p++;
                continue;
            }
            int64_t c = vn - vi < n - filled ? vn - vi : n - filled;
            for (int64_t i = 0; i < c; i++) bd[filled + i] = (int32_t)(ID_BASE + p - 1);
            memcpy(bt + filled, vt + vi, (size_t)c * 8);
            memcpy(bv + filled, vv + vi, (size_t)c * 4);
            filled += c, vi += c;
        }
        rc = hb_out_slab(out, "/table/vehicle", HB_I32, 1, dims, (uint64_t)pos, (uint64_t)n, bd);
        if (rc == 0) rc = hb_out_slab(out, "/table/time", HB_I64, 1, dims, (uint64_t)pos, (uint64_t)n, bt);
        if (rc == 0) rc = hb_out_slab(out, "/table/speed", HB_F32, 1, dims, (uint64_t)pos, (uint64_t)n, bv);
        pos += n;
    }
    if (rc == 0)
        HB_INFO("gen fleet: %lld readings of %lld vehicles over %lld days in %.1fs", (long long)rows,
                (long long)g->vehicles, (long long)g->days, hb_now() - t_start);
    free(off), free(bd), free(bt), free(vt), free(bv), free(vv);
    return rc;
}

static fleet read_options(const hb_optset *o)
{
    return (fleet){.vehicles = (int64_t)hb_opt_num(o, "vehicles"),
                   .days = (int64_t)hb_opt_num(o, "days"),
                   .trips = (int64_t)hb_opt_num(o, "trips"),
                   .start_ymd = (int64_t)hb_opt_num(o, "start"),
                   .minutes = hb_opt_num(o, "minutes"),
                   .harsh = hb_opt_num(o, "harsh"),
                   .dropouts = hb_opt_num(o, "dropouts"),
                   .seed = (uint64_t)(int64_t)hb_opt_num(o, "seed"),
                   .tz = hb_opt_str(o, "timezone")};
}

/* Not collective. What the option table cannot check. */
static int gen_check(const hb_optset *o)
{
    fleet g = read_options(o);
    if (!hb_tz_valid(g.tz)) return hb_err_set(HB_EUSAGE, "gen fleet", "unknown time zone '%s'", g.tz);
    return 0;
}

/* Collective. */
static int gen_write(const hb_optset *o, hb_out *out)
{
    fleet g = read_options(o);
    return write_file(&g, out);
}

const hb_generator hb_generator_fleet = {
    .name = "fleet",
    .summary = "synthetic per-second vehicle speeds (trips, stops, harsh brakes, GPS dropouts) for kernel episodes",
    .options = gen_options,
    .check = gen_check,
    .write = gen_write,
};
