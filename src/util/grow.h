/*
 * grow.h - growing arrays, the one helper of libmemsnap for it (internal).
 *
 * ms__grow() doubles an array's capacity (from 16) until it holds what the caller needs;
 * every loader, the engine and the symbolizer grow their tables through it, so the overflow
 * check and the faulting-in of big arrays live in one place.
 */
#ifndef MEMSNAP_UTIL_GROW_H
#define MEMSNAP_UTIL_GROW_H

#include <stddef.h>

/* ms__grow flags */
enum {
    /* fault in the new part of a large array (1 MiB or more) at once: for arrays that are
     * about to be written through, where one madvise call costs a tenth of the page faults */
    MS__GROW_POPULATE = 1u << 0,
};

/* Makes the array *pp (a pointer to the array pointer; *cap elements of elem bytes) hold at
 * least need elements, doubling its capacity from 16. Returns 0 (nothing done when need <=
 * *cap), or MS_ENOMEM (on an allocation failure or a size overflow) with *pp and *cap
 * untouched. flags: 0 or MS__GROW_POPULATE. */
int ms__grow(void *pp, size_t *cap, size_t need, size_t elem, unsigned flags);

/* ms__grow for a caller that wants the new pointer back: the array p grown to hold need
 * elements (need > *cap), or NULL (p and *cap untouched) when out of memory. */
static inline void *ms__grow_to(void *p, size_t *cap, size_t need, size_t elem)
{
    return ms__grow(&p, cap, need, elem, 0) == 0 ? p : NULL;
}

/* Faults in the pages of [p, p + len) in one system call (MADV_POPULATE_WRITE) before they
 * are written; a no-op where the kernel lacks it. */
void ms__populate(void *p, size_t len);

#endif
