/* lp_jsource.c -- the systemd journal as a source of JSON events */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "lp_jsource.h"
#include "lp_parse.h"
#include "lp_time.h"
#include "lp_utf8.h"

/* Bytes asked of libsystemd beyond max_event for one field: a name (64
 * bytes at most in a journal) and its '='. A field that comes back this
 * long may have been cut by libsystemd, and cannot fit anyway. */
#define SLACK 128
/* Room kept for ,"truncated":N} in a cut event. */
#define MARK_ROOM 24

/* ---- an entry's fields as one event --------------------------------------- */

enum role { R_LEVEL, R_SERVICE, R_HOST, R_MESSAGE, R_OTHER };

struct fld {
    const char *name, *val;
    size_t nlen, vlen;
    int member;                 /* index in the members; -1: not yet */
};

struct member {
    const char *name;           /* the journal name of its fields */
    size_t nlen;
    const char *key;            /* the member's name when mapped */
    int upper;                  /* keeps the journal name as it is */
    int nval;
    int first;                  /* index of its first field */
    int big;                    /* longer than max_event raw: not encoded */
    int keep;                   /* in a cut event, whole */
    size_t start, len;          /* "name":value in the scratch buffer */
};

static const char *const level_names[] = {
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"
};

/* names logpipe sets itself, and drain's "_id", which send cuts */
static const char *const reserved[] = {
    "timestamp", "level", "service", "host", "message", "truncated", "_id"
};

static int name_is(const struct fld *f, const char *s)
{
    size_t n = strlen(s);
    return f->nlen == n && memcmp(f->name, s, n) == 0;
}

static int lower_reserved(const char *name, size_t n)
{
    for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++) {
        size_t rn = strlen(reserved[k]);
        if (rn != n)
            continue;
        size_t i = 0;
        while (i < n && (name[i] >= 'A' && name[i] <= 'Z' ?
                         name[i] - 'A' + 'a' : name[i]) == reserved[k][i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* Is p[0..n) the start of a UTF-8 sequence that was cut short? */
static int cut_seq(const unsigned char *p, size_t n)
{
    size_t want = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;

    if (*p < 0xc2 || *p >= 0xf5 || n >= want)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return 1;
}

/* Is v[0..n) text: valid UTF-8 without NUL? partial: the value may have
 * been cut by libsystemd, so a sequence cut at its very end is no proof
 * of binary. */
static int is_text(const char *v, size_t n, int partial)
{
    const unsigned char *p = (const unsigned char *)v, *end = p + n;

    while (p < end) {
        size_t k;
        if (*p == 0)
            return 0;
        if (*p < 0x80) {
            p++;
            continue;
        }
        k = lp_utf8_seq(p, (size_t)(end - p));
        if (k == 0)
            return partial && cut_seq(p, (size_t)(end - p));
        p += k;
    }
    return 1;
}

static int add_base64(struct lp_buf *b, const char *v, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)v;
    size_t i;

    if (lp_buf_reserve(b, (n + 2) / 3 * 4 + 16) < 0)
        return -1;
    lp_buf_adds(b, "{\"base64\":\"");
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = { tab[x >> 18], tab[x >> 12 & 63], tab[x >> 6 & 63],
                      tab[x & 63] };
        lp_buf_add(b, q, 4);
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)p[i] << 16;
        char q[4] = { tab[x >> 18], tab[x >> 12 & 63], '=', '=' };
        lp_buf_add(b, q, 4);
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[4] = { tab[x >> 18], tab[x >> 12 & 63], tab[x >> 6 & 63], '=' };
        lp_buf_add(b, q, 4);
    }
    lp_buf_adds(b, "\"}");
    return 0;
}

static int add_value(struct lp_buf *b, const char *v, size_t n)
{
    if (is_text(v, n, 0))
        return lp_buf_add_jstr(b, v, n) < 0 ? -1 : 0;
    return add_base64(b, v, n);
}

