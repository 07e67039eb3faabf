/*
 * test_heap.c - the public heap-analysis API (ms_heap_* in memsnap.h) on a trace written by the
 * test: the totals, the heap at the peak, at a marker and at the end, a diff, and every
 * grouping (site, function, module, thread) in both orders, with frames that fall back to
 * module+offset (the module's file does not exist); the live blocks with their allocation
 * times; and the errors. Then the one renderer of heap rows (ms_heap_write) in every format,
 * the per-thread statistics (ms_heap_threads) of two threads that free each other's blocks,
 * and opening with options (a progress callback, a descriptor).
 */
#include "helpers.h"

#include "trace/format.h"
#include "trace_writer.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    /* a moment as a user writes it: plain seconds, else a marker's label */
    uint64_t w;
    assert_int_equal(ms_heap_when(h, "0.00000002", &w), 0);
    assert_int_equal(w, 20);
    assert_int_equal(ms_heap_when(h, "mid", &w), 0);
    assert_int_equal(w, 50);
    assert_int_equal(ms_heap_when(h, "0.0000001", &w), MS_EINVAL);
    assert_string_equal(ms_last_error(),
                        "time 0.0000001 s is past the end of the trace (duration 0.000000 s)");
    assert_int_equal(ms_heap_when(h, "-1", &w), MS_ERANGE);
    assert_string_equal(ms_last_error(), "time '-1' is before the trace start");
    assert_int_equal(ms_heap_when(h, "1e-9", &w), MS_ENOENT); /* not plain: a label */
    assert_string_equal(ms_last_error(),
                        "no marker is labelled '1e-9' (and it is not a time in seconds)");
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
    tw_start(&w, &(struct tw_start){
                     .pid = 7,
                     .ppid = 1,
                     .threads = TW_THREADS({1, 101, 0, "main"}),
                     .modules = TW_MODULES({1, 0x1000, 0x9000, "/nonexistent/liba.so"},
                                           {2, 0x2000, 0x20000, "/nonexistent/libb.so"}),
                     .stacks = TW_STACKS({1, 0, 0x2200}, {2, 0, 0x2000}, {3, 0, 0x1100})});
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
    tw_start(&w, &(struct tw_start){.pid = 7,
                                    .ppid = 1,
                                    .threads = TW_THREADS({1, 101, 0, "main"}),
                                    .stacks = TW_STACKS({1, 0, 0x1100})});
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

/* ---------------------------------------------------------------------------------------- */
/* ms_heap_write: the one renderer                                                          */
/* ---------------------------------------------------------------------------------------- */

/* What ms_heap_write gives for view v (malloc'd text; the return code into *rc). */
static char *render(ms_heap *h, const ms_heap_view *v, ms_heap_by by, ms_heap_order order,
                    ms_heap_format fmt, size_t top, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    *rc = ms_heap_write(h, v, by, order, fmt, top, mem);
    assert_int_equal(fclose(mem), 0);
    return text;
}

