/* lp_exit.h -- exit statuses shared by every tool (sysexits.h values) */
#ifndef LP_EXIT_H
#define LP_EXIT_H

/*
 * One table, documented once in logpipe(7) and in each tool's EXIT STATUS.
 * The values are those of sysexits.h so that shell scripts and systemd
 * (RestartForceExitStatus=, SuccessExitStatus=) can tell a temporary failure
 * from a permanent one.
 */
enum {
    LP_EX_OK = 0,           /* success */
    LP_EX_CHECK = 1,        /* logpipe-stat --check: a threshold was crossed */
    LP_EX_USAGE = 64,       /* bad command line */
    LP_EX_DATAERR = 65,     /* some input was invalid; the rest was processed */
    LP_EX_NOINPUT = 66,     /* an input file cannot be opened */
    LP_EX_UNAVAILABLE = 69, /* Redis unreachable and no fallback */
    LP_EX_SOFTWARE = 70,    /* internal error */
    LP_EX_CANTCREAT = 73,   /* cannot create output */
    LP_EX_IOERR = 74,       /* I/O error: disk full, fsync failed */
    LP_EX_TEMPFAIL = 75,    /* temporary failure, safe to retry */
    LP_EX_CONFIG = 78       /* bad configuration */
};

#endif