/* JSON-escaped length of the character at p (text: valid, no NUL). */
static size_t esc_len(const unsigned char *p, size_t left, size_t *adv)
{
    unsigned char c = *p;

    *adv = 1;
    if (c >= 0x80) {
        *adv = lp_utf8_seq(p, left);
        return *adv;
    }
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' ||
        c == '\b' || c == '\f')
        return 2;
    return c < 0x20 ? 6 : 1;
}

/* Appends "message":"<the longest prefix of v whose string fits room
 * bytes>". Returns 1 when added, 0 when not even an empty one fits, -1. */
static int add_cut_message(struct lp_buf *b, const char *v, size_t n,
                           size_t room)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t used = strlen("\"message\":\"\""), i = 0, adv;

    if (used > room)
        return 0;
    while (i < n) {
        size_t e = esc_len(p + i, n - i, &adv);
        if (adv == 0 || used + e > room)
            break;              /* adv 0: a character libsystemd cut */
        used += e;
        i += adv;
    }
    if (lp_buf_adds(b, "\"message\":") < 0 ||
        lp_buf_add_jstr(b, v, i) < 0)
        return -1;
    return 1;
}

static size_t format_time(uint64_t us, char *buf)
{
    struct lp_tm tm;

    lp_time_tm((int64_t)(us / 1000), &tm);
    return (size_t)snprintf(buf, 48, "\"timestamp\":\"%04d-%02d-%02dT"
                            "%02d:%02d:%02d.%06uZ\"", tm.year, tm.mon,
                            tm.mday, tm.hour, tm.min, tm.sec,
                            (unsigned)(us % 1000000));
}

/* The member's name, then its value or the array of its values. */
static int encode(struct lp_buf *sc, const struct member *m, int mi,
                  const struct fld *f, size_t nf)
{
    size_t i;

    if (m->key) {
        if (lp_buf_addc(sc, '"') < 0 || lp_buf_adds(sc, m->key) < 0 ||
            lp_buf_add(sc, "\":", 2) < 0)
            return -1;
    } else {
        size_t at = sc->len;
        if (lp_buf_add_jstr(sc, m->name, m->nlen) < 0)
            return -1;
        if (!m->upper)
            for (i = at; i < sc->len; i++)
                if (sc->p[i] >= 'A' && sc->p[i] <= 'Z')
                    sc->p[i] = (char)(sc->p[i] - 'A' + 'a');
        if (lp_buf_addc(sc, ':') < 0)
            return -1;
    }
    if (mi == R_LEVEL) {
        const char *v = level_names[f[m->first].val[0] - '0'];
        return lp_buf_addc(sc, '"') < 0 || lp_buf_adds(sc, v) < 0 ||
               lp_buf_addc(sc, '"') < 0 ? -1 : 0;
    }
    if (m->nval > 1 && lp_buf_addc(sc, '[') < 0)
        return -1;
    for (i = (size_t)m->first; i < nf; i++) {
        if (f[i].member != mi)
            continue;
        if (i != (size_t)m->first && lp_buf_addc(sc, ',') < 0)
            return -1;
        /* a value libsystemd may have cut is longer than max: never here */
        if (add_value(sc, f[i].val, f[i].vlen) < 0)
            return -1;
    }
    if (m->nval > 1 && lp_buf_addc(sc, ']') < 0)
        return -1;
    return 0;
}

/* Decides each field's member (see lp_jsource.h). Returns the number of
 * members in m (room for nf + 4), slots R_LEVEL..R_MESSAGE first. */
