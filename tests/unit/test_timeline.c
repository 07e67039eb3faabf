/*
 * test_timeline.c - the public timeline API (ms_timeline_* in memsnap.h) on monitor output
 * written by the test: reading (a cut last line is a warning, a malformed line an error naming
 * the file and the line), the figures of a metric, the spike rule (short excursions that come
 * back down are spikes; a staircase that lasts, then is released, is not), the three writers,
 * one call for a path of either kind (a trace through ms_heap_*), and the errors.
 */
#include "helpers.h"

#include "trace/format.h"
#include "trace_writer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (UINT64_C(1) << 20)
#define T0  UINT64_C(1795400000000000000)
#define N   200

static char dir[256], monitor_path[300], trace_path[300];

/* Process RSS of sample i: 100 MiB, with a spike of one sample at 50, an excursion of three
 * rising samples at 120..122 (its highest: 122), and a staircase of four 10 MiB steps of three
 * samples each at 150..161, released at 162 (a growth phase, not a spike). */
static uint64_t rss_at(int i)
{
    uint64_t v = 100 * MiB + (uint64_t)(i % 3) * 4096; /* a little noise */
    if (i == 50)
        v += 80 * MiB;
    if (i >= 120 && i <= 122)
        v += 50 * MiB + (uint64_t)(i - 120) * 5 * MiB;
    if (i >= 150 && i <= 161)
        v += (uint64_t)((i - 150) / 3 + 1) * 10 * MiB;
    return v;
}

/* Writes the monitor file: a start record, N samples, and a last line cut short. */
static void write_monitor(void)
{
    snprintf(monitor_path, sizeof(monitor_path), "%s/run.jsonl", dir);
    FILE *fp = fopen(monitor_path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "{\"record\":\"start\",\"time_ns\":%llu,\"schema\":\"memsnap.monitor/1\",\"pid\":42,"
            "\"command\":[\"app\"],\"interval_s\":1.0,\"tree\":false,\"limits\":"
            "{\"cgroup_max_bytes\":null,\"system_total_bytes\":17179869184,"
            "\"gpu_total_bytes\":null},\"thresholds\":{\"warning_pct\":null,"
            "\"critical_pct\":null}}\n",
            (unsigned long long)T0);
    for (int i = 0; i < N; i++) {
        unsigned long long t = T0 + (uint64_t)(i + 1) * 1000000000u;
        fprintf(fp,
                "{\"record\":\"sample\",\"time_ns\":%llu,\"seq\":%d,\"snapshot\":{\"schema\":"
                "\"memsnap.snapshot/1\",\"timestamp_ns\":%llu,\"monotonic_ns\":%llu,"
                "\"label\":null,\"pid\":42,\"process\":{\"rss_bytes\":%llu}}}\n",
                t, i, t, 5000000000000ull + (uint64_t)(i + 1) * 1000000000u,
                (unsigned long long)rss_at(i));
    }
    fputs("{\"record\":\"sample\",\"time_ns\":1", fp); /* the monitor was killed here */
    fclose(fp);
}

/* A trace: one block of 1000 bytes that is never freed. */
static void write_trace(void)
{
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7,
                                    .ppid = 1,
                                    .threads = TW_THREADS({1, 101, 0, "main"}),
                                    .modules =
                                        TW_MODULES({1, 0x1000, 0x9000, "/nonexistent/libfake.so"}),
                                    .stacks = TW_STACKS({1, 0, 0x1100})});
    ev_alloc(&w, 10, 1000, 1, 1);
    rec_end(&w, 70, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    snprintf(trace_path, sizeof(trace_path), "%s/app.mst", dir);
    tw_save(&w, trace_path);
    tw_free(&w);
}

static int setup(void **state)
{
    (void)state;
    temp_dir(dir, sizeof(dir), "timeline");
    write_monitor();
    write_trace();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return temp_dir_remove(dir);
}

/* What writer fn wrote for a, as a malloc'd string. */
static char *written(int (*fn)(ms_timeline_analysis *, FILE *), ms_timeline_analysis *a)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    assert_non_null(fp);
    assert_int_equal(fn(a, fp), 0);
    fclose(fp);
    return text;
}

static void reads_samples_and_warns_about_a_cut_line(void **state)
{
    (void)state;
    ms_timeline *tl;
    assert_int_equal(ms_timeline_open(&tl, monitor_path), 0);
    assert_int_equal(ms_timeline_samples(tl), N);
    const char *w = ms_timeline_warning(tl);
    assert_non_null(w);
    assert_contains(w, "warning: ");
    assert_contains(w, ":202: the last line is cut");
    ms_timeline_close(tl);
}

