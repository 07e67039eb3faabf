/*
 * cglimit.c - a child memory cgroup with a limit, made for one command (`memsnap run
 * --memory-limit`), on the v1 memory controller or the v2 unified hierarchy.
 *
 * The caller's memory cgroup is found the way the snapshot probe finds it (ms__cgroup_locate in
 * src/probe/cgroup.c: <procfs>/self/cgroup and <procfs>/self/mountinfo, mounts remapped under
 * the sysfs root). The child memsnap-<pid>-<seq> is made under that cgroup's directory, or,
 * when that is not possible (v2's "no internal processes" rule, a read-only delegation), under
 * the hierarchy's mount point; the reason for the fallback is kept as a note. v2 gets
 * memory.max (and memory.swap.max 0), v1 memory.limit_in_bytes (and memsw), the same limits
 * `systemd-run -p MemoryMax=` sets. Removal moves leftover processes to the parent and retries
 * rmdir while the kernel still says EBUSY.
 *
 * Fixture trees: when the directory is not on a cgroup filesystem (statfs), control files are
 * created as regular files (the limit files always, the optional ones when the parent has them)
 * and removal deletes the files memsnap knows before rmdir. On cgroupfs nothing is ever created
 * but the child directory itself.
 */
#include "cglimit.h"

#include "../core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define MS__RMDIR_TRIES    100      /* rmdir attempts while the cgroup is busy */
#define MS__RMDIR_PAUSE_NS 10000000 /* between them: 10 ms, 1 s in all */

struct ms_cglimit {
    ms_session *s;            /* reads control files (its buffer) */
    int version;              /* 1 or 2 */
    bool fixture;             /* not on a cgroup filesystem: files are created */
    bool removed;             /* the directory is gone */
    uint64_t limit;           /* bytes, as read back after writing */
    char path[512];           /* as /proc/PID/cgroup shows it */
    char dir[PATH_MAX];       /* the cgroup's directory */
    char parent[PATH_MAX];    /* the directory it was made in */
    char procs[PATH_MAX + 8]; /* where enter writes: <dir>/cgroup.procs or <dir>/tasks */
    char note[768];           /* why the caller's own cgroup was not used, or "" */
};

/* Sequence numbers of the cgroups this process made (memsnap-<pid>-<seq>). */
static atomic_uint ms__cg_seq;

/* Control files a fixture tree may hold in a child; removed before its rmdir. */
static const char *const ms__fixture_files[] = {
    "cgroup.procs",
    "tasks",
    "memory.max",
    "memory.swap.max",
    "memory.current",
    "memory.peak",
    "memory.events",
    "memory.stat",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.usage_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.oom_control",
    "memory.failcnt",
};

/* True when dir/name exists. */
static bool ms__cg_has(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Writes text to dir/name (created 0600 when create is set); returns 0 or a negative errno. */
static int ms__cg_write(const char *dir, const char *name, const char *text, bool create)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int e = w < 0 ? errno : (size_t)w != len ? EIO : 0;
    close(fd);
    return -e;
}

/* Reads a whole control file of dir into cg->s->buf; returns its length or a negative errno. */
static ssize_t ms__cg_read(const ms__cglimit *cg, const char *dir, const char *name)
{
    return ms__read_file(cg->s, dir, name);
}

