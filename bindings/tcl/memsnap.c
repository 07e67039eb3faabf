/*
 * memsnap.c - the Tcl extension `memsnap`: Memsnap_Init, the one session the extension keeps,
 * and the memsnap:: commands, which give libmemsnap's figures as Tcl dicts.
 *
 * Built against the Tcl stubs library, with libmemsnap linked in statically, as the package
 * directory <build>/bindings/tcl/memsnap (the module and its pkgIndex.tcl). A thin layer: every
 * figure comes from the public API of memsnap.h. One session serves every interpreter and
 * thread of the process: opened on the first command, guarded by a mutex, closed at exit.
 *
 * A snapshot dict has the keys of the JSON sink (docs/snapshot-format.md): schema,
 * timestamp_ns, monotonic_ns, label, pid, then the process, system and cgroup dicts and, when
 * GPUs were captured, the list gpus. A field that could not be read is absent, never 0 or "".
 * memsnap::delta reads two such dicts back into ms_snapshot and returns ms_delta_compute() as a
 * dict of the same shape (docs/bindings-tcl.md).
 */
#include "tclmemsnap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TCL_DECLARE_MUTEX(ms__tcl_lock)
static ms_session *ms__tcl_s;     /* the extension's session, NULL until first used */
static ms_session *ms__tcl_dev_s; /* the session of the last `snapshot -device`, or NULL */
static char *ms__tcl_dev_name;    /* its device (ckalloc'd), NULL with it */
static bool ms__tcl_exit_set;     /* the exit handler that closes them is registered */

/* ---- the session, errors ------------------------------------------------------------------ */

/* Closes the session when the process exits (Tcl_Exit / Tcl_Finalize). */
static void ms__tcl_close(ClientData unused)
{
    (void)unused;
    Tcl_MutexLock(&ms__tcl_lock);
    ms_session_close(ms__tcl_s);
    ms__tcl_s = NULL;
    ms_session_close(ms__tcl_dev_s);
    ms__tcl_dev_s = NULL;
    ckfree(ms__tcl_dev_name);
    ms__tcl_dev_name = NULL;
    Tcl_MutexUnlock(&ms__tcl_lock);
}

/* Opens *s with opts (the caller holds the lock); on failure unlocks and sets the result. */
static int ms__tcl_open(Tcl_Interp *interp, ms_session **s, const ms_options *opts)
{
    int rc = ms_session_open(s, opts);
    if (rc != 0) {
        *s = NULL;
        Tcl_MutexUnlock(&ms__tcl_lock);
        return ms__tcl_error(interp, rc, NULL, "memsnap: cannot open a session: %s",
                             ms_last_error()[0] ? ms_last_error() : ms_strerror(rc));
    }
    if (!ms__tcl_exit_set) {
        Tcl_CreateExitHandler(ms__tcl_close, NULL);
        ms__tcl_exit_set = true;
    }
    return TCL_OK;
}

ms_session *ms__tcl_session(Tcl_Interp *interp)
{
    Tcl_MutexLock(&ms__tcl_lock);
    if (!ms__tcl_s && ms__tcl_open(interp, &ms__tcl_s, NULL) != TCL_OK)
        return NULL;
    return ms__tcl_s;
}

/* The device is set when the session opens (ms_options.device): the session of the last
 * device asked for is kept, so that a loop over one GPU does not load its backend each time;
 * another device replaces it. Locked as ms__tcl_session(). */
static ms_session *ms__tcl_device_session(Tcl_Interp *interp, const char *device)
{
    if (!device)
        return ms__tcl_session(interp);
    Tcl_MutexLock(&ms__tcl_lock);
    if (ms__tcl_dev_s && strcmp(ms__tcl_dev_name, device) == 0)
        return ms__tcl_dev_s;
    ms_session_close(ms__tcl_dev_s);
    ms__tcl_dev_s = NULL;
    ckfree(ms__tcl_dev_name);
    ms__tcl_dev_name = NULL;
    ms_options opts = {.size = sizeof(opts), .device = device};
    if (ms__tcl_open(interp, &ms__tcl_dev_s, &opts) != TCL_OK)
        return NULL;
    ms__tcl_dev_name = ckalloc((unsigned)strlen(device) + 1);
    strcpy(ms__tcl_dev_name, device);
    return ms__tcl_dev_s;
}

void ms__tcl_release(void)
{
    Tcl_MutexUnlock(&ms__tcl_lock);
}

int ms__tcl_error(Tcl_Interp *interp, int err, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    Tcl_SetObjResult(interp, Tcl_NewStringObj(msg, -1));
    if (err)
        Tcl_SetErrorCode(interp, "MEMSNAP", ms_err_name(err), NULL);
    else if (code)
        Tcl_SetErrorCode(interp, "MEMSNAP", code, NULL);
    return TCL_ERROR;
}

/* The failure of a call on session s: its one-line reason, else the code's message. */
static int ms__tcl_session_error(Tcl_Interp *interp, ms_session *s, int rc, const char *what)
{
    const char *why = ms_session_error(s);
    return ms__tcl_error(interp, rc, NULL, "%s: %s", what, why[0] ? why : ms_strerror(rc));
}

/* ---- GPUs, capture, trim ------------------------------------------------------------------- */

