/* lp_send_int.h -- the send engine's insides, shared by its three files */
#ifndef LP_SEND_INT_H
#define LP_SEND_INT_H

/*
 * Private to lp_send.c, lp_pipeline.c and lp_spool.c, as curl's urldata.h
 * is to its lib/: nothing else includes it. The engine is one object,
 * struct lp_send, kept in three files by what they do:
 *
 *   lp_send.c      the loop: input, the checks of each event, --rate, the
 *                  input batch and where it goes (dispatch), what to do
 *                  when Redis fails (lp_send_recover), the end of a run
 *   lp_pipeline.c  the batches in flight to Redis, one round trip each:
 *                  their XADDs, written whole, the replies matched to
 *                  them in order, --ids, --max-backlog's questions
 *   lp_spool.c     the WAL failover: what Redis cannot take goes to the
 *                  WAL (spill), is sent again from it (replay), and, when
 *                  the run gives up, the resume hint
 *
 * The input batch (s->in) fills; dispatch hands it to the ring of
 * LP_INFLIGHT batches in flight (ring[head .. head+count)), or in WAL
 * mode to the WAL, whose oldest segment is re-sent through the same ring.
 *
 * A failure that ends the run (what the tool once exit()ed for) is said
 * where it happens and then lp_send_end_run jumps back to lp_send_run,
 * which returns it: everything the run holds is in struct lp_send, so
 * nothing on the way back leaks, and nothing more happens after it.
 */

#include <poll.h>
#include <setjmp.h>
#include <stdint.h>

#include "lp_aside.h"
#include "lp_buf.h"
#include "lp_event.h"
#include "lp_json.h"
#include "lp_line.h"
#include "lp_metrics.h"
#include "lp_notice.h"
#include "lp_parse.h"
#include "lp_rate.h"
#include "lp_redis.h"
#include "lp_send.h"
#include "lp_sig.h"
#include "lp_wal.h"

#define LP_INFLIGHT 3           /* batches of input; of the WAL: one */

enum { LP_CMD_EVENT, LP_CMD_DLQ };     /* what a command is */
enum { LP_BATCH_INPUT, LP_BATCH_REPLAY };  /* where a batch's commands
                                              come from */

struct lp_cmd {
    uint32_t cmd;               /* offset of its command in the blob */
    uint32_t cmdlen;
    uint32_t file;              /* index of the input */
    uint8_t kind;
    uint8_t done;               /* 1: acknowledged, or synced in the WAL;
                                   2: written to the WAL, not synced yet */
    uint16_t wshard;            /* --shards after a change: its shard of
                                   the count before (lp_send.was_n);
                                   LP_WSHARD_UNKNOWN: read before the
                                   count was known (Redis away) */
    uint32_t plen;              /* LP_BATCH_REPLAY: its record's producer
                                   line, before the command */
    uint16_t prod;              /* its producer: index in the batch's
                                   prods, LP_NOPROD for a record of an
                                   old WAL (no position) */
    uint64_t pos;               /* its position in that producer */
    uint64_t line_start;        /* input offset of its line */
    uint64_t wend;              /* LP_BATCH_REPLAY: segment offset after it */
    struct lp_send_req *req;    /* the request it is of (lp_send_serve),
                                   until its outcome is counted there */
};

/* A request of a front door (lp_send.h): its commands, made before it is
 * submitted, then counted down as Redis answers them. */
struct lp_send_req {
    struct lp_send *s;
    lp_send_req_fn *done;
    void *ctx;
    struct lp_buf blob;         /* its commands, back to back */
    uint32_t *at;               /* where each starts in blob, its kind in
                                   the top bit (1: a dead letter) */
    size_t n, cap;
    size_t pending;             /* submitted commands not answered yet */
    struct lp_send_req_result r;
    char *key;                  /* --rate's bucket (NULL: "") */
    size_t klen;
    struct lp_buf keys;         /* --rate-key: each key's count of its
                                   events (lp_send.c req_tally) */
    size_t nkeys;
    uint64_t nev;               /* its events (not its dead letters) */
    uint64_t ndlq;              /* its dead letters */
    char *prod, *cursor;        /* lp_send_req_producer, or NULL */
    size_t prodlen, curlen;
    char first[48], last[48];
    char error[LP_ERRLEN];
    struct lp_send_req *next;   /* parked: the next one */
    int taken;                  /* --rate tokens taken (keys' tally, or
                                   its one key's at submit) */
    int ended;                  /* done() was called */
};

