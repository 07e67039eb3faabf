/*
 * alloc_stress.c - the allocation-heavy workload of `make bench`: T threads, each making N
 * malloc/free pairs of pseudo-random sizes (16..1039 bytes) from a few call depths, with a
 * window of 64 live blocks per thread so that frees interleave with allocations.
 * Usage: alloc_stress [T [N]] (default 4 threads, 1,000,000 pairs each).
 * Built with frame pointers, so that `memsnap record --unwind fp` and `--unwind dwarf` can be
 * timed on the same binary.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static long pairs = 1000000;

struct state {
    void *live[64];
    uint32_t seed;
};

static uint32_t next(struct state *s)
{
    s->seed = s->seed * 1103515245u + 12345u;
    return s->seed >> 8;
}

/* Allocates at call depth `depth` (1..4), so that the stacks differ and have some length. */
__attribute__((noinline)) static void step(struct state *s, unsigned depth)
{
    if (depth > 1) {
        step(s, depth - 1);
        __asm__ volatile("" ::: "memory"); /* not a tail call */
        return;
    }
    uint32_t r = next(s);
    unsigned k = r & 63;
    free(s->live[k]);
    char *p = malloc(16 + (r >> 6) % 1024);
    if (!p)
        abort();
    p[0] = (char)r;
    s->live[k] = p;
}

static void *worker(void *arg)
{
    struct state s = {.seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1};
    for (long i = 0; i < pairs; i++)
        step(&s, 1 + (next(&s) & 3));
    for (int k = 0; k < 64; k++)
        free(s.live[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2)
        pairs = atol(argv[2]);
    if (threads < 1 || threads > 256 || pairs < 0)
        return 2;
    pthread_t t[256];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
            return 1;
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
