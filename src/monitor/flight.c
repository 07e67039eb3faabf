/*
 * flight.c - the OOM flight recorder: the last N samples and events in a ring, written out as a
 * bundle directory when an out-of-memory happens, with retention of old bundles.
 *
 * The ring keeps samples compactly (an ms_snapshot up to its last GPU) and events as the JSON
 * text given. A dump builds each file in memory, writes it 0600 into a hidden temporary
 * directory (0700) of the dump directory, and renames that to
 * oom_dump_<UTC YYYYmmddTHHMMSSZ>_<pid>_<backend>_<seq> only when every file is written, so a
 * bundle that has its final name is complete. Samples are serialized by the JSON sink
 * (src/sink/json.c) through ms_writer; the other files with jansson. trace_tail.json comes from
 * the trace reader (the last events, streamed) and the snapshot engine (the live heap at the
 * trace's end). Retention then deletes the oldest bundles (by the time in the name, then seq)
 * beyond max_dumps or max_total_bytes, never the one just written and never anything whose
 * name is not a bundle's. docs/monitor-format.md describes every file.
 */
#include "flight.h"

#include "../core/json_out.h"
#include "../sink/sink.h"
#include "../trace/format.h"
#include "../trace/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MS__FLIGHT_DEFAULT   1000 /* ring entries when buffer_size is 0 */
#define MS__TAIL_EVENTS      1000 /* tracker events in trace_tail.json */
#define MS__TAIL_SITES       20   /* live sites in trace_tail.json */
#define MS__BUNDLE_PREFIX    "oom_dump_"
#define MS__BUNDLE_SCHEMA    "memsnap.oom_bundle/1"
#define MS__BUNDLE_MAX_FILES 5

/* Environment variables copied into environment.json when set: the job's identity and the
 * accelerators it was given. */
static const char *const ms__env_names[] = {
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "ZE_AFFINITY_MASK",
    "PYTORCH_CUDA_ALLOC_CONF",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NODEID",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "OMP_NUM_THREADS",
    "KUBERNETES_POD_NAME",
    "HOSTNAME",
};

enum ms__entry_kind { MS__ENTRY_SAMPLE, MS__ENTRY_EVENT };

/* One ring entry. */
struct ms__entry {
    uint8_t kind; /* enum ms__entry_kind */
    size_t len;   /* bytes at data */
    size_t cap;   /* bytes allocated at data */
    uint64_t ns;  /* wall clock: the sample's timestamp, or when the event was given */
    void *data;   /* a sample's first len bytes, or an event's NUL-terminated JSON text */
};

struct ms_flight {
    pthread_mutex_t mu; /* every entry point holds it: a sampler thread pushes, another dumps */
    char *dump_dir;
    char *trace_path; /* NULL when none */
    char **argv;      /* NULL-terminated copy, NULL when none */
    unsigned max_dumps;
    uint64_t max_total;
    struct ms__entry *ring;
    size_t cap;          /* entries in the ring */
    size_t head;         /* the oldest entry */
    size_t count;        /* entries held */
    bool has_last;       /* last holds the newest sample pushed */
    ms_snapshot last;    /* for environment.json: the cgroup and GPUs */
    ms_snapshot scratch; /* a sample rebuilt from the ring while dumping */
    uint64_t next_seq;   /* no bundle of this recorder gets a lower seq */
};

/* A file of a bundle being built: its name and text. */
struct ms__bfile {
    const char *name;
    char *text;
    size_t len;
};

/* ---------------------------------------------------------------------------------------- */
/* The ring                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static uint64_t ms__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The ring slot for a new entry: the next free one, or the oldest, which is dropped. */
static struct ms__entry *ms__ring_next(ms__flight *f)
{
    if (f->count < f->cap)
        return &f->ring[(f->head + f->count++) % f->cap];
    struct ms__entry *e = &f->ring[f->head];
    f->head = (f->head + 1) % f->cap;
    return e;
}

