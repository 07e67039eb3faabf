/*
 * internal.h - what libmemsnap's modules share and nobody else may call.
 *
 * The session structure (open descriptors per process slot, the read buffer, the last error),
 * the file readers and line scanners every probe uses, and the probe entry points. Names are
 * ms__ (internal) so that the public ms_ namespace stays the header's alone.
 */
#ifndef MEMSNAP_INTERNAL_H
#define MEMSNAP_INTERNAL_H

#include "memsnap.h"

#include <limits.h>
#include <stdarg.h>

#define MS__SLOTS 8 /* processes whose descriptors a session keeps open at once */

/* Per-process files, opened lazily and kept open. */
enum ms__pfile { MS__F_STATM, MS__F_STATUS, MS__F_STAT, MS__F_SMAPS, MS__F_CGROUP, MS__F_COUNT };

/* Files of a memory cgroup, in the same order for v1 and v2. */
enum ms__cgfile { MS__CG_CURRENT, MS__CG_MAX, MS__CG_PEAK, MS__CG_EVENTS, MS__CG_COUNT };

/* One process whose descriptors are kept open. */
struct ms__slot {
    bool used;
    pid_t pid;           /* 0 means "self" */
    uint64_t last_use;   /* session tick of the last capture, for eviction */
    int fd[MS__F_COUNT]; /* -1 until first opened */
    bool smaps_full;     /* fd[MS__F_SMAPS] is smaps (no smaps_rollup on this kernel) */
    bool cg_resolved;    /* cgroup lookup done (found or not) */
    uint64_t cg_hash;    /* hash of the /proc/PID/cgroup text it was done for */
    ms_cgroup_version cg_version;
    char cg_path[256];       /* path inside the hierarchy */
    char cg_dir[PATH_MAX];   /* directory holding the memory.* files */
    int cg_fd[MS__CG_COUNT]; /* -1 when the file is absent */
};

/* A cgroup mount seen in mountinfo. */
struct ms__cgmount {
    bool found;
    char root[PATH_MAX];  /* root of the mount inside the hierarchy */
    char point[PATH_MAX]; /* where it is mounted, remapped under the sysfs root */
};

struct ms_session {
    char procfs[PATH_MAX];
    char sysfs[PATH_MAX];
    /* where procfs came from, for the errors that name a wrong root: "MEMSNAP_PROCFS", or NULL
     * (the option, or the default) */
    const char *procfs_from;
    long page_size;    /* bytes */
    pid_t self_pid;    /* getpid() of the process that owns the descriptors */
    unsigned fork_gen; /* ms__fork_gen when self_pid was taken */
    int meminfo_fd;    /* -1 until first opened */
    uint64_t tick;     /* counts captures */
    struct ms__slot slots[MS__SLOTS];
    bool mounts_loaded;
    struct ms__cgmount v1_memory; /* the v1 memory controller's mount */
    struct ms__cgmount v2;        /* the unified hierarchy's mount */
    char *buf;                    /* read buffer shared by every probe */
    size_t cap;                   /* bytes allocated at buf */
    char err[512];                /* last error, one line */
    struct ms__gpu *gpu;          /* GPU backends (src/probe/gpu.c), NULL until the first GPU use */
    char gpu_device[128];         /* ms_options.device: the one GPU captured, "" for every GPU */
};

/* Records a one-line error as the calling thread's last (ms_last_error()) and returns code:
 * every public call that fails goes through it (or ms__fail, which calls it). */
