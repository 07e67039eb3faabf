/*
 * heap.c - the memsnap::heap and memsnap::analyze commands: what a trace's heap held
 * (ms_heap_*) and what `memsnap analyze` says of monitor output or a trace (ms_timeline_*), as
 * Tcl dicts.
 *
 * memsnap::heap opens and replays the trace on each call (a command per question, like the
 * other memsnap:: commands, rather than a handle to keep and close): a view (the peak, a
 * moment, the leaks or the change between two moments) grouped by site, function, module or
 * thread, with the trace's totals and every thread's own figures. memsnap::analyze has the
 * library write its JSON (ms_timeline_write_json, the very bytes `memsnap analyze --format
 * json` prints) and reads it back into a dict with jansson, so the two can never disagree.
 */
#include "tclmemsnap.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- memsnap::heap ------------------------------------------------------------------------ */

/* What the options of memsnap::heap ask for. */
struct ms__tcl_heap_opts {
    int view;            /* MS__TCL_PEAK ... */
    int views;           /* how many view options were given: more than one is an error */
    Tcl_Obj *w1, *w2;    /* -at WHEN, -diff W1 W2 */
    ms_heap_by by;       /* -by */
    ms_heap_order order; /* -order */
    size_t top;          /* -top: rows kept (0: every row) */
};

enum { MS__TCL_PEAK, MS__TCL_AT, MS__TCL_LEAKS, MS__TCL_DIFF };
static const char *const ms__tcl_view_names[] = {"peak", "at", "leaks", "diff"};

/* The -by names, in the order of their ms_heap_by values below. */
static const char *const ms__tcl_by_names[] = {"site", "function", "module", "thread", NULL};
static const ms_heap_by ms__tcl_by_values[] = {MS_HEAP_BY_SITE, MS_HEAP_BY_FUNCTION,
                                               MS_HEAP_BY_MODULE, MS_HEAP_BY_THREAD};
static const char *const ms__tcl_order_names[] = {"bytes", "count", NULL}; /* ms_heap_order */

/* WHEN (plain decimal seconds from the trace start, or a marker's label) to ns, by the rules
 * of `memsnap report --at` (ms_heap_when). */
static int ms__tcl_when(Tcl_Interp *interp, ms_heap *h, Tcl_Obj *obj, uint64_t *ns)
{
    int rc = ms_heap_when(h, Tcl_GetString(obj), ns);
    /* a negative time is an invalid argument here, as any other bad moment */
    return rc ? ms__tcl_error(interp, rc == MS_ERANGE ? MS_EINVAL : rc, NULL, "%s", ms_last_error())
              : TCL_OK;
}

/* Parses the options of memsnap::heap (objv[2] on). */
static int ms__tcl_heap_parse(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[],
                              struct ms__tcl_heap_opts *o)
{
    static const char *const opts[] = {"-at",    "-by",   "-diff", "-leaks",
                                       "-order", "-peak", "-top",  NULL};
    enum { OPT_AT, OPT_BY, OPT_DIFF, OPT_LEAKS, OPT_ORDER, OPT_PEAK, OPT_TOP };
    for (int i = 2; i < objc; i++) {
        int idx, k;
        Tcl_WideInt top;
        if (Tcl_GetIndexFromObj(interp, objv[i], opts, "option", 0, &idx) != TCL_OK)
            return TCL_ERROR;
        bool valued = idx != OPT_LEAKS && idx != OPT_PEAK;
        if (valued && i + 1 >= objc)
            return ms__tcl_error(interp, MS_EINVAL, NULL, "missing value for %s",
                                 Tcl_GetString(objv[i]));
        switch (idx) {
        case OPT_PEAK:
        case OPT_LEAKS:
            o->view = idx == OPT_PEAK ? MS__TCL_PEAK : MS__TCL_LEAKS;
            o->views++;
            break;
        case OPT_AT:
            o->view = MS__TCL_AT;
            o->views++;
            o->w1 = objv[++i];
            break;
        case OPT_DIFF:
            if (i + 2 >= objc)
                return ms__tcl_error(interp, MS_EINVAL, NULL,
                                     "-diff needs two moments: -diff W1 W2");
            o->view = MS__TCL_DIFF;
            o->views++;
            o->w1 = objv[++i];
            o->w2 = objv[++i];
            break;
        case OPT_BY:
            if (Tcl_GetIndexFromObj(interp, objv[++i], ms__tcl_by_names, "grouping", 0, &k) !=
                TCL_OK)
                return TCL_ERROR;
            o->by = ms__tcl_by_values[k];
            break;
        case OPT_ORDER:
            if (Tcl_GetIndexFromObj(interp, objv[++i], ms__tcl_order_names, "order", 0, &k) !=
                TCL_OK)
                return TCL_ERROR;
            o->order = (ms_heap_order)k;
            break;
        default: /* OPT_TOP */
            if (Tcl_GetWideIntFromObj(NULL, objv[++i], &top) != TCL_OK || top < 0)
                return ms__tcl_error(interp, MS_EINVAL, NULL,
                                     "bad top \"%s\": must be a count of rows (0: every row)",
                                     Tcl_GetString(objv[i]));
            o->top = (size_t)top;
            break;
        }
    }
    if (o->views > 1)
        return ms__tcl_error(interp, MS_EINVAL, NULL,
                             "-peak, -at, -leaks and -diff exclude each other");
    return TCL_OK;
}

