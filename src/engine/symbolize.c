/*
 * symbolize.c - return addresses of a trace to functions, source files and lines (symbolize.h),
 * with elfutils libdwfl.
 *
 * ms__sym_open copies the trace's module table (so td need not outlive it) sorted by image and
 * start address. Nothing is opened until an address needs it: each image gets one Dwfl when
 * its first address is resolved, and each module is reported into it (dwfl_report_elf at the
 * recorded load bias) when its first address is. The file reported is the first whose GNU
 * build-id matches the recorded one: the recorded path, then DIR/.build-id/xx/rest.debug,
 * DIR/xx/rest.debug and DIR/<basename of the path> for each added debug directory, then
 * /usr/lib/debug/.build-id/xx/rest.debug. A module without a recorded build-id takes the file
 * at its path as is. Stripped files get their DWARF and symbols from separate debug files
 * through dwfl_standard_find_debuginfo (build-id and .gnu_debuglink, in the same directories).
 *
 * An address resolves at ip - 1 (inside the call instruction): the ELF symbol names the
 * function that holds it, the line table gives the innermost file and line, and the chain of
 * DW_TAG_inlined_subroutine DIEs around it (dwarf_getscopes_die) gives one frame per inlined
 * call, each with the call site (DW_AT_call_file, DW_AT_call_line) as the position of the frame
 * outside it. C++ names are demangled with __cxa_demangle when a libstdc++ can be found at run
 * time (already loaded, or dlopen'ed on the first mangled name); otherwise they stay mangled.
 *
 * Every (image, ip) is resolved once: its frames go to one array, found again through a
 * ms__ptrmap keyed by ip and image. Strings are libdw's own (they live as long as the Dwfl, so
 * until ms__sym_close), or copies in the symbolizer's arena (module paths, demangled names,
 * interned by source pointer). Not thread-safe: one symbolizer per thread.
 */
#include "symbolize.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYM_MAX_FRAMES 64 /* frames of one ip: inlined calls nested deeper are cut */

/* ---------------------------------------------------------------------------------------- */
/* Arena                                                                                    */
/* ---------------------------------------------------------------------------------------- */

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
};

static char *arena_strdup(struct arena_block **head, const char *s, size_t len)
{
    struct arena_block *b = *head;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > 16384 ? len + 1 : 16384;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = *head;
        b->used = 0;
        b->cap = cap;
        *head = b;
    }
    char *p = b->data + b->used;
    memcpy(p, s, len);
    p[len] = 0;
    b->used += len + 1;
    return p;
}

