/* `h5batch gen meters`: daily readings of water meters (docs/bill.md).
 *
 * Each meter belongs to a district and has its own base demand; a day's use follows the
 * season (a summer peak) and the week (more at weekends), with noise. A few meters leak
 * from some day on (a constant extra flow, seen as a high minimum flow at night), a few
 * miss readings (the next reading then covers the missed days), a few are replaced (the
 * new register starts at 0). Quantities are whole litres, so readings and consumption
 * are exact in thousandths of a cubic metre. Every value is a function of (seed, meter,
 * day) through Philox, and a rank's rows start where the rows of the meters before its
 * own end, so the file is the same for any rank or thread count. */
#include "kernels/bill/internal.h"

#include "core/calendar.h"
#include "core/hb.h"
#include "kernels/common/exchange.h"
#include "io/io.h"

#include <Random123/philox.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>

#define GEN_ROWS (1 << 20) /* rows per write round, about */
#define METER_ID0 100000

typedef struct gen_meters {
    int64_t meters, districts, days, start_ymd, day0;
    double missing, leaks, replacements;
    uint64_t seed;
} gen_meters;

static const hb_option gen_options[] = {
    {"meters", HB_OPT_SIZE, "1000", 1, 1e8, NULL, "water meters (accounts), ids from 100000"},
    {"districts", HB_OPT_SIZE, "8", 1, 1e6, NULL, "districts the meters belong to (0 ... districts-1)"},
    {"days", HB_OPT_SIZE, "730", 1, 36500, NULL, "days of daily readings"},
    {"start", HB_OPT_SIZE, "20240101", 19000101, 22001231, NULL, "first day, yyyymmdd (UTC)"},
    {"missing", HB_OPT_FLOAT, "0.01", 0, 0.9, NULL, "fraction of days without a reading"},
    {"leaks", HB_OPT_FLOAT, "0.02", 0, 1, NULL, "fraction of meters that start leaking on some day"},
    {"replacements", HB_OPT_FLOAT, "0.01", 0, 1, NULL, "fraction of meters replaced on some day (register reset)"},
    {"seed", HB_OPT_SIZE, "1", 0, 1e18, NULL, "random seed: the same seed gives the same file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

static inline double u01(uint32_t x) { return ((double)x + 0.5) * 0x1p-32; }

static philox4x32_ctr_t draw(uint64_t seed, uint64_t meter, uint32_t day, uint32_t stream)
{
    philox4x32_ctr_t c = {{(uint32_t)meter, (uint32_t)(meter >> 32), day, stream}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return philox4x32(c, k);
}

/* A meter's fixed traits. */
typedef struct meter {
    int32_t district;
    double base;               /* m3 per day */
    int64_t leak_day, repl_day; /* -1: never */
    double leak;               /* m3 per day */
    int64_t register0;         /* litres on the first day */
} meter;

static meter traits(const gen_meters *g, int64_t m)
{
    philox4x32_ctr_t a = draw(g->seed, (uint64_t)m, 0xFFFFFFFFu, 1), b = draw(g->seed, (uint64_t)m, 0xFFFFFFFFu, 2);
    meter t;
    t.district = (int32_t)(u01(a.v[0]) * (double)g->districts);
    t.base = 0.12 + 0.45 * u01(a.v[1]) * u01(a.v[1]) * 2;
    t.leak_day = u01(a.v[2]) < g->leaks ? (int64_t)(u01(b.v[0]) * (double)g->days) : -1;
    t.leak = 0.4 + 1.6 * u01(b.v[1]);
    t.repl_day = u01(a.v[3]) < g->replacements ? (int64_t)(u01(b.v[2]) * (double)g->days) : -1;
    t.register0 = (int64_t)(u01(b.v[3]) * 4e6);
    return t;
}

/* Whether meter m has a reading on day d (the last day always has one). */
static int read_on(const gen_meters *g, int64_t m, int64_t d)
{
    return d == g->days - 1 || u01(draw(g->seed, (uint64_t)m, (uint32_t)d, 3).v[0]) >= g->missing;
}

/* Readings of meter m, from row r of the block's arrays; returns the row after. */
static int64_t fill_meter(const gen_meters *g, int64_t m, int64_t r, int64_t *id, int32_t *dist, int64_t *time,
                          double *reading, double *cons, float *night)
{
    const meter t = traits(g, m);
    int64_t reg = t.register0, since = 0; /* litres on the register, and used since the last reading */
    for (int64_t d = 0; d < g->days; d++) {
        int64_t day = g->day0 + d, y;
        int mo, da;
        hb_civil_from_days(day, &y, &mo, &da);
        double doy = (double)(day - hb_days_from_yyyymmdd(y * 10000 + 101));
        int dow = (int)((day % 7 + 10) % 7);
        philox4x32_ctr_t a = draw(g->seed, (uint64_t)m, (uint32_t)d, 4);
        double z = (u01(a.v[0]) + u01(a.v[1]) + u01(a.v[2]) - 1.5) * 2.0; /* about N(0, 1) */
        double use = t.base * (1 + 0.3 * sin(2 * M_PI * (doy - 105) / 365.25)) * (dow >= 5 ? 1.15 : 1.0) *
                     (1 + 0.2 * z);
        if (use < 0) use = 0;
        int leaking = t.leak_day >= 0 && d >= t.leak_day;
        if (leaking) use += t.leak;
        if (d == t.repl_day) reg = 0; /* the new meter starts at 0 */
        int64_t litres = (int64_t)floor(use * 1000 + 0.5);
        reg += litres, since += litres;
        if (!read_on(g, m, d)) continue;
        id[r] = METER_ID0 + m, dist[r] = t.district;
        time[r] = day * 86400 + 43200; /* read at noon UTC: the day in any zone near UTC */
        reading[r] = (double)reg / 1000;
        cons[r] = (double)since / 1000;
        night[r] = (float)((leaking ? t.leak / 24 : 0) + 0.002 * u01(a.v[3]));
        since = 0;
        r++;
    }
    return r;
}

/* Collective. Every rank writes the readings of its own contiguous range of meters. */
static int write_file(const gen_meters *g, hb_out *out)
{
    int64_t m0, m1;
    hb_range_of(g->meters, hb_rank, hb_size, &m0, &m1);
    int64_t block = GEN_ROWS / g->days > 0 ? GEN_ROWS / g->days : 1;
    int64_t *nrows = hb_malloc((size_t)(m1 - m0 + 1) * sizeof *nrows);
    int rc = nrows ? 0 : HB_EINTERNAL;
    int64_t mine = 0;
    for (int64_t m = m0; rc == 0 && m < m1; m++) {
        int64_t n = 0;
        for (int64_t d = 0; d < g->days; d++) n += read_on(g, m, d);
        nrows[m - m0] = n, mine += n;
    }
    rc = hb_agree(rc);
    if (rc) return free(nrows), rc;
    int64_t first = 0, total = mine, rounds = (m1 - m0 + block - 1) / block;
    MPI_Exscan(&mine, &first, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (hb_rank == 0) first = 0;
    MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &rounds, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    size_t cap = (size_t)(block * g->days);
    int64_t *id = hb_malloc(cap * 8), *time = hb_malloc(cap * 8);
    int32_t *dist = hb_malloc(cap * 4);
    double *reading = hb_malloc(cap * 8), *cons = hb_malloc(cap * 8);
    float *night = hb_malloc(cap * 4);
    rc = hb_agree(id && time && dist && reading && cons && night ? 0 : HB_EINTERNAL);
    const uint64_t dims[1] = {(uint64_t)total};
    const char *T = "/table";
    if (rc == 0) rc = hb_out_group(out, T);
    if (rc == 0) rc = hb_out_dataset(out, "/table/meter", HB_I64, 1, dims, "1", "meter (account) id");
    if (rc == 0) rc = hb_out_dataset(out, "/table/district", HB_I32, 1, dims, "1", "district of the meter");
    if (rc == 0) rc = hb_out_dataset(out, "/table/time", HB_I64, 1, dims, "s", "UTC seconds since 1970-01-01");
    if (rc == 0) rc = hb_out_dataset(out, "/table/reading", HB_F64, 1, dims, "m3", "register reading");
    if (rc == 0)
        rc = hb_out_dataset(out, "/table/consumption", HB_F64, 1, dims, "m3",
                            "use since the previous reading (across a meter replacement too)");
    if (rc == 0)
        rc = hb_out_dataset(out, "/table/night_flow", HB_F32, 1, dims, "m3/h", "lowest hourly flow of the night");
    if (rc == 0) rc = hb_out_attr_i64(out, T, "n_meters", g->meters);
    if (rc == 0) rc = hb_out_attr_i64(out, T, "n_districts", g->districts);
    int64_t pos = first;
    for (int64_t r = 0; r < rounds && rc == 0; r++) {
        int64_t a = m0 + r * block, b = a + block < m1 ? a + block : m1, n = 0;
        for (int64_t m = a; m < b; m++) n = fill_meter(g, m, n, id, dist, time, reading, cons, night);
        uint64_t o = (uint64_t)pos, c = (uint64_t)n;
        rc = hb_out_slab(out, "/table/meter", HB_I64, 1, dims, o, c, id);
        if (rc == 0) rc = hb_out_slab(out, "/table/district", HB_I32, 1, dims, o, c, dist);
        if (rc == 0) rc = hb_out_slab(out, "/table/time", HB_I64, 1, dims, o, c, time);
        if (rc == 0) rc = hb_out_slab(out, "/table/reading", HB_F64, 1, dims, o, c, reading);
        if (rc == 0) rc = hb_out_slab(out, "/table/consumption", HB_F64, 1, dims, o, c, cons);
        if (rc == 0) rc = hb_out_slab(out, "/table/night_flow", HB_F32, 1, dims, o, c, night);
        pos += n;
    }
    free(nrows), free(id), free(time), free(dist), free(reading), free(cons), free(night);
    if (rc == 0)
        HB_INFO("gen meters: %lld readings of %lld meters in %lld districts over %lld days", (long long)total,
                (long long)g->meters, (long long)g->districts, (long long)g->days);
    return rc;
}

static gen_meters read_options(const hb_optset *o)
{
    gen_meters g = {.meters = (int64_t)hb_opt_num(o, "meters"),
                    .districts = (int64_t)hb_opt_num(o, "districts"),
                    .days = (int64_t)hb_opt_num(o, "days"),
                    .start_ymd = (int64_t)hb_opt_num(o, "start"),
                    .missing = hb_opt_num(o, "missing"),
                    .leaks = hb_opt_num(o, "leaks"),
                    .replacements = hb_opt_num(o, "replacements"),
                    .seed = (uint64_t)(int64_t)hb_opt_num(o, "seed")};
    g.day0 = hb_days_from_yyyymmdd(g.start_ymd);
    return g;
}

/* Not collective. The start date must be a date. */
static int gen_check(const hb_optset *o)
{
    gen_meters g = read_options(o);
    HB_CHECK(g.day0 != INT64_MIN, HB_EUSAGE, "gen meters", "--start %lld is not a date yyyymmdd",
             (long long)g.start_ymd);
    return 0;
}

/* Collective. The readings table. */
static int gen_write(const hb_optset *o, hb_out *out)
{
    gen_meters g = read_options(o);
    return write_file(&g, out);
}

const hb_generator bill_meters_generator = {
    .name = "meters",
    .summary = "synthetic daily water meter readings (leaks, missing days, replacements) for kernel bill",
    .options = gen_options,
    .check = gen_check,
    .write = gen_write,
};
