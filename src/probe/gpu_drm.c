/*
 * gpu_drm.c - the DRM backend: AMD (amdgpu) and Intel (i915, xe) GPUs through sysfs and fdinfo.
 *
 * Cards are <sysfs>/class/drm/cardN whose device/vendor is 0x1002 (AMD) or 0x8086 (Intel),
 * listed once at init; the driver is the name of the device/driver link (or DRIVER= in
 * device/uevent) and the PCI address the name of the device link (or PCI_SLOT_NAME=).
 * amdgpu gives device-wide VRAM in device/mem_info_vram_total and mem_info_vram_used (bytes);
 * i915 and xe have no device-wide total in sysfs, so those fields stay invalid, never 0.
 *
 * Per-process memory comes from the DRM usage stats the kernel prints in
 * <procfs>/PID/fdinfo/FD for DRM file descriptors: "drm-driver:", "drm-pdev:" (matches the
 * card), "drm-client-id:" (several descriptors can share one client: counted once per process)
 * and per memory region "drm-total-<region>", "drm-memory-<region>" (legacy) or
 * "drm-resident-<region>", each "<number> [KiB|MiB]" (no unit: bytes). A client's GPU memory is
 * the sum of its device-local regions (vram*, local*) or, on a GPU without any (integrated),
 * of its system and GTT regions; stolen and cpu regions never count.
 */
#include "gpu.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS__DRM_CARDS   MS_GPU_MAX
#define MS__DRM_REGIONS 12   /* memory regions followed per fdinfo file */
#define MS__DRM_FDINFO  8192 /* bytes read of one fdinfo file */

struct ms__drm_card {
    char dev[PATH_MAX]; /* <sysfs>/class/drm/cardN/device */
    char driver[32];    /* "amdgpu", "i915", "xe" */
    char pci[32];       /* "0000:03:00.0" */
    char name[96];
    char uuid[96];
    bool per_process; /* a client with memory keys was seen at the last refresh */
};

/* One process's share of one card, found by the fdinfo scan. */
struct ms__drm_use {
    int card;
    int32_t pid;
    uint64_t bytes;
};

struct ms__drm {
    const char *procfs; /* the session's root (outlives this state) */
    int ncards;
    struct ms__drm_card cards[MS__DRM_CARDS];
    struct ms__drm_use *uses; /* found by the last refresh */
    size_t nuses, capuses;
    char err[256];
};

