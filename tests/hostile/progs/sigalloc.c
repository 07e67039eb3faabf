/*
 * sigalloc.c - a signal handler that allocates, while the program allocates (issue 13,
 * item 4).
 *
 * sigalloc N: a SIGALRM every 50 us whose handler allocates 200 bytes and frees them, while
 * main does N malloc(64)/free pairs; then it prints "main N handler H". The sizes fall in
 * different tcache bins, so the handler's malloc never touches what main's was doing. One
 * more pair (200 bytes) primes the handler's bin: 1 + N + H allocations and as many frees.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    void *volatile p = malloc(200);
    free(p);
    handled++;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    void *volatile prime = malloc(200);
    free(prime);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (long i = 0; i < n; i++) {
        void *volatile p = malloc(64);
        free(p);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    char line[64];
    int len = snprintf(line, sizeof(line), "main %ld handler %d\n", n, (int)handled);
    (void)!write(1, line, (size_t)len);
    return 0;
}
