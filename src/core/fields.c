/*
 * fields.c - field reflection: the MS_*_FIELDS lists of memsnap.h as data.
 *
 * Each list is expanded once more, here, into a table of ms_field_info (name, label,
 * description, unit, validity bit, offsets in the section struct and in its delta), and the
 * four tables into ms_field_table rows that say where each section lives in ms_snapshot and
 * ms_delta. ms_fields() hands them out: the bindings walk them instead of keeping their own
 * expansions, so a metric added to a list reaches every front end with no other change.
 */
#include "internal.h"

#include <string.h>

#define MS__INFO_ROW(stype, dtype, prefix, name, unit, label, desc)                                \
    {#name, label, desc, unit, prefix##name, offsetof(stype, name), offsetof(dtype, name)},

#define MS__PROCESS_ROW(n, u, l, d)                                                                \
    MS__INFO_ROW(ms_process_mem, ms_process_delta, MS_PF_, n, u, l, d)
#define MS__SYSTEM_ROW(n, u, l, d) MS__INFO_ROW(ms_system_mem, ms_system_delta, MS_SF_, n, u, l, d)
#define MS__CGROUP_ROW(n, u, l, d) MS__INFO_ROW(ms_cgroup_mem, ms_cgroup_delta, MS_CF_, n, u, l, d)
#define MS__GPU_ROW(n, u, l, d)    MS__INFO_ROW(ms_gpu, ms_gpu_delta, MS_GF_, n, u, l, d)
static const ms_field_info ms__process_info[] = {MS_PROCESS_FIELDS(MS__PROCESS_ROW)};
static const ms_field_info ms__system_info[] = {MS_SYSTEM_FIELDS(MS__SYSTEM_ROW)};
static const ms_field_info ms__cgroup_info[] = {MS_CGROUP_FIELDS(MS__CGROUP_ROW)};
static const ms_field_info ms__gpu_info[] = {MS_GPU_FIELDS(MS__GPU_ROW)};

#define MS__TABLE(id, key, capture_flags, stype, dtype, snap_off, d_off, info)                     \
    {                                                                                              \
        sizeof(ms_field_table), id, key, capture_flags, snap_off, d_off, offsetof(stype, valid),   \
            offsetof(dtype, valid), sizeof(stype), sizeof(dtype), sizeof(info) / sizeof(info[0]),  \
            info                                                                                   \
    }

static const ms_field_table ms__tables[MS_SECTION_COUNT] = {
    MS__TABLE(MS_SECTION_PROCESS, "process", MS_CAPTURE_BASIC | MS_CAPTURE_PROCESS | MS_CAPTURE_PSS,
              ms_process_mem, ms_process_delta, offsetof(ms_snapshot, process),
              offsetof(ms_delta, process), ms__process_info),
    MS__TABLE(MS_SECTION_SYSTEM, "system", MS_CAPTURE_SYSTEM, ms_system_mem, ms_system_delta,
              offsetof(ms_snapshot, system), offsetof(ms_delta, system), ms__system_info),
    MS__TABLE(MS_SECTION_CGROUP, "cgroup", MS_CAPTURE_CGROUP, ms_cgroup_mem, ms_cgroup_delta,
              offsetof(ms_snapshot, cgroup), offsetof(ms_delta, cgroup), ms__cgroup_info),
    MS__TABLE(MS_SECTION_GPU, "gpu", MS_CAPTURE_GPU, ms_gpu, ms_gpu_delta,
              offsetof(ms_snapshot, gpus), offsetof(ms_delta, gpus), ms__gpu_info),
};

int ms_fields(ms_section section, const ms_field_table **out)
{
    if (!out)
        return ms__error(MS_EINVAL, "ms_fields: no table pointer");
    if ((unsigned)section >= MS_SECTION_COUNT)
        return ms__error(MS_EINVAL, "ms_fields: no section %d (0 to %d)", (int)section,
                         MS_SECTION_COUNT - 1);
    *out = &ms__tables[section];
    return 0;
}

const ms_field_info *ms_field_find(ms_section section, const char *name)
{
    const ms_field_table *t;
    if (ms_fields(section, &t) != 0)
        return NULL;
    for (size_t i = 0; name && i < t->count; i++)
        if (strcmp(t->fields[i].name, name) == 0)
            return &t->fields[i];
    ms__error(MS_ENOENT, "no field \"%s\" in section %s", name ? name : "(null)", t->name);
    return NULL;
}
