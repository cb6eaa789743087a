/* lp_wal.h -- write-ahead log for logpipe-send */
#ifndef LP_WAL_H
#define LP_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "lp_notice.h"

/*
 * A directory of segments "wal-<microseconds>-<pid>.log". A segment is an
 * 8-byte header "LPWAL03\n" and records: u32le length, u32le CRC-32 of the
 * length bytes and the payload, then the payload: a line "#<pos> <producer>
 * [<cursor>]\n" (the command's producer and position, lp_send.h), then one
 * Redis command in RESP form (an XADD of an event, or of a dead letter),
 * sent again as it is. Segments "LPWAL01\n" and "LPWAL02\n" (logpipe
 * before producers) hold the command alone; they are still read.
 *
 * The two top bits of a record's length, both set (LP_WAL_DONE; the CRC is
 * of the length without them), mark a record Redis acknowledged while
 * records before it were not (an error reply in the middle of a batch): it
 * is never sent again. One flipped bit is damage, not a mark. A segment
 * with marks has the header "LPWAL02\n", which older readers leave alone
 * rather than cut at the first mark.
 *
 * Each sender appends to its own active segment, which it holds locked
 * (flock); a segment is re-sent only by whoever takes its lock without
 * waiting, so two senders on one directory never read or cut the other's
 * segment. Progress within a segment is kept in "<segment>.ack" (offset
 * and CRC, rewritten in place); a segment is deleted, and the directory
 * synced, only when all its records are acknowledged.
 */

#define LP_WAL_MAGIC "LPWAL01\n"
#define LP_WAL_MAGIC2 "LPWAL02\n"       /* the same, with LP_WAL_DONE marks */
#define LP_WAL_MAGIC3 "LPWAL03\n"       /* producers' records, marks or not:
                                           older readers leave it alone */
#define LP_WAL_HDR 8
#define LP_WAL_REC 8                    /* record header */
#define LP_WAL_MAXREC (1u << 30)
#define LP_WAL_DONE 0xc0000000u         /* in the length: acknowledged */
#define LP_WAL_SEGMENT (64u << 20)      /* a new segment past this */

struct lp_wal;
struct lp_wal_seg;

/*
 * Opens (making it, mode 0750) the directory, and recovers it: in every
 * segment no one holds, a torn tail (a record cut short or failing its
 * CRC) is cut off. nt (copied; NULL: silent) is told, as a warning, of
 * each tail cut and each file that is not a segment, here and by
 * lp_wal_pending and lp_wal_take. max_bytes: 0 for no limit. Returns NULL
 * with err.
 */
struct lp_wal *lp_wal_open(const char *dir, uint64_t max_bytes,
                           const struct lp_notify *nt, char *err);
void lp_wal_close(struct lp_wal *w);

/* Bytes of records waiting, in every segment seen. */
uint64_t lp_wal_bytes(const struct lp_wal *w);

/* The highest position of producer name in the records of every segment
 * (0: none), read without locks (at the start of a run). 0 or -1 with
 * err. */
int lp_wal_max_pos(struct lp_wal *w, const char *name, uint64_t *max,
                   char *err);

/* Calls fn for the producer line of every record of every segment (in no
 * particular order; records of old segments, without one, are passed
 * over), read without locks (at the start of a run). 0 or -1 with err. */
typedef void lp_wal_prod_fn(void *arg, const char *name, size_t namelen,
                            uint64_t pos, const char *cursor,
                            size_t cursorlen);
int lp_wal_producers(struct lp_wal *w, lp_wal_prod_fn *fn, void *arg,
                     char *err);
/* lp_wal_producers with the whole record rec[0..reclen) too (its
 * command's key says its shard: --follow --shard-key --shards). */
typedef void lp_wal_rec_fn(void *arg, const char *name, size_t namelen,
                           uint64_t pos, const char *cursor,
                           size_t cursorlen, const char *rec,
                           size_t reclen);
int lp_wal_records(struct lp_wal *w, lp_wal_rec_fn *fn, void *arg,
                   char *err);

/* Does the directory hold records to send (ours or no one's)? Rescans. */
int lp_wal_pending(struct lp_wal *w, char *err);

/*
 * Appends one record to our active segment (made and locked on first use,
 * a new one past LP_WAL_SEGMENT). Not synced: see lp_wal_sync. Returns 0,
 * -1 with err and errno on a write error, -2 when --wal-max would be
 * passed (nothing written).
 */
int lp_wal_append(struct lp_wal *w, const char *rec, size_t len, char *err);

