/*
 * snapshot.c - snapshot set-up and the delta of two snapshots.
 *
 * The delta is expanded from the same field lists as the structs, so a new metric gets its
 * delta for free: after - before, valid only when both sides are. A difference past int64_t
 * (figures near 2^64 read from a crafted JSON snapshot) is saturated to INT64_MAX or
 * INT64_MIN, never wrapped to the other sign.
 */
#include "internal.h"

#include <string.h>

void ms_snapshot_init(ms_snapshot *snap)
{
    memset(snap, 0, sizeof(*snap));
    snap->size = sizeof(*snap);
    snap->version = MS_SNAPSHOT_VERSION;
}

void ms_snapshot_set_label(ms_snapshot *snap, const char *label)
{
    snprintf(snap->label, sizeof(snap->label), "%s", label ? label : "");
}

/* The field tables every sink and report walks. */
#define MS__FIELD_ROW(sec, prefix, name, unit, label)                                              \
    {#name,                                                                                        \
     label,                                                                                        \
     unit,                                                                                         \
     prefix##name,                                                                                 \
     offsetof(ms_snapshot, sec.name),                                                              \
     offsetof(ms_delta, sec.name)},

static const struct ms__field ms__process_fields[] = {
#define X(name, unit, label, desc) MS__FIELD_ROW(process, MS_PF_, name, unit, label)
    MS_PROCESS_FIELDS(X)
#undef X
};
static const struct ms__field ms__system_fields[] = {
#define X(name, unit, label, desc) MS__FIELD_ROW(system, MS_SF_, name, unit, label)
    MS_SYSTEM_FIELDS(X)
#undef X
};
static const struct ms__field ms__cgroup_fields[] = {
#define X(name, unit, label, desc) MS__FIELD_ROW(cgroup, MS_CF_, name, unit, label)
    MS_CGROUP_FIELDS(X)
#undef X
};

const struct ms__field ms__gpu_fields[MS_GF__COUNT] = {
#define X(name, unit, label, desc)                                                                 \
    {#name, label, unit, MS_GF_##name, offsetof(ms_gpu, name), offsetof(ms_gpu_delta, name)},
    MS_GPU_FIELDS(X)
#undef X
};

/* after - before as a signed difference, saturated at INT64_MIN and INT64_MAX. */
static int64_t ms__sat_diff(uint64_t after, uint64_t before)
{
    if (after >= before)
        return after - before > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(after - before);
    return before - after > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(before - after);
}

/* The delta of the GPUs present (same index and backend) in both snapshots. */
static void ms__gpu_delta_compute(const ms_snapshot *before, const ms_snapshot *after,
                                  ms_delta *out)
{
    if (!(before->captured & after->captured & MS_CAPTURE_GPU))
        return;
    for (uint32_t i = 0; i < after->gpu_count && i < MS_GPU_MAX; i++) {
        const ms_gpu *a = &after->gpus[i];
        const ms_gpu *b = NULL;
        for (uint32_t k = 0; k < before->gpu_count && k < MS_GPU_MAX && !b; k++)
            if (before->gpus[k].index == a->index &&
                strcmp(before->gpus[k].backend, a->backend) == 0)
                b = &before->gpus[k];
        if (!b)
            continue;
        ms_gpu_delta *d = &out->gpus[out->gpu_count++];
        d->index = a->index;
        d->is_per_process = a->is_per_process && b->is_per_process;
        d->valid = a->valid & b->valid;
        for (int f = 0; f < MS_GF__COUNT; f++)
            if (d->valid >> f & 1u)
                *(int64_t *)(void *)((char *)d + ms__gpu_fields[f].delta_offset) = ms__sat_diff(
                    ms__gpu_value(a, &ms__gpu_fields[f]), ms__gpu_value(b, &ms__gpu_fields[f]));
    }
}

#define MS__SECTION(sec, flags, table)                                                             \
    {                                                                                              \
#sec, flags, offsetof(ms_snapshot, sec.valid), offsetof(ms_delta, sec.valid), table,       \
            sizeof(table) / sizeof(table[0])                                                       \
    }

const struct ms__section ms__sections[MS__SEC_COUNT] = {
    MS__SECTION(process, MS_CAPTURE_BASIC | MS_CAPTURE_PROCESS | MS_CAPTURE_PSS,
                ms__process_fields),
    MS__SECTION(system, MS_CAPTURE_SYSTEM, ms__system_fields),
    MS__SECTION(cgroup, MS_CAPTURE_CGROUP, ms__cgroup_fields),
};

void ms_delta_compute(const ms_snapshot *before, const ms_snapshot *after, ms_delta *out)
{
    memset(out, 0, sizeof(*out));
    out->size = sizeof(*out);
    if (before->monotonic_ns && after->monotonic_ns && after->monotonic_ns >= before->monotonic_ns)
        out->elapsed_ns = ms__sat_diff(after->monotonic_ns, before->monotonic_ns);
    else
        out->elapsed_ns = ms__sat_diff(after->timestamp_ns, before->timestamp_ns);
    for (int i = 0; i < MS__SEC_COUNT; i++) {
        const struct ms__section *sec = &ms__sections[i];
        uint64_t valid =
            ms__section_valid(before, sec, false) & ms__section_valid(after, sec, false);
        *(uint64_t *)(void *)((char *)out + sec->delta_valid_offset) = valid;
        for (size_t k = 0; k < sec->nfields; k++) {
            const struct ms__field *f = &sec->fields[k];
            if (valid >> f->bit & 1u)
                *(int64_t *)(void *)((char *)out + f->delta_offset) =
                    ms__sat_diff(ms__snap_value(after, f), ms__snap_value(before, f));
        }
    }
    ms__gpu_delta_compute(before, after, out);
}
