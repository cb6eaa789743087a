/* lp_sql.h -- SQL text that sqlite3 and psql both apply as it is */
#ifndef LP_SQL_H
#define LP_SQL_H

#include <stddef.h>

#include "lp_buf.h"
#include "lp_json.h"

/* 1 when name is a plain identifier, [A-Za-z_][A-Za-z0-9_]* of at most
 * 63 bytes (PostgreSQL's limit), that needs no quoting; else 0. */
int lp_sql_ident_ok(const char *name);

/*
 * Appends s[0..n) as a string literal: single quotes doubled, and what a
 * database refuses in text made harmless: NUL bytes and bytes that are not
 * valid UTF-8 (lone surrogates among them) become U+FFFD. Backslashes are
 * plain characters in both dialects (standard_conforming_strings is on
 * since PostgreSQL 9.1). A CR before a LF ends the literal, which goes on
 * concatenated ('a\r' || '\nb'): the sqlite3 shell drops a CR at the end
 * of a line, even inside a literal. Returns 0 or -1 (out of memory).
 */
int lp_sql_add_str(struct lp_buf *b, const char *s, size_t n);

/*
 * Appends the JSON value v of s as a literal: a string's decoded text, any
 * other value (number, true, object...) as its JSON text, and NULL for
 * null or an absent member (v NULL or LP_JNONE). tmp is scratch space
 * for decoding, reused across calls. Returns 0 or -1 (out of memory).
 */
int lp_sql_add_jval(struct lp_buf *b, struct lp_buf *tmp, const char *s,
                    const struct lp_jval *v);

/*
 * Appends the JSON text s[0..n) as a literal, with the escape \u0000
 * written \ufffd: PostgreSQL's JSONB refuses \u0000, and a batch it
 * refuses would be tried again forever. tmp is scratch space. Returns 0
 * or -1 (out of memory).
 */
int lp_sql_add_json(struct lp_buf *b, struct lp_buf *tmp, const char *s,
                    size_t n);

#endif
