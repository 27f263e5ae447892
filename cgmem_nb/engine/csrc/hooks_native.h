/*
 * hooks_native.h -- a hook source: the C allocation family, mmap and library
 * pools, for every loaded object, sampled by bytes like the Python hooks.
 *
 * Domains of its samples (sampler.h):
 *  - CG_DOMAIN_MALLOC: malloc, calloc, realloc, reallocarray, posix_memalign,
 *    aligned_alloc, memalign, valloc, pvalloc and free, through each object's
 *    relocation slots (see elf_patch.h). The interpreter's own object is not
 *    patched for these: its malloc serves pymalloc, whose blocks the PyMem hooks
 *    already sample.
 *  - CG_DOMAIN_MMAP: anonymous, writable mmap/munmap/mremap from objects whose
 *    allocator we do not see at the data level. Not patched in the interpreter
 *    (obmalloc's arenas hold objects the PyMem hooks see), in libc or in the
 *    object that provides malloc (its arenas hold the malloc'ed blocks).
 *  - CG_DOMAIN_POOL: allocators inside a library, seen at the data level:
 *    jemalloc copies linked into a library (Polars, Arrow, DuckDB) through
 *    jemalloc's own allocation hooks ("experimental.hooks.install", reached via
 *    the library's mallctl found in its symbol tables), and Arrow's mimalloc pool
 *    through its exported entry points (arrow_mi_malloc_aligned, ...), which
 *    libarrow calls through its PLT. Such a library's mmap slots are not patched:
 *    its arenas are the mapping, not the data.
 *
 * Sampling: one exponential countdown per thread, of the core's mean interval;
 * the fast path is a thread-local decrement and a tail call. A crossed countdown
 * hands the block to cg_sample_any() (attribution.c), on whatever thread.
 *
 * Safety: hooks run on any thread, with or without the GIL, never call Python
 * (cg_sample_any walks the stack only on a thread that holds the GIL, as the
 * PyMem hooks do), never allocate through a patched slot (the profiler's own
 * object is never patched), and respect the core's re-entrancy guard cg_t_busy,
 * which every hook family shares.
 *
 * Linux (ELF) only; elsewhere cg_native_setup() fails with a reason.
 */
#ifndef CGMEM_HOOKS_NATIVE_H
#define CGMEM_HOOKS_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* Once per process: resolve the real functions, remember which object is the
 * interpreter (one of its addresses). Returns 0, or -1 with a reason in
 * cg_native_error(). */
int cg_native_setup(const void *interpreter_address);
const char *cg_native_error(void);

/* Start sampling native allocations at the core's mean interval: patch every
 * loaded object (those already patched are kept), install pool hooks. Returns
 * the number of slots written (>= 0) or -1. While running, it follows new
 * libraries and takes back slots another tool restored. */
long cg_native_start(void);
/* Stop sampling. keep = 0: restore every slot and remove pool hooks. keep = 1:
 * leave the slots patched (pass-throughs until the next start, which is then
 * cheap) and remove only the pool hooks. Hooks left in pointers that libraries
 * copied stay harmless pass-throughs. */
void cg_native_stop(int keep);
int cg_native_running(void);
/* The core's mean interval changed: every thread redraws its countdown. */
void cg_native_interval_changed(void);
void cg_native_seed(uint64_t seed);
/* Patch libraries loaded since the last look (e.g. while a dlopen hook could not
 * take the lock). Cheap when nothing changed. */
void cg_native_poll(void);

/* In a forked child: stop sampling and restore the slots (one thread now). */
void cg_native_after_fork_child(void);

/* Pools found in loaded libraries. */
typedef struct {
    char path[256];
    char kind[16];  /* "jemalloc", "mimalloc" */
    char state[48]; /* "hooked", "not initialised", "hooks unsupported (error N)", "off" */
} cg_pool_info_t;
size_t cg_native_pools(cg_pool_info_t *out, size_t n);

/* Counters for reports and tests. */
typedef struct {
    uint64_t samples[3]; /* samples taken: malloc, mmap, pool */
    uint64_t dlopens;    /* libraries patched after a dlopen */
    uint64_t pending;    /* dlopens whose patching was deferred */
    long slots;          /* relocation slots patched now */
} cg_native_counters_t;
void cg_native_counters(cg_native_counters_t *out);

#endif
