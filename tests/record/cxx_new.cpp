/*
 * cxx_new.cpp - C++ new/delete, new[]/delete[] and nothrow new, which reach the tracker
 * through malloc and free, for `memsnap record` tests. Usage: cxx_new K.
 *
 * Each of K rounds: new int[250] (1000 bytes), new S[10] (S has a destructor, so the array
 * carries the Itanium ABI's 8-byte cookie: 48 bytes), new Obj (200 bytes), nothrow
 * new char[300], each deleted, and new long (8 bytes) leaked. Per round: 5 allocations, 4 frees,
 * 1556 bytes, 8 bytes leaked. The C++ runtime allocates on its own at start-up (the exception
 * pool), so tests compare with K = 0: the peak grows by 8 * (K - 1) + 1000. (No failing nothrow
 * new: libstdc++ makes it catch a bad_alloc, whose exception object is itself malloc'ed, 128 + 8
 * bytes.)
 */
#include <cstdlib>
#include <new>

static void *volatile sink;

struct S {
    int v;
    ~S()
    {
        sink = this;
    }
};

struct Obj {
    char bytes[200];
};

int main(int argc, char **argv)
{
    long k = argc > 1 ? std::strtol(argv[1], nullptr, 0) : 1;
    for (long r = 0; r < k; r++) {
        int *a = new int[250];
        sink = a;
        delete[] a;
        S *s = new S[10];
        sink = s;
        delete[] s;
        Obj *o = new Obj;
        sink = o;
        delete o;
        char *n = new (std::nothrow) char[300];
        sink = n;
        delete[] n;
        sink = new long(r);
    }
    return 0;
}
