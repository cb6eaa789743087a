/* lp_exec.h -- one batch to the stdin of a shell command */
#ifndef LP_EXEC_H
#define LP_EXEC_H

#include <stddef.h>
#include <stdint.h>

/* lp_exec_run's verdicts besides 0 (the command exited 0) */
#define LP_EXEC_FAILED (-1)     /* ran and failed: worth another try */
#define LP_EXEC_NOTRUN (-2)     /* sh could not run it (status 126, 127) */

/*
 * Runs `sh -c cmd` in a process group of its own, with buf[0..n) on its
 * stdin, and our stdout and stderr. Waits for it at most timeout_ms, then
 * kills its whole group (SIGKILL). Signals that arrive meanwhile do not cut
 * it short: the batch in hand is finished. *unread is set to the bytes the
 * command did not read before it closed its stdin (0 normally).
 * Returns 0, LP_EXEC_FAILED or LP_EXEC_NOTRUN with err (LP_ERRLEN) saying
 * why: "exit status 3", "killed by signal 9", "timed out after 60s".
 */
int lp_exec_run(const char *cmd, const char *buf, size_t n,
                int64_t timeout_ms, size_t *unread, char *err);

#endif
