/*
 * memsnap.h - the public API of libmemsnap.
 *
 * libmemsnap captures point-in-time memory snapshots of a process, of the system and of the
 * process's memory cgroup, compares two snapshots and writes them as text, JSON or CSV.
 *
 * Conventions:
 *   - Public symbols start with ms_ / MS_. Functions that can fail return 0 on success or a
 *     negative MS_E* code (see MS_ERRNO_MAP); ms_strerror() names it.
 *   - Long-lived state is held by opaque handles (ms_session, ms_writer).
 *   - Result structs start with a `size` field set by ms_snapshot_init(); fields are only
 *     meaningful when their validity bit is set (ms_valid()). "Not available" is never 0.
 *   - Every metric is declared once in an X-macro list (MS_PROCESS_FIELDS, ...); the struct,
 *     the delta and every sink are expanded from it.
 *
 * ABI rule: within one MS_VERSION_MAJOR, fields are only ever appended to the structs below
 * and no function changes its signature.
 */
#ifndef MEMSNAP_H
#define MEMSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS_VERSION_MAJOR  0
#define MS_VERSION_MINOR  1
#define MS_VERSION_PATCH  0
#define MS_VERSION_STRING "0.1.0"
#define MS_VERSION_HEX    ((MS_VERSION_MAJOR << 16) | (MS_VERSION_MINOR << 8) | MS_VERSION_PATCH)

#if defined(__GNUC__)
#define MS_EXTERN __attribute__((visibility("default")))
#else
#define MS_EXTERN
#endif

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* XX(name, message): one table generates the enum, ms_strerror() and ms_err_name(). */
#define MS_ERRNO_MAP(XX)                                                                           \
    XX(EINVAL, "invalid argument")                                                                 \
    XX(ENOMEM, "out of memory")                                                                    \
    XX(ESRCH, "no such process")                                                                   \
    XX(EACCES, "permission denied")                                                                \
    XX(ENOENT, "no such file or directory")                                                        \
    XX(EPARSE, "malformed input")                                                                  \
    XX(EIO, "input/output error")                                                                  \
    XX(ENOTSUP, "not supported")                                                                   \
    XX(ERANGE, "value out of range")

enum ms__err_index {
#define XX(name, msg) MS__ERRIDX_##name,
    MS_ERRNO_MAP(XX)
#undef XX
        MS__ERRIDX_COUNT
};

typedef enum ms_errno {
    MS_OK = 0,
#define XX(name, msg) MS_##name = -(MS__ERRIDX_##name + 1),
    MS_ERRNO_MAP(XX)
#undef XX
} ms_errno;

/* Human message for an MS_E* code (or 0); never NULL. */
MS_EXTERN const char *ms_strerror(int err);
/* Symbolic name of an MS_E* code ("EINVAL"); never NULL. */
MS_EXTERN const char *ms_err_name(int err);
/* One line on the calling thread's last failure in any libmemsnap call ("" when none yet); it
 * names what failed ("/proc/42/status: no such process"). The per-handle *_error() functions
 * (ms_session_error, ms_trace_error, ms_heap_error) give the same message. A successful call
 * does not clear it: read it right after a call returned an error. */
MS_EXTERN const char *ms_last_error(void);

/* ---------------------------------------------------------------------------------------- */
/* Metrics, declared once                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Units of a metric: how sinks print it. */
typedef enum ms_unit {
    MS_UNIT_BYTES, /* a byte count: human units in text */
    MS_UNIT_COUNT, /* a plain count */
} ms_unit;

/* X(name, unit, text label, description) for each process metric. */
#define MS_PROCESS_FIELDS(X)                                                                       \
    X(rss_bytes, MS_UNIT_BYTES, "RSS", "resident set size (statm)")                                \
    X(vms_bytes, MS_UNIT_BYTES, "VMS", "virtual memory size (statm)")                              \
    X(shared_bytes, MS_UNIT_BYTES, "shared", "resident shared and file-backed pages (statm)")      \
    X(text_bytes, MS_UNIT_BYTES, "text", "program code (statm)")                                   \
    X(data_bytes, MS_UNIT_BYTES, "data", "data and stack (statm)")                                 \
    X(peak_rss_bytes, MS_UNIT_BYTES, "peak RSS", "high-water mark of RSS (status VmHWM)")          \
    X(peak_vms_bytes, MS_UNIT_BYTES, "peak VMS", "peak virtual size (status VmPeak)")              \
    X(swap_bytes, MS_UNIT_BYTES, "swap", "swapped-out anonymous memory (status VmSwap)")           \
    X(rss_anon_bytes, MS_UNIT_BYTES, "RSS anon", "resident anonymous memory (status RssAnon)")     \
    X(rss_file_bytes, MS_UNIT_BYTES, "RSS file", "resident file mappings (status RssFile)")        \
    X(rss_shmem_bytes, MS_UNIT_BYTES, "RSS shmem", "resident shared memory (status RssShmem)")     \
    X(pss_bytes, MS_UNIT_BYTES, "PSS", "proportional set size (smaps_rollup Pss)")                 \
    X(uss_bytes, MS_UNIT_BYTES, "USS", "unique set size (smaps Private_Clean+Private_Dirty)")      \
    X(minor_faults, MS_UNIT_COUNT, "minor faults", "minor page faults (stat minflt)")              \
    X(major_faults, MS_UNIT_COUNT, "major faults", "major page faults (stat majflt)")              \
    X(threads, MS_UNIT_COUNT, "threads", "number of threads (status Threads)")

/* X(...) for each system-wide metric, from meminfo. */
#define MS_SYSTEM_FIELDS(X)                                                                        \
    X(total_bytes, MS_UNIT_BYTES, "total", "usable RAM (MemTotal)")                                \
    X(available_bytes, MS_UNIT_BYTES, "available", "estimate of allocatable RAM (MemAvailable)")   \
    X(free_bytes, MS_UNIT_BYTES, "free", "unused RAM (MemFree)")                                   \
    X(swap_total_bytes, MS_UNIT_BYTES, "swap total", "swap space (SwapTotal)")                     \
    X(swap_free_bytes, MS_UNIT_BYTES, "swap free", "unused swap (SwapFree)")

/* X(...) for each metric of the process's memory cgroup (v1 names in parentheses). */
#define MS_CGROUP_FIELDS(X)                                                                        \
    X(current_bytes, MS_UNIT_BYTES, "usage", "memory.current (memory.usage_in_bytes)")             \
    X(max_bytes, MS_UNIT_BYTES, "limit",                                                           \
      "memory.max (memory.limit_in_bytes); not valid when unlimited")                              \
    X(peak_bytes, MS_UNIT_BYTES, "peak", "memory.peak (memory.max_usage_in_bytes)")                \
    X(oom_kills, MS_UNIT_COUNT, "OOM kills", "memory.events oom_kill (memory.oom_control)")

/* X(...) for each metric of one GPU (device-wide, then the snapshot's process on it). */
#define MS_GPU_FIELDS(X)                                                                           \
    X(total_bytes, MS_UNIT_BYTES, "total", "device memory (NVML total, sysfs vram_total)")         \
    X(free_bytes, MS_UNIT_BYTES, "free", "unallocated device memory")                              \
    X(used_bytes, MS_UNIT_BYTES, "used", "allocated device memory, all processes")                 \
    X(reserved_bytes, MS_UNIT_BYTES, "reserved", "memory the driver reserves (NVML v2 only)")      \
    X(process_used_bytes, MS_UNIT_BYTES, "process used",                                           \
      "memory the snapshot's process holds on this GPU")

/* Field indexes (MS_PF_rss_bytes, MS_SF_total_bytes, MS_CF_current_bytes) for validity bits. */
#define MS__FIELD_INDEX(prefix, name, unit, label, desc) prefix##name,
#define MS__PF(name, unit, label, desc)                  MS__FIELD_INDEX(MS_PF_, name, unit, label, desc)
#define MS__SF(name, unit, label, desc)                  MS__FIELD_INDEX(MS_SF_, name, unit, label, desc)
#define MS__CF(name, unit, label, desc)                  MS__FIELD_INDEX(MS_CF_, name, unit, label, desc)
#define MS__GF(name, unit, label, desc)                  MS__FIELD_INDEX(MS_GF_, name, unit, label, desc)
enum ms_process_field { MS_PROCESS_FIELDS(MS__PF) MS_PF__COUNT };
enum ms_system_field { MS_SYSTEM_FIELDS(MS__SF) MS_SF__COUNT };
enum ms_cgroup_field { MS_CGROUP_FIELDS(MS__CF) MS_CF__COUNT };
enum ms_gpu_field { MS_GPU_FIELDS(MS__GF) MS_GF__COUNT };

#define MS__U64_FIELD(name, unit, label, desc) uint64_t name;
#define MS__I64_FIELD(name, unit, label, desc) int64_t name;

/* Validity: ms_valid(&snap.process, MS_PF_rss_bytes). */
#define ms_valid(section, field)     ((((section)->valid) >> (field)) & 1u)
#define ms_set_valid(section, field) ((section)->valid |= (UINT64_C(1) << (field)))

typedef struct ms_process_mem {
    uint64_t valid; /* bit MS_PF_x set when field x was read */
    MS_PROCESS_FIELDS(MS__U64_FIELD)
} ms_process_mem;

typedef struct ms_system_mem {
    uint64_t valid; /* bit MS_SF_x set when field x was read */
    MS_SYSTEM_FIELDS(MS__U64_FIELD)
} ms_system_mem;

/* Which cgroup hierarchy a figure came from. */
typedef enum ms_cgroup_version {
    MS_CGROUP_NONE = 0, /* no memory cgroup found */
    MS_CGROUP_V1 = 1,   /* the v1 memory controller */
    MS_CGROUP_V2 = 2,   /* the unified hierarchy */
} ms_cgroup_version;

