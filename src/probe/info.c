/*
 * info.c - what each probe can measure on this host, for `memsnap info`.
 *
 * Each probe is tried once against the session's roots (open, then close) and described by
 * the fields it fills, or by why it cannot run.
 */
#include "../core/internal.h"

#include <string.h>
#include <unistd.h>

/* Appends one entry when there is room; always counts it. */
static void ms__probe_add(ms_probe_info *out, size_t n, int *count, const char *name,
                          bool available, const char *detail)
{
    if ((size_t)*count < n) {
        ms_probe_info *p = &out[*count];
        snprintf(p->name, sizeof(p->name), "%s", name);
        p->available = available;
        snprintf(p->detail, sizeof(p->detail), "%s", detail);
    }
    (*count)++;
}

/* True when <procfs>/<pid|self>/<file> can be opened for reading. */
static bool ms__proc_readable(ms_session *s, pid_t pid, const char *file)
{
    char rel[64];
    if (pid)
        snprintf(rel, sizeof(rel), "%d/%s", (int)pid, file);
    else
        snprintf(rel, sizeof(rel), "self/%s", file);
    int fd = ms__open_at_root(s->procfs, rel);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

int ms_session_probes(ms_session *s, pid_t pid, ms_probe_info *out, size_t n)
{
    static const struct {
        const char *file;
        const char *measures;
    } files[] = {
        {"statm", "RSS, VMS, shared, text, data (basic capture: one read)"},
        {"status", "peak RSS and VMS, swap, RSS anon/file/shmem, threads"},
        {"stat", "minor and major page faults"},
    };
    int count = 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        bool ok = ms__proc_readable(s, pid, files[i].file);
        ms__probe_add(out, n, &count, files[i].file, ok,
                      ok ? files[i].measures : "cannot be read for this process");
    }
    if (ms__proc_readable(s, pid, "smaps_rollup"))
        ms__probe_add(out, n, &count, "smaps_rollup", true, "PSS and USS");
    else if (ms__proc_readable(s, pid, "smaps"))
        ms__probe_add(out, n, &count, "smaps", true,
                      "PSS and USS summed over every mapping (no smaps_rollup: Linux < 4.14)");
    else
        ms__probe_add(out, n, &count, "smaps_rollup", false,
                      "neither smaps_rollup nor smaps can be read: PSS and USS unavailable");

    int mfd = ms__open_at_root(s->procfs, "meminfo");
    bool mem = mfd >= 0;
    if (mem)
        close(mfd);
    ms__probe_add(out, n, &count, "meminfo", mem,
                  mem ? "system total, available, free, swap total and free"
                      : "meminfo cannot be read");

    char detail[256];
    struct ms__slot *slot = ms__slot_get(s, pid);
    slot->last_use = ++s->tick;
    int rc = ms__cgroup_resolve(s, slot);
    if (rc) {
        snprintf(detail, sizeof(detail), "%s", s->err);
        ms__probe_add(out, n, &count, "cgroup", false, detail);
    } else if (slot->cg_version == MS_CGROUP_NONE) {
        ms__probe_add(out, n, &count, "cgroup", false,
                      "no memory cgroup found (no v1 memory controller or v2 memory.current "
                      "mounted for this process)");
    } else {
        snprintf(detail, sizeof(detail), "v%d %s at %s: usage, limit, peak%s, OOM kills",
                 (int)slot->cg_version, slot->cg_path, slot->cg_dir,
                 slot->cg_fd[MS__CG_PEAK] >= 0 ? "" : " (no peak file: Linux < 5.19)");
        ms__probe_add(out, n, &count, "cgroup", true, detail);
    }
    return count;
}
