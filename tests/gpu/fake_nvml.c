/*
 * fake_nvml.c - a scripted libnvidia-ml.so.1 for the GPU tests (no GPU needed).
 *
 * Built twice by tests/gpu/meson.build, each with the soname libnvidia-ml.so.1 in its own
 * directory: the full fake exports the versioned calls (nvmlInit_v2, GetMemoryInfo_v2, the _v3
 * and _v2 process lists ...), the minimal one (-DFAKE_NVML_MINIMAL) only the old unversioned
 * ones, so the optional symbols are missing. The scenario is read from MEMSNAP_FAKE_NVML at each
 * nvmlInit:
 *   several (default)  three GPUs; processes on GPU 0 (the caller in the compute and graphics
 *                      lists, PID 1, an MPS client) and GPU 2 (the caller); none on GPU 1
 *   insufficient       as several, but GPU 0's compute list grows between the count call and
 *                      the fill call (a second NVML_ERROR_INSUFFICIENT_SIZE)
 *   v2_unsupported     nvmlDeviceGetMemoryInfo_v2 answers NVML_ERROR_NOT_SUPPORTED
 *   sentinel           NVML_VALUE_NOT_AVAILABLE and larger-than-device values
 *   stride32           the _v3 lists write 32-byte records (usedGpuCcProtectedMemory)
 *   initfail           nvmlInit fails with NVML_ERROR_DRIVER_NOT_LOADED
 * fake_nvml_stats() tells the tests how often init and shutdown ran.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GiB (1ull << 30)
#define MiB (1ull << 20)
#define NA  (~0ull)

enum { OK = 0, INVALID_ARG = 2, NOT_SUPPORTED = 3, INSUFFICIENT = 7, DRIVER_NOT_LOADED = 9 };

struct mem1 {
    unsigned long long total, free, used;
};
struct mem2 {
    unsigned int version;
    unsigned long long total, reserved, free, used;
};
struct rec { /* the largest record: v3 of early R535 */
    unsigned int pid;
    unsigned long long used;
    unsigned int gi, ci;
    unsigned long long cc;
};

struct proc {
    int pid; /* 0: the caller */
    unsigned long long used;
};

static char mode[32];
static unsigned inits, shutdowns, fills;
static int grown; /* insufficient: the compute list of GPU 0 grew */

/* Exported for the tests: init and shutdown counts, calls that filled a list. */
void fake_nvml_stats(unsigned *i, unsigned *s, unsigned *f);
void fake_nvml_stats(unsigned *i, unsigned *s, unsigned *f)
{
    *i = inits;
    *s = shutdowns;
    *f = fills;
}

static int is(const char *m)
{
    return strcmp(mode, m) == 0;
}

static const struct {
    const char *name, *uuid, *pci;
    unsigned long long total, used, reserved;
} devs[3] = {
    {"Fake H100", "GPU-fake-0000", "00000000:01:00.0", 80 * GiB, 10 * GiB, 512 * MiB},
    {"Fake A100", "GPU-fake-0001", "00000000:41:00.0", 40 * GiB, 1 * GiB, 256 * MiB},
    {"Fake L4", "GPU-fake-0002", "00000000:81:00.0", 24 * GiB, 2 * GiB, 128 * MiB},
};

/* The processes of one list (0 compute, 1 graphics, 2 MPS) on device d. */
static int procs_of(int d, int list, struct proc *out)
{
    int n = 0;
    if (d == 0 && list == 0) {
        out[n++] = (struct proc){0, 1 * GiB};
        out[n++] = (struct proc){1, 3 * GiB};
        if (is("sentinel")) {
            out[n++] = (struct proc){777, NA};
            out[n++] = (struct proc){778, 100000 * GiB};
        }
        if (is("insufficient") && grown)
            out[n++] = (struct proc){999, 1 * MiB};
    } else if (d == 0 && list == 1) {
        out[n++] = (struct proc){0, 1 * GiB}; /* the same process in the graphics list */
    } else if (d == 0 && list == 2) {
        out[n++] = (struct proc){4242, 512 * MiB};
    } else if (d == 2 && list == 0) {
        out[n++] = (struct proc){0, 256 * MiB};
    }
    return n;
}

/* The count-0 / INSUFFICIENT_SIZE protocol over records of the given size. */
static int list(void *dev, int which, unsigned *count, void *infos, size_t stride)
{
    int d = (int)(intptr_t)dev - 1;
    if (d < 0 || d > 2 || !count)
        return INVALID_ARG;
    struct proc p[8];
    int n = procs_of(d, which, p);
    if (*count < (unsigned)n || (n > 0 && !infos)) {
        *count = (unsigned)n;
        return INSUFFICIENT;
    }
    if (is("insufficient") && d == 0 && which == 0 && !grown) {
        grown = 1; /* a new process appeared after the caller sized its buffer */
        *count = (unsigned)procs_of(d, which, p);
        return INSUFFICIENT;
    }
    fills++;
    for (int i = 0; i < n; i++) {
        struct rec r = {(unsigned)(p[i].pid ? p[i].pid : getpid()), p[i].used, ~0u, ~0u, 0};
        memcpy((char *)infos + (size_t)i * stride, &r, stride);
    }
    *count = (unsigned)n;
    return OK;
}

