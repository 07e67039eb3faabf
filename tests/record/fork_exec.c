/*
 * fork_exec.c - exec of another program, directly or from a forked child, for
 * `memsnap record` tests. Usage: fork_exec fork|direct PROGRAM [ARGS...].
 *
 * direct: 2 x malloc(500) (leaked), then execv(PROGRAM, ARGS): the trace holds two images.
 * fork: malloc(4321), fork; the child does 2 x malloc(500) then execv(PROGRAM, ARGS), so its
 * trace FILE.<pid> holds two images; the parent waits, frees its block, prints the child's
 * pid (write(2)) and exits with the child's status.
 * spawn, spawnp: malloc(4321), posix_spawn (posix_spawnp) of PROGRAM ARGS with environ; then
 * like fork: the parent waits, frees its block, prints the child's pid and exits with its
 * status.
 */
#include "progs.h"

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

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
    pid_t pid;
    if (strncmp(argv[1], "spawn", 5) == 0) {
        int (*spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                     const posix_spawnattr_t *, char *const[], char *const[]) =
            strcmp(argv[1], "spawnp") == 0 ? posix_spawnp : posix_spawn;
        if (spawn(&pid, argv[2], NULL, NULL, argv + 2, environ) != 0)
            return 3;
    } else if ((pid = fork()) < 0) {
        return 3;
    } else if (pid == 0) {
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
