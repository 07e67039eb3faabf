/*
 * torch.c - the torch:: memory commands of the Tcl extension: TCLIBTORCH's memory family
 * (memory_snapshot, memory_stats, memory_summary, empty_cache, each with its camelCase alias)
 * with the strings TCLIBTORCH documents, and memsnap's real figures behind them.
 *
 * "CUDA available" means that memsnap's NVIDIA backend (NVML, else nvidia-smi) found a device;
 * device_count is the number it found. Every command takes its arguments positionally or as
 * -name value pairs (a first word starting with '-' selects the named form). Error messages
 * name the snake_case command, as TCLIBTORCH's documentation writes them, whichever alias ran.
 */
#include "tclmemsnap.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sets a plain error message (TCLIBTORCH's wording); returns TCL_ERROR. */
static int ms__torch_error(Tcl_Interp *interp, const char *code, const char *msg)
{
    Tcl_SetObjResult(interp, Tcl_NewStringObj(msg, -1));
    Tcl_SetErrorCode(interp, "TCL", code, NULL);
    return TCL_ERROR;
}

/* Reads ?device? or ?-device device? into *device ("" when not given); wrongargs is the
 * message for more than one positional argument. */
static int ms__torch_device_args(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[],
                                 const char *wrongargs, const char **device)
{
    *device = "";
    if (objc >= 2 && Tcl_GetString(objv[1])[0] == '-') {
        for (int i = 1; i < objc; i += 2) {
            const char *name = Tcl_GetString(objv[i]);
            if (strcmp(name, "-device") != 0) {
                Tcl_SetObjResult(interp, Tcl_ObjPrintf("Unknown parameter: %s", name));
                Tcl_SetErrorCode(interp, "TCL", "LOOKUP", "PARAMETER", name, NULL);
                return TCL_ERROR;
            }
            if (i + 1 >= objc)
                return ms__torch_error(interp, "VALUE", "Missing value for parameter -device");
            *device = Tcl_GetString(objv[i + 1]);
        }
        return TCL_OK;
    }
    if (objc > 2)
        return ms__torch_error(interp, "WRONGARGS", wrongargs);
    if (objc == 2)
        *device = Tcl_GetString(objv[1]);
    return TCL_OK;
}

/* Parses a device name: "", "cpu" and "cuda" stand for every device (*index -1), "cuda:N" and
 * "N" for CUDA device N. */
static int ms__torch_device(Tcl_Interp *interp, const char *dev, int *index)
{
    *index = -1;
    if (!dev[0] || strcmp(dev, "cpu") == 0 || strcmp(dev, "cuda") == 0)
        return TCL_OK;
    const char *num = strncmp(dev, "cuda:", 5) == 0 ? dev + 5 : dev;
    char *end;
    errno = 0;
    long v = strtol(num, &end, 10);
    if (num[0] < '0' || num[0] > '9' || *end || errno || v > INT_MAX) {
        Tcl_SetObjResult(interp,
                         Tcl_ObjPrintf("Invalid device: %s (should be cpu, cuda or cuda:N)", dev));
        Tcl_SetErrorCode(interp, "TCL", "VALUE", "DEVICE", NULL);
        return TCL_ERROR;
    }
    *index = (int)v;
    return TCL_OK;
}

/* Asks the backends how many CUDA devices there are (and whether any GPU at all). */
static int ms__torch_gpus(Tcl_Interp *interp, struct ms__tcl_gpus *st)
{
    ms_session *s = ms__tcl_session(interp);
    if (!s)
        return TCL_ERROR;
    int ret = ms__tcl_gpu_state(interp, s, st);
    ms__tcl_release();
    return ret;
}

/* torch::memory_snapshot: "timestamp: T cuda_available: true device_count: N" (or
 * "... cuda_available: false"); it takes no argument. */
