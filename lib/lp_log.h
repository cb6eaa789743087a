/* lp_log.h -- diagnostics on stderr, as text or one JSON object per line */
#ifndef LP_LOG_H
#define LP_LOG_H

#include <stdint.h>

#include "lp_notice.h"

enum { LP_LOG_TEXT, LP_LOG_JSON };

/* prog is borrowed for the life of the process. verbosity: -1 quiet
 * (errors only), 0 normal (warnings too), 1 -v, 2 -vv. */
void lp_log_init(const char *prog, int format, int verbosity);

/* What every line of this process is about, besides the program: one of
 * several processes of a tool (logpipe-drain's child for shard 3:
 * key "shard", value 3). Text: "prog: shard 3: msg"; JSON: a member
 * "shard":3 after "prog". key NULL: none again. */
void lp_log_context(const char *key, long value);

/* Parses "text" or "json"; returns the format or -1. */
int lp_log_format(const char *s);

int lp_log_verbosity(void);
const char *lp_log_prog(void);

/*
 * The message is formatted, then every control character in it is escaped
 * (\xNN in text, \u00NN in JSON), so event data quoted in a message can
 * neither forge log lines nor move a terminal's cursor.
 */
void lp_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lp_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The tools' notify for lib objects (lp_notice.h): a notice is said as
 * lp_error, lp_warn or lp_info would say its text, at its level. */
extern const struct lp_notify lp_log_notify;

/*
 * An info line (shown with -v) with fields: kv is "key=value key=value",
 * values without spaces. Text: "prog: msg key=value ..."; JSON: the
 * fields as members, numbers as numbers.
 */
void lp_trace(const char *msg, const char *kv);

/*
 * A budget of per-line messages: those about one input line, event or
 * entry (a rejected line, an entry moved to the DLQ, a late event), which
 * a bad input can produce by the million. Each kind has its own budget.
 * The first LP_BUDGET_SHOWN messages of a kind in a period of
 * LP_BUDGET_PERIOD ms are said; the rest are counted, and when the period
 * is over (seen by the next message of the kind or by lp_log_tick) one
 * line says "N more WHAT in the last minute". lp_log_end says "N more WHAT"
 * for the period in hand at the end of the run. With -q none of this is
 * said (only what ends the run is); with -v every message is.
 * From one thread only.
 */
enum { LP_LEVEL_ERROR, LP_LEVEL_WARN };

#define LP_BUDGET_SHOWN 10
#ifndef LP_BUDGET_PERIOD        /* -DLP_BUDGET_PERIOD=1000 to try it by hand */
#define LP_BUDGET_PERIOD 60000
#endif

struct lp_budget {
    const char *what;           /* plural, borrowed: "invalid events" */
    int level;                  /* LP_LEVEL_ERROR or LP_LEVEL_WARN */
    int64_t since;              /* the period's start (lp_mono_ms); 0: none */
    uint64_t shown, held;       /* in the period */
    uint64_t total;             /* in the run, said or not */
    struct lp_budget *next;
};

/* Registers b (static storage: lp_log_tick and lp_log_end go over every
 * budget registered). level: of its messages and of its "N more" lines. */
void lp_budget_init(struct lp_budget *b, int level, const char *what);

/* Counts one message of b's kind; returns 1 when it is to be said (the
 * caller says it at b's level), 0 when it is only counted. */
int lp_budget_take(struct lp_budget *b);

/* lp_budget_take, then the message at b's level when it is to be said. */
void lp_budget_say(struct lp_budget *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Says "N more WHAT in the last minute" for each budget whose period is
 * over: call it from a loop that comes by when idle too. */
void lp_log_tick(void);

/* Milliseconds until lp_log_tick has such a line to say (0: due now);
 * -1 when nothing is held back. For a poll(2) timeout. */
int64_t lp_log_due(void);

/* At the end of a run: "N more WHAT" for what each budget held back. */
void lp_log_end(void);

#endif