/* fdatasyncs the active segment (and its directory when it is new). */
int lp_wal_sync(struct lp_wal *w, char *err);

/*
 * Takes the oldest segment with records to send: our active one too,
 * which is then closed (new records go to a new one). Segments go in
 * order: when the oldest is held by another sender (sending it, or
 * writing to it), nothing is taken. Returns 1 with *seg, 0 when there is
 * none, 2 when the oldest is another sender's, -1 with err.
 */
int lp_wal_take(struct lp_wal *w, struct lp_wal_seg **seg, char *err);

/*
 * The next record of seg after those read so far, skipping records marked
 * with lp_wal_seg_mark: 1 with rec[0..len) valid until the next call and
 * *end the offset after it, 0 at the end.
 */
int lp_wal_seg_next(struct lp_wal_seg *s, const char **rec, size_t *len,
                    uint64_t *end);

/* Records up to offset end are acknowledged: kept in the .ack file,
 * synced, after the marks made since the last call (end may then be at or
 * before what is acknowledged already). Returns 0 or -1 with err. */
int lp_wal_seg_ack(struct lp_wal *w, struct lp_wal_seg *s, uint64_t end,
                   char *err);

/*
 * The record of len payload bytes that ends at offset end (as handed out
 * by lp_wal_seg_next) was acknowledged, but a record before it was not:
 * marks it in the segment, so that neither a rewind nor a later process
 * sends it again (a record of 1 GiB or more cannot be marked, and is).
 * Synced by the next lp_wal_seg_ack. Returns 0 or -1 with err.
 */
int lp_wal_seg_mark(struct lp_wal *w, struct lp_wal_seg *s, uint64_t end,
                    size_t len, char *err);

/* Reading starts again after the last acknowledged record. */
void lp_wal_seg_rewind(struct lp_wal_seg *s);

/* Every record was acknowledged: deletes the segment and its .ack file,
 * syncs the directory. Returns 0 or -1 with err. */
int lp_wal_seg_done(struct lp_wal *w, struct lp_wal_seg *s, char *err);

/* Lets go of seg (unlocks, frees) without deleting it. */
void lp_wal_seg_release(struct lp_wal *w, struct lp_wal_seg *s);

/* The segment's file name, for messages. */
const char *lp_wal_seg_name(const struct lp_wal_seg *s);

/*
 * Decodes the record at buf[*pos..len): 1 with rec/rlen and *pos moved
 * past it, 0 at a clean end, -1 when the rest is not a whole valid record
 * (a torn tail, or damage). *pos = 0 skips the segment header, which must
 * be there. Marked records are records too (see lp_wal_rec_done). Pure:
 * for tests, fuzzing and logpipe-replay.
 */
int lp_wal_decode(const char *buf, size_t len, size_t *pos,
                  const char **rec, size_t *rlen);

/* Is the record whose payload lp_wal_decode gave as rec marked as
 * acknowledged (lp_wal_seg_mark)? Pure. */
int lp_wal_rec_done(const char *rec);

/* Is buf[0..len) a segment header, of either version? Pure. */
int lp_wal_magic(const char *buf, size_t len);

/* Encodes the header of a record of rlen bytes into hdr[LP_WAL_REC]. */
void lp_wal_encode(char *hdr, const char *rec, size_t rlen);

/* The same framing with CRC-32C (lp_crc.h) for the CRC: the drain
 * journal's records (lp_journal.h). lp_wal_decode_c starts with *pos past
 * the segment's header, which is the caller's. */
void lp_wal_encode_c(char *hdr, const char *rec, size_t rlen);
int lp_wal_decode_c(const char *buf, size_t len, size_t *pos,
                    const char **rec, size_t *rlen);

/*
 * The producer line of a record (lp_send.h: producers): 1 with the name,
 * position, cursor (cursorlen 0: none) and *cmd the offset of the command
 * in rec; 0 when rec is a record of an old segment (the command alone).
 * Pure.
 */
int lp_wal_producer(const char *rec, size_t rlen, const char **name,
                    size_t *namelen, uint64_t *pos, const char **cursor,
                    size_t *cursorlen, size_t *cmd);

/*
 * The event in a record (after its producer line): the key and the value
 * of "data" of an XADD.
 * Returns 1 with key/keylen and ev/evlen (pointing into rec), 0 when the
 * record is another command. Pure.
 */
int lp_wal_event(const char *rec, size_t rlen, const char **key,
                 size_t *keylen, const char **ev, size_t *evlen);

#endif
