/*
 * test_trace.c - the trace reader: the format's primitives (CRC-32C, varints), the loader
 * (chunks, codecs, TIME deltas, block ages and infos, thread serials, stack ids defined late,
 * exec, the CLOCK time base), the stats of `memsnap report --stats` (exact counts, peak,
 * leaks, unmatched frees, sampling weights, against a reference model too), damaged files
 * (cut, bit-flipped, malformed, bad header), and the command itself through $MEMSNAP_BIN.
 *
 * Every trace here is written by hand with the tests' writer (trace_writer.h).
 */
#include "helpers.h"

#include "trace/format.h"
#include "trace/reader.h"
#include "trace_writer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

/* ---------------------------------------------------------------------------------------- */
/* Reading back                                                                             */
/* ---------------------------------------------------------------------------------------- */

static struct ms__trace_data *load(const struct tw *w)
{
    struct ms__trace_data *td = NULL;
    char err[256] = "";
    int rc = ms__trace_load_mem(&td, w->file.p, w->file.len, err, sizeof(err));
    if (rc)
        fail_msg("loading failed: %s (%s)", err, ms_err_name(rc));
    return td;
}

static ms_trace_stats stats_of(const struct tw *w)
{
    struct ms__trace_data *td = load(w);
    ms_trace_stats st;
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    ms__trace_data_free(td);
    return st;
}

static double dabs(double x)
{
    return x < 0 ? -x : x;
}

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    temp_dir(tmpdir, sizeof(tmpdir), "test-trace");
    return 0;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return temp_dir_remove(tmpdir);
}

/* Writes len bytes to <tmpdir>/<name>; returns the path (static buffer). */
static const char *write_temp(const char *name, const void *data, size_t len)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    write_bytes(path, data, len);
    return path;
}

/* ---------------------------------------------------------------------------------------- */
/* Primitives                                                                               */
/* ---------------------------------------------------------------------------------------- */

static void crc32c_gives_the_standard_check_value(void **state)
{
    (void)state;
    assert_int_equal(ms_crc32c(0, "123456789", 9), 0xE3069283u);
    /* continuing a CRC over a split buffer gives the same value */
    assert_int_equal(ms_crc32c(ms_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(ms_crc32c(0, "", 0), 0);
    /* lengths around the 8-byte steps of the hardware path */
    static const char text[] = "The quick brown fox jumps over the lazy dog";
    uint32_t whole = ms_crc32c(0, text, sizeof(text) - 1);
    assert_int_equal(whole, 0x22620404u);
    for (size_t cut = 0; cut < sizeof(text); cut++)
        assert_int_equal(ms_crc32c(ms_crc32c(0, text, cut), text + cut, sizeof(text) - 1 - cut),
                         whole);
}

static void varints_round_trip_up_to_64_bits(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        size_t len;
    } cases[] = {
        {0, 1},
        {1, 1},
        {127, 1},
        {128, 2},
        {16383, 2},
        {16384, 3},
        {UINT32_MAX, 5},
        {UINT64_C(1) << 56, 9},
        {(UINT64_C(1) << 63) - 1, 9},
        {UINT64_C(1) << 63, 10},
        {UINT64_MAX, 10},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[MS_VARINT_MAX];
        size_t len = (size_t)(ms_put_varint(buf, cases[i].v) - buf);
        assert_int_equal(len, cases[i].len);
        const uint8_t *p = buf;
        uint64_t got = 0;
        assert_int_equal(ms_get_varint(&p, buf + len, &got), 0);
        assert_true(got == cases[i].v);
        assert_ptr_equal(p, buf + len);
        /* one byte short is an error, never a read past the end */
        p = buf;
        assert_int_equal(ms_get_varint(&p, buf + len - 1, &got), -1);
    }
    static const int64_t zz[] = {0, -1, 1, -2, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    static const uint64_t zz_want[] = {0, 1, 2, 3, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX - 2};
    for (size_t i = 0; i < sizeof(zz) / sizeof(zz[0]); i++) {
        assert_true(ms_zigzag(zz[i]) == zz_want[i]);
        assert_true(ms_unzigzag(ms_zigzag(zz[i])) == zz[i]);
    }
}

static void varints_past_64_bits_are_rejected(void **state)
{
    (void)state;
    uint64_t v;
    /* 11 bytes: more than any 64-bit value needs */
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    const uint8_t *p = eleven;
    assert_int_equal(ms_get_varint(&p, eleven + sizeof(eleven), &v), -1);
    /* 10 bytes whose last carries bits above bit 63 */
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    p = over;
    assert_int_equal(ms_get_varint(&p, over + sizeof(over), &v), -1);
    /* the largest: bit 63 alone in the 10th byte */
    static const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    p = max;
    assert_int_equal(ms_get_varint(&p, max + sizeof(max), &v), 0);
    assert_true(v == UINT64_MAX);
    /* a continuation bit on the last byte of the input */
    static const uint8_t open[] = {0x81};
    p = open;
    assert_int_equal(ms_get_varint(&p, open + 1, &v), -1);
}

static void ptrmap_matches_a_reference_under_random_operations(void **state)
{
    (void)state;
    enum { KEYS = 600 };
    static uint64_t ref[KEYS];
    static bool has[KEYS];
    memset(has, 0, sizeof(has));
    struct ms__ptrmap m;
    assert_int_equal(ms__ptrmap_init(&m, 4), 0);
    unsigned seed = 99;
    size_t count = 0;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % KEYS;
        /* aligned addresses, key 0 and keys that collide in the low bits */
        uint64_t key = k == 0 ? 0 : (uint64_t)k << 4 | (k % 3 == 0 ? UINT64_C(1) << 40 : 0);
        uint64_t v = 0;
        if ((seed >> 20) % 3 == 0) {
            bool was = ms__ptrmap_remove(&m, key, &v);
            assert_int_equal(was, has[k]);
            if (was) {
                assert_int_equal(v, ref[k]);
                count--;
            }
            has[k] = false;
        } else {
            int rc = ms__ptrmap_put(&m, key, (uint64_t)i, &v);
            assert_int_equal(rc, has[k] ? 1 : 0);
            if (has[k])
                assert_int_equal(v, ref[k]);
            else
                count++;
            has[k] = true;
            ref[k] = (uint64_t)i;
        }
        assert_int_equal(m.count, count);
        if (i % 997 == 0)
            for (unsigned j = 0; j < KEYS; j++) {
                uint64_t kj = j == 0 ? 0 : (uint64_t)j << 4 | (j % 3 == 0 ? UINT64_C(1) << 40 : 0);
                bool found = ms__ptrmap_get(&m, kj, &v);
                assert_int_equal(found, has[j]);
                if (found)
                    assert_int_equal(v, ref[j]);
            }
    }
    ms__ptrmap_clear(&m);
    assert_int_equal(m.count, 0);
    assert_false(ms__ptrmap_get(&m, 16, &(uint64_t){0}));
    ms__ptrmap_free(&m);
}

static void grow_doubles_from_16_and_fails_without_touching_the_array(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    assert_int_equal(ms__grow(&a, &cap, 0, sizeof(*a), 0), 0); /* nothing needed, nothing done */
    assert_null(a);
    assert_int_equal(ms__grow(&a, &cap, 1, sizeof(*a), 0), 0);
    assert_int_equal(cap, 16);
    a[15] = 7;
    assert_int_equal(ms__grow(&a, &cap, 17, sizeof(*a), MS__GROW_POPULATE), 0);
    assert_int_equal(cap, 32);
    assert_int_equal(a[15], 7);
    int *before = a;
    assert_int_equal(ms__grow(&a, &cap, 20, sizeof(*a), 0), 0); /* fits: untouched */
    assert_ptr_equal(a, before);
    /* a size that overflows: MS_ENOMEM, the array and its capacity as they were */
    assert_int_equal(ms__grow(&a, &cap, SIZE_MAX / 2, sizeof(*a), 0), MS_ENOMEM);
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 32);
    int *b = ms__grow_to(a, &cap, 1000, sizeof(*a));
    assert_non_null(b);
    assert_int_equal(cap, 1024);
    assert_int_equal(b[15], 7);
    free(b);
}

