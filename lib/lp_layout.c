/* lp_layout.c -- archive path templates */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_layout.h"
#include "lp_parse.h"
#include "lp_time.h"

enum { PART_LIT, PART_TIME, PART_FIELD };

struct part {
    int kind;
    char conv;                  /* PART_TIME */
    int field;                  /* PART_FIELD: index into fields */
    size_t off, len;            /* PART_LIT: in text */
};

struct lp_layout {
    char *text;                 /* the template, for literal parts */
    int nparts;
    struct part part[128];
    int nfields;
    char *field[LP_LAYOUT_MAXFIELDS];
};

static int safe_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int lp_safe_name(const char *s, size_t n)
{
    if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!safe_char((unsigned char)s[i]))
            return 0;
    return 1;
}

void lp_layout_free(struct lp_layout *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < l->nfields; i++)
        free(l->field[i]);
    free(l->text);
    free(l);
}

static int add_part(struct lp_layout *l, struct part p, char *err)
{
    if (l->nparts >= (int)(sizeof l->part / sizeof l->part[0])) {
        snprintf(err, LP_ERRLEN, "layout: template too complex");
        return -1;
    }
    l->part[l->nparts++] = p;
    return 0;
}

/*
 * Fields match any safe name, and a safe name may hold digits and '-', so
 * a path only tells where a conversion's digits are when no field stands
 * between it and an end of its path component: everything else has a
 * fixed width. logpipe-rotate reads the day from the file name: a day
 * conversion there with a field on both sides ("{a}-%F-{b}.jsonl") could
 * be read from the wrong digits ("x-2001-01-01-2024-01-01-1.jsonl" is
 * a = x, b = 2024-01-01-1 as well as a = x-2001-01-01, b = 1). Returns
 * that conversion, or 0 when the file name has none.
 */
static char day_between_fields(const struct lp_layout *l)
{
    int start = 0, field_before = 0;
    char pending = 0;

    for (int i = 0; i < l->nparts; i++)
        if (l->part[i].kind == PART_LIT &&
            memchr(l->text + l->part[i].off, '/', l->part[i].len))
            start = i + 1;
    for (int i = start; i < l->nparts; i++) {
        const struct part *p = &l->part[i];
        if (p->kind == PART_FIELD) {
            if (pending)
                return pending;
            field_before = 1;
        } else if (p->kind == PART_TIME && strchr("YmdF", p->conv) &&
                   field_before && !pending) {
            pending = p->conv;
        }
    }
    return 0;
}

