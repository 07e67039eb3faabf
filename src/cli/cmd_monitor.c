/*
 * cmd_monitor.c - `memsnap monitor`: a process's memory, the system's, its cgroup's and the
 * GPUs', sampled over time into CSV or JSON lines (docs/monitor-format.md). The loop itself,
 * shared with track and run, is monitor_loop.c.
 */
#include "cli.h"
#include "monitor_loop.h"

static const struct mon_help monitor_help = {
    .head = "usage: memsnap monitor [options] --pid PID\n"
            "       memsnap monitor [options] [--] COMMAND [ARGS...]\n\n"
            "Sample a running process, or a command started for it, every --interval:\n"
            "its memory (RSS, PSS/USS, swap, faults...), the system's, its memory cgroup's\n"
            "and every GPU's, one record per line, each written and flushed at once (a\n"
            "killed monitor loses nothing it sampled). On a terminal, stderr shows a live\n"
            "status line.\n\n",
    .tail = "\nA command ends the monitoring when it ends; SIGINT, SIGTERM and SIGHUP are\n"
            "passed on to it. With --pid, monitoring ends when the process exits (a note on\n"
            "stderr, exit 0) or on SIGINT, SIGTERM, SIGHUP (exit 0). The records (start,\n"
            "sample, oom, end) are described in docs/monitor-format.md; use --output when\n"
            "COMMAND writes to standard output itself.\n\n"
            "Exit status: COMMAND's (128+N when signal N killed it: 137 when --duration's\n"
            "SIGKILL ended it); 127 when it cannot be\n"
            "executed; 0 for a --pid; 1 on a failure (no such PID, unwritable output); 2 on\n"
            "a usage error.\n\n"
            "example: memsnap monitor --interval 0.1 --output train.jsonl -- python3 train.py\n"
            "         memsnap monitor --pid 1234 --format csv --duration 60 > app.csv\n"};

int cmd_monitor(int argc, char **argv)
{
    return cli_monitor_main(CLI_MON_MONITOR, argc, argv, &monitor_help);
}
