/*
 * snap_pattern.c - a heap with exactly known moments, for the `memsnap report` heap views
 * (--peak, --at, --leaks, --diff, --threads). Usage: snap_pattern [threads].
 *
 * Markers, each followed by a 2 ms sleep (so that no later event shares the marker's time
 * granule): "start"; three malloc(1000) -> "three" (3000 bytes live in 3 blocks); 5000 bytes
 * from leak_here() (never freed), malloc(20000) (the peak: 28000 bytes in 5 blocks) and its
 * free -> "after-peak" (8000 bytes in 4); two of the 1000-byte blocks freed -> "end"; leaks:
 * 6000 bytes in 2 blocks, one of them allocated in leak_here. No stdio: single-threaded, those
 * figures are exact. With "threads", a worker thread first allocates 7000 bytes that main
 * frees after "after-peak" (the worker's live bytes drop; main's do not), and pthread_create
 * allocates on its own before "start".
 */
#include "memsnap.h"
#include "progs.h"

#include <pthread.h>

static void *volatile leaked;

__attribute__((noinline)) static void leak_here(void)
{
    leaked = malloc(5000);
    __asm__ volatile("" ::: "memory"); /* no tail call: leak_here stays on the stack */
}

static void *worker(void *arg)
{
    (void)arg;
    return rp_keep(malloc(7000));
}

static void mark(const char *label)
{
    MS_TRACE_MARKER(label);
    rp_sleep_ms(2);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 && strcmp(argv[1], "threads") == 0;
    void *from_worker = NULL;
    if (threads) {
        pthread_t th;
        if (pthread_create(&th, NULL, worker, NULL) != 0 || pthread_join(th, &from_worker) != 0)
            return 3;
    }
    mark("start");
    void *a[3];
    for (int i = 0; i < 3; i++)
        a[i] = rp_keep(malloc(1000));
    mark("three");
    leak_here();
    free(rp_keep(malloc(20000)));
    mark("after-peak");
    free(from_worker);
    free(a[0]);
    free(a[1]);
    mark("end");
    rp_keep(a[2]);
    return 0;
}