#define ASSERT_RENDERS(h, v, by, order, fmt, top, want)                                            \
    do {                                                                                           \
        int rc_;                                                                                   \
        char *got_ = render(h, v, by, order, fmt, top, &rc_);                                      \
        assert_int_equal(rc_, 0);                                                                  \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void write_renders_sites_threads_and_names_in_every_format(void **state)
{
    (void)state;
    ms_heap *h;
    assert_int_equal(ms_heap_open(&h, path), 0);
    ms_heap_view *peak, *mid, *end, *diff;
    assert_int_equal(ms_heap_peak(h, &peak), 0);
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_TEXT, 0,
                   "peak at 0.000000 s: 1.03 KiB (1050 bytes) live in 6 allocations\n"
                   "\n#1 1000 B in 1 allocation\n    libfake.so+0x1200\n"
                   "\n#2 50 B in 5 allocations\n    libfake.so+0x2300\n    libfake.so+0x100\n");
    /* top 1, most blocks first */
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_SITE, MS_HEAP_ORDER_COUNT, MS_HEAP_FORMAT_TEXT, 1,
                   "peak at 0.000000 s: 1.03 KiB (1050 bytes) live in 6 allocations\n"
                   "\n#1 50 B in 5 allocations\n    libfake.so+0x2300\n    libfake.so+0x100\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_JSON, 1,
                   "{\"time_ns\":24,\"live_bytes\":1050,\"live_allocations\":6,\"sites\":[{"
                   "\"bytes\":1000,\"count\":1,\"stack\":[{\"function\":null,\"file\":null,"
                   "\"line\":0,\"module\":\"/nonexistent/libfake.so\"}]}]}\n");
    /* folded: every row whatever top says, outermost frame first */
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_FOLDED, 1,
                   "libfake.so+0x1200 1000\nlibfake.so+0x100;libfake.so+0x2300 50\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_JSON_ADDRESSES, 0,
                   "{\"time_ns\":24,\"live_bytes\":1050,\"live_allocations\":6,\"sites\":["
                   "{\"bytes\":1000,\"count\":1,\"stack_id\":2,\"frames\":[{\"ip\":\"0x2200\","
                   "\"module\":\"/nonexistent/libfake.so\",\"offset\":\"0x1200\"}]},"
                   "{\"bytes\":50,\"count\":5,\"stack_id\":3,\"frames\":[{\"ip\":\"0x3300\","
                   "\"module\":\"/nonexistent/libfake.so\",\"offset\":\"0x2300\"},{\"ip\":"
                   "\"0x1100\",\"module\":\"/nonexistent/libfake.so\",\"offset\":\"0x100\"}]}]}\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_THREAD, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_TEXT, 0,
                   "peak at 0.000000 s: 1.03 KiB (1050 bytes) live in 6 allocations\n"
                   "\ntid      name              allocations                        bytes\n"
                   "102      worker                      1                       1000 B\n"
                   "101      main                        5                         50 B\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_THREAD, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_JSON, 0,
                   "{\"time_ns\":24,\"live_bytes\":1050,\"live_allocations\":6,\"threads\":["
                   "{\"tid\":102,\"name\":\"worker\",\"bytes\":1000,\"count\":1},"
                   "{\"tid\":101,\"name\":\"main\",\"bytes\":50,\"count\":5}]}\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_THREAD, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_FOLDED, 0,
                   "worker-102 1000\nmain-101 50\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_MODULE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_JSON, 0,
                   "{\"time_ns\":24,\"live_bytes\":1050,\"live_allocations\":6,\"modules\":["
                   "{\"name\":\"/nonexistent/libfake.so\",\"bytes\":1050,\"count\":6}]}\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_FUNCTION, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_TEXT, 0,
                   "peak at 0.000000 s: 1.03 KiB (1050 bytes) live in 6 allocations\n"
                   "\n#1 1000 B in 1 allocation\n    libfake.so+0x1200\n"
                   "\n#2 50 B in 5 allocations\n    libfake.so+0x2300\n");
    ASSERT_RENDERS(h, peak, MS_HEAP_BY_FUNCTION_INCL, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_FOLDED, 0,
                   "libfake.so+0x1200 1000\nlibfake.so+0x100 50\nlibfake.so+0x2300 50\n");

    /* the header names the query: at a marker, the end, a diff */
    uint64_t ns;
    assert_int_equal(ms_heap_marker_time(h, "mid", &ns), 0);
    assert_int_equal(ms_heap_at(h, ns, &mid), 0);
    assert_int_equal(ms_heap_leaks(h, &end), 0);
    assert_int_equal(ms_heap_diff(h, mid, end, &diff), 0);
    ASSERT_RENDERS(h, mid, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_TEXT, 1,
                   "heap at 0.000000 s: 1.03 KiB (1050 bytes) live in 6 allocations\n"
                   "\n#1 1000 B in 1 allocation\n    libfake.so+0x1200\n");
    ASSERT_RENDERS(h, end, MS_HEAP_BY_THREAD, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_FOLDED, 0,
                   "main-101 50\n");
    ASSERT_RENDERS(h, diff, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_TEXT, 0,
                   "diff from 0.000000 s to 0.000000 s: -1000 B, -1 allocations\n"
                   "\n#1 -1000 B in -1 allocation\n    libfake.so+0x1200\n");
    ASSERT_RENDERS(h, diff, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_JSON, 0,
                   "{\"time_ns\":70,\"from_time_ns\":50,\"live_bytes\":-1000,\"live_allocations\""
                   ":-1,\"sites\":[{\"bytes\":-1000,\"count\":-1,\"stack\":[{\"function\":null,"
                   "\"file\":null,\"line\":0,\"module\":\"/nonexistent/libfake.so\"}]}]}\n");
    /* a diff that shrank has nothing to fold; a view without rows says so */
    ASSERT_RENDERS(h, diff, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_FOLDED, 0, "");
    ms_heap_view *empty;
    assert_int_equal(ms_heap_at(h, 0, &empty), 0);
    ASSERT_RENDERS(h, empty, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_TEXT, 0,
                   "heap at 0.000000 s: 0 B live in 0 allocations\n\n(no live allocations)\n");

    /* errors: an unknown format or grouping; a stream that fails */
    int rc;
    free(render(h, peak, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES, (ms_heap_format)9, 0, &rc));
    assert_int_equal(rc, MS_EINVAL);
    assert_non_null(strstr(ms_last_error(), "ms_heap_write"));
    free(render(h, peak, (ms_heap_by)9, MS_HEAP_ORDER_BYTES, MS_HEAP_FORMAT_TEXT, 0, &rc));
    assert_int_equal(rc, MS_EINVAL);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        setvbuf(full, NULL, _IONBF, 0);
        assert_int_equal(ms_heap_write(h, peak, MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES,
                                       MS_HEAP_FORMAT_TEXT, 0, full),
                         MS_EIO);
        fclose(full);
    }
    ms_heap_view_free(empty);
    ms_heap_view_free(diff);
    ms_heap_view_free(end);
    ms_heap_view_free(mid);
    ms_heap_view_free(peak);
    ms_heap_close(h);
}

