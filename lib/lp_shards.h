/* lp_shards.h -- a stream spread over N stream keys (send --shards N):
 * the shards' names, and their count recorded in Redis */
#ifndef LP_SHARDS_H
#define LP_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "lp_redis.h"

/* shards of one stream at most */
#define LP_SHARDS_MAX 1024
/* the key that records a stream's count: "<stream>:shards", or in a
 * Redis Cluster "{<stream>}:shards" (lp_key_aux: the stream's slot) */
#define LP_SHARDS_SUFFIX ":shards"

/*
 * Can stream be spread over n shards? n in 1..LP_SHARDS_MAX, and the
 * name without '{' or '}': each shard's name carries a hash tag of its
 * own, which a name with braces would hide or break. 0, or -1 with err.
 */
int lp_shards_check(const char *stream, unsigned long n, char *err);

/*
 * The name of shard i (0 <= i < n) of stream: "<stream>:{<tag>}", where
 * tag is the smallest decimal number whose slot (CRC16 mod 16384) falls
 * in the i-th of n equal ranges of the slot space, so that the shards
 * spread evenly over the masters of a cluster that splits its slots in
 * ranges (as redis-cli --cluster create does), and their keys
 * ("<shard>:producers", its DLQ "<shard>:dlq") share each shard's slot.
 * The same in a standalone server, so that names do not change when a
 * deployment moves to a cluster. Returns the length, or -1 with err (n
 * or i out of range, the name longer than cap - 1).
 */
int lp_shard_name(const char *stream, unsigned i, unsigned n, char *out,
                  size_t cap, char *err);

/* The key that records the count (LP_SHARDS_SUFFIX). Length or -1. */
int lp_shards_key(int cluster, const char *stream, char *out, size_t cap,
                  char *err);

/*
 * Reads the count recorded for stream over r (a connection to the
 * master of the stream's slot in a cluster): *n = 0 when none is (the
 * stream is not sharded: its events are in the stream's own key), else
 * the count. Returns 0, LP_REDIS_ETEMP or LP_REDIS_EAUTH (as
 * lp_redis_cmd: try again, or stop), or -3 with err when what is there
 * is not a count (not a string, not 1..LP_SHARDS_MAX): a key that
 * another program set, which the user has to look at.
 */
enum { LP_SHARDS_EBAD = -3 };
int lp_shards_read(struct lp_redis *r, int cluster, const char *stream,
                   unsigned *n, char *err);

/*
 * One step of history: when a change of the count N -> M completes
 * (lp_shards_record), N is recorded in "<stream>:shards:was" ("{<stream>}
 * :shards:was" in a cluster: the count key's slot), in the same script
 * that sets the count. A run of M reads its producer's fields on the
 * shards of N too (lp_shard_name(stream, i, N)): what a run of N stored
 * there is not sent again. A second change M -> K keeps only M. *n = 0
 * when none is recorded. Returns as lp_shards_read.
 */
#define LP_SHARDS_WAS_SUFFIX ":shards:was"
/*
 * A shard that becomes the new count's (its marker set to "M" where it
 * held another value: lp_shards_record's last step, in the same script)
 * has its producers hash set aside as "<shard>:producers:was", or, none,
 * that key deleted. So the fields in "<shard>:producers" are always the
 * count's its marker holds: a shard of N and of M (one name: each is the
 * smallest tag in a range of slots, and ranges of N and M may share it)
 * does not mix N's fields, which say what N's choice of shards stored,
 * with M's. The fields of N's shard j are in "<shard>:producers:was" when
 * that shard is one of M's too, else in "<shard>:producers".
 */
#define LP_SHARDS_PRODUCERS_WAS ":producers:was"
int lp_shards_was(struct lp_redis *r, int cluster, const char *stream,
                  unsigned *n, char *err);