static void metric_figures_and_spikes(void **state)
{
    (void)state;
    ms_timeline *tl;
    ms_timeline_analysis *a;
    assert_int_equal(ms_timeline_open(&tl, monitor_path), 0);
    assert_int_equal(ms_timeline_analyze(tl, &a), 0);
    assert_int_equal(ms_timeline_analysis_kind(a), MS_TIMELINE_MONITOR);
    assert_non_null(ms_timeline_analysis_warning(a));
    ms_timeline_metric m = {.size = sizeof(m)};
    assert_int_equal(ms_timeline_metric_get(a, "process_rss", &m), 0);
    assert_string_equal(m.label, "process RSS");
    assert_int_equal(m.samples, N);
    assert_int_equal(m.min, 100 * MiB);
    assert_int_equal(m.max, 180 * MiB + 2 * 4096); /* sample 50 */
    /* the spike at 50 and the excursion at 120..122; not the released staircase */
    assert_int_equal(m.spikes, 2);
    assert_non_null(m.severity);
    /* the JSON lists them at their highest samples */
    char *js = written(ms_timeline_write_json, a);
    json_error_t err;
    json_t *o = json_loads(js, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "schema")), "memsnap.analyze/1");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "monitor");
    assert_int_equal(json_integer_value(json_object_get(o, "samples")), N);
    assert_int_equal(json_integer_value(json_object_get(o, "cut_line")), 202);
    json_t *list = json_object_get(
        json_object_get(json_object_get(json_object_get(o, "metrics"), "process_rss"), "spikes"),
        "list");
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "seq")), 50);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "seq")), 122);
    json_decref(o);
    free(js);
    /* a metric the file lacks, a name that is none, a short size */
    assert_int_equal(ms_timeline_metric_get(a, "gpu_used", &m), MS_ENOENT);
    assert_int_equal(ms_timeline_metric_get(a, "nope", &m), MS_EINVAL);
    assert_contains(ms_last_error(), "nope");
    ms_timeline_metric small = {.size = 8};
    assert_int_equal(ms_timeline_metric_get(a, "process_rss", &small), MS_EINVAL);
    ms_timeline_analysis_free(a);
    ms_timeline_close(tl);
}

static void writers(void **state)
{
    (void)state;
    ms_timeline_analysis *a;
    assert_int_equal(ms_timeline_analyze_path(monitor_path, NULL, &a), 0);
    char *text = written(ms_timeline_write_text, a);
    assert_contains(text, "monitor output (JSON lines), 200 samples");
    assert_contains(text, "process RSS");
    assert_contains(text, "spikes (");
    char *html = written(ms_timeline_write_html, a);
    assert_contains(html, "<html");
    assert_contains(html, "memsnap.analyze/1");
    free(text);
    free(html);
    ms_timeline_analysis_free(a);
}

static void one_call_for_either_kind(void **state)
{
    (void)state;
    /* monitor output: the same JSON as open + analyze */
    ms_timeline *tl;
    ms_timeline_analysis *a, *b;
    assert_int_equal(ms_timeline_open(&tl, monitor_path), 0);
    assert_int_equal(ms_timeline_analyze(tl, &a), 0);
    assert_int_equal(ms_timeline_analyze_path(monitor_path, NULL, &b), 0);
    char *ja = written(ms_timeline_write_json, a), *jb = written(ms_timeline_write_json, b);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    ms_timeline_analysis_free(a);
    ms_timeline_analysis_free(b);
    ms_timeline_close(tl);

    /* a trace, recognized by its contents */
    char head[8];
    FILE *fp = fopen(trace_path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(head, 1, 8, fp), 8);
    fclose(fp);
    assert_int_equal(ms_timeline_sniff(head, 8), MS_TIMELINE_TRACE);
    assert_int_equal(ms_timeline_sniff("{\"record\"", 9), MS_TIMELINE_MONITOR);
    ms_timeline_options o = {.size = sizeof(o), .top = 5};
    assert_int_equal(ms_timeline_analyze_path(trace_path, &o, &a), 0);
    assert_int_equal(ms_timeline_analysis_kind(a), MS_TIMELINE_TRACE);
    assert_null(ms_timeline_analysis_warning(a)); /* complete, nothing lost */
    char *js = written(ms_timeline_write_json, a);
    assert_contains(js, "\"kind\":\"trace\"");
    assert_contains(js, "\"leaks\":{\"time_ns\":");
    assert_contains(js, "\"live_bytes\":1000");
    char *text = written(ms_timeline_write_text, a);
    assert_contains(text, "a memsnap trace");
    assert_contains(text, "leaks: what was never freed");
    ms_timeline_metric m = {.size = sizeof(m)};
    assert_int_equal(ms_timeline_metric_get(a, "process_rss", &m), MS_EINVAL);
    free(js);
    free(text);
    ms_timeline_analysis_free(a);
}

static void errors(void **state)
{
    (void)state;
    ms_timeline *tl = (ms_timeline *)1;
    assert_int_equal(ms_timeline_open(&tl, "/nonexistent/x.jsonl"), MS_ENOENT);
    assert_null(tl);
    assert_contains(ms_last_error(), "/nonexistent/x.jsonl");
    static const char bad[] = "{\"record\":\"marker\",\"time_ns\":1,\"label\":\"x\"}\n[1,2]\n";
    assert_int_equal(ms_timeline_read(&tl, bad, sizeof(bad) - 1, "mem.jsonl"), MS_EPARSE);
    assert_contains(ms_last_error(), "mem.jsonl:2: expected a JSON object");
    ms_timeline_analysis *a;
    assert_int_equal(ms_timeline_analyze_path("/", NULL, &a), MS_EINVAL);
    assert_contains(ms_last_error(), "it is a directory");
    ms_timeline_options small = {.size = 1};
    assert_int_equal(ms_timeline_analyze_path(monitor_path, &small, &a), MS_EINVAL);
    ms_timeline_close(NULL);
    ms_timeline_analysis_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_samples_and_warns_about_a_cut_line),
        cmocka_unit_test(metric_figures_and_spikes),
        cmocka_unit_test(writers),
        cmocka_unit_test(one_call_for_either_kind),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