#define LP_NOPROD 0xffff
#define LP_BATCH_PRODS 64       /* producers in one batch at most */

/* A producer of commands in a batch (lp_send.h: struct lp_producer): its
 * name and cursor live in the batch's pbuf. The batch moves its field
 * from position "from" to "to" (make_gate): with commands, from their
 * positions; without (a cursor only: lines that made no command), from
 * base to base, base being its last position when the cursor was set. */
struct lp_bprod {
    uint32_t name, namelen, cursor, cursorlen;
    uint64_t base;
    uint64_t from, to;
};

/* A committed position read from Redis on this connection */
struct lp_pcache {
    char name[LP_PRODUCER_MAX + 1];
    uint64_t pos;
    int shard;                  /* of the field in that shard's key (-1:
                                   the stream's own) */
};

struct lp_batch {
    struct lp_buf blob;         /* RESP commands, back to back */
    struct lp_cmd *ev;
    size_t n;
    size_t cap;                 /* room in ev: --batch, more for a
                                   --follow line that crosses it */
    /* sent as MULTI, the gate (a script that commits the producers'
     * positions, or makes the commands store nothing), the commands, the
     * gate's undoing, EXEC (lp_pipeline.c): */
    size_t nwire;               /* replies it is owed on the wire */
    size_t wire;                /* replies received of them */
    size_t replied;             /* n once EXEC answered, else 0 */
    size_t failed;              /* commands that failed (EXECABORT: all) */
    int flushed;                /* written to the socket whole */
    int tried;                  /* written, whole or not, since it was
                                   numbered: Redis may have stored it */
    int qperm;                  /* qerr is of a permanent kind */
    int aborted;                /* EXEC answered EXECABORT: nothing of it
                                   was stored */
    int numbered;               /* its commands have positions */
    int fixed;                  /* a request's of its own producer (an
                                   idempotency key): its positions given,
                                   not the run's */
    int answered;               /* EXEC's reply came: what became of each
                                   command is known */
    int gated;                  /* sent with the gate (it has producers) */
    int lost;                   /* its reply was lost and Redis did not
                                   hold it stored then: its gate must not
                                   take a field gone for one removed by
                                   --producer-ttl (it may be stored) */
    char qerr[160];             /* the first error while queueing */
    struct lp_reply *held;      /* --replicas: EXEC's reply, taken once
                                   WAIT says enough replicas have it */
    int unconfirmed;            /* WAIT said too few: the master may
                                   hold it, the replicas may not */
    struct lp_buf head;         /* MULTI and the gate, made when sent */
    struct lp_buf tail;         /* the undoing and EXEC */
    struct lp_bprod prods[LP_BATCH_PRODS + 1];  /* and room for the run's
                                                   own (lp_pipeline_resolve) */
    int nprods;
    int hint;                   /* the index lp_batch_prod gave last */
    struct lp_buf pbuf;         /* the producers' names and cursors */
    int source;                 /* LP_BATCH_INPUT or LP_BATCH_REPLAY */
    int shard;                  /* --shards: the shard it goes to (-1:
                                   not sharded) */
    uint64_t ack_to;            /* a re-send's WAL acknowledgement: 0,
                                   its last record's end; UINT64_MAX,
                                   none (records before it wait in
                                   lp_send.dq); else that end */
    uint64_t sfrom;             /* --shards: its field's position before
                                   it, the last of the shard's batch
                                   before it (make_gate's from) */
    int64_t opened_ms;          /* monotonic time of its first event */
    int64_t sent_us;            /* monotonic time it was written */
    char first[48], last[48];   /* stream IDs of its first and last event */
};

