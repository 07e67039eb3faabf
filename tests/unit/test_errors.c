/*
 * test_errors.c - the one error model: a failing call of every module leaves, on the calling
 * thread, one line naming the problem (ms_last_error()), and the per-handle *_error functions
 * give the same line.
 */
#include "helpers.h"

#include "core/internal.h" /* ms__error */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void session_open_names_a_bad_option_size(void **state)
{
    (void)state;
    ms_options opts = {.size = 1};
    ms_session *s = (ms_session *)1;
    assert_int_equal(ms_session_open(&s, &opts), MS_EINVAL);
    assert_null(s);
    assert_contains(ms_last_error(), "opts->size 1 is too small");
    assert_int_equal(ms_session_open(NULL, NULL), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_session_open: no handle pointer");
}

static void capture_of_a_missing_process_names_it_in_both_messages(void **state)
{
    (void)state;
    ms_session *s = fixture_session("v2-host");
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    int rc = ms_capture(s, 999999, MS_CAPTURE_BASIC, &snap);
    assert_int_equal(rc, MS_ESRCH);
    assert_contains(ms_last_error(), "999999");
    assert_string_equal(ms_last_error(), ms_session_error(s));
    assert_int_equal(ms_capture(s, 0, 1u << 30, &snap), MS_EINVAL);
    assert_string_equal(ms_last_error(), "invalid capture request (unknown MS_CAPTURE_* flags)");
    assert_string_equal(ms_session_error(s), ms_last_error());
    ms_session_close(s);
    assert_int_equal(ms_capture(NULL, 0, MS_CAPTURE_BASIC, &snap), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_capture: no session");
}

static void trace_open_names_the_file_and_ms_trace_error_null_is_an_alias(void **state)
{
    (void)state;
    ms_trace *t = NULL;
    assert_int_equal(ms_trace_open(&t, "/nonexistent/memsnap.trace"), MS_ENOENT);
    assert_null(t);
    assert_string_equal(ms_last_error(), "/nonexistent/memsnap.trace: No such file or directory");
    assert_string_equal(ms_trace_error(NULL), ms_last_error());
    const char *notrace = fixture_path("v2-host/proc/meminfo");
    assert_int_equal(ms_trace_open(&t, notrace), MS_EPARSE);
    assert_contains(ms_last_error(), notrace);
    assert_contains(ms_last_error(), "not a memsnap trace");
    assert_int_equal(ms_trace_open(&t, "/"), MS_EPARSE);
    assert_string_equal(ms_last_error(), "/: is a directory, not a memsnap trace");
    ms_trace_tail tail = {.size = 0};
    assert_int_equal(ms_trace_tail_get("/", &tail), MS_EINVAL);
    assert_string_equal(ms_trace_error(NULL), "tail->size must be sizeof(ms_trace_tail)");
    assert_int_equal(ms_trace_stats_get(NULL, NULL), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_trace_stats_get: no trace");
}

static void heap_open_names_the_file_and_ms_heap_error_is_an_alias(void **state)
{
    (void)state;
    ms_heap *h = NULL;
    assert_int_equal(ms_heap_open(&h, "/nonexistent/heap.trace"), MS_ENOENT);
    assert_null(h);
    assert_string_equal(ms_last_error(), "/nonexistent/heap.trace: No such file or directory");
    assert_string_equal(ms_heap_error(), ms_last_error());
    const char *notrace = fixture_path("v2-host/proc/meminfo");
    assert_int_equal(ms_heap_open(&h, notrace), MS_EPARSE);
    assert_contains(ms_heap_error(), notrace);
    assert_contains(ms_heap_error(), "not a memsnap trace");
    assert_int_equal(ms_heap_open(&h, NULL), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_heap_open: no trace file given");
}

static void sinks_name_an_unknown_format_and_a_failed_stream(void **state)
{
    (void)state;
    ms_format fmt;
    assert_int_equal(ms_format_parse("xml", &fmt), MS_EINVAL);
    assert_string_equal(ms_last_error(), "unknown format \"xml\" (text, json or csv)");
    ms_writer *w;
    assert_int_equal(ms_writer_open(&w, (ms_format)7, stdout), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_writer_open: no format 7 (0 to 2)");
    FILE *fp = fopen("/dev/full", "w");
    if (!fp)
        skip();
    setvbuf(fp, NULL, _IONBF, 0);
    assert_int_equal(ms_writer_open(&w, MS_FORMAT_JSON, fp), 0);
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_writer_snapshot(w, &snap), MS_EIO);
    assert_string_equal(ms_last_error(), "json sink: writing snapshot 1 failed");
    assert_int_equal(ms_writer_close(w), MS_EIO);
    assert_string_equal(ms_last_error(), "json sink: writing failed (1 snapshots)");
    assert_int_equal(ms_report_json(fp, &snap, &snap), MS_EIO);
    assert_string_equal(ms_last_error(), "ms_report_json: write failed");
    assert_int_equal(ms_report_table(fp, &snap, &snap), MS_EIO);
    assert_string_equal(ms_last_error(), "ms_report_table: write failed");
    fclose(fp);
}

static void json_reader_names_the_field_without_an_error_buffer(void **state)
{
    (void)state;
    static const char text[] =
        "{\"schema\":\"memsnap.snapshot/1\",\"process\":{\"rss_bytes\":\"many\"}}";
    ms_snapshot snap;
    assert_int_equal(ms_snapshot_from_json(text, strlen(text), &snap, NULL, 0), MS_EPARSE);
    assert_string_equal(ms_last_error(),
                        "field process.rss_bytes: expected a non-negative integer or null");
    char err[16];
    assert_int_equal(ms_snapshot_from_json("[", 1, &snap, err, sizeof(err)), MS_EPARSE);
    assert_contains(ms_last_error(), "invalid JSON at line 1");
    assert_int_equal(strncmp(err, ms_last_error(), sizeof(err) - 1), 0); /* cut to fit */
    assert_int_equal(ms_snapshot_from_json(NULL, 0, &snap, NULL, 0), MS_EINVAL);
    assert_string_equal(ms_last_error(), "ms_snapshot_from_json: no text");
}

/* A message built from the last one (a caller adding context) keeps it whole. */
static void a_message_may_quote_the_last_one(void **state)
{
    (void)state;
    ms_heap *h = NULL;
    assert_int_equal(ms_heap_open(&h, "/nonexistent/x.mst"), MS_ENOENT);
    assert_int_equal(ms__error(MS_EIO, "context: %s", ms_last_error()), MS_EIO);
    assert_string_equal(ms_last_error(), "context: /nonexistent/x.mst: No such file or directory");
}

static void *fail_in_another_thread(void *arg)
{
    (void)arg;
    ms_format fmt;
    ms_format_parse("other-thread", &fmt);
    return strdup(ms_last_error());
}

static void the_message_is_the_calling_threads_own(void **state)
{
    (void)state;
    ms_format fmt;
    ms_format_parse("this-thread", &fmt);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fail_in_another_thread, NULL), 0);
    void *theirs;
    pthread_join(th, &theirs);
    assert_string_equal(theirs, "unknown format \"other-thread\" (text, json or csv)");
    assert_string_equal(ms_last_error(), "unknown format \"this-thread\" (text, json or csv)");
    free(theirs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(session_open_names_a_bad_option_size),
        cmocka_unit_test(capture_of_a_missing_process_names_it_in_both_messages),
        cmocka_unit_test(trace_open_names_the_file_and_ms_trace_error_null_is_an_alias),
        cmocka_unit_test(heap_open_names_the_file_and_ms_heap_error_is_an_alias),
        cmocka_unit_test(sinks_name_an_unknown_format_and_a_failed_stream),
        cmocka_unit_test(json_reader_names_the_field_without_an_error_buffer),
        cmocka_unit_test(the_message_is_the_calling_threads_own),
        cmocka_unit_test(a_message_may_quote_the_last_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
