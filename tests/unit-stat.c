/* unit-stat.c -- lp_stat: the figures of a live stream and of the files,
 * counting past a lag Redis cannot give, a Redis failure said once, the
 * NDJSON and metrics of what is known */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lp_stat.h"
#include "tap.h"

static char root[] = "/tmp/unit-stat.XXXXXX";
static char sock[300];

/* What the notify heard: "E:msg;" or "W:msg;" each. */
static char heard[4096];

static void on_notice(void *ctx, int level, const char *msg)
{
    size_t n = strlen(heard);

    (void)ctx;
    snprintf(heard + n, sizeof heard - n, "%c:%s;",
             level == LP_NOTICE_ERROR ? 'E' : 'W', msg);
}

static struct lp_stat *make(const char *url, const char *stream,
                            const char *wal, const char *dir)
{
    char err[LP_ERRLEN];
    struct lp_url u;
    struct lp_stat_conf c = {
        .timeout = 5000, .stream = stream, .dlq = "dlq",
        .wal = wal, .dir = dir, .notify = { on_notice, NULL },
    };

    if (lp_url_parse(url, &u, err) < 0) {
        printf("# %s\n", err);
        return NULL;
    }
    c.redis = lp_redis_new(&u, NULL);
    heard[0] = '\0';
    return lp_stat_new(&c);
}

/* redis-cli against our server; 0 when it ran */
static int cli(const char *args)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd, "redis-cli -s '%s' %s >/dev/null", sock, args);
    return system(cmd);
}