/* ---------------------------------------------------------------------------------------- */
/* Stats                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* One thread: alloc A, alloc B, realloc B -> C, free A, free of unknown memory, realloc of
 * unknown memory -> Z, END. CLOCK at tick 5 starts the trace. */
static void write_basic(struct tw *w, unsigned codec)
{
    tw_start(w, &(struct tw_start){.pid = 4242,
                                   .ppid = 1,
                                   .clock_ticks = 5,
                                   .clock_ns = 1000,
                                   .threads = TW_THREADS({1, 42, 5, "main"}),
                                   .stacks = TW_STACKS({1, 0, 0x401000})});
    uint64_t a = ev_alloc(w, 10, 100, 1, 1); /* live 100 */
    uint64_t b = ev_alloc(w, 20, 200, 1, 1); /* live 300 */
    ev_realloc(w, 30, b, 300, 1, 1);         /* B -> C: live 400, the peak */
    tw_chunk(w, codec);
    ev_free(w, 40, a);                     /* live 300 */
    ev_unmatched_free(w, 50);              /* unmatched */
    ev_realloc(w, 60, NO_BLOCK, 50, 0, 1); /* unmatched -> Z: live 350 */
    rec_end(w, 100, 0);
    tw_chunk(w, codec);
}

static void check_basic(const ms_trace_stats *st)
{
    assert_int_equal(st->allocations, 2);
    assert_int_equal(st->reallocations, 2);
    assert_int_equal(st->frees, 2);
    assert_int_equal(st->allocated_bytes, 100 + 200 + 300 + 50);
    assert_int_equal(st->peak_bytes, 400);
    assert_int_equal(st->peak_time_ns, 30 - 5);
    assert_int_equal(st->leaked_bytes, 300 + 50); /* C and Z; B moved, no phantom */
    assert_int_equal(st->leaked_allocations, 2);
    assert_int_equal(st->unmatched_frees, 2);
    assert_int_equal(st->threads, 1);
    assert_int_equal(st->duration_ns, 100 - 5);
    assert_int_equal(st->events, 6);
    assert_int_equal(st->pid, 4242);
    assert_int_equal(st->ppid, 1);
    assert_int_equal(st->images, 1);
    assert_true(st->complete);
    assert_false(st->truncated);
    assert_false(st->forked);
    assert_int_equal(st->stacks, 1);
    assert_int_equal(st->sample_rate, 0);
}

static void stats_count_allocations_frees_and_reallocations_exactly(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w, MS_CHUNK_CODEC_NONE);
    ms_trace_stats st = stats_of(&w);
    check_basic(&st);
    assert_int_equal(st.file_bytes, w.file.len);
    tw_free(&w);
}

/* A crafted trace whose blocks add up past 2^64 bytes: the figures are held at the limit and
 * flagged, never wrapped (and never undefined: the sanitizer build runs this). */
static void figures_past_64_bits_saturate_and_are_flagged(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7,
                                    .ppid = 1,
                                    .clock_ticks = 1,
                                    .clock_ns = 1,
                                    .threads = TW_THREADS({1, 7, 1, "main"})});
    uint64_t blocks[6];
    for (int i = 0; i < 6; i++)
        blocks[i] = ev_alloc(&w, 10 + (uint64_t)i, UINT64_C(1) << 62, 0, 1);
    ev_free(&w, 20, blocks[0]);
    rec_end(&w, 30, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    ms_trace_stats st = stats_of(&w);
    assert_int_equal(st.allocations, 6);
    assert_int_equal(st.frees, 1);
    assert_true(st.saturated);
    assert_true(st.allocated_bytes == UINT64_MAX);
    assert_true(st.peak_bytes == UINT64_MAX);
    tw_free(&w);

    write_basic(&w, MS_CHUNK_CODEC_NONE); /* an ordinary one is not flagged */
    st = stats_of(&w);
    assert_false(st.saturated);
    tw_free(&w);
}

static void zstd_chunks_read_the_same_as_plain_ones(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w, MS_CHUNK_CODEC_ZSTD);
    ms_trace_stats st = stats_of(&w);
    check_basic(&st);
    tw_free(&w);
}

static void decoded_events_keep_every_field(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w, MS_CHUNK_CODEC_ZSTD);
    struct ms__trace_data *td = load(&w);
    static const struct {
        unsigned kind;
        uint64_t time, id, size; /* size: of the info, or ~0 for none */
    } want[] = {
        {MS__EV_ALLOC, 5, 0, 100},
        {MS__EV_ALLOC, 15, 1, 200},
        {MS__EV_REALLOC_OLD, 25, 1, ~UINT64_C(0)},
        {MS__EV_REALLOC, 25, 2, 300},
        {MS__EV_FREE, 35, 0, ~UINT64_C(0)},
        {MS__EV_UNMATCHED_FREE, 45, 0, ~UINT64_C(0)},
        {MS__EV_UNMATCHED_OLD, 55, 0, ~UINT64_C(0)},
        {MS__EV_REALLOC, 55, 3, 50},
    };
    assert_int_equal(td->nslots, 8);
    assert_int_equal(td->nevents, 6);
    for (size_t i = 0; i < 8; i++) {
        const struct ms__trace_event *e = &td->events[i];
        assert_int_equal(e->kind, want[i].kind);
        assert_int_equal(ms__trace_event_ns(td, e), want[i].time);
        assert_int_equal(e->id, want[i].id);
        if (want[i].size == ~UINT64_C(0)) {
            assert_int_equal(e->info, MS__TRACE_NO_INFO);
        } else {
            assert_int_equal(td->infos[e->info].size, want[i].size);
            assert_int_equal(td->infos[e->info].thread, 0);
        }
    }
    assert_int_equal(td->infos[td->events[0].info].stack, 1);
    assert_int_equal(td->infos[td->events[7].info].stack, 0);
    assert_int_equal(td->images[0].nblocks, 4);
    assert_int_equal(td->images[0].ninfos, 4);
    assert_int_equal(td->nthreads, 1);
    assert_int_equal(td->threads[0].serial, 1);
    assert_int_equal(td->threads[0].tid, 42);
    assert_string_equal(ms__trace_str_ptr(td, td->threads[0].name), "main");
    assert_int_equal(td->threads[0].first_time, 0);
    assert_int_equal(td->threads[0].last_time, 0) /* its only THREAD record */;
    assert_int_equal(td->images[0].cmdline.len, 9);
    assert_memory_equal(ms__trace_str_ptr(td, td->images[0].cmdline), "prog\0-x\0y", 9);
    assert_string_equal(ms__trace_str_ptr(td, td->images[0].exe), "/usr/bin/prog");
    assert_int_equal(td->chunks, 2);
    ms__trace_data_free(td);
    tw_free(&w);
}