/* Stores len bytes in e, reusing its buffer; false when out of memory (e is left empty). */
static bool ms__entry_set(struct ms__entry *e, uint8_t kind, const void *data, size_t len,
                          uint64_t ns)
{
    if (len > e->cap) {
        void *p = realloc(e->data, len);
        if (!p) {
            e->len = 0;
            return false;
        }
        e->data = p;
        e->cap = len;
    }
    memcpy(e->data, data, len);
    e->kind = kind;
    e->len = len;
    e->ns = ns;
    return true;
}

int ms__flight_open(ms__flight **out, const struct ms__flight_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    if (!o || !o->dump_dir || !*o->dump_dir) {
        snprintf(err, errlen, "no dump directory given");
        return MS_EINVAL;
    }
    if (mkdir(o->dump_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create dump directory %s: %s", o->dump_dir, strerror(errno));
        return ms__errno_code(errno);
    }
    struct stat st;
    if (stat(o->dump_dir, &st) != 0) {
        snprintf(err, errlen, "dump directory %s: %s", o->dump_dir, strerror(errno));
        return ms__errno_code(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "dump directory %s: not a directory", o->dump_dir);
        return MS_EINVAL;
    }
    if (access(o->dump_dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "dump directory %s: %s", o->dump_dir, strerror(errno));
        return ms__errno_code(errno);
    }
    ms__flight *f = calloc(1, sizeof(*f));
    if (!f)
        goto nomem;
    pthread_mutex_init(&f->mu, NULL);
    f->cap = o->buffer_size ? o->buffer_size : MS__FLIGHT_DEFAULT;
    f->ring = calloc(f->cap, sizeof(*f->ring));
    f->dump_dir = strdup(o->dump_dir);
    f->trace_path = o->trace_path ? strdup(o->trace_path) : NULL;
    f->max_dumps = o->max_dumps;
    f->max_total = o->max_total_bytes;
    if (!f->ring || !f->dump_dir || (o->trace_path && !f->trace_path))
        goto nomem;
    if (o->argv && !(f->argv = ms__argv_dup(o->argv)))
        goto nomem;
    *out = f;
    return 0;
nomem:
    ms__flight_close(f);
    snprintf(err, errlen, "out of memory");
    return MS_ENOMEM;
}

void ms__flight_push(ms__flight *f, const ms_snapshot *snap)
{
    if (!f || !snap)
        return;
    uint32_t ngpu = snap->gpu_count < MS_GPU_MAX ? snap->gpu_count : MS_GPU_MAX;
    size_t len = offsetof(ms_snapshot, gpus) + ngpu * sizeof(ms_gpu);
    pthread_mutex_lock(&f->mu);
    ms__entry_set(ms__ring_next(f), MS__ENTRY_SAMPLE, snap, len, snap->timestamp_ns);
    memcpy(&f->last, snap, len); /* readers stop at gpu_count */
    f->has_last = true;
    pthread_mutex_unlock(&f->mu);
}

void ms__flight_event(ms__flight *f, const char *json_object)
{
    if (!f || !json_object)
        return;
    /* Kept as given when it is one JSON object; otherwise wrapped, so events.json stays JSON. */
    json_t *j = json_loads(json_object, JSON_DECODE_ANY, NULL);
    bool valid = j && json_is_object(j);
    json_decref(j);
    char *wrapped = NULL;
    if (!valid) {
        json_t *w = json_pack("{s:s}", "invalid_event", json_object);
        wrapped = w ? json_dumps(w, JSON_COMPACT) : NULL;
        json_decref(w);
    }
    const char *keep = valid ? json_object : wrapped ? wrapped : "{\"invalid_event\":null}";
    pthread_mutex_lock(&f->mu);
    ms__entry_set(ms__ring_next(f), MS__ENTRY_EVENT, keep, strlen(keep) + 1, ms__now_ns());
    pthread_mutex_unlock(&f->mu);
    free(wrapped);
}

void ms__flight_close(ms__flight *f)
{
    if (!f)
        return;
    for (size_t i = 0; f->ring && i < f->cap; i++)
        free(f->ring[i].data);
    free(f->ring);
    ms__argv_free(f->argv);
    free(f->dump_dir);
    free(f->trace_path);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---------------------------------------------------------------------------------------- */
/* The files of a bundle                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Serializes j (and drops it) into b as text with a final newline; false when out of memory. */
static bool ms__bfile_json(struct ms__bfile *b, const char *name, json_t *j)
{
    b->name = name;
    b->text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(j);
    if (!b->text)
        return false;
    b->len = strlen(b->text);
    char *p = realloc(b->text, b->len + 2);
    if (!p)
        return false;
    b->text = p;
    b->text[b->len++] = '\n';
    b->text[b->len] = '\0';
    return true;
}

/* events.json: the ring, oldest first; samples as the JSON sink writes snapshots. */
static bool ms__events_json(ms__flight *f, struct ms__bfile *b)
{
    b->name = "events.json";
    FILE *fp = open_memstream(&b->text, &b->len);
    if (!fp)
        return false;
    ms_writer *w = NULL;
    bool ok = ms_writer_open(&w, MS_FORMAT_JSON, fp) == 0;
    fputs("[\n", fp);
    for (size_t i = 0; ok && i < f->count; i++) {
        const struct ms__entry *e = &f->ring[(f->head + i) % f->cap];
        if (i)
            fputc(',', fp);
        if (e->kind == MS__ENTRY_SAMPLE && e->len) {
            memset(&f->scratch, 0, sizeof(f->scratch));
            memcpy(&f->scratch, e->data, e->len);
            ok = ms_writer_snapshot(w, &f->scratch) == 0; /* one object and a newline */
        } else {
            fputs(e->len ? (const char *)e->data : "null", fp);
            fputc('\n', fp);
        }
    }
    fputs("]\n", fp);
    if (w && ms_writer_close(w) != 0)
        ok = false;
    if (fclose(fp) != 0)
        ok = false;
    return ok;
}

/* Counts the samples and events in the ring. */
static void ms__ring_counts(const ms__flight *f, size_t *samples, size_t *events)
{
    *samples = *events = 0;
    for (size_t i = 0; i < f->count; i++) {
        if (f->ring[(f->head + i) % f->cap].kind == MS__ENTRY_SAMPLE)
            (*samples)++;
        else
            (*events)++;
    }
}

static json_t *ms__str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *ms__u64(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* metadata.json: what happened, when, and the caller's extra members. */
static bool ms__metadata_json(ms__flight *f, struct ms__bfile *b, const char *backend, pid_t pid,
                              const char *reason, const char *extra_json, uint64_t now,
                              uint64_t seq)
{
    size_t samples, events;
    ms__ring_counts(f, &samples, &events);
    char iso[64];
    ms__iso_time(iso, sizeof(iso), now);
    json_t *m =
        json_pack("{s:s,s:o,s:i,s:s,s:o,s:s,s:o,s:o,s:o,s:o}", "schema", MS__BUNDLE_SCHEMA,
                  "reason", ms__str_or_null(reason), "pid", (int)pid, "backend", backend, "time_ns",
                  ms__u64(now), "time", iso, "seq", ms__u64(seq), "samples", ms__u64(samples),
                  "events", ms__u64(events), "buffer_size", ms__u64(f->cap));
    if (m && extra_json) {
        json_error_t je;
        json_t *x = json_loads(extra_json, 0, &je);
        if (x && json_is_object(x))
            json_object_update_missing(m, x); /* the recorder's own members win */
        else
            json_object_set_new(m, "extra_error",
                                json_string(x ? "extra_json is not a JSON object" : je.text));
        json_decref(x);
    }
    return ms__bfile_json(b, "metadata.json", m);
}

/* environment.json: the host, memsnap, the cgroup and GPUs of the last sample, the command. */
static bool ms__environment_json(ms__flight *f, struct ms__bfile *b)
{
    json_t *env = json_object();
    if (!env)
        return false;
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    struct utsname u;
    bool have_u = uname(&u) == 0;
    json_object_set_new(env, "hostname", ms__str_or_null(host));
    json_object_set_new(env, "kernel",
                        have_u ? json_pack("{s:s,s:s,s:s,s:s}", "sysname", u.sysname, "release",
                                           u.release, "version", u.version, "machine", u.machine)
                               : json_null());
    json_object_set_new(env, "memsnap_version", json_string(ms_version()));
    json_object_set_new(env, "memsnap_pid", json_integer(getpid()));

    const ms_cgroup_mem *cg = f->has_last ? &f->last.cgroup : NULL;
    if (cg && cg->version != MS_CGROUP_NONE)
        json_object_set_new(
            env, "cgroup",
            json_pack("{s:i,s:s,s:b,s:o}", "version", (int)cg->version, "path", cg->path,
                      "unlimited", cg->unlimited, "limit_bytes",
                      ms_valid(cg, MS_CF_max_bytes) ? ms__u64(cg->max_bytes) : json_null()));
    else
        json_object_set_new(env, "cgroup", json_null());

    json_t *gpus = json_array();
    for (uint32_t i = 0; gpus && f->has_last && (f->last.captured & MS_CAPTURE_GPU) &&
                         i < f->last.gpu_count && i < MS_GPU_MAX;
         i++) {
        const ms_gpu *g = &f->last.gpus[i];
        json_array_append_new(
            gpus,
            json_pack("{s:i,s:s,s:o,s:o,s:o,s:o}", "index", (int)g->index, "backend", g->backend,
                      "name", ms__str_or_null(g->name), "uuid", ms__str_or_null(g->uuid),
                      "pci_bus_id", ms__str_or_null(g->pci_bus_id), "total_bytes",
                      ms_valid(g, MS_GF_total_bytes) ? ms__u64(g->total_bytes) : json_null()));
    }
    json_object_set_new(env, "gpus", gpus ? gpus : json_null());

    json_t *argv = f->argv ? json_array() : json_null();
    for (char **a = f->argv; a && *a && argv; a++)
        json_array_append_new(argv, json_string(*a));
    json_object_set_new(env, "argv", argv);

    json_t *vars = json_object();
    for (size_t i = 0; vars && i < sizeof(ms__env_names) / sizeof(ms__env_names[0]); i++) {
        const char *v = getenv(ms__env_names[i]);
        if (v)
            json_object_set_new(vars, ms__env_names[i], json_string(v));
    }
    json_object_set_new(env, "env", vars ? vars : json_null());
    return ms__bfile_json(b, "environment.json", env);
}

/* ---------------------------------------------------------------------------------------- */
/* trace_tail.json                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* The last MS__TAIL_EVENTS call slots of a trace, kept while it streams past. */
struct ms__tail {
    struct ms__trace_event ev[MS__TAIL_EVENTS];
    size_t next;  /* where the next one goes */
    size_t count; /* held */
};

static int ms__tail_chunk(void *ctx, const struct ms__trace_data *td, size_t from, size_t to)
{
    struct ms__tail *t = ctx;
    for (size_t i = from; i < to; i++) {
        const struct ms__trace_event *e = &td->events[i - td->slot_base];
        if (!ms__trace_kind_is_event(e->kind))
            continue;
        t->ev[t->next] = *e;
        t->next = (t->next + 1) % MS__TAIL_EVENTS;
        if (t->count < MS__TAIL_EVENTS)
            t->count++;
    }
    return 0;
}

static const char *ms__kind_name(unsigned kind)
{
    switch (kind) {
    case MS__EV_ALLOC:
        return "alloc";
    case MS__EV_FREE:
        return "free";
    case MS__EV_REALLOC:
        return "realloc";
    case MS__EV_MMAP:
        return "mmap";
    case MS__EV_MUNMAP:
        return "munmap";
    case MS__EV_MREMAP:
        return "mremap";
    case MS__EV_UNMATCHED_FREE:
        return "unmatched_free";
    default:
        return "other";
    }
}

/* The last events of the trace, oldest first, read with the streaming loader. Sets *err_out to
 * a message when the trace cannot be read. */
static json_t *ms__tail_events(const char *path, json_t *tt, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct ms__tail *t = calloc(1, sizeof(*t));
    struct ms__trace_data *td = NULL;
    int rc = t ? ms__trace_load_fd_stream(&td, fd, ms__tail_chunk, t, err, errlen) : MS_ENOMEM;
    close(fd);
    if (rc) {
        if (!t)
            snprintf(err, errlen, "out of memory");
        free(t);
        return NULL;
    }
    json_object_set_new(tt, "complete", json_boolean(td->complete));
    json_object_set_new(tt, "truncated", json_boolean(td->truncated));
    json_object_set_new(tt, "warning", td->truncated ? json_string(td->warning) : json_null());
    json_object_set_new(tt, "duration_ns", ms__u64(td->end_time));
    json_object_set_new(tt, "events_total", ms__u64(td->nevents));
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < t->count; k++) {
        const struct ms__trace_event *e =
            &t->ev[(t->next + MS__TAIL_EVENTS - t->count + k) % MS__TAIL_EVENTS];
        bool heap = e->kind == MS__EV_ALLOC || e->kind == MS__EV_FREE ||
                    e->kind == MS__EV_REALLOC || e->kind == MS__EV_UNMATCHED_FREE;
        const struct ms__trace_info *in = e->info < td->ninfos ? &td->infos[e->info] : NULL;
        json_t *o = json_pack("{s:o,s:s}", "time_ns", ms__u64(ms__trace_event_ns(td, e)), "kind",
                              ms__kind_name(e->kind));
        if (!o)
            continue;
        if (e->kind != MS__EV_UNMATCHED_FREE)
            json_object_set_new(o, heap ? "block" : "address",
                                heap ? ms__u64(e->id) : ms__json_hex(e->id));
        json_object_set_new(o, "size", in ? ms__u64(in->size) : json_null());
        json_object_set_new(o, "stack", in && in->stack ? json_integer(in->stack) : json_null());
        json_object_set_new(o, "tid",
                            in && in->thread < td->nthreads
                                ? json_integer(td->threads[in->thread].tid)
                                : json_null());
        json_array_append_new(arr, o);
    }
    free(t);
    ms__trace_data_free(td);
    return arr;
}

/* The top live sites at the trace's end, rendered by ms_heap_write (the one renderer of heap
 * rows) with unsymbolized frames (ip, module, offset): nothing reads debug info in a dump. */
static json_t *ms__tail_sites(const char *path, json_t *tt, char *err, size_t errlen)
{
    ms_heap *h;
    if (ms_heap_open(&h, path) != 0) {
        snprintf(err, errlen, "%s", ms_last_error());
        return NULL;
    }
    ms_heap_view *v;
    if (ms_heap_leaks(h, &v) != 0) {
        snprintf(err, errlen, "out of memory");
        ms_heap_close(h);
        return NULL;
    }
    json_object_set_new(tt, "end_time_ns", ms__u64(ms_heap_view_time(v)));
    json_object_set_new(tt, "live_bytes", json_integer(ms_heap_view_bytes(v)));
    json_object_set_new(tt, "live_allocations", json_integer(ms_heap_view_count(v)));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int rc = mem ? ms_heap_write(h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES,
                                 MS_HEAP_FORMAT_JSON_ADDRESSES, MS__TAIL_SITES, mem)
                 : MS_ENOMEM;
    if (mem && fclose(mem) != 0 && rc == 0)
        rc = MS_ENOMEM;
    json_t *doc = rc == 0 ? json_loads(text, 0, NULL) : NULL;
    json_t *arr = json_object_get(doc, "sites");
    if (!arr)
        snprintf(err, errlen, "out of memory");
    arr = arr ? json_incref(arr) : json_array();
    json_decref(doc);
    free(text);
    ms_heap_view_free(v);
    ms_heap_close(h);
    return arr;
}

/* trace_tail.json: never fails the dump; a trace that cannot be read gives "error". */
static bool ms__trace_tail_json(ms__flight *f, struct ms__bfile *b)
{
    json_t *tt = json_pack("{s:s,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "trace", f->trace_path,
                           "complete", "truncated", "warning", "duration_ns", "events_total",
                           "end_time_ns", "live_bytes", "live_allocations");
    if (!tt)
        return false;
    char err[512] = "";
    json_t *events = ms__tail_events(f->trace_path, tt, err, sizeof(err));
    json_t *sites = events ? ms__tail_sites(f->trace_path, tt, err, sizeof(err)) : NULL;
    json_object_set_new(tt, "events", events ? events : json_array());
    json_object_set_new(tt, "top_sites", sites ? sites : json_array());
    json_object_set_new(tt, "error", err[0] ? json_string(err) : json_null());
    return ms__bfile_json(b, "trace_tail.json", tt);
}

/* manifest.json: every other file with its size and CRC-32C. */
static bool ms__manifest_json(const struct ms__bfile *files, size_t n, struct ms__bfile *b)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char crc[16];
        snprintf(crc, sizeof(crc), "%08x", (unsigned)ms_crc32c(0, files[i].text, files[i].len));
        json_array_append_new(arr, json_pack("{s:s,s:o,s:s}", "name", files[i].name, "bytes",
                                             ms__u64(files[i].len), "crc32c", crc));
    }
    return ms__bfile_json(b, "manifest.json",
                          arr ? json_pack("{s:s,s:s,s:o}", "schema", MS__BUNDLE_SCHEMA, "checksum",
                                          "crc32c", "files", arr)
                              : NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Bundle directories                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* A bundle found in the dump directory. */
struct ms__bundle {
    char name[256];
    char stamp[17]; /* YYYYmmddTHHMMSSZ */
    uint64_t seq;
    uint64_t bytes; /* of its files */
};

/* True when name is oom_dump_<YYYYmmddTHHMMSSZ>_<pid>_<backend>_<seq>; fills stamp and seq. */
static bool ms__bundle_name(const char *name, char stamp[17], uint64_t *seq)
{
    size_t pl = strlen(MS__BUNDLE_PREFIX);
    if (strncmp(name, MS__BUNDLE_PREFIX, pl) != 0 || strlen(name) < pl + 16 + 6)
        return false;
    const char *t = name + pl;
    for (int i = 0; i < 16; i++) {
        bool ok = i == 8 ? t[i] == 'T' : i == 15 ? t[i] == 'Z' : t[i] >= '0' && t[i] <= '9';
        if (!ok)
            return false;
    }
    const char *p = t + 16;
    if (*p++ != '_' || !(*p >= '0' && *p <= '9'))
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p++ != '_')
        return false;
    const char *backend = p;
    while (*p && *p != '_')
        p++;
    if (p == backend || *p++ != '_' || !*p)
        return false;
    uint64_t v = 0;
    const char *after = ms__parse_u64(p, p + strlen(p), &v);
    if (!after || *after)
        return false;
    memcpy(stamp, t, 16);
    stamp[16] = '\0';
    *seq = v;
    return true;
}

/* Bytes of the regular files directly in dir (a bundle holds nothing else). */
static uint64_t ms__dir_bytes(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    uint64_t total = 0;
    struct dirent *de;
    struct stat st;
    while ((de = readdir(d)) != NULL)
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    closedir(d);
    return total;
}

/* Removes dir name of dfd and the files in it; 0 or a negative errno. */
static int ms__remove_dir(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            unlinkat(fd, de->d_name, 0); /* a subdirectory stays, and so does the bundle */
    closedir(d);
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0 ? 0 : -errno;
}

/* Lists the bundles of the dump directory (dfd); with sizes when want_bytes. Returns how many
 * (*out malloc'd), or -1 when out of memory or unreadable. */
static ssize_t ms__list_bundles(int dfd, struct ms__bundle **out, bool want_bytes)
{
    *out = NULL;
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    struct ms__bundle *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct ms__bundle b;
        struct stat st;
        if (strlen(de->d_name) >= sizeof(b.name) || !ms__bundle_name(de->d_name, b.stamp, &b.seq) ||
            fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        snprintf(b.name, sizeof(b.name), "%s", de->d_name);
        b.bytes = want_bytes ? ms__dir_bytes(dfd, de->d_name) : 0;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct ms__bundle *p = realloc(v, nc * sizeof(*v));
            if (!p) {
                free(v);
                closedir(d);
                return -1;
            }
            v = p;
            cap = nc;
        }
        v[n++] = b;
    }
    closedir(d);
    *out = v;
    return (ssize_t)n;
}

