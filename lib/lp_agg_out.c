/* lp_agg_out.c -- agg's output: closed buckets as NDJSON or SQL upserts */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lp_agg_out.h"
#include "lp_fs.h"
#include "lp_parse.h"           /* LP_ERRLEN */
#include "lp_sql.h"
#include "lp_time.h"

#define SQL_ROWS 500            /* rows per INSERT statement */
#define FLUSH_AT (1 << 20)      /* bytes buffered before a write */

/* A format: what the output starts with, one row, the end of a bucket. */
struct lp_agg_fmt {
    void (*start)(struct lp_agg_out *o);
    void (*row)(struct lp_agg_out *o, const struct lp_agg_row *r);
    void (*end)(struct lp_agg_out *o);
};

/* ---- appending: a failure is remembered, said once by the caller ------ */

static void add(struct lp_agg_out *o, const char *p, size_t n)
{
    if (lp_buf_add(&o->buf, p, n) < 0)
        o->nomem = 1;
}

static void adds(struct lp_agg_out *o, const char *s)
{
    add(o, s, strlen(s));
}

/* A double as %.17g (exact), or null when it is not finite. */
static void add_num(struct lp_agg_out *o, double d, const char *null)
{
    char t[40];

    if (!isfinite(d)) {
        adds(o, null);
        return;
    }
    snprintf(t, sizeof t, "%.17g", d);
    adds(o, t);
}

static void add_u64(struct lp_agg_out *o, uint64_t v)
{
    if (lp_buf_addu(&o->buf, v) < 0)
        o->nomem = 1;
}

/* An identifier, double-quoted: a member called user or order is a SQL
 * keyword; names are [A-Za-z_][A-Za-z0-9_]*, so nothing needs escaping. */
static void add_ident(struct lp_agg_out *o, const char *prefix,
                      const char *name)
{
    adds(o, "\"");
    adds(o, prefix);
    adds(o, name);
    adds(o, "\"");
}

/* "2026-11-22T10:00:00Z" */
static void add_bucket(struct lp_agg_out *o, int64_t start, int quote)
{
    struct lp_tm tm;
    char t[40];

    lp_time_tm(start, &tm);
    snprintf(t, sizeof t, "%c%04d-%02d-%02dT%02d:%02d:%02dZ%c",
             quote, tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec,
             quote);
    adds(o, t);
}

/* ---- NDJSON ------------------------------------------------------------- */

static void nd_row(struct lp_agg_out *o, const struct lp_agg_row *r)
{
    const struct lp_agg_conf *c = o->c;
    int nagg = c->sum.n + c->max.n;

    adds(o, "{\"bucket\":");
    add_bucket(o, r->start, '"');
    for (int i = 0; i < c->by.n; i++) {
        adds(o, ",\"");
        adds(o, c->by.item[i]);
        adds(o, "\":");
        if (r->val[i] == NULL)
            adds(o, "null");
        else if (lp_buf_add_jstr(&o->buf, r->val[i], r->len[i]) < 0)
            o->nomem = 1;
    }
    adds(o, ",\"count\":");
    add_u64(o, r->count);
    for (int i = 0; i < nagg; i++) {
        adds(o, i < c->sum.n ? ",\"sum_" : ",\"max_");
        adds(o, i < c->sum.n ? c->sum.item[i] : c->max.item[i - c->sum.n]);
        adds(o, "\":");
        add_num(o, r->agg[i], "null");
    }
    adds(o, "}\n");
}

static const struct lp_agg_fmt ndjson = { NULL, nd_row, NULL };

/* ---- SQL ---------------------------------------------------------------- */

/* The column list "bucket", "a", ..., "count", "sum_m", ..., "max_m" */
static void sql_columns(struct lp_agg_out *o, int keys_only)
{
    const struct lp_agg_conf *c = o->c;

    add_ident(o, "", "bucket");
    for (int i = 0; i < c->by.n; i++) {
        adds(o, ", ");
        add_ident(o, "", c->by.item[i]);
    }
    if (keys_only)
        return;
    adds(o, ", ");
    add_ident(o, "", "count");
    for (int i = 0; i < c->sum.n; i++) {
        adds(o, ", ");
        add_ident(o, "sum_", c->sum.item[i]);
    }
    for (int i = 0; i < c->max.n; i++) {
        adds(o, ", ");
        add_ident(o, "max_", c->max.item[i]);
    }
}

static void sql_create(struct lp_agg_out *o)
{
    const struct lp_agg_conf *c = o->c;

    adds(o, "CREATE TABLE IF NOT EXISTS ");
    add_ident(o, "", c->sql);
    adds(o, " (\"bucket\" TEXT NOT NULL");
    for (int i = 0; i < c->by.n; i++) {
        adds(o, ", ");
        add_ident(o, "", c->by.item[i]);
        adds(o, " TEXT NOT NULL DEFAULT ''");
    }
    adds(o, ", \"count\" BIGINT NOT NULL");
    for (int i = 0; i < c->sum.n; i++) {
        adds(o, ", ");
        add_ident(o, "sum_", c->sum.item[i]);
        adds(o, " DOUBLE PRECISION");
    }
    for (int i = 0; i < c->max.n; i++) {
        adds(o, ", ");
        add_ident(o, "max_", c->max.item[i]);
        adds(o, " DOUBLE PRECISION");
    }
    adds(o, ", PRIMARY KEY (");
    sql_columns(o, 1);
    adds(o, "));\n");
}