typedef struct ms_cgroup_mem {
    uint64_t valid;            /* bit MS_CF_x set when field x was read */
    ms_cgroup_version version; /* hierarchy, MS_CGROUP_NONE when not found */
    bool unlimited;            /* the limit file said "max" / no limit */
    char path[256];            /* cgroup path as in /proc/PID/cgroup ("/user.slice/...") */
    MS_CGROUP_FIELDS(MS__U64_FIELD)
} ms_cgroup_mem;

#define MS_GPU_MAX      16 /* GPUs a snapshot holds */
#define MS_GPU_PROC_MAX 64 /* processes listed per GPU */

/* One process on a GPU. */
typedef struct ms_gpu_proc {
    int32_t pid;         /* as the backend reports it (NVML: the host's PID namespace) */
    uint64_t used_bytes; /* device memory the process holds */
} ms_gpu_proc;

/* One GPU: device-wide figures and the processes on it. */
typedef struct ms_gpu {
    uint64_t valid;           /* bit MS_GF_x set when field x was read */
    uint32_t index;           /* position among every GPU found (NVIDIA first, NVML order): the
                                 one in gpus[] unless ms_options.device picked this GPU */
    char backend[16];         /* "nvml", "nvidia-smi", "drm" */
    char name[96];            /* product name, "" when unknown */
    char uuid[96];            /* "GPU-..." (NVIDIA), "" when unknown */
    char pci_bus_id[32];      /* "0000:03:00.0", "" when unknown */
    bool is_per_process;      /* processes[] and process_used_bytes are real per-process figures */
    uint32_t process_count;   /* entries in processes[] */
    bool processes_truncated; /* more than MS_GPU_PROC_MAX processes were found */
    ms_gpu_proc processes[MS_GPU_PROC_MAX];
    MS_GPU_FIELDS(MS__U64_FIELD)
} ms_gpu;

/* ---------------------------------------------------------------------------------------- */
/* Snapshots                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* What ms_capture() reads; OR them together. */
enum ms_capture_flags {
    MS_CAPTURE_BASIC = 1u << 0,   /* statm: rss, vms, shared, text, data (one read) */
    MS_CAPTURE_PROCESS = 1u << 1, /* + status, stat: peaks, swap, RSS breakdown, faults */
    MS_CAPTURE_SYSTEM = 1u << 2,  /* meminfo */
    MS_CAPTURE_CGROUP = 1u << 3,  /* the process's memory cgroup */
    MS_CAPTURE_GPU = 1u << 4,     /* every GPU: device memory and per-process use (not part of
                                     DEFAULT/FULL: callers add it, see ms_gpu_backends()) */
    MS_CAPTURE_PSS = 1u << 5,     /* smaps_rollup: PSS, USS. The kernel walks the page tables:
                                     the cost grows with the RSS (about 4 ms per GiB) */
    MS_CAPTURE_DEFAULT = MS_CAPTURE_BASIC | MS_CAPTURE_SYSTEM | MS_CAPTURE_CGROUP,
    MS_CAPTURE_FULL = MS_CAPTURE_BASIC | MS_CAPTURE_PROCESS | MS_CAPTURE_PSS | MS_CAPTURE_SYSTEM |
                      MS_CAPTURE_CGROUP,
};

#define MS_SNAPSHOT_VERSION 1
#define MS_SNAPSHOT_SCHEMA  "memsnap.snapshot/1"
#define MS_LABEL_MAX        128

typedef struct ms_snapshot {
    uint32_t size;         /* sizeof(ms_snapshot) of the caller's build; set by ms_snapshot_init */
    uint32_t version;      /* MS_SNAPSHOT_VERSION */
    uint32_t captured;     /* MS_CAPTURE_* sections that were read */
    int32_t pid;           /* process the snapshot describes; 0 when none */
    uint64_t timestamp_ns; /* CLOCK_REALTIME at capture, ns since the epoch */
    uint64_t monotonic_ns; /* CLOCK_MONOTONIC at capture, ns */
    char label[MS_LABEL_MAX]; /* caller's label, "" when none */
    ms_process_mem process;
    ms_system_mem system;
    ms_cgroup_mem cgroup;
    uint32_t gpu_count; /* entries of gpus[] filled by an MS_CAPTURE_GPU capture */
    ms_gpu gpus[MS_GPU_MAX];
} ms_snapshot;

/* Prepares a snapshot for use: zeroes it and sets size and version. */
MS_EXTERN void ms_snapshot_init(ms_snapshot *snap);
/* Copies label (truncated to MS_LABEL_MAX-1 bytes) into the snapshot. */
MS_EXTERN void ms_snapshot_set_label(ms_snapshot *snap, const char *label);

/* ---------------------------------------------------------------------------------------- */
/* Sessions                                                                                 */
/* ---------------------------------------------------------------------------------------- */

typedef struct ms_session ms_session;

typedef struct ms_options {
    uint32_t size;      /* sizeof(ms_options); 0 is taken as the current size */
    const char *procfs; /* procfs root, NULL: $MEMSNAP_PROCFS or "/proc" */
    const char *sysfs;  /* sysfs root, NULL: $MEMSNAP_SYSFS or "/sys" */
    const char *device; /* the one GPU an MS_CAPTURE_GPU capture returns: "N" (its index among
                           every GPU found, as `memsnap gpu ps` lists them), its UUID or its PCI
                           bus id; NULL: every GPU. Copied by ms_session_open() */
} ms_options;

/* Opens a session; opts may be NULL. The session keeps /proc descriptors open between
 * captures, so a repeated capture of the same process costs one pread per file. Errors:
 * MS_EINVAL (out NULL, opts->size too small, an empty or over-long opts->device), MS_ENOMEM;
 * ms_last_error() says which. With opts->device, a GPU capture that finds no such GPU fails
 * with MS_ENOENT, naming the GPUs there are. */
MS_EXTERN int ms_session_open(ms_session **out, const ms_options *opts);
/* Closes every descriptor and frees the session; NULL is allowed. */
MS_EXTERN void ms_session_close(ms_session *s);
/* One line describing the last failure of this session ("" when none); valid until the next
 * call on the session. A failing ms_capture() leaves the same line in ms_last_error(). */
MS_EXTERN const char *ms_session_error(const ms_session *s);
/* The procfs and sysfs roots in use. */
MS_EXTERN const char *ms_session_procfs(const ms_session *s);
MS_EXTERN const char *ms_session_sysfs(const ms_session *s);

/* Captures a snapshot of pid (0: the calling process) reading the MS_CAPTURE_* sections in
 * `what`. snap must have been set up with ms_snapshot_init(); its label is kept. Fields a
 * source cannot give stay invalid. Returns 0, or MS_ESRCH / MS_EACCES / MS_EPARSE / ... with
 * ms_session_error() naming the file. With MS_CAPTURE_PSS, a task without an address space (a
 * kernel thread such as kthreadd) gives MS_ENOTSUP: capture it without PSS. */
MS_EXTERN int ms_capture(ms_session *s, pid_t pid, unsigned what, ms_snapshot *snap);

/* The descriptors session s keeps open for captures of pid (0: the calling process) that read
 * the MS_CAPTURE_* sections in `what`, opened by an earlier capture: at most n into fds, /proc
 * files first, then meminfo, then the cgroup's files. Returns how many there are (which may
 * exceed n); 0 when no capture of pid has opened them. For measurements that need the very
 * files a capture reads (`memsnap bench` times pread() on them); the descriptors stay the
 * session's: do not close them. */
MS_EXTERN int ms_session_fds(ms_session *s, pid_t pid, unsigned what, int *fds, size_t n);

/* ---------------------------------------------------------------------------------------- */
/* Deltas and reports                                                                       */
/* ---------------------------------------------------------------------------------------- */

typedef struct ms_process_delta {
    uint64_t valid; /* bit MS_PF_x set when x was valid in both snapshots */
    MS_PROCESS_FIELDS(MS__I64_FIELD)
} ms_process_delta;

typedef struct ms_system_delta {
    uint64_t valid;
    MS_SYSTEM_FIELDS(MS__I64_FIELD)
} ms_system_delta;

typedef struct ms_cgroup_delta {
    uint64_t valid;
    MS_CGROUP_FIELDS(MS__I64_FIELD)
} ms_cgroup_delta;

/* The delta of one GPU present (same index and backend) in both snapshots. */
typedef struct ms_gpu_delta {
    uint64_t valid;      /* bit MS_GF_x set when x was valid in both snapshots */
    uint32_t index;      /* the GPU's index in both snapshots */
    bool is_per_process; /* both snapshots had real per-process figures */
    MS_GPU_FIELDS(MS__I64_FIELD)
} ms_gpu_delta;

typedef struct ms_delta {
    uint32_t size;      /* sizeof(ms_delta) */
    int64_t elapsed_ns; /* after.monotonic_ns - before.monotonic_ns (wall clock if different
                           boots) */
    ms_process_delta process;
    ms_system_delta system;
    ms_cgroup_delta cgroup;
    uint32_t gpu_count; /* entries of gpus[]: GPUs present in both snapshots */
    ms_gpu_delta gpus[MS_GPU_MAX];
} ms_delta;

/* after - before for every field valid in both. */
MS_EXTERN void ms_delta_compute(const ms_snapshot *before, const ms_snapshot *after, ms_delta *out);

/* Formats a byte count in binary units ("512 B", "1.50 KiB", "3.25 GiB"). Returns the length
 * that snprintf would have written. */
MS_EXTERN int ms_format_bytes(char *buf, size_t len, uint64_t bytes);
/* Same with a sign for deltas ("+1.50 MiB", "-512 B", "0 B"). */
MS_EXTERN int ms_format_bytes_signed(char *buf, size_t len, int64_t bytes);