int lp_layout_new(const char *tmpl, struct lp_layout **out, char *err)
{
    struct lp_layout *l = calloc(1, sizeof *l);
    const char *t, *last_slash;
    int comp_start = 1, has_y = 0, has_m = 0, has_d = 0, has_f = 0;
    char c;
    size_t n = strlen(tmpl);

    *out = NULL;
    if (l == NULL || (l->text = strdup(tmpl)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        goto fail;
    }
    if (n == 0 || tmpl[0] == '/') {
        snprintf(err, LP_ERRLEN, "layout '%s': must be a relative path", tmpl);
        goto fail;
    }
    /* the file name starts after the last '/' outside {field} */
    last_slash = NULL;
    for (t = tmpl; *t; t++) {
        if (*t == '{') {
            const char *close = strchr(t, '}');
            if (close == NULL)
                break;          /* reported below */
            t = close;
        } else if (*t == '/') {
            last_slash = t;
        }
    }
    for (t = tmpl; *t; ) {
        struct part p = { 0 };
        int in_name = t > last_slash || last_slash == NULL;
        if (*t == '%') {
            c = t[1];
            if (strchr("YymdHMSjF", c) == NULL || c == '\0') {
                snprintf(err, LP_ERRLEN, "layout '%s': unsupported conversion "
                         "'%%%c' (use %%Y %%y %%m %%d %%H %%M %%S %%j %%F)",
                         tmpl, c ? c : ' ');
                goto fail;
            }
            if (in_name) {
                has_y |= c == 'Y';
                has_m |= c == 'm';
                has_d |= c == 'd';
                has_f |= c == 'F';
            }
            p.kind = PART_TIME;
            p.conv = c;
            t += 2;
            comp_start = 0;
        } else if (*t == '{') {
            const char *close = strchr(t, '}');
            size_t fl;
            int i;
            if (close == NULL || close == t + 1) {
                snprintf(err, LP_ERRLEN, "layout '%s': '{' without a field "
                         "name and '}'", tmpl);
                goto fail;
            }
            fl = (size_t)(close - t - 1);
            if (memchr(t + 1, '{', fl)) {
                snprintf(err, LP_ERRLEN, "layout '%s': nested '{'", tmpl);
                goto fail;
            }
            for (i = 0; i < l->nfields; i++)
                if (strlen(l->field[i]) == fl &&
                    memcmp(l->field[i], t + 1, fl) == 0)
                    break;
            if (i == l->nfields) {
                if (l->nfields >= LP_LAYOUT_MAXFIELDS) {
                    snprintf(err, LP_ERRLEN, "layout '%s': more than %d "
                             "fields", tmpl, LP_LAYOUT_MAXFIELDS);
                    goto fail;
                }
                if ((l->field[i] = strndup(t + 1, fl)) == NULL) {
                    snprintf(err, LP_ERRLEN, "out of memory");
                    goto fail;
                }
                l->nfields++;
            }
            p.kind = PART_FIELD;
            p.field = i;
            t = close + 1;
            comp_start = 0;
        } else {
            const char *s = t;
            while (*t && *t != '%' && *t != '{') {
                if (*t == '/') {
                    if (comp_start) {
                        snprintf(err, LP_ERRLEN, "layout '%s': empty path "
                                 "component", tmpl);
                        goto fail;
                    }
                    comp_start = 1;
                } else if (!safe_char((unsigned char)*t)) {
                    snprintf(err, LP_ERRLEN, "layout '%s': character '%c' is "
                             "not allowed (only A-Z a-z 0-9 . _ - /)", tmpl,
                             *t);
                    goto fail;
                } else {
                    if (comp_start && *t == '.') {
                        snprintf(err, LP_ERRLEN, "layout '%s': a path "
                                 "component may not start with '.'", tmpl);
                        goto fail;
                    }
                    comp_start = 0;
                }
                t++;
            }
            p.kind = PART_LIT;
            p.off = (size_t)(s - tmpl);
            p.len = (size_t)(t - s);
        }
        if (add_part(l, p, err) < 0)
            goto fail;
    }
    if (comp_start) {
        snprintf(err, LP_ERRLEN, "layout '%s': ends with '/'", tmpl);
        goto fail;
    }
    if (n < 6 || strcmp(tmpl + n - 6, ".jsonl") != 0) {
        snprintf(err, LP_ERRLEN, "layout '%s': the file name must end in "
                 ".jsonl", tmpl);
        goto fail;
    }
    if (!has_f && !(has_y && has_m && has_d)) {
        snprintf(err, LP_ERRLEN, "layout '%s': the file name must hold the "
                 "day (%%F, or %%Y, %%m and %%d) for logpipe-rotate", tmpl);
        goto fail;
    }
    if ((c = day_between_fields(l)) != 0) {
        snprintf(err, LP_ERRLEN, "layout '%s': %%%c sits between two fields "
                 "in the file name, so the day cannot be read back (a value "
                 "may hold digits): keep the fields on one side of the day",
                 tmpl, c);
        goto fail;
    }
    *out = l;
    return 0;
fail:
    lp_layout_free(l);
    return -1;
}

int lp_layout_nfields(const struct lp_layout *l)
{
    return l->nfields;
}

const char *lp_layout_field(const struct lp_layout *l, int i)
{
    return l->field[i];
}

static size_t put_num(char *o, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return (size_t)width;
}

long lp_layout_expand(const struct lp_layout *l, int64_t ms, const char *s,
                      const struct lp_jevent *ev, const int *keyidx,
                      char *out, size_t cap, char *err)
{
    struct lp_tm tm;
    size_t o = 0;
    int have_tm = 0;

    for (int i = 0; i < l->nparts; i++) {
        const struct part *p = &l->part[i];
        char tmp[80];
        const char *v = tmp;
        size_t vn = 0;

        switch (p->kind) {
        case PART_LIT:
            v = l->text + p->off;
            vn = p->len;
            break;
        case PART_TIME:
            if (!have_tm) {
                if (ms < LP_TIME_MIN || ms > LP_TIME_MAX) {
                    snprintf(err, LP_ERRLEN, "event time is outside years "
                             "0000..9999");
                    return -1;
                }
                lp_time_tm(ms, &tm);
                have_tm = 1;
            }
            switch (p->conv) {
            case 'Y': vn = put_num(tmp, tm.year, 4); break;
            case 'y': vn = put_num(tmp, tm.year % 100, 2); break;
            case 'm': vn = put_num(tmp, tm.mon, 2); break;
            case 'd': vn = put_num(tmp, tm.mday, 2); break;
            case 'H': vn = put_num(tmp, tm.hour, 2); break;
            case 'M': vn = put_num(tmp, tm.min, 2); break;
            case 'S': vn = put_num(tmp, tm.sec, 2); break;
            case 'j': vn = put_num(tmp, tm.yday, 3); break;
            case 'F':
                put_num(tmp, tm.year, 4);
                tmp[4] = '-';
                put_num(tmp + 5, tm.mon, 2);
                tmp[7] = '-';
                put_num(tmp + 8, tm.mday, 2);
                vn = 10;
                break;
            }
            break;
        case PART_FIELD: {
            const struct lp_jval *jv = &ev->val[keyidx[p->field]];
            long r;
            switch (jv->type) {
            case LP_JNONE: case LP_JNULL:
                v = "_none";
                vn = 5;
                break;
            case LP_JSTRING:
                if (jv->esc) {
                    r = lp_json_unescape(s, jv, tmp, 65);
                    vn = r < 0 ? 65 : (size_t)r;
                } else {
                    v = s + jv->off + 1;
                    vn = jv->len - 2;
                }
                break;
            case LP_JNUMBER:
                v = s + jv->off;
                vn = jv->len;
                if (vn > 0 && (memchr(v, '.', vn) || memchr(v, 'e', vn) ||
                               memchr(v, 'E', vn)))
                    vn = 0;     /* not an integer: refused below */
                break;
            default:
                vn = 0;
            }
            if (!lp_safe_name(v, vn)) {
                snprintf(err, LP_ERRLEN, "member \"%s\" is not a safe name: "
                         "%.*s", l->field[p->field],
                         jv->len > 80 ? 80 : (int)jv->len,
                         jv->type == LP_JNONE ? "" : s + jv->off);
                return -1;
            }
            break;
        }
        }
        if (cap - o <= vn) {
            snprintf(err, LP_ERRLEN, "path longer than %zu bytes", cap - 1);
            return -1;
        }
        memcpy(out + o, v, vn);
        o += vn;
    }
    out[o] = '\0';
    return (long)o;
}

struct match {
    int y, m, d, j;
};

static int digits_at(const char *s, size_t n, size_t at, int k, int *v)
{
    int x = 0;

    if (at + (size_t)k > n)
        return -1;
    for (int i = 0; i < k; i++) {
        char c = s[at + (size_t)i];
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
    }
    *v = x;
    return 0;
}

/*
 * Matching state. Whether parts [i..] match s[at..n) does not depend on
 * what was captured before, so a failure at a field part is remembered
 * and never tried again: each (field part, offset) is tried once, with at
 * most 64 lengths, each walking the template up to the next field part.
 * That is O(n * 64 * template length) at worst, where plain backtracking
 * took 64^k tries for k fields in a row.
 */
struct matcher {
    const struct lp_layout *l;
    const char *s;
    size_t n;
    int fpart[128];             /* part -> its index among field parts */
    uint64_t failed[128 * LP_LAYOUT_PATHMAX / 64];  /* (field part, at) */
    struct match m;
};

/* Matches parts [i..] against s[at..n); tries the longest field first. */
static int match_from(struct matcher *x, int i, size_t at)
{
    const struct lp_layout *l = x->l;
    const char *s = x->s;
    size_t n = x->n;
    struct match *m = &x->m;

    if (i == l->nparts)
        return at == n;
    const struct part *p = &l->part[i];
    int v, v2, v3;

    switch (p->kind) {
    case PART_LIT:
        if (at + p->len > n || memcmp(s + at, l->text + p->off, p->len) != 0)
            return 0;
        return match_from(x, i + 1, at + p->len);
    case PART_TIME:
        switch (p->conv) {
        case 'F':
            if (digits_at(s, n, at, 4, &v) < 0 || at + 10 > n ||
                s[at + 4] != '-' || digits_at(s, n, at + 5, 2, &v2) < 0 ||
                s[at + 7] != '-' || digits_at(s, n, at + 8, 2, &v3) < 0)
                return 0;
            m->y = v;
            m->m = v2;
            m->d = v3;
            return match_from(x, i + 1, at + 10);
        case 'Y':
            if (digits_at(s, n, at, 4, &v) < 0)
                return 0;
            m->y = v;
            return match_from(x, i + 1, at + 4);
        case 'j':
            if (digits_at(s, n, at, 3, &v) < 0)
                return 0;
            m->j = v;
            return match_from(x, i + 1, at + 3);
        default:
            if (digits_at(s, n, at, 2, &v) < 0)
                return 0;
            if (p->conv == 'm')
                m->m = v;
            else if (p->conv == 'd')
                m->d = v;
            return match_from(x, i + 1, at + 2);
        }
    case PART_FIELD: {
        /* a safe name (or _none): s[at..at+k) for k = run down to 1 */
        size_t bit = (size_t)x->fpart[i] * (n + 1) + at, run = 0;
        if ((x->failed[bit / 64] >> (bit % 64)) & 1)
            return 0;
        if (at < n && s[at] != '.' && s[at] != '-')
            while (run < 64 && at + run < n &&
                   safe_char((unsigned char)s[at + run]))
                run++;
        for (size_t k = run; k >= 1; k--) {
            struct match saved = *m;
            if (match_from(x, i + 1, at + k))
                return 1;
            *m = saved;
        }
        x->failed[bit / 64] |= (uint64_t)1 << (bit % 64);
        return 0;
    }
    }
    return 0;
}

int lp_layout_match(const struct lp_layout *l, const char *rel, size_t n,
                    int64_t *day)
{
    struct matcher x;
    struct match m;
    int nf = 0;

    /* lp_layout_expand makes nothing longer */
    if (n >= LP_LAYOUT_PATHMAX)
        return 0;
    x.l = l;
    x.s = rel;
    x.n = n;
    x.m = (struct match){ -1, -1, -1, -1 };
    for (int i = 0; i < l->nparts; i++)
        x.fpart[i] = l->part[i].kind == PART_FIELD ? nf++ : -1;
    memset(x.failed, 0, ((size_t)nf * (n + 1) + 63) / 64 * sizeof x.failed[0]);
    if (!match_from(&x, 0, 0) || x.m.y < 0)
        return 0;
    m = x.m;
    if (m.m >= 1 && m.m <= 12 && m.d >= 1 && m.d <= 31) {
        *day = lp_days_from_civil(m.y, m.m, m.d);
        return 1;
    }
    if (m.j >= 1 && m.j <= 366) {
        *day = lp_days_from_civil(m.y, 1, 1) + m.j - 1;
        return 1;
    }
    return 0;
}
