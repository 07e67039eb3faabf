/*
 * cmd_gpu.c - `memsnap gpu ps`: the processes on every GPU and the memory each holds, like
 * nvidia-smi's process table, for NVIDIA (NVML or nvidia-smi), AMD and Intel (DRM) alike.
 */
#include "cli.h"
#include "opts.h"

#include <inttypes.h>
#include <string.h>

struct gpu_opts {
    ms_format fmt;
    const char *procfs, *sysfs;
};

/* --help, around the option lines. */
static const char gpu_head[] =
    "usage: memsnap gpu ps [--format text|json] [--procfs DIR] [--sysfs DIR]\n\n"
    "List every GPU with its memory and the processes on it, largest first.\n"
    "[per-process] marks GPUs whose process figures are real per-process figures;\n"
    "[device-wide] GPUs only give device totals (or incomplete process figures).\n\n";
static const char gpu_tail[] =
    "\nEnvironment: MEMSNAP_GPU_BACKENDS=nvml,nvidia-smi,drm limits the backends.\n";

static const struct cli_opt gpu_table[] = {
    OPT_FORMAT(struct gpu_opts, fmt, CLI_FMT_TEXT | CLI_FMT_JSON, "text (default) or json"),
    OPT_SESSION_END(struct gpu_opts),
};

static const struct cli_options gpu_options = {
    .cmd = "gpu", .opts = gpu_table, .head = gpu_head, .tail = gpu_tail};

/* The command name of pid from <procfs>/PID/comm, "?" when unreadable. */
static void gpu_comm(ms_session *s, int32_t pid, char *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%d/comm", ms_session_procfs(s), (int)pid);
    snprintf(buf, len, "?");
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    if (fgets(buf, (int)len, fp))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(fp);
}

/* Writes one GPU's header line and process table. */
static void gpu_text(ms_session *s, const ms_gpu *g)
{
    char used[32] = "?", total[32] = "?", mem[32];
    if (ms_valid(g, MS_GF_used_bytes))
        ms_format_bytes(used, sizeof(used), g->used_bytes);
    if (ms_valid(g, MS_GF_total_bytes))
        ms_format_bytes(total, sizeof(total), g->total_bytes);
    printf("gpu %u  %s  (%s)  %s  %s / %s%s%s\n", (unsigned)g->index, g->name[0] ? g->name : "?",
           g->backend, g->is_per_process ? "[per-process]" : "[device-wide]", used, total,
           g->pci_bus_id[0] ? "  " : "", g->pci_bus_id);
    if (g->process_count == 0) {
        printf("  no processes found\n");
        return;
    }
    printf("  %8s  %12s  %s\n", "PID", "GPU MEMORY", "PROCESS");
    for (uint32_t k = 0; k < g->process_count && k < MS_GPU_PROC_MAX; k++) {
        char comm[64];
        gpu_comm(s, g->processes[k].pid, comm, sizeof(comm));
        ms_format_bytes(mem, sizeof(mem), g->processes[k].used_bytes);
        printf("  %8d  %12s  %s\n", (int)g->processes[k].pid, mem, comm);
    }
    if (g->processes_truncated)
        printf("  (more than %d processes: the largest are listed)\n", MS_GPU_PROC_MAX);
}

/* Writes the JSON document of every GPU and its processes. */
static void gpu_json(ms_session *s, const ms_snapshot *snap)
{
    printf("{\"schema\":\"memsnap.gpu-ps/1\",\"gpus\":[");
    for (uint32_t i = 0; i < snap->gpu_count; i++) {
        const ms_gpu *g = &snap->gpus[i];
        printf("%s{\"index\":%u,\"backend\":\"%s\",\"name\":", i ? "," : "", (unsigned)g->index,
               g->backend);
        ms_json_string(stdout, g->name);
        printf(",\"pci_bus_id\":");
        ms_json_string(stdout, g->pci_bus_id);
        if (ms_valid(g, MS_GF_total_bytes))
            printf(",\"total_bytes\":%" PRIu64, g->total_bytes);
        else
            printf(",\"total_bytes\":null");
        if (ms_valid(g, MS_GF_used_bytes))
            printf(",\"used_bytes\":%" PRIu64, g->used_bytes);
        else
            printf(",\"used_bytes\":null");
        printf(",\"is_per_process\":%s,\"processes_truncated\":%s,\"processes\":[",
               g->is_per_process ? "true" : "false", g->processes_truncated ? "true" : "false");
        for (uint32_t k = 0; k < g->process_count && k < MS_GPU_PROC_MAX; k++) {
            char comm[64];
            gpu_comm(s, g->processes[k].pid, comm, sizeof(comm));
            printf("%s{\"pid\":%d,\"used_bytes\":%" PRIu64 ",\"name\":", k ? "," : "",
                   (int)g->processes[k].pid, g->processes[k].used_bytes);
            ms_json_string(stdout, comm);
            putchar('}');
        }
        printf("]}");
    }
    printf("]}\n");
}

int cmd_gpu(int argc, char **argv)
{
    struct gpu_opts co = {.fmt = MS_FORMAT_TEXT};
    int rc = cli_parse(&gpu_options, argc, argv, &co);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (optind >= argc || strcmp(argv[optind], "ps") != 0 || optind + 1 != argc) {
        cli_error("gpu", "expected 'ps' (see 'memsnap gpu --help')");
        return CLI_USAGE;
    }
    ms_session *s;
    if (cli_open_session("gpu", co.procfs, co.sysfs, &s) != 0)
        return CLI_FAIL;
    char why[1024];
    if (!cli_gpu_available(s, why, sizeof(why))) {
        cli_error("gpu", "no GPU found (%s)", why);
        ms_session_close(s);
        return CLI_FAIL;
    }
    static ms_snapshot snap;
    ms_snapshot_init(&snap);
    if (ms_capture(s, 0, MS_CAPTURE_GPU, &snap) != 0) {
        cli_error("gpu", "%s", ms_session_error(s));
        ms_session_close(s);
        return CLI_FAIL;
    }
    if (co.fmt == MS_FORMAT_JSON)
        gpu_json(s, &snap);
    else
        for (uint32_t i = 0; i < snap.gpu_count; i++)
            gpu_text(s, &snap.gpus[i]);
    ms_session_close(s);
    if (fflush(stdout) != 0) {
        cli_error("gpu", "writing to standard output failed");
        return CLI_FAIL;
    }
    return CLI_OK;
}
