/*
 * format.c - human units and the before/after reports.
 *
 * ms_format_bytes() prints binary units ("1.50 GiB"); ms_report_line() is the one-line delta
 * a script logs after a step, ms_report_table() the before/after table of every metric; each
 * writes to a stream or (the _buf forms) into a caller's buffer with snprintf's rules.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* Where a report goes: a stream, or a caller's buffer with snprintf's rules (the text is cut to
 * fit, always NUL-terminated when len > 0, and pos counts every byte the whole text needs). One
 * writer serves both, so the string forms the bindings print cannot drift from the CLI's. */
struct ms__out {
    FILE *fp;   /* the stream, or NULL for the buffer */
    char *buf;  /* the buffer (may be NULL when len is 0) */
    size_t len; /* its size in bytes */
    size_t pos; /* bytes written so far (for the buffer: needed, even past len) */
};

static void ms__outf(struct ms__out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ms__outf(struct ms__out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n;
    if (o->fp)
        n = vfprintf(o->fp, fmt, ap);
    else if (o->pos < o->len)
        n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
    else
        n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->pos += (size_t)n;
}

int ms_format_bytes(char *buf, size_t len, uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024)
        return snprintf(buf, len, "%" PRIu64 " B", bytes);
    double v = (double)bytes;
    int u = 0;
    /* 1048575 B is 1023.999 KiB: move up when two decimals would round to 1024.00 */
    while (v >= 1024.0 - 0.005 && u < 6) {
        v /= 1024.0;
        u++;
    }
    return snprintf(buf, len, "%.2f %s", v, units[u]);
}

int ms_format_bytes_signed(char *buf, size_t len, int64_t bytes)
{
    if (bytes == 0)
        return snprintf(buf, len, "0 B");
    uint64_t mag = bytes < 0 ? (uint64_t)0 - (uint64_t)bytes : (uint64_t)bytes;
    char tmp[32];
    ms_format_bytes(tmp, sizeof(tmp), mag);
    return snprintf(buf, len, "%c%s", bytes < 0 ? '-' : '+', tmp);
}

const char *ms__fmt_seconds(char *buf, size_t len, uint64_t ns)
{
    snprintf(buf, len, "%llu.%06llu s", (unsigned long long)(ns / 1000000000u),
             (unsigned long long)(ns % 1000000000u / 1000u));
    return buf;
}

const char *ms__fmt_bytes_exact(char *buf, size_t len, uint64_t bytes)
{
    char h[32];
    ms_format_bytes(h, sizeof(h), bytes);
    if (bytes < 1024)
        snprintf(buf, len, "%s", h);
    else
        snprintf(buf, len, "%s (%llu bytes)", h, (unsigned long long)bytes);
    return buf;
}

/* Formats a value of the given unit. */
static void ms__fmt_value(char *buf, size_t len, ms_unit unit, uint64_t v)
{
    if (unit == MS_UNIT_BYTES)
        ms_format_bytes(buf, len, v);
    else
        snprintf(buf, len, "%" PRIu64, v);
}

static void ms__fmt_delta(char *buf, size_t len, ms_unit unit, int64_t v)
{
    if (unit == MS_UNIT_BYTES)
        ms_format_bytes_signed(buf, len, v);
    else
        snprintf(buf, len, v ? "%+" PRId64 : "0", v);
}

static const char *ms__report_label(const ms_snapshot *before, const ms_snapshot *after)
{
    return after->label[0] ? after->label : before->label;
}

/* The metrics of the one-line report, in order. */
static const struct {
    int section;
    const char *name;
    const char *label;
} ms__headline[] = {
    {MS__SEC_PROCESS, "rss_bytes", "RSS"},
    {MS__SEC_PROCESS, "pss_bytes", "PSS"},
    {MS__SEC_PROCESS, "swap_bytes", "swap"},
    {MS__SEC_CGROUP, "current_bytes", "cgroup"},
    {MS__SEC_SYSTEM, "available_bytes", "sys avail"},
};

static const struct ms__field *ms__find_field(const struct ms__section *sec, const char *name)
{
    for (size_t i = 0; i < sec->nfields; i++)
        if (strcmp(sec->fields[i].name, name) == 0)
            return &sec->fields[i];
    return NULL;
}

/* The GPU of snap with the given index, or NULL. */
static const ms_gpu *ms__gpu_find(const ms_snapshot *snap, uint32_t index)
{
    for (uint32_t i = 0; i < snap->gpu_count && i < MS_GPU_MAX; i++)
        if (snap->gpus[i].index == index)
            return &snap->gpus[i];
    return NULL;
}

