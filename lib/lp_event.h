/* lp_event.h -- one event's checks (JSON, time, members), shared by the tools */
#ifndef LP_EVENT_H
#define LP_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "lp_json.h"
#include "lp_parse.h"          /* LP_ERRLEN */
#include "lp_time.h"           /* LP_TIME_MIN, LP_TIME_MAX */

/*
 * The time of an event from its time member v (SPEC 2): a number of epoch
 * seconds (fraction allowed) or an RFC 3339 string, both cut to the
 * millisecond toward minus infinity (lp_epoch_ms_parse), never rounded.
 * Returns 1 with *ms set, 0 when the member is absent or null, -1 with err
 * (LP_ERRLEN) when it is neither, or outside years 0000..9999.
 */
int lp_event_time(const char *s, const struct lp_jval *v, int64_t *ms,
                  char *err);

/*
 * The checks send makes of each event (SPEC 2, send's --time-field,
 * --max-age, --max-skew, --require, --max-depth, --max-members), as an
 * object that send and logpipe-http share, so that an event is judged the
 * same whichever door it comes in by, with the same words (a rejected
 * event's code goes to the DLQ, its message to the user).
 */
#define LP_EVENT_MAXREQ 32      /* --require members at most */

struct lp_event_rules {
    struct lp_jkeys keys;       /* the time member, the required ones; a
                                   caller may add its own (a rate key) */
    struct lp_jlimits lim;
    int time_idx;               /* in keys; -1: no time member */
    int nreq;
    int req_idx[LP_EVENT_MAXREQ];
    const char *req[LP_EVENT_MAXREQ];
    int64_t max_age, max_skew;  /* ms; 0: off */
};

/*
 * Fills r: time_field ("" or NULL: none), the nreq names of req (borrowed
 * for r's life, as time_field is), max_depth and max_members (0: the
 * defaults, 64 and no limit), max_age and max_skew in ms (0: off).
 * Returns 0, or -1 with err ("--require: too many members ...").
 */
int lp_event_rules_init(struct lp_event_rules *r, const char *time_field,
                        char *const *req, int nreq, uint64_t max_depth,
                        uint64_t max_members, int64_t max_age,
                        int64_t max_skew, char *err);

/* What lp_event_check and lp_event_line found wrong with an event. */
struct lp_event_bad {
    const char *code;           /* the DLQ's error: "invalid-json",
                                   "not-object", "bad-time", "too-old",
                                   "too-new", "missing-member" */
    char msg[LP_ERRLEN + 64];   /* "invalid JSON: unexpected 'N' at byte
                                   20", "element 2: not a JSON object" */
};

/*
 * Judges txt[0..n) (trimmed) as one event at wall-clock time now (ms):
 * one JSON object within r's limits, its time within the window, its
 * required members there. Returns 0 with ev filled (its spans index txt;
 * ev->cut says what to drop to store it: lp_json_cut_copy), or -1 with
 * bad filled. label, when not NULL ("element 2"), starts bad->msg.
 * Allocates nothing (a number of 64 bytes or more in the time member is
 * copied to the heap by lp_json_number, then freed).
 */
int lp_event_check(const struct lp_event_rules *r, const char *txt, size_t n,
                   int64_t now, const char *label, struct lp_jevent *ev,
                   struct lp_event_bad *bad);

/*
 * One line of input as send splits it into events: nothing for a blank
 * line; a line that starts with '[' is an array of events, valid JSON as a
 * whole (else the whole line is rejected: "invalid JSON: ..."), then each
 * element judged on its own as "element K" (1-based: "element 2: not a
 * JSON object"); any other line is one event. Trims JSON whitespace
 * first. Calls fn once per event or rejection, in order: ev NULL and bad
 * set for a rejection, whose bytes are the line as given for a whole line
 * (as send's --rejects copies it), or the element; element is 0 for the
 * whole line, else K. Returns the number of calls. fn may leave by
 * longjmp: nothing is held across its calls.
 *
 * Inline, so that in each caller fn is a direct call the compiler can fold
 * in: out of line, the callback hop and its frames cost send's loop about
 * 1% of its instructions an event (callgrind); the arrays are
 * lp_event_array's.
 */
typedef void lp_event_fn(void *ctx, const char *txt, size_t n, int element,
                         const struct lp_jevent *ev,
                         const struct lp_event_bad *bad);

/* lp_event_line of a line whose trimmed txt[0..n) starts with '['. */
int lp_event_array(const struct lp_event_rules *r, const char *line,
                   size_t len, const char *txt, size_t n, int64_t now,
                   lp_event_fn *fn, void *ctx);

static inline int lp_event_line(const struct lp_event_rules *r,
                                const char *line, size_t len, int64_t now,
                                lp_event_fn *fn, void *ctx)
{
    const char *txt = line;
    size_t n = len;
    struct lp_jevent ev;
    struct lp_event_bad bad;

    lp_json_trim(&txt, &n);
    if (n == 0)
        return 0;
    if (*txt == '[')
        return lp_event_array(r, line, len, txt, n, now, fn, ctx);
    if (lp_event_check(r, txt, n, now, NULL, &ev, &bad) < 0)
        fn(ctx, line, len, 0, NULL, &bad);
    else
        fn(ctx, txt, n, 0, &ev, NULL);
    return 1;
}

#endif
