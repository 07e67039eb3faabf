/*
 * test_fields.c - field reflection: ms_fields() describes every metric of every section as the
 * X-macro lists declare it, with offsets that reach the very fields of ms_snapshot and ms_delta.
 */
#include "helpers.h"

#include <string.h>

static void every_section_has_a_table_with_its_list_in_order(void **state)
{
    (void)state;
    static const struct {
        ms_section id;
        const char *name;
        size_t count;
        const char *first;
    } want[] = {
        {MS_SECTION_PROCESS, "process", MS_PF__COUNT, "rss_bytes"},
        {MS_SECTION_SYSTEM, "system", MS_SF__COUNT, "total_bytes"},
        {MS_SECTION_CGROUP, "cgroup", MS_CF__COUNT, "current_bytes"},
        {MS_SECTION_GPU, "gpu", MS_GF__COUNT, "total_bytes"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const ms_field_table *t = NULL;
        assert_int_equal(ms_fields(want[i].id, &t), 0);
        assert_non_null(t);
        assert_int_equal(t->size, sizeof(ms_field_table));
        assert_int_equal(t->section, want[i].id);
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->count, want[i].count);
        assert_string_equal(t->fields[0].name, want[i].first);
        for (size_t k = 0; k < t->count; k++) {
            assert_int_equal(t->fields[k].bit, k);
            assert_non_null(t->fields[k].label);
            assert_non_null(t->fields[k].description);
            assert_true(t->fields[k].offset + sizeof(uint64_t) <= t->struct_size);
            assert_true(t->fields[k].delta_offset + sizeof(int64_t) <= t->delta_struct_size);
        }
    }
}

static void a_field_carries_its_label_unit_and_description(void **state)
{
    (void)state;
    const ms_field_info *f = ms_field_find(MS_SECTION_PROCESS, "rss_bytes");
    assert_non_null(f);
    assert_string_equal(f->label, "RSS");
    assert_string_equal(f->description, "resident set size (statm)");
    assert_int_equal(f->unit, MS_UNIT_BYTES);
    assert_int_equal(f->bit, MS_PF_rss_bytes);
    f = ms_field_find(MS_SECTION_CGROUP, "oom_kills");
    assert_non_null(f);
    assert_int_equal(f->unit, MS_UNIT_COUNT);
    assert_string_equal(f->label, "OOM kills");
}

/* A value written through the table's offsets is the struct's field, in snapshot and delta. */
static void offsets_reach_the_fields_of_snapshot_and_delta(void **state)
{
    (void)state;
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    ms_delta d;
    memset(&d, 0, sizeof(d));
    for (int s = 0; s < MS_SECTION_COUNT; s++) {
        const ms_field_table *t;
        assert_int_equal(ms_fields((ms_section)s, &t), 0);
        char *sec = (char *)&snap + t->snapshot_offset;
        char *dsec = (char *)&d + t->delta_offset;
        for (size_t k = 0; k < t->count; k++) {
            uint64_t v = (uint64_t)(s * 100 + k + 1);
            int64_t dv = -(int64_t)v;
            memcpy(sec + t->fields[k].offset, &v, sizeof(v));
            memcpy(dsec + t->fields[k].delta_offset, &dv, sizeof(dv));
        }
        uint64_t all = 1;
        memcpy(sec + t->valid_offset, &all, sizeof(all));
        memcpy(dsec + t->delta_valid_offset, &all, sizeof(all));
    }
    assert_int_equal(snap.process.rss_bytes, 1);
    assert_int_equal(snap.process.threads, MS_PF__COUNT);
    assert_int_equal(snap.system.total_bytes, 101);
    assert_int_equal(snap.cgroup.oom_kills, 200 + MS_CF__COUNT);
    assert_int_equal(snap.gpus[0].total_bytes, 301);
    assert_int_equal(snap.gpus[0].process_used_bytes, 300 + MS_GF__COUNT);
    assert_int_equal(d.process.rss_bytes, -1);
    assert_int_equal(d.cgroup.current_bytes, -201);
    assert_int_equal(d.gpus[0].used_bytes, -303);
    assert_int_equal(snap.process.valid, 1);
    assert_int_equal(snap.gpus[0].valid, 1);
    assert_int_equal(d.system.valid, 1);
    assert_int_equal(d.gpus[0].valid, 1);
    /* the capture flags that fill a section */
    const ms_field_table *t;
    ms_fields(MS_SECTION_SYSTEM, &t);
    assert_int_equal(t->capture, MS_CAPTURE_SYSTEM);
    ms_fields(MS_SECTION_PROCESS, &t);
    assert_true(t->capture & MS_CAPTURE_BASIC);
    ms_fields(MS_SECTION_GPU, &t);
    assert_int_equal(t->struct_size, sizeof(ms_gpu));
    assert_int_equal(t->delta_struct_size, sizeof(ms_gpu_delta));
}

static void a_bad_section_or_name_fails_with_a_message(void **state)
{
    (void)state;
    const ms_field_table *t = NULL;
    assert_int_equal(ms_fields(MS_SECTION_COUNT, &t), MS_EINVAL);
    assert_null(t);
    assert_contains(ms_last_error(), "no section 4");
    assert_int_equal(ms_fields((ms_section)-1, &t), MS_EINVAL);
    assert_int_equal(ms_fields(MS_SECTION_PROCESS, NULL), MS_EINVAL);
    assert_null(ms_field_find(MS_SECTION_SYSTEM, "rss_bytes"));
    assert_string_equal(ms_last_error(), "no field \"rss_bytes\" in section system");
    assert_null(ms_field_find(MS_SECTION_GPU, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_section_has_a_table_with_its_list_in_order),
        cmocka_unit_test(a_field_carries_its_label_unit_and_description),
        cmocka_unit_test(offsets_reach_the_fields_of_snapshot_and_delta),
        cmocka_unit_test(a_bad_section_or_name_fails_with_a_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
