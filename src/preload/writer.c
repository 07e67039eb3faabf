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
 *
 * The program must not notice any of this:
 *   - the writer thread never keeps the process alive: once every thread of the program has
 *     ended (main returned through pthread_exit(), and the others after it), it does what the
 *     last of them would have done natively, exit(0);
 *   - the descriptors kept open (the trace, /proc/self/statm and stat) sit at high numbers
 *     with FD_CLOEXEC, and each is checked by device and inode before use: a program that
 *     closes every descriptor (close(3..1023), closefrom, close_range) or dup2()s over one
 *     gets it back untouched, and the trace is reopened by its path (never written through a
 *     number that no longer names it);
 *   - trace files are created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600: a file that is
 *     already there (a stale trace, or one another user planted in /tmp) is never written
 *     into; a forked child's trace takes the next free name FILE.<pid>.<n> instead.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced */
#include <zstd.h>

#define STAGE_LIMIT (4u << 20) /* a chunk holds at most this much before compression */
#define FD_FLOOR    1000       /* kept descriptors go at or above this (below the soft limit) */

/* A descriptor the tracker keeps open, and the file it must still name when used. */
struct kept {
    int fd;
    dev_t dev;
    ino_t ino;
};

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static struct {
    pthread_mutex_t lock;      /* the file, the compressor, the staging buffer */
    pthread_mutex_t meta_lock; /* the side buffer */
    struct kept trace;         /* the trace file, opened O_APPEND once it exists */
    struct kept statm, stat;   /* /proc/self/statm (RSS samples) and stat (threads left) */
    bool broken;               /* a write failed or the trace is gone: nothing more is written */
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
    .trace = {.fd = -1},
    .statm = {.fd = -1},
    .stat = {.fd = -1},
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

/* zstd's memory, from mmap: the compressor runs on program threads too (a full ring), where
 * an allocation through the hooked allocator would count as the program's. */
static void *zstd_alloc(void *opaque, size_t size)
{
    (void)opaque;
    uint8_t *p = ms_os_alloc(size + 16);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof(size));
    return p + 16;
}

static void zstd_free(void *opaque, void *address)
{
    (void)opaque;
    if (!address)
        return;
    uint8_t *p = (uint8_t *)address - 16;
    size_t size;
    memcpy(&size, p, sizeof(size));
    ms_os_free(p, size + 16);
}

/* ---- descriptors kept out of the program's way ---- */

/* fd moved to the lowest free number at or above FD_FLOOR (lower when the soft limit of open
 * files is), with FD_CLOEXEC; fd itself when none is free. */
static int fd_high(int fd)
{
    struct rlimit rl;
    long floor = FD_FLOOR;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long)rl.rlim_cur / 2 < floor)
        floor = (long)rl.rlim_cur / 2;
    if (fd >= floor)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)floor);
    if (high < 0)
        return fd;
    close(fd);
    return high;
}

/* Keeps fd (just opened) in k, moved high; its file is the one k must name from now on. */
static int kept_adopt(struct kept *k, int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    k->fd = fd_high(fd);
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    return k->fd;
}

static void kept_close(struct kept *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
}

/* k's descriptor while it still names k's file. A number that names another file now belongs
 * to the program (it closed ours and reused the number, or dup2()ed over it): it is left
 * alone, and path is opened again; with `same`, only the very file k had will do. -1 when
 * that fails. */