static void arena_free(struct arena_block *b)
{
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The symbolizer                                                                           */
/* ---------------------------------------------------------------------------------------- */

enum { MOD_UNTRIED, MOD_REPORTED, MOD_FAILED };

struct sym_mod {
    uint32_t image;
    uint64_t load_bias, start, end;
    const uint8_t *build_id; /* in the arena */
    size_t build_id_len;
    const char *path; /* in the arena; "?" when the trace gave none */
    int state;
    Dwfl_Module *dm; /* when MOD_REPORTED */
};

/* One resolved (image, ip): frames [first, first + n) of s->frames. */
struct sym_entry {
    uint64_t ip;
    uint32_t image;
    uint32_t n;
    size_t first;
};

/* The code of one subprogram DIE of a CU: [lo, hi) in DWARF addresses (a function split in
 * hot and cold parts has two). */
struct func_range {
    uint64_t lo, hi;
    Dwarf_Die die;
};

/* The subprograms of one CU, sorted by lo: built the first time an address falls in the CU, so
 * that each address then costs a binary search and a walk down one function's DIEs (where
 * dwarf_getscopes walks the whole CU, and then again for the abstract origin). */
struct cu_funcs {
    struct func_range *r;
    size_t n, cap;
};

typedef char *(*cxa_demangle_fn)(const char *, char *, size_t *, int *);

struct ms__symbolizer {
    struct sym_mod *mods; /* sorted by (image, start) */
    size_t nmods;
    struct ms__mod_range *ranges; /* of mods, in the same order (mod: the index in mods) */
    size_t nranges;
    Dwfl **dwfls; /* per image, NULL until used */
    size_t nimages;
    Dwfl_Callbacks callbacks;
    char *debuginfo_path; /* what callbacks.debuginfo_path points at */
    char **dirs;          /* added debug directories */
    size_t ndirs;
    struct ms__ptrmap cache; /* key(image, ip) -> index into entries */
    struct sym_entry *entries;
    size_t nentries, entries_cap;
    struct ms__sym_frame *frames;
    size_t nframes, frames_cap;
    struct ms__ptrmap demangled; /* libdw string pointer -> arena string pointer */
    struct ms__ptrmap cu_map;    /* CU DIE pointer (libdwfl's, stable) -> index into cus */
    struct cu_funcs *cus;
    size_t ncus, cus_cap;
    struct arena_block *arena;
    cxa_demangle_fn demangle;
    void *libstdcxx; /* dlopen handle, when we loaded it */
    bool demangle_tried;
};

static int set_debuginfo_path(struct ms__symbolizer *s)
{
    /* "-": no CRC check of .gnu_debuglink files (it reads them whole); build-ids are checked.
     * "": the main file's directory, ".debug" below it, then the system's and the added. */
    size_t len = strlen("-:.debug:/usr/lib/debug") + 1;
    for (size_t i = 0; i < s->ndirs; i++)
        len += strlen(s->dirs[i]) + 1;
    char *p = malloc(len);
    if (!p)
        return MS_ENOMEM;
    strcpy(p, "-:.debug:/usr/lib/debug");
    for (size_t i = 0; i < s->ndirs; i++) {
        strcat(p, ":");
        strcat(p, s->dirs[i]);
    }
    free(s->debuginfo_path);
    s->debuginfo_path = p;
    return 0;
}

int ms__sym_open(struct ms__symbolizer **out, const struct ms__trace_data *td)
{
    *out = NULL;
    struct ms__symbolizer *s = calloc(1, sizeof(*s));
    if (!s)
        return MS_ENOMEM;
    elf_version(EV_CURRENT);
    s->nimages = td->nimages ? td->nimages : 1;
    s->dwfls = calloc(s->nimages, sizeof(*s->dwfls));
    s->mods = calloc(td->nmodules ? td->nmodules : 1, sizeof(*s->mods));
    if (!s->dwfls || !s->mods || ms__ptrmap_init(&s->cache, 1024) != 0 ||
        ms__ptrmap_init(&s->demangled, 64) != 0 || ms__ptrmap_init(&s->cu_map, 64) != 0 ||
        set_debuginfo_path(s) != 0)
        goto nomem;
    if (ms__mod_ranges(td, &s->ranges, &s->nranges) != 0)
        goto nomem;
    for (size_t i = 0; i < s->nranges; i++) { /* the modules a lookup can find */
        const struct ms__trace_module *tm = &td->modules[s->ranges[i].mod];
        struct sym_mod *m = &s->mods[s->nmods];
        s->ranges[i].mod = (uint32_t)s->nmods; /* now an index in s->mods */
        m->image = tm->image;
        m->load_bias = tm->load_bias;
        m->start = tm->start;
        m->end = tm->end;
        const char *path = ms__trace_str_ptr(td, tm->path);
        size_t plen = tm->path.len ? strnlen(path, tm->path.len) : 0;
        m->path = plen ? arena_strdup(&s->arena, path, plen) : "?";
        if (tm->build_id.len) {
            m->build_id = (const uint8_t *)arena_strdup(
                &s->arena, ms__trace_str_ptr(td, tm->build_id), tm->build_id.len);
            if (!m->build_id)
                goto nomem;
            m->build_id_len = tm->build_id.len;
        }
        if (!m->path)
            goto nomem;
        s->nmods++;
    }
    s->callbacks.find_elf = dwfl_build_id_find_elf;
    s->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
    s->callbacks.section_address = dwfl_offline_section_address;
    s->callbacks.debuginfo_path = &s->debuginfo_path;
    *out = s;
    return 0;
nomem:
    ms__sym_close(s);
    return MS_ENOMEM;
}

int ms__sym_add_debug_dir(struct ms__symbolizer *s, const char *dir)
{
    char **d = realloc(s->dirs, (s->ndirs + 1) * sizeof(*d));
    if (!d)
        return MS_ENOMEM;
    s->dirs = d;
    if (!(d[s->ndirs] = strdup(dir)))
        return MS_ENOMEM;
    s->ndirs++;
    if (set_debuginfo_path(s) != 0) {
        free(d[--s->ndirs]);
        return MS_ENOMEM;
    }
    return 0;
}

void ms__sym_close(struct ms__symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->dwfls && i < s->nimages; i++)
        if (s->dwfls[i])
            dwfl_end(s->dwfls[i]);
    free(s->dwfls);
    free(s->mods);
    free(s->ranges);
    for (size_t i = 0; i < s->ndirs; i++)
        free(s->dirs[i]);
    free(s->dirs);
    free(s->debuginfo_path);
    ms__ptrmap_free(&s->cache);
    ms__ptrmap_free(&s->demangled);
    ms__ptrmap_free(&s->cu_map);
    for (size_t i = 0; i < s->ncus; i++)
        free(s->cus[i].r);
    free(s->cus);
    free(s->entries);
    free(s->frames);
    arena_free(s->arena);
    if (s->libstdcxx)
        dlclose(s->libstdcxx);
    free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Modules                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* The module of image that holds addr (ms__mod_find: the engine finds the same), or NULL. */
static struct sym_mod *mod_find(struct ms__symbolizer *s, uint32_t image, uint64_t addr)
{
    const struct ms__mod_range *r = ms__mod_find(s->ranges, s->nranges, image, addr);
    return r ? &s->mods[r->mod] : NULL;
}

/* Opens path if it is an ELF file whose build-id is the module's (or, when the trace recorded
 * none, if it is an ELF file). Returns the fd or -1. */
static int open_matching(const struct sym_mod *m, const char *path)
{
    /* The path comes from the trace: a FIFO (or a device) there must not block or be read.
     * O_NONBLOCK makes the open return at once; only a regular file is read. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, 0) != 0) {
        close(fd);
        return -1;
    }
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    bool ok = false;
    if (elf && elf_kind(elf) == ELF_K_ELF) {
        const void *bid = NULL;
        ssize_t n = dwelf_elf_gnu_build_id(elf, &bid);
        ok = m->build_id_len == 0 ||
             (n > 0 && (size_t)n == m->build_id_len && memcmp(bid, m->build_id, (size_t)n) == 0);
    }
    if (elf)
        elf_end(elf);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Finds the module's file (see the top of the file); writes its path to buf. */
static int find_file(struct ms__symbolizer *s, const struct sym_mod *m, char *buf, size_t len)
{
    int fd;
    if (m->path[0] == '/' && (fd = open_matching(m, m->path)) >= 0) {
        snprintf(buf, len, "%s", m->path);
        return fd;
    }
    if (m->build_id_len == 0)
        return -1;
    char hex[2 * 64 + 1];
    size_t blen = m->build_id_len < 64 ? m->build_id_len : 64;
    for (size_t i = 0; i < blen; i++)
        snprintf(hex + 2 * i, 3, "%02x", m->build_id[i]);
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    for (size_t i = 0; i <= s->ndirs; i++) {
        const char *dir = i < s->ndirs ? s->dirs[i] : "/usr/lib/debug";
        for (int form = 0; form < 3; form++) {
            int n;
            if (form == 0)
                n = snprintf(buf, len, "%s/.build-id/%.2s/%s.debug", dir, hex, hex + 2);
            else if (form == 1 && i < s->ndirs)
                n = snprintf(buf, len, "%s/%.2s/%s.debug", dir, hex, hex + 2);
            else if (form == 2 && i < s->ndirs && base[0] && strcmp(base, "?") != 0)
                n = snprintf(buf, len, "%s/%s", dir, base);
            else
                continue;
            if (n > 0 && (size_t)n < len && (fd = open_matching(m, buf)) >= 0)
                return fd;
        }
    }
    return -1;
}

/* The Dwfl_Module of m, reporting it into its image's Dwfl on first use; NULL when no file
 * fits (the failure is remembered). */
static Dwfl_Module *mod_get(struct ms__symbolizer *s, struct sym_mod *m)
{
    if (m->state != MOD_UNTRIED)
        return m->dm;
    m->state = MOD_FAILED;
    Dwfl **dwfl = &s->dwfls[m->image];
    if (!*dwfl && !(*dwfl = dwfl_begin(&s->callbacks)))
        return NULL;
    char file[4096];
    int fd = find_file(s, m, file, sizeof(file));
    if (fd < 0)
        return NULL;
    dwfl_report_begin_add(*dwfl);
    /* ET_DYN with add_p_vaddr: base is the load bias; ET_EXEC ignores it. */
    Dwfl_Module *dm = dwfl_report_elf(*dwfl, m->path, file, fd, m->load_bias, true);
    dwfl_report_end(*dwfl, NULL, NULL);
    if (!dm) {
        close(fd);
        return NULL;
    }
    m->dm = dm;
    m->state = MOD_REPORTED;
    return dm;
}

/* ---------------------------------------------------------------------------------------- */
/* Names                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* name demangled when it is a mangled C++ name and a demangler is at hand; else name. */
static const char *demangle(struct ms__symbolizer *s, const char *name)
{
    if (!name || name[0] != '_' || name[1] != 'Z')
        return name;
    uint64_t v;
    if (ms__ptrmap_get(&s->demangled, (uint64_t)(uintptr_t)name, &v))
        return (const char *)(uintptr_t)v;
    if (!s->demangle_tried) {
        s->demangle_tried = true;
        void *f = dlsym(RTLD_DEFAULT, "__cxa_demangle");
        if (!f && (s->libstdcxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL)))
            f = dlsym(s->libstdcxx, "__cxa_demangle");
        s->demangle = (cxa_demangle_fn)f;
    }
    if (!s->demangle)
        return name;
    int status = -1;
    char *d = s->demangle(name, NULL, NULL, &status);
    const char *out = name;
    if (d && status == 0) {
        const char *copy = arena_strdup(&s->arena, d, strlen(d));
        uint64_t old;
        if (copy && ms__ptrmap_put(&s->demangled, (uint64_t)(uintptr_t)name,
                                   (uint64_t)(uintptr_t)copy, &old) >= 0)
            out = copy;
    }
    free(d);
    return out;
}

/* The name of a subprogram or inlined subroutine DIE: its linkage name (demangled), else its
 * name, following DW_AT_abstract_origin and DW_AT_specification. */
static const char *die_name(struct ms__symbolizer *s, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *n = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
        n = dwarf_formstring(&a);
    if (n)
        return demangle(s, n);
    if (dwarf_attr_integrate(die, DW_AT_name, &a))
        n = dwarf_formstring(&a);
    return n;
}

/* The call site of an inlined subroutine DIE. */
static void call_site(Dwarf_Die *die, Dwarf_Files *files, size_t nfiles, const char **file,
                      uint32_t *line)
{
    Dwarf_Attribute a;
    Dwarf_Word w;
    *file = NULL;
    *line = 0;
    if (dwarf_attr(die, DW_AT_call_line, &a) && dwarf_formudata(&a, &w) == 0)
        *line = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
    if (files && dwarf_attr(die, DW_AT_call_file, &a) && dwarf_formudata(&a, &w) == 0 && w < nfiles)
        *file = dwarf_filesrc(files, w, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Resolution                                                                               */
/* ---------------------------------------------------------------------------------------- */

static int func_cmp(const void *a, const void *b)
{
    const struct func_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Adds the subprograms with code among the children of die, through namespaces and types.
 * Returns 0 or MS_ENOMEM. */
static int collect_funcs(struct cu_funcs *c, Dwarf_Die *die, int depth)
{
    Dwarf_Die child;
    if (depth > 16 || dwarf_child(die, &child) != 0)
        return 0;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_subprogram) {
            Dwarf_Addr base, lo, hi;
            ptrdiff_t off = 0;
            while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
                if (lo >= hi)
                    continue;
                if (ms__grow(&c->r, &c->cap, c->n + 1, sizeof(*c->r), 0) != 0)
                    return MS_ENOMEM;
                c->r[c->n++] = (struct func_range){.lo = lo, .hi = hi, .die = child};
            }
        } else if (tag == DW_TAG_namespace || tag == DW_TAG_module || tag == DW_TAG_class_type ||
                   tag == DW_TAG_structure_type || tag == DW_TAG_union_type) {
            if (collect_funcs(c, &child, depth + 1) != 0)
                return MS_ENOMEM;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return 0;
}

static struct cu_funcs *cu_funcs_get(struct ms__symbolizer *s, Dwarf_Die *cu)
{
    uint64_t v;
    if (ms__ptrmap_get(&s->cu_map, (uint64_t)(uintptr_t)cu, &v))
        return &s->cus[v];
    if (ms__grow(&s->cus, &s->cus_cap, s->ncus + 1, sizeof(*s->cus), 0) != 0)
        return NULL;
    struct cu_funcs *c = &s->cus[s->ncus];
    *c = (struct cu_funcs){0};
    uint64_t old;
    if (collect_funcs(c, cu, 0) != 0 || /* a half table would give wrong frames: none */
        ms__ptrmap_put(&s->cu_map, (uint64_t)(uintptr_t)cu, s->ncus, &old) != 0) {
        free(c->r);
        return NULL;
    }
    qsort(c->r, c->n, sizeof(*c->r), func_cmp);
    s->ncus++;
    return c;
}

/* The scopes holding a (a DWARF address) from the subprogram down, outermost first, into
 * chain (room for max); 0 when the CU's table has no subprogram there. */
static int scopes_down(struct ms__symbolizer *s, Dwarf_Die *cu, uint64_t a, Dwarf_Die *chain,
                       int max)
{
    struct cu_funcs *c = cu_funcs_get(s, cu);
    if (!c || c->n == 0)
        return 0;
    size_t lo = 0, hi = c->n; /* first range with lo > a */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->r[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    const struct func_range *fr = NULL;
    for (size_t i = lo, k = 0; i > 0 && k < 8 && !fr; i--, k++)
        if (a < c->r[i - 1].hi)
            fr = &c->r[i - 1];
    if (!fr)
        return 0;
    int n = 0;
    chain[n++] = fr->die;
    while (n < max) {
        Dwarf_Die child;
        bool found = false;
        if (dwarf_child(&chain[n - 1], &child) != 0)
            break;
        do {
            int tag = dwarf_tag(&child);
            if ((tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block ||
                 tag == DW_TAG_try_block || tag == DW_TAG_catch_block) &&
                dwarf_haspc(&child, a) == 1) {
                chain[n++] = child;
                found = true;
                break;
            }
        } while (dwarf_siblingof(&child, &child) == 0);
        if (!found)
            break;
    }
    return n;
}

/* Frames of addr (= ip - 1) in dm, innermost first, into f (room for max >= 1): 0 when dm
 * knows nothing of it. */
static size_t resolve_dwfl(struct ms__symbolizer *s, Dwfl_Module *dm, uint64_t addr,
                           struct ms__sym_frame *f, size_t max)
{
    const char *sym = dwfl_module_addrname(dm, addr);
    const char *at = sym ? strchr(sym, '@') : NULL;
    if (at && at > sym) /* an ELF symbol version (memcpy@@GLIBC_2.14): not part of the name */
        sym = arena_strdup(&s->arena, sym, (size_t)(at - sym));
    const char *file = NULL;
    int lineno = 0;
    Dwfl_Line *ln = dwfl_module_getsrc(dm, addr);
    if (ln)
        file = dwfl_lineinfo(ln, NULL, &lineno, NULL, NULL, NULL);

    /* The scopes at addr, innermost first: from the CU's function table, else (code the table
     * misses: a nested function, say) from dwarf_getscopes_die. */
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(dm, addr, &bias);
    Dwarf_Die down[SYM_MAX_FRAMES];
    Dwarf_Die *scopes = NULL, *heap = NULL;
    int nscopes = 0;
    if (cu && (nscopes = scopes_down(s, cu, addr - bias, down, SYM_MAX_FRAMES)) > 0) {
        for (int i = 0; i < nscopes / 2; i++) {
            Dwarf_Die t = down[i];
            down[i] = down[nscopes - 1 - i];
            down[nscopes - 1 - i] = t;
        }
        scopes = down;
    } else if (cu) {
        Dwarf_Die *all = NULL;
        int nall = dwarf_getscopes(cu, addr - bias, &all);
        for (int i = 0; i < nall; i++) {
            int tag = dwarf_tag(&all[i]);
            if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram ||
                tag == DW_TAG_entry_point) {
                /* dwarf_getscopes goes on from an inlined instance to its abstract
                 * definition's scopes; the DIE tree up from it has the callers */
                nscopes = dwarf_getscopes_die(&all[i], &heap);
                scopes = heap;
                break;
            }
        }
        free(all);
    }

    size_t n = 0;
    const char *sub_name = NULL; /* the DWARF name of the concrete subprogram */
    if (nscopes > 0) {
        Dwarf_Files *files = NULL;
        size_t nfiles = 0;
        if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
            files = NULL;
        const char *cur_file = file;
        uint32_t cur_line = lineno > 0 ? (uint32_t)lineno : 0;
        for (int i = 0; i < nscopes; i++) {
            int tag = dwarf_tag(&scopes[i]);
            if (tag == DW_TAG_subprogram) {
                sub_name = die_name(s, &scopes[i]);
                break;
            }
            if (tag != DW_TAG_inlined_subroutine || n + 1 >= max)
                continue;
            f[n] = (struct ms__sym_frame){.function = die_name(s, &scopes[i]),
                                          .file = cur_file,
                                          .line = cur_line,
                                          .inlined = true};
            n++;
            call_site(&scopes[i], files, nfiles, &cur_file, &cur_line);
        }
        file = cur_file;
        lineno = (int)cur_line;
    }
    free(heap);
    /* The ELF symbol, but a GCC clone (foo.constprop.0, foo.part.0) by its DWARF name */
    const char *fn = sym ? demangle(s, sym) : sub_name;
    size_t k = sub_name ? strlen(sub_name) : 0;
    if (sym && k && strncmp(sym, sub_name, k) == 0 && sym[k] == '.')
        fn = sub_name;
    if (!fn && !file && n == 0)
        return 0;
    f[n++] = (struct ms__sym_frame){
        .function = fn, .file = file, .line = lineno > 0 ? (uint32_t)lineno : 0};
    return n;
}

static uint64_t cache_key(uint32_t image, uint64_t ip)
{
    return ip ^ ((uint64_t)image << 48);
}

static size_t copy_out(const struct ms__sym_frame *f, size_t n, struct ms__sym_frame *out,
                       size_t max)
{
    if (n > max)
        n = max;
    memcpy(out, f, n * sizeof(*f));
    return n;
}

size_t ms__sym_resolve(struct ms__symbolizer *s, uint32_t image, uint64_t ip,
                       struct ms__sym_frame *out, size_t max)
{
    if (max == 0)
        return 0;
    uint64_t key = cache_key(image, ip), idx;
    bool collision = false;
    if (ms__ptrmap_get(&s->cache, key, &idx)) {
        const struct sym_entry *e = &s->entries[idx];
        if (e->ip == ip && e->image == image)
            return copy_out(s->frames + e->first, e->n, out, max);
        collision = true; /* addresses above 2^48: resolved again each time, not cached */
    }

    uint64_t addr = ip ? ip - 1 : 0;
    struct sym_mod *m = image < s->nimages ? mod_find(s, image, addr) : NULL;
    struct ms__sym_frame tmp[SYM_MAX_FRAMES];
    size_t n = 0;
    Dwfl_Module *dm = m ? mod_get(s, m) : NULL;
    if (dm)
        n = resolve_dwfl(s, dm, addr, tmp, SYM_MAX_FRAMES);
    if (n == 0) {
        tmp[0] = (struct ms__sym_frame){0};
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        tmp[i].ip = ip;
        tmp[i].module = m ? m->path : "?";
        tmp[i].offset = m ? ip - m->load_bias : ip;
    }

    if (!collision &&
        ms__grow(&s->frames, &s->frames_cap, s->nframes + n, sizeof(*s->frames), 0) == 0 &&
        ms__grow(&s->entries, &s->entries_cap, s->nentries + 1, sizeof(*s->entries), 0) == 0) {
        uint64_t old;
        if (ms__ptrmap_put(&s->cache, key, s->nentries, &old) == 0) {
            memcpy(s->frames + s->nframes, tmp, n * sizeof(*tmp));
            s->entries[s->nentries++] =
                (struct sym_entry){.ip = ip, .image = image, .n = (uint32_t)n, .first = s->nframes};
            s->nframes += n;
        }
    }
    return copy_out(tmp, n, out, max);
}

const char *ms__sym_module_name(const struct ms__sym_frame *f)
{
    const char *path = f->module ? f->module : "?";
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

const char *ms__sym_frame_name(const struct ms__sym_frame *f, char *buf, size_t len)
{
    if (f->function)
        snprintf(buf, len, "%s", f->function);
    else
        snprintf(buf, len, "%s+0x%llx", ms__sym_module_name(f), (unsigned long long)f->offset);
    return buf;
}
