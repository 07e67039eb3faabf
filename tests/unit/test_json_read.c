/*
 * test_json_read.c - ms_snapshot_from_json(): what the JSON sink writes reads back identically,
 * and hostile input is refused with MS_EPARSE and a reason, never a crash.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Round trip                                                                               */
/* ---------------------------------------------------------------------------------------- */

static int write_json(FILE *fp, const void *arg)
{
    ms_writer *w = NULL;
    int rc = ms_writer_open(&w, MS_FORMAT_JSON, fp);
    if (rc)
        return rc;
    rc = ms_writer_snapshot(w, arg);
    int crc = ms_writer_close(w);
    return rc ? rc : crc;
}

/* Fails unless a and b agree on everything the JSON format carries. */
static void assert_same_snapshot(const ms_snapshot *a, const ms_snapshot *b)
{
    assert_int_equal(a->timestamp_ns, b->timestamp_ns);
    assert_int_equal(a->monotonic_ns, b->monotonic_ns);
    assert_int_equal(a->pid, b->pid);
    assert_string_equal(a->label, b->label);
    assert_int_equal(a->process.valid, b->process.valid);
    assert_int_equal(a->system.valid, b->system.valid);
    assert_int_equal(a->cgroup.valid, b->cgroup.valid);
    assert_int_equal(a->cgroup.version, b->cgroup.version);
    assert_int_equal(a->cgroup.unlimited, b->cgroup.unlimited);
    assert_string_equal(a->cgroup.path, b->cgroup.path);
#define SAME(sec, bit, name)                                                                       \
    if (ms_valid(&a->sec, bit))                                                                    \
        assert_int_equal(a->sec.name, b->sec.name);
#define P(name, unit, label, desc) SAME(process, MS_PF_##name, name)
#define S(name, unit, label, desc) SAME(system, MS_SF_##name, name)
#define C(name, unit, label, desc) SAME(cgroup, MS_CF_##name, name)
    MS_PROCESS_FIELDS(P)
    MS_SYSTEM_FIELDS(S)
    MS_CGROUP_FIELDS(C)
#undef P
#undef S
#undef C
#undef SAME
}

/* Writes snap with the sink, reads it back into out and checks that they agree. */
static void round_trip(const ms_snapshot *snap, ms_snapshot *out)
{
    char *text = capture_output(write_json, snap);
    char err[256] = "";
    int rc = ms_snapshot_from_json(text, strlen(text), out, err, sizeof(err));
    if (rc)
        fail_msg("reading back failed (%s): %s", err, text);
    assert_int_equal(out->size, sizeof(ms_snapshot));
    assert_int_equal(out->version, MS_SNAPSHOT_VERSION);
    assert_same_snapshot(snap, out);
    free(text);
}

static void capture_from(const char *fixture, pid_t pid, unsigned what, const char *label,
                         ms_snapshot *snap)
{
    char err[512];
    if (fixture_capture(fixture, pid, what, snap, err, sizeof(err)))
        fail_msg("capture of %s pid %d: %s", fixture, (int)pid, err);
    ms_snapshot_set_label(snap, label);
}

static void v1_full_snapshot_reads_back_identically(void **state)
{
    (void)state;
    ms_snapshot snap, back;
    capture_from("v1-host", 4242, MS_CAPTURE_FULL, "v1 full", &snap);
    round_trip(&snap, &back);
    assert_int_equal(back.cgroup.version, MS_CGROUP_V1);
    assert_int_equal(back.process.valid, (UINT64_C(1) << MS_PF__COUNT) - 1);
}

static void unlimited_v2_cgroup_reads_back_unlimited_with_no_limit(void **state)
{
    (void)state;
    ms_snapshot snap, back;
    capture_from("v2-host", 4242, MS_CAPTURE_FULL, "", &snap);
    round_trip(&snap, &back);
    assert_true(back.cgroup.unlimited);
    assert_false(ms_valid(&back.cgroup, MS_CF_max_bytes));
    assert_string_equal(back.cgroup.path, "/user.slice/user-1000.slice/session-1.scope");
}

static void snapshot_without_cgroup_or_memavailable_reads_back_identically(void **state)
{
    (void)state;
    ms_snapshot snap, back;
    capture_from("old-kernel", 4242, MS_CAPTURE_FULL, "old", &snap);
    round_trip(&snap, &back);
    assert_int_equal(back.cgroup.version, MS_CGROUP_NONE);
    assert_false(ms_valid(&back.system, MS_SF_available_bytes));
}

static void basic_snapshot_reads_back_with_only_the_statm_fields_valid(void **state)
{
    (void)state;
    ms_snapshot snap, back;
    capture_from("v1-host", 4242, MS_CAPTURE_BASIC, "", &snap);
    round_trip(&snap, &back);
    assert_int_equal(back.system.valid, 0);
    assert_int_equal(back.cgroup.valid, 0);
    assert_string_equal(back.label, "");
}

static void label_needing_escapes_reads_back_identically(void **state)
{
    (void)state;
    ms_snapshot snap, back;
    capture_from("v1-host", 4242, MS_CAPTURE_BASIC, "say \"hi\", then\n\ttab \\ \x01 caf\xc3\xa9",
                 &snap);
    round_trip(&snap, &back);
}

