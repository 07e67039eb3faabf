/*
 * gpu_nvml.c - the NVML backend: NVIDIA GPUs through libnvidia-ml, loaded with dlopen.
 *
 * memsnap declares the few NVML types and functions it calls itself (no NVIDIA header or
 * package at build time) and loads "libnvidia-ml.so.1", then "libnvidia-ml.so". nvmlInit runs
 * once per session and nvmlShutdown at ms_session_close(), so a capture costs a few NVML
 * queries, not a driver initialisation. Device handles, names, UUIDs and PCI bus ids are read
 * once at init.
 *
 * Memory comes from nvmlDeviceGetMemoryInfo_v2 (version field sizeof(struct) | 2 << 24, which
 * adds "reserved"), or the v1 call when the v2 symbol is missing or refuses the version.
 * Processes come from the compute, graphics and MPS lists, each through its newest exported
 * version (_v3, _v2, plain), with the count-0 call / NVML_ERROR_INSUFFICIENT_SIZE / allocate
 * protocol, retried when the list grew in between. Drivers disagree on the stride of the _v2/_v3
 * records (24 bytes; 32 with usedGpuCcProtectedMemory on early R535; 16 on some), so the
 * stride is picked by checking that every record is plausible. Values NVML marks as not
 * available (all bits set) or larger than the device are dropped, never reported.
 */
#include "gpu.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

/* NVML's own types, as memsnap needs them. */
typedef int ms__nvret;   /* nvmlReturn_t */
typedef void *ms__nvdev; /* nvmlDevice_t */
enum {
    MS__NV_SUCCESS = 0,
    MS__NV_NOT_SUPPORTED = 3,
    MS__NV_INSUFFICIENT_SIZE = 7,
    MS__NV_FUNCTION_NOT_FOUND = 13,
    MS__NV_ARGUMENT_VERSION_MISMATCH = 25,
};
#define MS__NV_NOT_AVAILABLE UINT64_MAX /* NVML_VALUE_NOT_AVAILABLE for 64-bit values */

struct ms__nvmem_v1 { /* nvmlMemory_t */
    unsigned long long total, free, used;
};
struct ms__nvmem_v2 { /* nvmlMemory_v2_t */
    unsigned int version;
    unsigned long long total, reserved, free, used;
};
struct ms__nvpci { /* nvmlPciInfo_t (v2/v3 layout; v1 had the bus id at offset 0) */
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
};

#define MS__NV_MAXDEV    MS_GPU_MAX
#define MS__NV_STR       96
#define MS__NV_MAXSTRIDE 32 /* the largest process record a driver may write */

typedef ms__nvret (*ms__nv_void_fn)(void);
typedef ms__nvret (*ms__nv_count_fn)(unsigned int *);
typedef ms__nvret (*ms__nv_handle_fn)(unsigned int, ms__nvdev *);
typedef ms__nvret (*ms__nv_str_fn)(ms__nvdev, char *, unsigned int);
typedef ms__nvret (*ms__nv_pci_fn)(ms__nvdev, struct ms__nvpci *);
typedef ms__nvret (*ms__nv_mem_fn)(ms__nvdev, void *);
typedef ms__nvret (*ms__nv_procs_fn)(ms__nvdev, unsigned int *, void *);
typedef ms__nvret (*ms__nv_sysstr_fn)(char *, unsigned int);
typedef ms__nvret (*ms__nv_int_fn)(int *);
typedef const char *(*ms__nv_errstr_fn)(ms__nvret);

/* The process lists, each with its versions newest first and their declared record size. */
enum { MS__NV_COMPUTE, MS__NV_GRAPHICS, MS__NV_MPS, MS__NV_LISTS };
static const char *const ms__nv_list_names[MS__NV_LISTS] = {
    "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses",
    "nvmlDeviceGetMPSComputeRunningProcesses"};
static const struct {
    const char *suffix;
    size_t stride; /* declared record size */
} ms__nv_versions[] = {{"_v3", 24}, {"_v2", 24}, {"", 16}};
#define MS__NV_NVERSIONS (sizeof(ms__nv_versions) / sizeof(ms__nv_versions[0]))

struct ms__nvml {
    void *lib;
    ms__nv_void_fn shutdown;
    ms__nv_mem_fn mem_v1, mem_v2;
    ms__nv_procs_fn procs[MS__NV_LISTS][MS__NV_NVERSIONS]; /* NULL when not exported */
    ms__nv_errstr_fn errstr;
    char driver[64], cuda[32];
    unsigned ndev;
    struct {
        ms__nvdev h;
        char name[MS__NV_STR], uuid[MS__NV_STR], pci[32];
        bool no_v2; /* the v2 memory call was refused: use v1 */
    } dev[MS__NV_MAXDEV];
    unsigned char *buf; /* process records */
    size_t cap;         /* bytes at buf */
    char err[256];
};