/* Puts key -> a Tcl string unless str is NULL (what the library does not know is absent). */
static void ms__tcl_put_opt(Tcl_Obj *dict, const char *key, const char *str)
{
    if (str)
        ms__tcl_put(dict, key, Tcl_NewStringObj(str, -1));
}

/* One frame: ip, module, offset, inlined, and function, file, line when known. */
static Tcl_Obj *ms__tcl_frame_dict(const ms_heap_frame *f)
{
    Tcl_Obj *d = Tcl_NewDictObj();
    ms__tcl_put_opt(d, "function", f->function);
    ms__tcl_put_opt(d, "file", f->file);
    if (f->line)
        ms__tcl_put(d, "line", Tcl_NewWideIntObj(f->line));
    ms__tcl_put_opt(d, "module", f->module);
    ms__tcl_put(d, "offset", ms__tcl_u64(f->offset));
    ms__tcl_put(d, "ip", ms__tcl_u64(f->ip));
    ms__tcl_put(d, "inlined", Tcl_NewBooleanObj(f->inlined));
    return d;
}

/* One row: bytes, count, and by grouping the frames (site), the name (function, module) or
 * the tid and name (thread). */
static Tcl_Obj *ms__tcl_row_dict(const ms_heap_row *r, ms_heap_by by)
{
    Tcl_Obj *d = Tcl_NewDictObj();
    ms__tcl_put(d, "bytes", Tcl_NewWideIntObj(r->bytes));
    ms__tcl_put(d, "count", Tcl_NewWideIntObj(r->count));
    if (by == MS_HEAP_BY_THREAD)
        ms__tcl_put(d, "tid", Tcl_NewWideIntObj(r->tid));
    ms__tcl_put_opt(d, "name", r->name);
    if (by == MS_HEAP_BY_SITE) {
        Tcl_Obj *frames = Tcl_NewListObj(0, NULL);
        for (size_t k = 0; k < r->nframes; k++)
            Tcl_ListObjAppendElement(NULL, frames, ms__tcl_frame_dict(&r->frames[k]));
        ms__tcl_put(d, "frames", frames);
    }
    return d;
}

/* The trace's totals (ms_heap_totals) as a dict; booleans are 1 or 0. */
static Tcl_Obj *ms__tcl_totals_dict(const ms_heap_totals *t)
{
#define MS__TCL_TOTALS(X)                                                                          \
    X(events)                                                                                      \
    X(allocations)                                                                                 \
    X(reallocations)                                                                               \
    X(frees)                                                                                       \
    X(unmatched_frees)                                                                             \
    X(temporaries)                                                                                 \
    X(temporary_bytes)                                                                             \
    X(peak_bytes)                                                                                  \
    X(peak_time_ns)                                                                                \
    X(leaked_bytes)                                                                                \
    X(leaked_allocations)                                                                          \
    X(duration_ns)                                                                                 \
    X(allocated_bytes)                                                                             \
    X(freed_bytes)                                                                                 \
    X(threads)                                                                                     \
    X(lost_events)                                                                                 \
    X(checkpoint_every)
#define MS__TCL_PUT_TOTAL(name) ms__tcl_put(d, #name, ms__tcl_u64(t->name));
    Tcl_Obj *d = Tcl_NewDictObj();
    MS__TCL_TOTALS(MS__TCL_PUT_TOTAL)
    ms__tcl_put(d, "sampled", Tcl_NewBooleanObj(t->sampled));
    ms__tcl_put(d, "truncated", Tcl_NewBooleanObj(t->truncated));
    ms__tcl_put(d, "complete", Tcl_NewBooleanObj(t->complete));
    return d;
#undef MS__TCL_PUT_TOTAL
#undef MS__TCL_TOTALS
}

