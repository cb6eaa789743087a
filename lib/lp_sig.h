/* lp_sig.h -- SIGINT/SIGTERM set a flag; SIGPIPE is ignored */
#ifndef LP_SIG_H
#define LP_SIG_H

#include <signal.h>

/* Set by SIGINT, SIGTERM (and SIGHUP when asked); the loops poll it. */
extern volatile sig_atomic_t lp_stop;
/* Set by SIGHUP when hup_reopens: reopen files, keep running. */
extern volatile sig_atomic_t lp_hup;

/*
 * Installs the handlers without SA_RESTART, so a blocking poll or read
 * returns EINTR and the loop sees the flag. SIGPIPE is ignored: hiredis
 * writes to sockets with write(2), and a closed stdout shows up as EPIPE.
 * hup_reopens: SIGHUP sets lp_hup instead of stopping.
 */
void lp_sig_init(int hup_reopens);

/* A descriptor to shut down (shutdown(2), async-signal-safe) when a stop
 * signal arrives while the tool blocks on it; -1 for none. */
void lp_sig_shutdown_fd(int fd);

#endif
