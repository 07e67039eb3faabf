/*
 * test_sinks.c - the text, JSON and CSV writers: golden output of fixture snapshots, null (JSON)
 * and empty cells (CSV) for unread fields, escaping and quoting of labels, several snapshots
 * through one writer, format names, and stream errors.
 */
#include "helpers.h"
#include "core/internal.h" /* ms__put_num */

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ODD_LABEL "say \"hi\", then\n"

/* Captures a fixture snapshot and pins everything that varies between runs and hosts. */
static void fixture_snapshot(const char *fixture, pid_t pid, unsigned what, const char *label,
                             ms_snapshot *snap)
{
    char err[512];
    int rc = fixture_capture(fixture, pid, what, snap, err, sizeof(err));
    if (rc)
        fail_msg("capture of %s pid %d: %s", fixture, (int)pid, err);
    snapshot_pin(snap);
    snap->pid = pid ? pid : 1234;
    ms_snapshot_set_label(snap, label);
}

struct batch {
    ms_format fmt;
    const ms_snapshot *snaps;
    size_t n;
};

static int write_batch(FILE *fp, const void *arg)
{
    const struct batch *b = arg;
    ms_writer *w = NULL;
    int rc = ms_writer_open(&w, b->fmt, fp);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n && rc == 0; i++)
        rc = ms_writer_snapshot(w, &b->snaps[i]);
    int crc = ms_writer_close(w);
    return rc ? rc : crc;
}

/* The text one writer of format fmt gives for snaps[0..n); malloc'd. */
static char *render(ms_format fmt, const ms_snapshot *snaps, size_t n)
{
    struct batch b = {fmt, snaps, n};
    return capture_output(write_batch, &b);
}

static void v1_full(ms_snapshot *snap)
{
    fixture_snapshot("v1-host", 4242, MS_CAPTURE_FULL, "v1 full", snap);
}

static void v2_full(ms_snapshot *snap)
{
    fixture_snapshot("v2-host", 4242, MS_CAPTURE_FULL, "", snap);
}

static void old_kernel_full(ms_snapshot *snap)
{
    fixture_snapshot("old-kernel", 4242, MS_CAPTURE_FULL, "old kernel", snap);
}

