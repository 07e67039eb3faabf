/*
 * truncate_on_mmap.c - a test shim (LD_PRELOAD) for a file truncated while it is read: after
 * the program maps the file named by MEMSNAP_TEST_TRUNCATE, the shim truncates that file to
 * two pages, so that the mapping's later pages raise SIGBUS when they are touched. Other
 * mappings pass through untouched.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "mmap");
    void *p = real(addr, len, prot, flags, fd, off);
    const char *path = getenv("MEMSNAP_TEST_TRUNCATE");
    struct stat mapped, named;
    if (p != MAP_FAILED && fd >= 0 && path && fstat(fd, &mapped) == 0 && stat(path, &named) == 0 &&
        mapped.st_dev == named.st_dev && mapped.st_ino == named.st_ino &&
        truncate(path, 2 * sysconf(_SC_PAGESIZE)) != 0)
        abort();
    return p;
}
