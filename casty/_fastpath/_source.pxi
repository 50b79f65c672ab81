# Included by every compiled fast path: the CRC-32 of the .pyx the module was built from.
# setup.py defines CASTY_SOURCE_DIGEST for each extension (empty when it is built some other
# way); the selector compares it with the .pyx beside the module and sets a stale build aside.
cdef extern from *:
    """
    #ifndef CASTY_SOURCE_DIGEST
    #define CASTY_SOURCE_DIGEST ""
    #endif
    """
    const char* CASTY_SOURCE_DIGEST

_SOURCE_DIGEST = (<bytes>CASTY_SOURCE_DIGEST).decode("ascii")
