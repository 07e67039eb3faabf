/*
 * gpu.c - the GPU registry: which backends run, and how a device becomes an ms_gpu.
 *
 * The backends are listed once below, each under its build option. On the first GPU capture
 * or ms_gpu_backends() call of a session every backend is initialised once (nvidia-smi only
 * when NVML cannot be loaded: it is a fallback, not a second view of the same GPUs); they stay
 * loaded until ms_session_close(). A capture asks each backend to refresh its device list,
 * samples every device, and reduces the processes it reported to the snapshot's gpus[]: the
 * largest first, at most MS_GPU_PROC_MAX, with process_used_bytes for the snapshot's process
 * (matched through every PID it has in nested PID namespaces, NSpid in <procfs>/PID/status).
 *
 * MEMSNAP_GPU_BACKENDS (a comma list such as "drm" or "nvml,drm") limits the backends tried.
 * A session opened with ms_options.device captures one GPU: the devices before it are only
 * counted (a UUID or PCI bus id needs each one's identity, not its processes), and every GPU
 * keeps the index it has among all of them.
 */
#include "gpu.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct ms__gpu_ops *const ms__gpu_table[] = {
#ifdef MS_HAVE_NVML
    &ms__gpu_nvml,
#endif
#ifdef MS_HAVE_NVSMI
    &ms__gpu_nvsmi,
#endif
#ifdef MS_HAVE_DRM
    &ms__gpu_drm,
#endif
    NULL,
};

#define MS__GPU_NB_MAX 3 /* backends that exist, compiled in or not */
#define MS__GPU_NSPID  8 /* nested PID namespaces followed */

/* One backend's state in a session. */
struct ms__gpu_backend {
    void *ctx;     /* the backend's state when loaded */
    bool loaded;   /* init succeeded */
    int ndev;      /* devices at the last refresh (negative: refresh failed) */
    char why[256]; /* why it is not loaded */
};

struct ms__gpu {
    struct ms__gpu_backend b[MS__GPU_NB_MAX];
    struct ms__gpu_procs procs; /* scratch list of one device's processes */
    pid_t target;               /* process whose NSpid list is cached, 0 when none */
    int32_t ids[MS__GPU_NSPID]; /* its PID in each namespace, outermost first */
    int nids;                   /* entries in ids[] */
};

int ms__gpu_procs_add(struct ms__gpu_procs *p, int32_t pid, uint64_t bytes,
                      enum ms__gpu_merge merge)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].pid != pid)
            continue;
        if (merge == MS__GPU_SUM)
            p->v[i].used_bytes =
                p->v[i].used_bytes + bytes < bytes ? UINT64_MAX : p->v[i].used_bytes + bytes;
        else if (bytes > p->v[i].used_bytes)
            p->v[i].used_bytes = bytes;
        return 0;
    }
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 32;
        ms_gpu_proc *nv = realloc(p->v, ncap * sizeof(*nv));
        if (!nv)
            return MS_ENOMEM;
        p->v = nv;
        p->cap = ncap;
    }
    p->v[p->n].pid = pid;
    p->v[p->n].used_bytes = bytes;
    p->n++;
    return 0;
}

/* Narrows [*p, *end) to leave out leading blanks and trailing blanks and line ends. */
static void ms__trim(const char **p, const char **end)
{
    while (*p < *end && (**p == ' ' || **p == '\t'))
        (*p)++;
    while (*end > *p &&
           ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\n' || (*end)[-1] == '\r'))
        (*end)--;
}

int ms__gpu_parse_size(const char *p, const char *end, uint64_t mult_default, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"B", 1},          {"kB", 1024},      {"KiB", 1024},
                 {"MiB", 1u << 20}, {"GiB", 1u << 30}, {"", 0}};
    ms__trim(&p, &end);
    uint64_t v;
    const char *q = ms__parse_u64(p, end, &v);
    if (!q)
        return -1;
    while (q < end && *q == ' ')
        q++;
    uint64_t mult = mult_default;
    if (q < end) {
        size_t len = (size_t)(end - q);
        mult = 0;
        for (size_t i = 0; units[i].mult; i++)
            if (strlen(units[i].unit) == len && memcmp(units[i].unit, q, len) == 0)
                mult = units[i].mult;
        if (!mult)
            return -1;
    }
    if (v > UINT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

void ms__gpu_copy_trim(char *dst, size_t len, const char *p, const char *end)
{
    ms__trim(&p, &end);
    size_t n = (size_t)(end - p);
    if (len == 0)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

/* True when name is in the comma list MEMSNAP_GPU_BACKENDS (or the variable is unset). */
static bool ms__gpu_enabled(const char *name)
{
    const char *list = getenv("MEMSNAP_GPU_BACKENDS");
    if (!list || !*list)
        return true;
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0)
            return true;
        p += n + (comma ? 1 : 0);
    }
    return false;
}

