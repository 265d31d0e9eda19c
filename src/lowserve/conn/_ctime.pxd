# C stand-ins for the `time` functions the compiled hot path reads, cimported as `time`
# by a compiled module's .pxd (`from lowserve.conn cimport _ctime as time`): in the
# compiled build `time.perf_counter()` in that module's .py is this C function (no
# Python call, no float object); a name not declared here stays the Python module's,
# and the pure-Python build calls time.perf_counter itself. Same clock either way:
# CPython's perf_counter is clock_gettime(CLOCK_MONOTONIC) on Linux; the figures are
# differences (a request's duration), so only the clock's rate matters elsewhere.

cdef extern from *:
    """
    #include <time.h>
    static inline double lowserve_perf_counter(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    """
    double perf_counter "lowserve_perf_counter" () noexcept nogil
