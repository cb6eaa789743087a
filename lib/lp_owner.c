/* lp_owner.c -- one live drain per consumer name, one group per --dir */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_cluster.h"
#include "lp_owner.h"
#include "lp_parse.h"
#include "lp_time.h"

#define CONSUMER_LOCK ".logpipe-drain-"   /* + hash + ".lock" */
#define GROUP_LOCK ".logpipe-group-"

struct lp_owner {
    char *stream, *group, *consumer, *host, *key;
    char *dstream;              /* names the group's --dir lock: stream,
                                 * or lp_owner_dir_stream's */
    /* "<pid> <start ticks> <since ms> <boot id> <pid ns> <host>": what
     * the heartbeat and the consumer's lock file hold */
    char value[512];
    char boot[40];
    uint64_t pidns;
    char replace[512];          /* a dead self's heartbeat, to take over */
    int cfd, gfd;               /* the lock files, held while we run */
};

/* A holder as its value says. */
struct holder {
    long pid;
    uint64_t start, pidns;
    int64_t since;
    char boot[40];
    char host[256];
};

/* FNV-1a over the strings, each with its NUL: names for the lock files
 * that any stream, group or consumer name gives. */
static uint64_t hash(const char *a, const char *b, const char *c)
{
    const char *s[3] = { a, b, c };
    uint64_t h = 14695981039346656037ULL;

    for (int i = 0; i < 3 && s[i]; i++) {
        const unsigned char *p = (const unsigned char *)s[i];
        do {
            h ^= *p;
            h *= 1099511628211ULL;
        } while (*p++);
    }
    return h;
}

/* Field 3 (state) and 22 (start time, in clock ticks after boot) of
 * /proc/PID/stat; the command name, field 2, may hold anything, so the
 * fields are counted from its closing parenthesis. 0 or -1. */
static int proc_stat(long pid, char *state, uint64_t *start)
{
    char path[64], buf[1024], *p;
    ssize_t n;
    int fd, field;

    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    else
        snprintf(path, sizeof path, "/proc/self/stat");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
        return -1;
    *state = p[2];
    for (field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL)
        return -1;
    *start = strtoull(p + 1, NULL, 10);
    return 0;
}

static void read_line(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, cap - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n ")] = '\0';
    if (buf[0] == '\0')
        snprintf(buf, cap, "-");
}

struct lp_owner *lp_owner_new(const char *stream, const char *group,
                              const char *consumer, const char *host,
                              int cluster)
{
    struct lp_owner *o = calloc(1, sizeof *o);
    struct stat st;
    uint64_t start = 0;
    char state;
    size_t kl;

    if (o == NULL)
        return NULL;
    o->cfd = o->gfd = -1;
    o->stream = strdup(stream);
    o->group = strdup(group);
    o->consumer = strdup(consumer);
    o->host = strdup(host);
    kl = strlen(stream) + strlen(group) + strlen(consumer) + 16;
    if ((o->key = malloc(kl)) != NULL) {
        /* "<stream>:drain:<group>:<consumer>", in a cluster in the
         * stream's slot (lp_key_aux): its connection serves that slot */
        char suf[1024], e[LP_ERRLEN];
        snprintf(suf, sizeof suf, ":drain:%s:%s", group, consumer);
        if (lp_key_aux(cluster, stream, suf, o->key, kl, e) < 0)
            snprintf(o->key, kl, "%s%s", stream, suf);
    }
    o->dstream = o->stream;
    if (!o->stream || !o->group || !o->consumer || !o->host || !o->key) {
        lp_owner_free(o);
        return NULL;
    }
    read_line("/proc/sys/kernel/random/boot_id", o->boot, sizeof o->boot);
    if (stat("/proc/self/ns/pid", &st) == 0)
        o->pidns = (uint64_t)st.st_ino;
    if (proc_stat(0, &state, &start) < 0)
        start = 0;
    snprintf(o->value, sizeof o->value, "%ld %" PRIu64 " %lld %s %" PRIu64
             " %s", (long)getpid(), start, (long long)lp_now_ms(), o->boot,
             o->pidns, host);
    return o;
}

