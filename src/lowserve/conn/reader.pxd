# Cython's declaration of reader.py's RequestReader (setup.py compiles reader.py):
# its attributes as C fields, the same names as its __slots__ (tests/test_build.py
# checks they match). Read only by Cython; the pure-Python build ignores it.

cdef class RequestReader:
    cdef object _decoder
    cdef bint _dropping
    cdef object _factory
    cdef object _head_span
    cdef list _headers
    cdef object _opts
    cdef object _parser
    cdef object _refused
    cdef bint _refusing
    cdef object _resume_body
    cdef object _resume_head
    cdef bint _resuming
    cdef object _sink
    cdef dict _special
    cdef bytes _url
    cdef public object body
    cdef public object body_left  # a Content-Length can pass a C integer
    cdef public bint in_head
