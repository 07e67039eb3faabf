/*
 * dlopen_prog.c - loads a shared module with dlopen and calls its allocating function, for
 * `memsnap record` tests. Usage: dlopen_prog LIBRARY|- K.
 *
 * With LIBRARY: dlopen(RTLD_NOW), liballoc_run(K) (see liballoc.c), dlclose. dlopen allocates
 * on its own, the same amount whatever K, so tests compare K with K = 0. With "-": nothing is
 * loaded, for comparing the module count.
 */
#include "progs.h"

#include <dlfcn.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    if (strcmp(argv[1], "-") == 0)
        return 0;
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h)
        return 3;
    void (*run)(long) = (void (*)(long))dlsym(h, "liballoc_run");
    if (!run)
        return 4;
    run(rp_arg(argc, argv, 2, 1));
    dlclose(h);
    return 0;
}
