/*
 * heap.c - traces written by `memsnap record`, for Python: memsnap.Heap over the library's heap
 * engine (ms_heap_*: the live heap at any moment, grouped and symbolized) and the JSON of
 * `memsnap analyze` (ms_timeline_analyze_path + ms_timeline_write_json) behind
 * memsnap.analyze().
 *
 * A HeapView holds a reference to its Heap, and the library's views live until ms_heap_close():
 * so Heap.close() frees the engine at once only when no view is left, else marks the heap
 * closed (every call then raises Error) and the last view to go frees it. The engine is used
 * under the GIL, one call at a time; only the loading of a trace, before any other thread can
 * see the handle, runs without it.
 */
#include "mspy.h"

#include "memsnap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PyObject *Error; /* memsnap.Error */

typedef struct {
    PyObject_HEAD ms_heap *h;
    bool closed;      /* close() was called: h goes with the last view */
    Py_ssize_t views; /* HeapView objects alive */
    PyObject *path;   /* str */
} HeapObject;

typedef struct {
    PyObject_HEAD ms_heap_view *v;
    HeapObject *heap;
    bool diff; /* from diff(): signed figures, no blocks */
} ViewObject;

static PyTypeObject HeapType, ViewType;

/* Raises Error with the library's message for a failed call (rc). */
static PyObject *lib_error(int rc)
{
    const char *m = ms_last_error();
    if (rc == MS_ENOMEM && !m[0])
        return PyErr_NoMemory();
    PyErr_SetString(Error, m[0] ? m : ms_strerror(rc));
    return NULL;
}

/* A C string from the library as str (invalid UTF-8 replaced), None for NULL. */
static PyObject *str_or_none(const char *s)
{
    if (!s)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

/* self's engine, or NULL with Error set when the heap is closed. */
static ms_heap *heap_get(HeapObject *o)
{
    if (o->closed || !o->h) {
        PyErr_SetString(Error, "the heap is closed");
        return NULL;
    }
    return o->h;
}

/* v as a view of heap o, or NULL with TypeError/ValueError set. */
static ViewObject *view_arg(HeapObject *o, PyObject *v, const char *fn)
{
    if (!PyObject_TypeCheck(v, &ViewType)) {
        PyErr_Format(PyExc_TypeError, "%s() needs a HeapView, not %s", fn, Py_TYPE(v)->tp_name);
        return NULL;
    }
    ViewObject *vo = (ViewObject *)v;
    if (vo->heap != o) {
        PyErr_Format(PyExc_ValueError, "%s(): the view is of another Heap", fn);
        return NULL;
    }
    return vo;
}

/* ---------------------------------------------------------------------------------------- */
/* HeapView                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static PyObject *view_new(HeapObject *heap, ms_heap_view *v, bool diff)
{
    ViewObject *o = PyObject_New(ViewObject, &ViewType);
    if (!o) {
        ms_heap_view_free(v);
        return NULL;
    }
    o->v = v;
    o->heap = (HeapObject *)Py_NewRef(heap);
    o->diff = diff;
    heap->views++;
    return (PyObject *)o;
}

static void view_dealloc(PyObject *self)
{
    ViewObject *o = (ViewObject *)self;
    HeapObject *heap = o->heap;
    ms_heap_view_free(o->v);
    if (--heap->views == 0 && heap->closed) { /* the heap waited for its last view */
        ms_heap_close(heap->h);
        heap->h = NULL;
    }
    Py_TYPE(self)->tp_free(self);
    Py_DECREF(heap);
}

static PyObject *view_time_ns(PyObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(ms_heap_view_time(((ViewObject *)self)->v));
}

static PyObject *view_bytes(PyObject *self, void *c)
{
    (void)c;
    return PyLong_FromLongLong(ms_heap_view_bytes(((ViewObject *)self)->v));
}

static PyObject *view_count(PyObject *self, void *c)
{
    (void)c;
    return PyLong_FromLongLong(ms_heap_view_count(((ViewObject *)self)->v));
}

static PyObject *view_is_diff(PyObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(((ViewObject *)self)->diff);
}

