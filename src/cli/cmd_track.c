/*
 * cmd_track.c - `memsnap track`: monitor plus thresholds against the tightest memory limit,
 * alerts (stderr lines and "alert" records), an --on-critical command, a job identity in
 * every record and the OOM flight recorder. The loop is monitor_loop.c.
 */
#include "cli.h"
#include "monitor_loop.h"

static const struct mon_help track_help = {
    .head = "usage: memsnap track [options] --pid PID\n"
            "       memsnap track [options] [--] COMMAND [ARGS...]\n\n"
            "Monitor (see 'memsnap monitor --help') with thresholds: each sample's usage is\n"
            "compared with the tightest limit that applies - the memory cgroup's limit, the\n"
            "system's memory (total - available), each GPU's memory - and an alert is raised\n"
            "when it crosses --warning-threshold or --critical-threshold: once per crossing,\n"
            "re-armed when usage falls back (an 'ok' alert under the warning threshold).\n\n",
    .tail = "\n--on-critical CMD is split on blanks into a program and its arguments and run\n"
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
            "           --on-critical ./notify.sh --oom-flight-recorder -o run.jsonl -- ./train\n"};

int cmd_track(int argc, char **argv)
{
    return cli_monitor_main(CLI_MON_TRACK, argc, argv, &track_help);
}
