/* `h5batch import`: checking and converting the records (pass 1 and pass 2). */
#include "import/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static int is_missing(const imp *m, const hb_csv_field *f)
{
    if (f->len == 0) return 1;
    for (int i = 0; i < m->nnull && !f->escaped; i++)
        if (f->len == m->null_len[i] && !memcmp(f->p, m->null[i], f->len)) return 1;
    return 0;
}

/* A real in field f (0, or -1): with --decimal ',' the field's comma is the decimal
 * point, and a field that holds a '.' is no number (pandas' decimal=","). */
static int field_float(const imp *m, const hb_csv_field *f, double *d)
{
    if (m->decimal == '.') return hb_csv_float(f->p, f->len, d);
    char buf[512];
    if (f->len >= sizeof buf || memchr(f->p, '.', f->len)) return -1;
    memcpy(buf, f->p, f->len);
    char *c = memchr(buf, ',', f->len);
    if (c) *c = '.';
    return hb_csv_float(buf, f->len, d);
}

/* 0 when field_float would read f (the syntax alone), as hb_csv_float_syntax. */
static int field_float_syntax(const imp *m, const hb_csv_field *f)
{
    if (m->decimal == '.') return hb_csv_float_syntax(f->p, f->len);
    double d;
    return field_float(m, f, &d);
}

static int parse_time(const imp *m, int c, const hb_csv_field *f, hb_csv_time *t)
{
    if (f->escaped) return -1;
    if (m->decl[c].fmt[0]) return hb_csv_strptime(f->p, f->len, m->decl[c].fmt, t);
    return hb_csv_iso(f->p, f->len, t);
}

/* The field's text for a message, shortened. */
static void quote_field(const hb_csv_field *f, char *buf, size_t len)
{
    int n = f->len > 40 ? 40 : (int)f->len;
    snprintf(buf, len, "'%.*s%s'", n, f->p, f->len > 40 ? "..." : "");
}

/* what is wrong with byte i of u, for a message about what. */
static void bad_text_why(const unsigned char *u, size_t i, const char *what, char *why, size_t len)
{
    if (!u[i])
        snprintf(why, len, "%s holds a NUL byte (byte %zu): import reads UTF-8 text, not UTF-16 or binary", what, i + 1);
    else
        snprintf(why, len, "%s is not UTF-8 (byte %zu is 0x%02x): convert the file to UTF-8 (iconv -f LATIN1 -t UTF-8, "
                           "or from its encoding)",
                 what, i + 1, u[i]);
}

int imp_bad_text(const char *p, size_t n, const char *what, char *why, size_t len)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = hb_utf8_first_bad(u, n);
    if (i == n) return 0;
    bad_text_why(u, i, what, why, len);
    return 1;
}

/* 0 when field c is UTF-8 text without a NUL byte, else -1 with why (the field named
 * only then). */
static int check_text(const imp *m, int c, const hb_csv_field *f, char *why, size_t len)
{
    if (hb_utf8_first_bad((const unsigned char *)f->p, f->len) == f->len) return 0;
    char what[300];
    snprintf(what, sizeof what, "field '%.200s' (column %d)", m->cols[c].name, c + 1);
    return -imp_bad_text(f->p, f->len, what, why, len);
}

/* Checks field c as type t and parses it into *v (a missing real is NaN, a missing time
 * HB_CSV_NAT): 0, 1 for a time with an offset (an instant) or a missing time (no local
 * time to convert), or -1 with why. */