/* A realloc written before the ALLOC of its old block (they came from two threads): REALLOC
 * with age 0, then the ALLOC, then RELEASE ends that block. No free, nothing unmatched. A
 * block freed twice is an unmatched free. */
static void release_ends_a_block_and_a_double_free_is_unmatched(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){0});
    at(&w, 10);
    b_u8(&w.chunk, MS_REC_INFO);
    b_v(&w.chunk, 30);
    b_v(&w.chunk, 0);
    b_v(&w.chunk, 2);
    w.infos[w.ninfos].size = 30;
    w.infos[w.ninfos++].serial = 2;
    b_u8(&w.chunk, MS_REC_REALLOC);
    b_v(&w.chunk, 0);
    b_v(&w.chunk, 0);
    w.next_block++;                            /* block 0, 30 bytes: live 30 */
    uint64_t old = ev_alloc(&w, 10, 20, 0, 1); /* block 1: live 50, the peak */
    ev_release(&w, old);                       /* live 30 */
    uint64_t b = ev_alloc(&w, 20, 8, 0, 1);    /* live 38 */
    ev_free(&w, 30, b);                        /* live 30 */
    ev_free(&w, 40, b);                        /* again */
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    ms_trace_stats st = stats_of(&w);
    assert_int_equal(st.allocations, 2);
    assert_int_equal(st.reallocations, 1);
    assert_int_equal(st.frees, 2);
    assert_int_equal(st.unmatched_frees, 1);
    assert_int_equal(st.peak_bytes, 50);
    assert_int_equal(st.peak_time_ns, 10);
    assert_int_equal(st.leaked_bytes, 30);
    assert_int_equal(st.leaked_allocations, 1);
    assert_int_equal(st.events, 5);
    assert_int_equal(st.threads, 0); /* no THREAD record */
    assert_false(st.complete);
    assert_int_equal(st.duration_ns, 40); /* no END: the last time seen */
    tw_free(&w);
}

/* The peak's time is when it was first reached: reaching it again later does not move it. */
static void the_peak_time_is_when_it_was_first_reached(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.clock_ticks = 100});
    uint64_t a = ev_alloc(&w, 110, 64, 0, 1);
    uint64_t b = ev_alloc(&w, 120, 36, 0, 1); /* 100 bytes: the peak */
    ev_free(&w, 130, b);
    ev_free(&w, 140, a);
    ev_alloc(&w, 150, 100, 0, 1); /* 100 bytes again */
    a = ev_alloc(&w, 160, 1, 0, 1);
    ev_free(&w, 170, a);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    ms_trace_stats st = stats_of(&w);
    assert_int_equal(st.peak_bytes, 101);
    assert_int_equal(st.peak_time_ns, 60);
    tw_free(&w);
    tw_start(&w, &(struct tw_start){.clock_ticks = 100});
    a = ev_alloc(&w, 110, 64, 0, 1);
    b = ev_alloc(&w, 120, 36, 0, 1);
    ev_free(&w, 130, b);
    ev_free(&w, 140, a);
    ev_alloc(&w, 150, 100, 0, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    st = stats_of(&w);
    assert_int_equal(st.peak_bytes, 100);
    assert_int_equal(st.peak_time_ns, 20);
    tw_free(&w);
}

static void mmap_calls_are_counted_apart_from_the_heap(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w,
             &(struct tw_start){.pid = 7, .ppid = 1, .flags = MS_PROC_MMAP, .clock_ticks = 100});
    ev_mmap(&w, 110, 0x7f0000000000, 4096, 0, 1);
    ev_mremap(&w, 120, 0x7f0000000000, 4096, 0x7f0000100000, 8192, 0, 1);
    ev_munmap(&w, 130, 0x7f0000100000, 8192, 1);
    ev_alloc(&w, 140, 16, 0, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    ms_trace_stats st = stats_of(&w);
    assert_int_equal(st.mmaps, 2);
    assert_int_equal(st.munmaps, 1);
    assert_int_equal(st.mapped_bytes, 4096 + 8192);
    assert_int_equal(st.events, 4);
    assert_int_equal(st.allocations, 1);
    assert_int_equal(st.peak_bytes, 16);
    struct ms__trace_data *td = load(&w);
    static const unsigned kinds[] = {MS__EV_MMAP, MS__EV_MREMAP_OLD, MS__EV_MREMAP, MS__EV_MUNMAP,
                                     MS__EV_ALLOC};
    static const uint64_t ids[] = {0x7f0000000000, 0x7f0000000000, 0x7f0000100000, 0x7f0000100000,
                                   0};
    static const uint64_t sizes[] = {4096, 4096, 8192, 8192, 16};
    assert_int_equal(td->nslots, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(td->events[i].kind, kinds[i]);
        assert_int_equal(td->events[i].id, ids[i]);
        assert_int_equal(td->infos[td->events[i].info].size, sizes[i]);
    }
    ms__trace_data_free(td);
    tw_free(&w);
}

