# The C stand-in for lowserve/ws/mask.py, cimported under that module's name by
# connection.pxd (`from lowserve.ws cimport _cmask as mask`): in the compiled build
# `mask.unmask(...)` in connection.py is this C function (no Python call, no slices);
# the pure-Python build calls mask.py's, which has the same contract.
#
# unmask(data, start, n): the n payload bytes at data[start:], XORed with the 4-byte
# masking key just before them (data[start-4:start]), as a new bytes object. The
# caller guarantees 4 <= start and start + n <= len(data) (a complete frame, or the
# received part of one): nothing here checks it.
#
# Eight bytes a turn: the key repeated into a 64-bit word, the payload's words read
# and written with memcpy (no alignment or aliasing assumption; GCC and Clang make
# each one a single load or store), then the last 0-7 bytes one by one. The key's
# phase is the same for every word, since a word is two whole keys. Measured in
# bench/PROFILE.md's "Round 7: WebSocket": a 256-byte fragment went from ~1,220
# instructions (the byte loop this replaces) to ~100.

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static PyObject *lowserve_unmask(PyObject *data, Py_ssize_t start, Py_ssize_t n) {
        PyObject *out = PyBytes_FromStringAndSize(NULL, n);
        if (out == NULL) return NULL;
        const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(data) + start;
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
        const unsigned char *key = src - 4;
        uint64_t key8, word;
        memcpy(&key8, key, 4);
        memcpy((unsigned char *)&key8 + 4, key, 4);
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&word, src + i, 8);
            word ^= key8;
            memcpy(dst + i, &word, 8);
        }
        for (; i < n; i++) {
            dst[i] = src[i] ^ key[i & 3];
        }
        return out;
    }
    """
    bytes unmask "lowserve_unmask" (bytes data, Py_ssize_t start, Py_ssize_t n)
