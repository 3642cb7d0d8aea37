/* Option tables: validation, typed access, suggestions. */
#include "core/opts.h"

#include "core/hb.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const hb_option *hb_opt_find(const hb_option *table, const char *name)
{
    for (const hb_option *o = table; o && o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

static const char *skip_space(const char *s)
{
    while (isspace((unsigned char)*s)) s++;
    return s;
}

/* Parses a real with an optional suffix from units (each a char and its factor); 64 when
 * s is not one. */
static int parse_scaled(const char *s, double *out, const char *units, const double *factors)
{
    char *end;
    s = skip_space(s);
    if (*s == '\0') return HB_EUSAGE;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE) return HB_EUSAGE;
    end = (char *)skip_space(end);
    if (*end) {
        const char *u = units ? strchr(units, *end) : NULL;
        if (!u || *skip_space(end + 1) != '\0') return HB_EUSAGE;
        v *= factors[u - units];
    }
    if (!isfinite(v)) return HB_EUSAGE;
    *out = v;
    return 0;
}

int hb_parse_number(const char *s, double *out) { return parse_scaled(s, out, NULL, NULL); }

int hb_parse_size(const char *s, double *out)
{
    static const double f[] = {1e3, 1e6, 1e9, 1e12};
    return parse_scaled(s, out, "kMGT", f);
}

int hb_parse_duration(const char *s, double *out)
{
    static const double f[] = {1, 60, 3600};
    return parse_scaled(s, out, "smh", f);
}

int hb_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
    }
    return HB_EUSAGE;
}

static int in_bounds(const hb_option *o, double v) { return o->min > o->max || (v >= o->min && v <= o->max); }

static int bounds_msg(const hb_option *o, double v, char *msg, size_t len)
{
    snprintf(msg, len, "%s = %g is out of range [%g, %g]", o->name, v, o->min, o->max);
    return HB_ECONFIG;
}

static int choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *c = choices; c && *c;) {
        const char *bar = strchr(c, '|');
        size_t l = bar ? (size_t)(bar - c) : strlen(c);
        if (l == n && strncmp(c, v, n) == 0) return 1;
        c = bar ? bar + 1 : c + l;
    }
    return 0;
}

int hb_opt_check(const hb_option *o, const char *value, char *msg, size_t len)
{
    double v;
    int b;
    switch (o->type) {
    case HB_OPT_STRING:
    case HB_OPT_FILE:
        if (*value == '\0') return snprintf(msg, len, "%s is empty", o->name), HB_ECONFIG;
        return 0;
    case HB_OPT_CHOICE:
        if (choice_ok(o->choices, value)) return 0;
        snprintf(msg, len, "%s = '%s' is not one of %s", o->name, value, o->choices);
        return HB_ECONFIG;
    case HB_OPT_BOOL:
        if (hb_parse_bool(value, &b) == 0) return 0;
        snprintf(msg, len, "%s = '%s' is not true or false", o->name, value);
        return HB_ECONFIG;
    case HB_OPT_INT:
    case HB_OPT_FLOAT:
    case HB_OPT_SIZE:
    case HB_OPT_DURATION: {
        int bad = o->type == HB_OPT_SIZE       ? hb_parse_size(value, &v)
                  : o->type == HB_OPT_DURATION ? hb_parse_duration(value, &v)
                                               : hb_parse_number(value, &v);
        const char *what = o->type == HB_OPT_SIZE       ? "a size (like 1M)"
                           : o->type == HB_OPT_DURATION ? "a duration (like 60s or 5m)"
                           : o->type == HB_OPT_INT      ? "an integer"
                                                        : "a number";
        /* finite, and an integer within int64, so that a (int64_t) of it is defined */
        if (bad || !isfinite(v) ||
            ((o->type == HB_OPT_INT || o->type == HB_OPT_SIZE) && (v != floor(v) || !(fabs(v) < 0x1p63)))) {
            snprintf(msg, len, "%s = '%s' is not %s", o->name, value, what);
            return HB_ECONFIG;
        }
        return in_bounds(o, v) ? 0 : bounds_msg(o, v, msg, len);
    }
    case HB_OPT_LIST: {
        int n = 0, rc = 0;
        char *buf = hb_strdup(value); /* any length: never cut short */
        if (!buf) return snprintf(msg, len, "%s: out of memory", o->name), HB_EINTERNAL;
        /* strtok skips an empty item: 50,,95 was 50, 95, a value left out without a word */
        for (const char *c = value; rc == 0 && *c; c++)
            if (*c == ',' && (*skip_space(c + 1) == ',' || !*skip_space(c + 1) || skip_space(value) == c)) {
                snprintf(msg, len, "%s: an empty item in '%.60s' (a doubled, first or last comma)", o->name, value);
                rc = HB_ECONFIG;
            }
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
            if (hb_parse_number(t, &v) != 0) {
                snprintf(msg, len, "%s: '%.40s' is not a number", o->name, skip_space(t));
                rc = HB_ECONFIG;
            } else if (!in_bounds(o, v)) {
                rc = bounds_msg(o, v, msg, len);
            } else if (++n > HB_OPT_LIST_MAX) {
                snprintf(msg, len, "%s has more than %d values", o->name, HB_OPT_LIST_MAX);
                rc = HB_ECONFIG;
            }
        }
        free(buf);
        if (rc == 0 && n == 0) return snprintf(msg, len, "%s is an empty list", o->name), HB_ECONFIG;
        return rc;
    }
    }
    return HB_ECONFIG;
}

