/* lp_jsource.h -- the systemd journal as a source of JSON events */
#ifndef LP_JSOURCE_H
#define LP_JSOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "lp_buf.h"

/*
 * Reads journal entries with sd-journal (libsystemd) and hands each back as
 * one JSON event, with the entry's cursor for the caller to commit with it
 * (logpipe-send commits it with the batch the event went in, so a restart
 * resumes just after the last entry Redis stored: lp_jsource_conf.cursor).
 * Only lp_jsource.c includes sd-journal.h.
 *
 * The event of an entry, one JSON object, members in this order:
 *
 *   timestamp  __REALTIME_TIMESTAMP as RFC 3339 UTC with microseconds,
 *              "2026-12-06T13:20:00.123456Z" (lp_rfc3339_parse reads it to
 *              the millisecond); always there. A time past year 9999 has
 *              five digits of year, which send refuses as bad-time.
 *   level      PRIORITY 0..7 as emerg alert crit err warning notice info
 *              debug; absent when the entry has no PRIORITY, and when its
 *              first PRIORITY is not a single digit 0..7 (that PRIORITY is
 *              then an ordinary field, "priority").
 *   service    the first _SYSTEMD_UNIT, else the first SYSLOG_IDENTIFIER;
 *              absent when there is neither (when both are there,
 *              SYSLOG_IDENTIFIER is an ordinary field).
 *   host       the first _HOSTNAME.
 *   message    the first MESSAGE.
 *   the rest   every other field under its name lower-cased, leading
 *              underscores kept ("_PID" is "_pid", "PID" is "pid": the
 *              underscore is what tells journald's trusted fields from
 *              what the program said, and keeping it keeps them apart).
 *              A field that appears more than once in the entry is one
 *              member whose value is an array of its values, in order.
 *
 * "First" and "in order" are the order sd-journal gives an entry's fields
 * in (the order their data first came into the journal file). The
 * address fields (__CURSOR, __MONOTONIC_TIMESTAMP) are not in the event:
 * the cursor comes back beside it.
 *
 * Names are never doubled: a field value that cannot have its lower-case
 * name -- that name is one logpipe sets (timestamp, level, service, host,
 * message, truncated) or "_id" (the stream ID drain adds, which send cuts),
 * or the value is a later one of a field whose first value went to level,
 * service, host or message -- goes under its journal name as it is, upper
 * case ("LEVEL", "_ID", "MESSAGE"), which no lower-cased name can be.
 * Journal field names are upper case letters, digits and '_'; a name with
 * other bytes (a damaged or foreign file) is escaped like a value and is
 * not guaranteed apart.
 *
 * Values: a value that is valid UTF-8 (RFC 3629) and holds no NUL byte is
 * a JSON string, every control character escaped (\n \t ..., \u001b),
 * quotes and backslashes escaped: nothing is emitted raw. Any other value
 * (binary data, text in another encoding, a NUL) is an object
 * {"base64":"..."} (RFC 4648, padded): a consumer tells the two apart by
 * the JSON type, a string is always text, an object always bytes. The
 * mapped members follow the same rule (a MESSAGE in Latin-1 is
 * "message":{"base64":"..."}). Depth 3 at most (object, array, base64
 * object).
 *
 * Size: an event longer than conf.max_event bytes is cut to fit: it keeps
 * timestamp and each later member, in the order above, that still fits
 * whole; then the message, when it did not fit whole and is text, is cut
 * at a character boundary to what room is left (its escapes whole); it
 * ends with "truncated":N, the number of field values dropped or cut (N >=
 * 1). An event without "truncated" is the whole entry. A field that
 * sd-journal reports it cannot read ends the entry's fields there (it
 * cannot step past it) and counts one in N; note that libsystemd 252
 * passes over a field it cannot decompress without a word, and over
 * journal files it cannot open (permissions), so such a field is simply
 * absent, such a file's entries never come. When max_event
 * cannot hold even the timestamp and the mark (under 67 bytes), the entry
 * is skipped: it comes back as LP_JENTRY_SKIPPED with its cursor and no
 * event, for the caller to say so and commit past it. libsystemd is asked
 * for no more than max_event + 128 bytes of any field (its data
 * threshold): a large compressed field (a core dump) is never decompressed
 * whole.
 *
 * Each entry is read once, in the journal's order; seeking just after a
 * cursor and then reading to the end, whatever was there or was appended
 * meanwhile, gives every later entry exactly once. A cursor whose entry
 * is gone (vacuumed) resumes at the closest entry after its place, as
 * journalctl --after-cursor does.
 *
 * Waiting for new entries fits a poll loop: poll lp_jsource_fd for
 * lp_jsource_events with lp_jsource_timeout, then lp_jsource_process, then
 * lp_jsource_next until it returns 0. lp_jsource_wait does the three for a
 * caller with nothing else to wait for.
 *
 * An lp_jsource is used by one thread.
 */