static void global_records_fill_their_tables(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 9,
                                    .ppid = 2,
                                    .flags = MS_PROC_FORKED,
                                    .clock_ticks = 1000,
                                    .threads = TW_THREADS({1, 9, 1000, "main"}),
                                    .modules =
                                        TW_MODULES({1, 0x400000, 0x500000, "/usr/bin/prog"},
                                                   {2, 0x7f0000, 0x7f8000, "/lib/libplugin.so"})});
    rec_rss(&w, 1500, 4 << 20);
    rec_marker(&w, 1, 1600, "phase 1");
    rec_rss(&w, 1400, 8 << 20); /* out of order in the file: sorted by time */
    ev_alloc(&w, 1700, 64, 0, 1);
    rec_unload(&w, 2, 1800);
    rec_thread(&w, 2, 10, 1750, "worker");
    rec_thread_end(&w, 2, 1900);
    rec_end(&w, 2000, 2);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__trace_data *td = load(&w);
    assert_int_equal(td->nmodules, 2);
    assert_string_equal(ms__trace_str_ptr(td, td->modules[1].path), "/lib/libplugin.so");
    assert_int_equal(td->modules[1].build_id.len, 4);
    assert_memory_equal(ms__trace_str_ptr(td, td->modules[1].build_id), "\x01\x02\x00\xff", 4);
    assert_true(td->modules[0].unload_time == UINT64_MAX);
    assert_int_equal(td->modules[1].unload_time, 800);
    assert_int_equal(td->nrss, 2);
    assert_int_equal(td->rss[0].time, 400);
    assert_int_equal(td->rss[0].bytes, 8 << 20);
    assert_int_equal(td->rss[1].time, 500);
    assert_int_equal(td->nmarkers, 1);
    assert_int_equal(td->markers[0].time, 600);
    assert_string_equal(ms__trace_str_ptr(td, td->markers[0].label), "phase 1");
    assert_int_equal(td->threads[td->markers[0].thread].tid, 9);
    assert_int_equal(td->nthreads, 2);
    assert_true(td->threads[1].ended);
    assert_int_equal(td->threads[1].first_time, 750);
    assert_int_equal(td->threads[1].last_time, 900);
    assert_int_equal(td->threads[0].first_time, 0);
    assert_int_equal(td->threads[0].last_time, 0);
    assert_int_equal(td->exit_kind, 2);
    ms_trace_stats st;
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.modules, 2);
    assert_int_equal(st.markers, 1);
    assert_int_equal(st.rss_samples, 2);
    assert_int_equal(st.rss_peak_bytes, 8 << 20);
    assert_int_equal(st.threads, 2);
    assert_true(st.forked);
    assert_int_equal(st.ppid, 2);
    assert_int_equal(st.duration_ns, 1000);
    ms__trace_data_free(td);
    tw_free(&w);
}

/* Threads are serials: a THREAD record may come after the serial's first event, and a tid the
 * kernel reused is another thread. */
static void threads_are_serials_named_by_their_thread_records(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){0});
    ev_alloc(&w, 5, 1, 0, 1);
    rec_thread(&w, 1, 555, 3, "first");
    rec_thread_end(&w, 1, 8);
    ev_alloc(&w, 9, 1, 0, 2);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    rec_thread(&w, 2, 555, 9, "second"); /* the same tid, reused */
    rec_thread(&w, 2, 555, 12, "renamed");
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__trace_data *td = load(&w);
    assert_int_equal(td->nthreads, 2);
    assert_int_equal(td->threads[0].tid, 555);
    assert_int_equal(td->threads[1].tid, 555);
    assert_int_equal(td->threads[0].first_time, 3);
    assert_int_equal(td->threads[0].last_time, 8);
    assert_true(td->threads[0].ended);
    assert_string_equal(ms__trace_str_ptr(td, td->threads[1].name), "renamed");
    assert_int_equal(td->threads[1].first_time, 9);
    assert_int_equal(td->threads[1].last_time, 12);
    ms_trace_stats st;
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.threads, 2);
    ms__trace_data_free(td);
    tw_free(&w);
}

/* A workload of a few threads in many chunks, replayed by a naive model in the test. */
static void random_workloads_match_a_reference_model(void **state)
{
    (void)state;
    enum { EVENTS = 5000, POOL = 300 };
    for (unsigned round = 0; round < 4; round++) {
        struct tw w;
        tw_start(&w, &(struct tw_start){.pid = 1, .ppid = 0, .clock_ticks = 1000});
        uint64_t block[POOL], size[POOL], now = 1000;
        bool live[POOL] = {false};
        uint64_t cur = 0, peak = 0, peak_t = 0, allocs = 0, reallocs = 0, frees = 0, bytes = 0;
        uint64_t unmatched = 0, nlive = 0;
        unsigned seed = 12345 + round;
        for (int i = 0; i < EVENTS; i++) {
            seed = seed * 1103515245u + 12345u;
            now += (seed >> 16) % 3 ? 0 : (seed >> 8) % 50000;
            unsigned k = (seed >> 4) % POOL, serial = 1 + (seed >> 12) % 4;
            uint64_t sz = 1 + (seed >> 18) % 100 * 37;
            unsigned op = (seed >> 24) % 8;
            if (!live[k]) {
                if (op == 7) {
                    ev_unmatched_free(&w, now);
                    frees++;
                    unmatched++;
                    continue;
                }
                block[k] = ev_alloc(&w, now, sz, (seed >> 20) % 3, serial);
                allocs++;
            } else if (op < 3) {
                ev_free(&w, now, block[k]);
                live[k] = false;
                frees++;
                cur -= size[k];
                nlive--;
                continue;
            } else {
                block[k] = ev_realloc(&w, now, block[k], sz, 0, serial);
                reallocs++;
                cur -= size[k];
                nlive--;
            }
            live[k] = true;
            size[k] = sz;
            cur += sz;
            bytes += sz;
            nlive++;
            if (cur > peak) {
                peak = cur;
                peak_t = now - 1000;
            }
            if ((seed >> 28) == 0)
                tw_chunk(&w, round & 1 ? MS_CHUNK_CODEC_ZSTD : MS_CHUNK_CODEC_NONE);
        }
        tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
        ms_trace_stats st = stats_of(&w);
        assert_int_equal(st.allocations, allocs);
        assert_int_equal(st.reallocations, reallocs);
        assert_int_equal(st.frees, frees);
        assert_int_equal(st.allocated_bytes, bytes);
        assert_int_equal(st.unmatched_frees, unmatched);
        assert_int_equal(st.peak_bytes, peak);
        assert_int_equal(st.peak_time_ns, peak_t);
        assert_int_equal(st.leaked_bytes, cur);
        assert_int_equal(st.leaked_allocations, nlive);
        assert_int_equal(st.events, allocs + reallocs + frees);
        assert_int_equal(st.duration_ns, now - 1000);
        tw_free(&w);
    }
}

/* A million events: the event array grows (and is faulted in ahead) many times over. */
static void a_million_events_load_whole_and_in_order(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){0});
    uint64_t prev = NO_BLOCK;
    for (uint64_t i = 0; i < 500000; i++) { /* alloc, then free the previous block */
        uint64_t b = ev_alloc(&w, i, 8 + i % 4, 0, 1 + i % 2);
        if (prev != NO_BLOCK)
            ev_free(&w, i, prev);
        prev = b;
        if (w.chunk.len > (1u << 20))
            tw_chunk(&w, i % 3 ? MS_CHUNK_CODEC_ZSTD : MS_CHUNK_CODEC_NONE);
    }
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    struct ms__trace_data *td = load(&w);
    assert_int_equal(td->nevents, 999999);
    assert_int_equal(td->nslots, 999999);
    assert_int_equal(td->images[0].nblocks, 500000);
    for (size_t i = 1; i < td->nslots; i++)
        if (td->events[i].time < td->events[i - 1].time)
            fail_msg("slot %zu goes back in time", i);
    ms_trace_stats st;
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.allocations, 500000);
    assert_int_equal(st.frees, 499999);
    assert_int_equal(st.peak_bytes, 11 + 10); /* a block of 11 bytes and the one before it */
    assert_int_equal(st.leaked_bytes, 8 + 499999 % 4);
    assert_int_equal(st.unmatched_frees, 0);
    ms__trace_data_free(td);
    tw_free(&w);
}

