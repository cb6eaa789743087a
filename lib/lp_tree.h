/* lp_tree.h -- the files of an archive tree, with their days */
#ifndef LP_TREE_H
#define LP_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "lp_layout.h"

enum {
    LP_T_JSONL,                 /* a day file being written */
    LP_T_GZ,                    /* a compressed day file */
    LP_T_WAL,                   /* a logpipe-send WAL segment */
    LP_T_TMP                    /* a logpipe-rotate temp file */
};

struct lp_tfile {
    char *rel;                  /* path relative to the root */
    int kind;
    int has_day;                /* 0: no day in its name */
    int64_t day;                /* days since 1970-01-01 (negative before),
                                   when has_day */
    uint64_t size;
    int64_t mtime_ms;
};

/*
 * Collects the regular files below dirfd whose names say what they are
 * (*.jsonl, *.jsonl.gz, wal-*.log, .*.tmp), without following symbolic
 * links and skipping other dot files. The day comes from the layout when
 * the path matches it, else from a YYYY-MM-DD in the file name. Returns 0
 * with *out (caller frees with lp_tree_free) and *n, or -1 with err.
 */
int lp_tree_walk(int dirfd, const struct lp_layout *layout,
                 struct lp_tfile **out, size_t *n, char *err);
void lp_tree_free(struct lp_tfile *v, size_t n);

/* The day of a file name from its YYYY-MM-DD: returns 1 with *day, or 0
 * when it has none. Every day number is a day (1969-12-31 is -1): "no
 * day" is the return value, never a day number. */
int lp_tree_name_day(const char *name, int64_t *day);

/* Orders files by day (those without a day last), then path. */
int lp_tfile_cmp(const void *a, const void *b);

/* Removes the empty directories below dirfd (not dirfd itself); calls
 * back on each removed one (may be NULL). Returns the count. */
int lp_tree_prune(int dirfd, void (*removed)(const char *rel, void *arg),
                  void *arg);

#endif
