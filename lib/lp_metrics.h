/* lp_metrics.h -- Prometheus text format metrics, written atomically */
#ifndef LP_METRICS_H
#define LP_METRICS_H

#include <stdint.h>

#include "lp_notice.h"

/*
 * A tool registers its metrics at start and updates them per batch (not
 * per event); lp_metrics_write renders every metric into FILE.tmp.PID and
 * renames it over FILE, so a reader (node_exporter's textfile collector)
 * never sees half a file. Names follow Prometheus conventions:
 * logpipe_<tool>_<what>_total for counters, _seconds for durations.
 */
struct lp_metrics;
struct lp_metric;

/* nt (copied; NULL: silent) hears of a failed periodic write, see
 * lp_metrics_tick. NULL when out of memory. */
struct lp_metrics *lp_metrics_new(const struct lp_notify *nt);
void lp_metrics_free(struct lp_metrics *m);

/* A label every series of m carries, before its own ('shard="3"': one
 * process of several that write one metric each). Copied. 0, or -1
 * when out of memory (or m NULL). */
int lp_metrics_label(struct lp_metrics *m, const char *label);

/*
 * Registers a counter, gauge or histogram. name: the full metric name;
 * labels: "" or 'result="sent"' (the same name may be registered with
 * several label sets; help is taken from the first). Histograms get the
 * buckets given (ascending, +Inf is added). Returns the metric, or NULL
 * when out of memory (updates to NULL are ignored).
 */
struct lp_metric *lp_counter(struct lp_metrics *m, const char *name,
                             const char *labels, const char *help);
struct lp_metric *lp_gauge(struct lp_metrics *m, const char *name,
                           const char *labels, const char *help);
struct lp_metric *lp_histogram(struct lp_metrics *m, const char *name,
                               const char *labels, const char *help,
                               const double *bounds, int nbounds);

/* A counter whose value is *src (borrowed: it must outlive m), read when
 * m is written: for a count the caller keeps anyway, counted once. */
struct lp_metric *lp_counter_of(struct lp_metrics *m, const char *name,
                                const char *labels, const char *help,
                                const uint64_t *src);

/* Buckets for durations from 100 microseconds to 10 seconds. */
extern const double lp_seconds_buckets[];
extern const int lp_seconds_nbuckets;

void lp_metric_add(struct lp_metric *c, double v);
void lp_metric_set(struct lp_metric *g, double v);
void lp_metric_observe(struct lp_metric *h, double v);
double lp_metric_value(const struct lp_metric *c);

/* Writes every metric to path atomically. Returns 0 or -1 with err. */
int lp_metrics_write(struct lp_metrics *m, const char *path, char *err);

/* The same for text already rendered (a tool that merges the metrics
 * of several processes). */
int lp_metrics_write_text(const char *path, const char *text, char *err);

/* Writes m when interval_ms passed since the last write, or when force;
 * a failure is said once per m, as a warning notice with the err of
 * lp_metrics_write (the tool goes on: metrics are not worth stopping a
 * pipeline for). Nothing without m or path. */
void lp_metrics_tick(struct lp_metrics *m, const char *path,
                     int64_t interval_ms, int force);

/* Renders every metric into a malloc'd NUL-terminated string; caller
 * frees. NULL when out of memory. */
char *lp_metrics_render(struct lp_metrics *m);

#endif
