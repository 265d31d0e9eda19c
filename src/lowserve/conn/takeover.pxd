# Cython's declaration of takeover.py's class (setup.py compiles takeover.py): its
# attributes as C fields, the same names as its __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it. Compiled, the hop
# every WebSocket read takes (HttpProtocol.data_received -> Takeover.data_received ->
# the receiver's) is C, not an interpreted frame.

cdef class Takeover:
    cdef public object _conn
    cdef public object _reader
    cdef public object _server
    cdef public bint paused
    cdef public object receiver
    cdef public object request
    cdef public object tail

    cpdef bint data_received(self, data)