/* A one-number control file of the cgroup as an int64; -1 when missing or not a number. */
static int64_t ms__cg_number(const ms__cglimit *cg, const char *name)
{
    ssize_t n = ms__cg_read(cg, cg->dir, name);
    if (n <= 0)
        return -1;
    const char *end = cg->s->buf + n;
    while (end > cg->s->buf && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    uint64_t v;
    const char *after = ms__parse_u64(cg->s->buf, end, &v);
    return after == end && v <= INT64_MAX ? (int64_t)v : -1;
}

/* The value of "key N" in a flat-keyed control file of the cgroup; -1 when absent. */
static int64_t ms__cg_key(const ms__cglimit *cg, const char *name, const struct ms__key *key)
{
    ssize_t n = ms__cg_read(cg, cg->dir, name);
    if (n < 0)
        return -1;
    uint64_t v[1], found = 0;
    if (ms__scan_keys(cg->s, name, cg->s->buf, (size_t)n, key, 1, v, &found, false) != 0 ||
        !found || v[0] > INT64_MAX)
        return -1;
    return (int64_t)v[0];
}

/* True when the space-separated list in text holds word. */
static bool ms__cg_listed(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; (p = strstr(p, word)) != NULL; p += wl)
        if ((p == text || p[-1] == ' ' || p[-1] == '+') &&
            (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n'))
            return true;
    return false;
}

/* Removes the fixture files of dir (regular files only ever exist there outside cgroupfs). */
static void ms__cg_unlink_fixture(const char *dir)
{
    for (size_t i = 0; i < sizeof(ms__fixture_files) / sizeof(ms__fixture_files[0]); i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, ms__fixture_files[i]);
        unlink(path);
    }
}

/* Moves every process listed in the cgroup's cgroup.procs to its parent (best effort: a
 * process that exits meanwhile is simply gone). */
static void ms__cg_evacuate(ms__cglimit *cg)
{
    ssize_t n = ms__cg_read(cg, cg->dir, "cgroup.procs");
    if (n <= 0)
        return;
    char *list = strndup(cg->s->buf, (size_t)n);
    if (!list)
        return;
    char *save = NULL;
    for (char *tok = strtok_r(list, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
        ms__cg_write(cg->parent, "cgroup.procs", tok, cg->fixture);
    free(list);
}

/* Makes the child under parent (whose cgroup path is parent_path) and sets its limits.
 * Returns 0, or a negative MS_E* code with the reason in why; leaves nothing behind on failure. */
static int ms__cg_try(ms__cglimit *cg, const char *parent, const char *parent_path, uint64_t limit,
                      char *why, size_t whylen)
{
    struct statfs sf;
    if (statfs(parent, &sf) != 0) {
        snprintf(why, whylen, "%s: %s", parent, strerror(errno));
        return ms__errno_code(errno);
    }
    cg->fixture = sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC;
    snprintf(cg->parent, sizeof(cg->parent), "%s", parent);

    int rc;
    if (cg->version == 2) {
        /* The child has memory.max only when the parent hands the controller down. */
        ssize_t n = ms__cg_read(cg, parent, "cgroup.subtree_control");
        if (n < 0 || !ms__cg_listed(cg->s->buf, "memory")) {
            rc = ms__cg_write(parent, "cgroup.subtree_control", "+memory", false);
            if (rc) {
                snprintf(why, whylen,
                         "%s/cgroup.subtree_control: cannot enable the memory "
                         "controller: %s",
                         parent, strerror(-rc));
                return ms__errno_code(-rc);
            }
        }
    }

    for (int tries = 0;; tries++) {
        unsigned seq = atomic_fetch_add(&ms__cg_seq, 1u);
        snprintf(cg->dir, sizeof(cg->dir), "%s/memsnap-%d-%u", parent, (int)getpid(), seq);
        snprintf(cg->path, sizeof(cg->path), "%s/memsnap-%d-%u",
                 strcmp(parent_path, "/") == 0 ? "" : parent_path, (int)getpid(), seq);
        if (mkdir(cg->dir, 0700) == 0)
            break;
        if (errno != EEXIST || tries >= 64) {
            snprintf(why, whylen, "mkdir %s: %s", cg->dir, strerror(errno));
            return ms__errno_code(errno);
        }
    }

    char text[32];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)limit);
    const char *limit_file = cg->version == 2 ? "memory.max" : "memory.limit_in_bytes";
    const char *failed = limit_file;
    rc = ms__cg_write(cg->dir, limit_file, text, cg->fixture);
    if (!rc && cg->version == 2) {
        /* No swapping past the limit, as systemd-run -p MemorySwapMax=0 would. */
        if (ms__cg_has(cg->dir, "memory.swap.max") ||
            (cg->fixture && ms__cg_has(parent, "memory.swap.max"))) {
            failed = "memory.swap.max";
            rc = ms__cg_write(cg->dir, failed, "0", cg->fixture);
        }
    } else if (!rc) {
        /* memory+swap no higher than memory: no swapping past the limit. The kernel refuses
         * it (EINVAL) without swap accounting or when it would undercut usage (EBUSY): the
         * memory limit stands alone then, which loses nothing the command asked for. */
        if (ms__cg_has(cg->dir, "memory.memsw.limit_in_bytes") ||
            (cg->fixture && ms__cg_has(parent, "memory.memsw.limit_in_bytes"))) {
            rc = ms__cg_write(cg->dir, "memory.memsw.limit_in_bytes", text, cg->fixture);
            if (rc == -EINVAL || rc == -EBUSY)
                rc = 0;
            failed = "memory.memsw.limit_in_bytes";
        }
        /* A child inherits oom_kill_disable: the command must be killed, not frozen. */
        if (!rc && ms__cg_read(cg, cg->dir, "memory.oom_control") > 0 &&
            strstr(cg->s->buf, "oom_kill_disable 1")) {
            failed = "memory.oom_control";
            rc = ms__cg_write(cg->dir, failed, "0", false);
        }
    }
    if (rc) {
        snprintf(why, whylen, "%s/%s: %s", cg->dir, failed, strerror(-rc));
        if (cg->fixture)
            ms__cg_unlink_fixture(cg->dir);
        rmdir(cg->dir);
        return ms__errno_code(-rc);
    }
    int64_t back = ms__cg_number(cg, limit_file); /* the kernel rounds down to pages */
    cg->limit = back > 0 ? (uint64_t)back : limit;

    snprintf(cg->procs, sizeof(cg->procs), "%s/cgroup.procs", cg->dir);
    if (cg->version == 1 && !cg->fixture && !ms__cg_has(cg->dir, "cgroup.procs"))
        snprintf(cg->procs, sizeof(cg->procs), "%s/tasks", cg->dir);
    return 0;
}

int ms__cglimit_create(ms__cglimit **out, const char *procfs, const char *sysfs,
                       uint64_t limit_bytes, char *err, size_t errlen)
{
    char dummy[2];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!out)
        return MS_EINVAL;
    *out = NULL;
    if (limit_bytes == 0 || limit_bytes > INT64_MAX) {
        snprintf(err, errlen, "memory limit out of range: %llu bytes",
                 (unsigned long long)limit_bytes);
        return MS_ERANGE;
    }
    ms__cglimit *cg = calloc(1, sizeof(*cg));
    if (!cg) {
        snprintf(err, errlen, "out of memory");
        return MS_ENOMEM;
    }
    ms_options opts = {.size = sizeof(opts), .procfs = procfs, .sysfs = sysfs};
    int rc = ms_session_open(&cg->s, &opts);
    if (rc) {
        snprintf(err, errlen, "cannot open a session: %s", ms_strerror(rc));
        free(cg);
        return rc;
    }
    struct ms__cgloc loc;
    rc = ms__cgroup_locate(cg->s, 0, &loc);
    if (rc) {
        snprintf(err, errlen, "cannot find this process's memory cgroup: %s",
                 ms_session_error(cg->s));
        goto fail;
    }
    if (loc.version == MS_CGROUP_NONE) {
        snprintf(err, errlen,
                 "no memory cgroup hierarchy: %s/self/cgroup names none that "
                 "%s/self/mountinfo mounts",
                 ms_session_procfs(cg->s), ms_session_procfs(cg->s));
        rc = MS_ENOTSUP;
        goto fail;
    }
    cg->version = loc.version == MS_CGROUP_V2 ? 2 : 1;

    char why_own[1024] = "", why_root[1024] = "";
    rc = ms__cg_try(cg, loc.dir, loc.path, limit_bytes, why_own, sizeof(why_own));
    if (rc == 0) {
        *out = cg;
        return 0;
    }
    if (strcmp(loc.dir, loc.mount) != 0) {
        rc = ms__cg_try(cg, loc.mount, loc.mount_root, limit_bytes, why_root, sizeof(why_root));
        if (rc == 0) {
            snprintf(cg->note, sizeof(cg->note),
                     "made under the hierarchy root, not this process's own cgroup (%s)", why_own);
            snprintf(err, errlen, "%s", cg->note);
            *out = cg;
            return 0;
        }
        snprintf(err, errlen, "no writable memory cgroup hierarchy: %s; %s", why_own, why_root);
    } else {
        snprintf(err, errlen, "no writable memory cgroup hierarchy: %s", why_own);
    }
fail:
    ms_session_close(cg->s);
    free(cg);
    return rc;
}

