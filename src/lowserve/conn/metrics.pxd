# Cython's declaration of metrics.py (setup.py compiles it): the counts as C arrays, the
# layout's sizes and the histogram's bounds as C values, the same names as the classes'
# __slots__ (tests/test_build.py checks they match). Read only by Cython; the
# pure-Python build ignores it.

cimport cython

cdef Py_ssize_t _ROW, _COUNTS, _BUCKETS
cdef double _BOUNDS[14]

cdef class RequestMetrics:
    cdef Py_ssize_t _buckets[15]
    cdef Py_ssize_t _counts[48]
    cdef public double duration_sum

    @cython.locals(row=Py_ssize_t, status=Py_ssize_t, cls=Py_ssize_t, i=Py_ssize_t)
    cpdef void record(self, request, response, double time)