/* Records the failure of NVML call `what` on n and returns MS_EIO. */
static int ms__nv_fail(struct ms__nvml *nv, const char *what, ms__nvret r)
{
    const char *msg = nv->errstr ? nv->errstr(r) : NULL;
    snprintf(nv->err, sizeof(nv->err), "%s: %s (NVML error %d)", what, msg ? msg : "failed", r);
    return MS_EIO;
}

/* dlsym of the first of two names that is exported. */
static void *ms__nv_sym(void *lib, const char *a, const char *b)
{
    void *p = dlsym(lib, a);
    if (!p && b)
        p = dlsym(lib, b);
    return p;
}

/* Reads the strings of device i (name, UUID, bus id); missing calls leave "". */
static void ms__nv_identify(struct ms__nvml *nv, unsigned i, ms__nv_str_fn name, ms__nv_str_fn uuid,
                            ms__nv_pci_fn pci, bool pci_legacy)
{
    if (name && name(nv->dev[i].h, nv->dev[i].name, MS__NV_STR) != MS__NV_SUCCESS)
        nv->dev[i].name[0] = '\0';
    if (uuid && uuid(nv->dev[i].h, nv->dev[i].uuid, MS__NV_STR) != MS__NV_SUCCESS)
        nv->dev[i].uuid[0] = '\0';
    nv->dev[i].name[MS__NV_STR - 1] = nv->dev[i].uuid[MS__NV_STR - 1] = '\0';
    union {
        struct ms__nvpci info;
        char raw[256]; /* room for a larger struct of a future driver */
    } p;
    memset(&p, 0, sizeof(p));
    if (pci && pci(nv->dev[i].h, &p.info) == MS__NV_SUCCESS) {
        const char *id = pci_legacy ? p.info.bus_id_legacy : p.info.bus_id;
        size_t max = pci_legacy ? sizeof(p.info.bus_id_legacy) : sizeof(p.info.bus_id);
        snprintf(nv->dev[i].pci, sizeof(nv->dev[i].pci), "%.*s", (int)strnlen(id, max), id);
    }
}

/* Formats NVML's CUDA driver version (12040) as "12.4". */
static void ms__nv_cuda_string(char *buf, size_t len, int v)
{
    snprintf(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
}

static void ms__nv_shutdown(void *ctx)
{
    struct ms__nvml *nv = ctx;
    if (!nv)
        return;
    if (nv->shutdown)
        nv->shutdown();
    if (nv->lib)
        dlclose(nv->lib);
    free(nv->buf);
    free(nv);
}

/* Opens libnvidia-ml; returns the handle or NULL with why filled. */
static void *ms__nv_open(char *why, size_t len)
{
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib)
        return lib;
    const char *e = dlerror();
    snprintf(why, len, "libnvidia-ml.so.1 cannot be loaded (no NVIDIA driver?): %s",
             e ? e : "not found");
    return dlopen("libnvidia-ml.so", RTLD_NOW | RTLD_LOCAL);
}

