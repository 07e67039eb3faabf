/*
 * test_parse.c - the /proc readers on fixture trees: statm, status, stat, smaps_rollup, smaps,
 * meminfo, their error paths, and the line scanners ms__parse_u64() and ms__scan_keys().
 */
#include "helpers.h"

#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIB UINT64_C(1024)

static uint64_t page_bytes(void)
{
    return (uint64_t)sysconf(_SC_PAGESIZE);
}

/* "<fixture>/proc/<rel>": the path an error message must name. */
static const char *proc_file(const char *fixture, const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/proc/%s", fixture_path(fixture), rel);
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* Basic capture: statm                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void basic_capture_converts_statm_pages_to_bytes(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_BASIC, &snap, NULL, 0), 0);
    uint64_t page = page_bytes();
    /* statm: 25600 5120 1024 256 0 2048 0 */
    assert_int_equal(snap.process.vms_bytes, 25600 * page);
    assert_int_equal(snap.process.rss_bytes, 5120 * page);
    assert_int_equal(snap.process.shared_bytes, 1024 * page);
    assert_int_equal(snap.process.text_bytes, 256 * page);
    assert_int_equal(snap.process.data_bytes, 2048 * page);
    assert_int_equal(snap.pid, 4242);
    assert_int_equal(snap.captured, MS_CAPTURE_BASIC);
}

static void basic_capture_marks_exactly_the_statm_fields_valid(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_BASIC, &snap, NULL, 0), 0);
    uint64_t want = (UINT64_C(1) << MS_PF_rss_bytes) | (UINT64_C(1) << MS_PF_vms_bytes) |
                    (UINT64_C(1) << MS_PF_shared_bytes) | (UINT64_C(1) << MS_PF_text_bytes) |
                    (UINT64_C(1) << MS_PF_data_bytes);
    assert_int_equal(snap.process.valid, want);
    assert_false(ms_valid(&snap.process, MS_PF_pss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_uss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_peak_rss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_minor_faults));
    assert_false(ms_valid(&snap.process, MS_PF_threads));
    assert_int_equal(snap.system.valid, 0);
    assert_int_equal(snap.cgroup.valid, 0);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_NONE);
}

static void pid_0_reads_the_self_entries_of_procfs(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 0, MS_CAPTURE_BASIC, &snap, NULL, 0), 0);
    uint64_t page = page_bytes();
    /* self/statm: 1024 512 256 16 0 128 0 */
    assert_int_equal(snap.process.vms_bytes, 1024 * page);
    assert_int_equal(snap.process.rss_bytes, 512 * page);
    assert_int_equal(snap.process.data_bytes, 128 * page);
    assert_int_equal(snap.pid, getpid());
}

/* ---------------------------------------------------------------------------------------- */
/* Full capture: status, stat, smaps_rollup                                                 */
/* ---------------------------------------------------------------------------------------- */

static void full_capture_reads_every_status_field_in_bytes(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_FULL, &snap, NULL, 0), 0);
    assert_int_equal(snap.process.peak_vms_bytes, 204800 * KIB);
    assert_int_equal(snap.process.peak_rss_bytes, 40960 * KIB);
    assert_int_equal(snap.process.swap_bytes, 512 * KIB);
    assert_int_equal(snap.process.rss_anon_bytes, 16384 * KIB);
    assert_int_equal(snap.process.rss_file_bytes, 3072 * KIB);
    assert_int_equal(snap.process.rss_shmem_bytes, 1024 * KIB);
    assert_int_equal(snap.process.threads, 4); /* a count: not multiplied */
}

static void full_capture_reads_fault_counts_from_stat(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_FULL, &snap, NULL, 0), 0);
    assert_int_equal(snap.process.minor_faults, 1500);
    assert_int_equal(snap.process.major_faults, 7);
}

static void full_capture_reads_pss_and_uss_from_smaps_rollup(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_FULL, &snap, NULL, 0), 0);
    /* Pss 10240 kB; Pss_Dirty, Pss_Anon, ... must not be mistaken for it */
    assert_int_equal(snap.process.pss_bytes, 10240 * KIB);
    /* USS = Private_Clean 2048 kB + Private_Dirty 6144 kB */
    assert_int_equal(snap.process.uss_bytes, (2048 + 6144) * KIB);
}

