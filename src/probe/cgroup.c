/*
 * cgroup.c - the memory-cgroup probe, v1 memory controller and v2 unified hierarchy.
 *
 * The process's cgroup comes from /proc/PID/cgroup, the hierarchy's mount point from this
 * process's mountinfo (remapped under the sysfs root so that fixture trees and containers
 * that mount the host's /sys elsewhere work). The v1 memory controller wins when the process
 * has one, as on hybrid hosts whose unified hierarchy carries no memory controller.
 * Descriptors on the four memory.* files stay open in the session's slot.
 */
#include "../core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const char *const ms__cg_v1_files[MS__CG_COUNT] = {
    "memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes",
    "memory.oom_control"};
static const char *const ms__cg_v2_files[MS__CG_COUNT] = {"memory.current", "memory.max",
                                                          "memory.peak", "memory.events"};

/* Limits at or above this mean "no limit" in v1 (PAGE_COUNTER_MAX pages, rounded). */
#define MS__V1_UNLIMITED (UINT64_C(1) << 62)

/* Copies a mountinfo path field, undoing its octal escapes (\040 for a space). */
static void ms__unescape(char *dst, size_t len, const char *src, size_t srclen)
{
    size_t o = 0;
    for (size_t i = 0; i < srclen && o + 1 < len; i++) {
        if (src[i] == '\\' && i + 3 < srclen && src[i + 1] >= '0' && src[i + 1] <= '3' &&
            src[i + 2] >= '0' && src[i + 2] <= '7' && src[i + 3] >= '0' && src[i + 3] <= '7') {
            dst[o++] =
                (char)((src[i + 1] - '0') * 64 + (src[i + 2] - '0') * 8 + (src[i + 3] - '0'));
            i += 3;
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = '\0';
}

/* True when the comma-separated list [p, end) holds word. */
static bool ms__has_word(const char *p, const char *end, const char *word)
{
    size_t wl = strlen(word);
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c)
            c = end;
        if ((size_t)(c - p) == wl && memcmp(p, word, wl) == 0)
            return true;
        p = c + 1;
    }
    return false;
}

/* Records a mount point, moved under the sysfs root when it lies below /sys. */
static void ms__set_mount(ms_session *s, struct ms__cgmount *m, const char *root, size_t rootlen,
                          const char *point, size_t pointlen)
{
    char raw[PATH_MAX];
    ms__unescape(raw, sizeof(raw), point, pointlen);
    ms__unescape(m->root, sizeof(m->root), root, rootlen);
    if (strcmp(s->sysfs, "/sys") != 0 && strncmp(raw, "/sys", 4) == 0 &&
        (raw[4] == '/' || raw[4] == '\0'))
        snprintf(m->point, sizeof(m->point), "%s%s", s->sysfs, raw + 4);
    else
        snprintf(m->point, sizeof(m->point), "%s", raw);
    m->found = true;
}

/* Finds the v1 memory and v2 mounts in <procfs>/self/mountinfo, once per session. */
static void ms__load_mounts(ms_session *s)
{
    if (s->mounts_loaded)
        return;
    s->mounts_loaded = true;
    ssize_t n = ms__read_file(s, s->procfs, "self/mountinfo");
    if (n <= 0)
        return;
    const char *p = s->buf, *end = s->buf + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        /* id parent major:minor root mountpoint options [optional...] - fstype source super */
        const char *f[5];
        size_t fl[5];
        const char *q = p;
        int i;
        for (i = 0; i < 5 && q < eol; i++) {
            const char *sp = memchr(q, ' ', (size_t)(eol - q));
            if (!sp)
                sp = eol;
            f[i] = q;
            fl[i] = (size_t)(sp - q);
            q = sp + 1;
        }
        /* q is past the terminator when the last line ends after exactly five fields */
        const char *dash = i == 5 && q <= eol ? strstr(q, " - ") : NULL;
        if (dash && dash < eol) {
            const char *fs = dash + 3;
            const char *fs_end = memchr(fs, ' ', (size_t)(eol - fs));
            if (fs_end) {
                size_t fslen = (size_t)(fs_end - fs);
                const char *src_end = memchr(fs_end + 1, ' ', (size_t)(eol - fs_end - 1));
                const char *super = src_end ? src_end + 1 : eol;
                if (fslen == 7 && memcmp(fs, "cgroup2", 7) == 0 && !s->v2.found)
                    ms__set_mount(s, &s->v2, f[3], fl[3], f[4], fl[4]);
                else if (fslen == 6 && memcmp(fs, "cgroup", 6) == 0 && !s->v1_memory.found &&
                         ms__has_word(super, eol, "memory"))
                    ms__set_mount(s, &s->v1_memory, f[3], fl[3], f[4], fl[4]);
            }
        }
        p = eol + 1;
    }
}

