# Cython's declarations for head.py (setup.py compiles head.py): the C clock its Date
# cache reads (see _ctime.pxd). Read only by Cython; the pure-Python build ignores it.

from lowserve.wire cimport _ctime as time

# The second the cached Date line is for, and the next one, as C doubles: the check
# against the clock on each answer makes no float object.
cdef double _date_second
cdef double _date_until