/* Copies len bytes of s with each byte that is not part of well-formed UTF-8 replaced by
 * U+FFFD, as the JSON sink does: what every memsnap writer and reader does with text that came
 * from a command line or the environment. Returns a malloc'd, NUL-terminated string and its
 * length in *out_len (unless NULL), or NULL when out of memory. */
MS_EXTERN char *ms_utf8_clean(const char *s, size_t len, size_t *out_len);
/* Writes str as a JSON string, quotes included, escaped as every memsnap JSON writer escapes
 * (bytes that are not well-formed UTF-8 become U+FFFD), for a front end that writes JSON of its
 * own around memsnap's figures. Returns 0, or MS_EIO when the stream has failed. */
MS_EXTERN int ms_json_string(FILE *fp, const char *str);

/* Writes a one-line delta: "[label] RSS 1.00 GiB -> 1.25 GiB (+256.00 MiB) | ..." and '\n'.
 * The reports return 0, MS_EINVAL (a NULL argument) or MS_EIO (the stream failed), each with
 * its ms_last_error() line. */
MS_EXTERN int ms_report_line(FILE *fp, const ms_snapshot *before, const ms_snapshot *after);
/* Writes a before/after table of every field valid in either snapshot. */
MS_EXTERN int ms_report_table(FILE *fp, const ms_snapshot *before, const ms_snapshot *after);
/* The same two reports into buf, with snprintf's rules: the text is cut to fit len bytes and
 * NUL-terminated when len > 0 (buf may be NULL when len is 0); the result is the length of the
 * whole text, without the NUL, so a result >= len means it was cut. Errors: MS_EINVAL (a NULL
 * snapshot, or a NULL buf with len > 0). */
MS_EXTERN int ms_report_line_buf(char *buf, size_t len, const ms_snapshot *before,
                                 const ms_snapshot *after);
MS_EXTERN int ms_report_table_buf(char *buf, size_t len, const ms_snapshot *before,
                                  const ms_snapshot *after);
/* Writes the delta as one JSON object: {"schema":"memsnap.delta/1","elapsed_ns":...,
 * "before_label":...,"after_label":...,"process":{"rss_bytes":<signed or null>,...},...}. */
MS_EXTERN int ms_report_json(FILE *fp, const ms_snapshot *before, const ms_snapshot *after);

/* ---------------------------------------------------------------------------------------- */
/* Field reflection: the metric lists as data, for bindings and exporters                   */
/* ---------------------------------------------------------------------------------------- */

/* The sections of a snapshot that hold metrics, in the order of ms_snapshot. */
typedef enum ms_section {
    MS_SECTION_PROCESS, /* ms_snapshot.process (ms_process_mem), ms_delta.process */
    MS_SECTION_SYSTEM,  /* ms_snapshot.system (ms_system_mem), ms_delta.system */
    MS_SECTION_CGROUP,  /* ms_snapshot.cgroup (ms_cgroup_mem), ms_delta.cgroup */
    MS_SECTION_GPU,     /* each of ms_snapshot.gpus[] (ms_gpu), of ms_delta.gpus[] */
    MS_SECTION_COUNT
} ms_section;

/* One metric of a section, as its X-macro list declares it. */
typedef struct ms_field_info {
    const char *name;        /* JSON name: "rss_bytes" */
    const char *label;       /* text label: "RSS" */
    const char *description; /* one line: "resident set size (statm)" */
    ms_unit unit;
    uint32_t bit;        /* its validity bit in the section's `valid` mask (MS_PF_rss_bytes) */
    size_t offset;       /* of its uint64_t in the section struct (ms_process_mem, ms_gpu, ...) */
    size_t delta_offset; /* of its int64_t in the section's delta (ms_process_delta, ...) */
} ms_field_info;

/* A section and its metrics, in list order (fields[i].bit == i). Owned by the library. */
typedef struct ms_field_table {
    size_t size;               /* sizeof(ms_field_table) of the library */
    ms_section section;        /* which one */
    const char *name;          /* "process", "system", "cgroup", "gpu" (the JSON key; "gpus" holds
                                  the list of GPUs) */
    unsigned capture;          /* the MS_CAPTURE_* flags that fill it */
    size_t snapshot_offset;    /* of the section struct in ms_snapshot (GPU: of gpus[0]) */
    size_t delta_offset;       /* of the section's delta in ms_delta (GPU: of gpus[0]) */
    size_t valid_offset;       /* of the uint64_t `valid` mask in the section struct */
    size_t delta_valid_offset; /* of the `valid` mask in the section's delta */
    size_t struct_size;        /* sizeof the section struct (ms_process_mem ... ms_gpu) */
    size_t delta_struct_size;  /* sizeof the section's delta (ms_process_delta ... ms_gpu_delta) */
    size_t count;              /* entries of fields */
    const ms_field_info *fields;
} ms_field_table;

/* Points *out at the (static, immutable) table of section's metrics: what a binding walks
 * instead of expanding the X-macros itself, so a metric added to a list reaches it with no
 * change. Errors: MS_EINVAL (section out of range, or out NULL). */
MS_EXTERN int ms_fields(ms_section section, const ms_field_table **out);
/* The field of section named name ("rss_bytes"), or NULL (ms_last_error() then says so). */
MS_EXTERN const ms_field_info *ms_field_find(ms_section section, const char *name);

/* ---------------------------------------------------------------------------------------- */
/* Sinks                                                                                    */
/* ---------------------------------------------------------------------------------------- */

typedef enum ms_format {
    MS_FORMAT_TEXT, /* aligned, human units */
    MS_FORMAT_JSON, /* one object per snapshot, one per line when several */
    MS_FORMAT_CSV,  /* a header row, then one row per snapshot */
} ms_format;

/* Parses "text" / "json" / "csv"; MS_EINVAL otherwise (ms_last_error(): unknown format "x"). */
MS_EXTERN int ms_format_parse(const char *name, ms_format *out);

typedef struct ms_writer ms_writer;

/* Opens a writer of the given format on fp (not closed by the writer). Errors: MS_EINVAL,
 * MS_ENOMEM, each with its ms_last_error() line. */
MS_EXTERN int ms_writer_open(ms_writer **out, ms_format fmt, FILE *fp);
/* Writes one snapshot; returns MS_EIO when the stream failed (ms_last_error() names the sink
 * and the snapshot). */
MS_EXTERN int ms_writer_snapshot(ms_writer *w, const ms_snapshot *snap);
/* Flushes, frees the writer and returns MS_EIO if any write failed. */
MS_EXTERN int ms_writer_close(ms_writer *w);

/* Reads a snapshot written by the JSON sink. On failure returns MS_EPARSE and writes a one
 * line reason ("field process.rss_bytes: expected a non-negative integer or null") into err
 * (which may be NULL) and as ms_last_error(); MS_EINVAL for a NULL text or out. */
MS_EXTERN int ms_snapshot_from_json(const char *text, size_t len, ms_snapshot *out, char *err,
                                    size_t errlen);

/* ---------------------------------------------------------------------------------------- */
/* Probes                                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct ms_probe_info {
    char name[32];    /* "proc", "smaps_rollup", "meminfo", "cgroup" */
    bool available;   /* the probe can read its source on this host */
    char detail[256]; /* what it measures, or why it is unavailable */
} ms_probe_info;

/* Fills up to n entries describing each probe for process pid (0: self); returns the number of
 * probes (which may exceed n). */
MS_EXTERN int ms_session_probes(ms_session *s, pid_t pid, ms_probe_info *out, size_t n);

/* A GPU backend as `memsnap info` describes it. */
typedef struct ms_gpu_backend_info {
    char name[16];              /* "nvml", "nvidia-smi", "drm" */
    bool available;             /* loaded and found at least one device */
    char detail[256];           /* what it reads, or why it is unavailable */
    uint32_t device_count;      /* devices it found */
    bool supports_device_total; /* every device it found gives total_bytes */
    bool supports_device_free;  /* every device it found gives free_bytes */
    bool per_process;           /* it can give per-process memory */
    char sampling_source[64];   /* "NVML library", "nvidia-smi CSV", "sysfs + fdinfo" */
    char driver_version[64];    /* kernel driver version, "" when unknown */
    char cuda_version[32];      /* CUDA driver version ("12.4"), "" when unknown */
} ms_gpu_backend_info;

/* Fills up to n entries describing each GPU backend compiled in (initialising them on first
 * use, once per session); returns the number of backends (which may exceed n). */
MS_EXTERN int ms_gpu_backends(ms_session *s, ms_gpu_backend_info *out, size_t n);

/* One query of the first GPU's used memory done the way a tool that keeps nothing loaded does
 * it, for comparing its cost with a session's long-lived backends (`memsnap bench --gpu`):
 * "nvml" is a fresh dlopen + nvmlInit + query + nvmlShutdown + dlclose, "nvidia-smi" one run of
 * nvidia-smi --query-gpu=memory.used. Returns 0, MS_ENOTSUP (the backend is unknown, not built,
 * or cannot be loaded here) or the query's failure. */
MS_EXTERN int ms_gpu_query_once(const char *backend);

/* Library version string, MS_VERSION_STRING of the built library. */
MS_EXTERN const char *ms_version(void);

/* ---------------------------------------------------------------------------------------- */
/* Traces: reading what `memsnap record` wrote (docs/trace-format.md)                       */
/* ---------------------------------------------------------------------------------------- */

typedef struct ms_trace ms_trace;

/*
 * The summary of one trace file. Counts cover every image of the process (an exec() starts a
 * new image in the same file). In a sampled trace (sample_rate > 0) the allocation figures are
 * unbiased estimates: each recorded block of size s stands for s / (1 - exp(-s / rate)) bytes.
 */
