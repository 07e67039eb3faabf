/*
 * progs.h - what the `memsnap record` test programs share: a sink that keeps the compiler
 * from eliding allocations, argument parsing, output without stdio (stdio allocates its
 * buffers with malloc, which would blur exact counts) and the ways a program can end.
 */
#ifndef RECORD_PROGS_H
#define RECORD_PROGS_H

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Every block is stored here, so that no malloc/free pair can be optimized away. */
static void *volatile rp_sink;

static inline void *rp_keep(void *p)
{
    rp_sink = p;
    return p;
}

/* argv[i] as a number, or def when absent. */
static inline long rp_arg(int argc, char **argv, int i, long def)
{
    return i < argc ? strtol(argv[i], NULL, 0) : def;
}

/* Writes v and a newline on fd 1 with write(2). */
static inline void rp_put_u64(uint64_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    *--p = '\n';
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    ssize_t n = write(1, p, (size_t)(buf + sizeof(buf) - p));
    (void)n;
}

static inline void rp_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Ends the program as how says: "exit" (return from main: exit(0)), "_exit", "abort", or
 * "kill": sleeps 1.5 s (30 of the tracker's flush intervals, for a loaded machine), then SIGKILL
 * to itself. */
static inline int rp_finish(const char *how)
{
    if (!how || strcmp(how, "exit") == 0)
        return 0;
    if (strcmp(how, "_exit") == 0)
        _exit(0);
    if (strcmp(how, "abort") == 0)
        abort();
    if (strcmp(how, "kill") == 0) {
        rp_sleep_ms(1500);
        kill(getpid(), SIGKILL);
    }
    return 99; /* an unknown way */
}

#endif /* RECORD_PROGS_H */