static int ms__nv_init(ms_session *s, void **ctx, char *why, size_t len)
{
    (void)s;
    *ctx = NULL;
    void *lib = ms__nv_open(why, len);
    if (!lib)
        return MS_ENOTSUP;
    struct ms__nvml *nv = calloc(1, sizeof(*nv));
    if (!nv) {
        dlclose(lib);
        snprintf(why, len, "out of memory");
        return MS_ENOMEM;
    }
    nv->lib = lib;
    nv->errstr = (ms__nv_errstr_fn)ms__nv_sym(lib, "nvmlErrorString", NULL);
    ms__nv_void_fn init = (ms__nv_void_fn)ms__nv_sym(lib, "nvmlInit_v2", "nvmlInit");
    ms__nv_count_fn count =
        (ms__nv_count_fn)ms__nv_sym(lib, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    ms__nv_handle_fn handle = (ms__nv_handle_fn)ms__nv_sym(lib, "nvmlDeviceGetHandleByIndex_v2",
                                                           "nvmlDeviceGetHandleByIndex");
    nv->shutdown = (ms__nv_void_fn)ms__nv_sym(lib, "nvmlShutdown", NULL);
    nv->mem_v1 = (ms__nv_mem_fn)ms__nv_sym(lib, "nvmlDeviceGetMemoryInfo", NULL);
    nv->mem_v2 = (ms__nv_mem_fn)ms__nv_sym(lib, "nvmlDeviceGetMemoryInfo_v2", NULL);
    if (!init || !count || !handle || !nv->shutdown || !nv->mem_v1) {
        snprintf(why, len,
                 "libnvidia-ml lacks nvmlInit, nvmlDeviceGetCount, "
                 "nvmlDeviceGetHandleByIndex, nvmlDeviceGetMemoryInfo or nvmlShutdown");
        nv->shutdown = NULL;
        ms__nv_shutdown(nv);
        return MS_ENOTSUP;
    }
    ms__nvret r = init();
    if (r != MS__NV_SUCCESS) {
        ms__nv_fail(nv, "nvmlInit", r);
        snprintf(why, len, "%s", nv->err);
        nv->shutdown = NULL; /* nothing to shut down */
        ms__nv_shutdown(nv);
        return MS_ENOTSUP;
    }
    for (int l = 0; l < MS__NV_LISTS; l++)
        for (size_t v = 0; v < MS__NV_NVERSIONS; v++) {
            char sym[96];
            snprintf(sym, sizeof(sym), "%s%s", ms__nv_list_names[l], ms__nv_versions[v].suffix);
            nv->procs[l][v] = (ms__nv_procs_fn)ms__nv_sym(lib, sym, NULL);
        }
    ms__nv_sysstr_fn drv = (ms__nv_sysstr_fn)ms__nv_sym(lib, "nvmlSystemGetDriverVersion", NULL);
    if (drv && drv(nv->driver, sizeof(nv->driver)) != MS__NV_SUCCESS)
        nv->driver[0] = '\0';
    nv->driver[sizeof(nv->driver) - 1] = '\0';
    ms__nv_int_fn cuda = (ms__nv_int_fn)ms__nv_sym(lib, "nvmlSystemGetCudaDriverVersion_v2",
                                                   "nvmlSystemGetCudaDriverVersion");
    int cv = 0;
    if (cuda && cuda(&cv) == MS__NV_SUCCESS && cv > 0)
        ms__nv_cuda_string(nv->cuda, sizeof(nv->cuda), cv);

    unsigned n = 0;
    r = count(&n);
    if (r != MS__NV_SUCCESS) {
        ms__nv_fail(nv, "nvmlDeviceGetCount", r);
        n = 0;
    }
    ms__nv_str_fn name = (ms__nv_str_fn)ms__nv_sym(lib, "nvmlDeviceGetName", NULL);
    ms__nv_str_fn uuid = (ms__nv_str_fn)ms__nv_sym(lib, "nvmlDeviceGetUUID", NULL);
    ms__nv_pci_fn pci =
        (ms__nv_pci_fn)ms__nv_sym(lib, "nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2");
    bool pci_legacy = false;
    if (!pci) {
        pci = (ms__nv_pci_fn)ms__nv_sym(lib, "nvmlDeviceGetPciInfo", NULL);
        pci_legacy = true;
    }
    for (unsigned i = 0; i < n && nv->ndev < MS__NV_MAXDEV; i++) {
        r = handle(i, &nv->dev[nv->ndev].h);
        if (r != MS__NV_SUCCESS) {
            ms__nv_fail(nv, "nvmlDeviceGetHandleByIndex", r); /* e.g. no permission: skip */
            continue;
        }
        ms__nv_identify(nv, nv->ndev, name, uuid, pci, pci_legacy);
        nv->ndev++;
    }
    *ctx = nv;
    return 0;
}

static int ms__nv_refresh(void *ctx)
{
    return (int)((struct ms__nvml *)ctx)->ndev;
}

/* Sets field f of g to v when v is a real figure (not NVML's "not available", within total). */
static void ms__nv_set(ms_gpu *g, int f, unsigned long long v, unsigned long long total)
{
    if (v == MS__NV_NOT_AVAILABLE || (total != MS__NV_NOT_AVAILABLE && v > total))
        return;
    uint64_t *field = (uint64_t *)(void *)((char *)g + ms__gpu_fields[f].snap_offset);
    *field = v;
    ms_set_valid(g, f);
}

static int ms__nv_sample_device(void *ctx, int i, ms_gpu *g)
{
    struct ms__nvml *nv = ctx;
    snprintf(g->name, sizeof(g->name), "%s", nv->dev[i].name);
    snprintf(g->uuid, sizeof(g->uuid), "%s", nv->dev[i].uuid);
    snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "%s", nv->dev[i].pci);
    ms__nvret r = MS__NV_FUNCTION_NOT_FOUND;
    if (nv->mem_v2 && !nv->dev[i].no_v2) {
        struct ms__nvmem_v2 m;
        memset(&m, 0, sizeof(m));
        m.version = (unsigned)sizeof(m) | 2u << 24;
        r = nv->mem_v2(nv->dev[i].h, &m);
        if (r == MS__NV_SUCCESS) {
            ms__nv_set(g, MS_GF_total_bytes, m.total, MS__NV_NOT_AVAILABLE);
            ms__nv_set(g, MS_GF_free_bytes, m.free, m.total);
            ms__nv_set(g, MS_GF_used_bytes, m.used, m.total);
            ms__nv_set(g, MS_GF_reserved_bytes, m.reserved, m.total);
            return 0;
        }
        if (r == MS__NV_NOT_SUPPORTED || r == MS__NV_ARGUMENT_VERSION_MISMATCH ||
            r == MS__NV_FUNCTION_NOT_FOUND)
            nv->dev[i].no_v2 = true; /* remember: the next capture goes straight to v1 */
    }
    struct ms__nvmem_v1 m;
    memset(&m, 0, sizeof(m));
    r = nv->mem_v1(nv->dev[i].h, &m);
    if (r != MS__NV_SUCCESS)
        return ms__nv_fail(nv, "nvmlDeviceGetMemoryInfo", r);
    ms__nv_set(g, MS_GF_total_bytes, m.total, MS__NV_NOT_AVAILABLE);
    ms__nv_set(g, MS_GF_free_bytes, m.free, m.total);
    ms__nv_set(g, MS_GF_used_bytes, m.used, m.total);
    return 0;
}

