/*
 * bench_engine.c - `memsnap bench engine TRACE`: what the snapshot engine costs after one load
 * of a trace. It times the open (read, decompress, decode, and the replay pass that runs on
 * each chunk as it is decoded: ops, time index, totals, checkpoints), reports its rate in
 * events per second, then asks for the heap at 200 random moments and at the peak, and prints
 * the median and worst snapshot. bench/engine_bench.py compares
 * the whole report with heaptrack_print. It measures through the public heap API
 * (ms_heap_open_fd, ms_heap_at, ms_heap_peak), what every front end pays.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SNAPSHOTS 200

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cli_bench_engine(const char *path, bool json)
{
    int fd = cli_open_input("bench", path, NULL);
    if (fd < 0)
        return CLI_FAIL;
    ms_heap *h;
    double t0 = now_ns();
    int rc = ms_heap_open_fd(&h, fd, path, NULL);
    double load = now_ns() - t0;
    close(fd);
    if (rc != 0) {
        cli_error("bench", "%s", ms_last_error());
        return CLI_FAIL;
    }
    ms_heap_totals tot = {.size = sizeof(tot)};
    ms_heap_totals_get(h, &tot);
    uint64_t end = tot.duration_ns;

    double snap[SNAPSHOTS];
    unsigned seed = 7;
    ms_heap_view *v;
    for (int i = 0; i < SNAPSHOTS; i++) {
        uint64_t at = end ? (uint64_t)rand_r(&seed) * end / RAND_MAX : 0;
        double s0 = now_ns();
        rc = ms_heap_at(h, at, &v);
        snap[i] = now_ns() - s0;
        if (rc == 0)
            ms_heap_view_free(v);
    }
    double p0 = now_ns();
    if (ms_heap_peak(h, &v) == 0)
        ms_heap_view_free(v);
    double peak = now_ns() - p0;
    qsort(snap, SNAPSHOTS, sizeof(snap[0]), cmp_double);
    double rate = load > 0 ? (double)tot.events / (load * 1e-9) : 0;
    if (json)
        printf("{\"events\":%llu,\"load_ns\":%.0f,\"replay_events_per_s\":%.0f,"
               "\"snapshots\":%d,\"snapshot_ns_median\":%.0f,\"snapshot_ns_max\":%.0f,"
               "\"peak_ns\":%.0f,\"checkpoint_every\":%zu}\n",
               (unsigned long long)tot.events, load, rate, SNAPSHOTS, snap[SNAPSHOTS / 2],
               snap[SNAPSHOTS - 1], peak, (size_t)tot.checkpoint_every);
    else
        printf("engine benchmark: %s, %llu events\n"
               "  load (read, decode, replay pass) %10.3f ms   %.1fM events/s\n"
               "  snapshot at a random time        %10.3f ms   median of %d (worst %.3f ms)\n"
               "  peak view                        %10.3f ms\n",
               path, (unsigned long long)tot.events, load / 1e6, rate / 1e6,
               snap[SNAPSHOTS / 2] / 1e6, SNAPSHOTS, snap[SNAPSHOTS - 1] / 1e6, peak / 1e6);
    ms_heap_close(h);
    return CLI_OK;
}
