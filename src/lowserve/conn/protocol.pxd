# Cython's declaration of protocol.py's classes (setup.py compiles protocol.py): their
# attributes as C fields, the same names as their __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it. The pipeline and
# the ending are typed, so that their fields are read and their cpdef methods called
# as C (lowserve._build uses this module's compiled copy only with theirs).

from lowserve.conn.ending cimport Ending
from lowserve.conn.pipeline cimport Pipeline
from lowserve.conn.takeover cimport Takeover

cdef class HttpProtocol:
    cdef public object _deadlines
    cdef public Ending _ending
    cdef public object _flow
    cdef public bint _no_reuse
    cdef public object _opts
    cdef public object _peer
    cdef public object _output
    cdef public Pipeline _pipeline
    cdef public object _reader
    cdef public object _responder
    cdef public object _server
    cdef public double _since
    cdef public Takeover _takeover
    cdef public bint _trust_proxy
    cdef public object _watch
    cdef public Py_ssize_t bytes_in
    cdef public object client_eof
    cdef public object is_tls
    cdef public object loop
    cdef public bint reading_paused
    cdef public Py_ssize_t served
    cdef public object server_header
    cdef public object state
    cdef public object transport