/*
 * A second change M -> K forgets N (the count before M): N is recorded in
 * "<stream>:shards:gone" (its slot as :shards:was) just before the count
 * changes, so that a resume under K can say it may store again what a
 * run of N stored (lp_shards_gone; *n = 0: none, or the value :shards:was
 * holds: that change did not happen).
 */
#define LP_SHARDS_GONE_SUFFIX ":shards:gone"
/* "a run of N shards", or for 1 (the count before the first --shards:
 * the stream's own key) "a run without --shards (...)", into buf */
const char *lp_shards_who(unsigned n, char *buf, size_t cap);
int lp_shards_gone(struct lp_redis *r, int cluster, const char *stream,
                   unsigned *n, char *err);

/*
 * How lp_shards_record reaches the slot of a shard (each shard's marker
 * lives there): new_key makes a connection, not connected, routed to the
 * master of key's slot (key borrowed while it lives); key_node, when
 * given, says which master that is ("host:port"; 0, or -1 not known), so
 * that the shards of one master share a connection. timeout: each
 * connection's (ms). NULL, or new_key NULL: r serves every key (a
 * standalone server).
 */
struct lp_shards_net {
    struct lp_redis *(*new_key)(void *ctx, const char *key, char *err);
    int (*key_node)(void *ctx, const char *key, int fresh, char *out,
                    size_t cap);
    void *ctx;
    int64_t timeout;
};

/*
 * Each shard's marker: "<shard>:shards" (LP_SHARDS_SUFFIX after the
 * shard's name: its slot), which says which count owns the shard. The
 * gate of send's batches (lp_pipeline.c) stores a batch of a run with N
 * shards only while the marker of its shard holds "N": a sender with
 * another count is refused batch by batch (exit 78), never writing where
 * no reader of the stream looks. Values:
 *   "N"     shard of the count N, which lp_shards_record recorded;
 *   "to:M"  taken from its count by a change to M (the count key still
 *           says the old count while the change runs; after it, a shard
 *           of the old count that is none of M's keeps "to:M" for good).
 * Length, or -1 with err.
 */
int lp_shard_mark(int cluster, const char *shard, char *out, size_t cap,
                  char *err);

/*
 * Records n as stream's count, or checks the one recorded, and marks
 * each of the n shards as the count's (its marker set to "n"); none
 * recorded yet: the stream's own key must hold no entries, else
 * LP_SHARDS_EBAD, which says to drain and delete it first.
 * Another count N recorded: the count changes to n when, and only when,
 * every shard of N (and of n) is drained -- no entries, or every group
 * of it with nothing pending and nothing left to read: each shard's
 * marker is first taken ("to:n") by a script that checks that in the
 * shard's slot, in one step (a sender of N is refused from then on: no
 * batch of it lands behind the check), then the count key goes from N to
 * n; a shard not drained puts back the markers taken so far and returns
 * LP_SHARDS_EBAD saying which. A marker of another count on one of the
 * n shards (the count key deleted by hand while that count's senders
 * ran) is a change from that count, as above.
 * Returns 0, 1 when the count changed to n (err says from what, for the
 * user to hear), LP_SHARDS_EBAD with err (the count cannot be n now), or
 * LP_REDIS_ETEMP / LP_REDIS_EAUTH as lp_shards_read (call again: a
 * change cut midway goes on where it stopped).
 */
int lp_shards_record(struct lp_redis *r, int cluster, const char *stream,
                     unsigned n, const struct lp_shards_net *net, char *err);

/*
 * An entry's ID as the tools show it: "<ms>-<seq>" (a stream's own, as
 * Redis writes it) or "<i>-<ms>-<seq>" (shard i's entry, the archive's
 * _id of a sharded stream and logpipe-dlq's ID of a shard's dead
 * letter; i decimal without leading zeros, < LP_SHARDS_MAX). Returns 0
 * for the first (*shard -1), 1 for the second, -1 for neither.
 */
int lp_shard_id_parse(const char *s, size_t n, int *shard, uint64_t *ms,
                      uint64_t *seq);

#endif