/* NVIDIA's backends: what CUDA sees. */
static bool ms__tcl_is_nvidia(const char *backend)
{
    return strcmp(backend, "nvml") == 0 || strcmp(backend, "nvidia-smi") == 0;
}

bool ms__tcl_is_cuda(const ms_gpu *g)
{
    return ms__tcl_is_nvidia(g->backend);
}

int ms__tcl_gpu_state(Tcl_Interp *interp, ms_session *s, struct ms__tcl_gpus *out)
{
    const int cap = (int)(sizeof(out->backends) / sizeof(out->backends[0]));
    int n = ms_gpu_backends(s, out->backends, (size_t)cap);
    if (n < 0)
        return ms__tcl_error(interp, n, NULL, "memsnap: cannot list the GPU backends: %s",
                             ms_strerror(n));
    out->nbackends = n < cap ? n : cap;
    out->cuda_devices = 0;
    out->any = false;
    for (int i = 0; i < out->nbackends; i++) {
        const ms_gpu_backend_info *b = &out->backends[i];
        if (!b->available || b->device_count == 0)
            continue;
        out->any = true;
        if (ms__tcl_is_nvidia(b->name) && out->cuda_devices == 0) /* nvidia-smi: NVML's fallback */
            out->cuda_devices = (int)b->device_count;
    }
    return TCL_OK;
}

/* Allocates a snapshot ready for ms_capture(). */
static ms_snapshot *ms__tcl_snapshot_new(void)
{
    ms_snapshot *snap = (ms_snapshot *)ckalloc(sizeof(*snap));
    ms_snapshot_init(snap);
    return snap;
}

ms_snapshot *ms__tcl_capture_self(Tcl_Interp *interp, ms_session *s)
{
    ms_snapshot *snap = ms__tcl_snapshot_new();
    int rc = ms_capture(s, 0, MS_CAPTURE_BASIC | MS_CAPTURE_SYSTEM | MS_CAPTURE_GPU, snap);
    if (rc != 0) {
        ckfree((char *)snap);
        ms__tcl_session_error(interp, s, rc, "memsnap: cannot capture this process");
        return NULL;
    }
    return snap;
}

ms_snapshot *ms__tcl_gpu_snapshot(Tcl_Interp *interp, struct ms__tcl_gpus *st)
{
    ms_session *s = ms__tcl_session(interp);
    if (!s)
        return NULL;
    ms_snapshot *snap = NULL;
    if (ms__tcl_gpu_state(interp, s, st) == TCL_OK)
        snap = ms__tcl_capture_self(interp, s);
    ms__tcl_release();
    return snap;
}

/* Reads this process's RSS into *rss. */
static int ms__tcl_rss(Tcl_Interp *interp, ms_session *s, uint64_t *rss)
{
    ms_snapshot *snap = ms__tcl_snapshot_new();
    int rc = ms_capture(s, 0, MS_CAPTURE_BASIC, snap);
    bool ok = rc == 0 && ms_valid(&snap->process, MS_PF_rss_bytes);
    *rss = snap->process.rss_bytes;
    ckfree((char *)snap);
    if (!ok)
        return ms__tcl_session_error(interp, s, rc ? rc : MS_EIO,
                                     "memsnap: cannot read this process's RSS");
    return TCL_OK;
}

int ms__tcl_trim(Tcl_Interp *interp, ms_session *s, uint64_t *released)
{
    uint64_t before, after;
    if (ms__tcl_rss(interp, s, &before) != TCL_OK)
        return TCL_ERROR;
    malloc_trim(0);
    if (ms__tcl_rss(interp, s, &after) != TCL_OK)
        return TCL_ERROR;
    *released = before > after ? before - after : 0;
    return TCL_OK;
}

/* ---- the field tables: ms_fields() ----------------------------------------------------------- */

/* The library's table of each section (process, system, cgroup, gpu), set by Memsnap_Init: the
 * dict keys are its field names, its offsets say where each figure is in the section struct
 * and in its delta, and the section's key in a snapshot dict is the table's name. */
static const ms_field_table *ms__tcl_tables[MS_SECTION_COUNT];
#define MS__TCL_NSECTIONS 3 /* the sections held as dicts: process, system, cgroup */

/* The MS_CAPTURE_* bit a valid field of t implies: the first of the flags that fill it (BASIC
 * for the process). */
static unsigned ms__tcl_capture_bit(const ms_field_table *t)
{
    return t->capture & (0u - t->capture);
}

/* ---- snapshot -> dict ---------------------------------------------------------------------- */

Tcl_Obj *ms__tcl_u64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return Tcl_NewWideIntObj((Tcl_WideInt)v);
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return Tcl_NewStringObj(buf, -1);
}

void ms__tcl_put(Tcl_Obj *dict, const char *key, Tcl_Obj *value)
{
    Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj(key, -1), value);
}

/* Puts key -> str unless str is empty (a string the source did not give is absent). */
static void ms__tcl_put_str(Tcl_Obj *dict, const char *key, const char *str)
{
    if (str[0])
        ms__tcl_put(dict, key, Tcl_NewStringObj(str, -1));
}

