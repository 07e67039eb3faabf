/*
 * test_alerts.c - the public alerts (memsnap.h, "Alerts") and the timeline writer ("Timelines:
 * writing") over a snapshot of the cli-basic fixture (its cgroup at 50% of 100 MiB, the system
 * at 25%): the tightest limit, levels rising and re-arming, OOM events while sampling and after
 * the command ended, and the records the writer gives in both formats.
 */
#include "helpers.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024ull * 1024)

static ms_snapshot *fixture_snapshot(void)
{
    ms_snapshot *s = malloc(sizeof(*s));
    assert_non_null(s);
    ms_snapshot_init(s);
    assert_int_equal(fixture_capture("cli-basic", 4242, MS_CAPTURE_FULL, s, NULL, 0), 0);
    return s;
}

/* The cgroup (50%) is tighter than the system (25%); host_only leaves GPUs out. */
static void test_tightest(void **state)
{
    (void)state;
    ms_snapshot *s = fixture_snapshot();
    ms_usage u;
    assert_int_equal(ms_usage_tightest(s, false, &u), 0);
    assert_string_equal(u.metric, "cgroup");
    assert_int_equal(u.used_bytes, 50 * MIB);
    assert_int_equal(u.limit_bytes, 100 * MIB);
    assert_true(u.percent > 49.99 && u.percent < 50.01);
    s->cgroup.unlimited = true; /* then the system's */
    assert_int_equal(ms_usage_tightest(s, true, &u), 0);
    assert_string_equal(u.metric, "system");
    assert_true(u.percent > 24.99 && u.percent < 25.01);
    ms_snapshot *none = malloc(sizeof(*none));
    ms_snapshot_init(none);
    assert_int_equal(ms_usage_tightest(none, false, &u), MS_ENOENT);
    free(none);
    free(s);
}

static ms_alerts *open_alerts(double warn, double crit, const char *own)
{
    const ms_alerts_options o = {
        .size = sizeof(o), .warning_pct = warn, .critical_pct = crit, .own_cgroup = own};
    ms_alerts *a = NULL;
    assert_int_equal(ms_alerts_open(&a, &o), 0);
    return a;
}

/* Levels: an event when the level rises, none while it stays, critical re-armed silently on
 * the way down to warning, "ok" under the warning threshold. */
static void test_levels_and_rearming(void **state)
{
    (void)state;
    ms_snapshot *s = fixture_snapshot();
    ms_alerts *a = open_alerts(40, 60, NULL);
    ms_alert_event ev[MS_ALERTS_MAX_EVENTS];
    const struct {
        uint64_t current_mib;
        int events;
        ms_alert_level level; /* of the event, when there is one; else the state */
    } steps[] = {
        {50, 1, MS_ALERT_WARNING},  /* rises to warning */
        {55, 0, MS_ALERT_WARNING},  /* stays */
        {70, 1, MS_ALERT_CRITICAL}, /* rises to critical */
        {50, 0, MS_ALERT_WARNING},  /* back to warning: critical re-armed, no alert */
        {65, 1, MS_ALERT_CRITICAL}, /* crosses again: alerts again */
        {10, 1, MS_ALERT_OK},       /* under the warning threshold: ok */
        {20, 0, MS_ALERT_OK},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        s->cgroup.current_bytes = steps[i].current_mib * MIB;
        int n = ms_alerts_check(a, s, ev, MS_ALERTS_MAX_EVENTS);
        assert_int_equal(n, steps[i].events);
        assert_int_equal(ms_alerts_level(a), steps[i].level);
        if (n) {
            assert_int_equal(ev[0].kind, MS_ALERT_LEVEL);
            assert_int_equal(ev[0].level, steps[i].level);
            if (steps[i].current_mib > 25) { /* else the system's 25% is the tightest */
                assert_string_equal(ev[0].usage.metric, "cgroup");
                assert_int_equal(ev[0].usage.used_bytes, steps[i].current_mib * MIB);
            } else {
                assert_string_equal(ev[0].usage.metric, "system");
            }
            assert_int_equal(ev[0].time_ns, s->timestamp_ns);
        }
    }
    assert_string_equal(ms_alert_level_name(MS_ALERT_CRITICAL), "critical");
    ms_alerts_close(a);
    free(s);
}