/* ---------------------------------------------------------------------------------------- */
/* Stacks, exec, time                                                                       */
/* ---------------------------------------------------------------------------------------- */

static void stack_ids_may_be_defined_after_their_use(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){0});
    ev_alloc(&w, 1, 10, 3, 1);
    ev_alloc(&w, 2, 10, 9, 1); /* 9 is never defined */
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    rec_stack(&w, 3, 2, 0x3000);
    rec_stack(&w, 2, 1, 0x2000);
    rec_stack(&w, 1, 0, 0x1000);
    rec_stack(&w, 3, 2, 0x3000); /* defined twice: one node */
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__trace_data *td = load(&w);
    assert_int_equal(td->nstacks, 3);
    uint32_t stack = td->infos[td->events[0].info].stack;
    assert_int_equal(stack, 3);
    uint64_t ips[8];
    assert_int_equal(ms__trace_stack_walk(td, 0, stack, ips, 8), 3);
    assert_int_equal(ips[0], 0x3000);
    assert_int_equal(ips[1], 0x2000);
    assert_int_equal(ips[2], 0x1000);
    assert_int_equal(ms__trace_stack_walk(td, 0, 3, ips, 2), 2);
    assert_null(ms__trace_stack_find(td, 0, 9));
    assert_int_equal(ms__trace_stack_walk(td, 0, 9, ips, 8), 0);
    ms_trace_stats st;
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.stacks, 3);
    ms__trace_data_free(td);
    tw_free(&w);
}

static void exec_starts_a_new_heap_threads_infos_and_stacks(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 77,
                                    .ppid = 1,
                                    .threads = TW_THREADS({1, 77, 0, "sh"}),
                                    .stacks = TW_STACKS({1, 0, 0xaaaa})});
    ev_alloc(&w, 10, 1000, 1, 1); /* still live at exec: not a leak */
    rec_process(&w, MS_REC_EXEC, 77, 1, 0, 0);
    rec_thread(&w, 1, 77, 20, "prog"); /* serial 1 again: another thread entry */
    rec_stack(&w, 1, 0, 0xbbbb);       /* the same id means another node */
    ev_alloc(&w, 30, 10, 1, 1);        /* info 0 and block 0 again; TIME from 0 again */
    ev_unmatched_free(&w, 40);         /* the old image's block */
    rec_end(&w, 50, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    struct ms__trace_data *td = load(&w);
    assert_int_equal(td->nimages, 2);
    assert_int_equal(td->nthreads, 2);
    assert_int_equal(td->threads[1].image, 1);
    assert_int_equal(td->images[1].first_event, 1);
    assert_int_equal(td->images[1].end_event, 3);
    assert_int_equal(td->images[0].nblocks, 1);
    assert_int_equal(td->images[1].nblocks, 1);
    assert_int_equal(td->events[1].id, 0);
    assert_int_equal(ms__trace_event_ns(td, &td->events[1]), 30);
    assert_int_equal(td->infos[td->events[1].info].size, 10);
    assert_int_equal(td->infos[td->events[1].info].thread, 1);
    assert_int_equal(ms__trace_stack_find(td, 0, 1)->ip, 0xaaaa);
    assert_int_equal(ms__trace_stack_find(td, 1, 1)->ip, 0xbbbb);
    ms_trace_stats st;
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.images, 2);
    assert_int_equal(st.threads, 2);
    assert_int_equal(st.stacks, 2);
    assert_int_equal(st.allocations, 2);
    assert_int_equal(st.peak_bytes, 1000); /* the peak spans images */
    assert_int_equal(st.peak_time_ns, 10);
    assert_int_equal(st.leaked_bytes, 10);
    assert_int_equal(st.leaked_allocations, 1);
    assert_int_equal(st.unmatched_frees, 1);
    assert_int_equal(st.duration_ns, 50);
    ms__trace_data_free(td);
    tw_free(&w);
}

static void clock_slope_maps_tsc_ticks_to_nanoseconds(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 3, .ppid = 1, .flags = MS_PROC_TSC, .no_clock = true});
    rec_clock(&w, 1000, 5000); /* 3 ticks a nanosecond; the middle pair leaves the slope */
    rec_clock(&w, 2000000, 700000);
    ev_alloc(&w, 1000 + 3 * 12345, 64, 0, 1);
    ev_alloc(&w, 1000 + 3 * 500000 + 1, 64, 0, 1); /* 500000.33 ns: rounds down */
    ev_alloc(&w, 1000 + 3 * 600000 + 2, 64, 0, 1); /* 600000.67 ns: rounds up */
    rec_clock(&w, 3001000, 1005000);
    rec_end(&w, 3001000, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__trace_data *td = load(&w);
    assert_int_equal(ms__trace_event_ns(td, &td->events[0]), 12345);
    assert_int_equal(ms__trace_event_ns(td, &td->events[1]), 500000);
    assert_int_equal(ms__trace_event_ns(td, &td->events[2]), 600001);
    assert_int_equal(ms__trace_ticks_ns(&td->timebase, 999), 0); /* before the start */
    assert_int_equal(ms__trace_ticks_ns(&td->timebase, UINT64_C(3000001000)), 1000000000);
    ms_trace_stats st;
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.duration_ns, 1000000);
    assert_int_equal(st.peak_time_ns, 600001);
    ms__trace_data_free(td);
    tw_free(&w);
}

/* ---------------------------------------------------------------------------------------- */
/* Sampling                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void sampled_blocks_weigh_by_their_probability(void **state)
{
    (void)state;
    /* 1 / (1 - exp(-s/R)) for R = 1000, computed with Python's math.expm1 */
    assert_true(dabs(ms__trace_sample_weight(500, 1000) - 2.5414940825367984) < 1e-12);
    assert_true(dabs(ms__trace_sample_weight(2000, 1000) - 1.1565176427496657) < 1e-12);
    assert_true(dabs(ms__trace_sample_weight(3000, 1000) - 1.052395696491256) < 1e-12);
    assert_true(dabs(ms__trace_sample_weight(1, 1000) - 1000.5000833333319) < 1e-9);
    assert_true(ms__trace_sample_weight(40000, 1000) == 1.0);
    assert_true(ms__trace_sample_weight(0, 1000) == 1.0);
    assert_true(ms__trace_sample_weight(123, 0) == 1.0);

    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 1, .ppid = 0, .rate = 1000});
    uint64_t a = ev_alloc(&w, 1, 500, 0, 1);
    uint64_t b = ev_alloc(&w, 2, 2000, 0, 1);
    ev_alloc(&w, 3, 100000, 0, 1); /* >= 40 R: weight 1 */
    ev_alloc(&w, 4, 0, 0, 1);      /* size 0: weight 1, adds nothing to the peak */
    ev_free(&w, 5, b);
    ev_realloc(&w, 6, a, 3000, 0, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    ms_trace_stats st = stats_of(&w);
    /* expected values from the same formula in Python, rounded at the end */
    assert_int_equal(st.sample_rate, 1000);
    assert_int_equal(st.allocations, 6);          /* 5.698 */
    assert_int_equal(st.reallocations, 1);        /* 1.052 */
    assert_int_equal(st.frees, 1);                /* 1.157 */
    assert_int_equal(st.allocated_bytes, 106741); /* 106740.969 */
    assert_int_equal(st.peak_bytes, 103584);      /* 103583.782 */
    assert_int_equal(st.peak_time_ns, 3);
    assert_int_equal(st.leaked_bytes, 103157);  /* 103157.187 */
    assert_int_equal(st.leaked_allocations, 3); /* 3.052 */
    assert_int_equal(st.events, 6);
    tw_free(&w);
}

