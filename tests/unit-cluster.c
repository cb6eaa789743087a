/* unit-cluster.c -- lp_cluster without a server: CRC16 and key slots with
 * hash tags, CLUSTER SLOTS replies (good and hostile), redirects, and the
 * waits of lp_cluster_resend */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_buf.h"
#include "lp_cluster.h"
#include "lp_parse.h"
#include "lp_time.h"
#include "tap.h"

static struct lp_reply *parse(const char *s, size_t n)
{
    struct lp_reply *rep = NULL;

    if (lp_reply_parse(s, n, &rep) != 1) {
        printf("# cannot parse: %.*s\n", (int)n, s);
        exit(1);
    }
    return rep;
}

/* the map of RESP s, asked of host asked: 0 or -1 (err) */
static int map_of(const char *s, const char *asked, struct lp_slot_map *m,
                  char *err)
{
    struct lp_reply *rep = parse(s, strlen(s));
    int rc;

    err[0] = '\0';
    rc = lp_slot_map_parse(rep, asked, m, err);
    lp_reply_free(rep);
    return rc;
}

/* refused with a message holding want, and the map left empty */
static void map_bad(const char *s, const char *want, const char *title)
{
    struct lp_slot_map m;
    char err[LP_ERRLEN];
    int rc = map_of(s, "10.0.0.1", &m, err), empty = m.nnodes == 0 &&
             m.nodes == NULL;

    for (size_t i = 0; i < LP_CLUSTER_SLOTS; i++)
        empty &= m.owner[i] == 0;
    ok(rc == -1 && strstr(err, want) != NULL && empty, "%s", title);
    if (rc != -1 || strstr(err, want) == NULL)
        printf("#   got %d: %s\n#   want: %s\n", rc, err, want);
    lp_slot_map_free(&m);
}

/* the redirect in error text s */
static int redir_of(const char *s, struct lp_redir *d, char *err)
{
    char buf[600];
    struct lp_reply *rep;
    int k;

    snprintf(buf, sizeof buf, "-%s\r\n", s);
    rep = parse(buf, strlen(buf));
    err[0] = '\0';
    k = lp_redir_parse(rep, d, err);
    lp_reply_free(rep);
    return k;
}

static void redir_ok(const char *s, int kind, unsigned slot,
                     const char *host, int port)
{
    struct lp_redir d;
    char err[LP_ERRLEN];
    int k = redir_of(s, &d, err);

    ok(k == kind && d.kind == kind && d.slot == slot &&
       strcmp(d.host, host) == 0 && d.port == port, "redirect '%s'", s);
    if (k != kind || strcmp(d.host, host) != 0 || d.port != port ||
        d.slot != slot)
        printf("#   got %d: slot %u host '%s' port %d (%s)\n", k, d.slot,
               d.host, d.port, err);
}

static void redir_bad(const char *s)
{
    struct lp_redir d;
    char err[LP_ERRLEN];
    int k = redir_of(s, &d, err);

    ok(k == -1 && strstr(err, "cannot be read") && d.kind == 0,
       "refused: redirect '%s'", s);
    if (k != -1)
        printf("#   got %d: slot %u host '%s' port %d\n", k, d.slot, d.host,
               d.port);
}

static const char ID_A[] = "07c37dfeb235213a872192d90877d0cd55635b91";
static const char ID_B[] = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1";

/* RESP of one node entry: [host, port, id] (host NULL: nil) */
static void node_resp(struct lp_buf *b, const char *host, int port,
                      const char *id)
{
    char t[600];

    snprintf(t, sizeof t, "*%d\r\n", id ? 3 : 2);
    lp_buf_adds(b, t);
    if (host)
        snprintf(t, sizeof t, "$%zu\r\n%s\r\n", strlen(host), host);
    else
        snprintf(t, sizeof t, "$-1\r\n");
    lp_buf_adds(b, t);
    snprintf(t, sizeof t, ":%d\r\n", port);
    lp_buf_adds(b, t);
    if (id) {
        snprintf(t, sizeof t, "$%zu\r\n%s\r\n", strlen(id), id);
        lp_buf_adds(b, t);
    }
}