static int assign(struct fld *f, size_t nf, struct member *m)
{
    static const char *const keys[] = { "level", "service", "host",
                                        "message" };
    int first[4] = { -1, -1, -1, -1 }, unit = -1, ident = -1, prio = -1;
    int nm = R_OTHER;
    size_t i;

    memset(m, 0, sizeof *m * R_OTHER);
    for (i = 0; i < nf; i++) {
        if (prio < 0 && name_is(&f[i], "PRIORITY"))
            prio = (int)i;
        else if (unit < 0 && name_is(&f[i], "_SYSTEMD_UNIT"))
            unit = (int)i;
        else if (ident < 0 && name_is(&f[i], "SYSLOG_IDENTIFIER"))
            ident = (int)i;
        else if (first[R_HOST] < 0 && name_is(&f[i], "_HOSTNAME"))
            first[R_HOST] = (int)i;
        else if (first[R_MESSAGE] < 0 && name_is(&f[i], "MESSAGE"))
            first[R_MESSAGE] = (int)i;
    }
    if (prio >= 0 && f[prio].vlen == 1 && f[prio].val[0] >= '0' &&
        f[prio].val[0] <= '7')
        first[R_LEVEL] = prio;
    first[R_SERVICE] = unit >= 0 ? unit : ident;
    for (int r = 0; r < R_OTHER; r++) {
        m[r].key = keys[r];
        if (first[r] < 0)
            continue;
        f[first[r]].member = r;
        m[r].name = f[first[r]].name;
        m[r].nlen = f[first[r]].nlen;
        m[r].nval = 1;
        m[r].first = first[r];
    }
    for (i = 0; i < nf; i++) {
        int k;
        if (f[i].member >= 0)
            continue;
        for (k = R_OTHER; k < nm; k++)
            if (m[k].nlen == f[i].nlen &&
                memcmp(m[k].name, f[i].name, f[i].nlen) == 0)
                break;
        if (k == nm) {
            int upper = lower_reserved(f[i].name, f[i].nlen);
            for (int r = 0; r < R_OTHER && !upper; r++)
                upper = m[r].nval && m[r].nlen == f[i].nlen &&
                        memcmp(m[r].name, f[i].name, f[i].nlen) == 0;
            memset(&m[nm], 0, sizeof m[nm]);
            m[nm].name = f[i].name;
            m[nm].nlen = f[i].nlen;
            m[nm].upper = upper;
            m[nm].first = (int)i;
            nm++;
        }
        f[i].member = k;
        m[k].nval++;
    }
    return nm;
}

