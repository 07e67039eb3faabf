/*
 * cmd_monitor.c - the three commands of the monitor loop (monitor_loop.c), which differ only
 * in their --help text and the kind passed to the loop:
 *   `memsnap monitor`: a process's memory, the system's, its cgroup's and the GPUs', sampled
 *     over time into CSV or JSON lines (docs/monitor-format.md);
 *   `memsnap track`: monitor plus thresholds against the tightest memory limit, alerts (stderr
 *     lines and "alert" records), an --on-critical command, a job identity in every record and
 *     the OOM flight recorder;
 *   `memsnap run --memory-limit SIZE -- COMMAND`: a command in a new memory cgroup with a
 *     limit, like `systemd-run -p MemoryMax=`, reporting an OOM kill in one line; with --oom-*
 *     options the flight recorder samples it too.
 */
#include "cli.h"
#include "monitor_loop.h"

/* Each command's --help, around the lines of the options it takes, by kind. */
static const struct mon_help mon_helps[] = {
    [CLI_MON_MONITOR] =
        {.head = "usage: memsnap monitor [options] --pid PID\n"
                 "       memsnap monitor [options] [--] COMMAND [ARGS...]\n\n"
                 "Sample a running process, or a command started for it, every --interval:\n"
                 "its memory (RSS, PSS/USS, swap, faults...), the system's, its memory cgroup's\n"
                 "and every GPU's, one record per line, each written and flushed at once (a\n"
                 "killed monitor loses nothing it sampled). On a terminal, stderr shows a live\n"
                 "status line.\n\n",
         .tail =
             "\nA command ends the monitoring when it ends; SIGINT, SIGTERM and SIGHUP are\n"
             "passed on to it. With --pid, monitoring ends when the process exits (a note on\n"
             "stderr, exit 0) or on SIGINT, SIGTERM, SIGHUP (exit 0). The records (start,\n"
             "sample, oom, end) are described in docs/monitor-format.md; use --output when\n"
             "COMMAND writes to standard output itself.\n\n"
             "Exit status: COMMAND's (128+N when signal N killed it: 137 when --duration's\n"
             "SIGKILL ended it); 127 when it cannot be\n"
             "executed; 0 for a --pid; 1 on a failure (no such PID, unwritable output); 2 on\n"
             "a usage error.\n\n"
             "example: memsnap monitor --interval 0.1 --output train.jsonl -- python3 train.py\n"
             "         memsnap monitor --pid 1234 --format csv --duration 60 > app.csv\n"},
    [CLI_MON_TRACK] =
        {.head = "usage: memsnap track [options] --pid PID\n"
                 "       memsnap track [options] [--] COMMAND [ARGS...]\n\n"
                 "Monitor (see 'memsnap monitor --help') with thresholds: each sample's usage is\n"
                 "compared with the tightest limit that applies - the memory cgroup's limit, the\n"
                 "system's memory (total - available), each GPU's memory - and an alert is raised\n"
                 "when it crosses --warning-threshold or --critical-threshold: once per crossing,\n"
                 "re-armed when usage falls back (an 'ok' alert under the warning threshold).\n\n",
         .tail =
             "\n--on-critical CMD is split on blanks into a program and its arguments and run\n"
             "directly, never through a shell (quotes are not special: use a script for anything\n"
             "more). Its environment adds MEMSNAP_ALERT_LEVEL, _METRIC (cgroup, system, gpuN),\n"
             "_USED_BYTES, _LIMIT_BYTES, _PERCENT, _PID, _SEQ, _TIME_NS, _JOB_ID, _RANK and\n"
             "_WORLD_SIZE; its standard output goes to memsnap's stderr. memsnap does not wait\n"
             "for it while sampling, but waits for it before exiting.\n\n"
             "OOM flight recorder: every sample and event is kept in a ring; when the cgroup's\n"
             "OOM-kill count rises, or COMMAND dies by SIGKILL with memory at 95% or more of\n"
             "its limit, the ring is written as a bundle directory in --oom-dump-dir and an\n"
             "'oom' record names it.\n\n"
             "Exit status: as 'memsnap monitor'.\n\n"
             "example: memsnap track --warning-threshold 80 --critical-threshold 95 \\\n"
             "           --on-critical ./notify.sh --oom-flight-recorder -o run.jsonl -- "
             "./train\n"},
    [CLI_MON_RUN] =
        {.head = "usage: memsnap run --memory-limit SIZE [options] [--] COMMAND [ARGS...]\n\n"
                 "Run COMMAND in a new memory cgroup (v1 or v2, under memsnap's own) limited to\n"
                 "SIZE, swap included where the kernel allows, and remove the cgroup after it\n"
                 "ends. When the OOM killer kills COMMAND, one line says so:\n"
                 "  memsnap run: COMMAND was killed by the OOM killer (memory limit 64.00 MiB)\n\n",
         .tail = "\nWith --oom-flight-recorder (or any --oom-* option) COMMAND is sampled every\n"
                 "--interval into the recorder's ring, written as a bundle on an OOM.\n"
                 "SIGINT, SIGTERM and SIGHUP are passed on to COMMAND.\n\n"
                 "Exit status: COMMAND's (128+N when signal N killed it: 137 for the OOM killer);\n"
                 "127 when it cannot be executed; 1 when the cgroup cannot be made (memsnap must\n"
                 "be able to write its memory cgroup: root, or a delegated cgroup); 2 on a usage\n"
                 "error.\n\n"
                 "example: memsnap run --memory-limit 512M -- ./build.sh\n"},
};

int cmd_monitor(int argc, char **argv)
{
    return cli_monitor_main(CLI_MON_MONITOR, argc, argv, &mon_helps[CLI_MON_MONITOR]);
}

int cmd_track(int argc, char **argv)
{
    return cli_monitor_main(CLI_MON_TRACK, argc, argv, &mon_helps[CLI_MON_TRACK]);
}

int cmd_run(int argc, char **argv)
{
    return cli_monitor_main(CLI_MON_RUN, argc, argv, &mon_helps[CLI_MON_RUN]);
}
