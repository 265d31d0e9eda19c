# The C stand-ins for lowserve/ws/speedups.py, cimported under that module's name by
# connection.pxd (`from lowserve.ws cimport _cspeedups as speedups`): in the compiled
# build `speedups.unmask(...)` and `speedups.new_message(...)` in connection.py are
# these C functions (no Python call); the pure-Python build calls speedups.py's, which
# have the same contracts. Measured in bench/PROFILE.md, "Round 7: WebSocket".
#
# unmask(data, start, n): the n payload bytes at data[start:], XORed with the 4-byte
# masking key just before them (data[start-4:start]), as a new bytes object. The
# caller guarantees 4 <= start and start + n <= len(data) (a complete frame, or the
# received part of one): nothing here checks it. Eight bytes a turn: the key repeated
# into a 64-bit word, the payload's words read and written with memcpy (no alignment
# or aliasing assumption; GCC and Clang make each one a single load or store), then
# the last 0-7 bytes one by one. The key's phase is the same for every word, since a
# word is two whole keys. A 256-byte fragment: ~1,220 instructions with the byte loop
# this replaced, ~100 now.
#
# new_message(cls, args): tuple.__new__(cls, args) for cls a tuple subclass with no
# fields of its own (WSMessage, a NamedTuple) and args an exact tuple: the instance
# allocated by the type's own tp_alloc (GC-tracked as any tuple subclass instance),
# its items args' items. tuple.__new__ is a Python-level call (its argument tuple,
# tp_new_wrapper, a copy through tuple()); this is ~100 instructions.

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
    static PyObject *lowserve_new_message(PyObject *cls, PyObject *args) {
        PyTypeObject *type = (PyTypeObject *)cls;
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        PyObject *msg = type->tp_alloc(type, n);
        if (msg == NULL) return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyTuple_GET_ITEM(args, i);
            Py_INCREF(item);
            PyTuple_SET_ITEM(msg, i, item);
        }
        return msg;
    }
    """
    bytes unmask "lowserve_unmask" (bytes data, Py_ssize_t start, Py_ssize_t n)
    object new_message "lowserve_new_message" (type cls, tuple args)
