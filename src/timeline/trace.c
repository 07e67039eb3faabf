/*
 * trace.c - the analysis of a trace written by `memsnap record` (ms_timeline_analyze_path on a
 * trace, `memsnap analyze app.mst`): the heap at its peak and what was never freed, by call
 * site, through the public ms_heap_* API only. Text and JSON are what `memsnap report --peak`
 * and `--leaks` print (docs/report-format.md), under the analysis's own lines; the folded
 * stacks of the peak feed the HTML flame graph.
 *
 * The rows are rendered here by the rules of `memsnap report` (the same bytes): when the one
 * renderer of heap rows (ms_heap_write, the heap-output part of issue 14) is in the library,
 * the three writers below become calls of it.
 */
#include "timeline.h"

#include "../core/internal.h"

#include <stdlib.h>
#include <string.h>

struct ms__tl_trace {
    char *path;          /* as given */
    size_t top;          /* sites listed */
    ms_heap *h;          /* the replayed trace */
    ms_heap_view *peak;  /* the heap at its peak */
    ms_heap_view *leaks; /* the heap at the end */
};

/* ---------------------------------------------------------------------------------------- */
/* Heap rows, as `memsnap report` writes them                                               */
/* ---------------------------------------------------------------------------------------- */

/* "12.345678 s" (microseconds, truncated) into buf. */
static const char *fmt_seconds(char *buf, size_t len, uint64_t ns)
{
    snprintf(buf, len, "%llu.%06llu s", (unsigned long long)(ns / 1000000000u),
             (unsigned long long)(ns % 1000000000u / 1000u));
    return buf;
}

/* "1.50 MiB (1572864 bytes)" into buf (a negative count as 0). */
static const char *fmt_bytes(char *buf, size_t len, int64_t sbytes)
{
    uint64_t bytes = sbytes < 0 ? 0 : (uint64_t)sbytes;
    char h[32];
    ms_format_bytes(h, sizeof(h), bytes);
    if (bytes < 1024)
        snprintf(buf, len, "%s", h);
    else
        snprintf(buf, len, "%s (%llu bytes)", h, (unsigned long long)bytes);
    return buf;
}

