# Cython's declaration of output.py's Output (setup.py compiles output.py): its
# attributes as C fields, the same names as its __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it.

cdef class Output:
    cdef public object _conn
    cdef public Py_ssize_t _limit
    cdef public object _out
    cdef public object _server
    cdef public Py_ssize_t written
