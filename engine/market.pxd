# C types for market.py: see engine.pxd for why.

cdef class Market:
    cdef public object id, event, name, type, currency, commission_bp, take_bp
    cdef public object status
    cdef public bint in_play
    cdef public object bet_delay_ms
    cdef public list selection_ids, selection_names, books, traded, ltp, pool_stakes, order_ids
    cdef public list fills
    cdef public dict index, positions, open_orders, removed
    cdef public object quotes, limits, start_ts
