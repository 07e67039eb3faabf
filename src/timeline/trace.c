/*
 * trace.c - the analysis of a trace written by `memsnap record` (ms_timeline_analyze_path on a
 * trace, `memsnap analyze app.mst`): the heap at its peak and what was never freed, by call
 * site, through the public ms_heap_* API only. Text and JSON are what `memsnap report --peak`
 * and `--leaks` print (docs/report-format.md), under the analysis's own lines; the folded
 * stacks of the peak feed the HTML flame graph.
 *
 * The rows are rendered by the one renderer of heap rows, ms_heap_write, as `memsnap report`
 * renders them; the notes on how the trace ends come from ms_heap_totals.
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
/* Heap rows, through the one renderer (ms_heap_write)                                      */
/* ---------------------------------------------------------------------------------------- */

/* What ms_heap_write writes for view v by call site, in memory (malloc'd, *out); 0 or an
 * MS_E* code. */
static int heap_text(struct ms__tl_trace *t, const ms_heap_view *v, ms_heap_format fmt, size_t top,
                     char **out)
{
    size_t len = 0;
    *out = NULL;
    FILE *mem = open_memstream(out, &len);
    if (!mem)
        return MS_ENOMEM;
    int rc = ms_heap_write(t->h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, fmt, top, mem);
    if (fclose(mem) != 0 && !rc)
        rc = MS_ENOMEM;
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The JSON object ms_heap_write writes for view v; NULL when out of memory. */
static json_t *sites_json(struct ms__tl_trace *t, const ms_heap_view *v)
{
    char *text;
    if (heap_text(t, v, MS_HEAP_FORMAT_JSON, t->top, &text) != 0)
        return NULL;
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    return o;
}

/* ---------------------------------------------------------------------------------------- */
/* The trace's analysis                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* The lines on how the trace ends (`memsnap report` prints the same): cut short (where),
 * without its END record, or with events the tracker could not record. NULL when none, or
 * when out of memory (they are advice: the analysis goes on). */
static char *trace_notes(ms_heap *h)
{
    ms_heap_totals st = {.size = sizeof(st)};
    if (ms_heap_totals_get(h, &st) != 0)
        return NULL;
    const char *warning = ms_heap_warning(h);
    if (!warning && st.complete && !st.lost_events)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp)
        return NULL;
    if (warning)
        fprintf(fp, "warning: %s\n", warning);
    if (!st.complete)
        fprintf(fp, "note: the trace has no END record: the program was killed or is still "
                    "running, or the trace was cut; the figures stop at its last record\n");
    if (st.lost_events)
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
    if (rc) { /* its message is the thread's last error already */
        ms__tl_trace_free(t);
        return rc;
    }
    if ((rc = ms_heap_peak(t->h, &t->peak)) != 0 || (rc = ms_heap_leaks(t->h, &t->leaks)) != 0) {
        ms__error(rc, "%s: %s", path, ms_strerror(rc));
        ms__tl_trace_free(t);
        return rc;
    }
    *notes = trace_notes(t->h);
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
    char *peak = NULL, *leaks = NULL;
    int rc = heap_text(t, t->peak, MS_HEAP_FORMAT_TEXT, t->top, &peak);
    if (!rc)
        rc = heap_text(t, t->leaks, MS_HEAP_FORMAT_TEXT, t->top, &leaks);
    if (!rc) {
        fprintf(fp,
                "memsnap analyze: %s: a memsnap trace\n\nthe heap at its peak\n%s\n"
                "leaks: what was never freed\n%s",
                t->path, peak, leaks);
        rc = ferror(fp) ? MS_EIO : 0;
    }
    free(peak);
    free(leaks);
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
    char *text;
    return heap_text(t, t->peak, MS_HEAP_FORMAT_FOLDED, 0, &text) == 0 ? text : NULL;
}