static void extreme_values_read_back_identically(void **state)
{
    (void)state;
    ms_snapshot snap, back;
    capture_from("v1-host", 4242, MS_CAPTURE_FULL, "", &snap);
    snap.pid = INT32_MAX;
    snap.timestamp_ns = INT64_MAX;
    snap.process.rss_bytes = 0;
    snap.process.vms_bytes = INT64_MAX;
    round_trip(&snap, &back);
}

/* ---------------------------------------------------------------------------------------- */
/* Hostile input                                                                            */
/* ---------------------------------------------------------------------------------------- */

#define HEAD "{\"schema\":\"memsnap.snapshot/1\""

/* Fails unless text (of length len) is refused with MS_EPARSE and a reason containing want. */
static void expect_parse_error_len(const char *text, size_t len, const char *want)
{
    ms_snapshot out;
    char err[256];
    memset(err, 0, sizeof(err));
    assert_int_equal(ms_snapshot_from_json(text, len, &out, err, sizeof(err)), MS_EPARSE);
    assert_string_not_equal(err, "");
    assert_non_null(memchr(err, '\0', sizeof(err)));
    assert_null(strchr(err, '\n'));
    assert_contains(err, want);
}

static void expect_parse_error(const char *text, const char *want)
{
    expect_parse_error_len(text, strlen(text), want);
}

static void text_that_is_not_json_is_refused(void **state)
{
    (void)state;
    expect_parse_error("RSS 12 MiB", "invalid JSON");
}

static void truncated_json_is_refused(void **state)
{
    (void)state;
    ms_snapshot snap;
    capture_from("v1-host", 4242, MS_CAPTURE_FULL, "cut", &snap);
    char *text = capture_output(write_json, &snap);
    expect_parse_error_len(text, strlen(text) / 2, "invalid JSON");
    expect_parse_error_len(text, strlen(text) - 3, "invalid JSON");
    free(text);
}

static void array_instead_of_object_is_refused(void **state)
{
    (void)state;
    expect_parse_error("[" HEAD "}]", "expected a JSON object");
}

static void scalar_instead_of_object_is_refused(void **state)
{
    (void)state;
    expect_parse_error("42", "");
    expect_parse_error("\"memsnap.snapshot/1\"", "");
}

static void object_without_schema_is_refused(void **state)
{
    (void)state;
    expect_parse_error("{\"pid\":1,\"process\":{\"rss_bytes\":4096}}", "not a memsnap snapshot");
}

static void object_of_another_schema_is_refused(void **state)
{
    (void)state;
    expect_parse_error("{\"schema\":\"memsnap.delta/1\",\"pid\":1}", "not a memsnap snapshot");
    expect_parse_error("{\"schema\":1}", "not a memsnap snapshot");
    expect_parse_error("{\"schema\":null}", "not a memsnap snapshot");
}

static void future_schema_version_is_refused_by_name(void **state)
{
    (void)state;
    expect_parse_error("{\"schema\":\"memsnap.snapshot/2\",\"pid\":1}", "memsnap.snapshot/2");
    expect_parse_error("{\"schema\":\"memsnap.snapshot/2\"}", "unsupported");
}

static void negative_number_is_refused_naming_the_field(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"process\":{\"rss_bytes\":-4096}}", "process.rss_bytes");
    expect_parse_error(HEAD ",\"timestamp_ns\":-1}", "timestamp_ns");
}

static void string_where_a_number_belongs_is_refused_naming_the_field(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"system\":{\"total_bytes\":\"16 GiB\"}}", "system.total_bytes");
    expect_parse_error(HEAD ",\"pid\":\"4242\"}", "pid");
    expect_parse_error(HEAD ",\"cgroup\":{\"oom_kills\":true}}", "cgroup.oom_kills");
}

static void float_is_refused_naming_the_field(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"process\":{\"pss_bytes\":1.5}}", "process.pss_bytes");
    expect_parse_error(HEAD ",\"process\":{\"pss_bytes\":1e3}}", "process.pss_bytes");
}

static void number_beyond_int64_is_refused(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"process\":{\"rss_bytes\":18446744073709551615}}", "");
}

static void duplicate_keys_are_refused(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"pid\":1,\"pid\":2}", "duplicate");
    expect_parse_error(HEAD ",\"process\":{\"rss_bytes\":1,\"rss_bytes\":2}}", "duplicate");
}

static void section_that_is_not_an_object_is_refused(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"process\":[1,2]}", "process");
    expect_parse_error(HEAD ",\"cgroup\":42}", "cgroup");
    expect_parse_error(HEAD ",\"system\":\"none\"}", "system");
}

static void cgroup_version_other_than_1_or_2_is_refused(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"cgroup\":{\"version\":3,\"path\":\"/\"}}", "cgroup.version");
    expect_parse_error(HEAD ",\"cgroup\":{\"version\":0}}", "cgroup.version");
}

static void pid_out_of_range_is_refused(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"pid\":2147483648}", "pid");
    expect_parse_error(HEAD ",\"pid\":-1}", "pid");
}