/* ---------------------------------------------------------------------------------------- */
/* Damaged files                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Three chunks, one allocation each (1, 10, 100 bytes); offs gets each chunk's offset. */
static void write_three(struct tw *w, size_t offs[3])
{
    tw_start(w, &(struct tw_start){.pid = 1, .ppid = 0, .threads = TW_THREADS({1, 1, 0, "main"})});
    for (int i = 0; i < 3; i++) {
        uint64_t size = i == 0 ? 1 : i == 1 ? 10 : 100;
        ev_alloc(w, (uint64_t)(i + 1) * 10, size, 0, 1);
        for (int k = 0; k < 50; k++)
            rec_marker(w, 1, (uint64_t)(i + 1) * 10, "padding so that the chunk is long");
        if (i == 2)
            rec_end(w, 40, 0);
        offs[i] = tw_chunk(w, i == 1 ? MS_CHUNK_CODEC_NONE : MS_CHUNK_CODEC_ZSTD);
    }
}

static void a_cut_file_keeps_the_chunks_before_the_cut(void **state)
{
    (void)state;
    struct tw w;
    size_t offs[3];
    write_three(&w, offs);
    size_t cut = offs[2] + (w.file.len - offs[2]) / 2;
    const char *path = write_temp("cut.mstrace", w.file.p, cut);
    ms_trace *tr;
    assert_int_equal(ms_trace_open(&tr, path), 0);
    ms_trace_stats st = {.size = sizeof(st)};
    assert_int_equal(ms_trace_stats_get(tr, &st), 0);
    assert_true(st.truncated);
    assert_false(st.complete);
    assert_int_equal(st.allocations, 2);
    assert_int_equal(st.leaked_bytes, 11);
    assert_int_equal(st.markers, 100);
    assert_int_equal(st.file_bytes, cut);
    assert_int_equal(st.duration_ns, 20); /* the last time read */
    const char *warn = ms_trace_warning(tr);
    assert_non_null(warn);
    char want[128];
    snprintf(want, sizeof(want), "trace cut at byte %zu (chunk 3): ", offs[2]);
    assert_contains(warn, want);
    assert_contains(warn, "ends inside the chunk");
    assert_contains(warn, "read up to the last good chunk");
    /* asking again gives the same figures */
    ms_trace_stats again = {.size = sizeof(again)};
    assert_int_equal(ms_trace_stats_get(tr, &again), 0);
    assert_memory_equal(&st, &again, sizeof(st));
    ms_trace_close(tr);

    /* cut inside a chunk frame, and right at a chunk boundary */
    struct ms__trace_data *td;
    char err[256];
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, offs[2] + 7, err, sizeof(err)), 0);
    assert_true(td->truncated);
    assert_contains(td->warning, "inside a chunk frame");
    ms__trace_data_free(td);
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, offs[2], err, sizeof(err)), 0);
    assert_false(td->truncated);
    assert_int_equal(td->chunks, 2);
    ms__trace_data_free(td);
    tw_free(&w);
}

static void a_flipped_bit_fails_the_crc_of_its_chunk(void **state)
{
    (void)state;
    struct tw w;
    size_t offs[3];
    write_three(&w, offs);
    w.file.p[offs[1] + MS_CHUNK_FRAME_SIZE + 5] ^= 0x10; /* inside chunk 2's payload */
    const char *path = write_temp("flipped.mstrace", w.file.p, w.file.len);
    ms_trace *tr;
    assert_int_equal(ms_trace_open(&tr, path), 0);
    ms_trace_stats st = {.size = sizeof(st)};
    assert_int_equal(ms_trace_stats_get(tr, &st), 0);
    assert_true(st.truncated);
    assert_int_equal(st.allocations, 1);
    assert_int_equal(st.file_bytes, w.file.len);
    char want[128];
    snprintf(want, sizeof(want), "trace cut at byte %zu (chunk 2): CRC mismatch", offs[1]);
    assert_contains(ms_trace_warning(tr), want);
    ms_trace_close(tr);
    tw_free(&w);

    /* a flipped bit in a frame's size field is caught by the CRC too */
    write_three(&w, offs);
    w.file.p[offs[2] + 12] ^= 0x01;
    ms_trace_stats st2 = stats_of(&w);
    assert_true(st2.truncated);
    assert_int_equal(st2.allocations, 2);
    tw_free(&w);

    /* and a bad chunk magic */
    write_three(&w, offs);
    w.file.p[offs[1]] ^= 0xff;
    struct ms__trace_data *td = load(&w);
    assert_contains(td->warning, "bad chunk magic");
    ms__trace_data_free(td);
    tw_free(&w);
}

/* A record that does not parse discards its whole chunk (the threads, infos and events it
 * added, the state it moved), and reading stops there. */