/* Reads a small file into buf (NUL-terminated); returns its length or -1. */
static ssize_t ms__drm_read(const char *path, char *buf, size_t len)
{
    int fd = ms__open_file(path);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Reads "<dir>/<file>" as one trimmed line into out; returns 0 or -1. */
static int ms__drm_attr(const char *dir, const char *file, char *out, size_t len)
{
    char path[PATH_MAX], buf[256];
    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
        return -1;
    ssize_t n = ms__drm_read(path, buf, sizeof(buf));
    if (n <= 0)
        return -1;
    const char *eol = memchr(buf, '\n', (size_t)n);
    ms__gpu_copy_trim(out, len, buf, eol ? eol : buf + n);
    return out[0] ? 0 : -1;
}

/* The value of "KEY=value" in a uevent file, or -1. */
static int ms__drm_uevent(const char *dev, const char *key, char *out, size_t len)
{
    char path[PATH_MAX], buf[2048];
    if (snprintf(path, sizeof(path), "%s/uevent", dev) >= (int)sizeof(path))
        return -1;
    ssize_t n = ms__drm_read(path, buf, sizeof(buf));
    size_t klen = strlen(key);
    for (const char *p = buf; n > 0 && p < buf + n;) {
        const char *eol = memchr(p, '\n', (size_t)(buf + n - p));
        if (!eol)
            eol = buf + n;
        if ((size_t)(eol - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            ms__gpu_copy_trim(out, len, p + klen + 1, eol);
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

/* The last path component of the symlink "<dir>/<link>", or -1. */
static int ms__drm_link_name(const char *dir, const char *link, char *out, size_t len)
{
    char path[PATH_MAX], target[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, link) >= (int)sizeof(path))
        return -1;
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return -1;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    snprintf(out, len, "%s", base ? base + 1 : target);
    return 0;
}

/* Reads a sysfs attribute holding a byte count; 0 with *out set, or -1. */
static int ms__drm_bytes(const char *dir, const char *file, uint64_t *out)
{
    char v[64];
    if (ms__drm_attr(dir, file, v, sizeof(v)) != 0)
        return -1;
    return ms__gpu_parse_size(v, v + strlen(v), 1, out);
}

/* True when name is "card" followed by digits only. */
static bool ms__drm_is_card(const char *name)
{
    if (strncmp(name, "card", 4) != 0 || !name[4])
        return false;
    for (const char *p = name + 4; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

static int ms__drm_card_cmp(const void *a, const void *b)
{
    const struct ms__drm_card *x = a, *y = b;
    return strcmp(x->pci, y->pci);
}

/* Lists the AMD and Intel cards under <sysfs>/class/drm. */
static void ms__drm_list(struct ms__drm *d, const char *sysfs)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/class/drm", sysfs);
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *e;
    while ((e = readdir(dp)) && d->ncards < MS__DRM_CARDS) {
        if (!ms__drm_is_card(e->d_name))
            continue;
        struct ms__drm_card *c = &d->cards[d->ncards];
        memset(c, 0, sizeof(*c));
        if (snprintf(c->dev, sizeof(c->dev), "%s/%s/device", dir, e->d_name) >= (int)sizeof(c->dev))
            continue;
        char vendor[16] = "", device[16] = "";
        ms__drm_attr(c->dev, "vendor", vendor, sizeof(vendor));
        ms__drm_attr(c->dev, "device", device, sizeof(device));
        if (ms__drm_link_name(c->dev, "driver", c->driver, sizeof(c->driver)) != 0)
            ms__drm_uevent(c->dev, "DRIVER", c->driver, sizeof(c->driver));
        bool amd = strcmp(vendor, "0x1002") == 0, intel = strcmp(vendor, "0x8086") == 0;
        if (!amd && !intel)
            continue; /* NVIDIA cards belong to NVML; virtual ones have no memory figures */
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (ms__drm_uevent(c->dev, "PCI_SLOT_NAME", c->pci, sizeof(c->pci)) != 0)
            ms__drm_link_name(path, "device", c->pci, sizeof(c->pci));
        if (ms__drm_attr(c->dev, "product_name", c->name, sizeof(c->name)) != 0)
            snprintf(c->name, sizeof(c->name), "%s GPU [%s:%s] (%s)", amd ? "AMD" : "Intel",
                     vendor + 2, device[0] ? device + 2 : "?", c->driver[0] ? c->driver : "?");
        ms__drm_attr(c->dev, "unique_id", c->uuid, sizeof(c->uuid));
        d->ncards++;
    }
    closedir(dp);
    qsort(d->cards, (size_t)d->ncards, sizeof(d->cards[0]), ms__drm_card_cmp);
}

static void ms__drm_shutdown(void *ctx)
{
    struct ms__drm *d = ctx;
    if (!d)
        return;
    free(d->uses);
    free(d);
}

static int ms__drm_init(ms_session *s, void **ctx, char *why, size_t len)
{
    *ctx = NULL;
    struct ms__drm *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(why, len, "out of memory");
        return MS_ENOMEM;
    }
    d->procfs = ms_session_procfs(s);
    ms__drm_list(d, ms_session_sysfs(s));
    if (d->ncards == 0) {
        snprintf(why, len, "no AMD or Intel card under %s/class/drm", ms_session_sysfs(s));
        ms__drm_shutdown(d);
        return MS_ENOTSUP;
    }
    *ctx = d;
    return 0;
}

/* One memory region of one fdinfo file. */
struct ms__drm_region {
    char name[32];
    uint64_t bytes[3]; /* total, memory (legacy), resident */
    unsigned have;     /* bit k: bytes[k] was given */
};

/* The parsed DRM keys of one fdinfo file. */
struct ms__drm_client {
    char driver[32], pdev[32];
    uint64_t id;
    bool has_id;
    int nregions;
    struct ms__drm_region r[MS__DRM_REGIONS];
};

/* Records "<prefix><region>: value" into the client; kind 0 total, 1 memory, 2 resident. */
static void ms__drm_region_set(struct ms__drm_client *c, const char *region, size_t rlen, int kind,
                               const char *v, const char *eol)
{
    uint64_t bytes;
    if (rlen == 0 || rlen >= sizeof(c->r[0].name) || ms__gpu_parse_size(v, eol, 1, &bytes) != 0)
        return;
    int i = 0;
    while (i < c->nregions &&
           !(strlen(c->r[i].name) == rlen && memcmp(c->r[i].name, region, rlen) == 0))
        i++;
    if (i == c->nregions) {
        if (c->nregions == MS__DRM_REGIONS)
            return;
        memcpy(c->r[i].name, region, rlen);
        c->r[i].name[rlen] = '\0';
        c->nregions++;
    }
    c->r[i].bytes[kind] = bytes;
    c->r[i].have |= 1u << kind;
}

/* Parses the drm-* keys of an fdinfo file; returns 0 when it is a DRM client. */
static int ms__drm_parse(const char *buf, size_t len, struct ms__drm_client *c)
{
    static const char *const kinds[3] = {"drm-total-", "drm-memory-", "drm-resident-"};
    memset(c, 0, sizeof(*c));
    for (const char *p = buf, *end = buf + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && eol - p > 4 && memcmp(p, "drm-", 4) == 0) {
            size_t klen = (size_t)(colon - p);
            const char *v = colon + 1;
            if (klen == 10 && memcmp(p, "drm-driver", 10) == 0) {
                ms__gpu_copy_trim(c->driver, sizeof(c->driver), v, eol);
            } else if (klen == 8 && memcmp(p, "drm-pdev", 8) == 0) {
                ms__gpu_copy_trim(c->pdev, sizeof(c->pdev), v, eol);
            } else if (klen == 13 && memcmp(p, "drm-client-id", 13) == 0) {
                c->has_id = ms__gpu_parse_size(v, eol, 1, &c->id) == 0;
            } else {
                for (int k = 0; k < 3; k++) {
                    size_t plen = strlen(kinds[k]);
                    if (klen > plen && memcmp(p, kinds[k], plen) == 0) {
                        ms__drm_region_set(c, p + plen, klen - plen, k, v, eol);
                        break;
                    }
                }
            }
        }
        p = eol + 1;
    }
    return c->driver[0] ? 0 : -1;
}

/* True when a region is device-local memory. */
static bool ms__drm_local(const char *name)
{
    return strncmp(name, "vram", 4) == 0 || strncmp(name, "local", 5) == 0;
}

/* A client's GPU memory in bytes; false when it reports no memory at all. */
static bool ms__drm_client_bytes(const struct ms__drm_client *c, uint64_t *out)
{
    bool any_local = false, any = false;
    for (int i = 0; i < c->nregions; i++)
        any_local |= ms__drm_local(c->r[i].name) && c->r[i].have;
    uint64_t sum = 0;
    for (int i = 0; i < c->nregions; i++) {
        const struct ms__drm_region *r = &c->r[i];
        if (!r->have || strncmp(r->name, "stolen", 6) == 0 || strcmp(r->name, "cpu") == 0)
            continue;
        if (any_local != ms__drm_local(r->name))
            continue;
        int k = (r->have & 1u) ? 0 : (r->have & 2u) ? 1 : 2;
        sum = sum + r->bytes[k] < sum ? UINT64_MAX : sum + r->bytes[k]; /* saturated */
        any = true;
    }
    *out = sum;
    return any;
}

/* The card a client belongs to, by PCI address (or by driver when only one card has it). */
static int ms__drm_match(const struct ms__drm *d, const struct ms__drm_client *c)
{
    int found = -1, by_driver = 0;
    for (int i = 0; i < d->ncards; i++) {
        if (c->pdev[0] && strcmp(c->pdev, d->cards[i].pci) == 0)
            return i;
        if (strcmp(c->driver, d->cards[i].driver) == 0) {
            found = i;
            by_driver++;
        }
    }
    return !c->pdev[0] && by_driver == 1 ? found : -1;
}

/* Appends one process's share of a card; returns 0 or MS_ENOMEM. */
static int ms__drm_add_use(struct ms__drm *d, int card, int32_t pid, uint64_t bytes)
{
    if (d->nuses == d->capuses) {
        size_t ncap = d->capuses ? d->capuses * 2 : 16;
        struct ms__drm_use *nu = realloc(d->uses, ncap * sizeof(*nu));
        if (!nu)
            return MS_ENOMEM;
        d->uses = nu;
        d->capuses = ncap;
    }
    d->uses[d->nuses++] = (struct ms__drm_use){card, pid, bytes};
    return 0;
}

/* True when fd FD of process dir pdir is not a DRM device (its link names something else);
 * an unreadable link is not ruled out, the fdinfo keys decide. */
static bool ms__drm_not_dri(const char *pdir, const char *fd)
{
    char path[PATH_MAX], target[64];
    if (snprintf(path, sizeof(path), "%s/fd/%s", pdir, fd) >= (int)sizeof(path))
        return true;
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return strncmp(target, "/dev/dri/", 9) != 0;
}

/* Scans the fdinfo files of one process; returns 0 or MS_ENOMEM. */
static int ms__drm_scan_pid(struct ms__drm *d, int32_t pid, char *buf)
{
    char pdir[PATH_MAX], dir[PATH_MAX];
    snprintf(pdir, sizeof(pdir), "%s/%d", d->procfs, (int)pid);
    snprintf(dir, sizeof(dir), "%s/fdinfo", pdir);
    DIR *dp = opendir(dir);
    if (!dp)
        return 0; /* exited, or another user's: not ours to see */
    struct ms__drm_seen {
        int card;
        uint64_t id;
    } seen[64];
    int nseen = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && rc == 0) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || ms__drm_not_dri(pdir, e->d_name))
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        ssize_t n = ms__drm_read(path, buf, MS__DRM_FDINFO);
        struct ms__drm_client c;
        if (n <= 0 || ms__drm_parse(buf, (size_t)n, &c) != 0)
            continue;
        int card = ms__drm_match(d, &c);
        uint64_t bytes;
        if (card < 0 || !ms__drm_client_bytes(&c, &bytes))
            continue;
        bool dup = false;
        for (int k = 0; k < nseen && c.has_id; k++)
            dup |= seen[k].card == card && seen[k].id == c.id;
        if (dup)
            continue; /* another descriptor of a client already counted */
        if (c.has_id && nseen < 64)
            seen[nseen++] = (struct ms__drm_seen){card, c.id};
        d->cards[card].per_process = true;
        rc = ms__drm_add_use(d, card, pid, bytes);
    }
    closedir(dp);
    return rc;
}

