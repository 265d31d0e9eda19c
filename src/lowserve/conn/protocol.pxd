# Cython's declaration of protocol.py's classes (setup.py compiles protocol.py): their
# attributes as C fields, the same names as their __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it.

cdef class HttpProtocol:
    cdef public object _deadlines
    cdef public object _deferred
    cdef public object _ending
    cdef public object _flow
    cdef public bint _no_reuse
    cdef public object _opts
    cdef public object _output
    cdef public bint _paused
    cdef public list _queue
    cdef public object _reader
    cdef public object _responder
    cdef public object _server
    cdef public double _since
    cdef public object _takeover
    cdef public bint _trust_proxy
    cdef public object _unparsed
    cdef public object _watch
    cdef public Py_ssize_t bytes_in
    cdef public object client_eof
    cdef public object is_tls
    cdef public object loop
    cdef public object peer
    cdef public Py_ssize_t served
    cdef public object server_header
    cdef public object state
    cdef public object transport
