/*
 * gpu.h - the GPU backend interface: one table of function pointers per backend.
 *
 * Each backend (gpu_nvml.c, gpu_nvsmi.c, gpu_drm.c) fills one struct ms__gpu_ops and is listed
 * in the registry (gpu.c) under its build option. The registry owns the per-session state,
 * picks the backends (nvidia-smi only when NVML cannot be loaded), and turns each device into
 * an ms_gpu of the snapshot. Backends report processes through struct ms__gpu_procs, which
 * de-duplicates PIDs; the registry keeps the largest and works out the snapshot's own share.
 */
#ifndef MEMSNAP_GPU_H
#define MEMSNAP_GPU_H

#include "../core/internal.h"

/* What a backend can measure over the devices it found. */
struct ms__gpu_caps {
    bool device_total;  /* every device gives total_bytes */
    bool device_free;   /* every device gives free_bytes */
    bool per_process;   /* per-process memory can be read */
    const char *source; /* "NVML library", ... */
};

/* How ms__gpu_procs_add() merges a PID seen twice. */
enum ms__gpu_merge {
    MS__GPU_MAX_OF, /* the same figure listed twice (NVML compute + graphics): keep the max */
    MS__GPU_SUM,    /* distinct allocations of one process (DRM clients): add them */
};

/* Processes found on one device during one capture; reused between captures. */
struct ms__gpu_procs {
    ms_gpu_proc *v; /* entries, one per PID */
    size_t n;       /* entries in use */
    size_t cap;     /* entries allocated */
};

/* Adds pid's bytes to the list, merging with an entry of the same PID; returns 0 or
 * MS_ENOMEM. */
int ms__gpu_procs_add(struct ms__gpu_procs *p, int32_t pid, uint64_t bytes,
                      enum ms__gpu_merge merge);

/* One backend. ctx is the backend's own state, created by init and freed by shutdown. */
struct ms__gpu_ops {
    const char *name; /* "nvml", "nvidia-smi", "drm" */
    /* Loads the backend for session s; 0 with *ctx set, or an MS_E* code with why filled. */
    int (*init)(ms_session *s, void **ctx, char *why, size_t len);
    /* Releases everything init acquired (NVML: nvmlShutdown and dlclose). */
    void (*shutdown)(void *ctx);
    /* Lists the devices for one capture (re-reading what changes); returns how many, or a
     * negative MS_E* code with last_error set. */
    int (*refresh)(void *ctx);
    /* Fills identity (name, uuid, pci_bus_id) and device-wide memory of device i into g,
     * setting validity bits; fields it cannot give stay invalid. Returns 0 or an MS_E* code. */
    int (*sample_device)(void *ctx, int i, ms_gpu *g);
    /* Adds the processes on device i (g as filled by sample_device) to out. Returns 1 when the
     * figures are real per-process figures, 0 when not (nothing, or only partial, known), or a
     * negative MS_E* code. */
    int (*sample_processes)(void *ctx, int i, const ms_gpu *g, struct ms__gpu_procs *out);
    /* One line about the last failure, "" when none. */
    const char *(*last_error)(void *ctx);
    /* Capabilities over the devices of the last refresh. */
    void (*caps)(void *ctx, struct ms__gpu_caps *caps);
    /* Driver and CUDA driver versions ("" when unknown); may be NULL. */
    void (*versions)(void *ctx, char *driver, size_t dlen, char *cuda, size_t clen);
};

extern const struct ms__gpu_ops ms__gpu_nvml;
extern const struct ms__gpu_ops ms__gpu_nvsmi;
extern const struct ms__gpu_ops ms__gpu_drm;

/* Parses "<number>[ ]<unit>" where unit is one of "", "B", "KiB", "MiB", "GiB" (also "kB"),
 * into bytes; mult_default multiplies a number without unit (1 for bytes, 1 << 20 for
 * nvidia-smi's MiB). Leading blanks are skipped; trailing blanks allowed. Returns 0, or -1 when
 * the text is not a number ("[N/A]") or overflows. */
int ms__gpu_parse_size(const char *p, const char *end, uint64_t mult_default, uint64_t *out);

/* Copies the trimmed text [p, end) into dst (at most len - 1 bytes, NUL-terminated). */
void ms__gpu_copy_trim(char *dst, size_t len, const char *p, const char *end);

/* NVML only, for `memsnap bench`: one fresh dlopen + nvmlInit + memory query of device 0 +
 * nvmlShutdown + dlclose, the "init per call" way. Returns 0, or an MS_E* code. */
int ms__nvml_oneshot(uint64_t *used_bytes);

/* nvidia-smi only, for `memsnap bench`: one run of nvidia-smi (found on PATH) with
 * --query-gpu=memory.used --format=csv. Returns 0, or an MS_E* code. */
int ms__nvsmi_oneshot(void);

#endif /* MEMSNAP_GPU_H */
