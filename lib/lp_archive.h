/* lp_archive.h -- the archive tree: day files appended under a lock */
#ifndef LP_ARCHIVE_H
#define LP_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "lp_buf.h"
#include "lp_json.h"
#include "lp_notice.h"

/*
 * Files below a --dir descriptor, kept open (least recently used closed
 * first), each with a buffer for the lines of the batch in hand. Every
 * writer appends under flock(LOCK_EX) on the file, the lock logpipe-rotate
 * takes too, so under the lock: a file rotated away is reopened, a partial
 * last line (a writer died mid-write) is cut, and redelivered entries
 * already in the file are dropped. Archive lines start {"_id":"<id>".
 */
struct lp_archive;
struct lp_afile;

/* How far back the duplicate check looks: it stops after this many
 * consecutive lines older than the oldest entry checked by more than
 * LP_DEDUP_SLACK_MS (or at the start of the file). */
#define LP_DEDUP_RUN 4096
#define LP_DEDUP_SLACK_MS (10 * 60 * 1000)

/*
 * At most max_open files have a descriptor (the least recently used
 * gives its own up); up to LP_KNOWN_FILES files (max_open when more) are
 * known, with or without one (about 350 bytes each, and the lines they
 * hold): a file without a descriptor is opened again only when its lines
 * are written (many batches at a time in journal mode), not for each
 * line, and then in one openat2(2) when its path still names the file it
 * was; beyond LP_KNOWN_FILES the least recently used is forgotten.
 * Borrows dirfd. nt (copied; NULL: silent) hears of files mended and
 * reopened by lp_archive_lock. Returns NULL when out of memory.
 */
#define LP_KNOWN_FILES 65536
struct lp_archive *lp_archive_new(int dirfd, size_t max_open,
                                  const struct lp_notify *nt);
/* Closes every file; accepts NULL. */
void lp_archive_free(struct lp_archive *a);

/* Closes every file (SIGHUP): each is reopened on its next use. */
void lp_archive_close_all(struct lp_archive *a);

/*
 * The file at path (relative, made safe by the caller's layout), opened,
 * with its directories made, on first use, and marked touched by the batch
 * in hand. Returns NULL with err ("PATH: why", PATH the part of path that
 * failed) and errno set (ELOOP/ENOTDIR/EINVAL: the path is unsafe; ENOSPC,
 * EIO...: the disk).
 */
struct lp_afile *lp_archive_get(struct lp_archive *a, const char *path,
                                size_t n, char *err);

/* Does the batch in hand write to path already? */
int lp_archive_touches(const struct lp_archive *a, const char *path,
                       size_t n);

/* The buffer the batch's lines for f go to. */
struct lp_buf *lp_afile_buf(struct lp_afile *f);

/* Entry id (a redelivered one) may already be in f: check before writing.
 * Returns 0 or -1 (out of memory). */
int lp_afile_check(struct lp_afile *f, const char *id, size_t idlen);

/* lp_afile_check for the entry of each archive line of s[0..n) (the lines
 * of a journal's record, of lines held). Returns the number of lines, or
 * -1 when out of memory. */
long lp_afile_check_lines(struct lp_afile *f, const char *s, size_t n);

/* A stream entry ID, as numbers. */
struct lp_sid {
    uint64_t ms, seq;
};

/*
 * Which of the entries ids[0..n) does the file at path (relative to the
 * --dir descriptor, opened as lp_archive_get would, but read-only and
 * apart from the batch in hand: not touched, not kept) hold? Their
 * archive IDs are pfx (NULL: none; a shard's "<i>-") then "<ms>-<seq>".
 * found[i] is set to 1 for each entry found, left alone for the others.
 * The file is read under a shared flock (no writer appends meanwhile),
 * back from its end as the duplicate check reads (LP_DEDUP_RUN): a copy
 * written long before the newest of ids may be missed. A file that does
 * not exist holds none. A file holding any is fdatasynced (its writer may
 * have died before its sync). Returns the number found, or -1 with err
 * ("PATH: why") and errno.
 */
long lp_archive_file_holds(struct lp_archive *a, const char *path,
                           const char *pfx, const struct lp_sid *ids,
                           size_t n, unsigned char *found, char *err);

/*
 * Locks every file the batch touched (flock, in path order, so that two
 * writers cannot deadlock), reopening those rotated away (an info notice)
 * and cutting partial last lines (a warning notice), as they happen.
 * Returns 0, or -1 with err and errno (the locks taken are released).
 */