static PyObject *view_repr(PyObject *self)
{
    const ViewObject *o = (const ViewObject *)self;
    return PyUnicode_FromFormat("<memsnap.HeapView%s time_ns=%llu bytes=%lld count=%lld>",
                                o->diff ? " diff" : "", (unsigned long long)ms_heap_view_time(o->v),
                                (long long)ms_heap_view_bytes(o->v),
                                (long long)ms_heap_view_count(o->v));
}

static PyGetSetDef view_getset[] = {
    {"time_ns", view_time_ns, NULL, "the view's moment, ns from the trace start (a diff: b's)",
     NULL},
    {"bytes", view_bytes, NULL, "live bytes (a diff: their change, signed)", NULL},
    {"count", view_count, NULL, "live blocks (a diff: their change, signed)", NULL},
    {"is_diff", view_is_diff, NULL, "the view is a diff(a, b)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ViewType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memsnap.HeapView",
    .tp_basicsize = sizeof(ViewObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The live heap of a trace at one moment (Heap.peak(), at(), leaks()) or the\n"
              "change between two (Heap.diff()); valid while its Heap is open.",
    .tp_dealloc = view_dealloc,
    .tp_repr = view_repr,
    .tp_getset = view_getset,
};

/* ---------------------------------------------------------------------------------------- */
/* Heap                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int heap_init(PyObject *self, PyObject *args, PyObject *kw)
{
    HeapObject *o = (HeapObject *)self;
    static char *kwlist[] = {"path", NULL};
    PyObject *path;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&:Heap", kwlist, PyUnicode_FSConverter, &path))
        return -1;
    if (o->h || o->views) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_RuntimeError, "Heap.__init__() called twice");
        return -1;
    }
    ms_heap *h = NULL;
    char err[1024] = "";
    PyThreadState *ts = PyEval_SaveThread(); /* the replay of a big trace takes seconds */
    int rc = ms_heap_open(&h, PyBytes_AS_STRING(path));
    if (rc != 0)
        snprintf(err, sizeof(err), "%s", ms_last_error());
    PyEval_RestoreThread(ts);
    if (rc != 0) {
        Py_DECREF(path);
        PyErr_SetString(Error, err[0] ? err : ms_strerror(rc));
        return -1;
    }
    o->h = h;
    o->closed = false;
    Py_XSETREF(o->path,
               PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(path), PyBytes_GET_SIZE(path)));
    Py_DECREF(path);
    return o->path ? 0 : -1;
}

static void heap_dealloc(PyObject *self)
{
    HeapObject *o = (HeapObject *)self;
    ms_heap_close(o->h); /* no view is left: each holds a reference */
    Py_XDECREF(o->path);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *heap_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    HeapObject *o = (HeapObject *)self;
    o->closed = true;
    if (o->views == 0) {
        ms_heap_close(o->h);
        o->h = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *heap_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    if (!heap_get((HeapObject *)self))
        return NULL;
    return Py_NewRef(self);
}

static PyObject *heap_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return heap_close(self, NULL);
}

/* A view from one of the library's whole-trace queries (peak, leaks). */
static PyObject *heap_query(PyObject *self, int (*query)(ms_heap *, ms_heap_view **))
{
    HeapObject *o = (HeapObject *)self;
    ms_heap *h = heap_get(o);
    ms_heap_view *v;
    int rc;
    if (!h)
        return NULL;
    if ((rc = query(h, &v)) != 0)
        return lib_error(rc);
    return view_new(o, v, false);
}

static PyObject *heap_peak(PyObject *self, PyObject *unused)
{
    (void)unused;
    return heap_query(self, ms_heap_peak);
}

static PyObject *heap_leaks(PyObject *self, PyObject *unused)
{
    (void)unused;
    return heap_query(self, ms_heap_leaks);
}

/* The moment named by t: ns from the trace start (an int), or the first marker labelled t (a
 * str). Returns 0, or -1 with an exception set. */
static int heap_moment(ms_heap *h, PyObject *t, uint64_t *ns)
{
    if (PyUnicode_Check(t)) {
        const char *label = PyUnicode_AsUTF8(t);
        int rc;
        if (!label)
            return -1;
        if ((rc = ms_heap_marker_time(h, label, ns)) != 0) {
            lib_error(rc);
            return -1;
        }
        return 0;
    }
    if (!PyLong_Check(t) || PyBool_Check(t)) {
        PyErr_Format(PyExc_TypeError,
                     "at() needs a time in ns (int) or a marker label (str), "
                     "not %s",
                     Py_TYPE(t)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(t);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "at(): the time must be >= 0 and < 2**64 ns");
        }
        return -1;
    }
    *ns = v;
    return 0;
}

