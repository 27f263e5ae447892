/* hooks_native.c -- a hook source: native allocations (see hooks_native.h). */
#include "sampler.h" /* first: Python.h sets _GNU_SOURCE */

#include "hooks_native.h"

#if defined(__linux__) && defined(__ELF__)

#include "elf_patch.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HOOK __attribute__((visibility("hidden")))

/* ---- the real functions ---- */

typedef struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    void *(*mmap64)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    void *(*dlopen)(const char *, int);
    int (*dlclose)(void *);
    void *(*save_thread)(void);
} next_t;

/* Where each patched symbol's slot is expected to point (and where our hook
 * forwards). Arrow's pool functions are learned from the library that defines
 * them, before the first slot is written. */
static void *g_target[32];
#define POOL_FN(i, type) ((type)__atomic_load_n(&g_target[i], __ATOMIC_ACQUIRE))

static next_t nx;
static const void *g_interp_addr = NULL;
static char g_error[160] = "";
static int g_setup = 0;

/* ---- sampling state ---- */

/* The re-entrancy guard is the core's cg_t_busy, shared by every hook family: a
 * block that the numpy hook (or the stack walk) allocates through malloc is not
 * counted again here. */
typedef struct {
    int64_t cd;   /* bytes until the next sample */
    uint32_t gen; /* g_gen when cd was drawn */
    uint64_t rng; /* xorshift64* state, 0 = unseeded */
} tls_t;

