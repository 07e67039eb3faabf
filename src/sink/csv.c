/*
 * csv.c - the CSV sink: a header row, then one row per snapshot (RFC 4180 quoting).
 *
 * Columns are "section.field" in the order of the field lists; a field that was not read is
 * an empty cell, never 0. When the first snapshot captured GPUs, each of its GPUs adds
 * "gpu<i>.<field>" columns (backend, name, uuid, pci_bus_id, the GPU fields, is_per_process).
 */
#include "sink.h"

#include <inttypes.h>
#include <string.h>

void ms__csv_string(FILE *fp, const char *str)
{
    if (!strpbrk(str, ",\"\r\n")) {
        fputs(str, fp);
        return;
    }
    fputc('"', fp);
    for (const char *p = str; *p; p++) {
        if (*p == '"')
            fputc('"', fp);
        fputc(*p, fp);
    }
    fputc('"', fp);
}

/* Writes ",value" for each field, an empty cell where its bit in valid is clear; base is the
 * structure the fields' snap_offset is into (a snapshot or an ms_gpu). */
static void ms__csv_fields(FILE *fp, const struct ms__field *fields, size_t n, uint64_t valid,
                           const void *base)
{
    for (size_t k = 0; k < n; k++) {
        fputc(',', fp);
        if (valid >> fields[k].bit & 1u)
            fprintf(fp, "%" PRIu64,
                    *(const uint64_t *)(const void *)((const char *)base + fields[k].snap_offset));
    }
}

/* GPU columns, after the fixed fields of each gpu<i>. */
static const char *const ms__csv_gpu_cols[] = {"backend", "name", "uuid", "pci_bus_id"};

/* Writes the gpu<i>.* header cells. */
static void ms__csv_gpu_header(ms_writer *w)
{
    for (int i = 0; i < w->csv_gpus; i++) {
        for (size_t k = 0; k < sizeof(ms__csv_gpu_cols) / sizeof(ms__csv_gpu_cols[0]); k++)
            fprintf(w->fp, ",gpu%d.%s", i, ms__csv_gpu_cols[k]);
        for (int f = 0; f < MS_GF__COUNT; f++)
            fprintf(w->fp, ",gpu%d.%s", i, ms__gpu_fields[f].name);
        fprintf(w->fp, ",gpu%d.is_per_process", i);
    }
}

/* Writes the gpu<i>.* cells of a row: empty for a GPU this snapshot lacks. */
static void ms__csv_gpu_row(ms_writer *w, const ms_snapshot *snap)
{
    FILE *fp = w->fp;
    for (int i = 0; i < w->csv_gpus; i++) {
        const ms_gpu *g = NULL;
        for (uint32_t k = 0; k < snap->gpu_count && k < MS_GPU_MAX && !g; k++)
            if (snap->gpus[k].index == (uint32_t)i)
                g = &snap->gpus[k];
        if (!g || !(snap->captured & MS_CAPTURE_GPU)) {
            for (size_t k = 0;
                 k < sizeof(ms__csv_gpu_cols) / sizeof(ms__csv_gpu_cols[0]) + MS_GF__COUNT + 1; k++)
                fputc(',', fp);
            continue;
        }
        const char *strs[] = {g->backend, g->name, g->uuid, g->pci_bus_id};
        for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
            fputc(',', fp);
            ms__csv_string(fp, strs[k]);
        }
        ms__csv_fields(fp, ms__gpu_fields, MS_GF__COUNT, g->valid, g);
        fprintf(fp, ",%s", g->is_per_process ? "true" : "false");
    }
}

static void ms__csv_begin(ms_writer *w, const ms_snapshot *first)
{
    w->csv_gpus = (first->captured & MS_CAPTURE_GPU) ? (int)first->gpu_count : 0;
    fputs("timestamp_ns,monotonic_ns,label,pid", w->fp);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        if (i == MS__SEC_CGROUP)
            fputs(",cgroup.version,cgroup.path,cgroup.unlimited", w->fp);
        for (size_t k = 0; k < sec->nfields; k++)
            fprintf(w->fp, ",%s.%s", sec->name, sec->fields[k].name);
    }
    ms__csv_gpu_header(w);
    fputc('\n', w->fp);
}

static void ms__csv_snapshot(ms_writer *w, const ms_snapshot *snap)
{
    FILE *fp = w->fp;
    fprintf(fp, "%" PRIu64 ",%" PRIu64 ",", snap->timestamp_ns, snap->monotonic_ns);
    ms__csv_string(fp, snap->label);
    fprintf(fp, ",%d", (int)snap->pid);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        if (i == MS__SEC_CGROUP) {
            if (snap->cgroup.version == MS_CGROUP_NONE) {
                fputs(",,,", fp);
            } else {
                fprintf(fp, ",%d,", (int)snap->cgroup.version);
                ms__csv_string(fp, snap->cgroup.path);
                fprintf(fp, ",%s", snap->cgroup.unlimited ? "true" : "false");
            }
        }
        ms__csv_fields(fp, sec->fields, sec->nfields, ms__section_valid(snap, sec, false), snap);
    }
    ms__csv_gpu_row(w, snap);
    fputc('\n', fp);
}

const struct ms__sink_ops ms__sink_csv = {"csv", ms__csv_begin, ms__csv_snapshot, NULL};
