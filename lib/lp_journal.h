/* lp_journal.h -- a batch of many day files made durable with one write */
#ifndef LP_JOURNAL_H
#define LP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lp_notice.h"

/*
 * Group commit for the archive. Making each day file a batch touched
 * durable costs one fdatasync per file; a journal costs one sequential
 * write and one fdatasync, however many files the batch touched.
 *
 * A journal is a directory in LP_JOURNAL_DIR below --dir, one per
 * consumer (its name is the caller's: logpipe-drain's is the hash of its
 * consumer lock), of segments "seg-<16 hex digits>.jnl", numbered in the
 * order they were made, from the clock's microseconds when it is ahead (so
 * that no name is ever used twice): an 8-byte header "LPJNL02\n", then
 * records framed as lp_wal's (u32le length, u32le CRC-32C (lp_crc.h) of
 * the length bytes and the payload, the payload). Segments of the first
 * format, "LPJNL01\n" with zlib's CRC-32 as lp_wal's, are still read. A payload is one day file's lines of one batch:
 * u16le length of the path, the path (relative to --dir), the lines (whole
 * archive lines, each ending in '\n').
 *
 * The protocol, as logpipe-drain follows it:
 *
 *  1. A batch's lines are handed to lp_journal_add: those written to
 *     their day files (the page cache) by the batch while each file is
 *     still locked, so a logpipe-rotate that takes the file's lock
 *     afterwards finds them in the journal (lp_journal_covers); those
 *     held for later without the lock (lp_archive.h): they are written
 *     under the lock later, to a new file if rotate took the old one
 *     meanwhile, so rotate never compresses a line away twice.
 *  2. lp_journal_commit writes them with one write(2) and one fdatasync;
 *     only then may the batch be acknowledged.
 *  3. From time to time lp_journal_seal ends the active segment (new
 *     records go to a new one) and gives a mark; the caller syncs every
 *     day file written before the mark, in the background (fdatasync each,
 *     or one syncfs when they are many: lp_archive.h), and then
 *     lp_journal_cut(mark) deletes the sealed segments.
 *
 * After a crash or a power loss the caller, before it reads anything new,
 * hands every record left (lp_journal_replay) to the archive, which leaves
 * out the lines its day files hold already (by "_id"), syncs the files and
 * cuts the journal. A torn last record (a commit that did not finish, so
 * a batch never acknowledged) ends its segment and is left out, said as a
 * warning.
 *
 * One process writes a journal (the caller holds the consumer's lock);
 * any process may read it (lp_journal_covers, lp_journal_usage).
 */

#define LP_JOURNAL_MAGIC "LPJNL02\n"    /* records with CRC-32C */
#define LP_JOURNAL_MAGIC1 "LPJNL01\n"   /* with zlib's CRC-32: still read */
#define LP_JOURNAL_HDR 8
#define LP_JOURNAL_DIR ".logpipe-journal"  /* below --dir: the journals */

struct lp_journal;

/*
 * Opens, making them (mode 0750) when missing, LP_JOURNAL_DIR below dirfd
 * (borrowed) and the journal name (one component) in it, and lists the segments a crashed run left (see
 * lp_journal_replay). nt (copied; NULL: silent) hears of torn tails and
 * files that are not segments. Returns NULL with err.
 */
struct lp_journal *lp_journal_open(int dirfd, const char *name,
                                   const struct lp_notify *nt, char *err);
/* Closes the journal, deleting nothing; accepts NULL. */
void lp_journal_close(struct lp_journal *j);

/* Has a crashed run left records (segments found by lp_journal_open and
 * not yet cut)? */
int lp_journal_left(const struct lp_journal *j);

/*
 * Hands each record of the segments a crashed run left, oldest first, to
 * fn(ctx, path, plen, lines, len, err); fn returns 0, or -1 with err to
 * stop (lp_journal_replay then returns -1 with that err). A torn or
 * damaged tail ends its segment (a warning). Returns 0 or -1 with err.
 * Then lp_journal_cut(j, lp_journal_seal(j)) once the files are synced.
 */
int lp_journal_replay(struct lp_journal *j,
                      int (*fn)(void *ctx, const char *path, size_t plen,
                                const char *lines, size_t len, char *err),
                      void *ctx, char *err);

/* Adds the lines s[0..n) of the day file path[0..plen) to the records of
 * the next commit (copied). Returns 0, or -1 when out of memory or the
 * path is longer than 65535 bytes (errno ENOMEM or ENAMETOOLONG). */
