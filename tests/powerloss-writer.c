/* powerloss-writer.c -- a scripted writer for the power-loss shim's tests
 *
 *   powerloss-writer OP [ARG...] [OP [ARG...]]...
 *
 * Runs the operations in order with the plain system calls the shim
 * interposes, on one current descriptor, and stops at the first failure
 * (exit 1, said on stderr). `kill` SIGKILLs the writer there: the point of
 * the "power cut" is exact, without timing.
 *
 *   open PATH FLAGS     FLAGS letters: w write-only, r read-write,
 *                       c O_CREAT, t O_TRUNC, a O_APPEND, x O_EXCL
 *   write TEXT          write(2) TEXT ("\n" in it is a newline)
 *   pwrite OFF TEXT     pwrite(2) at OFF
 *   writev A B          writev(2) of two pieces
 *   ftruncate N         fsync  fdatasync  close
 *   dirsync DIR         fsync(2) of DIR
 *   mkdir DIR           rename FROM TO   unlink PATH   syncfs   sync
 *   sync_file_range     of the whole file, written and waited for
 *   threads N M PATH    N threads, each with its own O_APPEND descriptor
 *                       of PATH (made if missing), append M lines
 *                       "tI J", each followed by an fdatasync
 *   kill                SIGKILL ourselves
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int fd = -1;

static void die(const char *op, const char *arg)
{
    fprintf(stderr, "powerloss-writer: %s %s: %s\n", op, arg ? arg : "",
            strerror(errno));
    exit(1);
}

/* TEXT with "\n" made a newline, in a static buffer */
static const char *unescape(const char *s, size_t *len)
{
    static char b[4096];
    size_t n = 0;

    for (; *s && n < sizeof b; s++) {
        if (s[0] == '\\' && s[1] == 'n') {
            b[n++] = '\n';
            s++;
        } else {
            b[n++] = *s;
        }
    }
    *len = n;
    return b;
}

static long num(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "powerloss-writer: not a count: %s\n", s);
        exit(2);
    }
    return v;
}

struct job {
    int i;
    long m;
    const char *path;
};

static void *appender(void *arg)
{
    struct job *j = arg;
    char line[64];
    long k;
    int f = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (f < 0)
        die("threads", j->path);
    for (k = 0; k < j->m; k++) {
        int n = snprintf(line, sizeof line, "t%d %ld\n", j->i, k);
        if (write(f, line, (size_t)n) != n)
            die("threads: write", j->path);
        if (fdatasync(f) < 0)
            die("threads: fdatasync", j->path);
    }
    close(f);
    return NULL;
}

int main(int argc, char **argv)
{
    int i = 1;

#define ARG(k) (i + (k) < argc ? argv[i + (k)] : \
                (fprintf(stderr, "powerloss-writer: %s: missing argument\n", \
                         argv[i]), exit(2), ""))
    while (i < argc) {
        const char *op = argv[i];
        size_t len;
        const char *t;

        if (strcmp(op, "open") == 0) {
            const char *p = ARG(1), *fl = ARG(2);
            int flags = O_CLOEXEC;
            for (; *fl; fl++)
                switch (*fl) {
                case 'w': flags |= O_WRONLY; break;
                case 'r': flags |= O_RDWR; break;
                case 'c': flags |= O_CREAT; break;
                case 't': flags |= O_TRUNC; break;
                case 'a': flags |= O_APPEND; break;
                case 'x': flags |= O_EXCL; break;
                default:
                    fprintf(stderr, "powerloss-writer: flag %c?\n", *fl);
                    return 2;
                }
            if (fd >= 0)
                close(fd);
            if ((fd = open(p, flags, 0644)) < 0)
                die(op, p);
            i += 3;
        } else if (strcmp(op, "write") == 0) {
            t = unescape(ARG(1), &len);
            if (write(fd, t, len) != (ssize_t)len)
                die(op, ARG(1));
            i += 2;
        } else if (strcmp(op, "pwrite") == 0) {
            long off = num(ARG(1));
            t = unescape(ARG(2), &len);
            if (pwrite(fd, t, len, off) != (ssize_t)len)
                die(op, ARG(2));
            i += 3;
        } else if (strcmp(op, "writev") == 0) {
            char a[4096];
            size_t la;
            struct iovec v[2];
            t = unescape(ARG(1), &la);
            memcpy(a, t, la);
            t = unescape(ARG(2), &len);
            v[0].iov_base = a;
            v[0].iov_len = la;
            v[1].iov_base = (void *)t;
            v[1].iov_len = len;
            if (writev(fd, v, 2) != (ssize_t)(la + len))
                die(op, ARG(1));
            i += 3;
        } else if (strcmp(op, "ftruncate") == 0) {
            if (ftruncate(fd, num(ARG(1))) < 0)
                die(op, ARG(1));
            i += 2;
        } else if (strcmp(op, "fsync") == 0) {
            if (fsync(fd) < 0)
                die(op, NULL);
            i++;
        } else if (strcmp(op, "fdatasync") == 0) {
            if (fdatasync(fd) < 0)
                die(op, NULL);
            i++;
        } else if (strcmp(op, "close") == 0) {
            if (close(fd) < 0)
                die(op, NULL);
            fd = -1;
            i++;
        } else if (strcmp(op, "dirsync") == 0) {
            int d = open(ARG(1), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (d < 0 || fsync(d) < 0)
                die(op, ARG(1));
            close(d);
            i += 2;
        } else if (strcmp(op, "mkdir") == 0) {
            if (mkdir(ARG(1), 0755) < 0)
                die(op, ARG(1));
            i += 2;
        } else if (strcmp(op, "rename") == 0) {
            if (rename(ARG(1), ARG(2)) < 0)
                die(op, ARG(1));
            i += 3;
        } else if (strcmp(op, "unlink") == 0) {
            if (unlink(ARG(1)) < 0)
                die(op, ARG(1));
            i += 2;
        } else if (strcmp(op, "syncfs") == 0) {
            if (syncfs(fd >= 0 ? fd : AT_FDCWD) < 0) {
                int d = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (d < 0 || syncfs(d) < 0)
                    die(op, NULL);
                close(d);
            }
            i++;
        } else if (strcmp(op, "sync_file_range") == 0) {
            if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE |
                                SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER) < 0)
                die(op, NULL);
            i++;
        } else if (strcmp(op, "sync") == 0) {
            sync();
            i++;
        } else if (strcmp(op, "threads") == 0) {
            long n = num(ARG(1)), m = num(ARG(2)), k;
            pthread_t th[64];
            struct job jobs[64];
            if (n > 64)
                n = 64;
            for (k = 0; k < n; k++) {
                jobs[k].i = (int)k;
                jobs[k].m = m;
                jobs[k].path = ARG(3);
                if ((errno = pthread_create(&th[k], NULL, appender, &jobs[k])))
                    die(op, "pthread_create");
            }
            for (k = 0; k < n; k++)
                pthread_join(th[k], NULL);
            i += 4;
        } else if (strcmp(op, "kill") == 0) {
            kill(getpid(), SIGKILL);
            i++;
        } else {
            fprintf(stderr, "powerloss-writer: unknown operation %s\n", op);
            return 2;
        }
    }
    return 0;
}
