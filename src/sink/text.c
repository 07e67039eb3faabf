/*
 * text.c - the human sink: one aligned block per snapshot, byte counts in binary units.
 *
 * Only fields that were read are printed; a cgroup without a limit says "unlimited".
 */
#include "sink.h"

#include <inttypes.h>

/* One block per GPU: its fields, then its processes. */
static void ms__text_gpus(FILE *fp, const ms_snapshot *snap)
{
    if (snap->gpu_count == 0)
        fprintf(fp, "gpus: none found\n");
    for (uint32_t i = 0; i < snap->gpu_count && i < MS_GPU_MAX; i++) {
        const ms_gpu *g = &snap->gpus[i];
        fprintf(fp, "gpu %u %s (%s) %s\n", (unsigned)g->index, g->name[0] ? g->name : "?",
                g->backend, ms__gpu_scope(g->is_per_process));
        if (g->pci_bus_id[0])
            fprintf(fp, "  %-14s %14s\n", "PCI bus id", g->pci_bus_id);
        for (int f = 0; f < MS_GF__COUNT; f++) {
            char val[32];
            if (!ms_valid(g, f))
                continue;
            ms_format_bytes(val, sizeof(val), ms__gpu_value(g, &ms__gpu_fields[f]));
            fprintf(fp, "  %-14s %14s\n", ms__gpu_fields[f].label, val);
        }
        if (g->process_count)
            fprintf(fp, "  %-14s %14s\n", "pid", "used");
        for (uint32_t k = 0; k < g->process_count && k < MS_GPU_PROC_MAX; k++) {
            char val[32];
            ms_format_bytes(val, sizeof(val), g->processes[k].used_bytes);
            fprintf(fp, "  %-14d %14s\n", (int)g->processes[k].pid, val);
        }
        if (g->processes_truncated)
            fprintf(fp, "  (more than %d processes: the largest are listed)\n", MS_GPU_PROC_MAX);
    }
}

static void ms__text_snapshot(ms_writer *w, const ms_snapshot *snap)
{
    FILE *fp = w->fp;
    char when[48];
    ms__iso_time(when, sizeof(when), snap->timestamp_ns);
    if (w->count)
        fputc('\n', fp);
    fprintf(fp, "snapshot of pid %d at %s", (int)snap->pid, when);
    if (snap->label[0])
        fprintf(fp, " [%s]", snap->label);
    fputc('\n', fp);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        if (!(snap->captured & sec->capture))
            continue;
        if (i == MS__SEC_CGROUP) {
            if (snap->cgroup.version == MS_CGROUP_NONE) {
                fprintf(fp, "cgroup: none found\n");
                continue;
            }
            fprintf(fp, "cgroup v%d %s\n", (int)snap->cgroup.version, snap->cgroup.path);
        } else {
            fprintf(fp, "%s\n", sec->name);
        }
        for (size_t k = 0; k < sec->nfields; k++) {
            const struct ms__field *f = &sec->fields[k];
            char val[32];
            if (ms__snap_valid(snap, sec, f)) {
                uint64_t v = ms__snap_value(snap, f);
                if (f->unit == MS_UNIT_BYTES)
                    ms_format_bytes(val, sizeof(val), v);
                else
                    snprintf(val, sizeof(val), "%" PRIu64, v);
            } else if (i == MS__SEC_CGROUP && f->bit == MS_CF_max_bytes && snap->cgroup.unlimited) {
                snprintf(val, sizeof(val), "unlimited");
            } else {
                continue;
            }
            fprintf(fp, "  %-14s %14s\n", f->label, val);
        }
    }
    if (snap->captured & MS_CAPTURE_GPU)
        ms__text_gpus(fp, snap);
}

const struct ms__sink_ops ms__sink_text = {"text", NULL, ms__text_snapshot, NULL};