static PyObject *heap_at(PyObject *self, PyObject *t)
{
    HeapObject *o = (HeapObject *)self;
    ms_heap *h = heap_get(o);
    ms_heap_view *v;
    uint64_t ns;
    int rc;
    if (!h || heap_moment(h, t, &ns) != 0)
        return NULL;
    if ((rc = ms_heap_at(h, ns, &v)) != 0)
        return lib_error(rc);
    return view_new(o, v, false);
}

static PyObject *heap_diff(PyObject *self, PyObject *args)
{
    HeapObject *o = (HeapObject *)self;
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "OO:diff", &a, &b))
        return NULL;
    ms_heap *h = heap_get(o);
    ViewObject *va, *vb;
    ms_heap_view *v;
    int rc;
    if (!h || !(va = view_arg(o, a, "diff")) || !(vb = view_arg(o, b, "diff")))
        return NULL;
    if (va->diff || vb->diff) {
        PyErr_SetString(PyExc_ValueError, "diff() compares two moments, not a diff");
        return NULL;
    }
    if ((rc = ms_heap_diff(h, va->v, vb->v, &v)) != 0)
        return lib_error(rc);
    return view_new(o, v, true);
}

/* One frame as a dict: ip, function, file, line, module, offset, inlined. */
static PyObject *frame_dict(const ms_heap_frame *f)
{
    return Py_BuildValue("{s:K,s:N,s:N,s:I,s:N,s:K,s:O}", "ip", (unsigned long long)f->ip,
                         "function", str_or_none(f->function), "file", str_or_none(f->file), "line",
                         (unsigned)f->line, "module", str_or_none(f->module), "offset",
                         (unsigned long long)f->offset, "inlined", f->inlined ? Py_True : Py_False);
}

static PyObject *frames_list(const ms_heap_frame *f, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *d = frame_dict(&f[i]);
        if (!d)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    return list;
}

/* A name from a table, or -1 with ValueError. */
static int pick(const char *fn, const char *what, PyObject *arg, const char *const *names,
                const int *values, int def)
{
    if (!arg || arg == Py_None)
        return def;
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return values[i];
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "%s(): unknown %s %R", fn, what, arg);
    return -1;
}

static const char *const by_names[] = {"site",   "function", "function_inclusive",
                                       "module", "thread",   NULL};
static const int by_values[] = {MS_HEAP_BY_SITE, MS_HEAP_BY_FUNCTION, MS_HEAP_BY_FUNCTION_INCL,
                                MS_HEAP_BY_MODULE, MS_HEAP_BY_THREAD};
static const char *const order_names[] = {"bytes", "count", NULL};
static const int order_values[] = {MS_HEAP_ORDER_BYTES, MS_HEAP_ORDER_COUNT};

static PyObject *heap_group(PyObject *self, PyObject *args, PyObject *kw)
{
    HeapObject *o = (HeapObject *)self;
    static char *kwlist[] = {"view", "by", "order", "top", NULL};
    PyObject *view, *pby = NULL, *porder = NULL;
    Py_ssize_t top = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOn:group", kwlist, &view, &pby, &porder, &top))
        return NULL;
    ms_heap *h = heap_get(o);
    ViewObject *vo;
    if (!h || !(vo = view_arg(o, view, "group")))
        return NULL;
    int by = pick("group", "by", pby, by_names, by_values, MS_HEAP_BY_SITE);
    int order = pick("group", "order", porder, order_names, order_values, MS_HEAP_ORDER_BYTES);
    if (by < 0 || order < 0)
        return NULL;
    if (top < 0) {
        PyErr_SetString(PyExc_ValueError, "group(): top must be >= 0 (0: every row)");
        return NULL;
    }
    ms_heap_rows *rows;
    int rc = ms_heap_group(h, vo->v, (ms_heap_by)by, (ms_heap_order)order, (size_t)top, &rows);
    if (rc != 0)
        return lib_error(rc);
    size_t n = ms_heap_rows_count(rows);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        const ms_heap_row *r = ms_heap_rows_at(rows, i);
        PyObject *tid =
            by == MS_HEAP_BY_THREAD ? PyLong_FromUnsignedLong(r->tid) : Py_NewRef(Py_None);
        PyObject *d = Py_BuildValue("{s:L,s:L,s:N,s:N,s:N}", "bytes", (long long)r->bytes, "count",
                                    (long long)r->count, "name", str_or_none(r->name), "tid", tid,
                                    "frames", frames_list(r->frames, r->nframes));
        if (!d)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    ms_heap_rows_free(rows);
    return list;
}

