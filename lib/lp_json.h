/* lp_json.h -- strict RFC 8259 validation and top-level member spans */
#ifndef LP_JSON_H
#define LP_JSON_H

#include <stddef.h>
#include <stdint.h>

#define LP_JSON_MAXKEYS 32      /* members a tool can ask for */
#define LP_JSON_MAXCUTS 8       /* "_id" members one event may carry */
#define LP_JSON_DEPTH 64        /* default nesting limit (SPEC 2) */

enum lp_jtype {
    LP_JNONE = 0,               /* member absent */
    LP_JOBJECT, LP_JARRAY, LP_JSTRING, LP_JNUMBER,
    LP_JTRUE, LP_JFALSE, LP_JNULL
};

/* A value inside the scanned buffer: [off, off+len), quotes included. */
struct lp_jval {
    uint32_t off;
    uint32_t len;
    uint8_t type;               /* enum lp_jtype */
    uint8_t esc;                /* a string that holds a backslash escape */
};

/* The top-level members a tool wants, compiled once at start. */
struct lp_jkeys {
    int n;
    const char *name[LP_JSON_MAXKEYS];
    size_t len[LP_JSON_MAXKEYS];
    uint64_t lens;              /* bit k: a name of length k (63: >= 63) */
};

/* Limits, checked while scanning (SPEC 2; 0 = no limit for members). */
struct lp_jlimits {
    int depth;
    uint32_t members;           /* per object or array, at any depth */
};

/* What a scan of one event found. */
struct lp_jevent {
    struct lp_jval val[LP_JSON_MAXKEYS];    /* indexed like lp_jkeys */
    uint32_t nmembers;
    uint32_t nids;              /* of them, "_id" members (all cut) */
    int ncuts;                  /* byte ranges that drop every "_id" */
    struct { uint32_t from, to; } cut[LP_JSON_MAXCUTS];
};

struct lp_jerr {
    size_t off;                 /* 0-based offset of the offending byte */
    int not_object;             /* valid JSON, but not an object */
    char msg[112];              /* "unexpected 'N' at byte 20" */
};

/* Adds name to the wanted set; returns its index, or -1 when full. A name
 * asked for twice gets the same index. Borrows name for the set's life. */
int lp_jkeys_add(struct lp_jkeys *k, const char *name);

/* Is s[0..n) exactly one JSON value (surrounded by optional whitespace)?
 * Returns 0, or -1 with e filled. Allocates nothing. */
int lp_json_valid(const char *s, size_t n, const struct lp_jlimits *lim,
                  struct lp_jerr *e);

/*
 * Validates s[0..n) as one JSON object and records, in one pass, the value
 * of the last occurrence of every wanted key (escaped keys are compared
 * decoded), the member count, and the ranges to cut to drop every "_id"
 * member. Returns 0, or -1 with e filled; e->not_object tells valid JSON
 * that is not an object from invalid JSON.
 */
int lp_json_event(const char *s, size_t n, const struct lp_jkeys *k,
                  const struct lp_jlimits *lim, struct lp_jevent *ev,
                  struct lp_jerr *e);

/* Length of the event once ev's cuts are applied. */
size_t lp_json_cut_len(const struct lp_jevent *ev, size_t n);

/* Copies s[0..n) without ev's cuts to out (lp_json_cut_len bytes). */
void lp_json_cut_copy(const struct lp_jevent *ev, const char *s, size_t n,
                      char *out);

/*
 * Steps through the elements of a top-level array that lp_json_valid
 * accepted: start with *pos = 0; returns 1 with the next element at
 * s[*off .. *off+*len) and its type, or 0 after the last one.
 */
int lp_json_array_next(const char *s, size_t n, size_t *pos, size_t *off,
                       size_t *len, int *type);

/* Decodes the JSON string value v (quotes included) into out[0..cap).
 * Returns the decoded length, or -1 when it does not fit. No NUL added. */
long lp_json_unescape(const char *s, const struct lp_jval *v, char *out,
                      size_t cap);

/* The number value v as a double, correctly rounded whatever its length;
 * returns 0, or -1 when out of range (or out of memory: a number of 64
 * bytes or more is copied to the heap). */
int lp_json_number(const char *s, const struct lp_jval *v, double *out);

/* Narrows s[0..*n) to what lies between leading and trailing JSON
 * whitespace (space, tab, CR, LF); *n becomes 0 for a blank line. */
void lp_json_trim(const char **s, size_t *n);

/* The first non-whitespace byte of s[0..n), or 0 when there is none. */
int lp_json_first(const char *s, size_t n);

#endif
