/*
 * sampler.h -- what the parts of cgmem_nb.engine._sampler share.
 *
 *   compat.h        everything that depends on the CPython version (stack walk)
 *   core.c          the sampling core: countdowns and weights, the sample store,
 *                   the pointer table and its membership filter
 *   stacks.c        the stack table: captured stacks, interned, code objects kept
 *   groups.c        samples summed by (stack, thread, tag) for a session's result
 *   hooks_pymem.c   a hook source: the PYMEM_DOMAIN_MEM and _OBJ allocators
 *   hooks_numpy.c   a hook source: numpy's default data-memory handler
 *   hooks_native.c  a hook source: the C heap, mmap and library pools of every
 *                   loaded object (elf_patch.c patches their relocation slots)
 *   attribution.c   who a sample is charged to when its thread cannot give its
 *                   own Python stack: the statement the session announced
 *   module.c        the Python module (the functions in _sampler.pyi)
 *
 * A hook source owns its countdown(s) and decides when an allocation crosses
 * one; it then calls cg_sample() (stack + record) or cg_record() (no stack), and
 * cg_untrack() on frees of pointers cg_maybe_tracked() admits. Every sample says
 * which domain it came from, so new hook sources add a domain and nothing else.
 *
 * Locking rules:
 *  - The PyMem MEM and OBJ hooks run with the GIL held; their countdown and the
 *    stack table are protected by the GIL (stacks are only captured for threads
 *    of the main interpreter, whose GIL that is).
 *  - Hooks that may run without the GIL (numpy) keep their countdown under
 *    cg_lock. Samples, the pointer table and the filter are always under
 *    cg_lock. Nothing that may call PyMem runs while cg_lock is held, and the
 *    GIL is never taken in a hook.
 *  - Code objects are INCREF'ed in a hook (GIL held, the frame owns a reference)
 *    and DECREF'ed only from module functions, after the stack table has been
 *    detached from the globals.
 *
 * All state lives in static memory or libc malloc, never PyMem.
 */
#ifndef CGMEM_SAMPLER_H
#define CGMEM_SAMPLER_H

#include "compat.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define CG_MAX_DEPTH 100
#define CG_NO_STACK UINT32_MAX
#define CG_LIKELY(x) __builtin_expect(!!(x), 1)
#define CG_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Where an allocation was made. Keep in step with DOMAIN_NAMES in module.c. */
enum {
    CG_DOMAIN_PYMEM = 0,
    CG_DOMAIN_PYOBJ = 1,
    CG_DOMAIN_NUMPY = 2,
    CG_DOMAIN_MALLOC = 3, /* the C heap, through relocation slots */
    CG_DOMAIN_MMAP = 4,   /* anonymous writable mappings */
    CG_DOMAIN_POOL = 5,   /* an allocator inside a library (jemalloc, Arrow's mimalloc) */
    CG_NDOMAINS = 6
};
/* A sample's domain byte also says how its stack was found (attribution.c):
 * domain | (via << CG_VIA_SHIFT). Keep in step with VIA_NAMES in module.c. */
#define CG_DOMAIN_MASK 0x3f
#define CG_VIA_SHIFT 6
enum {
    CG_VIA_OWN = 0,      /* the allocating thread's own Python stack (or none) */
    CG_VIA_RELEASED = 1, /* the announcing thread, without the GIL: the announced statement */
    CG_VIA_WORKER = 2    /* another thread with no readable Python stack: the announced statement */
};

/* One sampled allocation (64 bytes). */
typedef struct {
    uintptr_t ptr;
    uint64_t size;
    double weight;
    uint64_t tid; /* PyThread_get_thread_ident() == threading.get_ident() */
    uint64_t ts_ns; /* CLOCK_MONOTONIC */
    uint64_t seq;
    uint32_t stack; /* stack id, or CG_NO_STACK */
    uint16_t tag;
    uint8_t domain; /* CG_DOMAIN_* */
    uint8_t live;
    uint64_t died; /* the free clock when the block was freed (0 while live) */
} cg_sample_t;

/* ---- core.c ---- */

/* 1 while sampling; hooks stay installed (pass-through) when 0. */
extern volatile int cg_running;
/* Mean sampling interval in bytes. */
extern double cg_mean;
/* Frames kept per stack. */
extern int cg_depth;
extern pthread_mutex_t cg_lock;
/* This thread is inside the sampler (or asked to be left out): allocations pass through. */
extern __thread int cg_t_busy;
/* This thread's category tag (index into the module's tag names; 0 = None). */
extern __thread uint16_t cg_t_tag;

/* An exponential draw of mean cg_mean from a generator state owned by the caller. */
int64_t cg_draw(uint64_t *rng);
uint64_t cg_now_ns(void);
/* Record an allocation that crossed a countdown (takes cg_lock). */
void cg_record(uintptr_t ptr, size_t size, int domain, uint32_t stack, uint16_t tag);
/* Capture the caller's stack if tstate is given (GIL held), then record. */
void cg_sample(void *p, size_t size, int domain, PyThreadState *tstate);
/* Forget a freed pointer; returns its sample index or -1 (takes cg_lock). */
int64_t cg_untrack(const void *p);
/* Undo cg_untrack() after a failed realloc (the block is still alive). */
void cg_retrack(int64_t idx, const void *p);