int lp_archive_lock(struct lp_archive *a, char *err);

/*
 * Writes the batch into the locked files, then unlocks them: lines of the
 * entries in drop (sorted; may be NULL) are left out, and so are lines
 * whose entry is already in the file (counted in *dups). Returns 0, or -1
 * with err and errno: nothing of the batch may be acknowledged then.
 */
int lp_archive_write(struct lp_archive *a, const struct lp_sid *drop,
                     size_t ndrop, uint64_t *dups, char *err);

/* fdatasyncs every file the batch wrote. Returns 0, or -1 with err and
 * errno: never retry it and trust the result, the pages may be gone. */
int lp_archive_sync(struct lp_archive *a, char *err);

/* The same in two halves, the files synced in the background meanwhile:
 * nothing may use a until lp_archive_sync_finish, which returns as
 * lp_archive_sync does. start returns -1 with err only when out of
 * memory (nothing started then). */
int lp_archive_sync_start(struct lp_archive *a, char *err);
int lp_archive_sync_finish(struct lp_archive *a, char *err);

/*
 * Journal mode (logpipe-drain's): lp_archive_write adds the batch's lines
 * to j (borrowed) and commits j; the batch is durable when
 * lp_archive_write returns 0 (with lp_archive_async, when
 * lp_archive_sync_finish then does), and lp_archive_sync is not called. A file
 * the batch writes to is locked from before its lines enter j until
 * after the commit; most files are not written by the batch, though:
 * their lines are held (in memory, and in j) and written many batches at
 * a time, each under its lock, reopened when it was rotated away
 * meanwhile: a few files after each batch once more than LP_HOLD_LOW is
 * held; a file's at once when LP_HOLD_FILE bytes are held for it; all
 * when LP_HOLD_MAX is, or a batch is written through (lp_archive_hold);
 * and lines still held at an epoch's start that were held at the one
 * before. Lines held longer than stale_ms (0: never) are checked for in
 * their file before they are written (another drain may have taken their
 * entries over while this one stalled). The files written are synced in
 * the background, an epoch at a time, and j is cut behind them, but for
 * the segments of lines still held: call lp_archive_flush after each
 * batch. A file closed
 * while it still has data to sync (--max-open eviction, rotation) keeps
 * its descriptor until that sync. Before any of this the caller replays
 * what j held.
 */
struct lp_journal;
void lp_archive_set_journal(struct lp_archive *a, struct lp_journal *j,
                            int64_t stale_ms);

#define LP_HOLD_FILE (64u << 10)
#define LP_HOLD_MAX (12u << 20)
/* More than this held after a batch: files are written in turn, a few a
 * batch, until no more is (lp_archive.c, put_some) */
#define LP_HOLD_LOW (6u << 20)

/* Bytes of lines held. */
size_t lp_archive_held(const struct lp_archive *a);

/* May the batch in hand's lines be held (1, the default), or must they
 * be written through (0: a batch that stalled, whose entries another
 * drain may claim; a batch that is not full, the drain has caught up:
 * then what is held is written too)? since: when its entries were
 * delivered (lp_mono_ms), the start of the stale_ms of its held lines.
 * Reset to 1 by each lp_archive_write. */
void lp_archive_hold(struct lp_archive *a, int ok, int64_t since);

/* Journal mode: may the next lp_archive_write's commit sync in the
 * background (1)? It then writes the journal's records under the files'
 * locks and returns with their fdatasync running (lp_journal_commit_start):
 * the batch is durable only once lp_archive_sync_finish returns 0, and
 * nothing but that call and lp_archive_flush_all (which waits for it
 * first) may use a meanwhile; lp_archive_flush does nothing until then.
 * A batch that writes one file is committed, so, by that file's own
 * fdatasync (and of the directories on its path handed over since the
 * last epoch, when they fit in lp_sync's lane), its lines not added to j
 * but only a mark of the file (lp_journal_mark, for rotate): one write
 * and one sync as well, without the second copy. Reset to 0 by each
 * lp_archive_write. */
void lp_archive_async(struct lp_archive *a, int on);

/* An epoch ends LP_EPOCH_MS after it started, when LP_EPOCH_BYTES were
 * committed to the journal in it, or when LP_HOLD_MAX wrote the lines
 * held (their files are synced at once, in the background, rather than
 * all by the last epoch of --once); a journal twice LP_EPOCH_BYTES past
 * its last seal waits for the sync in hand. */