static int check_value(imp *m, int c, int t, const hb_csv_field *f, value *v, char *why, size_t len)
{
    char q[64];
    hb_csv_time tm;
    const char *name = m->cols[c].name;
    if (is_missing(m, f)) {
        if (t == HB_CT_TIME) return v->i = HB_CSV_NAT, 1;
        v->d = NAN;
        if (t == HB_CT_INT) {
            snprintf(why, len, "field '%s' (column %d) is empty; an integer column needs a value (a float or "
                     "string one takes missing values)", name, c + 1);
            return -1;
        }
        return 0;
    }
    switch (t) {
    case HB_CT_INT:
        if (!f->escaped && hb_csv_int(f->p, f->len, &v->i) == 0) return 0;
        quote_field(f, q, sizeof q);
        snprintf(why, len, "field '%s' (column %d): %s is not an integer", name, c + 1, q);
        return -1;
    case HB_CT_FLOAT:
        if (!f->escaped && field_float(m, f, &v->d) == 0) return 0;
        quote_field(f, q, sizeof q);
        snprintf(why, len, "field '%s' (column %d): %s is not a number", name, c + 1, q);
        return -1;
    case HB_CT_TIME:
        if (parse_time(m, c, f, &tm) == 0) {
            v->i = tm.secs;
            return tm.has_offset ? 1 : 0;
        }
        quote_field(f, q, sizeof q);
        snprintf(why, len, "field '%s' (column %d): %s is not a time (%s)", name, c + 1, q,
                 m->decl[c].fmt[0] ? m->decl[c].fmt : "ISO 8601, e.g. 2024-03-31 or 2024-03-31T02:30:00+02:00");
        return -1;
    default: return check_text(m, c, f, why, len);
    }
}

/* Why a record as tokenized is malformed (ragged, bad quoting): 0 when it is not. With
 * --null-padding, the fields a short record lacks are made empty (missing values), at
 * the end of its last field. */
static int check_shape(imp *m, hb_csv_bad bad, int nf, char *why, size_t len)
{
    if (bad) return snprintf(why, len, "%s", hb_csv_bad_text(bad)), -1;
    if (nf < m->ncols && m->pad) {
        const hb_csv_field *l = &m->f[nf - 1]; /* nf > 0: a blank line is no record */
        for (int c = nf; c < m->ncols; c++) m->f[c] = (hb_csv_field){l->p + l->len, 0, 0};
        return 0;
    }
    if (nf != m->ncols)
        return snprintf(why, len, "the record has %d field%s, the header %d%s", nf, nf == 1 ? "" : "s", m->ncols,
                        nf < m->ncols ? "; --null-padding reads the missing last fields as empty" : ""),
               -1;
    return 0;
}


/* Row i of p holds its kind's missing value: NaN, the empty string, NaT (with no local
 * time to convert); an int64 column holds none (it turns into reals first). */
static void spec_missing(spec *p, int64_t i)
{
    switch (p->kind) {
    case HB_CT_FLOAT: ((double *)p->v)[i] = NAN; break;
    case HB_CT_STRING: p->s[i] = (hb_csv_field){"", 0, 0}; break;
    case HB_CT_TIME: ((int64_t *)p->v)[i] = HB_CSV_NAT, p->inst[i] = 1; break;
    default: break;
    }
}

/* Room for the values of column c, whose kind (the type of its first value here) is now
 * known, at row: the rows before it held missing values (NaN, empty strings). */
void imp_spec_room(imp *m, spec *p, int kind, int64_t row)
{
    const size_t cap = (size_t)(m->spcap ? m->spcap : 1);
    if (kind == HB_CT_INT && row > 0) kind = HB_CT_FLOAT; /* missing values: not an int64 column */
    p->kind = kind;
    if (kind == HB_CT_STRING) {
        if (!(p->s = malloc(cap * sizeof *p->s))) p->failed = 1;
    } else {
        p->v = malloc(cap * 8);
        if (kind == HB_CT_TIME) p->inst = malloc(cap);
        if (!p->v || (kind == HB_CT_TIME && !p->inst)) p->failed = 1;
    }
    for (int64_t i = 0; !p->failed && i < row; i++) spec_missing(p, i);
}

/* The integers of rows [0, n) as reals (an integer column that turns out to be a real
 * one): exact as read from the text, except -0 (kept as 0), which fails the column. */
void imp_spec_to_float(spec *p, int64_t n)
{
    if (p->negzero) {
        p->failed = 1;
        return;
    }
    char *v = p->v;
    for (int64_t i = 0; i < n; i++) {
        int64_t x;
        memcpy(&x, v + 8 * i, 8);
        double d = (double)x; /* correctly rounded, as the decimal text of x would be */
        memcpy(v + 8 * i, &d, 8);
    }
    p->kind = HB_CT_FLOAT;
}