static void put(const char *rel, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_down(void)
{
    char url[400];
    struct lp_stat *s;
    const struct lp_stat_figures *f;
    struct lp_metrics *m;
    char *j;
    uint64_t n = 7;

    snprintf(url, sizeof url, "unix://%s/nothing.sock", root);
    s = make(url, "st", NULL, NULL);
    is_int(lp_stat_redis(s), LP_STAT_EREDIS, "no Redis: EREDIS");
    f = lp_stat_figures(s);
    is_int(f->redis_failed, LP_STAT_REDIS_TEMP, "no Redis: may pass");
    ok(strncmp(heard, "E:cannot connect to unix:", 25) == 0 &&
       strchr(heard, ';') == heard + strlen(heard) - 1,
       "no Redis: said once, as an error (%s)", heard);
    ok(f->redis_err[0] && strstr(heard, f->redis_err),
       "no Redis: the message kept");
    is_int(lp_stat_count_after(s, "", 10, &n), LP_STAT_EREDIS,
           "count_after without Redis: EREDIS");
    is_int(n, 0, "count_after without Redis: nothing counted");
    ok(strchr(heard, ';') == heard + strlen(heard) - 1,
       "a second failure is not said again");
    j = lp_stat_json(s);
    ok(j && strstr(j, ",\"stream\":\"st\",\"length\":null,\"groups\":null,"
                      "\"dlq\":{\"key\":\"dlq\",\"length\":null},"
                      "\"redis_error\":\"cannot connect to unix:"),
       "NDJSON: the Redis part null, the error named");
    free(j);
    m = lp_stat_metrics(s);
    j = lp_metrics_render(m);
    ok(j && strstr(j, "\nlogpipe_redis_up 0\n") &&
       !strstr(j, "logpipe_stream_length"), "metrics: redis_up 0, no length");
    free(j);
    lp_metrics_free(m);
    lp_stat_free(s);
}

static void test_files(void)
{
    char wal[400], dir[400], url[400];
    struct lp_stat *s;
    const struct lp_stat_figures *f;

    snprintf(wal, sizeof wal, "%s/wal", root);
    snprintf(dir, sizeof dir, "%s/arch", root);
    mkdir(wal, 0755);
    mkdir(dir, 0755);
    put("wal/wal-00000001.log", "0123456789");
    put("wal/wal-00000002.log", "01234");
    put("wal/notes.txt", "not a segment");
    mkdir("arch/api", 0755);
    put("arch/api/2026-01-01.jsonl", "{}\n");
    put("arch/api/2025-12-31.jsonl.gz", "12345");
    snprintf(url, sizeof url, "unix://%s/nothing.sock", root);
    s = make(url, "st", wal, dir);
    lp_stat_files(s);
    f = lp_stat_figures(s);
    ok(f->have_wal && f->wal_bytes == 15 && f->wal_segments == 2,
       "the WAL: its segments only");
    ok(f->have_dir && f->dir_bytes == 8 && f->dir_files == 2,
       "the archive: its day files");
    ok(f->have_journal && f->journals == 0 && f->journal_bytes == 0 &&
       f->journal_age_ms == -1, "no journal: none, no age");
    is_str(heard, "", "nothing said");
    lp_stat_free(s);

    /* a segment a crashed drain left, last written 10 s ago */
    mkdir("arch/.logpipe-journal", 0750);
    mkdir("arch/.logpipe-journal/0123456789abcdef", 0750);
    put("arch/.logpipe-journal/0123456789abcdef/seg-0000000000000001.jnl",
        "LPJNL01\nxy");
    put("arch/.logpipe-journal/0123456789abcdef/notes.txt", "not one");
    {
        char seg[512];
        struct timespec t[2] = { { time(NULL) - 10, 0 },
                                 { time(NULL) - 10, 0 } };
        snprintf(seg, sizeof seg, "%s/arch/.logpipe-journal/0123456789abcdef/"
                 "seg-0000000000000001.jnl", root);
        utimensat(AT_FDCWD, seg, t, 0);
    }
    s = make(url, "st", NULL, dir);
    lp_stat_files(s);
    f = lp_stat_figures(s);
    ok(f->have_dir && f->dir_bytes == 8 && f->dir_files == 2,
       "the journal is no day file");
    ok(f->have_journal && f->journals == 1 && f->journal_bytes == 10,
       "the journal: one, its segment's bytes (%u, %llu)", f->journals,
       (unsigned long long)f->journal_bytes);
    ok(f->journal_age_ms >= 9000 && f->journal_age_ms < 60000,
       "its age: from the segment's mtime (%lld ms)",
       (long long)f->journal_age_ms);
    {
        char *j = lp_stat_json(s);
        ok(j && strstr(j, ",\"files\":2,\"journals\":1,"
                          "\"journal_bytes\":10,"
                          "\"oldest_journal_age_seconds\":"),
           "NDJSON: in the archive object, after its files");
        free(j);
    }
    lp_stat_free(s);
    unlink("arch/.logpipe-journal/0123456789abcdef/seg-0000000000000001.jnl");
    unlink("arch/.logpipe-journal/0123456789abcdef/notes.txt");
    rmdir("arch/.logpipe-journal/0123456789abcdef");
    rmdir("arch/.logpipe-journal");

    s = make(url, "st", "/nonexistent/wal", NULL);
    lp_stat_files(s);
    ok(!lp_stat_figures(s)->have_wal, "a WAL that is not there: left out");
    is_str(heard, "W:--wal /nonexistent/wal: No such file or directory;",
           "and warned of");
    lp_stat_free(s);
}

static void test_live(void)
{
    char url[400];
    struct lp_stat *s;
    const struct lp_stat_figures *f;
    uint64_t n;

    snprintf(url, sizeof url, "unix://%s", sock);
    cli("XADD st 1-1 a 1");
    cli("XADD st 1-2 a 1");
    cli("XADD st 1-3 a 1");
    cli("XADD st 1-4 a 1");
    cli("XGROUP CREATE st g 0");
    cli("XREADGROUP GROUP g c COUNT 1 STREAMS st '>'");
    cli("XDEL st 1-3");
    cli("XADD dlq '*' a 1");
    s = make(url, "st", NULL, NULL);
    is_int(lp_stat_redis(s), 0, "a live stream: 0");
    f = lp_stat_figures(s);
    is_int(f->length, 3, "length");
    is_str(f->first_id, "1-1", "first ID");
    is_str(f->last_id, "1-4", "last ID");
    is_int(f->ng, 1, "one group");
    is_int(f->g[0].pending, 1, "its pending entry");
    is_str(f->old[0].id, "1-1", "its oldest pending ID");
    ok(f->old[0].age_ms > 0, "its age");
    is_int(f->g[0].lag, -1, "a lag Redis does not give after an XDEL");
    is_int(f->dlq, 1, "the DLQ");
    is_int(f->redis_failed, LP_STAT_REDIS_OK, "Redis up");
    is_int(lp_stat_count_after(s, "1-1", 10, &n), 0, "count_after: 0");
    is_int(n, 2, "count_after: the entries after the last delivered one");
    lp_stat_count_after(s, "1-1", 0, &n);
    is_int(n, 1, "count_after: no further than limit + 1");
    lp_stat_count_after(s, "", 10, &n);
    is_int(n, 3, "count_after from the start");
    is_str(heard, "", "nothing said");
    lp_stat_free(s);

    cli("SET wrong x");
    s = make(url, "wrong", NULL, NULL);
    is_int(lp_stat_redis(s), LP_STAT_EREDIS, "a key of the wrong type: EREDIS");
    is_int(lp_stat_figures(s)->redis_failed, LP_STAT_REDIS_PERM,
           "no retry cures it");
    ok(strncmp(heard, "E:XLEN wrong: WRONGTYPE", 23) == 0,
       "the command and the key named (%s)", heard);
    lp_stat_free(s);
}

int main(void)
{
    char cmd[1200], pidfile[400];
    FILE *p;
    long pid = 0;

    if (mkdtemp(root) == NULL || chdir(root) < 0) {
        perror(root);
        return 1;
    }
    test_down();
    test_files();
    snprintf(sock, sizeof sock, "%s/redis.sock", root);
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", root);
    snprintf(cmd, sizeof cmd, "redis-server --port 0 --unixsocket '%s' "
             "--dir '%s' --save '' --appendonly no --daemonize yes "
             "--pidfile '%s' --logfile '%s/redis.log'", sock, root, pidfile,
             root);
    if (system(cmd) != 0) {
        printf("# cannot start redis-server\n");
    } else {
        for (int i = 0; i < 100 && cli("PING") != 0; i++)
            usleep(50000);
        test_live();
        for (int i = 0; i < 100 && pid == 0; i++) {
            if ((p = fopen(pidfile, "r")) != NULL) {
                if (fscanf(p, "%ld", &pid) != 1)
                    pid = 0;
                fclose(p);
            }
            if (pid == 0)
                usleep(50000);
        }
        if (pid > 0)
            kill((pid_t)pid, SIGTERM);
    }
    if (chdir("/") == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            perror(cmd);
    }
    return tap_done();
}