/*
 * --shards N (N > 1): the events spread over N stream keys, the shards of
 * the stream (lp_shards.h). Each has its own input batch (batches never
 * mix shards) and its own keys; the engine's names (c.stream, c.dlq,
 * pkey, shold, dhold) are those of one shard at a time (lp_shard_keys),
 * as the input batch is one shard's at a time (lp_shard_in). See
 * lp_send.c, "Sharded streams", for the design.
 */
struct lp_shard {
    char name[512], dlq[512];   /* the shard, its DLQ */
    char pkey[512], shold[512], dhold[512];
    struct lp_buf prefix;       /* XADD <name> * data */
    struct lp_batch in;         /* its input batch */
    uint64_t last;              /* the run's producer: the position of
                                   the last command handed to it, its
                                   field's value once that is stored */
    uint64_t skip;              /* --position: positions up to here are
                                   in it already (the first run's) */
    int lane;                   /* the connection its batches go on */
};

/* A connection and its ring of batches in flight (a Redis Cluster with
 * --shards: one a master, shared by its shards; a resharding may split
 * one). The engine's r, ring, head, count and the per-connection state
 * are one lane's at a time (lp_lane_use). */
struct lp_lane {
    char key[512];              /* its connection goes to this key's
                                   master (a shard's name) */
    char node[280];             /* that master, "host:port", when known */
    struct lp_redis *r;
    struct lp_batch ring[LP_INFLIGHT];
    int head, count;
    struct lp_pcache *pcache;
    size_t npcache, capcache;
    int64_t fail_since;
    struct lp_backoff backoff;
    int warned, lose_now, pruned;
};

