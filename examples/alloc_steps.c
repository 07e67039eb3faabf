/*
 * alloc_steps.c - the bundled example: a program that uses libmemsnap on itself.
 *
 * It captures a full snapshot, allocates and touches N MiB (default 64) in 16 MiB steps,
 * captures again and prints the one-line delta and the before/after table. With --wait it
 * first prints its PID and then waits for a line on standard input before allocating and
 * again before exiting, so that `memsnap snapshot --pid` can watch it from outside (see
 * examples/demo.sh).
 */
#include "memsnap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define STEP_MIB 16

/* Blocks until a line (or EOF) arrives on standard input. */
static void wait_line(void)
{
    char line[64];
    if (!fgets(line, sizeof(line), stdin))
        return;
}

int main(int argc, char **argv)
{
    long mib = 64;
    bool wait = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            wait = true;
        } else {
            char *end;
            mib = strtol(argv[i], &end, 10);
            if (*end || mib <= 0 || mib > 65536) {
                fprintf(stderr, "usage: alloc_steps [--wait] [MiB (1..65536)]\n");
                return 2;
            }
        }
    }
    ms_session *s;
    int rc = ms_session_open(&s, NULL);
    if (rc) {
        fprintf(stderr, "alloc_steps: %s\n", ms_strerror(rc));
        return 1;
    }
    ms_snapshot before, after;
    ms_snapshot_init(&before);
    ms_snapshot_init(&after);
    ms_snapshot_set_label(&after, "allocate");
    if (wait) {
        printf("pid %d\n", (int)getpid());
        fflush(stdout);
        wait_line();
    }
    if ((rc = ms_capture(s, 0, MS_CAPTURE_FULL, &before)) != 0) {
        fprintf(stderr, "alloc_steps: %s\n", ms_session_error(s));
        return 1;
    }
    size_t total = (size_t)mib << 20;
    char *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("alloc_steps: mmap");
        return 1;
    }
    for (size_t off = 0; off < total; off += (size_t)STEP_MIB << 20) {
        size_t len = total - off < ((size_t)STEP_MIB << 20) ? total - off : (size_t)STEP_MIB << 20;
        memset(mem + off, 0xa5, len);
    }
    if ((rc = ms_capture(s, 0, MS_CAPTURE_FULL, &after)) != 0) {
        fprintf(stderr, "alloc_steps: %s\n", ms_session_error(s));
        return 1;
    }
    printf("allocated %ld MiB\n", mib);
    ms_report_line(stdout, &before, &after);
    fflush(stdout);
    if (wait) {
        wait_line();
    } else {
        putchar('\n');
        ms_report_table(stdout, &before, &after);
    }
    munmap(mem, total);
    ms_session_close(s);
    return 0;
}