/* Pass 1 of one record: checks it against the declared types, adds what it holds to the
 * column statistics and, when pass 1 converts, keeps its values as row m->nrows. 0, or -1
 * with why (the record is then not kept). */
static int pass1_record(imp *m, hb_csv_bad bad, int nf, char *why, size_t len)
{
    if (check_shape(m, bad, nf, why, len)) return -1;
    /* no number or time holds a NUL or a byte above 0x7f: the inferred columns' fields
     * that do are checked here, before anything of the record is kept, and only in a
     * record whose bytes are not UTF-8 without NUL (its fields lie in order in the input,
     * between delimiters and quotes, which are no part of a UTF-8 sequence) */
    const hb_csv_field *last = &m->f[m->ncols - 1];
    const size_t span = (size_t)(last->p + last->len - m->f[0].p);
    if (hb_utf8_first_bad((const unsigned char *)m->f[0].p, span) != span)
        for (int c = 0; c < m->ncols; c++)
            if (m->decl[c].type == T_AUTO && check_text(m, c, &m->f[c], why, len)) return -1;
    for (int c = 0; c < m->ncols; c++) {
        int t = m->decl[c].type;
        value v = {0};
        int r = t == T_AUTO ? 0 : check_value(m, c, t, &m->f[c], &v, why, len);
        if (r < 0) return -1;
        m->ival[c] = t == HB_CT_TIME && r == 0 ? v.i : INT64_MIN; /* an instant has no local time to cover */
        m->rv[c] = v;
        m->rr[c] = r;
    }
    const int64_t row = m->nrows;
    spec *const sp = m->sp && row < m->spcap ? m->sp : NULL;
    if (m->sp && !sp)
        for (int c = 0; c < m->ncols; c++) m->sp[c].failed = 1; /* more records than room: cannot be */
    for (int c = 0; c < m->ncols; c++) {
        const hb_csv_field *f = &m->f[c];
        colstat *s = &m->st[c];
        spec *p = sp && !sp[c].failed ? &sp[c] : NULL;
        int t = m->decl[c].type;
        if (is_missing(m, f)) {
            s->has_empty = 1;
            if (!p) continue;
            /* a declared int column never gets here: check_value refused the field */
            if (p->kind == HB_CT_INT && t == T_AUTO) imp_spec_to_float(p, row);
            if (!p->failed) spec_missing(p, row); /* undecided: the room is made with the first value */
            continue;
        }
        s->has_value = 1;
        int64_t l = (int64_t)hb_csv_unescaped_len(f);
        if (l > s->maxlen) s->maxlen = l;
        int64_t local = INT64_MIN;
        if (t == T_AUTO) {
            int64_t iv = 0;
            double dv = 0;
            hb_csv_time tm = {0, 0};
            int gi = 0, gf = 0, gt = 0; /* this value is an integer, a real, a time */
            if (s->maybe_int) {
                if (f->escaped || hb_csv_int(f->p, f->len, &iv)) s->maybe_int = 0;
                else gi = 1;
            }
            if (s->maybe_float && !s->maybe_int) {
                if (!f->escaped && field_float(m, f, &dv) == 0) gf = 1;
                else if (f->escaped || field_float_syntax(m, f)) s->maybe_float = 0;
                else if (p) p->failed = 1; /* a number too long to convert here: pass 2 says so */
            }
            if (s->maybe_time) {
                if (f->escaped || hb_csv_iso(f->p, f->len, &tm)) s->maybe_time = 0;
                else {
                    gt = 1;
                    if (!tm.has_offset) local = tm.secs;
                }
            }
            if (p && p->kind == K_UNDECIDED)
                imp_spec_room(m, p, gi ? HB_CT_INT : gf ? HB_CT_FLOAT : gt ? HB_CT_TIME : HB_CT_STRING, row);
            if (p && !p->failed) {
                switch (p->kind) {
                case HB_CT_INT:
                    if (gi) {
                        ((int64_t *)p->v)[row] = iv;
                        if (iv == 0 && f->p[0] == '-') p->negzero = 1;
                        break;
                    }
                    if (!gf) {
                        p->failed = 1;
                        break;
                    }
                    imp_spec_to_float(p, row);
                    if (!p->failed) ((double *)p->v)[row] = dv;
                    break;
                case HB_CT_FLOAT:
                    if (gi && field_float(m, f, &dv) == 0) gf = 1; /* an integer's text as a real */
                    if (gf) ((double *)p->v)[row] = dv;
                    else p->failed = 1;
                    break;
                case HB_CT_TIME:
                    if (gt) {
                        ((int64_t *)p->v)[row] = tm.secs;
                        p->inst[row] = (uint8_t)tm.has_offset;
                    } else {
                        p->failed = 1;
                    }
                    break;
                default: p->s[row] = *f; break;
                }
            }
        } else {
            if (t == HB_CT_TIME) local = m->ival[c];
            if (p) {
                switch (t) {
                case HB_CT_INT: ((int64_t *)p->v)[row] = m->rv[c].i; break;
                case HB_CT_FLOAT: ((double *)p->v)[row] = m->rv[c].d; break;
                case HB_CT_TIME:
                    ((int64_t *)p->v)[row] = m->rv[c].i;
                    p->inst[row] = (uint8_t)(m->rr[c] == 1);
                    break;
                default: p->s[row] = *f; break;
                }
            }
        }
        if (local != INT64_MIN) {
            if (local < s->tmin) s->tmin = local;
            if (local > s->tmax) s->tmax = local;
        }
    }
    if (m->sp) m->nrows++;
    return 0;
}