static int ms__torch_memory_snapshot(ClientData cd, Tcl_Interp *interp, int objc,
                                     Tcl_Obj *const objv[])
{
    (void)cd;
    static const char usage[] = "wrong # args: should be torch::memory_snapshot";
    if (objc > 1) {
        const char *arg = Tcl_GetString(objv[1]);
        if (arg[0] != '-')
            return ms__torch_error(interp, "WRONGARGS", usage);
        Tcl_SetObjResult(interp, Tcl_ObjPrintf("Unknown parameter: %s: %s", arg, usage));
        Tcl_SetErrorCode(interp, "TCL", "WRONGARGS", NULL);
        return TCL_ERROR;
    }
    struct ms__tcl_gpus st;
    if (ms__torch_gpus(interp, &st) != TCL_OK)
        return TCL_ERROR;
    long long now = (long long)time(NULL);
    if (st.cuda_devices > 0)
        Tcl_SetObjResult(interp,
                         Tcl_ObjPrintf("timestamp: %lld cuda_available: true device_count: %d", now,
                                       st.cuda_devices));
    else
        Tcl_SetObjResult(interp, Tcl_ObjPrintf("timestamp: %lld cuda_available: false", now));
    return TCL_OK;
}

/* torch::memory_stats ?device?: "cuda_available: true device_count: N" or
 * "cuda_available: false". */
static int ms__torch_memory_stats(ClientData cd, Tcl_Interp *interp, int objc,
                                  Tcl_Obj *const objv[])
{
    (void)cd;
    const char *device;
    int index;
    if (ms__torch_device_args(interp, objc, objv,
                              "wrong # args: should be torch::memory_stats ?device?",
                              &device) != TCL_OK ||
        ms__torch_device(interp, device, &index) != TCL_OK)
        return TCL_ERROR;
    struct ms__tcl_gpus st;
    if (ms__torch_gpus(interp, &st) != TCL_OK)
        return TCL_ERROR;
    if (st.cuda_devices > 0)
        Tcl_SetObjResult(interp,
                         Tcl_ObjPrintf("cuda_available: true device_count: %d", st.cuda_devices));
    else
        Tcl_SetObjResult(interp, Tcl_NewStringObj("cuda_available: false", -1));
    return TCL_OK;
}

/* Appends ", <label> <value in MiB>" (or "n/a" when the figure was not read) to obj. */
static void ms__torch_mib(Tcl_Obj *obj, const char *label, bool valid, uint64_t bytes)
{
    if (valid)
        Tcl_AppendPrintfToObj(obj, "%s %.2f MiB", label, (double)bytes / (1024.0 * 1024.0));
    else
        Tcl_AppendPrintfToObj(obj, "%s n/a", label);
}

/* torch::memory_summary ?device?: "CUDA Memory Summary:", "Device Count: N", then one line per
 * CUDA device (or only device N); without CUDA, "CUDA not available" and the host's figures. */