static void sql_insert_head(struct lp_agg_out *o)
{
    adds(o, "INSERT INTO ");
    add_ident(o, "", o->c->sql);
    adds(o, " (");
    sql_columns(o, 0);
    adds(o, ") VALUES\n");
}

static void sql_insert_tail(struct lp_agg_out *o)
{
    const struct lp_agg_conf *c = o->c;

    adds(o, "\nON CONFLICT (");
    sql_columns(o, 1);
    adds(o, ") DO UPDATE SET \"count\" = excluded.\"count\"");
    for (int i = 0; i < c->sum.n; i++) {
        adds(o, ", ");
        add_ident(o, "sum_", c->sum.item[i]);
        adds(o, " = excluded.");
        add_ident(o, "sum_", c->sum.item[i]);
    }
    for (int i = 0; i < c->max.n; i++) {
        adds(o, ", ");
        add_ident(o, "max_", c->max.item[i]);
        adds(o, " = excluded.");
        add_ident(o, "max_", c->max.item[i]);
    }
    adds(o, ";\n");
}

/* A row of VALUES; the bucket's first opens its transaction, every
 * SQL_ROWS-th a new INSERT. A null by value is '' (the key's column is
 * NOT NULL DEFAULT ''; the engine grouped it with ""). */
static void sql_row(struct lp_agg_out *o, const struct lp_agg_row *r)
{
    const struct lp_agg_conf *c = o->c;
    int nagg = c->sum.n + c->max.n;

    if (o->rows == 0)
        adds(o, "BEGIN;\n");
    if (o->rows % SQL_ROWS == 0) {
        if (o->rows)
            sql_insert_tail(o);
        sql_insert_head(o);
    } else {
        adds(o, ",\n");
    }
    adds(o, "(");
    add_bucket(o, r->start, '\'');
    for (int i = 0; i < c->by.n; i++) {
        adds(o, ", ");
        if (lp_sql_add_str(&o->buf, r->val[i] ? r->val[i] : "",
                           r->len[i]) < 0)
            o->nomem = 1;
    }
    adds(o, ", ");
    add_u64(o, r->count);
    for (int i = 0; i < nagg; i++) {
        adds(o, ", ");
        add_num(o, r->agg[i], "NULL");
    }
    adds(o, ")");
}

static void sql_end(struct lp_agg_out *o)
{
    if (o->rows == 0)
        return;
    sql_insert_tail(o);
    adds(o, "COMMIT;\n");
}

static const struct lp_agg_fmt sql = { sql_create, sql_row, sql_end };

/* ---- the interface ------------------------------------------------------ */

void lp_agg_out_init(struct lp_agg_out *o, const struct lp_agg_conf *c)
{
    memset(o, 0, sizeof *o);
    o->c = c;
    o->fmt = c->sql ? &sql : &ndjson;
}

int lp_agg_out_flush(struct lp_agg_out *o, char *err)
{
    if (o->nomem) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_AGG_NOMEM;
    }
    if (o->buf.len == 0)
        return LP_AGG_OK;
    if (lp_fs_write_all(o->c->fd, o->buf.p, o->buf.len) < 0) {
        snprintf(err, LP_ERRLEN, "%s: %s", o->c->fd_name, strerror(errno));
        return errno == EPIPE ? LP_AGG_EPIPE : LP_AGG_WRITE;
    }
    o->buf.len = 0;
    return LP_AGG_OK;
}

int lp_agg_out_start(struct lp_agg_out *o, char *err)
{
    if (o->fmt->start == NULL)
        return LP_AGG_OK;
    o->fmt->start(o);
    return lp_agg_out_flush(o, err);
}

int lp_agg_out_row(struct lp_agg_out *o, const struct lp_agg_row *r,
                   char *err)
{
    o->fmt->row(o, r);
    o->rows++;
    if (o->nomem || o->buf.len >= FLUSH_AT)
        return lp_agg_out_flush(o, err);
    return LP_AGG_OK;
}

int lp_agg_out_end(struct lp_agg_out *o, char *err)
{
    size_t rows = o->rows;

    if (o->fmt->end)
        o->fmt->end(o);
    o->rows = 0;
    /* each bucket at once: an alert must not wait for the next one */
    if (rows || o->nomem)
        return lp_agg_out_flush(o, err);
    return LP_AGG_OK;
}

void lp_agg_out_free(struct lp_agg_out *o)
{
    lp_buf_free(&o->buf);
}
