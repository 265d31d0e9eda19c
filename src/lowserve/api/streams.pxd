# Cython's declaration of streams.py's classes (setup.py compiles streams.py): their
# attributes as C fields, the same names as their __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it.

cdef class BodyStream:
    cdef public object _buffer
    cdef public object _chunk_ends
    cdef public object _chunk_first
    cdef public bint _eof
    cdef public object _exception
    cdef public object _high_water
    cdef public object _joining
    cdef public object _low_water
    cdef public object _offset
    cdef public object _on_first_wait
    cdef public bint _paused
    cdef public object _protocol
    cdef public object _size
    cdef public object _waiter
    cdef public object declared
    cdef public object total_bytes

cdef class EmptyStream(BodyStream):
    pass
