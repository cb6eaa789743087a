/* lp_dlq.h -- the dead letter record: its struct, encoded, decoded, moved */
#ifndef LP_DLQ_H
#define LP_DLQ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lp_buf.h"
#include "lp_redis.h"
#include "lp_stream.h"

/*
 * A dead letter is a stream entry of field/value pairs (SPEC "Dead letter
 * entry", logpipe-dlq(1) "Dead letter entries"):
 *
 *   data EVENT error CODE detail MESSAGE stage send|drain
 *   source_stream KEY source_id ID deliveries N consumer NAME
 *   failed_at MS [truncated LENGTH]
 *
 * This file owns that record: struct lp_dlq_rec, its encoding into the
 * commands that write it (send's XADD, drain's move script), its decoding
 * from an entry read back (logpipe-dlq), its JSON form as logpipe-dlq shows
 * it, and the scripts that act on it in Redis (move from a stream, retry,
 * purge). Nobody else spells a dead letter's field names.
 *
 * The functions that talk to Redis follow lp_stream.h's contract: _append
 * queues and sends nothing, the matching _reply reads the answer of the
 * oldest queued; -1 fills the caller's struct lp_stream_err.
 */

/* Bytes of a field: any bytes, not NUL-terminated. p NULL: not there
 * (decode), or empty (encode). */
struct lp_dlq_str {
    const char *p;
    size_t len;
};

/* A C string as a field's bytes. */
static inline struct lp_dlq_str lp_dlq_cstr(const char *s)
{
    struct lp_dlq_str v = { s, s ? strlen(s) : 0 };
    return v;
}

/* Which fields decode found (lp_dlq_rec.has); a number field only when
 * its value is a number (else its bit is in lp_dlq_rec.bad). */
enum {
    LP_DLQ_DATA = 1 << 0,
    LP_DLQ_ERROR = 1 << 1,
    LP_DLQ_DETAIL = 1 << 2,
    LP_DLQ_STAGE = 1 << 3,
    LP_DLQ_SOURCE_STREAM = 1 << 4,
    LP_DLQ_SOURCE_ID = 1 << 5,
    LP_DLQ_DELIVERIES = 1 << 6,
    LP_DLQ_CONSUMER = 1 << 7,
    LP_DLQ_FAILED_AT = 1 << 8,
    LP_DLQ_TRUNCATED = 1 << 9
};

/*
 * One dead letter. The strings are borrowed: from the caller's buffers
 * when encoding, from the reply when decoded (valid while it is).
 */
struct lp_dlq_rec {
    struct lp_dlq_str data;         /* the event's bytes, maybe cut */
    struct lp_dlq_str error;        /* why, one word: "invalid-json" */
    struct lp_dlq_str detail;       /* why, in the words of the warning */
    struct lp_dlq_str stage;        /* "send" or "drain" */
    struct lp_dlq_str source_stream;    /* the stream it was meant for */
    struct lp_dlq_str source_id;    /* its ID there; "" from send */
    struct lp_dlq_str consumer;     /* drain's consumer, send's host name */
    uint64_t deliveries;            /* times a drain was handed it; 0 */
    int64_t failed_at;              /* ms since the epoch */
    uint64_t truncated;             /* data was cut: the event's whole
                                     * length; 0: data is the whole event */
    unsigned has, bad;              /* decode: LP_DLQ_* found, and number
                                     * fields found that were no number */
};

/* ---- encoding ----------------------------------------------------------- */

/*
 * Appends the record's field/value pairs to b as RESP bulk strings, in
 * the order above, truncated only when rec->truncated is not 0: the tail
 * of an XADD, of the move script's ARGV, and the fields of an XRANGE
 * entry alike. Numbers in decimal. Returns the count of strings appended
 * (18 or 20), or -1 when out of memory (b as it was). Allocates nothing
 * once b is as large as the biggest record it held.
 */
int lp_dlq_encode(const struct lp_dlq_rec *rec, struct lp_buf *b);

/*
 * Appends the whole command XADD dlq * FIELDS... in RESP to b: what
 * logpipe-send puts in its batch for a rejected line, byte for byte the
 * command it built from 21 arguments. 0, or -1 when out of memory (b as
 * it was).
 */
int lp_dlq_encode_xadd(const struct lp_dlq_rec *rec, const char *dlq,
                       struct lp_buf *b);

/*
 * Appends the whole command that moves entry rec->source_id of stream
 * rec->source_stream, delivered to group, to dlq in RESP to b:
 *   EVAL MOVE-SCRIPT 2 STREAM DLQ GROUP ID FIELDS...
 * one script that XADDs the record to dlq, then XACKs the entry, and
 * stops at the first command that fails (so an entry is never
 * acknowledged without its dead letter; MULTI/EXEC would run the XACK even
 * when the XADD fails). Byte for byte what logpipe-drain sent from 25 (27)
 * arguments. 0, or -1 when out of memory (b as it was).
 */
