/*
 * preload.c - libmemsnap_preload.so: the allocation tracker that `memsnap record` injects
 * with LD_PRELOAD. It hooks the malloc family (C++ new and delete arrive through malloc and
 * free), the exec family, fork, dlopen/dlclose, _exit and abort, optionally mmap, and offers
 * the tracker API of memsnap.h (markers, custom pools).
 *
 * The hot path of a hook: call the real function, capture the stack, encode one event with
 * deltas and varints, and append it to the calling thread's ring: no lock, no atomic
 * read-modify-write, no I/O, no allocation. A free is recorded before the real free runs, an
 * allocation after the real call returns, so that another thread reusing the address is
 * always ordered after it. A thread-local guard (initial-exec TLS) keeps everything the
 * tracker itself does (libunwind, zstd, dlsym) out of the trace.
 *
 * Bootstrap: dlsym() may call calloc before the real calloc is known; such requests are
 * served from a static arena and never freed.
 *
 * Environment (set by `memsnap record`): MEMSNAP_TRACE_FILE, MEMSNAP_TRACE_ROOT,
 * MEMSNAP_TRACE_DEPTH, MEMSNAP_TRACE_UNWIND, MEMSNAP_TRACE_SAMPLE_RATE, MEMSNAP_TRACE_SEED,
 * MEMSNAP_TRACE_MMAP, MEMSNAP_TRACE_NO_FOLLOW, MEMSNAP_TRACE_CLOCK (tsc|monotonic), and
 * MEMSNAP_TRACE_APPEND, which the exec hook sets for the new image.
 */
/* The hooks must carry the plain names (mmap, not the mmap64 that _FILE_OFFSET_BITS=64 would
 * redirect it to); mmap64 is defined below as an alias. */
#undef _FILE_OFFSET_BITS
#include "preload.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Each entry of MS_HOOKS is the C library's prototype (which our hook definitions below must
 * match too), so that the real functions are called as what they are: an entry that differs
 * makes this initialization an incompatible-pointer error. Never called. */
#define SAME_AS_LIBC(name, ret, params)                                                            \
    {                                                                                              \
        ret(*libc_) params = name;                                                                 \
        (void)libc_;                                                                               \
    }
__attribute__((unused)) static inline void hooks_are_libc_prototypes(void)
{
    MS_HOOKS(SAME_AS_LIBC)
}
#undef SAME_AS_LIBC

/* The tracker API of memsnap.h, defined here (memsnap.h declares it weak for programs). */
EXPORT void ms_trace_marker(const char *label);
EXPORT void ms_trace_alloc(const void *ptr, size_t size);
EXPORT void ms_trace_free(const void *ptr);

struct ms_global ms_g = {
    .rings_lock = PTHREAD_MUTEX_INITIALIZER,
    .depth = 64,
};
__thread struct ms_tls ms_tls __attribute__((tls_model("initial-exec")));

extern char **environ;

/* ---- bootstrap ---- */

static _Alignas(64) uint8_t boot_arena[256 * 1024];
static size_t boot_used;
static int resolving;

static void *boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    size_t off = (boot_used + align - 1) & ~(align - 1);
    if (off + n > sizeof(boot_arena) || n > sizeof(boot_arena))
        return NULL;
    boot_used = off + n;
    return boot_arena + off; /* static storage: already zeroed */
}

static inline bool is_boot(const void *p)
{
    return (const uint8_t *)p >= boot_arena && (const uint8_t *)p < boot_arena + sizeof(boot_arena);
}

/* Looks up every real function of MS_HOOKS, free last. dlsym() may allocate: those calls
 * come back into our hooks, which see `resolving` (or a NULL real function) and serve them
 * from the bootstrap arena. */
static void resolve(void)
{
    if (resolving || ms_g.real.free)
        return;
    resolving = 1;
#define RESOLVE(name, ret, params) ms_g.real.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
    MS_HOOKS(RESOLVE)
#undef RESOLVE
    resolving = 0;
}

/* ---- the hot path ---- */

static struct ms_ring *thread_ring_new(void)
{
    int busy = ms_tls.busy;
    ms_tls.busy = MS_SELF; /* pthread_getattr_np and pthread_setspecific may allocate */
    struct ms_ring *r = ms_tls.ring = ms_ring_register();
    ms_tls.busy = busy;
    return r;
}

static inline struct ms_ring *thread_ring(void)
{
    struct ms_ring *r = ms_tls.ring;
    if (MS_UNLIKELY(!r))
        r = thread_ring_new();
    return r;
}

static inline void ring_put(struct ms_ring *r, const uint8_t *ev, size_t len)
{
    uint64_t head = r->head;
    if (MS_UNLIKELY(head + len - r->tail_seen > MS_RING_SIZE)) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + len - r->tail_seen > MS_RING_SIZE) {
            ms_writer_ring_full(r, len);
            r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        }
    }
    size_t off = (size_t)(head & MS_RING_MASK);
    if (MS_LIKELY(off + len <= MS_RING_SIZE)) {
        memcpy(r->buf + off, ev, len);
    } else {
        size_t first = MS_RING_SIZE - off;
        memcpy(r->buf + off, ev, first);
        memcpy(r->buf, ev + first, len - first);
    }
    r->head = head + len;
    atomic_store_explicit(&r->pub, r->head, memory_order_release);
}