static void test_slots(void)
{
    /* Redis's crc16.c: "123456789" -> 0x31C3 */
    is_int(lp_crc16("123456789", 9), 0x31C3, "CRC16-XMODEM of 123456789");
    is_int(lp_crc16("", 0), 0, "CRC16 of nothing");
    is_int(lp_crc16("\0", 1), 0, "CRC16 of one NUL");
    is_int(lp_crc16("a", 1), 0x7C87, "CRC16 of a");
    /* slots Redis 7.0 gives (CLUSTER KEYSLOT; t0342 asks many more) */
    is_int(lp_key_slot("foo", 3), 12182, "slot of foo");
    is_int(lp_key_slot("bar", 3), 5061, "slot of bar");
    is_int(lp_key_slot("123456789", 9), 0x31C3 % 16384, "slot of 123456789");
    is_int(lp_key_slot("", 0), 0, "slot of the empty key");
    /* hash tags */
    is_int(lp_key_slot("{user1000}.following", 20),
           lp_key_slot("user1000", 8), "{user1000}.following: its tag");
    is_int(lp_key_slot("{user1000}.followers", 20),
           lp_key_slot("{user1000}.following", 20), "one tag, one slot");
    is_int(lp_key_slot("{}", 2), lp_crc16("{}", 2) % 16384,
           "{}: an empty tag, the whole key");
    is_int(lp_key_slot("{", 1), lp_crc16("{", 1) % 16384, "{: the whole key");
    is_int(lp_key_slot("}{", 2), lp_crc16("}{", 2) % 16384,
           "}{: no } after the {, the whole key");
    is_int(lp_key_slot("{a}{b}", 6), lp_key_slot("a", 1),
           "{a}{b}: the first tag");
    is_int(lp_key_slot("a{}{b}", 6), lp_crc16("a{}{b}", 6) % 16384,
           "a{}{b}: the first tag is empty, the whole key (not b)");
    is_int(lp_key_slot("foo{}{bar}", 10), lp_crc16("foo{}{bar}", 10) % 16384,
           "foo{}{bar}: the whole key");
    is_int(lp_key_slot("foo{{bar}}zap", 13), lp_key_slot("{bar", 4),
           "foo{{bar}}zap: the tag is {bar");
    is_int(lp_key_slot("foo{bar}{zap}", 13), lp_key_slot("bar", 3),
           "foo{bar}{zap}: bar");
    is_int(lp_key_slot("logs:stream:{3}", 15), lp_key_slot("3", 1),
           "logs:stream:{3}: the shard's tag");
    is_int(lp_key_slot("x{a\0b}y", 7), lp_key_slot("a\0b", 3),
           "a tag with a NUL in it: binary safe");
    is_int(lp_key_slot("{a", 2), lp_crc16("{a", 2) % 16384,
           "{a: no }, the whole key");
}