int lp_dlq_encode_move(const struct lp_dlq_rec *rec, const char *dlq,
                       const char *group, struct lp_buf *b);

/* ---- decoding ----------------------------------------------------------- */

/*
 * Fills rec from entry e (of an XRANGE or XREADGROUP reply): the first
 * field of each name wins, as it does for logpipe-dlq's JSON and retry's
 * data; fields of other names are passed over. A number field (deliveries,
 * failed_at, truncated) counts when it is decimal digits without a
 * leading zero, at most 15 of them (as JSON takes them); otherwise its bit
 * is set in rec->bad, not rec->has. Missing fields stay { NULL, 0 } and 0.
 * 0, or -1 when the entry has no fields (deleted or trimmed: e->fields
 * NULL), rec then zeroed. The strings point into e's reply (borrowed).
 */
int lp_dlq_decode(const struct lp_entry *e, struct lp_dlq_rec *rec);

/*
 * Appends the JSON object logpipe-dlq shows for entry e to b: {"id":...,
 * then every field in the order stored}; the first data field becomes
 * "event" holding the data as it is (without white space around) when it
 * is valid JSON, else "data" as a string; a field of its own named id,
 * event or data (past the first data) comes out as "field:NAME", so that
 * it can never stand for the entry's ID or event; deliveries that is a
 * number as a number; failed_at that is a number of ms as an RFC 3339
 * time. Values of any bytes (invalid UTF-8 as U+FFFD). 0, or -1 when out
 * of memory (b cut where it failed).
 */
int lp_dlq_json(const struct lp_entry *e, struct lp_buf *b);

/* ---- in Redis ------------------------------------------------------------ */

/*
 * Queues the move of rec (lp_dlq_encode_move) on r, encoded into scratch
 * (the caller's, emptied first and reused: nothing allocated per record
 * once it is large enough). 0, or -1 when out of memory or not connected
 * (the _reply then fails).
 */
int lp_dlq_move_append(struct lp_redis *r, const struct lp_dlq_rec *rec,
                       const char *dlq, const char *group,
                       struct lp_buf *scratch);

/*
 * The answer to the oldest move queued: 0 with the dead letter's ID in
 * dlq_id (the entry is acknowledged), or -1 with e: Redis refused it
 * (e->msg, Redis' error cut to 299 bytes and without the script's
 * location; the entry stays pending) or did not answer.
 */
int lp_dlq_move_reply(struct lp_redis *r, char dlq_id[LP_STREAM_IDLEN],
                      struct lp_stream_err *e);

/*
 * Queues the retry of entry id of the DLQ dlq, one script: it reads the
 * entry, XADDs its data to target and XDELs it, at once, so that running
 * it twice sends nothing twice. target is the entry's source_stream as the
 * caller read it, or fallback when it names none (entries never change,
 * IDs are never reused); the script refuses any other, an entry without
 * data and one whose data was cut (truncated). Nothing is sent yet. 0, or
 * -1 when out of memory or not connected (the _reply then fails).
 */
int lp_dlq_retry_append(struct lp_redis *r, const char *dlq, const char *id,
                        const char *target, const char *fallback);

/* The same in a shard's DLQ of the sharded stream base: an entry whose
 * source_stream is base (not a shard's name) goes to target, the shard
 * (the same slot as its DLQ, so that the move stays one script). */
int lp_dlq_retry_append_shard(struct lp_redis *r, const char *dlq,
                              const char *id, const char *target,
                              const char *fallback, const char *base);

/*
 * The answer to the oldest retry queued: 1 when the entry went to its
 * target, with its new ID there in new_id; 0 when it was gone already
 * (retried or purged by someone else); -1 with e when Redis refused it
 * (an entry without data, or cut short: LP_RERR_REQUEST; e->msg without
 * the script's location) or did not answer.
 */
int lp_dlq_retry_reply(struct lp_redis *r, char new_id[LP_STREAM_IDLEN],
                       struct lp_stream_err *e);

/* The same of an answer already read, rep (taken, freed; NULL: none
 * came, e->msg holding why): a pipeline that reads its answers itself
 * (logpipe-dlq in a Redis Cluster looks at each for a redirect first). */
int lp_dlq_retry_judge(struct lp_reply *rep, char new_id[LP_STREAM_IDLEN],
                       struct lp_stream_err *e);

/* Queues the purge (XDEL) of entry id of dlq. As retry's. */
int lp_dlq_purge_append(struct lp_redis *r, const char *dlq, const char *id);

/* The answer to the oldest purge queued: 1 purged, 0 gone already, -1
 * with e. */
int lp_dlq_purge_reply(struct lp_redis *r, struct lp_stream_err *e);
/* The same of an answer already read (as lp_dlq_retry_judge). */
int lp_dlq_purge_judge(struct lp_reply *rep, struct lp_stream_err *e);

#endif
