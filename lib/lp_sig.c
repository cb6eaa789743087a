/* lp_sig.c -- SIGINT/SIGTERM set a flag; SIGPIPE is ignored */
#include <string.h>
#include <sys/socket.h>

#include "lp_sig.h"

volatile sig_atomic_t lp_stop;
volatile sig_atomic_t lp_hup;
static volatile sig_atomic_t shut_fd = -1;
static int hup_reopen;

static void on_stop(int sig)
{
    if (sig == SIGHUP && hup_reopen) {
        lp_hup = 1;
        return;
    }
    lp_stop = 1;
    if (shut_fd >= 0)
        shutdown(shut_fd, SHUT_RDWR);
}

void lp_sig_init(int hup_reopens)
{
    struct sigaction sa;

    hup_reopen = hup_reopens;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;            /* no SA_RESTART: wake up blocking calls */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void lp_sig_shutdown_fd(int fd)
{
    shut_fd = fd;
}