/* ---------------------------------------------------------------------------------------- */
/* Per-thread statistics                                                                    */
/* ---------------------------------------------------------------------------------------- */

/*
 * main (serial 1, tid 201) and worker (serial 2, tid 202) free each other's blocks:
 *   t10 main allocates A (100 B)     main live 100
 *   t20 main allocates B (200 B)     main live 300: main's peak
 *   t30 worker allocates C (1000 B)  worker live 1000: worker's peak
 *   t40 worker frees A               main live 200 (a free is charged to the allocating thread)
 *   t50 main frees C                 worker live 0
 *   t60 worker allocates D (50 B)    worker live 50
 *   t70 main reallocs B to E (300 B) main live 300 again (not a new peak: not higher)
 *   t80 A freed again (a double free), t90 a free of memory never seen: unmatched, no thread's
 */
static void write_two_thread_trace(char *out)
{
    struct tw w;
    tw_start(&w, &(struct tw_start){
                     .pid = 9,
                     .ppid = 1,
                     .threads = TW_THREADS({1, 201, 0, "main"}, {2, 202, 0, "worker"}),
                     .modules = TW_MODULES({1, 0x1000, 0x9000, "/nonexistent/libfake.so"}),
                     .stacks = TW_STACKS({1, 0, 0x1100}, {2, 0, 0x2200})});
    uint64_t a = ev_alloc(&w, 10, 100, 1, 1);
    uint64_t b = ev_alloc(&w, 20, 200, 1, 1);
    uint64_t c = ev_alloc(&w, 30, 1000, 2, 2);
    ev_free(&w, 40, a);
    ev_free(&w, 50, c);
    ev_alloc(&w, 60, 50, 2, 2);
    ev_realloc(&w, 70, b, 300, 1, 1);
    ev_free(&w, 80, a);
    ev_unmatched_free(&w, 90);
    rec_end(&w, 100, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    save_trace(&w, "test_heap_threads", out);
}

static void threads_have_their_own_allocated_freed_and_peak(void **state)
{
    (void)state;
    char two[64];
    write_two_thread_trace(two);
    ms_heap *h;
    assert_int_equal(ms_heap_open(&h, two), 0);
    assert_null(ms_heap_thread_at(h, 0)); /* not computed yet */
    size_t n = 0;
    assert_int_equal(ms_heap_threads(h, &n), 0);
    assert_int_equal(n, 2);
    const ms_heap_thread *m = ms_heap_thread_at(h, 0), *wk = ms_heap_thread_at(h, 1);
    assert_null(ms_heap_thread_at(h, 2));
    assert_int_equal(m->tid, 201);
    assert_string_equal(m->name, "main");
    assert_int_equal(m->image, 0);
    assert_int_equal(m->allocations, 2);
    assert_int_equal(m->reallocations, 1);
    assert_int_equal(m->allocated_bytes, 100 + 200 + 300);
    assert_int_equal(m->frees, 1);               /* A, freed by worker */
    assert_int_equal(m->freed_bytes, 100 + 200); /* A, and B moved by the realloc */
    assert_int_equal(m->peak_bytes, 300);
    assert_int_equal(m->peak_time_ns, 20);
    assert_int_equal(wk->tid, 202);
    assert_string_equal(wk->name, "worker");
    assert_int_equal(wk->allocations, 2);
    assert_int_equal(wk->reallocations, 0);
    assert_int_equal(wk->allocated_bytes, 1050);
    assert_int_equal(wk->frees, 1); /* C, freed by main */
    assert_int_equal(wk->freed_bytes, 1000);
    assert_int_equal(wk->peak_bytes, 1000);
    assert_int_equal(wk->peak_time_ns, 30);

    ms_heap_totals t = {.size = sizeof(t)};
    assert_int_equal(ms_heap_totals_get(h, &t), 0);
    assert_int_equal(t.allocated_bytes, 1650);
    assert_int_equal(t.freed_bytes, 1300);
    assert_int_equal(t.allocated_bytes - t.freed_bytes, t.leaked_bytes); /* E and D */
    assert_int_equal(t.threads, 2);
    assert_int_equal(t.unmatched_frees, 2);
    assert_int_equal(t.peak_bytes, 1300); /* t30: A, B, C */
    assert_true(t.complete);

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_int_equal(ms_heap_threads_write(h, MS_HEAP_FORMAT_TEXT, 0, mem), 0);
    fclose(mem);
    assert_string_equal(
        text, "threads: 2; allocated 1.61 KiB (1650 bytes), freed 1.27 KiB (1300 bytes), peak "
              "1.27 KiB (1300 bytes) at 0.000000 s\n\n"
              "tid      name             image  allocations     reallocs        frees    "
              "allocated        freed         peak        peak at\n"
              "202      worker               0            2            0            1    "
              " 1.03 KiB       1000 B       1000 B     0.000000 s\n"
              "201      main                 0            2            1            1    "
              "    600 B        300 B        300 B     0.000000 s\n");
    free(text);
    mem = open_memstream(&text, &len);
    assert_int_equal(ms_heap_threads_write(h, MS_HEAP_FORMAT_JSON, 1, mem), 0);
    fclose(mem);
    assert_string_equal(text, "{\"threads_total\":2,\"allocated_bytes\":1650,\"freed_bytes\":1300,"
                              "\"peak_bytes\":1300,\"peak_time_ns\":30,\"threads\":[{\"tid\":202,"
                              "\"name\":\"worker\",\"image\":0,\"allocations\":2,"
                              "\"reallocations\":0,\"frees\":1,\"allocated_bytes\":1050,"
                              "\"freed_bytes\":1000,\"peak_bytes\":1000,\"peak_time_ns\":30}]}\n");
    free(text);
    assert_int_equal(ms_heap_threads_write(h, MS_HEAP_FORMAT_FOLDED, 0, stdout), MS_EINVAL);
    ms_heap_close(h);
    unlink(two);
}

/* ---------------------------------------------------------------------------------------- */
/* Opening with options                                                                     */
/* ---------------------------------------------------------------------------------------- */

struct progress_seen {
    int calls;
    uint64_t done, total;
};

static void note_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress_seen *p = ctx;
    p->calls++;
    p->done = done;
    p->total = total;
}

