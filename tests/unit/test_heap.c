/*
 * test_heap.c - the public heap-analysis API (ms_heap_* in memsnap.h) on a trace written by the
 * test: the totals, the heap at the peak, at a marker and at the end, a diff, and every
 * grouping (site, function, module, thread) in both orders, with frames that fall back to
 * module+offset (the module's file does not exist); the live blocks with their allocation
 * times; and the errors.
 */
#include "helpers.h"

#include "trace/format.h"
#include "trace_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

/* Writes w's trace to /tmp/STEM.PID.mst (its name into out, 64 bytes) and frees w. */
static void save_trace(struct tw *w, const char *stem, char *out)
{
    snprintf(out, 64, "/tmp/%s.%d.mst", stem, (int)getpid());
    tw_save(w, out);
    tw_free(w);
}

/* Site A: one block of 1000 bytes from thread "worker" (stack 2); site B: five of 10 bytes
 * from "main" (stack 3 = 0x3300 called from 0x1100). Marker "mid" after them; then A is freed:
 * the leaks are B's 50 bytes. */
static void write_trace(void)
{
    struct tw w;
    tw_start(&w, &(struct tw_start){
                     .pid = 7,
                     .ppid = 1,
                     .threads = TW_THREADS({1, 101, 0, "main"}, {2, 102, 0, "worker"}),
                     .modules = TW_MODULES({1, 0x1000, 0x9000, "/nonexistent/libfake.so"}),
                     .stacks = TW_STACKS({1, 0, 0x1100}, {2, 0, 0x2200}, {3, 1, 0x3300})});
    uint64_t a = ev_alloc(&w, 10, 1000, 2, 2);
    for (int i = 0; i < 5; i++)
        ev_alloc(&w, 20 + (uint64_t)i, 10, 3, 1);
    rec_marker(&w, 1, 50, "mid");
    ev_free(&w, 60, a);
    rec_end(&w, 70, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    save_trace(&w, "test_heap", path);
}

static void totals_views_and_diffs(void **state)
{
    (void)state;
    ms_heap *h;
    assert_int_equal(ms_heap_open(&h, path), 0);
    assert_null(ms_heap_warning(h));
    ms_heap_totals t = {.size = sizeof(t)};
    assert_int_equal(ms_heap_totals_get(h, &t), 0);
    assert_int_equal(t.allocations, 6);
    assert_int_equal(t.frees, 1);
    assert_int_equal(t.peak_bytes, 1050);
    assert_int_equal(t.peak_time_ns, 24);
    assert_int_equal(t.leaked_bytes, 50);
    assert_int_equal(t.leaked_allocations, 5);
    assert_int_equal(t.duration_ns, 70);
    assert_false(t.sampled);
    assert_false(t.truncated);
    ms_heap_totals small = {.size = 8};
    assert_int_equal(ms_heap_totals_get(h, &small), MS_EINVAL);

    ms_heap_view *peak, *mid, *end, *diff, *early;
    assert_int_equal(ms_heap_peak(h, &peak), 0);
    assert_int_equal(ms_heap_view_time(peak), 24);
    assert_int_equal(ms_heap_view_bytes(peak), 1050);
    assert_int_equal(ms_heap_view_count(peak), 6);
    uint64_t ns;
    assert_int_equal(ms_heap_marker_time(h, "mid", &ns), 0);
    assert_int_equal(ns, 50);
    assert_int_equal(ms_heap_marker_time(h, "nope", &ns), MS_ENOENT);
    assert_int_equal(ms_heap_at(h, ns, &mid), 0);
    assert_int_equal(ms_heap_view_bytes(mid), 1050);
    assert_int_equal(ms_heap_at(h, 21, &early), 0); /* A and two of B */
    assert_int_equal(ms_heap_view_bytes(early), 1020);
    assert_int_equal(ms_heap_view_count(early), 3);
    assert_int_equal(ms_heap_at(h, 71, &end), MS_EINVAL); /* past the end */
    assert_null(end);
    assert_int_equal(ms_heap_leaks(h, &end), 0);
    assert_int_equal(ms_heap_view_bytes(end), 50);
    assert_int_equal(ms_heap_diff(h, mid, end, &diff), 0);
    assert_int_equal(ms_heap_view_bytes(diff), -1000);
    assert_int_equal(ms_heap_view_count(diff), -1);

    ms_heap_rows *r;
    assert_int_equal(ms_heap_group(h, diff, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 1);
    assert_int_equal(ms_heap_rows_at(r, 0)->bytes, -1000);
    assert_null(ms_heap_rows_at(r, 1));
    ms_heap_rows_free(r);
    ms_heap_view_free(diff);
    ms_heap_view_free(early);
    ms_heap_view_free(end);
    ms_heap_view_free(mid);
    ms_heap_view_free(peak);
    ms_heap_close(h);
}

static void groupings_in_both_orders(void **state)
{
    (void)state;
    ms_heap *h;
    assert_int_equal(ms_heap_open(&h, path), 0);
    ms_heap_view *v;
    assert_int_equal(ms_heap_peak(h, &v), 0);
    ms_heap_rows *r;
    /* by site, bytes first: A (1000 B, 1 block), then B (50 B, 5 blocks) */
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 2);
    const ms_heap_row *a = ms_heap_rows_at(r, 0), *b = ms_heap_rows_at(r, 1);
    assert_int_equal(a->bytes, 1000);
    assert_int_equal(a->count, 1);
    assert_int_equal(a->nframes, 1);
    assert_int_equal(a->frames[0].ip, 0x2200);
    assert_string_equal(a->frames[0].module, "/nonexistent/libfake.so");
    assert_int_equal(a->frames[0].offset, 0x2200 - 0x1000);
    assert_int_equal(b->bytes, 50);
    assert_int_equal(b->nframes, 2); /* innermost first */
    assert_int_equal(b->frames[0].ip, 0x3300);
    assert_int_equal(b->frames[1].ip, 0x1100);
    assert_null(b->name);
    ms_heap_rows_free(r);
    /* count first: B, then A; max 1 keeps B alone */
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_COUNT, 1, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 1);
    assert_int_equal(ms_heap_rows_at(r, 0)->count, 5);
    ms_heap_rows_free(r);
    /* by thread: the allocating one, with its tid and name */
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_THREAD, MS_HEAP_ORDER_COUNT, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 2);
    assert_int_equal(ms_heap_rows_at(r, 0)->tid, 101);
    assert_string_equal(ms_heap_rows_at(r, 0)->name, "main");
    assert_int_equal(ms_heap_rows_at(r, 1)->tid, 102);
    assert_string_equal(ms_heap_rows_at(r, 1)->name, "worker");
    ms_heap_rows_free(r);
    /* by module: one row with everything */
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_MODULE, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 1);
    assert_int_equal(ms_heap_rows_at(r, 0)->bytes, 1050);
    assert_non_null(strstr(ms_heap_rows_at(r, 0)->name, "libfake.so"));
    ms_heap_rows_free(r);
    /* functions (unresolved: module+offset): self has 2 rows; inclusive adds the caller
     * 0x1100, which holds B's 50 bytes */
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_FUNCTION, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 2);
    ms_heap_rows_free(r);
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_FUNCTION_INCL, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 3);
    bool caller = false;
    for (size_t i = 0; i < ms_heap_rows_count(r); i++)
        if (strstr(ms_heap_rows_at(r, i)->name, "+0x100"))
            caller = ms_heap_rows_at(r, i)->bytes == 50;
    assert_true(caller);
    ms_heap_rows_free(r);
    assert_int_equal(ms_heap_group(h, v, (ms_heap_by)99, MS_HEAP_ORDER_BYTES, 0, &r), MS_EINVAL);
    ms_heap_view_free(v);
    ms_heap_close(h);
}