#define STACK_MAX 256 /* frames given per block */

struct blocks_ctx {
    ms_heap *h;
    const ms_heap_view *v;
    PyObject *list;   /* the rows */
    PyObject *stacks; /* stack id -> frames list, symbolized once per call */
    ms_heap_frame frames[STACK_MAX];
};

static int block_row(void *ctx, const ms_heap_block *b)
{
    struct blocks_ctx *c = ctx;
    PyObject *key = PyLong_FromUnsignedLong(b->stack);
    if (!key)
        return -1;
    PyObject *frames = PyDict_GetItemWithError(c->stacks, key);
    if (frames) {
        Py_INCREF(frames);
    } else if (!PyErr_Occurred()) {
        size_t n = ms_heap_stack(c->h, c->v, b->stack, c->frames, STACK_MAX);
        frames = frames_list(c->frames, n);
        if (frames && PyDict_SetItem(c->stacks, key, frames) != 0)
            Py_CLEAR(frames);
    }
    Py_DECREF(key);
    if (!frames)
        return -1;
    PyObject *d =
        Py_BuildValue("{s:K,s:K,s:K,s:I,s:I,s:N}", "id", (unsigned long long)b->id, "size",
                      (unsigned long long)b->size, "time_ns", (unsigned long long)b->time_ns, "tid",
                      (unsigned)b->tid, "stack", (unsigned)b->stack, "frames", frames);
    int rc = d ? PyList_Append(c->list, d) : -1;
    Py_XDECREF(d);
    return rc;
}

static PyObject *heap_blocks(PyObject *self, PyObject *view)
{
    HeapObject *o = (HeapObject *)self;
    ms_heap *h = heap_get(o);
    ViewObject *vo;
    if (!h || !(vo = view_arg(o, view, "blocks")))
        return NULL;
    if (vo->diff) {
        PyErr_SetString(PyExc_ValueError, "blocks() lists the blocks of a moment, not of a diff");
        return NULL;
    }
    struct blocks_ctx *c = PyMem_Malloc(sizeof(*c));
    if (!c)
        return PyErr_NoMemory();
    c->h = h;
    c->v = vo->v;
    c->list = PyList_New(0);
    c->stacks = PyDict_New();
    PyObject *list = NULL;
    if (c->list && c->stacks) {
        int rc = ms_heap_blocks(h, vo->v, block_row, c);
        if (rc == 0)
            list = Py_NewRef(c->list);
        else if (!PyErr_Occurred()) /* the library's failure, not a Python one */
            lib_error(rc);
    }
    Py_XDECREF(c->list);
    Py_XDECREF(c->stacks);
    PyMem_Free(c);
    return list;
}

/* The per-thread figures (ms_heap_threads) as a list of dicts. */
static PyObject *threads_list(ms_heap *h)
{
    size_t n;
    int rc = ms_heap_threads(h, &n);
    if (rc != 0)
        return lib_error(rc);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        const ms_heap_thread *t = ms_heap_thread_at(h, i);
        PyObject *d =
            t ? Py_BuildValue("{s:I,s:I,s:N,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "tid", (unsigned)t->tid,
                              "image", (unsigned)t->image, "name", str_or_none(t->name),
                              "allocations", (unsigned long long)t->allocations, "reallocations",
                              (unsigned long long)t->reallocations, "allocated_bytes",
                              (unsigned long long)t->allocated_bytes, "frees",
                              (unsigned long long)t->frees, "freed_bytes",
                              (unsigned long long)t->freed_bytes, "peak_bytes",
                              (unsigned long long)t->peak_bytes, "peak_time_ns",
                              (unsigned long long)t->peak_time_ns)
              : PyErr_Format(Error, "thread %zu of %zu is missing", i, n);
        if (!d)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    return list;
}