struct lp_send {
    struct lp_send_conf c;
    /* --shards */
    struct lp_shard *sh;        /* NULL: not sharded */
    unsigned nsh;
    int cur_in;                 /* the shard s->in is of */
    int kshard;                 /* the shard whose names the engine's
                                   are (-1: none yet) */
    const char *stream0, *dlq0; /* --stream, the DLQ base */
    int shards_checked;         /* not --shards: the count was read (no
                                   sharded stream under us); --shards:
                                   the count was recorded, or found to
                                   be ours (lp_shards_verify) */
    unsigned shards_now;        /* a gate said the count changed: to
                                   this (0: not said, or not known) */
    int shards_changed;         /* a gate said the count changed */
    unsigned gone_n;            /* the count a second change forgot
                                   (lp_shards_gone), 0: none */
    unsigned was_n;             /* the count before the last change
                                   (S:shards:was), 0: none or ours */
    uint64_t *was_skip;         /* was_n: the run's producer's field on
                                   each shard of was_n (--position,
                                   --journal: passed over at or below) */
    struct lp_was_prod {        /* another producer's fields on the
                                   shards of was_n, read for its WAL
                                   records (lp_shards_was_of) */
        char *name;
        uint64_t *skip;
        uint64_t *cur;          /* each field's cursor, a number (a
                                   --follow file's offset), else 0 */
    } *was_prods;
    unsigned n_was_prods;
    uint64_t key_hash;          /* --shard-key: the last event's hash */
    int key_hashed;             /* it is the next command's */
    struct lp_jq *skey_jq;      /* --shard-key, a program */
    int skey_idx;               /* --shard-key .name: its member among the
                                   rules' keys (read by the scanner, not
                                   jq), else -1 */
    struct lp_lane *lanes;      /* NULL: one connection */
    int nlanes, cur_lane;
    struct pollfd *pfd;         /* wait_io's, with room for the lanes */
    struct lp_buf hrec;         /* a WAL record of another shard than the
                                   replayed batch's: the next batch's
                                   first (lp_spool_replay) */
    uint64_t hrec_end;
    int hrec_on;
    struct lp_buf dq;           /* --shards: WAL records of other shards
                                   than the replayed batch's, read past
                                   in order, each [end u64][len u32][rec]:
                                   the next batches' (lp_spool_replay) */
    struct lp_buf dq_cur;       /* the queue a replay pass takes from */
    size_t dq_off;              /* its next record */
    uint64_t dq_max;            /* the end of the last record read */
    int dq_used;                /* records were queued since the queue was
                                   last empty */
    struct lp_buf waitcmd;      /* --replicas: WAIT N ms, after each EXEC */
    struct lp_buf spare;        /* a request's buffer, for the next one */
    struct lp_notify nt;
    jmp_buf out;                /* give_up: back to lp_send_run */
    int running;                /* out is set */
    int stop;                   /* stop as a signal would */
    struct lp_redis *r;
    struct lp_lines lines;
    struct lp_event_rules rules;  /* each event's checks (lp_event.h),
                                     --rate-key's member among its keys */
    struct lp_batch *in;           /* the batch being filled from input:
                                      in0, or the current shard's */
    struct lp_batch in0;
    struct lp_batch *ring;         /* [LP_INFLIGHT]: ring0, or the
                                      current lane's */
    struct lp_batch ring0[LP_INFLIGHT];
    int head, count;            /* in flight: ring[head .. head+count) */
    int rejects_fd;
    struct lp_buf prefix;       /* RESP of XADD <stream> * data */
    /* the producer (lp_send.h): stdin's, or --producer */
    char producer[LP_PRODUCER_MAX + 1];
    char pkey[512];             /* <stream>:producers (lp_key_aux) */
    char rkey_pre[512];         /* <stream>:rate: (lp_key_aux) */
    char ukey[1100];            /* not --shards: the stream's count key
                                   (lp_shards_key), which the gate reads */
    char shold[512], dhold[512];  /* <stream>:send-hold, <dlq>:send-hold:
                                     where the gate puts them aside */
    uint64_t next_pos;          /* the position of the next command */
    uint64_t pos0;              /* --shards: the run's first position (the
                                   resume hint's --position) */
    uint64_t acked;             /* the run's producer: its positions up to
                                   here are committed, as answered */
    uint64_t pos_floor;         /* positions of ours in the WAL: at most */
    uint64_t skip_upto;         /* --position: stored by the first run */
    int renumbered;             /* commands went again with new positions:
                                   the resume hint cannot give one */
    int pos_known;              /* the committed position was read */
    int plock_fd;               /* --producer's lock, or -1 */
    int floor_fd;               /* --producer with --wal: the positions
                                   reserved (lp_spool_reserve), or -1 */
    uint64_t floor_res;         /* positions below it are reserved */
    struct lp_pcache *pcache;   /* committed positions read since the
                                   connection was made, by name */
    size_t npcache, capcache;
    struct lp_buf walrec;       /* a WAL record being made */
    uint64_t nwritten;          /* batches written (test_lose_reply) */
    uint64_t nrefuse;           /* input batches written (test_refuse) */
    int lose_now;               /* test_lose_reply: drop it at the next
                                   read of replies */
    int pruned;                 /* --producer-ttl's pruning was done */
    int old_wal_said;           /* an old WAL's records were said once */
    struct lp_buf out_ids;      /* --ids output */
    /* lp_send_serve */
    int serving;
    struct lp_send_req *cur_req;  /* the request being submitted */
    int64_t down_until;         /* mono ms: no WAL, Redis failed: submits
                                   answer UNAVAILABLE until then */
    /* --journal */
    struct lp_jsource *js;
    struct lp_buf jcur;         /* the cursor of the entry being sent
                                   (lp_jentry's is valid only until the
                                   next entry) */
    uint64_t jentry;            /* entries read by this run */
    uint64_t jpos;              /* --shards: the position of the entry
                                   being sent (each entry takes one, a
                                   command or not: lp_send.c, "--journal
                                   with --shards") */
    uint64_t ncmds;             /* commands added to input batches */
    /* --follow: each file the producer "<producer>:<identity>", its
     * cursor the offset after the line last read into the batch */
    struct lp_follow *fl;
    char fprod[LP_PRODUCER_MAX + 1];  /* the producer of the line being
                                         read */
    size_t fprodlen, fbase;     /* its length; that of "<producer>:" */
    char fcur[24];              /* the offset after that line */
    size_t fcurlen;
    uint64_t *fseq;             /* its file's counter of positions */
    unsigned fshard;            /* --shards: its file's shard (lp_send.c,
                                   "--follow with --shards") */
    /* --follow --shard-key --shards: a file's lines go to several
     * shards, each (file, shard) a field of its own (lp_send.c, "--follow
     * with --shard-key") */
    int fkmode;
    struct lp_fkey **fkeys;     /* each file's, by identity (chained) */
    size_t nfkeys, capfkeys;
    struct lp_fkey *fk;         /* the file of the line being read */
    unsigned *ftouch;           /* the shards its commands went to */
    unsigned char *ftouched;    /* (one a shard: in ftouch already) */
    size_t nftouch;
    int fkbehind;               /* some file's lp_fkey.behind is set */
    int mid_line;               /* the commands of one line (or request)
                                   are being added: a batch is not cut
                                   inside it */
    int want_dispatch;          /* the batch filled meanwhile */
    struct lp_buf forget;       /* identities to drop, NUL after each */
    char host[256];
    int file;                   /* current input */
    const char *name;           /* its name for messages, NULL = stdin */
    int64_t now;                /* wall clock, refreshed per read */
    int64_t fail_since;         /* monotonic ms, 0 = not failing */
    struct lp_backoff backoff;
    int warned;
    int stdout_gone;            /* EPIPE: end as SIGPIPE would */
    int ids_off;                /* stdout failed: no more --ids */
    int exit_code;
    /* WAL */
    struct lp_wal *wal;
    int walmode;                /* new batches go to the WAL */
    int wal_sync_failed;        /* never to be tried again */
    struct lp_wal_seg *rseg;    /* the segment being re-sent */
    int rseg_eof;               /* all its records are in flight */
    int64_t replay_at;          /* monotonic ms: next replay attempt */
    /* --max-backlog */
    int64_t backlog_at;
    int batches_since_backlog;
    long long backlog_seen;     /* serving: the lag last read (-1: not
                                   known), asked again after backlog_at */
    long long backlog_lag;      /* serving: XINFO GROUPS' answer, until
                                   XLEN's comes */
    int backlog_asking;         /* serving: its questions in flight */
    int64_t backlog_read;       /* serving: mono ms of the last answer */
    /* serving: the questions the loop must not wait for (--max-backlog's,
     * the caller's through lp_send_aside), on a connection of their own */
    struct lp_aside *aside;
    int64_t aside_at;           /* mono ms: connect it again, not before */
    int64_t aside_wait;         /* its backoff (ms) */
    /* serving: requests admitted while every slot of the ring is in
     * flight, waiting whole for one, in order */
    struct lp_send_req *park, *park_tail;
    int finishing;              /* finish(): dispatch may wait for slots */
    char last_error[LP_ERRLEN];
    int last_permanent;
    uint64_t n_was_unsure;      /* sent though maybe stored on a shard
                                   of the count before (lp_was_stored) */
    uint64_t n_ahead;           /* acknowledged, but after an event that
                                   was not: a resume sends them twice */
    struct lp_send_counts n;    /* what the metrics read, and the caller */
    /* --rate */
    struct lp_rate *rate;
    int rkey_idx;               /* --rate-key .name: its member, else -1 */
    struct lp_jq *rkey_jq;      /* any other --rate-key program */
    struct lp_redis *rr;        /* --shared-rate: its own connection */
    struct lp_buf rkey_buf;     /* the Redis key of a bucket */
    int64_t rr_retry_at;        /* mono ms: try Redis again after this */
    int rr_local;               /* Redis failed: limiting here for now */
    /* --metrics: the counters read s->n; the rest is set per tick */
    struct lp_metrics *m;
    struct lp_metric *batch_s, *wal_bytes, *rate_wait, *rate_keys;
};