static void full_capture_marks_every_process_field_valid(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_FULL, &snap, NULL, 0), 0);
    assert_int_equal(snap.process.valid, (UINT64_C(1) << MS_PF__COUNT) - 1);
    assert_int_equal(snap.captured, MS_CAPTURE_FULL);
}

static void process_capture_without_basic_reads_no_statm_field(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_PROCESS, &snap, NULL, 0), 0);
    assert_false(ms_valid(&snap.process, MS_PF_rss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_vms_bytes));
    assert_true(ms_valid(&snap.process, MS_PF_peak_rss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_pss_bytes)); /* smaps_rollup is MS_CAPTURE_PSS */
    assert_false(ms_valid(&snap.process, MS_PF_uss_bytes));
    assert_int_equal(snap.captured, MS_CAPTURE_PROCESS);
}

static void pss_capture_reads_smaps_rollup_alone(void **state)
{
    (void)state;
    ms_snapshot snap, full;
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_PSS, &snap, NULL, 0), 0);
    assert_int_equal(snap.captured, MS_CAPTURE_PSS);
    assert_true(ms_valid(&snap.process, MS_PF_pss_bytes));
    assert_true(ms_valid(&snap.process, MS_PF_uss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_rss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_peak_rss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_minor_faults));
    /* The same figures as a full capture's. */
    assert_int_equal(fixture_capture("v1-host", 4242, MS_CAPTURE_FULL, &full, NULL, 0), 0);
    assert_int_equal(snap.process.pss_bytes, full.process.pss_bytes);
    assert_int_equal(snap.process.uss_bytes, full.process.uss_bytes);
}

static void comm_with_spaces_and_parentheses_does_not_shift_stat_fields(void **state)
{
    (void)state;
    ms_snapshot snap;
    /* stat: 5151 (my (weird) prog) S 1 ... minflt 321 ... majflt 9 */
    assert_int_equal(fixture_capture("v1-host", 5151, MS_CAPTURE_PROCESS, &snap, NULL, 0), 0);
    assert_int_equal(snap.process.minor_faults, 321);
    assert_int_equal(snap.process.major_faults, 9);
}

static void kernel_thread_without_vm_lines_leaves_them_invalid_without_error(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(fixture_capture("v1-host", 2, MS_CAPTURE_BASIC | MS_CAPTURE_PROCESS, &snap,
                                     err, sizeof(err)),
                     0);
    assert_string_equal(err, "");
    assert_false(ms_valid(&snap.process, MS_PF_peak_rss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_peak_vms_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_swap_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_rss_anon_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_rss_file_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_rss_shmem_bytes));
    /* its smaps_rollup is empty */
    assert_false(ms_valid(&snap.process, MS_PF_pss_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_uss_bytes));
    /* what it does have is read */
    assert_true(ms_valid(&snap.process, MS_PF_threads));
    assert_int_equal(snap.process.threads, 1);
    assert_true(ms_valid(&snap.process, MS_PF_rss_bytes));
    assert_int_equal(snap.process.rss_bytes, 0);
    assert_true(ms_valid(&snap.process, MS_PF_minor_faults));
}

static void kernel_thread_pss_is_not_supported_not_exited(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    /* an empty smaps_rollup and PF_KTHREAD in stat: no address space, not a process gone */
    assert_int_equal(fixture_capture("v1-host", 2, MS_CAPTURE_FULL, &snap, err, sizeof(err)),
                     MS_ENOTSUP);
    assert_string_equal(err, "process 2 has no address space (kernel thread)");
    /* everything but PSS reads */
    assert_int_equal(fixture_capture("v1-host", 2, MS_CAPTURE_FULL & ~(unsigned)MS_CAPTURE_PSS,
                                     &snap, err, sizeof(err)),
                     0);
    assert_int_equal(snap.process.rss_bytes, 0);
    assert_true(ms_valid(&snap.system, MS_SF_total_bytes));
}

