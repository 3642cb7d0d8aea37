/* The command line read through option tables: one parser for every generator and
 * command, so that `--name VALUE`, `--name=VALUE`, flags, bounds, messages and
 * suggestions are the same everywhere. */
#include "core/opts.h"

#include "core/hb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The option of tables called name, or NULL. */
static const hb_option *find_any(const hb_option *const *tables, const char *name)
{
    for (const hb_option *const *t = tables; t && *t; t++) {
        const hb_option *o = hb_opt_find(*t, name);
        if (o) return o;
    }
    return NULL;
}

/* The long name aliases gives the short form arg, or NULL. */
static const char *alias_of(const char *const *aliases, const char *arg)
{
    for (const char *const *a = aliases; a && a[0] && a[1]; a += 2)
        if (strcmp(a[0], arg) == 0) return a[1];
    return NULL;
}

/* What a value of o must be, for messages: "an integer in [1, 1e+12]". */
static void describe(const hb_option *o, char *buf, size_t len)
{
    const char *what = "a value";
    switch (o->type) {
    case HB_OPT_INT:
    case HB_OPT_SIZE: what = "an integer"; break;
    case HB_OPT_FLOAT: what = "a number"; break;
    case HB_OPT_DURATION: what = "a duration (like 60s or 5m)"; break;
    case HB_OPT_LIST: what = "a comma-separated list of numbers"; break;
    case HB_OPT_BOOL: what = "true or false"; break;
    case HB_OPT_CHOICE: snprintf(buf, len, "one of %s", o->choices); return;
    case HB_OPT_STRING:
    case HB_OPT_FILE: break;
    }
    int bounded = o->type != HB_OPT_STRING && o->type != HB_OPT_FILE && o->type != HB_OPT_BOOL && o->min <= o->max;
    if (bounded) snprintf(buf, len, "%s in [%.15g, %.15g]", what, o->min, o->max);
    else snprintf(buf, len, "%s", what);
}

/* 64 for an unknown option arg, with the closest name of tables when one is close. */
static int unknown(const char *where, const hb_option *const *tables, const char *arg)
{
    const char *names[256];
    int n = 0;
    for (const hb_option *const *t = tables; t && *t; t++)
        for (const hb_option *o = *t; o->name && n < 255; o++) names[n++] = o->name;
    names[n] = NULL;
    char word[128];
    snprintf(word, sizeof word, "%s", arg + strspn(arg, "-"));
    word[strcspn(word, "=")] = '\0';
    const char *best = hb_suggest(word, names);
    if (best) return hb_err_set(HB_EUSAGE, where, "unknown option '%s' (did you mean '--%s'?)", arg, best);
    return hb_err_set(HB_EUSAGE, where, "unknown option '%s' (h5batch %s --help lists the options)", arg, where);
}

/* Appends key = value (copies) to a. */
static int add_kv(hb_args *a, const char *key, const char *value)
{
    hb_kv *kv = hb_realloc(a->kv, (size_t)(a->n + 1) * sizeof *kv);
    if (!kv) return HB_EINTERNAL;
    a->kv = kv;
    char *k = hb_strdup(key), *v = hb_strdup(value);
    if (!k || !v) return free(k), free(v), HB_EINTERNAL;
    a->kv[a->n++] = (hb_kv){k, v, 0};
    return 0;
}

int hb_args_parse(const char *where, const hb_option *const *tables, const char *const *aliases, int argc,
                  char **argv, hb_args *a)
{
    memset(a, 0, sizeof *a);
    a->pos = hb_calloc((size_t)argc + 1, sizeof *a->pos);
    if (!a->pos) return HB_EINTERNAL;
    int options = 1;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (options && strcmp(arg, "--") == 0) {
            options = 0;
            continue;
        }
        const char *name = NULL, *value = NULL;
        size_t nlen = 0;
        if (options && strncmp(arg, "--", 2) == 0) {
            name = arg + 2;
            const char *eq = strchr(name, '=');
            nlen = eq ? (size_t)(eq - name) : strlen(name);
            if (eq) value = eq + 1;
        } else if (options && (name = alias_of(aliases, arg)) != NULL) {
            nlen = strlen(name);
        } else {
            a->pos[a->npos++] = argv[i];
            continue;
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)nlen, name);
        const hb_option *o = nlen < sizeof key ? find_any(tables, key) : NULL;
        if (!o) return unknown(where, tables, arg);
        if (!value && o->type == HB_OPT_BOOL) value = "true";
        if (!value) {
            if (i + 1 >= argc) return hb_err_set(HB_EUSAGE, where, "--%s needs a value", o->name);
            value = argv[++i];
        }
        char msg[256];
        if (hb_opt_check(o, value, msg, sizeof msg) != 0) {
            char want[192];
            describe(o, want, sizeof want);
            return hb_err_set(HB_EUSAGE, where, "--%s needs %s, got '%s'", o->name, want, value);
        }
        HB_CALL(add_kv(a, o->name, value));
    }
    return 0;
}

void hb_args_free(hb_args *a)
{
    for (int i = 0; a->kv && i < a->n; i++) free(a->kv[i].key), free(a->kv[i].value);
    free(a->kv);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

hb_optset hb_args_opts(const hb_args *a, const hb_option *table) { return (hb_optset){table, a->kv, a->n}; }
