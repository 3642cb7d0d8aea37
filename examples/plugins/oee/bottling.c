/* `h5batch gen bottling`: synthetic per-interval records of a bottling plant's filling
 * lines, the input of kernel oee.
 *
 * Every line fills one batch after another; a batch is one product (a size and a
 * packaging, with its ideal cycle time), 2 to 12 hours long, and starts with a
 * changeover (setup) that stops the line for a large part of the first interval. In
 * the other intervals the line has short stops and now and then a breakdown, runs a
 * little below its ideal speed (how much is the batch's own) and rejects a share of
 * the bottles (a few batches have a quality problem). A cleaning at every shift change
 * (06:00, 14:00, 22:00 UTC) takes 20 minutes off the planned time. A small fraction of
 * the records is invalid in one of the ways the kernel checks.
 *
 * Records are ordered by time, then line. Every value is a function of (seed, line,
 * interval) through a counter-based hash, so the file is the same for any rank count. */
#include <h5batch/kernel.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK (1 << 16) /* rows generated and written at a time */
#define CLEANING_S 1200.0

typedef struct product {
    const char *name;
    double cycle_s; /* ideal cycle time */
} product;

static const product products[] = {
    {"0.33 l can", 0.040}, {"0.5 l PET", 0.050}, {"0.75 l glass", 0.090}, {"1.0 l PET", 0.072}, {"1.5 l PET", 0.100}};
#define NPRODUCTS ((int)(sizeof products / sizeof products[0]))
#define PRODUCT_NAMES "0: 0.33 l can, 1: 0.5 l PET, 2: 0.75 l glass, 3: 1.0 l PET, 4: 1.5 l PET"

