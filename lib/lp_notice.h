/* lp_notice.h -- how lib tells its caller what it did on its own */
#ifndef LP_NOTICE_H
#define LP_NOTICE_H

/*
 * lib never prints and never exits. A call that fails says why in the
 * caller's err buffer and its result. A call that succeeds may still have
 * done something the user should hear of: mended a file (a partial last
 * line or a torn WAL tail cut off), passed one over (not a WAL segment),
 * reopened one rotated away, or failed at something not worth failing for
 * (a metrics write). It says so through the struct lp_notify its object
 * was made with (lp_archive_new, lp_wal_open, lp_metrics_new): fn gets a
 * whole message, worded like an err buffer's (no program name, lower case,
 * no full stop), valid during the call only. A NULL notify, or a NULL fn,
 * says nothing (tests, fuzzing). The tools pass lp_log_notify (lp_log.h),
 * which says it on stderr at its level.
 *
 * A callback rather than notices handed back: a notice is said when it
 * happens, in order with the caller's own messages (a rotated file is said
 * to be reopened before the next file's lock is waited for, which may take
 * long), with no list to allocate, bound or free, and without a notice
 * out-parameter on every call that might mend a file. The object keeps a
 * copy of the struct: one sink for all it does, where an err buffer is
 * one call's.
 */

/* Levels: a warning is said by default, an info with -v; an error (a
 * file an engine could not handle, and went on) even with -q. */
enum { LP_NOTICE_WARN, LP_NOTICE_INFO, LP_NOTICE_ERROR };

/* Room for a message: more than the tools' one line of diagnostic. */
#define LP_NOTICELEN 4096

struct lp_notify {
    void (*fn)(void *ctx, int level, const char *msg);
    void *ctx;                  /* the caller's, borrowed */
};

/* Formats the message and hands it to n's fn; nothing when n or its fn
 * is NULL. */
void lp_notice(const struct lp_notify *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
