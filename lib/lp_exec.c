/* lp_exec.c -- one batch to the stdin of a shell command */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lp_exec.h"
#include "lp_parse.h"
#include "lp_time.h"

/* A descriptor that polls readable when pid exits, or -1 (kernels before
 * 5.3): then we look every 10 ms. */
static int pid_fd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

/*
 * In the child, between fork and exec: async-signal-safe calls only. The
 * _exit calls here are not lib ending the tool: they end the child, a
 * copy of the tool that must never return into the caller's code (it
 * would run the drain loop, flush stdio and run the atexit work a second
 * time), and their status is how the child tells lp_exec_run that sh
 * could not be started: 126 and 127, as sh itself says it, which come
 * back as LP_EXEC_NOTRUN.
 */
static void child(const char *cmd, int rfd)
{
    struct sigaction sa;
    sigset_t none;

    setpgid(0, 0);
    if (rfd == STDIN_FILENO)
        fcntl(rfd, F_SETFD, 0);
    else if (dup2(rfd, STDIN_FILENO) < 0)
        _exit(126);
    /* ours are O_CLOEXEC, but not hiredis's socket */
    closefrom(3);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);  /* ignored here; a filter wants it */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

int lp_exec_run(const char *cmd, const char *buf, size_t n,
                int64_t timeout_ms, size_t *unread, char *err)
{
    int p[2], pfd, status = 0, exited = 0, timed_out = 0;
    size_t off = 0;
    int64_t deadline = lp_mono_ms() + timeout_ms;
    pid_t pid;

    *unread = 0;
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, LP_ERRLEN, "cannot start sh: pipe: %s",
                 strerror(errno));
        return LP_EXEC_FAILED;
    }
    if ((pid = fork()) < 0) {
        snprintf(err, LP_ERRLEN, "cannot start sh: fork: %s",
                 strerror(errno));
        close(p[0]);
        close(p[1]);
        return LP_EXEC_FAILED;
    }
    if (pid == 0) {
        close(p[1]);
        child(cmd, p[0]);
    }
    setpgid(pid, pid);          /* both sides: whichever runs first */
    close(p[0]);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    pfd = pid_fd(pid);

    /* feed it until it has all, closes its stdin, exits or runs out of
     * time; then wait for its exit */
    while (!exited) {
        struct pollfd fds[2];
        int nfds = 0, wait_ms;
        int64_t left = deadline - lp_mono_ms();

        if (left <= 0) {
            timed_out = 1;
            break;
        }
        if (p[1] >= 0) {
            fds[nfds].fd = p[1];
            fds[nfds].events = POLLOUT;
            fds[nfds++].revents = 0;
        }
        if (pfd >= 0) {
            fds[nfds].fd = pfd;
            fds[nfds].events = POLLIN;
            fds[nfds++].revents = 0;
        }
        wait_ms = left > 1000 ? 1000 : (int)left;
        if (pfd < 0 && p[1] < 0)
            wait_ms = wait_ms > 10 ? 10 : wait_ms;
        if (poll(fds, (nfds_t)nfds, wait_ms) < 0 && errno != EINTR) {
            snprintf(err, LP_ERRLEN, "poll: %s", strerror(errno));
            timed_out = 1;      /* cannot watch it: end it */
            break;
        }
        if (p[1] >= 0 && fds[0].revents) {
            ssize_t w = off < n ? write(p[1], buf + off, n - off) : 0;
            if (w > 0)
                off += (size_t)w;
            if (off == n || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                /* all given, or it closed its stdin (EPIPE) */
                close(p[1]);
                p[1] = -1;
            }
        }
        /* exited? (a grandchild may keep the pipe open: do not wait on
         * the pipe once sh is gone) */
        if (waitpid(pid, &status, WNOHANG) == pid)
            exited = 1;
    }
    if (p[1] >= 0)
        close(p[1]);
    if (pfd >= 0)
        close(pfd);
    *unread = n - off;
    if (timed_out) {
        char d[32];
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        lp_format_duration(timeout_ms, d, sizeof d);
        snprintf(err, LP_ERRLEN, "timed out after %s: killed", d);
        return LP_EXEC_FAILED;
    }
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0)
            return 0;
        snprintf(err, LP_ERRLEN, "exit status %d", code);
        return code == 126 || code == 127 ? LP_EXEC_NOTRUN : LP_EXEC_FAILED;
    }
    if (WIFSIGNALED(status)) {
        snprintf(err, LP_ERRLEN, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        return LP_EXEC_FAILED;
    }
    snprintf(err, LP_ERRLEN, "ended with status %#x", status);
    return LP_EXEC_FAILED;
}
