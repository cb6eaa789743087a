/* tool_msg.h -- what only a tool does: end the process as a filter does */
#ifndef TOOL_MSG_H
#define TOOL_MSG_H

/*
 * The tool's last work (writing its metrics): registered with atexit, and
 * run by tool_sigpipe_exit too, which leaves no other way. Once per
 * process: the last one given is the one tool_sigpipe_exit runs.
 */
void tool_at_exit(void (*fn)(void));

/* Ends the tool as a filter killed by SIGPIPE (the shell sees 141), after
 * the tool_at_exit work: for a reader of stdout that went away. */
void tool_sigpipe_exit(void) __attribute__((noreturn));

#endif