static __thread tls_t t_n;
static volatile uint32_t g_gen = 1; /* bumped by start/stop/interval changes: threads redraw */
static volatile int g_on = 0;
static int g_kept = 0; /* slots left patched by cg_native_stop(1) */
static uint64_t g_seed = 0x2545F4914F6CDD1Dull;
static uint64_t g_samples[3];
static uint64_t g_dlopens = 0, g_pending_count = 0;
static volatile int g_pending = 0; /* a dlopen could not patch: do it at the next chance */

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t draw(tls_t *t) {
    if (t->rng == 0) {
        t->rng = g_seed ^ ((uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15ull) ^ now_ns();
        if (t->rng == 0) t->rng = 1;
    }
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    x *= 0x2545F4914F6CDD1Dull;
    double u = ((double)(x >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double d = -log(u) * cg_mean;
    if (d < 1.0) d = 1.0;
    if (d > 9.0e18) d = 9.0e18;
    return (int64_t)d;
}

/* Slow path of take(): the countdown was crossed or is stale. 1 = sample this one. */
__attribute__((noinline)) static int take_slow(tls_t *t, size_t n) {
    uint32_t gen = g_gen;
    if (!g_on) {
        t->gen = gen;
        t->cd = INT64_MAX;
        return 0;
    }
    if (t->gen != gen) { /* a new session or interval: start a fresh countdown */
        t->gen = gen;
        t->cd = draw(t);
        if (t->cd > (int64_t)n) {
            t->cd -= (int64_t)n;
            return 0;
        }
    }
    t->cd = draw(t);
    return !cg_t_busy;
}

/* Count n bytes against this thread's countdown when that needs no decision: 1 when
 * done (no sample), 0 when the slow path must decide (take_slow). */
static inline int take_fast(size_t n) {
    tls_t *t = &t_n;
    if (LIKELY(t->gen == g_gen && t->cd > (int64_t)n)) {
        t->cd -= (int64_t)n;
        return 1;
    }
    return 0;
}

/* Count n bytes against this thread's countdown; 1 when they must be sampled. */
static inline int take(size_t n) { return take_fast(n) ? 0 : take_slow(&t_n, n); }

__attribute__((noinline)) static void sample(void *p, size_t n, int domain) {
    if (p == NULL || n == 0 || !g_on) return;
    cg_sample_any(p, n, domain);
    __atomic_fetch_add(&g_samples[domain - CG_DOMAIN_MALLOC], 1, __ATOMIC_RELAXED);
}

static inline void forget(void *p) {
    /* when off, the core keeps no samples anyway (and after a fork its lock may be
     * held by a thread that no longer exists) */
    if (p != NULL && UNLIKELY(cg_maybe_tracked(p)) && g_on) cg_untrack(p);
}

static inline int set_busy(int busy) {
    int prev = cg_t_busy;
    cg_t_busy = busy;
    return prev;
}

/* ---- malloc family (CG_DOMAIN_MALLOC) ---- */

__attribute__((noinline)) static void *malloc_slow(size_t n) {
    void *p = nx.malloc(n);
    if (take_slow(&t_n, n)) sample(p, n, CG_DOMAIN_MALLOC);
    return p;
}

HOOK void *cg_h_malloc(size_t n) {
    if (LIKELY(take_fast(n))) return nx.malloc(n);
    return malloc_slow(n);
}

__attribute__((noinline)) static void *calloc_slow(size_t k, size_t n) {
    void *p = nx.calloc(k, n);
    if (take_slow(&t_n, k * n)) sample(p, k * n, CG_DOMAIN_MALLOC);
    return p;
}

HOOK void *cg_h_calloc(size_t k, size_t n) {
    if (LIKELY(take_fast(k * n))) return nx.calloc(k, n);
    return calloc_slow(k, n);
}

HOOK void cg_h_free(void *p) {
    forget(p);
    nx.free(p);
}

static void *realloc_common(void *old, size_t n, void *(*fn)(void *, size_t, size_t), size_t a, size_t b, int domain) {
    int64_t idx = -1;
    if (old != NULL && UNLIKELY(cg_maybe_tracked(old)) && g_on) idx = cg_untrack(old);
    void *p = fn(old, a, b);
    if (p == NULL) {
        /* realloc(p, 0) may free p and return NULL; otherwise the old block lives on */
        if (idx >= 0 && n != 0) cg_retrack(idx, old);
        return NULL;
    }
    if (LIKELY(!take(n))) return p;
    sample(p, n, domain);
    return p;
}

static void *call_realloc(void *old, size_t n, size_t unused) { return nx.realloc(old, n); }
static void *call_reallocarray(void *old, size_t k, size_t n) { return nx.reallocarray(old, k, n); }

HOOK void *cg_h_realloc(void *old, size_t n) { return realloc_common(old, n, call_realloc, n, 0, CG_DOMAIN_MALLOC); }

HOOK void *cg_h_reallocarray(void *old, size_t k, size_t n) {
    return realloc_common(old, k * n, call_reallocarray, k, n, CG_DOMAIN_MALLOC);
}

__attribute__((noinline)) static int posix_memalign_slow(void **pp, size_t align, size_t n) {
    int r = nx.posix_memalign(pp, align, n);
    if (take_slow(&t_n, n) && r == 0) sample(*pp, n, CG_DOMAIN_MALLOC);
    return r;
}

HOOK int cg_h_posix_memalign(void **pp, size_t align, size_t n) {
    if (LIKELY(take_fast(n))) return nx.posix_memalign(pp, align, n);
    return posix_memalign_slow(pp, align, n);
}

__attribute__((noinline)) static void *aligned_alloc_slow(size_t align, size_t n) {
    void *p = nx.aligned_alloc(align, n);
    if (take_slow(&t_n, n)) sample(p, n, CG_DOMAIN_MALLOC);
    return p;
}

HOOK void *cg_h_aligned_alloc(size_t align, size_t n) {
    if (LIKELY(take_fast(n))) return nx.aligned_alloc(align, n);
    return aligned_alloc_slow(align, n);
}

__attribute__((noinline)) static void *memalign_slow(size_t align, size_t n) {
    void *p = nx.memalign(align, n);
    if (take_slow(&t_n, n)) sample(p, n, CG_DOMAIN_MALLOC);
    return p;
}

HOOK void *cg_h_memalign(size_t align, size_t n) {
    if (LIKELY(take_fast(n))) return nx.memalign(align, n);
    return memalign_slow(align, n);
}

__attribute__((noinline)) static void *valloc_slow(size_t n) {
    void *p = nx.valloc(n);
    if (take_slow(&t_n, n)) sample(p, n, CG_DOMAIN_MALLOC);
    return p;
}

HOOK void *cg_h_valloc(size_t n) {
    if (LIKELY(take_fast(n))) return nx.valloc(n);
    return valloc_slow(n);
}

__attribute__((noinline)) static void *pvalloc_slow(size_t n) {
    void *p = nx.pvalloc(n);
    if (take_slow(&t_n, n)) sample(p, n, CG_DOMAIN_MALLOC);
    return p;
}

HOOK void *cg_h_pvalloc(size_t n) {
    if (LIKELY(take_fast(n))) return nx.pvalloc(n);
    return pvalloc_slow(n);
}

/* ---- mmap (CG_DOMAIN_MMAP): anonymous, writable mappings only ---- */

static inline int counts_as_memory(int prot, int flags) {
    return (flags & MAP_ANONYMOUS) && (prot & PROT_WRITE);
}

HOOK void *cg_h_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    void *p = nx.mmap(addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED || !counts_as_memory(prot, flags)) return p;
    if ((flags & MAP_FIXED) && p != NULL) forget(p); /* replaced whatever was there */
    if (LIKELY(!take(len))) return p;
    sample(p, len, CG_DOMAIN_MMAP);
    return p;
}

HOOK void *cg_h_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    void *p = nx.mmap64(addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED || !counts_as_memory(prot, flags)) return p;
    if ((flags & MAP_FIXED) && p != NULL) forget(p);
    if (LIKELY(!take(len))) return p;
    sample(p, len, CG_DOMAIN_MMAP);
    return p;
}

/* A sampled mapping is keyed by its start: unmapping any part that starts there
 * forgets the sample (partial unmaps elsewhere are not followed). */
HOOK int cg_h_munmap(void *addr, size_t len) {
    forget(addr);
    return nx.munmap(addr, len);
}

HOOK void *cg_h_mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    void *target = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        target = va_arg(ap, void *);
        va_end(ap);
    }
    int64_t idx = -1;
    if (old != NULL && UNLIKELY(cg_maybe_tracked(old)) && g_on) idx = cg_untrack(old);
    void *p = (flags & MREMAP_FIXED) ? nx.mremap(old, old_len, new_len, flags, target)
                                     : nx.mremap(old, old_len, new_len, flags);
    if (p == MAP_FAILED) {
        if (idx >= 0) cg_retrack(idx, old);
        return p;
    }
    /* only mappings we already followed: we cannot tell an anonymous one otherwise */
    if (idx >= 0 && !cg_t_busy) sample(p, new_len, CG_DOMAIN_MMAP);
    return p;
}

