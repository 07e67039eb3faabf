/*
 * test_cgroup.c - the memory-cgroup probe on fixture trees: v1 over v2 on hybrid hosts, v2 with
 * and without a limit or memory.peak, cgroup-namespace mounts, no cgroup at all, malformed
 * files, and what ms_session_probes() says about each tree.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (UINT64_C(1) << 20)

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer, fill every allocation with garbage (not only its first 4 KiB), so a
 * scan that runs past a buffer's terminator reaches the redzone and is reported. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_malloc_fill_size=1048576";
}
#endif

static int capture_cgroup(const char *fixture, pid_t pid, ms_snapshot *snap, char *err,
                          size_t errlen)
{
    return fixture_capture(fixture, pid, MS_CAPTURE_CGROUP, snap, err, errlen);
}

/* "<fixture>/<rel>": a path an error message must name. */
static const char *fixture_file(const char *fixture, const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", fixture_path(fixture), rel);
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* v1                                                                                       */
/* ---------------------------------------------------------------------------------------- */

static void hybrid_host_uses_the_v1_memory_controller(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(capture_cgroup("v1-host", 4242, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V1);
    /* the memory line's path, not the 0::/ line's */
    assert_string_equal(snap.cgroup.path, "/app");
    assert_int_equal(snap.captured, MS_CAPTURE_CGROUP);
}

static void v1_reads_usage_limit_peak_and_oom_kills(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(capture_cgroup("v1-host", 4242, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.valid, (UINT64_C(1) << MS_CF__COUNT) - 1);
    assert_int_equal(snap.cgroup.current_bytes, 256 * MIB);
    assert_int_equal(snap.cgroup.max_bytes, 512 * MIB);
    assert_int_equal(snap.cgroup.peak_bytes, 384 * MIB);
    assert_int_equal(snap.cgroup.oom_kills, 2); /* oom_kill, not oom_kill_disable */
    assert_false(snap.cgroup.unlimited);
}

static void v1_limit_of_page_counter_max_counts_as_unlimited(void **state)
{
    (void)state;
    ms_snapshot snap;
    /* memory.limit_in_bytes: 9223372036854771712 */
    assert_int_equal(capture_cgroup("v1-host", 4343, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V1);
    assert_true(snap.cgroup.unlimited);
    assert_false(ms_valid(&snap.cgroup, MS_CF_max_bytes));
    assert_true(ms_valid(&snap.cgroup, MS_CF_current_bytes));
    assert_int_equal(snap.cgroup.current_bytes, 1 * MIB);
    assert_int_equal(snap.cgroup.peak_bytes, 2 * MIB);
    assert_int_equal(snap.cgroup.oom_kills, 0);
    assert_true(ms_valid(&snap.cgroup, MS_CF_oom_kills));
}

/* ---------------------------------------------------------------------------------------- */
/* v2                                                                                       */
/* ---------------------------------------------------------------------------------------- */

static void v2_max_means_unlimited_and_leaves_the_limit_invalid(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(capture_cgroup("v2-host", 4242, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V2);
    assert_string_equal(snap.cgroup.path, "/user.slice/user-1000.slice/session-1.scope");
    assert_true(snap.cgroup.unlimited);
    assert_false(ms_valid(&snap.cgroup, MS_CF_max_bytes));
}

static void v2_reads_current_peak_and_oom_kill_events(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(capture_cgroup("v2-host", 4242, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.current_bytes, 128 * MIB);
    assert_true(ms_valid(&snap.cgroup, MS_CF_peak_bytes));
    assert_int_equal(snap.cgroup.peak_bytes, 192 * MIB);
    /* memory.events has "oom 3" and "oom_kill 3" and "oom_group_kill 0" */
    assert_true(ms_valid(&snap.cgroup, MS_CF_oom_kills));
    assert_int_equal(snap.cgroup.oom_kills, 3);
}

static void v2_without_memory_peak_leaves_peak_invalid_without_error(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(capture_cgroup("v2-host", 4343, &snap, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V2);
    assert_string_equal(snap.cgroup.path, "/system.slice/db.service");
    assert_false(ms_valid(&snap.cgroup, MS_CF_peak_bytes));
    assert_false(snap.cgroup.unlimited);
    assert_true(ms_valid(&snap.cgroup, MS_CF_max_bytes));
    assert_int_equal(snap.cgroup.max_bytes, 1024 * MIB);
    assert_int_equal(snap.cgroup.current_bytes, 100 * MIB);
    assert_int_equal(snap.cgroup.oom_kills, 0);
}

static void unlimited_flag_does_not_leak_into_the_next_capture(void **state)
{
    (void)state;
    ms_session *s = fixture_session("v2-host");
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, 4242, MS_CAPTURE_CGROUP, &snap), 0);
    assert_true(snap.cgroup.unlimited);
    assert_int_equal(ms_capture(s, 4343, MS_CAPTURE_CGROUP, &snap), 0);
    assert_false(snap.cgroup.unlimited);
    assert_false(ms_valid(&snap.cgroup, MS_CF_peak_bytes));
    assert_string_equal(snap.cgroup.path, "/system.slice/db.service");
    ms_session_close(s);
}

/* ---------------------------------------------------------------------------------------- */
/* cgroup namespaces: a mount whose root is not "/"                                         */
/* ---------------------------------------------------------------------------------------- */

static void namespaced_mount_maps_the_cgroup_path_below_its_root(void **state)
{
    (void)state;
    ms_snapshot snap;
    /* mountinfo root /kubepods/pod1 at /sys/fs/cgroup; cgroup /kubepods/pod1/ctr */
    assert_int_equal(capture_cgroup("cgns", 4242, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V2);
    assert_string_equal(snap.cgroup.path, "/kubepods/pod1/ctr");
    /* the values of <sysfs>/fs/cgroup/ctr */
    assert_int_equal(snap.cgroup.current_bytes, 50 * MIB);
    assert_int_equal(snap.cgroup.max_bytes, 256 * MIB);
    assert_int_equal(snap.cgroup.peak_bytes, 60 * MIB);
    assert_int_equal(snap.cgroup.oom_kills, 1);
}

static void namespaced_mount_root_itself_reads_the_mount_point(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(capture_cgroup("cgns", 4545, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V2);
    assert_string_equal(snap.cgroup.path, "/kubepods/pod1");
    assert_int_equal(snap.cgroup.current_bytes, 70 * MIB);
    assert_int_equal(snap.cgroup.max_bytes, 512 * MIB);
}

static void cgroup_outside_the_mount_root_is_none(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(capture_cgroup("cgns", 4343, &snap, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(snap.cgroup.version, MS_CGROUP_NONE);
    assert_int_equal(snap.cgroup.valid, 0);
    assert_string_equal(snap.cgroup.path, "");
}

static void cgroup_sharing_only_a_name_prefix_with_the_root_is_outside_it(void **state)
{
    (void)state;
    ms_snapshot snap;
    /* /kubepods/pod10/ctr starts with "/kubepods/pod1" but is not below it */
    assert_int_equal(capture_cgroup("cgns", 4444, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_NONE);
    assert_int_equal(snap.cgroup.valid, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* No cgroup, errors                                                                        */
/* ---------------------------------------------------------------------------------------- */

static void no_cgroup_mounts_is_version_none_not_an_error(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(capture_cgroup("old-kernel", 4242, &snap, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(snap.cgroup.version, MS_CGROUP_NONE);
    assert_int_equal(snap.cgroup.valid, 0);
    assert_false(snap.cgroup.unlimited);
    assert_int_equal(snap.captured, MS_CAPTURE_CGROUP);
}

static void a_process_moved_to_another_cgroup_is_followed_in_the_same_session(void **state)
{
    (void)state;
    /* A private copy of the v2 host, whose /proc/4242/cgroup the test rewrites. */
    char dir[64], file[4200];
    temp_dir(dir, sizeof(dir), "cgmove");
    copy_fixture("v2-host", dir);
    char procfs[4200], sysfs[4200];
    snprintf(procfs, sizeof(procfs), "%s/proc", dir);
    snprintf(sysfs, sizeof(sysfs), "%s/sys", dir);
    ms_options opts = {.size = sizeof(opts), .procfs = procfs, .sysfs = sysfs};
    ms_session *s;
    assert_int_equal(ms_session_open(&s, &opts), 0);
    ms_snapshot snap;
    ms_snapshot_init(&snap);

    assert_int_equal(ms_capture(s, 4242, MS_CAPTURE_CGROUP, &snap), 0);
    assert_string_equal(snap.cgroup.path, "/user.slice/user-1000.slice/session-1.scope");
    assert_true(snap.cgroup.unlimited);

    snprintf(file, sizeof(file), "%s/4242/cgroup", procfs);
    write_text(file, "0::/system.slice/db.service\n");
    assert_int_equal(ms_capture(s, 4242, MS_CAPTURE_CGROUP, &snap), 0);
    assert_string_equal(snap.cgroup.path, "/system.slice/db.service");
    assert_false(snap.cgroup.unlimited); /* db.service has a limit and no memory.peak */
    assert_true(ms_valid(&snap.cgroup, MS_CF_max_bytes));
    assert_false(ms_valid(&snap.cgroup, MS_CF_peak_bytes));

    ms_snapshot other;
    ms_snapshot_init(&other);
    assert_int_equal(ms_capture(s, 4343, MS_CAPTURE_CGROUP, &other), 0);
    assert_int_equal(snap.cgroup.current_bytes, other.cgroup.current_bytes);
    assert_int_equal(snap.cgroup.max_bytes, other.cgroup.max_bytes);

    ms_session_close(s);
    assert_int_equal(temp_dir_remove(dir), 0);
}

static void missing_pid_is_esrch_naming_the_pid(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(capture_cgroup("v2-host", 31337, &snap, err, sizeof(err)), MS_ESRCH);
    assert_contains(err, "31337");
}

static void malformed_proc_cgroup_line_is_a_parse_error(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(capture_cgroup("broken", 104, &snap, err, sizeof(err)), MS_EPARSE);
    assert_contains(err, fixture_file("broken", "proc/104/cgroup"));
    assert_contains(err, "this line has no colons");
}

static void text_in_a_cgroup_number_file_is_a_parse_error_naming_it(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(capture_cgroup("broken", 105, &snap, err, sizeof(err)), MS_EPARSE);
    assert_contains(err, fixture_file("broken", "sys/fs/cgroup/bad/memory.current"));
}

static void text_in_memory_events_is_a_parse_error_naming_it(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(capture_cgroup("broken", 106, &snap, err, sizeof(err)), MS_EPARSE);
    assert_contains(err, fixture_file("broken", "sys/fs/cgroup/badevents/memory.events"));
    assert_contains(err, "oom_kill");
}

static void mountinfo_ending_in_a_truncated_line_is_read_safely(void **state)
{
    (void)state;
    ms_snapshot snap;
    /* broken's mountinfo ends "41 22 0:40 / /sys/fs/bpf" with no options and no newline; the
     * capture reads it first, into a fresh session buffer */
    assert_int_equal(capture_cgroup("broken", 108, &snap, NULL, 0), 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V2);
    assert_string_equal(snap.cgroup.path, "/good");
    assert_int_equal(snap.cgroup.current_bytes, 8192);
    assert_int_equal(snap.cgroup.max_bytes, 1 * MIB);
}

/* ---------------------------------------------------------------------------------------- */
/* ms_session_probes                                                                        */
/* ---------------------------------------------------------------------------------------- */

#define NPROBES 6

static int probes(const char *fixture, pid_t pid, ms_probe_info *out)
{
    ms_session *s = fixture_session(fixture);
    memset(out, 0, sizeof(*out) * NPROBES);
    int n = ms_session_probes(s, pid, out, NPROBES);
    ms_session_close(s);
    return n;
}

static void probes_list_every_source_available_on_a_full_tree(void **state)
{
    (void)state;
    ms_probe_info p[NPROBES];
    assert_int_equal(probes("v1-host", 4242, p), NPROBES);
    static const char *const names[NPROBES] = {"statm",        "status",  "stat",
                                               "smaps_rollup", "meminfo", "cgroup"};
    for (int i = 0; i < NPROBES; i++) {
        assert_string_equal(p[i].name, names[i]);
        assert_true(p[i].available);
        assert_string_not_equal(p[i].detail, "");
    }
    assert_contains(p[5].detail, "v1 /app");
    assert_contains(p[5].detail, "/sys/fs/cgroup/memory/app");
}

static void probes_report_the_smaps_fallback_and_no_cgroup_on_old_kernels(void **state)
{
    (void)state;
    ms_probe_info p[NPROBES];
    assert_int_equal(probes("old-kernel", 4242, p), NPROBES);
    assert_string_equal(p[3].name, "smaps");
    assert_true(p[3].available);
    assert_contains(p[3].detail, "summed");
    assert_string_equal(p[5].name, "cgroup");
    assert_false(p[5].available);
    assert_contains(p[5].detail, "no memory cgroup");
}

static void probes_report_missing_files_and_a_missing_peak(void **state)
{
    (void)state;
    ms_probe_info p[NPROBES];
    /* v2-host 4343 has only statm and cgroup, and its cgroup has no memory.peak */
    assert_int_equal(probes("v2-host", 4343, p), NPROBES);
    assert_true(p[0].available);
    assert_false(p[1].available);
    assert_false(p[2].available);
    assert_false(p[3].available);
    assert_string_equal(p[3].name, "smaps_rollup");
    assert_true(p[4].available);
    assert_true(p[5].available);
    assert_contains(p[5].detail, "v2 /system.slice/db.service");
    assert_contains(p[5].detail, "no peak file");
}

static void probes_report_a_cgroup_error_as_unavailable(void **state)
{
    (void)state;
    ms_probe_info p[NPROBES];
    assert_int_equal(probes("broken", 104, p), NPROBES);
    assert_string_equal(p[5].name, "cgroup");
    assert_false(p[5].available);
    assert_contains(p[5].detail, "malformed");
}

static void probes_count_every_probe_but_fill_only_n(void **state)
{
    (void)state;
    ms_session *s = fixture_session("v1-host");
    ms_probe_info p[3];
    memset(p, 0, sizeof(p));
    strcpy(p[2].name, "untouched");
    assert_int_equal(ms_session_probes(s, 4242, p, 2), NPROBES);
    assert_string_equal(p[0].name, "statm");
    assert_string_equal(p[1].name, "status");
    assert_string_equal(p[2].name, "untouched");
    assert_int_equal(ms_session_probes(s, 4242, NULL, 0), NPROBES);
    ms_session_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hybrid_host_uses_the_v1_memory_controller),
        cmocka_unit_test(v1_reads_usage_limit_peak_and_oom_kills),
        cmocka_unit_test(v1_limit_of_page_counter_max_counts_as_unlimited),
        cmocka_unit_test(v2_max_means_unlimited_and_leaves_the_limit_invalid),
        cmocka_unit_test(v2_reads_current_peak_and_oom_kill_events),
        cmocka_unit_test(v2_without_memory_peak_leaves_peak_invalid_without_error),
        cmocka_unit_test(unlimited_flag_does_not_leak_into_the_next_capture),
        cmocka_unit_test(namespaced_mount_maps_the_cgroup_path_below_its_root),
        cmocka_unit_test(namespaced_mount_root_itself_reads_the_mount_point),
        cmocka_unit_test(cgroup_outside_the_mount_root_is_none),
        cmocka_unit_test(cgroup_sharing_only_a_name_prefix_with_the_root_is_outside_it),
        cmocka_unit_test(no_cgroup_mounts_is_version_none_not_an_error),
        cmocka_unit_test(a_process_moved_to_another_cgroup_is_followed_in_the_same_session),
        cmocka_unit_test(missing_pid_is_esrch_naming_the_pid),
        cmocka_unit_test(malformed_proc_cgroup_line_is_a_parse_error),
        cmocka_unit_test(text_in_a_cgroup_number_file_is_a_parse_error_naming_it),
        cmocka_unit_test(text_in_memory_events_is_a_parse_error_naming_it),
        cmocka_unit_test(mountinfo_ending_in_a_truncated_line_is_read_safely),
        cmocka_unit_test(probes_list_every_source_available_on_a_full_tree),
        cmocka_unit_test(probes_report_the_smaps_fallback_and_no_cgroup_on_old_kernels),
        cmocka_unit_test(probes_report_missing_files_and_a_missing_peak),
        cmocka_unit_test(probes_report_a_cgroup_error_as_unavailable),
        cmocka_unit_test(probes_count_every_probe_but_fill_only_n),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