struct seen {
    ms_heap_block b[8];
    int n;
    int stop_after; /* return 7 once this many were seen (0: never) */
};

static int keep(void *ctx, const ms_heap_block *b)
{
    struct seen *s = ctx;
    if (s->n < 8)
        s->b[s->n] = *b;
    s->n++;
    return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static void live_blocks_with_their_times(void **state)
{
    (void)state;
    ms_heap *h;
    assert_int_equal(ms_heap_open(&h, path), 0);
    ms_heap_view *peak, *early, *end, *diff;
    assert_int_equal(ms_heap_peak(h, &peak), 0);
    struct seen s = {0};
    assert_int_equal(ms_heap_blocks(h, peak, keep, &s), 0);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.b[0].id, 0); /* A: oldest first */
    assert_int_equal(s.b[0].size, 1000);
    assert_int_equal(s.b[0].time_ns, 10);
    assert_int_equal(s.b[0].tid, 102);
    assert_int_equal(s.b[0].stack, 2);
    for (int i = 1; i < 6; i++) {
        assert_int_equal(s.b[i].id, i);
        assert_int_equal(s.b[i].size, 10);
        assert_int_equal(s.b[i].time_ns, 19 + i);
        assert_int_equal(s.b[i].tid, 101);
    }
    ms_heap_frame fr[4];
    assert_int_equal(ms_heap_stack(h, peak, s.b[1].stack, fr, 4), 2);
    assert_int_equal(fr[0].ip, 0x3300);
    assert_int_equal(fr[1].ip, 0x1100);
    assert_int_equal(ms_heap_stack(h, peak, s.b[1].stack, fr, 1), 1);
    assert_int_equal(ms_heap_at(h, 21, &early), 0);
    s = (struct seen){0};
    assert_int_equal(ms_heap_blocks(h, early, keep, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.b[2].time_ns, 21);
    assert_int_equal(ms_heap_leaks(h, &end), 0); /* A was freed */
    s = (struct seen){0};
    assert_int_equal(ms_heap_blocks(h, end, keep, &s), 0);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.b[0].id, 1);
    s = (struct seen){.stop_after = 2};
    assert_int_equal(ms_heap_blocks(h, end, keep, &s), 7);
    assert_int_equal(s.n, 2);
    assert_int_equal(ms_heap_diff(h, peak, end, &diff), 0);
    assert_int_equal(ms_heap_blocks(h, diff, keep, &s), MS_EINVAL);
    ms_heap_view_free(diff);
    ms_heap_view_free(end);
    ms_heap_view_free(early);
    ms_heap_view_free(peak);
    ms_heap_close(h);
}