/* Puts name -> value into dict for each field of t whose bit is set in valid; base is the
 * section (delta: signed values of a delta section). */
static void ms__tcl_put_fields(Tcl_Obj *dict, const ms_field_table *t, uint64_t valid,
                               const void *base, bool delta)
{
    const ms_field_info *f = t->fields;
    for (size_t k = 0; k < t->count; k++) {
        if (!(valid >> f[k].bit & 1u))
            continue;
        const char *at = (const char *)base + (delta ? f[k].delta_offset : f[k].offset);
        Tcl_Obj *v = delta ? Tcl_NewWideIntObj(*(const int64_t *)(const void *)at)
                           : ms__tcl_u64(*(const uint64_t *)(const void *)at);
        ms__tcl_put(dict, f[k].name, v);
    }
}

/* One GPU as a dict: the keys of the JSON sink's gpus[] entries. */
static Tcl_Obj *ms__tcl_gpu_dict(const ms_gpu *g)
{
    Tcl_Obj *d = Tcl_NewDictObj();
    ms__tcl_put(d, "index", Tcl_NewWideIntObj(g->index));
    ms__tcl_put_str(d, "backend", g->backend);
    ms__tcl_put_str(d, "name", g->name);
    ms__tcl_put_str(d, "uuid", g->uuid);
    ms__tcl_put_str(d, "pci_bus_id", g->pci_bus_id);
    ms__tcl_put_fields(d, ms__tcl_tables[MS_SECTION_GPU], g->valid, g, false);
    ms__tcl_put(d, "is_per_process", Tcl_NewBooleanObj(g->is_per_process));
    Tcl_Obj *procs = Tcl_NewListObj(0, NULL);
    for (uint32_t k = 0; k < g->process_count && k < MS_GPU_PROC_MAX; k++) {
        Tcl_Obj *p = Tcl_NewDictObj();
        ms__tcl_put(p, "pid", Tcl_NewWideIntObj(g->processes[k].pid));
        ms__tcl_put(p, "used_bytes", ms__tcl_u64(g->processes[k].used_bytes));
        Tcl_ListObjAppendElement(NULL, procs, p);
    }
    ms__tcl_put(d, "processes", procs);
    return d;
}

/* The list of the snapshot's GPUs as dicts. */
static Tcl_Obj *ms__tcl_gpus_list(const ms_snapshot *snap)
{
    Tcl_Obj *list = Tcl_NewListObj(0, NULL);
    for (uint32_t i = 0; i < snap->gpu_count && i < MS_GPU_MAX; i++)
        Tcl_ListObjAppendElement(NULL, list, ms__tcl_gpu_dict(&snap->gpus[i]));
    return list;
}

/* A section of the snapshot as a dict of its valid fields. */
static Tcl_Obj *ms__tcl_section_dict(const ms_snapshot *snap, int which)
{
    const ms_field_table *sec = ms__tcl_tables[which];
    Tcl_Obj *d = Tcl_NewDictObj();
    const char *base = (const char *)snap + sec->snapshot_offset;
    if (which == MS_SECTION_CGROUP && snap->cgroup.version != MS_CGROUP_NONE) {
        ms__tcl_put(d, "version", Tcl_NewIntObj((int)snap->cgroup.version));
        ms__tcl_put(d, "path", Tcl_NewStringObj(snap->cgroup.path, -1));
        ms__tcl_put(d, "unlimited", Tcl_NewBooleanObj(snap->cgroup.unlimited));
    }
    ms__tcl_put_fields(d, sec, *(const uint64_t *)(const void *)(base + sec->valid_offset), base,
                       false);
    return d;
}

/* The whole snapshot as a dict (the keys of the JSON sink; what was not read is absent). */
static Tcl_Obj *ms__tcl_snapshot_dict(const ms_snapshot *snap)
{
    Tcl_Obj *d = Tcl_NewDictObj();
    ms__tcl_put(d, "schema", Tcl_NewStringObj(MS_SNAPSHOT_SCHEMA, -1));
    ms__tcl_put(d, "timestamp_ns", ms__tcl_u64(snap->timestamp_ns));
    ms__tcl_put(d, "monotonic_ns", ms__tcl_u64(snap->monotonic_ns));
    ms__tcl_put_str(d, "label", snap->label);
    ms__tcl_put(d, "pid", Tcl_NewWideIntObj(snap->pid));
    for (size_t i = 0; i < MS__TCL_NSECTIONS; i++)
        ms__tcl_put(d, ms__tcl_tables[i]->name, ms__tcl_section_dict(snap, (int)i));
    if (snap->captured & MS_CAPTURE_GPU)
        ms__tcl_put(d, "gpus", ms__tcl_gpus_list(snap));
    return d;
}

/* ---- dict -> snapshot (for memsnap::delta) ---------------------------------------------- */

