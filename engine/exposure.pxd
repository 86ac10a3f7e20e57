# C types for exposure.py: see engine.pxd for why.

cimport cython

from .money cimport win_amount
from .wallet cimport Wallet


@cython.locals(low=cython.longlong, v=cython.longlong)
cpdef long long lowest(list values) except? -1

@cython.locals(low=cython.longlong, v=cython.longlong, i=Py_ssize_t)
cpdef long long lowest_with(list values, Py_ssize_t at, long long value) except? -1


cdef class Position:
    cdef public list edge, win, lose
    cdef public long long const, hold
    cdef public Wallet wallet

    @cython.locals(worst=cython.longlong, v=cython.longlong)
    cpdef long long needed_hold(self)
    cpdef add_matched(self, Py_ssize_t sel, bint is_back, long long size, long long win)
    @cython.locals(after=cython.longlong, freed=cython.longlong)
    cpdef fill(self, Py_ssize_t sel, bint is_back, long long price, long long before,
               long long size, long long win)
    @cython.locals(kept=cython.longlong, worst=cython.longlong)
    cpdef long long hold_with(self, Py_ssize_t sel, bint is_back, long long price, long long size)
    @cython.locals(delta=cython.longlong)
    cpdef add_unmatched(self, Py_ssize_t sel, bint is_back, long long price, long long before,
                        long long after)
    cpdef add_pool_stake(self, long long size)
