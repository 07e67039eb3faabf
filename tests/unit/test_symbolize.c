/*
 * test_symbolize.c - the symbolizer (src/engine/symbolize.c) on this test program itself:
 * return addresses taken at run time resolve to their function, source file and line; an
 * always_inline call gives an inlined frame and its caller; addresses outside every module, in
 * a module whose file has another build-id, and in images the trace does not have, keep their
 * module and offset; a binary that moved is found by build-id in an added debug directory
 * (DIR/.build-id/xx/rest.debug, DIR/xx/rest.debug, DIR/<basename>); a libc address gets the
 * name dladdr gives; results are cached.
 *
 * The trace data is built by hand: its module table only (what the symbolizer reads), from
 * dl_iterate_phdr like the tracker's. Needs the test built with -g (every build type here but
 * plain "release" has it).
 */
#include "helpers.h"

#include "engine/symbolize.h"
#include "trace/reader.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* The subjects                                                                             */
/* ---------------------------------------------------------------------------------------- */

static volatile uint64_t g_ret; /* the last return address note_return() saw */
static volatile int g_sink;
static int leaky_line, inline_line, outer_line;

__attribute__((noinline)) static void note_return(void)
{
    g_ret = (uint64_t)(uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void leaky_function(void)
{
    leaky_line = __LINE__ + 1;
    note_return();
    g_sink++; /* no tail call */
}

static inline __attribute__((always_inline)) void inlined_helper(void)
{
    inline_line = __LINE__ + 1;
    note_return();
    g_sink++;
}

__attribute__((noinline)) static void outer_function(void)
{
    outer_line = __LINE__ + 1;
    inlined_helper();
    g_sink++;
}

/* ---------------------------------------------------------------------------------------- */
/* A module table by hand                                                                   */
/* ---------------------------------------------------------------------------------------- */

enum {
    IMG_SELF,     /* every module of this process, as recorded */
    IMG_WRONG_ID, /* the program with another build-id */
    IMG_MOVED,    /* the program recorded at a path that no longer exists */
    IMG_COUNT
};

#define MAX_MODS 256

struct fake {
    struct ms__trace_data td;
    struct ms__trace_module mods[MAX_MODS];
    struct ms__trace_image images[IMG_COUNT];
    char strings[1 << 16];
    size_t len;
};

static struct fake F;
static char exe_path[4096];
static uint64_t exe_bias;
static uint64_t exe_text_lo, exe_text_hi; /* its executable PT_LOAD */
static uint8_t exe_build_id[64];
static size_t exe_build_id_len;
static char tmpdir[64];

static struct ms__trace_str add_str(const void *p, size_t n)
{
    assert_true(F.len + n + 1 <= sizeof(F.strings));
    struct ms__trace_str s = {.off = (uint32_t)F.len, .len = (uint32_t)n};
    memcpy(F.strings + F.len, p, n);
    F.strings[F.len + n] = 0;
    F.len += n + 1;
    return s;
}

static void add_module(uint32_t image, uint64_t bias, uint64_t lo, uint64_t hi, const void *bid,
                       size_t bid_len, const char *path)
{
    assert_true(F.td.nmodules < MAX_MODS);
    struct ms__trace_module *m = &F.mods[F.td.nmodules];
    m->id = (uint32_t)F.td.nmodules + 1;
    m->image = image;
    m->load_bias = bias;
    m->start = lo;
    m->end = hi;
    m->build_id = add_str(bid, bid_len);
    m->path = add_str(path, strlen(path));
    m->unload_time = UINT64_MAX;
    F.td.nmodules++;
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    uint64_t lo = UINT64_MAX, hi = 0, text_lo = 0, text_hi = 0;
    const uint8_t *bid = NULL;
    size_t bid_len = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            if (a < lo)
                lo = a;
            if (a + ph->p_memsz > hi)
                hi = a + ph->p_memsz;
            if (ph->p_flags & PF_X) {
                text_lo = a;
                text_hi = a + ph->p_memsz;
            }
        } else if (ph->p_type == PT_NOTE && !bid) {
            const uint8_t *p = (const uint8_t *)(uintptr_t)a, *end = p + ph->p_memsz;
            while (p + sizeof(ElfW(Nhdr)) <= end) {
                const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
                const uint8_t *name = p + sizeof(*nh);
                const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
                if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                    memcmp(name, "GNU", 4) == 0 && desc + nh->n_descsz <= end) {
                    bid = desc;
                    bid_len = nh->n_descsz < 64 ? nh->n_descsz : 64;
                    break;
                }
                p = desc + ((nh->n_descsz + 3) & ~3u);
            }
        }
    }
    if (lo >= hi)
        return 0;
    const char *path = info->dlpi_name;
    if (!path || !path[0]) { /* the program */
        ssize_t n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
        assert_true(n > 0);
        exe_path[n] = 0;
        path = exe_path;
        exe_bias = info->dlpi_addr;
        exe_text_lo = text_lo;
        exe_text_hi = text_hi;
        assert_non_null(bid);
        memcpy(exe_build_id, bid, bid_len);
        exe_build_id_len = bid_len;
        uint8_t wrong[64];
        memcpy(wrong, bid, bid_len);
        wrong[0] ^= 0xff;
        add_module(IMG_WRONG_ID, info->dlpi_addr, lo, hi, wrong, bid_len, exe_path);
        add_module(IMG_MOVED, info->dlpi_addr, lo, hi, bid, bid_len,
                   "/nonexistent/moved/test_symbolize");
    }
    add_module(IMG_SELF, info->dlpi_addr, lo, hi, bid, bid_len, path);
    return 0;
}