/* Pass 2 of one record: converts it into row m->nrows with the agreed types. 0, or -1
 * with why (the record is then not kept). */
static int pass2_record(imp *m, hb_csv_bad bad, int nf, char *why, size_t len)
{
    if (check_shape(m, bad, nf, why, len)) return -1;
    int64_t row = m->nrows;
    for (int c = 0; c < m->ncols; c++) {
        const hb_csv_field *f = &m->f[c];
        const hb_csv_col *col = &m->cols[c];
        value v = {0};
        int r = check_value(m, c, (int)col->type, f, &v, why, len);
        if (r < 0) return -1;
        switch (col->type) {
        case HB_CT_INT: ((int64_t *)m->data[c])[row] = v.i; break;
        case HB_CT_FLOAT: ((double *)m->data[c])[row] = v.d; break;
        case HB_CT_TIME:
            ((int64_t *)m->data[c])[row] = r == 0 && m->use_tz ? hb_csv_local_to_utc(&m->tz, v.i) : v.i;
            break;
        case HB_CT_STRING: {
            char *dst = (char *)m->data[c] + (size_t)row * col->width;
            memset(dst, 0, col->width);
            if (!is_missing(m, f)) hb_csv_unescape(f, dst);
            break;
        }
        }
    }
    m->nrows++;
    return 0;
}

/* Not collective. One pass over the records that start in buf[*pos, hi) of file s
 * (index fi), the first at *line; with once, only the first record (blank lines
 * aside). *pos and *line move on; 0, or -1 with where and why of the failing record. */
static int scan_range(imp *m, const source *s, int fi, int pass, size_t *posp, size_t hi, int64_t *linep, int once,
                      char *where, size_t wlen, char *why, size_t len)
{
    size_t pos = *posp;
    int64_t line = *linep;
    int rc = 0;
    while (pos < hi && rc == 0) {
        int nf;
        int64_t nl, at = line;
        hb_csv_bad bad = hb_csv_record(s->buf, s->len, &pos, m->delim, m->f, m->ncols, &nf, &nl);
        line += nl;
        if (nf == 0 && bad == HB_CSV_OK) continue; /* a blank line */
        int r = pass == 1 ? pass1_record(m, bad, nf, why, len) : pass2_record(m, bad, nf, why, len);
        if (r != 0 && (!m->skip || bad == HB_CSV_UNTERMINATED)) {
            snprintf(where, wlen, "%s:%lld", s->path, (long long)at);
            if (!m->skip && bad != HB_CSV_UNTERMINATED) {
                size_t l = strlen(why);
                snprintf(why + l, len - l, " (--on-error skip skips such records)");
            }
            rc = -1;
        } else if (r != 0) {
            m->skipped++; /* in pass 1; again in pass 2 when it runs */
            int64_t key = ((int64_t)fi << 40) + at;
            if (key < m->first_key) {
                m->first_key = key;
                snprintf(m->first_msg, sizeof m->first_msg, "%s:%lld: %s", s->path, (long long)at, why);
            }
        }
        if (once) break;
    }
    *posp = pos;
    *linep = line;
    return rc;
}

