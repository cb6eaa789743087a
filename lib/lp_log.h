/* lp_log.h -- diagnostics on stderr, as text or one JSON object per line */
#ifndef LP_LOG_H
#define LP_LOG_H

enum { LP_LOG_TEXT, LP_LOG_JSON };

/* prog is borrowed for the life of the process. verbosity: -1 quiet
 * (errors only), 0 normal (warnings too), 1 -v, 2 -vv. */
void lp_log_init(const char *prog, int format, int verbosity);

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

/*
 * An info line (shown with -v) with fields: kv is "key=value key=value",
 * values without spaces. Text: "prog: msg key=value ..."; JSON: the
 * fields as members, numbers as numbers.
 */
void lp_trace(const char *msg, const char *kv);

#endif
