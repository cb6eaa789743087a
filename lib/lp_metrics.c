/* lp_metrics.c -- Prometheus text format metrics, written atomically */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_fs.h"
#include "lp_metrics.h"
#include "lp_notice.h"
#include "lp_parse.h"
#include "lp_time.h"

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct lp_metric {
    int kind;
    char *name, *labels, *help;
    double value;               /* counter, gauge; histogram: sum */
    const uint64_t *src;        /* lp_counter_of: the value is *src */
    double *bounds;
    uint64_t *counts;           /* per bucket, then +Inf */
    int nbounds;
    uint64_t count;
};

struct lp_metrics {
    struct lp_metric **v;
    int n, cap;
    int64_t next;               /* monotonic ms of the next periodic write */
    int warned;                 /* a failed write was said */
    struct lp_notify nt;        /* where it is said */
    char *label;                /* lp_metrics_label's, NULL: none */
};

const double lp_seconds_buckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
const int lp_seconds_nbuckets = (int)(sizeof lp_seconds_buckets /
                                      sizeof lp_seconds_buckets[0]);

struct lp_metrics *lp_metrics_new(const struct lp_notify *nt)
{
    struct lp_metrics *m = calloc(1, sizeof *m);

    if (m && nt)
        m->nt = *nt;
    return m;
}

int lp_metrics_label(struct lp_metrics *m, const char *label)
{
    char *l = m ? strdup(label) : NULL;

    if (l == NULL)
        return -1;
    free(m->label);
    m->label = l;
    return 0;
}

void lp_metrics_free(struct lp_metrics *m)
{
    if (m == NULL)
        return;
    free(m->label);
    for (int i = 0; i < m->n; i++) {
        free(m->v[i]->name);
        free(m->v[i]->labels);
        free(m->v[i]->help);
        free(m->v[i]->bounds);
        free(m->v[i]->counts);
        free(m->v[i]);
    }
    free(m->v);
    free(m);
}

static struct lp_metric *add(struct lp_metrics *m, int kind,
                             const char *name, const char *labels,
                             const char *help)
{
    struct lp_metric *x;

    if (m == NULL)
        return NULL;
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 32;
        struct lp_metric **v = realloc(m->v, (size_t)cap * sizeof *v);
        if (v == NULL)
            return NULL;
        m->v = v;
        m->cap = cap;
    }
    if ((x = calloc(1, sizeof *x)) == NULL)
        return NULL;
    x->kind = kind;
    x->name = strdup(name);
    x->labels = strdup(labels ? labels : "");
    x->help = strdup(help ? help : "");
    if (x->name == NULL || x->labels == NULL || x->help == NULL) {
        free(x->name);
        free(x->labels);
        free(x->help);
        free(x);
        return NULL;
    }
    m->v[m->n++] = x;
    return x;
}

struct lp_metric *lp_counter(struct lp_metrics *m, const char *name,
                             const char *labels, const char *help)
{
    return add(m, M_COUNTER, name, labels, help);
}

struct lp_metric *lp_counter_of(struct lp_metrics *m, const char *name,
                                const char *labels, const char *help,
                                const uint64_t *src)
{
    struct lp_metric *x = add(m, M_COUNTER, name, labels, help);

    if (x)
        x->src = src;
    return x;
}

/* A counter's value: its own, or the one it reads */
static double value_of(const struct lp_metric *c)
{
    return c->src ? (double)*c->src : c->value;
}

struct lp_metric *lp_gauge(struct lp_metrics *m, const char *name,
                           const char *labels, const char *help)
{
    return add(m, M_GAUGE, name, labels, help);
}

struct lp_metric *lp_histogram(struct lp_metrics *m, const char *name,
                               const char *labels, const char *help,
                               const double *bounds, int nbounds)
{
    struct lp_metric *x = add(m, M_HISTOGRAM, name, labels, help);

    if (x == NULL)
        return NULL;
    x->bounds = malloc((size_t)nbounds * sizeof *x->bounds);
    x->counts = calloc((size_t)nbounds + 1, sizeof *x->counts);
    if (x->bounds == NULL || x->counts == NULL) {
        free(x->bounds);
        free(x->counts);
        x->bounds = NULL;
        x->counts = NULL;
        x->kind = M_GAUGE;      /* degrade rather than crash */
        return x;
    }
    memcpy(x->bounds, bounds, (size_t)nbounds * sizeof *bounds);
    x->nbounds = nbounds;
    return x;
}

void lp_metric_add(struct lp_metric *c, double v)
{
    if (c)
        c->value += v;
}

void lp_metric_set(struct lp_metric *g, double v)
{
    if (g)
        g->value = v;
}

double lp_metric_value(const struct lp_metric *c)
{
    return c ? value_of(c) : 0;
}

void lp_metric_observe(struct lp_metric *h, double v)
{
    int i;

    if (h == NULL || h->kind != M_HISTOGRAM)
        return;
    for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
        ;
    h->counts[i]++;
    h->count++;
    h->value += v;
}

