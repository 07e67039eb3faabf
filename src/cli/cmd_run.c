/*
 * cmd_run.c - `memsnap run --memory-limit SIZE -- COMMAND`: a command in a new memory cgroup
 * with a limit, like `systemd-run -p MemoryMax=`, reporting an OOM kill in one line; with
 * --oom-* options the flight recorder samples it too. The loop is monitor_loop.c.
 */
#include "cli.h"
#include "monitor_loop.h"

static const struct mon_help run_help = {
    .head = "usage: memsnap run --memory-limit SIZE [options] [--] COMMAND [ARGS...]\n\n"
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
            "example: memsnap run --memory-limit 512M -- ./build.sh\n"};

int cmd_run(int argc, char **argv)
{
    return cli_monitor_main(CLI_MON_RUN, argc, argv, &run_help);
}