int ms__error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ms__verror(int code, const char *fmt, va_list ap);
/* Records a one-line error on the session and returns code. */
int ms__fail(ms_session *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The figures of the trace reports (`memsnap report`, --stats, --threads --stats), into buf;
 * each returns buf. "12.345678 s": seconds, microseconds truncated. */
const char *ms__fmt_seconds(char *buf, size_t len, uint64_t ns);
/* "1.50 MiB (1572864 bytes)"; below 1 KiB "512 B" alone. */
const char *ms__fmt_bytes_exact(char *buf, size_t len, uint64_t bytes);
/* Maps an errno value from open/read to an MS_E* code. */
int ms__errno_code(int err);

/* Reads the whole of fd from offset 0 into s->buf, NUL-terminated; one pread for a file that
 * fits. Returns the length, or a negative errno value. */
ssize_t ms__read_fd(ms_session *s, int fd);
/* Opens "<root>/<rel>" read-only with O_CLOEXEC; returns the fd or a negative errno value. */
/* Checks the arguments every report (ms_report_*) takes: 0, or MS_EINVAL naming the NULL one;
 * name is the public function's, for the message. dst is the FILE or buffer written. */
int ms__report_args(const char *name, const void *dst, const ms_snapshot *before,
                    const ms_snapshot *after);

/* A copy of the NULL-terminated argv (strings included), NULL when out of memory; and its
 * release (NULL: nothing). */
char **ms__argv_dup(const char *const *argv);
void ms__argv_free(char **argv);

/* Opens path for reading, a regular file only (a FIFO, socket, device or directory of a
 * --procfs or --sysfs tree is refused without blocking): the descriptor, or -errno (EISDIR,
 * EINVAL for the others). */
int ms__open_file(const char *path);
int ms__open_at_root(const char *root, const char *rel);
/* Reads the whole of "<root>/<rel>" into s->buf (open, ms__read_fd, close) for files read once;
 * returns the length or a negative errno value. */
ssize_t ms__read_file(ms_session *s, const char *root, const char *rel);

/* Parses a decimal u64 at p; returns the first byte after it, or NULL when p holds no digit or
 * the number overflows. */
const char *ms__parse_u64(const char *p, const char *end, uint64_t *out);

/* One key of a "Key: value [kB]" or "key value" file. */
struct ms__key {
    const char *name;
    uint8_t len;   /* strlen(name) */
    uint8_t field; /* the caller's index */
};
#define MS__KEY(str, idx)                                                                          \
    {                                                                                              \
        str, (uint8_t)(sizeof(str) - 1), (uint8_t)(idx)                                            \
    }

/* Scans lines "Key: N [kB]" or "key N": for each key in keys, stores (or, with sum, adds) its
 * value in bytes (kB multiplied by 1024) at vals[field] and sets bit `field` of *found.
 * Returns 0, or MS_EPARSE with the offending key in s->err (file names the source). */
int ms__scan_keys(ms_session *s, const char *file, const char *buf, size_t len,
                  const struct ms__key *keys, size_t nkeys, uint64_t *vals, uint64_t *found,
                  bool sum);

/* Opens (once, kept in the slot) and reads a per-process file into s->buf; returns its length,
 * or an MS_E* code with s->err naming the file (MS_ESRCH when the process is gone). */
ssize_t ms__proc_read(ms_session *s, struct ms__slot *slot, enum ms__pfile f);

/* Probes. Each fills its section of snap and returns 0 or an MS_E* code (s->err set). */
struct ms__slot *ms__slot_get(ms_session *s, pid_t pid);
void ms__slot_close(struct ms__slot *slot);
int ms__proc_basic(ms_session *s, struct ms__slot *slot, ms_snapshot *snap);
int ms__proc_full(ms_session *s, struct ms__slot *slot, ms_snapshot *snap); /* status, stat */
int ms__proc_pss(ms_session *s, struct ms__slot *slot, ms_snapshot *snap);  /* smaps_rollup */
int ms__system(ms_session *s, ms_snapshot *snap);
int ms__cgroup(ms_session *s, struct ms__slot *slot, ms_snapshot *snap);
/* Resolves the memory cgroup of slot's process (cached in the slot). */
int ms__cgroup_resolve(ms_session *s, struct ms__slot *slot);
/* Where a process's memory cgroup lives, for code that creates cgroups (src/monitor/cglimit.c). */
struct ms__cgloc {
    ms_cgroup_version version; /* MS_CGROUP_NONE when no memory hierarchy holds the process */
    char path[256];            /* its path as /proc/PID/cgroup shows it */
    char dir[PATH_MAX];        /* its directory, under the sysfs root */
    char mount[PATH_MAX];      /* the hierarchy's mount point: the highest directory visible */
    char mount_root[PATH_MAX]; /* the cgroup path of that mount point ("/" on a host) */
};
/* Finds the memory cgroup of pid (0: self) the way ms__cgroup_resolve does (v1 memory
 * controller first), without opening its memory.* files (the v2 root has none). Returns 0, or an
 * MS_E* code with s->err naming the file. */
int ms__cgroup_locate(ms_session *s, pid_t pid, struct ms__cgloc *out);
/* Fills snap->gpus[] from every available GPU backend (initialised once per session) and the
 * snapshot process's share; a host without GPUs gives gpu_count 0 and returns 0. */
int ms__gpu_capture(ms_session *s, ms_snapshot *snap);
/* Shuts the GPU backends down (nvmlShutdown) and frees their state; called by
 * ms_session_close. */
void ms__gpu_close(ms_session *s);

/* "<procfs>/<pid>/<file>" or "<procfs>/self/<file>" into buf. */
void ms__proc_path(const ms_session *s, pid_t pid, const char *file, char *buf, size_t len);

/* Writes s as a JSON string literal (quotes and escapes) to fp. */
void ms__json_string(FILE *fp, const char *str);
/* Writes v in decimal, after a '-' when neg, at q (room for 21 bytes); returns its end. */
char *ms__put_num(char *q, uint64_t v, bool neg);
/* Writes ,"name":value (no comma unless comma; null when f's bit in valid is clear) at q, which
 * has room for MS__JSON_FIELD_MAX bytes; returns its end. base is what f's offsets are into: a
 * snapshot or ms_gpu (unsigned values, snap_offset), or a delta (signed, delta_offset). */
#define MS__JSON_FIELD_MAX 96 /* a name of at most 64 bytes, a sign and 20 digits */
struct ms__field;
char *ms__json_field(char *q, const struct ms__field *f, uint64_t valid, const void *base,
                     bool delta, bool comma);

/* A metric as sinks and reports see it, expanded from the MS_*_FIELDS lists. */
struct ms__field {
    const char *name;  /* JSON name: "rss_bytes" */
    const char *label; /* text label: "RSS" */
    ms_unit unit;
    uint8_t bit;         /* validity bit in its section */
    size_t snap_offset;  /* of the uint64_t in ms_snapshot */
    size_t delta_offset; /* of the int64_t in ms_delta */
};

/* A section of a snapshot: "process", "system", "cgroup". */
struct ms__section {
    const char *name;
    unsigned capture;          /* MS_CAPTURE_* flags that fill it */
    size_t valid_offset;       /* of its validity mask in ms_snapshot */
    size_t delta_valid_offset; /* of its validity mask in ms_delta */
    const struct ms__field *fields;
    size_t nfields;
};

enum { MS__SEC_PROCESS, MS__SEC_SYSTEM, MS__SEC_CGROUP, MS__SEC_COUNT };
extern const struct ms__section ms__sections[MS__SEC_COUNT];

/* The fields of one GPU: snap_offset is into ms_gpu, delta_offset into ms_gpu_delta. */
extern const struct ms__field ms__gpu_fields[MS_GF__COUNT];

static inline uint64_t ms__gpu_value(const ms_gpu *g, const struct ms__field *f)
{
    return *(const uint64_t *)(const void *)((const char *)g + f->snap_offset);
}
static inline int64_t ms__gpu_delta_value(const ms_gpu_delta *d, const struct ms__field *f)
{
    return *(const int64_t *)(const void *)((const char *)d + f->delta_offset);
}
/* "[per-process]" or "[device-wide]": how a GPU's figures were measured. */
static inline const char *ms__gpu_scope(bool per_process)
{
    return per_process ? "[per-process]" : "[device-wide]";
}

/* The validity mask of a section in a snapshot, or (delta) in an ms_delta. */
static inline uint64_t ms__section_valid(const void *base, const struct ms__section *sec,
                                         bool delta)
{
    size_t off = delta ? sec->delta_valid_offset : sec->valid_offset;
    return *(const uint64_t *)(const void *)((const char *)base + off);
}
static inline uint64_t ms__snap_value(const ms_snapshot *s, const struct ms__field *f)
{
    return *(const uint64_t *)(const void *)((const char *)s + f->snap_offset);
}
static inline bool ms__snap_valid(const ms_snapshot *s, const struct ms__section *sec,
                                  const struct ms__field *f)
{
    return ms__section_valid(s, sec, false) >> f->bit & 1u;
}
static inline int64_t ms__delta_value(const ms_delta *d, const struct ms__field *f)
{
    return *(const int64_t *)(const void *)((const char *)d + f->delta_offset);
}
static inline bool ms__delta_valid(const ms_delta *d, const struct ms__section *sec,
                                   const struct ms__field *f)
{
    return ms__section_valid(d, sec, true) >> f->bit & 1u;
}

/* Writes str as one CSV cell, RFC 4180 quoting (csv.c). */
void ms__csv_string(FILE *fp, const char *str);

/* Arithmetic on figures read from files (traces, procfs, monitor files), which a crafted file
 * can push past 64 bits: held at the limit instead of wrapping (or, signed, undefined). */
static inline uint64_t ms__sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static inline uint64_t ms__sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static inline int64_t ms__sat_add_i64(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b < 0 ? INT64_MIN : INT64_MAX) : r;
}

static inline int64_t ms__sat_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

#endif /* MEMSNAP_INTERNAL_H */
