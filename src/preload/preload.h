/*
 * preload.h - what the parts of libmemsnap_preload.so share: the per-thread ring, the global
 * state, and the functions each file offers the others.
 *
 * preload.c  the hooks (malloc family, exec family, fork, dlopen, mmap), initialisation and
 *            the event encoding on each thread's hot path
 * stacks.c   the module map, stack capture (frame pointers where valid, libunwind otherwise)
 *            and the stack trie that stores each distinct stack once
 * writer.c   the rings, the side buffer of global records, the background thread (RSS
 *            samples, flushes) and the chunked, zstd-compressed trace file
 *
 * Locks, always taken in this order: writer (file and compressor) → stacks → meta → rings.
 * The hot path takes none of them.
 */
#ifndef MS_PRELOAD_H
#define MS_PRELOAD_H

#include "trace/format.h"

#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <x86intrin.h>

#define MS_HIDDEN      __attribute__((visibility("hidden")))
#define MS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define MS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MS_RING_SIZE   (1u << 20) /* bytes per thread; a power of two */
#define MS_RING_MASK   (MS_RING_SIZE - 1)
#define MS_EVENT_MAX   64 /* the longest encoded event */
#define MS_MAX_DEPTH   256
#define MS_FLUSH_NS    50000000ull /* background flush period: at most this much is lost */
#define MS_SAMPLE_NS   10000000ull /* RSS sample period */

/*
 * Events in a ring (private to the tracker; the writer turns them into the records of
 * format.h): u8 op, then varints. `dt` is the ticks since the thread's previous event, heap
 * pointers are zz(ptr - previous pointer), mmap addresses absolute.
 */
enum ms_ring_op {
    MS_OP_ALLOC = 0x01,   /* dt, size, stack, zz(ptr - prev) */
    MS_OP_FREE = 0x02,    /* dt, zz(ptr - prev) */
    MS_OP_REALLOC = 0x03, /* dt, dt2, size, stack, zz(old - prev), zz(new - old): the old
                             block ends at dt (read before the real call), the new one starts
                             dt2 later (after it returned) */
    MS_OP_MMAP = 0x04,    /* dt, size, stack, addr */
    MS_OP_MUNMAP = 0x05,  /* dt, size, addr */
    MS_OP_MREMAP = 0x06,  /* dt, old_size, size, stack, old_addr, addr */
};

/*
 * One thread's event stream: a single-producer, single-consumer ring. The owning thread
 * encodes events at `head` and publishes with a release store of `pub` (a plain store on
 * x86-64); the consumer, holding the writer lock, copies [tail, pub) and releases `tail`.
 */
struct ms_ring {
    uint8_t *buf;
    uint64_t head;         /* producer only */
    uint64_t tail_seen;    /* producer's last view of tail */
    uint64_t ticks;        /* delta state of the encoding: last event's ticks */
    uint64_t ptr;          /* and last heap pointer */
    _Atomic uint64_t pub;  /* published end of the events */
    _Atomic uint64_t tail; /* consumer's position */
    uint64_t serial;       /* the thread's number in this image */
    pid_t tid;
    _Atomic int state;             /* MS_RING_* */
    int64_t sample_left;           /* bytes to the next sample (sampled mode) */
    uint64_t rng;                  /* xorshift state (sampled mode) */
    uintptr_t stack_lo, stack_hi;  /* the thread's stack, for validating frame pointers */
    uint64_t c_ticks, c_ptr;       /* the consumer's decoding state */
    struct ms_stack_cache *scache; /* stacks.c: recent stacks of this thread, for reuse */
    _Atomic uint64_t lost;         /* events that could not be recorded since the last flush */
    struct ms_ring *next;          /* in ms_g.rings */
};

enum { MS_RING_FREE, MS_RING_LIVE, MS_RING_EXITING };

enum ms_unwind { MS_UNWIND_AUTO, MS_UNWIND_FP, MS_UNWIND_DWARF, MS_UNWIND_LIBUNWIND };

/*
 * Every function that a hook forwards to, listed once (like heaptrack's HOOK list):
 * X(name, return type, parameter types). The list expands to struct ms_real (a pointer to the
 * real function of each), to its lookup (resolve() in preload.c: dlsym(RTLD_NEXT, name), in
 * this order) and to a compile-time check that each entry is the C library's own prototype.
 * free is last: resolve() sets it last, and its pointer says that the table is complete.
 * The hooks that forward to another hook (execv, execl... to execve, reallocarray to
 * realloc) or are an alias (mmap64, _Exit) need no entry.
 */