void lp_owner_free(struct lp_owner *o)
{
    if (o == NULL)
        return;
    if (o->cfd >= 0)
        close(o->cfd);
    if (o->gfd >= 0)
        close(o->gfd);
    if (o->dstream != o->stream)
        free(o->dstream);
    free(o->stream);
    free(o->group);
    free(o->consumer);
    free(o->host);
    free(o->key);
    free(o);
}

int lp_owner_dir_stream(struct lp_owner *o, const char *stream)
{
    char *s = strdup(stream);

    if (s == NULL)
        return -1;
    if (o->dstream != o->stream)
        free(o->dstream);
    o->dstream = s;
    return 0;
}

const char *lp_owner_key(const struct lp_owner *o)
{
    return o->key;
}

static int parse_holder(const char *v, size_t n, struct holder *h)
{
    char buf[512];
    long long since;
    unsigned long long start, pidns;
    int pos = 0;

    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    memset(h, 0, sizeof *h);
    if (sscanf(buf, "%ld %llu %lld %39s %llu %n", &h->pid, &start, &since,
               h->boot, &pidns, &pos) != 5 || pos == 0)
        return -1;
    h->start = start;
    h->since = since;
    h->pidns = pidns;
    snprintf(h->host, sizeof h->host, "%s", buf + pos);
    h->host[strcspn(h->host, "\r\n")] = '\0';
    return 0;
}

/* "pid 123 on host h1, running since 2026-12-06T04:38:20.000Z" */
static void describe(const struct holder *h, char *buf, size_t cap)
{
    char t[40];

    lp_time_format(h->since, t);
    snprintf(buf, cap, "pid %ld on host %s, running since %s", h->pid,
             h->host[0] ? h->host : "?", t);
}

/* Can we look at the holder's process: the same kernel boot and PID
 * namespace (another machine, a container, or an earlier boot: no)? */
static int same_machine(const struct lp_owner *o, const struct holder *h)
{
    return strcmp(o->boot, "-") != 0 && strcmp(o->boot, h->boot) == 0 &&
           o->pidns != 0 && o->pidns == h->pidns;
}

/* Is the holder's process alive: the PID exists, is no zombie, and
 * started when the holder did (not a PID used again)? */
static int alive(const struct holder *h)
{
    uint64_t start;
    char state;

    if (h->pid <= 0)
        return 0;
    if (proc_stat(h->pid, &state, &start) < 0)
        return kill((pid_t)h->pid, 0) == 0 || errno == EPERM;
    if (state == 'Z' || state == 'X')
        return 0;
    return h->start == 0 || start == h->start;
}

/* ---- lock files in --dir ------------------------------------------------ */

/* The text of the lock file fd (at most cap-1 bytes), "" when none. */
static void read_fd(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);

    buf[n > 0 ? n : 0] = '\0';
}

static int write_fd(int fd, const char *s)
{
    size_t n = strlen(s);

    if (ftruncate(fd, 0) < 0 || pwrite(fd, s, n, 0) != (ssize_t)n)
        return -1;
    return 0;
}

/* A lock file, made when missing; one we may not write (left by a drain
 * run as another user) is locked all the same: flock needs no write. */
static int open_lock(int dirfd, const char *name, char *err)
{
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                    0640);

    if (fd < 0 && errno == EACCES) {
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT)
            errno = EACCES;     /* not there, and we may not make it */
    }
    if (fd < 0)
        snprintf(err, LP_ERRLEN, "cannot open the lock file %s: %s", name,
                 strerror(errno));
    return fd;
}

/* Probes the other groups' lock files: is one held? 0, LP_OWNER_SHARED
 * with err naming it, or -1. */