/* Loads every backend once; returns the registry or NULL when out of memory. */
static struct ms__gpu *ms__gpu_get(ms_session *s)
{
    if (s->gpu)
        return s->gpu;
    struct ms__gpu *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    s->gpu = g;
    bool nvml_loaded = false;
    for (size_t i = 0; ms__gpu_table[i]; i++) {
        const struct ms__gpu_ops *ops = ms__gpu_table[i];
        struct ms__gpu_backend *b = &g->b[i];
        if (!ms__gpu_enabled(ops->name)) {
            snprintf(b->why, sizeof(b->why), "not tried: left out of MEMSNAP_GPU_BACKENDS");
            continue;
        }
        if (strcmp(ops->name, "nvidia-smi") == 0 && nvml_loaded) {
            snprintf(b->why, sizeof(b->why),
                     "not used: NVML is loaded (nvidia-smi is the fallback when it is not)");
            continue;
        }
        if (ops->init(s, &b->ctx, b->why, sizeof(b->why)) != 0)
            continue;
        b->loaded = true;
        b->ndev = ops->refresh(b->ctx);
        if (strcmp(ops->name, "nvml") == 0 && b->ndev > 0)
            nvml_loaded = true;
    }
    return g;
}

void ms__gpu_close(ms_session *s)
{
    struct ms__gpu *g = s->gpu;
    if (!g)
        return;
    for (size_t i = 0; ms__gpu_table[i]; i++)
        if (g->b[i].loaded)
            ms__gpu_table[i]->shutdown(g->b[i].ctx);
    free(g->procs.v);
    free(g);
    s->gpu = NULL;
}

/* Caches the PIDs that pid has in each PID namespace (NSpid), or just pid when unknown. */
static void ms__gpu_target(ms_session *s, struct ms__gpu *g, pid_t pid)
{
    if (g->target == pid && g->nids > 0)
        return;
    g->target = pid;
    g->ids[0] = (int32_t)pid;
    g->nids = 1;
    char rel[32];
    snprintf(rel, sizeof(rel), "%d/status", (int)pid);
    ssize_t n = ms__read_file(s, s->procfs, rel);
    if (n <= 0)
        return;
    const char *line = strstr(s->buf, "\nNSpid:");
    if (!line)
        return;
    const char *p = line + 7, *end = s->buf + n;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
        eol = end;
    int k = 0;
    while (p < eol && k < MS__GPU_NSPID) {
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        uint64_t v;
        const char *q = ms__parse_u64(p, eol, &v);
        if (!q || v == 0 || v > INT32_MAX)
            break;
        g->ids[k++] = (int32_t)v;
        p = q;
    }
    if (k > 0)
        g->nids = k;
}

/* Orders processes by memory, largest first, then by PID. */
static int ms__gpu_proc_cmp(const void *a, const void *b)
{
    const ms_gpu_proc *x = a, *y = b;
    if (x->used_bytes != y->used_bytes)
        return x->used_bytes < y->used_bytes ? 1 : -1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Copies the scratch process list into gp and sums the target's share. */
static void ms__gpu_finish(struct ms__gpu *g, ms_gpu *gp, bool per_process)
{
    struct ms__gpu_procs *p = &g->procs;
    if (p->n > 1) /* p->v may be NULL when there are none */
        qsort(p->v, p->n, sizeof(p->v[0]), ms__gpu_proc_cmp);
    uint64_t mine = 0;
    for (size_t i = 0; i < p->n; i++) {
        for (int k = 0; k < g->nids; k++)
            if (p->v[i].pid == g->ids[k]) {
                mine = mine + p->v[i].used_bytes < mine ? UINT64_MAX /* saturated */
                                                        : mine + p->v[i].used_bytes;
                break;
            }
        if (i < MS_GPU_PROC_MAX)
            gp->processes[i] = p->v[i];
    }
    gp->process_count = p->n < MS_GPU_PROC_MAX ? (uint32_t)p->n : MS_GPU_PROC_MAX;
    gp->processes_truncated = p->n > MS_GPU_PROC_MAX;
    gp->is_per_process = per_process;
    if (per_process) {
        gp->process_used_bytes = mine;
        ms_set_valid(gp, MS_GF_process_used_bytes);
    }
}

/* The index ms_options.device names, -1 when it is a UUID or PCI bus id (or absent). */
static long ms__gpu_wanted_index(const ms_session *s)
{
    const char *d = s->gpu_device;
    if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 9)
        return -1;
    return strtol(d, NULL, 10);
}

/* Whether g (its identity filled) is the GPU ms_options.device names by UUID or PCI bus id. */
static bool ms__gpu_is_wanted(const ms_session *s, const ms_gpu *g)
{
    return (g->uuid[0] && strcasecmp(g->uuid, s->gpu_device) == 0) ||
           (g->pci_bus_id[0] && strcasecmp(g->pci_bus_id, s->gpu_device) == 0);
}

