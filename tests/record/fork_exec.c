/*
 * fork_exec.c - exec of another program, directly or from a forked child, for
 * `memsnap record` tests. Usage: fork_exec fork|direct PROGRAM [ARGS...].
 *
 * direct: 2 x malloc(500) (leaked), then execv(PROGRAM, ARGS): the trace holds two images.
 * fork: malloc(4321), fork; the child does 2 x malloc(500) then execv(PROGRAM, ARGS), so its
 * trace FILE.<pid> holds two images; the parent waits, frees its block, prints the child's
 * pid (write(2)) and exits with the child's status.
 */
#include "progs.h"

#include <sys/wait.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    if (strcmp(argv[1], "direct") == 0) {
        rp_keep(malloc(500));
        rp_keep(malloc(500));
        execv(argv[2], argv + 2);
        return 127;
    }
    void *mine = rp_keep(malloc(4321));
    pid_t pid = fork();
    if (pid < 0)
        return 3;
    if (pid == 0) {
        rp_keep(malloc(500));
        rp_keep(malloc(500));
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 3;
    free(mine);
    rp_put_u64((uint64_t)pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
