/*
 * stacks.c -- the stack table: each distinct captured stack is stored once and
 * named by an id; samples carry the id. Frames are (code object, offset) pairs:
 * line numbers are resolved only when a stack is read (module.c), never in a hook.
 * Protected by the GIL of the main interpreter (see sampler.h).
 */
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    uint32_t off;
    uint32_t n;
} stack_t_;

static cg_frame_t *g_frames = NULL;
static size_t g_nframes = 0, g_cap_frames = 0;
static stack_t_ *g_stacks = NULL;
static size_t g_nstacks = 0, g_cap_stacks = 0;
static uint32_t *g_stack_index = NULL; /* open addressing of stack ids + 1 */
static size_t g_stack_index_cap = 0;

static uint64_t frames_hash(const cg_frame_t *f, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        h = (h ^ (uint64_t)(uintptr_t)f[i].code) * 1099511628211ull;
        h = (h ^ (uint64_t)(uint32_t)f[i].lasti) * 1099511628211ull;
    }
    return h ^ (uint64_t)n;
}

static int stack_index_grow(void) {
    size_t cap = g_stack_index_cap ? g_stack_index_cap * 2 : 1024;
    uint32_t *idx = calloc(cap, sizeof(uint32_t));
    if (idx == NULL) return -1;
    for (size_t s = 0; s < g_nstacks; s++) {
        size_t i = (size_t)g_stacks[s].hash & (cap - 1);
        while (idx[i]) i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)s + 1;
    }
    free(g_stack_index);
    g_stack_index = idx;
    g_stack_index_cap = cap;
    return 0;
}

static uint32_t intern_stack(const cg_frame_t *f, int n) {
    uint64_t h = frames_hash(f, n);
    if ((g_nstacks + 1) * 2 > g_stack_index_cap && stack_index_grow() < 0) return CG_NO_STACK;
    size_t mask = g_stack_index_cap - 1, i = (size_t)h & mask;
    while (g_stack_index[i]) {
        stack_t_ *st = &g_stacks[g_stack_index[i] - 1];
        if (st->hash == h && st->n == (uint32_t)n && memcmp(&g_frames[st->off], f, n * sizeof(cg_frame_t)) == 0)
            return g_stack_index[i] - 1;
        i = (i + 1) & mask;
    }
    if (g_nstacks == g_cap_stacks) {
        size_t cap = g_cap_stacks ? g_cap_stacks * 2 : 1024;
        stack_t_ *s = realloc(g_stacks, cap * sizeof(stack_t_));
        if (s == NULL) return CG_NO_STACK;
        g_stacks = s;
        g_cap_stacks = cap;
    }
    if (g_nframes + (size_t)n > g_cap_frames) {
        size_t cap = g_cap_frames ? g_cap_frames * 2 : 8192;
        while (cap < g_nframes + (size_t)n) cap *= 2;
        cg_frame_t *fr = realloc(g_frames, cap * sizeof(cg_frame_t));
        if (fr == NULL) return CG_NO_STACK;
        g_frames = fr;
        g_cap_frames = cap;
    }
    memcpy(&g_frames[g_nframes], f, n * sizeof(cg_frame_t));
    for (int k = 0; k < n; k++) Py_INCREF(f[k].code);
    g_stacks[g_nstacks].hash = h;
    g_stacks[g_nstacks].off = (uint32_t)g_nframes;
    g_stacks[g_nstacks].n = (uint32_t)n;
    g_nframes += n;
    g_stack_index[i] = (uint32_t)g_nstacks + 1;
    return (uint32_t)g_nstacks++;
}

/* Capture the calling thread's Python stack; the caller holds the GIL, tstate is
 * its own, and cg_t_busy is set. Threads of other interpreters (which may run
 * under their own GIL from 3.12) get no stack: the table is the main GIL's. */
uint32_t cg_capture_stack(PyThreadState *tstate) {
    cg_frame_t buf[CG_MAX_DEPTH];
    if (tstate == NULL || cg_is_finalizing() || PyThreadState_GetInterpreter(tstate) != PyInterpreterState_Main())
        return CG_NO_STACK;
    int n = cg_walk_stack(tstate, buf, cg_depth);
    if (n == 0) return CG_NO_STACK;
    return intern_stack(buf, n);
}

uint32_t cg_capture_frame_stack(PyFrameObject *frame) {
    cg_frame_t buf[CG_MAX_DEPTH];
    if (frame == NULL || cg_is_finalizing()) return CG_NO_STACK;
    Py_INCREF(frame); /* cg_walk_frames consumes a reference */
    int n = cg_walk_frames(frame, buf, cg_depth);
    if (n == 0) return CG_NO_STACK;
    return intern_stack(buf, n);
}

const cg_frame_t *cg_stack_frames(uint32_t id, uint32_t *n) {
    if ((size_t)id >= g_nstacks) return NULL;
    *n = g_stacks[id].n;
    return &g_frames[g_stacks[id].off];
}

size_t cg_stacks_count(void) { return g_nstacks; }

size_t cg_stacks_memory(void) {
    return g_cap_frames * sizeof(cg_frame_t) + g_cap_stacks * sizeof(stack_t_) + g_stack_index_cap * sizeof(uint32_t);
}

void cg_stacks_clear(void) {
    cg_frame_t *frames = g_frames;
    size_t nframes = g_nframes;
    free(g_stacks);
    free(g_stack_index);
    g_frames = NULL;
    g_stacks = NULL;
    g_stack_index = NULL;
    g_nframes = g_cap_frames = g_nstacks = g_cap_stacks = g_stack_index_cap = 0;
    int busy = cg_t_busy;
    cg_t_busy = 1;
    for (size_t k = 0; k < nframes; k++) Py_DECREF(frames[k].code);
    cg_t_busy = busy;
    free(frames);
}
