/*
 * st_pattern.c - single-threaded allocation pattern with exactly known figures, for
 * `memsnap record` tests. Usage: st_pattern K [exit|_exit|abort|kill].
 *
 * Each of K rounds: 10 x malloc(1000) and frees 4 of them (6 leak), free(NULL), a failed
 * malloc, calloc(10, 100), realloc(NULL, 500), realloc of that to 2000, a failed realloc,
 * realloc(p, 0), free of the calloc block. Per round: 12 allocations, 6 frees,
 * 1 reallocation, 13500 bytes allocated, 6 blocks (6000 bytes) leaked. Live bytes peak at
 * 6000 * i + 10000 in round i, so the peak is 6000 * K + 4000 (K >= 1). No stdio: nothing else
 * allocates, so every figure is exact and the K = 0 run records nothing.
 */
#include "progs.h"

#include <stdint.h>

int main(int argc, char **argv)
{
    long k = rp_arg(argc, argv, 1, 1);
    volatile size_t huge = SIZE_MAX / 2; /* volatile: no compile-time folding of the failure */
    for (long r = 0; r < k; r++) {
        void *a[10];
        for (int i = 0; i < 10; i++)
            a[i] = rp_keep(malloc(1000));
        for (int i = 0; i < 4; i++)
            free(a[i]);
        free(NULL);                /* records nothing */
        if (rp_keep(malloc(huge))) /* fails: records nothing */
            return 3;
        void *c = rp_keep(calloc(10, 100));
        void *p = rp_keep(realloc(NULL, 500));
        p = rp_keep(realloc(p, 2000));
        if (rp_keep(realloc(p, huge))) /* fails, p stays: records nothing */
            return 3;
        if (realloc(p, 0) != NULL) /* glibc frees the block and returns NULL */
            return 3;
        free(c);
    }
    return rp_finish(argc > 2 ? argv[2] : NULL);
}