static void label_that_is_not_a_string_is_refused(void **state)
{
    (void)state;
    expect_parse_error(HEAD ",\"label\":42}", "label");
    expect_parse_error(HEAD ",\"label\":[\"a\"]}", "label");
}

static void empty_input_is_refused(void **state)
{
    (void)state;
    expect_parse_error_len("", 0, "invalid JSON");
    expect_parse_error("   \n", "invalid JSON");
}

static void input_with_an_embedded_nul_is_refused(void **state)
{
    (void)state;
    static const char text[] = HEAD ",\"label\":\"a\0b\"}";
    expect_parse_error_len(text, sizeof(text) - 1, "invalid JSON");
    expect_parse_error(HEAD ",\"label\":\"a\\u0000b\"}", "invalid JSON");
}

static void deeply_nested_input_is_refused_without_exhausting_the_stack(void **state)
{
    (void)state;
    enum { DEPTH = 100000 };
    char *text = malloc(2 * DEPTH + 64);
    assert_non_null(text);
    size_t n = 0;
    n += (size_t)sprintf(text, HEAD ",\"x\":");
    for (int i = 0; i < DEPTH; i++)
        text[n++] = '[';
    for (int i = 0; i < DEPTH; i++)
        text[n++] = ']';
    text[n++] = '}';
    expect_parse_error_len(text, n, "invalid JSON");
    free(text);
}

static void null_text_or_snapshot_is_einval(void **state)
{
    (void)state;
    ms_snapshot out;
    char err[64];
    assert_int_equal(ms_snapshot_from_json(NULL, 0, &out, err, sizeof(err)), MS_EINVAL);
    assert_int_equal(ms_snapshot_from_json(NULL, 10, &out, NULL, 0), MS_EINVAL);
    assert_int_equal(ms_snapshot_from_json(HEAD "}", strlen(HEAD "}"), NULL, err, sizeof(err)),
                     MS_EINVAL);
}

static void error_buffer_may_be_absent_or_small(void **state)
{
    (void)state;
    ms_snapshot out;
    assert_int_equal(ms_snapshot_from_json("nope", 4, &out, NULL, 0), MS_EPARSE);
    char err[8];
    memset(err, 'x', sizeof(err));
    assert_int_equal(ms_snapshot_from_json("nope", 4, &out, err, sizeof(err)), MS_EPARSE);
    assert_int_equal(strlen(err), sizeof(err) - 1);
}

static void minimal_snapshot_reads_with_every_field_invalid(void **state)
{
    (void)state;
    ms_snapshot out;
    char err[256] = "";
    const char *text = HEAD ",\"pid\":7,\"label\":null}";
    assert_int_equal(ms_snapshot_from_json(text, strlen(text), &out, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(out.pid, 7);
    assert_int_equal(out.process.valid, 0);
    assert_int_equal(out.system.valid, 0);
    assert_int_equal(out.cgroup.valid, 0);
    assert_int_equal(out.cgroup.version, MS_CGROUP_NONE);
    assert_int_equal(out.captured, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v1_full_snapshot_reads_back_identically),
        cmocka_unit_test(unlimited_v2_cgroup_reads_back_unlimited_with_no_limit),
        cmocka_unit_test(snapshot_without_cgroup_or_memavailable_reads_back_identically),
        cmocka_unit_test(basic_snapshot_reads_back_with_only_the_statm_fields_valid),
        cmocka_unit_test(label_needing_escapes_reads_back_identically),
        cmocka_unit_test(extreme_values_read_back_identically),
        cmocka_unit_test(text_that_is_not_json_is_refused),
        cmocka_unit_test(truncated_json_is_refused),
        cmocka_unit_test(array_instead_of_object_is_refused),
        cmocka_unit_test(scalar_instead_of_object_is_refused),
        cmocka_unit_test(object_without_schema_is_refused),
        cmocka_unit_test(object_of_another_schema_is_refused),
        cmocka_unit_test(future_schema_version_is_refused_by_name),
        cmocka_unit_test(negative_number_is_refused_naming_the_field),
        cmocka_unit_test(string_where_a_number_belongs_is_refused_naming_the_field),
        cmocka_unit_test(float_is_refused_naming_the_field),
        cmocka_unit_test(number_beyond_int64_is_refused),
        cmocka_unit_test(duplicate_keys_are_refused),
        cmocka_unit_test(section_that_is_not_an_object_is_refused),
        cmocka_unit_test(cgroup_version_other_than_1_or_2_is_refused),
        cmocka_unit_test(pid_out_of_range_is_refused),
        cmocka_unit_test(label_that_is_not_a_string_is_refused),
        cmocka_unit_test(empty_input_is_refused),
        cmocka_unit_test(input_with_an_embedded_nul_is_refused),
        cmocka_unit_test(deeply_nested_input_is_refused_without_exhausting_the_stack),
        cmocka_unit_test(null_text_or_snapshot_is_einval),
        cmocka_unit_test(error_buffer_may_be_absent_or_small),
        cmocka_unit_test(minimal_snapshot_reads_with_every_field_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
