# C types for order.py: see engine.pxd for why.

from .exposure cimport Position
from .wallet cimport Wallet


cdef class Order:
    cdef public object id, user, market, selection
    cdef public Py_ssize_t sel
    cdef public bint is_back, in_book
    cdef public long long price, size, matched, remaining, cancelled, lapsed
    cdef public long long matched_value, matched_win, min_fill, release_ts
    cdef public object persistence, tif, ref, placed_seq
    cdef public Position pos
    cdef public Wallet wallet