static void num(struct lp_buf *b, double v)
{
    char t[64];

    if (isinf(v))
        snprintf(t, sizeof t, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        snprintf(t, sizeof t, "NaN");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(t, sizeof t, "%.0f", v);
    else {
        /* the shortest of 15 or 17 digits that reads back the same: a
         * Unix time in seconds keeps its milliseconds */
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(t, sizeof t, "%.*g", digits, v);
            if (strtod(t, NULL) == v)
                break;
        }
    }
    lp_buf_adds(b, t);
}

/* name{m's label,labels,extra} */
static void series(struct lp_buf *b, const struct lp_metrics *m,
                   const char *name, const char *suffix,
                   const char *labels, const char *extra)
{
    lp_buf_adds(b, name);
    lp_buf_adds(b, suffix);
    if (*labels || (extra && *extra) || m->label) {
        lp_buf_addc(b, '{');
        if (m->label) {
            lp_buf_adds(b, m->label);
            if (*labels || (extra && *extra))
                lp_buf_addc(b, ',');
        }
        lp_buf_adds(b, labels);
        if (*labels && extra && *extra)
            lp_buf_addc(b, ',');
        if (extra)
            lp_buf_adds(b, extra);
        lp_buf_addc(b, '}');
    }
    lp_buf_addc(b, ' ');
}

char *lp_metrics_render(struct lp_metrics *m)
{
    struct lp_buf b = { 0 };
    static const char *types[] = { "counter", "gauge", "histogram" };

    for (int i = 0; m && i < m->n; i++) {
        struct lp_metric *x = m->v[i];
        int first = 1;
        /* HELP and TYPE once per name, before its first series */
        for (int j = 0; j < i; j++)
            if (strcmp(m->v[j]->name, x->name) == 0)
                first = 0;
        if (first) {
            lp_buf_adds(&b, "# HELP ");
            lp_buf_adds(&b, x->name);
            lp_buf_addc(&b, ' ');
            lp_buf_adds(&b, x->help);
            lp_buf_adds(&b, "\n# TYPE ");
            lp_buf_adds(&b, x->name);
            lp_buf_addc(&b, ' ');
            lp_buf_adds(&b, types[x->kind]);
            lp_buf_addc(&b, '\n');
            /* every series of this name right after */
            for (int j = i; j < m->n; j++) {
                struct lp_metric *y = m->v[j];
                if (strcmp(y->name, x->name) != 0)
                    continue;
                if (y->kind != M_HISTOGRAM) {
                    series(&b, m, y->name, "", y->labels, NULL);
                    num(&b, value_of(y));
                    lp_buf_addc(&b, '\n');
                    continue;
                }
                uint64_t cum = 0;
                for (int k = 0; k <= y->nbounds; k++) {
                    char le[48];
                    cum += y->counts[k];
                    if (k < y->nbounds)
                        snprintf(le, sizeof le, "le=\"%.9g\"", y->bounds[k]);
                    else
                        snprintf(le, sizeof le, "le=\"+Inf\"");
                    series(&b, m, y->name, "_bucket", y->labels, le);
                    num(&b, (double)cum);
                    lp_buf_addc(&b, '\n');
                }
                series(&b, m, y->name, "_sum", y->labels, NULL);
                num(&b, y->value);
                lp_buf_addc(&b, '\n');
                series(&b, m, y->name, "_count", y->labels, NULL);
                num(&b, (double)y->count);
                lp_buf_addc(&b, '\n');
            }
        }
    }
    if (lp_buf_addc(&b, '\0') < 0) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

int lp_metrics_write(struct lp_metrics *m, const char *path, char *err)
{
    char *text = lp_metrics_render(m);
    int rc;

    if (text == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    rc = lp_metrics_write_text(path, text, err);
    free(text);
    return rc;
}

int lp_metrics_write_text(const char *path, const char *text, char *err)
{
    char tmp[4200];
    int fd;

    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    /* a fresh file (never through a link left there), readable by the
     * collector whatever the umask: metrics hold counts, not events */
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0644);
    if (fd >= 0)
        fchmod(fd, 0644);
    if (fd < 0) {
        snprintf(err, LP_ERRLEN, "--metrics %s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = lp_fs_write_all(fd, text, strlen(text)) < 0;
    int e = errno;
    bad |= close(fd) < 0;
    if (!bad && rename(tmp, path) < 0) {
        e = errno;
        bad = 1;
    }
    if (bad) {
        snprintf(err, LP_ERRLEN, "--metrics %s: %s", path, strerror(e));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void lp_metrics_tick(struct lp_metrics *m, const char *path,
                     int64_t interval_ms, int force)
{
    char err[LP_ERRLEN];
    int64_t now;

    if (m == NULL || path == NULL)
        return;
    now = lp_mono_ms();
    if (!force && now < m->next)
        return;
    m->next = now + interval_ms;
    if (lp_metrics_write(m, path, err) < 0 && !m->warned) {
        lp_notice(&m->nt, LP_NOTICE_WARN, "%s", err);
        m->warned = 1;
    }
}
