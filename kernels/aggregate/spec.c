/* The aggregate kernel's options, parsed once into agg_spec: keys, values and their
 * valid ranges, statistics, time, layout and the memory limit. Every rule the option
 * table cannot state is checked here, so that a bad job file fails before any data is
 * read (78, naming the key). */
#include "kernels/aggregate/agg.h"

#include "core/hb.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const calendar_names[] = {"hour", "day_of_week", "date", "week", "month", "quarter", "year", NULL};
static const key_kind calendar_kinds[] = {KEY_HOUR, KEY_DOW, KEY_DATE, KEY_WEEK, KEY_MONTH, KEY_QUARTER, KEY_YEAR};

/* Splits a comma-separated list into trimmed items (at most max); -1 when there are more. */
static int split(const char *s, char *buf, size_t blen, char **items, int max)
{
    snprintf(buf, blen, "%s", s ? s : "");
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*t)) t++;
        char *e = t + strlen(t);
        while (e > t && isspace((unsigned char)e[-1])) *--e = '\0';
        if (!*t) continue;
        if (n == max) return -1;
        items[n++] = t;
    }
    return n;
}

/* A real number, or an empty bound (def); -1 when it is neither. */
static int bound(const char *s, double def, double *out)
{
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return *out = def, 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == s || *end || errno == ERANGE || isnan(v)) return -1;
    *out = v;
    return 0;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) >= AGG_NAME) return 0;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == ':' || isspace((unsigned char)*p)) return 0;
    return 1;
}

/* What a name that valid_name refuses can be: the table's column under a name of the job's own. */
#define NAME_HINT " (names hold no spaces, '/' or ':'): map the table's column to one in `columns`, such as columns = sensor_id:Sensor ID"

static int fail(const char **key, const char *k, char *msg, size_t len, const char *fmt, const char *a, const char *b)
{
    *key = k;
    snprintf(msg, len, fmt, a, b);
    return HB_ECONFIG;
}

static int parse_stat(agg_spec *sp, const char *s, const char **key, char *msg, size_t len)
{
    static const struct {
        const char *name;
        stat_kind k;
    } plain[] = {{"count", ST_COUNT}, {"sum", ST_SUM},     {"mean", ST_MEAN},   {"min", ST_MIN},  {"max", ST_MAX},
                 {"std", ST_STD},     {"var", ST_VAR},     {"first", ST_FIRST}, {"last", ST_LAST}};
    int i = sp->nstats;
    for (size_t j = 0; j < sizeof plain / sizeof plain[0]; j++)
        if (strcmp(s, plain[j].name) == 0) {
            sp->st[i] = plain[j].k;
            snprintf(sp->stname[i], AGG_NAME, "%s", s);
            goto added;
        }
    double v;
    if (s[0] == 'p' && bound(s + 1, NAN, &v) == 0 && !isnan(v)) {
        if (v < 0 || v > 100) return fail(key, "stats", msg, len, "stats: %s: a percentile is between 0 and 100%s", s, "");
        sp->st[i] = ST_PCT;
        sp->arg[i] = v;
        snprintf(sp->stname[i], AGG_NAME, "p%g", v);
        goto added;
    }
    int above = strncmp(s, "above:", 6) == 0, below = strncmp(s, "below:", 6) == 0;
    if ((above || below) && bound(s + 6, NAN, &v) == 0 && isfinite(v)) {
        sp->st[i] = above ? ST_ABOVE : ST_BELOW;
        sp->arg[i] = v;
        snprintf(sp->stname[i], AGG_NAME, "%s%g", above ? "above" : "below", v);
        goto added;
    }
    return fail(key, "stats", msg, len,
                "stats: unknown statistic '%s' (count, sum, mean, min, max, std, var, first, last, p<P>, above:X, "
                "below:X)%s",
                s, "");
added:
    sp->nstats++;
    return 0;
}

/* 78 when statistic i (written text[i]) names the dataset of an earlier one: the same
 * text twice, the same statistic written otherwise (p50 and p50.0), or two thresholds
 * or percentiles that %g writes alike (above:100000.1 and above:100000.2). */
