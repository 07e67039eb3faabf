/*
 * tclmemsnap.h - what the files of the Tcl extension share: the one session of the process,
 * errors, the GPU questions both command families ask, and Tcl values of libmemsnap's figures.
 */
#ifndef MEMSNAP_TCLMEMSNAP_H
#define MEMSNAP_TCLMEMSNAP_H

#include "memsnap.h"

#include <stdbool.h>
#include <tcl.h>

/* Locks the extension's one session (shared by every interpreter and thread), opening it on
 * first use; returns NULL with the interpreter's result set when it cannot be opened. Every
 * non-NULL return must be followed by ms__tcl_release(). */
ms_session *ms__tcl_session(Tcl_Interp *interp);
/* Unlocks the session taken by ms__tcl_session(). */
void ms__tcl_release(void);

/* Sets the interpreter's result to the printf-style message and its errorCode to
 * {MEMSNAP <name>} (name: ms_err_name(err), or the Tcl convention's code when err is 0 and
 * code is given); returns TCL_ERROR. */
int ms__tcl_error(Tcl_Interp *interp, int err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What the GPU backends found. */
struct ms__tcl_gpus {
    int cuda_devices; /* devices of the first NVIDIA backend (nvml, else nvidia-smi) that found
                         one: 0 means CUDA is not available */
    bool any;         /* some backend (NVIDIA, AMD or Intel) found a device */
    int nbackends;    /* the backends, as ms_gpu_backends() listed them */
    ms_gpu_backend_info backends[8];
};

/* Fills *out from ms_gpu_backends(); returns TCL_ERROR with the result set on failure. */
int ms__tcl_gpu_state(Tcl_Interp *interp, ms_session *s, struct ms__tcl_gpus *out);
/* True for a GPU of an NVIDIA backend (what CUDA would see). */
bool ms__tcl_is_cuda(const ms_gpu *g);

/* Captures the calling process's RSS, the system and every GPU into a snapshot allocated with
 * ckalloc (free it with ckfree); returns NULL with the result set on failure. */
ms_snapshot *ms__tcl_capture_self(Tcl_Interp *interp, ms_session *s);
/* The same under the session's lock, with the GPU state in *st (memory_summary, summary). */
ms_snapshot *ms__tcl_gpu_snapshot(Tcl_Interp *interp, struct ms__tcl_gpus *st);

/* Returns the heap's free memory to the OS (malloc_trim) and stores in *released the RSS it
 * gave back (RSS before minus after, 0 when it grew); TCL_ERROR with the result set when
 * RSS cannot be read. */
int ms__tcl_trim(Tcl_Interp *interp, ms_session *s, uint64_t *released);

/* An unsigned 64-bit value as a Tcl integer (a bignum above the wide range). */
Tcl_Obj *ms__tcl_u64(uint64_t v);
/* Puts key -> value into dict. */
void ms__tcl_put(Tcl_Obj *dict, const char *key, Tcl_Obj *value);

/* Registers the torch:: commands (torch.c). */
int ms__tcl_torch_init(Tcl_Interp *interp);
/* Registers memsnap::heap and memsnap::analyze (heap.c). */
int ms__tcl_heap_init(Tcl_Interp *interp);

#endif /* MEMSNAP_TCLMEMSNAP_H */
