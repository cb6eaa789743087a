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
 * Records n as stream's count (SET NX), or checks the one recorded
 * (none recorded yet: the stream's own key must hold no entries, else
 * LP_SHARDS_EBAD, which says to drain and delete it first):
 * 0 when it is n, LP_SHARDS_EBAD with err when it is another (the
 * shards of the events stored so far are those: changing their number
 * needs the stream drained first, its count key deleted), or what
 * lp_shards_read returns.
 */
int lp_shards_record(struct lp_redis *r, int cluster, const char *stream,
                     unsigned n, char *err);

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
