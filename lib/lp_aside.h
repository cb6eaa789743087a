/* lp_aside.h -- questions to Redis that an event loop never waits for */
#ifndef LP_ASIDE_H
#define LP_ASIDE_H

#include <stddef.h>
#include <stdint.h>

#include "lp_redis.h"

/*
 * A connection of its own for the small questions of a loop that must
 * not wait on Redis (logpipe-http: an Idempotency-Key's field, the
 * pruning's HSCAN, --max-backlog's lag): a command is written at once and
 * its reply handed to a callback when it comes, from lp_aside_ready,
 * which the loop calls when lp_aside_fd is readable. Replies come in
 * order, so the callbacks wait in a FIFO, bounded (max_pending): a
 * question over it is refused at once rather than queued without bound.
 *
 * A question not answered within the timeout fails, with every other
 * one in flight (their connection is closed: a late reply could not be
 * told from the next one's); so does every one when the connection
 * fails. Connecting blocks (up to the connection's timeout): the loop
 * does it when it knows Redis answers (after the engine's own connection
 * was made), never per question.
 */
struct lp_aside;

/* rep is the reply (an error reply too), borrowed for the call; NULL with
 * err when there is none (I/O error, timeout, closed). */
typedef void lp_aside_fn(void *ctx, const struct lp_reply *rep,
                         const char *err);

/* Takes r (its URL, password and TLS set; connected or not). timeout_ms:
 * how long a question may wait for its reply. NULL when out of memory
 * (r is freed). */
struct lp_aside *lp_aside_new(struct lp_redis *r, size_t max_pending,
                              int64_t timeout_ms);
/* Fails the questions in flight (their callbacks say "stopping"), closes
 * and frees. Accepts NULL. */
void lp_aside_free(struct lp_aside *a);

/* Connects (blocking) when not connected. 0 or LP_REDIS_E* with err. */
int lp_aside_connect(struct lp_aside *a, char *err);
int lp_aside_connected(const struct lp_aside *a);

/* Asks: 0 (fn is called later, from lp_aside_ready or lp_aside_tick, or
 * from lp_aside_free), or -1 with err and fn never called (not connected,
 * max_pending in flight, the write failed: then the others fail too). */
int lp_aside_cmdv(struct lp_aside *a, int argc, const char **argv,
                  const size_t *lens, lp_aside_fn *fn, void *ctx, char *err);

/* The descriptor to poll for reading while connected (-1: not): replies,
 * or the server closing an idle connection. */
int lp_aside_fd(const struct lp_aside *a);
/* Questions in flight. */
size_t lp_aside_pending(const struct lp_aside *a);

/* Reads what came (the fd is readable: one read, no wait) and calls back
 * for every whole reply. */
void lp_aside_ready(struct lp_aside *a);

/* Milliseconds until the oldest question times out (0: now), -1 with none
 * in flight. */
int64_t lp_aside_due(const struct lp_aside *a);
/* Fails every question when the oldest is past its timeout. */
void lp_aside_tick(struct lp_aside *a);

/* The questions asked with ctx get no callback any more (their replies
 * are read and dropped): for a ctx that goes away first. */
void lp_aside_forget(struct lp_aside *a, void *ctx);

#endif
