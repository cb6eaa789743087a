/* tool_msg.c -- what only a tool does: end the process as a filter does */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "tool_msg.h"

/* process-wide, as atexit is: see lib/README */
static void (*at_exit_fn)(void);

void tool_at_exit(void (*fn)(void))
{
    at_exit_fn = fn;
    atexit(fn);
}

void tool_sigpipe_exit(void)
{
    if (at_exit_fn)
        at_exit_fn();
    signal(SIGPIPE, SIG_DFL);
    raise(SIGPIPE);
    _exit(128 + SIGPIPE);
}