/* Ticks for the next event of r: never behind the previous one (a thread that moves to a
 * CPU whose TSC lags a little must not produce a negative delta). */
static inline uint64_t event_ticks(struct ms_ring *r)
{
    uint64_t t = ms_ticks();
    return t < r->ticks ? r->ticks : t;
}

static inline uint8_t *put_ptr_delta(struct ms_ring *r, uint8_t *q, uintptr_t p)
{
    q = ms_put_varint(q, ms_zigzag((int64_t)(p - r->ptr)));
    r->ptr = p;
    return q;
}

/* ---- sampled mode: a set of the sampled blocks, read without a lock ---- */

#define SAMPLED_CAP  (1u << 21)
#define SAMPLED_TOMB 1u

static _Atomic uintptr_t *sampled;
static pthread_mutex_t sampled_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t sampled_used; /* live entries + tombstones */
static bool sampled_full;

static inline size_t sampled_slot(uintptr_t p)
{
    return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 43) & (SAMPLED_CAP - 1);
}

/* Adds p to the set; false when the set is too full (then p must not be recorded at all, or
 * its free would be missed and it would look leaked). */
static bool sampled_add(uintptr_t p)
{
    bool added = false;
    pthread_mutex_lock(&sampled_lock);
    if (sampled_used < SAMPLED_CAP / 2) {
        size_t j = sampled_slot(p);
        uintptr_t k;
        while ((k = atomic_load_explicit(&sampled[j], memory_order_relaxed)) > SAMPLED_TOMB)
            j = (j + 1) & (SAMPLED_CAP - 1);
        if (k == 0)
            sampled_used++;
        atomic_store_explicit(&sampled[j], p, memory_order_release);
        added = true;
    } else if (!sampled_full) {
        sampled_full = true;
        static const char msg[] = "memsnap: the set of sampled blocks is full: no more samples "
                                  "are taken in this process (its figures are low)\n";
        (void)!write(2, msg, sizeof(msg) - 1);
    }
    pthread_mutex_unlock(&sampled_lock);
    return added;
}

/* Removes p if it was sampled; true when it was. The common case, a block that was not
 * sampled, is a probe without a lock. */
static bool sampled_take(uintptr_t p)
{
    size_t j = sampled_slot(p);
    for (;; j = (j + 1) & (SAMPLED_CAP - 1)) {
        uintptr_t k = atomic_load_explicit(&sampled[j], memory_order_acquire);
        if (k == 0)
            return false;
        if (k == p)
            break;
    }
    pthread_mutex_lock(&sampled_lock);
    bool found = atomic_load_explicit(&sampled[j], memory_order_relaxed) == p;
    if (found)
        atomic_store_explicit(&sampled[j], SAMPLED_TOMB, memory_order_release);
    pthread_mutex_unlock(&sampled_lock);
    return found;
}

/* Bytes to the next sample: exponential with mean sample_rate, so that a block of n bytes
 * is sampled with probability 1 - exp(-n / rate) whatever came before it. */