/* Oldest first: by the time in the name, then seq. */
static int ms__bundle_cmp(const void *a, const void *b)
{
    const struct ms__bundle *x = a, *y = b;
    int c = strcmp(x->stamp, y->stamp);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Deletes the oldest bundles beyond the limits, never `keep`. */
static void ms__retention(ms__flight *f, int dfd, const char *keep)
{
    if (!f->max_dumps && !f->max_total)
        return;
    struct ms__bundle *v;
    ssize_t n = ms__list_bundles(dfd, &v, f->max_total != 0);
    if (n <= 0) {
        free(v);
        return;
    }
    qsort(v, (size_t)n, sizeof(*v), ms__bundle_cmp);
    uint64_t total = 0;
    for (ssize_t i = 0; i < n; i++)
        total += v[i].bytes;
    size_t left = (size_t)n;
    for (ssize_t i = 0; i < n; i++) {
        bool over = (f->max_dumps && left > f->max_dumps) || (f->max_total && total > f->max_total);
        if (!over)
            break;
        if (strcmp(v[i].name, keep) == 0)
            continue;
        if (ms__remove_dir(dfd, v[i].name) == 0) {
            left--;
            total -= v[i].bytes;
        }
    }
    free(v);
}

/* Writes the files into the directory tmp of dfd; 0 or a negative errno with the file's name. */
static int ms__write_files(int dfd, const char *tmp, const struct ms__bfile *files, size_t n,
                           const char **failed)
{
    int td = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (td < 0) {
        *failed = tmp;
        return -errno;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        *failed = files[i].name;
        int fd = openat(td, files[i].name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = -errno;
            break;
        }
        size_t off = 0;
        while (off < files[i].len) {
            ssize_t w = write(fd, files[i].text + off, files[i].len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = w < 0 ? -errno : -EIO;
                break;
            }
            off += (size_t)w;
        }
        if (close(fd) != 0 && !rc)
            rc = -errno;
    }
    close(td);
    return rc;
}

/* ms__flight_dump with f->mu held. */
static int ms__flight_dump_locked(ms__flight *f, const char *backend, pid_t pid, const char *reason,
                                  const char *extra_json, char *path_out, size_t path_len,
                                  char *err, size_t errlen)
{
    char dummy[2];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (path_out && path_len)
        path_out[0] = '\0';
    if (!f)
        return MS_EINVAL;
    /* '_' separates the fields of the name: the backend gets [A-Za-z0-9.-] only. */
    char be[32];
    size_t bl = 0;
    for (const char *p = backend && *backend ? backend : "unknown"; *p && bl + 1 < sizeof(be); p++)
        be[bl++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
                       ? *p
                       : '-';
    be[bl] = '\0';

    int dfd = open(f->dump_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "dump directory %s: %s", f->dump_dir, strerror(errno));
        return ms__errno_code(errno);
    }
    uint64_t now = ms__now_ns();
    time_t sec = (time_t)(now / 1000000000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);

    /* seq: above every bundle already there and every one this recorder wrote. */
    uint64_t seq = f->next_seq;
    struct ms__bundle *v;
    ssize_t n = ms__list_bundles(dfd, &v, false);
    for (ssize_t i = 0; i < n; i++)
        if (v[i].seq >= seq)
            seq = v[i].seq + 1;
    free(v);

    struct ms__bfile files[MS__BUNDLE_MAX_FILES] = {{0}};
    size_t nf = 0;
    bool ok = ms__events_json(f, &files[nf++]) &&
              ms__metadata_json(f, &files[nf++], be, pid, reason, extra_json, now, seq) &&
              ms__environment_json(f, &files[nf++]) &&
              (!f->trace_path || ms__trace_tail_json(f, &files[nf++]));
    ok = ok && ms__manifest_json(files, nf, &files[nf]);
    nf++;
    int rc = 0;
    char tmp[128], name[256];
    snprintf(tmp, sizeof(tmp), ".tmp-oom_dump_%d_%" PRIu64, (int)getpid(), seq);
    if (!ok) {
        snprintf(err, errlen, "out of memory while building the OOM bundle");
        rc = MS_ENOMEM;
        goto out;
    }
    if (mkdirat(dfd, tmp, 0700) != 0) {
        snprintf(err, errlen, "cannot create %s/%s: %s", f->dump_dir, tmp, strerror(errno));
        rc = ms__errno_code(errno);
        goto out;
    }
    const char *failed = NULL;
    int e = ms__write_files(dfd, tmp, files, nf, &failed);
    if (e) {
        snprintf(err, errlen, "cannot write %s/%s/%s: %s", f->dump_dir, tmp, failed, strerror(-e));
        ms__remove_dir(dfd, tmp);
        rc = ms__errno_code(-e);
        goto out;
    }
    /* The final name appears only now, complete. Another recorder's bundle of the same seq
     * and second (a race on one directory) moves ours to the next seq, which its
     * metadata.json, written before, does not know: the name is authoritative. */
    for (int tries = 0;; tries++, seq++) {
        snprintf(name, sizeof(name), MS__BUNDLE_PREFIX "%s_%d_%s_%" PRIu64, stamp, (int)pid, be,
                 seq);
        int r = renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE);
        if (r != 0 && errno == EINVAL) /* a filesystem without it: a non-empty dir is kept */
            r = renameat(dfd, tmp, dfd, name);
        if (r == 0)
            break;
        if ((errno != EEXIST && errno != ENOTEMPTY) || tries >= 64) {
            snprintf(err, errlen, "cannot rename %s/%s to %s: %s", f->dump_dir, tmp, name,
                     strerror(errno));
            rc = ms__errno_code(errno);
            ms__remove_dir(dfd, tmp);
            goto out;
        }
    }
    f->next_seq = seq + 1;
    if (path_out && path_len)
        snprintf(path_out, path_len, "%s/%s", f->dump_dir, name);
    ms__retention(f, dfd, name);
out:
    for (size_t i = 0; i < nf; i++)
        free(files[i].text);
    close(dfd);
    return rc;
}

