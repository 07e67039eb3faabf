/*
 * fuzz_analyze.c - a fuzz target for `memsnap analyze`'s reader (src/timeline/read.c, in the
 * library): any bytes are read as monitor output twice, once with the validating fast path for
 * sample lines and once with every line through jansson, and the two readings must agree: both
 * fail, or both succeed with the same samples (times, seqs, every metric and its validity bit), the
 * same limits and thresholds, and the same start, end, alert, OOM and marker records. This is
 * what lets analyze keep a hand-written scanner next to jansson (ARCHITECTURE.md asks for a
 * JSON library): jansson's reading is the reference. A third reading cuts the input into
 * 64-byte chunks read in parallel ($MEMSNAP_ANALYZE_CHUNK), as files of 4 MiB and more are,
 * and must agree with the sequential one: CSV inputs have no fast path, so this is what
 * compares their reading with another. The statistics (ms__tl_stats) then run over what was
 * read, so that crafted figures and times (2^64-1 bytes, equal or stepped clocks) meet UBSan.
 *
 * Built as a libFuzzer binary with clang (-Dfuzz=enabled: build-fuzz/tests/fuzz/fuzz_analyze
 * tests/fuzz/corpus-analyze), and always as fuzz_analyze_replay over the checked-in seeds.
 */
#include "timeline/timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_json(json_t *a, json_t *b)
{
    return (!a && !b) || (a && b && json_equal(a, b));
}

static void check_same(const struct ms__tl_input *a, const struct ms__tl_input *b)
{
    const struct ms__tl_series *x = &a->s, *y = &b->s;
    if (x->n != y->n || x->mono != y->mono || a->csv != b->csv ||
        a->limit_valid != b->limit_valid || a->warning_pct != b->warning_pct ||
        a->critical_pct != b->critical_pct || a->cut_line != b->cut_line ||
        a->unknown != b->unknown)
        abort();
    for (size_t i = 0; i < x->n; i++) {
        if (x->time_ns[i] != y->time_ns[i] || x->mono_ns[i] != y->mono_ns[i] ||
            x->seq[i] != y->seq[i] || x->valid[i] != y->valid[i])
            abort();
        for (int m = 0; m < MS__TL_METRICS; m++)
            if ((x->valid[i] >> m & 1u) && x->val[m][i] != y->val[m][i])
                abort();
    }
    for (int l = 0; l < MS__TL_LIMITS; l++)
        if ((a->limit_valid >> l & 1u) && a->limit[l] != b->limit[l])
            abort();
    if (!same_json(a->start, b->start) || !same_json(a->end, b->end) ||
        !same_json(a->alerts, b->alerts) || !same_json(a->ooms, b->ooms) ||
        !same_json(a->markers, b->markers))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms__tl_input fast = {.path = "fuzz-input"}, slow = {.path = "fuzz-input"};
    ms__tl_fast_path = true;
    int rf = ms__tl_read((const char *)data, size, &fast);
    ms__tl_fast_path = false;
    int rs = ms__tl_read((const char *)data, size, &slow);
    ms__tl_fast_path = true;
    if (rf != rs)
        abort();
    if (rf == 0)
        check_same(&fast, &slow);
    struct ms__tl_input chunked = {.path = "fuzz-input"};
    setenv("MEMSNAP_ANALYZE_CHUNK", "64", 1);
    int rc = ms__tl_read((const char *)data, size, &chunked);
    unsetenv("MEMSNAP_ANALYZE_CHUNK");
    if (rc != rf)
        abort();
    if (rc == 0)
        check_same(&fast, &chunked);
    if (rf == 0) { /* the statistics over what was read: no UB on any figures or times */
        bool has_limit[MS__TL_METRICS];
        uint64_t limit[MS__TL_METRICS];
        struct ms__tl_metric_stats st[MS__TL_METRICS];
        for (int m = 0; m < MS__TL_METRICS; m++) {
            has_limit[m] = true;
            limit[m] = m % 2 ? UINT64_MAX : 1;
        }
        if (ms__tl_stats(&fast.s, has_limit, limit, st) == 0)
            for (int m = 0; m < MS__TL_METRICS; m++)
                ms__tl_stats_free(&st[m]);
        for (size_t i = 0; i < fast.s.n; i++)
            (void)ms__tl_elapsed_ns(&fast.s, i);
    }
    ms__tl_input_free(&fast);
    ms__tl_input_free(&slow);
    ms__tl_input_free(&chunked);
    return 0;
}
