/*
 * trace.c - the analysis of a trace written by `memsnap record` (ms_timeline_analyze_path on a
 * trace, `memsnap analyze app.mst`): the heap at its peak and what was never freed, by call
 * site, through the public ms_heap_* API only. Text and JSON are what `memsnap report --peak`
 * and `--leaks` print (docs/report-format.md), under the analysis's own lines; the folded
 * stacks of the peak feed the HTML flame graph.
 *
 * The rows come from ms_heap_write, the one renderer of heap rows, as `memsnap report`
 * renders them.
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
/* Heap rows, by the one renderer that `memsnap report` uses                                */
/* ---------------------------------------------------------------------------------------- */

/* View v's top sites in format, into a malloc'd string; NULL with the thread's last error set
 * when it cannot be rendered. */
static char *sites_render(struct ms__tl_trace *t, const ms_heap_view *v, ms_heap_format format)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        ms__error(MS_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = ms_heap_write(t->h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, format, t->top, mem);
    if (fclose(mem) != 0 && !rc)
        rc = ms__error(MS_ENOMEM, "out of memory");
    if (rc) {
        free(text);
        return NULL;
    }
    return text;
}

/* The top sites of view v as the JSON object of `memsnap report --format json`. */
static json_t *sites_json(struct ms__tl_trace *t, const ms_heap_view *v)
{
    char *text = sites_render(t, v, MS_HEAP_FORMAT_JSON);
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return o;
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
    if (rc) { /* its message is the thread's last error already */
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
    char *peak = sites_render(t, t->peak, MS_HEAP_FORMAT_TEXT);
    char *leaks = peak ? sites_render(t, t->leaks, MS_HEAP_FORMAT_TEXT) : NULL;
    int rc = MS_ENOMEM;
    if (peak && leaks) {
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
    /* every site of the peak (folded output is never cut at top) */
    return sites_render(t, t->peak, MS_HEAP_FORMAT_FOLDED);
}
