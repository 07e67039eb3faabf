/*
 * grow.c - growing arrays (grow.h): ms__grow(), and ms__populate(), which faults a range in
 * with one system call.
 */
#include "grow.h"

#include "memsnap.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

void ms__populate(void *p, size_t len)
{
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)4095;
    if (e > a)
        madvise((void *)a, e - a, MADV_POPULATE_WRITE); /* advice: failing costs nothing */
}

int ms__grow(void *pp, size_t *cap, size_t need, size_t elem, unsigned flags)
{
    if (need <= *cap)
        return 0;
    size_t old = *cap, nc = old ? old : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 4 / elem)
            return MS_ENOMEM;
        nc *= 2;
    }
    void **p = pp;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return MS_ENOMEM;
    /* glibc moves a big block with mremap, not by copying, so doubling stays cheap */
    if ((flags & MS__GROW_POPULATE) && nc * elem >= ((size_t)1 << 20))
        ms__populate((char *)np + old * elem, (nc - old) * elem);
    *p = np;
    *cap = nc;
    return 0;
}