static PyObject *heap_threads(PyObject *self, PyObject *unused)
{
    (void)unused;
    ms_heap *h = heap_get((HeapObject *)self);
    return h ? threads_list(h) : NULL;
}

static PyObject *heap_totals(PyObject *self, PyObject *unused)
{
    (void)unused;
    ms_heap *h = heap_get((HeapObject *)self);
    if (!h)
        return NULL;
    ms_heap_totals t = {.size = sizeof(t)};
    int rc = ms_heap_totals_get(h, &t);
    if (rc != 0)
        return lib_error(rc);
    PyObject *d = Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:O,s:O,s:K,s:K,s:K,s:K,s:K,s:O}",
        "events", (unsigned long long)t.events, "allocations", (unsigned long long)t.allocations,
        "reallocations", (unsigned long long)t.reallocations, "frees", (unsigned long long)t.frees,
        "unmatched_frees", (unsigned long long)t.unmatched_frees, "temporaries",
        (unsigned long long)t.temporaries, "temporary_bytes", (unsigned long long)t.temporary_bytes,
        "peak_bytes", (unsigned long long)t.peak_bytes, "peak_time_ns",
        (unsigned long long)t.peak_time_ns, "leaked_bytes", (unsigned long long)t.leaked_bytes,
        "leaked_allocations", (unsigned long long)t.leaked_allocations, "duration_ns",
        (unsigned long long)t.duration_ns, "sampled", t.sampled ? Py_True : Py_False, "truncated",
        t.truncated ? Py_True : Py_False, "allocated_bytes", (unsigned long long)t.allocated_bytes,
        "freed_bytes", (unsigned long long)t.freed_bytes, "threads", (unsigned long long)t.threads,
        "lost_events", (unsigned long long)t.lost_events, "checkpoint_every",
        (unsigned long long)t.checkpoint_every, "complete", t.complete ? Py_True : Py_False);
    if (d) {
        PyObject *threads = threads_list(h);
        if (!threads || PyDict_SetItemString(d, "per_thread", threads) != 0)
            Py_CLEAR(d);
        Py_XDECREF(threads);
    }
    return d;
}

static PyObject *heap_get_warning(PyObject *self, void *c)
{
    (void)c;
    ms_heap *h = heap_get((HeapObject *)self);
    return h ? str_or_none(ms_heap_warning(h)) : NULL;
}

static PyObject *heap_get_path(PyObject *self, void *c)
{
    (void)c;
    PyObject *p = ((HeapObject *)self)->path;
    return Py_NewRef(p ? p : Py_None);
}

static PyObject *heap_get_closed(PyObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(((HeapObject *)self)->closed || !((HeapObject *)self)->h);
}