static void basic_only(ms_snapshot *snap)
{
    fixture_snapshot("v1-host", 4242, MS_CAPTURE_BASIC, "", snap);
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static int count_substr(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Text                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void text_sink_prints_every_read_field_in_human_units(void **state)
{
    (void)state;
    ms_snapshot snap;
    v1_full(&snap);
    char *out = render(MS_FORMAT_TEXT, &snap, 1);
    assert_golden("text_v1_full.txt", out);
    assert_contains(out, "snapshot of pid 4242 at 2023-11-14T22:13:20.123456789Z [v1 full]");
    assert_contains(out, "cgroup v1 /app");
    free(out);
}

static void text_sink_says_unlimited_for_a_cgroup_without_limit(void **state)
{
    (void)state;
    ms_snapshot snap;
    v2_full(&snap);
    char *out = render(MS_FORMAT_TEXT, &snap, 1);
    assert_golden("text_v2_full.txt", out);
    assert_contains(out, "unlimited");
    free(out);
}

static void text_sink_says_none_found_without_a_cgroup(void **state)
{
    (void)state;
    ms_snapshot snap;
    old_kernel_full(&snap);
    char *out = render(MS_FORMAT_TEXT, &snap, 1);
    assert_golden("text_old_kernel.txt", out);
    assert_contains(out, "cgroup: none found");
    assert_null(strstr(out, "available")); /* no MemAvailable */
    free(out);
}

static void text_sink_prints_only_the_sections_and_fields_read(void **state)
{
    (void)state;
    ms_snapshot snap;
    basic_only(&snap);
    char *out = render(MS_FORMAT_TEXT, &snap, 1);
    assert_golden("text_basic.txt", out);
    assert_null(strstr(out, "PSS"));
    assert_null(strstr(out, "system"));
    assert_null(strstr(out, "cgroup"));
    free(out);
}

static void text_sink_separates_snapshots_with_a_blank_line(void **state)
{
    (void)state;
    ms_snapshot snaps[2];
    basic_only(&snaps[0]);
    basic_only(&snaps[1]);
    char *out = render(MS_FORMAT_TEXT, snaps, 2);
    assert_int_equal(count_substr(out, "snapshot of pid"), 2);
    assert_int_equal(count_substr(out, "\n\nsnapshot of pid"), 1);
    free(out);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        fail_msg("sink wrote invalid JSON (%s) at line %d: %s", jerr.text, jerr.line, text);
    assert_true(json_is_object(root));
    return root;
}

static void json_sink_golden_full_snapshot(void **state)
{
    (void)state;
    ms_snapshot snap;
    v1_full(&snap);
    char *out = render(MS_FORMAT_JSON, &snap, 1);
    assert_golden("json_v1_full.json", out);
    free(out);
}

static void json_sink_golden_basic_snapshot(void **state)
{
    (void)state;
    ms_snapshot snap;
    basic_only(&snap);
    char *out = render(MS_FORMAT_JSON, &snap, 1);
    assert_golden("json_basic.json", out);
    free(out);
}

static void json_sink_writes_values_that_parse_back_exactly(void **state)
{
    (void)state;
    ms_snapshot snap;
    v1_full(&snap);
    char *out = render(MS_FORMAT_JSON, &snap, 1);
    json_t *root = parse_json(out);
    assert_string_equal(json_string_value(json_object_get(root, "schema")), MS_SNAPSHOT_SCHEMA);
    assert_int_equal(json_integer_value(json_object_get(root, "timestamp_ns")), FIXED_TIMESTAMP_NS);
    assert_int_equal(json_integer_value(json_object_get(root, "pid")), 4242);
    json_t *proc = json_object_get(root, "process");
    assert_int_equal(json_integer_value(json_object_get(proc, "rss_bytes")),
                     snap.process.rss_bytes);
    assert_int_equal(json_integer_value(json_object_get(proc, "pss_bytes")),
                     snap.process.pss_bytes);
    assert_int_equal(json_integer_value(json_object_get(proc, "major_faults")), 7);
    json_t *cg = json_object_get(root, "cgroup");
    assert_int_equal(json_integer_value(json_object_get(cg, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(cg, "path")), "/app");
    assert_true(json_is_false(json_object_get(cg, "unlimited")));
    assert_int_equal(json_integer_value(json_object_get(cg, "max_bytes")), 512 << 20);
    json_decref(root);
    free(out);
}

/* Fails unless every field of the JSON section is present, and is null exactly when the
 * snapshot's field is invalid. Returns the number of nulls. */
static int check_nulls(json_t *root, const char *section, const char *const *names, size_t n,
                       uint64_t valid)
{
    json_t *obj = json_object_get(root, section);
    assert_true(json_is_object(obj));
    int nulls = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(obj, names[i]);
        if (!v)
            fail_msg("%s.%s is missing", section, names[i]);
        if (valid >> i & 1u) {
            if (!json_is_integer(v))
                fail_msg("%s.%s was read but is not an integer", section, names[i]);
        } else {
            if (!json_is_null(v))
                fail_msg("%s.%s was not read but is not null", section, names[i]);
            nulls++;
        }
    }
    return nulls;
}

#define NAME(name, unit, label, desc) #name,
static const char *const process_names[] = {MS_PROCESS_FIELDS(NAME)};
static const char *const system_names[] = {MS_SYSTEM_FIELDS(NAME)};
static const char *const cgroup_names[] = {MS_CGROUP_FIELDS(NAME)};
#undef NAME

static void json_sink_writes_null_never_0_for_unread_fields(void **state)
{
    (void)state;
    ms_snapshot snap;
    basic_only(&snap);
    char *out = render(MS_FORMAT_JSON, &snap, 1);
    json_t *root = parse_json(out);
    assert_int_equal(check_nulls(root, "process", process_names, MS_PF__COUNT, snap.process.valid),
                     MS_PF__COUNT - 5);
    assert_int_equal(check_nulls(root, "system", system_names, MS_SF__COUNT, 0), MS_SF__COUNT);
    assert_int_equal(check_nulls(root, "cgroup", cgroup_names, MS_CF__COUNT, 0), MS_CF__COUNT);
    json_t *cg = json_object_get(root, "cgroup");
    assert_true(json_is_null(json_object_get(cg, "version")));
    assert_true(json_is_null(json_object_get(cg, "path")));
    assert_true(json_is_null(json_object_get(cg, "unlimited")));
    assert_true(json_is_null(json_object_get(root, "label")));
    json_decref(root);
    free(out);
}

static void json_sink_writes_null_for_an_unlimited_limit_and_a_missing_field(void **state)
{
    (void)state;
    ms_snapshot snaps[2];
    v2_full(&snaps[0]);         /* memory.max "max" */
    old_kernel_full(&snaps[1]); /* no MemAvailable, no RssAnon/File/Shmem, no cgroup */
    for (int i = 0; i < 2; i++) {
        char *out = render(MS_FORMAT_JSON, &snaps[i], 1);
        json_t *root = parse_json(out);
        check_nulls(root, "process", process_names, MS_PF__COUNT, snaps[i].process.valid);
        check_nulls(root, "system", system_names, MS_SF__COUNT, snaps[i].system.valid);
        check_nulls(root, "cgroup", cgroup_names, MS_CF__COUNT, snaps[i].cgroup.valid);
        json_decref(root);
        free(out);
    }
    assert_false(ms_valid(&snaps[0].cgroup, MS_CF_max_bytes));
    assert_false(ms_valid(&snaps[1].system, MS_SF_available_bytes));
}

static void json_sink_escapes_the_label(void **state)
{
    (void)state;
    ms_snapshot snap;
    basic_only(&snap);
    ms_snapshot_set_label(&snap, ODD_LABEL);
    char *out = render(MS_FORMAT_JSON, &snap, 1);
    assert_golden("json_odd_label.json", out);
    assert_contains(out, "\"label\":\"say \\\"hi\\\", then\\n\"");
    json_t *root = parse_json(out);
    assert_string_equal(json_string_value(json_object_get(root, "label")), ODD_LABEL);
    json_decref(root);
    free(out);
}

static void json_sink_escapes_control_characters_and_backslashes(void **state)
{
    (void)state;
    static const char label[] = "tab\there\\back\x01\x1f\r end";
    ms_snapshot snap;
    basic_only(&snap);
    ms_snapshot_set_label(&snap, label);
    char *out = render(MS_FORMAT_JSON, &snap, 1);
    assert_int_equal(count_lines(out), 1); /* no raw newline or CR inside the object */
    assert_contains(out, "\\u0001");
    json_t *root = parse_json(out);
    assert_string_equal(json_string_value(json_object_get(root, "label")), label);
    json_decref(root);
    free(out);
}

static void json_sink_writes_one_object_per_line(void **state)
{
    (void)state;
    ms_snapshot snaps[3];
    v1_full(&snaps[0]);
    basic_only(&snaps[1]);
    v2_full(&snaps[2]);
    char *out = render(MS_FORMAT_JSON, snaps, 3);
    assert_int_equal(count_lines(out), 3);
    char *save = NULL;
    int n = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *root = parse_json(line);
        assert_int_equal(json_integer_value(json_object_get(root, "pid")), snaps[n].pid);
        json_decref(root);
        n++;
    }
    assert_int_equal(n, 3);
    free(out);
}

/* ---------------------------------------------------------------------------------------- */
/* CSV                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Splits one unquoted CSV line (no label needing quotes) into at most max cells, in place. */
static int split_csv(char *line, char **cells, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        char *c = strchr(p, ',');
        if (n < max)
            cells[n] = p;
        n++;
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static void csv_sink_golden_full_snapshot(void **state)
{
    (void)state;
    ms_snapshot snap;
    v1_full(&snap);
    char *out = render(MS_FORMAT_CSV, &snap, 1);
    assert_golden("csv_v1_full.csv", out);
    free(out);
}

static void csv_sink_leaves_unread_fields_as_empty_cells(void **state)
{
    (void)state;
    ms_snapshot snap;
    basic_only(&snap);
    char *out = render(MS_FORMAT_CSV, &snap, 1);
    assert_golden("csv_basic.csv", out);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    char *head[64], *row[64];
    int nh = split_csv(out, head, 64);
    char *rowline = nl + 1;
    rowline[strcspn(rowline, "\n")] = '\0';
    int nr = split_csv(rowline, row, 64);
    assert_true(nh <= 64);
    assert_int_equal(nh, nr);
    int checked = 0;
    for (int i = 0; i < nh; i++) {
        bool statm = strcmp(head[i], "process.rss_bytes") == 0 ||
                     strcmp(head[i], "process.vms_bytes") == 0 ||
                     strcmp(head[i], "process.shared_bytes") == 0 ||
                     strcmp(head[i], "process.text_bytes") == 0 ||
                     strcmp(head[i], "process.data_bytes") == 0;
        if (strncmp(head[i], "process.", 8) == 0 || strncmp(head[i], "system.", 7) == 0 ||
            strncmp(head[i], "cgroup.", 7) == 0) {
            if (statm)
                assert_string_not_equal(row[i], "");
            else if (row[i][0] != '\0')
                fail_msg("column %s was not read but holds \"%s\"", head[i], row[i]);
            checked++;
        }
    }
    assert_int_equal(checked, MS_PF__COUNT + MS_SF__COUNT + MS_CF__COUNT + 3);
    free(out);
}

static void csv_sink_quotes_a_label_with_quotes_commas_and_newlines(void **state)
{
    (void)state;
    ms_snapshot snap;
    basic_only(&snap);
    ms_snapshot_set_label(&snap, ODD_LABEL);
    char *out = render(MS_FORMAT_CSV, &snap, 1);
    assert_golden("csv_odd_label.csv", out);
    assert_contains(out, ",\"say \"\"hi\"\", then\n\",4242,");
    free(out);
}

static void csv_writer_writes_one_header_and_one_row_per_snapshot(void **state)
{
    (void)state;
    ms_snapshot snaps[4];
    v1_full(&snaps[0]);
    basic_only(&snaps[1]);
    v2_full(&snaps[2]);
    old_kernel_full(&snaps[3]);
    char *out = render(MS_FORMAT_CSV, snaps, 4);
    assert_int_equal(count_lines(out), 1 + 4);
    assert_int_equal(count_substr(out, "timestamp_ns"), 1);
    assert_int_equal(strncmp(out, "timestamp_ns,", 13), 0);
    assert_int_equal(count_substr(out, "\n1700000000123456789,5000000000,"), 4);
    free(out);
}

/* ---------------------------------------------------------------------------------------- */
/* Formats and stream errors                                                                */
/* ---------------------------------------------------------------------------------------- */

static void format_parse_accepts_text_json_and_csv(void **state)
{
    (void)state;
    ms_format f = (ms_format)-1;
    assert_int_equal(ms_format_parse("text", &f), 0);
    assert_int_equal(f, MS_FORMAT_TEXT);
    assert_int_equal(ms_format_parse("json", &f), 0);
    assert_int_equal(f, MS_FORMAT_JSON);
    assert_int_equal(ms_format_parse("csv", &f), 0);
    assert_int_equal(f, MS_FORMAT_CSV);
}

static void format_parse_rejects_every_other_name(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "xml", "JSON", "Text", "csv ", " csv", "js", "jsonl"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms_format f = MS_FORMAT_CSV;
        assert_int_equal(ms_format_parse(bad[i], &f), MS_EINVAL);
        assert_int_equal(f, MS_FORMAT_CSV);
    }
    ms_format f;
    assert_int_equal(ms_format_parse(NULL, &f), MS_EINVAL);
}

static void writer_open_rejects_bad_arguments(void **state)
{
    (void)state;
    ms_writer *w = NULL;
    assert_int_equal(ms_writer_open(&w, (ms_format)42, stdout), MS_EINVAL);
    assert_int_equal(ms_writer_open(&w, MS_FORMAT_JSON, NULL), MS_EINVAL);
    assert_int_equal(ms_writer_open(NULL, MS_FORMAT_JSON, stdout), MS_EINVAL);
    assert_null(w);
    assert_int_equal(ms_writer_snapshot(NULL, NULL), MS_EINVAL);
    assert_int_equal(ms_writer_close(NULL), 0);
}

static void writer_close_reports_eio_when_the_stream_fails(void **state)
{
    (void)state;
    static const ms_format fmts[] = {MS_FORMAT_TEXT, MS_FORMAT_JSON, MS_FORMAT_CSV};
    ms_snapshot snap;
    v1_full(&snap);
    for (size_t i = 0; i < 3; i++) {
        FILE *fp = fopen("/dev/full", "w");
        if (!fp)
            skip();
        ms_writer *w = NULL;
        assert_int_equal(ms_writer_open(&w, fmts[i], fp), 0);
        (void)ms_writer_snapshot(w, &snap); /* may be buffered: the error shows at close */
        assert_int_equal(ms_writer_close(w), MS_EIO);
        fclose(fp);
    }
}

static void writer_snapshot_reports_eio_on_an_unbuffered_failing_stream(void **state)
{
    (void)state;
    ms_snapshot snap;
    v1_full(&snap);
    FILE *fp = fopen("/dev/full", "w");
    if (!fp)
        skip();
    setvbuf(fp, NULL, _IONBF, 0);
    ms_writer *w = NULL;
    assert_int_equal(ms_writer_open(&w, MS_FORMAT_JSON, fp), 0);
    assert_int_equal(ms_writer_snapshot(w, &snap), MS_EIO);
    assert_int_equal(ms_writer_close(w), MS_EIO);
    fclose(fp);
}

/* The sinks' number writer against printf: every length, both signs, the extremes. */
static void put_num_writes_what_printf_writes(void **state)
{
    (void)state;
    char got[32], want[32];
    uint64_t v = 1;
    uint64_t cases[200];
    size_t n = 0;
    cases[n++] = 0;
    cases[n++] = UINT64_MAX;
    for (int d = 0; d < 20; d++, v *= 10) { /* 10^d - 1, 10^d, 10^d + 7 */
        cases[n++] = v - 1;
        cases[n++] = v;
        cases[n++] = v + 7;
    }
    for (uint64_t x = 0x9e3779b97f4a7c15ull; n < sizeof(cases) / sizeof(cases[0]);
         x = x * 6364136223846793005ull + 1442695040888963407ull)
        cases[n++] = x >> (x & 63);
    for (size_t i = 0; i < n; i++) {
        *ms__put_num(got, cases[i], false) = '\0';
        snprintf(want, sizeof(want), "%" PRIu64, cases[i]);
        assert_string_equal(got, want);
        *ms__put_num(got, cases[i], true) = '\0';
        snprintf(want, sizeof(want), "-%" PRIu64, cases[i]);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_sink_prints_every_read_field_in_human_units),
        cmocka_unit_test(text_sink_says_unlimited_for_a_cgroup_without_limit),
        cmocka_unit_test(text_sink_says_none_found_without_a_cgroup),
        cmocka_unit_test(text_sink_prints_only_the_sections_and_fields_read),
        cmocka_unit_test(text_sink_separates_snapshots_with_a_blank_line),
        cmocka_unit_test(json_sink_golden_full_snapshot),
        cmocka_unit_test(json_sink_golden_basic_snapshot),
        cmocka_unit_test(json_sink_writes_values_that_parse_back_exactly),
        cmocka_unit_test(json_sink_writes_null_never_0_for_unread_fields),
        cmocka_unit_test(json_sink_writes_null_for_an_unlimited_limit_and_a_missing_field),
        cmocka_unit_test(json_sink_escapes_the_label),
        cmocka_unit_test(json_sink_escapes_control_characters_and_backslashes),
        cmocka_unit_test(json_sink_writes_one_object_per_line),
        cmocka_unit_test(csv_sink_golden_full_snapshot),
        cmocka_unit_test(csv_sink_leaves_unread_fields_as_empty_cells),
        cmocka_unit_test(csv_sink_quotes_a_label_with_quotes_commas_and_newlines),
        cmocka_unit_test(csv_writer_writes_one_header_and_one_row_per_snapshot),
        cmocka_unit_test(format_parse_accepts_text_json_and_csv),
        cmocka_unit_test(format_parse_rejects_every_other_name),
        cmocka_unit_test(put_num_writes_what_printf_writes),
        cmocka_unit_test(writer_open_rejects_bad_arguments),
        cmocka_unit_test(writer_close_reports_eio_when_the_stream_fails),
        cmocka_unit_test(writer_snapshot_reports_eio_on_an_unbuffered_failing_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
