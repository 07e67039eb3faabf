/*
 * json.c - the JSON sink: one object per snapshot (one per line when several), with the field
 * names of ARCHITECTURE.md and null for every field that was not read.
 *
 * Writing needs no library: numbers and escaped strings. Reading back lives in json_read.c.
 */
#include "sink.h"

#include <inttypes.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0 when it is not one. */
static size_t ms__utf8_len(const unsigned char *p)
{
    size_t n;
    uint32_t cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0u) != 0x80u) /* also stops at the terminating NUL */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

void ms__json_string(FILE *fp, const char *str)
{
    fputc('"', fp);
    const unsigned char *p = (const unsigned char *)str;
    while (*p) {
        const unsigned char *run = p; /* printable ASCII that needs no escape: one fwrite */
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            fwrite(run, 1, (size_t)(p - run), fp);
        if (!*p)
            break;
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
            if (*p < 0x20) {
                fprintf(fp, "\\u%04x", *p);
            } else {
                size_t n = ms__utf8_len(p);
                if (n == 0) { /* not UTF-8 (a label from a Latin-1 shell): U+FFFD */
                    fputs("\\ufffd", fp);
                } else {
                    fwrite(p, 1, n, fp);
                    p += n - 1;
                }
            }
        }
        p++;
    }
    fputc('"', fp);
}

/* Writes a string, or null when it is empty. */
static void ms__json_string_or_null(FILE *fp, const char *str)
{
    if (str[0])
        ms__json_string(fp, str);
    else
        fputs("null", fp);
}

/* Writes "name":value for each field, null where its bit in valid is clear, separated by commas
 * and preceded by one when lead is set. base is the structure the fields' offsets are into: a
 * snapshot or ms_gpu (unsigned values, snap_offset), or a delta (signed values, delta_offset).
 * Each field is put together in a buffer and written with one fwrite: `memsnap monitor` writes
 * a snapshot every millisecond, and fprintf's format parsing was most of the cost. */
static void ms__json_fields(FILE *fp, const struct ms__field *fields, size_t n, uint64_t valid,
                            const void *base, bool delta, bool lead)
{
    for (size_t k = 0; k < n; k++) {
        const struct ms__field *f = &fields[k];
        const char *at = (const char *)base + (delta ? f->delta_offset : f->snap_offset);
        char buf[128], num[24], *q = buf, *d = num + sizeof(num);
        size_t len = strlen(f->name);
        if (len > sizeof(buf) - 32) /* no field name is this long */
            len = sizeof(buf) - 32;
        if (k || lead)
            *q++ = ',';
        *q++ = '"';
        memcpy(q, f->name, len);
        q += len;
        *q++ = '"';
        *q++ = ':';
        if (!(valid >> f->bit & 1u)) {
            memcpy(q, "null", 4);
            q += 4;
        } else {
            uint64_t v;
            bool neg = false;
            if (delta) {
                int64_t x = *(const int64_t *)(const void *)at;
                neg = x < 0;
                v = neg ? -(uint64_t)x : (uint64_t)x;
            } else {
                v = *(const uint64_t *)(const void *)at;
            }
            do
                *--d = (char)('0' + v % 10);
            while ((v /= 10) != 0);
            if (neg)
                *q++ = '-';
            memcpy(q, d, (size_t)(num + sizeof(num) - d));
            q += num + sizeof(num) - d;
        }
        fwrite(buf, 1, (size_t)(q - buf), fp);
    }
}

