/*
 * attribution.c -- who a sample is charged to when the allocating thread cannot
 * give its own Python stack.
 *
 * A thread that holds the GIL gives its own stack. Threads that do not -- Polars'
 * rayon pool, Arrow's and DuckDB's thread pools, OpenMP and BLAS threads, or the
 * session's own thread while a C call runs without the GIL -- have no stack that
 * may be read. Their samples are charged to the statement the session announced
 * last (a cell's statement, announced by the cell runner before it runs; a test's
 * line; the line that started the session), and say so in their domain byte:
 * CG_VIA_RELEASED when the announcing thread made them, CG_VIA_WORKER when another
 * thread did. Without an announced statement they keep no stack ("<unknown>").
 *
 * The announcement is one 64-bit word (stack id and category tag) and a thread
 * id, written by the announcing thread with the GIL held and read by any thread
 * without a lock; a sample that races with a new announcement may be charged to
 * the statement just before or after, nothing worse. Stack ids stay valid until
 * the stack table is cleared, which clears the announcement first.
 */
#include "sampler.h"

#define NO_STATEMENT UINT64_MAX

static volatile uint64_t g_statement = NO_STATEMENT; /* (stack << 16) | tag */
static volatile uint64_t g_statement_tid = 0;
/* The last announced frame and the stack it gave (GIL held). */
static const void *g_last_frame = NULL;
static const PyCodeObject *g_last_code = NULL;
static int g_last_lasti = -2;
static uint32_t g_last_stack = CG_NO_STACK;

PyThreadState *cg_gil_holder(void) {
    PyThreadState *cur = cg_tstate_unchecked();
    if (cur == NULL) return NULL;
    return cur == PyGILState_GetThisThreadState() ? cur : NULL;
}

void cg_sample_any(void *p, size_t size, int domain) {
    int busy = cg_t_busy;
    cg_t_busy = 1;
    uint32_t stack = CG_NO_STACK;
    uint16_t tag = cg_t_tag;
    int via = CG_VIA_OWN;
    PyThreadState *tstate = cg_gil_holder();
    if (tstate != NULL) stack = cg_capture_stack(tstate);
    if (stack == CG_NO_STACK) {
        uint64_t st = __atomic_load_n(&g_statement, __ATOMIC_ACQUIRE);
        if (st != NO_STATEMENT) {
            stack = (uint32_t)(st >> 16);
            tag = (uint16_t)(st & 0xffff);
            uint64_t tid = (uint64_t)PyThread_get_thread_ident();
            via = tid == __atomic_load_n(&g_statement_tid, __ATOMIC_RELAXED) ? CG_VIA_RELEASED : CG_VIA_WORKER;
        }
    }
    cg_record((uintptr_t)p, size, domain | (via << CG_VIA_SHIFT), stack, tag);
    cg_t_busy = busy;
}

int cg_announce(PyObject *frame) {
    if (!PyFrame_Check(frame)) {
        PyErr_Format(PyExc_TypeError, "announce() takes a frame object or None, not %.100s", Py_TYPE(frame)->tp_name);
        return -1;
    }
    if (!cg_running) return 0;
    PyFrameObject *f = (PyFrameObject *)frame;
    PyCodeObject *code = PyFrame_GetCode(f); /* new reference; the frame keeps one */
    int lasti = PyFrame_GetLasti(f);
    Py_DECREF(code);
    uint32_t stack = g_last_stack;
    if (stack == CG_NO_STACK || frame != g_last_frame || code != g_last_code || lasti != g_last_lasti) {
        int busy = cg_t_busy;
        cg_t_busy = 1;
        stack = cg_capture_frame_stack(f);
        cg_t_busy = busy;
        if (stack == CG_NO_STACK) return 0;
        g_last_frame = frame;
        g_last_code = code;
        g_last_lasti = lasti;
        g_last_stack = stack;
    }
    __atomic_store_n(&g_statement_tid, (uint64_t)PyThread_get_thread_ident(), __ATOMIC_RELAXED);
    __atomic_store_n(&g_statement, ((uint64_t)stack << 16) | cg_t_tag, __ATOMIC_RELEASE);
    return 0;
}

void cg_announce_clear(void) {
    __atomic_store_n(&g_statement, NO_STATEMENT, __ATOMIC_RELEASE);
    g_last_frame = NULL;
    g_last_code = NULL;
    g_last_lasti = -2;
    g_last_stack = CG_NO_STACK;
}

void cg_announce_releasing(void) {
    if (!cg_running || __atomic_load_n(&g_statement, __ATOMIC_ACQUIRE) == NO_STATEMENT) return;
    if ((uint64_t)PyThread_get_thread_ident() != __atomic_load_n(&g_statement_tid, __ATOMIC_RELAXED)) return;
    PyThreadState *tstate = cg_gil_holder();
    if (tstate == NULL || cg_is_finalizing() || PyThreadState_GetInterpreter(tstate) != PyInterpreterState_Main())
        return;
    int busy = cg_t_busy;
    cg_t_busy = 1;
    cg_err_t saved;
    cg_err_save(&saved);
    int gc = cg_gc_pause(); /* getting the frame may allocate its frame object */
    PyFrameObject *frame = PyThreadState_GetFrame(tstate); /* new reference */
    if (frame != NULL) {
        cg_announce((PyObject *)frame);
        Py_DECREF(frame);
    }
    cg_gc_resume(gc);
    cg_err_restore(&saved);
    cg_t_busy = busy;
}
