# C types for wallet.py: see engine.pxd for why.

cdef class Wallet:
    cdef public object user, currency
    cdef public long long balance, held
    cdef public bint exempt
