/*
 * stress.c - many threads hammering malloc and free at once, for `memsnap record` tests.
 * Usage: stress T N (T <= 64).
 *
 * Each thread makes N malloc/free pairs of sizes 1..4000, keeping up to 8 blocks live, so
 * frees interleave with mallocs. Prints the sum of the sizes of all threads (write(2)).
 * Compared with a run with N = 0: T * N allocations and frees more, that sum of bytes more,
 * nothing more leaked.
 */
#include "progs.h"

#include <pthread.h>

#define MAX_T 64

static long n;

/* The size of thread t's i-th block. */
static size_t block_size(long t, long i)
{
    return 1 + ((uint32_t)i * 2654435761u + (uint32_t)t * 40503u) % 4000;
}

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    void *ring[8] = {0};
    for (long i = 0; i < n; i++) {
        free(ring[i % 8]);
        size_t s = block_size(t, i);
        char *p = malloc(s);
        if (!p)
            abort();
        p[0] = p[s - 1] = (char)i;
        ring[i % 8] = p;
    }
    for (int i = 0; i < 8; i++)
        free(ring[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = rp_arg(argc, argv, 1, 16);
    n = rp_arg(argc, argv, 2, 1000);
    if (threads < 1 || threads > MAX_T || n < 0)
        return 2;
    pthread_t tid[MAX_T];
    for (long t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t) != 0)
            return 3;
    uint64_t sum = 0;
    for (long t = 0; t < threads; t++)
        for (long i = 0; i < n; i++)
            sum += block_size(t, i);
    for (long t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    rp_put_u64(sum);
    return 0;
}
