/* tool_shards.h -- the shards of a stream, for the tools that read them
 * (stat, dlq, replay --from-redis) */
#ifndef TOOL_SHARDS_H
#define TOOL_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "lp_opt.h"
#include "lp_redis.h"

/*
 * What the tools know of a sharded stream (SHARDS: logpipe-send
 * --shards N records N in "<stream>:shards"): each shard's stream
 * "<stream>:{T}" (lp_shard_name), its DLQ "<DLQBASE>:{T}" (DLQBASE the
 * --dlq given, else logs:dlq, even in a cluster), the node that serves
 * its slot ("host:port" in a cluster, "" standalone) and a connection
 * to it: one per node, shared by the shards on it (standalone: one).
 * In a cluster each connection is routed to the master of its first
 * shard's slot (tool_redis_key): a shard moved while a tool runs gets
 * MOVED (or ASK, TRYAGAIN), after which the tool gives it a connection
 * of its own (tool_shards_reroute) and asks it again.
 */
struct tool_shards {
    unsigned n;                 /* shards; 0: the stream is not sharded */
    char **name, **dlq, **node; /* shard i's, malloc'd */
    struct lp_redis **r;        /* shard i's connection (one of conn) */
    struct lp_redis **conn;     /* the connections, nconn of them */
    size_t nconn;
};

/*
 * After tool_cluster: reads the count recorded for c->stream over a
 * connection of its own (timeout ms), and when it is > 1 names the
 * shards and connects to their nodes. Returns 0 (s->n 0: not sharded,
 * or Redis not reached or refusing the credentials: the tool goes on
 * as for a stream of one key, and its own connect says why; not even
 * tried when tool_cluster did not reach it, which would only wait out
 * the timeout again), or an exit status with err: LP_EX_CONFIG (the count key holds no count, a --dlq
 * with braces, the GET refused), LP_EX_UNAVAILABLE (a shard's node not
 * reached), LP_EX_SOFTWARE (out of memory).
 */
int tool_shards_open(struct lp_common *c, int64_t timeout,
                     struct tool_shards *s, char *err);

/*
 * Shard i's slot moved (lp_stream_redirected): a connection of its own,
 * routed by its name (the slot map read again when it connects), kept in
 * s->conn, connected, into s->r[i]; s->node[i] its node now. 0, or -1
 * with err (shard i keeps its connection).
 */
int tool_shards_reroute(struct lp_common *c, int64_t timeout,
                        struct tool_shards *s, unsigned i, char *err);

/* Frees the names and closes the connections. Accepts one never opened
 * (zeroed). */
void tool_shards_free(struct tool_shards *s);

#endif