/* Says something through the engine's notify (LP_SEND_* or LP_NOTICE_*
 * level). */
#define say(s, level, ...) lp_notice(&(s)->nt, (level), __VA_ARGS__)

static inline const char *lp_plural(uint64_t n, const char *one,
                                    const char *many)
{
    return n == 1 ? one : many;
}

/* b holds something to send: commands, or a cursor to commit (lines
 * that made no command) */
static inline int lp_batch_busy(const struct lp_batch *b)
{
    return b->n > 0 || b->nprods > 0;
}

/* A stop signal came, or the engine stopped itself (--ids lost stdout). */
static inline int lp_send_stopping(const struct lp_send *s)
{
    return lp_stop || s->stop;
}

/* ---- lp_send.c ---------------------------------------------------------- */

/* Ends the run with status code: back to lp_send_run, which returns it.
 * What is to be said was said. */
_Noreturn void lp_send_end_run(struct lp_send *s, int code);

/* Says "out of memory" and ends the run (70). */
_Noreturn void lp_send_oom(struct lp_send *s);

/* Something failed (why: an I/O error, or an error reply): the WAL takes
 * what is not acknowledged, or it is sent again for --timeout; ends the
 * run when that is over, or Redis refuses for good. */
void lp_send_recover(struct lp_send *s, const char *why);

