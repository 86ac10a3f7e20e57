# C types for engine.py (Cython reads this file when setup.py compiles the module).
#
# Why: the engine is one thread doing about ten small steps per order, and interpreted, most of
# its time went into attribute lookups, Python calls and int objects. Compiled with these
# declarations, the engine, its markets, books, orders, positions and wallets are extension
# types with C fields (money and sizes are C long long; no amount on this exchange comes near
# 2**63), and the order path calls typed cpdef methods directly. The source stays plain Python:
# what runs is still engine.py's rules, and the methods stay overridable from Python
# (bench/engine.py's bare variant does that).

cimport cython

from . cimport commands as c
from . cimport events as e
from .book cimport SelectionBook
from .exposure cimport Position, lowest
from .market cimport Market
from .order cimport Order
from .user_risk cimport UserRisk
from .wallet cimport Wallet
from risk cimport rules
from risk.self_limits cimport OwnAccount, SelfLimits


cdef class Engine:
    cdef public object config
    cdef public dict risk, markets, orders, wallets, refs, deposits, withdrawals
    cdef public dict retired_refs, retired_orders, self_limits, refused_deposits
    cdef public object transfers
    cdef public list delayed
    cdef public object _house_order_count, last_seq, last_ts, _seq, _ts
    cdef public list _events
    cdef public dict _touched

    @cython.locals(w=Wallet)
    cpdef list apply(self, c.Command cmd)
    @cython.locals(w=Wallet)
    cpdef Wallet wallet(self, user, currency)
    cpdef Market _market(self, market_id)
    cpdef Order _own_order(self, user, order_id)
    cpdef _emit(self, event)
    @cython.locals(m=Market, pos=Position, wallet=Wallet, o=Order, sel=Py_ssize_t, risk=UserRisk)
    cpdef _place(self, c.PlaceOrder cmd)
    @cython.locals(m=Market, pos=Position, wallet=Wallet, is_back=bint, new_hold=cython.longlong,
                   sel=Py_ssize_t, risk=UserRisk, own=SelfLimits)
    cpdef _vet_place(self, c.PlaceOrder cmd)
    @cython.locals(acct=OwnAccount, at_risk=cython.longlong)
    cpdef _vet_own(self, SelfLimits own, currency, Wallet wallet, long long stake,
                   long long more_at_risk, Order replaced=*)
    @cython.locals(own=SelfLimits)
    cpdef OwnAccount _own_account(self, user, currency)
    cpdef Position _new_position(self, Market m)
    cpdef _register(self, Market m, Order o)
    cpdef _admit(self, Market m, Order o, bint delayed)
    cpdef _placed_event(self, Order o)
    cpdef _check_funds(self, Wallet wallet, long long extra_hold)
    @cython.locals(book=SelectionBook, maker=Order, house_hit=bint)
    cpdef _execute(self, Market m, Order o)
    @cython.locals(mpos=Position, sel=Py_ssize_t, win=cython.longlong, before=cython.longlong,
                   fills=list)
    cpdef _fill(self, Market m, Order taker, Order maker, long long price, long long size)
    @cython.locals(worst=cython.longlong, hold=cython.longlong)
    cpdef _rehold(self, Position pos, Wallet wallet)
    @cython.locals(before=cython.longlong, own=SelfLimits, acct=OwnAccount)
    cpdef _take_off(self, Market m, Order o, long long size, reason, bint lapse)
    @cython.locals(o=Order)
    cpdef _cancel(self, c.CancelOrder cmd)


cdef _deny(denial)