static const hb_option bottling_options[] = {
    {"lines", HB_OPT_SIZE, "4", 1, 1000, NULL, "filling lines"},
    {"days", HB_OPT_SIZE, "28", 1, 3650, NULL, "days of production"},
    {"interval", HB_OPT_SIZE, "900", 60, 86400, NULL, "seconds per record"},
    {"start", HB_OPT_SIZE, "20240101", 19700101, 99991231, NULL, "first day, yyyymmdd (UTC)"},
    {"invalid", HB_OPT_FLOAT, "0.001", 0, 1, NULL, "fraction of invalid records"},
    {"seed", HB_OPT_SIZE, "1", 0, 1e18, NULL, "random seed: the same seed gives the same file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

typedef struct plant {
    int64_t lines, days, interval, start, steps; /* steps: records per line */
    double invalid;
    uint64_t seed;
    int64_t t0;       /* UTC midnight of the first day */
    int64_t **starts; /* per line: first interval of each batch, then steps */
    int64_t *nbatch;
} plant;

/* splitmix64's finalizer. */
static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* A uniform number in (0, 1): draw j of (stream, a, b). */
static double u01(const plant *p, uint64_t stream, uint64_t a, uint64_t b, uint64_t j)
{
    uint64_t h = mix(p->seed ^ mix(stream ^ mix(a ^ mix(b * 64 + j))));
    return ((double)(h >> 11) + 0.5) * 0x1p-53;
}

enum { S_BATCH = 1, S_STEP = 2 };

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int valid_date(int64_t ymd)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return 0;
    return !(m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
}

static plant read_options(const hb_optset *o)
{
    plant p = {.lines = (int64_t)hb_opt_num(o, "lines"),
               .days = (int64_t)hb_opt_num(o, "days"),
               .interval = (int64_t)hb_opt_num(o, "interval"),
               .start = (int64_t)hb_opt_num(o, "start"),
               .invalid = hb_opt_num(o, "invalid"),
               .seed = (uint64_t)(int64_t)hb_opt_num(o, "seed")};
    p.steps = p.days * 86400 / p.interval;
    p.t0 = days_from_civil(p.start / 10000, p.start / 100 % 100, p.start % 100) * 86400;
    return p;
}

static int bottling_check(const hb_optset *o)
{
    plant p = read_options(o);
    HB_CHECK(valid_date(p.start), HB_EUSAGE, "gen bottling", "--start %lld is not a date yyyymmdd", (long long)p.start);
    HB_CHECK(p.steps >= 1, HB_EUSAGE, "gen bottling", "--days x 86400 must hold at least one --interval");
    return 0;
}

/* Batch boundaries of every line: lengths of 2 to 12 hours in whole intervals. */
static int make_batches(plant *p)
{
    const int64_t lo = (7200 + p->interval - 1) / p->interval, hi = (43200 + p->interval - 1) / p->interval;
    p->starts = hb_calloc((size_t)p->lines, sizeof *p->starts);
    p->nbatch = hb_calloc((size_t)p->lines, sizeof *p->nbatch);
    if (!p->starts || !p->nbatch) return HB_EINTERNAL;
    for (int64_t l = 0; l < p->lines; l++) {
        int64_t cap = p->steps / lo + 2, k = 0, t = 0;
        int64_t *s = p->starts[l] = hb_malloc((size_t)cap * sizeof *s);
        if (!s) return HB_EINTERNAL;
        while (t < p->steps) {
            s[k] = t;
            t += lo + (int64_t)(u01(p, S_BATCH, (uint64_t)l, (uint64_t)k, 0) * (double)(hi - lo + 1));
            k++;
        }
        s[k] = p->steps;
        p->nbatch[l] = k;
    }
    return 0;
}

static void free_batches(plant *p)
{
    for (int64_t l = 0; p->starts && l < p->lines; l++) free(p->starts[l]);
    free(p->starts), free(p->nbatch);
}

/* The batch of line l that holds interval t. */
static int64_t batch_at(const plant *p, int64_t l, int64_t t)
{
    const int64_t *s = p->starts[l];
    int64_t a = 0, b = p->nbatch[l]; /* s[a] <= t < s[b] */
    while (b - a > 1) {
        int64_t m = a + (b - a) / 2;
        if (s[m] <= t) a = m;
        else b = m;
    }
    return a;
}

typedef struct cols {
    int64_t *batch, *time;
    uint32_t *line;
    uint8_t *product;
    double *planned, *stop, *cycle;
    int32_t *total, *good;
} cols;

/* Record r (interval r / lines of line r % lines) into slot j of c. */
static void make_record(const plant *p, int64_t r, int64_t j, cols *c)
{
    const int64_t l = r % p->lines, t = r / p->lines, k = batch_at(p, l, t);
    const uint64_t ul = (uint64_t)l, uk = (uint64_t)k;
    const int prod = (int)(u01(p, S_BATCH, ul, uk, 1) * NPRODUCTS);
    const double speed = 0.88 + 0.11 * u01(p, S_BATCH, ul, uk, 2);
    const double reject = u01(p, S_BATCH, ul, uk, 3) < 0.05 ? 0.05 + 0.07 * u01(p, S_BATCH, ul, uk, 4)
                                                             : 0.002 + 0.018 * u01(p, S_BATCH, ul, uk, 4);
    const uint64_t key = ul << 40 ^ (uint64_t)t;
    const int64_t sec = t * p->interval, day_sec = sec % 86400;
    double planned = (double)p->interval;
    for (int h = 6; h < 24; h += 8) /* a cleaning when a shift change falls in the interval */
        if (day_sec <= h * 3600 && h * 3600 < day_sec + p->interval) planned -= CLEANING_S;
    if (planned < 0) planned = 0;
    double stop;
    if (t == p->starts[l][k]) {
        stop = planned * (0.3 + 0.4 * u01(p, S_STEP, key, 0, 0)); /* changeover to this batch */
    } else {
        stop = 0;
        int shorts = (int)(u01(p, S_STEP, key, 0, 1) * 4);
        for (int i = 0; i < shorts; i++) stop += 10 + 80 * u01(p, S_STEP, key, 0, 2 + (uint64_t)i);
        if (u01(p, S_STEP, key, 0, 6) < 0.015) stop += 300 + 1500 * u01(p, S_STEP, key, 0, 7);
    }
    stop = floor((stop < planned ? stop : planned) * 10) / 10;
    const double cycle = products[prod].cycle_s, run = planned - stop;
    int64_t total = (int64_t)floor(run / cycle * speed * (0.97 + 0.03 * u01(p, S_STEP, key, 0, 8)));
    int64_t bad = (int64_t)floor((double)total * reject * (0.5 + u01(p, S_STEP, key, 0, 9)));
    int64_t good = total - (bad < total ? bad : total), batch = (l + 1) * 100000 + k + 1;
    double cyc = cycle;
    if (u01(p, S_STEP, key, 0, 10) < p->invalid) {
        switch ((int)(u01(p, S_STEP, key, 0, 11) * 5)) {
        case 0: good = total + 1; break;        /* more good bottles than filled */
        case 1: stop = planned + 5; break;      /* stopped longer than planned */
        case 2: total = -1 - total % 7; break;  /* a counter error */
        case 3: cyc = NAN; break;               /* no ideal cycle time */
        default: batch = -1; break;             /* no batch id */
        }
    }
    c->batch[j] = batch;
    c->line[j] = (uint32_t)(l + 1);
    c->product[j] = (uint8_t)prod;
    c->time[j] = p->t0 + sec;
    c->planned[j] = planned;
    c->stop[j] = stop;
    c->total[j] = (int32_t)total;
    c->good[j] = (int32_t)good;
    c->cycle[j] = cyc;
}

static const struct column {
    const char *name;
    hb_elem t;
    const char *units, *desc;
} columns[] = {
    {"batch", HB_I64, "1", "production batch id (line x 100000 + batch number); -1: missing"},
    {"line", HB_U32, "1", "filling line"},
    {"product", HB_U8, "1", "product (size and packaging): see the table's attribute products"},
    {"time", HB_I64, "s", "start of the interval, UTC seconds since 1970-01-01"},
    {"planned_s", HB_F64, "s", "planned production time of the interval"},
    {"stop_s", HB_F64, "s", "time the line stood still (changeover, short stops, breakdowns)"},
    {"total", HB_I32, "bottles", "bottles filled"},
    {"good", HB_I32, "bottles", "bottles that passed inspection"},
    {"ideal_cycle_s", HB_F64, "s", "ideal cycle time of the product"},
};
#define NCOLUMNS ((int)(sizeof columns / sizeof columns[0]))

/* Collective. The batches, then the records, each rank its contiguous share. */
static int bottling_write(const hb_optset *o, hb_out *out)
{
    plant p = read_options(o);
    double t0 = hb_now();
    const int64_t N = p.lines * p.steps;
    const uint64_t dims[1] = {(uint64_t)N};
    cols c = {hb_malloc(BLOCK * 8), hb_malloc(BLOCK * 8), hb_malloc(BLOCK * 4), hb_malloc(BLOCK),
              hb_malloc(BLOCK * 8), hb_malloc(BLOCK * 8), hb_malloc(BLOCK * 8), hb_malloc(BLOCK * 4),
              hb_malloc(BLOCK * 4)};
    int rc = c.batch && c.time && c.line && c.product && c.planned && c.stop && c.cycle && c.total && c.good
                 ? make_batches(&p)
                 : HB_EINTERNAL;
    rc = hb_agree(rc);
    if (rc == 0) rc = hb_out_group(out, "/intervals");
    for (int i = 0; rc == 0 && i < NCOLUMNS; i++) {
        char path[64];
        snprintf(path, sizeof path, "/intervals/%s", columns[i].name);
        rc = hb_out_dataset(out, path, columns[i].t, 1, dims, columns[i].units, columns[i].desc);
    }
    if (rc == 0) rc = hb_out_attr_i64(out, "/intervals", "n_lines", p.lines);
    if (rc == 0) rc = hb_out_attr_i64(out, "/intervals", "interval_s", p.interval);
    if (rc == 0) rc = hb_out_attr_str(out, "/intervals", "products", PRODUCT_NAMES);
    const int64_t lo = N * hb_rank / hb_size, hi = N * (hb_rank + 1) / hb_size;
    const int64_t most = (N + hb_size - 1) / hb_size, rounds = (most + BLOCK - 1) / BLOCK;
    for (int64_t r = 0; r < rounds && rc == 0; r++) {
        const int64_t a = lo + r * BLOCK, n = a >= hi ? 0 : (hi - a < BLOCK ? hi - a : BLOCK);
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < n; j++) make_record(&p, a + j, j, &c);
        const void *data[] = {c.batch, c.line, c.product, c.time, c.planned, c.stop, c.total, c.good, c.cycle};
        for (int i = 0; rc == 0 && i < NCOLUMNS; i++) {
            char path[64];
            snprintf(path, sizeof path, "/intervals/%s", columns[i].name);
            rc = hb_out_slab(out, path, columns[i].t, 1, dims, (uint64_t)a, (uint64_t)n, data[i]);
        }
    }
    free_batches(&p);
    free(c.batch), free(c.time), free(c.line), free(c.product), free(c.planned), free(c.stop), free(c.cycle);
    free(c.total), free(c.good);
    if (rc == 0)
        HB_INFO("gen bottling: %lld records of %lld lines over %lld days in %.1fs", (long long)N, (long long)p.lines,
                (long long)p.days, hb_now() - t0);
    return rc;
}

const hb_generator oee_bottling = {
    .name = "bottling",
    .summary = "synthetic per-interval records of a bottling plant's filling lines for kernel oee",
    .options = bottling_options,
    .check = bottling_check,
    .write = bottling_write,
};