/* ---- Arrow's mimalloc pool (CG_DOMAIN_POOL) ---- */

__attribute__((noinline)) static void *arrow_mi_malloc_aligned_slow(size_t n, size_t align) {
    void *p = POOL_FN(16, void *(*)(size_t, size_t))(n, align);
    if (take_slow(&t_n, n)) sample(p, n, CG_DOMAIN_POOL);
    return p;
}

HOOK void *cg_h_arrow_mi_malloc_aligned(size_t n, size_t align) {
    if (LIKELY(take_fast(n))) return POOL_FN(16, void *(*)(size_t, size_t))(n, align);
    return arrow_mi_malloc_aligned_slow(n, align);
}

static void *call_arrow_realloc(void *old, size_t n, size_t align) {
    return POOL_FN(17, void *(*)(void *, size_t, size_t))(old, n, align);
}

HOOK void *cg_h_arrow_mi_realloc_aligned(void *old, size_t n, size_t align) {
    return realloc_common(old, n, call_arrow_realloc, n, align, CG_DOMAIN_POOL);
}

HOOK void cg_h_arrow_mi_free(void *p) {
    forget(p);
    POOL_FN(18, void (*)(void *))(p);
}

/* ---- jemalloc linked into a library (CG_DOMAIN_POOL), through its hooks ---- */