static void zombie_without_address_space_has_exited(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    /* 7: state Z, statm zeros, an empty smaps_rollup */
    assert_int_equal(fixture_capture("v1-host", 7, MS_CAPTURE_PSS, &snap, err, sizeof(err)),
                     MS_ESRCH);
    assert_string_equal(err, "process 7 exited");
}

/* ---------------------------------------------------------------------------------------- */
/* Old kernels: smaps instead of smaps_rollup, no RssAnon/MemAvailable                      */
/* ---------------------------------------------------------------------------------------- */

static void smaps_fallback_sums_pss_over_every_mapping(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("old-kernel", 4242, MS_CAPTURE_FULL, &snap, NULL, 0), 0);
    assert_true(ms_valid(&snap.process, MS_PF_pss_bytes));
    /* three mappings: Pss 1024 + 2048 + 132 kB */
    assert_int_equal(snap.process.pss_bytes, (1024 + 2048 + 132) * KIB);
}

static void smaps_fallback_sums_private_pages_into_uss(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("old-kernel", 4242, MS_CAPTURE_FULL, &snap, NULL, 0), 0);
    assert_true(ms_valid(&snap.process, MS_PF_uss_bytes));
    /* Private_Clean 512 + 0 + 0, Private_Dirty 0 + 2048 + 132 */
    assert_int_equal(snap.process.uss_bytes, (512 + 2048 + 132) * KIB);
}

static void status_without_rss_breakdown_leaves_it_invalid(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("old-kernel", 4242, MS_CAPTURE_FULL, &snap, NULL, 0), 0);
    assert_false(ms_valid(&snap.process, MS_PF_rss_anon_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_rss_file_bytes));
    assert_false(ms_valid(&snap.process, MS_PF_rss_shmem_bytes));
    assert_true(ms_valid(&snap.process, MS_PF_peak_rss_bytes));
    assert_int_equal(snap.process.peak_rss_bytes, 8192 * KIB);
    assert_int_equal(snap.process.threads, 2);
}

/* ---------------------------------------------------------------------------------------- */
/* meminfo                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void meminfo_fields_are_read_in_bytes(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("v1-host", 0, MS_CAPTURE_SYSTEM, &snap, NULL, 0), 0);
    assert_int_equal(snap.system.valid, (UINT64_C(1) << MS_SF__COUNT) - 1);
    assert_int_equal(snap.system.total_bytes, 16777216 * KIB);
    assert_int_equal(snap.system.available_bytes, 12582912 * KIB);
    assert_int_equal(snap.system.free_bytes, 8388608 * KIB);
    assert_int_equal(snap.system.swap_total_bytes, 2097152 * KIB);
    assert_int_equal(snap.system.swap_free_bytes, 1048576 * KIB);
    assert_int_equal(snap.captured, MS_CAPTURE_SYSTEM);
    assert_int_equal(snap.process.valid, 0);
}

static void meminfo_without_memavailable_leaves_only_available_invalid(void **state)
{
    (void)state;
    ms_snapshot snap;
    assert_int_equal(fixture_capture("old-kernel", 4242, MS_CAPTURE_SYSTEM, &snap, NULL, 0), 0);
    assert_false(ms_valid(&snap.system, MS_SF_available_bytes));
    assert_true(ms_valid(&snap.system, MS_SF_total_bytes));
    assert_true(ms_valid(&snap.system, MS_SF_free_bytes));
    assert_true(ms_valid(&snap.system, MS_SF_swap_total_bytes));
    assert_true(ms_valid(&snap.system, MS_SF_swap_free_bytes));
    assert_int_equal(snap.system.total_bytes, 4194304 * KIB);
    assert_int_equal(snap.system.free_bytes, 1048576 * KIB);
}

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void missing_pid_is_esrch_naming_the_pid(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(fixture_capture("v1-host", 9999, MS_CAPTURE_BASIC, &snap, err, sizeof(err)),
                     MS_ESRCH);
    assert_contains(err, "9999");
}

static void missing_pid_in_a_process_capture_is_esrch(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(fixture_capture("v1-host", 9999, MS_CAPTURE_PROCESS, &snap, err, sizeof(err)),
                     MS_ESRCH);
    assert_contains(err, "9999");
}

static void missing_file_of_an_existing_pid_is_enoent_not_esrch(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    /* v2-host/proc/4343 has statm and cgroup but no status */
    assert_int_equal(fixture_capture("v2-host", 4343, MS_CAPTURE_PROCESS, &snap, err, sizeof(err)),
                     MS_ENOENT);
    assert_contains(err, proc_file("v2-host", "4343/status"));
}

