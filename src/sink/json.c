/*
 * json.c - the JSON sink: one object per snapshot (one per line when several), with the field
 * names of ARCHITECTURE.md and null for every field that was not read.
 *
 * Writing needs no library: numbers and escaped strings. Reading back lives in json_read.c.
 */
#include "sink.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p, at most n bytes (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one: the rule of every writer and
 * reader of memsnap's text. */
static size_t ms__utf8_len(const unsigned char *p, size_t n)
{
    size_t k;
    uint32_t cp;
    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        k = 2;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        k = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        k = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0u) != 0x80u) /* also stops at a terminating NUL */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k;
}

char *ms_utf8_clean(const char *s, size_t len, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < len;) {
        size_t k = ms__utf8_len(p + i, len - i);
        bad += k == 0;
        i += k ? k : 1;
    }
    if (bad > (SIZE_MAX - len - 1) / 2)
        return NULL;
    char *out = malloc(len + 2 * bad + 1), *q = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t k = ms__utf8_len(p + i, len - i);
        if (k) {
            memcpy(q, p + i, k);
            q += k;
            i += k;
        } else {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
            i++;
        }
    }
    *q = '\0';
    if (out_len)
        *out_len = (size_t)(q - out);
    return out;
}

/* The characters JSON escapes with a backslash and a letter; other controls are \u00XX. */
static const char short_escape[][3] = {
    ['"'] = "\\\"", ['\\'] = "\\\\", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t",
};

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
        if (*p < sizeof(short_escape) / sizeof(short_escape[0]) && short_escape[*p][0]) {
            fputs(short_escape[*p], fp);
        } else if (*p < 0x20) {
            fprintf(fp, "\\u%04x", *p);
        } else {
            size_t n = ms__utf8_len(p, SIZE_MAX); /* the NUL ends a sequence */
            if (n == 0) { /* not UTF-8 (a label from a Latin-1 shell): U+FFFD */
                fputs("\\ufffd", fp);
            } else {
                fwrite(p, 1, n, fp);
                p += n - 1;
            }
        }
        p++;
    }
    fputc('"', fp);
}

int ms_json_string(FILE *fp, const char *str)
{
    if (!fp || !str)
        return ms__error(MS_EINVAL, "ms_json_string: a NULL %s", fp ? "string" : "stream");
    ms__json_string(fp, str);
    return ferror(fp) ? ms__error(MS_EIO, "ms_json_string: the stream failed") : 0;
}

/* A record being put together in memory and written with one fwrite when the buffer fills
 * or the record is done: `memsnap monitor` writes a snapshot every millisecond, and stdio's
 * cost per call (fprintf's format parsing, then fwrite's) was most of the writing. */
struct ms__jbuf {
    FILE *fp;
    char *q; /* the end of what is in buf */
    char buf[2048];
};

static void ms__jb_init(struct ms__jbuf *b, FILE *fp)
{
    b->fp = fp;
    b->q = b->buf;
}

static void ms__jb_flush(struct ms__jbuf *b)
{
    if (b->q > b->buf)
        fwrite(b->buf, 1, (size_t)(b->q - b->buf), b->fp);
    b->q = b->buf;
}

static void ms__jb_put(struct ms__jbuf *b, const char *s, size_t n)
{
    if ((size_t)(b->buf + sizeof(b->buf) - b->q) < n) {
        ms__jb_flush(b);
        if (n > sizeof(b->buf)) {
            fwrite(s, 1, n, b->fp);
            return;
        }
    }
    memcpy(b->q, s, n);
    b->q += n;
}

#define MS__JB_LIT(b, lit) ms__jb_put(b, "" lit, sizeof(lit) - 1) /* a literal only */

/* Makes room for n bytes (n <= sizeof(buf)) and returns where they go. */
static char *ms__jb_room(struct ms__jbuf *b, size_t n)
{
    if ((size_t)(b->buf + sizeof(b->buf) - b->q) < n)
        ms__jb_flush(b);
    return b->q;
}