static void a_malformed_record_discards_its_chunk(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.threads = TW_THREADS({1, 1, 0, "main"})});
    ev_alloc(&w, 10, 100, 0, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    ev_alloc(&w, 20, 200, 0, 1);
    rec_thread(&w, 1, 1, 20, "renamed");
    rec_thread(&w, 2, 2, 20, "new");
    ev_alloc(&w, 25, 7, 0, 2);
    rec_stack(&w, 5, 0, 0x5555);
    b_u8(&w.chunk, 0x7f); /* no such record */
    size_t bad = tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    ev_alloc(&w, 30, 300, 0, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__trace_data *td = load(&w);
    assert_true(td->truncated);
    char want[96];
    snprintf(want, sizeof(want), "trace cut at byte %zu (chunk 2): malformed record", bad);
    assert_contains(td->warning, want);
    assert_contains(td->warning, "unknown record type 0x7f");
    assert_int_equal(td->nthreads, 1);
    assert_string_equal(ms__trace_str_ptr(td, td->threads[0].name), "main");
    assert_int_equal(td->ninfos, 1);
    assert_int_equal(td->images[0].ninfos, 1);
    assert_int_equal(td->images[0].nblocks, 1);
    assert_int_equal(td->nstacks, 0);
    assert_int_equal(td->nslots, 1);
    assert_int_equal(td->end_time, 10);
    ms__trace_data_free(td);
    tw_free(&w);

    /* records that name what does not exist, or run past the chunk */
    static const struct {
        const char *why;
        uint8_t bytes[4];
        size_t len;
    } bad_recs[] = {
        {"block age 0 out of range", {MS_REC_FREE, 0}, 2},
        {"block age 2 out of range", {MS_REC_FREE, 2}, 2},
        {"ALLOC of undefined info 1", {MS_REC_ALLOC, 1}, 2},
        {"REALLOC record runs past the chunk", {MS_REC_REALLOC, 1}, 2},
        {"UNMATCHED of kind 2", {MS_REC_UNMATCHED, 2}, 2},
        {"TIME record runs past the chunk", {MS_REC_TIME, 0x80}, 2},
    };
    for (size_t i = 0; i < sizeof(bad_recs) / sizeof(bad_recs[0]); i++) {
        tw_start(&w, &(struct tw_start){0});
        ev_alloc(&w, 1, 8, 0, 1); /* info 0, block 0 */
        b_put(&w.chunk, bad_recs[i].bytes, bad_recs[i].len);
        tw_chunk(&w, MS_CHUNK_CODEC_NONE);
        td = load(&w);
        assert_true(td->truncated);
        assert_contains(td->warning, bad_recs[i].why);
        assert_int_equal(td->nclocks, 0); /* the whole chunk went */
        assert_int_equal(td->nslots, 0);
        ms__trace_data_free(td);
        tw_free(&w);
    }
}

static void bad_headers_are_errors_and_minor_versions_are_read(void **state)
{
    (void)state;
    ms_trace *tr = (ms_trace *)1;
    const char *path = write_temp("empty.mstrace", "", 0);
    assert_int_equal(ms_trace_open(&tr, path), MS_EPARSE);
    assert_null(tr);
    assert_contains(ms_trace_error(NULL), "empty file");

    static const char json[] = "{\"schema\":\"memsnap.snapshot/1\",\"pid\":1}";
    path = write_temp("json.mstrace", json, sizeof(json) - 1);
    assert_int_equal(ms_trace_open(&tr, path), MS_EPARSE);
    assert_contains(ms_trace_error(NULL), "not a memsnap trace");

    path = write_temp("short.mstrace", "MEMSNAPT", 8);
    assert_int_equal(ms_trace_open(&tr, path), MS_EPARSE);

    struct tw w;
    tw_begin_version(&w, 2, 0);
    path = write_temp("v2.mstrace", w.file.p, w.file.len);
    assert_int_equal(ms_trace_open(&tr, path), MS_EPARSE);
    assert_contains(ms_trace_error(NULL), "newer trace format");
    tw_free(&w);

    assert_int_equal(ms_trace_open(&tr, "/nonexistent/trace.mstrace"), MS_ENOENT);
    assert_contains(ms_trace_error(NULL), "/nonexistent/trace.mstrace");
    assert_int_equal(ms_trace_open(&tr, tmpdir), MS_EPARSE);

    /* minor 9 with a longer header: the extra header bytes are skipped */
    write_basic(&w, MS_CHUNK_CODEC_ZSTD);
    w.file.p[10] = 9;
    ms_put_u32(w.file.p + 12, MS_TRACE_HEADER_SIZE + 8);
    struct bytes longer = {0};
    b_put(&longer, w.file.p, MS_TRACE_HEADER_SIZE);
    b_put(&longer, "futureXX", 8);
    b_put(&longer, w.file.p + MS_TRACE_HEADER_SIZE, w.file.len - MS_TRACE_HEADER_SIZE);
    path = write_temp("minor.mstrace", longer.p, longer.len);
    assert_int_equal(ms_trace_open(&tr, path), 0);
    ms_trace_stats st = {.size = sizeof(st)};
    assert_int_equal(ms_trace_stats_get(tr, &st), 0);
    check_basic(&st);
    assert_null(ms_trace_warning(tr));
    ms_trace_close(tr);
    free(longer.p);
    tw_free(&w);

    /* a header alone is an empty trace, not an error */
    tw_begin(&w);
    st = stats_of(&w);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.images, 1);
    assert_false(st.truncated);
    assert_false(st.complete);
    tw_free(&w);
}

static void stats_honour_the_callers_struct_size(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w, MS_CHUNK_CODEC_NONE);
    const char *path = write_temp("basic.mstrace", w.file.p, w.file.len);
    ms_trace *tr;
    assert_int_equal(ms_trace_open(&tr, path), 0);
    /* an older caller's struct: only its first fields are written */
    unsigned char buf[sizeof(ms_trace_stats) + 16];
    memset(buf, 0xee, sizeof(buf));
    ms_trace_stats *st = (ms_trace_stats *)(void *)buf;
    size_t small = offsetof(ms_trace_stats, allocations) + sizeof(uint64_t);
    st->size = small;
    assert_int_equal(ms_trace_stats_get(tr, st), 0);
    assert_int_equal(st->size, small);
    assert_int_equal(st->allocations, 2);
    assert_int_equal(buf[small], 0xee);
    ms_trace_stats zero = {0};
    assert_int_equal(ms_trace_stats_get(tr, &zero), MS_EINVAL);
    assert_int_equal(ms_trace_stats_get(tr, NULL), MS_EINVAL);
    ms_trace_close(tr);
    tw_free(&w);
}

/* ---------------------------------------------------------------------------------------- */
/* memsnap report                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* Runs "$MEMSNAP_BIN args > out 2> err"; returns the exit status, the outputs malloc'd. */
static int run_cli(const char *args, char **out, char **err)
{
    const char *bin = getenv("MEMSNAP_BIN");
    assert_non_null(bin);
    char cmd[1024], outp[128], errp[128];
    snprintf(outp, sizeof(outp), "%s/cli.out", tmpdir);
    snprintf(errp, sizeof(errp), "%s/cli.err", tmpdir);
    snprintf(cmd, sizeof(cmd), "'%s' %s > '%s' 2> '%s'", bin, args, outp, errp);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    const char *paths[2] = {outp, errp};
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        FILE *fp = fopen(paths[i], "rb");
        assert_non_null(fp);
        char *text = calloc(1, 65536);
        assert_non_null(text);
        size_t n = fread(text, 1, 65535, fp);
        text[n] = '\0';
        fclose(fp);
        *dst[i] = text;
    }
    return WEXITSTATUS(st);
}

static uint64_t json_u(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("key %s is missing or not an integer", key);
    return (uint64_t)json_integer_value(v);
}

