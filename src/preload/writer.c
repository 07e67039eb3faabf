/*
 * writer.c - the tracker's side of the trace file: the per-thread rings, the side buffer of
 * global records, the background thread, and the chunked, zstd-compressed file.
 *
 * Threads never write the file on their hot path: they append events to their own ring. The
 * background thread ("memsnap-writer", every signal blocked) wakes every 10 ms to take an RSS
 * sample, and every 50 ms (sooner when a ring is a quarter full) drains the side buffer and every
 * ring into one staging buffer, compresses it with zstd and writes it as one framed chunk, so
 * a process killed by SIGKILL loses what came after the last flush (about 50 ms). A thread
 * whose ring is full drains it itself under the same lock rather than waiting. All buffers
 * here come from mmap, never from the allocator being traced.
 */
#include "preload.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define STAGE_LIMIT (4u << 20) /* a chunk holds at most this much before compression */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static struct {
    pthread_mutex_t lock;      /* the file, the compressor, the staging buffer */
    pthread_mutex_t meta_lock; /* the side buffer */
    int fd;
    int statm_fd;
    ZSTD_CCtx *zc;
    struct buf stage, out, meta;
    bool finished;
    struct ms_ring **list; /* the rings of one flush, and whether each thread is gone */
    bool *gone;
    size_t nlist;
    long page_size;
} w = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .meta_lock = PTHREAD_MUTEX_INITIALIZER,
    .fd = -1,
    .statm_fd = -1,
};

uint64_t ms_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void *ms_os_alloc(size_t len)
{
    long p =
        syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == -1 ? NULL : (void *)p;
}

void ms_os_free(void *p, size_t len)
{
    if (p)
        syscall(SYS_munmap, p, len);
}

static int buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = ms_os_alloc(cap);
    if (!p)
        return -1;
    if (b->len)
        memcpy(p, b->p, b->len);
    ms_os_free(b->p, b->cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_put(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) == 0) {
        memcpy(b->p + b->len, data, len);
        b->len += len;
    }
}

/* ---- the side buffer of global records ---- */

void ms_meta_append(const uint8_t *rec, size_t len)
{
    pthread_mutex_lock(&w.meta_lock);
    buf_put(&w.meta, rec, len);
    pthread_mutex_unlock(&w.meta_lock);
}

static size_t comm_name(char name[17])
{
    name[0] = 0;
    prctl(PR_GET_NAME, name, 0, 0, 0);
    name[16] = 0;
    return strlen(name);
}

void ms_meta_thread(struct ms_ring *r, const char *name)
{
    char comm[17];
    if (!name) {
        comm_name(comm);
        name = comm;
    }
    uint8_t rec[64 + 32], *q = rec;
    size_t len = strnlen(name, 63);
    *q++ = MS_REC_THREAD;
    q = ms_put_varint(q, r->serial);
    q = ms_put_varint(q, (uint64_t)r->tid);
    q = ms_put_varint(q, ms_ticks());
    q = ms_put_string(q, name, len);
    ms_meta_append(rec, (size_t)(q - rec));
}

void ms_meta_marker(struct ms_ring *r, const char *label)
{
    uint8_t rec[1024 + 32], *q = rec;
    size_t len = strnlen(label, 1024);
    *q++ = MS_REC_MARKER;
    q = ms_put_varint(q, r->serial);
    q = ms_put_varint(q, ms_ticks());
    q = ms_put_string(q, label, len);
    ms_meta_append(rec, (size_t)(q - rec));
}

static void meta_clock(void)
{
    uint8_t rec[32], *q = rec;
    *q++ = MS_REC_CLOCK;
    q = ms_put_varint(q, ms_ticks());
    q = ms_put_varint(q, ms_mono_ns());
    ms_meta_append(rec, (size_t)(q - rec));
}

/* ---- rings ---- */

static pid_t sys_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void ring_reset(struct ms_ring *r)
{
    r->head = r->tail_seen = 0;
    atomic_store_explicit(&r->pub, 0, memory_order_relaxed);
    atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
    r->ticks = r->ptr = 0;
    r->c_ticks = r->c_ptr = 0;
    r->sample_left = 0;
}