char *ms__put_num(char *q, uint64_t v, bool neg)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    char num[24], *d = num + sizeof(num);
    while (v >= 100) { /* two digits a step: a sample's timestamps have 19 */
        const char *p = &pairs[(v % 100) * 2];
        v /= 100;
        *--d = p[1];
        *--d = p[0];
    }
    if (v >= 10) {
        *--d = pairs[v * 2 + 1];
        *--d = pairs[v * 2];
    } else {
        *--d = (char)('0' + v);
    }
    if (neg)
        *--d = '-';
    size_t len = (size_t)(num + sizeof(num) - d);
    memcpy(q, d, len);
    return q + len;
}

static void ms__jb_num(struct ms__jbuf *b, uint64_t v, bool neg)
{
    b->q = ms__put_num(ms__jb_room(b, 24), v, neg);
}

static void ms__jb_int(struct ms__jbuf *b, int64_t v)
{
    ms__jb_num(b, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0);
}

/* A string (escaped by ms__json_string), or null when it is empty. */
static void ms__jb_string_or_null(struct ms__jbuf *b, const char *str)
{
    if (!str[0]) {
        MS__JB_LIT(b, "null");
        return;
    }
    ms__jb_flush(b);
    ms__json_string(b->fp, str);
}

char *ms__json_field(char *q, const struct ms__field *f, uint64_t valid, const void *base,
                     bool delta, bool comma)
{
    const char *at = (const char *)base + (delta ? f->delta_offset : f->snap_offset);
    size_t len = strlen(f->name);
    if (len > 64) /* no field name is this long */
        len = 64;
    if (comma)
        *q++ = ',';
    *q++ = '"';
    memcpy(q, f->name, len);
    q += len;
    *q++ = '"';
    *q++ = ':';
    if (!(valid >> f->bit & 1u)) {
        memcpy(q, "null", 4);
        return q + 4;
    }
    if (delta) {
        int64_t x = *(const int64_t *)(const void *)at;
        return ms__put_num(q, x < 0 ? -(uint64_t)x : (uint64_t)x, x < 0);
    }
    return ms__put_num(q, *(const uint64_t *)(const void *)at, false);
}

/* Puts "name":value for each field (ms__json_field), separated by commas and preceded by one
 * when lead is set. */
static void ms__json_fields(struct ms__jbuf *b, const struct ms__field *fields, size_t n,
                            uint64_t valid, const void *base, bool delta, bool lead)
{
    for (size_t k = 0; k < n; k++)
        b->q = ms__json_field(ms__jb_room(b, MS__JSON_FIELD_MAX), &fields[k], valid, base, delta,
                              k || lead);
}

/* Puts ,"gpus":[...] for a snapshot that captured MS_CAPTURE_GPU. */
static void ms__json_gpus(struct ms__jbuf *b, const ms_snapshot *snap)
{
    MS__JB_LIT(b, ",\"gpus\":[");
    for (uint32_t i = 0; i < snap->gpu_count && i < MS_GPU_MAX; i++) {
        const ms_gpu *g = &snap->gpus[i];
        if (i)
            MS__JB_LIT(b, ",");
        MS__JB_LIT(b, "{\"index\":");
        ms__jb_num(b, g->index, false);
        MS__JB_LIT(b, ",\"backend\":");
        ms__jb_flush(b);
        ms__json_string(b->fp, g->backend);
        MS__JB_LIT(b, ",\"name\":");
        ms__jb_string_or_null(b, g->name);
        MS__JB_LIT(b, ",\"uuid\":");
        ms__jb_string_or_null(b, g->uuid);
        MS__JB_LIT(b, ",\"pci_bus_id\":");
        ms__jb_string_or_null(b, g->pci_bus_id);
        ms__json_fields(b, ms__gpu_fields, MS_GF__COUNT, g->valid, g, false, true);
        if (g->is_per_process)
            MS__JB_LIT(b, ",\"is_per_process\":true,\"processes\":[");
        else
            MS__JB_LIT(b, ",\"is_per_process\":false,\"processes\":[");
        for (uint32_t k = 0; k < g->process_count && k < MS_GPU_PROC_MAX; k++) {
            if (k)
                MS__JB_LIT(b, ",");
            MS__JB_LIT(b, "{\"pid\":");
            ms__jb_int(b, g->processes[k].pid);
            MS__JB_LIT(b, ",\"used_bytes\":");
            ms__jb_num(b, g->processes[k].used_bytes, false);
            MS__JB_LIT(b, "}");
        }
        MS__JB_LIT(b, "]}");
    }
    MS__JB_LIT(b, "]");
}