/* Reads a non-negative integer of up to 64 bits; what names the field in the error. */
static int ms__tcl_get_u64(Tcl_Interp *interp, Tcl_Obj *obj, const char *what, uint64_t *out)
{
    const char *str = Tcl_GetString(obj);
    Tcl_WideInt w;
    if (str[0] != '-' && Tcl_GetWideIntFromObj(NULL, obj, &w) == TCL_OK && w >= 0) {
        *out = (uint64_t)w;
        return TCL_OK;
    }
    if (str[0] >= '0' && str[0] <= '9') { /* above the wide range: up to 2^64-1 */
        char *end;
        errno = 0;
        unsigned long long v = strtoull(str, &end, 10);
        if (errno == 0 && *end == '\0') {
            *out = v;
            return TCL_OK;
        }
    }
    return ms__tcl_error(interp, MS_EINVAL, NULL,
                         "%s: expected a non-negative integer but got \"%s\"", what, str);
}

/* Looks key up in dict: *value is NULL when absent; TCL_ERROR when dict is not a dict. */
static int ms__tcl_get(Tcl_Interp *interp, Tcl_Obj *dict, const char *key, Tcl_Obj **value)
{
    Tcl_Obj *k = Tcl_NewStringObj(key, -1);
    Tcl_IncrRefCount(k);
    int rc = Tcl_DictObjGet(interp, dict, k, value);
    Tcl_DecrRefCount(k);
    return rc;
}

/* Reads the fields of t from one section dict into base (a section of ms_snapshot or an
 * ms_gpu), setting their validity bits; where names the dict in errors ("process", "gpus 0"). */
static int ms__tcl_read_fields(Tcl_Interp *interp, Tcl_Obj *dict, const ms_field_table *t,
                               char *base, const char *where)
{
    uint64_t *valid = (uint64_t *)(void *)(base + t->valid_offset);
    const ms_field_info *f = t->fields;
    for (size_t k = 0; k < t->count; k++) {
        Tcl_Obj *v;
        if (ms__tcl_get(interp, dict, f[k].name, &v) != TCL_OK)
            return TCL_ERROR;
        if (!v)
            continue;
        char what[96];
        snprintf(what, sizeof(what), "%s.%s", where, f[k].name);
        if (ms__tcl_get_u64(interp, v, what, (uint64_t *)(void *)(base + f[k].offset)) != TCL_OK)
            return TCL_ERROR;
        *valid |= UINT64_C(1) << f[k].bit;
    }
    return TCL_OK;
}

/* Copies a string value (when present) into dst of len bytes, truncating. */
static int ms__tcl_read_str(Tcl_Interp *interp, Tcl_Obj *dict, const char *key, char *dst,
                            size_t len)
{
    Tcl_Obj *v;
    if (ms__tcl_get(interp, dict, key, &v) != TCL_OK)
        return TCL_ERROR;
    if (v)
        snprintf(dst, len, "%s", Tcl_GetString(v));
    return TCL_OK;
}

/* Reads the list of GPU dicts into snap->gpus (their processes are not needed for a delta). */
static int ms__tcl_read_gpus(Tcl_Interp *interp, Tcl_Obj *list, ms_snapshot *snap)
{
    int n;
    Tcl_Obj **items;
    if (Tcl_ListObjGetElements(interp, list, &n, &items) != TCL_OK)
        return TCL_ERROR;
    if (n > MS_GPU_MAX)
        return ms__tcl_error(interp, MS_ERANGE, NULL, "gpus: %d GPUs, at most %d are kept", (int)n,
                             MS_GPU_MAX);
    snap->captured |= MS_CAPTURE_GPU;
    for (int i = 0; i < n; i++) {
        ms_gpu *g = &snap->gpus[i];
        char where[32];
        snprintf(where, sizeof(where), "gpus %d", (int)i);
        Tcl_Obj *v;
        if (ms__tcl_get(interp, items[i], "index", &v) != TCL_OK)
            return TCL_ERROR;
        uint64_t index = (uint64_t)i;
        if (v && ms__tcl_get_u64(interp, v, where, &index) != TCL_OK)
            return TCL_ERROR;
        g->index = (uint32_t)index;
        if (ms__tcl_read_str(interp, items[i], "backend", g->backend, sizeof(g->backend)) ||
            ms__tcl_read_str(interp, items[i], "name", g->name, sizeof(g->name)) ||
            ms__tcl_read_str(interp, items[i], "uuid", g->uuid, sizeof(g->uuid)) ||
            ms__tcl_read_str(interp, items[i], "pci_bus_id", g->pci_bus_id, sizeof(g->pci_bus_id)))
            return TCL_ERROR;
        if (ms__tcl_get(interp, items[i], "is_per_process", &v) != TCL_OK)
            return TCL_ERROR;
        int b = 0;
        if (v && Tcl_GetBooleanFromObj(interp, v, &b) != TCL_OK)
            return TCL_ERROR;
        g->is_per_process = b;
        if (ms__tcl_read_fields(interp, items[i], ms__tcl_tables[MS_SECTION_GPU], (char *)g,
                                where) != TCL_OK)
            return TCL_ERROR;
        snap->gpu_count = (uint32_t)i + 1;
    }
    return TCL_OK;
}