/* Grows the record buffer to hold n records of the largest stride. */
static int ms__nv_reserve(struct ms__nvml *nv, unsigned n)
{
    size_t need = ((size_t)n + 1) * MS__NV_MAXSTRIDE;
    if (need <= nv->cap)
        return 0;
    unsigned char *b = realloc(nv->buf, need);
    if (!b)
        return MS_ENOMEM;
    nv->buf = b;
    nv->cap = need;
    return 0;
}

/* Runs one process list call with the count-0 / INSUFFICIENT_SIZE / allocate protocol; on
 * success *n holds the records written to nv->buf. Returns the NVML code. */
static ms__nvret ms__nv_list(struct ms__nvml *nv, ms__nv_procs_fn fn, ms__nvdev h, unsigned *n)
{
    unsigned count = 0;
    ms__nvret r = fn(h, &count, NULL);
    for (int tries = 0; r == MS__NV_INSUFFICIENT_SIZE && tries < 8; tries++) {
        if (count > 65536 || ms__nv_reserve(nv, count) != 0)
            return MS__NV_INSUFFICIENT_SIZE;
        memset(nv->buf, 0, ((size_t)count + 1) * MS__NV_MAXSTRIDE);
        r = fn(h, &count, nv->buf); /* INSUFFICIENT_SIZE again: the list grew, retry */
    }
    *n = r == MS__NV_SUCCESS ? count : 0;
    return r;
}

/* Reads record k of the given stride: pid and memory (both records start the same way). */
static void ms__nv_record(const unsigned char *buf, size_t stride, unsigned k, uint32_t *pid,
                          uint64_t *used)
{
    unsigned int p;
    unsigned long long u;
    memcpy(&p, buf + k * stride, sizeof(p));
    memcpy(&u, buf + k * stride + 8, sizeof(u));
    *pid = p;
    *used = u;
}

/* Picks the record stride at which every record holds a plausible PID, the declared one
 * first; returns 0 when none does. */
static size_t ms__nv_stride(const unsigned char *buf, unsigned n, size_t declared)
{
    static const size_t v2_strides[] = {24, 32, 16}, v1_strides[] = {16};
    const size_t *cand = declared == 16 ? v1_strides : v2_strides;
    size_t ncand = declared == 16 ? 1 : 3;
    for (size_t c = 0; c < ncand; c++) {
        bool ok = true;
        for (unsigned k = 0; k < n && ok; k++) {
            uint32_t pid;
            uint64_t used;
            ms__nv_record(buf, cand[c], k, &pid, &used);
            ok = pid > 0 && pid <= 4194304u;
        }
        if (ok)
            return cand[c];
    }
    return 0;
}

