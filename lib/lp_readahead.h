/* lp_readahead.h -- asks the disk for files ahead of their reader */
#ifndef LP_READAHEAD_H
#define LP_READAHEAD_H

#include <stddef.h>

/*
 * Read-ahead on a thread of its own: files that are read in order, from
 * start to end, are asked of the disk (posix_fadvise WILLNEED), a step at
 * a time, up to a window past what the reader says it has read, so that
 * the disk works while the reader parses. The kernel's own read-ahead
 * (128 KiB windows) made a replay from a cold cache take the disk's time
 * plus the parsing time; asking from the reading thread itself did not
 * help much, as the advice call waits while the device queue is full.
 * Advice only: nothing depends on it, and a failure is silent.
 *
 * Only regular files are asked for, each looked at before it is opened:
 * opening a FIFO lets its writer write and go, and the close then drops
 * what it wrote before the reader opens it.
 */

/* How far ahead of the reader, and how much one advice asks for. */
#define LP_RA_AHEAD (16 << 20)
#define LP_RA_STEP (4 << 20)

struct lp_readahead;

/*
 * Starts the thread over the files names[0..n), in the order they will be
 * read (the names are copied). Signals stay with the caller's threads.
 * NULL when n is 0, when out of memory or when no thread can be started:
 * the reading goes on without read-ahead.
 */
struct lp_readahead *lp_readahead_start(const char *const *names, size_t n);

/* The reader has read n more bytes (n <= 0, or ra NULL: nothing). */
void lp_readahead_read(struct lp_readahead *ra, long n);

/* Stops the thread (after the advice in hand, if any), waits for it and
 * frees ra. Accepts NULL. */
void lp_readahead_free(struct lp_readahead *ra);

#endif
