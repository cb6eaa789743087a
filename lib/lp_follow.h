/* lp_follow.h -- files followed by name and glob, each line with its file's
 * identity and the position after it */
#ifndef LP_FOLLOW_H
#define LP_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "lp_notice.h"

/*
 * The engine behind send's --follow, as tail -F without its losses: the
 * caller commits each line's position with what it made of the line, and
 * hands the positions back to the next run, so a file continues where it
 * stopped.
 *
 * Patterns are paths whose last component may be a glob (fnmatch with
 * FNM_PERIOD: "*" does not match a leading dot), and whose directory part
 * may be a glob too ("/var/log/ * /app.log", without the spaces). The
 * engine watches the directories the patterns name (inotify: entries made,
 * renamed, deleted and files written in them) and walks them again every
 * poll interval whatever inotify says (network and overlay file systems,
 * a full inotify queue, no inotify at all): what inotify does is make
 * lines come sooner, never decide whether they come.
 *
 * Identity. A file is its device, its inode and a fingerprint: the length
 * and a 64-bit FNV-1a hash of its first min(size, LP_FOLLOW_FPLEN) bytes,
 * decided at the first read that finds the file not empty and kept for the
 * life of the identity, plus a generation that grows when the file is cut
 * back (copytruncate) or found rewritten. Its string, "DEV-INO-FPLEN-HASH-
 * GEN" in hex (at most LP_FOLLOW_IDLEN bytes with its NUL), is what the
 * caller commits a position for, and a producer name suffix.
 *
 *  - Device and inode follow a file through renames: a file renamed by
 *    rotation is found again under its new name in the directories
 *    watched (every entry of those directories whose inode is one we
 *    track is looked at, not only the names the patterns match), while we
 *    run or after a restart (the positions handed back), and is read to
 *    its end from where it stopped, never from its start again.
 *  - A file renamed away (to a name no pattern matches) or deleted while
 *    open is read to its end, and kept open until it has not grown for
 *    rotate_wait_ms: the lines a writer puts in it just before and just after
 *    the rename, until it reopens the name, are read too. A rotated file
 *    still in a watched directory stays known (closed) and is read again
 *    if it grows.
 *  - A file whose size falls below its position (copytruncate) is read
 *    again from 0 under a new identity (the next generation), said as a
 *    warning; so is a file whose first bytes are no longer its
 *    fingerprint (checked at every read, and when a file is found again
 *    after a restart: an inode reused by a new file, a file rewritten or
 *    cut back and written past its position). The old identity is
 *    forgotten (below).
 *  - A file is only ever taken up under a name a pattern matches: one
 *    made and renamed to a name no pattern matches before a walk saw it
 *    (several rotations while stopped, or within one poll interval
 *    without inotify) is never read. Patterns that match the rotated
 *    names too ("app.log*") read every file once, whatever its name.
 *  - What no identity can tell: a file cut back and written past its old
 *    position between two looks, whose first bytes are the same, looks
 *    like a file that grew (copytruncate loses or repeats lines by its
 *    nature); a file renamed out of the watched directories while closed
 *    (more files than max_open, or after a stop) and never seen again
 *    has its unread lines lost. Files under other names are recognised by
 *    the inode readdir(3) gives (d_ino), which some overlay file systems
 *    do not make the file's.
 *
 * Positions. A file never seen starts at 0, or, with from_end, at its end
 * when it is there at the first walk (a file that appears later is read
 * from its start). A line's end is the position to commit: the offset
 * after its newline. A position handed in whose file is not found is
 * kept, as is the position of a file that is gone (deleted, or renamed
 * out of the directories), for forget_ms; then lp_follow_next hands the
 * identity back (LP_FOLLOW_FORGET) for the caller to drop from its store.
 *
 * Lines. New data is read with pread(2) from the position into one buffer
 * of max_line + 1 bytes for all files (no buffer per file, no allocation
 * per line): a line comes back in place, valid until the next call. A
 * line still being written (no newline yet) is not given until its file
 * has not grown for partial_ms (send's --partial-timeout); then it is, as a line (partial set),
 * and what the writer adds to it later is the next line. A line longer
 * than max_line comes back in chunks (LP_FOLLOW_LONG, as lp_lines does):
 * commit only the end of the last. A CR before the newline and a UTF-8
 * BOM at offset 0 are dropped, as lp_lines drops them.
 *
 * Bounds. At most max_open files are open (the least recently read of
 * those still found under their names is closed first, and opened again
 * when it changes); the directories are walked and each file found stat'ed
 * once per poll interval and per inotify event; memory is a few hundred
 * bytes per file and the one buffer. Files take turns: one read of up to
 * max_line + 1 bytes each.
 *
 * Backpressure: nothing is read until the caller asks for the next line;
 * a file simply waits.
 *
 * The caller's loop: lp_follow_new, lp_follow_position for each committed
 * position, then lp_follow_next until it returns LP_FOLLOW_IDLE; then
 * poll(2) lp_follow_fd (when not -1) for POLLIN for at most
 * lp_follow_timeout ms, and lp_follow_next again.
 */