/* Every thread's own figures (ms_heap_threads), in the order they first allocated. */
static int ms__tcl_threads_list(Tcl_Interp *interp, ms_heap *h, Tcl_Obj **out)
{
    size_t n;
    int rc = ms_heap_threads(h, &n);
    if (rc != 0)
        return ms__tcl_error(interp, rc, NULL, "%s", ms_last_error());
    Tcl_Obj *list = Tcl_NewListObj(0, NULL);
    for (size_t i = 0; i < n; i++) {
        const ms_heap_thread *t = ms_heap_thread_at(h, i);
        Tcl_Obj *d = Tcl_NewDictObj();
        ms__tcl_put(d, "tid", Tcl_NewWideIntObj(t->tid));
        ms__tcl_put_opt(d, "name", t->name);
        ms__tcl_put(d, "image", Tcl_NewWideIntObj(t->image));
        ms__tcl_put(d, "allocations", ms__tcl_u64(t->allocations));
        ms__tcl_put(d, "reallocations", ms__tcl_u64(t->reallocations));
        ms__tcl_put(d, "allocated_bytes", ms__tcl_u64(t->allocated_bytes));
        ms__tcl_put(d, "frees", ms__tcl_u64(t->frees));
        ms__tcl_put(d, "freed_bytes", ms__tcl_u64(t->freed_bytes));
        ms__tcl_put(d, "peak_bytes", ms__tcl_u64(t->peak_bytes));
        ms__tcl_put(d, "peak_time_ns", ms__tcl_u64(t->peak_time_ns));
        Tcl_ListObjAppendElement(NULL, list, d);
    }
    *out = list;
    return TCL_OK;
}

/* Refuses what is not a regular file before the library opens it: a FIFO would block the
 * interpreter until a writer came. */
static int ms__tcl_regular(Tcl_Interp *interp, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return ms__tcl_error(interp, MS_EINVAL, NULL, "%s: not a regular file", path);
    return TCL_OK;
}

/* The view the options ask for, into *v (a and b: the two moments of a diff, freed by the
 * caller); *from is the first moment of a diff. */
static int ms__tcl_heap_view(Tcl_Interp *interp, ms_heap *h, const char *path,
                             const struct ms__tcl_heap_opts *o, ms_heap_view **v, ms_heap_view **a,
                             ms_heap_view **b, uint64_t *from)
{
    uint64_t t1 = 0, t2 = 0;
    int rc;
    switch (o->view) {
    case MS__TCL_PEAK:
        rc = ms_heap_peak(h, v);
        break;
    case MS__TCL_LEAKS:
        rc = ms_heap_leaks(h, v);
        break;
    case MS__TCL_AT:
        if (ms__tcl_when(interp, h, o->w1, &t1) != TCL_OK)
            return TCL_ERROR;
        rc = ms_heap_at(h, t1, v);
        break;
    default:
        if (ms__tcl_when(interp, h, o->w1, &t1) != TCL_OK ||
            ms__tcl_when(interp, h, o->w2, &t2) != TCL_OK)
            return TCL_ERROR;
        *from = t1;
        rc = ms_heap_at(h, t1, a);
        if (rc == 0)
            rc = ms_heap_at(h, t2, b);
        if (rc == 0)
            rc = ms_heap_diff(h, *a, *b, v);
        break;
    }
    if (rc != 0)
        return ms__tcl_error(interp, rc, NULL, "%s: %s", path, ms_last_error());
    return TCL_OK;
}

/* memsnap::heap PATH ?-peak | -at WHEN | -leaks | -diff W1 W2? ?-by site|function|module|thread?
 * ?-order bytes|count? ?-top N?: the view's rows, the trace's totals and its threads. */