typedef struct ms_trace_stats {
    size_t size;  /* sizeof(ms_trace_stats), set by the caller */
    uint32_t pid; /* the recorded process */
    uint32_t ppid;
    uint32_t images;          /* 1 + the number of exec()s */
    bool forked;              /* the process was started by fork() of a recorded parent */
    bool complete;            /* the trace has its END record (a normal exit) */
    bool truncated;           /* reading stopped at a bad or cut chunk: see the warning */
    uint64_t sample_rate;     /* 0: every allocation was recorded */
    uint64_t allocations;     /* blocks returned by malloc, calloc, the aligned family,
                                 realloc(NULL, n), and the ms_trace_alloc() API */
    uint64_t frees;           /* frees of non-NULL pointers (and realloc(p, 0)) */
    uint64_t reallocations;   /* realloc(p, n) with p and the result non-NULL */
    uint64_t allocated_bytes; /* bytes asked for by allocations and reallocations */
    uint64_t peak_bytes;      /* the most heap bytes live at once */
    uint64_t peak_time_ns;    /* when that peak was first reached, from the trace start */
    uint64_t leaked_bytes;    /* live at the end of the trace */
    uint64_t leaked_allocations;
    uint64_t unmatched_frees; /* frees of pointers not live in the trace */
    uint64_t threads;         /* threads that called the allocator */
    uint64_t duration_ns;     /* trace start to END (or to the last record) */
    uint64_t events;          /* allocation, free, realloc and mmap events */
    uint64_t stacks;          /* distinct stack trie nodes */
    uint64_t modules;
    uint64_t markers;
    uint64_t rss_samples;
    uint64_t rss_peak_bytes; /* largest RSS sample */
    uint64_t mmaps;          /* with --mmap: mmap and mremap calls recorded */
    uint64_t munmaps;
    uint64_t mapped_bytes; /* bytes mapped by those calls */
    uint64_t file_bytes;   /* size of the trace file read */
    uint64_t exit_kind;    /* with complete: 0 exit, 1 _exit, 2 abort, 3 quick_exit */
    uint64_t lost_events;  /* allocations and frees the tracker could not record (made by
                              signal handlers nested deeper than it can defer) */
    bool saturated;        /* a byte figure passed 2^64 - 1 and is held there: no program's
                              heap does, so the trace is crafted or corrupt */
} ms_trace_stats;

/* Opens a trace file and checks its header. Errors: MS_ENOENT, MS_EACCES, MS_EPARSE (not a
 * memsnap trace, or a newer major version). */
MS_EXTERN int ms_trace_open(ms_trace **out, const char *path);
/* Reads the whole trace and fills *stats. A truncated or corrupt file is read up to its last
 * good chunk: the result is 0, stats->truncated is set and ms_trace_warning() says where. */
MS_EXTERN int ms_trace_stats_get(ms_trace *trace, ms_trace_stats *stats);
/* NULL, or one line on why reading stopped early. */
MS_EXTERN const char *ms_trace_warning(const ms_trace *trace);
/* The message of the last failure on this trace; with NULL, ms_last_error() (an alias kept
 * for callers of a failed ms_trace_open(), which has no handle to keep it). */
MS_EXTERN const char *ms_trace_error(const ms_trace *trace);
MS_EXTERN void ms_trace_close(ms_trace *trace);

/* How a trace file ends, from its chunk frames and its last chunk alone (nothing else is
 * decoded, so this is quick on any size): what `memsnap record` checks once the program has
 * ended. The tracker writes its END record in a chunk of its own, last (format 1.1 on). */
typedef struct ms_trace_tail {
    size_t size;         /* sizeof(ms_trace_tail), set by the caller */
    bool complete;       /* the file ends with the END record */
    uint64_t exit_kind;  /* with complete: 0 exit, 1 _exit, 2 abort, 3 quick_exit */
    uint64_t chunks;     /* whole chunks */
    uint64_t good_bytes; /* bytes up to the end of the last whole chunk */
    uint64_t file_bytes; /* the file's size */
} ms_trace_tail;
/* Errors as ms_trace_open(), whose ms_trace_error(NULL) says why. */
MS_EXTERN int ms_trace_tail_get(const char *path, ms_trace_tail *tail);

/* ---------------------------------------------------------------------------------------- */
/* Heap analysis of a trace: the snapshot engine behind `memsnap report`                    */
/* ---------------------------------------------------------------------------------------- */

/*
 * ms_heap_open() reads a trace once and replays it: from then on the live heap at any moment
 * costs a checkpoint copy and a bounded replay (about a millisecond on a 10-million-event
 * trace). A moment is a time in ns from the trace start; every event at or before it counts.
 * Live blocks are charged to their allocation site (the stack, the size and the thread that
 * allocated them, whichever thread frees them). A realloc ends its old block and starts a new
 * one. A heap view lists the live sites; ms_heap_group() aggregates a view by call site,
 * function (self or inclusive), module or thread, with frames symbolized by build-id
 * (function, file, line, inlined frames; module+offset when unresolved). In a sampled trace
 * figures are estimates. Views and rows stay valid until ms_heap_close().
 */
typedef struct ms_heap ms_heap;
typedef struct ms_heap_view ms_heap_view;
typedef struct ms_heap_rows ms_heap_rows;

typedef struct ms_heap_totals {
    size_t size;                 /* sizeof(ms_heap_totals), set by the caller */
    uint64_t events;             /* allocator calls replayed */
    uint64_t allocations;        /* blocks allocated (realloc's new blocks excluded) */
    uint64_t reallocations;      /* reallocs that moved or resized a live block */
    uint64_t frees;              /* frees that ended a live block */
    uint64_t unmatched_frees;    /* frees of blocks not live in the trace (double frees too) */
    uint64_t temporaries;        /* blocks freed with no allocation after their own */
    uint64_t temporary_bytes;    /* their bytes */
    uint64_t peak_bytes;         /* the most heap bytes live at once */
    uint64_t peak_time_ns;       /* when that peak was first reached */
    uint64_t leaked_bytes;       /* live at the end of the last image */
    uint64_t leaked_allocations; /* how many blocks */
    uint64_t duration_ns;        /* trace start to end */
    bool sampled;                /* figures are estimates (--sample-rate) */
    bool truncated;              /* read up to a cut or corrupt chunk: see ms_heap_warning() */
    /* appended in 0.1 (issue 14); a caller whose size ends before them gets the fields above */
    uint64_t allocated_bytes;  /* bytes of every block allocated, realloc's new blocks too */
    uint64_t freed_bytes;      /* bytes of every live block that ended: freed, or the old block
                                  of a realloc (allocated - freed = live, within one image) */
    uint64_t threads;          /* threads of the trace, every image: ms_heap_threads() rows */
    uint64_t lost_events;      /* allocator calls the tracker could not record */
    uint64_t checkpoint_every; /* events between the engine's checkpoints: the most a view
                                  replays */
    bool complete;             /* the trace has its END record (the program exited) */
} ms_heap_totals;

