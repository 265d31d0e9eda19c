# Cython's declaration of connection.py's classes (setup.py compiles connection.py):
# their attributes as C fields, the same names as their __slots__ (tests/test_build.py
# checks they match), and the frame loop's locals as C integers. Read only by Cython;
# the pure-Python build ignores it. `speedups` is _cspeedups.pxd's C
# functions, in speedups.py's place.

cimport cython

from lowserve.ws cimport _cspeedups as speedups

cpdef bint _utf8_so_far(bytes data, Py_ssize_t start, bytes tail)

cdef class _Tracker:
    cdef public bint _check
    cdef public object _decoder
    cdef public bint _fragmented
    cdef public bytes _head
    cdef public bytes _key
    cdef public Py_ssize_t _skip
    cdef public object error

cdef class MessageIterator:
    cdef public bint _autoclose
    cdef public object _close_timeout
    cdef public WSConnection _conn
    cdef public object _resp
    cdef public object _timeout

cdef class WSConnection:
    cdef public bint _autoping
    cdef public bint _close_read
    cdef public object _close_timeout
    cdef public object _closed_event
    cdef public bint _decode_text
    cdef public object _deflate
    cdef public bint _error_queued
    cdef public object _fail_handle
    cdef public bint _fast
    cdef public bint _fast_ok
    cdef public object _frag_type
    cdef public list _fragments
    cdef public object _heartbeat_handle
    cdef public bint _lost
    cdef public Py_ssize_t _max_size
    cdef public Py_ssize_t _msg_size
    cdef public bytes _partial
    cdef public bint _paused
    cdef public object _pong_handle
    cdef public object _queue
    cdef public Py_ssize_t _received
    cdef public Py_ssize_t _sent
    cdef public list _texts
    cdef public _Tracker _tracker
    cdef public bytes _utf8_tail
    cdef public object _waiter
    cdef public Py_ssize_t _written
    cdef public object close_code
    cdef public bint closed
    cdef public object exception
    cdef public bint finished
    cdef public object proto
    cdef public object ws

    @cython.locals(pos=Py_ssize_t, end=Py_ssize_t, b0=int, b1=int, op=int, n=Py_ssize_t,
                   head=Py_ssize_t, size=Py_ssize_t, whole=bint, run=list, payload=bytes)
    cpdef object _fast_frames(self, bytes data)

    cpdef object _leave(self, bytes data, Py_ssize_t pos, list run)

    cpdef bint _end_run(self, list run, bint fin)

    cpdef _push(self, msg)

    cpdef object _ready(self)

    cpdef object _woken(self)

    cpdef object _take(self)

    @cython.locals(part=bytes, payload=bytes, tail=bytes)
    cpdef bint _add_fragment(self, data, bint fin)