/* Without thresholds only OOMs; thresholds out of order are refused. */
static void test_open_options(void **state)
{
    (void)state;
    ms_alerts *a = NULL;
    const ms_alerts_options bad = {.size = sizeof(bad), .warning_pct = 80, .critical_pct = 50};
    assert_int_equal(ms_alerts_open(&a, &bad), MS_EINVAL);
    assert_null(a);
    const ms_alerts_options over = {.size = sizeof(over), .critical_pct = 101};
    assert_int_equal(ms_alerts_open(&a, &over), MS_EINVAL);
    assert_int_equal(ms_alerts_open(&a, NULL), 0);
    ms_snapshot *s = fixture_snapshot();
    s->cgroup.current_bytes = 99 * MIB;
    ms_alert_event ev[MS_ALERTS_MAX_EVENTS];
    assert_int_equal(ms_alerts_check(a, s, ev, MS_ALERTS_MAX_EVENTS), 0);
    ms_alerts_close(a);
    free(s);
}

/* The cgroup's oom_kills rising between two samples is an OOM event, after the level event of
 * the same sample. */
static void test_oom_while_sampling(void **state)
{
    (void)state;
    ms_snapshot *s = fixture_snapshot();
    ms_alerts *a = open_alerts(0, 90, NULL);
    ms_alert_event ev[MS_ALERTS_MAX_EVENTS];
    assert_int_equal(s->cgroup.oom_kills, 1);
    assert_int_equal(ms_alerts_check(a, s, ev, MS_ALERTS_MAX_EVENTS), 0); /* the base */
    s->cgroup.oom_kills = 2;
    s->cgroup.current_bytes = 95 * MIB;
    assert_int_equal(ms_alerts_check(a, s, ev, MS_ALERTS_MAX_EVENTS), 2);
    assert_int_equal(ev[0].kind, MS_ALERT_LEVEL);
    assert_int_equal(ev[0].level, MS_ALERT_CRITICAL);
    assert_int_equal(ev[1].kind, MS_ALERT_OOM);
    assert_string_equal(ev[1].reason, "cgroup_oom_kill");
    assert_int_equal(ev[1].oom_kills, 2);
    assert_int_equal(ms_alerts_check(a, s, ev, MS_ALERTS_MAX_EVENTS), 0); /* no rise */
    /* max 1: the level event only */
    s->cgroup.oom_kills = 3;
    s->cgroup.current_bytes = 10 * MIB;
    assert_int_equal(ms_alerts_check(a, s, ev, 1), 1);
    assert_int_equal(ev[0].kind, MS_ALERT_LEVEL);
    ms_alerts_close(a);
    free(s);
}

