# Cython's declaration of responder.py's classes (setup.py compiles responder.py): their
# attributes as C fields, the same names as their __slots__ (tests/test_build.py checks
# they match). Read only by Cython; the pure-Python build ignores it.

from lowserve.conn cimport _ctime as time
from lowserve.conn cimport _cstep as step
from lowserve.conn.metrics cimport RequestMetrics

cdef class _Resume:
    cdef public object coro
    cdef public object first

cdef class Responder:
    cdef public object _access
    cdef public object _ctx
    cdef public object _handler
    cdef public RequestMetrics _metrics
    cdef public object _opts
    cdef public object _port
    cdef public object _server
    cdef public bint _stepping
    cdef public object _task
    cdef public object _waiter
    cdef public object _work
    cdef public bint head_sent
    cdef public object loop
    cdef public object request

    cdef void _timed(self, request, resp, double start)