#define LP_FOLLOW_FPLEN 1024    /* bytes of a file its fingerprint covers */
#define LP_FOLLOW_IDLEN 64      /* room for an identity string */

struct lp_follow_conf {
    const char *const *patterns;        /* borrowed during lp_follow_new */
    size_t npatterns;
    size_t max_open;            /* 0: 256 */
    size_t max_line;            /* 0: 1 MiB */
    uint64_t partial_ms;        /* 0: 5000 */
    uint64_t rotate_wait_ms;    /* 0: 5000 */
    uint64_t poll_ms;           /* 0: 1000 */
    uint64_t forget_ms;         /* 0: 24 hours */
    int from_end;               /* files there at the first walk: at end */
    int no_inotify;             /* walk every poll_ms only (tests) */
    struct lp_notify notify;    /* copied; NULL fn: silent */
};

struct lp_follow;

enum {
    LP_FOLLOW_ERR = -1,         /* out of memory: err */
    LP_FOLLOW_IDLE = 0,         /* nothing now: poll, then ask again */
    LP_FOLLOW_LINE = 1,
    LP_FOLLOW_LONG = 2,         /* a chunk of a line over max_line */
    LP_FOLLOW_FORGET = 3        /* id: a position to drop */
};

struct lp_follow_line {
    const char *p;              /* the line, without its newline */
    size_t len;
    const char *id;             /* the file's identity */
    const char *path;           /* its name when last found */
    uint64_t start;             /* offset of the line's first byte */
    uint64_t end;               /* offset after it: the position */
    int partial;                /* given at partial_ms, no newline */
    int first, last;            /* LP_FOLLOW_LONG: first and last chunk */
    uint64_t *seq;              /* the caller's counter for this identity
                                   (send numbers the file's commands with
                                   it): kept with the identity, 0 for a new
                                   one, handed in by lp_follow_position */
};

/*
 * Makes the engine (copies the patterns; watches nothing yet). Returns
 * NULL with err when a pattern is empty or memory is short. When inotify
 * cannot be had (no_inotify, or the system's limit), lp_follow_fd is -1
 * and the directories are walked every poll_ms.
 */
struct lp_follow *lp_follow_new(const struct lp_follow_conf *c, char *err);
/* Closes every file and the inotify descriptor; accepts NULL. */
void lp_follow_free(struct lp_follow *f);

/*
 * A position committed earlier: the file of identity id continues at
 * offset, its counter (lp_follow_line.seq) at seq. Only before the first lp_follow_next; the last of two for one id
 * wins. Returns 0, or -1 with err when id is not an identity string or
 * memory is short.
 */
int lp_follow_position(struct lp_follow *f, const char *id, uint64_t offset,
                       uint64_t seq, char *err);

/*
 * The next line (LP_FOLLOW_LINE, or a chunk, LP_FOLLOW_LONG) into *out,
 * whose pointers are valid until the next call; or an identity to forget
 * (LP_FOLLOW_FORGET: out->id, out->path and out->end, its last position);
 * or LP_FOLLOW_IDLE when nothing is ready now. The first call walks the
 * directories. Files that cannot be read (EACCES...) are said once each
 * as a warning and tried again later. Returns LP_FOLLOW_ERR with err only
 * when memory is short.
 */
int lp_follow_next(struct lp_follow *f, struct lp_follow_line *out,
                   char *err);

/* The inotify descriptor to poll for POLLIN, or -1. */
int lp_follow_fd(const struct lp_follow *f);

/* Milliseconds until something is due (a walk, a partial line, a rotated
 * file to close, a position to forget); 0 when a file has data now. */
int lp_follow_timeout(struct lp_follow *f);

/* Files followed (known under a name) and open, for tests and metrics. */
size_t lp_follow_files(const struct lp_follow *f);
size_t lp_follow_open(const struct lp_follow *f);

#endif