/* Two modules over one another (libb loaded over the end of liba): a frame's module, by site,
 * and the rows by module name the same one for each return address - the last module starting
 * at or below ip - 1. Sites: 0x2200 (100 B, libb), 0x2000 (10 B: a return address at libb's
 * first byte is a call at the end of liba), 0x1100 (1 B, liba). */
static void modules_over_one_another(void **state)
{
    (void)state;
    struct tw w;
    tw_begin(&w);
    rec_process(&w, MS_REC_PROCESS, 7, 1, 0, 0);
    rec_clock(&w, 0, 0);
    rec_module(&w, 1, 0x1000, 0x9000, "/nonexistent/liba.so");
    rec_module(&w, 2, 0x2000, 0x20000, "/nonexistent/libb.so");
    rec_stack(&w, 1, 0, 0x2200);
    rec_stack(&w, 2, 0, 0x2000);
    rec_stack(&w, 3, 0, 0x1100);
    rec_thread(&w, 1, 101, 0, "main");
    ev_alloc(&w, 10, 100, 1, 1);
    ev_alloc(&w, 11, 10, 2, 1);
    ev_alloc(&w, 12, 1, 3, 1);
    rec_end(&w, 20, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    char two[64];
    save_trace(&w, "test_heap_mods", two);

    ms_heap *h;
    assert_int_equal(ms_heap_open(&h, two), 0);
    unlink(two);
    ms_heap_view *v;
    assert_int_equal(ms_heap_peak(h, &v), 0);
    ms_heap_rows *r;
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 3);
    assert_string_equal(ms_heap_rows_at(r, 0)->frames[0].module, "/nonexistent/libb.so");
    assert_int_equal(ms_heap_rows_at(r, 0)->frames[0].offset, 0x2200 - 0x2000); /* in libb */
    assert_string_equal(ms_heap_rows_at(r, 1)->frames[0].module, "/nonexistent/liba.so");
    assert_string_equal(ms_heap_rows_at(r, 2)->frames[0].module, "/nonexistent/liba.so");
    ms_heap_rows_free(r);
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_MODULE, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 2);
    assert_non_null(strstr(ms_heap_rows_at(r, 0)->name, "libb.so"));
    assert_int_equal(ms_heap_rows_at(r, 0)->bytes, 100);
    assert_non_null(strstr(ms_heap_rows_at(r, 1)->name, "liba.so"));
    assert_int_equal(ms_heap_rows_at(r, 1)->bytes, 11);
    ms_heap_rows_free(r);
    ms_heap_view_free(v);
    ms_heap_close(h);
}

