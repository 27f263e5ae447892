/*
 * compat.h -- everything in cgmem_nb's sampler that depends on the CPython version.
 *
 * The rest of the sampler uses only what this header provides. The supported
 * versions come from cgmem_nb/engine/versions.py (the one table): setup.py
 * passes its range as CG_MIN_HEX / CG_MAX_HEX and builds nothing elsewhere.
 *
 * The stack walk uses the public frame API only (PyThreadState_GetFrame,
 * PyFrame_GetBack, PyFrame_GetCode, PyFrame_GetLasti), at sample time only, so
 * it is correct by construction on versions this project cannot run (3.12,
 * 3.14): no interpreter struct is read. It may create frame objects inside an
 * allocation, so it
 *  - runs with the caller's re-entrancy guard set (t_busy in core.c), so the
 *    frame objects it allocates are never sampled themselves;
 *  - leaves the error indicator exactly as it found it (creating a frame object
 *    can fail, and PyThreadState_GetFrame clears errors on failure);
 *  - on 3.11 pauses the garbage collector around the walk: there a GC
 *    allocation can run a collection on the spot (finalizers, arbitrary Python
 *    code inside malloc); from 3.12 a collection is only scheduled, so the GC
 *    is left alone.
 * Decisions and measurements: benchmarks/RESULTS-versions.md.
 */
#ifndef CGMEM_COMPAT_H
#define CGMEM_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#ifndef CG_MIN_HEX
#define CG_MIN_HEX 0x030B0000 /* setup.py passes the range from versions.py */
#endif
#ifndef CG_MAX_HEX
#define CG_MAX_HEX 0x030F0000 /* first version NOT supported */
#endif
#if PY_VERSION_HEX < CG_MIN_HEX || PY_VERSION_HEX >= CG_MAX_HEX
#error "cgmem_nb's sampler does not support this CPython version (see cgmem_nb/engine/versions.py)"
#endif
#ifdef Py_GIL_DISABLED
#error "cgmem_nb's sampler needs the GIL; free-threaded builds are not supported (see docs: versions)"
#endif

#include <stdint.h>

/* One captured frame: a borrowed code object (the table INCREFs what it keeps)
 * and the offset of the current instruction in bytes (PyFrame_GetLasti). */
typedef struct {
    PyCodeObject *code;
    int64_t lasti; /* 64-bit: no padding, frames are compared with memcmp */
} cg_frame_t;

/* The calling thread's thread state, or NULL; never a fatal error. On 3.11 this
 * is the GIL holder (any thread), from 3.12 the thread's own attached state:
 * compare it with PyGILState_GetThisThreadState() to know "this thread holds it". */
static inline PyThreadState *cg_tstate_unchecked(void) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

static inline int cg_is_finalizing(void) {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* ---- the error indicator, saved and restored without allocating ---- */

typedef struct {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc;
#else
    PyObject *type, *value, *tb;
#endif
} cg_err_t;

static inline void cg_err_save(cg_err_t *e) {
#if PY_VERSION_HEX >= 0x030C0000
    e->exc = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&e->type, &e->value, &e->tb);
#endif
}

/* Drops any error raised since cg_err_save and puts the saved one back. */
static inline void cg_err_restore(cg_err_t *e) {
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(e->exc); /* replaces (and releases) anything newer */
#else
    PyErr_Restore(e->type, e->value, e->tb);
#endif
}

/* ---- the garbage collector around the walk ---- */

static inline int cg_gc_pause(void) {
#if PY_VERSION_HEX < 0x030C0000
    return PyGC_Disable(); /* 3.11 collects inside the allocation that crosses the threshold */
#else
    return 0; /* 3.12+: allocations only schedule a collection (eval breaker) */
#endif
}

static inline void cg_gc_resume(int was_enabled) {
    if (was_enabled) PyGC_Enable();
}

/* ---- the stack walk ---- */

/* Fill buf with up to max frames from f (a new reference, consumed) outward,
 * innermost first; return how many. GIL held, re-entrancy guard set. */
static inline int cg_walk_frames(PyFrameObject *f, cg_frame_t *buf, int max) {
    int n = 0;
    cg_err_t saved;
    cg_err_save(&saved);
    int gc = cg_gc_pause();
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f); /* new reference */
        buf[n].code = code;
        buf[n].lasti = PyFrame_GetLasti(f); /* bytes; -1 before the first instruction */
        /* The running frame holds the code object as long as this sample is taken;
         * the stack table takes its own reference for what it keeps. */
        Py_DECREF(code);
        n++;
        PyFrameObject *back = n < max ? PyFrame_GetBack(f) : NULL; /* new reference */
        Py_DECREF(f); /* never the last reference: the frame is on the stack */
        f = back;
    }
    cg_gc_resume(gc);
    cg_err_restore(&saved);
    return n;
}

/* Fill buf with up to max frames of the calling thread, innermost first; return
 * how many. The caller holds the GIL, tstate is its own thread state, and its
 * re-entrancy guard is set. */
static inline int cg_walk_stack(PyThreadState *tstate, cg_frame_t *buf, int max) {
    cg_err_t saved;
    cg_err_save(&saved);
    int gc = cg_gc_pause(); /* getting the frame may allocate its frame object */
    PyFrameObject *f = PyThreadState_GetFrame(tstate); /* new reference; skips incomplete frames */
    int n = f == NULL ? 0 : cg_walk_frames(f, buf, max);
    cg_gc_resume(gc);
    cg_err_restore(&saved);
    return n;
}

#endif /* CGMEM_COMPAT_H */