/* Request q's command e was answered: stored (ok), or refused for good
 * (error, the reply's text). done() comes when it was the last. */
void lp_req_answered(struct lp_send *s, struct lp_cmd *e, int ok,
                     const char *id, size_t idn, const char *error);

/* Every command of a request in b that is written to the WAL and synced
 * counts as kept (LP_REQ_WAL). */
void lp_req_in_wal(struct lp_send *s, struct lp_batch *b);

/* --shards: the names of shard i become the engine's (c.stream, c.dlq,
 * pkey, shold, dhold); i < 0 or not sharded: nothing changes. */
void lp_shard_keys(struct lp_send *s, int i);
/* --shards: the connection of lane l becomes the engine's (r, ring, head,
 * count, ...). */
void lp_lane_use(struct lp_send *s, int l);
/* The batches in flight, over every lane (--shards in a cluster; else
 * s->count); the engine's lane becomes one that has some, when one
 * has: in WAL mode, the lane of the one batch re-sent. */
int lp_lanes_inflight(struct lp_send *s);
#define LP_WSHARD_UNKNOWN 0xffffu
/* --shards after a change of the count (was_n): the run's producer's
 * fields on the shards of the count before into was_skip, when not read
 * yet (a run begun with Redis away: at its first connection). 0, or -1
 * with err (try again). */
int lp_shards_was_load(struct lp_send *s, char *err);
/* Is position pos of the run's producer stored on its shard of the count
 * before (was_skip read)? wshard: that shard, or LP_WSHARD_UNKNOWN (a
 * WAL record, an event read before the count was known): then by its
 * position when rr (round-robin), else (--shard-key: the key's hash is
 * not kept) 1 at or below the lowest of the old fields, 0 above the
 * highest, and 2 between them: not known, sent (counted in
 * n_was_unsure, said). */
int lp_was_stored(struct lp_send *s, uint64_t pos, unsigned wshard, int rr);
/* The fields on the shards of the count before (was_n) of producer
 * pn[0..pnl), which a WAL record names: the run's own was_skip, another's
 * read at its first record and kept. *skip NULL: no count before. 0, or
 * -1 with err (try again). */
int lp_shards_was_of(struct lp_send *s, const char *pn, size_t pnl,
                     const uint64_t **skip, char *err);
/* lp_shards_was_of for a WAL record with a cursor (--follow's): pn's
 * fields, and their cursors as numbers (0: none, or not a number), on
 * the shards of was_n, never the run's own was_skip (which keeps no
 * cursors). *skip NULL: no count before. 0, or -1 with err. */
int lp_shards_was_cur_of(struct lp_send *s, const char *pn, size_t pnl,
                         const uint64_t **skip, const uint64_t **cur,
                         char *err);
/* The shard of the count before (was_n) that key[0..len) names (a
 * stream's, or with dlq set its DLQ's), or -1: none of them. */
int lp_was_shard_of_key(struct lp_send *s, const char *key, size_t len,
                        int dlq);
/* lp_was_stored for producer pname of fields skip (lp_shards_was_of). */
int lp_was_stored_of(struct lp_send *s, const uint64_t *skip,
                     const char *pname, uint64_t pos, unsigned wshard,
                     int rr);