/* Puts ,"NAME":{ for a section. */
static void ms__json_section(struct ms__jbuf *b, const struct ms__section *sec)
{
    MS__JB_LIT(b, ",\"");
    ms__jb_put(b, sec->name, strlen(sec->name));
    MS__JB_LIT(b, "\":{");
}

static void ms__json_snapshot(ms_writer *w, const ms_snapshot *snap)
{
    struct ms__jbuf b;
    ms__jb_init(&b, w->fp);
    MS__JB_LIT(&b, "{\"schema\":\"" MS_SNAPSHOT_SCHEMA "\",\"timestamp_ns\":");
    ms__jb_num(&b, snap->timestamp_ns, false);
    MS__JB_LIT(&b, ",\"monotonic_ns\":");
    ms__jb_num(&b, snap->monotonic_ns, false);
    MS__JB_LIT(&b, ",\"label\":");
    ms__jb_string_or_null(&b, snap->label);
    MS__JB_LIT(&b, ",\"pid\":");
    ms__jb_int(&b, snap->pid);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        ms__json_section(&b, sec);
        if (i == MS__SEC_CGROUP) {
            const ms_cgroup_mem *cg = &snap->cgroup;
            if (cg->version == MS_CGROUP_NONE) {
                MS__JB_LIT(&b, "\"version\":null,\"path\":null,\"unlimited\":null");
            } else {
                MS__JB_LIT(&b, "\"version\":");
                ms__jb_int(&b, (int)cg->version);
                MS__JB_LIT(&b, ",\"path\":");
                ms__jb_flush(&b);
                ms__json_string(b.fp, cg->path);
                if (cg->unlimited)
                    MS__JB_LIT(&b, ",\"unlimited\":true");
                else
                    MS__JB_LIT(&b, ",\"unlimited\":false");
            }
        }
        ms__json_fields(&b, sec->fields, sec->nfields, ms__section_valid(snap, sec, false), snap,
                        false, i == MS__SEC_CGROUP);
        MS__JB_LIT(&b, "}");
    }
    if (snap->captured & MS_CAPTURE_GPU)
        ms__json_gpus(&b, snap);
    MS__JB_LIT(&b, "}\n");
    ms__jb_flush(&b);
}

const struct ms__sink_ops ms__sink_json = {"json", NULL, ms__json_snapshot, NULL};

int ms_report_json(FILE *fp, const ms_snapshot *before, const ms_snapshot *after)
{
    int rc = ms__report_args("ms_report_json", fp, before, after);
    if (rc)
        return rc;
    ms_delta d;
    ms_delta_compute(before, after, &d);
    struct ms__jbuf b;
    ms__jb_init(&b, fp);
    MS__JB_LIT(&b, "{\"schema\":\"memsnap.delta/1\",\"elapsed_ns\":");
    ms__jb_int(&b, d.elapsed_ns);
    MS__JB_LIT(&b, ",\"before_label\":");
    ms__jb_string_or_null(&b, before->label);
    MS__JB_LIT(&b, ",\"after_label\":");
    ms__jb_string_or_null(&b, after->label);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        ms__json_section(&b, sec);
        ms__json_fields(&b, sec->fields, sec->nfields, ms__section_valid(&d, sec, true), &d, true,
                        false);
        MS__JB_LIT(&b, "}");
    }
    if (before->captured & after->captured & MS_CAPTURE_GPU) {
        MS__JB_LIT(&b, ",\"gpus\":[");
        for (uint32_t i = 0; i < d.gpu_count; i++) {
            const ms_gpu_delta *g = &d.gpus[i];
            if (i)
                MS__JB_LIT(&b, ",");
            MS__JB_LIT(&b, "{\"index\":");
            ms__jb_num(&b, g->index, false);
            if (g->is_per_process)
                MS__JB_LIT(&b, ",\"is_per_process\":true");
            else
                MS__JB_LIT(&b, ",\"is_per_process\":false");
            ms__json_fields(&b, ms__gpu_fields, MS_GF__COUNT, g->valid, g, true, true);
            MS__JB_LIT(&b, "}");
        }
        MS__JB_LIT(&b, "]");
    }
    MS__JB_LIT(&b, "}\n");
    ms__jb_flush(&b);
    return ferror(fp) ? ms__error(MS_EIO, "ms_report_json: write failed") : 0;
}