/* jemalloc 5.x experimental hooks (include/jemalloc/internal/hook.h) */
enum { JE_MALLOC, JE_POSIX_MEMALIGN, JE_ALIGNED_ALLOC, JE_CALLOC, JE_MEMALIGN, JE_VALLOC, JE_MALLOCX, JE_REALLOC, JE_RALLOCX };
typedef struct {
    void (*alloc_hook)(void *extra, int type, void *result, uintptr_t result_raw, uintptr_t args[3]);
    void (*dalloc_hook)(void *extra, int type, void *address, uintptr_t args[3]);
    void (*expand_hook)(void *extra, int type, void *address, size_t old_usize, size_t new_usize, uintptr_t result_raw,
                        uintptr_t args[4]);
    void *extra;
} je_hooks_t;
typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static void je_alloc(void *extra, int type, void *result, uintptr_t result_raw, uintptr_t args[3]) {
    size_t n;
    switch (type) {
    case JE_MALLOC: case JE_VALLOC: case JE_MALLOCX: n = args[0]; break;
    case JE_POSIX_MEMALIGN: if (result_raw != 0) return; n = args[2]; break;
    case JE_ALIGNED_ALLOC: case JE_MEMALIGN: case JE_REALLOC: case JE_RALLOCX: n = args[1]; break;
    case JE_CALLOC: n = args[0] * args[1]; break;
    default: return;
    }
    if (result == NULL || LIKELY(!take(n))) return;
    sample(result, n, CG_DOMAIN_POOL);
}

static void je_dalloc(void *extra, int type, void *address, uintptr_t args[3]) { forget(address); }

/* In-place resize: the block is now new_usize bytes (counted like a fresh block). */
static void je_expand(void *extra, int type, void *address, size_t old_usize, size_t new_usize, uintptr_t result_raw,
                      uintptr_t args[4]) {
    if (old_usize == new_usize || address == NULL) return;
    forget(address);
    if (LIKELY(!take(new_usize))) return;
    sample(address, new_usize, CG_DOMAIN_POOL);
}

#define MAX_POOLS 16
typedef struct {
    char path[256];
    uintptr_t base;
    uint16_t lib;
    int kind;    /* 0 jemalloc, 1 mimalloc */
    int hooked;  /* jemalloc: our hooks are installed (for good); mimalloc: its entry points are patched */
    int err;     /* why not: -1 not initialised, -2 not jemalloc 5, else mallctl's error */
    mallctl_fn mallctl;
    uintptr_t init_state; /* offset of malloc_init_state, 0 = unknown */
    je_hooks_t hooks; /* jemalloc keeps a copy; ours stays for its lifetime anyway */
} pool_t;
static pool_t g_pools[MAX_POOLS];
static int g_npools = 0;

/* Per-path cache of what the file's symbol tables say (scanning is done once). */
#define MAX_SCANNED 512
typedef struct {
    char path[256];
    uintptr_t mallctl;    /* offset, 0 = none */
    uintptr_t init_state; /* offset of jemalloc's malloc_init_state, 0 = unknown */
} scan_t;
static scan_t g_scanned[MAX_SCANNED];
static int g_nscanned = 0;

static const scan_t *scan_object(const char *path) {
    for (int i = 0; i < g_nscanned; i++)
        if (strcmp(g_scanned[i].path, path) == 0) return &g_scanned[i];
    if (g_nscanned == MAX_SCANNED) return NULL;
    scan_t *s = &g_scanned[g_nscanned++];
    memset(s, 0, sizeof *s);
    strncpy(s->path, path, sizeof s->path - 1);
    s->mallctl = cg_elf_find_symbol_suffix(path, "mallctl", NULL, 0);
    if (s->mallctl) s->init_state = cg_elf_find_symbol_suffix(path, "malloc_init_state", NULL, 0);
    return s;
}

static pool_t *pool_for(const char *path, uintptr_t base, int kind) {
    for (int i = 0; i < g_npools; i++)
        if (g_pools[i].base == base && g_pools[i].kind == kind && strcmp(g_pools[i].path, path) == 0) return &g_pools[i];
    if (g_npools == MAX_POOLS) return NULL;
    pool_t *p = &g_pools[g_npools++];
    memset(p, 0, sizeof *p);
    strncpy(p->path, path, sizeof p->path - 1);
    p->base = base;
    p->kind = kind;
    return p;
}

/* Does the object's dynamic string table name `word` (e.g. madvise: allocators
 * purge with it, so only such objects are worth a look for a jemalloc inside)? */
static int mentions(const cg_object_t *o, const char *word) {
    const char *strtab = o->dynstr;
    size_t strsz = o->dynstrsz, wl = strlen(word);
    if (strtab == NULL || strsz == 0) return 0;
    for (const char *p = strtab; (size_t)(p - strtab) < strsz;) {
        p = memmem(p, strsz - (size_t)(p - strtab), word, wl + 1);
        if (p == NULL) break;
        if (p == strtab || p[-1] == 0) return 1;
        p += wl;
    }
    return 0;
}

