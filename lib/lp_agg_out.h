/* lp_agg_out.h -- agg's output: closed buckets as NDJSON or SQL upserts */
#ifndef LP_AGG_OUT_H
#define LP_AGG_OUT_H

/*
 * What the agg engine (lp_agg.h) prints, in one of two formats behind one
 * interface: NDJSON, a line per group; or SQL that sqlite3 and psql both
 * apply as it is (lp_sql.h): a CREATE TABLE IF NOT EXISTS first, then per
 * bucket one transaction of upserts of absolute values (INSERT ... ON
 * CONFLICT DO UPDATE, 500 rows a statement), so that applying it twice
 * changes nothing. Output is buffered and written to conf.fd: at the end
 * of each bucket that had a row (an alert must not wait for the next
 * bucket), and whenever a MiB has gathered.
 */

#include <stddef.h>
#include <stdint.h>

#include "lp_agg.h"
#include "lp_buf.h"

/* One group of a bucket, as the engine hands it over (all borrowed). */
struct lp_agg_row {
    int64_t start;              /* the bucket's, ms since the epoch, UTC */
    const char *val[LP_AGG_MAXBY];      /* conf.by values; NULL: null */
    size_t len[LP_AGG_MAXBY];
    uint64_t count;
    const double *agg;          /* the sums, then the maxima; not finite:
                                 * null */
};

struct lp_agg_fmt;

struct lp_agg_out {
    const struct lp_agg_conf *c;        /* borrowed */
    const struct lp_agg_fmt *fmt;       /* NDJSON or SQL, from c->sql */
    struct lp_buf buf;                  /* not written yet */
    size_t rows;                        /* of the bucket in hand */
    int nomem;                          /* an append failed */
};

/* Sets o up for c (borrowed for o's life); allocates nothing. */
void lp_agg_out_init(struct lp_agg_out *o, const struct lp_agg_conf *c);

/* Writes what the output starts with (SQL: the CREATE TABLE). Returns
 * LP_AGG_OK, or LP_AGG_NOMEM, _EPIPE or _WRITE with err. */
int lp_agg_out_start(struct lp_agg_out *o, char *err);

/* Adds r, a row of the bucket in hand (its groups in their order).
 * Returns as lp_agg_out_start. */
int lp_agg_out_row(struct lp_agg_out *o, const struct lp_agg_row *r,
                   char *err);

/* Ends the bucket in hand (SQL: its COMMIT) and writes it when it had a
 * row. Returns as lp_agg_out_start. */
int lp_agg_out_end(struct lp_agg_out *o, char *err);

/* Writes what is buffered. Returns as lp_agg_out_start. */
int lp_agg_out_flush(struct lp_agg_out *o, char *err);

/* Frees the buffer; o may be set up again. */
void lp_agg_out_free(struct lp_agg_out *o);

#endif
