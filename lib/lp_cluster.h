/* lp_cluster.h -- Redis Cluster: key slots, the slot map, redirects, and
 * commands routed over one connection per master */
#ifndef LP_CLUSTER_H
#define LP_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "lp_redis.h"
#include "lp_url.h"

#define LP_CLUSTER_SLOTS 16384
/* MOVED and ASK followed for one command or batch before giving up: a
 * map that keeps changing under us, or two nodes that send us to each
 * other (redis-cli -c follows 16 too) */
#define LP_CLUSTER_REDIRECTS 16
/* nodes one struct lp_cluster (and one slot map) knows at most: Redis
 * advises 1000 nodes a cluster; more is a hostile reply */
#define LP_CLUSTER_NODES 2048

/* ---- slots --------------------------------------------------------------- */

/* CRC16-XMODEM (polynomial 0x1021, initial 0, no reflection), as Redis
 * computes it: lp_crc16("123456789", 9) = 0x31C3. */
uint16_t lp_crc16(const void *buf, size_t len);

/* The slot of a key: CRC16 mod 16384 of the key, or of its hash tag: the
 * bytes between its first '{' and the first '}' after it, when there are
 * any ("{user1}.a" and "{user1}.b" share a slot; "{}a" and "a{" hash
 * whole). */
unsigned lp_key_slot(const char *key, size_t len);

/* ---- the slot map, from CLUSTER SLOTS ------------------------------------ */

struct lp_slot_node {
    char host[256];             /* without brackets for IPv6 */
    int port;
    char id[41];                /* the node ID, "" when not given */
};

struct lp_slot_map {
    uint16_t owner[LP_CLUSTER_SLOTS];   /* master's index + 1; 0: none */
    size_t nnodes;
    struct lp_slot_node *nodes;         /* the masters, malloc'd */
};

/*
 * Parses a CLUSTER SLOTS reply (Redis 3 to 7: [[start, end, [host, port,
 * id?, metadata?], replicas...], ...]) into m: every slot's master (the
 * replicas are not kept), the masters deduplicated by host and port, in
 * the order of their first range. A host that is nil or "" means the host
 * of the node asked (asked: its host; Redis 7's
 * cluster-preferred-endpoint-type unknown-endpoint); "?" (a hostname not
 * set) cannot be reached. Slots listed by no range have no owner (a
 * cluster partly down). Returns 0, or -1 with err for a reply that is
 * not such a map: an error reply, wrong types, fields missing, slots out
 * of 0-16383 or listed twice, ports out of 1-65535, hosts too long or
 * with spaces, controls or brackets, more than LP_CLUSTER_NODES masters;
 * m is then empty. m is overwritten (not freed) first; free with
 * lp_slot_map_free.
 */
int lp_slot_map_parse(const struct lp_reply *rep, const char *asked,
                      struct lp_slot_map *m, char *err);
void lp_slot_map_free(struct lp_slot_map *m);

/* ---- redirects ----------------------------------------------------------- */

enum {
    LP_REDIR_NONE = 0,          /* the command's own reply */
    LP_REDIR_MOVED,             /* the slot has another master now */
    LP_REDIR_ASK,               /* this once, ask that node (migration) */
    LP_REDIR_WAIT               /* TRYAGAIN, CLUSTERDOWN: wait, retry */
};

struct lp_redir {
    int kind;                   /* LP_REDIR_* */
    unsigned slot;              /* MOVED, ASK: 0..16383 */
    char host[256];             /* "" = the host of the node asked */
    int port;
};

/*
 * What an error reply says about where its command belongs:
 * "MOVED <slot> <host>:<port>" and "ASK <slot> <host>:<port>" (the host
 * an IPv6 address as Redis writes it, "::1:7000", or in brackets; empty
 * in Redis 7's unknown-endpoint mode), TRYAGAIN and CLUSTERDOWN. Returns
 * the kind (LP_REDIR_NONE for any other reply), or -1 with err for a
 * MOVED or ASK that cannot be read (it is then the command's own error).
 */
int lp_redir_parse(const struct lp_reply *rep, struct lp_redir *d, char *err);

/* ---- the connections -------------------------------------------------------
 *
 * One struct lp_cluster stands for what a -r URL names: a standalone
 * server (one connection, as lp_redis alone) or a cluster (the slot map
 * and one lp_redis per node, made lazily). A struct lp_redis * it hands
 * out is borrowed and stays valid until lp_cluster_free: nodes are never
 * forgotten while it lives, only reconnected, so a caller may hold one
 * across a map reload. Not thread-safe.
 */
struct lp_cluster;

enum { LP_CLUSTER_STANDALONE = 1, LP_CLUSTER_CLUSTER };

struct lp_cluster_stats {
    uint64_t moved, ask, waits; /* redirects followed, waits begun */
    uint64_t reloads;           /* slot maps loaded */
};

