/* lp_jq.h -- user-supplied jq 1.6 programs (--where), compiled once */
#ifndef LP_JQ_H
#define LP_JQ_H

#include <stddef.h>
#include <stdint.h>

struct lp_jq;

/* Compiles prog. Returns 0, or -1 with err (LP_ERRLEN) holding jq's
 * message: the caller exits 78. */
int lp_jq_new(const char *prog, struct lp_jq **out, char *err);
void lp_jq_free(struct lp_jq *q);

/*
 * Runs the program on one event (JSON text s[0..n)). Returns 1 when its
 * first output is neither false nor null, 0 when it is or there is none,
 * -1 with err on a runtime error. jq parses the event only to evaluate the
 * program; the event's bytes are never re-serialized.
 */
int lp_jq_match(struct lp_jq *q, const char *s, size_t n, char *err);

/*
 * Runs the program and writes its first output as text into out[0..cap):
 * a string as is, anything else as compact JSON. Returns the length, 0
 * when there is no output or it is null, -1 with err on a runtime error or
 * when it does not fit.
 */
long lp_jq_string(struct lp_jq *q, const char *s, size_t n, char *out,
                  size_t cap, char *err);

/*
 * A runtime error fails the run, in every tool alike: the first
 * LP_JQ_NAMED are said one by one, the rest counted, and at the end
 * lp_jq_status() tells the status.
 */
#define LP_JQ_NAMED 10
#define LP_JQ_NAMED_S "10"

/* After lp_jq_match or lp_jq_string returned -1: 1 while that error is
 * one of the first LP_JQ_NAMED (say it), 0 past them (count it only). */
int lp_jq_name_it(const struct lp_jq *q);

/*
 * After the runs of q: 0 when none ended in a runtime error (or q is
 * NULL). Otherwise msg (LP_ERRLEN) says "failed at run time on N of M
 * events" (and that the first ones were named, when not all were and
 * verbosity, the caller's -q (-1) or -v (> 0), had them said), and the
 * return is LP_EX_CONFIG (78) when every run failed (the program cannot
 * work on these events: a configuration to fix), LP_EX_DATAERR (65) when
 * some did.
 */
int lp_jq_status(const struct lp_jq *q, int verbosity, char *msg);

#endif