static void truncated_statm_is_a_parse_error_naming_statm(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(fixture_capture("broken", 101, MS_CAPTURE_BASIC, &snap, err, sizeof(err)),
                     MS_EPARSE);
    assert_contains(err, proc_file("broken", "101/statm"));
}

static void non_numeric_vmhwm_is_a_parse_error_naming_status_and_key(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(fixture_capture("broken", 102, MS_CAPTURE_PROCESS, &snap, err, sizeof(err)),
                     MS_EPARSE);
    assert_contains(err, proc_file("broken", "102/status"));
    assert_contains(err, "VmHWM");
}

static void stat_without_closing_parenthesis_is_a_parse_error_naming_stat(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(fixture_capture("broken", 103, MS_CAPTURE_PROCESS, &snap, err, sizeof(err)),
                     MS_EPARSE);
    assert_contains(err, proc_file("broken", "103/stat"));
}

static void smaps_rollup_value_in_unknown_unit_is_a_parse_error(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(fixture_capture("broken", 107, MS_CAPTURE_PSS, &snap, err, sizeof(err)),
                     MS_EPARSE);
    assert_contains(err, proc_file("broken", "107/smaps_rollup"));
    assert_contains(err, "Pss");
}

static void statm_page_count_past_bytes_is_a_parse_error_not_a_wrapped_size(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    /* 2^52 pages: 2^64 bytes and more with any page size */
    assert_int_equal(fixture_capture("broken", 109, MS_CAPTURE_BASIC, &snap, err, sizeof(err)),
                     MS_EPARSE);
    assert_contains(err, proc_file("broken", "109/statm"));
    assert_contains(err, "overflows");
}

static void uss_past_2_64_is_a_parse_error_not_a_wrapped_sum(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    /* Private_Clean and Private_Dirty fit alone (2^54 - 1 kB each), not summed */
    assert_int_equal(fixture_capture("broken", 110, MS_CAPTURE_PSS, &snap, err, sizeof(err)),
                     MS_EPARSE);
    assert_contains(err, proc_file("broken", "110/smaps_rollup"));
    assert_contains(err, "overflows");
}

static void a_wrong_procfs_root_is_named_with_where_it_came_from(void **state)
{
    (void)state;
    ms_session *s;
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    /* from the environment: the variable is named */
    setenv("MEMSNAP_PROCFS", "/nonexistent-memsnap-root", 1);
    assert_int_equal(ms_session_open(&s, NULL), 0);
    unsetenv("MEMSNAP_PROCFS");
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &snap), MS_ENOENT);
    assert_string_equal(ms_session_error(s),
                        "MEMSNAP_PROCFS=/nonexistent-memsnap-root: No such file or directory");
    ms_session_close(s);
    /* given as an option, and a file rather than a directory */
    ms_options opts = {.size = sizeof(opts), .procfs = "/dev/null"};
    assert_int_equal(ms_session_open(&s, &opts), 0);
    assert_int_equal(ms_capture(s, 42, MS_CAPTURE_BASIC, &snap), MS_ENOENT);
    assert_string_equal(ms_session_error(s), "procfs /dev/null: not a directory");
    ms_session_close(s);
}

static void malformed_meminfo_is_a_parse_error_naming_meminfo(void **state)
{
    (void)state;
    ms_snapshot snap;
    char err[512];
    assert_int_equal(
        fixture_capture("broken-meminfo", 0, MS_CAPTURE_SYSTEM, &snap, err, sizeof(err)),
        MS_EPARSE);
    assert_contains(err, proc_file("broken-meminfo", "meminfo"));
    assert_contains(err, "MemTotal");
}

static void successful_capture_clears_the_previous_error(void **state)
{
    (void)state;
    ms_session *s = fixture_session("broken");
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, 101, MS_CAPTURE_BASIC, &snap), MS_EPARSE);
    assert_string_not_equal(ms_session_error(s), "");
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_SYSTEM, &snap), 0);
    assert_string_equal(ms_session_error(s), "");
    ms_session_close(s);
}

