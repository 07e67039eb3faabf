/*
 * bigtrace.c - a trace that compresses badly, for the full-disk case (issue 13, item 6).
 *
 * bigtrace N: N allocations of pseudo-random sizes (1..65536 bytes) from pseudo-random stack
 * depths, each freed at once; prints "done N". No stdio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned long long state = 88172645463325252ull;

static unsigned long long next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static __attribute__((noinline)) void alloc_at(int depth)
{
    if (depth > 0) {
        alloc_at(depth - 1);
        __asm__ volatile("" ::: "memory"); /* not a tail call: a frame per level */
        return;
    }
    void *volatile p = malloc((size_t)(next() % 65536) + 1);
    free(p);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    for (long i = 0; i < n; i++)
        alloc_at((int)(next() % 24));
    char line[32];
    int len = snprintf(line, sizeof(line), "done %ld\n", n);
    (void)!write(1, line, (size_t)len);
    return 0;
}