int imp_scan(imp *m, source *s, int fi, int pass)
{
    char where[4200], why[600];
    size_t pos = s->start;
    int64_t line = s->line;
    if (scan_range(m, s, fi, pass, &pos, s->hi, &line, 0, where, sizeof where, why, sizeof why))
        return hb_err_set(HB_EDATA, where, "%s", why);
    return 0;
}

/* Appends column b's nb rows (a worker's block) to column a's na rows as pass 1 would
 * have converted them in one sequence; a fails (pass 2 converts) where the kinds cannot
 * be joined exactly. */
static void spec_append(imp *m, spec *a, int64_t na, spec *b, int64_t nb)
{
    if (a->failed || nb == 0) return;
    if (b->failed) {
        a->failed = 1;
        return;
    }
    if (b->kind == K_UNDECIDED) { /* nb missing values */
        if (a->kind == HB_CT_INT) imp_spec_to_float(a, na);
        if (a->failed || a->kind == K_UNDECIDED) return;
        for (int64_t i = na; i < na + nb; i++) spec_missing(a, i);
        return;
    }
    if (a->kind == K_UNDECIDED) imp_spec_room(m, a, b->kind, na);
    if (a->failed) return;
    if (a->kind == HB_CT_INT && b->kind == HB_CT_FLOAT) imp_spec_to_float(a, na);
    if (a->kind == HB_CT_FLOAT && b->kind == HB_CT_INT) imp_spec_to_float(b, nb);
    if (b->failed || a->kind != b->kind) {
        a->failed = 1;
        return;
    }
    if (a->kind == HB_CT_STRING) {
        memcpy(a->s + na, b->s, (size_t)nb * sizeof *a->s);
        return;
    }
    memcpy((char *)a->v + 8 * na, b->v, 8 * (size_t)nb);
    if (a->kind == HB_CT_TIME) memcpy(a->inst + na, b->inst, (size_t)nb);
    a->negzero |= b->negzero;
}

/* Joins column b's nb rows, which a worker wrote at row off of a's arrays, as rows
 * [na, na + nb): as spec_append, moved down in place instead of copied. */
static void spec_join_shared(spec *a, int64_t na, spec *b, int64_t nb, int64_t off)
{
    if (a->failed || nb == 0) return;
    if (b->failed) {
        a->failed = 1;
        return;
    }
    if (a->kind == HB_CT_INT && b->kind == HB_CT_FLOAT) imp_spec_to_float(a, na);
    if (a->kind == HB_CT_FLOAT && b->kind == HB_CT_INT) imp_spec_to_float(b, nb);
    if (b->failed || a->kind != b->kind) {
        a->failed = 1;
        return;
    }
    if (a->kind == HB_CT_STRING) {
        memmove(a->s + na, a->s + off, (size_t)nb * sizeof *a->s);
        return;
    }
    memmove((char *)a->v + 8 * na, (char *)a->v + 8 * off, 8 * (size_t)nb);
    if (a->kind == HB_CT_TIME) memmove(a->inst + na, a->inst + off, (size_t)nb);
    a->negzero |= b->negzero;
}

/* A block of a file's range and the worker that scans it. */
typedef struct block {
    size_t lo, start;
    uint64_t quotes, lines;
    int64_t line;
    int64_t off; /* the row of the rank's arrays where its worker writes (shared columns) */
    int failed;
    double cpu; /* the thread's CPU seconds for the block (for -v) */
    imp w;
    char where[4200], why[600];
} block;

