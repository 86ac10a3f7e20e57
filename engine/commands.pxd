# C-level field declarations for the commands the engine's order path reads (engine.pxd
# cimports them), so a field read is a struct member instead of a descriptor call. Only these:
# Cython gives a declared field with a default the type `object` in `dataclasses.fields`, and
# the codec finds the tuple-valued fields by their annotations (SettleMarket.dead_heat,
# SetUserLimits.stake_factor). The two are also built, stamped and recorded in C (the functions
# at the end). tests/test_engine_records.py checks this file and those functions against the
# classes.

cimport cython


cdef class Command:
    cdef readonly object seq, ts

cdef class PlaceOrder(Command):
    cdef readonly object user, market, selection, side, price, size_minor, persistence, tif
    cdef readonly object min_fill_minor, ref

cdef class CancelOrder(Command):
    cdef readonly object user, order, size_reduction_minor


@cython.locals(cmd=PlaceOrder)
cpdef PlaceOrder place_order(seq, ts, user, market, selection, side, price, size_minor,
                             persistence, tif, min_fill_minor, ref)
@cython.locals(cmd=CancelOrder)
cpdef CancelOrder cancel_order(seq, ts, user, order, size_reduction_minor)
cpdef PlaceOrder stamp_place_order(PlaceOrder cmd, seq, ts)
cpdef CancelOrder stamp_cancel_order(CancelOrder cmd, seq, ts)
cpdef tuple place_order_record(PlaceOrder cmd)
cpdef tuple cancel_order_record(CancelOrder cmd)