static int ms__drm_refresh(void *ctx)
{
    struct ms__drm *d = ctx;
    d->nuses = 0;
    for (int i = 0; i < d->ncards; i++)
        d->cards[i].per_process = false;
    DIR *dp = opendir(d->procfs);
    if (!dp) {
        snprintf(d->err, sizeof(d->err), "%s cannot be listed", d->procfs);
        return d->ncards;
    }
    char *buf = malloc(MS__DRM_FDINFO);
    struct dirent *e;
    while (buf && (e = readdir(dp))) {
        uint64_t pid;
        const char *end = e->d_name + strlen(e->d_name);
        if (ms__parse_u64(e->d_name, end, &pid) != end || pid == 0 || pid > INT32_MAX)
            continue;
        if (ms__drm_scan_pid(d, (int32_t)pid, buf) != 0)
            break;
    }
    closedir(dp);
    free(buf);
    return d->ncards;
}

static int ms__drm_sample_device(void *ctx, int i, ms_gpu *g)
{
    struct ms__drm *d = ctx;
    const struct ms__drm_card *c = &d->cards[i];
    snprintf(g->name, sizeof(g->name), "%s", c->name);
    snprintf(g->uuid, sizeof(g->uuid), "%s", c->uuid);
    snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "%s", c->pci);
    if (ms__drm_bytes(c->dev, "mem_info_vram_total", &g->total_bytes) == 0 && g->total_bytes > 0)
        ms_set_valid(g, MS_GF_total_bytes);
    if (ms__drm_bytes(c->dev, "mem_info_vram_used", &g->used_bytes) == 0 &&
        (!ms_valid(g, MS_GF_total_bytes) || g->used_bytes <= g->total_bytes))
        ms_set_valid(g, MS_GF_used_bytes);
    if (ms_valid(g, MS_GF_total_bytes) && ms_valid(g, MS_GF_used_bytes)) {
        g->free_bytes = g->total_bytes - g->used_bytes;
        ms_set_valid(g, MS_GF_free_bytes);
    }
    return 0;
}