static int64_t next_sample(struct ms_ring *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    double u = ((double)(r->rng >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    return (int64_t)(-log(u) * (double)ms_g.sample_rate) + 1;
}

static inline bool sample_this(struct ms_ring *r, size_t n)
{
    if (MS_UNLIKELY(r->sample_left <= 0 && r->rng))
        r->sample_left = next_sample(r); /* first use of the ring */
    r->sample_left -= (int64_t)n;
    if (r->sample_left > 0)
        return false;
    r->sample_left = next_sample(r);
    return true;
}

/* ---- events ---- */

static void record_alloc(struct ms_ring *r, void *p, size_t n, uint32_t stack)
{
    uint8_t ev[MS_EVENT_MAX], *q = ev;
    uint64_t now = event_ticks(r);
    *q++ = MS_OP_ALLOC;
    q = ms_put_varint(q, now - r->ticks);
    q = ms_put_varint(q, n);
    q = ms_put_varint(q, stack);
    q = put_ptr_delta(r, q, (uintptr_t)p);
    r->ticks = now;
    ring_put(r, ev, (size_t)(q - ev));
}

static void record_free(struct ms_ring *r, void *p)
{
    uint8_t ev[MS_EVENT_MAX], *q = ev;
    uint64_t now = event_ticks(r);
    *q++ = MS_OP_FREE;
    q = ms_put_varint(q, now - r->ticks);
    q = put_ptr_delta(r, q, (uintptr_t)p);
    r->ticks = now;
    ring_put(r, ev, (size_t)(q - ev));
}

static void on_alloc(void *p, size_t n)
{
    struct ms_ring *r = thread_ring();
    if (MS_UNLIKELY(!r))
        return;
    if (ms_g.sample_rate && (!sample_this(r, n) || !sampled_add((uintptr_t)p)))
        return;
    record_alloc(r, p, n, ms_stack_capture(r));
}

static void on_free(void *p)
{
    struct ms_ring *r = thread_ring();
    if (MS_UNLIKELY(!r))
        return;
    if (ms_g.sample_rate && !sampled_take((uintptr_t)p))
        return;
    record_free(r, p);
}

/* A successful realloc(old, n) that returned p; `before` was read before the real call. */
static void on_realloc(void *old, void *p, size_t n, uint64_t before)
{
    struct ms_ring *r = thread_ring();
    if (MS_UNLIKELY(!r))
        return;
    if (ms_g.sample_rate) {
        /* The old block was recorded only if sampled, the new one is sampled afresh: a
         * realloc is recorded as such only when both were. */
        bool was = sampled_take((uintptr_t)old);
        bool is = sample_this(r, n) && sampled_add((uintptr_t)p);
        if (!was || !is) {
            if (was)
                record_free(r, old);
            if (is)
                record_alloc(r, p, n, ms_stack_capture(r));
            return;
        }
    }
    uint32_t stack = ms_stack_capture(r);
    uint8_t ev[MS_EVENT_MAX], *q = ev;
    if (before < r->ticks)
        before = r->ticks;
    uint64_t now = event_ticks(r);
    if (now < before)
        now = before;
    *q++ = MS_OP_REALLOC;
    q = ms_put_varint(q, before - r->ticks);
    q = ms_put_varint(q, now - before);
    q = ms_put_varint(q, n);
    q = ms_put_varint(q, stack);
    q = put_ptr_delta(r, q, (uintptr_t)old);
    q = ms_put_varint(q, ms_zigzag((int64_t)((uintptr_t)p - (uintptr_t)old)));
    r->ptr = (uintptr_t)p;
    r->ticks = now;
    ring_put(r, ev, (size_t)(q - ev));
}

static void on_map(int op, void *old, size_t old_len, void *p, size_t len)
{
    struct ms_ring *r = thread_ring();
    if (MS_UNLIKELY(!r))
        return;
    uint32_t stack = op == MS_OP_MUNMAP ? 0 : ms_stack_capture(r);
    uint8_t ev[MS_EVENT_MAX], *q = ev;
    uint64_t now = event_ticks(r);
    *q++ = (uint8_t)op;
    q = ms_put_varint(q, now - r->ticks);
    if (op == MS_OP_MREMAP)
        q = ms_put_varint(q, old_len);
    q = ms_put_varint(q, len);
    if (op != MS_OP_MUNMAP)
        q = ms_put_varint(q, stack);
    if (op == MS_OP_MREMAP)
        q = ms_put_varint(q, (uintptr_t)old);
    q = ms_put_varint(q, (uintptr_t)p);
    r->ticks = now;
    ring_put(r, ev, (size_t)(q - ev));
}

/* ---- events of signal handlers that interrupt a hook ---- */

/* Called by a hook entered while another hook of this thread runs (busy is MS_HOOK): a signal
 * handler's allocation or free, which the interrupted hook records when it leaves. With every
 * slot taken (handlers nested deeper than MS_DEFER_MAX), the event is counted as lost, and
 * the trace says how many were. */
static void defer(uint8_t op, void *p, size_t n)
{
    unsigned i = __atomic_fetch_add(&ms_tls.ndefer, 1, __ATOMIC_RELAXED);
    if (i >= MS_DEFER_MAX) {
        struct ms_ring *r = ms_tls.ring;
        if (r)
            atomic_fetch_add_explicit(&r->lost, 1, memory_order_relaxed);
        return;
    }
    ms_tls.defer[i] = (struct ms_deferred){(uintptr_t)p, op == MS_OP_FREE ? MS_DEFER_FREE : n};
}

static inline void deferred(uint8_t op, void *p, size_t n)
{
    if (MS_UNLIKELY(ms_tls.busy == MS_HOOK) && p)
        defer(op, p, n);
}

/* Records the deferred events, in the order the handlers made them, without a stack (the one
 * at hand is the interrupted hook's). A handler may add more meanwhile: the count is reset
 * only when no new slot was taken. */
static void drain_deferred(void)
{
    struct ms_ring *r = ms_tls.ring;
    unsigned done = 0;
    for (;;) {
        unsigned n = __atomic_load_n(&ms_tls.ndefer, __ATOMIC_RELAXED);
        unsigned upto = n < MS_DEFER_MAX ? n : MS_DEFER_MAX;
        for (; done < upto; done++) {
            const struct ms_deferred *d = &ms_tls.defer[done];
            bool alloc = d->size != MS_DEFER_FREE;
            if (!r || (ms_g.sample_rate && alloc))
                continue; /* sampled mode: a handler's allocation is not a sample */
            if (alloc) {
                record_alloc(r, (void *)d->ptr, d->size, 0);
            } else if (!ms_g.sample_rate || sampled_take(d->ptr)) {
                record_free(r, (void *)d->ptr);
            }
        }
        if (__atomic_compare_exchange_n(&ms_tls.ndefer, &n, 0, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return;
    }
}

/* Enters a hook that records: false when the call must only be forwarded. */
static inline bool enter(void)
{
    if (MS_UNLIKELY(ms_tls.busy) || !atomic_load_explicit(&ms_g.tracing, memory_order_relaxed))
        return false;
    ms_tls.busy = MS_HOOK;
    return true;
}

static inline void leave(void)
{
    if (MS_UNLIKELY(__atomic_load_n(&ms_tls.ndefer, __ATOMIC_RELAXED)))
        drain_deferred();
    atomic_signal_fence(memory_order_seq_cst);
    ms_tls.busy = MS_IDLE;
}

/* ---- the malloc family ---- */

EXPORT void *malloc(size_t n)
{
    if (MS_UNLIKELY(!ms_g.real.free)) {
        resolve();
        if (!ms_g.real.malloc)
            return boot_alloc(n, 16);
    }
    if (!enter()) {
        void *p = ms_g.real.malloc(n);
        deferred(MS_OP_ALLOC, p, n);
        return p;
    }
    void *p = ms_g.real.malloc(n);
    if (p)
        on_alloc(p, n);
    leave();
    return p;
}

EXPORT void free(void *p)
{
    if (MS_UNLIKELY(!p || is_boot(p)))
        return;
    if (MS_UNLIKELY(!ms_g.real.free))
        resolve();
    if (!enter()) {
        deferred(MS_OP_FREE, p, 0);
        ms_g.real.free(p);
        return;
    }
    on_free(p);
    ms_g.real.free(p);
    leave();
}

EXPORT void *calloc(size_t n, size_t size)
{
    if (MS_UNLIKELY(!ms_g.real.calloc)) {
        resolve();
        if (!ms_g.real.calloc) {
            size_t total;
            return __builtin_mul_overflow(n, size, &total) ? NULL : boot_alloc(total, 16);
        }
    }
    if (!enter()) {
        void *p = ms_g.real.calloc(n, size);
        deferred(MS_OP_ALLOC, p, n * size);
        return p;
    }
    void *p = ms_g.real.calloc(n, size);
    if (p)
        on_alloc(p, n * size);
    leave();
    return p;
}

EXPORT void *realloc(void *old, size_t n)
{
    if (MS_UNLIKELY(is_boot(old) || !ms_g.real.realloc)) {
        resolve();
        if (is_boot(old) || !ms_g.real.realloc) {
            /* A bootstrap block: move it to the real heap (its size is not kept, so copy
             * what can be read of the arena). */
            void *p = ms_g.real.malloc ? malloc(n) : boot_alloc(n, 16);
            if (p && old) {
                size_t avail = (size_t)(boot_arena + sizeof(boot_arena) - (uint8_t *)old);
                memcpy(p, old, n < avail ? n : avail);
            }
            return p;
        }
    }
    if (!enter()) {
        void *p = ms_g.real.realloc(old, n);
        if (p || n == 0) { /* a failed realloc freed nothing */
            deferred(MS_OP_FREE, old, 0);
            deferred(MS_OP_ALLOC, p, n);
        }
        return p;
    }
    void *p;
    if (!old) {
        p = ms_g.real.realloc(NULL, n);
        if (p)
            on_alloc(p, n);
    } else if (n == 0) {
        on_free(old); /* glibc frees the block and returns NULL */
        p = ms_g.real.realloc(old, n);
    } else {
        uint64_t before = ms_ticks();
        p = ms_g.real.realloc(old, n);
        if (p)
            on_realloc(old, p, n, before);
    }
    leave();
    return p;
}

EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    /* the real realloc, not the C library's reallocarray, which calls realloc itself through
     * our hook: the overflow check is all that it adds */
    return realloc(old, total);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (MS_UNLIKELY(!ms_g.real.posix_memalign)) {
        resolve();
        if (!ms_g.real.posix_memalign) {
            *out = boot_alloc(n, align);
            return *out ? 0 : ENOMEM;
        }
    }
    if (!enter()) {
        int rc = ms_g.real.posix_memalign(out, align, n);
        deferred(MS_OP_ALLOC, rc == 0 ? *out : NULL, n);
        return rc;
    }
    int rc = ms_g.real.posix_memalign(out, align, n);
    if (rc == 0 && *out)
        on_alloc(*out, n);
    leave();
    return rc;
}

/* aligned_alloc, memalign, valloc and pvalloc: the requested size is recorded. */
#define ALIGNED_HOOK(name, params, args, size)                                                     \
    EXPORT void *name params                                                                       \
    {                                                                                              \
        if (MS_UNLIKELY(!ms_g.real.name)) {                                                        \
            resolve();                                                                             \
            if (!ms_g.real.name)                                                                   \
                return boot_alloc(size, 4096);                                                     \
        }                                                                                          \
        if (!enter()) {                                                                            \
            void *p = ms_g.real.name args;                                                         \
            deferred(MS_OP_ALLOC, p, size);                                                        \
            return p;                                                                              \
        }                                                                                          \
        void *p = ms_g.real.name args;                                                             \
        if (p)                                                                                     \
            on_alloc(p, size);                                                                     \
        leave();                                                                                   \
        return p;                                                                                  \
    }

ALIGNED_HOOK(aligned_alloc, (size_t align, size_t n), (align, n), n)
ALIGNED_HOOK(memalign, (size_t align, size_t n), (align, n), n)
ALIGNED_HOOK(valloc, (size_t n), (n), n)
ALIGNED_HOOK(pvalloc, (size_t n), (n), n)

/* ---- mmap (recorded with --mmap) ---- */

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (MS_UNLIKELY(!ms_g.real.mmap)) {
        long p = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
        return p == -1 ? MAP_FAILED : (void *)p;
    }
    if (!ms_g.record_mmap || !enter())
        return ms_g.real.mmap(addr, len, prot, flags, fd, off);
    void *p = ms_g.real.mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED)
        on_map(MS_OP_MMAP, NULL, 0, p, len);
    leave();
    return p;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
    if (MS_UNLIKELY(!ms_g.real.munmap))
        return (int)syscall(SYS_munmap, addr, len);
    if (!ms_g.record_mmap || !enter())
        return ms_g.real.munmap(addr, len);
    on_map(MS_OP_MUNMAP, NULL, 0, addr, len);
    int rc = ms_g.real.munmap(addr, len);
    leave();
    return rc;
}

EXPORT void *mremap(void *old, size_t old_len, size_t len, int flags, ...)
{
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    if (MS_UNLIKELY(!ms_g.real.mremap)) {
        long p = syscall(SYS_mremap, old, old_len, len, flags, want);
        return p == -1 ? MAP_FAILED : (void *)p;
    }
    if (!ms_g.record_mmap || !enter())
        return ms_g.real.mremap(old, old_len, len, flags, want);
    void *p = ms_g.real.mremap(old, old_len, len, flags, want);
    if (p != MAP_FAILED)
        on_map(MS_OP_MREMAP, old, old_len, p, len);
    leave();
    return p;
}

/* ---- the tracker API (memsnap.h) ---- */

EXPORT void ms_trace_marker(const char *label)
{
    if (!label || !enter())
        return;
    struct ms_ring *r = thread_ring();
    if (r)
        ms_meta_marker(r, label);
    leave();
}

EXPORT void ms_trace_alloc(const void *ptr, size_t size)
{
    if (!ptr || !enter())
        return;
    on_alloc((void *)ptr, size);
    leave();
}

EXPORT void ms_trace_free(const void *ptr)
{
    if (!ptr || !enter())
        return;
    on_free((void *)ptr);
    leave();
}

/* ---- modules and threads ---- */

EXPORT void *dlopen(const char *file, int mode)
{
    if (MS_UNLIKELY(!ms_g.real.dlopen))
        resolve();
    void *h = ms_g.real.dlopen(file, mode);
    if (h && enter()) {
        ms_tls.busy = MS_SELF;
        ms_modules_scan(false);
        leave();
    }
    return h;
}

EXPORT int dlclose(void *handle)
{
    if (MS_UNLIKELY(!ms_g.real.dlclose))
        resolve();
    int rc = ms_g.real.dlclose(handle);
    if (enter()) {
        ms_tls.busy = MS_SELF;
        ms_modules_scan(false);
        leave();
    }
    return rc;
}

EXPORT int pthread_setname_np(pthread_t thread, const char *name)
{
    if (MS_UNLIKELY(!ms_g.real.pthread_setname_np))
        resolve();
    int rc = ms_g.real.pthread_setname_np(thread, name);
    if (rc == 0 && pthread_equal(thread, pthread_self()) && enter()) {
        struct ms_ring *r = thread_ring();
        if (r)
            ms_meta_thread(r, name);
        leave();
    }
    return rc;
}

/* ---- ends of the process ---- */

/* True in the process that owns the trace (not in a vfork child sharing its memory). */
static bool own_process(void)
{
    return atomic_load(&ms_g.tracing) && (pid_t)syscall(SYS_getpid) == ms_g.pid;
}

EXPORT void _exit(int status)
{
    if (own_process()) {
        ms_tls.busy = MS_SELF;
        ms_writer_finish(1);
    }
    if (ms_g.real._exit)
        ms_g.real._exit(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

EXPORT void _Exit(int status) __attribute__((alias("_exit")));

EXPORT void abort(void)
{
    if (own_process()) {
        ms_tls.busy = MS_SELF;
        ms_writer_finish(2);
        atomic_store(&ms_g.tracing, 0);
        ms_tls.busy = MS_IDLE;
    }
    if (!ms_g.real.abort)
        resolve();
    ms_g.real.abort();
    __builtin_unreachable();
}

/* ---- exec: flush, then hand the new image the trace file to append to ---- */

static const char *const option_vars[] = {
    "MEMSNAP_TRACE_FILE",   "MEMSNAP_TRACE_ROOT",        "MEMSNAP_TRACE_DEPTH",
    "MEMSNAP_TRACE_UNWIND", "MEMSNAP_TRACE_SAMPLE_RATE", "MEMSNAP_TRACE_SEED",
    "MEMSNAP_TRACE_MMAP",   "MEMSNAP_TRACE_NO_FOLLOW",   "MEMSNAP_TRACE_APPEND",
    "MEMSNAP_TRACE_CLOCK",
};

static bool is_var(const char *entry, const char *name)
{
    size_t n = strlen(name);
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* True when envp starts a recording of its own: a `memsnap record` run under this one sets
 * MEMSNAP_TRACE_ROOT for its program, which then writes the inner trace, not ours. */
static bool starts_recording(char *const envp[])
{
    for (size_t i = 0; envp && envp[i]; i++)
        if (is_var(envp[i], "MEMSNAP_TRACE_ROOT"))
            return true;
    return false;
}

static char self_path[4096];
static const char *const unwind_names[] = {"auto", "fp", "dwarf", "libunwind"};

/* LD_PRELOAD's value without our library (and its empty entries), into out. */
static void preload_without_self(const char *value, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    while (*value) {
        size_t n = strcspn(value, ": ");
        bool ours = n == strlen(self_path) && strncmp(value, self_path, n) == 0;
        if (n && !ours && len + n + 2 < cap) {
            if (len)
                out[len++] = ':';
            memcpy(out + len, value, n);
            len += n;
            out[len] = 0;
        }
        value += n;
        if (*value)
            value++;
    }
}

/*
 * The environment for a new image: the caller's envp without LD_PRELOAD and the
 * MEMSNAP_TRACE_* variables, then, when following, LD_PRELOAD with our library first, the
 * options of this recording and (for exec, not spawn) MEMSNAP_TRACE_APPEND=<pid>:<file>.
 * NULL, for envp as it is, when envp starts a recording of its own (a nested memsnap record).
 * Allocated with the real allocator: exec either replaces the process or fails, and then
 * the caller frees it.
 */
static char **image_env(char *const envp[], bool append)
{
    if (starts_recording(envp))
        return NULL; /* the caller's environment as it is */
    enum { STRINGS = 32768 };
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **env = ms_g.real.malloc((n + 16) * sizeof(char *) + STRINGS);
    if (!env)
        return NULL;
    char *strings = (char *)(env + n + 16);
    size_t k = 0, used = 0;
    const char *preload = "";
    for (size_t i = 0; i < n; i++) {
        bool skip = false;
        if (is_var(envp[i], "LD_PRELOAD")) {
            preload = envp[i] + strlen("LD_PRELOAD=");
            skip = true;
        }
        for (size_t v = 0; v < sizeof(option_vars) / sizeof(option_vars[0]) && !skip; v++)
            skip = is_var(envp[i], option_vars[v]);
        if (!skip)
            env[k++] = envp[i];
    }
    char others[8192];
    preload_without_self(preload, others, sizeof(others));
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int len_ = snprintf(strings + used, STRINGS - used, __VA_ARGS__);                          \
        if (len_ > 0 && used + (size_t)len_ + 1 < STRINGS) {                                       \
            env[k++] = strings + used;                                                             \
            used += (size_t)len_ + 1;                                                              \
        }                                                                                          \
    } while (0)
    if (ms_g.follow) {
        ADD("LD_PRELOAD=%s%s%s", self_path, others[0] ? ":" : "", others);
        ADD("MEMSNAP_TRACE_FILE=%s", ms_g.base_path);
        ADD("MEMSNAP_TRACE_DEPTH=%u", ms_g.depth);
        ADD("MEMSNAP_TRACE_UNWIND=%s", unwind_names[ms_g.unwind]);
        ADD("MEMSNAP_TRACE_SAMPLE_RATE=%llu", (unsigned long long)ms_g.sample_rate);
        ADD("MEMSNAP_TRACE_CLOCK=%s", ms_g.use_tsc ? "tsc" : "monotonic");
        if (ms_g.record_mmap)
            ADD("MEMSNAP_TRACE_MMAP=1");
        if (append)
            ADD("MEMSNAP_TRACE_APPEND=%d:%s", (int)ms_g.pid, ms_g.path);
    } else if (others[0]) {
        ADD("LD_PRELOAD=%s", others);
    }
#undef ADD
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    if (env)
        ms_g.real.free(env); /* the array and its strings are one block */
}

enum exec_kind { EXEC_PATH, EXEC_SEARCH, EXEC_FD };

static int do_exec(enum exec_kind kind, const char *file, int fd, char *const argv[],
                   char *const envp[])
{
    if (!ms_g.real.execve)
        resolve();
    if (!own_process() || ms_tls.busy) {
        /* not ours to follow (a vfork child, or tracing is off): just strip nothing */
        if (kind == EXEC_FD)
            return ms_g.real.fexecve(fd, argv, envp);
        return kind == EXEC_SEARCH ? ms_g.real.execvpe(file, argv, envp)
                                   : ms_g.real.execve(file, argv, envp);
    }
    ms_tls.busy = MS_SELF;
    char **env = image_env(envp, true);
    char *const *use = env ? env : envp;
    ms_writer_lock(); /* flushes, and no chunk can be half written when the image goes */
    /* A new image that is not recorded here: this trace ends with it. */
    off_t end = ms_g.follow && !starts_recording(envp) ? -1 : ms_writer_exec_end();
    int rc = kind == EXEC_FD       ? ms_g.real.fexecve(fd, argv, use)
             : kind == EXEC_SEARCH ? ms_g.real.execvpe(file, argv, use)
                                   : ms_g.real.execve(file, argv, use);
    int err = errno;
    if (end >= 0)
        ms_writer_exec_failed(end);
    ms_writer_unlock();
    free_env(env);
    ms_tls.busy = MS_IDLE;
    errno = err;
    return rc;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return do_exec(EXEC_PATH, path, -1, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
    return do_exec(EXEC_PATH, path, -1, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return do_exec(EXEC_SEARCH, file, -1, argv, envp);
}

EXPORT int execvp(const char *file, char *const argv[])
{
    return do_exec(EXEC_SEARCH, file, -1, argv, environ);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    return do_exec(EXEC_FD, NULL, fd, argv, envp);
}

/* execl, execlp, execle: the arguments into an array on the stack (at most 4096). */
static int exec_list(enum exec_kind kind, const char *file, const char *arg0, va_list ap,
                     bool with_env)
{
    const char *argv[4096];
    size_t n = 0;
    argv[n++] = arg0;
    while (arg0 && n < 4095 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    if (n == 4095) {
        errno = E2BIG;
        return -1;
    }
    argv[n] = NULL;
    char *const *envp = with_env ? va_arg(ap, char *const *) : environ;
    return do_exec(kind, file, -1, (char *const *)argv, envp);
}

/* execl, execlp and execle: exec_list over their variadic arguments. */
#define EXEC_LIST_HOOK(name, kind, with_env)                                                       \
    EXPORT int name(const char *file, const char *arg, ...)                                        \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, arg);                                                                         \
        int rc = exec_list(kind, file, arg, ap, with_env);                                         \
        va_end(ap);                                                                                \
        return rc;                                                                                 \
    }

EXEC_LIST_HOOK(execl, EXEC_PATH, false)
EXEC_LIST_HOOK(execlp, EXEC_SEARCH, false)
EXEC_LIST_HOOK(execle, EXEC_PATH, true)

/* posix_spawn: a new process, recorded in its own file when following (it inherits the
 * environment we fix here, whatever envp the caller built). */
static int do_spawn(bool search, pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (MS_UNLIKELY(!ms_g.real.free))
        resolve();
    __typeof__(ms_g.real.posix_spawn) real =
        search ? ms_g.real.posix_spawnp : ms_g.real.posix_spawn;
    if (!real)
        return ENOSYS;
    if (!own_process() || ms_tls.busy)
        return real(pid, file, fa, attr, argv, envp);
    ms_tls.busy = MS_SELF;
    char **env = image_env(envp, false);
    int rc = real(pid, file, fa, attr, argv, env ? env : envp);
    free_env(env);
    ms_tls.busy = MS_IDLE;
    return rc;
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return do_spawn(false, pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return do_spawn(true, pid, file, fa, attr, argv, envp);
}

/* ---- fork ---- */

static void fork_prepare(void)
{
    if (atomic_load(&ms_g.tracing))
        ms_writer_fork_prepare();
}

static void fork_parent(void)
{
    if (atomic_load(&ms_g.tracing))
        ms_writer_fork_parent();
}

static void fork_child(void)
{
    if (!atomic_load(&ms_g.tracing))
        return;
    int busy = ms_tls.busy;
    ms_tls.busy = MS_SELF;
    ms_writer_fork_child();
    ms_tls.busy = busy;
}

/* ---- start and end ---- */

/* quick_exit() runs the at_quick_exit() handlers, then _exit() inside the C library, out of
 * our hook's reach: this handler, registered before the program's, runs after them. */
static void on_quick_exit(void)
{
    if (!own_process())
        return;
    ms_tls.busy = MS_SELF;
    ms_writer_finish(3);
    atomic_store(&ms_g.tracing, 0);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    return errno || *end ? dflt : (uint64_t)x;
}

static bool invariant_tsc(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return false;
    __get_cpuid(0x80000007u, &a, &b, &c, &d);
    return (d >> 8) & 1;
}

/* Removes our library and the MEMSNAP_TRACE_* variables from this process's environment,
 * so that nothing it starts is recorded (--no-follow). */
static void unset_self_env(void)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload) {
        char others[8192];
        preload_without_self(preload, others, sizeof(others));
        if (others[0])
            setenv("LD_PRELOAD", others, 1);
        else
            unsetenv("LD_PRELOAD");
    }
    for (size_t v = 0; v < sizeof(option_vars) / sizeof(option_vars[0]); v++)
        unsetenv(option_vars[v]);
}

/* Our own text: frames in it are left off the top of every stack. */
static int self_range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0, me = (uintptr_t)self_range_cb;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        lo = a < lo ? a : lo;
        hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
    }
    if (me < lo || me >= hi)
        return 0;
    ms_g.self_lo = lo;
    ms_g.self_hi = hi;
    return 1;
}

__attribute__((constructor)) static void ms_init(void)
{
    resolve();
    if (!ms_g.real.free || atomic_load(&ms_g.tracing))
        return;
    ms_tls.busy = MS_SELF;
    ms_g.pid = (pid_t)syscall(SYS_getpid);

    Dl_info self;
    if (dladdr((void *)ms_init, &self) && self.dli_fname) {
        if (!realpath(self.dli_fname, self_path))
            snprintf(self_path, sizeof(self_path), "%s", self.dli_fname);
    }
    const char *file = getenv("MEMSNAP_TRACE_FILE");
    char comm[64] = "program";
    if (!file || !*file) {
        FILE *f = fopen("/proc/self/comm", "r");
        if (f) {
            if (fgets(comm, sizeof(comm), f))
                comm[strcspn(comm, "\n")] = 0;
            fclose(f);
        }
        snprintf(ms_g.base_path, sizeof(ms_g.base_path), "memsnap.%s.%d.mst", comm, (int)ms_g.pid);
    } else {
        snprintf(ms_g.base_path, sizeof(ms_g.base_path), "%s", file);
    }
    if (ms_g.base_path[0] != '/') {
        /* absolute, so that a chdir() changes nothing: children and re-opens find it */
        char cwd[4096], rel[4096];
        if (getcwd(cwd, sizeof(cwd))) {
            snprintf(rel, sizeof(rel), "%s", ms_g.base_path);
            snprintf(ms_g.base_path, sizeof(ms_g.base_path), "%s/%s", cwd, rel);
        }
    }

    uint64_t depth = env_u64("MEMSNAP_TRACE_DEPTH", 64);
    ms_g.depth = depth < 1 ? 1 : depth > MS_MAX_DEPTH ? MS_MAX_DEPTH : (unsigned)depth;
    const char *unwind = getenv("MEMSNAP_TRACE_UNWIND");
    ms_g.unwind = !unwind                            ? MS_UNWIND_AUTO
                  : strcmp(unwind, "fp") == 0        ? MS_UNWIND_FP
                  : strcmp(unwind, "dwarf") == 0     ? MS_UNWIND_DWARF
                  : strcmp(unwind, "libunwind") == 0 ? MS_UNWIND_LIBUNWIND
                                                     : MS_UNWIND_AUTO;
    ms_g.sample_rate = env_u64("MEMSNAP_TRACE_SAMPLE_RATE", 0);
    ms_g.seed = env_u64("MEMSNAP_TRACE_SEED", 0);
    if (!ms_g.seed)
        ms_g.seed = ms_ticks() ^ ((uint64_t)ms_g.pid << 32) ^ 0x2545f4914f6cdd1dull;
    ms_g.record_mmap = env_u64("MEMSNAP_TRACE_MMAP", 0) != 0;
    ms_g.follow = env_u64("MEMSNAP_TRACE_NO_FOLLOW", 0) == 0;
    const char *clock = getenv("MEMSNAP_TRACE_CLOCK");
    ms_g.use_tsc = clock && strcmp(clock, "monotonic") == 0 ? false : invariant_tsc();

    /* Which file: the root writes the base path, a re-exec'd image appends to the file of
     * its process, anything else (a spawned program) writes base.<pid>. */
    bool append = false;
    const char *app = getenv("MEMSNAP_TRACE_APPEND");
    char *colon = app ? strchr(app, ':') : NULL;
    if (colon && strtol(app, NULL, 10) == ms_g.pid) {
        snprintf(ms_g.path, sizeof(ms_g.path), "%s", colon + 1);
        append = true;
    } else if (env_u64("MEMSNAP_TRACE_ROOT", 0) == (uint64_t)ms_g.pid || !file || !*file) {
        snprintf(ms_g.path, sizeof(ms_g.path), "%s", ms_g.base_path);
    } else {
        snprintf(ms_g.path, sizeof(ms_g.path), "%s.%d", ms_g.base_path, (int)ms_g.pid);
    }
    unsetenv("MEMSNAP_TRACE_APPEND");
    unsetenv("MEMSNAP_TRACE_ROOT");
    if (!ms_g.follow)
        unset_self_env();

    if (ms_g.sample_rate) {
        sampled = ms_os_alloc(SAMPLED_CAP * sizeof(*sampled));
        if (!sampled)
            ms_g.sample_rate = 0;
    }
    dl_iterate_phdr(self_range_cb, NULL);
    if (ms_stacks_init() == 0 && pthread_key_create(&ms_g.key, ms_ring_exiting) == 0) {
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (ms_writer_start(append, false, getppid()) == 0) {
            at_quick_exit(on_quick_exit);
            atomic_store(&ms_g.tracing, 1);
        }
    }
    ms_tls.busy = MS_IDLE;
}

__attribute__((destructor)) static void ms_fini(void)
{
    if (!own_process())
        return;
    ms_tls.busy = MS_SELF;
    ms_writer_finish(0);
    atomic_store(&ms_g.tracing, 0);
}
