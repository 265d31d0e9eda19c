# Cython's declaration of pipeline.py's Pipeline (setup.py compiles pipeline.py): its
# attributes as C fields, the same names as its __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it. The ending is
# typed, so that advance() reads its verdict as a C field (lowserve._build uses this
# module's compiled copy only with ending's).

from lowserve.conn.ending cimport Ending

cdef class Pipeline:
    cdef public object _conn
    cdef public object _flow
    cdef public Py_ssize_t _limit
    cdef public object _reader
    cdef public object _responder
    cdef public object deferred
    cdef public Ending ending
    cdef public list queue
    cdef public object unparsed

    cpdef received(self, request, bint after, state)
    cpdef start_deferred(self)
    cpdef advance(self)
    cpdef bint fits(self, data)
    cpdef bint input_waits(self, body_full)
    cpdef lost(self)