/* 1 when the jemalloc of a pool has been initialised (or we cannot tell): calling
 * mallctl on a jemalloc nobody uses would start it. */
static int je_initialised(const pool_t *p) {
    if (p->init_state == 0) return 1;
    return *(volatile int *)(p->base + p->init_state) == 0; /* 0 = initialised */
}

/* Install our hooks in a known jemalloc pool; 1 when they are on. */
static int install_je(pool_t *p) {
    if (p->hooked) return 1;
    if (!je_initialised(p)) {
        p->err = -1;
        return 0;
    }
    const char *version = NULL;
    size_t sz = sizeof version;
    if (p->mallctl("version", &version, &sz, NULL, 0) != 0 || version == NULL || version[0] != '5') {
        p->err = -2;
        return 0;
    }
    p->hooks.alloc_hook = je_alloc;
    p->hooks.dalloc_hook = je_dalloc;
    p->hooks.expand_hook = je_expand;
    p->hooks.extra = NULL;
    void *handle = NULL;
    sz = sizeof handle;
    int r = p->mallctl("experimental.hooks.install", &handle, &sz, &p->hooks, sizeof p->hooks);
    if (r != 0 || handle == NULL) {
        p->err = r ? r : -3;
        return 0;
    }
    p->hooked = 1;
    p->err = 0;
    return 1;
}

/* Try to hook the jemalloc inside an object; 1 when its data-level hooks are on. */
static int hook_jemalloc(const cg_object_t *o) {
    if (!mentions(o, "madvise")) return 0;
    const scan_t *s = scan_object(o->path);
    if (s == NULL || s->mallctl == 0) return 0;
    pool_t *p = pool_for(o->path, o->base, 0);
    if (p == NULL) return 0;
    p->lib = o->id;
    p->mallctl = (mallctl_fn)(o->base + s->mallctl);
    p->init_state = s->init_state;
    return install_je(p);
}

/* jemalloc's hooks, once installed, stay for the life of the process (ours do nothing
 * while no session runs). Installing or removing one makes jemalloc walk every thread's
 * data (tsd_force_recompute); doing that at each session's start and stop while the
 * library's threads came and went corrupted the list it walks in DuckDB's jemalloc 5.3:
 * SIGSEGV in tsd_cleanup or hook_install within about 150 cycles
 * (benchmarks/soak_native.py --duckdb-threads). Mimalloc's entry points are slots: they
 * follow the other slots. */
static void unhook_pools(void) {
    for (int i = 0; i < g_npools; i++)
        if (g_pools[i].kind == 1) g_pools[i].hooked = 0;
}

/* After cg_native_stop(1): the objects are still patched. Returns -1 when a jemalloc
 * that was not initialised when its object was patched is now (its mmap slots are
 * patched: patch that object anew, this time through its hooks). */
static int rehook_kept_pools(void) {
    for (int i = 0; i < g_npools; i++) {
        pool_t *p = &g_pools[i];
        if (p->kind == 1) p->hooked = 1; /* its entry points stay patched */
        if (p->kind != 0 || p->mallctl == NULL) continue;
        if (p->err == -1 && je_initialised(p)) return -1;
    }
    return 0;
}

/* ---- dlopen / dlclose (CG_GROUP_DL) ---- */

/* glibc's dlopen searches the caller's RUNPATH; when we are the caller, find the
 * library the way the real caller would have. */