int ms__flight_dump(ms__flight *f, const char *backend, pid_t pid, const char *reason,
                    const char *extra_json, char *path_out, size_t path_len, char *err,
                    size_t errlen)
{
    if (!f) {
        if (err && errlen)
            err[0] = '\0';
        if (path_out && path_len)
            path_out[0] = '\0';
        return MS_EINVAL;
    }
    pthread_mutex_lock(&f->mu);
    int rc = ms__flight_dump_locked(f, backend, pid, reason, extra_json, path_out, path_len, err,
                                    errlen);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The public API: the same, with errors as the calling thread's last (ms_last_error)         */
/* ---------------------------------------------------------------------------------------- */

int ms_flight_open(ms_flight **out, const ms_flight_options *o)
{
    if (!out)
        return ms__error(MS_EINVAL, "ms_flight_open: no handle to fill");
    *out = NULL;
    if (!o)
        return ms__error(MS_EINVAL, "no dump directory given");
    const struct ms__flight_opts fo = {
        .dump_dir = o->dump_dir,
        .buffer_size = o->buffer_size,
        .max_dumps = o->max_dumps,
        .max_total_bytes = o->max_total_bytes,
        .trace_path = o->trace_path,
        .argv = o->argv,
    };
    char err[512] = "";
    int rc = ms__flight_open(out, &fo, err, sizeof(err));
    return rc ? ms__error(rc, "%s", err) : 0;
}

int ms_flight_push(ms_flight *f, const ms_snapshot *snap)
{
    if (!f || !snap)
        return ms__error(MS_EINVAL, "ms_flight_push: no recorder or no snapshot");
    ms__flight_push(f, snap);
    return 0;
}

int ms_flight_event(ms_flight *f, const char *json_object)
{
    if (!f || !json_object)
        return ms__error(MS_EINVAL, "ms_flight_event: no recorder or no event");
    ms__flight_event(f, json_object);
    return 0;
}

int ms_flight_dump(ms_flight *f, const char *backend, pid_t pid, const char *reason,
                   const char *extra_json, char *path, size_t path_len)
{
    char err[512] = "";
    if (!f)
        return ms__error(MS_EINVAL, "ms_flight_dump: no recorder");
    int rc = ms__flight_dump(f, backend, pid, reason, extra_json, path, path_len, err, sizeof(err));
    return rc ? ms__error(rc, "%s", err[0] ? err : ms_strerror(rc)) : 0;
}

void ms_flight_close(ms_flight *f)
{
    ms__flight_close(f);
}