static int ms__drm_sample_processes(void *ctx, int i, const ms_gpu *g, struct ms__gpu_procs *out)
{
    struct ms__drm *d = ctx;
    (void)g;
    for (size_t k = 0; k < d->nuses; k++)
        if (d->uses[k].card == i &&
            ms__gpu_procs_add(out, d->uses[k].pid, d->uses[k].bytes, MS__GPU_SUM) != 0)
            return MS_ENOMEM;
    return d->cards[i].per_process ? 1 : 0;
}

static const char *ms__drm_last_error(void *ctx)
{
    return ((struct ms__drm *)ctx)->err;
}

static void ms__drm_caps(void *ctx, struct ms__gpu_caps *caps)
{
    struct ms__drm *d = ctx;
    caps->device_total = caps->device_free = d->ncards > 0;
    for (int i = 0; i < d->ncards; i++) {
        uint64_t v;
        bool total = ms__drm_bytes(d->cards[i].dev, "mem_info_vram_total", &v) == 0;
        caps->device_total &= total;
        caps->device_free &= total;
    }
    caps->per_process = true; /* through fdinfo, where the kernel prints DRM usage stats */
    caps->source = "sysfs + fdinfo";
}

const struct ms__gpu_ops ms__gpu_drm = {
    .name = "drm",
    .init = ms__drm_init,
    .shutdown = ms__drm_shutdown,
    .refresh = ms__drm_refresh,
    .sample_device = ms__drm_sample_device,
    .sample_processes = ms__drm_sample_processes,
    .last_error = ms__drm_last_error,
    .caps = ms__drm_caps,
    .versions = NULL,
};