/* --follow --shard-key, the WAL sent: every file read commits its end on
 * every shard again when the input is quiet (fk_idle); in the WAL only
 * commands went, not the cursors committed alone. */
void lp_send_fk_rest(struct lp_send *s);
/* --shards: the shard whose stream or DLQ key[0..len) is (-1: none);
 * *dlq: it is the DLQ's. */
int lp_shard_of_key(struct lp_send *s, const char *key, size_t len,
                    int *dlq);
/* --shards: every shard's field of the run's producer read again (the WAL
 * was sent: its batches go on from there). 0, or -1 with err. */
int lp_shards_refresh(struct lp_send *s, char *err);
/* --shards: records the count, or checks the one recorded (once a run;
 * a run started with --wal while Redis was away asks at its first
 * connection). 0; -1 with err when Redis did not answer (try again); a
 * refusal (another count, a stream holding entries of its own, the
 * credentials) ends the run (78), the WAL kept. */
int lp_shards_verify(struct lp_send *s, char *err);

/* ---- lp_pipeline.c ------------------------------------------------------ */

/* The XADD of every event up to its data, in s->prefix; the batches'
 * room. 0, or -1 out of memory. */
int lp_pipeline_init(struct lp_send *s);

/* Appends the XADD of an event (txt[0..n), ev's cuts left out) to the
 * input batch; returns where its command starts. */
size_t lp_pipeline_xadd_event(struct lp_send *s, const char *txt, size_t n,
                              const struct lp_jevent *ev);
/* The same into blob; -1 out of memory. */
int lp_pipeline_xadd_to(struct lp_send *s, struct lp_buf *blob,
                        const char *txt, size_t n, const struct lp_jevent *ev);

/* Appends the XADD of dead letter rec to the DLQ to the input batch;
 * returns where it starts. */
struct lp_dlq_rec;
size_t lp_pipeline_xadd_dlq(struct lp_send *s, const struct lp_dlq_rec *rec);

/* Empties b for reuse (keeps its storage). */
void lp_batch_reset(struct lp_batch *b);

/* Drops the batch at the head of the ring. */
void lp_pipeline_release(struct lp_send *s);

/* Writes what --ids holds to ids_fd; a failure stops the run (EPIPE: as
 * SIGPIPE would; else 74). */
void lp_pipeline_flush_ids(struct lp_send *s);

/* Releases the answered batches at the head (acknowledging re-sent WAL
 * records); -1 when the head had error replies. */
int lp_pipeline_retire(struct lp_send *s);

/* Takes the replies that have arrived; with block, waits for at least
 * one. 0, or -1 with err on an I/O error or an error reply. */
int lp_pipeline_pump(struct lp_send *s, int block, char *err);

/* Keeps only the commands of b without a success reply, in order
 * (*behind: an earlier event was not acknowledged). */
void lp_pipeline_compact(struct lp_send *s, struct lp_batch *b,
                         int *behind);

/* The committed position of producer name[0..len) (0: none), read from
 * Redis once per connection, when nothing is in flight. 0, or -1 with err
 * (an I/O error: the connection is closed; an error reply). */
int lp_pipeline_committed(struct lp_send *s, const char *name, size_t len,
                          uint64_t *pos, char *err);
/* Parses a decimal cursor (--follow's offsets); 0 when it is not one. */
uint64_t lp_cursor_num(const char *p, size_t n);

/* --journal: the cursor committed with the run's producer, into out
 * (cleared first; left empty: none). 0, or -1 with err. */
int lp_pipeline_cursor(struct lp_send *s, struct lp_buf *out, char *err);

/* Called on a connection where nothing is in flight, before anything is
 * sent on it: the input batches of the ring whose EXEC reply was lost and
 * whose positions are at or below the committed one are stored (counted
 * as sent, not sent again); the others go again as they are (on the
 * first connection of the run, stdin's get positions after the committed
 * one). 0, or -1 with err. */
int lp_pipeline_resolve(struct lp_send *s, char *err);

