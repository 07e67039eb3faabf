/*
 * test_report.c - human byte units, the delta of two snapshots, and the one-line, table and JSON
 * reports of two fixture-derived snapshots.
 */
#include "helpers.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (INT64_C(1) << 20)

/* ---------------------------------------------------------------------------------------- */
/* ms_format_bytes, ms_format_bytes_signed                                                  */
/* ---------------------------------------------------------------------------------------- */

static void format_bytes_uses_binary_units_with_two_decimals(void **state)
{
    (void)state;
    static const struct {
        uint64_t bytes;
        const char *want;
    } cases[] = {
        {0, "0 B"},
        {1, "1 B"},
        {1023, "1023 B"},
        {1024, "1.00 KiB"},
        {1536, "1.50 KiB"},
        {UINT64_C(1) << 20, "1.00 MiB"},
        {UINT64_C(3) << 19, "1.50 MiB"},
        {UINT64_C(1) << 30, "1.00 GiB"},
        {UINT64_C(13) << 28, "3.25 GiB"},
        {UINT64_C(1) << 40, "1.00 TiB"},
        {UINT64_C(1) << 50, "1.00 PiB"},
        {UINT64_C(1) << 60, "1.00 EiB"},
        {UINT64_C(1) << 63, "8.00 EiB"},
        {UINT64_MAX, "16.00 EiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        int n = ms_format_bytes(buf, sizeof(buf), cases[i].bytes);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

static void format_bytes_truncates_safely_and_returns_the_full_length(void **state)
{
    (void)state;
    char buf[5];
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(ms_format_bytes(buf, sizeof(buf), UINT64_C(3) << 19), strlen("1.50 MiB"));
    assert_string_equal(buf, "1.50");
    assert_int_equal(ms_format_bytes(NULL, 0, 1023), strlen("1023 B"));
}

static void format_bytes_signed_shows_the_sign_of_every_non_zero_delta(void **state)
{
    (void)state;
    static const struct {
        int64_t bytes;
        const char *want;
    } cases[] = {
        {0, "0 B"},
        {1, "+1 B"},
        {-1, "-1 B"},
        {512, "+512 B"},
        {-512, "-512 B"},
        {1023, "+1023 B"},
        {-1024, "-1.00 KiB"},
        {3 * MIB / 2, "+1.50 MiB"},
        {-3 * MIB / 2, "-1.50 MiB"},
        {INT64_C(1) << 40, "+1.00 TiB"},
        {INT64_MAX, "+8.00 EiB"},
        {INT64_MIN, "-8.00 EiB"},
        {INT64_MIN + 1, "-8.00 EiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        int n = ms_format_bytes_signed(buf, sizeof(buf), cases[i].bytes);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Two snapshots: v1-host's process, then the same with a few values changed by hand        */
/* ---------------------------------------------------------------------------------------- */

static void before_after(ms_snapshot *before, ms_snapshot *after)
{
    char err[512];
    if (fixture_capture("v1-host", 4242, MS_CAPTURE_FULL, before, err, sizeof(err)))
        fail_msg("capture: %s", err);
    snapshot_pin(before);
    /* threads was not read before: the table shows "-", the delta is invalid */
    before->process.valid &= ~(UINT64_C(1) << MS_PF_threads);

    *after = *before;
    ms_snapshot_set_label(after, "step 1");
    after->timestamp_ns += 1500000000;
    after->monotonic_ns += 1500000000;
    after->process.valid |= UINT64_C(1) << MS_PF_threads;
    after->process.rss_bytes += 256 * MIB;
    after->process.pss_bytes -= 1 * MIB;
    after->process.minor_faults += 250;
    /* swap was not read after */
    after->process.valid &= ~(UINT64_C(1) << MS_PF_swap_bytes);
    after->system.available_bytes -= 512 * MIB;
    after->cgroup.current_bytes += 64 * MIB;
    after->cgroup.oom_kills += 1;
}

static void delta_is_after_minus_before_with_its_sign(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    ms_delta d;
    memset(&d, 0x5a, sizeof(d));
    ms_delta_compute(&before, &after, &d);
    assert_int_equal(d.size, sizeof(ms_delta));
    assert_int_equal(d.process.rss_bytes, 256 * MIB);
    assert_int_equal(d.process.pss_bytes, -1 * MIB);
    assert_int_equal(d.process.minor_faults, 250);
    assert_int_equal(d.process.vms_bytes, 0);
    assert_int_equal(d.system.available_bytes, -512 * MIB);
    assert_int_equal(d.cgroup.current_bytes, 64 * MIB);
    assert_int_equal(d.cgroup.oom_kills, 1);
}

static void delta_past_int64_saturates_never_flips_its_sign(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    before.process.rss_bytes = 0; /* figures a crafted JSON snapshot may hold */
    after.process.rss_bytes = UINT64_MAX;
    before.process.vms_bytes = UINT64_MAX - 1;
    after.process.vms_bytes = 1;
    before.timestamp_ns = UINT64_MAX;
    after.timestamp_ns = 0;
    before.monotonic_ns = after.monotonic_ns = 0;
    ms_delta d;
    ms_delta_compute(&before, &after, &d);
    assert_true(d.process.rss_bytes == INT64_MAX);
    assert_true(d.process.vms_bytes == INT64_MIN);
    assert_true(d.elapsed_ns == INT64_MIN);
    ms_delta_compute(&after, &before, &d);
    assert_true(d.process.rss_bytes == INT64_MIN);
    assert_true(d.process.vms_bytes == INT64_MAX);
    assert_true(d.elapsed_ns == INT64_MAX);
}

static void delta_is_valid_only_where_both_snapshots_are(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    ms_delta d;
    ms_delta_compute(&before, &after, &d);
    assert_true(ms_valid(&d.process, MS_PF_rss_bytes));
    assert_true(ms_valid(&d.process, MS_PF_vms_bytes));   /* valid and unchanged */
    assert_false(ms_valid(&d.process, MS_PF_swap_bytes)); /* only before */
    assert_false(ms_valid(&d.process, MS_PF_threads));    /* only after */
    assert_int_equal(d.process.valid, before.process.valid & after.process.valid);
    assert_int_equal(d.system.valid, before.system.valid);
    assert_int_equal(d.cgroup.valid, before.cgroup.valid);

    ms_snapshot basic, system;
    ms_snapshot_init(&basic);
    ms_snapshot_init(&system);
    basic.process = before.process;
    system.system = before.system;
    ms_delta_compute(&basic, &system, &d);
    assert_int_equal(d.process.valid, 0);
    assert_int_equal(d.system.valid, 0);
    assert_int_equal(d.cgroup.valid, 0);
}

static void delta_elapsed_comes_from_the_monotonic_clock(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    after.timestamp_ns = before.timestamp_ns + 99; /* the wall clock was stepped */
    ms_delta d;
    ms_delta_compute(&before, &after, &d);
    assert_int_equal(d.elapsed_ns, 1500000000);
}

static void delta_elapsed_falls_back_to_the_wall_clock_without_monotonic_times(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    after.timestamp_ns = before.timestamp_ns + 2000000000;
    before.monotonic_ns = 0; /* e.g. read back from a file without it */
    ms_delta d;
    ms_delta_compute(&before, &after, &d);
    assert_int_equal(d.elapsed_ns, 2000000000);
}

static void delta_elapsed_falls_back_to_the_wall_clock_across_boots(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    after.monotonic_ns = before.monotonic_ns - 1000; /* rebooted in between */
    after.timestamp_ns = before.timestamp_ns + 3000000000;
    ms_delta d;
    ms_delta_compute(&before, &after, &d);
    assert_int_equal(d.elapsed_ns, 3000000000);
}

static void delta_elapsed_is_negative_when_after_was_taken_first(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    before.monotonic_ns = 0;
    after.timestamp_ns = before.timestamp_ns - 3000000000;
    ms_delta d;
    ms_delta_compute(&before, &after, &d);
    assert_int_equal(d.elapsed_ns, -3000000000);
}

/* ---------------------------------------------------------------------------------------- */
/* Reports                                                                                  */
/* ---------------------------------------------------------------------------------------- */

struct pair {
    const ms_snapshot *before, *after;
};

static int line_fn(FILE *fp, const void *arg)
{
    const struct pair *p = arg;
    return ms_report_line(fp, p->before, p->after);
}

static int table_fn(FILE *fp, const void *arg)
{
    const struct pair *p = arg;
    return ms_report_table(fp, p->before, p->after);
}

static int json_fn(FILE *fp, const void *arg)
{
    const struct pair *p = arg;
    return ms_report_json(fp, p->before, p->after);
}

static void report_line_golden(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    struct pair p = {&before, &after};
    char *out = capture_output(line_fn, &p);
    assert_golden("report_line.txt", out);
    assert_int_equal(strncmp(out, "[step 1] RSS ", 13), 0);
    assert_null(strstr(out, "swap")); /* not valid in both */
    assert_contains(out, " in 1.500 s\n");
    free(out);
}

static void report_line_takes_the_label_of_before_when_after_has_none(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    ms_snapshot_set_label(&before, "warm-up");
    ms_snapshot_set_label(&after, "");
    struct pair p = {&before, &after};
    char *out = capture_output(line_fn, &p);
    assert_int_equal(strncmp(out, "[warm-up] RSS ", 14), 0);
    free(out);
    ms_snapshot_set_label(&before, "");
    out = capture_output(line_fn, &p);
    assert_int_equal(strncmp(out, "RSS ", 4), 0);
    free(out);
}

static void report_line_says_so_when_no_metric_is_common(void **state)
{
    (void)state;
    ms_snapshot before, after, basic, system;
    before_after(&before, &after);
    ms_snapshot_init(&basic);
    ms_snapshot_init(&system);
    basic.process = before.process;
    basic.monotonic_ns = before.monotonic_ns;
    system.system = after.system;
    system.monotonic_ns = after.monotonic_ns;
    struct pair p = {&basic, &system};
    char *out = capture_output(line_fn, &p);
    assert_string_equal(out, "no metric common to both snapshots in 1.500 s\n");
    free(out);
}

static void report_table_golden(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    struct pair p = {&before, &after};
    char *out = capture_output(table_fn, &p);
    assert_golden("report_table.txt", out);
    assert_int_equal(strncmp(out, "memory report: step 1 (1.500 s)\n", 32), 0);
    free(out);
}

static void report_table_lists_only_sections_with_a_field_read(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    before.system.valid = 0;
    after.system.valid = 0;
    after.cgroup.valid = 0; /* cgroup read before only: still listed */
    struct pair p = {&before, &after};
    char *out = capture_output(table_fn, &p);
    assert_null(strstr(out, "\nsystem\n"));
    assert_contains(out, "\nprocess\n");
    assert_contains(out, "\ncgroup\n");
    free(out);
}

static void report_table_says_unlimited_for_a_cgroup_without_limit(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    before.cgroup.valid &= ~(UINT64_C(1) << MS_CF_max_bytes);
    before.cgroup.unlimited = true;
    after.cgroup.valid &= ~(UINT64_C(1) << MS_CF_max_bytes);
    after.cgroup.unlimited = true;
    struct pair p = {&before, &after};
    char *out = capture_output(table_fn, &p);
    const char *row = strstr(out, "  limit ");
    assert_non_null(row);
    assert_int_equal(
        strncmp(row, "  limit                 unlimited      unlimited              -\n", 63), 0);
    free(out);
}

static void report_json_golden(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    struct pair p = {&before, &after};
    char *out = capture_output(json_fn, &p);
    assert_golden("report_delta.json", out);
    free(out);
}

static void report_json_gives_signed_deltas_and_null_where_not_comparable(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    struct pair p = {&before, &after};
    char *out = capture_output(json_fn, &p);
    json_error_t jerr;
    json_t *root = json_loads(out, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        fail_msg("invalid JSON (%s): %s", jerr.text, out);
    assert_string_equal(json_string_value(json_object_get(root, "schema")), "memsnap.delta/1");
    assert_int_equal(json_integer_value(json_object_get(root, "elapsed_ns")), 1500000000);
    assert_true(json_is_null(json_object_get(root, "before_label")));
    assert_string_equal(json_string_value(json_object_get(root, "after_label")), "step 1");
    json_t *proc = json_object_get(root, "process");
    assert_int_equal(json_integer_value(json_object_get(proc, "rss_bytes")), 256 * MIB);
    assert_int_equal(json_integer_value(json_object_get(proc, "pss_bytes")), -1 * MIB);
    assert_int_equal(json_integer_value(json_object_get(proc, "vms_bytes")), 0);
    assert_true(json_is_integer(json_object_get(proc, "vms_bytes")));
    assert_true(json_is_null(json_object_get(proc, "swap_bytes")));
    assert_true(json_is_null(json_object_get(proc, "threads")));
    json_t *sys = json_object_get(root, "system");
    assert_int_equal(json_integer_value(json_object_get(sys, "available_bytes")), -512 * MIB);
    json_t *cg = json_object_get(root, "cgroup");
    assert_int_equal(json_integer_value(json_object_get(cg, "oom_kills")), 1);
    assert_int_equal(json_object_size(proc), MS_PF__COUNT);
    assert_int_equal(json_object_size(sys), MS_SF__COUNT);
    assert_int_equal(json_object_size(cg), MS_CF__COUNT);
    json_decref(root);
    free(out);
}

static void reports_return_eio_on_a_failing_stream(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    FILE *fp = fopen("/dev/full", "w");
    if (!fp)
        skip();
    setvbuf(fp, NULL, _IONBF, 0);
    assert_int_equal(ms_report_line(fp, &before, &after), MS_EIO);
    assert_int_equal(ms_report_table(fp, &before, &after), MS_EIO);
    assert_int_equal(ms_report_json(fp, &before, &after), MS_EIO);
    fclose(fp);
}

/* The buffer forms give exactly the stream's text, and cut it the way snprintf does. */
static void report_buffers_hold_the_stream_text_and_truncate_safely(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    struct pair p = {&before, &after};
    int (*const stream[])(FILE *, const void *) = {line_fn, table_fn};
    int (*const buffer[])(char *, size_t, const ms_snapshot *,
                          const ms_snapshot *) = {ms_report_line_buf, ms_report_table_buf};
    for (int i = 0; i < 2; i++) {
        char *want = capture_output(stream[i], &p);
        int n = (int)strlen(want);
        assert_int_equal(buffer[i](NULL, 0, &before, &after), n); /* the length alone */
        char big[4096];
        assert_int_equal(buffer[i](big, sizeof(big), &before, &after), n);
        assert_string_equal(big, want);
        char small[17];
        memset(small, 'x', sizeof(small));
        assert_int_equal(buffer[i](small, 11, &before, &after), n);
        assert_int_equal(strlen(small), 10); /* cut, NUL-terminated, nothing past len */
        assert_int_equal(strncmp(small, want, 10), 0);
        assert_int_equal(small[11], 'x');
        char one[1] = {'x'};
        assert_int_equal(buffer[i](one, 1, &before, &after), n);
        assert_int_equal(one[0], '\0');
        free(want);
    }
}

static void report_line_buffer_exact_text(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    char buf[512];
    ms_report_line_buf(buf, sizeof(buf), &before, &after);
    assert_string_equal(buf, "[step 1] RSS 20.00 MiB -> 276.00 MiB (+256.00 MiB) | PSS 10.00 MiB "
                             "-> 9.00 MiB (-1.00 MiB) | cgroup 256.00 MiB -> 320.00 MiB (+64.00 "
                             "MiB) | sys avail 12.00 GiB -> 11.50 GiB (-512.00 MiB) in 1.500 s\n");
    /* cut inside "RSS 20.00": the first 15 bytes, whatever the whole text needs */
    char cut[16];
    assert_int_equal(ms_report_line_buf(cut, sizeof(cut), &before, &after), (int)strlen(buf));
    assert_string_equal(cut, "[step 1] RSS 20");
}

static void report_buffers_refuse_null_arguments_with_a_message(void **state)
{
    (void)state;
    ms_snapshot before, after;
    before_after(&before, &after);
    char buf[8];
    assert_int_equal(ms_report_line_buf(NULL, 8, &before, &after), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_report_line_buf: the output is NULL");
    assert_int_equal(ms_report_table_buf(buf, sizeof(buf), NULL, &after), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_report_table_buf: before is NULL");
    assert_int_equal(ms_report_line(stdout, &before, NULL), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_report_line: after is NULL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_bytes_uses_binary_units_with_two_decimals),
        cmocka_unit_test(format_bytes_truncates_safely_and_returns_the_full_length),
        cmocka_unit_test(format_bytes_signed_shows_the_sign_of_every_non_zero_delta),
        cmocka_unit_test(delta_is_after_minus_before_with_its_sign),
        cmocka_unit_test(delta_past_int64_saturates_never_flips_its_sign),
        cmocka_unit_test(delta_is_valid_only_where_both_snapshots_are),
        cmocka_unit_test(delta_elapsed_comes_from_the_monotonic_clock),
        cmocka_unit_test(delta_elapsed_falls_back_to_the_wall_clock_without_monotonic_times),
        cmocka_unit_test(delta_elapsed_falls_back_to_the_wall_clock_across_boots),
        cmocka_unit_test(delta_elapsed_is_negative_when_after_was_taken_first),
        cmocka_unit_test(report_line_golden),
        cmocka_unit_test(report_line_takes_the_label_of_before_when_after_has_none),
        cmocka_unit_test(report_line_says_so_when_no_metric_is_common),
        cmocka_unit_test(report_table_golden),
        cmocka_unit_test(report_table_lists_only_sections_with_a_field_read),
        cmocka_unit_test(report_table_says_unlimited_for_a_cgroup_without_limit),
        cmocka_unit_test(report_json_golden),
        cmocka_unit_test(report_json_gives_signed_deltas_and_null_where_not_comparable),
        cmocka_unit_test(reports_return_eio_on_a_failing_stream),
        cmocka_unit_test(report_buffers_hold_the_stream_text_and_truncate_safely),
        cmocka_unit_test(report_line_buffer_exact_text),
        cmocka_unit_test(report_buffers_refuse_null_arguments_with_a_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