static void capture_rejects_unknown_flags_and_uninitialised_snapshots(void **state)
{
    (void)state;
    ms_session *s = fixture_session("v1-host");
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, 4242, 1u << 30, &snap), MS_EINVAL);
    assert_int_equal(ms_capture(s, -1, MS_CAPTURE_BASIC, &snap), MS_EINVAL);
    snap.size = 0;
    assert_int_equal(ms_capture(s, 4242, MS_CAPTURE_BASIC, &snap), MS_EINVAL);
    assert_int_equal(ms_capture(NULL, 4242, MS_CAPTURE_BASIC, &snap), MS_EINVAL);
    ms_session_close(s);
}

static void one_session_keeps_processes_apart(void **state)
{
    (void)state;
    ms_session *s = fixture_session("v1-host");
    ms_snapshot a, b, again;
    ms_snapshot_init(&a);
    ms_snapshot_init(&b);
    ms_snapshot_init(&again);
    assert_int_equal(ms_capture(s, 4242, MS_CAPTURE_FULL, &a), 0);
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &b), 0);
    assert_int_equal(ms_capture(s, 4242, MS_CAPTURE_FULL, &again), 0);
    assert_int_equal(a.process.rss_bytes, 5120 * page_bytes());
    assert_int_equal(b.process.rss_bytes, 512 * page_bytes());
    /* the kept-open descriptors read the same values again */
    assert_int_equal(again.process.rss_bytes, a.process.rss_bytes);
    assert_int_equal(again.process.pss_bytes, a.process.pss_bytes);
    assert_int_equal(again.cgroup.current_bytes, a.cgroup.current_bytes);
    assert_int_equal(again.process.valid, a.process.valid);
    ms_session_close(s);
}

/* ---------------------------------------------------------------------------------------- */
/* ms__parse_u64                                                                            */
/* ---------------------------------------------------------------------------------------- */

static const char *parse(const char *text, uint64_t *out)
{
    return ms__parse_u64(text, text + strlen(text), out);
}

static void parse_u64_stops_at_the_first_non_digit(void **state)
{
    (void)state;
    const char *text = "123 kB";
    uint64_t v = 0;
    assert_ptr_equal(parse(text, &v), text + 3);
    assert_int_equal(v, 123);
}

static void parse_u64_reads_zero(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_non_null(parse("0", &v));
    assert_int_equal(v, 0);
}

static void parse_u64_reads_uint64_max(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_non_null(parse("18446744073709551615", &v));
    assert_true(v == UINT64_MAX);
}

static void parse_u64_rejects_overflow_and_leaves_out_alone(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_null(parse("18446744073709551616", &v));
    assert_null(parse("99999999999999999999", &v));
    assert_null(parse("184467440737095516150", &v));
    assert_int_equal(v, 7);
}

static void parse_u64_rejects_empty_input_and_non_digits(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_null(parse("", &v));
    assert_null(parse("abc", &v));
    assert_null(parse("-1", &v));
    assert_null(parse("+1", &v));
    assert_null(parse(" 1", &v));
    assert_int_equal(v, 7);
}

static void parse_u64_never_reads_past_end(void **state)
{
    (void)state;
    const char *text = "12345";
    uint64_t v = 0;
    assert_ptr_equal(ms__parse_u64(text, text + 3, &v), text + 3);
    assert_int_equal(v, 123);
    assert_null(ms__parse_u64(text, text, &v));
}

/* ---------------------------------------------------------------------------------------- */
/* ms__scan_keys                                                                            */
/* ---------------------------------------------------------------------------------------- */

enum { K_HWM, K_THREADS, K_PSS };
static const struct ms__key test_keys[] = {
    MS__KEY("VmHWM", K_HWM),
    MS__KEY("Threads", K_THREADS),
    MS__KEY("Pss", K_PSS),
};