/* After the command ended: which ends are OOMs. */
static void test_oom_at_exit(void **state)
{
    (void)state;
    const int sigkill = SIGKILL; /* a wait status: killed by SIGKILL */
    ms_snapshot *s = fixture_snapshot();
    ms_alert_event e;
    /* its own cgroup's kills rose: given unless already seen while sampling */
    ms_alerts *a = open_alerts(0, 0, "/app.slice/fixture.service");
    ms_alert_event ev[MS_ALERTS_MAX_EVENTS];
    ms_alerts_check(a, s, ev, MS_ALERTS_MAX_EVENTS); /* sees oom_kills 1 */
    ms_alerts_exit_info x = {
        .size = sizeof(x), .wait_status = 0, .cgroup_oom_kills = 1, .cgroup_failcnt = -1};
    assert_int_equal(ms_alerts_exit(a, &x, &e), 0);
    x.cgroup_oom_kills = 2;
    assert_int_equal(ms_alerts_exit(a, &x, &e), 1);
    assert_string_equal(e.reason, "cgroup_oom_kill");
    /* a SIGKILL when the cgroup hit its limit */
    x = (ms_alerts_exit_info){
        .size = sizeof(x), .wait_status = sigkill, .cgroup_oom_kills = 0, .cgroup_failcnt = 3};
    assert_int_equal(ms_alerts_exit(a, &x, &e), 1);
    assert_string_equal(e.reason, "sigkill_at_limit");
    /* ... but not one the caller sent */
    x.sent_kill = true;
    assert_int_equal(ms_alerts_exit(a, &x, &e), 0);
    /* a SIGKILL without a cgroup: an OOM only at 95% of the host limit in the last samples */
    x = (ms_alerts_exit_info){
        .size = sizeof(x), .wait_status = sigkill, .cgroup_oom_kills = -1, .cgroup_failcnt = -1};
    assert_int_equal(ms_alerts_exit(a, &x, &e), 0); /* 50% */
    s->cgroup.current_bytes = 97 * MIB;
    ms_alerts_check(a, s, ev, MS_ALERTS_MAX_EVENTS);
    assert_int_equal(ms_alerts_exit(a, &x, &e), 1);
    assert_string_equal(e.reason, "sigkill_at_limit");
    assert_true(e.usage.percent > 96.9 && e.usage.percent < 97.1);
    /* a normal exit is never one */
    x.wait_status = 0;
    assert_int_equal(ms_alerts_exit(a, &x, &e), 0);
    ms_alerts_close(a);
    free(s);
}

/* Runs the writer over the records of a short run into a string. */
static char *write_timeline(ms_format fmt, ms_flight *flight)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    assert_non_null(fp);
    static const char *const argv[] = {"./app", "--x", NULL};
    ms_timeline_writer_options o;
    ms_timeline_writer_options_init(&o);
    o.format = fmt;
    o.fp = fp;
    o.flight = flight;
    o.job_id = "job-7";
    o.rank = 0;
    o.argv = argv;
    o.interval_ns = 10000000;
    o.full_interval_ns = 100000000;
    o.critical_pct = 90;
    ms_timeline_writer *w = NULL;
    assert_int_equal(ms_timeline_writer_open(&w, &o), 0);
    ms_snapshot *s = fixture_snapshot();
    snapshot_pin(s);
    assert_int_equal(ms_timeline_writer_start(w, 1000, 4242, s), 0);
    assert_int_equal(ms_timeline_writer_start(w, 2000, 4242, s), 0); /* once */
    const ms_sample smp = {.size = sizeof(smp),
                           .full = true,
                           .walked = true,
                           .pss_time_ns = s->timestamp_ns,
                           .snap = s};
    assert_int_equal(ms_timeline_writer_sample(w, &smp), 0);
    ms_alert_event ev = {.kind = MS_ALERT_LEVEL, .time_ns = 3000, .level = MS_ALERT_CRITICAL};
    snprintf(ev.usage.metric, sizeof(ev.usage.metric), "cgroup");
    ev.usage.used_bytes = 95 * MIB;
    ev.usage.limit_bytes = 100 * MIB;
    ev.usage.percent = 95;
    assert_int_equal(ms_timeline_writer_alert(w, &ev), 0);
    assert_int_equal(ms_timeline_writer_marker(w, 3500, "epoch 1"), 0);
    assert_int_equal(ms_timeline_writer_oom(w, 4000, "cgroup_oom_kill", "cpu", 4242, NULL), 0);
    assert_int_equal(ms_timeline_writer_end(w, 5000, "command_exited", 0, -1), 0);
    assert_int_equal(ms_timeline_writer_samples(w), 1);
    ms_timeline_writer_close(w);
    fclose(fp);
    free(s);
    return text;
}