/* Appends "LABEL before -> after (delta)" to the one-line report, " | " before all but the
 * first item. */
static void ms__line_item(struct ms__out *o, int *printed, const char *label, ms_unit unit,
                          uint64_t before, uint64_t after, int64_t delta)
{
    char a[32], b[32], c[32];
    ms__fmt_value(a, sizeof(a), unit, before);
    ms__fmt_value(b, sizeof(b), unit, after);
    ms__fmt_delta(c, sizeof(c), unit, delta);
    ms__outf(o, "%s%s %s -> %s (%s)", *printed ? " | " : "", label, a, b, c);
    (*printed)++;
}

/* Writes a table row; a NULL before or after prints as its `absent` text, a NULL delta as
 * "-". */
static void ms__table_row(struct ms__out *o, const char *label, ms_unit unit,
                          const uint64_t *before, const char *absent_before, const uint64_t *after,
                          const char *absent_after, const int64_t *delta)
{
    char a[32], b[32], c[32] = "-";
    if (before)
        ms__fmt_value(a, sizeof(a), unit, *before);
    else
        snprintf(a, sizeof(a), "%s", absent_before);
    if (after)
        ms__fmt_value(b, sizeof(b), unit, *after);
    else
        snprintf(b, sizeof(b), "%s", absent_after);
    if (delta)
        ms__fmt_delta(c, sizeof(c), unit, *delta);
    ms__outf(o, "  %-16s %14s %14s %14s\n", label, a, b, c);
}

/* The before/after rows of the GPUs of after (matched in before by index and backend). */
static void ms__report_gpus(struct ms__out *o, const ms_snapshot *before, const ms_snapshot *after,
                            const ms_delta *d)
{
    if (!((before->captured | after->captured) & MS_CAPTURE_GPU))
        return;
    for (uint32_t i = 0; i < after->gpu_count && i < MS_GPU_MAX; i++) {
        const ms_gpu *ga = &after->gpus[i], *gb = NULL;
        const ms_gpu_delta *gd = NULL;
        for (uint32_t k = 0; k < d->gpu_count; k++)
            if (d->gpus[k].index == ga->index) {
                gd = &d->gpus[k];
                gb = ms__gpu_find(before, ga->index);
            }
        ms__outf(o, "gpu %u %s (%s) %s\n", (unsigned)ga->index, ga->name[0] ? ga->name : "?",
                 ga->backend, ms__gpu_scope(ga->is_per_process && (!gb || gb->is_per_process)));
        for (int f = 0; f < MS_GF__COUNT; f++) {
            const struct ms__field *fd = &ms__gpu_fields[f];
            bool vb = gb && ms_valid(gb, f), va = ms_valid(ga, f);
            if (!vb && !va)
                continue;
            uint64_t vbefore = vb ? ms__gpu_value(gb, fd) : 0,
                     vafter = va ? ms__gpu_value(ga, fd) : 0;
            int64_t vdelta = gd && ms_valid(gd, f) ? ms__gpu_delta_value(gd, fd) : 0;
            ms__table_row(o, fd->label, fd->unit, vb ? &vbefore : NULL, "-", va ? &vafter : NULL,
                          "-", gd && ms_valid(gd, f) ? &vdelta : NULL);
        }
    }
}

/* The one-line report into o. */
static void ms__report_line(struct ms__out *o, const ms_snapshot *before, const ms_snapshot *after)
{
    ms_delta d;
    ms_delta_compute(before, after, &d);
    const char *label = ms__report_label(before, after);
    if (label[0])
        ms__outf(o, "[%s] ", label);
    int printed = 0;
    for (size_t i = 0; i < sizeof(ms__headline) / sizeof(ms__headline[0]); i++) {
        const struct ms__section *sec = &ms__sections[ms__headline[i].section];
        const struct ms__field *f = ms__find_field(sec, ms__headline[i].name);
        if (!f || !ms__delta_valid(&d, sec, f))
            continue;
        ms__line_item(o, &printed, ms__headline[i].label, f->unit, ms__snap_value(before, f),
                      ms__snap_value(after, f), ms__delta_value(&d, f));
    }
    for (uint32_t i = 0; i < d.gpu_count; i++) {
        const ms_gpu_delta *g = &d.gpus[i];
        int f = g->is_per_process && ms_valid(g, MS_GF_process_used_bytes)
                    ? MS_GF_process_used_bytes
                    : MS_GF_used_bytes;
        if (!ms_valid(g, f))
            continue;
        const ms_gpu *ga = ms__gpu_find(after, g->index), *gb = ms__gpu_find(before, g->index);
        if (!ga || !gb)
            continue;
        const struct ms__field *fd = &ms__gpu_fields[f];
        char what[64];
        snprintf(what, sizeof(what), "VRAM gpu%u %s", (unsigned)g->index,
                 ms__gpu_scope(f == MS_GF_process_used_bytes));
        ms__line_item(o, &printed, what, fd->unit, ms__gpu_value(gb, fd), ms__gpu_value(ga, fd),
                      ms__gpu_delta_value(g, fd));
    }
    if (!printed)
        ms__outf(o, "no metric common to both snapshots");
    ms__outf(o, " in %.3f s\n", (double)d.elapsed_ns / 1e9);
}

