# Cython's declaration of reader.py's RequestReader (setup.py compiles reader.py):
# its attributes as C fields, the same names as its __slots__ (tests/test_build.py
# checks they match). Read only by Cython; the pure-Python build ignores it.

cdef class RequestReader:
    cdef public object _decoder
    cdef public bint _dropping
    cdef public object _factory
    cdef public object _head_span
    cdef public list _headers
    cdef public object _line_version
    cdef public Py_ssize_t _max_field
    cdef public Py_ssize_t _max_headers
    cdef public Py_ssize_t _max_line
    cdef public object _opts
    cdef public object _parser
    cdef public object _refused
    cdef public bint _refusing
    cdef public object _resume_body
    cdef public object _resume_head
    cdef public bint _resuming
    cdef public object _sink
    cdef public dict _special
    cdef public bytes _url
    cdef public object body
    cdef public object body_left  # a Content-Length can pass a C integer
    cdef public bint in_head
    cdef public bint preface