/* Copies seed, password (may be NULL) and tls (may be NULL: a rediss://
 * seed then uses lp_redis's defaults; its strings are copied). Nothing is
 * connected yet. NULL when out of memory. */
struct lp_cluster *lp_cluster_new(const struct lp_url *seed,
                                  const char *password,
                                  const struct lp_tls *tls);
/* Accepts NULL. Closes every connection. */
void lp_cluster_free(struct lp_cluster *c);

/* Each connection's socket timeout (lp_redis_set_timeout), and how long
 * lp_cluster_cmdv (and lp_cluster_resend) wait out a cluster that is down
 * or a node that cannot be reached. Default 10 s. */
void lp_cluster_set_timeout(struct lp_cluster *c, int64_t ms);

/*
 * Connects to the seed and asks INFO cluster. cluster_enabled:0, or an
 * error reply to INFO (a proxy, an ACL without INFO): standalone, that one
 * connection, with the URL's database, and everything goes there as with
 * lp_redis alone. Otherwise the slot map is loaded (CLUSTER SLOTS); a
 * database other than 0 in the URL is refused. Returns 0, LP_REDIS_ETEMP
 * (not reached, no map yet: try again later) or LP_REDIS_EAUTH (the
 * credentials, TLS settings or the database: retrying does not help),
 * with err. Opening again starts over.
 */
int lp_cluster_open(struct lp_cluster *c, char *err);

/* LP_CLUSTER_STANDALONE or LP_CLUSTER_CLUSTER once open, 0 before. */
int lp_cluster_mode(const struct lp_cluster *c);
void lp_cluster_stats(const struct lp_cluster *c,
                      struct lp_cluster_stats *st);

/* Loads the slot map again now, asking the nodes known (connected ones
 * first) until one answers with a map. 0 or -1 with err; the old map
 * stays on failure. Standalone: nothing to do. */
int lp_cluster_reload(struct lp_cluster *c, char *err);

/* The map is to be loaded again before the next routing (a connection
 * lost, a node gone): lp_cluster_node and _slot_node reload first. */
void lp_cluster_stale(struct lp_cluster *c);

/*
 * The connected node that serves slot (or key's slot): its master in the
 * map, connected now if it was not. Standalone: the one connection, for
 * any slot. slot LP_CLUSTER_SLOTS means any master (a command without a
 * key). Returns 0 with *r (borrowed), or LP_REDIS_ETEMP (the slot has no
 * master, the node cannot be reached: the map is marked stale; wait, ask
 * again) or LP_REDIS_EAUTH (credentials or TLS refused), with err.
 */
int lp_cluster_slot_node(struct lp_cluster *c, unsigned slot,
                         struct lp_redis **r, char *err);
int lp_cluster_node(struct lp_cluster *c, const char *key, size_t len,
                    struct lp_redis **r, char *err);

/*
 * Where slot's master is, without connecting to it: its host (cap bytes
 * at most) and port, for a connection of the caller's own
 * (lp_redis_retarget). The map is loaded again first when stale. 0, or
 * LP_REDIS_ETEMP with err (not open, a cluster through a unix socket, the
 * slot without master: the map is marked stale).
 */
int lp_cluster_slot_addr(struct lp_cluster *c, unsigned slot, char *host,
                         size_t cap, int *port, char *err);

/*
 * The name of a key that goes with stream in one transaction or script
 * (its producers, its dead letters, the gate's keys): standalone (cluster
 * 0) "<stream><suffix>" as it always was; in a cluster the same when
 * stream has a hash tag ("logs:{a}:producers"), else "{<stream>}<suffix>"
 * (the tag is the stream's name: the same slot). Returns the length, or
 * -1 with err when it does not fit in cap, or when in a cluster no such
 * name can share stream's slot (a name with a '}' but no hash tag).
 */
int lp_key_aux(int cluster, const char *stream, const char *suffix,
               char *out, size_t cap, char *err);

/* The masters of the current map, in the order of their first slot
 * (standalone: 1, the one server), for work on every node (SCAN, WAIT).
 * lp_cluster_master connects master i (< lp_cluster_masters) and returns
 * as lp_cluster_slot_node does. */
size_t lp_cluster_masters(const struct lp_cluster *c);
int lp_cluster_master(struct lp_cluster *c, size_t i, struct lp_redis **r,
                      char *err);

/*
 * One command, blocking, routed by argv[key_arg]'s slot (key_arg < 0: any
 * master), as redis-cli -c: follows MOVED (the map reloaded; at most
 * LP_CLUSTER_REDIRECTS redirects), ASK (ASKING and the command to that
 * node in one write, the map unchanged), and waits out TRYAGAIN,
 * CLUSTERDOWN, a slot without master and a node that cannot be reached
 * (lp_backoff, then the map reloaded) up to the timeout. Returns the reply
 * (caller frees; it may be an error reply of the command's own), or NULL
 * with err: an I/O error once the command was written (it may have run:
 * not sent again; the map is marked stale), the timeout, too many
 * redirects, refused credentials. Standalone: lp_redis_cmdv.
 */