static int format(struct lp_buf *out, struct lp_buf *sc, uint64_t us,
                  const struct lp_jfield *in, size_t n, size_t max,
                  int lost, int *dropped)
{
    struct fld *f = NULL;
    struct member *m = NULL;
    char ts[64], mark[MARK_ROOM + 8];
    size_t nf = 0, tlen, total, budget, used, i;
    int nm, ml, kind = -1, drop = lost;

    out->len = 0;
    sc->len = 0;
    *dropped = 0;
    f = malloc((n ? n : 1) * sizeof *f);
    m = malloc((n + R_OTHER) * sizeof *m);
    if (f == NULL || m == NULL)
        goto out;
    for (i = 0; i < n; i++) {
        const char *eq = memchr(in[i].p, '=', in[i].len);
        if (eq == NULL || eq == in[i].p)
            continue;
        f[nf].name = in[i].p;
        f[nf].nlen = (size_t)(eq - in[i].p);
        f[nf].val = eq + 1;
        f[nf].vlen = in[i].len - f[nf].nlen - 1;
        f[nf].member = -1;
        nf++;
    }
    nm = assign(f, nf, m);
    tlen = format_time(us, ts);
    total = 1 + tlen + 1;       /* { ... } */
    for (int k = 0; k < nm; k++) {
        size_t raw = 0;
        if (m[k].nval == 0)
            continue;
        for (i = (size_t)m[k].first; i < nf; i++)
            if (f[i].member == k)
                raw += f[i].vlen;
        m[k].start = sc->len;
        if (max && raw > max) {
            m[k].big = 1;       /* cannot fit: not worth encoding */
            total += max + 1;
            continue;
        }
        if (encode(sc, &m[k], k, f, nf) < 0)
            goto out;
        m[k].len = sc->len - m[k].start;
        total += 1 + m[k].len;
    }
    if (lost == 0 && (max == 0 || total <= max)) {
        if (lp_buf_reserve(out, total) < 0)
            goto out;
        lp_buf_addc(out, '{');
        lp_buf_add(out, ts, tlen);
        for (int k = 0; k < nm; k++)
            if (m[k].nval) {
                lp_buf_addc(out, ',');
                lp_buf_add(out, sc->p + m[k].start, m[k].len);
            }
        lp_buf_addc(out, '}');
        kind = LP_JENTRY_WHOLE;
        goto done;
    }
    /* cut: timestamp, then what fits whole, the message cut to fit */
    if (max && max < 1 + tlen + 1 + MARK_ROOM) {
        kind = LP_JENTRY_SKIPPED;
        goto out;
    }
    budget = max ? max - 1 - MARK_ROOM : SIZE_MAX;
    /* what fits whole, in order; then the message gets what is left */
    used = 1 + tlen;
    for (int k = 0; k < nm; k++) {
        m[k].keep = m[k].nval && !m[k].big && used + 1 + m[k].len <= budget;
        if (m[k].keep)
            used += 1 + m[k].len;
        else
            drop += m[k].nval;
    }
    ml = snprintf(mark, sizeof mark, ",\"truncated\":%d}", drop);
    if (max)
        budget = max - (size_t)ml;   /* the exact mark: more message */
    if (lp_buf_reserve(out, max ? max : total + MARK_ROOM) < 0)
        goto out;
    lp_buf_addc(out, '{');
    lp_buf_add(out, ts, tlen);
    for (int k = 0; k < nm; k++) {
        if (m[k].keep) {
            lp_buf_addc(out, ',');
            lp_buf_add(out, sc->p + m[k].start, m[k].len);
            continue;
        }
        if (k == R_MESSAGE && m[k].nval && used + 1 < budget) {
            const struct fld *mf = &f[m[k].first];
            int part = max && mf->nlen + 1 + mf->vlen >= max + SLACK;
            if (is_text(mf->val, mf->vlen, part)) {
                size_t at = out->len;
                int rc;
                lp_buf_addc(out, ',');
                rc = add_cut_message(out, mf->val, mf->vlen,
                                     budget - used - 1);
                if (rc < 0)
                    goto out;
                if (rc == 0)
                    out->len = at;
            }
        }
    }
    if (lp_buf_add(out, mark, (size_t)ml) < 0)
        goto out;
    *dropped = drop;
    kind = LP_JENTRY_CUT;
done:
    /* a NUL after the event, not counted, for callers that want one */
    if (lp_buf_addc(out, 0) < 0)
        kind = -1;
    else
        out->len--;
out:
    free(f);
    free(m);
    return kind;
}

int lp_jsource_format(struct lp_buf *out, uint64_t realtime_us,
                      const struct lp_jfield *f, size_t n, size_t max_event,
                      int *dropped)
{
    struct lp_buf sc = { 0 };
    int rc = format(out, &sc, realtime_us, f, n, max_event, 0, dropped);

    lp_buf_free(&sc);
    return rc;
}

/* ---- the journal ------------------------------------------------------- */

struct lp_jsource {
    sd_journal *j;
    size_t max;
    char *after;                /* the cursor to pass, until the first entry */
    char *cursor;               /* the last entry's */
    char *start;                /* from_end: the last entry at open */
    struct lp_buf raw;          /* the entry's fields, copied */
    struct { size_t off, len; } *at;
    size_t nat, capat;
    struct lp_jfield *fields;   /* capat of them too */
    struct lp_buf out, sc;
};

static void sd_err(char *err, const char *what, int r)
{
    snprintf(err, LP_ERRLEN, "%s: %s", what, strerror(r < 0 ? -r : r));
}

struct lp_jsource *lp_jsource_new(const struct lp_jsource_conf *c, char *err)
{
    struct lp_jsource *j = calloc(1, sizeof *j);
    char what[LP_ERRLEN];
    int r;

