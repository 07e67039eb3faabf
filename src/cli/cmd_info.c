/*
 * cmd_info.c - `memsnap info`: the host, its memory and cgroup, and each probe's reach.
 */
#include "cli.h"
#include "opts.h"

#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

struct info_opts {
    pid_t pid;
    const char *procfs, *sysfs;
};

/* --help, around the option lines. */
static const char info_head[] =
    "usage: memsnap info [--pid PID] [--procfs DIR] [--sysfs DIR]\n\n"
    "Describe the kernel, page size, system memory, the memory cgroup of PID (default:\n"
    "memsnap itself) and, for each probe, whether it can run here and what it\n"
    "measures, or why not.\n\n";

static const struct cli_opt info_table[] = {
    OPT_PID(struct info_opts, pid, "process whose probes and cgroup are described"),
    OPT_SESSION_END(struct info_opts),
};

static const struct cli_options info_options = {
    .cmd = "info", .opts = info_table, .head = info_head};

/* Prints each GPU backend (capabilities, or why it is unavailable) and each GPU found. */
/* Prints the size v as ms_format_bytes words it, between before and after. */
static void print_bytes(const char *before, uint64_t v, const char *after)
{
    char buf[32];
    ms_format_bytes(buf, sizeof(buf), v);
    printf("%s%s%s", before, buf, after);
}

static void info_gpus(ms_session *s)
{
    ms_gpu_backend_info b[8];
    int n = ms_gpu_backends(s, b, sizeof(b) / sizeof(b[0]));
    printf("gpu backends\n");
    for (int i = 0; i < n && i < 8; i++) {
        printf("  %-13s %-4s %s\n", b[i].name, b[i].available ? "yes" : "no", b[i].detail);
        if (!b[i].available)
            continue;
        printf("  %-13s      device total %s, device free %s, per-process %s\n", "",
               b[i].supports_device_total ? "yes" : "no", b[i].supports_device_free ? "yes" : "no",
               b[i].per_process ? "yes" : "no");
        if (b[i].driver_version[0] || b[i].cuda_version[0])
            printf("  %-13s      driver %s%s%s\n", "",
                   b[i].driver_version[0] ? b[i].driver_version : "?",
                   b[i].cuda_version[0] ? ", CUDA " : "", b[i].cuda_version);
    }
    static ms_snapshot snap;
    ms_snapshot_init(&snap);
    if (ms_capture(s, 0, MS_CAPTURE_GPU, &snap) != 0 || snap.gpu_count == 0) {
        printf("gpus         none found\n");
        return;
    }
    printf("gpus\n");
    for (uint32_t i = 0; i < snap.gpu_count; i++) {
        const ms_gpu *g = &snap.gpus[i];
        char total[32] = "total unknown";
        if (ms_valid(g, MS_GF_total_bytes))
            ms_format_bytes(total, sizeof(total), g->total_bytes);
        printf("  %-3u %s (%s) %s %s%s%s\n", (unsigned)g->index, g->name[0] ? g->name : "?",
               g->backend, total, g->is_per_process ? "[per-process]" : "[device-wide]",
               g->pci_bus_id[0] ? " " : "", g->pci_bus_id);
    }
}

int cmd_info(int argc, char **argv)
{
    struct info_opts co = {0};
    int rc = cli_parse(&info_options, argc, argv, &co);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (optind < argc) {
        cli_error("info", "unexpected argument '%s'", argv[optind]);
        return CLI_USAGE;
    }
    ms_session *s;
    if (cli_open_session("info", co.procfs, co.sysfs, &s) != 0)
        return CLI_FAIL;

    struct utsname u;
    printf("memsnap      %s\n", ms_version());
    if (uname(&u) == 0)
        printf("kernel       %s %s %s\n", u.sysname, u.release, u.machine);
    printf("page size    %ld B\n", sysconf(_SC_PAGESIZE));
    printf("procfs       %s\nsysfs        %s\n", ms_session_procfs(s), ms_session_sysfs(s));

    ms_snapshot snap;
    ms_snapshot_init(&snap);
    rc = ms_capture(s, co.pid, MS_CAPTURE_SYSTEM | MS_CAPTURE_CGROUP, &snap);
    if (rc) {
        cli_error("info", "%s", ms_session_error(s));
        ms_session_close(s);
        return CLI_FAIL;
    }
    const ms_system_mem *m = &snap.system;
    if (ms_valid(m, MS_SF_total_bytes)) {
        print_bytes("memory       ", m->total_bytes, " total");
        if (ms_valid(m, MS_SF_available_bytes))
            print_bytes(", ", m->available_bytes, " available");
        if (ms_valid(m, MS_SF_swap_total_bytes))
            print_bytes(", swap ", m->swap_total_bytes, "");
        putchar('\n');
    }
    const ms_cgroup_mem *cg = &snap.cgroup;
    if (cg->version == MS_CGROUP_NONE) {
        printf("cgroup       none found\n");
    } else {
        printf("cgroup       v%d %s", (int)cg->version, cg->path);
        if (ms_valid(cg, MS_CF_current_bytes))
            print_bytes(", usage ", cg->current_bytes, "");
        if (ms_valid(cg, MS_CF_max_bytes))
            print_bytes(", limit ", cg->max_bytes, "");
        else if (cg->unlimited)
            printf(", no limit");
        putchar('\n');
    }

    info_gpus(s);

    ms_probe_info probes[16];
    int n = ms_session_probes(s, co.pid, probes, sizeof(probes) / sizeof(probes[0]));
    printf("probes\n");
    for (int i = 0; i < n && i < 16; i++)
        printf("  %-13s %-4s %s\n", probes[i].name, probes[i].available ? "yes" : "no",
               probes[i].detail);
    ms_session_close(s);
    return CLI_OK;
}
