/*
 * Native allocation hooks: the C allocation family, mmap and library pools, for
 * every loaded object, sampled by bytes like the Python hooks.
 *
 * Sources of native samples (the "domain" of a sample):
 *  - CG_NATIVE_MALLOC: malloc, calloc, realloc, reallocarray, posix_memalign,
 *    aligned_alloc, memalign, valloc, pvalloc and free, through each object's
 *    relocation slots (see _elf_patch.h). The interpreter's own object is not
 *    patched for these: its malloc serves pymalloc, whose blocks the PyMem hooks
 *    already sample.
 *  - CG_NATIVE_MMAP: anonymous, writable mmap/munmap/mremap from objects whose
 *    allocator we do not see at the data level. Not patched in the interpreter
 *    (obmalloc's arenas hold objects the PyMem hooks see), in libc or in the
 *    object that provides malloc (its arenas hold the malloc'ed blocks).
 *  - CG_NATIVE_POOL: allocators inside a library, seen at the data level:
 *    jemalloc copies linked into a library (Polars, Arrow, DuckDB) through
 *    jemalloc's own allocation hooks ("experimental.hooks.install", reached via
 *    the library's mallctl found in its symbol tables), and Arrow's mimalloc pool
 *    through its exported entry points (arrow_mi_malloc_aligned, ...), which
 *    libarrow calls through its PLT. Such a library's mmap slots are not patched:
 *    its arenas are the mapping, not the data.
 *
 * Sampling: one exponential countdown per thread, of the same mean as the Python
 * hooks; the fast path is a thread-local decrement. A sample is handed to the
 * sink, which records it (and, if the thread holds the GIL, its Python stack).
 *
 * Safety: hooks run on any thread, with or without the GIL, never call Python,
 * never allocate through a patched slot (this object is never patched), and
 * have a thread-local re-entrancy guard shared with the other hook families.
 */
#ifndef CGMEM_NATIVE_HOOKS_H
#define CGMEM_NATIVE_HOOKS_H

#include <stddef.h>
#include <stdint.h>

enum { CG_NATIVE_MALLOC = 0, CG_NATIVE_MMAP = 1, CG_NATIVE_POOL = 2, CG_NATIVE_NDOMAINS = 3 };

/* Implemented by the sampling core. Every function may be called on any thread,
 * without the GIL, from inside an allocator. */
typedef struct {
    /* a sampled allocation of `size` bytes at `ptr`; `lib` is the object id of a pool */
    void (*record)(void *ptr, size_t size, int domain, uint16_t lib);
    /* lock-free: 0 when ptr is certainly not a live sample */
    int (*maybe_tracked)(const void *ptr);
    /* forget a sampled block; its sample index or -1 */
    int64_t (*untrack)(const void *ptr);
    /* undo untrack() after a failed realloc */
    void (*retrack)(int64_t idx, const void *ptr);
} cg_native_sink_t;

/* Once per process: resolve the real functions, remember the sink and which
 * object is the interpreter (one of its addresses). Returns 0, or -1 with a
 * reason in cg_native_error(). */
int cg_native_setup(const cg_native_sink_t *sink, const void *interpreter_address);
const char *cg_native_error(void);

/* Start sampling with this mean interval: patch every loaded object, install
 * pool hooks. Returns the number of slots patched (>= 0) or -1. */
long cg_native_start(double mean_bytes);
/* Stop: restore every slot and remove pool hooks. Hooks left in copied
 * pointers stay harmless pass-throughs. */
void cg_native_stop(void);
int cg_native_running(void);
void cg_native_set_mean(double mean_bytes);
void cg_native_seed(uint64_t seed);
/* Patch libraries loaded since the last look (e.g. while a dlopen hook could not
 * take the lock). Cheap when nothing changed. */
void cg_native_poll(void);

/* The thread-local guard: while set, the calling thread's allocations are not
 * sampled by any native hook. Returns the previous value. */
int cg_native_set_busy(int busy);
int cg_native_busy(void);

/* In a forked child: stop sampling and restore the slots (one thread now). */
void cg_native_after_fork_child(void);

/* Pools found in loaded libraries. */
typedef struct {
    char path[256];
    char kind[16];   /* "jemalloc", "mimalloc" */
    char state[48];  /* "hooked", "not initialised", "hooks unsupported (errno N)" */
    uint16_t lib;
} cg_pool_info_t;
size_t cg_native_pools(cg_pool_info_t *out, size_t n);

/* Counters for reports and tests. */
typedef struct {
    uint64_t samples[CG_NATIVE_NDOMAINS]; /* samples handed to the sink */
    uint64_t dlopens;                     /* libraries patched after a dlopen */
    uint64_t pending;                     /* dlopens whose patching was deferred */
} cg_native_counters_t;
void cg_native_counters(cg_native_counters_t *out);

#endif
