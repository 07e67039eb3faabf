/*
 * json_read.c - reading back a snapshot written by the JSON sink (jansson).
 *
 * Every field is looked up by the names of the field lists; null or absent leaves it invalid,
 * anything but a non-negative integer is an error naming the field. Duplicate keys are
 * rejected, so a hostile file cannot say two things at once.
 */
#include "sink.h"

#include <jansson.h>
#include <stdarg.h>
#include <string.h>

/* Writes an error into err (when given) and as the thread's last (ms_last_error()); returns
 * MS_EPARSE. */
__attribute__((format(printf, 3, 4))) static int ms__json_err(char *err, size_t errlen,
                                                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ms__verror(MS_EPARSE, fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s", ms_last_error());
    return MS_EPARSE;
}

/* Reads an optional non-negative integer member; 1 when present, 0 when null/absent. */
static int ms__json_u64(json_t *obj, const char *sec, const char *key, uint64_t *out, char *err,
                        size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return ms__json_err(err, errlen, "field %s%s: expected a non-negative integer or null", sec,
                            key);
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* Reads the optional string member key into dst (null/absent: ""); 0, or MS_EPARSE naming
 * the field as `name`. */
static int ms__json_str(json_t *obj, const char *key, const char *name, char *dst, size_t len,
                        char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    dst[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return ms__json_err(err, errlen, "field %s: expected a string or null", name);
    snprintf(dst, len, "%s", json_string_value(v));
    return 0;
}

/* Reads one "gpus" entry into g; 0, or MS_EPARSE naming the field. */
static int ms__json_gpu(json_t *obj, uint32_t i, ms_gpu *g, char *err, size_t errlen)
{
    char prefix[32], name[64];
    snprintf(prefix, sizeof(prefix), "gpus[%u].", (unsigned)i);
    if (!json_is_object(obj))
        return ms__json_err(err, errlen, "field gpus[%u]: expected an object", (unsigned)i);
    uint64_t v;
    int r = ms__json_u64(obj, prefix, "index", &v, err, errlen);
    if (r < 0)
        return r;
    if (r == 0 || v >= MS_GPU_MAX)
        return ms__json_err(err, errlen, "field %sindex: expected 0 to %d", prefix, MS_GPU_MAX - 1);
    g->index = (uint32_t)v;
    static const struct {
        const char *name;
        size_t off, len;
    } strs[] = {{"backend", offsetof(ms_gpu, backend), sizeof(g->backend)},
                {"name", offsetof(ms_gpu, name), sizeof(g->name)},
                {"uuid", offsetof(ms_gpu, uuid), sizeof(g->uuid)},
                {"pci_bus_id", offsetof(ms_gpu, pci_bus_id), sizeof(g->pci_bus_id)}};
    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
        snprintf(name, sizeof(name), "%s%s", prefix, strs[k].name);
        if (ms__json_str(obj, strs[k].name, name, (char *)g + strs[k].off, strs[k].len, err,
                         errlen))
            return MS_EPARSE;
    }
    g->valid = 0;
    for (int f = 0; f < MS_GF__COUNT; f++) {
        const struct ms__field *fd = &ms__gpu_fields[f];
        r = ms__json_u64(obj, prefix, fd->name, (uint64_t *)(void *)((char *)g + fd->snap_offset),
                         err, errlen);
        if (r < 0)
            return r;
        if (r == 1)
            ms_set_valid(g, f);
    }
    json_t *pp = json_object_get(obj, "is_per_process");
    if (pp && !json_is_boolean(pp))
        return ms__json_err(err, errlen, "field %sis_per_process: expected true or false", prefix);
    g->is_per_process = json_is_true(pp);
    json_t *procs = json_object_get(obj, "processes");
    if (procs && !json_is_null(procs) && !json_is_array(procs))
        return ms__json_err(err, errlen, "field %sprocesses: expected an array", prefix);
    g->process_count = 0;
    g->processes_truncated = false;
    size_t n = procs ? json_array_size(procs) : 0;
    for (size_t k = 0; k < n; k++) {
        json_t *p = json_array_get(procs, k);
        snprintf(name, sizeof(name), "%sprocesses[%zu].", prefix, k);
        if (!json_is_object(p))
            return ms__json_err(err, errlen, "field %s: expected an object", name);
        uint64_t pid, used;
        if ((r = ms__json_u64(p, name, "pid", &pid, err, errlen)) < 0)
            return r;
        if (r == 0 || pid > INT32_MAX)
            return ms__json_err(err, errlen, "field %spid: expected a PID", name);
        if ((r = ms__json_u64(p, name, "used_bytes", &used, err, errlen)) < 0)
            return r;
        if (r == 0)
            return ms__json_err(err, errlen, "field %sused_bytes: expected a byte count", name);
        if (k >= MS_GPU_PROC_MAX) {
            g->processes_truncated = true;
            continue;
        }
        g->processes[k].pid = (int32_t)pid;
        g->processes[k].used_bytes = used;
        g->process_count++;
    }
    return 0;
}

/* Reads the optional "gpus" array; 0, or MS_EPARSE naming the field. */
static int ms__json_gpus(json_t *root, ms_snapshot *out, char *err, size_t errlen)
{
    json_t *gpus = json_object_get(root, "gpus");
    out->gpu_count = 0;
    if (!gpus || json_is_null(gpus))
        return 0;
    if (!json_is_array(gpus))
        return ms__json_err(err, errlen, "field gpus: expected an array or null");
    if (json_array_size(gpus) > MS_GPU_MAX)
        return ms__json_err(err, errlen, "field gpus: more than %d GPUs", MS_GPU_MAX);
    for (size_t i = 0; i < json_array_size(gpus); i++) {
        int r = ms__json_gpu(json_array_get(gpus, i), (uint32_t)i, &out->gpus[i], err, errlen);
        if (r)
            return r;
        out->gpu_count++;
    }
    out->captured |= MS_CAPTURE_GPU;
    return 0;
}

int ms_snapshot_from_json(const char *text, size_t len, ms_snapshot *out, char *err, size_t errlen)
{
    if (!text || !out)
        return ms__error(MS_EINVAL, "ms_snapshot_from_json: %s", !text ? "no text" : "no snapshot");
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        return ms__json_err(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    }
    int rc = MS_EPARSE;
    if (!json_is_object(root)) {
        ms__json_err(err, errlen, "expected a JSON object");
        goto out;
    }
    json_t *schema = json_object_get(root, "schema");
    if (!json_is_string(schema) ||
        strncmp(json_string_value(schema), "memsnap.snapshot/", 17) != 0) {
        ms__json_err(err, errlen, "not a memsnap snapshot (no \"schema\": \"%s\")",
                     MS_SNAPSHOT_SCHEMA);
        goto out;
    }
    if (strcmp(json_string_value(schema), MS_SNAPSHOT_SCHEMA) != 0) {
        ms__json_err(err, errlen, "unsupported snapshot schema \"%s\" (this memsnap reads %s)",
                     json_string_value(schema), MS_SNAPSHOT_SCHEMA);
        goto out;
    }
    ms_snapshot_init(out);
    uint64_t v;
    int r;
    if ((r = ms__json_u64(root, "", "timestamp_ns", &out->timestamp_ns, err, errlen)) < 0 ||
        (r = ms__json_u64(root, "", "monotonic_ns", &out->monotonic_ns, err, errlen)) < 0)
        goto out;
    if ((r = ms__json_u64(root, "", "pid", &v, err, errlen)) < 0)
        goto out;
    if (r == 1) {
        if (v > INT32_MAX) {
            ms__json_err(err, errlen, "field pid: out of range");
            goto out;
        }
        out->pid = (int32_t)v;
    }
    json_t *label = json_object_get(root, "label");
    if (label && !json_is_null(label) && !json_is_string(label)) {
        ms__json_err(err, errlen, "field label: expected a string or null");
        goto out;
    }
    if (json_is_string(label))
        ms_snapshot_set_label(out, json_string_value(label));

    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        json_t *obj = json_object_get(root, sec->name);
        if (!obj || json_is_null(obj))
            continue;
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "%s.", sec->name);
        if (!json_is_object(obj)) {
            ms__json_err(err, errlen, "field %s: expected an object", sec->name);
            goto out;
        }
        uint64_t *valid = (uint64_t *)(void *)((char *)out + sec->valid_offset);
        for (size_t k = 0; k < sec->nfields; k++) {
            const struct ms__field *f = &sec->fields[k];
            r = ms__json_u64(obj, prefix, f->name,
                             (uint64_t *)(void *)((char *)out + f->snap_offset), err, errlen);
            if (r < 0)
                goto out;
            if (r == 1)
                *valid |= UINT64_C(1) << f->bit;
        }
        if (*valid)
            out->captured |= sec->capture;
        if (i == MS__SEC_CGROUP) {
            if ((r = ms__json_u64(obj, prefix, "version", &v, err, errlen)) < 0)
                goto out;
            if (r == 1 && v != 1 && v != 2) {
                ms__json_err(err, errlen, "field cgroup.version: expected 1, 2 or null");
                goto out;
            }
            out->cgroup.version = r == 1 ? (ms_cgroup_version)v : MS_CGROUP_NONE;
            json_t *path = json_object_get(obj, "path");
            json_t *unlimited = json_object_get(obj, "unlimited");
            if (path && !json_is_null(path) && !json_is_string(path)) {
                ms__json_err(err, errlen, "field cgroup.path: expected a string or null");
                goto out;
            }
            if (unlimited && !json_is_null(unlimited) && !json_is_boolean(unlimited)) {
                ms__json_err(err, errlen, "field cgroup.unlimited: expected true, false or null");
                goto out;
            }
            if (json_is_string(path))
                snprintf(out->cgroup.path, sizeof(out->cgroup.path), "%s", json_string_value(path));
            out->cgroup.unlimited = json_is_true(unlimited);
            if (out->cgroup.version != MS_CGROUP_NONE)
                out->captured |= MS_CAPTURE_CGROUP;
        }
    }
    if (ms__json_gpus(root, out, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