/* Joins a mount point and a cgroup path; false when the cgroup lies outside the mount. */
static bool ms__cg_dir(const struct ms__cgmount *m, const char *cgpath, char *out, size_t len)
{
    const char *rel = cgpath;
    if (strcmp(m->root, "/") != 0) {
        size_t rl = strlen(m->root);
        if (strncmp(cgpath, m->root, rl) != 0 || (cgpath[rl] != '/' && cgpath[rl] != '\0'))
            return false;
        rel = cgpath + rl;
    }
    int n = snprintf(out, len, "%s%s", m->point, strcmp(rel, "/") == 0 ? "" : rel);
    return n > 0 && (size_t)n < len;
}

/* Opens the memory.* files of dir into the slot; false when the first is missing. */
static bool ms__cg_open(struct ms__slot *slot, const char *dir, const char *const *files)
{
    for (int i = 0; i < MS__CG_COUNT; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        slot->cg_fd[i] = ms__open_file(path);
        if (i == 0 && slot->cg_fd[i] < 0)
            return false;
    }
    snprintf(slot->cg_dir, sizeof(slot->cg_dir), "%s", dir);
    return true;
}

/* FNV-1a over [p, p + n): tells whether /proc/PID/cgroup changed since the last lookup. */
static uint64_t ms__hash(const char *p, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * UINT64_C(1099511628211);
    return h;
}

/* Closes the memory.* descriptors of a slot. */
static void ms__cg_close(struct ms__slot *slot)
{
    for (int i = 0; i < MS__CG_COUNT; i++)
        if (slot->cg_fd[i] >= 0) {
            close(slot->cg_fd[i]);
            slot->cg_fd[i] = -1;
        }
}

/* The memory lines of a /proc/PID/cgroup text (buf, n bytes): the v1 memory controller's path
 * and the unified hierarchy's ("0::/path"), each with whether it was there. Returns 0, or
 * MS_EPARSE naming file (a line without two colons). */
static int ms__cg_parse(ms_session *s, const char *file, const char *buf, size_t n,
                        char v1path[256], bool *has_v1, char v2path[256], bool *has_v2)
{
    *has_v1 = *has_v2 = false;
    const char *p = buf, *end = buf + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        /* hierarchy-id:controller-list:cgroup-path */
        const char *c1 = memchr(p, ':', (size_t)(eol - p));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;
        if (!c2) {
            if (eol > p)
                return ms__fail(s, MS_EPARSE, "%s: malformed line '%.*s'", file, (int)(eol - p), p);
            p = eol + 1;
            continue;
        }
        int plen = (int)(eol - c2 - 1);
        if (c1 - p == 1 && p[0] == '0' && c2 == c1 + 1) {
            snprintf(v2path, 256, "%.*s", plen, c2 + 1);
            *has_v2 = true;
        } else if (ms__has_word(c1 + 1, c2, "memory")) {
            snprintf(v1path, 256, "%.*s", plen, c2 + 1);
            *has_v1 = true;
        }
        p = eol + 1;
    }
    return 0;
}

int ms__cgroup_resolve(ms_session *s, struct ms__slot *slot)
{
    /* One pread of /proc/PID/cgroup per capture: a process moved to another cgroup (systemd,
     * a job runner, `memsnap run`) is followed at once, not when its slot is evicted. */
    ms__load_mounts(s); /* once per session; it uses s->buf, so before the read below */
    ssize_t n = ms__proc_read(s, slot, MS__F_CGROUP);
    if (n < 0)
        return (int)n;
    uint64_t hash = ms__hash(s->buf, (size_t)n);
    if (slot->cg_resolved && slot->cg_hash == hash)
        return 0;
    char file[PATH_MAX];
    ms__proc_path(s, slot->pid, "cgroup", file, sizeof(file));

    char v1path[256] = "", v2path[256] = "";
    bool has_v1, has_v2;
    int rc = ms__cg_parse(s, file, s->buf, (size_t)n, v1path, &has_v1, v2path, &has_v2);
    if (rc)
        return rc;

    char dir[PATH_MAX];
    ms__cg_close(slot);
    slot->cg_resolved = true;
    slot->cg_hash = hash;
    if (has_v1 && s->v1_memory.found && ms__cg_dir(&s->v1_memory, v1path, dir, sizeof(dir)) &&
        ms__cg_open(slot, dir, ms__cg_v1_files)) {
        slot->cg_version = MS_CGROUP_V1;
        snprintf(slot->cg_path, sizeof(slot->cg_path), "%s", v1path);
    } else if (has_v2 && s->v2.found && ms__cg_dir(&s->v2, v2path, dir, sizeof(dir)) &&
               ms__cg_open(slot, dir, ms__cg_v2_files)) {
        slot->cg_version = MS_CGROUP_V2;
        snprintf(slot->cg_path, sizeof(slot->cg_path), "%s", v2path);
    } else {
        ms__cg_close(slot); /* a v1 attempt may have opened some */
        slot->cg_version = MS_CGROUP_NONE;
    }
    return 0;
}

