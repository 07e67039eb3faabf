/*
 * mon_prog.c - the programs the monitor tests watch, with memory of exactly known sizes:
 *
 *   mon_prog alloc MIB SECONDS EXIT   touch MIB MiB, print "ready", sleep, exit with EXIT
 *   mon_prog tree MIB0 MIB1 MIB2 SECONDS
 *                                     a parent touching MIB0 MiB with two children touching
 *                                     MIB1 and MIB2; "ready" once all three hold their memory
 *   mon_prog hog MIB                  print its /proc/self/cgroup memory line, then touch MIB
 *                                     MiB one at a time (for the OOM killer), then exit 0
 *
 * Built without sanitizers, so that RSS is the program's own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024u * 1024u)

/* Allocates and writes every page of mib MiB; returns the block (never freed). */
static char *touch(unsigned long mib)
{
    char *p = malloc(mib * MIB + 1);
    if (!p) {
        perror("malloc");
        exit(100);
    }
    for (unsigned long i = 0; i < mib * MIB; i += 4096)
        p[i] = (char)(i | 1);
    return p;
}

static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "alloc") == 0) {
        volatile char *keep = touch(strtoul(argv[2], NULL, 10));
        printf("ready\n");
        fflush(stdout);
        nap(atof(argv[3]));
        (void)keep;
        return atoi(argv[4]);
    }
    if (argc == 6 && strcmp(argv[1], "tree") == 0) {
        int fds[2];
        if (pipe(fds) != 0)
            return 101;
        pid_t kids[2];
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                volatile char *keep = touch(strtoul(argv[3 + k], NULL, 10));
                (void)keep;
                if (write(fds[1], "x", 1) != 1)
                    _exit(102);
                nap(atof(argv[5]));
                _exit(0);
            }
        }
        volatile char *keep = touch(strtoul(argv[2], NULL, 10));
        (void)keep;
        char c;
        for (int k = 0; k < 2; k++)
            if (read(fds[0], &c, 1) != 1)
                return 103;
        printf("ready\n");
        fflush(stdout);
        for (int k = 0; k < 2; k++)
            waitpid(kids[k], NULL, 0);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "hog") == 0) {
        FILE *fp = fopen("/proc/self/cgroup", "r");
        char line[512];
        while (fp && fgets(line, sizeof(line), fp))
            if (strstr(line, "memory") || strncmp(line, "0::", 3) == 0)
                fputs(line, stdout);
        if (fp)
            fclose(fp);
        fflush(stdout);
        unsigned long mib = strtoul(argv[2], NULL, 10);
        for (unsigned long i = 0; i < mib; i++)
            touch(1);
        return 0;
    }
    fprintf(stderr, "usage: mon_prog alloc MIB SECONDS EXIT | tree MIB0 MIB1 MIB2 SECONDS | "
                    "hog MIB\n");
    return 2;
}