/* Writes ,"gpus":[...] for a snapshot that captured MS_CAPTURE_GPU. */
static void ms__json_gpus(FILE *fp, const ms_snapshot *snap)
{
    fputs(",\"gpus\":[", fp);
    for (uint32_t i = 0; i < snap->gpu_count && i < MS_GPU_MAX; i++) {
        const ms_gpu *g = &snap->gpus[i];
        fprintf(fp, "%s{\"index\":%u,\"backend\":", i ? "," : "", (unsigned)g->index);
        ms__json_string(fp, g->backend);
        fputs(",\"name\":", fp);
        ms__json_string_or_null(fp, g->name);
        fputs(",\"uuid\":", fp);
        ms__json_string_or_null(fp, g->uuid);
        fputs(",\"pci_bus_id\":", fp);
        ms__json_string_or_null(fp, g->pci_bus_id);
        ms__json_fields(fp, ms__gpu_fields, MS_GF__COUNT, g->valid, g, false, true);
        fprintf(fp, ",\"is_per_process\":%s,\"processes\":[", g->is_per_process ? "true" : "false");
        for (uint32_t k = 0; k < g->process_count && k < MS_GPU_PROC_MAX; k++)
            fprintf(fp, "%s{\"pid\":%d,\"used_bytes\":%" PRIu64 "}", k ? "," : "",
                    (int)g->processes[k].pid, g->processes[k].used_bytes);
        fputs("]}", fp);
    }
    fputc(']', fp);
}

static void ms__json_snapshot(ms_writer *w, const ms_snapshot *snap)
{
    FILE *fp = w->fp;
    fprintf(fp,
            "{\"schema\":\"%s\",\"timestamp_ns\":%" PRIu64 ",\"monotonic_ns\":%" PRIu64
            ",\"label\":",
            MS_SNAPSHOT_SCHEMA, snap->timestamp_ns, snap->monotonic_ns);
    ms__json_string_or_null(fp, snap->label);
    fprintf(fp, ",\"pid\":%d", (int)snap->pid);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        fprintf(fp, ",\"%s\":{", sec->name);
        if (i == MS__SEC_CGROUP) {
            const ms_cgroup_mem *cg = &snap->cgroup;
            if (cg->version == MS_CGROUP_NONE) {
                fputs("\"version\":null,\"path\":null,\"unlimited\":null", fp);
            } else {
                fprintf(fp, "\"version\":%d,\"path\":", (int)cg->version);
                ms__json_string(fp, cg->path);
                fprintf(fp, ",\"unlimited\":%s", cg->unlimited ? "true" : "false");
            }
        }
        ms__json_fields(fp, sec->fields, sec->nfields, ms__section_valid(snap, sec, false), snap,
                        false, i == MS__SEC_CGROUP);
        fputc('}', fp);
    }
    if (snap->captured & MS_CAPTURE_GPU)
        ms__json_gpus(fp, snap);
    fputs("}\n", fp);
}

const struct ms__sink_ops ms__sink_json = {"json", NULL, ms__json_snapshot, NULL};

int ms_report_json(FILE *fp, const ms_snapshot *before, const ms_snapshot *after)
{
    ms_delta d;
    ms_delta_compute(before, after, &d);
    fprintf(fp, "{\"schema\":\"memsnap.delta/1\",\"elapsed_ns\":%" PRId64 ",\"before_label\":",
            d.elapsed_ns);
    ms__json_string_or_null(fp, before->label);
    fputs(",\"after_label\":", fp);
    ms__json_string_or_null(fp, after->label);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        fprintf(fp, ",\"%s\":{", sec->name);
        ms__json_fields(fp, sec->fields, sec->nfields, ms__section_valid(&d, sec, true), &d, true,
                        false);
        fputc('}', fp);
    }
    if (before->captured & after->captured & MS_CAPTURE_GPU) {
        fputs(",\"gpus\":[", fp);
        for (uint32_t i = 0; i < d.gpu_count; i++) {
            const ms_gpu_delta *g = &d.gpus[i];
            fprintf(fp, "%s{\"index\":%u,\"is_per_process\":%s", i ? "," : "", (unsigned)g->index,
                    g->is_per_process ? "true" : "false");
            ms__json_fields(fp, ms__gpu_fields, MS_GF__COUNT, g->valid, g, true, true);
            fputc('}', fp);
        }
        fputc(']', fp);
    }
    fputs("}\n", fp);
    return ferror(fp) ? MS_EIO : 0;
}