static int init_common(void)
{
    const char *m = getenv("MEMSNAP_FAKE_NVML");
    strncpy(mode, m && *m ? m : "several", sizeof(mode) - 1);
    grown = 0;
    if (is("initfail"))
        return DRIVER_NOT_LOADED;
    inits++;
    return OK;
}

int nvmlInit(void);
int nvmlInit(void)
{
    return init_common();
}

int nvmlShutdown(void);
int nvmlShutdown(void)
{
    shutdowns++;
    return OK;
}

int nvmlDeviceGetCount(unsigned *n);
int nvmlDeviceGetCount(unsigned *n)
{
    *n = 3;
    return OK;
}

int nvmlDeviceGetHandleByIndex(unsigned i, void **h);
int nvmlDeviceGetHandleByIndex(unsigned i, void **h)
{
    if (i > 2)
        return INVALID_ARG;
    *h = (void *)(intptr_t)(i + 1);
    return OK;
}

int nvmlDeviceGetName(void *h, char *buf, unsigned len);
int nvmlDeviceGetName(void *h, char *buf, unsigned len)
{
    int d = (int)(intptr_t)h - 1;
    strncpy(buf, devs[d].name, len);
    return OK;
}

int nvmlDeviceGetMemoryInfo(void *h, struct mem1 *m);
int nvmlDeviceGetMemoryInfo(void *h, struct mem1 *m)
{
    int d = (int)(intptr_t)h - 1;
    m->total = devs[d].total;
    m->used = devs[d].used + devs[d].reserved; /* v1 counts the reserved memory as used */
    m->free = m->total - m->used;
    if (is("sentinel") && d == 1)
        m->used = NA;
    return OK;
}

int nvmlDeviceGetComputeRunningProcesses(void *h, unsigned *count, void *infos);
int nvmlDeviceGetComputeRunningProcesses(void *h, unsigned *count, void *infos)
{
    return list(h, 0, count, infos, 16);
}

#ifndef FAKE_NVML_MINIMAL
int nvmlInit_v2(void);
int nvmlInit_v2(void)
{
    return init_common();
}

int nvmlDeviceGetCount_v2(unsigned *n);
int nvmlDeviceGetCount_v2(unsigned *n)
{
    return nvmlDeviceGetCount(n);
}

int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **h);
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **h)
{
    return nvmlDeviceGetHandleByIndex(i, h);
}

const char *nvmlErrorString(int r);
const char *nvmlErrorString(int r)
{
    return r == DRIVER_NOT_LOADED ? "Driver Not Loaded" : "Fake Error";
}

int nvmlDeviceGetUUID(void *h, char *buf, unsigned len);
int nvmlDeviceGetUUID(void *h, char *buf, unsigned len)
{
    int d = (int)(intptr_t)h - 1;
    strncpy(buf, devs[d].uuid, len);
    return OK;
}

struct pci {
    char legacy[16];
    unsigned domain, bus, device, id, subsys;
    char bus_id[32];
};

int nvmlDeviceGetPciInfo_v3(void *h, struct pci *p);
int nvmlDeviceGetPciInfo_v3(void *h, struct pci *p)
{
    int d = (int)(intptr_t)h - 1;
    memset(p, 0, sizeof(*p));
    strncpy(p->bus_id, devs[d].pci, sizeof(p->bus_id) - 1);
    return OK;
}

int nvmlDeviceGetMemoryInfo_v2(void *h, struct mem2 *m);
int nvmlDeviceGetMemoryInfo_v2(void *h, struct mem2 *m)
{
    int d = (int)(intptr_t)h - 1;
    if (is("v2_unsupported"))
        return NOT_SUPPORTED;
    if (m->version != ((unsigned)sizeof(struct mem2) | 2u << 24))
        return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    m->total = devs[d].total;
    m->reserved = devs[d].reserved;
    m->used = devs[d].used;
    m->free = m->total - m->used - m->reserved;
    if (is("sentinel") && d == 1)
        m->used = NA;
    return OK;
}

#define LISTS(kind, idx)                                                                           \
    int nvmlDeviceGet##kind##RunningProcesses_v3(void *h, unsigned *count, void *infos);           \
    int nvmlDeviceGet##kind##RunningProcesses_v3(void *h, unsigned *count, void *infos)            \
    {                                                                                              \
        return list(h, idx, count, infos, is("stride32") ? 32 : 24);                               \
    }                                                                                              \
    int nvmlDeviceGet##kind##RunningProcesses_v2(void *h, unsigned *count, void *infos);           \
    int nvmlDeviceGet##kind##RunningProcesses_v2(void *h, unsigned *count, void *infos)            \
    {                                                                                              \
        return list(h, idx, count, infos, 24);                                                     \
    }
LISTS(Compute, 0)
LISTS(Graphics, 1)
LISTS(MPSCompute, 2)

int nvmlSystemGetDriverVersion(char *buf, unsigned len);
int nvmlSystemGetDriverVersion(char *buf, unsigned len)
{
    strncpy(buf, "555.42.06", len);
    return OK;
}

int nvmlSystemGetCudaDriverVersion_v2(int *v);
int nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    *v = 12050;
    return OK;
}
#endif