int ms__gpu_capture(ms_session *s, ms_snapshot *snap)
{
    snap->gpu_count = 0;
    struct ms__gpu *g = ms__gpu_get(s);
    if (!g)
        return ms__fail(s, MS_ENOMEM, "GPU backends: out of memory");
    ms__gpu_target(s, g, snap->pid);
    bool filter = s->gpu_device[0] != '\0';
    long want = ms__gpu_wanted_index(s);
    uint32_t seen = 0; /* GPUs found, the one captured or not */
    for (size_t i = 0; ms__gpu_table[i]; i++) {
        const struct ms__gpu_ops *ops = ms__gpu_table[i];
        struct ms__gpu_backend *b = &g->b[i];
        if (!b->loaded)
            continue;
        b->ndev = ops->refresh(b->ctx);
        for (int d = 0; d < b->ndev && snap->gpu_count < MS_GPU_MAX; d++, seen++) {
            if (filter && want >= 0 && seen != (uint32_t)want)
                continue; /* not even sampled: a device query can cost a driver call */
            ms_gpu *gp = &snap->gpus[snap->gpu_count];
            gp->valid = 0;
            gp->index = seen;
            snprintf(gp->backend, sizeof(gp->backend), "%s", ops->name);
            gp->name[0] = gp->uuid[0] = gp->pci_bus_id[0] = '\0';
            gp->is_per_process = false;
            gp->process_count = 0;
            gp->processes_truncated = false;
            if (ops->sample_device(b->ctx, d, gp) != 0)
                gp->valid = 0;
            if (filter && want < 0 && !ms__gpu_is_wanted(s, gp))
                continue;
            g->procs.n = 0;
            int r = ops->sample_processes(b->ctx, d, gp, &g->procs);
            if (r < 0)
                g->procs.n = 0;
            ms__gpu_finish(g, gp, r == 1);
            snap->gpu_count++;
        }
    }
    if (filter && snap->gpu_count == 0) {
        if (seen == 0)
            return ms__fail(s, MS_ENOENT, "no GPU %s: no GPU was found", s->gpu_device);
        if (seen == 1)
            return ms__fail(s, MS_ENOENT, "no GPU %s: 1 GPU found (index 0, or its UUID)",
                            s->gpu_device);
        return ms__fail(s, MS_ENOENT, "no GPU %s: %u GPUs found (index 0 to %u, or a UUID)",
                        s->gpu_device, seen, seen - 1);
    }
    return 0;
}

int ms_gpu_query_once(const char *backend)
{
    if (!backend)
        return ms__error(MS_EINVAL, "ms_gpu_query_once: no backend named");
    int rc = MS_ENOTSUP;
#ifdef MS_HAVE_NVML
    uint64_t used;
    if (strcmp(backend, "nvml") == 0)
        rc = ms__nvml_oneshot(&used);
#endif
#ifdef MS_HAVE_NVSMI
    if (strcmp(backend, "nvidia-smi") == 0)
        rc = ms__nvsmi_oneshot();
#endif
    return rc ? ms__error(rc, "%s: one query without a session failed: %s", backend,
                          ms_strerror(rc))
              : 0;
}

int ms_gpu_backends(ms_session *s, ms_gpu_backend_info *out, size_t n)
{
    static const char *const all[MS__GPU_NB_MAX] = {"nvml", "nvidia-smi", "drm"};
    if (!s)
        return MS_EINVAL;
    struct ms__gpu *g = ms__gpu_get(s);
    if (!g)
        return MS_ENOMEM;
    int count = 0;
    for (size_t k = 0; k < MS__GPU_NB_MAX; k++, count++) {
        if ((size_t)count >= n)
            continue;
        ms_gpu_backend_info *o = &out[count];
        memset(o, 0, sizeof(*o));
        snprintf(o->name, sizeof(o->name), "%s", all[k]);
        size_t i = 0;
        while (ms__gpu_table[i] && strcmp(ms__gpu_table[i]->name, all[k]) != 0)
            i++;
        if (!ms__gpu_table[i]) {
            snprintf(o->detail, sizeof(o->detail), "not built (meson option -D%s=disabled)",
                     k == 1 ? "nvsmi" : all[k]);
            continue;
        }
        const struct ms__gpu_ops *ops = ms__gpu_table[i];
        struct ms__gpu_backend *b = &g->b[i];
        if (!b->loaded) {
            snprintf(o->detail, sizeof(o->detail), "%s", b->why);
            continue;
        }
        struct ms__gpu_caps caps = {0};
        ops->caps(b->ctx, &caps);
        o->supports_device_total = caps.device_total;
        o->supports_device_free = caps.device_free;
        o->per_process = caps.per_process;
        snprintf(o->sampling_source, sizeof(o->sampling_source), "%s",
                 caps.source ? caps.source : "");
        if (ops->versions)
            ops->versions(b->ctx, o->driver_version, sizeof(o->driver_version), o->cuda_version,
                          sizeof(o->cuda_version));
        if (b->ndev < 0) {
            snprintf(o->detail, sizeof(o->detail), "loaded, but listing devices failed: %s",
                     ops->last_error(b->ctx));
        } else if (b->ndev == 0) {
            snprintf(o->detail, sizeof(o->detail), "loaded, but it found no device%s%s",
                     ops->last_error(b->ctx)[0] ? ": " : "", ops->last_error(b->ctx));
        } else {
            o->available = true;
            o->device_count = (uint32_t)b->ndev;
            snprintf(o->detail, sizeof(o->detail), "%d device%s through %s", b->ndev,
                     b->ndev == 1 ? "" : "s", o->sampling_source);
        }
    }
    return count;
}
