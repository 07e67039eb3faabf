/*
 * sampler.c - the one sampler behind `memsnap monitor`/`track`/`run`, the bindings' profilers
 * and flight recorder, and the exporter (memsnap.h, "Sampling").
 *
 * One snapshot per interval through one long-lived session, on an absolute CLOCK_MONOTONIC
 * schedule: a late sample (a slow read, a stopped process) skips the missed ticks instead of
 * bunching them. Full samples (status, stat, meminfo, the cgroup, the GPUs, the --tree scan)
 * are taken at most every full interval; the samples in between re-read statm and put its five
 * figures on top of the last full ones, so 1 ms sampling costs about one pread. PSS and USS need
 * the kernel to walk the page tables (smaps_rollup: about 4 ms per GiB of RSS), so by default a
 * full sample walks only when the walks so far stay under 1% of a core (MS__WALK_FACTOR): after
 * a walk that took T of CPU time the next waits 100 T. The walk is timed apart from the other
 * reads, in thread CPU time, so that neither the cheap files nor another process's time on the
 * core count. Samples carry the last walk's figures and say when it was.
 *
 * Peak windows: every sample updates the open windows' maxima under the sampler's lock, so a
 * caller on another thread (a profiler around a block of code) reads the highest RSS, PSS and
 * GPU use seen between its open and close. ms_sampler_start() runs the schedule on a thread of
 * the sampler's own, with every signal blocked (they stay with the caller's threads).
 */
#include "../core/internal.h"
#include "../probe/tree.h"
#include "flight.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS__NS_PER_S         1000000000ull
#define MS__INTERVAL_DEFAULT MS__NS_PER_S       /* interval_ns 0 */
#define MS__FULL_DEFAULT     (100 * 1000000ull) /* full_interval_ns 0: 100 ms */
#define MS__WALK_FACTOR      100 /* a page-table walk waits 100x its own time: 1% of a core */
#define MS__STATM_FIELDS     5   /* statm's (MS_CAPTURE_BASIC): the process section's first five */
_Static_assert(MS_PF_rss_bytes == 0 && MS_PF_data_bytes == MS__STATM_FIELDS - 1,
               "statm's fields lead the process section");

/* One open peak window. */
struct ms__window {
    bool used;
    ms_peak peak;
};

struct ms_sampler {
    ms_session *s;
    bool own_session; /* opened here, closed here */
    pid_t pid;
    uint64_t interval_ns, full_ns;
    unsigned flags;   /* MS_SAMPLER_* */
    bool walk_budget; /* PSS walks are held to 1% of a core */
    ms_flight *flight;
    /* the schedule (the sampling thread's) */
    bool begun;
    uint64_t next;      /* CLOCK_MONOTONIC of the next tick */
    uint64_t last_full; /* CLOCK_MONOTONIC of the last full sample */
    bool have_full;     /* snap holds full figures */
    uint64_t walk_next; /* CLOCK_MONOTONIC before which a full sample does not walk */
    uint64_t walk_time; /* CLOCK_REALTIME of the last walk (PSS, USS), 0: none yet */
    uint64_t walk_pss, walk_uss, walk_valid; /* what it read (MS_PF_* validity bits) */
    bool walk_denied;                        /* smaps_rollup is denied: no PSS, USS */
    char note[512];                          /* why, on the sample that found it */
    uint64_t seq;                            /* samples taken */
    ms_snapshot snap;                        /* the figures: full ones, statm on top */
    ms_snapshot light;                       /* statm-only captures, the walk, tree members */
    ms_tree_member *members, *prev;          /* MS_TREE_MAX each (with MS_SAMPLER_TREE) */
    size_t nmembers;
    bool tree_ok; /* members describe the last full sample */
    /* shared with other threads, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: the thread's sleep, cut short by stop */
    pthread_t thread;
    bool running, stop;
    bool have_latest;
    ms_snapshot latest; /* a copy of the last sample's figures, while running */
    struct ms__window *win;
    size_t nwin;
};

static uint64_t ms__clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * MS__NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* The bytes of a snapshot up to its last GPU: what a copy needs. */
static size_t ms__snap_len(const ms_snapshot *snap)
{
    uint32_t n = snap->gpu_count < MS_GPU_MAX ? snap->gpu_count : MS_GPU_MAX;
    return offsetof(ms_snapshot, gpus) + n * sizeof(ms_gpu);
}

