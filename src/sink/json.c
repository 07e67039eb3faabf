/*
 * json.c - the JSON sink: one object per snapshot (one per line when several), with the field
 * names of ARCHITECTURE.md and null for every field that was not read.
 *
 * Writing needs no library: numbers and escaped strings. Reading back lives in json_read.c.
 */
#include "sink.h"

#include <inttypes.h>

void ms__json_string(FILE *fp, const char *str)
{
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", fp);
            break;
        case '\\':
            fputs("\\\\", fp);
            break;
        case '\n':
            fputs("\\n", fp);
            break;
        case '\r':
            fputs("\\r", fp);
            break;
        case '\t':
            fputs("\\t", fp);
            break;
        default:
            if (*p < 0x20)
                fprintf(fp, "\\u%04x", *p);
            else
                fputc(*p, fp);
        }
    }
    fputc('"', fp);
}

static void ms__json_snapshot(ms_writer *w, const ms_snapshot *snap)
{
    FILE *fp = w->fp;
    fprintf(fp, "{\"schema\":\"%s\",\"timestamp_ns\":%" PRIu64 ",\"monotonic_ns\":%" PRIu64
                ",\"label\":",
            MS_SNAPSHOT_SCHEMA, snap->timestamp_ns, snap->monotonic_ns);
    if (snap->label[0])
        ms__json_string(fp, snap->label);
    else
        fputs("null", fp);
    fprintf(fp, ",\"pid\":%d", (int)snap->pid);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        fprintf(fp, ",\"%s\":{", sec->name);
        const char *sep = "";
        if (i == MS__SEC_CGROUP) {
            const ms_cgroup_mem *cg = &snap->cgroup;
            if (cg->version == MS_CGROUP_NONE) {
                fputs("\"version\":null,\"path\":null,\"unlimited\":null", fp);
            } else {
                fprintf(fp, "\"version\":%d,\"path\":", (int)cg->version);
                ms__json_string(fp, cg->path);
                fprintf(fp, ",\"unlimited\":%s", cg->unlimited ? "true" : "false");
            }
            sep = ",";
        }
        for (size_t k = 0; k < sec->nfields; k++) {
            const struct ms__field *f = &sec->fields[k];
            if (ms__snap_valid(snap, sec, f))
                fprintf(fp, "%s\"%s\":%" PRIu64, sep, f->name, ms__snap_value(snap, f));
            else
                fprintf(fp, "%s\"%s\":null", sep, f->name);
            sep = ",";
        }
        fputc('}', fp);
    }
    fputs("}\n", fp);
}

const struct ms__sink_ops ms__sink_json = {"json", NULL, ms__json_snapshot, NULL};

int ms_report_json(FILE *fp, const ms_snapshot *before, const ms_snapshot *after)
{
    ms_delta d;
    ms_delta_compute(before, after, &d);
    fprintf(fp, "{\"schema\":\"memsnap.delta/1\",\"elapsed_ns\":%" PRId64 ",\"before_label\":",
            d.elapsed_ns);
    before->label[0] ? ms__json_string(fp, before->label) : (void)fputs("null", fp);
    fputs(",\"after_label\":", fp);
    after->label[0] ? ms__json_string(fp, after->label) : (void)fputs("null", fp);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        fprintf(fp, ",\"%s\":{", sec->name);
        for (size_t k = 0; k < sec->nfields; k++) {
            const struct ms__field *f = &sec->fields[k];
            if (ms__delta_valid(&d, sec, f))
                fprintf(fp, "%s\"%s\":%" PRId64, k ? "," : "", f->name, ms__delta_value(&d, f));
            else
                fprintf(fp, "%s\"%s\":null", k ? "," : "", f->name);
        }
        fputc('}', fp);
    }
    fputs("}\n", fp);
    return ferror(fp) ? MS_EIO : 0;
}
