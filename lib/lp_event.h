/* lp_event.h -- the event time, shared by send and drain */
#ifndef LP_EVENT_H
#define LP_EVENT_H

#include <stdint.h>

#include "lp_json.h"
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

#endif
