/*
 * pexit.c - main ends with pthread_exit() (issue 13, item 1).
 *
 * pexit THREADS MODE [return]: main allocates 10 blocks of 100 bytes and frees 5, starts
 * THREADS threads and ends with pthread_exit() (with "return": returns 0, after joining them).
 * MODE "alloc": each thread, 100 ms later, allocates one block of 200 bytes and frees it;
 * "quiet": it allocates nothing; "pause": it waits in pause() for a signal. The process exits
 * 0 when the last thread ends (or dies of the signal). No stdio: every allocation is the
 * pattern's, or the C runtime's (pthread_create, and pthread_exit's unwinder).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *mode;

static void say(const char *s)
{
    (void)!write(1, s, strlen(s));
}

static void *worker(void *arg)
{
    if (strcmp(mode, "pause") == 0) {
        pause();
        return arg;
    }
    usleep(100000);
    if (strcmp(mode, "alloc") == 0) {
        void *volatile p = malloc(200);
        free(p);
    }
    say("thread done\n");
    return arg;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    mode = argc > 2 ? argv[2] : "alloc";
    void *volatile keep[10];
    for (int i = 0; i < 10; i++)
        keep[i] = malloc(100);
    for (int i = 0; i < 5; i++)
        free(keep[i]);
    pthread_t t[16];
    for (int i = 0; i < threads && i < 16; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0)
            return 1;
    say("main done\n");
    if (argc > 3 && strcmp(argv[3], "return") == 0) {
        for (int i = 0; i < threads && i < 16; i++)
            pthread_join(t[i], NULL);
        return 0;
    }
    pthread_exit(NULL);
}
