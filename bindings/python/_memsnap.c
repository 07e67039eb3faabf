/*
 * _memsnap.c - the Python extension module memsnap._memsnap: libmemsnap's snapshots as Python
 * objects.
 *
 * One ms_session, opened at import and kept for the life of the interpreter, serves every
 * capture (a lock serialises it; a capture that reads GPUs releases the GIL while it waits).
 * A capture becomes a MemorySnapshot, a C object that keeps the library's sections with their
 * validity bits and whose attributes are expanded from the library's field lists: the process
 * fields under their JSON names (rss_bytes ...), the system and cgroup fields prefixed
 * (system_total_bytes, cgroup_current_bytes ...), None for every figure that was not read. For
 * this interpreter it adds Python's own figures: gc counts, tracemalloc's traced memory when it
 * traces, sys.getallocatedblocks() and the gc object count when asked, and PyTorch's CUDA
 * allocator figures (through a reader that memsnap/_runtime.py registers) when torch is
 * already imported. The library's sampler (ms_sampler_*) gives the peak RSS over the windows
 * that the profilers of memsnap/_profile.py open, iterates as memsnap.Sampler, and feeds a
 * FlightRecorder (libmemsnap's OOM flight recorder, ms_flight_*) for memsnap/_oom.py, which
 * writes a bundle when a CUDA out-of-memory error escapes. heap.c adds traces (Heap, analyze).
 * Only memsnap.h is included: the binding uses the public library alone.
 */
#include "mspy.h"

#include "memsnap.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB 1048576.0

/* Casts a METH_FASTCALL or METH_NOARGS function for a PyMethodDef. */
#define METH(fn) ((PyCFunction)(void (*)(void))(fn))

/* ---------------------------------------------------------------------------------------- */
/* Python's own figures, declared once like the library's metrics                           */
/* ---------------------------------------------------------------------------------------- */

/* X(name, unit, description) for each figure the binding adds for this interpreter. */
#define MSPY_FIELDS(X)                                                                             \
    X(python_current_bytes, MS_UNIT_BYTES,                                                         \
      "memory traced by tracemalloc now (None unless tracemalloc is tracing)")                     \
    X(python_peak_bytes, MS_UNIT_BYTES,                                                            \
      "tracemalloc's peak of traced memory (None unless tracemalloc is tracing)")                  \
    X(allocated_blocks, MS_UNIT_COUNT,                                                             \
      "sys.getallocatedblocks() (full=True or allocated_blocks=True)")                             \
    X(gc_objects, MS_UNIT_COUNT, "objects the gc tracks, len(gc.get_objects()) (gc_objects=True)") \
    X(torch_allocated_bytes, MS_UNIT_BYTES, "torch.cuda allocated_bytes.all.current")              \
    X(torch_reserved_bytes, MS_UNIT_BYTES, "torch.cuda reserved_bytes.all.current")                \
    X(torch_max_allocated_bytes, MS_UNIT_BYTES, "torch.cuda allocated_bytes.all.peak")             \
    X(torch_max_reserved_bytes, MS_UNIT_BYTES, "torch.cuda reserved_bytes.all.peak")               \
    X(torch_active_bytes, MS_UNIT_BYTES, "torch.cuda active_bytes.all.current")                    \
    X(torch_inactive_bytes, MS_UNIT_BYTES, "torch.cuda inactive_split_bytes.all.current")

#define PYF_INDEX(name, unit, desc) PYF_##name,
enum py_field { MSPY_FIELDS(PYF_INDEX) PYF__COUNT };
#define PYF_U64(name, unit, desc) uint64_t name;

/* Python's figures of one snapshot. */
struct py_figures {
    uint64_t valid; /* bit PYF_x set when x was read */
    MSPY_FIELDS(PYF_U64)
};

/* The torch reader returns these figures, in this order: a 6-tuple of int or None. */
#define TORCH_FIRST PYF_torch_allocated_bytes
#define TORCH_COUNT 6

/* ---------------------------------------------------------------------------------------- */
/* Module state (one interpreter: plain statics)                                            */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    PyObject ob_base;
    uint32_t captured;     /* MS_CAPTURE_* sections that were read */
    int32_t pid;           /* the process captured */
    bool self;             /* it is this interpreter: Python's figures apply */
    uint64_t timestamp_ns; /* CLOCK_REALTIME at capture, ns since the epoch */
    uint64_t monotonic_ns; /* CLOCK_MONOTONIC at capture, ns */
    ms_process_mem process;
    ms_system_mem system;
    ms_cgroup_mem cgroup;
    struct py_figures py;
    bool has_gc_counts; /* gc_counts[] was read (self only) */
    long gc_counts[3];  /* gc.get_count(), per generation */
    uint32_t gpu_count; /* entries of gpus */
    ms_gpu *gpus;       /* PyMem_Malloc'd copy of the captured GPUs, NULL when none */
    PyObject *label;    /* str, or NULL */
    PyObject *note;     /* str: why figures asked for are missing (no address space), or NULL */
    int64_t seq;        /* a Sampler's: the sample's number; -1: a capture */
    int fresh;          /* a Sampler's: 1 every figure read now, 0 statm's only; -1: a capture */
} SnapshotObject;

static ms_session *sess;           /* the module's session, opened at import */
static PyThread_type_lock sess_lk; /* serialises sess, dev_sess and scratch */
static ms_session *dev_sess;       /* the session of the last device= capture, or NULL */
static char dev_name[128];         /* its ms_options.device */
static ms_snapshot scratch;        /* what ms_capture() fills, under sess_lk */
static ms_snapshot da, db;         /* the two sides of a delta, under the GIL */
static PyObject *Error, *ProcessNotFoundError, *AccessDeniedError;
static PyObject *fn_gc_get_count, *fn_gc_get_objects, *fn_allocated_blocks;
static PyObject *fn_tm_is_tracing, *fn_tm_traced_memory;
static PyObject *torch_reader; /* set by memsnap/_runtime.py, NULL until then */
static PyObject *str_torch;
static PyTypeObject SnapshotType;

/* ---------------------------------------------------------------------------------------- */
/* Field tables                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* Where one figure lives: in a SnapshotObject, and in an ms_delta for the library's sections. */
struct field {
    const char *name;     /* attribute and dict key */
    const char *doc;      /* the attribute's docstring */
    ms_unit unit;         /* byte counts get a rounded _mb twin in dicts */
    size_t valid_off;     /* offset of the uint64_t validity mask in SnapshotObject */
    size_t value_off;     /* offset of the uint64_t value in SnapshotObject */
    int bit;              /* validity bit */
    ptrdiff_t dvalid_off; /* offset of the validity mask in ms_delta; -1: the binding's own */
    ptrdiff_t dvalue_off; /* offset of the int64_t difference in ms_delta */
};

/* Every figure, in attribute and dict order: the library's process, system and cgroup fields
 * (from ms_fields(), so a metric added to memsnap.h appears here with no change), then
 * Python's own. Built by fields_init(), for the life of the process. */
static struct field *fields;
static int nfields, f_py; /* entries of fields; the first of Python's own */

/* The library's sections a SnapshotObject holds, where, and the prefix of their attributes. */
static const struct {
    ms_section section;
    size_t obj_off; /* of the section struct in SnapshotObject */
    const char *prefix;
} obj_sections[] = {
    {MS_SECTION_PROCESS, offsetof(SnapshotObject, process), ""},
    {MS_SECTION_SYSTEM, offsetof(SnapshotObject, system), "system_"},
    {MS_SECTION_CGROUP, offsetof(SnapshotObject, cgroup), "cgroup_"},
};

#define PY_ROW(name, unit, desc)                                                                   \
    {                                                                                              \
        #name,                                                                                     \
        desc,                                                                                      \
        unit,                                                                                      \
        offsetof(SnapshotObject, py.valid),                                                        \
        offsetof(SnapshotObject, py.name),                                                         \
        PYF_##name,                                                                                \
        -1,                                                                                        \
        -1},
static const struct field py_fields[PYF__COUNT] = {MSPY_FIELDS(PY_ROW)};

/* The GPU fields (offsets in ms_gpu and ms_gpu_delta), from ms_fields(). */
static const ms_field_table *gpu_table;

/* Builds fields[] from the library's tables and Python's own; returns 0 or -1 (exception
 * set). */
static int fields_init(void)
{
    size_t n = PYF__COUNT;
    const ms_field_table *t[sizeof(obj_sections) / sizeof(obj_sections[0])];
    for (size_t s = 0; s < sizeof(obj_sections) / sizeof(obj_sections[0]); s++) {
        if (ms_fields(obj_sections[s].section, &t[s]) != 0) {
            PyErr_SetString(PyExc_ImportError, ms_last_error());
            return -1;
        }
        n += t[s]->count;
    }
    if (ms_fields(MS_SECTION_GPU, &gpu_table) != 0) {
        PyErr_SetString(PyExc_ImportError, ms_last_error());
        return -1;
    }
    fields = PyMem_Calloc(n, sizeof(*fields));
    if (!fields) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t s = 0; s < sizeof(obj_sections) / sizeof(obj_sections[0]); s++)
        for (size_t k = 0; k < t[s]->count; k++) {
            const ms_field_info *fi = &t[s]->fields[k];
            struct field *f = &fields[nfields++];
            size_t len = strlen(obj_sections[s].prefix) + strlen(fi->name) + 1;
            char *name = PyMem_Malloc(len);
            if (!name) {
                PyErr_NoMemory();
                return -1;
            }
            snprintf(name, len, "%s%s", obj_sections[s].prefix, fi->name);
            f->name = name;
            f->doc = fi->description;
            f->unit = fi->unit;
            f->valid_off = obj_sections[s].obj_off + t[s]->valid_offset;
            f->value_off = obj_sections[s].obj_off + fi->offset;
            f->bit = (int)fi->bit;
            f->dvalid_off = (ptrdiff_t)(t[s]->delta_offset + t[s]->delta_valid_offset);
            f->dvalue_off = (ptrdiff_t)(t[s]->delta_offset + fi->delta_offset);
        }
    f_py = nfields;
    for (int i = 0; i < PYF__COUNT; i++)
        fields[nfields++] = py_fields[i];
    return 0;
}

