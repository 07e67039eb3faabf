/*
 * cli.h - what the memsnap subcommands share: the command table entry points and a few
 * helpers for options, errors and files.
 */
#ifndef MEMSNAP_CLI_H
#define MEMSNAP_CLI_H

#include "memsnap.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

/* Exit codes: 0 success, 1 a failure while working, 2 a usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cmd_analyze(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* `memsnap bench engine TRACE` (bench_engine.c). */
int cli_bench_engine(const char *path, bool json);
int cmd_diff(int argc, char **argv);
int cmd_gpu(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_track(int argc, char **argv);

/* Prints "memsnap CMD: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a PID (1..INT_MAX); returns 0 or -1. */
int cli_parse_pid(const char *text, pid_t *out);
/* Parses a positive integer; returns 0 or -1. */
int cli_parse_uint(const char *text, unsigned long *out);
/* Opens a session on the given roots (NULL: defaults), checking that they are directories.
 * Prints the error and returns non-zero on failure. */
int cli_open_session(const char *cmd, const char *procfs, const char *sysfs, ms_session **out);
/* The same with every session option (opts->procfs and opts->sysfs are checked). */
int cli_open_session_with(const char *cmd, const ms_options *opts, ms_session **out);
/* Opens path for reading (O_NONBLOCK while opening, so that a FIFO nobody writes cannot block)
 * and refuses anything but a regular file. Prints one line "memsnap CMD: cannot read PATH:
 * it is a named pipe (FIFO)" (or a directory, a device, a socket, or strerror's words) and
 * returns -1; else the descriptor (O_CLOEXEC, blocking again), with *st (unless NULL) its
 * fstat. */
int cli_open_input(const char *cmd, const char *path, struct stat *st);
/* Reads a whole file ("-": standard input) into a malloc'd, NUL-terminated buffer, opened
 * through cli_open_input; NULL after printing one line naming path and the cause. */
char *cli_read_file(const char *cmd, const char *path, size_t *len);

/* Output files. Every file a command writes goes through these: the target is checked
 * (cli_output_check), the data is written to a temporary file beside it, and that file is
 * renamed over the target only when everything was written (cli_output_commit), so a failed
 * run (a full disk, an error, a signal) leaves what was at the target as it was. A target that
 * is a symlink to a regular file is replaced by the new file; the file it named is untouched. */

/* Checks that memsnap may write path: it is absent, or a regular file it may write (stat
 * follows a symlink to see; a symlink to a non-regular file is refused too). Refuses a
 * directory, device, FIFO or socket, and any path that is the same file as one in avoid[]
 * (NULL-terminated, or NULL; e.g. the program to be run, another output of the same
 * command): the same st_dev and st_ino when both exist, the same normalized path (its
 * directory resolved) otherwise. Prints one line "memsnap CMD: refusing to write PATH: it is
 * a directory" (etc.) and returns -1 for the target, -2 for a clash with avoid[] (a usage
 * error for two outputs of one command); 0 when fine. */
int cli_output_check(const char *cmd, const char *path, const char *const *avoid);
/* True when a and b name the same file, by the rule of cli_output_check. */
bool cli_same_file(const char *a, const char *b);
/* An output being written: fp writes a temporary file ".BASE.XXXXXX" in path's directory
 * (created O_EXCL, mode 0600, never through a symlink), renamed over path by
 * cli_output_commit or cli_output_publish. */
struct cli_output {
    FILE *fp;       /* the temporary file (path itself once published) */
    char *path;     /* the target, as given */
    char *tmp;      /* the temporary file; NULL once renamed over path */
    bool published; /* renamed over path before the end (cli_output_publish) */
};
/* Runs cli_output_check(cmd, path, NULL), then creates the temporary file. Returns 0, or -1
 * after printing one line ("memsnap CMD: cannot create PATH: ..."); out is then empty. */
int cli_output_open(const char *cmd, const char *path, struct cli_output *out);
/* Flushes the output and renames it over path now, for an output that is written for a long
 * time and read while it grows (monitor -o): from here on a failure leaves path incomplete,
 * not unchanged. Returns 0, or -1 after printing one line (the temporary file is removed,
 * path unchanged, out closed). */
int cli_output_publish(const char *cmd, struct cli_output *out);
/* Flushes, syncs and closes the output, checking every step (ENOSPC shows at any of them),
 * then renames it over path. Returns 0, or -1 after printing one line "memsnap CMD: cannot
 * write PATH: No space left on device; PATH left unchanged" (the temporary file removed).
 * out is empty afterwards either way. */
int cli_output_commit(const char *cmd, struct cli_output *out);
/* Closes the output and removes the temporary file: path is left as it was (unless it was
 * published). out is empty afterwards; an empty out is ignored. */
void cli_output_abort(struct cli_output *out);
/* A trace the allocation tracker writes (monitor/track --record; record -o can use it too):
 * the tracker is given a temporary name beside PATH (absent, so that the tracker can create
 * it O_EXCL), and cli_trace_commit renames it over PATH, and the tracker's TMP.<pid> files of
 * forked children over PATH.<pid>, once the command has ended. What was at PATH stays until
 * then, and stays for good when the tracker wrote nothing. */
struct cli_trace {
    char *path; /* the target, absolute */
    char *tmp;  /* the name given to the tracker (MEMSNAP_TRACE_FILE), absolute */
};
/* Picks t->tmp beside path (relative to the working directory), after checking that the
 * directory takes a new file. path itself is checked by cli_output_check, by the caller.
 * Returns 0, or -1 after printing one line ("memsnap CMD: cannot create PATH: ..."). */
int cli_trace_open(const char *cmd, const char *path, struct cli_trace *t);
/* Renames what the tracker wrote into place (see struct cli_trace) and empties t. Returns 0,
 * or -1 after printing one line: no trace was written (PATH left as it was), or a rename
 * failed (its temporary name is said). */
int cli_trace_commit(const char *cmd, struct cli_trace *t);
/* Removes whatever the tracker wrote under t->tmp (the command never ran) and empties t; an
 * empty t is ignored. */
void cli_trace_abort(struct cli_trace *t);
/* True when a GPU backend of session s found a device; otherwise why names, on one line,
 * why each backend is unavailable. */
bool cli_gpu_available(ms_session *s, char *why, size_t len);
/* ms_capture, but PSS and USS are left out rather than the whole capture when they are denied:
 * smaps_rollup needs ptrace access (another user's process, one that is not dumpable), which
 * statm, status and stat do not. Then denied (unless NULL) holds why, else "". */
int cli_capture(ms_session *s, pid_t pid, unsigned what, ms_snapshot *snap, char *denied,
                size_t len);

/* Where `meson install` puts the allocation tracker (set by src/cli/meson.build). */
#ifndef MEMSNAP_PRELOAD_INSTALLED
#define MEMSNAP_PRELOAD_INSTALLED "/usr/local/lib/memsnap/libmemsnap_preload.so"
#endif
#define PRELOAD_NAME "libmemsnap_preload.so"

/* Parses BYTES: digits with an optional K, M or G suffix (powers of 1024; "64K", "64k",
 * "64KiB" and "64KB" alike). 0 is allowed. Returns 0 or -1. */
int cli_parse_bytes(const char *text, unsigned long long *out);
/* A count, byte figure or time as a JSON integer; one past json_int_t (2^63 and more, from a
 * crafted file) as a real, never as a negative number. */
json_t *cli_json_u64(uint64_t v);
/* Finds the file execvp() would run for name: name itself when it has a '/', else the first
 * executable regular file in $PATH (an empty entry is the current directory). Returns it
 * (malloc'd), or NULL with errno ENOENT (none) or EACCES (found, but none executable). */
char *cli_find_program(const char *name);
/* execv(path, argv), through /bin/sh for a script without "#!" as execvp does; returns the
 * errno of the failure (it returns only on failure). */
int cli_exec(const char *path, char *const argv[]);
/* Finds libmemsnap_preload.so: $MEMSNAP_PRELOAD, else the build tree's (memsnap is
 * build/src/cli/memsnap, the library build/src/preload/), else the installed one. Returns its
 * absolute path (malloc'd), or prints why not (as subcommand cmd) and returns NULL. */
char *cli_find_preload(const char *cmd);
/* The allocation tracker's settings, as `memsnap record` passes them; a NULL or false field
 * leaves its variable out of the program's environment. */
struct cli_tracker {
    const char *preload;     /* absolute path of libmemsnap_preload.so */
    const char *trace;       /* absolute path of the trace */
    const char *depth;       /* MEMSNAP_TRACE_DEPTH, validated */
    const char *unwind;      /* MEMSNAP_TRACE_UNWIND */
    const char *sample_rate; /* MEMSNAP_TRACE_SAMPLE_RATE in bytes, decimal */
    bool mmap;               /* MEMSNAP_TRACE_MMAP=1 */
    bool no_follow;          /* MEMSNAP_TRACE_NO_FOLLOW=1 */
};
/* Sets the tracker's variables (LD_PRELOAD with the tracker first, MEMSNAP_TRACE_FILE,
 * MEMSNAP_TRACE_ROOT=getpid(), the options) in the environment of this process, the forked
 * child about to exec the program; 0 or -1 with errno. */
int cli_tracker_env(const struct cli_tracker *t);

#endif /* MEMSNAP_CLI_H */