/* Scans text with test_keys in a throwaway session; the session's error goes into err. */
static int scan(const char *text, bool sum, uint64_t *vals, uint64_t *found, char *err,
                size_t errlen)
{
    ms_session *s = fixture_session("v1-host");
    *found = 0;
    int rc = ms__scan_keys(s, "test-file", text, strlen(text), test_keys, 3, vals, found, sum);
    if (err)
        snprintf(err, errlen, "%s", ms_session_error(s));
    ms_session_close(s);
    return rc;
}

static void scan_keys_multiplies_kb_values_and_keeps_counts(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    assert_int_equal(
        scan("Name:\tfoo bar\nVmHWM:\t   10 kB\nThreads:\t4", false, vals, &found, NULL, 0), 0);
    assert_int_equal(found, (1u << K_HWM) | (1u << K_THREADS));
    assert_int_equal(vals[K_HWM], 10240);
    assert_int_equal(vals[K_THREADS], 4);
}

static void scan_keys_matches_whole_keys_not_prefixes(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    assert_int_equal(scan("Pss_Dirty: 5 kB\nPssX: 6 kB\nPss: 7 kB\nPss_Anon: 8 kB\n", false, vals,
                          &found, NULL, 0),
                     0);
    assert_int_equal(found, 1u << K_PSS);
    assert_int_equal(vals[K_PSS], 7 * KIB);
}

static void scan_keys_accepts_key_space_value_lines(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    assert_int_equal(scan("Threads 12\n", false, vals, &found, NULL, 0), 0);
    assert_int_equal(vals[K_THREADS], 12);
}

static void scan_keys_sums_repeated_keys_only_in_sum_mode(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    const char *text = "Pss: 1 kB\nPss: 2 kB\nPss: 4 kB\n";
    assert_int_equal(scan(text, true, vals, &found, NULL, 0), 0);
    assert_int_equal(vals[K_PSS], 7 * KIB);
    assert_int_equal(scan(text, false, vals, &found, NULL, 0), 0);
    assert_int_equal(vals[K_PSS], 4 * KIB);
}

static void scan_keys_leaves_absent_keys_unfound(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    assert_int_equal(scan("Name:\tx\nVmRSS:\t1 kB\n", false, vals, &found, NULL, 0), 0);
    assert_int_equal(found, 0);
    assert_int_equal(scan("", false, vals, &found, NULL, 0), 0);
    assert_int_equal(found, 0);
}

static void scan_keys_rejects_an_empty_value(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    char err[512];
    assert_int_equal(scan("VmHWM:\n", false, vals, &found, err, sizeof(err)), MS_EPARSE);
    assert_contains(err, "test-file");
    assert_contains(err, "VmHWM");
    assert_int_equal(scan("VmHWM:", false, vals, &found, err, sizeof(err)), MS_EPARSE);
    assert_int_equal(scan("VmHWM:    kB\n", false, vals, &found, err, sizeof(err)), MS_EPARSE);
}

static void scan_keys_rejects_a_number_that_overflows(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    char err[512];
    assert_int_equal(
        scan("Threads:\t18446744073709551616\n", false, vals, &found, err, sizeof(err)), MS_EPARSE);
    assert_contains(err, "test-file");
    assert_contains(err, "Threads");
}

static void scan_keys_rejects_a_kb_value_whose_bytes_overflow(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    char err[512];
    /* UINT64_MAX / 1024 still fits once multiplied, one more does not */
    assert_int_equal(scan("VmHWM: 18014398509481983 kB\n", false, vals, &found, NULL, 0), 0);
    assert_true(vals[K_HWM] == UINT64_C(18014398509481983) * 1024);
    assert_int_equal(scan("VmHWM: 18014398509481984 kB\n", false, vals, &found, err, sizeof(err)),
                     MS_EPARSE);
    assert_contains(err, "test-file");
    assert_contains(err, "VmHWM");
    assert_contains(err, "overflows");
}

