/*
 * closefds.c - a daemon that closes every inherited descriptor, then writes its own file
 * (issue 13, item 2).
 *
 * closefds MODE FILE: allocates 100 blocks of 64 bytes, closes descriptors 3 and up (MODE
 * "loop": close(3..1023); "closefrom": closefrom(3); "close_range": close_range(3, ~0U, 0);
 * "dup2": dup2()s a descriptor of its own over 3..1023 and closes them), opens FILE at once
 * (it gets descriptor 3), waits 120 ms (the tracker flushes meanwhile: a tracker that still
 * writes to its old numbers writes into FILE), then writes 50 lines to it 2 ms apart, one
 * malloc(32)/free pair per line, and frees the 100 blocks: 150 allocations and 150 frees. No
 * stdio.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    void *volatile keep[100];
    for (int i = 0; i < 100; i++)
        keep[i] = malloc(64);
    if (strcmp(argv[1], "loop") == 0) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    } else if (strcmp(argv[1], "closefrom") == 0) {
        closefrom(3);
    } else if (strcmp(argv[1], "close_range") == 0) {
        if (close_range(3, ~0U, 0) != 0)
            return 3;
    } else if (strcmp(argv[1], "dup2") == 0) {
        int mine = open("/dev/null", O_WRONLY);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != mine)
                dup2(mine, fd);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    } else {
        return 2;
    }
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0)
        return 4;
    usleep(120000); /* the tracker flushes meanwhile */
    for (int i = 0; i < 50; i++) {
        char *volatile line = malloc(32);
        int n = snprintf(line, 32, "line %d of the daemon\n", i);
        (void)!write(out, line, (size_t)n);
        free(line);
        usleep(2000);
    }
    close(out);
    for (int i = 0; i < 100; i++)
        free(keep[i]);
    return 0;
}
