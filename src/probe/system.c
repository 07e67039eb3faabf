/*
 * system.c - the system-wide probe: meminfo.
 *
 * One kept-open descriptor on <procfs>/meminfo; MemTotal, MemAvailable, MemFree, SwapTotal
 * and SwapFree become the system section (MemAvailable stays invalid on kernels before 3.14).
 */
#include "../core/internal.h"

#include <string.h>

static const struct ms__key ms__meminfo_keys[] = {
    MS__KEY("MemTotal", MS_SF_total_bytes),     MS__KEY("MemAvailable", MS_SF_available_bytes),
    MS__KEY("MemFree", MS_SF_free_bytes),       MS__KEY("SwapTotal", MS_SF_swap_total_bytes),
    MS__KEY("SwapFree", MS_SF_swap_free_bytes),
};

int ms__system(ms_session *s, ms_snapshot *snap)
{
    if (s->meminfo_fd < 0) {
        int fd = ms__open_at_root(s->procfs, "meminfo");
        if (fd < 0)
            return ms__fail(s, ms__errno_code(-fd), "%s/meminfo: %s", s->procfs, strerror(-fd));
        s->meminfo_fd = fd;
    }
    ssize_t n = ms__read_fd(s, s->meminfo_fd);
    if (n < 0)
        return ms__fail(s, ms__errno_code((int)-n), "%s/meminfo: %s", s->procfs, strerror((int)-n));
    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s/meminfo", s->procfs);
    uint64_t vals[MS_SF__COUNT];
    uint64_t found = 0;
    int rc =
        ms__scan_keys(s, file, s->buf, (size_t)n, ms__meminfo_keys,
                      sizeof(ms__meminfo_keys) / sizeof(ms__meminfo_keys[0]), vals, &found, false);
    if (rc)
        return rc;
    if (!(found >> MS_SF_total_bytes & 1u))
        return ms__fail(s, MS_EPARSE, "%s: malformed (no MemTotal)", file);
    ms_system_mem *m = &snap->system;
#define X(name, unit, label, desc)                                                                 \
    if (found >> MS_SF_##name & 1u)                                                                \
        m->name = vals[MS_SF_##name];
    MS_SYSTEM_FIELDS(X)
#undef X
    m->valid = found;
    return 0;
}