static char hex_id[2 * 64 + 1];

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    F.td.modules = F.mods;
    F.td.images = F.images;
    F.td.nimages = IMG_COUNT;
    F.td.strings = F.strings;
    add_str("", 0);
    dl_iterate_phdr(phdr_cb, NULL);
    F.td.strings_len = F.len;
    for (size_t i = 0; i < exe_build_id_len; i++)
        snprintf(hex_id + 2 * i, 3, "%02x", exe_build_id[i]);
    temp_dir(tmpdir, sizeof(tmpdir), "sym");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return temp_dir_remove(tmpdir);
}

static struct ms__symbolizer *open_sym(void)
{
    struct ms__symbolizer *s = NULL;
    assert_int_equal(ms__sym_open(&s, &F.td), 0);
    assert_non_null(s);
    return s;
}

static void assert_file_is_this(const char *file)
{
    assert_non_null(file);
    size_t n = strlen(file), k = strlen("test_symbolize.c");
    assert_true(n >= k);
    assert_string_equal(file + n - k, "test_symbolize.c");
}

static uint64_t leaky_ip(void)
{
    leaky_function();
    return g_ret;
}

/* Checks frames of leaky_function's call, as resolved in a module recorded at path. */
static void assert_leaky(struct ms__symbolizer *s, uint32_t image, const char *path)
{
    uint64_t ip = leaky_ip();
    struct ms__sym_frame f[8];
    size_t n = ms__sym_resolve(s, image, ip, f, 8);
    assert_int_equal(n, 1);
    assert_non_null(f[0].function);
    assert_string_equal(f[0].function, "leaky_function");
    assert_file_is_this(f[0].file);
    assert_int_equal(f[0].line, leaky_line);
    assert_false(f[0].inlined);
    assert_int_equal(f[0].ip, ip);
    assert_string_equal(f[0].module, path);
    assert_int_equal(f[0].offset, ip - exe_bias);
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void a_return_address_gives_its_function_file_and_line(void **state)
{
    (void)state;
    struct ms__symbolizer *s = open_sym();
    assert_leaky(s, IMG_SELF, exe_path);
    ms__sym_close(s);
}

/* The same (image, ip) resolves the same every time, and the same ip in another image is
 * resolved apart: the cache is keyed on both. */
static void results_are_kept_per_image_and_ip(void **state)
{
    (void)state;
    struct ms__symbolizer *s = open_sym();
    uint64_t ip = leaky_ip();
    struct ms__sym_frame a, b;
    assert_int_equal(ms__sym_resolve(s, IMG_SELF, ip, &a, 1), 1);
    assert_int_equal(ms__sym_resolve(s, IMG_SELF, ip, &b, 1), 1);
    assert_string_equal(a.function, b.function);
    assert_string_equal(a.file, b.file);
    assert_int_equal(a.line, b.line);
    /* the same ip in another image is another module: resolved apart */
    assert_int_equal(ms__sym_resolve(s, IMG_WRONG_ID, ip, &b, 1), 1);
    assert_null(b.function);
    assert_int_equal(ms__sym_resolve(s, IMG_SELF, ip, &b, 1), 1);
    assert_string_equal(b.function, "leaky_function");
    ms__sym_close(s);
}

static void an_inlined_call_gives_the_inlined_frame_then_its_caller(void **state)
{
    (void)state;
    struct ms__symbolizer *s = open_sym();
    outer_function();
    uint64_t ip = g_ret;
    struct ms__sym_frame f[8];
    size_t n = ms__sym_resolve(s, IMG_SELF, ip, f, 8);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].function, "inlined_helper");
    assert_true(f[0].inlined);
    assert_file_is_this(f[0].file);
    assert_int_equal(f[0].line, inline_line);
    assert_string_equal(f[1].function, "outer_function");
    assert_false(f[1].inlined);
    assert_file_is_this(f[1].file);
    assert_int_equal(f[1].line, outer_line);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f[i].ip, ip);
        assert_string_equal(f[i].module, exe_path);
        assert_int_equal(f[i].offset, ip - exe_bias);
    }
    /* room for one: the innermost, from the cache too */
    struct ms__sym_frame one;
    assert_int_equal(ms__sym_resolve(s, IMG_SELF, ip, &one, 1), 1);
    assert_string_equal(one.function, "inlined_helper");
    assert_int_equal(ms__sym_resolve(s, IMG_SELF, ip, &one, 0), 0);
    ms__sym_close(s);
}

