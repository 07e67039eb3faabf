/*
 * proc.c - the per-process probe: /proc/PID/{statm,status,stat,smaps_rollup}.
 *
 * A basic capture is one pread of statm on a kept-open descriptor. A process capture adds
 * status (peaks, swap, RSS breakdown, threads) and stat (page faults); a PSS capture reads
 * smaps_rollup (PSS, USS), or smaps summed over every mapping on kernels older than 4.14 that
 * lack smaps_rollup.
 *
 * A task without an address space (a kernel thread such as kthreadd, or a process between
 * releasing its memory and becoming a zombie) has statm all zeros and a smaps_rollup that reads
 * ESRCH (empty on older kernels): it is not "exited". Its PSS capture fails with MS_ENOTSUP
 * ("no address space") while every other file reads as usual; stat tells it from a zombie.
 */
#include "../core/internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ms__pfile_name[MS__F_COUNT] = {"statm", "status", "stat", "smaps_rollup",
                                                        "cgroup"};

/* Turns a failed open/read of a /proc/PID file into a session error. */
static int ms__proc_error(ms_session *s, struct ms__slot *slot, const char *file, int err)
{
    char path[PATH_MAX];
    ms__proc_path(s, slot->pid, file, path, sizeof(path));
    if (err == ESRCH) {
        pid_t pid = slot->pid;
        ms__slot_close(slot); /* a later capture of this PID starts afresh */
        return ms__fail(s, MS_ESRCH, "process %d exited", (int)pid);
    }
    if (err == ENOENT || err == ENOTDIR) {
        struct stat st;
        int root_err = stat(s->procfs, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (root_err) /* the root is wrong, not the process: say which root, and from where */
            return ms__fail(s, MS_ENOENT, "%s%s: %s",
                            s->procfs_from ? "MEMSNAP_PROCFS=" : "procfs ", s->procfs,
                            root_err == ENOTDIR ? "not a directory" : strerror(root_err));
    }
    if (err == ENOENT) {
        char dir[PATH_MAX];
        struct stat st;
        ms__proc_path(s, slot->pid, "", dir, sizeof(dir));
        if (stat(dir, &st) != 0)
            return ms__fail(s, MS_ESRCH, "process %d does not exist (no %s)",
                            (int)(slot->pid ? slot->pid : s->self_pid), dir);
        return ms__fail(s, MS_ENOENT, "%s: no such file", path);
    }
    if (err == EACCES || err == EPERM)
        return ms__fail(s, MS_EACCES, "%s: permission denied (process %d belongs to another user?)",
                        path, (int)slot->pid);
    return ms__fail(s, ms__errno_code(err), "%s: %s", path, strerror(err));
}

/* Reports a malformed per-process file, named as it was opened. */
static int ms__malformed(ms_session *s, const struct ms__slot *slot, const char *file,
                         const char *why)
{
    char path[PATH_MAX];
    ms__proc_path(s, slot->pid, file, path, sizeof(path));
    return ms__fail(s, MS_EPARSE, "%s: malformed (%s)", path, why);
}

#define MS__PF_KTHREAD 0x00200000u /* stat's flags: a kernel thread (include/linux/sched.h) */

/* After smaps_rollup (or smaps) read ESRCH or nothing: tells a live task without an address
 * space (MS_ENOTSUP, "no address space") from one that is gone (MS_ESRCH) by its stat. */
static int ms__proc_no_mm(ms_session *s, struct ms__slot *slot)
{
    pid_t pid = slot->pid ? slot->pid : s->self_pid;
    ssize_t n = ms__proc_read(s, slot, MS__F_STAT);
    if (n < 0)
        return (int)n; /* "process N exited" when stat is gone too */
    /* comm may hold spaces and parentheses: fields restart after the last ')'. */
    const char *p = memrchr(s->buf, ')', (size_t)n), *end = s->buf + n;
    char state = '?';
    uint64_t flags = 0;
    if (p && end - p > 3) {
        state = p[2];
        p += 3;
        for (int field = 4; field < 9; field++) { /* ppid pgrp session tty_nr tpgid */
            while (p < end && *p == ' ')
                p++;
            while (p < end && *p != ' ')
                p++;
        }
        while (p < end && *p == ' ')
            p++;
        if (!ms__parse_u64(p, end, &flags))
            flags = 0;
    }
    if (state == 'Z' || state == 'X' || state == 'x') {
        ms__slot_close(slot);
        return ms__fail(s, MS_ESRCH, "process %d exited", (int)pid);
    }
    return ms__fail(s, MS_ENOTSUP, "process %d has no address space (%s)", (int)pid,
                    flags & MS__PF_KTHREAD ? "kernel thread" : "exiting");
}

ssize_t ms__proc_read(ms_session *s, struct ms__slot *slot, enum ms__pfile f)
{
    const char *name = ms__pfile_name[f];
    bool kept = slot->fd[f] >= 0;
    if (!kept) {
        char rel[64];
        if (slot->pid == 0)
            snprintf(rel, sizeof(rel), "self/%s", name);
        else
            snprintf(rel, sizeof(rel), "%d/%s", (int)slot->pid, name);
        int fd = ms__open_at_root(s->procfs, rel);
        if (fd == -ENOENT && f == MS__F_SMAPS) {
            /* Kernels before 4.14: sum smaps instead. */
            name = "smaps";
            snprintf(rel, sizeof(rel), slot->pid ? "%d/smaps" : "self/smaps", (int)slot->pid);
            fd = ms__open_at_root(s->procfs, rel);
            slot->smaps_full = fd >= 0;
        }
        if (fd == -ESRCH && f == MS__F_SMAPS)
            return ms__proc_no_mm(s, slot);
        if (fd < 0)
            return ms__proc_error(s, slot, name, -fd);
        slot->fd[f] = fd;
    }
    ssize_t n = ms__read_fd(s, slot->fd[f]);
    if (n == -ESRCH && kept && f == MS__F_SMAPS) {
        /* smaps_rollup reads the address space it was opened on, which an exec replaces: a
         * kept descriptor then reads ESRCH though the process lives. Open it again, once. */
        close(slot->fd[f]);
        slot->fd[f] = -1;
        return ms__proc_read(s, slot, f);
    }
    if (n == -ESRCH && f == MS__F_SMAPS) /* no mm: a kernel thread, or a process exiting */
        return ms__proc_no_mm(s, slot);
    if (n < 0)
        return ms__proc_error(s, slot, name, (int)-n);
    return n;
}

int ms__proc_basic(ms_session *s, struct ms__slot *slot, ms_snapshot *snap)
{
    ssize_t n = ms__proc_read(s, slot, MS__F_STATM);
    if (n < 0)
        return (int)n;
    /* size resident shared text lib data dt, in pages */
    uint64_t v[7];
    const char *p = s->buf, *end = s->buf + n;
    for (int i = 0; i < 7; i++) {
        p = ms__parse_u64(p, end, &v[i]);
        if (!p || (i < 6 && (p >= end || *p != ' ')))
            return ms__malformed(s, slot, "statm", "expected 7 page counts");
        p++;
    }
    uint64_t page = (uint64_t)s->page_size;
    for (int i = 0; i < 7; i++) /* a page count no byte count can hold (a corrupt tree) */
        if (v[i] > UINT64_MAX / page)
            return ms__malformed(s, slot, "statm", "a page count overflows bytes");
    ms_process_mem *m = &snap->process;
    m->vms_bytes = v[0] * page;
    m->rss_bytes = v[1] * page;
    m->shared_bytes = v[2] * page;
    m->text_bytes = v[3] * page;
    m->data_bytes = v[5] * page;
    m->valid |= (UINT64_C(1) << MS_PF_vms_bytes) | (UINT64_C(1) << MS_PF_rss_bytes) |
                (UINT64_C(1) << MS_PF_shared_bytes) | (UINT64_C(1) << MS_PF_text_bytes) |
                (UINT64_C(1) << MS_PF_data_bytes);
    return 0;
}

static const struct ms__key ms__status_keys[] = {
    MS__KEY("VmPeak", MS_PF_peak_vms_bytes),  MS__KEY("VmHWM", MS_PF_peak_rss_bytes),
    MS__KEY("VmSwap", MS_PF_swap_bytes),      MS__KEY("RssAnon", MS_PF_rss_anon_bytes),
    MS__KEY("RssFile", MS_PF_rss_file_bytes), MS__KEY("RssShmem", MS_PF_rss_shmem_bytes),
    MS__KEY("Threads", MS_PF_threads),
};

enum { MS__SM_PSS, MS__SM_PRIV_CLEAN, MS__SM_PRIV_DIRTY };
static const struct ms__key ms__smaps_keys[] = {
    MS__KEY("Pss", MS__SM_PSS),
    MS__KEY("Private_Clean", MS__SM_PRIV_CLEAN),
    MS__KEY("Private_Dirty", MS__SM_PRIV_DIRTY),
};

/* Copies the values whose bits are in found into the process section. */
static void ms__process_store(ms_process_mem *m, const uint64_t *vals, uint64_t found)
{
#define X(name, unit, label, desc)                                                                 \
    if (found >> MS_PF_##name & 1u)                                                                \
        m->name = vals[MS_PF_##name];
    MS_PROCESS_FIELDS(X)
#undef X
    m->valid |= found;
}

static int ms__proc_stat(ms_session *s, struct ms__slot *slot, ms_snapshot *snap)
{
    ssize_t n = ms__proc_read(s, slot, MS__F_STAT);
    if (n < 0)
        return (int)n;
    /* comm may hold spaces and parentheses: fields restart after the last ')'. */
    const char *end = s->buf + n;
    const char *p = memrchr(s->buf, ')', (size_t)n);
    uint64_t minflt = 0, majflt = 0;
    bool ok = p != NULL;
    if (ok)
        p++;
    for (int field = 3; ok && field <= 12; field++) {
        while (p < end && *p == ' ')
            p++;
        if (field == 10 || field == 12) {
            p = ms__parse_u64(p, end, field == 10 ? &minflt : &majflt);
            ok = p != NULL;
        } else {
            while (p < end && *p != ' ')
                p++;
            ok = p < end;
        }
    }
    if (!ok)
        return ms__malformed(s, slot, "stat", "expected fault counts");
    snap->process.minor_faults = minflt;
    snap->process.major_faults = majflt;
    ms_set_valid(&snap->process, MS_PF_minor_faults);
    ms_set_valid(&snap->process, MS_PF_major_faults);
    return 0;
}

int ms__proc_full(ms_session *s, struct ms__slot *slot, ms_snapshot *snap)
{
    char file[PATH_MAX];
    uint64_t vals[64];
    uint64_t found = 0;

    ssize_t n = ms__proc_read(s, slot, MS__F_STATUS);
    if (n < 0)
        return (int)n;
    ms__proc_path(s, slot->pid, "status", file, sizeof(file));
    int rc =
        ms__scan_keys(s, file, s->buf, (size_t)n, ms__status_keys,
                      sizeof(ms__status_keys) / sizeof(ms__status_keys[0]), vals, &found, false);
    if (rc)
        return rc;
    ms__process_store(&snap->process, vals, found);

    return ms__proc_stat(s, slot, snap);
}

int ms__proc_pss(ms_session *s, struct ms__slot *slot, ms_snapshot *snap)
{
    char file[PATH_MAX];
    ssize_t n = ms__proc_read(s, slot, MS__F_SMAPS);
    if (n < 0)
        return (int)n;
    if (n == 0) /* older kernels show a task without an address space so */
        return ms__proc_no_mm(s, slot);
    ms__proc_path(s, slot->pid, slot->smaps_full ? "smaps" : "smaps_rollup", file, sizeof(file));
    uint64_t sm[3];
    uint64_t found = 0;
    int rc = ms__scan_keys(s, file, s->buf, (size_t)n, ms__smaps_keys, 3, sm, &found, true);
    if (rc)
        return rc;
    if (found >> MS__SM_PSS & 1u) {
        snap->process.pss_bytes = sm[MS__SM_PSS];
        ms_set_valid(&snap->process, MS_PF_pss_bytes);
    }
    if ((found & 6u) == 6u) {
        if (__builtin_add_overflow(sm[MS__SM_PRIV_CLEAN], sm[MS__SM_PRIV_DIRTY],
                                   &snap->process.uss_bytes))
            return ms__fail(s, MS_EPARSE, "%s: Private_Clean + Private_Dirty overflows", file);
        ms_set_valid(&snap->process, MS_PF_uss_bytes);
    }
    return 0;
}