/* Interned dict keys: each field's name and, for byte counts, its _mb twin (else NULL). */
static PyObject **key_bytes, **key_mb;
static PyObject **gpu_key, **gpu_key_mb;

/* The _mb twin of a name ending in "_bytes" ("rss_bytes" -> "rss_mb"), interned, or NULL with
 * no exception when the name is not a byte count. */
static PyObject *mb_key_for(const char *name)
{
    size_t n = strlen(name);
    if (n < 6 || strcmp(name + n - 6, "_bytes") != 0)
        return NULL;
    char buf[96];
    snprintf(buf, sizeof(buf), "%.*s_mb", (int)(n - 6), name);
    return PyUnicode_FromString(buf);
}

/* Builds the interned key tables; returns 0 or -1. */
static int keys_init(void)
{
    key_bytes = PyMem_Calloc((size_t)nfields, sizeof(PyObject *));
    key_mb = PyMem_Calloc((size_t)nfields, sizeof(PyObject *));
    gpu_key = PyMem_Calloc(gpu_table->count, sizeof(PyObject *));
    gpu_key_mb = PyMem_Calloc(gpu_table->count, sizeof(PyObject *));
    if (!key_bytes || !key_mb || !gpu_key || !gpu_key_mb) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < nfields; i++) {
        key_bytes[i] = PyUnicode_InternFromString(fields[i].name);
        if (!key_bytes[i])
            return -1;
        if (fields[i].unit == MS_UNIT_BYTES) {
            key_mb[i] = mb_key_for(fields[i].name);
            if (!key_mb[i] && PyErr_Occurred())
                return -1;
            if (key_mb[i])
                PyUnicode_InternInPlace(&key_mb[i]);
        }
    }
    for (size_t i = 0; i < gpu_table->count; i++) {
        gpu_key[i] = PyUnicode_InternFromString(gpu_table->fields[i].name);
        gpu_key_mb[i] = mb_key_for(gpu_table->fields[i].name);
        if (!gpu_key[i] || !gpu_key_mb[i])
            return -1;
        PyUnicode_InternInPlace(&gpu_key_mb[i]);
    }
    return 0;
}

/* Reads one figure of o; true when it is valid. */
static bool field_get(const SnapshotObject *o, const struct field *f, uint64_t *v)
{
    uint64_t valid;
    memcpy(&valid, (const char *)o + f->valid_off, sizeof(valid));
    if (!((valid >> f->bit) & 1u))
        return false;
    memcpy(v, (const char *)o + f->value_off, sizeof(*v));
    return true;
}

/* Sets one of Python's figures of o and its validity bit. */
static void py_set(SnapshotObject *o, enum py_field i, uint64_t v)
{
    memcpy((char *)o + fields[f_py + i].value_off, &v, sizeof(v));
    o->py.valid |= UINT64_C(1) << i;
}

/* ---------------------------------------------------------------------------------------- */
/* Dict building                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* bytes / 2^20 rounded to 2 decimals exactly as Python's round(x, 2) rounds (both go through
 * dtoa's mode 3), as a new float. */
static PyObject *mb_float(double bytes)
{
    char *s = PyOS_double_to_string(bytes / MIB, 'f', 2, 0, NULL);
    if (!s)
        return NULL;
    double r = PyOS_string_to_double(s, NULL, NULL);
    PyMem_Free(s);
    if (r == -1.0 && PyErr_Occurred())
        return NULL;
    return PyFloat_FromDouble(r);
}

/* Stores key: value, consuming value (NULL after a failure is passed on); returns 0 or -1. */
static int put(PyObject *d, PyObject *key, PyObject *value)
{
    if (!value)
        return -1;
    int rc = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return rc;
}

static int put_str(PyObject *d, const char *key, PyObject *value)
{
    if (!value)
        return -1;
    int rc = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return rc;
}

/* Stores a figure under key (int or None) and, when mbkey is not NULL, its rounded _mb twin. */
static int put_figure(PyObject *d, PyObject *key, PyObject *mbkey, bool valid, int64_t v,
                      bool is_signed)
{
    PyObject *val;
    if (!valid)
        val = Py_NewRef(Py_None);
    else if (is_signed)
        val = PyLong_FromLongLong(v);
    else
        val = PyLong_FromUnsignedLongLong((uint64_t)v);
    if (put(d, key, val) != 0)
        return -1;
    if (!mbkey)
        return 0;
    if (!valid)
        return PyDict_SetItem(d, mbkey, Py_None);
    return put(d, mbkey, mb_float(is_signed ? (double)v : (double)(uint64_t)v));
}

/* A string that may be empty: None when it is. */
static PyObject *str_or_none(const char *s)
{
    if (!s[0])
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

/* One GPU as a dict with the JSON sink's keys; with_mb adds the _mb twins. */
static PyObject *gpu_dict(const ms_gpu *g, bool with_mb)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (put_str(d, "index", PyLong_FromUnsignedLong(g->index)) ||
        put_str(d, "backend", str_or_none(g->backend)) ||
        put_str(d, "name", str_or_none(g->name)) || put_str(d, "uuid", str_or_none(g->uuid)) ||
        put_str(d, "pci_bus_id", str_or_none(g->pci_bus_id)))
        goto fail;
    for (size_t i = 0; i < gpu_table->count; i++) {
        const ms_field_info *f = &gpu_table->fields[i];
        uint64_t v;
        memcpy(&v, (const char *)g + f->offset, sizeof(v));
        if (put_figure(d, gpu_key[i], with_mb ? gpu_key_mb[i] : NULL, ms_valid(g, f->bit),
                       (int64_t)v, false))
            goto fail;
    }
    if (put_str(d, "is_per_process", PyBool_FromLong(g->is_per_process)))
        goto fail;
    PyObject *procs = PyList_New(0);
    if (put_str(d, "processes", Py_XNewRef(procs)))
        goto fail_procs;
    for (uint32_t i = 0; i < g->process_count && i < MS_GPU_PROC_MAX; i++) {
        PyObject *p = Py_BuildValue("{s:i,s:K}", "pid", (int)g->processes[i].pid, "used_bytes",
                                    (unsigned long long)g->processes[i].used_bytes);
        if (!p || PyList_Append(procs, p) != 0) {
            Py_XDECREF(p);
            goto fail_procs;
        }
        Py_DECREF(p);
    }
    Py_DECREF(procs);
    return d;
fail_procs:
    Py_XDECREF(procs);
fail:
    Py_DECREF(d);
    return NULL;
}

/* The GPUs of o as a list of dicts, or None when the snapshot did not read GPUs. */
static PyObject *gpu_list(const SnapshotObject *o, bool with_mb)
{
    if (!(o->captured & MS_CAPTURE_GPU))
        Py_RETURN_NONE;
    PyObject *list = PyList_New(o->gpu_count);
    if (!list)
        return NULL;
    for (uint32_t i = 0; i < o->gpu_count; i++) {
        PyObject *g = gpu_dict(&o->gpus[i], with_mb);
        if (!g) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, g);
    }
    return list;
}

/* ---------------------------------------------------------------------------------------- */
/* Argument parsing                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Matches vectorcall arguments to names (the first npos may be positional) and fills vals
 * with borrowed references, NULL for those not given. Returns 0, or -1 with TypeError set. */
static int parse_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      const char *const *names, int n, int npos, PyObject **vals)
{
    for (int i = 0; i < n; i++)
        vals[i] = NULL;
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)", fn,
                     npos, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        vals[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        const char *key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
        if (!key)
            return -1;
        int j = 0;
        while (j < n && strcmp(key, names[j]) != 0)
            j++;
        if (j == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%s'", fn, key);
            return -1;
        }
        if (vals[j]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn, key);
            return -1;
        }
        vals[j] = args[nargs + k];
    }
    return 0;
}

/* A flag argument: a bool (or an int); def when not given. Returns 0/1, or -1 with TypeError. */
static int flag_arg(const char *fn, const char *name, PyObject *v, int def)
{
    if (!v)
        return def;
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must be a bool, not %s", fn, name,
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    return PyObject_IsTrue(v);
}

/* ---------------------------------------------------------------------------------------- */
/* Capture                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Takes sess_lk: without blocking when it is free, else with the GIL released. */
static void sess_lock(void)
{
    if (PyThread_acquire_lock(sess_lk, NOWAIT_LOCK))
        return;
    PyThreadState *ts = PyEval_SaveThread();
    PyThread_acquire_lock(sess_lk, WAIT_LOCK);
    PyEval_RestoreThread(ts);
}

/* Raises the exception for a failed capture of pid: ProcessNotFoundError (also a
 * ProcessLookupError), AccessDeniedError (also a PermissionError), MemoryError, or Error. */
static void raise_capture_error(int rc, int pid, const char *detail)
{
    PyObject *type = Error;
    if (rc == MS_ESRCH)
        type = ProcessNotFoundError;
    else if (rc == MS_EACCES)
        type = AccessDeniedError;
    else if (rc == MS_ENOMEM)
        type = PyExc_MemoryError;
    PyErr_Format(type, "capture of pid %d failed: %s", pid, detail[0] ? detail : ms_strerror(rc));
}

/* The session for captures of device (NULL: the module's), under sess_lk: a capture of one
 * GPU needs a session opened with ms_options.device; the last one is kept for the next
 * capture of the same device. NULL when it cannot be opened (ms_last_error() says why). */