/* JSON lines: one object per record with the job identity, in order. */
static void test_writer_json(void **state)
{
    (void)state;
    char *t = write_timeline(MS_FORMAT_JSON, NULL);
    int lines = 0;
    for (const char *p = t; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6);
    assert_contains(t, "{\"record\":\"start\",\"time_ns\":1000,\"job_id\":\"job-7\",\"rank\":0,"
                       "\"world_size\":null,\"schema\":\"memsnap.monitor/1\",\"pid\":4242,"
                       "\"command\":[\"./app\",\"--x\"],\"interval_s\":0.01,"
                       "\"full_interval_s\":0.1,\"tree\":false,\"limits\":{\"cgroup_max_bytes\":"
                       "104857600,");
    assert_contains(t, "\"thresholds\":{\"warning_pct\":null,\"critical_pct\":90}");
    assert_contains(t, "{\"record\":\"sample\",\"time_ns\":1700000000123456789,");
    assert_contains(t, "\"seq\":0,\"full\":true,\"pss_age_ns\":0,\"snapshot\":{\"schema\":"
                       "\"memsnap.snapshot/1\"");
    assert_contains(t, "\"seq\":0,\"level\":\"critical\",\"metric\":\"cgroup\",\"used_bytes\":"
                       "99614720,\"limit_bytes\":104857600,\"percent\":95.00}");
    assert_contains(t, "\"record\":\"marker\",\"time_ns\":3500,");
    assert_contains(t, "\"label\":\"epoch 1\"}");
    assert_contains(t, "\"reason\":\"cgroup_oom_kill\",\"backend\":\"cpu\",\"pid\":4242,"
                       "\"bundle\":null}");
    assert_contains(t, "\"samples\":1,\"exit_status\":0,\"signal\":null,\"reason\":"
                       "\"command_exited\"}\n");
    free(t);
}

/* CSV: the header, then one row per record; events in the event columns. */
static void test_writer_csv(void **state)
{
    (void)state;
    char *t = write_timeline(MS_FORMAT_CSV, NULL);
    static const char head[] = "record,seq,time_ns,job_id,rank,world_size,timestamp_ns,";
    assert_true(strncmp(t, head, sizeof(head) - 1) == 0);
    assert_contains(t, ",event.text,full,pss_age_ns\n");
    assert_contains(t, "\nstart,,1000,job-7,0,,");
    assert_contains(t, "pid=4242;interval_s=0.01;full_interval_s=0.1;tree=false;");
    assert_contains(t, ";critical_pct=90;memory_limit_bytes=;trace=;command=./app --x");
    assert_contains(t, "\nsample,0,1700000000123456789,job-7,0,,");
    assert_contains(t, ",critical,cgroup,99614720,104857600,95.00,,,\n");
    assert_contains(t, "label=epoch 1,,\n");
    assert_contains(t, ",cpu,,,,reason=cgroup_oom_kill;pid=4242;bundle=,,\n");
    assert_contains(t, "reason=command_exited;samples=1;exit_status=0;signal=,,\n");
    free(t);
}

/* With a flight recorder, a CSV writer's events go into the ring as JSON. */
static void test_writer_flight(void **state)
{
    (void)state;
    char dir[] = "/tmp/memsnap-writer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ms_flight *f = NULL;
    const ms_flight_options fo = {.size = sizeof(fo), .dump_dir = dir};
    assert_int_equal(ms_flight_open(&f, &fo), 0);
    free(write_timeline(MS_FORMAT_CSV, f));
    char path[4096];
    assert_int_equal(ms_flight_dump(f, "cpu", 4242, "test", NULL, path, sizeof(path)), 0);
    char events[4200];
    snprintf(events, sizeof(events), "%s/events.json", path);
    FILE *fp = fopen(events, "r");
    assert_non_null(fp);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    assert_contains(buf, "\"record\":\"start\"");
    assert_contains(buf, "\"record\":\"alert\"");
    assert_contains(buf, "\"label\":\"epoch 1\"");
    assert_contains(buf, "memsnap.snapshot/1");
    ms_flight_close(f);
    assert_int_equal(ms_flight_open(&f, &(ms_flight_options){.size = sizeof(fo)}), MS_EINVAL);
    assert_contains(ms_last_error(), "no dump directory");
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tightest),     cmocka_unit_test(test_levels_and_rearming),
        cmocka_unit_test(test_open_options), cmocka_unit_test(test_oom_while_sampling),
        cmocka_unit_test(test_oom_at_exit),  cmocka_unit_test(test_writer_json),
        cmocka_unit_test(test_writer_csv),   cmocka_unit_test(test_writer_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