static PyMethodDef heap_methods[] = {
    {"peak", heap_peak, METH_NOARGS,
     "peak() -> HeapView\n\nThe heap when live bytes were highest, the first time."},
    {"at", heap_at, METH_O,
     "at(t) -> HeapView\n\nThe heap at t: ns from the trace start (int), or the first marker\n"
     "labelled t (str, MS_TRACE_MARKER). Error past the end or for an unknown marker."},
    {"leaks", heap_leaks, METH_NOARGS,
     "leaks() -> HeapView\n\nWhat was live at the end of the last image."},
    {"diff", heap_diff, METH_VARARGS,
     "diff(a, b) -> HeapView\n\nb - a: signed bytes and counts of the sites that changed."},
    {"group", (PyCFunction)(void (*)(void))heap_group, METH_VARARGS | METH_KEYWORDS,
     "group(view, by='site', order='bytes', top=0) -> list of dict\n\n"
     "The view grouped by 'site', 'function', 'function_inclusive', 'module' or 'thread',\n"
     "sorted by 'bytes' or 'count', the first top rows (0: all). Each row: bytes, count,\n"
     "name (function, module or thread name; None by site), tid (by thread; else None),\n"
     "frames (by site: the stack, innermost first, each {ip, function, file, line, module,\n"
     "offset, inlined}; else [])."},
    {"blocks", heap_blocks, METH_O,
     "blocks(view) -> list of dict\n\nEvery block live in view (not a diff), oldest first:\n"
     "id, size, time_ns, tid, stack (its id) and frames (as in group())."},
    {"totals", heap_totals, METH_NOARGS,
     "totals() -> dict\n\nThe trace's totals (ms_heap_totals) and per_thread: threads()."},
    {"threads", heap_threads, METH_NOARGS,
     "threads() -> list of dict\n\nEach thread's figures (tid, image, name, allocations,\n"
     "reallocations, allocated_bytes, frees, freed_bytes, peak_bytes, peak_time_ns), charged\n"
     "to the thread that allocated, in the order threads first allocated."},
    {"close", heap_close, METH_NOARGS,
     "close()\n\nFrees the engine (once its views are gone); later calls raise Error."},
    {"__enter__", heap_enter, METH_NOARGS, NULL},
    {"__exit__", heap_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef heap_getset[] = {
    {"warning", heap_get_warning, NULL, "why reading stopped early (a cut trace), or None", NULL},
    {"path", heap_get_path, NULL, "the trace's path", NULL},
    {"closed", heap_get_closed, NULL, "close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject HeapType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memsnap.Heap",
    .tp_basicsize = sizeof(HeapObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Heap(path)\n\nA trace written by `memsnap record`, read once and replayed by\n"
              "libmemsnap's heap engine (what `memsnap report` prints): the live heap at any\n"
              "moment as a HeapView, grouped with symbolized frames. Raises Error with the\n"
              "library's message for a missing or malformed trace.",
    .tp_new = PyType_GenericNew,
    .tp_init = heap_init,
    .tp_dealloc = heap_dealloc,
    .tp_methods = heap_methods,
    .tp_getset = heap_getset,
};

/* ---------------------------------------------------------------------------------------- */
/* analyze                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static PyObject *analyze_json(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"path", "top", NULL};
    PyObject *path;
    Py_ssize_t top = 10;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|n:_analyze_json", kwlist, PyUnicode_FSConverter,
                                     &path, &top))
        return NULL;
    if (top < 1) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_ValueError, "analyze(): top must be >= 1");
        return NULL;
    }
    char *text = NULL, *warn = NULL;
    size_t len = 0;
    char err[1024] = "";
    int rc;
    PyThreadState *ts = PyEval_SaveThread(); /* a big file takes a while */
    ms_timeline_options o = {.size = sizeof(o), .top = (size_t)top};
    ms_timeline_analysis *a = NULL;
    rc = ms_timeline_analyze_path(PyBytes_AS_STRING(path), &o, &a);
    if (rc == 0) {
        const char *w = ms_timeline_analysis_warning(a);
        warn = w ? strdup(w) : NULL;
        FILE *fp = open_memstream(&text, &len);
        rc = fp ? ms_timeline_write_json(a, fp) : MS_ENOMEM;
        if (fp && fclose(fp) != 0 && rc == 0)
            rc = MS_ENOMEM;
        ms_timeline_analysis_free(a);
    }
    if (rc != 0)
        snprintf(err, sizeof(err), "%s", ms_last_error());
    PyEval_RestoreThread(ts);
    Py_DECREF(path);
    PyObject *r = NULL;
    if (rc != 0)
        PyErr_SetString(rc == MS_ENOMEM && !err[0] ? PyExc_MemoryError : Error,
                        err[0] ? err : ms_strerror(rc));
    else
        r = Py_BuildValue("(s#N)", text, (Py_ssize_t)len, str_or_none(warn));
    free(text);
    free(warn);
    return r;
}

static PyMethodDef heap_module_methods[] = {
    {"_analyze_json", (PyCFunction)(void (*)(void))analyze_json, METH_VARARGS | METH_KEYWORDS,
     "_analyze_json(path, top=10) -> (json_text, warnings or None)\n\n"
     "What `memsnap analyze --format json` prints for path (monitor output or a trace)."},
    {NULL, NULL, 0, NULL},
};

int mspy_heap_init(PyObject *m, PyObject *error)
{
    Error = error;
    if (PyType_Ready(&HeapType) != 0 || PyType_Ready(&ViewType) != 0 ||
        PyModule_AddObjectRef(m, "Heap", (PyObject *)&HeapType) != 0 ||
        PyModule_AddObjectRef(m, "HeapView", (PyObject *)&ViewType) != 0)
        return -1;
    return PyModule_AddFunctions(m, heap_module_methods);
}
