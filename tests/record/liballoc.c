/*
 * liballoc.c - a shared module that dlopen_prog loads at run time and calls, so that
 * allocations come from a module the tracker learns about late.
 *
 * liballoc_run(k): k x malloc(777) leaked, and k malloc(1234)/free pairs: 2k allocations,
 * k frees, 2011 k bytes allocated, 777 k bytes leaked.
 */
#include <stdlib.h>

void *volatile liballoc_sink;

void liballoc_run(long k);

void liballoc_run(long k)
{
    for (long i = 0; i < k; i++) {
        liballoc_sink = malloc(777);
        void *p = malloc(1234);
        liballoc_sink = p;
        free(p);
    }
}