/* Options of ms_heap_open_opts() and ms_heap_open_fd(). */
typedef struct ms_heap_open_options {
    size_t size; /* sizeof(ms_heap_open_options); 0 is taken as the current size */
    /* Called from the loading thread after each chunk of the file, with the bytes read so far
     * and the file's size (0 when unknown), e.g. to draw a progress bar; may be NULL. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} ms_heap_open_options;

/* Opens and replays a trace. Errors: MS_ENOENT, MS_EACCES, MS_EPARSE (not a memsnap trace, a
 * newer major version), MS_ENOMEM; ms_last_error() says why in one line ("PATH: why"). */
MS_EXTERN int ms_heap_open(ms_heap **out, const char *path);
/* The same with options (opts may be NULL): a progress callback for a long load. Errors as
 * ms_heap_open(), and MS_EINVAL for a size too small. */
MS_EXTERN int ms_heap_open_opts(ms_heap **out, const char *path, const ms_heap_open_options *opts);
/* The same on a descriptor the caller opened (not closed; the handle keeps a duplicate, to read
 * the trace again for ms_heap_blocks() and ms_heap_threads()); name names the trace in
 * messages ("trace" when NULL). */
MS_EXTERN int ms_heap_open_fd(ms_heap **out, int fd, const char *name,
                              const ms_heap_open_options *opts);
MS_EXTERN void ms_heap_close(ms_heap *h);
/* NULL, or one line on why reading stopped early (a cut or corrupt trace). */
MS_EXTERN const char *ms_heap_warning(const ms_heap *h);
/* An alias of ms_last_error(), kept for callers written before it: why the calling thread's
 * last ms_heap_open() (or any later failing call) failed. */
MS_EXTERN const char *ms_heap_error(void);
MS_EXTERN int ms_heap_totals_get(const ms_heap *h, ms_heap_totals *out);
/* The time of the first marker (MS_TRACE_MARKER) labelled label; MS_ENOENT when none is. */
MS_EXTERN int ms_heap_marker_time(const ms_heap *h, const char *label, uint64_t *ns);
/* A moment as a user writes it (`memsnap report --at WHEN`), to ns from the start: plain
 * decimal seconds ("2", "0.25"; " 5", "+5", "0x5" and "1e3" are not times), else the label of
 * a marker (its first occurrence). Errors, each with its ms_last_error() line: MS_EINVAL (a
 * time past the end of the trace), MS_ERANGE (a negative time that is no marker's label),
 * MS_ENOENT (no marker has that label). */
MS_EXTERN int ms_heap_when(const ms_heap *h, const char *when, uint64_t *ns);

/* The heap at time ns from the start (MS_EINVAL past the end of the trace). */
MS_EXTERN int ms_heap_at(ms_heap *h, uint64_t ns, ms_heap_view **out);
/* The heap when live bytes were highest, the first time. */
MS_EXTERN int ms_heap_peak(ms_heap *h, ms_heap_view **out);
/* What was live at the end of the last image. */
MS_EXTERN int ms_heap_leaks(ms_heap *h, ms_heap_view **out);
/* b - a: signed bytes and counts of the sites that changed (growth first when grouped). */
MS_EXTERN int ms_heap_diff(ms_heap *h, const ms_heap_view *a, const ms_heap_view *b,
                           ms_heap_view **out);
MS_EXTERN void ms_heap_view_free(ms_heap_view *v);
/* The view's moment (a diff: the second one), live bytes and blocks (a diff: the change). */
MS_EXTERN uint64_t ms_heap_view_time(const ms_heap_view *v);
MS_EXTERN int64_t ms_heap_view_bytes(const ms_heap_view *v);
MS_EXTERN int64_t ms_heap_view_count(const ms_heap_view *v);

/* One live block. The trace holds no addresses: a block is named by its number, the n-th
 * allocation of its process image. In a sampled trace these are the recorded blocks. */
typedef struct ms_heap_block {
    uint64_t id;      /* its number (0, 1, ... in allocation order) */
    uint64_t size;    /* bytes */
    uint64_t time_ns; /* when it was allocated, from the trace start */
    uint32_t tid;     /* the allocating thread (0 when unknown) */
    uint32_t stack;   /* its call stack: ms_heap_stack() gives the frames */
} ms_heap_block;

/* Calls fn for every block live in view v (not a diff: MS_EINVAL), oldest first. The pass at
 * open keeps no per-block state, so this reads the trace again up to v's moment. Stops at a
 * non-zero return of fn and returns it. */
MS_EXTERN int ms_heap_blocks(ms_heap *h, const ms_heap_view *v,
                             int (*fn)(void *ctx, const ms_heap_block *b), void *ctx);

typedef enum ms_heap_by {
    MS_HEAP_BY_SITE,          /* the call site: the whole stack */
    MS_HEAP_BY_FUNCTION,      /* the innermost function (self) */
    MS_HEAP_BY_FUNCTION_INCL, /* every function on the stack, once per stack (inclusive) */
    MS_HEAP_BY_MODULE,        /* the module of the innermost frame */
    MS_HEAP_BY_THREAD,        /* the allocating thread */
} ms_heap_by;

typedef enum ms_heap_order {
    MS_HEAP_ORDER_BYTES, /* largest (a diff: most growth) first, then count */
    MS_HEAP_ORDER_COUNT, /* most blocks first, then bytes */
} ms_heap_order;

typedef struct ms_heap_frame {
    uint64_t ip;          /* the return address as recorded */
    const char *function; /* NULL when unknown */
    const char *file;     /* NULL when unknown */
    uint32_t line;        /* 0 when unknown */
    const char *module;   /* the module's path ("?" when no module holds ip) */
    uint64_t offset;      /* ip - the module's load bias */
    bool inlined;         /* inlined into the next frame */
} ms_heap_frame;

typedef struct ms_heap_row {
    int64_t bytes;
    int64_t count;
    const char *name;            /* function or module (BY_FUNCTION*, BY_MODULE), thread name
                                    (BY_THREAD, may be NULL), NULL for BY_SITE */
    uint32_t tid;                /* BY_THREAD: the kernel thread id (0 when unknown) */
    const ms_heap_frame *frames; /* BY_SITE: the stack, innermost first */
    size_t nframes;
} ms_heap_row;

/* Groups view v; max > 0 keeps the first max rows after sorting. */
MS_EXTERN int ms_heap_group(ms_heap *h, const ms_heap_view *v, ms_heap_by by, ms_heap_order order,
                            size_t max, ms_heap_rows **out);
MS_EXTERN size_t ms_heap_rows_count(const ms_heap_rows *r);
/* Row i (NULL past the end). */
MS_EXTERN const ms_heap_row *ms_heap_rows_at(const ms_heap_rows *r, size_t i);
MS_EXTERN void ms_heap_rows_free(ms_heap_rows *r);
/* The frames of a block's stack (ms_heap_block.stack) in view v's process image, innermost
 * first, at most max into out; returns how many. Strings live until ms_heap_close(). */
MS_EXTERN size_t ms_heap_stack(ms_heap *h, const ms_heap_view *v, uint32_t stack,
                               ms_heap_frame *out, size_t max);

/* One thread's figures over the whole trace (memscope-rs's thread statistics). Like every heap
 * figure they are charged to the thread that ALLOCATED a block: the trace does not record
 * which thread frees, so a block thread A allocates and thread B frees counts in A's frees.
 * A realloc is the end of its old block and a new block. Weighted estimates when sampled. */
typedef struct ms_heap_thread {
    uint32_t tid;             /* the kernel thread id (0 when the trace has none) */
    uint32_t image;           /* its process image: 0, then one more per exec() */
    const char *name;         /* its last name, NULL when it has none */
    uint64_t allocations;     /* blocks it allocated (realloc's new blocks excluded) */
    uint64_t reallocations;   /* realloc's new blocks it made */
    uint64_t allocated_bytes; /* bytes of both */
    uint64_t frees;           /* of its blocks, those a free() ended */
    uint64_t freed_bytes;     /* bytes of its blocks that ended: freed, or moved by a realloc */
    uint64_t peak_bytes;      /* the most bytes of its blocks live at once */
    uint64_t peak_time_ns;    /* when that was first reached (0 when it allocated nothing) */
} ms_heap_thread;

/* Computes the figures of every thread of the trace (on the first call: a pass that reads the
 * trace again, tens of ms per 10 million events) and gives their number in *count; rows are
 * in the order threads first called the allocator, image by image. Errors: MS_ENOMEM, and
 * those of reading the file again (MS_EIO). */
MS_EXTERN int ms_heap_threads(ms_heap *h, size_t *count);
/* Row i of ms_heap_threads() (NULL past the end, or before that call); valid until
 * ms_heap_close(). */
MS_EXTERN const ms_heap_thread *ms_heap_thread_at(const ms_heap *h, size_t i);

/* ---------------------------------------------------------------------------------------- */
/* Heap output: the one renderer of heap rows (text, JSON, folded)                          */
/* ---------------------------------------------------------------------------------------- */

/*
 * ms_heap_write() is the one renderer of heap rows: `memsnap report`, `memsnap analyze` of a
 * trace and the flight recorder's trace_tail.json all print through it, in the formats of
 * docs/report-format.md. The view is grouped (ms_heap_group()) by `by` in `order` and the
 * first `top` rows written (0: every row):
 *   - TEXT: a header ("peak at 0.001234 s: 1.50 MiB (1572864 bytes) live in 12 allocations";
 *     "heap at" for ms_heap_at(), "leaks at", "diff from T1 to T2"), then per site its bytes,
 *     blocks and symbolized frames; per thread a table (tid, name, allocations, bytes); per
 *     function or module its name.
 *   - JSON: one object on one line: time_ns (and from_time_ns for a diff), live_bytes,
 *     live_allocations, then "sites" (bytes, count, stack of {function, file, line, module}),
 *     "threads" (tid, name, bytes, count), "functions" or "modules" (name, bytes, count).
 *   - FOLDED: one line per row with positive bytes, every row whatever top says (a flame graph
 *     wants them all): "outer;...;inner BYTES", "NAME-TID BYTES" (threads), "NAME BYTES".
 *   - JSON_ADDRESSES: JSON whose sites carry "stack_id" and unsymbolized frames {ip, module,
 *     offset} (hex strings), at most 64 per site, and no debug info is read: what a crash-time
 *     bundle can afford. Other groupings as JSON.
 * Errors: MS_EINVAL (an unknown by, order or format), MS_ENOMEM, MS_EIO (fp failed).
 */
typedef enum ms_heap_format {
    MS_HEAP_FORMAT_TEXT,
    MS_HEAP_FORMAT_JSON,
    MS_HEAP_FORMAT_FOLDED,
    MS_HEAP_FORMAT_JSON_ADDRESSES,
} ms_heap_format;

MS_EXTERN int ms_heap_write(ms_heap *h, const ms_heap_view *v, ms_heap_by by, ms_heap_order order,
                            ms_heap_format format, size_t top, FILE *fp);

/* Writes the per-thread statistics (ms_heap_threads()) of `memsnap report --threads --stats`:
 * TEXT, a line of totals then a table; JSON, one object (docs/report-format.md). Threads are
 * sorted by allocated bytes, largest first, and cut to top (0: all). Errors: MS_EINVAL (FOLDED
 * or an unknown format), those of ms_heap_threads(), MS_EIO. */
MS_EXTERN int ms_heap_threads_write(ms_heap *h, ms_heap_format format, size_t top, FILE *fp);

/* Writes the summary of a trace (ms_trace_stats_get()) as `memsnap report --stats` does:
 * MS_FORMAT_TEXT, aligned "label: value" lines; MS_FORMAT_JSON, one object on one line whose
 * "warning" is the given line (ms_trace_warning(), or NULL). Errors: MS_EINVAL (CSV),
 * MS_ENOMEM, MS_EIO. */
MS_EXTERN int ms_trace_stats_write(const ms_trace_stats *st, const char *warning, ms_format format,
                                   FILE *fp);

/* ---------------------------------------------------------------------------------------- */
/* Sampling: the one sampler behind monitor, track, the bindings and the exporter           */
/* ---------------------------------------------------------------------------------------- */

/*
 * A sampler takes one snapshot of a process per interval, on an absolute CLOCK_MONOTONIC
 * schedule (late ticks are skipped, never bunched), through one long-lived session. Full
 * samples (status, stat, meminfo, the cgroup, the GPUs, the --tree scan) are taken at most
 * every full interval (default 100 ms); the samples in between re-read statm only and carry
 * the other figures of the last full one, so that 1 ms sampling costs little more than one
 * read. PSS and USS need the kernel to walk the page tables (about 4 ms per GiB of RSS): by
 * default a full sample walks only while the walks stay under 1% of a core, and each sample
 * says when its PSS was read. A sampler is used by one thread at a time: the caller's, through
 * ms_sampler_next()/ms_sampler_take(), or its own background thread after ms_sampler_start(),
 * whose peaks over windows (ms_sampler_window_open/close) and latest sample any thread may read.
 */
typedef struct ms_sampler ms_sampler;
typedef struct ms_flight ms_flight; /* the OOM flight recorder, below */

enum ms_sampler_flags {
    MS_SAMPLER_NO_GPU = 1u << 0,     /* full samples leave the GPUs out */
    MS_SAMPLER_TREE = 1u << 1,       /* full samples list the process and its descendants */
    MS_SAMPLER_EXACT_FULL = 1u << 2, /* full_interval_ns as given (0: every sample is full),
                                        and every full sample walks for PSS, whatever it costs */
    MS_SAMPLER_LIGHT = 1u << 3,      /* never full: statm only (a cheap peak sampler) */
};

typedef struct ms_sampler_options {
    size_t size;               /* sizeof(ms_sampler_options) */
    pid_t pid;                 /* the process sampled; 0: the calling process */
    uint64_t interval_ns;      /* between samples; 0: 1 s */
    uint64_t full_interval_ns; /* full figures at most this often; 0: 100 ms (see EXACT_FULL) */
    unsigned flags;            /* MS_SAMPLER_* */
    ms_session *session;       /* captures go through it (the caller keeps it, and leaves it
                                  alone while the sampler runs); NULL: the sampler opens its
                                  own on procfs and sysfs */
    const char *procfs;        /* roots of the sampler's own session (NULL: the defaults) */
    const char *sysfs;
    ms_flight *flight; /* every sample is also kept in this recorder's ring (NULL: none) */
} ms_sampler_options;

#define MS_TREE_MAX 4096 /* processes a --tree sample lists */

/* One process of a tree sample. */
typedef struct ms_tree_member {
    int32_t pid;
    int32_t ppid;
    char comm[64];      /* the command name, from stat */
    char state;         /* from stat: 'R', 'S', 'Z'... */
    uint32_t threads;   /* from stat; 0: unknown */
    bool rss_valid;     /* rss_bytes was read (statm) */
    bool pss_valid;     /* pss_bytes was read (this walk, or the member's last one) */
    uint64_t rss_bytes; /* bytes */
    uint64_t pss_bytes; /* bytes */
} ms_tree_member;

/* One sample; the pointers stay valid until the next call on the sampler. */
typedef struct ms_sample {
    size_t size;             /* sizeof(ms_sample), set by the caller */
    uint64_t seq;            /* 0, 1, ...: the samples this sampler has taken */
    bool full;               /* every figure is fresh; else statm's and the timestamps only */
    bool walked;             /* this sample read PSS and USS */
    uint64_t pss_time_ns;    /* CLOCK_REALTIME of the walk whose PSS and USS it carries; 0: none
                                yet */
    const ms_snapshot *snap; /* the figures */
    bool tree_valid;         /* (MS_SAMPLER_TREE, full samples) tree describes this sample */
    size_t tree_count;       /* entries at tree: the process first, then its descendants */
    const ms_tree_member *tree;
    const char *note; /* non-NULL on the sample where PSS and USS were given up for
                         good (another user's process, a kernel thread): why */
} ms_sample;

/* The largest figures sampled while a window was open. */
typedef struct ms_peak {
    size_t size;      /* sizeof(ms_peak), set by the caller */
    uint64_t samples; /* samples taken while it was open */
    bool rss_valid, pss_valid, gpu_valid;
    uint64_t rss_bytes;              /* the highest RSS */
    uint64_t rss_time_ns;            /* when (CLOCK_REALTIME) */
    uint64_t pss_bytes;              /* the highest PSS of a walk inside the window */
    uint64_t gpu_used_bytes;         /* the highest sum over the GPUs of used_bytes */
    uint64_t gpu_process_used_bytes; /* and of the process's own use, where per-process */
} ms_peak;

/* Opens a sampler of o->pid (o may not be NULL). Errors: MS_EINVAL (a bad option), MS_ENOMEM,
 * the session's (opening its own). Nothing is read yet: the schedule starts at the first
 * sample. */
MS_EXTERN int ms_sampler_open(ms_sampler **out, const ms_sampler_options *o);
/* CLOCK_MONOTONIC ns at which the next sample is due (0 before the first: now). */
MS_EXTERN uint64_t ms_sampler_due(const ms_sampler *s);
/* Takes the next sample now, whether or not it is due (for callers that sleep themselves,
 * e.g. to react to signals), and moves the schedule on. Returns 0 and fills *out, or an MS_E*
 * code with ms_last_error() set: MS_ESRCH when the process is gone (ended, or a zombie), any
 * other when a file could not be read (that tick is skipped); MS_EINVAL on a started
 * sampler. */
MS_EXTERN int ms_sampler_take(ms_sampler *s, ms_sample *out);
/* Sleeps until the next sample is due (signals do not cut the sleep short), then as
 * ms_sampler_take(). */
MS_EXTERN int ms_sampler_next(ms_sampler *s, ms_sample *out);
/* Runs the schedule on a background thread (all signals blocked in it) until
 * ms_sampler_stop() or ms_sampler_close(); samples that fail are skipped, and a process that
 * is gone ends the thread. Errors: MS_EINVAL (already started), MS_ENOMEM (no thread). */
MS_EXTERN int ms_sampler_start(ms_sampler *s);
/* Stops the background thread and waits for it (nothing when not started). */
MS_EXTERN void ms_sampler_stop(ms_sampler *s);
/* Copies the latest sample's figures (safe while started). MS_ENOENT: none yet. */
MS_EXTERN int ms_sampler_latest(ms_sampler *s, ms_snapshot *out);
/* The figures of the last sample when they include full ones, NULL before the first full
 * sample and after a full sample failed (the caller's thread, not started). */
MS_EXTERN const ms_snapshot *ms_sampler_snapshot(const ms_sampler *s);
/* Opens a window: from now on every sample updates its peak, so that a spike between two
 * reads of a caller is not missed (at a 1 ms interval, a 0.4 ms allocate-and-free may still
 * fall between two samples). Any thread. Errors: MS_ENOMEM. */
MS_EXTERN int ms_sampler_window_open(ms_sampler *s, unsigned *id);
/* The window's peak so far (it stays open). MS_EINVAL: no such open window. */
MS_EXTERN int ms_sampler_window_read(ms_sampler *s, unsigned id, ms_peak *out);
/* The window's peak, and closes it (out may be NULL). MS_EINVAL: no such open window. */
MS_EXTERN int ms_sampler_window_close(ms_sampler *s, unsigned id, ms_peak *out);
/* Stops the thread, closes the sampler's own session and frees it; NULL is allowed. */
MS_EXTERN void ms_sampler_close(ms_sampler *s);

/*
 * A memory cgroup made for one command (`memsnap run --memory-limit`), v1 or v2, as
 * `systemd-run -p MemoryMax=` would: created under the memory hierarchy of the caller's own
 * cgroup (or its root when that cannot take a child), entered by the command's process before
 * exec, removed after the command ended.
 */
typedef struct ms_cglimit ms_cglimit;
/* Creates it with its limit (v2 memory.max and memory.swap.max = 0; v1 limit_in_bytes and
 * memsw.limit_in_bytes where they exist); procfs, sysfs: the roots (NULL: /proc, /sys).
 * Errors: MS_EACCES, MS_ENOENT... with ms_last_error() naming the directory. */
MS_EXTERN int ms_cglimit_create(ms_cglimit **out, const char *procfs, const char *sysfs,
                                uint64_t limit_bytes);
/* Moves pid (0: the caller) into it; async-signal-safe (open, write, close), for a forked
 * child before exec. Returns 0 or an MS_E* code (no message: it may run after fork). */
MS_EXTERN int ms_cglimit_enter(const ms_cglimit *cg, pid_t pid);
/* Its path as /proc/PID/cgroup shows it, and its directory in sysfs. */
MS_EXTERN const char *ms_cglimit_path(const ms_cglimit *cg);
MS_EXTERN const char *ms_cglimit_dir(const ms_cglimit *cg);
/* The limit set, in bytes. */
MS_EXTERN uint64_t ms_cglimit_limit(const ms_cglimit *cg);
/* Its OOM-kill count, and how often usage hit the limit; -1 when it cannot be read. */
MS_EXTERN int64_t ms_cglimit_oom_kills(const ms_cglimit *cg);
MS_EXTERN int64_t ms_cglimit_failcnt(const ms_cglimit *cg);
/* "" or why the caller's own cgroup was not used (it was made under the hierarchy's root). */
MS_EXTERN const char *ms_cglimit_note(const ms_cglimit *cg);
/* Removes the cgroup (processes still in it go to the parent) and frees cg; NULL is allowed.
 * Returns 0, or an MS_E* code when the directory could not be removed (cg is freed all the
 * same). */
MS_EXTERN int ms_cglimit_destroy(ms_cglimit *cg);

/* ---------------------------------------------------------------------------------------- */
/* Alerts: thresholds against the tightest limit, re-arming, OOM detection                  */
/* ---------------------------------------------------------------------------------------- */

/*
 * Alerts compare each full sample's usage with the tightest limit that applies - the memory
 * cgroup's limit (current / max, when it has one), the system's memory ((total - available) /
 * total) and each GPU's (used / total): the highest percentage decides. A level alert is
 * given when the level rises (warning, critical) and an "ok" one when usage falls under the
 * warning threshold; falling from critical to warning re-arms critical without an alert. An
 * OOM event is given when the sample's cgroup shows its OOM-kill count rising, and, after the
 * command ended, for a SIGKILL at its limit (ms_alerts_exit()).
 */
typedef struct ms_alerts ms_alerts;

typedef struct ms_alerts_options {
    size_t size;            /* sizeof(ms_alerts_options) */
    double warning_pct;     /* 0 < PCT <= 100; 0: no warning level */
    double critical_pct;    /* 0 < PCT <= 100, above warning_pct; 0: no critical level */
    const char *own_cgroup; /* the path (as /proc/PID/cgroup shows it) of a cgroup made for the
                               command (ms_cglimit_path()), whose OOM kills seen while sampling
                               ms_alerts_exit() does not give again; NULL: none */
} ms_alerts_options;

/* The usage of the tightest limit in a snapshot. */
typedef struct ms_usage {
    char metric[16];      /* "cgroup", "system", "gpu<N>" */
    uint64_t used_bytes;  /* bytes */
    uint64_t limit_bytes; /* bytes */
    double percent;       /* 100 * used / limit */
} ms_usage;

typedef enum ms_alert_kind {
    MS_ALERT_LEVEL, /* the level changed: level, usage */
    MS_ALERT_OOM,   /* an out-of-memory: reason */
} ms_alert_kind;

typedef enum ms_alert_level {
    MS_ALERT_OK,       /* under the warning threshold */
    MS_ALERT_WARNING,  /* at or above the warning threshold */
    MS_ALERT_CRITICAL, /* at or above the critical threshold */
} ms_alert_level;

#define MS_ALERTS_MAX_EVENTS 2 /* events one sample can give: a level change and an OOM */

typedef struct ms_alert_event {
    ms_alert_kind kind;
    uint64_t time_ns;     /* the sample's timestamp_ns (ms_alerts_exit: 0) */
    ms_alert_level level; /* MS_ALERT_LEVEL */
    ms_usage usage;       /* MS_ALERT_LEVEL: the tightest limit's usage; MS_ALERT_OOM from
                             ms_alerts_exit: percent is the highest of the last samples */
    const char *reason;   /* MS_ALERT_OOM: "cgroup_oom_kill" or "sigkill_at_limit" */
    int64_t oom_kills;    /* MS_ALERT_OOM: the cgroup's OOM-kill count (-1: unknown) */
} ms_alert_event;

/* How a watched command ended, for ms_alerts_exit(). */
typedef struct ms_alerts_exit_info {
    size_t size;              /* sizeof(ms_alerts_exit_info) */
    int wait_status;          /* as waitpid() gave it */
    bool sent_kill;           /* the caller sent the SIGKILL itself (not an OOM) */
    int64_t cgroup_oom_kills; /* the command's own cgroup's OOM kills (ms_cglimit_oom_kills), -1:
                                 no such cgroup or unknown */
    int64_t cgroup_failcnt;   /* how often it hit its limit (ms_cglimit_failcnt), -1: unknown */
} ms_alerts_exit_info;

/* The usage of the tightest limit in snap (host_only: the cgroup and the system, not the
 * GPUs). Returns 0, or MS_ENOENT when no limit is known. */
MS_EXTERN int ms_usage_tightest(const ms_snapshot *snap, bool host_only, ms_usage *out);
/* Opens the alert state (o may be NULL: no thresholds, OOM detection only). MS_EINVAL: a
 * threshold out of range, or warning not below critical. */
MS_EXTERN int ms_alerts_open(ms_alerts **out, const ms_alerts_options *o);
/* Looks at a full sample: returns how many events (0 to max, MS_ALERTS_MAX_EVENTS at most) it
 * wrote at out, a level change before an OOM. */
MS_EXTERN int ms_alerts_check(ms_alerts *a, const ms_snapshot *snap, ms_alert_event *out,
                              size_t max);
/* The current level. */
MS_EXTERN ms_alert_level ms_alerts_level(const ms_alerts *a);
/* After the command ended: 1 and an MS_ALERT_OOM event when its end was an out-of-memory not
 * yet given (its cgroup's OOM kills rose; or it died by SIGKILL that the caller did not send
 * when its cgroup hit its limit, or with the host usage of one of the last 3 full samples at
 * 95% or more of its tightest limit), else 0. */
MS_EXTERN int ms_alerts_exit(ms_alerts *a, const ms_alerts_exit_info *x, ms_alert_event *out);
/* "ok", "warning", "critical". */
MS_EXTERN const char *ms_alert_level_name(ms_alert_level level);
MS_EXTERN void ms_alerts_close(ms_alerts *a);

/* ---------------------------------------------------------------------------------------- */
/* Timelines: writing the monitor format (docs/monitor-format.md)                           */
/* ---------------------------------------------------------------------------------------- */

/*
 * A timeline writer writes the monitor format: one start record, then samples with alert,
 * marker and oom records among them, then one end record, as JSON lines or CSV (one backend
 * each behind one table). Each record is composed in memory and handed on whole (one write(2)
 * through a write function, or fwrite+fflush on a stream), so that a killed monitor leaves only
 * whole lines. With a flight recorder, every sample and event also goes into its ring (events
 * as their JSON record, whatever the format). Samples are numbered from 0 by the writer.
 */
typedef struct ms_timeline_writer ms_timeline_writer;

/* Hands one whole record on; returns 0, or non-zero when it failed: the writer then writes
 * nothing more (its calls return MS_EIO) and still feeds the flight recorder. */
typedef int (*ms_timeline_write_fn)(void *ctx, const char *record, size_t len);

typedef struct ms_timeline_writer_options {
    size_t size;                /* sizeof(ms_timeline_writer_options) */
    ms_format format;           /* MS_FORMAT_JSON or MS_FORMAT_CSV */
    FILE *fp;                   /* records go here, flushed one at a time; or: */
    ms_timeline_write_fn write; /* records go to write(write_ctx, ...) (used when not NULL) */
    void *write_ctx;
    ms_flight *flight; /* samples and events also kept in its ring (NULL: none) */
    /* the job identity in every record */
    const char *job_id; /* NULL: unknown */
    int64_t rank;       /* -1: unknown (0 is a rank: ms_timeline_writer_options_init) */
    int64_t world_size; /* -1: unknown */
    /* what the start record says */
    const char *const *argv; /* the command watched, NULL-terminated; NULL: a --pid */
    uint64_t interval_ns, full_interval_ns;
    bool tree;                   /* samples carry "tree" */
    double warning_pct;          /* 0: not set */
    double critical_pct;         /* 0: not set */
    uint64_t memory_limit_bytes; /* 0: none */
    const char *trace;           /* the allocation trace being recorded, or NULL */
} ms_timeline_writer_options;

/* Sets size, rank and world_size -1, the format JSON, everything else 0. */
MS_EXTERN void ms_timeline_writer_options_init(ms_timeline_writer_options *o);
/* Opens a writer; a CSV one writes its header row at once (when that write fails, the writer
 * is open but failed: its calls return MS_EIO). With neither fp nor write, records go only to
 * the flight recorder. Errors: MS_EINVAL (a format other than JSON or CSV), MS_ENOMEM. */
MS_EXTERN int ms_timeline_writer_open(ms_timeline_writer **out,
                                      const ms_timeline_writer_options *o);
/* The start record (once; later calls do nothing): pid watched, its time, and the limits of
 * the first full sample (limits: NULL when there is none yet). */
MS_EXTERN int ms_timeline_writer_start(ms_timeline_writer *w, uint64_t time_ns, pid_t pid,
                                       const ms_snapshot *limits);
/* A sample record (numbered by the writer), and the sample in the flight recorder. */
MS_EXTERN int ms_timeline_writer_sample(ms_timeline_writer *w, const ms_sample *s);
/* An alert record (its seq: the last sample's), or for MS_ALERT_OOM nothing: use _oom. */
MS_EXTERN int ms_timeline_writer_alert(ms_timeline_writer *w, const ms_alert_event *e);
/* An oom record: reason, backend ("cpu", "cuda"), pid and the flight recorder's bundle (NULL:
 * none). */
MS_EXTERN int ms_timeline_writer_oom(ms_timeline_writer *w, uint64_t time_ns, const char *reason,
                                     const char *backend, pid_t pid, const char *bundle);
/* A marker record with a label. */
MS_EXTERN int ms_timeline_writer_marker(ms_timeline_writer *w, uint64_t time_ns, const char *label);
/* The end record: reason ("command_exited", "pid_exited", "duration", "interrupted"), the
 * command's exit status and signal (-1: none). */
MS_EXTERN int ms_timeline_writer_end(ms_timeline_writer *w, uint64_t time_ns, const char *reason,
                                     int exit_status, int signal);
/* Samples written so far. */
MS_EXTERN uint64_t ms_timeline_writer_samples(const ms_timeline_writer *w);
/* Frees the writer (fp is not closed); NULL is allowed. */
MS_EXTERN void ms_timeline_writer_close(ms_timeline_writer *w);

/* ---------------------------------------------------------------------------------------- */
/* Timelines: reading and analysing monitor output (docs/analyze-format.md)                 */
/* ---------------------------------------------------------------------------------------- */

/*
 * A timeline is what `memsnap monitor` or `memsnap track` wrote (CSV or JSON lines,
 * docs/monitor-format.md), read into columns: ms_timeline_open() reads it once (a malformed
 * line is an error naming the file and the line; a last line cut short is a warning).
 * ms_timeline_analyze() computes what `memsnap analyze` reports for every metric - the summary,
 * the leak trend and the spikes - and the ms_timeline_write_* calls print that analysis as
 * text, as one JSON object (schema "memsnap.analyze/1", docs/analyze-format.md) or as a
 * self-contained HTML report. ms_timeline_analyze_path() does all of it for a path of either
 * kind: monitor output, or a trace written by `memsnap record` (its heap at the peak and its
 * leaks, through ms_heap_*), recognized by its contents.
 */
typedef struct ms_timeline ms_timeline;
typedef struct ms_timeline_analysis ms_timeline_analysis;

/* What a file holds, by its first bytes (ms_timeline_sniff). */
typedef enum ms_timeline_kind {
    MS_TIMELINE_MONITOR, /* monitor output (or anything else: reading it says what is wrong) */
    MS_TIMELINE_TRACE,   /* a trace written by `memsnap record` (docs/trace-format.md) */
} ms_timeline_kind;

/* The kind of a file whose first len bytes are buf (8 bytes suffice). */
MS_EXTERN ms_timeline_kind ms_timeline_sniff(const void *buf, size_t len);

/* Reads the monitor output at path (a regular file; a big one is mapped and read by several
 * threads: a file truncated while it is read raises SIGBUS, as any mapping does, so a program
 * that must survive that maps or reads the file itself and calls ms_timeline_read). Errors:
 * MS_ENOENT, MS_EACCES, MS_EINVAL (not a regular file, or empty), MS_EPARSE (a malformed line:
 * ms_last_error() names the file and the line), MS_ENOMEM, MS_EIO. */
MS_EXTERN int ms_timeline_open(ms_timeline **out, const char *path);
/* The same over len bytes at buf, the whole file; name is used in messages and as the
 * analysis's "file". buf must stay valid and unchanged during the call only. */
MS_EXTERN int ms_timeline_read(ms_timeline **out, const void *buf, size_t len, const char *name);
MS_EXTERN void ms_timeline_close(ms_timeline *tl);
/* NULL, or the warnings of the reading, one line each ending in '\n', each starting with
 * "warning: " (a cut last line, records of an unknown kind). Valid until ms_timeline_close. */
MS_EXTERN const char *ms_timeline_warning(const ms_timeline *tl);
/* The samples read. */
MS_EXTERN size_t ms_timeline_samples(const ms_timeline *tl);

/* Analyzes tl: every metric's summary, trend (leak severity) and spikes, and the alerts, OOM
 * records and markers. tl must stay open while the analysis is used. Errors: MS_ENOMEM. */
MS_EXTERN int ms_timeline_analyze(ms_timeline *tl, ms_timeline_analysis **out);

typedef struct ms_timeline_options {
    size_t size; /* sizeof(ms_timeline_options), set by the caller */
    size_t top;  /* a trace: call sites listed (0: 10) */
} ms_timeline_options;

/* Opens the file at path, recognizes its kind (ms_timeline_sniff) and analyzes it: monitor
 * output as ms_timeline_open + ms_timeline_analyze, a trace through ms_heap_* (its peak and
 * leaks by call site). opts may be NULL (defaults). Errors: those of ms_timeline_open, or of
 * ms_heap_open for a trace; ms_last_error() says why. */
MS_EXTERN int ms_timeline_analyze_path(const char *path, const ms_timeline_options *opts,
                                       ms_timeline_analysis **out);
/* Frees the analysis (and, for one from ms_timeline_analyze_path, what it read). */
MS_EXTERN void ms_timeline_analysis_free(ms_timeline_analysis *a);
/* The analysis's kind: MS_TIMELINE_MONITOR or MS_TIMELINE_TRACE. */
MS_EXTERN ms_timeline_kind ms_timeline_analysis_kind(const ms_timeline_analysis *a);
/* NULL, or the warnings and notes about the input, one line each ending in '\n', each starting
 * with "warning: " or "note: " (a monitor file's, as ms_timeline_warning; a trace's: cut,
 * without its END record, events the tracker lost). */
MS_EXTERN const char *ms_timeline_analysis_warning(const ms_timeline_analysis *a);

/* One metric of a monitor analysis, over the samples that have it. */
typedef struct ms_timeline_metric {
    size_t size;              /* sizeof(ms_timeline_metric), set by the caller */
    const char *label;        /* "process RSS" */
    uint64_t samples;         /* samples with a value */
    uint64_t min, max;        /* bytes */
    double mean;              /* bytes */
    uint64_t p50, p90, p99;   /* nearest-rank percentiles, bytes */
    double slope_bytes_per_s; /* the Theil-Sen slope of the trend */
    const char *severity;     /* the leak verdict: "none", "low", "medium" or "high" */
    uint64_t spikes;          /* spikes found (docs/analyze-format.md) */
} ms_timeline_metric;

/* The figures of the metric named key ("process_rss", "process_pss", "cgroup_current",
 * "system_used", "gpu_used", "tree_rss": the keys of the JSON's "metrics"). Errors: MS_ENOENT
 * (the file has no such metric), MS_EINVAL (a trace's analysis, an unknown key, a short
 * out->size). */
MS_EXTERN int ms_timeline_metric_get(const ms_timeline_analysis *a, const char *key,
                                     ms_timeline_metric *out);

/* Writes the analysis as text (what `memsnap analyze` prints), as one line of JSON (what
 * `--format json` prints, docs/analyze-format.md), or as a self-contained HTML report (no
 * network needed). Each returns 0, or MS_EIO when writing to fp failed, MS_ENOMEM. */
MS_EXTERN int ms_timeline_write_text(ms_timeline_analysis *a, FILE *fp);
MS_EXTERN int ms_timeline_write_json(ms_timeline_analysis *a, FILE *fp);
MS_EXTERN int ms_timeline_write_html(ms_timeline_analysis *a, FILE *fp);

/* ---------------------------------------------------------------------------------------- */
/* The OOM flight recorder                                                                  */
/* ---------------------------------------------------------------------------------------- */

/*
 * The OOM flight recorder keeps the last N samples and events in a ring and writes them out as
 * a bundle directory when an out-of-memory happens: oom_dump_<UTC YYYYmmddTHHMMSSZ>_<pid>_
 * <backend>_<seq>/ in the dump directory, holding events.json (the ring, oldest first),
 * metadata.json (reason, pid, backend, time, the caller's extra members), environment.json
 * (host, kernel, memsnap version, cgroup, GPUs, command line), manifest.json and, with a trace
 * path, trace_tail.json (the tracker's last events and the live heap's top sites). A bundle has
 * its final name only when complete; retention then removes the oldest beyond the limits.
 * docs/monitor-format.md describes every file. Every call may come from any thread.
 */
typedef struct ms_flight_options {
    size_t size;              /* sizeof(ms_flight_options) */
    const char *dump_dir;     /* where bundles go; created 0700 when missing */
    size_t buffer_size;       /* samples and events kept in the ring (0: 1000) */
    unsigned max_dumps;       /* bundles kept in dump_dir (0: no limit) */
    uint64_t max_total_bytes; /* bytes of bundles kept in dump_dir (0: no limit) */
    const char *trace_path;   /* a trace being written by the tracker, or NULL */
    const char *const *argv;  /* the command line watched, for environment.json, or NULL */
} ms_flight_options;

/* Opens a recorder. Errors: MS_EINVAL (no dump_dir), MS_EACCES, MS_ENOENT (an unusable dump
 * directory), MS_ENOMEM; ms_last_error() says why. */
MS_EXTERN int ms_flight_open(ms_flight **out, const ms_flight_options *o);
/* Keeps a copy of snap in the ring; the oldest entry is dropped when it is full. */
MS_EXTERN int ms_flight_push(ms_flight *f, const ms_snapshot *snap);
/* Keeps an event given as the text of one JSON object (an alert, a marker...). */
MS_EXTERN int ms_flight_event(ms_flight *f, const char *json_object);
/* Writes a bundle for an OOM of pid: backend "cpu" or "cuda"..., reason "cgroup_oom_kill",
 * "sigkill_at_limit", "cuda_oom"...; extra_json: a JSON object whose members are added to
 * metadata.json, or NULL. The bundle's path goes to path (path_len bytes). Returns 0, or an
 * MS_E* code with ms_last_error() saying why (and "" in path). */
MS_EXTERN int ms_flight_dump(ms_flight *f, const char *backend, pid_t pid, const char *reason,
                             const char *extra_json, char *path, size_t path_len);
/* Frees the recorder; NULL is allowed. */
MS_EXTERN void ms_flight_close(ms_flight *f);

/* ---------------------------------------------------------------------------------------- */
/* The tracker API: for a program that wants to label phases or report its own pools while  */
/* it runs under `memsnap record`. The symbols are weak: outside a recording they are NULL  */
/* and each macro costs one test of a pointer.                                              */
/* ---------------------------------------------------------------------------------------- */

#if defined(__GNUC__) && !defined(MS_NO_TRACKER_API)
__attribute__((weak)) void ms_trace_marker(const char *label);
__attribute__((weak)) void ms_trace_alloc(const void *ptr, size_t size);
__attribute__((weak)) void ms_trace_free(const void *ptr);
#define MS_TRACE_MARKER(label)                                                                     \
    do {                                                                                           \
        if (ms_trace_marker)                                                                       \
            ms_trace_marker(label);                                                                \
    } while (0)
#define MS_TRACE_ALLOC(ptr, size)                                                                  \
    do {                                                                                           \
        if (ms_trace_alloc)                                                                        \
            ms_trace_alloc(ptr, size);                                                             \
    } while (0)
#define MS_TRACE_FREE(ptr)                                                                         \
    do {                                                                                           \
        if (ms_trace_free)                                                                         \
            ms_trace_free(ptr);                                                                    \
    } while (0)
#endif

#ifdef __cplusplus
}
#endif
#endif /* MEMSNAP_H */