static void an_address_outside_every_module_keeps_its_value(void **state)
{
    (void)state;
    struct ms__symbolizer *s = open_sym();
    struct ms__sym_frame f[4];
    const uint64_t ips[] = {0, 1, 0x10, UINT64_MAX, UINT64_C(0xffff800000001234)};
    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        for (uint32_t image = 0; image < IMG_COUNT + 2; image++) { /* + images it lacks */
            assert_int_equal(ms__sym_resolve(s, image, ips[i], f, 4), 1);
            assert_string_equal(f[0].module, "?");
            assert_null(f[0].function);
            assert_null(f[0].file);
            assert_int_equal(f[0].line, 0);
            assert_int_equal(f[0].offset, ips[i]);
            assert_int_equal(f[0].ip, ips[i]);
        }
    }
    ms__sym_close(s);
}

static void a_file_with_another_build_id_is_not_used(void **state)
{
    (void)state;
    struct ms__symbolizer *s = open_sym();
    uint64_t ip = leaky_ip();
    struct ms__sym_frame f[4];
    assert_int_equal(ms__sym_resolve(s, IMG_WRONG_ID, ip, f, 4), 1);
    assert_null(f[0].function);
    assert_null(f[0].file);
    assert_string_equal(f[0].module, exe_path);
    assert_int_equal(f[0].offset, ip - exe_bias);
    /* a missing file likewise, while no debug directory has it */
    assert_int_equal(ms__sym_resolve(s, IMG_MOVED, ip, f, 4), 1);
    assert_null(f[0].function);
    assert_string_equal(f[0].module, "/nonexistent/moved/test_symbolize");
    assert_int_equal(f[0].offset, ip - exe_bias);
    ms__sym_close(s);
}

/* The program copied to tmpdir/<sub>/<rel>, found through the debug directory tmpdir/<sub>. */
static void moved_binary_found_at(const char *sub, const char *rel)
{
    char dir[512], path[1024];
    snprintf(dir, sizeof(dir), "%s/%s", tmpdir, sub);
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    copy_file(exe_path, path);
    struct ms__symbolizer *s = open_sym();
    assert_int_equal(ms__sym_add_debug_dir(s, "/nonexistent/debug"), 0);
    assert_int_equal(ms__sym_add_debug_dir(s, dir), 0);
    assert_leaky(s, IMG_MOVED, "/nonexistent/moved/test_symbolize");
    ms__sym_close(s);
    unlink(path);
}

static void a_moved_binary_is_found_by_build_id(void **state)
{
    (void)state;
    char rel[256];
    snprintf(rel, sizeof(rel), ".build-id/%.2s/%s.debug", hex_id, hex_id + 2);
    moved_binary_found_at("a", rel);
    snprintf(rel, sizeof(rel), "%.2s/%s.debug", hex_id, hex_id + 2);
    moved_binary_found_at("b", rel);
    moved_binary_found_at("c", "test_symbolize"); /* by name, build-id checked */
}