/* Rebuilds an ms_snapshot from a snapshot dict (keys absent: fields left invalid). */
static int ms__tcl_dict_snapshot(Tcl_Interp *interp, Tcl_Obj *dict, ms_snapshot *snap)
{
    int size;
    if (Tcl_DictObjSize(interp, dict, &size) != TCL_OK)
        return TCL_ERROR;
    Tcl_Obj *v;
    if (ms__tcl_get(interp, dict, "schema", &v) != TCL_OK)
        return TCL_ERROR;
    if (v && strcmp(Tcl_GetString(v), MS_SNAPSHOT_SCHEMA) != 0)
        return ms__tcl_error(interp, MS_EPARSE, NULL, "schema \"%s\" is not %s", Tcl_GetString(v),
                             MS_SNAPSHOT_SCHEMA);
    static const char *const times[] = {"timestamp_ns", "monotonic_ns"};
    uint64_t *const slots[] = {&snap->timestamp_ns, &snap->monotonic_ns};
    for (int i = 0; i < 2; i++) {
        if (ms__tcl_get(interp, dict, times[i], &v) != TCL_OK)
            return TCL_ERROR;
        if (v && ms__tcl_get_u64(interp, v, times[i], slots[i]) != TCL_OK)
            return TCL_ERROR;
    }
    if (ms__tcl_read_str(interp, dict, "label", snap->label, sizeof(snap->label)) != TCL_OK)
        return TCL_ERROR;
    if (ms__tcl_get(interp, dict, "pid", &v) != TCL_OK)
        return TCL_ERROR;
    int pid = 0;
    if (v && Tcl_GetIntFromObj(interp, v, &pid) != TCL_OK)
        return TCL_ERROR;
    snap->pid = pid;
    for (size_t i = 0; i < MS__TCL_NSECTIONS; i++) {
        const ms_field_table *sec = ms__tcl_tables[i];
        Tcl_Obj *sd;
        if (ms__tcl_get(interp, dict, sec->name, &sd) != TCL_OK)
            return TCL_ERROR;
        if (!sd)
            continue;
        char *base = (char *)snap + sec->snapshot_offset;
        if (ms__tcl_read_fields(interp, sd, sec, base, sec->name) != TCL_OK)
            return TCL_ERROR;
        if (*(uint64_t *)(void *)(base + sec->valid_offset))
            snap->captured |= ms__tcl_capture_bit(sec);
    }
    if (ms__tcl_get(interp, dict, "gpus", &v) != TCL_OK)
        return TCL_ERROR;
    return v ? ms__tcl_read_gpus(interp, v, snap) : TCL_OK;
}

/* The delta as a dict: the keys of `memsnap diff --format json` (memsnap.delta/1). */
static Tcl_Obj *ms__tcl_delta_dict(const ms_snapshot *before, const ms_snapshot *after,
                                   const ms_delta *d)
{
    Tcl_Obj *o = Tcl_NewDictObj();
    ms__tcl_put(o, "schema", Tcl_NewStringObj("memsnap.delta/1", -1));
    ms__tcl_put(o, "elapsed_ns", Tcl_NewWideIntObj(d->elapsed_ns));
    ms__tcl_put_str(o, "before_label", before->label);
    ms__tcl_put_str(o, "after_label", after->label);
    for (size_t i = 0; i < MS__TCL_NSECTIONS; i++) {
        const ms_field_table *sec = ms__tcl_tables[i];
        const char *base = (const char *)d + sec->delta_offset;
        Tcl_Obj *sd = Tcl_NewDictObj();
        ms__tcl_put_fields(
            sd, sec, *(const uint64_t *)(const void *)(base + sec->delta_valid_offset), base, true);
        ms__tcl_put(o, sec->name, sd);
    }
    if (before->captured & after->captured & MS_CAPTURE_GPU) {
        Tcl_Obj *list = Tcl_NewListObj(0, NULL);
        for (uint32_t i = 0; i < d->gpu_count && i < MS_GPU_MAX; i++) {
            const ms_gpu_delta *g = &d->gpus[i];
            Tcl_Obj *gd = Tcl_NewDictObj();
            ms__tcl_put(gd, "index", Tcl_NewWideIntObj(g->index));
            ms__tcl_put(gd, "is_per_process", Tcl_NewBooleanObj(g->is_per_process));
            ms__tcl_put_fields(gd, ms__tcl_tables[MS_SECTION_GPU], g->valid, g, true);
            Tcl_ListObjAppendElement(NULL, list, gd);
        }
        ms__tcl_put(o, "gpus", list);
    }
    return o;
}

/* ---- the memsnap:: commands ---------------------------------------------------------------- */

/* Parses a pid option value: a positive process ID. */
static int ms__tcl_pid_arg(Tcl_Interp *interp, Tcl_Obj *obj, int *pid)
{
    const char *text = Tcl_GetString(obj);
    bool digits = *text != '\0'; /* Tcl's integers take " 5", "+5", "0x5", "5 " */
    for (const char *c = text; *c && digits; c++)
        digits = *c >= '0' && *c <= '9';
    if (!digits || Tcl_GetIntFromObj(NULL, obj, pid) != TCL_OK || *pid <= 0)
        return ms__tcl_error(interp, MS_EINVAL, NULL,
                             "bad pid \"%s\": must be a positive process ID", Tcl_GetString(obj));
    return TCL_OK;
}

/* The value of option objv[i], or an error naming the option when it is the last word. */
static int ms__tcl_opt_value(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[], int i,
                             Tcl_Obj **value)
{
    if (i + 1 >= objc)
        return ms__tcl_error(interp, MS_EINVAL, NULL, "missing value for %s",
                             Tcl_GetString(objv[i]));
    *value = objv[i + 1];
    return TCL_OK;
}