static void test_map(void)
{
    struct lp_slot_map m;
    struct lp_buf b = { 0 };
    char err[LP_ERRLEN], t[200];
    int rc;

    /* Redis 7.0 with a replica each: metadata maps (RESP2: arrays) */
    lp_buf_adds(&b, "*2\r\n");
    lp_buf_adds(&b, "*4\r\n:0\r\n:8191\r\n");
    node_resp(&b, "127.0.0.1", 7000, ID_A);
    node_resp(&b, "127.0.0.1", 7003, ID_B);
    lp_buf_adds(&b, "*4\r\n:8192\r\n:16383\r\n");
    node_resp(&b, "127.0.0.1", 7001, ID_B);
    node_resp(&b, "127.0.0.1", 7004, ID_A);
    lp_buf_addc(&b, '\0');
    rc = map_of(b.p, "10.0.0.1", &m, err);
    ok(rc == 0 && m.nnodes == 2, "two masters, replicas left out (%s)", err);
    ok(rc == 0 && m.owner[0] == 1 && m.owner[8191] == 1 &&
       m.owner[8192] == 2 && m.owner[16383] == 2, "every slot's master");
    ok(rc == 0 && strcmp(m.nodes[0].host, "127.0.0.1") == 0 &&
       m.nodes[0].port == 7000 && strcmp(m.nodes[0].id, ID_A) == 0 &&
       m.nodes[1].port == 7001 && strcmp(m.nodes[1].id, ID_B) == 0,
       "hosts, ports and IDs");
    lp_slot_map_free(&m);

    /* one master in several ranges, a range of one slot, slots unowned */
    b.len = 0;
    lp_buf_adds(&b, "*3\r\n*3\r\n:0\r\n:99\r\n");
    node_resp(&b, "10.1.1.1", 6379, NULL);
    lp_buf_adds(&b, "*3\r\n:200\r\n:200\r\n");
    node_resp(&b, "10.1.1.2", 6379, NULL);
    lp_buf_adds(&b, "*3\r\n:300\r\n:16383\r\n");
    node_resp(&b, "10.1.1.1", 6379, NULL);
    lp_buf_addc(&b, '\0');
    rc = map_of(b.p, NULL, &m, err);
    ok(rc == 0 && m.nnodes == 2 && m.owner[0] == 1 && m.owner[99] == 1 &&
       m.owner[100] == 0 && m.owner[199] == 0 && m.owner[200] == 2 &&
       m.owner[201] == 0 && m.owner[300] == 1 && m.owner[16383] == 1,
       "Redis 3's [host, port]: one master twice, slots without master");
    ok(rc == 0 && m.nodes[0].id[0] == '\0', "no ID given: empty");
    lp_slot_map_free(&m);

    /* unknown-endpoint (Redis 7): nil or "" is the host asked */
    b.len = 0;
    lp_buf_adds(&b, "*2\r\n*3\r\n:0\r\n:10\r\n");
    node_resp(&b, NULL, 7000, ID_A);
    lp_buf_adds(&b, "*3\r\n:11\r\n:20\r\n");
    node_resp(&b, "", 7001, ID_B);
    lp_buf_addc(&b, '\0');
    rc = map_of(b.p, "192.168.1.9", &m, err);
    ok(rc == 0 && m.nnodes == 2 &&
       strcmp(m.nodes[0].host, "192.168.1.9") == 0 &&
       strcmp(m.nodes[1].host, "192.168.1.9") == 0 &&
       m.nodes[1].port == 7001, "nil and empty hosts: the host asked");
    lp_slot_map_free(&m);
    rc = map_of(b.p, NULL, &m, err);
    ok(rc == -1 && strstr(err, "host is not given"),
       "no host and no host asked: refused");
    lp_slot_map_free(&m);

    /* IPv6 */
    b.len = 0;
    lp_buf_adds(&b, "*1\r\n*3\r\n:0\r\n:16383\r\n");
    node_resp(&b, "::1", 7000, ID_A);
    lp_buf_addc(&b, '\0');
    rc = map_of(b.p, NULL, &m, err);
    ok(rc == 0 && strcmp(m.nodes[0].host, "::1") == 0, "an IPv6 host");
    lp_slot_map_free(&m);

    rc = map_of("*0\r\n", NULL, &m, err);
    ok(rc == 0 && m.nnodes == 0 && m.owner[0] == 0,
       "no ranges: no master for any slot");
    lp_slot_map_free(&m);

    /* hostile replies */
    map_bad("-ERR This instance has cluster support disabled\r\n",
            "cluster support disabled", "an error reply: its text said");
    map_bad(":3\r\n", "not a list of slot ranges", "an integer");
    map_bad("$-1\r\n", "not a list", "nil");
    map_bad("*1\r\n:1\r\n", "range 0 is not", "a range that is no array");
    map_bad("*1\r\n*2\r\n:0\r\n:1\r\n", "range 0 is not", "no master");
    map_bad("*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "range 0 is not", "a start that is a string");
    map_bad("*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "slots 5-4", "end before start");
    map_bad("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "slots 0-16384", "slot 16384");
    map_bad("*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "slots -1-3", "a negative slot");
    map_bad("*1\r\n*3\r\n:0\r\n:9223372036854775807\r\n*2\r\n$1\r\nh\r\n"
            ":1\r\n", "not within 0-16383", "a huge slot");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n$1\r\nh\r\n", "master is not",
            "a master that is a string");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n", "master is not",
            "a master without port");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n",
            "host is not a string", "a host that is an integer");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n",
            "port is not within 1-65535", "port 0");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:65536\r\n",
            "port is not within", "port 65536");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n$4\r\n6379\r\n",
            "port is not within", "a port that is a string");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:1\r\n:7\r\n",
            "ID is not a string", "an ID that is an integer");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:1\r\n$41\r\n"
            "01234567890123456789012345678901234567890\r\n",
            "at most 40 bytes", "an ID of 41 bytes");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\n?\r\n:1\r\n",
            "not known ('?'", "a host name not known");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\na b\r\n:1\r\n",
            "a space, a control", "a host with a space");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\na\nb\r\n:1\r\n",
            "a space, a control", "a host with a newline");
    map_bad("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$5\r\n[::1]\r\n:1\r\n",
            "or a bracket", "a host in brackets");
    map_bad("*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\na\r\n:1\r\n"
            "*3\r\n:10\r\n:20\r\n*2\r\n$1\r\nb\r\n:1\r\n",
            "slot 10 is in two ranges", "overlapping ranges");
    {
        char host[300];
        memset(host, 'h', 256);
        host[256] = '\0';
        b.len = 0;
        lp_buf_adds(&b, "*1\r\n*3\r\n:0\r\n:1\r\n");
        node_resp(&b, host, 1, NULL);
        lp_buf_addc(&b, '\0');
        map_bad(b.p, "a host of 256 bytes", "a host of 256 bytes");
    }
    /* more ranges than slots, more masters than we keep */
    b.len = 0;
    lp_buf_adds(&b, "*16385\r\n");
    for (int i = 0; i < 16385; i++) {
        snprintf(t, sizeof t, "*3\r\n:%d\r\n:%d\r\n", i % 16384, i % 16384);
        lp_buf_adds(&b, t);
        node_resp(&b, "h", 1, NULL);
    }
    lp_buf_addc(&b, '\0');
    map_bad(b.p, "16385 slot ranges", "16385 ranges");
    b.len = 0;
    snprintf(t, sizeof t, "*%d\r\n", LP_CLUSTER_NODES + 1);
    lp_buf_adds(&b, t);
    for (int i = 0; i <= LP_CLUSTER_NODES; i++) {
        snprintf(t, sizeof t, "*3\r\n:%d\r\n:%d\r\n", i, i);
        lp_buf_adds(&b, t);
        node_resp(&b, "h", 1 + i, NULL);
    }
    lp_buf_addc(&b, '\0');
    map_bad(b.p, "more than 2048 masters", "2049 masters");
    /* all 16384 slots in ranges of one, over 2048 masters: taken */
    b.len = 0;
    lp_buf_adds(&b, "*16384\r\n");
    for (int i = 0; i < 16384; i++) {
        snprintf(t, sizeof t, "*3\r\n:%d\r\n:%d\r\n", i, i);
        lp_buf_adds(&b, t);
        node_resp(&b, "h", 1 + i % LP_CLUSTER_NODES, NULL);
    }
    lp_buf_addc(&b, '\0');
    rc = map_of(b.p, NULL, &m, err);
    ok(rc == 0 && m.nnodes == LP_CLUSTER_NODES && m.owner[16383] ==
       16383 % LP_CLUSTER_NODES + 1, "16384 ranges over 2048 masters");
    lp_slot_map_free(&m);
    lp_buf_free(&b);
}