static ms_session *device_session(const char *device)
{
    if (!device)
        return sess;
    if (dev_sess && strcmp(dev_name, device) == 0)
        return dev_sess;
    ms_session_close(dev_sess);
    dev_sess = NULL;
    ms_options o = {.size = sizeof(o), .device = device};
    if (strlen(device) >= sizeof(dev_name)) {
        o.device = ""; /* too long to keep: the library says why */
        ms_session_open(&dev_sess, &o);
        return NULL;
    }
    if (ms_session_open(&dev_sess, &o) != 0)
        return NULL;
    snprintf(dev_name, sizeof(dev_name), "%s", device);
    return dev_sess;
}

/* ms_capture() into scratch under sess_lk; a PSS capture of a task without an address space
 * (a kernel thread: MS_ENOTSUP) is taken again without PSS, and note (len bytes) says why.
 * The reason of a failure goes to detail (dlen bytes). */
static int capture_scratch(const char *device, pid_t pid, unsigned what, char *note, size_t len,
                           char *detail, size_t dlen)
{
    note[0] = '\0';
    ms_session *ss = device_session(device);
    if (!ss) {
        snprintf(detail, dlen, "%s", ms_last_error());
        return MS_EINVAL;
    }
    int rc = ms_capture(ss, pid, what, &scratch);
    if (rc == MS_ENOTSUP && (what & MS_CAPTURE_PSS)) {
        snprintf(note, len, "%s", ms_session_error(ss));
        rc = ms_capture(ss, pid, what & ~(unsigned)MS_CAPTURE_PSS, &scratch);
        if (rc)
            note[0] = '\0';
    }
    if (rc)
        snprintf(detail, dlen, "%s", ms_session_error(ss));
    return rc;
}

/* A new MemorySnapshot holding src's figures (no Python figures, no label); NULL with an
 * exception set. */
static SnapshotObject *snapshot_from(const ms_snapshot *src)
{
    SnapshotObject *o = PyObject_New(SnapshotObject, &SnapshotType);
    if (!o)
        return NULL;
    o->gpus = NULL;
    o->gpu_count = 0;
    o->label = NULL;
    o->note = NULL;
    o->py.valid = 0;
    o->has_gc_counts = false;
    o->self = false;
    o->seq = -1;
    o->fresh = -1;
    o->captured = src->captured;
    o->pid = src->pid;
    o->timestamp_ns = src->timestamp_ns;
    o->monotonic_ns = src->monotonic_ns;
    o->process = src->process;
    o->system = src->system;
    o->cgroup = src->cgroup;
    uint32_t n = src->gpu_count < MS_GPU_MAX ? src->gpu_count : MS_GPU_MAX;
    if (n > 0) {
        o->gpus = PyMem_Malloc(n * sizeof(ms_gpu));
        if (!o->gpus) {
            Py_DECREF(o);
            return (SnapshotObject *)PyErr_NoMemory();
        }
        memcpy(o->gpus, src->gpus, n * sizeof(ms_gpu));
        o->gpu_count = n;
    }
    return o;
}

/* Captures `what` of pid (0: this process) into a new MemorySnapshot, without Python's own
 * figures, through the session of device (NULL: the module's); NULL with an exception set on
 * failure. */
static SnapshotObject *snapshot_capture(pid_t pid, unsigned what, const char *device)
{
    int rc;
    char note[512], detail[512] = "";
    if (what & MS_CAPTURE_GPU) { /* the backends may take milliseconds: let others run */
        PyThreadState *ts = PyEval_SaveThread();
        PyThread_acquire_lock(sess_lk, WAIT_LOCK);
        rc = capture_scratch(device, pid, what, note, sizeof(note), detail, sizeof(detail));
        PyEval_RestoreThread(ts);
    } else {
        sess_lock();
        rc = capture_scratch(device, pid, what, note, sizeof(note), detail, sizeof(detail));
    }
    if (rc != 0) {
        int who = pid ? (int)pid : (int)getpid();
        PyThread_release_lock(sess_lk);
        raise_capture_error(rc, who, detail);
        return NULL;
    }
    SnapshotObject *o = snapshot_from(&scratch);
    PyThread_release_lock(sess_lk);
    if (o && note[0] &&
        !(o->note = PyUnicode_DecodeUTF8(note, (Py_ssize_t)strlen(note), "replace")))
        Py_CLEAR(o);
    return o;
}