/* The before/after table into o. */
static void ms__report_table(struct ms__out *o, const ms_snapshot *before, const ms_snapshot *after)
{
    ms_delta d;
    ms_delta_compute(before, after, &d);
    const char *label = ms__report_label(before, after);
    ms__outf(o, "memory report%s%s (%.3f s)\n", label[0] ? ": " : "", label,
             (double)d.elapsed_ns / 1e9);
    ms__outf(o, "  %-16s %14s %14s %14s\n", "", "before", "after", "delta");
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        bool header = false;
        for (size_t k = 0; k < sec->nfields; k++) {
            const struct ms__field *f = &sec->fields[k];
            bool vb = ms__snap_valid(before, sec, f), va = ms__snap_valid(after, sec, f);
            /* a cgroup limit that is not valid because there is none says so */
            bool limit = i == MS__SEC_CGROUP && f->bit == MS_CF_max_bytes;
            bool ub = limit && !vb && before->cgroup.unlimited;
            bool ua = limit && !va && after->cgroup.unlimited;
            if (!vb && !va && !ub && !ua)
                continue;
            if (!header) {
                ms__outf(o, "%s\n", sec->name);
                header = true;
            }
            uint64_t vbefore = ms__snap_value(before, f), vafter = ms__snap_value(after, f);
            int64_t vdelta = ms__delta_value(&d, f);
            ms__table_row(o, f->label, f->unit, vb ? &vbefore : NULL, ub ? "unlimited" : "-",
                          va ? &vafter : NULL, ua ? "unlimited" : "-", vb && va ? &vdelta : NULL);
        }
    }
    ms__report_gpus(o, before, after, &d);
}

int ms__report_args(const char *name, const void *dst, const ms_snapshot *before,
                    const ms_snapshot *after)
{
    if (!dst || !before || !after)
        return ms__error(MS_EINVAL, "%s: %s is NULL", name,
                         !dst      ? "the output"
                         : !before ? "before"
                                   : "after");
    return 0;
}

/* The FILE forms, as the buffer forms below. */
static int ms__report_fp(const char *name, FILE *fp, const ms_snapshot *before,
                         const ms_snapshot *after,
                         void (*fn)(struct ms__out *, const ms_snapshot *, const ms_snapshot *))
{
    int rc = ms__report_args(name, fp, before, after);
    if (rc)
        return rc;
    struct ms__out o = {.fp = fp};
    fn(&o, before, after);
    return ferror(fp) ? ms__error(MS_EIO, "%s: write failed", name) : 0;
}

int ms_report_line(FILE *fp, const ms_snapshot *before, const ms_snapshot *after)
{
    return ms__report_fp("ms_report_line", fp, before, after, ms__report_line);
}

int ms_report_table(FILE *fp, const ms_snapshot *before, const ms_snapshot *after)
{
    return ms__report_fp("ms_report_table", fp, before, after, ms__report_table);
}

/* The buffer forms: buf may be NULL only with len 0 (to ask for the length). */
static int ms__report_buf(const char *name, char *buf, size_t len, const ms_snapshot *before,
                          const ms_snapshot *after,
                          void (*fn)(struct ms__out *, const ms_snapshot *, const ms_snapshot *))
{
    int rc = ms__report_args(name, buf || !len ? "" : NULL, before, after);
    if (rc)
        return rc;
    struct ms__out o = {.buf = buf, .len = len};
    if (len)
        buf[0] = '\0';
    fn(&o, before, after);
    if (o.pos > INT_MAX)
        return ms__error(MS_ERANGE, "%s: the report is over INT_MAX bytes", name);
    return (int)o.pos;
}

int ms_report_line_buf(char *buf, size_t len, const ms_snapshot *before, const ms_snapshot *after)
{
    return ms__report_buf("ms_report_line_buf", buf, len, before, after, ms__report_line);
}

int ms_report_table_buf(char *buf, size_t len, const ms_snapshot *before, const ms_snapshot *after)
{
    return ms__report_buf("ms_report_table_buf", buf, len, before, after, ms__report_table);
}
