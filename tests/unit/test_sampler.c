/*
 * test_sampler.c - the public sampler (memsnap.h, "Sampling") over the cli-basic fixture tree:
 * which samples are full, what a statm-only sample carries from the last full one, the PSS
 * walk and its age, the --tree members, a process that is gone, peak windows, and the
 * background thread.
 */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE_PID 4242
#define KIB         1024ull

/* A sampler of the fixture's process with the given interval, full interval and flags. */
static ms_sampler *open_sampler(uint64_t interval_ns, uint64_t full_ns, unsigned flags)
{
    char procfs[4096], sysfs[4096];
    snprintf(procfs, sizeof(procfs), "%s/proc", fixture_path("cli-basic"));
    snprintf(sysfs, sizeof(sysfs), "%s/sys", fixture_path("cli-basic"));
    const ms_sampler_options o = {.size = sizeof(o),
                                  .pid = FIXTURE_PID,
                                  .interval_ns = interval_ns,
                                  .full_interval_ns = full_ns,
                                  .flags = flags | MS_SAMPLER_NO_GPU,
                                  .procfs = procfs,
                                  .sysfs = sysfs};
    ms_sampler *s = NULL;
    assert_int_equal(ms_sampler_open(&s, &o), 0);
    assert_non_null(s);
    return s;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The first sample is full; samples inside the full interval re-read statm only and carry the
 * last full figures; one after the full interval is full again. */
static void test_schedule_full_then_light(void **state)
{
    (void)state;
    ms_sampler *s = open_sampler(1000000, 50 * 1000000ull, 0);
    assert_int_equal(ms_sampler_due(s), 0); /* nothing taken yet: due now */
    assert_null(ms_sampler_snapshot(s));
    ms_sample a = {.size = sizeof(a)}, b = {.size = sizeof(b)}, c = {.size = sizeof(c)};
    assert_int_equal(ms_sampler_take(s, &a), 0);
    assert_true(a.full);
    assert_int_equal(a.seq, 0);
    assert_true(ms_valid(&a.snap->process, MS_PF_peak_rss_bytes));
    assert_true(ms_valid(&a.snap->cgroup, MS_CF_max_bytes));
    assert_non_null(ms_sampler_snapshot(s));
    assert_true(ms_sampler_due(s) > 0);
    assert_int_equal(ms_sampler_take(s, &b), 0);
    assert_false(b.full);
    assert_int_equal(b.seq, 1);
    /* statm fresh, the rest repeated from the full sample */
    assert_true(ms_valid(&b.snap->process, MS_PF_rss_bytes));
    assert_true(ms_valid(&b.snap->process, MS_PF_peak_rss_bytes));
    assert_int_equal(b.snap->process.peak_rss_bytes, 8192 * KIB);
    assert_int_equal(b.snap->cgroup.max_bytes, 104857600);
    sleep_ms(60);
    assert_int_equal(ms_sampler_take(s, &c), 0);
    assert_true(c.full);
    ms_sampler_close(s);
}

/* MS_SAMPLER_EXACT_FULL with a full interval of 0: every sample is full and walks. */
static void test_schedule_exact_every_full(void **state)
{
    (void)state;
    ms_sampler *s = open_sampler(1000000, 0, MS_SAMPLER_EXACT_FULL);
    for (int i = 0; i < 4; i++) {
        ms_sample x = {.size = sizeof(x)};
        assert_int_equal(ms_sampler_take(s, &x), 0);
        assert_true(x.full);
        assert_true(x.walked);
        assert_int_equal(x.pss_time_ns, x.snap->timestamp_ns);
    }
    ms_sampler_close(s);
}

/* MS_SAMPLER_LIGHT: never full, statm only. */
static void test_schedule_light_only(void **state)
{
    (void)state;
    ms_sampler *s = open_sampler(1000000, 0, MS_SAMPLER_LIGHT);
    ms_sample x = {.size = sizeof(x)};
    assert_int_equal(ms_sampler_take(s, &x), 0);
    assert_false(x.full);
    assert_true(ms_valid(&x.snap->process, MS_PF_rss_bytes));
    assert_false(ms_valid(&x.snap->process, MS_PF_peak_rss_bytes));
    assert_null(ms_sampler_snapshot(s));
    ms_sampler_close(s);
}

/* The first full sample walks the page tables: PSS and USS of smaps_rollup, age 0; a light
 * sample carries them with the walk's time. */
static void test_pss_walk_and_age(void **state)
{
    (void)state;
    ms_sampler *s = open_sampler(1000000, 50 * 1000000ull, 0);
    ms_sample a = {.size = sizeof(a)}, b = {.size = sizeof(b)};
    assert_int_equal(ms_sampler_take(s, &a), 0);
    assert_true(a.walked);
    assert_true(ms_valid(&a.snap->process, MS_PF_pss_bytes));
    assert_int_equal(a.snap->process.pss_bytes, 2500 * KIB);
    assert_int_equal(a.snap->process.uss_bytes, 2000 * KIB);
    uint64_t walked_at = a.pss_time_ns;
    assert_int_equal(walked_at, a.snap->timestamp_ns);
    assert_int_equal(ms_sampler_take(s, &b), 0);
    assert_false(b.walked);
    assert_int_equal(b.pss_time_ns, walked_at);
    assert_int_equal(b.snap->process.pss_bytes, 2500 * KIB);
    ms_sampler_close(s);
}

/* --tree in a fixture tree (no children lists): the process alone, found by the stat scan,
 * with its command name (spaces and parentheses) and figures. */
static void test_tree_members(void **state)
{
    (void)state;
    ms_sampler *s = open_sampler(1000000, 0, MS_SAMPLER_EXACT_FULL | MS_SAMPLER_TREE);
    ms_sample x = {.size = sizeof(x)};
    assert_int_equal(ms_sampler_take(s, &x), 0);
    assert_true(x.tree_valid);
    assert_int_equal(x.tree_count, 1);
    assert_int_equal(x.tree[0].pid, FIXTURE_PID);
    assert_string_equal(x.tree[0].comm, "fix (ture) x");
    assert_true(x.tree[0].rss_valid);
    assert_int_equal(x.tree[0].rss_bytes, x.snap->process.rss_bytes);
    assert_true(x.tree[0].pss_valid);
    ms_sampler_close(s);
}

/* A process that is not there: MS_ESRCH with a message, and the schedule moves on. */
static void test_gone(void **state)
{
    (void)state;
    char procfs[4096];
    snprintf(procfs, sizeof(procfs), "%s/proc", fixture_path("cli-basic"));
    const ms_sampler_options o = {.size = sizeof(o), .pid = 999999, .procfs = procfs};
    ms_sampler *s = NULL;
    assert_int_equal(ms_sampler_open(&s, &o), 0);
    ms_sample x = {.size = sizeof(x)};
    assert_int_equal(ms_sampler_take(s, &x), MS_ESRCH);
    assert_true(strlen(ms_last_error()) > 0);
    assert_true(ms_sampler_due(s) > 0);
    ms_snapshot *snap = malloc(sizeof(*snap));
    ms_snapshot_init(snap);
    assert_int_equal(ms_sampler_latest(s, snap), MS_ENOENT);
    free(snap);
    ms_sampler_close(s);
}

/* Bad options are refused with a message. */
static void test_open_invalid(void **state)
{
    (void)state;
    ms_sampler *s = (ms_sampler *)1;
    assert_int_equal(ms_sampler_open(&s, NULL), MS_EINVAL);
    assert_null(s);
    const ms_sampler_options o = {.size = 3};
    assert_int_equal(ms_sampler_open(&s, &o), MS_EINVAL);
    assert_true(strlen(ms_last_error()) > 0);
}

/* A window sees every sample taken while it is open: the highest RSS and PSS, the count. */
static void test_window_peak(void **state)
{
    (void)state;
    ms_sampler *s = open_sampler(1000000, 0, MS_SAMPLER_EXACT_FULL);
    unsigned id, other;
    assert_int_equal(ms_sampler_window_open(s, &id), 0);
    ms_sample x = {.size = sizeof(x)};
    assert_int_equal(ms_sampler_take(s, &x), 0);
    assert_int_equal(ms_sampler_window_open(s, &other), 0);
    assert_int_not_equal(id, other);
    assert_int_equal(ms_sampler_take(s, &x), 0);
    ms_peak p = {.size = sizeof(p)};
    assert_int_equal(ms_sampler_window_read(s, id, &p), 0);
    assert_int_equal(p.samples, 2);
    assert_true(p.rss_valid);
    assert_int_equal(p.rss_bytes, x.snap->process.rss_bytes);
    assert_true(p.pss_valid);
    assert_int_equal(p.pss_bytes, 2500 * KIB);
    assert_int_equal(ms_sampler_window_close(s, other, &p), 0);
    assert_int_equal(p.samples, 1);
    assert_int_equal(ms_sampler_window_close(s, id, NULL), 0);
    assert_int_equal(ms_sampler_window_close(s, id, &p), MS_EINVAL);
    ms_sampler_close(s);
}

/* On its own thread: windows fill while the caller sleeps; take is refused meanwhile; the
 * latest sample is readable; stop ends it. */
static void test_background_thread(void **state)
{
    (void)state;
    ms_sampler *s = open_sampler(1000000, 0, MS_SAMPLER_LIGHT);
    unsigned id;
    assert_int_equal(ms_sampler_window_open(s, &id), 0);
    assert_int_equal(ms_sampler_start(s), 0);
    assert_int_equal(ms_sampler_start(s), MS_EINVAL);
    sleep_ms(30);
    ms_sample x = {.size = sizeof(x)};
    assert_int_equal(ms_sampler_take(s, &x), MS_EINVAL);
    ms_snapshot *snap = malloc(sizeof(*snap));
    ms_snapshot_init(snap);
    assert_int_equal(ms_sampler_latest(s, snap), 0);
    assert_int_equal(snap->pid, FIXTURE_PID);
    assert_int_equal(snap->size, sizeof(*snap));
    free(snap);
    ms_peak p = {.size = sizeof(p)};
    assert_int_equal(ms_sampler_window_close(s, id, &p), 0);
    assert_true(p.samples >= 2);
    assert_true(p.rss_valid);
    ms_sampler_stop(s);
    assert_int_equal(ms_sampler_take(s, &x), 0); /* the caller's again */
    ms_sampler_close(s);
}

/* With a flight recorder, every sample goes into its ring: a dump's events.json holds them. */
static void test_flight_ring(void **state)
{
    (void)state;
    char dir[] = "/tmp/memsnap-sampler-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ms_flight *f = NULL;
    const ms_flight_options fo = {.size = sizeof(fo), .dump_dir = dir, .buffer_size = 4};
    assert_int_equal(ms_flight_open(&f, &fo), 0);
    char procfs[4096];
    snprintf(procfs, sizeof(procfs), "%s/proc", fixture_path("cli-basic"));
    const ms_sampler_options o = {.size = sizeof(o),
                                  .pid = FIXTURE_PID,
                                  .flags = MS_SAMPLER_LIGHT,
                                  .procfs = procfs,
                                  .flight = f};
    ms_sampler *s = NULL;
    assert_int_equal(ms_sampler_open(&s, &o), 0);
    ms_sample x = {.size = sizeof(x)};
    for (int i = 0; i < 3; i++)
        assert_int_equal(ms_sampler_take(s, &x), 0);
    char path[4096];
    assert_int_equal(ms_flight_dump(f, "cpu", FIXTURE_PID, "test", NULL, path, sizeof(path)), 0);
    char events[4200];
    snprintf(events, sizeof(events), "%s/events.json", path);
    FILE *fp = fopen(events, "r");
    assert_non_null(fp);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    int samples = 0;
    for (const char *p = buf; (p = strstr(p, "memsnap.snapshot/1")) != NULL; p++)
        samples++;
    assert_int_equal(samples, 3);
    ms_sampler_close(s);
    ms_flight_close(f);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_full_then_light),
        cmocka_unit_test(test_schedule_exact_every_full),
        cmocka_unit_test(test_schedule_light_only),
        cmocka_unit_test(test_pss_walk_and_age),
        cmocka_unit_test(test_tree_members),
        cmocka_unit_test(test_gone),
        cmocka_unit_test(test_open_invalid),
        cmocka_unit_test(test_window_peak),
        cmocka_unit_test(test_background_thread),
        cmocka_unit_test(test_flight_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
