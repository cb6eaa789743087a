/* lp_rotate.h -- the rotate engine: compress closed days, apply retention */
#ifndef LP_ROTATE_H
#define LP_ROTATE_H

#include <stdint.h>

#include "lp_notice.h"

/*
 * Housekeeping of an archive tree, safe while drains write and from cron:
 *
 *   compress  a .jsonl of a day before today (UTC, read from the file name
 *             through the layout), not written for the grace time: under
 *             the file's lock (the one drains append under), to a temp file
 *             in the same directory, verified by decompressing it, synced,
 *             renamed to .jsonl.gz, the directory synced, then the .jsonl
 *             unlinked;
 *   append    the same for a .jsonl whose day is compressed already (late
 *             events): the temp file gets the old members, then a new one;
 *   delete    days past retain, and the oldest days while the tree is
 *             larger than max_size; an empty .jsonl instead of compressing
 *             it, under its lock;
 *   rmdir     directories left empty;
 *   cleanup   temp files of a rotate that was killed.
 *
 * A rotate killed after the rename but before the unlink leaves both
 * files: the next run sees that the .jsonl.gz's last member (its last 8
 * bytes: CRC-32 and length) is the .jsonl, and only unlinks it.
 * One rotate at a time per tree: .logpipe-rotate.lock at its root, taken
 * by lp_rotate_new and held until lp_rotate_free.
 *
 * The engine owns its state (struct lp_rotate): the tree's descriptor, the
 * layout, the lock, the copy buffer, what the run did. It says each action
 * through the caller's on_action, each file it could not handle through
 * the notify (LP_NOTICE_ERROR; a warning as LP_NOTICE_WARN), both as they
 * happen, and returns one result for the run.
 *
 * jobs > 1 compresses with that many forked workers pulling file
 * indexes from a pipe, so a big file does not hold up the rest; each ends
 * with _exit(its result) after sending its counts up another pipe (see
 * lib/README, the exceptions). on_action and the notify are then called
 * in the workers: they must write with one write(2) each (lines of
 * workers never mix) and keep no state the parent needs.
 */

/* What an action is, an index into lp_rotate_action_names. */
enum {
    LP_ROT_COMPRESS, LP_ROT_APPEND, LP_ROT_UNLINK, LP_ROT_DELETE,
    LP_ROT_CLEANUP, LP_ROT_RMDIR, LP_ROT_NACTIONS
};

/* "compress", "append", "unlink", "delete", "cleanup", "rmdir" */
extern const char *const lp_rotate_action_names[LP_ROT_NACTIONS];

/* One action taken (or, in a dry run, that would be). Valid during the
 * on_action call only. */
struct lp_rotate_action {
    int what;                   /* LP_ROT_* */
    const char *path;           /* from the tree's root */
    int64_t bytes_in;           /* -1: not said */
    int64_t bytes_out;          /* -1: not said */
    int64_t ms;                 /* how long it took; -1: not said */
    const char *reason;         /* "retain", "max-size", "empty",
                                   "already compressed", or NULL */
};

/* What a run did: the actions by kind, bytes compressed and written, the
 * files that could not be handled. Summed over the workers. */
struct lp_rotate_counts {
    uint64_t act[LP_ROT_NACTIONS];
    uint64_t bytes_in, bytes_out, errors;
};

struct lp_rotate_conf {
    const char *dir;            /* the tree's root, borrowed; named in
                                   messages as it is given */
    const char *layout;         /* the drains' layout, to read days */
    int64_t grace;              /* ms: leave files written this recently */
    int64_t retain;             /* ms: delete days that ended longer ago;
                                   0: keep them */
    uint64_t max_size;          /* bytes: delete the oldest days while the
                                   tree is larger; 0: no limit */
    uint64_t level;             /* gzip level, 1 to 9 */
    uint64_t jobs;              /* files compressed at once, >= 1 */
    int dry_run;                /* say the actions, do nothing */
    /* Called for each action. It may end the process (the tool does when
     * its reader went away: a worker killed by SIGPIPE ends the run with
     * LP_ROTATE_EPIPE). */
    void (*on_action)(void *ctx, const struct lp_rotate_action *a);
    void *ctx;                  /* on_action's, borrowed */
    struct lp_notify notify;    /* copied; errors and warnings */
    /* Test-only (LOGPIPE_TEST_CRASH): called at "after-temp",
     * "after-rename" and "after-unlink"; NULL in production. */
    void (*test_hook)(const char *point);
};

/* Results of lp_rotate_new and lp_rotate_run; the tool maps each to its
 * exit status. */
enum {
    LP_ROTATE_OK,
    LP_ROTATE_ELAYOUT,          /* the layout does not parse (err) */
    LP_ROTATE_ENODIR,           /* the root cannot be opened (err) */
    LP_ROTATE_EBUSY,            /* another rotate holds the tree (err) */
    LP_ROTATE_EIO,              /* I/O error: the lock, the walk (err), or
                                   a file (said through the notify) */
    LP_ROTATE_EINTERNAL,        /* a file changed while compressed, no
                                   memory, no worker (said, or not) */
    LP_ROTATE_EPIPE             /* a worker was killed by SIGPIPE */
};

struct lp_rotate;

/*
 * Parses the layout, opens the tree's root and takes its rotate lock,
 * without waiting. Returns LP_ROTATE_OK with *out (free it with
 * lp_rotate_free), or ELAYOUT, ENODIR, EBUSY or EIO with err, worded for
 * the user ("another logpipe-rotate works on DIR: nothing done"), and
 * *out NULL. c is copied; its strings are borrowed for the object's life.
 */
int lp_rotate_new(const struct lp_rotate_conf *c, struct lp_rotate **out,
                  char *err);

/*
 * Runs once over the tree: cleanup, retention, compression, max-size, and
 * the removal of empty directories; a stop signal (lp_stop) skips the
 * files not yet begun. A file that cannot be handled is said through the
 * notify and the run goes on: the result is then LP_ROTATE_EIO when one
 * of them was an I/O error, else the first other one. A walk of the tree
 * that fails ends the run with LP_ROTATE_EIO and err. LP_ROTATE_EPIPE:
 * a worker was killed by SIGPIPE (its reader went away); the run stopped
 * after the workers ended, with their counts summed.
 */
int lp_rotate_run(struct lp_rotate *r, char *err);

/* What the run has done so far; borrowed from r. */
const struct lp_rotate_counts *lp_rotate_counts(const struct lp_rotate *r);

/* When the run's "now" was taken (Unix ms): days before its day are
 * closed, grace and retain count back from it. */
int64_t lp_rotate_now(const struct lp_rotate *r);

/* Drops the lock, closes the tree, frees r. NULL is fine. */
void lp_rotate_free(struct lp_rotate *r);

#endif