struct lp_jsource;

struct lp_jsource_conf {
    const char *dir;            /* --journal-dir: the journal files of DIR;
                                   NULL: the local system journal (what
                                   the user may read: root, or a member of
                                   group systemd-journal or adm) */
    const char *const *match;   /* nmatch "FIELD=VALUE" (--journal-match):
                                   the same FIELD ORed, different ones
                                   ANDed, as journalctl */
    int nmatch;
    const char *cursor;         /* start just after this entry's place */
    int from_end;               /* no cursor: 1 = only entries added from
                                   now on, 0 = from the oldest entry */
    size_t max_event;           /* longest event, in bytes without a
                                   newline (send's --max-line); 0 = no
                                   limit */
};

enum lp_jentry_kind {
    LP_JENTRY_WHOLE = 0,        /* the whole entry */
    LP_JENTRY_CUT,              /* cut to max_event ("truncated" in it) */
    LP_JENTRY_SKIPPED           /* max_event too small for anything */
};

/* One entry, as lp_jsource_next gives it; everything borrowed from the
 * source, valid until its next call to lp_jsource_next or _free. */
struct lp_jentry {
    const char *event;          /* the JSON object, no newline, a NUL
                                   after it; NULL when skipped */
    size_t len;
    const char *cursor;         /* NUL-terminated, opaque */
    uint64_t realtime_us;       /* __REALTIME_TIMESTAMP */
    int kind;                   /* enum lp_jentry_kind */
    int dropped;                /* values dropped or cut (kind CUT) */
};

/*
 * Opens the journal conf says (copied: conf's strings are borrowed only
 * during the call), applies its matches, seeks, and sets up the watch for
 * new entries. Returns NULL with err ("--journal-dir DIR: No such file or
 * directory", "--journal-match FOO: not FIELD=VALUE", "journal cursor:
 * Invalid argument").
 */
struct lp_jsource *lp_jsource_new(const struct lp_jsource_conf *conf,
                                  char *err);

/* Closes the journal; accepts NULL. */
void lp_jsource_free(struct lp_jsource *j);

/*
 * Where reading starts, as opened (before the first lp_jsource_next): the
 * cursor of the entry it starts after when it was opened at the end of a
 * journal that held entries (from_end), or NULL; *head: it starts at the
 * journal's first entry (no cursor given, and from_end found none, or not
 * from_end). send --journal --shards records it on every shard before it
 * reads, so that a restart knows where a first run began. Borrowed.
 */
const char *lp_jsource_start(const struct lp_jsource *j, int *head);

/*
 * The next entry after the last one given (or after the place seeked).
 * Returns 1 with e filled, 0 when there is none now (wait, then ask
 * again), -1 with err (the journal could not be read, out of memory).
 */
int lp_jsource_next(struct lp_jsource *j, struct lp_jentry *e, char *err);

/* The descriptor to poll for new entries, the poll events to ask for, and
 * the longest time to wait in ms (-1: no limit; journal files on a file
 * system without inotify are polled). */
int lp_jsource_fd(const struct lp_jsource *j);
short lp_jsource_events(const struct lp_jsource *j);
int lp_jsource_timeout(const struct lp_jsource *j);

/* After a poll of lp_jsource_fd (whether it said readable or timed out):
 * takes in what changed. Returns 1 when entries may have been added
 * (call lp_jsource_next), 0 when nothing changed, -1 with err. */
int lp_jsource_process(struct lp_jsource *j, char *err);

/* Waits at most timeout_ms (-1: no limit) for the journal to change, as
 * poll + lp_jsource_process. Returns 1, 0 (nothing changed: the time is
 * over, or a signal came) or -1 with err. */
int lp_jsource_wait(struct lp_jsource *j, int timeout_ms, char *err);

/* A field of an entry, "NAME=value", as sd-journal gives it. */
struct lp_jfield {
    const char *p;
    size_t len;
};

/*
 * The event of an entry made of realtime_us and the fields f[0..n), into
 * out (cleared first), with the rules above; max_event 0 = no limit.
 * Returns the entry's kind (LP_JENTRY_*) with *dropped set, or -1 when
 * out of memory. A field without '=' is passed over. lp_jsource_next
 * uses it; exported for the tests.
 */
int lp_jsource_format(struct lp_buf *out, uint64_t realtime_us,
                      const struct lp_jfield *f, size_t n, size_t max_event,
                      int *dropped);

#endif
