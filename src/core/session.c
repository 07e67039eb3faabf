/*
 * session.c - the ms_session handle and ms_capture().
 *
 * A session owns the procfs/sysfs roots, a read buffer and up to MS__SLOTS processes whose
 * /proc and cgroup descriptors stay open between captures (least recently used slot evicted).
 * ms_capture() stamps the time and runs the probes the caller asked for.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS__BUF_INITIAL 8192

/* Bumped in the child of every fork(): a session inherited across fork() notices it, drops the
 * parent's /proc/self descriptors and takes its new PID, without a getpid() per capture. */
static volatile unsigned ms__fork_gen;
static pthread_once_t ms__atfork_once = PTHREAD_ONCE_INIT;

static void ms__atfork_child(void)
{
    ms__fork_gen++;
}

static void ms__atfork_register(void)
{
    pthread_atfork(NULL, NULL, ms__atfork_child);
}

/* Re-establishes self after a fork: slots of the parent's /proc/self are closed. */
static void ms__check_fork(ms_session *s)
{
    if (s->fork_gen == ms__fork_gen)
        return;
    for (int i = 0; i < MS__SLOTS; i++)
        if (s->slots[i].used)
            ms__slot_close(&s->slots[i]);
    s->self_pid = getpid();
    s->fork_gen = ms__fork_gen;
}

/* The root in opt, else in the environment variable env, else def; *from is env when the
 * environment gave it, else NULL. */
static void ms__root(char *dst, size_t len, const char *opt, const char *env, const char *def,
                     const char **from)
{
    const char *v = opt;
    *from = NULL;
    if (!v || !*v) {
        v = getenv(env);
        *from = v && *v ? env : NULL;
    }
    if (!v || !*v)
        v = def;
    snprintf(dst, len, "%s", v);
    size_t n = strlen(dst);
    while (n > 1 && dst[n - 1] == '/')
        dst[--n] = '\0';
}

int ms_session_open(ms_session **out, const ms_options *opts)
{
    if (!out)
        return ms__error(MS_EINVAL, "ms_session_open: no handle pointer");
    *out = NULL;
    if (opts && opts->size != 0 && opts->size < offsetof(ms_options, sysfs) + sizeof(char *))
        return ms__error(MS_EINVAL, "ms_session_open: opts->size %u is too small (%zu or 0)",
                         (unsigned)opts->size, sizeof(ms_options));
    /* device came after sysfs: a caller built before it has a smaller size, and no filter */
    const char *device =
        opts && (opts->size == 0 || opts->size >= offsetof(ms_options, device) + sizeof(char *))
            ? opts->device
            : NULL;
    if (device && (!*device || strlen(device) >= sizeof(((ms_session *)0)->gpu_device)))
        return ms__error(MS_EINVAL, "ms_session_open: device '%s' is %s", device,
                         *device ? "too long" : "empty (NULL: every GPU)");
    ms_session *s = calloc(1, sizeof(*s));
    if (!s)
        return ms__error(MS_ENOMEM, "ms_session_open: out of memory");
    s->buf = malloc(MS__BUF_INITIAL);
    if (!s->buf) {
        free(s);
        return ms__error(MS_ENOMEM, "ms_session_open: out of memory");
    }
    s->cap = MS__BUF_INITIAL;
    pthread_once(&ms__atfork_once, ms__atfork_register);
    s->fork_gen = ms__fork_gen;
    s->self_pid = getpid();
    s->meminfo_fd = -1;
    s->page_size = sysconf(_SC_PAGESIZE);
    if (s->page_size <= 0)
        s->page_size = 4096;
    const char *sysfs_from;
    ms__root(s->procfs, sizeof(s->procfs), opts ? opts->procfs : NULL, "MEMSNAP_PROCFS", "/proc",
             &s->procfs_from);
    ms__root(s->sysfs, sizeof(s->sysfs), opts ? opts->sysfs : NULL, "MEMSNAP_SYSFS", "/sys",
             &sysfs_from);
    if (device)
        snprintf(s->gpu_device, sizeof(s->gpu_device), "%s", device);
    *out = s;
    return 0;
}

void ms__slot_close(struct ms__slot *slot)
{
    for (int i = 0; i < MS__F_COUNT; i++)
        if (slot->fd[i] >= 0)
            close(slot->fd[i]);
    for (int i = 0; i < MS__CG_COUNT; i++)
        if (slot->cg_fd[i] >= 0)
            close(slot->cg_fd[i]);
    memset(slot, 0, sizeof(*slot));
}

void ms_session_close(ms_session *s)
{
    if (!s)
        return;
    for (int i = 0; i < MS__SLOTS; i++)
        if (s->slots[i].used)
            ms__slot_close(&s->slots[i]);
    if (s->meminfo_fd >= 0)
        close(s->meminfo_fd);
    ms__gpu_close(s);
    free(s->buf);
    free(s);
}

const char *ms_session_procfs(const ms_session *s)
{
    return s->procfs;
}

const char *ms_session_sysfs(const ms_session *s)
{
    return s->sysfs;
}