struct ms_ring *ms_ring_register(void)
{
    struct ms_ring *r;
    pthread_mutex_lock(&ms_g.rings_lock);
    for (r = ms_g.rings; r; r = r->next)
        if (atomic_load_explicit(&r->state, memory_order_relaxed) == MS_RING_FREE)
            break;
    if (!r) {
        r = ms_os_alloc(sizeof(*r));
        uint8_t *b = r ? ms_os_alloc(MS_RING_SIZE) : NULL;
        if (!b) {
            ms_os_free(r, sizeof(*r));
            pthread_mutex_unlock(&ms_g.rings_lock);
            return NULL;
        }
        r->buf = b;
        r->next = ms_g.rings;
        ms_g.rings = r;
    }
    ring_reset(r);
    r->serial = ++ms_g.next_serial;
    r->tid = sys_gettid();
    r->rng = ms_g.seed ^ (r->serial * 0x9e3779b97f4a7c15ull);
    atomic_store_explicit(&r->state, MS_RING_LIVE, memory_order_relaxed);
    pthread_mutex_unlock(&ms_g.rings_lock);

    ms_thread_stack_bounds(r);
    ms_stack_cache_reset(r);
    ms_meta_thread(r, NULL);
    pthread_setspecific(ms_g.key, r);
    return r;
}

/* The key's destructor: the thread is ending. Events it still makes (later destructors) keep
 * going into the ring; the writer frees the ring once the thread is gone and it is drained. */
void ms_ring_exiting(void *arg)
{
    struct ms_ring *r = arg;
    int busy = ms_tls.busy;
    ms_tls.busy = 1;
    ms_meta_thread(r, NULL); /* its final name */
    uint8_t rec[32], *q = rec;
    *q++ = MS_REC_THREAD_END;
    q = ms_put_varint(q, r->serial);
    q = ms_put_varint(q, ms_ticks());
    ms_meta_append(rec, (size_t)(q - rec));
    atomic_store_explicit(&r->state, MS_RING_EXITING, memory_order_release);
    ms_tls.busy = busy;
}

static bool tid_gone(pid_t tid)
{
    return syscall(SYS_tgkill, ms_g.pid, tid, 0) == -1 && errno == ESRCH;
}

/* ---- chunks ---- */