/*
 * The index of producer name[0..len) in b's table (LP_BATCH_PRODS at most;
 * the caller ends the batch before it is full), added when new; a cursor
 * (clen > 0) replaces the one it had: the last of the batch is what its
 * field is set to. The one way a command gets its producer: stdin's and
 * the journal's (lp_pipeline_number), the WAL's records
 * (lp_spool_replay), --follow's files (each numbers its commands with its
 * own counter as they are added). A producer's positions go up by one
 * from command to command: the gate commits a batch only right after the
 * one before it.
 */
uint16_t lp_batch_prod(struct lp_send *s, struct lp_batch *b,
                       const char *name, size_t len, const char *cursor,
                       size_t clen);

/* Gives the commands of input batch b the next positions of ours
 * (--follow's have theirs already, from their files). */
void lp_pipeline_number(struct lp_send *s, struct lp_batch *b);

/* Writes b whole. 0, or -1 with err (the connection is closed). */
int lp_pipeline_send(struct lp_send *s, struct lp_batch *b, char *err);

/* Takes the replies still coming on a live connection after a failure,
 * without retiring anything. */
void lp_pipeline_collect(struct lp_send *s);

/* Runs the gate's commands once on the hold names of a new connection,
 * storing nothing: a user that may not run one of them would make every
 * gate an error, and the XADDs after it would store the batch all the
 * same. 0, or -1 with err (an error reply: last_permanent, the connection
 * kept; an I/O error: closed). */
int lp_pipeline_probe(struct lp_send *s, char *err);

/* Connects when not connected. 0, or -1 with err; credentials refused
 * end the run (78). */
int lp_pipeline_connect(struct lp_send *s, char *err);

/* --max-backlog: every 100 ms and 4 batches at most, waits while the
 * group's lag is above it. */
void lp_pipeline_check_backlog(struct lp_send *s);
/* Serving: is the lag over --max-backlog (read at most every 100 ms,
 * never waited on)? */
int lp_pipeline_backlogged(struct lp_send *s);
void lp_pipeline_ask_backlog(struct lp_send *s);
/* Serving: connects the questions' connection (lp_aside) when it is not:
 * now (now: the engine's own was just made), else once its backoff is
 * over (1 s, doubling to 30 s while it fails); its connect waits at most
 * a second. */
void lp_send_aside_connect(struct lp_send *s, int now);

/* ---- lp_spool.c --------------------------------------------------------- */

/* Appends the commands of b not done yet to the WAL (not synced); --wal-max
 * ends the run (75), a write error too (74). */
void lp_spool_batch(struct lp_send *s, struct lp_batch *b);

/* --producer with --wal: positions up to upto may be given; the floor
 * file in the WAL's directory is moved ahead first (a million at a time,
 * synced), so that a run that starts while Redis is away numbers above
 * every position given before, whatever the clock says. A failure ends
 * the run (74). */
void lp_spool_reserve(struct lp_send *s, uint64_t upto);

/* Opens the floor file of --producer in --wal: *floor its value (0:
 * none yet). 0, or -1 with err. */
int lp_spool_floor_open(struct lp_send *s, uint64_t *floor, char *err);

/* Syncs the WAL; a failure ends the run (74). */
void lp_spool_sync(struct lp_send *s);

/* The WAL cannot keep events (err): ends the run (74). */
_Noreturn void lp_spool_error(struct lp_send *s, const char *err);

/* Redis failed with input batches in flight: everything not acknowledged
 * goes to the WAL, in order, and the engine is in WAL mode. */
void lp_spool_spill(struct lp_send *s, const char *why);

/* Re-sending from the WAL failed: acknowledges what made it, tries again
 * later; Redis refusing for good ends the run (78). */
void lp_spool_replay_failed(struct lp_send *s, const char *why);

/* In WAL mode: the oldest WAL records go into a free slot of the ring. */
void lp_spool_replay(struct lp_send *s);

/* Ends the run with code after saying why, how much of the input went to
 * Redis (or the WAL), and the command that sends the rest. */
_Noreturn void lp_spool_give_up(struct lp_send *s, const char *why,
                                int code);

#endif