#define MS_HOOKS(X)                                                                                \
    X(malloc, void *, (size_t))                                                                    \
    X(calloc, void *, (size_t, size_t))                                                            \
    X(realloc, void *, (void *, size_t))                                                           \
    X(posix_memalign, int, (void **, size_t, size_t))                                              \
    X(aligned_alloc, void *, (size_t, size_t))                                                     \
    X(memalign, void *, (size_t, size_t))                                                          \
    X(valloc, void *, (size_t))                                                                    \
    X(pvalloc, void *, (size_t))                                                                   \
    X(mmap, void *, (void *, size_t, int, int, int, off_t))                                        \
    X(munmap, int, (void *, size_t))                                                               \
    X(mremap, void *, (void *, size_t, size_t, int, ...))                                          \
    X(dlopen, void *, (const char *, int))                                                         \
    X(dlclose, int, (void *))                                                                      \
    X(execve, int, (const char *, char *const[], char *const[]))                                   \
    X(execvpe, int, (const char *, char *const[], char *const[]))                                  \
    X(fexecve, int, (int, char *const[], char *const[]))                                           \
    X(posix_spawn, int,                                                                            \
      (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,       \
       char *const[], char *const[]))                                                              \
    X(posix_spawnp, int,                                                                           \
      (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,       \
       char *const[], char *const[]))                                                              \
    X(pthread_setname_np, int, (pthread_t, const char *))                                          \
    X(abort, void, (void))                                                                         \
    X(_exit, void, (int))                                                                          \
    X(free, void, (void *))

/* The real functions the hooks forward to: one pointer for each entry of MS_HOOKS. */
struct ms_real {
#define MS_REAL_FIELD(name, ret, params) ret(*name) params;
    MS_HOOKS(MS_REAL_FIELD)
#undef MS_REAL_FIELD
};

struct ms_global {
    struct ms_real real;
    _Atomic int tracing; /* hooks record only when set */
    bool use_tsc;        /* ticks are TSC cycles, else CLOCK_MONOTONIC ns */
    bool record_mmap;
    bool follow; /* exec'd images are recorded too */
    enum ms_unwind unwind;
    unsigned depth;
    uint64_t sample_rate; /* 0: every allocation */
    uint64_t seed;
    pid_t pid;                  /* this process, reset in a fork child */
    char path[4096];            /* this process's trace file */
    char base_path[4096];       /* MEMSNAP_TRACE_FILE: forked children write base_path.<pid> */
    uintptr_t self_lo, self_hi; /* our own text, skipped at the top of stacks */
    pthread_key_t key;          /* its destructor marks a thread's ring as exiting */
    struct ms_ring *rings;      /* every ring, live or free; under rings_lock */
    uint64_t next_serial;
    pthread_mutex_t rings_lock;
};

extern struct ms_global ms_g MS_HIDDEN;

/* What a thread is doing, for a hook it enters (ms_tls.busy). */
enum {
    MS_IDLE = 0, /* the program's code: a hook records */
    MS_HOOK = 1, /* inside a hook: a hook entered now runs in a signal handler that
                    interrupted it, and its event is deferred (preload.c) */
    MS_SELF = 2, /* the tracker's own work (unwinding, the writer thread, exec, fork): a hook
                    entered now only forwards */
};

/* Events made by a signal handler while a hook was running: the hook records them when it
 * leaves. Slots are taken with an atomic add, so a handler interrupted by another is safe. */
#define MS_DEFER_MAX  32
#define MS_DEFER_FREE ((size_t)1 << 63) /* in size: the event is a free */
struct ms_deferred {
    uintptr_t ptr;
    size_t size; /* bytes allocated, or MS_DEFER_FREE */
};

/* The per-thread state, in initial-exec TLS so that reading it never allocates. */
struct ms_tls {
    struct ms_ring *ring;
    int busy;        /* MS_IDLE, MS_HOOK or MS_SELF */
    unsigned ndefer; /* deferred events taken */
    struct ms_deferred defer[MS_DEFER_MAX];
};
extern __thread struct ms_tls ms_tls __attribute__((tls_model("initial-exec"))) MS_HIDDEN;