static int kept_get(struct kept *k, const char *path, int flags, bool same)
{
    struct stat st;
    if (k->fd >= 0 && fstat(k->fd, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino)
        return k->fd;
    k->fd = -1;
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return -1;
    if (same && (fstat(fd, &st) != 0 || st.st_dev != k->dev || st.st_ino != k->ino)) {
        close(fd);
        return -1;
    }
    return kept_adopt(k, fd);
}

/* The trace's descriptor, reopened if the program took the number; -1 once writing stopped. */
static int trace_fd(void)
{
    return w.broken ? -1 : kept_get(&w.trace, ms_g.path, O_WRONLY | O_APPEND, true);
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
    ms_tls.busy = MS_SELF;
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

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
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
    int fd = trace_fd();
    if (fd < 0 || write_all(fd, frame, sizeof(frame)) < 0 || write_all(fd, payload, stored) < 0) {
        /* A full disk, or a trace that is gone: stop rather than write a chunk with a hole
         * in it (`memsnap record` says the trace is incomplete: it has no END record). */
        kept_close(&w.trace);
        w.broken = true;
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
    if (w.broken || w.finished)
        return;
    meta_clock();
    pthread_mutex_lock(&w.meta_lock);
    buf_put(&w.stage, w.meta.p, w.meta.len); /* no chunk write under the meta lock */
    w.meta.len = 0;
    pthread_mutex_unlock(&w.meta_lock);

    pthread_mutex_lock(&ms_g.rings_lock);
    size_t n = 0;
    uint64_t lost = 0;
    for (struct ms_ring *r = ms_g.rings; r; r = r->next) {
        lost += atomic_exchange_explicit(&r->lost, 0, memory_order_relaxed);
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
    if (lost) {
        uint8_t rec[16], *q = rec;
        *q++ = MS_REC_LOST;
        q = ms_put_varint(q, lost);
        ms_stage_put(rec, (size_t)(q - rec));
    }
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
    /* Still MS_HOOK (nothing here allocates: zstd has ms_os_alloc): a signal handler's
     * allocation meanwhile is deferred, not lost. */
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

/* The END record, in a chunk of its own and last: ms_trace_tail_get() finds it without
 * decoding the rest of the trace. Writer lock held. */
static void write_end(unsigned exit_kind)
{
    ms_events_flushed(true);
    write_stage();
    uint8_t rec[32], *q = rec;
    *q++ = MS_REC_END;
    q = ms_put_varint(q, ms_ticks());
    q = ms_put_varint(q, exit_kind);
    ms_stage_put(rec, (size_t)(q - rec));
    write_stage();
}

void ms_writer_finish(unsigned exit_kind)
{
    pthread_mutex_lock(&w.lock);
    if (!w.broken && !w.finished) {
        flush_locked();
        write_end(exit_kind);
        w.finished = true;
    }
    pthread_mutex_unlock(&w.lock);
}

off_t ms_writer_exec_end(void)
{
    struct stat st;
    int fd = w.finished ? -1 : trace_fd();
    if (fd < 0 || fstat(fd, &st) != 0)
        return -1;
    write_end(4);
    return st.st_size;
}

void ms_writer_exec_failed(off_t size)
{
    int fd = size < 0 ? -1 : trace_fd();
    if (fd >= 0 && ftruncate(fd, size) != 0) {
        kept_close(&w.trace);
        w.broken = true; /* an END in the middle would end the trace there */
    }
}

/* ---- the background thread ---- */

static void sample_rss(void)
{
    char text[128];
    /* the writer thread's own view: the leader's reads zero once main has ended */
    int fd = kept_get(&w.statm, "/proc/thread-self/statm", O_RDONLY, false);
    ssize_t n = fd >= 0 ? pread(fd, text, sizeof(text) - 1, 0) : -1;
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

/* True when every thread of the program has ended and only this one is left: the leader is a
 * zombie ("Z" in /proc/self/stat: main ended with pthread_exit()) and the process counts two
 * threads, the leader and this one. Nothing can start a thread again then. */
static bool program_gone(void)
{
    char text[1024];
    int fd = kept_get(&w.stat, "/proc/self/stat", O_RDONLY, false);
    ssize_t n = fd >= 0 ? pread(fd, text, sizeof(text) - 1, 0) : -1;
    if (n <= 0)
        return false;
    text[n] = 0;
    const char *p = strrchr(text, ')');
    if (!p || p[1] != ' ' || p[2] != 'Z')
        return false;
    p += 2; /* field 3, the state; num_threads is field 20 */
    for (int field = 3; field < 20; field++) {
        if (!(p = strchr(p, ' ')))
            return false;
        p++;
    }
    return strtol(p, NULL, 10) <= 2;
}

static void *writer_main(void *arg)
{
    (void)arg;
    ms_tls.busy = MS_SELF; /* nothing this thread does is recorded */
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
        if (program_gone()) {
            /* What the last thread of the program does natively after its pthread_exit():
             * exit(0), which runs the atexit handlers (ours writes the END record). Its
             * allocations are the program's: recorded from this thread's ring. */
            ms_tls.busy = MS_IDLE;
            exit(0);
        }
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

/* The trace of an image that exec'd: the file its process was writing. Only a regular file
 * this user owns is appended to. */
static int open_append(void)
{
    int fd = open(ms_g.path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

/* Creates this process's trace at ms_g.path, a file that must not exist yet. A forked child
 * whose FILE.<pid> is taken (a stale trace, or someone else's file) takes FILE.<pid>.<n>. */
static int create_trace(bool forked)
{
    const int flags = O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
    int fd = open(ms_g.path, flags, 0600);
    if (fd < 0 && errno == EEXIST && forked) {
        size_t len = strlen(ms_g.path);
        for (unsigned n = 1; n < 100 && fd < 0 && errno == EEXIST; n++) {
            int k = snprintf(ms_g.path + len, sizeof(ms_g.path) - len, ".%u", n);
            if (k < 0 || (size_t)k >= sizeof(ms_g.path) - len) {
                errno = ENAMETOOLONG;
                break;
            }
            fd = open(ms_g.path, flags, 0600);
        }
        if (fd < 0)
            ms_g.path[len] = 0;
    }
    return fd;
}

int ms_writer_start(bool append, bool forked, pid_t ppid)
{
    w.page_size = sysconf(_SC_PAGESIZE);
    w.broken = false;
    int fd = append ? open_append() : create_trace(forked);
    if (fd < 0 || kept_adopt(&w.trace, fd) < 0) {
        char msg[4300];
        int n = snprintf(msg, sizeof(msg), "memsnap: cannot %s trace %s: %s; not recording\n",
                         append ? "append to" : "create", ms_g.path, strerror(errno));
        if (n > 0)
            (void)!write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        return -1;
    }
    if (!w.zc)
        w.zc = ZSTD_createCCtx_advanced((ZSTD_customMem){zstd_alloc, zstd_free, NULL});
    if (!append) {
        uint8_t hdr[MS_TRACE_HEADER_SIZE] = {0};
        memcpy(hdr, MS_TRACE_MAGIC, 8);
        hdr[8] = MS_TRACE_VERSION_MAJOR;
        hdr[10] = MS_TRACE_VERSION_MINOR;
        ms_put_u32(hdr + 12, MS_TRACE_HEADER_SIZE);
        if (write_all(w.trace.fd, hdr, sizeof(hdr)) < 0) {
            kept_close(&w.trace);
            return -1;
        }
    }
    /* This process's /proc files are opened by its writer thread (a fork child's copies name
     * its parent's). */
    kept_close(&w.statm);
    kept_close(&w.stat);
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
    kept_close(&w.trace);
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
    int len = snprintf(ms_g.path, sizeof(ms_g.path), "%s.%d", ms_g.base_path, (int)ms_g.pid);
    if (self) {
        ms_stack_cache_reset(self); /* its ids are the parent's */
        self->serial = ++ms_g.next_serial;
        self->tid = sys_gettid();
        atomic_store_explicit(&self->state, MS_RING_LIVE, memory_order_relaxed);
    }
    if (len < 0 || (size_t)len >= sizeof(ms_g.path)) {
        /* Cut short, every child would share one name: this one is not recorded. */
        static const char msg[] = "memsnap: the trace path is too long for a child's name "
                                  "FILE.<pid>; this child is not recorded\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        atomic_store(&ms_g.tracing, 0);
        return;
    }
    if (ms_writer_start(false, true, ppid) < 0) {
        atomic_store(&ms_g.tracing, 0);
        return;
    }
    if (self)
        ms_meta_thread(self, NULL);
}