/* Membership filter in front of the pointer table: a lock-free "maybe". */
typedef struct {
    unsigned shift; /* 64 - log2(size) */
    unsigned size;  /* counters */
    uint8_t *counts;
} cg_filter_t;
extern cg_filter_t *volatile cg_filter;

static inline uint32_t cg_filter_hash(const cg_filter_t *f, uintptr_t p) {
    return (uint32_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull) >> f->shift);
}

/* 0 when p is certainly not a live sample; 1 when it may be. */
static inline int cg_maybe_tracked(const void *p) {
    const cg_filter_t *f = __atomic_load_n(&cg_filter, __ATOMIC_ACQUIRE);
    return f->counts[cg_filter_hash(f, (uintptr_t)p)] != 0;
}

void cg_core_init(void);
/* Discard every sample (cg_lock taken here). */
void cg_core_clear(void);
void cg_core_after_fork_child(void);

/* Copies for the module (under cg_lock inside). */
typedef struct {
    size_t samples, freed_samples, memory_bytes, freed_cap;
    uint64_t dropped, evicted_through_seq, next_seq, filter_passes, filter_hits, filter_counters;
} cg_core_stats_t;
void cg_core_stats(cg_core_stats_t *out);
/* Samples with seq >= since, copied into a malloc'ed array (caller frees). -1 on no memory. */
int cg_core_samples_since(uint64_t since, cg_sample_t **out, size_t *n);
uint64_t cg_core_next_seq(void);
void cg_core_live(double *live, double *peak);
void cg_core_reset_peak(void);
int cg_core_set_freed_cap(size_t cap);
/* The samples with seq >= since that were live at the high-water mark (malloc'ed copy,
 * caller frees; live = 1 in each), and the estimated live bytes then. -1 on no memory. */
int cg_core_peak_samples(uint64_t since, cg_sample_t **out, size_t *n, double *peak);

/* ---- groups.c ---- */

/* Samples summed by (stack, thread, tag, domain byte); counts are estimated blocks (weight / size). */
typedef struct {
    uint32_t stack;
    uint16_t tag;
    uint8_t domain; /* as in cg_sample_t: domain | via << CG_VIA_SHIFT */
    uint64_t tid;
    double live_weight, live_count, alloc_weight, alloc_count;
} cg_group_t;
/* Group n samples into a malloc'ed array (caller frees); -1 on no memory. */
int cg_group_samples(const cg_sample_t *samples, size_t n, cg_group_t **out, size_t *ngroups);

/* ---- stacks.c (GIL held) ---- */

uint32_t cg_capture_stack(PyThreadState *tstate);
/* The interned frames of a stack id; NULL if unknown. */
const cg_frame_t *cg_stack_frames(uint32_t id, uint32_t *n);
size_t cg_stacks_count(void);
size_t cg_stacks_memory(void);
/* Drop every stack and release the code objects (sampling must be off). */
void cg_stacks_clear(void);

/* ---- attribution.c ---- */

/* The calling thread's thread state if it holds the GIL, else NULL (any thread). */
PyThreadState *cg_gil_holder(void);
/* Record a crossed allocation from any thread: with the thread's own stack when it
 * holds the GIL, else charged to the announced statement (cg_t_busy is set here). */
void cg_sample_any(void *p, size_t size, int domain);
/* The statement the session runs now (GIL held; frame is a frame object): later
 * samples without a stack of their own are charged to it. 0, or -1 with an error. */
int cg_announce(PyObject *frame);
/* No statement runs (also when the stack table is cleared). */
void cg_announce_clear(void);
/* An extension releases the GIL (hooks_native.c; GIL held): when the calling thread
 * is the one that announced last, its current stack becomes the statement. */
void cg_announce_releasing(void);

/* ---- stacks.c: also ---- */

/* The stack of a frame object and its callers (GIL held, cg_t_busy set). */
uint32_t cg_capture_frame_stack(PyFrameObject *frame);

/* ---- hook sources ---- */

/* hooks_pymem.c (GIL held) */
extern int64_t cg_pymem_countdown;
extern uint64_t cg_pymem_rng;
void cg_pymem_install(void);
void cg_pymem_uninstall(void);
/* Whether an allocation of MEM (0) or OBJ (1) passes through our hook. */
int cg_pymem_in_chain(int which);

/* hooks_numpy.c */
extern int64_t cg_numpy_countdown; /* under cg_lock */
extern uint64_t cg_numpy_rng;      /* under cg_lock */
void cg_numpy_init(void);
PyObject *cg_numpy_hook(PyObject *api);
PyObject *cg_numpy_unhook(void);
int cg_numpy_hooked(void);

#endif /* CGMEM_SAMPLER_H */