#define LP_EPOCH_MS 1000
#define LP_EPOCH_BYTES (32u << 20)

/* An epoch of at least this many descriptors to sync (files and
 * directories) syncs the archive's file system at once (syncfs(2)): one
 * cache flush instead of one per file, where the kernel reports write
 * errors from it (lp_sync_fs_reports) and every file opened is on that
 * file system (none on one mounted below --dir); a syncfs refused
 * (ENOSYS, EPERM: a seccomp filter) is followed by a sync per file, and
 * by those from then on. */
#define LP_SYNCFS_FILES 64

/* Finishes the running epoch's sync when it is done (cutting the
 * journal) and starts the next one when it is due. Never waits, but for
 * a journal past twice its bound. Returns 0, or -1 with err and errno: a
 * file's fsync failed (trust none of the files; the journal keeps the
 * lines). */
int lp_archive_flush(struct lp_archive *a, char *err);

/* An epoch now, as lp_archive_flush starts one when it is due, and waits
 * for its sync: lines held since before the last seal are written, those
 * held since stay held, and their segments of the journal with them.
 * Returns as lp_archive_flush. (For tests: a drain's epochs come from
 * lp_archive_flush, its last from lp_archive_flush_all.) */
int lp_archive_epoch(struct lp_archive *a, char *err);

/* For tests: epochs due every epoch_ms (-1: LP_EPOCH_MS) and held lines
 * written in turn above hold_low bytes (0: LP_HOLD_LOW), so that a short
 * run goes through both (logpipe-drain's LOGPIPE_TEST_EPOCH_MS and
 * LOGPIPE_TEST_HOLD_LOW). After lp_archive_set_journal. */
void lp_archive_tune(struct lp_archive *a, int64_t epoch_ms,
                     size_t hold_low);

/* Without a journal (the drain's replay of one): hand every directory on
 * the paths opened to lp_archive_sync_dirs instead of syncing only those
 * that gain an entry (on), and fsync them all, once each (0 or -1 with
 * err). */
void lp_archive_defer_dirs(struct lp_archive *a, int on);
int lp_archive_sync_dirs(struct lp_archive *a, char *err);

/* Day files opened so far (first opens and reopens): a count that
 * outlives nothing but a. */
const uint64_t *lp_archive_opens(const struct lp_archive *a);

/* How long the last batch's journal commit (its write and fdatasync;
 * with lp_archive_async, its write) took, in microseconds. */
int64_t lp_archive_commit_us(const struct lp_archive *a);

/* Has the journal lines not yet cut, or an epoch work to do? (A drain
 * waiting for entries wakes up by then to finish it.) */
int lp_archive_busy(const struct lp_archive *a);

/* Syncs every file written and cuts the journal whole: for the end of a
 * run, SIGHUP, and when descriptors run out. Returns as lp_archive_flush. */
int lp_archive_flush_all(struct lp_archive *a, char *err);

/* Removes from b the archive lines of the entries in drop (sorted). */
void lp_archive_drop_lines(struct lp_buf *b, const struct lp_sid *drop,
                           size_t ndrop);

/* Orders IDs, for qsort and bsearch. */
int lp_sid_cmp(const void *a, const void *b);

/* Unlocks the locked files and drops the batch's lines. */
void lp_archive_discard_locked(struct lp_archive *a);

/* Drops the batch's lines without writing them. */
void lp_archive_discard(struct lp_archive *a);

/* Number of files touched by the batch in hand. */
size_t lp_archive_touched(const struct lp_archive *a);

/*
 * Appends the archive line of stream entry id for the event s[0..n)
 * (scanned into ev, starting with '{'): {"_id":"<id>", then the event's
 * members without any "_id" of its own, then a newline. Returns 0, or -1
 * when out of memory.
 */
int lp_archive_format(struct lp_buf *dst, const char *id, size_t idlen,
                      const char *s, size_t n, const struct lp_jevent *ev);

/* Parses the "_id" of an archive line s[0..n): 0 with ms/seq, or -1.
 * "<ms>-<seq>", or "<i>-<ms>-<seq>" (an entry of shard i of a sharded
 * stream, logpipe-drain's conf id_prefix): its ms and seq. The duplicate
 * check tells the shards apart (the same ms-seq on two shards are two
 * entries); the drop lists (lp_archive_write, _drop_lines) do not: the
 * lines of one drain's batch are all of one stream. */
int lp_archive_line_id(const char *s, size_t n, uint64_t *ms,
                       uint64_t *seq);

#endif