/* memsnap::snapshot ?-pid P? ?-full? ?-gpu bool? ?-label L? ?-device GPU?: one snapshot as a
 * dict; -device keeps only that GPU (an index, a UUID or a PCI bus id, as ms_options.device). */
static int ms__tcl_cmd_snapshot(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    static const char *const opts[] = {"-device", "-full", "-gpu", "-label", "-pid", NULL};
    enum { OPT_DEVICE, OPT_FULL, OPT_GPU, OPT_LABEL, OPT_PID };
    int pid = 0, gpu = 1;
    unsigned what = MS_CAPTURE_DEFAULT;
    const char *label = NULL, *device = NULL;
    for (int i = 1; i < objc; i++) {
        int idx;
        Tcl_Obj *value = NULL;
        if (Tcl_GetIndexFromObj(interp, objv[i], opts, "option", 0, &idx) != TCL_OK)
            return TCL_ERROR;
        if (idx != OPT_FULL && ms__tcl_opt_value(interp, objc, objv, i++, &value) != TCL_OK)
            return TCL_ERROR;
        if (idx == OPT_FULL)
            what = MS_CAPTURE_FULL;
        else if (idx == OPT_GPU && Tcl_GetBooleanFromObj(interp, value, &gpu) != TCL_OK)
            return TCL_ERROR;
        else if (idx == OPT_LABEL)
            label = Tcl_GetString(value);
        else if (idx == OPT_DEVICE && !*(device = Tcl_GetString(value)))
            return ms__tcl_error(interp, MS_EINVAL, NULL,
                                 "bad device \"\": must be a GPU index, UUID or PCI bus id");
        else if (idx == OPT_PID && ms__tcl_pid_arg(interp, value, &pid) != TCL_OK)
            return TCL_ERROR;
    }
    if (device && !gpu)
        return ms__tcl_error(interp, MS_EINVAL, NULL, "-device and -gpu 0 exclude each other");
    if (gpu)
        what |= MS_CAPTURE_GPU;
    ms_session *s = ms__tcl_device_session(interp, device);
    if (!s)
        return TCL_ERROR;
    ms_snapshot *snap = ms__tcl_snapshot_new();
    if (label)
        ms_snapshot_set_label(snap, label);
    int rc = ms_capture(s, pid, what, snap);
    char note[512] = "";
    if (rc == MS_ENOTSUP && (what & MS_CAPTURE_PSS)) {
        /* no address space (a kernel thread): reported without PSS and USS, and why */
        snprintf(note, sizeof(note), "%s", ms_session_error(s));
        rc = ms_capture(s, pid, what & ~(unsigned)MS_CAPTURE_PSS, snap);
    }
    int ret = TCL_OK;
    if (rc != 0) {
        char what_s[48];
        if (pid)
            snprintf(what_s, sizeof(what_s), "cannot capture pid %d", pid);
        else
            snprintf(what_s, sizeof(what_s), "cannot capture this process");
        ret = ms__tcl_session_error(interp, s, rc, what_s);
    }
    ms__tcl_release();
    if (ret == TCL_OK) {
        Tcl_Obj *d = ms__tcl_snapshot_dict(snap);
        if (note[0])
            ms__tcl_put(d, "note", Tcl_NewStringObj(note, -1));
        Tcl_SetObjResult(interp, d);
    }
    ckfree((char *)snap);
    return ret;
}

/* Reads -device N (memsnap::stats): *device is -1 when not given. */
static int ms__tcl_device_opt(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[], int *device)
{
    static const char *const opts[] = {"-device", NULL};
    *device = -1;
    for (int i = 1; i < objc; i += 2) {
        int idx;
        Tcl_Obj *value = NULL;
        if (Tcl_GetIndexFromObj(interp, objv[i], opts, "option", 0, &idx) != TCL_OK ||
            ms__tcl_opt_value(interp, objc, objv, i, &value) != TCL_OK)
            return TCL_ERROR;
        if (Tcl_GetIntFromObj(NULL, value, device) != TCL_OK || *device < 0)
            return ms__tcl_error(interp, MS_EINVAL, NULL,
                                 "bad device \"%s\": must be a GPU index (0, 1, ...)",
                                 Tcl_GetString(value));
    }
    return TCL_OK;
}

/* memsnap::stats ?-device N?: what the GPU backends found (cuda_available, device_count, the
 * backends and every GPU), or GPU N's dict. */
