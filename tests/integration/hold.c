/*
 * hold.c - a process whose memory the CLI tests watch grow.
 *
 * usage: hold MIB
 * Writes "ready" on standard output and waits; on SIGUSR1 maps MIB MiB of anonymous memory,
 * writes a byte to every page, writes "grown" and waits until it is killed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void say(const char *word)
{
    size_t len = strlen(word);
    if (write(STDOUT_FILENO, word, len) != (ssize_t)len)
        exit(1);
}

int main(int argc, char **argv)
{
    char *end;
    unsigned long mib = argc == 2 ? strtoul(argv[1], &end, 10) : 0;
    if (argc != 2 || *end || mib == 0 || mib > 4096) {
        fprintf(stderr, "usage: hold MIB (1 to 4096)\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return 1;
    say("ready\n");
    int sig;
    if (sigwait(&set, &sig) != 0)
        return 1;
    size_t len = (size_t)mib << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    long page = sysconf(_SC_PAGESIZE);
    for (size_t off = 0; off < len; off += (size_t)page)
        ((volatile char *)p)[off] = 1;
    say("grown\n");
    for (;;)
        pause();
}