static void errors(void **state)
{
    (void)state;
    ms_heap *h = (ms_heap *)1;
    assert_int_equal(ms_heap_open(&h, "/nonexistent/trace.mst"), MS_ENOENT);
    assert_null(h);
    assert_non_null(strstr(ms_heap_error(), "/nonexistent/trace.mst"));
    char bad[64];
    snprintf(bad, sizeof(bad), "/tmp/test_heap_bad.%d", (int)getpid());
    FILE *fp = fopen(bad, "w");
    assert_non_null(fp);
    fputs("not a trace at all, just some words\n", fp);
    fclose(fp);
    assert_int_equal(ms_heap_open(&h, bad), MS_EPARSE);
    assert_non_null(strstr(ms_heap_error(), bad));
    unlink(bad);
}

/* A crafted trace whose live blocks add up past 2^63 bytes: views and groupings hold their
 * figures at the limit (the sanitizer build checks that no sum overflows). */
static void figures_past_63_bits_saturate(void **state)
{
    (void)state;
    struct tw w;
    char big[64];
    tw_begin(&w);
    rec_process(&w, MS_REC_PROCESS, 7, 1, 0, 0);
    rec_clock(&w, 0, 0);
    rec_stack(&w, 1, 0, 0x1100);
    rec_thread(&w, 1, 101, 0, "main");
    for (int i = 0; i < 6; i++)
        ev_alloc(&w, 10 + (uint64_t)i, UINT64_C(1) << 62, 1, 1);
    rec_end(&w, 70, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    save_trace(&w, "test_heap_big", big);
    ms_heap *h;
    ms_heap_view *v;
    ms_heap_rows *r;
    assert_int_equal(ms_heap_open(&h, big), 0);
    assert_int_equal(ms_heap_leaks(h, &v), 0);
    assert_true(ms_heap_view_bytes(v) == INT64_MAX);
    assert_int_equal(ms_heap_view_count(v), 6);
    assert_int_equal(ms_heap_group(h, v, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, 0, &r), 0);
    assert_int_equal(ms_heap_rows_count(r), 1);
    assert_true(ms_heap_rows_at(r, 0)->bytes == INT64_MAX);
    ms_heap_rows_free(r);
    ms_heap_view_free(v);
    assert_int_equal(ms_heap_peak(h, &v), 0);
    ms_heap_view_free(v);
    ms_heap_close(h);
    unlink(big);
}

int main(void)
{
    write_trace();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(totals_views_and_diffs),
        cmocka_unit_test(groupings_in_both_orders),
        cmocka_unit_test(live_blocks_with_their_times),
        cmocka_unit_test(modules_over_one_another),
        cmocka_unit_test(errors),
        cmocka_unit_test(figures_past_63_bits_saturate),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