/* Calls fn() and returns its result as a non-negative integer; -1 with an exception set. */
static int call_u64(PyObject *fn, uint64_t *out)
{
    PyObject *r = PyObject_CallNoArgs(fn);
    if (!r)
        return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(r);
    Py_DECREF(r);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* Reads torch's allocator figures through the registered reader when torch is imported. */
static int torch_figures(SnapshotObject *o)
{
    if (!torch_reader)
        return 0;
    PyObject *torch = PyDict_GetItemWithError(PyImport_GetModuleDict(), str_torch);
    if (!torch)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *r = PyObject_CallOneArg(torch_reader, torch);
    if (!r)
        return -1;
    if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == TORCH_COUNT) {
        for (int i = 0; i < TORCH_COUNT; i++) {
            PyObject *v = PyTuple_GET_ITEM(r, i);
            if (!PyLong_Check(v))
                continue;
            unsigned long long x = PyLong_AsUnsignedLongLong(v);
            if (x == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear(); /* negative or too large: not a figure */
                continue;
            }
            py_set(o, (enum py_field)(TORCH_FIRST + i), x);
        }
    } else if (r != Py_None) {
        PyErr_Format(PyExc_TypeError, "torch reader returned %s, not a %d-tuple or None",
                     Py_TYPE(r)->tp_name, TORCH_COUNT);
        Py_DECREF(r);
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Adds this interpreter's own figures to o; returns 0 or -1. The costly ones (allocated
 * blocks walks every pool, gc objects every object) only when asked. */
static int python_figures(SnapshotObject *o, bool blocks, bool objects, bool torch)
{
    PyObject *counts = PyObject_CallNoArgs(fn_gc_get_count);
    if (!counts)
        return -1;
    if (PyTuple_Check(counts) && PyTuple_GET_SIZE(counts) == 3) {
        for (int i = 0; i < 3; i++)
            o->gc_counts[i] = PyLong_AsLong(PyTuple_GET_ITEM(counts, i));
        o->has_gc_counts = !PyErr_Occurred();
    }
    Py_DECREF(counts);
    if (PyErr_Occurred())
        return -1;

    PyObject *tracing = PyObject_CallNoArgs(fn_tm_is_tracing);
    if (!tracing)
        return -1;
    int on = PyObject_IsTrue(tracing);
    Py_DECREF(tracing);
    if (on < 0)
        return -1;
    if (on) {
        PyObject *tm = PyObject_CallNoArgs(fn_tm_traced_memory);
        unsigned long long cur, peak;
        if (!tm || !PyArg_ParseTuple(tm, "KK", &cur, &peak)) {
            Py_XDECREF(tm);
            return -1;
        }
        Py_DECREF(tm);
        py_set(o, PYF_python_current_bytes, cur);
        py_set(o, PYF_python_peak_bytes, peak);
    }
    if (blocks) {
        uint64_t n;
        if (call_u64(fn_allocated_blocks, &n) != 0)
            return -1;
        py_set(o, PYF_allocated_blocks, n);
    }
    if (objects) {
        PyObject *all = PyObject_CallNoArgs(fn_gc_get_objects);
        if (!all)
            return -1;
        Py_ssize_t n = PyObject_Length(all);
        Py_DECREF(all);
        if (n < 0)
            return -1;
        py_set(o, PYF_gc_objects, (uint64_t)n);
    }
    return torch ? torch_figures(o) : 0;
}

PyDoc_STRVAR(
    capture_doc,
    "capture_memory_snapshot(include_gpu=True, pid=None, full=False, *, gc_objects=False,\n"
    "                        allocated_blocks=False, label=None, device=None)\n"
    "    -> MemorySnapshot\n\n"
    "Snapshot of a process (default: this one) through the module's memsnap session.\n"
    "The default reads /proc/PID/statm (what psutil's memory_info() reads) and, for this\n"
    "interpreter, gc counts and tracemalloc's figures when it traces; full=True adds\n"
    "status, stat, smaps_rollup (PSS, USS), the system's memory, the memory cgroup and\n"
    "sys.getallocatedblocks(). include_gpu reads every GPU (gpus: a list, empty when\n"
    "none) and, when torch is already imported, its CUDA allocator figures.\n"
    "gc_objects=True counts the objects the gc tracks (walks all of them). A figure\n"
    "that was not read is None. Raises ProcessNotFoundError for a missing pid. A task\n"
    "without an address space (a kernel thread) gives RSS 0 and, with full=True, PSS\n"
    "and USS None, with the reason in the snapshot's note. device (an index as\n"
    "`memsnap gpu ps` lists them, a UUID or a PCI bus id) reads only that GPU; an\n"
    "unknown one raises Error naming the GPUs there are.");

static PyObject *capture_memory_snapshot(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                                         PyObject *kwnames)
{
    static const char *const names[] = {"include_gpu",      "pid",   "full",   "gc_objects",
                                        "allocated_blocks", "label", "device", NULL};
    static const char fn[] = "capture_memory_snapshot";
    PyObject *v[7];
    (void)mod;
    if (parse_args(fn, args, nargs, kwnames, names, 7, 3, v) != 0)
        return NULL;
    int gpu = flag_arg(fn, "include_gpu", v[0], 1);
    int full = flag_arg(fn, "full", v[2], 0);
    int objects = flag_arg(fn, "gc_objects", v[3], 0);
    int blocks = flag_arg(fn, "allocated_blocks", v[4], 0);
    if (gpu < 0 || full < 0 || objects < 0 || blocks < 0)
        return NULL;
    pid_t pid = 0;
    if (v[1] && v[1] != Py_None) {
        if (!PyLong_Check(v[1]) || PyBool_Check(v[1])) {
            PyErr_Format(PyExc_TypeError, "%s(): pid must be an int or None, not %s", fn,
                         Py_TYPE(v[1])->tp_name);
            return NULL;
        }
        int overflow;
        long long p = PyLong_AsLongLongAndOverflow(v[1], &overflow);
        if (p == -1 && PyErr_Occurred())
            return NULL;
        if (overflow || p < 1 || p > INT32_MAX) {
            PyObject *r = PyObject_Repr(v[1]);
            PyErr_Format(PyExc_ValueError, "%s(): pid must be between 1 and %d, not %U", fn,
                         INT32_MAX, r);
            Py_XDECREF(r);
            return NULL;
        }
        pid = (pid_t)p;
    }
    if (v[5] && v[5] != Py_None && !PyUnicode_Check(v[5])) {
        PyErr_Format(PyExc_TypeError, "%s(): label must be a str or None, not %s", fn,
                     Py_TYPE(v[5])->tp_name);
        return NULL;
    }

    /* device: the one GPU to read, as ms_options.device takes it (its index, UUID or PCI bus
     * id); an int is an index */
    char devbuf[32];
    const char *device = NULL;
    if (v[6] && v[6] != Py_None) {
        if (PyLong_Check(v[6]) && !PyBool_Check(v[6])) {
            long long d = PyLong_AsLongLong(v[6]);
            if (d == -1 && PyErr_Occurred())
                return NULL;
            snprintf(devbuf, sizeof(devbuf), "%lld", d);
            device = devbuf;
        } else if (PyUnicode_Check(v[6])) {
            if (!(device = PyUnicode_AsUTF8(v[6])))
                return NULL;
        } else {
            PyErr_Format(PyExc_TypeError, "%s(): device must be an int, a str or None, not %s", fn,
                         Py_TYPE(v[6])->tp_name);
            return NULL;
        }
        if (!gpu) {
            PyErr_Format(PyExc_ValueError, "%s(): device= picks a GPU: not with include_gpu=False",
                         fn);
            return NULL;
        }
    }

    unsigned what = MS_CAPTURE_BASIC;
    if (full)
        what |= MS_CAPTURE_PROCESS | MS_CAPTURE_PSS | MS_CAPTURE_SYSTEM | MS_CAPTURE_CGROUP;
    if (gpu)
        what |= MS_CAPTURE_GPU;
    SnapshotObject *o = snapshot_capture(pid, what, device);
    if (!o)
        return NULL;
    o->self = pid == 0 || pid == getpid();
    if (v[5] && v[5] != Py_None)
        o->label = Py_NewRef(v[5]);
    if (o->self && python_figures(o, full || blocks, objects, gpu) != 0) {
        Py_DECREF(o);
        return NULL;
    }
    return (PyObject *)o;
}

/* ---------------------------------------------------------------------------------------- */
/* MemorySnapshot methods                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void snapshot_dealloc(PyObject *self)
{
    SnapshotObject *o = (SnapshotObject *)self;
    PyMem_Free(o->gpus);
    Py_XDECREF(o->label);
    Py_XDECREF(o->note);
    Py_TYPE(self)->tp_free(self);
}

/* The getter of every figure: the closure is its row in fields[]. */
static PyObject *snapshot_get_field(PyObject *self, void *closure)
{
    uint64_t v;
    if (!field_get((const SnapshotObject *)self, closure, &v))
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *snapshot_get_gpus(PyObject *self, void *closure)
{
    (void)closure;
    return gpu_list((const SnapshotObject *)self, false);
}

static PyObject *snapshot_get_gc_counts(PyObject *self, void *closure)
{
    const SnapshotObject *o = (const SnapshotObject *)self;
    (void)closure;
    if (!o->has_gc_counts)
        Py_RETURN_NONE;
    return Py_BuildValue("(lll)", o->gc_counts[0], o->gc_counts[1], o->gc_counts[2]);
}

static PyObject *snapshot_get_cgroup_version(PyObject *self, void *closure)
{
    const SnapshotObject *o = (const SnapshotObject *)self;
    (void)closure;
    if (o->cgroup.version == MS_CGROUP_NONE)
        Py_RETURN_NONE;
    return PyLong_FromLong((long)o->cgroup.version);
}

static PyObject *snapshot_get_cgroup_path(PyObject *self, void *closure)
{
    const SnapshotObject *o = (const SnapshotObject *)self;
    (void)closure;
    if (o->cgroup.version == MS_CGROUP_NONE)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(o->cgroup.path, (Py_ssize_t)strlen(o->cgroup.path), "replace");
}

static PyObject *snapshot_get_cgroup_unlimited(PyObject *self, void *closure)
{
    const SnapshotObject *o = (const SnapshotObject *)self;
    (void)closure;
    if (o->cgroup.version == MS_CGROUP_NONE)
        Py_RETURN_NONE;
    return PyBool_FromLong(o->cgroup.unlimited);
}

static PyObject *snapshot_get_label(PyObject *self, void *closure)
{
    const SnapshotObject *o = (const SnapshotObject *)self;
    (void)closure;
    return Py_NewRef(o->label ? o->label : Py_None);
}

static PyObject *snapshot_get_pid(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(((const SnapshotObject *)self)->pid);
}

static PyObject *snapshot_get_timestamp_ns(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(((const SnapshotObject *)self)->timestamp_ns);
}

static PyObject *snapshot_get_monotonic_ns(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(((const SnapshotObject *)self)->monotonic_ns);
}

static PyObject *snapshot_get_timestamp(PyObject *self, void *closure)
{
    (void)closure;
    return PyFloat_FromDouble((double)((const SnapshotObject *)self)->timestamp_ns / 1e9);
}

static PyObject *snapshot_get_note(PyObject *self, void *closure)
{
    (void)closure;
    PyObject *note = ((const SnapshotObject *)self)->note;
    if (!note)
        Py_RETURN_NONE;
    return Py_NewRef(note);
}

static PyObject *snapshot_get_seq(PyObject *self, void *closure)
{
    (void)closure;
    int64_t seq = ((const SnapshotObject *)self)->seq;
    if (seq < 0)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(seq);
}

static PyObject *snapshot_get_fresh(PyObject *self, void *closure)
{
    (void)closure;
    int fresh = ((const SnapshotObject *)self)->fresh;
    if (fresh < 0)
        Py_RETURN_NONE;
    return PyBool_FromLong(fresh);
}

static PyObject *snapshot_get_full(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong((((const SnapshotObject *)self)->captured & MS_CAPTURE_PROCESS) != 0);
}

/* The scalar fields of o (pid, label, times, cgroup's version/path/limit, gc counts) into d. */
static int put_header(PyObject *d, PyObject *self)
{
    static const char *const keys[] = {
        "pid",  "label",          "timestamp_ns", "timestamp",        "monotonic_ns",
        "full", "cgroup_version", "cgroup_path",  "cgroup_unlimited", "gc_counts"};
    static PyObject *(*const get[])(PyObject *, void *) = {snapshot_get_pid,
                                                           snapshot_get_label,
                                                           snapshot_get_timestamp_ns,
                                                           snapshot_get_timestamp,
                                                           snapshot_get_monotonic_ns,
                                                           snapshot_get_full,
                                                           snapshot_get_cgroup_version,
                                                           snapshot_get_cgroup_path,
                                                           snapshot_get_cgroup_unlimited,
                                                           snapshot_get_gc_counts};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (put_str(d, keys[i], get[i](self, NULL)) != 0)
            return -1;
    return 0;
}

static PyObject *snapshot_to_dict(PyObject *self, PyObject *unused)
{
    const SnapshotObject *o = (const SnapshotObject *)self;
    (void)unused;
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (put_header(d, self) != 0)
        goto fail;
    for (int i = 0; i < nfields; i++) {
        uint64_t v = 0;
        bool valid = field_get(o, &fields[i], &v);
        if (put_figure(d, key_bytes[i], key_mb[i], valid, (int64_t)v, false) != 0)
            goto fail;
    }
    if (put_str(d, "gpus", gpu_list(o, true)) != 0)
        goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* Copies what ms_delta_compute() reads of o into the scratch snapshot s. */
static void snapshot_fill(ms_snapshot *s, const SnapshotObject *o)
{
    s->captured = o->captured;
    s->pid = o->pid;
    s->timestamp_ns = o->timestamp_ns;
    s->monotonic_ns = o->monotonic_ns;
    s->process = o->process;
    s->system = o->system;
    s->cgroup = o->cgroup;
    s->gpu_count = o->gpu_count;
    if (o->gpu_count)
        memcpy(s->gpus, o->gpus, o->gpu_count * sizeof(ms_gpu));
}

/* The GPUs of a delta as a list of dicts, or None when either side did not read GPUs. */
static PyObject *gpu_delta_list(const ms_delta *dl, bool captured)
{
    if (!captured)
        Py_RETURN_NONE;
    PyObject *list = PyList_New(0);
    for (uint32_t i = 0; list && i < dl->gpu_count; i++) {
        const ms_gpu_delta *g = &dl->gpus[i];
        PyObject *d = PyDict_New();
        if (!d || put_str(d, "index", PyLong_FromUnsignedLong(g->index)) != 0 ||
            put_str(d, "is_per_process", PyBool_FromLong(g->is_per_process)) != 0)
            goto fail;
        for (size_t k = 0; k < gpu_table->count; k++) {
            const ms_field_info *f = &gpu_table->fields[k];
            int64_t v;
            memcpy(&v, (const char *)g + f->delta_offset, sizeof(v));
            if (put_figure(d, gpu_key[k], gpu_key_mb[k], ms_valid(g, f->bit), v, true) != 0)
                goto fail;
        }
        if (PyList_Append(list, d) != 0)
            goto fail;
        Py_DECREF(d);
        continue;
    fail:
        Py_XDECREF(d);
        Py_CLEAR(list);
    }
    return list;
}

PyDoc_STRVAR(delta_doc, "delta(other) -> dict\n\n"
                        "self - other for every figure both snapshots have (None otherwise):\n"
                        "after.delta(before). Byte counts come with a rounded _mb twin;\n"
                        "elapsed_ns is the monotonic time between them; gpus lists the GPUs\n"
                        "present in both (None unless both read GPUs).");

static PyObject *snapshot_delta(PyObject *self, PyObject *other)
{
    if (!PyObject_TypeCheck(other, &SnapshotType)) {
        PyErr_Format(PyExc_TypeError, "delta() needs a MemorySnapshot, not %s",
                     Py_TYPE(other)->tp_name);
        return NULL;
    }
    const SnapshotObject *after = (const SnapshotObject *)self;
    const SnapshotObject *before = (const SnapshotObject *)other;
    snapshot_fill(&da, before);
    snapshot_fill(&db, after);
    ms_delta dl;
    dl.size = sizeof(dl);
    ms_delta_compute(&da, &db, &dl);

    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (put_str(d, "elapsed_ns", PyLong_FromLongLong(dl.elapsed_ns)) != 0 ||
        put_str(d, "elapsed_s", PyFloat_FromDouble((double)dl.elapsed_ns / 1e9)) != 0 ||
        put_str(d, "label", snapshot_get_label(self, NULL)) != 0 ||
        put_str(d, "before_label", snapshot_get_label(other, NULL)) != 0)
        goto fail;
    for (int i = 0; i < nfields; i++) {
        const struct field *f = &fields[i];
        bool valid;
        int64_t v = 0;
        if (f->dvalid_off >= 0) {
            uint64_t mask;
            memcpy(&mask, (const char *)&dl + f->dvalid_off, sizeof(mask));
            valid = (mask >> f->bit) & 1u;
            memcpy(&v, (const char *)&dl + f->dvalue_off, sizeof(v));
        } else {
            uint64_t a = 0, b = 0;
            valid = field_get(before, f, &a) && field_get(after, f, &b);
            v = (int64_t)(b - a);
        }
        if (put_figure(d, key_bytes[i], key_mb[i], valid, v, true) != 0)
            goto fail;
    }
    if (put_str(d, "gpus",
                gpu_delta_list(&dl, (before->captured & after->captured & MS_CAPTURE_GPU) != 0)))
        goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* The two sides of self (after) and other (before) in da and db, labels included, for the
 * library's reports; false with TypeError when other is not a snapshot. */
static bool report_sides(PyObject *self, PyObject *other, const char *method)
{
    if (!PyObject_TypeCheck(other, &SnapshotType)) {
        PyErr_Format(PyExc_TypeError, "%s() needs a MemorySnapshot, not %s", method,
                     Py_TYPE(other)->tp_name);
        return false;
    }
    const SnapshotObject *sides[2] = {(const SnapshotObject *)other, (const SnapshotObject *)self};
    ms_snapshot *snaps[2] = {&da, &db};
    for (int i = 0; i < 2; i++) {
        snapshot_fill(snaps[i], sides[i]);
        const char *label = sides[i]->label ? PyUnicode_AsUTF8(sides[i]->label) : "";
        if (!label)
            return false;
        ms_snapshot_set_label(snaps[i], label);
    }
    return true;
}

/* One of the library's reports of other -> self as a str, without the final newline. */
static PyObject *report_str(PyObject *self, PyObject *other, const char *method, bool table)
{
    if (!report_sides(self, other, method))
        return NULL;
    int (*fn)(char *, size_t, const ms_snapshot *, const ms_snapshot *) =
        table ? ms_report_table_buf : ms_report_line_buf;
    char small[512], *buf = small;
    int n = fn(small, sizeof(small), &da, &db);
    if (n >= (int)sizeof(small)) { /* the whole text did not fit: once more, to size */
        buf = PyMem_Malloc((size_t)n + 1);
        if (!buf)
            return PyErr_NoMemory();
        n = fn(buf, (size_t)n + 1, &da, &db);
    }
    PyObject *r = NULL;
    if (n < 0)
        PyErr_Format(Error, "%s: %s", method, ms_last_error());
    else {
        if (n > 0 && buf[n - 1] == '\n')
            n--; /* a str: print() gives the library's text */
        r = PyUnicode_DecodeUTF8(buf, n, "replace");
    }
    if (buf != small)
        PyMem_Free(buf);
    return r;
}

PyDoc_STRVAR(format_delta_doc,
             "format_delta(other) -> str\n\n"
             "The one-line delta from other to self, as `memsnap diff` prints it:\n"
             "'[label] RSS 1.00 MiB -> 3.00 MiB (+2.00 MiB) | ... in 1.500 s'.");

static PyObject *snapshot_format_delta(PyObject *self, PyObject *other)
{
    return report_str(self, other, "format_delta", false);
}

PyDoc_STRVAR(format_before_after_doc,
             "format_before_after(other) -> str\n\n"
             "The before/after table of every figure read in either snapshot (other before,\n"
             "self after), one line per figure, as `memsnap diff` prints it (without the\n"
             "last newline).");

static PyObject *snapshot_format_before_after(PyObject *self, PyObject *other)
{
    return report_str(self, other, "format_before_after", true);
}

static PyObject *snapshot_repr(PyObject *self)
{
    const SnapshotObject *o = (const SnapshotObject *)self;
    char rss[32] = "?";
    if (ms_valid(&o->process, MS_PF_rss_bytes))
        ms_format_bytes(rss, sizeof(rss), o->process.rss_bytes);
    char gpus[32] = "";
    if (o->captured & MS_CAPTURE_GPU)
        snprintf(gpus, sizeof(gpus), " gpus=%u", (unsigned)o->gpu_count);
    if (o->label)
        return PyUnicode_FromFormat("<memsnap.MemorySnapshot pid=%d label=%R rss=%s%s>",
                                    (int)o->pid, o->label, rss, gpus);
    return PyUnicode_FromFormat("<memsnap.MemorySnapshot pid=%d rss=%s%s>", (int)o->pid, rss, gpus);
}

static PyMethodDef snapshot_methods[] = {
    {"delta", snapshot_delta, METH_O, delta_doc},
    {"format_delta", snapshot_format_delta, METH_O, format_delta_doc},
    {"format_before_after", snapshot_format_before_after, METH_O, format_before_after_doc},
    {"to_dict", snapshot_to_dict, METH_NOARGS,
     "to_dict() -> dict\n\nEvery field (None when not read), byte counts with a _mb twin in MiB\n"
     "rounded to 2 decimals, gpus as a list of dicts (None when GPUs were not read)."},
    {NULL, NULL, 0, NULL},
};

/* The attributes other than the figures; getset_init() puts one per figure before them. */
static PyGetSetDef snapshot_getset_rest[] = {
    {"pid", snapshot_get_pid, NULL, "the process captured", NULL},
    {"label", snapshot_get_label, NULL, "the label given to capture_memory_snapshot, or None",
     NULL},
    {"timestamp_ns", snapshot_get_timestamp_ns, NULL, "CLOCK_REALTIME at capture, ns", NULL},
    {"timestamp", snapshot_get_timestamp, NULL, "CLOCK_REALTIME at capture, seconds", NULL},
    {"monotonic_ns", snapshot_get_monotonic_ns, NULL, "CLOCK_MONOTONIC at capture, ns", NULL},
    {"full", snapshot_get_full, NULL, "the snapshot is a full capture", NULL},
    {"seq", snapshot_get_seq, NULL, "a Sampler's snapshot: its number (0, 1, ...); else None",
     NULL},
    {"fresh", snapshot_get_fresh, NULL,
     "a Sampler's snapshot: True when every figure was read by this sample, False when only "
     "statm's were (the others are the last full sample's); else None",
     NULL},
    {"note", snapshot_get_note, NULL,
     "why figures asked for are None (a kernel thread has no address space: no PSS, USS), or "
     "None",
     NULL},
    {"cgroup_version", snapshot_get_cgroup_version, NULL, "1, 2, or None (no memory cgroup)", NULL},
    {"cgroup_path", snapshot_get_cgroup_path, NULL, "path of the memory cgroup, or None", NULL},
    {"cgroup_unlimited", snapshot_get_cgroup_unlimited, NULL,
     "the memory cgroup has no limit (None when not read)", NULL},
    {"gc_counts", snapshot_get_gc_counts, NULL,
     "gc.get_count() per generation, (g0, g1, g2); None for another process", NULL},
    {"gpus", snapshot_get_gpus, NULL,
     "list of dicts, one per GPU (empty when none); None when GPUs were not read", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SnapshotType = {
    .ob_base = {PyObject_HEAD_INIT(NULL) 0},
    .tp_name = "memsnap.MemorySnapshot",
    .tp_basicsize = sizeof(SnapshotObject),
    .tp_dealloc = snapshot_dealloc,
    .tp_repr = snapshot_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A memory snapshot made by capture_memory_snapshot(); a figure that was not read "
              "is None.",
    .tp_methods = snapshot_methods,
    /* .tp_getset: set by getset_init() */
};

/* SnapshotType's attributes: one per entry of fields[] (the closure is its row), then
 * snapshot_getset_rest. Returns 0 or -1 (exception set). */
static int getset_init(void)
{
    size_t rest = sizeof(snapshot_getset_rest) / sizeof(snapshot_getset_rest[0]);
    PyGetSetDef *gs = PyMem_Calloc((size_t)nfields + rest, sizeof(*gs));
    if (!gs) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < nfields; i++)
        gs[i] = (PyGetSetDef){fields[i].name, snapshot_get_field, NULL, fields[i].doc,
                              (void *)&fields[i]};
    memcpy(gs + nfields, snapshot_getset_rest, rest * sizeof(*gs)); /* with its sentinel */
    SnapshotType.tp_getset = gs;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The peak sampler                                                                         */
/* ---------------------------------------------------------------------------------------- */

/*
 * The profilers' peaks come from the library's sampler (MS_SAMPLER_LIGHT: statm only, every
 * sampler_interval()) and its peak windows: one window per profile_context, and one more kept
 * open for the sampler's life, whose sample count is sampler_samples(). The sampler's thread
 * runs only while a profiler's window is open, so an idle interpreter pays nothing. Every
 * field is used under the GIL (stopping the thread joins it: it never takes the GIL).
 */
static struct {
    ms_sampler *s;        /* NULL until a window opens (and in the child of a fork) */
    uint64_t interval_ns; /* of the next sampler opened */
    unsigned counter;     /* the window that counts every sample of s */
    unsigned open;        /* the profilers' open windows: the thread runs while > 0 */
    uint64_t base;        /* samples of the samplers closed before s */
    uint64_t gen;         /* forks survived: the high half of a window's Python id */
} psmp = {.interval_ns = 1000000};

/* Samples s has taken (its counter window's), 0 without s. */
static uint64_t psmp_taken(void)
{
    ms_peak pk = {.size = sizeof(pk)};
    if (!psmp.s || ms_sampler_window_read(psmp.s, psmp.counter, &pk) != 0)
        return 0;
    return pk.samples;
}

/* Closes the idle sampler (its count goes to base), so the next window opens one at the
 * interval now set. */
static void psmp_close(void)
{
    psmp.base += psmp_taken();
    ms_sampler_close(psmp.s);
    psmp.s = NULL;
}

/* In the child of fork(): the thread did not come along, and its lock may be held there for
 * good: the parent's sampler is left alone (leaked) and the next window opens another. The
 * parent's windows still open here close with no figures (their generation is past). */
static void sampler_atfork_child(void)
{
    psmp.s = NULL;
    psmp.open = 0;
    psmp.gen++;
}

/* In the child of fork(): the sampler as above, and a new session lock. A thread in a GPU
 * capture holds sess_lk while it waits for the GIL, and the child, which has only the thread
 * that forked, would wait for that lock forever (the parent's stays held there: leaked). */
static void module_atfork_child(void)
{
    sampler_atfork_child();
    if (sess_lk) {
        PyThread_type_lock fresh = PyThread_allocate_lock();
        if (fresh)
            sess_lk = fresh;
    }
}

static PyObject *window_open(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    if (!psmp.s) {
        ms_sampler_options o = {.size = sizeof(o),
                                .pid = 0,
                                .interval_ns = psmp.interval_ns,
                                .flags = MS_SAMPLER_LIGHT};
        if (ms_sampler_open(&psmp.s, &o) != 0)
            return PyErr_Format(Error, "sampler: %s", ms_last_error());
        if (ms_sampler_window_open(psmp.s, &psmp.counter) != 0) {
            PyErr_Format(Error, "sampler: %s", ms_last_error());
            ms_sampler_close(psmp.s);
            psmp.s = NULL;
            return NULL;
        }
    }
    unsigned id;
    if (ms_sampler_window_open(psmp.s, &id) != 0)
        return PyErr_NoMemory();
    if (psmp.open == 0 && ms_sampler_start(psmp.s) != 0) {
        PyErr_Format(PyExc_OSError, "sampler: %s", ms_last_error());
        ms_sampler_window_close(psmp.s, id, NULL);
        return NULL;
    }
    psmp.open++;
    return PyLong_FromUnsignedLongLong((unsigned long long)(psmp.gen << 32 | id));
}

static PyObject *window_close(PyObject *mod, PyObject *arg)
{
    (void)mod;
    unsigned long long v = PyLong_AsUnsignedLongLong(arg);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    uint64_t gen = v >> 32;
    unsigned id = (unsigned)(v & 0xffffffffu);
    if (gen < psmp.gen) /* opened before a fork, in the parent: nothing sampled here */
        return Py_BuildValue("(OK)", Py_None, 0ULL);
    ms_peak pk = {.size = sizeof(pk)};
    if (gen > psmp.gen || !psmp.s || id == psmp.counter ||
        ms_sampler_window_close(psmp.s, id, &pk) != 0) {
        PyErr_Format(PyExc_ValueError, "no open sampler window %llu", v);
        return NULL;
    }
    if (--psmp.open == 0)
        ms_sampler_stop(psmp.s); /* idle: no samples until a window opens again */
    if (!pk.rss_valid)
        return Py_BuildValue("(OK)", Py_None, (unsigned long long)pk.samples);
    return Py_BuildValue("(KK)", (unsigned long long)pk.rss_bytes, (unsigned long long)pk.samples);
}

static PyObject *sampler_interval(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "sampler_interval() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        double s = PyFloat_AsDouble(args[0]);
        if (s == -1.0 && PyErr_Occurred())
            return NULL;
        if (!(s >= 1e-5 && s <= 10.0)) {
            PyErr_Format(PyExc_ValueError,
                         "sampler_interval(): seconds must be between 1e-05 and 10, not %R",
                         args[0]);
            return NULL;
        }
        psmp.interval_ns = (uint64_t)(s * 1e9);
        /* the library's sampler keeps its interval: an idle one is opened again at the new
         * one; one in use keeps the old until its windows have closed */
        if (psmp.s && psmp.open == 0)
            psmp_close();
    }
    return PyFloat_FromDouble((double)psmp.interval_ns / 1e9);
}

static PyObject *sampler_samples(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    return PyLong_FromUnsignedLongLong((unsigned long long)(psmp.base + psmp_taken()));
}

/* At exit, after the interpreter is gone: closes the sessions. The peak sampler is left to
 * the exit itself: its thread touches only the sampler's own memory and session, and joining
 * it here is a wait at exit that buys nothing (one `make check` run hung at this point once,
 * after every test had passed, and did not again in 50 runs). */
static void module_atexit(void)
{
    ms_session_close(dev_sess);
    dev_sess = NULL;
    ms_session_close(sess);
    sess = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Module functions                                                                         */
/* ---------------------------------------------------------------------------------------- */

PyDoc_STRVAR(format_memory_doc,
             "format_memory(nbytes) -> str\n\n"
             "A byte count in binary units: '512 B', '1.50 KiB', '3.25 GiB' (negative counts\n"
             "with a sign, '-1.00 MiB').");

static PyObject *format_memory(PyObject *mod, PyObject *arg)
{
    (void)mod;
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "format_memory() needs an int number of bytes, not %s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    char buf[48];
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(arg);
        if (u == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
        ms_format_bytes(buf, sizeof(buf), u);
    } else if (overflow < 0) {
        PyErr_SetString(PyExc_OverflowError, "format_memory(): byte count below -2**63");
        return NULL;
    } else if (v < 0) {
        ms_format_bytes_signed(buf, sizeof(buf), v);
    } else {
        ms_format_bytes(buf, sizeof(buf), (uint64_t)v);
    }
    return PyUnicode_FromString(buf);
}

PyDoc_STRVAR(gpu_backends_doc,
             "gpu_backends() -> list of dict\n\n"
             "Each GPU backend compiled in (nvml, nvidia-smi, drm): whether it is available, why\n"
             "not, its device count and capabilities, driver and CUDA versions. The first call\n"
             "loads the backends (once per session).");

static PyObject *gpu_backends(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    ms_gpu_backend_info b[8];
    int n;
    PyThreadState *ts = PyEval_SaveThread();
    PyThread_acquire_lock(sess_lk, WAIT_LOCK);
    n = ms_gpu_backends(sess, b, sizeof(b) / sizeof(b[0]));
    PyThread_release_lock(sess_lk);
    PyEval_RestoreThread(ts);
    if (n < 0) /* the backends' state could not be allocated: not "no backends" */
        return n == MS_ENOMEM
                   ? PyErr_NoMemory()
                   : PyErr_Format(Error, "listing the GPU backends failed: %s", ms_strerror(n));
    if (n > 8)
        n = 8;
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < n; i++) {
        PyObject *d = Py_BuildValue(
            "{s:s,s:O,s:s,s:I,s:O,s:O,s:O,s:N,s:N,s:N}", "name", b[i].name, "available",
            b[i].available ? Py_True : Py_False, "detail", b[i].detail, "device_count",
            (unsigned)b[i].device_count, "supports_device_total",
            b[i].supports_device_total ? Py_True : Py_False, "supports_device_free",
            b[i].supports_device_free ? Py_True : Py_False, "per_process",
            b[i].per_process ? Py_True : Py_False, "sampling_source",
            str_or_none(b[i].sampling_source), "driver_version", str_or_none(b[i].driver_version),
            "cuda_version", str_or_none(b[i].cuda_version));
        if (!d || PyList_Append(list, d) != 0)
            Py_CLEAR(list);
        Py_XDECREF(d);
    }
    return list;
}

static PyObject *session_roots(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    return Py_BuildValue("{s:s,s:s}", "procfs", ms_session_procfs(sess), "sysfs",
                         ms_session_sysfs(sess));
}

static PyObject *set_torch_reader(PyObject *mod, PyObject *fn)
{
    (void)mod;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "the torch reader must be callable or None");
        return NULL;
    }
    Py_XSETREF(torch_reader, fn == Py_None ? NULL : Py_NewRef(fn));
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------- */
/* The OOM flight recorder                                                                  */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD ms_flight *f;
    PyThread_type_lock lk; /* guards f's life: close() against the other methods */
    ms_sampler *smp;       /* start()'s sampler, feeding f's ring from its thread, or NULL */
} FlightObject;

static void flight_lock(FlightObject *o)
{
    if (PyThread_acquire_lock(o->lk, NOWAIT_LOCK))
        return;
    PyThreadState *ts = PyEval_SaveThread();
    PyThread_acquire_lock(o->lk, WAIT_LOCK);
    PyEval_RestoreThread(ts);
}

/* Stops and frees the recorder's sampler, then the recorder (o->lk held). */
static void flight_release(FlightObject *o)
{
    ms_sampler_close(o->smp); /* first: its thread pushes into f */
    o->smp = NULL;
    ms_flight_close(o->f);
    o->f = NULL;
}

static int flight_init(PyObject *self, PyObject *args, PyObject *kw)
{
    FlightObject *o = (FlightObject *)self;
    static char *kwlist[] = {"dump_dir", "buffer_size", "max_dumps", "max_total_mb", NULL};
    PyObject *dir;
    Py_ssize_t buffer = 1000, dumps = 0, mb = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|nnn:FlightRecorder", kwlist,
                                     PyUnicode_FSConverter, &dir, &buffer, &dumps, &mb))
        return -1;
    if (buffer < 1 || dumps < 0 || mb < 0) {
        Py_DECREF(dir);
        PyErr_SetString(PyExc_ValueError, "buffer_size must be >= 1, max_dumps and "
                                          "max_total_mb >= 0");
        return -1;
    }
    if (!o->lk && !(o->lk = PyThread_allocate_lock())) {
        Py_DECREF(dir);
        PyErr_NoMemory();
        return -1;
    }
    ms_flight_options opts = {.size = sizeof(opts),
                              .dump_dir = PyBytes_AS_STRING(dir),
                              .buffer_size = (size_t)buffer,
                              .max_dumps = (unsigned)dumps,
                              .max_total_bytes = (uint64_t)mb << 20};
    flight_lock(o);
    flight_release(o); /* __init__ again */
    int rc = ms_flight_open(&o->f, &opts);
    PyThread_release_lock(o->lk);
    Py_DECREF(dir);
    if (rc != 0) {
        PyErr_Format(Error, "cannot open the flight recorder: %s", ms_last_error());
        return -1;
    }
    return 0;
}

/* Takes the recorder's lock, and checks under it that the recorder is open (another thread
 * may close it meanwhile); NULL, with the lock not held and Error set, when it is closed. */
static FlightObject *flight_acquire(PyObject *self)
{
    FlightObject *o = (FlightObject *)self;
    if (o->lk) {
        flight_lock(o);
        if (o->f)
            return o;
        PyThread_release_lock(o->lk);
    }
    PyErr_SetString(Error, "the flight recorder is closed");
    return NULL;
}

static PyObject *flight_sample(PyObject *self, PyObject *unused)
{
    (void)unused;
    SnapshotObject *snap = snapshot_capture(0, MS_CAPTURE_FULL | MS_CAPTURE_GPU, NULL);
    if (!snap)
        return NULL;
    ms_snapshot s;
    ms_snapshot_init(&s);
    snapshot_fill(&s, snap);
    Py_DECREF(snap);
    FlightObject *o = flight_acquire(self);
    if (!o)
        return NULL;
    ms_flight_push(o->f, &s);
    PyThread_release_lock(o->lk);
    Py_RETURN_NONE;
}

static PyObject *flight_event(PyObject *self, PyObject *text)
{
    const char *t = PyUnicode_AsUTF8(text);
    if (!t)
        return NULL;
    FlightObject *o = flight_acquire(self);
    if (!o)
        return NULL;
    ms_flight_event(o->f, t);
    PyThread_release_lock(o->lk);
    Py_RETURN_NONE;
}

static PyObject *flight_dump(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"backend", "reason", "extra", NULL};
    const char *backend = "cuda", *reason = "cuda_oom", *extra = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|ssz:dump", kwlist, &backend, &reason, &extra))
        return NULL;
    FlightObject *o = flight_acquire(self);
    if (!o)
        return NULL;
    char path[4096] = "", err[512] = "";
    PyThreadState *ts = PyEval_SaveThread(); /* files are written: let others run */
    int rc = ms_flight_dump(o->f, backend, getpid(), reason, extra, path, sizeof(path));
    if (rc != 0) /* this thread's message, read before another call can replace it */
        snprintf(err, sizeof(err), "%s", ms_last_error());
    PyEval_RestoreThread(ts);
    PyThread_release_lock(o->lk);
    if (rc != 0)
        return PyErr_Format(Error, "cannot write the OOM bundle: %s",
                            err[0] ? err : ms_strerror(rc));
    return PyUnicode_DecodeFSDefault(path);
}