static inline uint64_t ms_ticks(void)
{
    if (MS_LIKELY(ms_g.use_tsc))
        return __rdtsc();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ms_mono_ns(void) MS_HIDDEN;
void *ms_os_alloc(size_t len) MS_HIDDEN; /* raw mmap, zeroed; NULL on failure */
void ms_os_free(void *p, size_t len) MS_HIDDEN;

/* writer.c */
int ms_writer_start(bool append, bool forked, pid_t ppid) MS_HIDDEN;
void ms_writer_flush(void) MS_HIDDEN;                /* drain everything now */
void ms_writer_finish(unsigned exit_kind) MS_HIDDEN; /* flush, END record, stop */
void ms_writer_lock(void) MS_HIDDEN;                 /* for exec: no write in flight */
void ms_writer_unlock(void) MS_HIDDEN;
/* Writer lock held, before an exec that memsnap does not follow (--no-follow, or a nested
 * recording): the END record, exit kind 4. Returns the trace's size before it, or -1. */
off_t ms_writer_exec_end(void) MS_HIDDEN;
/* The exec failed and the process goes on: the END record is cut off again. */
void ms_writer_exec_failed(off_t size) MS_HIDDEN;
void ms_writer_ring_full(struct ms_ring *r, size_t need) MS_HIDDEN;
struct ms_ring *ms_ring_register(void) MS_HIDDEN;
void ms_ring_exiting(void *ring) MS_HIDDEN;
void ms_writer_fork_prepare(void) MS_HIDDEN;
void ms_writer_fork_parent(void) MS_HIDDEN;
void ms_writer_fork_child(void) MS_HIDDEN;
/* Appends one global record (already encoded) to the side buffer. */
void ms_meta_append(const uint8_t *rec, size_t len) MS_HIDDEN;
/* Encodes and appends a THREAD or MARKER style record: type, serial, [tid,] ticks, string. */
void ms_meta_thread(struct ms_ring *r, const char *name) MS_HIDDEN;
void ms_meta_marker(struct ms_ring *r, const char *label) MS_HIDDEN;

/* Appends encoded records to the chunk being built (writer lock held). */
void ms_stage_put(const void *data, size_t len) MS_HIDDEN;

/* events.c: ring events to trace records (writer lock held) */
void ms_events_drain(struct ms_ring *const *rings, size_t n) MS_HIDDEN;
void ms_events_flushed(bool final) MS_HIDDEN;
void ms_events_reset(void) MS_HIDDEN;

/* stacks.c */
int ms_stacks_init(void) MS_HIDDEN;
void ms_stacks_reset(void) MS_HIDDEN;                   /* in a fork child: a new file, new ids */
uint32_t ms_stack_capture(struct ms_ring *r) MS_HIDDEN; /* the caller's stack id, 0: none */
void ms_stacks_lock(void) MS_HIDDEN;
void ms_stacks_unlock(void) MS_HIDDEN;
void ms_stacks_lock_reinit(void) MS_HIDDEN;
/* Compares the loaded modules with the last scan and records MODULE / UNLOAD records. */
void ms_modules_scan(bool force) MS_HIDDEN;
void ms_modules_reset(void) MS_HIDDEN;
void ms_thread_stack_bounds(struct ms_ring *r) MS_HIDDEN;
void ms_stack_cache_reset(struct ms_ring *r) MS_HIDDEN; /* a new thread, or a fork child */
/* The .eh_frame_hdr of the module holding ip, or NULL. */
const uint8_t *ms_module_eh_hdr(uintptr_t ip) MS_HIDDEN;

/* cfi.c: unwinding with cached .eh_frame rules. From the frame whose return address ip sits at
 * `slot`, with the caller's %rsp and %rbp: the return addresses and their slots, or -1 when a
 * frame needs more than a CFA of %rsp/%rbp + n (the caller then asks libunwind). */
int ms_cfi_init(void) MS_HIDDEN;
/* Whether a module keeps frame pointers: in the middle of most of (up to 512 of) its
 * functions, its unwind tables define the CFA through %rbp. */
bool ms_cfi_module_keeps_fp(const uint8_t *eh_hdr) MS_HIDDEN;
void ms_cfi_flush(void) MS_HIDDEN;
int ms_cfi_unwind(const struct ms_ring *r, uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t slot,
                  void **ips, uintptr_t *slots, unsigned depth) MS_HIDDEN;

/* Varint string: length then bytes. */
static inline uint8_t *ms_put_string(uint8_t *p, const char *s, size_t len)
{
    p = ms_put_varint(p, len);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)s[i];
    return p + len;
}

#endif