static int stat_unique(const agg_spec *sp, int i, char *const *text, const char **key, char *msg, size_t len)
{
    for (int j = 0; j < i; j++) {
        if (strcmp(sp->stname[j], sp->stname[i]) != 0) continue;
        *key = "stats";
        if (strcmp(text[j], text[i]) == 0) snprintf(msg, len, "stats: '%s' is listed twice", text[i]);
        else if (sp->st[j] == sp->st[i] && sp->arg[j] == sp->arg[i])
            snprintf(msg, len, "stats: '%s' and '%s' are the same statistic (both are %s_%s)", text[j], text[i],
                     sp->val[0], sp->stname[i]);
        else
            snprintf(msg, len,
                     "stats: '%s' and '%s' would both be written as dataset %s_%s: a threshold or percentile is "
                     "named with 6 significant digits (%%g), so these two must differ within them",
                     text[j], text[i], sp->val[0], sp->stname[i]);
        return HB_ECONFIG;
    }
    return 0;
}

int agg_spec_parse(const hb_optset *o, agg_spec *sp, const char **key, char *msg, size_t len)
{
    memset(sp, 0, sizeof *sp);
    char buf[4096], *items[64];
    sp->tz = hb_opt_str(o, "timezone");
    sp->table = hb_opt_str(o, "table");
    if (!hb_tz_valid(sp->tz))
        return fail(key, "timezone", msg, len, "unknown time zone '%s' (an IANA name like Europe/Berlin)%s", sp->tz, "");
    if (hb_colmap_parse(hb_opt_str(o, "columns"), &sp->cols, msg, len)) return *key = "columns", HB_ECONFIG;

    const char *by = hb_opt_str(o, "by");
    if (!by) return fail(key, NULL, msg, len, "'by' is missing: the keys to group by, e.g. by = meter, month%s%s", "", "");
    int n = split(by, buf, sizeof buf, items, AGG_MAX_KEYS);
    if (n < 0) {
        *key = "by";
        return snprintf(msg, len, "by: at most %d keys", AGG_MAX_KEYS), HB_ECONFIG;
    }
    if (n == 0) return fail(key, "by", msg, len, "by: no key given%s%s", "", "");
    for (int i = 0; i < n; i++) {
        if (!valid_name(items[i])) return fail(key, "by", msg, len, "by: '%s' is not a column name%s", items[i], NAME_HINT);
        for (int j = 0; j < i; j++)
            if (strcmp(sp->key[j], items[i]) == 0) return fail(key, "by", msg, len, "by: '%s' is listed twice%s", items[i], "");
        snprintf(sp->key[i], AGG_NAME, "%s", items[i]);
        sp->kkind[i] = KEY_COLUMN;
        /* a calendar name is the calendar key unless `columns` maps it to a column, as a
         * following step does with the month column of a table-layout output */
        const int mapped = hb_colmap_name(&sp->cols, items[i]) != items[i];
        for (int c = 0; calendar_names[c] && !mapped; c++)
            if (strcmp(items[i], calendar_names[c]) == 0) sp->kkind[i] = calendar_kinds[c];
    }
    sp->nkeys = n;

    const char *vals = hb_opt_str(o, "values");
    if (!vals) return fail(key, NULL, msg, len, "'values' is missing: the numeric columns to summarize%s%s", "", "");
    n = split(vals, buf, sizeof buf, items, AGG_MAX_VALUES);
    if (n < 0) {
        *key = "values";
        return snprintf(msg, len, "values: at most %d columns", AGG_MAX_VALUES), HB_ECONFIG;
    }
    if (n == 0) return fail(key, "values", msg, len, "values: no column given%s%s", "", "");
    for (int i = 0; i < n; i++) {
        if (!valid_name(items[i])) return fail(key, "values", msg, len, "values: '%s' is not a column name%s", items[i], NAME_HINT);
        for (int j = 0; j < i; j++)
            if (strcmp(sp->val[j], items[i]) == 0)
                return fail(key, "values", msg, len, "values: '%s' is listed twice%s", items[i], "");
        for (int c = 0; calendar_names[c]; c++)
            if (strcmp(items[i], calendar_names[c]) == 0)
                return fail(key, "values", msg, len, "values: '%s' is a calendar key, not a column%s", items[i], "");
        snprintf(sp->val[i], AGG_NAME, "%s", items[i]);
        sp->lo[i] = -INFINITY, sp->hi[i] = INFINITY; /* finite values are valid */
    }
    sp->nvals = n;

    n = split(hb_opt_str(o, "valid"), buf, sizeof buf, items, 64);
    int ranged[AGG_MAX_VALUES] = {0}; /* a second range of one value replaced the first without a word */
    for (int i = 0; i < n; i++) {
        char *c1 = strchr(items[i], ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || !c2 || strchr(c2 + 1, ':'))
            return fail(key, "valid", msg, len, "valid: '%s' is not VALUE:LOW:HIGH (e.g. consumption:0:1e6)%s", items[i], "");
        *c1 = '\0', *c2 = '\0';
        int v = -1;
        for (int j = 0; j < sp->nvals; j++)
            if (strcmp(sp->val[j], items[i]) == 0) v = j;
        if (v < 0) return fail(key, "valid", msg, len, "valid: '%s' is not one of the values%s", items[i], "");
        if (ranged[v]++) return fail(key, "valid", msg, len, "valid: '%s' has two ranges%s", items[i], "");
        double lo, hi;
        if (bound(c1 + 1, -INFINITY, &lo) || bound(c2 + 1, INFINITY, &hi))
            return fail(key, "valid", msg, len, "valid: the range of '%s' is not two numbers LOW:HIGH%s", items[i], "");
        if (lo > hi) return fail(key, "valid", msg, len, "valid: the range of '%s' is empty (LOW > HIGH)%s", items[i], "");
        sp->lo[v] = lo, sp->hi[v] = hi;
    }

    n = split(hb_opt_str(o, "stats"), buf, sizeof buf, items, 64);
    if (n > AGG_MAX_STATS) {
        *key = "stats";
        return snprintf(msg, len, "stats: at most %d statistics", AGG_MAX_STATS), HB_ECONFIG;
    }
    if (n <= 0) return fail(key, "stats", msg, len, "stats: no statistic given%s%s", "", "");
    for (int i = 0; i < n; i++) {
        HB_CALL(parse_stat(sp, items[i], key, msg, len));
        HB_CALL(stat_unique(sp, i, items, key, msg, len));
    }
    /* a key's coordinates and a statistic's dataset share /aggregate */
    for (int k = 0; k < sp->nkeys; k++)
        for (int v = 0; v < sp->nvals; v++) {
            size_t lv = strlen(sp->val[v]);
            for (int i = 0; i < sp->nstats; i++)
                if (strncmp(sp->key[k], sp->val[v], lv) == 0 && sp->key[k][lv] == '_' &&
                    strcmp(sp->key[k] + lv + 1, sp->stname[i]) == 0) {
                    *key = "by";
                    return snprintf(msg, len,
                                    "by: the key '%s' has the name of the dataset of value %s and stat %s; name the key "
                                    "otherwise with columns (by = KEY, columns = KEY:%s)",
                                    sp->key[k], sp->val[v], sp->stname[i], sp->key[k]),
                           HB_ECONFIG;
                }
        }

    const char *t = hb_opt_str(o, "time");
    if (t) {
        if (!valid_name(t)) return fail(key, "time", msg, len, "time: '%s' is not a column name%s", t, NAME_HINT);
        snprintf(sp->time, AGG_NAME, "%s", t);
        sp->has_time = 1;
    }
    for (int i = 0; i < sp->nkeys; i++)
        if (sp->kkind[i] != KEY_COLUMN && !sp->has_time)
            return fail(key, "by", msg, len,
                        "by: the calendar key '%s' needs the time column: add time = COLUMN (seconds since 1970, "
                        "see time_unit)%s",
                        sp->key[i], "");
    for (int i = 0; i < sp->nstats; i++)
        if ((sp->st[i] == ST_FIRST || sp->st[i] == ST_LAST) && !sp->has_time)
            return fail(key, "stats", msg, len, "stats: '%s' is by time and needs the time column: add time = COLUMN%s",
                        sp->stname[i], "");
    sp->needs_time = sp->has_time;
    sp->unit_name = hb_opt_str(o, "time_unit") ? hb_opt_str(o, "time_unit") : "s"; /* setup: what the column states */
    sp->unit = hb_time_unit_per_s(sp->unit_name);
    sp->layout = strcmp(hb_opt_str(o, "layout"), "table") == 0 ? LAYOUT_TABLE : LAYOUT_DENSE;
    sp->max_memory = isnan(hb_opt_num(o, "max_memory")) ? 0 : hb_opt_num(o, "max_memory"); /* 0: the job's */
    return 0;
}