int ms__cgroup_locate(ms_session *s, pid_t pid, struct ms__cgloc *out)
{
    memset(out, 0, sizeof(*out));
    ms__load_mounts(s); /* before the read below: both use s->buf */
    char file[PATH_MAX], rel[64];
    ms__proc_path(s, pid, "cgroup", file, sizeof(file));
    snprintf(rel, sizeof(rel), pid ? "%d/cgroup" : "self/cgroup", (int)pid);
    ssize_t n = ms__read_file(s, s->procfs, rel);
    if (n < 0)
        return ms__fail(s, ms__errno_code((int)-n), "%s: %s", file, strerror((int)-n));
    char v1path[256] = "", v2path[256] = "";
    bool has_v1, has_v2;
    int rc = ms__cg_parse(s, file, s->buf, (size_t)n, v1path, &has_v1, v2path, &has_v2);
    if (rc)
        return rc;
    /* The same preference as ms__cgroup_resolve: the v1 memory controller when there is one. */
    const struct ms__cgmount *m = NULL;
    const char *path = NULL;
    if (has_v1 && s->v1_memory.found &&
        ms__cg_dir(&s->v1_memory, v1path, out->dir, sizeof(out->dir))) {
        out->version = MS_CGROUP_V1;
        m = &s->v1_memory;
        path = v1path;
    } else if (has_v2 && s->v2.found && ms__cg_dir(&s->v2, v2path, out->dir, sizeof(out->dir))) {
        out->version = MS_CGROUP_V2;
        m = &s->v2;
        path = v2path;
    } else {
        out->dir[0] = '\0';
        return 0;
    }
    snprintf(out->path, sizeof(out->path), "%s", path);
    snprintf(out->mount, sizeof(out->mount), "%s", m->point);
    snprintf(out->mount_root, sizeof(out->mount_root), "%s", m->root);
    return 0;
}

/* Reads a one-number cgroup file (or "max"); *unlimited is set for "max". */
static int ms__cg_number(ms_session *s, struct ms__slot *slot, int i, const char *name,
                         uint64_t *out, bool *unlimited)
{
    ssize_t n = ms__read_fd(s, slot->cg_fd[i]);
    if (n < 0)
        return ms__fail(s, ms__errno_code((int)-n), "%s/%s: %s", slot->cg_dir, name,
                        strerror((int)-n));
    const char *end = s->buf + n;
    while (end > s->buf && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (unlimited && end - s->buf == 3 && memcmp(s->buf, "max", 3) == 0) {
        *unlimited = true;
        return 0;
    }
    const char *after = ms__parse_u64(s->buf, end, out);
    if (!after || after != end)
        return ms__fail(s, MS_EPARSE, "%s/%s: malformed (expected a number)", slot->cg_dir, name);
    return 0;
}

int ms__cgroup(ms_session *s, struct ms__slot *slot, ms_snapshot *snap)
{
    int rc = ms__cgroup_resolve(s, slot);
    if (rc)
        return rc;
    ms_cgroup_mem *cg = &snap->cgroup;
    cg->version = slot->cg_version;
    if (slot->cg_version == MS_CGROUP_NONE)
        return 0;
    snprintf(cg->path, sizeof(cg->path), "%s", slot->cg_path);
    const char *const *files = slot->cg_version == MS_CGROUP_V1 ? ms__cg_v1_files : ms__cg_v2_files;
    static const uint8_t field[MS__CG_COUNT] = {MS_CF_current_bytes, MS_CF_max_bytes,
                                                MS_CF_peak_bytes, MS_CF_oom_kills};
    uint64_t *dst[MS__CG_COUNT] = {&cg->current_bytes, &cg->max_bytes, &cg->peak_bytes,
                                   &cg->oom_kills};
    for (int i = 0; i < MS__CG_COUNT; i++) {
        if (slot->cg_fd[i] < 0)
            continue; /* e.g. memory.peak before Linux 5.19 */
        if (i == MS__CG_EVENTS) {
            ssize_t n = ms__read_fd(s, slot->cg_fd[i]);
            if (n < 0)
                return ms__fail(s, ms__errno_code((int)-n), "%s/%s: %s", slot->cg_dir, files[i],
                                strerror((int)-n));
            static const struct ms__key key[] = {MS__KEY("oom_kill", 0)};
            char file[PATH_MAX];
            snprintf(file, sizeof(file), "%s/%s", slot->cg_dir, files[i]);
            uint64_t v[1], found = 0;
            rc = ms__scan_keys(s, file, s->buf, (size_t)n, key, 1, v, &found, false);
            if (rc)
                return rc;
            if (found) {
                cg->oom_kills = v[0];
                ms_set_valid(cg, MS_CF_oom_kills);
            }
            continue;
        }
        bool unlimited = false;
        rc = ms__cg_number(s, slot, i, files[i], dst[i], i == MS__CG_MAX ? &unlimited : NULL);
        if (rc)
            return rc;
        if (i == MS__CG_MAX && (unlimited || *dst[i] >= MS__V1_UNLIMITED)) {
            cg->unlimited = true;
            continue;
        }
        ms_set_valid(cg, field[i]);
    }
    return 0;
}
