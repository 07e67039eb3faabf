/*
 * csv.c - the CSV sink: a header row, then one row per snapshot (RFC 4180 quoting).
 *
 * Columns are "section.field" in the order of the field lists; a field that was not read is
 * an empty cell, never 0.
 */
#include "sink.h"

#include <inttypes.h>
#include <string.h>

static void ms__csv_string(FILE *fp, const char *str)
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

static void ms__csv_begin(ms_writer *w)
{
    fputs("timestamp_ns,monotonic_ns,label,pid", w->fp);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        if (i == MS__SEC_CGROUP)
            fputs(",cgroup.version,cgroup.path,cgroup.unlimited", w->fp);
        for (size_t k = 0; k < sec->nfields; k++)
            fprintf(w->fp, ",%s.%s", sec->name, sec->fields[k].name);
    }
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
        for (size_t k = 0; k < sec->nfields; k++) {
            const struct ms__field *f = &sec->fields[k];
            fputc(',', fp);
            if (ms__snap_valid(snap, sec, f))
                fprintf(fp, "%" PRIu64, ms__snap_value(snap, f));
        }
    }
    fputc('\n', fp);
}

const struct ms__sink_ops ms__sink_csv = {"csv", ms__csv_begin, ms__csv_snapshot, NULL};