static int ms__tcl_cmd_stats(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    int device;
    if (ms__tcl_device_opt(interp, objc, objv, &device) != TCL_OK)
        return TCL_ERROR;
    ms_session *s = ms__tcl_session(interp);
    if (!s)
        return TCL_ERROR;
    struct ms__tcl_gpus st;
    ms_snapshot *snap = NULL;
    int ret = ms__tcl_gpu_state(interp, s, &st);
    if (ret == TCL_OK) {
        snap = ms__tcl_capture_self(interp, s);
        ret = snap ? TCL_OK : TCL_ERROR;
    }
    ms__tcl_release();
    if (ret != TCL_OK)
        return ret;
    if (device >= 0) {
        if ((uint32_t)device >= snap->gpu_count)
            ret = ms__tcl_error(interp, MS_ENOENT, NULL, "no GPU %d: %u found", device,
                                (unsigned)snap->gpu_count);
        else
            Tcl_SetObjResult(interp, ms__tcl_gpu_dict(&snap->gpus[device]));
        ckfree((char *)snap);
        return ret;
    }
    Tcl_Obj *d = Tcl_NewDictObj();
    ms__tcl_put(d, "cuda_available", Tcl_NewBooleanObj(st.cuda_devices > 0));
    ms__tcl_put(d, "device_count", Tcl_NewIntObj(st.cuda_devices));
    ms__tcl_put(d, "gpu_count", Tcl_NewWideIntObj(snap->gpu_count));
    Tcl_Obj *backends = Tcl_NewListObj(0, NULL);
    for (int i = 0; i < st.nbackends; i++) {
        const ms_gpu_backend_info *b = &st.backends[i];
        Tcl_Obj *bd = Tcl_NewDictObj();
        ms__tcl_put(bd, "name", Tcl_NewStringObj(b->name, -1));
        ms__tcl_put(bd, "available", Tcl_NewBooleanObj(b->available));
        ms__tcl_put(bd, "detail", Tcl_NewStringObj(b->detail, -1));
        ms__tcl_put(bd, "device_count", Tcl_NewWideIntObj(b->device_count));
        ms__tcl_put(bd, "per_process", Tcl_NewBooleanObj(b->per_process));
        ms__tcl_put_str(bd, "sampling_source", b->sampling_source);
        ms__tcl_put_str(bd, "driver_version", b->driver_version);
        ms__tcl_put_str(bd, "cuda_version", b->cuda_version);
        Tcl_ListObjAppendElement(NULL, backends, bd);
    }
    ms__tcl_put(d, "backends", backends);
    ms__tcl_put(d, "gpus", ms__tcl_gpus_list(snap));
    ckfree((char *)snap);
    Tcl_SetObjResult(interp, d);
    return TCL_OK;
}

/* memsnap::summary: the figures of torch::memory_summary as a dict: cuda_available,
 * device_count, gpus (every GPU), system and process (RSS ...). */
static int ms__tcl_cmd_summary(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    if (objc != 1) {
        Tcl_WrongNumArgs(interp, 1, objv, NULL);
        return TCL_ERROR;
    }
    struct ms__tcl_gpus st;
    ms_snapshot *snap = ms__tcl_gpu_snapshot(interp, &st);
    if (!snap)
        return TCL_ERROR;
    Tcl_Obj *d = Tcl_NewDictObj();
    ms__tcl_put(d, "cuda_available", Tcl_NewBooleanObj(st.cuda_devices > 0));
    ms__tcl_put(d, "device_count", Tcl_NewIntObj(st.cuda_devices));
    ms__tcl_put(d, "gpus", ms__tcl_gpus_list(snap));
    ms__tcl_put(d, "system", ms__tcl_section_dict(snap, MS_SECTION_SYSTEM));
    ms__tcl_put(d, "process", ms__tcl_section_dict(snap, MS_SECTION_PROCESS));
    ckfree((char *)snap);
    Tcl_SetObjResult(interp, d);
    return TCL_OK;
}

/* memsnap::trim: malloc_trim, and the bytes of RSS it gave back to the OS. */
static int ms__tcl_cmd_trim(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    if (objc != 1) {
        Tcl_WrongNumArgs(interp, 1, objv, NULL);
        return TCL_ERROR;
    }
    ms_session *s = ms__tcl_session(interp);
    if (!s)
        return TCL_ERROR;
    uint64_t released = 0;
    int ret = ms__tcl_trim(interp, s, &released);
    ms__tcl_release();
    if (ret == TCL_OK)
        Tcl_SetObjResult(interp, ms__tcl_u64(released));
    return ret;
}

/* Reads the before and after snapshot dicts of objv[0..1] into snaps (ckalloc'd; the caller
 * frees both, also after an error, which names the argument). */
static int ms__tcl_two_snapshots(Tcl_Interp *interp, Tcl_Obj *const objv[], ms_snapshot *snaps[2])
{
    snaps[0] = ms__tcl_snapshot_new();
    snaps[1] = ms__tcl_snapshot_new();
    for (int i = 0; i < 2; i++)
        if (ms__tcl_dict_snapshot(interp, objv[i], snaps[i]) != TCL_OK) {
            /* name the argument: "bad after snapshot: process.rss_bytes: ..." */
            Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad %s snapshot: %s", i ? "after" : "before",
                                                   Tcl_GetStringResult(interp)));
            return TCL_ERROR;
        }
    return TCL_OK;
}

/* memsnap::delta before after: after - before of two snapshot dicts, as a delta dict. */
static int ms__tcl_cmd_delta(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    if (objc != 3) {
        Tcl_WrongNumArgs(interp, 1, objv, "before after");
        return TCL_ERROR;
    }
    ms_snapshot *snaps[2];
    int ret = ms__tcl_two_snapshots(interp, objv + 1, snaps);
    if (ret == TCL_OK) {
        ms_delta *d = (ms_delta *)ckalloc(sizeof(*d));
        ms_delta_compute(snaps[0], snaps[1], d);
        Tcl_SetObjResult(interp, ms__tcl_delta_dict(snaps[0], snaps[1], d));
        ckfree((char *)d);
    }
    ckfree((char *)snaps[0]);
    ckfree((char *)snaps[1]);
    return ret;
}