PyDoc_STRVAR(flight_start_doc,
             "start(interval=0.1)\n\n"
             "Samples this process (full figures and GPUs) into the ring every interval\n"
             "seconds, from the library's sampler on a thread of its own (no GIL), until\n"
             "stop() or close(). The first sample is taken at once.");

static PyObject *flight_start(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"interval", NULL};
    double interval = 0.1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|d:start", kwlist, &interval))
        return NULL;
    if (!(interval >= 1e-5 && interval <= 3600.0))
        return PyErr_Format(PyExc_ValueError, "start(): interval must be between 1e-05 and "
                                              "3600 seconds");
    FlightObject *o = flight_acquire(self);
    if (!o)
        return NULL;
    int rc = 0;
    if (!o->smp) { /* every sample a full one: the ring holds whole snapshots */
        uint64_t ns = (uint64_t)(interval * 1e9);
        ms_sampler_options so = {.size = sizeof(so),
                                 .pid = 0,
                                 .interval_ns = ns,
                                 .full_interval_ns = ns,
                                 .flight = o->f};
        if ((rc = ms_sampler_open(&o->smp, &so)) == 0 && (rc = ms_sampler_start(o->smp)) != 0) {
            ms_sampler_close(o->smp);
            o->smp = NULL;
        }
    }
    if (rc != 0)
        PyErr_Format(Error, "cannot start the flight recorder's sampler: %s", ms_last_error());
    PyThread_release_lock(o->lk);
    if (rc != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *flight_stop(PyObject *self, PyObject *unused)
{
    (void)unused;
    FlightObject *o = (FlightObject *)self;
    if (o->lk) {
        flight_lock(o);
        ms_sampler_close(o->smp);
        o->smp = NULL;
        PyThread_release_lock(o->lk);
    }
    Py_RETURN_NONE;
}

static PyObject *flight_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    FlightObject *o = (FlightObject *)self;
    if (o->lk) {
        flight_lock(o);
        flight_release(o);
        PyThread_release_lock(o->lk);
    }
    Py_RETURN_NONE;
}

