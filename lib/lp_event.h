/* lp_event.h -- the event time, shared by send and drain */
#ifndef LP_EVENT_H
#define LP_EVENT_H

#include <stdint.h>

#include "lp_json.h"

/* Years 0000..9999 in ms since the epoch: the range of a day file name. */
#define LP_TIME_MIN (-62167219200000LL)
#define LP_TIME_MAX (253402300799999LL)

/*
 * The time of an event from its time member v (SPEC 2): a number of epoch
 * seconds (fraction allowed) or an RFC 3339 string. Returns 1 with *ms
 * set, 0 when the member is absent or null, -1 with err (LP_ERRLEN) when
 * it is neither, or outside years 0000..9999.
 */
int lp_event_time(const char *s, const struct lp_jval *v, int64_t *ms,
                  char *err);

#endif