/* The last part of a frame's module path ("?" when none). */
static const char *module_name(const ms_heap_frame *f)
{
    const char *path = f->module ? f->module : "?";
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* A frame's name: its function, else module+0xoffset. */
static const char *frame_name(const ms_heap_frame *f, char *buf, size_t len)
{
    if (f->function)
        snprintf(buf, len, "%s", f->function);
    else
        snprintf(buf, len, "%s+0x%llx", module_name(f), (unsigned long long)f->offset);
    return buf;
}

/* The top sites of view v as text, under "MODE at T: B live in N allocations". */
static int sites_text(struct ms__tl_trace *t, const ms_heap_view *v, const char *mode, FILE *fp)
{
    ms_heap_rows *rows;
    int rc = ms_heap_group(t->h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, t->top, &rows);
    if (rc)
        return rc;
    char a[96], c[96];
    int64_t count = ms_heap_view_count(v);
    fprintf(fp, "%s at %s: %s live in %lld allocation%s\n", mode,
            fmt_seconds(a, sizeof(a), ms_heap_view_time(v)),
            fmt_bytes(c, sizeof(c), ms_heap_view_bytes(v)), (long long)count,
            count == 1 ? "" : "s");
    size_t n = ms_heap_rows_count(rows);
    for (size_t i = 0; i < n; i++) {
        const ms_heap_row *r = ms_heap_rows_at(rows, i);
        fprintf(fp, "\n#%zu %s in %lld allocation%s\n", i + 1, fmt_bytes(a, sizeof(a), r->bytes),
                (long long)r->count, r->count == 1 || r->count == -1 ? "" : "s");
        if (!r->nframes)
            fprintf(fp, "    (no stack)\n");
        for (size_t f = 0; f < r->nframes; f++) {
            const ms_heap_frame *fr = &r->frames[f];
            if (fr->function) {
                fprintf(fp, "    %s", fr->function);
                if (fr->file)
                    fprintf(fp, " %s:%u", fr->file, fr->line);
                fprintf(fp, " [%s]%s\n", module_name(fr), fr->inlined ? " (inlined)" : "");
            } else {
                char name[512];
                fprintf(fp, "    %s\n", frame_name(fr, name, sizeof(name)));
            }
        }
    }
    if (n == 0)
        fprintf(fp, "\n(no live allocations)\n");
    ms_heap_rows_free(rows);
    return ferror(fp) ? MS_EIO : 0;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The top sites of view v as the JSON object of `memsnap report --format json`. */
static json_t *sites_json(struct ms__tl_trace *t, const ms_heap_view *v)
{
    ms_heap_rows *rows;
    if (ms_heap_group(t->h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, t->top, &rows) != 0)
        return NULL;
    json_t *o = json_object(), *sites = json_array();
    int bad = !o || !sites;
    bad |= json_object_set_new(o, "time_ns", json_integer((json_int_t)ms_heap_view_time(v)));
    bad |= json_object_set_new(o, "live_bytes", json_integer((json_int_t)ms_heap_view_bytes(v)));
    bad |=
        json_object_set_new(o, "live_allocations", json_integer((json_int_t)ms_heap_view_count(v)));
    bad |= json_object_set_new(o, "sites", sites);
    size_t n = ms_heap_rows_count(rows);
    for (size_t i = 0; i < n && !bad; i++) {
        const ms_heap_row *r = ms_heap_rows_at(rows, i);
        json_t *site = json_object(), *stack = json_array();
        bad |= !site || !stack || json_array_append_new(sites, site);
        if (bad) {
            json_decref(stack);
            break;
        }
        bad |= json_object_set_new(site, "bytes", json_integer((json_int_t)r->bytes));
        bad |= json_object_set_new(site, "count", json_integer((json_int_t)r->count));
        bad |= json_object_set_new(site, "stack", stack);
        for (size_t f = 0; f < r->nframes && !bad; f++) {
            const ms_heap_frame *fr = &r->frames[f];
            json_t *jf = json_object();
            bad |= !jf || json_array_append_new(stack, jf);
            if (bad)
                break;
            bad |= json_object_set_new(jf, "function", str_or_null(fr->function));
            bad |= json_object_set_new(jf, "file", str_or_null(fr->file));
            bad |= json_object_set_new(jf, "line", json_integer(fr->line));
            bad |= json_object_set_new(jf, "module", json_string(fr->module ? fr->module : "?"));
        }
    }
    ms_heap_rows_free(rows);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Every site of view v with positive bytes as a folded line "outer;...;inner bytes" (';' and
 * line breaks in names made ':'). */
static int sites_folded(struct ms__tl_trace *t, const ms_heap_view *v, FILE *fp)
{
    ms_heap_rows *rows;
    int rc = ms_heap_group(t->h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, 0, &rows);
    if (rc)
        return rc;
    size_t n = ms_heap_rows_count(rows);
    for (size_t i = 0; i < n; i++) {
        const ms_heap_row *r = ms_heap_rows_at(rows, i);
        if (r->bytes <= 0)
            continue;
        if (!r->nframes)
            fputs("[no stack]", fp);
        for (size_t f = r->nframes; f-- > 0;) {
            char buf[512];
            frame_name(&r->frames[f], buf, sizeof(buf));
            for (char *c = buf; *c; c++)
                if (*c == ';' || *c == '\n')
                    *c = ':';
            fputs(buf, fp);
            if (f)
                fputc(';', fp);
        }
        fprintf(fp, " %lld\n", (long long)r->bytes);
    }
    ms_heap_rows_free(rows);
    return ferror(fp) ? MS_EIO : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The trace's analysis                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* The lines on how the trace ends (`memsnap report` prints the same): cut short (where),
 * without its END record, or with events the tracker could not record. NULL when none, or
 * when out of memory (they are advice: the analysis goes on). */
static char *trace_notes(ms_heap *h, const char *path)
{
    ms_trace *tr;
    ms_trace_stats st = {.size = sizeof(st)};
    bool have = ms_trace_open(&tr, path) == 0;
    if (have) {
        have = ms_trace_stats_get(tr, &st) == 0;
        ms_trace_close(tr);
    }
    const char *warning = ms_heap_warning(h);
    if (!warning && (!have || (st.complete && !st.lost_events)))
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp)
        return NULL;
    if (warning)
        fprintf(fp, "warning: %s\n", warning);
    if (have && !st.complete)
        fprintf(fp, "note: the trace has no END record: the program was killed or is still "
                    "running, or the trace was cut; the figures stop at its last record\n");
    if (have && st.lost_events)
        fprintf(fp,
                "warning: %llu allocation event%s could not be recorded (signal handlers "
                "nested too deep); the figures miss %s\n",
                (unsigned long long)st.lost_events, st.lost_events == 1 ? "" : "s",
                st.lost_events == 1 ? "it" : "them");
    if (fclose(fp) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int ms__tl_trace_open(const char *path, size_t top, struct ms__tl_trace **out, char **notes)
{
    *out = NULL;
    *notes = NULL;
    struct ms__tl_trace *t = calloc(1, sizeof(*t));
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return ms__error(MS_ENOMEM, "out of memory");
    }
    t->top = top;
    int rc = ms_heap_open(&t->h, path);
    if (rc) {
        /* copied first: where ms_heap_error() is ms_last_error() itself, it is the buffer
         * ms__error writes */
        char why[512];
        snprintf(why, sizeof(why), "%s", ms_heap_error());
        ms__error(rc, "%s", why);
        ms__tl_trace_free(t);
        return rc;
    }
    if ((rc = ms_heap_peak(t->h, &t->peak)) != 0 || (rc = ms_heap_leaks(t->h, &t->leaks)) != 0) {
        ms__error(rc, "%s: %s", path, ms_strerror(rc));
        ms__tl_trace_free(t);
        return rc;
    }
    *notes = trace_notes(t->h, path);
    *out = t;
    return 0;
}

void ms__tl_trace_free(struct ms__tl_trace *t)
{
    if (!t)
        return;
    ms_heap_view_free(t->peak);
    ms_heap_view_free(t->leaks);
    ms_heap_close(t->h);
    free(t->path);
    free(t);
}

int ms__tl_trace_text(struct ms__tl_trace *t, FILE *fp)
{
    /* both views first, in memory: nothing is printed when one cannot be rendered */
    char *text[2] = {NULL, NULL};
    size_t len[2];
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        FILE *mem = open_memstream(&text[k], &len[k]);
        if (!mem) {
            rc = MS_ENOMEM;
            break;
        }
        rc = sites_text(t, k ? t->leaks : t->peak, k ? "leaks" : "peak", mem);
        if (fclose(mem) != 0 && !rc)
            rc = MS_ENOMEM;
    }
    if (!rc) {
        fprintf(fp,
                "memsnap analyze: %s: a memsnap trace\n\nthe heap at its peak\n%s\n"
                "leaks: what was never freed\n%s",
                t->path, text[0], text[1]);
        rc = ferror(fp) ? MS_EIO : 0;
    }
    free(text[0]);
    free(text[1]);
    return rc;
}

json_t *ms__tl_trace_json(struct ms__tl_trace *t)
{
    json_t *peak = sites_json(t, t->peak), *leaks = peak ? sites_json(t, t->leaks) : NULL;
    json_t *o = NULL;
    if (peak && leaks)
        o = json_pack("{s:s, s:s, s:s, s:O, s:O}", "schema", MS__TL_SCHEMA, "file", t->path, "kind",
                      "trace", "peak", peak, "leaks", leaks);
    json_decref(peak);
    json_decref(leaks);
    return o;
}

char *ms__tl_trace_folded(struct ms__tl_trace *t)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return NULL;
    int rc = sites_folded(t, t->peak, mem);
    if (fclose(mem) != 0 || rc) {
        free(text);
        return NULL;
    }
    return text;
}
