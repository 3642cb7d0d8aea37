/* `h5batch gen vitals`: synthetic patient vital signs, or fitness-band distances, for
 * kernel aggregate.
 *
 * --kind vitals: each patient has a blood pressure and resting heart rate of its own, a
 * night dip in local time, reading intervals of its own with jitter (irregular
 * sampling), tachycardia episodes of minutes (heart rate well above 100 bpm) and
 * hypertension phases of days, and a small fraction of artefacts (spikes, zeros, NaN).
 * --kind bands: each band records the distance walked since its previous reading, with
 * a daily rhythm, active and lazy days, and the same kinds of artefacts.
 *
 * Rows are grouped by device and ordered by time within a device. Every value is a
 * function of (seed, device, reading) through Philox, and the rows of device p start at
 * an offset every rank computes alike, so the file is the same for any rank or thread
 * count. */
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

#define GEN_CHUNK (1 << 20)
#define ID_BASE 100001

typedef struct gen_vitals {
    int64_t rows, devices, days, start_ymd;
    double artefacts;
    uint64_t seed;
    int bands;
    const char *tz;
} gen_vitals;

static const hb_option gen_options[] = {
    {"kind", HB_OPT_CHOICE, "vitals", 0, 0, "vitals|bands",
     "vitals: patient, time, systolic, diastolic, heart_rate; bands: band, time, distance_m"},
    {"rows", HB_OPT_SIZE, "1M", 1, 1e11, NULL, "readings in all"},
    {"devices", HB_OPT_SIZE, "1000", 1, 1e7, NULL, "patients (kind vitals) or fitness bands (kind bands)"},
    {"days", HB_OPT_SIZE, "28", 1, 36500, NULL, "days the readings cover"},
    {"start", HB_OPT_SIZE, "20240101", 10101, 99991231, NULL, "first local date, yyyymmdd"},
    {"timezone", HB_OPT_STRING, "Europe/Zurich", 1, 0, NULL, "IANA time zone of the daily rhythm"},
    {"artefacts", HB_OPT_FLOAT, "0.003", 0, 1, NULL, "fraction of readings that are artefacts (spike, zero, NaN)"},
    {"seed", HB_OPT_SIZE, "1", 0, 1e18, NULL, "random seed: the same seed gives the same file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

/* Streams of the Philox counter: one per kind of draw. */
enum { S_WEIGHT = 1, S_DEVICE, S_READ_A, S_READ_B, S_DAY, S_WEEK };

static inline double u01(uint32_t x) { return ((double)x + 0.5) * 0x1p-32; }

static philox4x32_ctr_t draw(uint64_t seed, uint64_t a, uint32_t b, uint32_t stream)
{
    philox4x32_ctr_t c = {{(uint32_t)a, (uint32_t)(a >> 32), b, stream}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return philox4x32(c, k);
}

/* About standard normal: the sum of four uniforms, scaled. */
static inline double gauss(const uint32_t *v) { return (u01(v[0]) + u01(v[1]) + u01(v[2]) + u01(v[3]) - 2) * 1.7320508075688772; }

/* Device p's first row is off[p]; off[devices] = rows. Devices read at rates of their
 * own (0.3 to 1.7 times the mean); the offsets come from the cumulative weights, the
 * same doubles on every rank. */
static int make_offsets(const gen_vitals *g, int64_t **out)
{
    size_t P = (size_t)g->devices;
    int64_t *off = hb_malloc((P + 1) * sizeof *off);
    double *cum = hb_malloc((P + 1) * sizeof *cum);
    if (!off || !cum) {
        free(off), free(cum);
        return hb_err_set(HB_EINTERNAL, "gen vitals", "out of memory for %zu devices", P);
    }
    cum[0] = 0;
    for (size_t p = 0; p < P; p++) cum[p + 1] = cum[p] + 0.3 + 1.4 * u01(draw(g->seed, p, 0, S_WEIGHT).v[0]);
    for (size_t p = 0; p <= P; p++) off[p] = (int64_t)floor((double)g->rows * (cum[p] / cum[P]));
    off[P] = g->rows;
    free(cum);
    *out = off;
    return 0;
}

/* The device of row i: the last p with off[p] <= i. */
static int64_t device_of(const int64_t *off, int64_t P, int64_t i)
{
    int64_t lo = 0, hi = P; /* off[lo] <= i < off[hi] */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (off[mid] <= i) lo = mid;
        else hi = mid;
    }
    return lo;
}

typedef struct cols {
    int32_t *dev;
    int64_t *time;
    float *a, *b, *c; /* systolic, diastolic, heart rate; or distance in a */
} cols;

/* A smooth day curve of the local hour: 0 at 3 am, 1 at 3 pm. */
static inline double daylight(double hour) { return 0.5 - 0.5 * cos((hour - 3.0) * (M_PI / 12.0)); }

/* Fills rows [start, start+n). */
static void fill(const gen_vitals *g, const int64_t *off, int64_t t0, const hb_tzmap *tzm, int64_t start, int64_t n,
                 cols *o)
{
    const int64_t P = g->devices;
    const double span = (double)g->days * 86400.0;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++) {
        int64_t i = start + j, p = device_of(off, P, i);
        int64_t k = i - off[p], np = off[p + 1] - off[p];
        philox4x32_ctr_t d = draw(g->seed, (uint64_t)p, 0, S_DEVICE);
        philox4x32_ctr_t a = draw(g->seed, (uint64_t)p, (uint32_t)k, S_READ_A);
        philox4x32_ctr_t b = draw(g->seed, (uint64_t)p, (uint32_t)k, S_READ_B);
        /* reading k in its slot of span / np seconds, jittered within the middle 80% */
        double dt = span / (double)np;
        int64_t t = t0 + (int64_t)floor(((double)k + 0.1 + 0.8 * u01(a.v[0])) * dt);
        int64_t rel = t - t0, day = rel / 86400, week = day / 7;
        int64_t local = hb_tzmap_local(tzm, t);
        double hour = (double)(local - hb_floordiv(local, 86400) * 86400) / 3600.0;
        philox4x32_ctr_t dd = draw(g->seed, (uint64_t)p, (uint32_t)day, S_DAY);
        double art = u01(b.v[2]);
        uint32_t what = b.v[3] % 3;
        o->dev[j] = (int32_t)(ID_BASE + p);
        o->time[j] = t;
        if (!g->bands) {
            int prone_tachy = u01(d.v[0]) < 0.2, hyper = u01(d.v[1]) < 0.25;
            double sys = hyper ? 138 + 20 * u01(d.v[2]) : 108 + 22 * u01(d.v[2]);
            double dia = sys * (0.6 + 0.08 * u01(d.v[3]));
            double hr = 55 + 30 * u01(d.v[1] ^ d.v[2]);
            double dip = daylight(hour);
            sys *= 0.9 + 0.1 * dip, dia *= 0.9 + 0.1 * dip, hr *= 0.88 + 0.14 * dip;
            /* a tachycardia episode of 3 to 40 minutes on some days */
            if (u01(dd.v[0]) < (prone_tachy ? 0.5 : 0.03)) {
                double dur = 180 + 2220 * u01(dd.v[1]);
                double from = (86400 - dur) * u01(dd.v[2]), at = (double)(rel - day * 86400);
                if (at >= from && at < from + dur) hr = 105 + 45 * u01(dd.v[3]) + 5 * u01(a.v[1]);
            }
            /* a hypertension phase of 1 to 4 days in some weeks */
            philox4x32_ctr_t w = draw(g->seed, (uint64_t)p, (uint32_t)week, S_WEEK);
            if (u01(w.v[0]) < (hyper ? 0.4 : 0.06)) {
                int64_t first = week * 7 + (int64_t)(u01(w.v[1]) * 4), len = 1 + (int64_t)(u01(w.v[2]) * 4);
                if (day >= first && day < first + len) sys += 20 + 15 * u01(w.v[3]), dia += 10 + 8 * u01(w.v[3]);
            }
            double s = nearbyint(sys + 7 * gauss(a.v)), di = nearbyint(dia + 5 * gauss(b.v));
            double h = nearbyint(hr + 4 * (u01(a.v[2]) + u01(a.v[3]) + u01(b.v[0]) + u01(b.v[1]) - 2) * 1.73);
            if (art < g->artefacts) {
                if (what == 0) s = 250 + (double)(b.v[0] % 100), h = 220 + (double)(b.v[1] % 80);
                else if (what == 1) s = 0, di = 0, h = 0;
                else s = NAN, di = NAN, h = NAN;
            }
            o->a[j] = (float)s, o->b[j] = (float)di, o->c[j] = (float)h;
        } else {
            /* metres since the previous reading: walking speed times the slot, by daytime */
            double pace = 0.05 + 0.25 * u01(d.v[0]); /* the band owner's mean activity */
            double day_f = u01(dd.v[0]) < 0.2 ? 0.2 : 0.6 + 0.8 * u01(dd.v[1]);
            double act = hour < 6.5 || hour > 22.5 ? 0.01 : daylight(hour);
            double m = 1.3 * dt * pace * day_f * act * (0.5 + u01(a.v[1]));
            if (u01(a.v[2]) < 0.3) m = 0; /* idle */
            double x = nearbyint(m);
            if (art < g->artefacts) x = what == 0 ? 50000 + (double)(b.v[0] % 50000) : what == 1 ? -1 : NAN;
            o->a[j] = (float)x;
        }
    }
}

/* Collective. The table, into out. */
static int write_file(const gen_vitals *g, hb_out *out)
{
    int64_t *off = NULL, t0 = 0;
    hb_tzmap tzm = {0};
    cols o = {0};
    int64_t d0 = hb_days_from_yyyymmdd(g->start_ymd);
    int rc = d0 == INT64_MIN ? hb_err_set(HB_EUSAGE, "gen vitals", "--start %lld is not a date yyyymmdd",
                                          (long long)g->start_ymd)
                             : 0;
    if (rc == 0) rc = hb_tz_select(g->tz);
    if (rc == 0) rc = hb_tzmap_cover(&tzm, d0 * 86400 - 2 * 86400, (d0 + g->days + 2) * 86400);
    if (rc == 0) {
        /* local midnight of the start date, close enough (never near a DST change) */
        t0 = d0 * 86400 - (hb_tzmap_local(&tzm, d0 * 86400) - d0 * 86400);
        rc = make_offsets(g, &off);
    }
    if (rc == 0) {
        o.dev = hb_malloc(GEN_CHUNK * sizeof *o.dev);
        o.time = hb_malloc(GEN_CHUNK * sizeof *o.time);
        o.a = hb_malloc(GEN_CHUNK * sizeof *o.a);
        o.b = hb_malloc(GEN_CHUNK * sizeof *o.b);
        o.c = hb_malloc(GEN_CHUNK * sizeof *o.c);
        if (!o.dev || !o.time || !o.a || !o.b || !o.c) rc = hb_err_set(HB_EINTERNAL, "gen vitals", "out of memory");
    }
    rc = hb_agree(rc);
    const uint64_t dims[1] = {(uint64_t)g->rows};
    const char *dev = g->bands ? "/table/band" : "/table/patient";
    if (rc == 0) rc = hb_out_group(out, "/table");
    if (rc == 0) rc = hb_out_dataset(out, dev, HB_I32, 1, dims, "1", g->bands ? "fitness band id" : "patient id");
    if (rc == 0) rc = hb_out_dataset(out, "/table/time", HB_I64, 1, dims, "s", "UTC seconds since 1970-01-01");
    if (g->bands) {
        if (rc == 0)
            rc = hb_out_dataset(out, "/table/distance_m", HB_F32, 1, dims, "m", "distance since the previous reading");
    } else {
        if (rc == 0) rc = hb_out_dataset(out, "/table/systolic", HB_F32, 1, dims, "mmHg", "systolic blood pressure");
        if (rc == 0) rc = hb_out_dataset(out, "/table/diastolic", HB_F32, 1, dims, "mmHg", "diastolic blood pressure");
        if (rc == 0) rc = hb_out_dataset(out, "/table/heart_rate", HB_F32, 1, dims, "1/min", "heart rate");
    }
    if (rc == 0) rc = hb_out_attr_str(out, "/table", "kind", g->bands ? "bands" : "vitals");
    if (rc == 0) rc = hb_out_attr_i64(out, "/table", "n_devices", g->devices);
    if (rc == 0) rc = hb_out_attr_str(out, "/table", "timezone", g->tz);
    int64_t lo, hi;
    hb_range_of(g->rows, hb_rank, hb_size, &lo, &hi);
    int64_t most = (g->rows + hb_size - 1) / hb_size, rounds = (most + GEN_CHUNK - 1) / GEN_CHUNK;
    double start = hb_now();
    for (int64_t r = 0; r < rounds && rc == 0; r++) {
        int64_t a = lo + r * GEN_CHUNK, n = a >= hi ? 0 : (hi - a < GEN_CHUNK ? hi - a : GEN_CHUNK);
        if (n > 0) fill(g, off, t0, &tzm, a, n, &o);
        const uint64_t ua = (uint64_t)a, un = (uint64_t)n;
        rc = hb_out_slab(out, dev, HB_I32, 1, dims, ua, un, o.dev);
        if (rc == 0) rc = hb_out_slab(out, "/table/time", HB_I64, 1, dims, ua, un, o.time);
        if (g->bands) {
            if (rc == 0) rc = hb_out_slab(out, "/table/distance_m", HB_F32, 1, dims, ua, un, o.a);
        } else {
            if (rc == 0) rc = hb_out_slab(out, "/table/systolic", HB_F32, 1, dims, ua, un, o.a);
            if (rc == 0) rc = hb_out_slab(out, "/table/diastolic", HB_F32, 1, dims, ua, un, o.b);
            if (rc == 0) rc = hb_out_slab(out, "/table/heart_rate", HB_F32, 1, dims, ua, un, o.c);
        }
    }
    if (rc == 0)
        HB_INFO("gen vitals: %lld readings of %lld %s over %lld days in %.1fs", (long long)g->rows,
                (long long)g->devices, g->bands ? "bands" : "patients", (long long)g->days, hb_now() - start);
    free(off), free(o.dev), free(o.time), free(o.a), free(o.b), free(o.c);
    hb_tzmap_free(&tzm);
    return rc;
}

/* The generator's settings from its options. */
static gen_vitals read_options(const hb_optset *o)
{
    return (gen_vitals){.rows = (int64_t)hb_opt_num(o, "rows"),
                        .devices = (int64_t)hb_opt_num(o, "devices"),
                        .days = (int64_t)hb_opt_num(o, "days"),
                        .start_ymd = (int64_t)hb_opt_num(o, "start"),
                        .artefacts = hb_opt_num(o, "artefacts"),
                        .seed = (uint64_t)(int64_t)hb_opt_num(o, "seed"),
                        .bands = strcmp(hb_opt_str(o, "kind"), "bands") == 0,
                        .tz = hb_opt_str(o, "timezone")};
}

/* Not collective. What the option table cannot check. */
static int gen_check(const hb_optset *o)
{
    gen_vitals g = read_options(o);
    if (!hb_tz_valid(g.tz)) return hb_err_set(HB_EUSAGE, "gen vitals", "unknown time zone '%s'", g.tz);
    HB_CHECK(g.devices <= g.rows, HB_EUSAGE, "gen vitals", "--devices %lld is more than --rows %lld",
             (long long)g.devices, (long long)g.rows);
    /* a device reads at most 1.7 / 0.3 times the mean, and its readings count in 32 bits */
    HB_CHECK(g.rows / g.devices < ((int64_t)1 << 29), HB_EUSAGE, "gen vitals",
             "--rows %lld over --devices %lld is 2^29 readings per device or more", (long long)g.rows,
             (long long)g.devices);
    return 0;
}

/* Collective. */
static int gen_write(const hb_optset *o, hb_out *out)
{
    gen_vitals g = read_options(o);
    return write_file(&g, out);
}

const hb_generator hb_generator_vitals = {
    .name = "vitals",
    .summary = "synthetic patient vital signs (or fitness-band distances, --kind bands) for kernel aggregate",
    .options = gen_options,
    .check = gen_check,
    .write = gen_write,
};
