/* lp_layout.h -- archive path templates: "{service}/%Y-%m-%d.jsonl" */
#ifndef LP_LAYOUT_H
#define LP_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "lp_json.h"

#define LP_LAYOUT_MAXFIELDS 8
#define LP_LAYOUT_PATHMAX 1024

struct lp_layout;

/*
 * Compiles a template: literal text of [A-Za-z0-9._-] and '/', strftime
 * conversions %Y %y %m %d %H %M %S %j %F on the event time (UTC), and
 * {field} for a top-level member. The result must be a relative path with
 * no empty, "." or ".." component and no component starting with '.', and
 * its file name must end in ".jsonl" and hold the day (%F, or %Y %m %d),
 * which logpipe-rotate reads. A field's value may hold digits, so no
 * %Y %m %d or %F of the file name may have a field on both sides: its
 * digits would have no fixed place ("{host}-%F.jsonl" is fine,
 * "{host}-%F-{app}.jsonl" is refused). Returns 0, or -1 with err
 * (LP_ERRLEN).
 */
int lp_layout_new(const char *tmpl, struct lp_layout **out, char *err);
void lp_layout_free(struct lp_layout *l);

int lp_layout_nfields(const struct lp_layout *l);
const char *lp_layout_field(const struct lp_layout *l, int i);

/* Is s[0..n) a safe name: [A-Za-z0-9_][A-Za-z0-9._-]{0,63}? */
int lp_safe_name(const char *s, size_t n);

/*
 * Expands the template for an event s (scanned into ev) with time ms.
 * keyidx[i] is the lp_jkeys index of field i. A missing or null member
 * becomes "_none"; a string or integer must be a safe name. Returns the
 * path length, or -1 with err naming the field and value (unsafe-path),
 * or saying that ms is outside LP_TIME_MIN..LP_TIME_MAX (years
 * 0000..9999). lp_layout_match reads back paths shorter than
 * LP_LAYOUT_PATHMAX only: use a cap of at most that.
 */
long lp_layout_expand(const struct lp_layout *l, int64_t ms, const char *s,
                      const struct lp_jevent *ev, const int *keyidx,
                      char *out, size_t cap, char *err);

/*
 * Does the relative path rel (without a ".gz" suffix) match the template?
 * Fields match safe names, conversions their digits. Returns 1 with *day
 * (days since 1970-01-01, from %Y %m %d, %F, or %Y %j) when it does, 0
 * when not. For a path lp_layout_expand made, *day is the day of its time
 * (lp_layout_new refuses the templates where it could not be). Time
 * O(n * 64 * template length) at worst; a path of LP_LAYOUT_PATHMAX bytes
 * or more never matches. Uses about 17 KiB of stack.
 */
int lp_layout_match(const struct lp_layout *l, const char *rel, size_t n,
                    int64_t *day);

#endif