static void open_with_options_reports_progress_and_takes_a_descriptor(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct progress_seen p = {0};
    ms_heap_open_options o = {.size = sizeof(o), .progress = note_progress, .progress_ctx = &p};
    ms_heap *h;
    assert_int_equal(ms_heap_open_opts(&h, path, &o), 0);
    assert_true(p.calls >= 1);
    assert_int_equal(p.done, st.st_size); /* the last call: the whole file */
    assert_int_equal(p.total, st.st_size);
    ms_heap_totals t = {.size = sizeof(t)};
    assert_int_equal(ms_heap_totals_get(h, &t), 0);
    assert_int_equal(t.allocated_bytes, 1050);
    assert_int_equal(t.freed_bytes, 1000);
    assert_int_equal(t.threads, 2);
    assert_int_equal(t.lost_events, 0);
    assert_true(t.checkpoint_every > 0);
    assert_true(t.complete);
    /* a caller built before the appended fields gets the ones it knows */
    ms_heap_totals old;
    memset(&old, 0xee, sizeof(old));
    old.size = offsetof(ms_heap_totals, allocated_bytes);
    assert_int_equal(ms_heap_totals_get(h, &old), 0);
    assert_int_equal(old.peak_bytes, 1050);
    assert_int_equal(old.allocated_bytes, UINT64_C(0xeeeeeeeeeeeeeeee)); /* untouched */
    ms_heap_close(h);

    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(ms_heap_open_fd(&h, fd, "the trace", NULL), 0);
    close(fd); /* the handle keeps its own descriptor: the threads pass reads it again */
    size_t n;
    assert_int_equal(ms_heap_threads(h, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ms_heap_thread_at(h, 1)->peak_bytes, 1000);
    ms_heap_close(h);
    fd = open("/dev/null", O_RDONLY);
    assert_int_equal(ms_heap_open_fd(&h, fd, "the void", NULL), MS_EPARSE);
    assert_null(h);
    assert_non_null(strstr(ms_last_error(), "the void"));
    close(fd);
    o.size = 2;
    assert_int_equal(ms_heap_open_opts(&h, path, &o), MS_EINVAL);
}

/* ---------------------------------------------------------------------------------------- */
/* ms_trace_stats_write                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void trace_stats_write_text_and_json(void **state)
{
    (void)state;
    ms_trace *t;
    assert_int_equal(ms_trace_open(&t, path), 0);
    ms_trace_stats st = {.size = sizeof(st)};
    assert_int_equal(ms_trace_stats_get(t, &st), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_int_equal(ms_trace_stats_write(&st, NULL, MS_FORMAT_TEXT, mem), 0);
    fclose(mem);
    assert_non_null(strstr(text, "\npeak:             1.03 KiB (1050 bytes) at 0.000000 s\n"));
    assert_non_null(strstr(text, "\nleaked:           50 B in 5 allocations\n"));
    free(text);
    mem = open_memstream(&text, &len);
    assert_int_equal(ms_trace_stats_write(&st, "cut here", MS_FORMAT_JSON, mem), 0);
    fclose(mem);
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "peak_bytes")), 1050);
    assert_string_equal(json_string_value(json_object_get(o, "warning")), "cut here");
    assert_string_equal(json_string_value(json_object_get(o, "exit")), "exit");
    json_decref(o);
    free(text);
    assert_int_equal(ms_trace_stats_write(&st, NULL, MS_FORMAT_CSV, stdout), MS_EINVAL);
    ms_trace_close(t);
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
        cmocka_unit_test(write_renders_sites_threads_and_names_in_every_format),
        cmocka_unit_test(threads_have_their_own_allocated_freed_and_peak),
        cmocka_unit_test(open_with_options_reports_progress_and_takes_a_descriptor),
        cmocka_unit_test(trace_stats_write_text_and_json),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