int ms_session_fds(ms_session *s, pid_t pid, unsigned what, int *fds, size_t n)
{
    if (!s || pid < 0 || (n && !fds))
        return ms__error(MS_EINVAL, "ms_session_fds: invalid arguments");
    /* the capture flag each per-process file is read for, in enum ms__pfile's order */
    static const unsigned pfile_what[MS__F_COUNT] = {MS_CAPTURE_BASIC, MS_CAPTURE_PROCESS,
                                                     MS_CAPTURE_PROCESS, MS_CAPTURE_PSS,
                                                     MS_CAPTURE_CGROUP};
    size_t count = 0;
    const struct ms__slot *slot = NULL;
    for (int i = 0; i < MS__SLOTS; i++)
        if (s->slots[i].used && s->slots[i].pid == pid)
            slot = &s->slots[i];
    if (!slot)
        return 0;
    for (int i = 0; i < MS__F_COUNT; i++)
        if ((what & pfile_what[i]) && slot->fd[i] >= 0 && count++ < n)
            fds[count - 1] = slot->fd[i];
    if ((what & MS_CAPTURE_SYSTEM) && s->meminfo_fd >= 0 && count++ < n)
        fds[count - 1] = s->meminfo_fd;
    for (int i = 0; i < MS__CG_COUNT; i++)
        if ((what & MS_CAPTURE_CGROUP) && slot->cg_fd[i] >= 0 && count++ < n)
            fds[count - 1] = slot->cg_fd[i];
    return (int)count;
}

void ms__proc_path(const ms_session *s, pid_t pid, const char *file, char *buf, size_t len)
{
    if (pid == 0)
        snprintf(buf, len, "%s/self/%s", s->procfs, file);
    else
        snprintf(buf, len, "%s/%d/%s", s->procfs, (int)pid, file);
}

struct ms__slot *ms__slot_get(ms_session *s, pid_t pid)
{
    struct ms__slot *victim = &s->slots[0];
    for (int i = 0; i < MS__SLOTS; i++) {
        struct ms__slot *slot = &s->slots[i];
        if (slot->used && slot->pid == pid)
            return slot;
        if (!slot->used)
            victim = slot;
        else if (victim->used && slot->last_use < victim->last_use)
            victim = slot;
    }
    if (victim->used)
        ms__slot_close(victim);
    victim->used = true;
    victim->pid = pid;
    for (int i = 0; i < MS__F_COUNT; i++)
        victim->fd[i] = -1;
    for (int i = 0; i < MS__CG_COUNT; i++)
        victim->cg_fd[i] = -1;
    return victim;
}

static uint64_t ms__clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int ms__capture(ms_session *s, pid_t pid, unsigned what, ms_snapshot *snap);

int ms_capture(ms_session *s, pid_t pid, unsigned what, ms_snapshot *snap)
{
    if (!s)
        return ms__error(MS_EINVAL, "ms_capture: no session");
    if (!snap || pid < 0 || snap->size < sizeof(ms_snapshot) ||
        (what & ~(unsigned)(MS_CAPTURE_FULL | MS_CAPTURE_GPU)) != 0)
        return ms__fail(s, MS_EINVAL, "invalid capture request (%s)",
                        !snap     ? "no snapshot"
                        : pid < 0 ? "negative pid"
                        : snap->size < sizeof(ms_snapshot)
                            ? "snapshot not set up by ms_snapshot_init"
                            : "unknown MS_CAPTURE_* flags");
    s->err[0] = '\0';
    int rc = ms__capture(s, pid, what, snap);
    /* every probe names its failure through ms__fail; one that did not still leaves a line,
     * and the thread's message is the session's whatever ran in between */
    if (rc && !s->err[0])
        return ms__fail(s, rc, "capture of pid %d failed: %s", (int)snap->pid, ms_strerror(rc));
    if (rc)
        ms__error(rc, "%s", s->err);
    return rc;
}

/* ms_capture() once its arguments are checked. */
static int ms__capture(ms_session *s, pid_t pid, unsigned what, ms_snapshot *snap)
{
    s->tick++;
    ms__check_fork(s);
    /* Validity bits make clearing the fields unnecessary: reset only the bits. */
    snap->captured = 0;
    snap->process.valid = 0;
    snap->system.valid = 0;
    snap->cgroup.valid = 0;
    snap->cgroup.version = MS_CGROUP_NONE;
    snap->cgroup.unlimited = false;
    snap->cgroup.path[0] = '\0';
    snap->gpu_count = 0; /* each GPU's own validity bits are reset when it is filled */
    snap->pid = pid ? pid : s->self_pid;
    snap->timestamp_ns = ms__clock_ns(CLOCK_REALTIME);
    snap->monotonic_ns = ms__clock_ns(CLOCK_MONOTONIC);

    /* The per-process probes, in the order they have always run. */
    static const struct {
        unsigned what;
        int (*probe)(ms_session *s, struct ms__slot *slot, ms_snapshot *snap);
    } per_process[] = {
        {MS_CAPTURE_BASIC, ms__proc_basic},
        {MS_CAPTURE_PROCESS, ms__proc_full},
        {MS_CAPTURE_PSS, ms__proc_pss},
        {MS_CAPTURE_CGROUP, ms__cgroup},
    };
    int rc = 0;
    if (what & (MS_CAPTURE_BASIC | MS_CAPTURE_PROCESS | MS_CAPTURE_PSS | MS_CAPTURE_CGROUP)) {
        struct ms__slot *slot = ms__slot_get(s, pid);
        slot->last_use = s->tick;
        for (size_t i = 0; i < sizeof(per_process) / sizeof(per_process[0]); i++) {
            if (!(what & per_process[i].what))
                continue;
            if ((rc = per_process[i].probe(s, slot, snap)) != 0)
                return rc;
            snap->captured |= per_process[i].what;
        }
    }
    if (what & MS_CAPTURE_SYSTEM) {
        rc = ms__system(s, snap);
        if (rc)
            return rc;
        snap->captured |= MS_CAPTURE_SYSTEM;
    }
    if (what & MS_CAPTURE_GPU) {
        rc = ms__gpu_capture(s, snap);
        if (rc)
            return rc;
        snap->captured |= MS_CAPTURE_GPU;
    }
    return 0;
}
