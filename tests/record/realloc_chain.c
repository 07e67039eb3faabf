/*
 * realloc_chain.c - one block grown through N reallocs, some of which move it, for
 * `memsnap record` tests. Usage: realloc_chain N.
 *
 * p = malloc(16); step i = 1..N: p = realloc(p, 16 + 24 * i), and every 10th step a 32-byte
 * fence block is allocated right after, so that later growth cannot stay in place. One failed
 * realloc in the middle records nothing. Then the fences and p are freed. Exactly:
 *   allocations 1 + N / 10, reallocations N, frees 1 + N / 10, leaked 0,
 *   allocated_bytes 16 + sum(16 + 24 i) + 32 * (N / 10), peak 16 + 24 N + 32 * (N / 10).
 * Exits 4 when no realloc moved the block or none stayed in place (the test would not test
 * what it says).
 */
#include "progs.h"

#include <stdint.h>

#define MAX_FENCES 1000

int main(int argc, char **argv)
{
    long n = rp_arg(argc, argv, 1, 100);
    if (n < 0 || n / 10 > MAX_FENCES)
        return 2;
    volatile size_t huge = SIZE_MAX / 2;
    void *fences[MAX_FENCES];
    long nf = 0, moved = 0, stayed = 0;
    char *p = rp_keep(malloc(16));
    for (long i = 1; i <= n; i++) {
        char *q = rp_keep(realloc(p, (size_t)(16 + 24 * i)));
        if (!q)
            return 3;
        if (q == p)
            stayed++;
        else
            moved++;
        p = q;
        if (i % 10 == 0)
            fences[nf++] = rp_keep(malloc(32));
        if (i == n / 2 && rp_keep(realloc(p, huge))) /* fails: records nothing */
            return 3;
    }
    for (long i = 0; i < nf; i++)
        free(fences[i]);
    free(p);
    return n >= 20 && (!moved || !stayed) ? 4 : 0;
}