static void flight_dealloc(PyObject *self)
{
    FlightObject *o = (FlightObject *)self;
    flight_release(o);
    if (o->lk)
        PyThread_free_lock(o->lk);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef flight_methods[] = {
    {"sample", flight_sample, METH_NOARGS,
     "sample()\n\nCaptures this process (full figures and GPUs) into the ring."},
    {"event", flight_event, METH_O, "event(json_text)\n\nKeeps an event (one JSON object)."},
    {"dump", (PyCFunction)(void (*)(void))flight_dump, METH_VARARGS | METH_KEYWORDS,
     "dump(backend='cuda', reason='cuda_oom', extra=None) -> str\n\nWrites an OOM bundle "
     "(extra: a JSON object text merged into metadata.json) and returns its path."},
    {"start", (PyCFunction)(void (*)(void))flight_start, METH_VARARGS | METH_KEYWORDS,
     flight_start_doc},
    {"stop", flight_stop, METH_NOARGS, "stop()\n\nStops start()'s sampling (waits for it)."},
    {"close", flight_close, METH_NOARGS, "close()\n\nStops the sampling, releases the recorder."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FlightType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memsnap.FlightRecorder",
    .tp_basicsize = sizeof(FlightObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FlightRecorder(dump_dir, buffer_size=1000, max_dumps=0, max_total_mb=0)\n\n"
              "libmemsnap's OOM flight recorder: a ring of the last samples and events, "
              "written as oom_dump_<UTC>_<pid>_<backend>_<seq>/ by dump().",
    .tp_new = PyType_GenericNew,
    .tp_init = flight_init,
    .tp_dealloc = flight_dealloc,
    .tp_methods = flight_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* Sampler: the library's sampler as an iterator of snapshots                               */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD ms_sampler *s;
    PyThread_type_lock lk; /* one thread at a time in ms_sampler_next (the GIL is released) */
    bool self;             /* it samples this interpreter */
    bool done;             /* the process is gone, count reached, or closed */
    long long left;        /* samples still to give; -1: no limit */
    uint64_t given;        /* samples given */
} SamplerObject;

static int sampler_init(PyObject *self, PyObject *args, PyObject *kw)
{
    SamplerObject *o = (SamplerObject *)self;
    static char *kwlist[] = {"pid", "interval", "full_interval", "gpu", "tree", "count", NULL};
    long long pid = 0, count = -1;
    double interval = 1.0, full = 0.1;
    int gpu = 1, tree = 0;
    PyObject *pcount = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Ldd$ppO:Sampler", kwlist, &pid, &interval, &full,
                                     &gpu, &tree, &pcount))
        return -1;
    if (pcount != Py_None && ((count = PyLong_AsLongLong(pcount)) < 0 || PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "Sampler(): count must be >= 0 or None");
        return -1;
    }
    if (!(interval > 0 && interval <= 86400.0) || !(full >= 0 && full <= 86400.0)) {
        PyErr_SetString(PyExc_ValueError, "Sampler(): interval must be > 0 and full_interval "
                                          ">= 0 seconds (at most a day)");
        return -1;
    }
    if (pid < INT32_MIN || pid > INT32_MAX)
        pid = -1; /* the library says what is wrong with it */
    if (!o->lk && !(o->lk = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        return -1;
    }
    ms_sampler_close(o->s); /* __init__ again */
    o->s = NULL;
    ms_sampler_options so = {.size = sizeof(so),
                             .pid = (pid_t)pid,
                             .interval_ns = (uint64_t)(interval * 1e9),
                             .full_interval_ns = (uint64_t)(full * 1e9),
                             .flags =
                                 (gpu ? 0u : MS_SAMPLER_NO_GPU) | (tree ? MS_SAMPLER_TREE : 0u)};
    if (so.interval_ns == 0)
        so.interval_ns = 1;
    if (full == 0) /* every sample a full one */
        so.flags |= MS_SAMPLER_EXACT_FULL;
    if (ms_sampler_open(&o->s, &so) != 0) {
        PyErr_SetString(Error, ms_last_error());
        return -1;
    }
    o->self = pid == 0 || pid == getpid();
    o->done = count == 0;
    o->left = count;
    o->given = 0;
    return 0;
}

static PyObject *sampler_iter_next(PyObject *self)
{
    SamplerObject *o = (SamplerObject *)self;
    if (!o->s || o->done)
        return NULL; /* StopIteration */
    if (!PyThread_acquire_lock(o->lk, NOWAIT_LOCK)) {
        PyErr_SetString(Error, "the sampler is in use by another thread");
        return NULL;
    }
    ms_sample smp = {.size = sizeof(smp)};
    char err[512] = "";
    PyThreadState *ts = PyEval_SaveThread(); /* it sleeps until the sample is due */
    /* a sample already due is taken at once: ms_sampler_next() would still enter
     * clock_nanosleep(), which costs about 100 us on a virtual machine even for a time past */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    int rc =
        ms_sampler_due(o->s) <= now_ns ? ms_sampler_take(o->s, &smp) : ms_sampler_next(o->s, &smp);
    if (rc != 0)
        snprintf(err, sizeof(err), "%s", ms_last_error());
    PyEval_RestoreThread(ts);
    SnapshotObject *snap = NULL;
    if (rc == 0 && (snap = snapshot_from(smp.snap)) != NULL) {
        snap->seq = (int64_t)smp.seq;
        snap->fresh = smp.full;
        snap->self = o->self;
        if (smp.note)
            snap->note = PyUnicode_DecodeUTF8(smp.note, (Py_ssize_t)strlen(smp.note), "replace");
        if (o->left > 0 && --o->left == 0)
            o->done = true;
        o->given++;
    }
    bool first = o->given == 0;
    PyThread_release_lock(o->lk);
    if (rc == MS_ESRCH) { /* the process is gone: the iteration ends (fails before any sample) */
        o->done = true;
        if (first && !PyErr_Occurred())
            PyErr_Format(ProcessNotFoundError, "%s", err);
        return NULL;
    }
    if (rc != 0) {
        PyErr_Format(rc == MS_EACCES ? AccessDeniedError : Error, "%s", err);
        return NULL;
    }
    if (snap && snap->self && python_figures(snap, false, false, false) != 0)
        Py_CLEAR(snap);
    return (PyObject *)snap;
}

static PyObject *sampler_close_m(PyObject *self, PyObject *unused)
{
    (void)unused;
    SamplerObject *o = (SamplerObject *)self;
    if (o->lk) {
        PyThreadState *ts = PyEval_SaveThread(); /* waits for a next() in another thread */
        PyThread_acquire_lock(o->lk, WAIT_LOCK);
        PyEval_RestoreThread(ts);
        ms_sampler_close(o->s);
        o->s = NULL;
        o->done = true;
        PyThread_release_lock(o->lk);
    }
    Py_RETURN_NONE;
}

static PyObject *sampler_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *sampler_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return sampler_close_m(self, NULL);
}

static void sampler_dealloc(PyObject *self)
{
    SamplerObject *o = (SamplerObject *)self;
    ms_sampler_close(o->s);
    if (o->lk)
        PyThread_free_lock(o->lk);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef sampler_methods[] = {
    {"close", sampler_close_m, METH_NOARGS,
     "close()\n\nEnds the iteration and frees the sampler (its session, its descriptors)."},
    {"__enter__", sampler_enter, METH_NOARGS, NULL},
    {"__exit__", sampler_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SamplerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memsnap.Sampler",
    .tp_basicsize = sizeof(SamplerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc =
        "Sampler(pid=0, interval=1.0, full_interval=0.1, *, gpu=True, tree=False, count=None)\n\n"
        "libmemsnap's sampler (the one behind `memsnap monitor`) as an iterator of\n"
        "MemorySnapshot: one per interval seconds on an absolute schedule (late ticks are\n"
        "skipped), full figures at most every full_interval (0: every sample), the samples in\n"
        "between re-reading statm only (snap.fresh False). snap.seq numbers them. The\n"
        "iteration ends when the process is gone, after count samples, or after close();\n"
        "a pid that does not exist raises ProcessNotFoundError on the first next().",
    .tp_new = PyType_GenericNew,
    .tp_init = sampler_init,
    .tp_dealloc = sampler_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = sampler_iter_next,
    .tp_methods = sampler_methods,
};

static PyMethodDef module_methods[] = {
    {"capture_memory_snapshot", METH(capture_memory_snapshot), METH_FASTCALL | METH_KEYWORDS,
     capture_doc},
    {"format_memory", format_memory, METH_O, format_memory_doc},
    {"gpu_backends", gpu_backends, METH_NOARGS, gpu_backends_doc},
    {"session_roots", session_roots, METH_NOARGS,
     "session_roots() -> dict\n\nThe procfs and sysfs roots the module's session reads."},
    {"sampler_interval", METH(sampler_interval), METH_FASTCALL,
     "sampler_interval(seconds=None) -> float\n\nSets (when given) and returns the interval of "
     "the peak sampler (default 0.001 s)."},
    {"sampler_samples", sampler_samples, METH_NOARGS,
     "sampler_samples() -> int\n\nSamples the peak sampler has taken so far."},
    {"_window_open", window_open, METH_NOARGS,
     "_window_open() -> int\n\nOpens a peak window (starting the sampler thread)."},
    {"_window_close", window_close, METH_O,
     "_window_close(id) -> (peak_rss_bytes or None, samples)\n\nCloses a peak window."},
    {"_set_torch_reader", set_torch_reader, METH_O,
     "_set_torch_reader(fn)\n\nfn(torch) -> 6-tuple of int or None, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "memsnap._memsnap",
    .m_doc = "libmemsnap's snapshots for Python (see the memsnap package).",
    .m_size = -1,
    .m_methods = module_methods,
};

/* A new exception class memsnap.<name> with the given bases, added to the module. */
static PyObject *add_exception(PyObject *m, const char *name, PyObject *bases, const char *doc)
{
    char full[64];
    snprintf(full, sizeof(full), "memsnap.%s", name);
    PyObject *e = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    if (!e || PyModule_AddObjectRef(m, name, e) != 0) {
        Py_XDECREF(e);
        return NULL;
    }
    return e;
}

/* Borrows fn = module.attr into *out (a new reference kept for the life of the process). */
static int get_callable(const char *module, const char *attr, PyObject **out)
{
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return -1;
    *out = PyObject_GetAttrString(m, attr);
    Py_DECREF(m);
    return *out ? 0 : -1;
}

PyMODINIT_FUNC PyInit__memsnap(void);
PyMODINIT_FUNC PyInit__memsnap(void)
{
    if ((!fields && (fields_init() != 0 || getset_init() != 0)) ||
        PyType_Ready(&SnapshotType) != 0 || PyType_Ready(&FlightType) != 0 ||
        PyType_Ready(&SamplerType) != 0 || keys_init() != 0)
        return NULL;
    if (!str_torch && !(str_torch = PyUnicode_InternFromString("torch")))
        return NULL;
    if (get_callable("gc", "get_count", &fn_gc_get_count) != 0 ||
        get_callable("gc", "get_objects", &fn_gc_get_objects) != 0 ||
        get_callable("sys", "getallocatedblocks", &fn_allocated_blocks) != 0 ||
        get_callable("_tracemalloc", "is_tracing", &fn_tm_is_tracing) != 0 ||
        get_callable("_tracemalloc", "get_traced_memory", &fn_tm_traced_memory) != 0)
        return NULL;

    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "MemorySnapshot", (PyObject *)&SnapshotType) != 0 ||
        PyModule_AddObjectRef(m, "FlightRecorder", (PyObject *)&FlightType) != 0 ||
        PyModule_AddObjectRef(m, "Sampler", (PyObject *)&SamplerType) != 0 ||
        PyModule_AddStringConstant(m, "__version__", ms_version()) != 0)
        goto fail;
    Error = add_exception(m, "Error", NULL, "A memsnap capture or session failed.");
    if (!Error)
        goto fail;
    PyObject *b = PyTuple_Pack(2, Error, PyExc_ProcessLookupError);
    ProcessNotFoundError =
        b ? add_exception(m, "ProcessNotFoundError", b, "The process to capture does not exist.")
          : NULL;
    Py_XDECREF(b);
    b = PyTuple_Pack(2, Error, PyExc_PermissionError);
    AccessDeniedError =
        b ? add_exception(m, "AccessDeniedError", b, "The process's /proc files cannot be read.")
          : NULL;
    Py_XDECREF(b);
    if (!ProcessNotFoundError || !AccessDeniedError || mspy_heap_init(m, Error) != 0)
        goto fail;

    if (!sess) {
        sess_lk = PyThread_allocate_lock();
        if (!sess_lk) {
            PyErr_NoMemory();
            goto fail;
        }
        int rc = ms_session_open(&sess, NULL);
        if (rc != 0) {
            PyErr_Format(Error, "cannot open a memsnap session: %s", ms_strerror(rc));
            goto fail;
        }
        ms_snapshot_init(&scratch);
        ms_snapshot_init(&da);
        ms_snapshot_init(&db);
        pthread_atfork(NULL, NULL, module_atfork_child);
        Py_AtExit(module_atexit);
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