/* A worker: m's options and columns, its own scratch and statistics; its conversion
 * room is rows [off, off + cap) of m's arrays for the columns whose kind m knows (off
 * >= 0), else arrays of its own. */
static int worker_init(const imp *m, imp *w, int64_t cap, int64_t off)
{
    *w = *m;
    const size_t n = (size_t)m->ncols;
    w->f = calloc(n + 1, sizeof *w->f);
    w->ival = calloc(n + 1, sizeof *w->ival);
    w->rv = calloc(n + 1, sizeof *w->rv);
    w->rr = calloc(n + 1, sizeof *w->rr);
    w->st = calloc(n, sizeof *w->st);
    w->sp = m->sp ? calloc(n, sizeof *w->sp) : NULL;
    w->data = NULL;
    w->nrows = 0;
    w->skipped = 0;
    w->first_key = INT64_MAX;
    w->first_msg[0] = '\0';
    w->spcap = cap;
    if (!w->f || !w->ival || !w->rv || !w->rr || !w->st || (m->sp && !w->sp)) return -1;
    for (size_t c = 0; c < n; c++) {
        colstat *s = &w->st[c];
        s->maybe_int = s->maybe_float = s->maybe_time = 1;
        s->tmin = INT64_MAX;
        s->tmax = INT64_MIN;
        if (!w->sp) continue;
        const spec *a = &m->sp[c];
        spec *p = &w->sp[c];
        p->kind = K_UNDECIDED;
        if (off >= 0 && a->kind != K_UNDECIDED && !a->failed) {
            p->kind = a->kind;
            p->shared = 1;
            if (a->v) p->v = (char *)a->v + 8 * off;
            if (a->inst) p->inst = a->inst + off;
            if (a->s) p->s = a->s + off;
        } else if (m->decl[c].type != T_AUTO) {
            imp_spec_room(w, p, m->decl[c].type, 0);
        }
    }
    return 0;
}

/* Frees what a worker owns (not the rank's arrays it wrote into). */
static void worker_free(imp *w)
{
    for (int c = 0; w->sp && c < w->ncols; c++)
        if (w->sp[c].shared) w->sp[c].v = NULL, w->sp[c].inst = NULL, w->sp[c].s = NULL;
    free(w->f);
    free(w->ival);
    free(w->rv);
    free(w->rr);
    free(w->st);
    imp_spec_free(w);
}

/* Adds worker w's statistics, skipped records and rows (after m's) to m. */
static void worker_join(imp *m, imp *w)
{
    for (int c = 0; c < m->ncols; c++) {
        colstat *a = &m->st[c];
        const colstat *b = &w->st[c];
        a->maybe_int &= b->maybe_int, a->maybe_float &= b->maybe_float, a->maybe_time &= b->maybe_time;
        a->has_empty |= b->has_empty, a->has_value |= b->has_value;
        if (b->maxlen > a->maxlen) a->maxlen = b->maxlen;
        if (b->tmin < a->tmin) a->tmin = b->tmin;
        if (b->tmax > a->tmax) a->tmax = b->tmax;
    }
    m->skipped += w->skipped;
    if (w->first_key < m->first_key) {
        m->first_key = w->first_key;
        memcpy(m->first_msg, w->first_msg, sizeof m->first_msg);
    }
}