static void test_redirects(void)
{
    struct lp_redir d;
    char err[LP_ERRLEN];
    struct lp_reply *rep;

    redir_ok("MOVED 3999 127.0.0.1:6381", LP_REDIR_MOVED, 3999, "127.0.0.1",
             6381);
    redir_ok("ASK 3999 127.0.0.1:6381", LP_REDIR_ASK, 3999, "127.0.0.1",
             6381);
    redir_ok("MOVED 0 redis-1.example:7000", LP_REDIR_MOVED, 0,
             "redis-1.example", 7000);
    redir_ok("MOVED 16383 h:65535", LP_REDIR_MOVED, 16383, "h", 65535);
    redir_ok("MOVED 3999 :6381", LP_REDIR_MOVED, 3999, "", 6381);
    redir_ok("ASK 12 :1", LP_REDIR_ASK, 12, "", 1);
    redir_ok("MOVED 3999 ::1:6381", LP_REDIR_MOVED, 3999, "::1", 6381);
    redir_ok("ASK 7 2001:db8::17:30001", LP_REDIR_ASK, 7, "2001:db8::17",
             30001);
    redir_ok("MOVED 7 [2001:db8::17]:30001", LP_REDIR_MOVED, 7,
             "2001:db8::17", 30001);
    redir_ok("MOVED 7 fe80::1%eth0:30001", LP_REDIR_MOVED, 7, "fe80::1%eth0",
             30001);
    redir_ok("TRYAGAIN Multiple keys request during rehashing of slot",
             LP_REDIR_WAIT, 0, "", 0);
    redir_ok("CLUSTERDOWN The cluster is down", LP_REDIR_WAIT, 0, "", 0);
    redir_ok("CLUSTERDOWN Hash slot not served", LP_REDIR_WAIT, 0, "", 0);
    redir_ok("TRYAGAIN", LP_REDIR_WAIT, 0, "", 0);
    redir_ok("ERR unknown command 'MOVED'", LP_REDIR_NONE, 0, "", 0);
    redir_ok("MOVEDX 1 h:1", LP_REDIR_NONE, 0, "", 0);
    redir_ok("ASKING 1 h:1", LP_REDIR_NONE, 0, "", 0);
    redir_ok("TRYAGAINX", LP_REDIR_NONE, 0, "", 0);
    redir_ok("NOGROUP No such key", LP_REDIR_NONE, 0, "", 0);
    redir_bad("MOVED");
    redir_bad("MOVED ");
    redir_bad("ASK 1");
    redir_bad("MOVED 16384 h:1");
    redir_bad("MOVED 99999 h:1");
    redir_bad("MOVED 123456 h:1");
    redir_bad("MOVED -1 h:1");
    redir_bad("MOVED abc h:1");
    redir_bad("MOVED 1 h");
    redir_bad("MOVED 1 h:");
    redir_bad("MOVED 1 h:0");
    redir_bad("MOVED 1 h:65536");
    redir_bad("MOVED 1 h:123456");
    redir_bad("MOVED 1 h:12x");
    redir_bad("MOVED 1 h:1 extra");
    redir_bad("MOVED 1  h:1");
    redir_bad("MOVED 1 []:1");
    redir_bad("ASK 1 a\tb:1");
    /* fuzz-cluster's finding 1: "[]" inside brackets read back as "" */
    redir_bad("ASK 1 [[]]:6");
    redir_bad("ASK 1 [::1:6");
    redir_bad("ASK 1 a]:6");
    /* not an error reply: nothing to follow */
    rep = parse("+MOVED 1 h:1\r\n", 14);
    ok(lp_redir_parse(rep, &d, err) == LP_REDIR_NONE,
       "a status reply saying MOVED is no redirect");
    lp_reply_free(rep);
    rep = parse("$12\r\nMOVED 1 h:12\r\n", 19);
    ok(lp_redir_parse(rep, &d, err) == LP_REDIR_NONE,
       "a string reply saying MOVED is no redirect");
    lp_reply_free(rep);
}

