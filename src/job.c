/* Job file parsing (inih) and validation. */
#include "job.h"

#include "core/commit.h"
#include "core/hb.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const hb_option job_options[] = {
    {"name", HB_OPT_STRING, NULL, 1, 0, NULL, "job name; default the job file name without extension"},
    {"run_dir", HB_OPT_STRING, NULL, 1, 0, NULL, "checkpoints, status.json and lock; default <name>.run"},
    {"checkpoint_interval", HB_OPT_DURATION, "60s", 0, 1e9, NULL, "seconds between checkpoints; 0 disables"},
    {"threads", HB_OPT_INT, NULL, 1, 1024, NULL, "OpenMP threads per rank; default OMP_NUM_THREADS, else 1"},
    {"chunk_rows", HB_OPT_SIZE, NULL, 1, 1e8, NULL, "rows per work chunk; default chosen by the kernel"},
    {"max_memory", HB_OPT_SIZE, NULL, 1e6, 1e15, NULL,
     "memory a rank's state and output may take; default half the machine's memory / ranks on the host"},
    {"scratch_dir", HB_OPT_STRING, NULL, 1, 0, NULL,
     "folder for sorted runs spilled beyond max_memory (a per-job subfolder is made in it); default $SLURM_TMPDIR, "
     "else $TMPDIR, else <run_dir>/scratch"},
    {"max_invalid_fraction", HB_OPT_FLOAT, "0.5", 0, 1, NULL,
     "largest share of invalid rows (or values of a column) a step accepts; 1 accepts any"},
    {"stall_timeout", HB_OPT_DURATION, "60s", 0, 1e9, NULL,
     "longest wait for every rank at a round's agreement; a rank that does not arrive (host down or cut off) "
     "fails the job with exit 74; 0 waits forever"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

static const hb_option step_base[] = {
    {"kernel", HB_OPT_STRING, NULL, 1, 0, NULL, "kernel name (h5batch kernels)"},
    {"input", HB_OPT_STRING, NULL, 1, 0, NULL, "input HDF5 file"},
    {"output", HB_OPT_STRING, NULL, 1, 0, NULL, "output HDF5 file"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

#define MAX_SECTION 49 /* inih's own limit on a section name */

typedef struct parse {
    hb_job *job;
    const char *text, *pos;
    int line, section_line, rc;
    int job_line; /* the line of [job], 0 before it */
    char section[256];
    char **longv; /* values of lines longer than inih's buffer (long_line) */
    int nlong;
} parse;

/* Records a job-file error at line (0: the whole file) and returns 78. */
static int jerr(parse *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int jerr(parse *p, int line, const char *fmt, ...)
{
    char where[600], what[1024];
    if (line > 0) snprintf(where, sizeof where, "%s:%d", p->job->path, line);
    else snprintf(where, sizeof where, "%s", p->job->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    p->rc = hb_err_set(HB_ECONFIG, where, "%s", what);
    return p->rc;
}

static hb_step *find_step(hb_job *job, const char *name)
{
    for (int i = 0; i < job->nsteps; i++)
        if (strcmp(job->steps[i].name, name) == 0) return &job->steps[i];
    return NULL;
}

static int valid_step_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
    return 1;
}

static hb_step *new_step(parse *p, const char *name, int line)
{
    hb_job *job = p->job;
    if (job->nsteps == job->scap) {
        int c = job->scap ? job->scap * 2 : 4;
        hb_step *q = hb_realloc(job->steps, (size_t)c * sizeof *q);
        if (!q) return NULL;
        job->steps = q;
        job->scap = c;
    }
    hb_step *s = &job->steps[job->nsteps++];
    memset(s, 0, sizeof *s);
    s->name = hb_strdup(name);
    s->line = line;
    return s;
}

/* Checks a section header as the reader meets it, so that empty sections count too. */
static void open_section(parse *p)
{
    const char *sec = p->section;
    if (strcmp(sec, "job") == 0) {
        if (p->job_line) jerr(p, p->line, "duplicate section [job] (first at line %d)", p->job_line);
        p->job_line = p->line;
        return;
    }
    if (strlen(sec) > MAX_SECTION) { /* inih would cut the name short */
        jerr(p, p->line, "section name [%s] is too long (at most %d characters)", sec, MAX_SECTION);
        return;
    }
    if (strncmp(sec, "step ", 5) != 0 || !valid_step_name(sec + 5)) {
        jerr(p, p->line, "unknown section [%s]; sections are [job] and [step NAME]", sec);
        return;
    }
    hb_step *s = find_step(p->job, sec + 5);
    if (s) {
        jerr(p, p->line, "duplicate section [%s] (first at line %d)", sec, s->line);
    } else if (!new_step(p, sec + 5, p->line)) {
        p->rc = HB_EINTERNAL;
    }
}

/* A line longer than inih's line buffer (a long list): its value is kept aside and inih
 * is handed "key = \001N", which handler() swaps back, so that no value is ever cut
 * short by a fixed buffer. Comments and inline comments are dropped as inih would. Writes
 * the line into str and returns its length (0 after an error). */
static size_t long_line(parse *p, const char *s, size_t len, char *str, int num)
{
    if (*s == ';' || *s == '#') return 0;
    const char *eq = NULL;
    for (size_t i = 0; i < len && !eq; i++)
        if (s[i] == '=' || s[i] == ':') eq = s + i;
    size_t klen = eq ? (size_t)(eq - s) : 0;
    if (!eq || *s == '[' || klen + 24 > (size_t)num) {
        jerr(p, p->line, "line is too long (at most %d characters before the '=')", num - 26);
        return 0;
    }
    const char *v = eq + 1, *vend = s + len;
    for (const char *c = v + 1; c < vend; c++)
        if (*c == ';' && isspace((unsigned char)c[-1])) {
            vend = c;
            break;
        }
    while (v < vend && isspace((unsigned char)*v)) v++;
    while (vend > v && isspace((unsigned char)vend[-1])) vend--;
    char **q = realloc(p->longv, (size_t)(p->nlong + 1) * sizeof *q);
    char *val = q ? strndup(v, (size_t)(vend - v)) : NULL;
    if (q) p->longv = q;
    if (!val) {
        p->rc = HB_EINTERNAL;
        return 0;
    }
    p->longv[p->nlong] = val;
    int n = snprintf(str, (size_t)num - 1, "%.*s= \001%d", (int)klen, s, p->nlong++);
    return n > 0 && n < num - 1 ? (size_t)n : 0;
}

/* inih reader over the in-memory text: counts lines (for messages), strips leading
 * blanks, so that an indented line is never taken as a continuation of the last value,
 * and cuts an inline '#' comment (a '#' after a blank), as inih cuts one of ';': else
 * `output = out.h5  # the result` named a file "out.h5  # the result". */
static char *reader(char *str, int num, void *stream)
{
    parse *p = stream;
    if (*p->pos == '\0') return NULL;
    const char *end = strchr(p->pos, '\n');
    size_t len = end ? (size_t)(end - p->pos) : strlen(p->pos);
    p->line++;
    const char *s = p->pos;
    while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
    for (size_t i = 1; i < len; i++)
        if (s[i] == '#' && (s[i - 1] == ' ' || s[i - 1] == '\t')) {
            len = i;
            break;
        }
    if (len + 2 > (size_t)num) len = long_line(p, s, len, str, num);
    else memcpy(str, s, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    if (*s == '[' && p->rc == 0) {
        p->section_line = p->line;
        const char *close = memchr(s, ']', len);
        snprintf(p->section, sizeof p->section, "%.*s", close ? (int)(close - s - 1) : 0, s + 1);
        if (close) open_section(p);
    }
    p->pos = end ? end + 1 : p->pos + strlen(p->pos);
    return str;
}

/* An error of expand: at the line read, or (p->line < 0) in a --set value. */
static void expand_err(parse *p, const char *fmt, const char *a, const char *b)
{
    if (p->line >= 0) jerr(p, p->line, fmt, a, b);
    else p->rc = hb_err_set(HB_ECONFIG, "--set", fmt, a, b);
}

/* Expands ${NAME} from the environment; undefined names are errors. */
static char *expand(parse *p, const char *v)
{
    size_t cap = strlen(v) + 1, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (const char *s = v; *s;) {
        const char *add = s;
        size_t len = 1;
        char name[256];
        if (s[0] == '$' && s[1] == '{') {
            const char *close = strchr(s, '}');
            if (!close || close - s - 2 <= 0 || close - s - 2 >= (long)sizeof name) {
                expand_err(p, "malformed ${...} in '%s'%s", v, "");
                free(out);
                return NULL;
            }
            snprintf(name, sizeof name, "%.*s", (int)(close - s - 2), s + 2);
            add = getenv(name);
            if (!add) {
                expand_err(p, "environment variable %s is not set (used as ${%s})", name, name);
                free(out);
                return NULL;
            }
            len = strlen(add);
            s = close + 1;
        } else {
            s++;
        }
        if (n + len + 1 > cap) {
            cap = (n + len + 1) * 2;
            char *q = realloc(out, cap);
            if (!q) return free(out), NULL;
            out = q;
        }
        memcpy(out + n, add, len);
        n += len;
    }
    out[n] = '\0';
    return out;
}

static int add_kv(hb_kv **kv, int *n, int *cap, const char *key, char *value, int line)
{
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 8;
        hb_kv *q = hb_realloc(*kv, (size_t)c * sizeof *q);
        if (!q) return HB_EINTERNAL;
        *kv = q;
        *cap = c;
    }
    (*kv)[*n].key = hb_strdup(key);
    (*kv)[*n].value = value;
    (*kv)[*n].line = line;
    if (!(*kv)[*n].key) return HB_EINTERNAL;
    (*n)++;
    return 0;
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
    parse *p = user;
    if (p->rc) return 0;
    hb_job *job = p->job;
    hb_kv **kv;
    int *n, *cap;
    if (strcmp(section, "job") == 0) {
        kv = &job->kv, n = &job->nkv, cap = &job->cap;
    } else if (*section == '\0') {
        return jerr(p, p->line, "'%s' is outside any section; put it under [job] or [step NAME]", key), 0;
    } else {
        hb_step *s = find_step(job, section + 5); /* open_section made sure it exists */
        if (!s) return p->rc = HB_EINTERNAL, 0;
        kv = &s->kv, n = &s->nkv, cap = &s->cap;
    }
    for (int i = 0; i < *n; i++)
        if (strcmp((*kv)[i].key, key) == 0)
            return jerr(p, p->line, "duplicate key '%s' (first at line %d)", key, (*kv)[i].line), 0;
    if (value[0] == '\001') { /* a long line's value, kept aside by long_line */
        int k = atoi(value + 1);
        if (k >= 0 && k < p->nlong) value = p->longv[k];
    }
    char *v = expand(p, value);
    if (!v) return p->rc ? 0 : (p->rc = HB_EINTERNAL, 0);
    if (add_kv(kv, n, cap, key, v, p->line)) return free(v), p->rc = HB_EINTERNAL, 0;
    return 1;
}

static char *read_text(const char *path, int *rc)
{
    /* O_NONBLOCK and fstat first: a FIFO or a device is refused, never waited on */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) {
        *rc = hb_err_set(HB_ENOINPUT, path, "cannot read job file: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        *rc = hb_err_set(HB_ENOINPUT, path, "cannot read job file: it is %s", hb_file_kind(sb.st_mode));
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        *rc = hb_err_set(HB_ENOINPUT, path, "cannot read job file: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n + 1 == cap) {
            char *q = realloc(buf, cap *= 2);
            if (!q) free(buf);
            buf = q;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        *rc = bad ? hb_err_set(HB_ENOINPUT, path, "cannot read job file") : HB_EINTERNAL;
        return NULL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        *rc = hb_err_set(HB_ECONFIG, path, "job file contains NUL bytes (not a text file)");
        return NULL;
    }
    return buf;
}

/* Names of a table plus extra ones, for suggestions. */
static void collect_names(const hb_option *a, const hb_option *b, const char **names, int max)
{
    int n = 0;
    for (const hb_option *o = a; o && o->name && n < max - 1; o++) names[n++] = o->name;
    for (const hb_option *o = b; o && o->name && n < max - 1; o++) names[n++] = o->name;
    names[n] = NULL;
}

static int check_keys(parse *p, const char *where, hb_kv *kv, int n, const hb_option *t1, const hb_option *t2)
{
    const char *names[128];
    collect_names(t1, t2, names, 128);
    for (int i = 0; i < n; i++) {
        const hb_option *o = hb_opt_find(t1, kv[i].key);
        if (!o) o = hb_opt_find(t2, kv[i].key);
        if (!o) {
            const char *s = hb_suggest(kv[i].key, names);
            return jerr(p, kv[i].line, "unknown key '%s' in %s%s%s%s", kv[i].key, where, s ? " (did you mean '" : "",
                        s ? s : "", s ? "'?)" : "");
        }
        char msg[400];
        if (hb_opt_check(o, kv[i].value, msg, sizeof msg) != 0) return jerr(p, kv[i].line, "%s: %s", where, msg);
    }
    return 0;
}

static const char *kv_get(const hb_kv *kv, int n, const char *key, int *line)
{
    const char *v = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0) v = kv[i].value, *line = kv[i].line;
    return v;
}

static int apply_sets(parse *p, char *const *sets, int nsets)
{
    hb_job *job = p->job;
    for (int i = 0; i < nsets; i++) {
        const char *dot = strchr(sets[i], '.'), *eq = strchr(sets[i], '=');
        if (!dot || !eq || dot > eq || dot == sets[i] || eq == dot + 1)
            return p->rc = hb_err_set(HB_EUSAGE, "--set", "'%s' is not STEP.KEY=VALUE", sets[i]);
        char step[256], key[256];
        if (dot - sets[i] >= (long)sizeof step || eq - dot - 1 >= (long)sizeof key)
            return p->rc = hb_err_set(HB_EUSAGE, "--set", "'%.60s...': the step or key name is too long", sets[i]);
        snprintf(step, sizeof step, "%.*s", (int)(dot - sets[i]), sets[i]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
        p->line = -1; /* expand's errors name --set */
        char *v = expand(p, eq + 1);
        if (!v) return p->rc ? p->rc : (p->rc = HB_EINTERNAL);
        int rc;
        if (strcmp(step, "job") == 0) {
            rc = add_kv(&job->kv, &job->nkv, &job->cap, key, v, 0);
        } else {
            hb_step *s = find_step(job, step);
            if (!s) {
                free(v);
                return p->rc = hb_err_set(HB_ECONFIG, "--set", "no step '%s' in %s (steps are named by [step NAME])",
                                          step, job->path);
            }
            rc = add_kv(&s->kv, &s->nkv, &s->cap, key, v, 0);
        }
        if (rc) return free(v), p->rc = rc;
    }
    return 0;
}

/* The files a step reads besides its input (options of type HB_OPT_FILE that name an
 * existing path) must be regular files: 66 before the kernel opens one, so that a FIFO
 * or a device never blocks the run. */
static int check_files(parse *p, hb_step *s, const char *where)
{
    for (const hb_option *o = s->kernel->options; o && o->name; o++) {
        if (o->type != HB_OPT_FILE) continue;
        const char *v = hb_opt_str(&s->opts, o->name);
        struct stat sb;
        if (!v || stat(v, &sb) != 0 || S_ISREG(sb.st_mode)) continue;
        int line = s->line;
        kv_get(s->kv, s->nkv, o->name, &line);
        char at[600];
        if (line > 0) snprintf(at, sizeof at, "%s:%d", p->job->path, line);
        else snprintf(at, sizeof at, "--set %s.%s", s->name, o->name);
        return p->rc = hb_err_set(HB_ENOINPUT, at, "%s: %s = %s is %s, not a regular file", where, o->name, v,
                                  hb_file_kind(sb.st_mode));
    }
    return 0;
}

static int validate_step(parse *p, hb_step *s)
{
    char where[300];
    snprintf(where, sizeof where, "[step %s]", s->name);
    int line = s->line;
    const char *kname = kv_get(s->kv, s->nkv, "kernel", &line);
    if (!kname) return jerr(p, s->line, "%s has no 'kernel' key", where);
    s->kernel = hb_kernel_find(kname);
    if (!s->kernel) {
        const char *names[64];
        int n = 0;
        for (const hb_kernel *const *k = hb_kernels(); *k && n < 63; k++) names[n++] = (*k)->name;
        names[n] = NULL;
        const char *sug = hb_suggest(kname, names);
        char note[1200];
        return jerr(p, line, "unknown kernel '%s'%s%s%s (h5batch kernels lists them)%s", kname,
                    sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "", hb_plugins_note(note, sizeof note));
    }
    HB_CALL(check_keys(p, where, s->kv, s->nkv, step_base, s->kernel->options));
    s->input = kv_get(s->kv, s->nkv, "input", &line);
    s->output = kv_get(s->kv, s->nkv, "output", &line);
    if (!s->input) return jerr(p, s->line, "%s has no 'input' key", where);
    if (!s->output) return jerr(p, s->line, "%s has no 'output' key", where);
    s->okv = hb_calloc((size_t)s->nkv, sizeof *s->okv);
    if (!s->okv) return p->rc = HB_EINTERNAL;
    for (int i = 0; i < s->nkv; i++)
        if (!hb_opt_find(step_base, s->kv[i].key)) s->okv[s->nokv++] = s->kv[i];
    s->opts.table = s->kernel->options;
    s->opts.kv = s->okv;
    s->opts.n = s->nokv;
    HB_CALL(check_files(p, s, where));
    if (s->kernel->validate) {
        const char *key = NULL;
        char msg[400];
        if (s->kernel->validate(&s->opts, &key, msg, sizeof msg)) {
            int l = s->line;
            if (key) kv_get(s->kv, s->nkv, key, &l);
            return jerr(p, l, "%s: %s", where, msg);
        }
    }
    return 0;
}

/* path with its folder resolved (dup.h5 and ./dup.h5 alike), or as it is where the folder
 * does not resolve. */
static void canon_path(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX], real[PATH_MAX];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (!realpath(dir, real)) {
        snprintf(buf, len, "%s", path);
        return;
    }
    snprintf(buf, len, "%s/%s", real, slash ? slash + 1 : path);
}

/* Whether two output paths name one file: the same path once their folders are resolved,
 * or (where both exist) the same inode. */
static int same_output(const char *a, const char *b)
{
    char ca[2 * PATH_MAX], cb[2 * PATH_MAX];
    canon_path(a, ca, sizeof ca), canon_path(b, cb, sizeof cb);
    struct stat sa, sb;
    return strcmp(ca, cb) == 0 ||
           (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

/* No two steps write one file: the second would fail only after the first has run (73),
 * or be skipped as complete. No step writes the input of an earlier one: with --force it
 * replaced that input (the user's own data) after the earlier step had read it. */
static int check_outputs(parse *p)
{
    const hb_job *job = p->job;
    for (int j = 1; j < job->nsteps; j++)
        for (int i = 0; i < j; i++) {
            const hb_step *a = &job->steps[i], *b = &job->steps[j];
            int line = b->line;
            kv_get(b->kv, b->nkv, "output", &line);
            if (same_output(a->output, b->output))
                return jerr(p, line,
                            "[step %s]: output = %s is also the output of [step %s]; each step needs a file of its own",
                            b->name, b->output, a->name);
            if (a->input && same_output(a->input, b->output))
                return jerr(p, line, "[step %s]: output = %s is the input of [step %s], which it would replace; choose "
                                     "another output", b->name, b->output, a->name);
        }
    return 0;
}

static int validate(parse *p)
{
    hb_job *job = p->job;
    HB_CALL(check_keys(p, "[job]", job->kv, job->nkv, job_options, NULL));
    if (job->nsteps == 0) return jerr(p, 0, "no [step NAME] section: a job needs at least one step");
    for (int i = 0; i < job->nsteps; i++) HB_CALL(validate_step(p, &job->steps[i]));
    HB_CALL(check_outputs(p));
    hb_optset o = {job_options, job->kv, job->nkv};
    int line;
    const char *name = kv_get(job->kv, job->nkv, "name", &line);
    if (name) {
        /* the default run directory is <name>.run beside the working directory, and the
         * name labels status.json, provenance and Slurm jobs: one word, not a path */
        int bad = !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
        for (const char *c = name; *c && !bad; c++) bad = *c == '/' || (unsigned char)*c < 0x20 || *c == 0x7f;
        if (bad)
            return jerr(p, line, "name = %s: a job name is one word of printable characters, not a path (no '/'); "
                                 "run_dir chooses where the run directory is", name);
        job->name = hb_strdup(name);
    } else {
        const char *base = strrchr(job->path, '/');
        base = base ? base + 1 : job->path;
        const char *ext = strrchr(base, '.');
        job->name = malloc(strlen(base) + 1);
        if (job->name) snprintf(job->name, strlen(base) + 1, "%.*s", ext && ext != base ? (int)(ext - base) : (int)strlen(base), base);
    }
    const char *rd = kv_get(job->kv, job->nkv, "run_dir", &line);
    if (rd) {
        job->run_dir = hb_strdup(rd);
    } else if (job->name) {
        size_t l = strlen(job->name) + 5;
        job->run_dir = malloc(l);
        if (job->run_dir) snprintf(job->run_dir, l, "%s.run", job->name);
    }
    if (!job->name || !job->run_dir) return p->rc = HB_EINTERNAL;
    job->checkpoint_interval = hb_opt_num(&o, "checkpoint_interval");
    const char *th = kv_get(job->kv, job->nkv, "threads", &line), *env = getenv("OMP_NUM_THREADS");
    job->threads = th ? (int)hb_opt_num(&o, "threads") : (env && atoi(env) > 0 ? atoi(env) : 1);
    job->chunk_rows = kv_get(job->kv, job->nkv, "chunk_rows", &line) ? (int64_t)hb_opt_num(&o, "chunk_rows") : 0;
    job->max_memory = kv_get(job->kv, job->nkv, "max_memory", &line) ? hb_opt_num(&o, "max_memory") : 0;
    job->max_invalid_fraction = hb_opt_num(&o, "max_invalid_fraction");
    job->scratch_dir = kv_get(job->kv, job->nkv, "scratch_dir", &line); /* points into kv */
    job->stall_timeout = hb_opt_num(&o, "stall_timeout");
    return 0;
}

int hb_job_load(const char *path, char *const *sets, int nsets, hb_job *job)
{
    memset(job, 0, sizeof *job);
    job->path = hb_strdup(path);
    if (!job->path) return HB_EINTERNAL;
    int rc = 0;
    char *text = read_text(path, &rc);
    if (!text) return rc;
    size_t tl = strlen(text) + 1;
    for (int i = 0; i < nsets; i++) tl += strlen(sets[i]) + 16;
    job->text = malloc(tl);
    if (!job->text) return free(text), HB_EINTERNAL;
    size_t n = (size_t)snprintf(job->text, tl, "%s", text);
    for (int i = 0; i < nsets; i++) n += (size_t)snprintf(job->text + n, tl - n, "\n; --set %s", sets[i]);

    parse p = {.job = job, .text = text, .pos = text};
    int bad_line = ini_parse_stream(reader, &p, handler, &p);
    free(text);
    for (int i = 0; i < p.nlong; i++) free(p.longv[i]);
    free(p.longv);
    if (p.rc) return p.rc;
    if (bad_line > 0) {
        p.line = 0;
        return jerr(&p, bad_line, "syntax error: expected '[section]' or 'key = value'");
    }
    if (bad_line < 0) return hb_err_set(HB_EINTERNAL, path, "job file parser failed");
    if (apply_sets(&p, sets, nsets)) return p.rc;
    return validate(&p) ? p.rc : 0;
}

static void free_kv(hb_kv *kv, int n)
{
    for (int i = 0; i < n; i++) free(kv[i].key), free(kv[i].value);
    free(kv);
}

void hb_job_free(hb_job *job)
{
    for (int i = 0; i < job->nsteps; i++) {
        free(job->steps[i].name);
        free_kv(job->steps[i].kv, job->steps[i].nkv);
        free(job->steps[i].okv);
    }
    free(job->steps);
    free_kv(job->kv, job->nkv);
    free(job->path), free(job->text), free(job->name), free(job->run_dir);
    memset(job, 0, sizeof *job);
}
