/*
 * cmd_snapshot.c - `memsnap snapshot`: capture one snapshot and print it.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void snapshot_usage(FILE *fp)
{
    fprintf(fp,
            "usage: memsnap snapshot [--pid PID] [--full] [--format text|json|csv] [--label L]\n"
            "                        [--output FILE] [--procfs DIR] [--sysfs DIR]\n"
            "                        [--gpu | --no-gpu]\n\n"
            "Capture a memory snapshot of a process (default: memsnap itself), of the system\n"
            "and of the process's memory cgroup.\n\n"
            "  -p, --pid PID      process to capture\n"
            "  -f, --full         also read status, stat and smaps_rollup: peak RSS/VMS, swap,\n"
            "                     RSS anon/file/shmem, PSS, USS, page faults, threads\n"
            "  -F, --format FMT   text (default), json (one object) or csv (header + row)\n"
            "      --gpu          require the GPUs (device memory, per-process use): an\n"
            "                     error when no GPU backend is available. By default every\n"
            "                     GPU is included, and none found is an empty list\n"
            "      --no-gpu       leave GPUs out\n"
            "  -l, --label L      label stored in the snapshot (shown by 'memsnap diff')\n"
            "  -o, --output FILE  write to FILE instead of standard output: a new file (0600)\n"
            "                     renamed over FILE when complete; a directory, device, FIFO\n"
            "                     or socket is refused\n"
            "      --procfs DIR   procfs root (default $MEMSNAP_PROCFS or /proc)\n"
            "      --sysfs DIR    sysfs root (default $MEMSNAP_SYSFS or /sys)\n"
            "  -h, --help         this help\n\n"
            "Fields that cannot be read are null in JSON, empty in CSV and left out in text.\n"
            "PSS and USS need ptrace access: for another user's process they are left out,\n"
            "with a note on stderr.\n"
            "example: memsnap snapshot --pid 1234 --full --format json > before.json\n");
}

int cmd_snapshot(int argc, char **argv)
{
    enum { OPT_GPU = CLI_OPT_OWN, OPT_NO_GPU };
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'F'},
        {"full", no_argument, NULL, 'f'},
        {"gpu", no_argument, NULL, OPT_GPU},
        {"no-gpu", no_argument, NULL, OPT_NO_GPU},
        {"help", no_argument, NULL, 'h'},
        {"label", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {"pid", required_argument, NULL, 'p'},
        CLI_LONGOPTS_ROOTS,
        {NULL, 0, NULL, 0},
    };
    struct cli_common co = {.formats =
                                1u << MS_FORMAT_TEXT | 1u << MS_FORMAT_JSON | 1u << MS_FORMAT_CSV};
    unsigned what = MS_CAPTURE_DEFAULT;
    const char *label = NULL, *output = NULL;
    int gpu = -1; /* -1: default (included), 0: --no-gpu, 1: --gpu (required) */
    int c;
    CLI_GETOPT_RESET();
    while ((c = getopt_long(argc, argv, ":F:fhl:o:p:", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            what = MS_CAPTURE_FULL;
            break;
        case 'h':
            snapshot_usage(stdout);
            return CLI_OK;
        case 'l':
            label = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_GPU:
            gpu = 1;
            break;
        case OPT_NO_GPU:
            gpu = 0;
            break;
        default:
            if (cli_shared_option("snapshot", c, argv, &co) != 0)
                return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("snapshot", "unexpected argument '%s' (see 'memsnap snapshot --help')",
                  argv[optind]);
        return CLI_USAGE;
    }

    ms_session *s;
    if (cli_open_session("snapshot", co.procfs, co.sysfs, &s) != 0)
        return CLI_FAIL;
    /* GPUs are captured by default: with no backend the snapshot says so with an empty list. */
    char why[1024];
    if (gpu != 0)
        what |= MS_CAPTURE_GPU;
    if (gpu == 1 && !cli_gpu_available(s, why, sizeof(why))) {
        cli_error("snapshot", "--gpu: no GPU backend is available (%s)", why);
        ms_session_close(s);
        return CLI_FAIL;
    }
    static ms_snapshot snap; /* large with its GPUs: not on the stack */
    ms_snapshot_init(&snap);
    ms_snapshot_set_label(&snap, label);
    char denied[512];
    int rc = cli_capture(s, co.pid, what, &snap, denied, sizeof(denied));
    if (rc) {
        cli_error("snapshot", "%s", ms_session_error(s));
        ms_session_close(s);
        return CLI_FAIL;
    }
    ms_session_close(s);
    if (denied[0])
        cli_error("snapshot", "PSS and USS left out: %s", denied);

    /* -o: written to a temporary file beside FILE and renamed over it only when complete, so
     * a full disk or an error leaves no empty file and an existing FILE unchanged */
    struct cli_output out = {0};
    FILE *fp = stdout;
    if (output) {
        if (cli_output_open("snapshot", output, &out) != 0)
            return CLI_FAIL;
        fp = out.fp;
    }
    ms_writer *w;
    errno = 0;
    rc = ms_writer_open(&w, co.fmt, fp);
    if (rc == 0) {
        rc = ms_writer_snapshot(w, &snap);
        int rc2 = ms_writer_close(w);
        rc = rc ? rc : rc2;
    }
    /* MS_EIO: the stream failed, and errno says why (ENOSPC) */
    const char *cause = rc == MS_EIO && errno ? strerror(errno) : ms_strerror(rc);
    if (output) {
        if (rc) {
            cli_error("snapshot", "cannot write %s: %s; it was left unchanged", output, cause);
            cli_output_abort(&out);
            return CLI_FAIL;
        }
        return cli_output_commit("snapshot", &out) == 0 ? CLI_OK : CLI_FAIL;
    }
    if (rc == 0 && fflush(stdout) != 0) {
        rc = MS_EIO;
        cause = strerror(errno);
    }
    if (rc) {
        cli_error("snapshot", "writing standard output failed: %s", cause);
        return CLI_FAIL;
    }
    return CLI_OK;
}