static int ms__torch_memory_summary(ClientData cd, Tcl_Interp *interp, int objc,
                                    Tcl_Obj *const objv[])
{
    (void)cd;
    const char *device;
    int index;
    if (ms__torch_device_args(interp, objc, objv,
                              "wrong # args: should be torch::memory_summary ?device?",
                              &device) != TCL_OK ||
        ms__torch_device(interp, device, &index) != TCL_OK)
        return TCL_ERROR;
    struct ms__tcl_gpus st;
    ms_snapshot *snap = ms__tcl_gpu_snapshot(interp, &st);
    if (!snap)
        return TCL_ERROR;
    if (st.cuda_devices > 0 && index >= st.cuda_devices) {
        ckfree((char *)snap);
        Tcl_SetObjResult(
            interp, Tcl_ObjPrintf("Invalid device: %s (%d CUDA devices)", device, st.cuda_devices));
        Tcl_SetErrorCode(interp, "TCL", "VALUE", "DEVICE", NULL);
        return TCL_ERROR;
    }
    Tcl_Obj *out = Tcl_NewObj();
    if (st.cuda_devices == 0) {
        const ms_system_mem *sys = &snap->system;
        Tcl_AppendToObj(out, "CUDA not available\nHost Memory: ", -1);
        ms__torch_mib(out, "total", ms_valid(sys, MS_SF_total_bytes), sys->total_bytes);
        ms__torch_mib(out, ", available", ms_valid(sys, MS_SF_available_bytes),
                      sys->available_bytes);
        ms__torch_mib(out, ", free", ms_valid(sys, MS_SF_free_bytes), sys->free_bytes);
        ms__torch_mib(out, ", this process", ms_valid(&snap->process, MS_PF_rss_bytes),
                      snap->process.rss_bytes);
    } else {
        Tcl_AppendPrintfToObj(out, "CUDA Memory Summary:\nDevice Count: %d", st.cuda_devices);
        int k = 0;
        for (uint32_t i = 0; i < snap->gpu_count && i < MS_GPU_MAX; i++) {
            const ms_gpu *g = &snap->gpus[i];
            if (!ms__tcl_is_cuda(g))
                continue;
            if (index < 0 || k == index) {
                Tcl_AppendPrintfToObj(out, "\nDevice %d (%s): ", k, g->name[0] ? g->name : "?");
                ms__torch_mib(out, "total", ms_valid(g, MS_GF_total_bytes), g->total_bytes);
                ms__torch_mib(out, ", used", ms_valid(g, MS_GF_used_bytes), g->used_bytes);
                ms__torch_mib(out, ", free", ms_valid(g, MS_GF_free_bytes), g->free_bytes);
                ms__torch_mib(out, ", this process",
                              g->is_per_process && ms_valid(g, MS_GF_process_used_bytes),
                              g->process_used_bytes);
            }
            k++;
        }
    }
    ckfree((char *)snap);
    Tcl_SetObjResult(interp, out);
    return TCL_OK;
}

/* torch::empty_cache ?device? / ?-device device?: gives the heap's free memory back to the OS
 * (malloc_trim); "cache_cleared" when a GPU backend found a device, else
 * "cuda_not_available". */
static int ms__torch_empty_cache(ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    (void)cd;
    const char *device;
    int index;
    if (ms__torch_device_args(interp, objc, objv,
                              "Invalid number of arguments: should be torch::empty_cache ?device?",
                              &device) != TCL_OK ||
        ms__torch_device(interp, device, &index) != TCL_OK)
        return TCL_ERROR;
    ms_session *s = ms__tcl_session(interp);
    if (!s)
        return TCL_ERROR;
    struct ms__tcl_gpus st;
    uint64_t released;
    int ret = ms__tcl_trim(interp, s, &released);
    if (ret == TCL_OK)
        ret = ms__tcl_gpu_state(interp, s, &st);
    ms__tcl_release();
    if (ret != TCL_OK)
        return ret;
    Tcl_SetObjResult(interp, Tcl_NewStringObj(st.any ? "cache_cleared" : "cuda_not_available", -1));
    return TCL_OK;
}

int ms__tcl_torch_init(Tcl_Interp *interp)
{
    /* snake_case name, camelCase alias, function */
    static const struct {
        const char *name, *alias;
        Tcl_ObjCmdProc *proc;
    } cmds[] = {
        {"::torch::empty_cache", "::torch::emptyCache", ms__torch_empty_cache},
        {"::torch::memory_snapshot", "::torch::memorySnapshot", ms__torch_memory_snapshot},
        {"::torch::memory_stats", "::torch::memoryStats", ms__torch_memory_stats},
        {"::torch::memory_summary", "::torch::memorySummary", ms__torch_memory_summary},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!Tcl_CreateObjCommand(interp, cmds[i].name, cmds[i].proc, NULL, NULL) ||
            !Tcl_CreateObjCommand(interp, cmds[i].alias, cmds[i].proc, NULL, NULL))
            return TCL_ERROR;
    return TCL_OK;
}