/* The calling thread's CPU seconds. */
static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int imp_scan_blocks(imp *m, source *s, int fi)
{
    const size_t lo = s->start, hi = s->hi;
    int nb = m->threads;
    if ((size_t)nb > (hi - lo) / m->block_min) nb = (int)((hi - lo) / m->block_min);
    if (nb < 2 || !s->buf) return imp_scan(m, s, fi, 1);
    if (nb > m->blocks) m->blocks = nb;
    block *b = calloc((size_t)nb, sizeof *b);
    if (!b) return hb_err_set(HB_EINTERNAL, "import", "out of memory");
    /* the blocks' record starts and first lines, from the quote parity before them (the
     * range starts at a record) as between ranks (docs/import.md, Parallel reading) */
#pragma omp parallel for num_threads(nb) schedule(static, 1)
    for (int k = 0; k < nb; k++) {
        b[k].lo = lo + (size_t)((__uint128_t)(hi - lo) * (unsigned)k / (unsigned)nb);
        size_t bhi = lo + (size_t)((__uint128_t)(hi - lo) * (unsigned)(k + 1) / (unsigned)nb);
        hb_csv_count(s->buf, b[k].lo, bhi, &b[k].quotes, &b[k].lines);
    }
    uint64_t q = 0, l = 0;
    for (int k = 0; k < nb; k++) {
        const size_t bhi = k + 1 < nb ? b[k + 1].lo : hi;
        int64_t skipped = 0;
        b[k].start = k == 0 ? lo : hb_csv_sync(s->buf, b[k].lo, bhi, (int)(q & 1), &skipped);
        b[k].line = s->line + (int64_t)l + skipped;
        q += b[k].quotes;
        l += b[k].lines;
    }
    /* block 0 is scanned into m itself, as imp_scan would, the others by workers joined
     * after it; each block has room for one more record than its line breaks. The first
     * record, read first on this thread, tells the kinds of most columns: there the
     * workers write straight into m's arrays, each at its room's row, and the join only
     * moves their rows down (no page is touched twice); elsewhere they fill arrays of
     * their own that the join copies. */
    int64_t off = m->nrows;
    for (int k = 0; k < nb; k++) b[k].off = off, off += (int64_t)b[k].lines + 1;
    const int direct = m->sp && off <= m->spcap;
    int rc = 0;
    if (scan_range(m, s, fi, 1, &b[0].start, nb > 1 ? b[1].lo : hi, &b[0].line, 1, b[0].where, sizeof b[0].where,
                   b[0].why, sizeof b[0].why))
        rc = hb_err_set(HB_EDATA, b[0].where, "%s", b[0].why);
    int oom = 0;
    for (int k = 1; k < nb && rc == 0; k++)
        oom |= worker_init(m, &b[k].w, (int64_t)b[k].lines + 1, direct ? b[k].off : -1) != 0;
#pragma omp parallel for num_threads(nb) schedule(static, 1) if (!oom && rc == 0)
    for (int k = 0; k < nb; k++) {
        const size_t bhi = k + 1 < nb ? b[k + 1].lo : hi;
        if (oom || rc) continue;
        const double c0 = thread_cpu();
        b[k].failed = scan_range(k == 0 ? m : &b[k].w, s, fi, 1, &b[k].start, bhi, &b[k].line, 0, b[k].where,
                                 sizeof b[k].where, b[k].why, sizeof b[k].why);
        b[k].cpu = thread_cpu() - c0;
    }
    double most = 0;
    for (int k = 0; k < nb; k++) {
        m->block_cpu += b[k].cpu;
        if (b[k].cpu > most) most = b[k].cpu;
    }
    m->block_cpu_max += most;
    if (rc == 0 && oom) rc = hb_err_set(HB_EINTERNAL, "import", "out of memory");
    for (int k = 0; k < nb && rc == 0; k++)
        if (b[k].failed) rc = hb_err_set(HB_EDATA, b[k].where, "%s", b[k].why); /* the first in the file */
    if (rc == 0) {
        for (int k = 1; k < nb; k++) worker_join(m, &b[k].w);
        if (m->sp) {
#pragma omp parallel for num_threads(nb) schedule(dynamic, 1)
            for (int c = 0; c < m->ncols; c++) {
                int64_t row = m->nrows;
                for (int k = 1; k < nb; k++) {
                    if (row + b[k].w.nrows > m->spcap) m->sp[c].failed = 1; /* cannot be: room for every line */
                    if (b[k].w.sp[c].shared) spec_join_shared(&m->sp[c], row, &b[k].w.sp[c], b[k].w.nrows, b[k].off);
                    else spec_append(m, &m->sp[c], row, &b[k].w.sp[c], b[k].w.nrows);
                    row += b[k].w.nrows;
                }
            }
            for (int k = 1; k < nb; k++) m->nrows += b[k].w.nrows;
        }
    }
    for (int k = 1; k < nb; k++) worker_free(&b[k].w);
    free(b);
    return rc;
}
