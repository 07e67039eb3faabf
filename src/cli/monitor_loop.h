/*
 * monitor_loop.h - the sampling loop that `memsnap monitor`, `memsnap track` and `memsnap run`
 * share: their options, the watched command (started in a memory cgroup, under the allocation
 * tracker), the timeline written as docs/monitor-format.md says, thresholds and alerts, and
 * the OOM flight recorder.
 */
#ifndef MEMSNAP_MONITOR_LOOP_H
#define MEMSNAP_MONITOR_LOOP_H

#include <stdio.h>

/* Which command is running: each accepts its own subset of the options. */
enum cli_mon_kind {
    CLI_MON_MONITOR, /* sampling to CSV or JSON lines */
    CLI_MON_TRACK,   /* monitor + thresholds, alerts, --on-critical */
    CLI_MON_RUN,     /* a command in a memory cgroup; samples only for the flight recorder */
};

/* Prints the help of the options kind accepts (one line each), for the command's --help. */
void cli_monitor_options_help(FILE *fp, enum cli_mon_kind kind);

/* Runs `memsnap monitor|track|run ARGS`: parses argv (usage prints the --help text), starts
 * or attaches, samples until the end, and returns memsnap's exit status: the command's (128+N
 * when signal N killed it), 0 for a --pid that ended, 1 on a failure, 2 on a usage error, 127
 * when the command cannot be executed. */
int cli_monitor_main(enum cli_mon_kind kind, int argc, char **argv, void (*usage)(FILE *fp));

#endif /* MEMSNAP_MONITOR_LOOP_H */