static int ms__tcl_cmd_heap(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    if (objc < 2) {
        Tcl_WrongNumArgs(interp, 1, objv,
                         "path ?-peak | -at when | -leaks | -diff w1 w2? "
                         "?-by site|function|module|thread? ?-order bytes|count? ?-top n?");
        return TCL_ERROR;
    }
    struct ms__tcl_heap_opts o = {.view = MS__TCL_PEAK, .top = 10};
    if (ms__tcl_heap_parse(interp, objc, objv, &o) != TCL_OK)
        return TCL_ERROR;
    const char *path = Tcl_GetString(objv[1]);
    if (ms__tcl_regular(interp, path) != TCL_OK)
        return TCL_ERROR;
    ms_heap *h;
    int rc = ms_heap_open(&h, path);
    if (rc != 0)
        return ms__tcl_error(interp, rc, NULL, "%s", ms_last_error());
    ms_heap_view *v = NULL, *a = NULL, *b = NULL;
    ms_heap_rows *rows = NULL;
    uint64_t from = 0;
    Tcl_Obj *threads = NULL;
    int ret = ms__tcl_heap_view(interp, h, path, &o, &v, &a, &b, &from);
    if (ret == TCL_OK && (rc = ms_heap_group(h, v, o.by, o.order, o.top, &rows)) != 0)
        ret = ms__tcl_error(interp, rc, NULL, "%s: %s", path, ms_last_error());
    if (ret == TCL_OK)
        ret = ms__tcl_threads_list(interp, h, &threads);
    if (ret == TCL_OK) {
        Tcl_Obj *d = Tcl_NewDictObj();
        ms__tcl_put(d, "file", Tcl_NewStringObj(path, -1));
        ms__tcl_put(d, "view", Tcl_NewStringObj(ms__tcl_view_names[o.view], -1));
        if (o.view == MS__TCL_DIFF)
            ms__tcl_put(d, "from_time_ns", ms__tcl_u64(from));
        ms__tcl_put(d, "time_ns", ms__tcl_u64(ms_heap_view_time(v)));
        ms__tcl_put(d, "live_bytes", Tcl_NewWideIntObj(ms_heap_view_bytes(v)));
        ms__tcl_put(d, "live_allocations", Tcl_NewWideIntObj(ms_heap_view_count(v)));
        int byk = 0;
        while (ms__tcl_by_values[byk] != o.by)
            byk++;
        ms__tcl_put(d, "by", Tcl_NewStringObj(ms__tcl_by_names[byk], -1));
        ms__tcl_put(d, "order", Tcl_NewStringObj(ms__tcl_order_names[o.order], -1));
        Tcl_Obj *list = Tcl_NewListObj(0, NULL);
        for (size_t i = 0; i < ms_heap_rows_count(rows); i++)
            Tcl_ListObjAppendElement(NULL, list, ms__tcl_row_dict(ms_heap_rows_at(rows, i), o.by));
        ms__tcl_put(d, "rows", list);
        ms_heap_totals tot = {.size = sizeof(tot)};
        ms_heap_totals_get(h, &tot);
        ms__tcl_put(d, "totals", ms__tcl_totals_dict(&tot));
        ms__tcl_put(d, "threads", threads);
        ms__tcl_put_opt(d, "warning", ms_heap_warning(h));
        Tcl_SetObjResult(interp, d);
    }
    ms_heap_rows_free(rows);
    ms_heap_view_free(v);
    ms_heap_view_free(a);
    ms_heap_view_free(b);
    ms_heap_close(h);
    return ret;
}

/* ---- memsnap::analyze ---------------------------------------------------------------------- */

/* A JSON value as a Tcl value: an object is a dict without its null members (absent, as in
 * every memsnap dict), an array a list (a null element is ""), true and false 1 and 0. */
static Tcl_Obj *ms__tcl_json(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        Tcl_Obj *d = Tcl_NewDictObj();
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v)
        {
            if (!json_is_null(v))
                ms__tcl_put(d, key, ms__tcl_json(v));
        }
        return d;
    }
    case JSON_ARRAY: {
        Tcl_Obj *l = Tcl_NewListObj(0, NULL);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            Tcl_ListObjAppendElement(NULL, l, ms__tcl_json(v));
        }
        return l;
    }
    case JSON_STRING:
        return Tcl_NewStringObj(json_string_value(j), (int)json_string_length(j));
    case JSON_INTEGER:
        return Tcl_NewWideIntObj((Tcl_WideInt)json_integer_value(j));
    case JSON_REAL:
        return Tcl_NewDoubleObj(json_real_value(j));
    case JSON_TRUE:
        return Tcl_NewBooleanObj(1);
    case JSON_FALSE:
        return Tcl_NewBooleanObj(0);
    default: /* JSON_NULL in an array */
        return Tcl_NewObj();
    }
}