static void *dlopen_as(const char *file, int flags, const void *caller) {
    Dl_info info;
    if (dladdr(caller, &info) == 0 || info.dli_fname == NULL) return NULL;
    void *already = nx.dlopen(file, flags | RTLD_NOLOAD);
    if (already != NULL) return already;
    void *self = nx.dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (self == NULL) return NULL;
    void *h = NULL;
    Dl_serinfo size;
    if (dlinfo(self, RTLD_DI_SERINFOSIZE, &size) == 0 && size.dls_size > 0) {
        Dl_serinfo *paths = nx.malloc(size.dls_size);
        if (paths != NULL) {
            *paths = size;
            if (dlinfo(self, RTLD_DI_SERINFO, paths) == 0) {
                char buf[4096];
                for (unsigned i = 0; i < paths->dls_cnt && h == NULL; i++) {
                    const char *dir = paths->dls_serpath[i].dls_name;
                    if (dir == NULL || dir[0] == 0) continue;
                    int w = snprintf(buf, sizeof buf, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", file);
                    if (w <= 0 || (size_t)w >= sizeof buf || access(buf, F_OK) != 0) continue;
                    h = nx.dlopen(buf, flags);
                }
            }
            nx.free(paths);
        }
    }
    nx.dlclose(self);
    return h;
}

static void patch_new_libraries(void) {
    if (!g_on) return;
    if (!cg_elf_trylock()) { /* someone is patching: they or the next poll will see it */
        g_pending = 1;
        __atomic_fetch_add(&g_pending_count, 1, __ATOMIC_RELAXED);
        return;
    }
    int busy = set_busy(1);
    g_pending = 0;
    if (cg_elf_patch_all() > 0) __atomic_fetch_add(&g_dlopens, 1, __ATOMIC_RELAXED);
    set_busy(busy);
    cg_elf_unlock();
}

HOOK void *cg_h_dlopen(const char *file, int flags) {
    void *h = NULL;
    if (file != NULL && file[0] != 0 && strchr(file, '/') == NULL)
        h = dlopen_as(file, flags, __builtin_extract_return_addr(__builtin_return_address(0)));
    if (h == NULL) h = nx.dlopen(file, flags);
    if (h != NULL && !(flags & RTLD_NOLOAD) && g_on) patch_new_libraries();
    return h;
}

HOOK int cg_h_dlclose(void *h) {
    int r = nx.dlclose(h);
    if (r == 0 && !cg_elf_forget_unloaded()) g_pending = 1;
    return r;
}

/* ---- PyEval_SaveThread (CG_GROUP_GIL) ---- */

/* An extension is about to release the GIL: the statement that called it is what
 * its worker threads (and its own code without the GIL) work for. Announced only
 * from the session's thread (attribution.c), with the GIL still held. */
HOOK void *cg_h_PyEval_SaveThread(void) {
    if (g_on && !cg_t_busy) cg_announce_releasing();
    return nx.save_thread();
}

/* ---- the symbol table and the per-object policy ---- */

#define SYM(i, name, grp) {#name, (void *)cg_h_##name, &g_target[i], grp}
static const cg_patch_sym_t g_syms[] = {
    SYM(0, malloc, CG_GROUP_ALLOC),
    SYM(1, calloc, CG_GROUP_ALLOC),
    SYM(2, realloc, CG_GROUP_ALLOC),
    SYM(3, reallocarray, CG_GROUP_ALLOC),
    SYM(4, free, CG_GROUP_ALLOC),
    SYM(5, posix_memalign, CG_GROUP_ALLOC),
    SYM(6, aligned_alloc, CG_GROUP_ALLOC),
    SYM(7, memalign, CG_GROUP_ALLOC),
    SYM(8, valloc, CG_GROUP_ALLOC),
    SYM(9, pvalloc, CG_GROUP_ALLOC),
    SYM(10, mmap, CG_GROUP_MMAP),
    SYM(11, mmap64, CG_GROUP_MMAP),
    SYM(12, munmap, CG_GROUP_MMAP),
    SYM(13, mremap, CG_GROUP_MMAP),
    SYM(14, dlopen, CG_GROUP_DL),
    SYM(15, dlclose, CG_GROUP_DL),
    SYM(16, arrow_mi_malloc_aligned, CG_GROUP_POOL),
    SYM(17, arrow_mi_realloc_aligned, CG_GROUP_POOL),
    SYM(18, arrow_mi_free, CG_GROUP_POOL),
    SYM(19, PyEval_SaveThread, CG_GROUP_GIL),
};
#define NSYMS (sizeof g_syms / sizeof g_syms[0])

static int contains(const cg_object_t *o, const void *addr) {
    return addr != NULL && (uintptr_t)addr >= o->lo && (uintptr_t)addr < o->hi;
}

/* Directory of the profiler's own extensions (none of them is patched). */
static char g_self_dir[256] = "";

static int is_profiler(const cg_object_t *o) {
    size_t n = strlen(g_self_dir);
    return contains(o, (const void *)is_profiler) ||
           (n > 0 && strncmp(o->path, g_self_dir, n) == 0 && strchr(o->path + n, '/') == NULL);
}

static void policy(cg_object_t *o, void *arg) {
    (void)arg;
    const char *path = o->path;
    if (strstr(path, "linux-vdso") || strstr(path, "/ld-linux") || strstr(path, "/ld-musl") || is_profiler(o) ||
        contains(o, (const void *)nx.malloc) ||    /* the malloc provider (libc, or a preloaded allocator) */
        contains(o, (const void *)nx.mmap) ||      /* libc */
        contains(o, (const void *)nx.dlopen)) {
        o->groups = 0;
        return;
    }
    if (contains(o, g_interp_addr)) { /* pymalloc and obmalloc: the PyMem hooks see them;
                                         * its own GIL releases are not an extension's */
        o->groups = CG_GROUP_DL;
        return;
    }
    if (o->defines_pool) {
        pool_t *p = pool_for(path, o->base, 1);
        if (p != NULL) {
            p->lib = o->id;
            p->hooked = 1;
        }
        o->groups &= ~(unsigned)CG_GROUP_MMAP;
    }
    if (hook_jemalloc(o)) o->groups &= ~(unsigned)CG_GROUP_MMAP;
}

/* ---- life cycle ---- */

static void *resolve(const char *name) {
    void *p = dlsym(RTLD_DEFAULT, name);
    return p;
}

static void at_fork_prepare(void) { cg_elf_atfork_prepare(); }
static void at_fork_parent(void) { cg_elf_atfork_parent(); }
static void at_fork_child(void) {
    cg_elf_atfork_child();
    g_on = 0;
    g_gen++;
}

int cg_native_setup(const void *interpreter_address) {
    if (g_setup) return 0;
#define R(f)                                                                   \
    do {                                                                       \
        *(void **)&nx.f = resolve(#f);                                         \
    } while (0)
    R(malloc); R(calloc); R(realloc); R(reallocarray); R(free); R(posix_memalign); R(aligned_alloc);
    R(memalign); R(valloc); R(pvalloc); R(mmap); R(mmap64); R(munmap); R(mremap); R(dlopen); R(dlclose);
#undef R
    nx.save_thread = (void *(*)(void))(void *)PyEval_SaveThread;
    if (!nx.malloc || !nx.free || !nx.realloc || !nx.calloc || !nx.mmap || !nx.munmap || !nx.dlopen || !nx.dlclose) {
        snprintf(g_error, sizeof g_error, "the C library's allocation functions could not be resolved");
        return -1;
    }
    g_target[0] = (void *)nx.malloc;
    g_target[1] = (void *)nx.calloc;
    g_target[2] = (void *)nx.realloc;
    g_target[3] = (void *)nx.reallocarray;
    g_target[4] = (void *)nx.free;
    g_target[5] = (void *)nx.posix_memalign;
    g_target[6] = (void *)nx.aligned_alloc;
    g_target[7] = (void *)nx.memalign;
    g_target[8] = (void *)nx.valloc;
    g_target[9] = (void *)nx.pvalloc;
    g_target[10] = (void *)nx.mmap;
    g_target[11] = (void *)nx.mmap64;
    g_target[12] = (void *)nx.munmap;
    g_target[13] = (void *)nx.mremap;
    g_target[14] = (void *)nx.dlopen;
    g_target[15] = (void *)nx.dlclose;
    g_target[19] = (void *)nx.save_thread;
    g_interp_addr = interpreter_address;
    Dl_info self;
    if (dladdr((const void *)is_profiler, &self) && self.dli_fname) {
        const char *slash = strrchr(self.dli_fname, '/');
        size_t n = slash ? (size_t)(slash - self.dli_fname) + 1 : 0;
        if (n < sizeof g_self_dir) {
            memcpy(g_self_dir, self.dli_fname, n);
            g_self_dir[n] = 0;
        }
    }
    g_seed ^= now_ns() ^ ((uint64_t)getpid() << 32);
    cg_elf_init(g_syms, NSYMS, policy, NULL);
    pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
    g_setup = 1;
    return 0;
}

const char *cg_native_error(void) { return g_error; }

long cg_native_start(void) {
    if (!g_setup) return -1;
    int busy = set_busy(1);
    cg_elf_lock();
    long n;
    if (g_on) { /* already running: follow new libraries, take back slots we lost */
        n = cg_elf_patch_all() + cg_elf_repair();
        cg_elf_unlock();
        set_busy(busy);
        return n;
    }
    if (g_kept && rehook_kept_pools() < 0) {
        /* a jemalloc started since its object was patched: patch everything anew */
        cg_elf_unpatch_all();
        unhook_pools();
        g_kept = 0;
    }
    int was_kept = g_kept;
    g_kept = 0;
    /* Hooks must forward correctly before any slot points at them. Pool targets are
     * learned while patching: the pre-pass fills them before the first write. */
    g_on = 1;
    g_gen++;
    n = cg_elf_patch_all();
    if (was_kept) n += cg_elf_repair(); /* slots another tool restored meanwhile */
    g_pending = 0;
    cg_elf_unlock();
    set_busy(busy);
    return n;
}

void cg_native_stop(int keep) {
    if (!g_setup) return;
    int busy = set_busy(1);
    cg_elf_lock();
    g_on = 0;
    g_gen++;
    if (!keep) cg_elf_unpatch_all();
    unhook_pools();
    g_kept = keep && cg_elf_patched_slots() > 0;
    cg_elf_unlock();
    set_busy(busy);
}

int cg_native_running(void) { return g_on; }

void cg_native_interval_changed(void) { g_gen++; }

void cg_native_seed(uint64_t seed) {
    g_seed = seed ? seed : 1;
    t_n.rng = 0;
    g_gen++;
}

void cg_native_poll(void) {
    if (g_on && g_pending) patch_new_libraries();
}

void cg_native_after_fork_child(void) {
    g_on = 0;
    g_kept = 0;
    g_gen++;
    if (!g_setup) return;
    cg_elf_unpatch_all();
    unhook_pools();
}

size_t cg_native_pools(cg_pool_info_t *out, size_t n) {
    size_t w = 0;
    cg_elf_lock();
    for (int i = 0; i < g_npools && w < n; i++) {
        pool_t *p = &g_pools[i];
        memcpy(out[w].path, p->path, sizeof out[w].path);
        snprintf(out[w].kind, sizeof out[w].kind, "%s", p->kind == 0 ? "jemalloc" : "mimalloc");
        if (p->hooked) snprintf(out[w].state, sizeof out[w].state, g_on ? "hooked" : "hooked (idle)");
        else if (p->err == -1) snprintf(out[w].state, sizeof out[w].state, "not initialised");
        else if (p->err == -2) snprintf(out[w].state, sizeof out[w].state, "not jemalloc 5");
        else if (p->err) snprintf(out[w].state, sizeof out[w].state, "hooks unsupported (error %d)", p->err);
        else snprintf(out[w].state, sizeof out[w].state, "off");
        w++;
    }
    cg_elf_unlock();
    return w;
}

void cg_native_counters(cg_native_counters_t *out) {
    memset(out, 0, sizeof *out);
    for (int d = 0; d < 3; d++) out->samples[d] = __atomic_load_n(&g_samples[d], __ATOMIC_RELAXED);
    out->dlopens = g_dlopens;
    out->pending = g_pending_count;
    out->slots = cg_elf_patched_slots();
}

#else /* not ELF: nothing is patched */

int cg_native_setup(const void *interpreter_address) { return -1; }
const char *cg_native_error(void) {
    return "native allocations are followed on Linux (ELF relocation patching) only";
}
long cg_native_start(void) { return -1; }
void cg_native_stop(int keep) {}
int cg_native_running(void) { return 0; }
void cg_native_interval_changed(void) {}
void cg_native_seed(uint64_t seed) {}
void cg_native_poll(void) {}
void cg_native_after_fork_child(void) {}
size_t cg_native_pools(cg_pool_info_t *out, size_t n) { return 0; }
void cg_native_counters(cg_native_counters_t *out) { memset(out, 0, sizeof *out); }

#endif
