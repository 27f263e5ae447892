/*
 * Relocation patching for loaded ELF objects (Linux): point the GOT/PLT slots of
 * chosen symbols at our hooks, and put them back.
 *
 * Every loaded object is found with dl_iterate_phdr. Its PT_DYNAMIC segment
 * names the dynamic symbol and string tables and the relocation tables
 * (DT_JMPREL, DT_RELA, DT_REL); a relocation of type JUMP_SLOT, GLOB_DAT or an
 * absolute 64-bit address whose symbol is in our table names a slot that holds
 * the address the object calls. A slot is patched only if it holds what we expect
 * (the symbol's resolved address, or a lazy-binding stub inside the object): a
 * slot that holds anything else belongs to another interposer and is left alone.
 * Slots under RELRO are made writable for the write and read-only again.
 *
 * Every write is logged (slot, old value, our value) so that unpatching restores
 * exactly what was there, and only where our value is still in place. Objects are
 * remembered by load address and program headers; objects unloaded since are
 * dropped from the log without touching their memory.
 *
 * Nothing here allocates through a patched slot: this file lives in the
 * profiler's own object, which is never patched.
 */
#ifndef CGMEM_ELF_PATCH_H
#define CGMEM_ELF_PATCH_H

#include <stddef.h>
#include <stdint.h>

/* Symbol groups: an object's policy says which groups may be patched in it. */
enum {
    CG_GROUP_ALLOC = 1u << 0, /* malloc, calloc, realloc, free, the aligned family */
    CG_GROUP_MMAP = 1u << 1,  /* mmap, mmap64, munmap, mremap */
    CG_GROUP_DL = 1u << 2,    /* dlopen, dlclose */
    CG_GROUP_POOL = 1u << 3,  /* a library pool's exported entry points (Arrow's mimalloc) */
    CG_GROUP_GIL = 1u << 4,   /* PyEval_SaveThread: an extension releases the GIL */
};

typedef struct {
    const char *name;
    void *hook;    /* what the slot will hold */
    void **target; /* the address the slot is expected to hold; set by the caller, or
                      (POOL symbols) filled from the first object that defines the symbol */
    unsigned group;
} cg_patch_sym_t;

/* What the caller decides for one object before it is patched. */
typedef struct {
    const char *path;   /* dlpi_name ("" for the main program) */
    uintptr_t base;     /* load bias */
    uintptr_t lo, hi;   /* lowest and highest address of its PT_LOAD segments */
    unsigned groups;    /* in: all groups; out: the groups to patch (0 = skip) */
    uint16_t id;        /* index in the object table (stable while the object is loaded) */
    int defines_pool;   /* the object defines a POOL symbol */
    const char *dynstr; /* its dynamic string table (the object is pinned meanwhile) */
    size_t dynstrsz;
} cg_object_t;

/* Decide which groups to patch in an object; may also set up things for it
 * (e.g. an allocator's own hooks). Called with the patch lock held, outside
 * dl_iterate_phdr. */
typedef void (*cg_policy_fn)(cg_object_t *obj, void *arg);

/* One line per object for reports: which groups were patched, how many slots,
 * and why an object was skipped. */
typedef struct {
    char path[256];
    unsigned groups;
    unsigned slots;
    unsigned foreign; /* slots left alone because another interposer owns them */
    int failed;       /* the object could not be patched (errno of mprotect, or -1) */
    int loaded;
} cg_object_info_t;

/* Install the symbol table (once). Returns 0. */
int cg_elf_init(const cg_patch_sym_t *syms, size_t nsyms, cg_policy_fn policy, void *arg);

/* Patch every loaded object not patched yet. Returns the number of slots written. */
long cg_elf_patch_all(void);

/* Write our hook again where someone put back the value we had replaced (another
 * tool that patched on top of us and restored its "original" when it stopped).
 * Returns slots repaired. */
long cg_elf_repair(void);

/* Restore every slot we wrote that still holds our hook. Returns slots restored. */
long cg_elf_unpatch_all(void);

/* Forget objects that are no longer loaded (after dlclose). Returns 0 without
 * doing anything when the patch lock is busy (the holder sees the change itself). */
int cg_elf_forget_unloaded(void);

/* Objects we know about; returns how many were written to out (at most n). */
size_t cg_elf_objects(cg_object_info_t *out, size_t n);

/* Total slots currently patched. */
long cg_elf_patched_slots(void);

/* Path of a known object by id ("" if unknown). */
const char *cg_elf_object_path(uint16_t id);

/* The patch lock (recursive). Patching and unpatching pin each object with
 * dlopen(RTLD_NOLOAD) while they work on it, so it cannot be unloaded under them;
 * code that runs inside the loader (a dlopen hook) must only try the lock. */
void cg_elf_lock(void);
int cg_elf_trylock(void); /* 1 when taken */
void cg_elf_unlock(void);

/* fork handlers (the patch lock). */
void cg_elf_atfork_prepare(void);
void cg_elf_atfork_parent(void);
void cg_elf_atfork_child(void);

/* Find a function or object symbol in an ELF file's .symtab or .dynsym by the
 * suffix of its name (e.g. "mallctl"): returns its value (add the load bias) or 0.
 * If name_out is given, the full name is copied there. */
uintptr_t cg_elf_find_symbol_suffix(const char *path, const char *suffix, char *name_out, size_t name_cap);

#endif