int ms_sampler_open(ms_sampler **out, const ms_sampler_options *o)
{
    if (!out)
        return ms__error(MS_EINVAL, "ms_sampler_open: no handle to fill");
    *out = NULL;
    if (!o || (o->size && o->size < sizeof(*o)))
        return ms__error(MS_EINVAL, "ms_sampler_open: no options, or options of another size");
    if (o->pid < 0)
        return ms__error(MS_EINVAL, "ms_sampler_open: invalid pid %d", (int)o->pid);
    ms_sampler *s = calloc(1, sizeof(*s)); /* large with its snapshots: not on the stack */
    if (!s)
        return ms__error(MS_ENOMEM, "out of memory");
    s->pid = o->pid;
    s->interval_ns = o->interval_ns ? o->interval_ns : MS__INTERVAL_DEFAULT;
    s->flags = o->flags;
    s->walk_budget = !(o->flags & MS_SAMPLER_EXACT_FULL);
    s->full_ns = o->full_interval_ns || !s->walk_budget ? o->full_interval_ns : MS__FULL_DEFAULT;
    s->flight = o->flight;
    ms_snapshot_init(&s->snap);
    ms_snapshot_init(&s->light);
    ms_snapshot_init(&s->latest);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = 0;
    if (o->session) {
        s->s = o->session;
    } else {
        const ms_options so = {.size = sizeof(so), .procfs = o->procfs, .sysfs = o->sysfs};
        if ((rc = ms_session_open(&s->s, &so)) != 0)
            goto fail;
        s->own_session = true;
    }
    if ((o->flags & MS_SAMPLER_TREE) && (!(s->members = calloc(MS_TREE_MAX, sizeof(*s->members))) ||
                                         !(s->prev = calloc(MS_TREE_MAX, sizeof(*s->prev))))) {
        rc = ms__error(MS_ENOMEM, "out of memory");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    ms_sampler_close(s);
    return rc;
}

uint64_t ms_sampler_due(const ms_sampler *s)
{
    return s && s->begun ? s->next : 0;
}

const ms_snapshot *ms_sampler_snapshot(const ms_sampler *s)
{
    return s && s->have_full ? &s->snap : NULL;
}

/* A capture of pid into snap; PSS, when another user's process or a kernel thread denies it,
 * is left out rather than failing the capture. */
static int ms__capture_member(ms_session *ss, pid_t pid, unsigned what, ms_snapshot *snap)
{
    int rc = ms_capture(ss, pid, what, snap);
    if ((rc == MS_EACCES || rc == MS_ENOTSUP) && (what & MS_CAPTURE_PSS))
        rc = ms_capture(ss, pid, what & ~(unsigned)MS_CAPTURE_PSS, snap);
    return rc;
}

/* Finds the process and every descendant into s->members with their RSS and PSS (the
 * process's from s->snap). Without walk the members keep the PSS of their last walk (none for
 * a new one). tree_ok tells whether it worked. Returns the CPU ns spent reading the members
 * (their walks), not finding them. */
static uint64_t ms__tree_scan(ms_sampler *s, bool walk)
{
    const char *procfs = ms_session_procfs(s->s);
    s->tree_ok = false;
    /* Without a walk: the last members by pid, for their PSS, before members[] changes. */
    size_t nprev = 0;
    if (!walk && s->nmembers) {
        memcpy(s->prev, s->members, s->nmembers * sizeof(*s->prev));
        qsort(s->prev, s->nmembers, sizeof(*s->prev), ms__tree_member_cmp);
        nprev = s->nmembers;
    }
    pid_t root = s->pid ? s->pid : getpid();
    size_t nm = ms__tree_find(procfs, root, s->members, MS_TREE_MAX);
    if (nm == 0)
        return 0;
    s->nmembers = nm;
    uint64_t t0 = ms__clock(CLOCK_THREAD_CPUTIME_ID);
    for (size_t k = 0; k < nm; k++) {
        ms_tree_member *p = &s->members[k];
        const ms_snapshot *snap = &s->snap;
        if (k > 0) {
            unsigned what = MS_CAPTURE_BASIC | (walk ? MS_CAPTURE_PSS : 0u);
            /* a member of another user's: its RSS all the same, PSS null */
            if (ms__capture_member(s->s, p->pid, what, &s->light) != 0)
                continue; /* ended since the scan: listed without figures */
            snap = &s->light;
        }
        p->rss_valid = ms_valid(&snap->process, MS_PF_rss_bytes);
        p->rss_bytes = snap->process.rss_bytes;
        p->pss_valid = ms_valid(&snap->process, MS_PF_pss_bytes);
        p->pss_bytes = snap->process.pss_bytes;
        const ms_tree_member *old;
        if (!walk && k > 0 && nprev &&
            (old = bsearch(p, s->prev, nprev, sizeof(*s->prev), ms__tree_member_cmp)) != NULL) {
            p->pss_valid = old->pss_valid;
            p->pss_bytes = old->pss_bytes;
        }
    }
    s->tree_ok = true;
    return ms__clock(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/* After a full capture into s->snap: keeps what a walk read (walked; NULL: none this time),
 * and puts the last walk's PSS and USS into the sample. */
static void ms__walk_keep(ms_sampler *s, const ms_snapshot *walked)
{
    ms_process_mem *p = &s->snap.process;
    const uint64_t bits = (1u << MS_PF_pss_bytes) | (1u << MS_PF_uss_bytes);
    if (walked) {
        s->walk_time = s->snap.timestamp_ns; /* this sample's */
        s->walk_pss = walked->process.pss_bytes;
        s->walk_uss = walked->process.uss_bytes;
        s->walk_valid = walked->process.valid & bits;
    }
    p->pss_bytes = s->walk_pss;
    p->uss_bytes = s->walk_uss;
    p->valid = (p->valid & ~bits) | s->walk_valid;
}

/* True when pid is a zombie (its statm reads as zeros until its parent reaps it). */
static bool ms__zombie(const ms_sampler *s)
{
    ms_tree_member p;
    return s->pid > 0 && ms__tree_stat(ms_session_procfs(s->s), s->pid, &p) == 0 &&
           (p.state == 'Z' || p.state == 'X');
}

/* Every open window sees the sample; the latest copy too while a thread samples. */
static void ms__windows_update(ms_sampler *s, bool walked)
{
    const ms_snapshot *snap = &s->snap;
    uint64_t gpu_used = 0, gpu_proc = 0;
    bool gpu = (snap->captured & MS_CAPTURE_GPU) && snap->gpu_count > 0, gpu_proc_ok = false;
    for (uint32_t i = 0; gpu && i < snap->gpu_count && i < MS_GPU_MAX; i++) {
        const ms_gpu *g = &snap->gpus[i];
        if (ms_valid(g, MS_GF_used_bytes))
            gpu_used = ms__sat_add(gpu_used, g->used_bytes);
        if (g->is_per_process && ms_valid(g, MS_GF_process_used_bytes)) {
            gpu_proc = ms__sat_add(gpu_proc, g->process_used_bytes);
            gpu_proc_ok = true;
        }
    }
    bool rss = ms_valid(&snap->process, MS_PF_rss_bytes);
    bool pss = walked && ms_valid(&snap->process, MS_PF_pss_bytes);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nwin; i++) {
        ms_peak *pk = &s->win[i].peak;
        if (!s->win[i].used)
            continue;
        pk->samples++;
        if (rss && (!pk->rss_valid || snap->process.rss_bytes > pk->rss_bytes)) {
            pk->rss_valid = true;
            pk->rss_bytes = snap->process.rss_bytes;
            pk->rss_time_ns = snap->timestamp_ns;
        }
        if (pss && (!pk->pss_valid || snap->process.pss_bytes > pk->pss_bytes)) {
            pk->pss_valid = true;
            pk->pss_bytes = snap->process.pss_bytes;
        }
        if (gpu && (!pk->gpu_valid || gpu_used > pk->gpu_used_bytes))
            pk->gpu_used_bytes = gpu_used;
        if (gpu_proc_ok && gpu_proc > pk->gpu_process_used_bytes)
            pk->gpu_process_used_bytes = gpu_proc;
        pk->gpu_valid = pk->gpu_valid || gpu;
    }
    if (s->running) {
        memcpy(&s->latest, snap, ms__snap_len(snap));
        s->have_latest = true;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Takes one sample (full figures, or statm on top of the last full ones) into out. */
static int ms__sample(ms_sampler *s, bool full, uint64_t t0, ms_sample *out)
{
    /* A full sample walks the page tables (PSS, USS) when the walk budget allows it. */
    bool walk = full && !s->walk_denied && (!s->walk_budget || t0 >= s->walk_next);
    unsigned what = MS_CAPTURE_BASIC;
    if (full)
        what = (MS_CAPTURE_FULL & ~(unsigned)MS_CAPTURE_PSS) |
               (s->flags & MS_SAMPLER_NO_GPU ? 0u : MS_CAPTURE_GPU);
    ms_snapshot *dst = full ? &s->snap : &s->light;
    const char *note = NULL;
    int rc = ms_capture(s->s, s->pid, what, dst);
    uint64_t walk_ns = 0;  /* the walks' CPU time (not the other reads, not the tree's scan, not
                              the time another process had the core) */
    if (rc == 0 && walk) { /* the walk apart, into s->light, to time it alone */
        uint64_t cpu0 = ms__clock(CLOCK_THREAD_CPUTIME_ID);
        rc = ms_capture(s->s, s->pid, MS_CAPTURE_PSS, &s->light);
        walk_ns = ms__clock(CLOCK_THREAD_CPUTIME_ID) - cpu0;
        /* another user's process, or one without an address space (a kernel thread):
         * sampled all the same, PSS null */
        if (rc == MS_EACCES || rc == MS_ENOTSUP) {
            snprintf(s->note, sizeof(s->note), "%s", ms_session_error(s->s));
            note = s->note;
            s->walk_denied = true;
            walk = false;
            rc = 0;
        }
    }
    if (rc) {
        if (full)
            s->have_full = false;
        return ms__error(rc, "%s", ms_session_error(s->s));
    }
    if (!full) { /* statm, on top of the last full figures */
        ms_snapshot *snap = &s->snap;
        const struct ms__field *pf = ms__sections[MS__SEC_PROCESS].fields;
        uint64_t statm = 0;
        snap->timestamp_ns = dst->timestamp_ns;
        snap->monotonic_ns = dst->monotonic_ns;
        snap->pid = dst->pid;
        for (int k = 0; k < MS__STATM_FIELDS; k++) {
            *(uint64_t *)(void *)((char *)snap + pf[k].snap_offset) = ms__snap_value(dst, &pf[k]);
            statm |= 1ull << pf[k].bit;
        }
        snap->process.valid = (snap->process.valid & ~statm) | (dst->process.valid & statm);
    } else {
        s->have_full = true;
        ms__walk_keep(s, walk ? &s->light : NULL);
    }
    const ms_process_mem *p = &s->snap.process;
    if (ms_valid(p, MS_PF_vms_bytes) && p->vms_bytes == 0 && ms__zombie(s))
        return ms__error(MS_ESRCH, "process %d has exited (a zombie)", (int)s->pid);
    if (full && (s->flags & MS_SAMPLER_TREE))
        walk_ns += ms__tree_scan(s, walk);
    if (walk) /* the next walk waits MS__WALK_FACTOR times the CPU the walks took */
        s->walk_next = t0 + MS__WALK_FACTOR * walk_ns;
    bool tree = full && (s->flags & MS_SAMPLER_TREE) && s->tree_ok;
    *out = (ms_sample){.size = sizeof(*out),
                       .seq = s->seq++,
                       .full = full,
                       .walked = walk,
                       .pss_time_ns = s->walk_time,
                       .snap = &s->snap,
                       .tree_valid = tree,
                       .tree_count = tree ? s->nmembers : 0,
                       .tree = tree ? s->members : NULL,
                       .note = note};
    if (s->flight)
        ms__flight_push(s->flight, &s->snap);
    ms__windows_update(s, walk);
    return 0;
}

/* ms_sampler_take without the check of the calling thread. */
static int ms__sampler_take(ms_sampler *s, ms_sample *out)
{
    uint64_t now = ms__clock(CLOCK_MONOTONIC);
    if (!s->begun) {
        s->begun = true;
        s->next = now;
    }
    bool full =
        !(s->flags & MS_SAMPLER_LIGHT) && (!s->have_full || now - s->last_full >= s->full_ns);
    ms_sample scratch;
    int rc = ms__sample(s, full, now, out ? out : &scratch);
    if (rc == 0 && full)
        s->last_full = now;
    s->next += s->interval_ns;
    if (s->next <= now) /* late (a slow read, a stopped process): skip the missed ticks */
        s->next += ((now - s->next) / s->interval_ns + 1) * s->interval_ns;
    return rc;
}

int ms_sampler_take(ms_sampler *s, ms_sample *out)
{
    if (!s)
        return ms__error(MS_EINVAL, "ms_sampler_take: no sampler");
    pthread_mutex_lock(&s->mu);
    bool running = s->running;
    pthread_mutex_unlock(&s->mu);
    if (running)
        return ms__error(MS_EINVAL, "the sampler runs on its own thread: read its windows");
    if (out && out->size && out->size < sizeof(*out))
        return ms__error(MS_EINVAL, "ms_sampler_take: a sample of another size");
    return ms__sampler_take(s, out);
}

/* Sleeps until CLOCK_MONOTONIC at, whatever signals come; not at all when it has passed (a
 * clock_nanosleep for a past time still costs a trip through the kernel's timers). */
static void ms__sleep_until(uint64_t at)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if ((uint64_t)ts.tv_sec * MS__NS_PER_S + (uint64_t)ts.tv_nsec >= at)
        return;
    ts = (struct timespec){(time_t)(at / MS__NS_PER_S), (long)(at % MS__NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int ms_sampler_next(ms_sampler *s, ms_sample *out)
{
    if (s && s->begun && !s->running)
        ms__sleep_until(s->next);
    return ms_sampler_take(s, out);
}

static void *ms__sampler_main(void *arg)
{
    ms_sampler *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        uint64_t now = ms__clock(CLOCK_MONOTONIC);
        if (s->begun && now < s->next) {
            struct timespec ts = {(time_t)(s->next / MS__NS_PER_S), (long)(s->next % MS__NS_PER_S)};
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        int rc = ms__sampler_take(s, NULL);
        pthread_mutex_lock(&s->mu);
        if (rc == MS_ESRCH) /* the process is gone: nothing more to sample */
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int ms_sampler_start(ms_sampler *s)
{
    if (!s)
        return ms__error(MS_EINVAL, "ms_sampler_start: no sampler");
    pthread_mutex_lock(&s->mu);
    if (s->running) {
        pthread_mutex_unlock(&s->mu);
        return ms__error(MS_EINVAL, "the sampler is already started");
    }
    s->stop = false;
    s->running = true;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the caller's threads */
    int e = pthread_create(&s->thread, NULL, ms__sampler_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        s->running = false;
    pthread_mutex_unlock(&s->mu);
    return e ? ms__error(MS_ENOMEM, "cannot start the sampler's thread: %s", strerror(e)) : 0;
}

void ms_sampler_stop(ms_sampler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    bool running = s->running;
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (running)
        pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->mu);
    s->running = false;
    pthread_mutex_unlock(&s->mu);
}

int ms_sampler_latest(ms_sampler *s, ms_snapshot *out)
{
    if (!s || !out)
        return ms__error(MS_EINVAL, "ms_sampler_latest: no sampler or no snapshot");
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    const ms_snapshot *from =
        s->running ? (s->have_latest ? &s->latest : NULL) : (s->seq ? &s->snap : NULL);
    if (from) {
        uint32_t size = out->size;
        memcpy(out, from, ms__snap_len(from));
        out->size = size ? size : (uint32_t)sizeof(*out);
    } else {
        rc = ms__error(MS_ENOENT, "no sample taken yet");
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ms_sampler_window_open(ms_sampler *s, unsigned *id)
{
    if (!s || !id)
        return ms__error(MS_EINVAL, "ms_sampler_window_open: no sampler or no id");
    pthread_mutex_lock(&s->mu);
    size_t i = 0;
    while (i < s->nwin && s->win[i].used)
        i++;
    if (i == s->nwin) {
        size_t n = s->nwin ? s->nwin * 2 : 8;
        struct ms__window *w = n < UINT32_MAX ? realloc(s->win, n * sizeof(*w)) : NULL;
        if (!w) {
            pthread_mutex_unlock(&s->mu);
            return ms__error(MS_ENOMEM, "out of memory");
        }
        memset(w + s->nwin, 0, (n - s->nwin) * sizeof(*w));
        s->win = w;
        s->nwin = n;
    }
    s->win[i] = (struct ms__window){.used = true, .peak = {.size = sizeof(ms_peak)}};
    pthread_mutex_unlock(&s->mu);
    *id = (unsigned)i;
    return 0;
}

/* Reads window id (closing it when close); MS_EINVAL when it is not open. */
static int ms__window_get(ms_sampler *s, unsigned id, ms_peak *out, bool close)
{
    if (!s)
        return ms__error(MS_EINVAL, "no sampler");
    pthread_mutex_lock(&s->mu);
    if (id >= s->nwin || !s->win[id].used) {
        pthread_mutex_unlock(&s->mu);
        return ms__error(MS_EINVAL, "no open sampler window %u", id);
    }
    ms_peak pk = s->win[id].peak;
    if (close)
        s->win[id].used = false;
    pthread_mutex_unlock(&s->mu);
    if (out) {
        size_t n = out->size && out->size < sizeof(pk) ? out->size : sizeof(pk);
        pk.size = n;
        memcpy(out, &pk, n);
    }
    return 0;
}

int ms_sampler_window_read(ms_sampler *s, unsigned id, ms_peak *out)
{
    return ms__window_get(s, id, out, false);
}

int ms_sampler_window_close(ms_sampler *s, unsigned id, ms_peak *out)
{
    return ms__window_get(s, id, out, true);
}

void ms_sampler_close(ms_sampler *s)
{
    if (!s)
        return;
    ms_sampler_stop(s);
    if (s->own_session)
        ms_session_close(s->s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->members);
    free(s->prev);
    free(s->win);
    free(s);
}
