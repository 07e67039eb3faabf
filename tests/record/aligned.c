/*
 * aligned.c - every allocation function besides malloc and realloc, with known figures, for
 * `memsnap record` tests. Usage: aligned K.
 *
 * Each of K rounds: posix_memalign(64, 1000), aligned_alloc(128, 1024), memalign(256, 3000),
 * valloc(5000), pvalloc(6000), reallocarray(NULL, 10, 30), reallocarray(that, 20, 30),
 * calloc(7, 11) (leaked), then frees all but the calloc block; failed calls of each kind
 * record nothing. The tracker records the size asked for, not the size rounded up. Per round:
 * 7 allocations, 1 reallocation, 6 frees, 17001 bytes allocated, 77 bytes leaked in 1 block.
 * Peak: 77 * K + 16624 (K >= 1). No stdio: the K = 0 run records nothing.
 */
#include "progs.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>

int main(int argc, char **argv)
{
    long k = rp_arg(argc, argv, 1, 1);
    volatile size_t huge = SIZE_MAX / 4, bad_align = 3;
    for (long r = 0; r < k; r++) {
        void *a = NULL, *x = NULL;
        if (posix_memalign(&a, 64, 1000) != 0 || ((uintptr_t)a & 63))
            return 3;
        rp_keep(a);
        if (posix_memalign(&x, bad_align, 16) != EINVAL) /* fails: records nothing */
            return 3;
        void *b = rp_keep(aligned_alloc(128, 1024));
        void *c = rp_keep(memalign(256, 3000));
        void *d = rp_keep(valloc(5000));
        void *e = rp_keep(pvalloc(6000));
        void *f = rp_keep(reallocarray(NULL, 10, 30));
        f = rp_keep(reallocarray(f, 20, 30));
        void *g = rp_keep(calloc(7, 11));
        /* Each fails and records nothing. */
        if (rp_keep(aligned_alloc(64, huge)) || rp_keep(memalign(64, huge)) ||
            rp_keep(reallocarray(f, huge, 3)) || rp_keep(calloc(huge, 8)) ||
            rp_keep(valloc(huge)) || rp_keep(pvalloc(huge)))
            return 3;
        if (!a || !b || !c || !d || !e || !f || !g)
            return 3;
        free(a);
        free(b);
        free(c);
        free(d);
        free(e);
        free(f);
    }
    return 0;
}