/* The library's JSON of analysis a as a dict. */
static int ms__tcl_analysis_dict(Tcl_Interp *interp, ms_timeline_analysis *a, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp)
        return ms__tcl_error(interp, MS_ENOMEM, NULL, "%s: out of memory", path);
    int rc = ms_timeline_write_json(a, fp);
    if (fclose(fp) != 0 && rc == 0)
        rc = MS_ENOMEM;
    if (rc != 0) {
        free(text);
        return ms__tcl_error(interp, rc, NULL, "%s: cannot write the analysis: %s", path,
                             ms_strerror(rc));
    }
    /* jansson's integers are 64-bit signed, as are the analysis's figures: the library reads
     * monitor files with jansson too, and a trace's byte counts are int64_t */
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    free(text);
    if (!j)
        return ms__tcl_error(interp, MS_EPARSE, NULL, "%s: cannot read the analysis back: %s", path,
                             err.text);
    Tcl_SetObjResult(interp, ms__tcl_json(j));
    json_decref(j);
    return TCL_OK;
}

/* The warnings and notes of an analysis (one line each) as a list. */
static Tcl_Obj *ms__tcl_lines(const char *text)
{
    Tcl_Obj *l = Tcl_NewListObj(0, NULL);
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        Tcl_ListObjAppendElement(NULL, l, Tcl_NewStringObj(text, n));
        text += n + (nl != NULL);
    }
    return l;
}

/* memsnap::analyze PATH ?-top N? ?-warnings VAR?: the dict of `memsnap analyze --format json`
 * of monitor output or a trace; VAR gets the list of the warnings and notes about the input
 * (what the CLI prints on stderr). */
static int ms__tcl_cmd_analyze(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    static const char *const opts[] = {"-top", "-warnings", NULL};
    enum { OPT_TOP, OPT_WARNINGS };
    if (objc < 2 || objc % 2 != 0) {
        Tcl_WrongNumArgs(interp, 1, objv, "path ?-top n? ?-warnings varName?");
        return TCL_ERROR;
    }
    ms_timeline_options o = {.size = sizeof(o), .top = 10};
    Tcl_Obj *var = NULL;
    for (int i = 2; i < objc; i += 2) {
        int idx;
        Tcl_WideInt top;
        if (Tcl_GetIndexFromObj(interp, objv[i], opts, "option", 0, &idx) != TCL_OK)
            return TCL_ERROR;
        if (idx == OPT_WARNINGS) {
            var = objv[i + 1];
        } else if (Tcl_GetWideIntFromObj(NULL, objv[i + 1], &top) != TCL_OK || top <= 0) {
            return ms__tcl_error(interp, MS_EINVAL, NULL,
                                 "bad top \"%s\": must be a positive count of call sites",
                                 Tcl_GetString(objv[i + 1]));
        } else {
            o.top = (size_t)top;
        }
    }
    const char *path = Tcl_GetString(objv[1]);
    if (ms__tcl_regular(interp, path) != TCL_OK)
        return TCL_ERROR;
    ms_timeline_analysis *a;
    int rc = ms_timeline_analyze_path(path, &o, &a);
    if (rc != 0)
        return ms__tcl_error(interp, rc, NULL, "%s", ms_last_error());
    int ret = ms__tcl_analysis_dict(interp, a, path);
    if (ret == TCL_OK && var) {
        Tcl_Obj *result = Tcl_GetObjResult(interp);
        Tcl_IncrRefCount(result);
        if (!Tcl_ObjSetVar2(interp, var, NULL, ms__tcl_lines(ms_timeline_analysis_warning(a)),
                            TCL_LEAVE_ERR_MSG))
            ret = TCL_ERROR;
        else
            Tcl_SetObjResult(interp, result);
        Tcl_DecrRefCount(result);
    }
    ms_timeline_analysis_free(a);
    return ret;
}

/* ---- registration -------------------------------------------------------------------------- */

int ms__tcl_heap_init(Tcl_Interp *interp)
{
    if (!Tcl_CreateObjCommand(interp, "::memsnap::heap", ms__tcl_cmd_heap, NULL, NULL) ||
        !Tcl_CreateObjCommand(interp, "::memsnap::analyze", ms__tcl_cmd_analyze, NULL, NULL))
        return TCL_ERROR;
    return TCL_OK;
}