static int ms__nv_sample_processes(void *ctx, int i, const ms_gpu *g, struct ms__gpu_procs *out)
{
    struct ms__nvml *nv = ctx;
    uint64_t total = ms_valid(g, MS_GF_total_bytes) ? g->total_bytes : UINT64_MAX - 1;
    bool any = false, dropped = false;
    for (int l = 0; l < MS__NV_LISTS; l++) {
        for (size_t v = 0; v < MS__NV_NVERSIONS; v++) {
            ms__nv_procs_fn fn = nv->procs[l][v];
            if (!fn)
                continue;
            unsigned n = 0;
            ms__nvret r = ms__nv_list(nv, fn, nv->dev[i].h, &n);
            if (r == MS__NV_NOT_SUPPORTED || r == MS__NV_FUNCTION_NOT_FOUND ||
                r == MS__NV_ARGUMENT_VERSION_MISMATCH)
                continue; /* try the older version */
            if (r != MS__NV_SUCCESS) {
                ms__nv_fail(nv, ms__nv_list_names[l], r);
                break;
            }
            size_t stride = ms__nv_stride(nv->buf, n, ms__nv_versions[v].stride);
            if (n > 0 && stride == 0) {
                snprintf(nv->err, sizeof(nv->err), "%s%s: records of an unknown layout",
                         ms__nv_list_names[l], ms__nv_versions[v].suffix);
                dropped = true;
                break;
            }
            any = true;
            for (unsigned k = 0; k < n; k++) {
                uint32_t pid;
                uint64_t used;
                ms__nv_record(nv->buf, stride, k, &pid, &used);
                if (used == MS__NV_NOT_AVAILABLE || used > total) {
                    dropped = true; /* MIG, WSL or no permission: no figure */
                    continue;
                }
                if (ms__gpu_procs_add(out, (int32_t)pid, used, MS__GPU_MAX_OF) != 0)
                    return MS_ENOMEM;
            }
            break;
        }
    }
    return any && !dropped ? 1 : 0;
}

static const char *ms__nv_last_error(void *ctx)
{
    return ((struct ms__nvml *)ctx)->err;
}

static void ms__nv_caps(void *ctx, struct ms__gpu_caps *caps)
{
    struct ms__nvml *nv = ctx;
    caps->device_total = caps->device_free = nv->ndev > 0;
    caps->per_process = false;
    for (int l = 0; l < MS__NV_LISTS; l++)
        for (size_t v = 0; v < MS__NV_NVERSIONS; v++)
            caps->per_process |= nv->procs[l][v] != NULL;
    caps->source = "NVML library";
}

static void ms__nv_get_versions(void *ctx, char *driver, size_t dlen, char *cuda, size_t clen)
{
    struct ms__nvml *nv = ctx;
    snprintf(driver, dlen, "%s", nv->driver);
    snprintf(cuda, clen, "%s", nv->cuda);
}

int ms__nvml_oneshot(uint64_t *used_bytes)
{
    char why[256];
    void *lib = ms__nv_open(why, sizeof(why));
    if (!lib)
        return MS_ENOTSUP;
    ms__nv_void_fn init = (ms__nv_void_fn)ms__nv_sym(lib, "nvmlInit_v2", "nvmlInit");
    ms__nv_void_fn shutdown = (ms__nv_void_fn)ms__nv_sym(lib, "nvmlShutdown", NULL);
    ms__nv_handle_fn handle = (ms__nv_handle_fn)ms__nv_sym(lib, "nvmlDeviceGetHandleByIndex_v2",
                                                           "nvmlDeviceGetHandleByIndex");
    ms__nv_mem_fn mem = (ms__nv_mem_fn)ms__nv_sym(lib, "nvmlDeviceGetMemoryInfo", NULL);
    int rc = MS_ENOTSUP;
    if (init && shutdown && handle && mem && init() == MS__NV_SUCCESS) {
        ms__nvdev h;
        struct ms__nvmem_v1 m;
        if (handle(0, &h) == MS__NV_SUCCESS && mem(h, &m) == MS__NV_SUCCESS) {
            *used_bytes = m.used;
            rc = 0;
        } else {
            rc = MS_EIO;
        }
        shutdown();
    }
    dlclose(lib);
    return rc;
}

const struct ms__gpu_ops ms__gpu_nvml = {
    .name = "nvml",
    .init = ms__nv_init,
    .shutdown = ms__nv_shutdown,
    .refresh = ms__nv_refresh,
    .sample_device = ms__nv_sample_device,
    .sample_processes = ms__nv_sample_processes,
    .last_error = ms__nv_last_error,
    .caps = ms__nv_caps,
    .versions = ms__nv_get_versions,
};