/* lp_cluster without a server: what opening says, the waits */
static void test_object(void)
{
    struct lp_cluster *c;
    struct lp_cluster_try t;
    struct lp_redis *r;
    struct lp_url u;
    struct lp_tls tls = { "ca.pem", NULL, NULL, "name", 0 };
    char err[LP_ERRLEN];
    int asking, rc;
    int64_t ms;
    struct lp_reply *rep;

    lp_url_parse("unix:///nonexistent/no-redis.sock", &u, err);
    c = lp_cluster_new(&u, "secret", &tls);
    ok(c != NULL, "lp_cluster_new copies what it is given");
    ok(lp_cluster_mode(c) == 0 && lp_cluster_masters(c) == 0,
       "not open: no mode, no masters");
    rc = lp_cluster_slot_node(c, 5, &r, err);
    ok(rc == LP_REDIS_ETEMP && r == NULL && strstr(err, "not connected"),
       "routing before opening: refused, temporary");
    rc = lp_cluster_open(c, err);
    ok(rc == LP_REDIS_ETEMP && strstr(err, "no-redis.sock"),
       "a seed not there: temporary, named (%s)", err);

    /* a reply is only a redirect in a cluster */
    rep = parse("-MOVED 1 h:1\r\n", 14);
    lp_cluster_try_start(c, &t, 1);
    ok(lp_cluster_check(c, &t, NULL, rep) == LP_REDIR_NONE &&
       t.got.kind == LP_REDIR_NONE, "not a cluster: MOVED is an error");
    lp_reply_free(rep);

    /* a node that cannot be reached: backoff waits, then the timeout */
    lp_cluster_set_timeout(c, 60000);
    lp_cluster_try_start(c, &t, 1);
    lp_cluster_unreachable(c, &t, "h:1: Connection refused");
    rc = lp_cluster_resend(c, &t, &r, &asking, &ms, err);
    ok(rc == LP_CLUSTER_WAIT && ms == LP_BACKOFF_FIRST_MS && r == NULL &&
       asking == 0, "unreachable: wait 100 ms first");
    lp_cluster_unreachable(c, &t, "h:1: Connection refused");
    rc = lp_cluster_resend(c, &t, &r, &asking, &ms, err);
    ok(rc == LP_CLUSTER_WAIT && ms == 2 * LP_BACKOFF_FIRST_MS,
       "then 200 ms");
    t.start_ms = lp_mono_ms() - 60001;
    lp_cluster_unreachable(c, &t, "h:1: Connection refused");
    rc = lp_cluster_resend(c, &t, &r, &asking, &ms, err);
    ok(rc == -1 && strstr(err, "h:1: Connection refused (still after"),
       "past the timeout: given up, the reason said (%s)", err);
    lp_cluster_free(c);
    lp_cluster_free(NULL);
}