/* A FIFO where the program's file would be found (nobody writes it: opening it for reading
 * blocks) is skipped at once: the address keeps its module and offset. */
static void a_fifo_in_a_debug_directory_is_skipped_without_blocking(void **state)
{
    (void)state;
    char dir[512], path[1024];
    snprintf(dir, sizeof(dir), "%s/fifo", tmpdir);
    snprintf(path, sizeof(path), "%s/test_symbolize", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    struct ms__symbolizer *s = open_sym();
    assert_int_equal(ms__sym_add_debug_dir(s, dir), 0);
    uint64_t ip = leaky_ip();
    struct ms__sym_frame f[4];
    assert_int_equal(ms__sym_resolve(s, IMG_MOVED, ip, f, 4), 1);
    assert_null(f[0].function);
    assert_string_equal(f[0].module, "/nonexistent/moved/test_symbolize");
    assert_int_equal(f[0].offset, ip - exe_bias);
    ms__sym_close(s);
    unlink(path);
    rmdir(dir);
}

static void a_libc_address_gets_the_name_dladdr_gives(void **state)
{
    (void)state;
    void *fn = dlsym(RTLD_DEFAULT, "abs");
    Dl_info di;
    if (!fn || !dladdr(fn, &di) || !di.dli_sname || !di.dli_fname)
        skip();
    struct ms__symbolizer *s = open_sym();
    uint64_t ip = (uint64_t)(uintptr_t)fn + 1;
    struct ms__sym_frame f[8];
    size_t n = ms__sym_resolve(s, IMG_SELF, ip, f, 8);
    assert_true(n >= 1);
    assert_non_null(f[n - 1].function);
    assert_string_equal(f[n - 1].function, di.dli_sname);
    assert_string_equal(f[0].module, di.dli_fname);
    assert_int_equal(f[0].offset, ip - (uint64_t)(uintptr_t)di.dli_fbase);
    ms__sym_close(s);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Every address of this program's text, stepped: none fails, none drops its module; with
 * MEMSNAP_SYM_TIMING set, prints the cost of new and of cached addresses. */
static void a_sweep_of_the_program_text_resolves_every_address(void **state)
{
    (void)state;
    struct ms__symbolizer *s = open_sym();
    enum { N = 4096 };
    assert_true(exe_text_hi - exe_text_lo >= N);
    uint64_t base = exe_text_lo, step = (exe_text_hi - exe_text_lo) / N;
    struct ms__sym_frame f[16];
    size_t named = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < N; i++) {
        size_t n = ms__sym_resolve(s, IMG_SELF, base + 1 + i * step, f, 16);
        assert_true(n >= 1);
        assert_string_equal(f[0].module, exe_path);
        named += f[n - 1].function != NULL;
    }
    double t1 = now_ns();
    for (int rep = 0; rep < 10; rep++)
        for (uint64_t i = 0; i < N; i++)
            assert_true(ms__sym_resolve(s, IMG_SELF, base + 1 + i * step, f, 16) >= 1);
    double t2 = now_ns();
    assert_true(named > N / 2);
    if (getenv("MEMSNAP_SYM_TIMING"))
        print_message("new ip %.0f ns, cached ip %.0f ns (%zu of %d named)\n", (t1 - t0) / N,
                      (t2 - t1) / (10.0 * N), named, N);
    ms__sym_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_return_address_gives_its_function_file_and_line),
        cmocka_unit_test(results_are_kept_per_image_and_ip),
        cmocka_unit_test(an_inlined_call_gives_the_inlined_frame_then_its_caller),
        cmocka_unit_test(an_address_outside_every_module_keeps_its_value),
        cmocka_unit_test(a_file_with_another_build_id_is_not_used),
        cmocka_unit_test(a_moved_binary_is_found_by_build_id),
        cmocka_unit_test(a_fifo_in_a_debug_directory_is_skipped_without_blocking),
        cmocka_unit_test(a_libc_address_gets_the_name_dladdr_gives),
        cmocka_unit_test(a_sweep_of_the_program_text_resolves_every_address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
