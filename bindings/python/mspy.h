/*
 * mspy.h - what the files of the Python extension memsnap._memsnap share: _memsnap.c
 * (snapshots, samplers, the flight recorder) and heap.c (traces: Heap, analyze).
 */
#ifndef MSPY_H
#define MSPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Adds Heap, HeapView and _analyze_json to module m; errors raise error (memsnap.Error).
 * Returns 0, or -1 with an exception set. */
int mspy_heap_init(PyObject *m, PyObject *error);

#endif
