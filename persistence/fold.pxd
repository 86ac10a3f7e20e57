# C types for fold.py (Cython reads this file when setup.py compiles the module).
#
# Why: the persister folds every journaled event, about two per command, and interpreted, most
# of a fold went into attribute lookups on the Changes, the rows and the events, and keyword
# calls of _change_order. Here the rows and the Changes are extension types whose fields are
# C members (of type object: they hold what they held before; the rows are read into asyncpg's
# tuples in C too, astuple), the order path's folders read their events' fields as struct
# members (engine/events.pxd), and fold calls them in C.

cimport cython

from engine cimport commands as c
from engine cimport events as ev


cdef class OrderRow:
    cdef public object order_id, user_id, market, selection, side, price, size_minor
    cdef public object matched_minor, remaining_minor, cancelled_minor, lapsed_minor
    cdef public object matched_value, matched_win_minor, status, persistence, tif, ref
    cdef public object release_ts_ms, replaced_by, placed_seq, placed_ts_ms, updated_seq, pool
    cpdef tuple astuple(self)

cdef class OrderDelta:
    cdef public object order_id, matched_minor, remaining_minor, cancelled_minor, lapsed_minor
    cdef public object matched_value, matched_win_minor, released, replaced_by, seq, pool
    cpdef tuple astuple(self)

cdef class Changes:
    cdef public object first_seq, last_seq, last_ts_ms, markets, market_updates, selections
    cdef public object selection_updates, orders, order_deltas, fills, fill_updates
    cdef public object voided_selections, ledger, settlements, wallets, user_limits
    cdef public object market_limits, withdrawals, withdrawal_decisions, movements
    cdef public object command, events, moved, subjects_seq, subjects, self_limits
    cdef public object self_exclusions, refused_deposits


@cython.locals(ch=Changes)
cpdef Changes fold(records)

cpdef _order_placed(Changes ch, seq, idx, ev.OrderPlaced e)
cpdef _bet_matched(Changes ch, seq, idx, ev.BetMatched e)
cpdef _order_cancelled(Changes ch, seq, idx, ev.OrderCancelled e)
cpdef _wallet_changed(Changes ch, seq, idx, ev.WalletChanged e)
cpdef tuple _subject(Changes ch, seq, user)