static void scan_keys_rejects_trailing_garbage(void **state)
{
    (void)state;
    uint64_t vals[3], found;
    char err[512];
    assert_int_equal(scan("VmHWM: 12 MB\n", false, vals, &found, err, sizeof(err)), MS_EPARSE);
    assert_contains(err, "VmHWM");
    assert_int_equal(scan("Threads: 12x\n", false, vals, &found, err, sizeof(err)), MS_EPARSE);
    assert_int_equal(scan("Threads: -3\n", false, vals, &found, err, sizeof(err)), MS_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basic_capture_converts_statm_pages_to_bytes),
        cmocka_unit_test(basic_capture_marks_exactly_the_statm_fields_valid),
        cmocka_unit_test(pid_0_reads_the_self_entries_of_procfs),
        cmocka_unit_test(full_capture_reads_every_status_field_in_bytes),
        cmocka_unit_test(full_capture_reads_fault_counts_from_stat),
        cmocka_unit_test(full_capture_reads_pss_and_uss_from_smaps_rollup),
        cmocka_unit_test(full_capture_marks_every_process_field_valid),
        cmocka_unit_test(process_capture_without_basic_reads_no_statm_field),
        cmocka_unit_test(pss_capture_reads_smaps_rollup_alone),
        cmocka_unit_test(comm_with_spaces_and_parentheses_does_not_shift_stat_fields),
        cmocka_unit_test(kernel_thread_without_vm_lines_leaves_them_invalid_without_error),
        cmocka_unit_test(kernel_thread_pss_is_not_supported_not_exited),
        cmocka_unit_test(zombie_without_address_space_has_exited),
        cmocka_unit_test(smaps_fallback_sums_pss_over_every_mapping),
        cmocka_unit_test(smaps_fallback_sums_private_pages_into_uss),
        cmocka_unit_test(status_without_rss_breakdown_leaves_it_invalid),
        cmocka_unit_test(meminfo_fields_are_read_in_bytes),
        cmocka_unit_test(meminfo_without_memavailable_leaves_only_available_invalid),
        cmocka_unit_test(missing_pid_is_esrch_naming_the_pid),
        cmocka_unit_test(missing_pid_in_a_process_capture_is_esrch),
        cmocka_unit_test(missing_file_of_an_existing_pid_is_enoent_not_esrch),
        cmocka_unit_test(truncated_statm_is_a_parse_error_naming_statm),
        cmocka_unit_test(non_numeric_vmhwm_is_a_parse_error_naming_status_and_key),
        cmocka_unit_test(stat_without_closing_parenthesis_is_a_parse_error_naming_stat),
        cmocka_unit_test(smaps_rollup_value_in_unknown_unit_is_a_parse_error),
        cmocka_unit_test(statm_page_count_past_bytes_is_a_parse_error_not_a_wrapped_size),
        cmocka_unit_test(uss_past_2_64_is_a_parse_error_not_a_wrapped_sum),
        cmocka_unit_test(a_wrong_procfs_root_is_named_with_where_it_came_from),
        cmocka_unit_test(malformed_meminfo_is_a_parse_error_naming_meminfo),
        cmocka_unit_test(successful_capture_clears_the_previous_error),
        cmocka_unit_test(capture_rejects_unknown_flags_and_uninitialised_snapshots),
        cmocka_unit_test(one_session_keeps_processes_apart),
        cmocka_unit_test(parse_u64_stops_at_the_first_non_digit),
        cmocka_unit_test(parse_u64_reads_zero),
        cmocka_unit_test(parse_u64_reads_uint64_max),
        cmocka_unit_test(parse_u64_rejects_overflow_and_leaves_out_alone),
        cmocka_unit_test(parse_u64_rejects_empty_input_and_non_digits),
        cmocka_unit_test(parse_u64_never_reads_past_end),
        cmocka_unit_test(scan_keys_multiplies_kb_values_and_keeps_counts),
        cmocka_unit_test(scan_keys_matches_whole_keys_not_prefixes),
        cmocka_unit_test(scan_keys_accepts_key_space_value_lines),
        cmocka_unit_test(scan_keys_sums_repeated_keys_only_in_sum_mode),
        cmocka_unit_test(scan_keys_leaves_absent_keys_unfound),
        cmocka_unit_test(scan_keys_rejects_an_empty_value),
        cmocka_unit_test(scan_keys_rejects_a_number_that_overflows),
        cmocka_unit_test(scan_keys_rejects_a_kb_value_whose_bytes_overflow),
        cmocka_unit_test(scan_keys_rejects_trailing_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
