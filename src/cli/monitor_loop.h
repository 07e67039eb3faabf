/*
 * monitor_loop.h - what `memsnap monitor`, `memsnap track` and `memsnap run` share: their
 * options (monitor_options.c), the watched command started in a memory cgroup under the
 * allocation tracker (monitor_launch.c), and the loop (monitor_loop.c) over the library's
 * sampler, alerts, timeline writer and OOM flight recorder.
 */
#ifndef MEMSNAP_MONITOR_LOOP_H
#define MEMSNAP_MONITOR_LOOP_H

#include "cli.h"

#include <signal.h>
#include <stdio.h>

#define NS_PER_S         1000000000ull
#define MON_FULL_DEFAULT (100 * 1000000ull) /* --full-interval: 100 ms */
#define MON_MIN_INTERVAL 100000             /* --interval: at least 0.1 ms */
#define MON_STATUS_NS    (250 * 1000000ull) /* the terminal status line's refresh period */
#define MON_KILL_AFTER   (5 * NS_PER_S)     /* --kill-after: SIGKILL 5 s after SIGTERM */
#define MON_KILL_POLL_NS (10 * 1000000ull)  /* how often the grace period looks for the end */

/* Which command is running: each accepts its own subset of the options. */
enum cli_mon_kind {
    CLI_MON_MONITOR, /* sampling to CSV or JSON lines */
    CLI_MON_TRACK,   /* monitor + thresholds, alerts, --on-critical */
    CLI_MON_RUN,     /* a command in a memory cgroup; samples only for the flight recorder */
};

struct mon {
    enum cli_mon_kind kind;
    const char *name; /* "monitor", "track", "run" */
    /* options */
    pid_t pid;   /* --pid, 0 with a command */
    char **argv; /* the command, NULL with --pid */
    uint64_t interval_ns, duration_ns, full_ns;
    uint64_t kill_after_ns; /* --kill-after: SIGTERM to SIGKILL, 0: no SIGKILL */
    bool walk_budget;       /* no --full-interval: PSS walks are held to 1% of a core */
    const char *output;     /* NULL: standard output */
    ms_format fmt;
    bool tree, no_gpu;
    const char *procfs, *sysfs;
    const char *job_id;    /* NULL: unknown */
    long rank, world_size; /* -1: unknown */
    double warn, crit;     /* percent, < 0 when not set */
    char **hook;           /* --on-critical argv */
    char *hook_buf, *hook_path;
    uint64_t limit;     /* --memory-limit bytes, 0: none */
    const char *record; /* --record TRACE as given */
    bool flight;
    const char *dump_dir;
    unsigned long ring, max_dumps, max_mb;
    /* state */
    ms_session *s;
    ms_sampler *sampler; /* NULL: run without the flight recorder samples nothing */
    ms_alerts *alerts;
    ms_timeline_writer *tw; /* the records (run: only into the flight recorder) */
    struct cli_output out;  /* --output; out_fd is its descriptor */
    struct cli_trace tr;    /* --record: the tracker writes tr.tmp, renamed to TRACE at the end */
    int out_fd;             /* -1: no records (run) */
    ms_cglimit *cg;
    ms_flight *fl;
    char *path, *preload, *trace; /* the command's file, the tracker, the absolute trace */
    pid_t child;
    bool child_done;
    int child_status;
    bool sent_kill;          /* --kill-after sent the command SIGKILL */
    unsigned hooks;          /* --on-critical processes not yet reaped */
    bool write_failed;       /* the output failed: stop sampling */
    bool warned;             /* a skipped sample was reported */
    const ms_snapshot *last; /* the last sample's figures (the sampler's), NULL: none yet */
    bool tty;
    bool status_shown;
    uint64_t status_ns, t0;
};

/* monitor_options.c */
/* A command's --help around the lines of the options it takes. */
struct mon_help {
    const char *head, *tail;
};
/* Sets m's defaults, then parses argv into m; returns 0, CLI_USAGE after printing the error,
 * or CLI_HELP (-1) after --help. Then fills the job identity from the environment where not
 * given. */
int mon_options_parse(struct mon *m, int argc, char **argv, const struct mon_help *help);

/* monitor_launch.c */
extern volatile sig_atomic_t mon_child_pid; /* the command, for forwarding signals */
extern volatile sig_atomic_t mon_stop;      /* the signal that asked a --pid monitor to stop */
/* Signal handling for the run: forwarded to the command (or ending a --pid monitor). */
struct mon_signals {
    struct sigaction old[4]; /* SIGINT, SIGTERM, SIGHUP, SIGCHLD */
    struct sigaction old_pipe;
    sigset_t oldmask;
};
/* Installs the handlers with the signals blocked (mon_signals_unblock lets them in). */
void mon_signals_install(struct mon_signals *sg);
void mon_signals_unblock(const struct mon_signals *sg);
void mon_signals_restore(const struct mon_signals *sg);
/* Starts the command; returns 0, or the exit status after printing why it did not start. */
int mon_spawn(struct mon *m, const struct mon_signals *sg);
/* Reaps what ended without waiting: the command (its status kept) and --on-critical hooks. */
void mon_reap(struct mon *m);
/* Waits for the command to end, without sampling. */
void mon_wait_child(struct mon *m);
/* Ends the command at --duration as timeout -k does, and waits for it. */
void mon_stop_command(struct mon *m);
/* Runs --on-critical with the alert in MEMSNAP_ALERT_*; not waited for here. */
void mon_run_hook(struct mon *m, const ms_alert_event *e, int64_t seq, pid_t pid);
/* Clears the terminal status line before a line on stderr. */
void mon_status_clear(struct mon *m);

/* Runs `memsnap monitor|track|run ARGS`: parses argv (help: the --help text around the options),
 * starts or attaches, samples until the end, and returns memsnap's exit status: the command's
 * (128+N when signal N killed it), 0 for a --pid that ended, 1 on a failure, 2 on a usage error,
 * 127 when the command cannot be executed. */
int cli_monitor_main(enum cli_mon_kind kind, int argc, char **argv, const struct mon_help *help);

#endif /* MEMSNAP_MONITOR_LOOP_H */