int ms__cglimit_enter(const ms__cglimit *cg, pid_t pid)
{
    if (!cg || cg->removed)
        return MS_EINVAL;
    /* Digits by hand: a forked child of a threaded parent may call this before exec. */
    char text[16];
    unsigned v = (unsigned)(pid > 0 ? pid : getpid());
    size_t n = sizeof(text);
    do
        text[--n] = (char)('0' + v % 10);
    while ((v /= 10) != 0 && n > 0);
    int fd = open(cg->procs, O_WRONLY | O_CLOEXEC | (cg->fixture ? O_CREAT | O_TRUNC : 0), 0600);
    if (fd < 0)
        return ms__errno_code(errno);
    ssize_t w = write(fd, text + n, sizeof(text) - n);
    int e = w < 0 ? errno : 0;
    close(fd);
    return e ? ms__errno_code(e) : 0;
}

const char *ms__cglimit_path(const ms__cglimit *cg)
{
    return cg->path;
}

const char *ms__cglimit_dir(const ms__cglimit *cg)
{
    return cg->dir;
}

int ms__cglimit_version(const ms__cglimit *cg)
{
    return cg->version;
}

uint64_t ms__cglimit_limit(const ms__cglimit *cg)
{
    return cg->limit;
}

const char *ms__cglimit_note(const ms__cglimit *cg)
{
    return cg->note;
}

