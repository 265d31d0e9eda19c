# A C stand-in for lowserve/conn/step.py's `first`, cimported under that module's
# name by a compiled module's .pxd (`from lowserve.conn cimport _cstep as step`): in
# the compiled build `step.first(coro, resume)` in the .py is this C function, and
# the pure-Python build calls step.py's. Same results either way: the handler's return
# value when its coroutine finished at once, `resume(coro, yielded)` when it waited; an
# exception the coroutine raised propagates as it is (its traceback included).
#
# Why: `coro.send(None)` reports a return by raising StopIteration, and catching it in
# compiled code builds a traceback frame and normalises the exception (~2,800
# instructions per request). PyIter_Send (CPython 3.10+) hands back the return value
# itself: PYGEN_RETURN or PYGEN_NEXT with a new reference in `result`, or PYGEN_ERROR
# with the exception set and `result` NULL.

cdef extern from *:
    """
    #define LOWSERVE_STEP_IN_C 1
    static PyObject *lowserve_first_step(PyObject *coro, PyObject *resume) {
        PyObject *result = NULL;
        PyObject *resumed;
        PySendResult kind = PyIter_Send(coro, Py_None, &result);
        if (kind == PYGEN_RETURN) {
            return result;
        }
        if (kind == PYGEN_ERROR) {
            return NULL;
        }
        resumed = PyObject_CallFunctionObjArgs(resume, coro, result, NULL);
        Py_DECREF(result);
        return resumed;
    }
    """
    object first "lowserve_first_step" (object coro, object resume)
    # step.py's IN_C is False: the pure build runs the same step inline instead of
    # calling step.first (see responder.py).
    const bint IN_C "LOWSERVE_STEP_IN_C"