/* memsnap::format -delta|-table before after: the library's one-line delta or its before/after
 * table (ms_report_line_buf, ms_report_table_buf) of two snapshot dicts, without the final
 * newline. */
static int ms__tcl_format_report(Tcl_Interp *interp, int table, Tcl_Obj *const objv[])
{
    ms_snapshot *snaps[2];
    int ret = ms__tcl_two_snapshots(interp, objv, snaps);
    if (ret == TCL_OK) {
        int (*fn)(char *, size_t, const ms_snapshot *, const ms_snapshot *) =
            table ? ms_report_table_buf : ms_report_line_buf;
        char small[512], *buf = small;
        int n = fn(small, sizeof(small), snaps[0], snaps[1]);
        if (n >= (int)sizeof(small)) { /* the whole text did not fit: once more, to size */
            buf = ckalloc((unsigned)n + 1);
            n = fn(buf, (size_t)n + 1, snaps[0], snaps[1]);
        }
        if (n < 0)
            ret = ms__tcl_error(interp, n, NULL, "memsnap::format: %s", ms_last_error());
        else {
            if (n > 0 && buf[n - 1] == '\n')
                n--; /* a Tcl string: `puts` gives the library's text */
            Tcl_SetObjResult(interp, Tcl_NewStringObj(buf, n));
        }
        if (buf != small)
            ckfree(buf);
    }
    ckfree((char *)snaps[0]);
    ckfree((char *)snaps[1]);
    return ret;
}

/* memsnap::format bytes: a byte count in binary units ("1.50 MiB"; negative: "-1.50 MiB").
 * memsnap::format -delta|-table before after: see ms__tcl_format_report. */
static int ms__tcl_cmd_format(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    static const char *const forms[] = {"-delta", "-table", NULL};
    int form;
    if (objc == 4 && Tcl_GetIndexFromObj(interp, objv[1], forms, "option", 0, &form) != TCL_OK)
        return TCL_ERROR;
    if (objc == 4)
        return ms__tcl_format_report(interp, form, objv + 2);
    if (objc != 2) {
        Tcl_WrongNumArgs(interp, 1, objv, "bytes | -delta before after | -table before after");
        return TCL_ERROR;
    }
    char buf[48];
    Tcl_WideInt w;
    uint64_t u;
    if (Tcl_GetString(objv[1])[0] == '-') {
        if (Tcl_GetWideIntFromObj(NULL, objv[1], &w) != TCL_OK)
            return ms__tcl_error(interp, MS_EINVAL, NULL, "expected a byte count but got \"%s\"",
                                 Tcl_GetString(objv[1]));
        ms_format_bytes_signed(buf, sizeof(buf), (int64_t)w);
    } else {
        if (ms__tcl_get_u64(interp, objv[1], "memsnap::format", &u) != TCL_OK)
            return TCL_ERROR;
        ms_format_bytes(buf, sizeof(buf), u);
    }
    Tcl_SetObjResult(interp, Tcl_NewStringObj(buf, -1));
    return TCL_OK;
}

/* The memsnap:: commands; add one here with its function above and its line in
 * docs/bindings-tcl.md. */
static const struct {
    const char *name;
    Tcl_ObjCmdProc *proc;
} ms__tcl_commands[] = {
    {"::memsnap::delta", ms__tcl_cmd_delta},       {"::memsnap::format", ms__tcl_cmd_format},
    {"::memsnap::snapshot", ms__tcl_cmd_snapshot}, {"::memsnap::stats", ms__tcl_cmd_stats},
    {"::memsnap::summary", ms__tcl_cmd_summary},   {"::memsnap::trim", ms__tcl_cmd_trim},
};

/* The package's entry point (`load libmemsnap_tcl.so Memsnap`, from pkgIndex.tcl). */
DLLEXPORT int Memsnap_Init(Tcl_Interp *interp);
int Memsnap_Init(Tcl_Interp *interp)
{
    if (Tcl_InitStubs(interp, "8.6", 0) == NULL)
        return TCL_ERROR;
    for (int i = 0; i < MS_SECTION_COUNT; i++) {
        int rc = ms_fields((ms_section)i, &ms__tcl_tables[i]);
        if (rc != 0)
            return ms__tcl_error(interp, rc, NULL, "memsnap: %s", ms_last_error());
    }
    for (size_t i = 0; i < sizeof(ms__tcl_commands) / sizeof(ms__tcl_commands[0]); i++)
        if (!Tcl_CreateObjCommand(interp, ms__tcl_commands[i].name, ms__tcl_commands[i].proc, NULL,
                                  NULL))
            return TCL_ERROR;
    if (ms__tcl_torch_init(interp) != TCL_OK || ms__tcl_heap_init(interp) != TCL_OK)
        return TCL_ERROR;
    return Tcl_PkgProvide(interp, "memsnap", MS_VERSION_STRING);
}