    if (j == NULL) {
        sd_err(err, "journal", ENOMEM);
        return NULL;
    }
    j->max = c->max_event;
    if (c->dir) {
        r = sd_journal_open_directory(&j->j, c->dir, 0);
        snprintf(what, sizeof what, "--journal-dir %s", c->dir);
    } else {
        r = sd_journal_open(&j->j, SD_JOURNAL_LOCAL_ONLY);
        snprintf(what, sizeof what, "journal");
    }
    if (r < 0) {
        j->j = NULL;
        sd_err(err, what, r);
        goto fail;
    }
    /* the watch is made now, before the first read, so that nothing
     * added in between is missed */
    if ((r = sd_journal_get_fd(j->j)) < 0) {
        sd_err(err, what, r);
        goto fail;
    }
    r = sd_journal_set_data_threshold(j->j, j->max ? j->max + SLACK : 0);
    if (r < 0) {
        sd_err(err, "journal", r);
        goto fail;
    }
    for (int i = 0; i < c->nmatch; i++) {
        const char *s = c->match[i], *eq = strchr(s, '=');
        if (eq == NULL || eq == s) {
            snprintf(err, LP_ERRLEN, "--journal-match %s: not FIELD=VALUE",
                     s);
            goto fail;
        }
        if ((r = sd_journal_add_match(j->j, s, 0)) < 0) {
            snprintf(what, sizeof what, "--journal-match %s", s);
            sd_err(err, what, r);
            goto fail;
        }
    }
    if (c->cursor) {
        if ((j->after = strdup(c->cursor)) == NULL) {
            sd_err(err, "journal", ENOMEM);
            goto fail;
        }
        r = sd_journal_seek_cursor(j->j, c->cursor);
    } else if (c->from_end) {
        r = sd_journal_seek_tail(j->j);
        /* on the last entry: the next one is the first added later. No
         * entry yet (no file, or none matches): everything that comes is
         * new, and after a seek to the tail sd-journal would give only
         * the last entry of a file that appears: from the head, then */
        if (r >= 0)
            r = sd_journal_previous(j->j);
        if (r > 0 && sd_journal_get_cursor(j->j, &j->start) < 0)
            j->start = NULL;    /* not said: a caller that needs it fails */
        if (r == 0)
            r = sd_journal_seek_head(j->j);
    } else {
        r = sd_journal_seek_head(j->j);
    }
    if (r < 0) {
        sd_err(err, c->cursor ? "journal cursor" : "journal", r);
        goto fail;
    }
    return j;
fail:
    lp_jsource_free(j);
    return NULL;
}

void lp_jsource_free(struct lp_jsource *j)
{
    if (j == NULL)
        return;
    if (j->j)
        sd_journal_close(j->j);
    free(j->after);
    free(j->cursor);
    free(j->start);
    free(j->at);
    free(j->fields);
    lp_buf_free(&j->raw);
    lp_buf_free(&j->out);
    lp_buf_free(&j->sc);
    free(j);
}

/* Copies the current entry's fields (at most max + SLACK bytes of each).
 * Returns the number of fields it could not read (a damaged entry), or -1
 * when out of memory. */