/* lp_key_aux: the keys that go with a stream, in its slot in a cluster */
static void test_key_aux(void)
{
    static const char *streams[] = {
        "logs:stream", "app:{a}", "{t1}x", "a{}b", "{}", "a{b", "x{", "{",
        "a{b}c{d}", "}", "{{x}}", "a}{b}",
    };
    char out[64], err[LP_ERRLEN];
    int n;

    n = lp_key_aux(0, "logs:stream", ":producers", out, sizeof out, err);
    is_str(out, "logs:stream:producers", "standalone: the names of before");
    ok(n == 21, "the length returned");
    n = lp_key_aux(0, "a}b", ":dlq", out, sizeof out, err);
    is_str(out, "a}b:dlq", "standalone: any name, as before");
    lp_key_aux(1, "logs:stream", ":producers", out, sizeof out, err);
    is_str(out, "{logs:stream}:producers", "cluster, no tag: the name is it");
    lp_key_aux(1, "app:{a}", ":producers", out, sizeof out, err);
    is_str(out, "app:{a}:producers", "cluster, a tag: kept");
    n = lp_key_aux(1, "a{b", ":dlq", out, sizeof out, err);
    is_str(out, "{a{b}:dlq", "a '{' without tag: the name is the tag");
    n = lp_key_aux(1, "a{}b", ":dlq", out, sizeof out, err);
    ok(n == -1, "an empty tag and a '}': no name shares its slot");
    for (size_t i = 0; i < sizeof streams / sizeof *streams; i++) {
        const char *s = streams[i];
        n = lp_key_aux(1, s, ":send-hold", out, sizeof out, err);
        if (n >= 0)
            ok(lp_key_slot(out, (size_t)n) == lp_key_slot(s, strlen(s)),
               "%s -> %s: the stream's slot", s, out);
        else
            ok(strchr(s, '}') != NULL && strstr(err, "hash tag"),
               "%s: refused, a '}' without a tag (%s)", s, err);
    }
    n = lp_key_aux(1, "}", ":x", out, sizeof out, err);
    ok(n == -1, "'}' alone cannot be paired");
    n = lp_key_aux(1, "a}{b}", ":x", out, sizeof out, err);
    ok(n >= 0, "a}{b} has tag b: kept (%s)", out);
    n = lp_key_aux(0, "0123456789012345678901234567890123456789012345678901234",
                   ":producers", out, sizeof out, err);
    ok(n == -1 && strstr(err, "too long"), "a name that does not fit: -1");
}

int main(void)
{
    test_key_aux();
    test_slots();
    test_map();
    test_redirects();
    test_object();
    return tap_done();
}
