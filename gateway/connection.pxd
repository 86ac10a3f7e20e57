# C types for connection.py (Cython reads this file when setup.py compiles the module).
#
# Why: every frame a connection reads passes the reader's rate limit and dispatch. Compiled
# as they were, the token bucket's arithmetic went through float objects and each attribute
# through a slot descriptor: the bucket alone cost some 2,400 instructions a frame (the
# in-process order path under callgrind). Here the bucket's numbers are C doubles and the
# reader's fields C members (its session's methods are C calls: session.pxd).

cimport cython

from .session cimport Session


cdef class TokenBucket:
    cdef public double rate, tokens, at
    cdef public object burst
    @cython.locals(now=cython.double)
    cpdef bint take(self) except -1

cdef class _Reader:
    cdef public object connection, socket, link, waiting, resuming
    cdef public Session session
    cdef public TokenBucket bucket
    cdef public Py_ssize_t refused