int64_t ms__cglimit_oom_kills(const ms__cglimit *cg)
{
    static const struct ms__key key[] = {MS__KEY("oom_kill", 0)};
    return ms__cg_key(cg, cg->version == 2 ? "memory.events" : "memory.oom_control", key);
}

int64_t ms__cglimit_failcnt(const ms__cglimit *cg)
{
    static const struct ms__key key[] = {MS__KEY("max", 0)};
    if (cg->version == 2)
        return ms__cg_key(cg, "memory.events", key);
    /* With memory+swap limited as well, the memsw counter is the one that hits first. */
    int64_t mem = ms__cg_number(cg, "memory.failcnt");
    int64_t memsw = ms__cg_number(cg, "memory.memsw.failcnt");
    return mem < 0 ? memsw : memsw < 0 ? mem : mem + memsw;
}

int64_t ms__cglimit_current(const ms__cglimit *cg)
{
    return ms__cg_number(cg, cg->version == 2 ? "memory.current" : "memory.usage_in_bytes");
}

int64_t ms__cglimit_peak(const ms__cglimit *cg)
{
    return ms__cg_number(cg, cg->version == 2 ? "memory.peak" : "memory.max_usage_in_bytes");
}

int ms__cglimit_remove(ms__cglimit *cg, char *err, size_t errlen)
{
    if (!cg || cg->removed)
        return 0;
    int e = 0;
    for (int i = 0; i < MS__RMDIR_TRIES; i++) {
        ms__cg_evacuate(cg);
        if (rmdir(cg->dir) == 0 || errno == ENOENT) {
            cg->removed = true;
            return 0;
        }
        e = errno;
        if (e == ENOTEMPTY && cg->fixture) {
            ms__cg_unlink_fixture(cg->dir);
            continue;
        }
        if (e != EBUSY)
            break;
        struct timespec ts = {0, MS__RMDIR_PAUSE_NS};
        nanosleep(&ts, NULL);
    }
    if (err && errlen)
        snprintf(err, errlen, "cannot remove cgroup %s: %s", cg->dir, strerror(e));
    return ms__errno_code(e);
}

int ms__cglimit_destroy(ms__cglimit *cg)
{
    if (!cg)
        return 0;
    int rc = ms__cglimit_remove(cg, NULL, 0);
    ms_session_close(cg->s);
    free(cg);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The public API (memsnap.h): the same, errors as the calling thread's last                  */
/* ---------------------------------------------------------------------------------------- */

int ms_cglimit_create(ms_cglimit **out, const char *procfs, const char *sysfs, uint64_t limit_bytes)
{
    char err[512] = "";
    if (!out)
        return ms__error(MS_EINVAL, "ms_cglimit_create: no handle to fill");
    int rc = ms__cglimit_create(out, procfs, sysfs, limit_bytes, err, sizeof(err));
    if (rc) {
        *out = NULL;
        return ms__error(rc, "%s", err[0] ? err : ms_strerror(rc));
    }
    return 0;
}

int ms_cglimit_enter(const ms_cglimit *cg, pid_t pid)
{
    return ms__cglimit_enter(cg, pid);
}

const char *ms_cglimit_path(const ms_cglimit *cg)
{
    return ms__cglimit_path(cg);
}

const char *ms_cglimit_dir(const ms_cglimit *cg)
{
    return ms__cglimit_dir(cg);
}

uint64_t ms_cglimit_limit(const ms_cglimit *cg)
{
    return ms__cglimit_limit(cg);
}

int64_t ms_cglimit_oom_kills(const ms_cglimit *cg)
{
    return ms__cglimit_oom_kills(cg);
}

int64_t ms_cglimit_failcnt(const ms_cglimit *cg)
{
    return ms__cglimit_failcnt(cg);
}

const char *ms_cglimit_note(const ms_cglimit *cg)
{
    return ms__cglimit_note(cg);
}

int ms_cglimit_destroy(ms_cglimit *cg)
{
    if (!cg)
        return 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", cg->dir);
    int rc = ms__cglimit_destroy(cg);
    return rc ? ms__error(rc, "cannot remove cgroup %s: %s", dir, ms_strerror(rc)) : 0;
}
