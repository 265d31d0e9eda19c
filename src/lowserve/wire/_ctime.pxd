# A C stand-in for `time.time`, cimported as `time` by wire/head.pxd (`from
# lowserve.wire cimport _ctime as time`): in the compiled build `time.time()` in head.py
# is this C function (no Python call, no float object: ~400 instructions less per
# answer, callgrind, CPython 3.11); the pure-Python build calls time.time itself. Same
# clock: CPython's time.time is clock_gettime(CLOCK_REALTIME) on Linux. head.py reads it
# only to tell when the cached Date line's second has passed.

cdef extern from *:
    """
    #include <time.h>
    static inline double lowserve_time(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    """
    double time "lowserve_time" () noexcept nogil