static void report_stats_json_has_every_key(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w, MS_CHUNK_CODEC_ZSTD);
    const char *path = write_temp("cli.mstrace", w.file.p, w.file.len);
    char args[256], *out, *err;
    snprintf(args, sizeof(args), "report '%s' --stats --format json", path);
    assert_int_equal(run_cli(args, &out, &err), 0);
    assert_string_equal(err, "");
    json_error_t jerr;
    json_t *o = json_loads(out, 0, &jerr);
    if (!o)
        fail_msg("not JSON: %s\n%s", jerr.text, out);
    assert_int_equal(json_u(o, "allocations"), 2);
    assert_int_equal(json_u(o, "frees"), 2);
    assert_int_equal(json_u(o, "reallocations"), 2);
    assert_int_equal(json_u(o, "allocated_bytes"), 650);
    assert_int_equal(json_u(o, "peak_bytes"), 400);
    assert_int_equal(json_u(o, "peak_time_ns"), 25);
    assert_int_equal(json_u(o, "leaked_bytes"), 350);
    assert_int_equal(json_u(o, "leaked_allocations"), 2);
    assert_int_equal(json_u(o, "unmatched_frees"), 2);
    assert_int_equal(json_u(o, "threads"), 1);
    assert_int_equal(json_u(o, "duration_ns"), 95);
    assert_int_equal(json_u(o, "pid"), 4242);
    assert_int_equal(json_u(o, "ppid"), 1);
    assert_int_equal(json_u(o, "images"), 1);
    assert_int_equal(json_u(o, "events"), 6);
    assert_int_equal(json_u(o, "events_per_second"), 63157895); /* 6 / 95 ns */
    assert_int_equal(json_u(o, "stacks"), 1);
    assert_int_equal(json_u(o, "file_bytes"), w.file.len);
    assert_int_equal(json_u(o, "sample_rate"), 0);
    static const char *const zero[] = {"modules", "markers", "rss_samples", "rss_peak_bytes",
                                       "mmaps",   "munmaps", "mapped_bytes"};
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
        assert_int_equal(json_u(o, zero[i]), 0);
    assert_true(json_is_true(json_object_get(o, "complete")));
    assert_true(json_is_false(json_object_get(o, "truncated")));
    assert_true(json_is_false(json_object_get(o, "forked")));
    assert_true(json_is_null(json_object_get(o, "warning")));
    assert_true(json_is_number(json_object_get(o, "bytes_per_event")));
    json_decref(o);
    free(out);
    free(err);

    /* --stats as text */
    snprintf(args, sizeof(args), "report '%s' --stats", path);
    assert_int_equal(run_cli(args, &out, &err), 0);
    assert_contains(out, "allocations:      2\n");
    assert_contains(out, "peak:             400 B at 0.000000 s\n");
    assert_contains(out, "unmatched frees:  2\n");
    free(out);
    free(err);

    /* no mode option: the heap at its peak */
    snprintf(args, sizeof(args), "report '%s'", path);
    assert_int_equal(run_cli(args, &out, &err), 0);
    assert_contains(out, "peak at 0.000000 s: 400 B live in 2 allocations\n");
    free(out);
    free(err);
    tw_free(&w);
}

static void report_warns_on_a_cut_trace_and_fails_on_a_bad_file(void **state)
{
    (void)state;
    struct tw w;
    size_t offs[3];
    write_three(&w, offs);
    const char *path = write_temp("cli-cut.mstrace", w.file.p, w.file.len - 3);
    char args[256], *out, *err;
    snprintf(args, sizeof(args), "report '%s' --stats -F json", path);
    assert_int_equal(run_cli(args, &out, &err), 0);
    assert_contains(err, "memsnap report: warning: trace cut at byte ");
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_true(json_is_string(json_object_get(o, "warning")));
    assert_int_equal(json_u(o, "allocations"), 2);
    json_decref(o);
    free(out);
    free(err);

    snprintf(args, sizeof(args), "report '%s' --stats", path);
    assert_int_equal(run_cli(args, &out, &err), 0);
    assert_contains(out, "truncated:");
    assert_contains(err, "warning: trace cut");
    free(out);
    free(err);

    snprintf(args, sizeof(args), "report '%s/missing.mstrace'", tmpdir);
    assert_int_equal(run_cli(args, &out, &err), 1);
    assert_contains(err, "memsnap report: ");
    assert_contains(err, "No such file or directory");
    assert_string_equal(out, "");
    free(out);
    free(err);

    path = write_temp("cli-not.mstrace", "hello, world\n", 13);
    snprintf(args, sizeof(args), "report '%s'", path);
    assert_int_equal(run_cli(args, &out, &err), 1);
    assert_contains(err, "not a memsnap trace");
    free(out);
    free(err);

    assert_int_equal(run_cli("report", &out, &err), 2);
    assert_contains(err, "expected one trace file");
    free(out);
    free(err);
    snprintf(args, sizeof(args), "report '%s' --format csv", path);
    assert_int_equal(run_cli(args, &out, &err), 2);
    free(out);
    free(err);
    assert_int_equal(run_cli("report --help", &out, &err), 0);
    assert_contains(out, "--stats");
    assert_contains(out, "example: memsnap report");
    free(out);
    free(err);
    tw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_gives_the_standard_check_value),
        cmocka_unit_test(varints_round_trip_up_to_64_bits),
        cmocka_unit_test(varints_past_64_bits_are_rejected),
        cmocka_unit_test(ptrmap_matches_a_reference_under_random_operations),
        cmocka_unit_test(grow_doubles_from_16_and_fails_without_touching_the_array),
        cmocka_unit_test(stats_count_allocations_frees_and_reallocations_exactly),
        cmocka_unit_test(figures_past_64_bits_saturate_and_are_flagged),
        cmocka_unit_test(zstd_chunks_read_the_same_as_plain_ones),
        cmocka_unit_test(decoded_events_keep_every_field),
        cmocka_unit_test(release_ends_a_block_and_a_double_free_is_unmatched),
        cmocka_unit_test(the_peak_time_is_when_it_was_first_reached),
        cmocka_unit_test(mmap_calls_are_counted_apart_from_the_heap),
        cmocka_unit_test(global_records_fill_their_tables),
        cmocka_unit_test(threads_are_serials_named_by_their_thread_records),
        cmocka_unit_test(random_workloads_match_a_reference_model),
        cmocka_unit_test(a_million_events_load_whole_and_in_order),
        cmocka_unit_test(stack_ids_may_be_defined_after_their_use),
        cmocka_unit_test(exec_starts_a_new_heap_threads_infos_and_stacks),
        cmocka_unit_test(clock_slope_maps_tsc_ticks_to_nanoseconds),
        cmocka_unit_test(sampled_blocks_weigh_by_their_probability),
        cmocka_unit_test(a_cut_file_keeps_the_chunks_before_the_cut),
        cmocka_unit_test(a_flipped_bit_fails_the_crc_of_its_chunk),
        cmocka_unit_test(a_malformed_record_discards_its_chunk),
        cmocka_unit_test(bad_headers_are_errors_and_minor_versions_are_read),
        cmocka_unit_test(stats_honour_the_callers_struct_size),
        cmocka_unit_test(report_stats_json_has_every_key),
        cmocka_unit_test(report_warns_on_a_cut_trace_and_fails_on_a_bad_file),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, remove_tmpdir);
}
