/*
 * qexit.c - quick_exit() with an at_quick_exit() handler (issue 13, item 3).
 *
 * main allocates 33 bytes and calls quick_exit(3); the handler allocates 77 bytes and says
 * "handler". Both blocks leak: 2 allocations, 110 bytes. No stdio.
 */
#include <stdlib.h>
#include <unistd.h>

static void *volatile sink;

static void handler(void)
{
    sink = malloc(77);
    (void)!write(1, "handler\n", 8);
}

int main(void)
{
    at_quick_exit(handler);
    sink = malloc(33);
    quick_exit(3);
}