static int write_all(const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(w.fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Compresses the staging buffer into one chunk and writes it. */
static void write_stage(void)
{
    if (!w.stage.len)
        return;
    const uint8_t *payload = w.stage.p;
    size_t stored = w.stage.len;
    uint32_t codec = MS_CHUNK_CODEC_NONE;
    size_t bound = ZSTD_compressBound(w.stage.len);
    if (w.zc && buf_reserve(&w.out, bound) == 0) {
        size_t n = ZSTD_compressCCtx(w.zc, w.out.p, bound, w.stage.p, w.stage.len, 1);
        if (!ZSTD_isError(n) && n < w.stage.len) {
            payload = w.out.p;
            stored = n;
            codec = MS_CHUNK_CODEC_ZSTD;
        }
    }
    uint8_t frame[MS_CHUNK_FRAME_SIZE];
    ms_put_u32(frame, MS_CHUNK_MAGIC);
    ms_put_u32(frame + 4, codec);
    ms_put_u32(frame + 8, (uint32_t)stored);
    ms_put_u32(frame + 12, (uint32_t)w.stage.len);
    ms_put_u32(frame + 16, ms_chunk_crc(frame, payload, stored));
    if (write_all(frame, sizeof(frame)) < 0 || write_all(payload, stored) < 0) {
        /* A full disk: stop recording rather than write a chunk with a hole in it. */
        close(w.fd);
        w.fd = -1;
    }
    w.stage.len = 0;
}

void ms_stage_put(const void *data, size_t len)
{
    buf_put(&w.stage, data, len);
    if (w.stage.len >= STAGE_LIMIT)
        write_stage();
}

/* Drains everything into chunks: the side buffer, then the rings' events merged and resolved
 * (events.c). Called with w.lock held. */
static void flush_locked(void)
{
    if (w.fd < 0 || w.finished)
        return;
    meta_clock();
    pthread_mutex_lock(&w.meta_lock);
    buf_put(&w.stage, w.meta.p, w.meta.len); /* no chunk write under the meta lock */
    w.meta.len = 0;
    pthread_mutex_unlock(&w.meta_lock);

    pthread_mutex_lock(&ms_g.rings_lock);
    size_t n = 0;
    for (struct ms_ring *r = ms_g.rings; r; r = r->next) {
        int state = atomic_load_explicit(&r->state, memory_order_acquire);
        if (state == MS_RING_FREE)
            continue;
        if (n == w.nlist) {
            size_t cap = w.nlist ? w.nlist * 2 : 64;
            struct ms_ring **l = ms_os_alloc(cap * (sizeof(*l) + 1));
            if (!l)
                break;
            if (n)
                memcpy(l, w.list, n * sizeof(*l));
            ms_os_free(w.list, w.nlist * (sizeof(*l) + 1));
            w.list = l;
            w.gone = (bool *)(l + cap);
            w.nlist = cap;
        }
        /* A thread that is gone can publish nothing more: free its ring once drained. */
        w.gone[n] = state == MS_RING_EXITING && tid_gone(r->tid);
        w.list[n++] = r;
    }
    ms_events_drain(w.list, n);
    for (size_t i = 0; i < n; i++)
        if (w.gone[i])
            atomic_store_explicit(&w.list[i]->state, MS_RING_FREE, memory_order_relaxed);
    pthread_mutex_unlock(&ms_g.rings_lock);
    ms_events_flushed(false);
    write_stage();
}

void ms_writer_flush(void)
{
    pthread_mutex_lock(&w.lock);
    flush_locked();
    pthread_mutex_unlock(&w.lock);
}

void ms_writer_lock(void)
{
    pthread_mutex_lock(&w.lock);
    flush_locked();
}

void ms_writer_unlock(void)
{
    pthread_mutex_unlock(&w.lock);
}

void ms_writer_ring_full(struct ms_ring *r, size_t need)
{
    pthread_mutex_lock(&w.lock);
    flush_locked();
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (r->head + need - tail > MS_RING_SIZE) {
        /* Nothing is being written any more (after the END record, or the disk filled up):
         * drop the ring's contents rather than block. */
        atomic_store_explicit(&r->tail, r->head, memory_order_release);
    }
    pthread_mutex_unlock(&w.lock);
}

void ms_writer_finish(unsigned exit_kind)
{
    pthread_mutex_lock(&w.lock);
    if (w.fd >= 0 && !w.finished) {
        flush_locked();
        ms_events_flushed(true);
        uint8_t rec[32], *q = rec;
        *q++ = MS_REC_END;
        q = ms_put_varint(q, ms_ticks());
        q = ms_put_varint(q, exit_kind);
        ms_stage_put(rec, (size_t)(q - rec));
        write_stage();
        w.finished = true;
    }
    pthread_mutex_unlock(&w.lock);
}

/* ---- the background thread ---- */

static void sample_rss(void)
{
    char text[128];
    ssize_t n = w.statm_fd >= 0 ? pread(w.statm_fd, text, sizeof(text) - 1, 0) : -1;
    if (n <= 0)
        return;
    text[n] = 0;
    const char *p = strchr(text, ' ');
    if (!p)
        return;
    uint64_t pages = strtoull(p + 1, NULL, 10);
    uint8_t rec[32], *q = rec;
    *q++ = MS_REC_RSS;
    q = ms_put_varint(q, ms_ticks());
    q = ms_put_varint(q, pages * (uint64_t)w.page_size);
    ms_meta_append(rec, (size_t)(q - rec));
}

static bool rings_quarter_full(void)
{
    bool full = false;
    pthread_mutex_lock(&ms_g.rings_lock);
    for (struct ms_ring *r = ms_g.rings; r && !full; r = r->next)
        full = atomic_load_explicit(&r->pub, memory_order_relaxed) -
                   atomic_load_explicit(&r->tail, memory_order_relaxed) >
               MS_RING_SIZE / 4;
    pthread_mutex_unlock(&ms_g.rings_lock);
    return full;
}

static void *writer_main(void *arg)
{
    (void)arg;
    ms_tls.busy = 1; /* nothing this thread does is recorded */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    prctl(PR_SET_NAME, "memsnap-writer", 0, 0, 0);
    uint64_t next_flush = ms_mono_ns() + MS_FLUSH_NS;
    for (;;) {
        struct timespec ts = {0, (long)MS_SAMPLE_NS};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        if (w.finished)
            break;
        sample_rss();
        ms_modules_scan(false);
        uint64_t now = ms_mono_ns();
        if (now >= next_flush || rings_quarter_full()) {
            ms_writer_flush();
            next_flush = now + MS_FLUSH_NS;
        }
    }
    return NULL;
}

/* ---- starting a trace ---- */

static size_t read_small(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t len = 0;
    ssize_t n;
    while (len < cap && (n = read(fd, out + len, cap - len)) > 0)
        len += (size_t)n;
    close(fd);
    return len;
}

static void meta_process(bool append, bool forked, pid_t ppid)
{
    static char cmdline[8192], exe[4096];
    size_t cmd_len = read_small("/proc/self/cmdline", cmdline, sizeof(cmdline));
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof(exe));
    if (exe_len < 0)
        exe_len = 0;
    if (cmd_len && cmdline[cmd_len - 1] == 0)
        cmd_len--;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t flags = (ms_g.use_tsc ? MS_PROC_TSC : 0) | (forked ? MS_PROC_FORKED : 0) |
                     (ms_g.record_mmap ? MS_PROC_MMAP : 0);
    static uint8_t rec[sizeof(cmdline) + sizeof(exe) + 128];
    uint8_t *q = rec;
    *q++ = append ? MS_REC_EXEC : MS_REC_PROCESS;
    q = ms_put_varint(q, (uint64_t)ms_g.pid);
    q = ms_put_varint(q, (uint64_t)ppid);
    q = ms_put_varint(q, (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec);
    q = ms_put_varint(q, flags);
    q = ms_put_varint(q, ms_g.sample_rate);
    q = ms_put_varint(q, ms_g.depth);
    q = ms_put_string(q, exe, (size_t)exe_len);
    q = ms_put_string(q, cmdline, cmd_len);
    ms_meta_append(rec, (size_t)(q - rec));
}

int ms_writer_start(bool append, bool forked, pid_t ppid)
{
    w.page_size = sysconf(_SC_PAGESIZE);
    if (append) {
        w.fd = open(ms_g.path, O_WRONLY | O_APPEND | O_CLOEXEC);
    } else {
        w.fd = open(ms_g.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w.fd >= 0)
            fchmod(w.fd, 0600);
    }
    if (w.fd < 0) {
        char msg[4300];
        int n = snprintf(msg, sizeof(msg), "memsnap: cannot %s trace %s: %s; not recording\n",
                         append ? "append to" : "create", ms_g.path, strerror(errno));
        if (n > 0)
            (void)!write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        return -1;
    }
    if (!w.zc)
        w.zc = ZSTD_createCCtx();
    if (!append) {
        uint8_t hdr[MS_TRACE_HEADER_SIZE] = {0};
        memcpy(hdr, MS_TRACE_MAGIC, 8);
        hdr[8] = MS_TRACE_VERSION_MAJOR;
        hdr[10] = MS_TRACE_VERSION_MINOR;
        ms_put_u32(hdr + 12, MS_TRACE_HEADER_SIZE);
        if (write_all(hdr, sizeof(hdr)) < 0) {
            close(w.fd);
            w.fd = -1;
            return -1;
        }
    }
    if (w.statm_fd < 0)
        w.statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    w.finished = false;
    meta_process(append, forked, ppid);
    ms_modules_scan(true);
    ms_writer_flush(); /* the file is readable from its first chunk on */

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t thread;
    if (pthread_create(&thread, NULL, writer_main, NULL) == 0)
        pthread_detach(thread); /* it ends itself once the END record is written */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

/* ---- fork ---- */

void ms_writer_fork_prepare(void)
{
    pthread_mutex_lock(&w.lock);
    ms_stacks_lock();
    pthread_mutex_lock(&w.meta_lock);
    pthread_mutex_lock(&ms_g.rings_lock);
}

void ms_writer_fork_parent(void)
{
    pthread_mutex_unlock(&ms_g.rings_lock);
    pthread_mutex_unlock(&w.meta_lock);
    ms_stacks_unlock();
    pthread_mutex_unlock(&w.lock);
}

/* The child has one thread, a copy of the parent's buffers and no writer thread. It drops
 * what the parent had not flushed, starts its own file (base path + ".<pid>") with fresh
 * stack ids, and keeps its own thread's ring with a fresh encoding state. */
void ms_writer_fork_child(void)
{
    pid_t ppid = ms_g.pid;
    pthread_mutex_init(&w.lock, NULL);
    pthread_mutex_init(&w.meta_lock, NULL);
    pthread_mutex_init(&ms_g.rings_lock, NULL);
    ms_stacks_lock_reinit();
    if (w.fd >= 0)
        close(w.fd);
    w.fd = -1;
    w.stage.len = w.meta.len = 0;
    ms_g.pid = (pid_t)syscall(SYS_getpid);
    struct ms_ring *self = ms_tls.ring;
    ms_g.next_serial = 0;
    for (struct ms_ring *r = ms_g.rings; r; r = r->next) {
        ring_reset(r);
        atomic_store_explicit(&r->state, MS_RING_FREE, memory_order_relaxed);
    }
    ms_stacks_reset();
    ms_events_reset();
    ms_modules_reset();
    snprintf(ms_g.path, sizeof(ms_g.path), "%s.%d", ms_g.base_path, (int)ms_g.pid);
    if (self) {
        ms_stack_cache_reset(self); /* its ids are the parent's */
        self->serial = ++ms_g.next_serial;
        self->tid = sys_gettid();
        atomic_store_explicit(&self->state, MS_RING_LIVE, memory_order_relaxed);
    }
    if (ms_writer_start(false, true, ppid) < 0) {
        atomic_store(&ms_g.tracing, 0);
        return;
    }
    if (self)
        ms_meta_thread(self, NULL);
}
