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

/* Writes an error into err and returns MS_EPARSE. */
__attribute__((format(printf, 3, 4))) static int ms__json_err(char *err, size_t errlen,
                                                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
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
        return ms__json_err(err, errlen, "field %s%s: expected a non-negative integer or null",
                            sec, key);
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

int ms_snapshot_from_json(const char *text, size_t len, ms_snapshot *out, char *err,
                          size_t errlen)
{
    if (!text || !out)
        return MS_EINVAL;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        return ms__json_err(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                            jerr.text);
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
            r = ms__json_u64(obj, prefix, f->name, (uint64_t *)(void *)((char *)out + f->snap_offset),
                             err, errlen);
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
            if (json_is_string(path))
                snprintf(out->cgroup.path, sizeof(out->cgroup.path), "%s", json_string_value(path));
            out->cgroup.unlimited = json_is_true(json_object_get(obj, "unlimited"));
            if (out->cgroup.version != MS_CGROUP_NONE)
                out->captured |= MS_CAPTURE_CGROUP;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}