int lp_journal_add(struct lp_journal *j, const char *path, size_t plen,
                   const char *s, size_t n);

/* Bytes added since the last commit. */
size_t lp_journal_pending(const struct lp_journal *j);

/*
 * Writes what was added since the last commit to the active segment
 * (made on first use) and fdatasyncs it (and the directory, when the
 * segment is new). Nothing added: returns 0 at once. On failure returns
 * -1 with err and errno: nothing of the commit may be acknowledged; the
 * records are dropped, the segment cut back (or, when that fails too,
 * ended, so that its torn tail cannot hide later records).
 */
int lp_journal_commit(struct lp_journal *j, char *err);

/*
 * The same in two halves, so that the caller works while the segment
 * syncs (logpipe-drain sends its next read): lp_journal_commit_start
 * writes the records to the segment (readers such as lp_journal_covers
 * see them from then on) and starts its fdatasync in lp_sync's lane;
 * lp_journal_commit_finish waits for it and returns as lp_journal_commit
 * does (nothing pending: 0). One commit at a time: a start while one is
 * pending fails (EBUSY); lp_journal_seal and lp_journal_close finish a
 * pending one first.
 */
int lp_journal_commit_start(struct lp_journal *j, char *err);

/*
 * Writes at once, without a sync, a record of path[0..plen) (at most 512
 * bytes) with no lines: a mark that the file has lines of a batch not yet
 * acknowledged, for lp_journal_covers (rotate) to see, when the batch is
 * committed by the file's own sync rather than by the journal. Replay
 * applies nothing for it; the cut removes it with its segment. Not while
 * a commit syncs (EBUSY). Returns 0 or -1 with err and errno.
 */
int lp_journal_mark(struct lp_journal *j, const char *path, size_t plen,
                    char *err);
int lp_journal_commit_finish(struct lp_journal *j, char *err);
int lp_journal_commit_pending(const struct lp_journal *j);

/*
 * Ends the active segment: records committed from now on go to a new one.
 * Returns the mark to hand to lp_journal_cut once every day file written
 * before this call is synced.
 */
uint64_t lp_journal_seal(struct lp_journal *j);

/* Deletes the segments sealed before mark, and syncs the directory.
 * Returns 0 or -1 with err. */
int lp_journal_cut(struct lp_journal *j, uint64_t mark, char *err);

/* Bytes in the journal's segments not yet cut. */
uint64_t lp_journal_bytes(const struct lp_journal *j);

/*
 * Removes the journal's directory when nothing is left in it, and
 * LP_JOURNAL_DIR when it was the last (logpipe-drain --once leaves no
 * journal behind). Returns 0 (also when something is left, which
 * stays), or -1 with err.
 */
int lp_journal_remove(struct lp_journal *j, char *err);

/*
 * Which day files the journals below dirfd (LP_JOURNAL_DIR) hold lines
 * of: for logpipe-rotate, which must not compress a file whose lines a
 * power cut would make a drain write again. It asks while it holds the
 * file's lock (a drain adds a file's lines to its journal under that
 * lock). The reader remembers, per segment, the paths it has read and
 * how far, so that each call reads only what was committed since the
 * last: a run over many files costs what the journals grew meanwhile.
 * lp_journal_reader_new returns NULL when out of memory; covers returns
 * 1 (who: the segment, cap bytes), 0, or -1 with err.
 */
struct lp_journal_reader;
struct lp_journal_reader *lp_journal_reader_new(int dirfd);
void lp_journal_reader_free(struct lp_journal_reader *rd);
int lp_journal_reader_covers(struct lp_journal_reader *rd, const char *path,
                             size_t plen, char *who, size_t cap, char *err);

/* The same, once. */
int lp_journal_covers(int dirfd, const char *path, size_t plen, char *who,
                      size_t cap, char *err);

/* What the journals below dirfd hold: their count, bytes, and the
 * modification time (ms since the epoch) of the oldest segment, 0 when
 * none. For logpipe-stat. Returns 0 or -1 with err. */
int lp_journal_usage(int dirfd, unsigned *count, uint64_t *bytes,
                     int64_t *oldest_ms, char *err);

/*
 * Decodes the record payload rec[0..rlen): 0 with the path and the lines
 * (pointing into rec), -1 when it is not a valid one. Pure: for tests and
 * fuzzing.
 */
int lp_journal_payload(const char *rec, size_t rlen, const char **path,
                       size_t *plen, const char **lines, size_t *len);

#endif