static const char *raw(const hb_optset *o, const char *name)
{
    /* the last occurrence wins, so that --set overrides the file */
    const char *v = NULL;
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->kv[i].key, name) == 0) v = o->kv[i].value;
    if (v) return v;
    const hb_option *opt = hb_opt_find(o->table, name);
    return opt ? opt->def : NULL;
}

const char *hb_opt_str(const hb_optset *o, const char *name) { return raw(o, name); }

double hb_opt_num(const hb_optset *o, const char *name)
{
    const char *s = raw(o, name);
    const hb_option *opt = hb_opt_find(o->table, name);
    double v = NAN;
    if (!s || !opt) return NAN;
    if (opt->type == HB_OPT_SIZE) hb_parse_size(s, &v);
    else if (opt->type == HB_OPT_DURATION) hb_parse_duration(s, &v);
    else hb_parse_number(s, &v);
    return v;
}

int hb_opt_bool(const hb_optset *o, const char *name)
{
    const char *s = raw(o, name);
    int b = 0;
    if (s) hb_parse_bool(s, &b);
    return b;
}

int hb_opt_list(const hb_optset *o, const char *name, double *out)
{
    const char *s = raw(o, name);
    if (!s) return 0;
    char *buf = hb_strdup(s);
    int n = 0;
    for (char *save = NULL, *t = buf ? strtok_r(buf, ",", &save) : NULL; t && n < HB_OPT_LIST_MAX;
         t = strtok_r(NULL, ",", &save))
        if (hb_parse_number(t, &out[n]) == 0) n++;
    free(buf);
    return n;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 64;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

const char *hb_suggest(const char *word, const char *const *names)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (const char *const *n = names; *n; n++) {
        size_t d = edit_distance(word, *n);
        if (d < best_d) best_d = d, best = *n;
    }
    size_t limit = strlen(word) <= 4 ? 1 : strlen(word) / 3 + 1;
    return best && best_d <= limit ? best : NULL;
}

/* Prints table for people, each name after prefix ("" in job files, "--" on the
 * command line, where booleans are flags). */
static void print_table(const hb_option *table, const char *indent, const char *prefix)
{
    static const char *type_names[] = {"text", "choice", "integer", "number", "list", "bool", "size", "duration", "text or file"};
    for (const hb_option *o = table; o && o->name; o++) {
        char type[160], name[96];
        if (o->type == HB_OPT_CHOICE) snprintf(type, sizeof type, "%s", o->choices);
        else if (*prefix && o->type == HB_OPT_BOOL) snprintf(type, sizeof type, "flag (or --%s=true|false)", o->name);
        else if (o->min <= o->max) snprintf(type, sizeof type, "%s in [%.15g, %.15g]", type_names[o->type], o->min, o->max);
        else snprintf(type, sizeof type, "%s", type_names[o->type]);
        snprintf(name, sizeof name, "%s%s", prefix, o->name);
        printf("%s%-20s %s (default: %s)\n%s%-20s %s\n", indent, name, o->help, o->def ? o->def : "none", indent, "",
               type);
    }
}

void hb_opt_print(const hb_option *table, const char *indent) { print_table(table, indent, ""); }

void hb_opt_print_cli(const hb_option *table, const char *indent) { print_table(table, indent, "--"); }
