/*
 * main.c - the memsnap command: dispatches to one cmd_<name>() per subcommand.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/*
 * The subcommands, sorted by name. To add one: write src/cli/cmd_<name>.c with
 * `int cmd_<name>(int argc, char **argv)` (argv[0] is the subcommand's name, and it handles
 * --help itself), declare it in cli.h, list the file in src/cli/meson.build and add a row here.
 */
static const struct cmd commands[] = {
    {"analyze", cmd_analyze, "summarize monitor output or a trace: trends, leaks, spikes, HTML"},
    {"bench", cmd_bench, "time captures against the raw cost of reading the same files"},
    {"diff", cmd_diff, "compare two saved JSON snapshots: one-line delta and before/after table"},
    {"gpu", cmd_gpu, "GPU processes and their memory on every GPU ('memsnap gpu ps')"},
    {"info", cmd_info, "the host, its memory and cgroup, and what each probe can measure"},
    {"monitor", cmd_monitor, "sample a process or a command over time to CSV or JSON lines"},
    {"record", cmd_record, "run a program with every heap allocation recorded into a trace"},
    {"report", cmd_report, "a trace's heap at its peak, at any moment, its leaks, diffs (--stats)"},
    {"run", cmd_run, "run a command in a new memory cgroup with a limit (--memory-limit)"},
    {"snapshot", cmd_snapshot, "capture a memory snapshot of a process (text, JSON or CSV)"},
    {"track", cmd_track, "monitor with thresholds, alerts and the OOM flight recorder"},
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: memsnap [--help | --version] <command> [options]\n\n"
                "Where did the memory go? Memory snapshots of any process, its memory cgroup,\n"
                "the system and every GPU; heap allocations recorded with their call stacks and\n"
                "replayed to any moment; timelines with thresholds, OOM bundles and analysis.\n\n"
                "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(fp, "\n'memsnap <command> --help' explains each command.\n"
                "Environment: MEMSNAP_PROCFS and MEMSNAP_SYSFS set the procfs and sysfs roots\n"
                "(as --procfs and --sysfs do), e.g. /host/proc in a container.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_error(NULL, "no command given (see 'memsnap --help')");
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (strcmp(name, "help") == 0 && argc > 2) {
            char *help_argv[] = {argv[2], "--help", NULL};
            for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, argv[2]) == 0)
                    return commands[i].fn(2, help_argv);
        }
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("memsnap %s (libmemsnap %s)\n", MEMSNAP_VERSION, ms_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    if (name[0] == '-')
        cli_error(NULL, "unknown option '%s' (see 'memsnap --help')", name);
    else
        cli_error(NULL, "unknown command '%s' (see 'memsnap --help')", name);
    return CLI_USAGE;
}