struct lp_reply *lp_cluster_cmdv(struct lp_cluster *c, int key_arg, int argc,
                                 const char **argv, const size_t *lens,
                                 char *err);

/* ---- for pipelined callers ----------------------------------------------
 *
 * A batch is commands for one slot written to one node in one go. What
 * is sent again after a redirect is what did not run:
 *  - a transaction (MULTI ... EXEC, send's batches): a redirect of any of
 *    its commands makes EXEC answer EXECABORT, nothing ran: the whole
 *    transaction is sent again. After ASK, one ASKING before MULTI covers
 *    it all (Redis keeps the flag until EXEC), and the target checks the
 *    keys at EXEC: some of them not there yet is TRYAGAIN, never a
 *    transaction run on half the keys.
 *  - plain pipelined commands (drain's XACKs): each is judged alone,
 *    those answered ran where they were: only the redirected ones are
 *    sent again, in order, and after ASK each after its own ASKING (the
 *    flag lasts one command).
 * The caller:
 *
 *   lp_cluster_try_start(c, &t, slot);
 *   rc = lp_cluster_slot_node(c, slot, &r, err);
 *   again:
 *     rc == LP_REDIS_EAUTH: stop; rc != 0: lp_cluster_unreachable(c, &t,
 *       err), go to resend
 *     write what is to be sent (ASKING where asking says, as above)
 *     for each reply, ASKING's +OK too (look at every one: a connection
 *     stays in step only when all replies are read):
 *       lp_cluster_check(c, &t, r, rep) != LP_REDIR_NONE: that command
 *       did not run there (to be sent again)
 *     an I/O error: lp_cluster_unreachable(c, &t, err); which commands ran
 *       is the caller's to find out, as with lp_redis alone
 *     nothing redirected, nothing lost: done.
 *   resend:
 *     switch (lp_cluster_resend(c, &t, &r, &asking, &ms, err)):
 *       LP_CLUSTER_RESEND: send to r: goto again (rc = 0)
 *       LP_CLUSTER_WAIT: after ms (poll, or the caller's event loop),
 *         rc = lp_cluster_slot_node(c, slot, &r, err) (the map is loaded
 *         again first): goto again
 *       -1: give up with err (the timeout, too many redirects, refused
 *         credentials)
 *
 * Batches for several slots may be in flight at once, to several nodes,
 * each with its own struct lp_cluster_try; lp_cluster_cmdv is this loop
 * for one command, and tests/cluster-cli.c's batch() for both kinds of
 * batch. Standalone, lp_cluster_check always says LP_REDIR_NONE.
 */
struct lp_cluster_try {
    unsigned slot;              /* the batch's (LP_CLUSTER_SLOTS: any) */
    int redirects;              /* MOVED and ASK followed so far */
    int64_t start_ms;           /* when it was first sent (monotonic) */
    struct lp_backoff backoff;
    struct lp_redir got;        /* the first redirect since the last send */
    char why[300];              /* its reply's text, for messages */
};

enum { LP_CLUSTER_RESEND = 1, LP_CLUSTER_WAIT };

void lp_cluster_try_start(struct lp_cluster *c, struct lp_cluster_try *t,
                          unsigned slot);
/* Looks at one reply from node from (borrowed, not freed): its kind
 * (LP_REDIR_*); the first redirect since the last send is kept in t. */
int lp_cluster_check(struct lp_cluster *c, struct lp_cluster_try *t,
                     const struct lp_redis *from, const struct lp_reply *rep);
/* The batch got no answer: its node could not be reached, or the
 * connection was lost (why says so): wait, reload the map, route again. */
void lp_cluster_unreachable(struct lp_cluster *c, struct lp_cluster_try *t,
                            const char *why);
/* Acts on what t kept: MOVED (the map patched and reloaded, *r the
 * slot's master now), ASK (*r that node, *asking 1), a wait (*wait_ms).
 * Returns LP_CLUSTER_RESEND, LP_CLUSTER_WAIT, or -1 with err. t is ready
 * for the next send. */
int lp_cluster_resend(struct lp_cluster *c, struct lp_cluster_try *t,
                      struct lp_redis **r, int *asking, int64_t *wait_ms,
                      char *err);
/* The node of an ASK that came back as text (lp_stream_err's msg,
 * "ASK <slot> <host>:<port>"; no host: from's), connected (borrowed, as
 * lp_cluster_slot_node's), for ASKING and the one command again; the map
 * unchanged. 0, or -1 with err. */
int lp_cluster_ask_node(struct lp_cluster *c, const char *msg,
                        const struct lp_redis *from, struct lp_redis **r,
                        char *err);
/* Queues ASKING on r: before a transaction, or before each plain command,
 * sent again after ASK. 0 or -1 (not connected, out of memory). */
int lp_cluster_asking(struct lp_redis *r);

#endif
