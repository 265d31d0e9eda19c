# Cython's declaration of ending.py's Ending (setup.py compiles ending.py): its
# attributes as C fields, the same names as its __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it.

cdef class Ending:
    cdef public object _conn
    cdef public object _output
    cdef public object _reader
    cdef public object _server
    cdef public object error
    cdef public object persist_end
