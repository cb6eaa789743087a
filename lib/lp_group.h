/* lp_group.h -- a consumer of a Redis consumer group, as drain reads it */
#ifndef LP_GROUP_H
#define LP_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "lp_archive.h"
#include "lp_notice.h"
#include "lp_parse.h"
#include "lp_redis.h"

/*
 * Every Redis command and script of logpipe-drain's reading side, behind
 * a function named for what it does: make the group, read for the
 * consumer (its pending entries, claims, new entries), delivery counts,
 * giving a delivery back, the ack queue (XACK) and trimming. The consumer
 * name's heartbeat is lp_owner.c's; the move of an entry to the DLQ with
 * its XACK is lp_dlq.c's (it owns the dead letter record).
 *
 * Pipelining stays the caller's: a _queue_ function appends a command to
 * the connection and sends nothing (lp_redis_flush sends, lp_redis_reply
 * reads the answers in order, and the caller takes each); any other call
 * is one round trip. Errors: -1 with the caller's char err[LP_ERRLEN]
 * worded for the user; an error reply of Redis is handed to the caller
 * to judge with lp_reply_error_class. Nothing here prints or exits.
 */

struct lp_group;

/*
 * The consumer `consumer` of group `group` on stream `stream`, over the
 * connection r (borrowed; the strings too: they must outlive g). count:
 * the most entries one read asks for (room is made for its acks once,
 * here). nt (copied; NULL: silent) hears what lp_group_ensure says.
 * Returns NULL when out of memory.
 */
struct lp_group *lp_group_new(struct lp_redis *r, const char *stream,
                              const char *group, const char *consumer,
                              uint64_t count, const struct lp_notify *nt);
void lp_group_free(struct lp_group *g);

/* lp_group_ensure's result besides 1, 0 and -1 */
#define LP_GROUP_CONFIG (-2)

/*
 * Creates the group at the start of the stream (and the stream: XGROUP
 * CREATE ... 0 MKSTREAM). 1 when it was created (an info notice), 0 when
 * it existed (also when Redis, out of memory, refuses the create but
 * lists the group: a warning notice), -1 with err on an I/O error or a
 * refusal that may pass, LP_GROUP_CONFIG with err when Redis refuses it
 * for good (the key is no stream, the user may not).
 */
int lp_group_ensure(struct lp_group *g, char *err);

/* Where a read takes entries from (see lp_group_queue_read). */
enum { LP_GROUP_PENDING, LP_GROUP_CLAIM, LP_GROUP_NEW };

/*
 * How many of our pending entries after `after` ("0": from the first) to
 * read at once: up to count, but a read stops before the first entry
 * that, read now, reaches max_deliveries (that one is read alone; XPENDING
 * does not count as a delivery). 1 at least. -1 with err.
 */
long lp_group_pending_count(struct lp_group *g, const char *after,
                            uint64_t count, uint64_t max_deliveries,
                            char *err);

/*
 * Queues a read of count entries:
 *   LP_GROUP_PENDING  our pending entries after `from` ("0": all), again
 *                     (XREADGROUP ... from; counts a delivery);
 *   LP_GROUP_CLAIM    entries idle longer than idle_ms, from the
 *                     XAUTOCLAIM cursor `from` (JUSTID: ownership moves,
 *                     delivery counts do not); read them as PENDING next;
 *   LP_GROUP_NEW      new entries (XREADGROUP ... >), waiting up to
 *                     block_ms for them (< 0: not at all).
 * 0, or -1 with err when not connected. The reply is the caller's to read.
 */
int lp_group_queue_read(struct lp_group *g, int mode, const char *from,
                        long count, int64_t idle_ms, int64_t block_ms,
                        char *err);

/*
 * The answer to a CLAIM read: the next cursor (into cursor, cap bytes),
 * how many entries became ours, and the IDs Redis found deleted (an array
 * of strings in rep, borrowed; NULL when none). -1 when the answer has
 * another shape.
 */
int lp_group_claimed(const struct lp_reply *rep, char *cursor, size_t cap,
                     size_t *nclaimed, const struct lp_reply **deleted);

/*
 * Delivery counts of entries[0..n) (delivered before, ours now), from
 * XPENDING over their ID range, into deliv[0..n) (1 for an entry it does
 * not list). 0, or -1 with err.
 */
int lp_group_delivery_counts(struct lp_group *g,
                             const struct lp_reply *entries, size_t n,
                             unsigned *deliv, char *err);

/*
 * Which of entries[from..to) are no longer pending for us (another
 * consumer claimed them)? Their IDs go to drop (room for to - from), in
 * entry order, their number to *ndrop. 0, or -1 with err.
 */
int lp_group_not_ours(struct lp_group *g, const struct lp_reply *entries,
                      size_t from, size_t to, struct lp_sid *drop,
                      size_t *ndrop, char *err);

/* Is entry id still pending for us? 1 yes; 0 no, or Redis did not say. */
int lp_group_is_ours(struct lp_group *g, const char *id, size_t idlen);

/*
 * Gives back this delivery of entries[from..to): each entry still pending
 * for us gets the delivery count it had before this read, deliv[i] - 1
 * (deliv NULL: new entries, at their first), its idle time kept; entries
 * acknowledged, claimed by another or deleted meanwhile are left alone.
 * One script per 500 entries; connects once when the connection is gone.
 * Returns how many were given back, or -1 with err.
 */
long lp_group_give_back(struct lp_group *g, const struct lp_reply *entries,
                        size_t from, size_t to, const unsigned *deliv,
                        char *err);

/* The same for one entry, whose count becomes prev: 0 or -1 with err. */
int lp_group_give_back_one(struct lp_group *g, const char *id, size_t idlen,
                           unsigned prev, char *err);

/* ---- the ack queue: the IDs done with, acknowledged with the next read */

/* Adds id (borrowed: it must live until the XACK is queued). 0, or -1
 * when out of memory. */
int lp_group_ack_add(struct lp_group *g, const char *id, size_t idlen);

/* IDs added and not yet cleared. */
size_t lp_group_ack_count(const struct lp_group *g);

/* Takes the IDs in drop (sorted) off the queue. */
void lp_group_ack_drop(struct lp_group *g, const struct lp_sid *drop,
                       size_t ndrop);

/* Empties the queue (its XACK was answered, or is given up). */
void lp_group_ack_clear(struct lp_group *g);

/* Queues the XACK of the IDs added (none: nothing), encoded here (one
 * RESP buffer, kept). 1 queued, 0 none, -1 with err when not connected
 * or out of memory. The queue stays until cleared. */
int lp_group_queue_ack(struct lp_group *g, char *err);

/*
 * Queues the trim of the stream (XTRIM MINID in one script) to the oldest
 * entry any group still needs: its oldest pending entry, or the one after
 * its last delivered; never past floor_ms (0: no floor), the --keep.
 * The answer: the number trimmed, -1 when the stream has no group. 0, or
 * -1 with err when not connected.
 */
int lp_group_queue_trim(struct lp_group *g, int64_t floor_ms, char *err);

#endif