static int other_groups(int dirfd, const char *mine, char *err)
{
    struct dirent *d;
    DIR *dir;
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (dfd < 0 || (dir = fdopendir(dfd)) == NULL) {
        snprintf(err, LP_ERRLEN, "cannot read the directory: %s",
                 strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    while (rc == 0 && (d = readdir(dir)) != NULL) {
        char text[600], stream[260] = "?", group[260] = "?";
        int fd;
        if (strncmp(d->d_name, GROUP_LOCK, strlen(GROUP_LOCK)) != 0 ||
            strcmp(d->d_name, mine) == 0)
            continue;
        fd = openat(dirfd, d->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
                    O_NONBLOCK);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            close(fd);          /* left by drains gone */
            continue;
        }
        read_fd(fd, text, sizeof text);
        close(fd);
        sscanf(text, "stream %259[^\n]\ngroup %259[^\n]", stream, group);
        snprintf(err, LP_ERRLEN, "a drain of group %s on stream %s writes "
                 "into it (lock file %s): each group gets every event, so "
                 "the tree would hold them twice", group, stream,
                 d->d_name);
        rc = LP_OWNER_SHARED;
    }
    closedir(dir);
    return rc;
}

void lp_owner_name(const struct lp_owner *o, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016" PRIx64, hash(o->stream, o->group, o->consumer));
}

int lp_owner_lock_dir(struct lp_owner *o, int dirfd, int shared, char *err)
{
    char cname[64], gname[64], text[600];
    struct stat st;
    struct holder h;
    int rc;

    snprintf(cname, sizeof cname, CONSUMER_LOCK "%016" PRIx64 ".lock",
             hash(o->stream, o->group, o->consumer));
    snprintf(gname, sizeof gname, GROUP_LOCK "%016" PRIx64 ".lock",
             hash(o->dstream, o->group, NULL));
    if (o->cfd < 0) {
        int fd = open_lock(dirfd, cname, err);
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            char who[400] = "another process";
            read_fd(fd, text, sizeof text);
            close(fd);
            if (parse_holder(text, strlen(text), &h) == 0)
                describe(&h, who, sizeof who);
            snprintf(err, LP_ERRLEN, "consumer %s of group %s on %s is in "
                     "use by %s (lock file %s)", o->consumer, o->group,
                     o->stream, who, cname);
            return LP_OWNER_TWIN;
        }
        /* who holds it, for the message of a twin */
        write_fd(fd, o->value);
        o->cfd = fd;
    }
    if (o->gfd < 0) {
        int fd = open_lock(dirfd, gname, err);
        if (fd < 0)
            return -1;
        /* only probes hold it exclusively, for an instant */
        while ((rc = flock(fd, LOCK_SH)) < 0 && errno == EINTR)
            ;
        if (rc < 0) {
            snprintf(err, LP_ERRLEN, "cannot lock %s: %s", gname,
                     strerror(errno));
            close(fd);
            return -1;
        }
        if (fstat(fd, &st) == 0 && st.st_size == 0) {
            snprintf(text, sizeof text, "stream %s\ngroup %s\n", o->dstream,
                     o->group);
            write_fd(fd, text);
        }
        o->gfd = fd;
    }
    /* after taking ours: of two drains of two groups starting together,
     * at least the second one sees the first */
    if (!shared && (rc = other_groups(dirfd, gname, err)) != 0)
        return rc;
    return 0;
}

/* ---- the heartbeat ------------------------------------------------------ */

/*
 * Takes the key when it is free, ours, or the dead self's value the
 * caller saw (ARGV[3], "" for none); answers {1}, or {0, value, pttl} of
 * the holder. KEYS: the key. ARGV: our value, TTL in ms, replaceable.
 */
static const char claim_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == false or v == ARGV[1] or v == ARGV[3] then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "  return {1}\n"
    "end\n"
    "return {0, v, redis.call('PTTL', KEYS[1])}\n";

static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

static int append_claim(struct lp_owner *o, struct lp_redis *r,
                        int64_t ttl_ms)
{
    char ttl[24];
    const char *argv[7] = { "EVAL", claim_script, "1", o->key, o->value,
                            ttl, o->replace };
    size_t lens[7];

    snprintf(ttl, sizeof ttl, "%lld", (long long)(ttl_ms > 0 ? ttl_ms : 1));
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    return lp_redis_append(r, 7, argv, lens);
}

/*
 * The claim script's reply: 0 when the key is ours; 1 when the holder is
 * a dead self (o->replace set: claim again); LP_OWNER_TWIN or
 * LP_OWNER_NOBEAT with err. Takes rep.
 */
