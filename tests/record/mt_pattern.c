/*
 * mt_pattern.c - T threads each doing a known allocation pattern, with blocks that cross
 * threads, for `memsnap record` tests. Usage: mt_pattern T K (T <= 16, K <= 2000).
 *
 * Before starting thread t (0-based), main allocates K blocks of 256 bytes, which thread t
 * frees. Each of K rounds of thread t: 8 x malloc(64 * (t + 1)) then their 8 frees, one
 * malloc(128) that main frees after the join, one malloc(100) leaked. Compared with a run
 * with K = 0 (pthread_create and the runtime allocate on their own), K adds exactly:
 *   allocations  11 * K * T                 frees   10 * K * T
 *   bytes        K * (484 * T + 512 * T * (T + 1) / 2)
 *   leaked       100 * K * T bytes in K * T blocks
 * and every thread, main included, calls the allocator: threads = T + 1.
 */
#include "progs.h"

#include <pthread.h>

#define MAX_T 16
#define MAX_K 2000

static long k;
static void *from_main[MAX_T][MAX_K]; /* freed by the thread */
static void *to_main[MAX_T][MAX_K];   /* freed by main */

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    for (long r = 0; r < k; r++) {
        void *p[8];
        for (int i = 0; i < 8; i++)
            p[i] = rp_keep(malloc((size_t)(64 * (t + 1))));
        for (int i = 0; i < 8; i++)
            free(p[i]);
        free(from_main[t][r]);
        to_main[t][r] = rp_keep(malloc(128));
        rp_keep(malloc(100));
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long n = rp_arg(argc, argv, 1, 4);
    k = rp_arg(argc, argv, 2, 10);
    if (n < 1 || n > MAX_T || k < 0 || k > MAX_K)
        return 2;
    pthread_t tid[MAX_T];
    for (long t = 0; t < n; t++) {
        for (long r = 0; r < k; r++)
            from_main[t][r] = rp_keep(malloc(256));
        if (pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t) != 0)
            return 3;
    }
    for (long t = 0; t < n; t++) {
        pthread_join(tid[t], NULL);
        for (long r = 0; r < k; r++)
            free(to_main[t][r]);
    }
    return 0;
}
