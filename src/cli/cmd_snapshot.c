/*
 * cmd_snapshot.c - `memsnap snapshot`: capture one snapshot and print it.
 */
#include "cli.h"
#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the options ask for. */
struct snapshot_opts {
    pid_t pid;          /* 0: memsnap itself */
    bool full;          /* --full */
    ms_format fmt;      /* --format */
    int gpu;            /* -1: default (included), 0: --no-gpu, 1: --gpu (required) */
    const char *device; /* --device: the one GPU, NULL for every GPU */
    const char *label, *output, *procfs, *sysfs;
};

/* --help, around the option lines. */
static const char snapshot_head[] =
    "usage: memsnap snapshot [--pid PID] [--full] [--format text|json|csv] [--label L]\n"
    "                        [--output FILE] [--procfs DIR] [--sysfs DIR]\n"
    "                        [--gpu | --no-gpu] [--device GPU]\n\n"
    "Capture a memory snapshot of a process (default: memsnap itself), of the system\n"
    "and of the process's memory cgroup.\n\n";
static const char snapshot_tail[] =
    "\nFields that cannot be read are null in JSON, empty in CSV and left out in text.\n"
    "PSS and USS need ptrace access: for another user's process they are left out,\n"
    "with a note on stderr.\n"
    "example: memsnap snapshot --pid 1234 --full --format json > before.json\n";

static const struct cli_opt snapshot_table[] = {
    OPT_PID(struct snapshot_opts, pid, "process to capture"),
    OPT_BOOL('f', "full", struct snapshot_opts, full,
             "also read status, stat and smaps_rollup: peak RSS/VMS, swap,\n"
             "RSS anon/file/shmem, PSS, USS, page faults, threads"),
    OPT_FORMAT(struct snapshot_opts, fmt, CLI_FMT_TEXT | CLI_FMT_JSON | CLI_FMT_CSV,
               "text (default), json (one object) or csv (header + row)"),
    OPT_SET_INT(0, "gpu", struct snapshot_opts, gpu, 1,
                "require the GPUs (device memory, per-process use): an\n"
                "error when no GPU backend is available. By default every\n"
                "GPU is included, and none found is an empty list"),
    OPT_SET_INT(0, "no-gpu", struct snapshot_opts, gpu, 0, "leave GPUs out"),
    OPT_NONEMPTY(0, "device", "GPU", struct snapshot_opts, device,
                 "only this GPU: its index (as 'memsnap gpu ps' lists them),\n"
                 "its UUID or its PCI bus id; an error when there is none"),
    OPT_STRING('l', "label", "L", struct snapshot_opts, label,
               "label stored in the snapshot (shown by 'memsnap diff')"),
    OPT_STRING('o', "output", "FILE", struct snapshot_opts, output,
               "write to FILE instead of standard output: a new file (0600)\n"
               "renamed over FILE when complete; a directory, device, FIFO\n"
               "or socket is refused"),
    OPT_SESSION_END(struct snapshot_opts),
};

static const struct cli_options snapshot_options = {
    .cmd = "snapshot", .opts = snapshot_table, .head = snapshot_head, .tail = snapshot_tail};

int cmd_snapshot(int argc, char **argv)
{
    struct snapshot_opts o = {.fmt = MS_FORMAT_TEXT, .gpu = -1};
    int rc = cli_parse(&snapshot_options, argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (optind < argc) {
        cli_error("snapshot", "unexpected argument '%s' (see 'memsnap snapshot --help')",
                  argv[optind]);
        return CLI_USAGE;
    }
    if (o.device && o.gpu == 0) {
        cli_error("snapshot", "--device and --no-gpu exclude each other");
        return CLI_USAGE;
    }
    unsigned what = o.full ? MS_CAPTURE_FULL : MS_CAPTURE_DEFAULT;

    ms_session *s;
    if (cli_open_session_with("snapshot",
                              &(ms_options){.size = sizeof(ms_options),
                                            .procfs = o.procfs,
                                            .sysfs = o.sysfs,
                                            .device = o.device},
                              &s) != 0)
        return CLI_FAIL;
    /* GPUs are captured by default: with no backend the snapshot says so with an empty list. */
    char why[1024];
    if (o.gpu != 0)
        what |= MS_CAPTURE_GPU;
    if ((o.gpu == 1 || o.device) && !cli_gpu_available(s, why, sizeof(why))) {
        cli_error("snapshot", "%s: no GPU backend is available (%s)",
                  o.device ? "--device" : "--gpu", why);
        ms_session_close(s);
        return CLI_FAIL;
    }
    static ms_snapshot snap; /* large with its GPUs: not on the stack */
    ms_snapshot_init(&snap);
    ms_snapshot_set_label(&snap, o.label);
    char denied[512];
    rc = cli_capture(s, o.pid, what, &snap, denied, sizeof(denied));
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
    if (o.output) {
        if (cli_output_open("snapshot", o.output, &out) != 0)
            return CLI_FAIL;
        fp = out.fp;
    }
    ms_writer *w;
    errno = 0;
    rc = ms_writer_open(&w, o.fmt, fp);
    if (rc == 0) {
        rc = ms_writer_snapshot(w, &snap);
        int rc2 = ms_writer_close(w);
        rc = rc ? rc : rc2;
    }
    /* MS_EIO: the stream failed, and errno says why (ENOSPC) */
    const char *cause = rc == MS_EIO && errno ? strerror(errno) : ms_strerror(rc);
    if (o.output) {
        if (rc) {
            cli_error("snapshot", "cannot write %s: %s; it was left unchanged", o.output, cause);
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