static int judge(struct lp_owner *o, struct lp_reply *rep, char *err)
{
    const struct lp_reply *v, *ttl;
    struct holder h;
    const char *s;
    size_t n;
    int rc;

    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[300], *cut;
        lp_reply_text(rep, t, sizeof t);
        if ((cut = strstr(t, " script:")) != NULL)
            *cut = '\0';
        snprintf(err, LP_ERRLEN, "heartbeat %s: %s", o->key, t);
        lp_reply_free(rep);
        return LP_OWNER_NOBEAT;
    }
    if (lp_reply_type(rep) != LP_REPLY_ARRAY || lp_reply_len(rep) < 1) {
        snprintf(err, LP_ERRLEN, "heartbeat %s: unexpected reply", o->key);
        lp_reply_free(rep);
        return LP_OWNER_NOBEAT;
    }
    if (lp_reply_int(lp_reply_at(rep, 0)) == 1) {
        o->replace[0] = '\0';
        lp_reply_free(rep);
        return 0;
    }
    v = lp_reply_at(rep, 1);
    ttl = lp_reply_at(rep, 2);
    s = v ? lp_reply_str(v, &n) : NULL;
    if (s == NULL || parse_holder(s, n, &h) < 0) {
        snprintf(err, LP_ERRLEN, "consumer %s of group %s on %s is in use "
                 "(heartbeat %s holds something else)", o->consumer,
                 o->group, o->stream, o->key);
        rc = LP_OWNER_TWIN;
    } else if (same_machine(o, &h) && !alive(&h)) {
        /* our own earlier run, crashed or killed: take over at once */
        snprintf(o->replace, sizeof o->replace, "%.*s", (int)n, s);
        rc = 1;
    } else {
        char who[400];
        long long left = ttl ? lp_reply_int(ttl) : -1;
        describe(&h, who, sizeof who);
        if (same_machine(o, &h))
            snprintf(err, LP_ERRLEN, "consumer %s of group %s on %s is in "
                     "use by %s (heartbeat %s)", o->consumer, o->group,
                     o->stream, who, o->key);
        else
            snprintf(err, LP_ERRLEN, "consumer %s of group %s on %s is in "
                     "use by %s (heartbeat %s, which expires in %.1fs "
                     "unless that drain refreshes it)", o->consumer,
                     o->group, o->stream, who, o->key,
                     left > 0 ? (double)left / 1000.0 : 0.0);
        rc = LP_OWNER_TWIN;
    }
    lp_reply_free(rep);
    return rc;
}

int lp_owner_claim(struct lp_owner *o, struct lp_redis *r, int64_t ttl_ms,
                   char *err)
{
    /* a dead self is taken over with a compare-and-set of its value: of
     * two drains restarted together, one gets it, the other sees it */
    for (int round = 0; round < 3; round++) {
        struct lp_reply *rep;
        int rc;
        if (append_claim(o, r, ttl_ms) < 0) {
            snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(r));
            return -1;
        }
        if (lp_redis_reply(r, &rep, err) < 0)
            return -1;
        if ((rc = judge(o, rep, err)) != 1)
            return rc;
    }
    snprintf(err, LP_ERRLEN, "consumer %s of group %s on %s: another drain "
             "took it over meanwhile (heartbeat %s)", o->consumer, o->group,
             o->stream, o->key);
    return LP_OWNER_TWIN;
}

int lp_owner_queue_beat(struct lp_owner *o, struct lp_redis *r,
                        int64_t ttl_ms)
{
    return append_claim(o, r, ttl_ms);
}

int lp_owner_beat_reply(struct lp_owner *o, struct lp_reply *rep, char *err)
{
    int rc = judge(o, rep, err);

    /* a dead self holds it (ours had expired): taken at the next beat */
    return rc == 1 ? 0 : rc;
}

void lp_owner_release(struct lp_owner *o, struct lp_redis *r)
{
    char err[LP_ERRLEN];
    const char *argv[5] = { "EVAL", release_script, "1", o->key, o->value };
    size_t lens[5];

    if (!lp_redis_connected(r))
        return;
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    lp_reply_free(lp_redis_cmdv(r, err, 5, argv, lens));
}