static int copy_fields(struct lp_jsource *j)
{
    const void *d;
    size_t l;
    int r, lost = 0;

    j->raw.len = 0;
    j->nat = 0;
    sd_journal_restart_data(j->j);
    while ((r = sd_journal_enumerate_data(j->j, &d, &l)) != 0) {
        if (r < 0) {
            /* a field that cannot be read (damaged, or compressed in a
             * way this libsystemd does not know): counted as lost; asking
             * again would give the same error, so the fields after it
             * are out of reach */
            lost++;
            break;
        }
        if (j->max && l > j->max + SLACK)
            l = j->max + SLACK;
        if (j->nat == j->capat) {
            size_t cap = j->capat ? j->capat * 2 : 64;
            void *p = realloc(j->at, cap * sizeof *j->at);
            if (p == NULL)
                return -1;
            j->at = p;
            p = realloc(j->fields, cap * sizeof *j->fields);
            if (p == NULL)
                return -1;
            j->fields = p;
            j->capat = cap;
        }
        j->at[j->nat].off = j->raw.len;
        j->at[j->nat].len = l;
        if (lp_buf_add(&j->raw, d, l) < 0)
            return -1;
        j->nat++;
    }
    for (size_t i = 0; i < j->nat; i++) {
        j->fields[i].p = j->raw.p + j->at[i].off;
        j->fields[i].len = j->at[i].len;
    }
    return lost;
}

const char *lp_jsource_start(const struct lp_jsource *j, int *head)
{
    *head = j->start == NULL && j->after == NULL;
    return j->start;
}

int lp_jsource_next(struct lp_jsource *j, struct lp_jentry *e, char *err)
{
    uint64_t us;
    int r, lost, kind;

    for (;;) {
        r = sd_journal_next(j->j);
        if (r < 0) {
            sd_err(err, "journal", r);
            return -1;
        }
        if (r == 0)
            return 0;
        if (j->after == NULL)
            break;
        /* the first entry after a seek to a cursor: the cursor's own
         * entry is passed; when it is gone, this is the next one */
        r = sd_journal_test_cursor(j->j, j->after);
        free(j->after);
        j->after = NULL;
        if (r <= 0)
            break;
    }
    free(j->cursor);
    j->cursor = NULL;
    if ((r = sd_journal_get_cursor(j->j, &j->cursor)) < 0) {
        sd_err(err, "journal cursor", r);
        return -1;
    }
    if ((r = sd_journal_get_realtime_usec(j->j, &us)) < 0) {
        snprintf(err, LP_ERRLEN, "journal entry %s: %s", j->cursor,
                 strerror(-r));
        return -1;
    }
    if ((lost = copy_fields(j)) < 0)
        goto oom;
    kind = format(&j->out, &j->sc, us, j->fields, j->nat, j->max, lost,
                  &e->dropped);
    if (kind < 0)
        goto oom;
    e->kind = kind;
    e->event = kind == LP_JENTRY_SKIPPED ? NULL : j->out.p;
    e->len = kind == LP_JENTRY_SKIPPED ? 0 : j->out.len;
    e->cursor = j->cursor;
    e->realtime_us = us;
    return 1;
oom:
    sd_err(err, "journal", ENOMEM);
    return -1;
}

int lp_jsource_fd(const struct lp_jsource *j)
{
    return sd_journal_get_fd(j->j);
}

short lp_jsource_events(const struct lp_jsource *j)
{
    int ev = sd_journal_get_events(j->j);
    return (short)(ev < 0 ? 0 : ev);
}

int lp_jsource_timeout(const struct lp_jsource *j)
{
    uint64_t t;
    struct timespec now;

    if (sd_journal_get_timeout(j->j, &t) < 0 || t == UINT64_MAX)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t n = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
    if (t <= n)
        return 0;
    t = (t - n + 999) / 1000;
    return t > INT32_MAX ? INT32_MAX : (int)t;
}

int lp_jsource_process(struct lp_jsource *j, char *err)
{
    int r = sd_journal_process(j->j);

    if (r < 0) {
        sd_err(err, "journal", r);
        return -1;
    }
    return r != SD_JOURNAL_NOP;
}

int lp_jsource_wait(struct lp_jsource *j, int timeout_ms, char *err)
{
    int r = sd_journal_wait(j->j, timeout_ms < 0 ? (uint64_t)-1 :
                            (uint64_t)timeout_ms * 1000);

    if (r == -EINTR)
        return 0;
    if (r < 0) {
        sd_err(err, "journal", r);
        return -1;
    }
    return r != SD_JOURNAL_NOP;
}
