# C types for book.py: see engine.pxd for why.

cimport cython

from .order cimport Order


cdef class Level:
    cdef public object orders
    cdef public long long total
    cdef public Py_ssize_t dead


cdef class HalfBook:
    cdef public object levels
    cdef public int best_at
    cdef public object best
    cpdef _drop_level(self, price)
    @cython.locals(level=Level)
    cpdef add(self, Order order)
    @cython.locals(level=Level)
    cpdef reduce(self, Order order, long long size)
    # typed, so that a walk through a deep level reads each order's remaining as a C field
    # (bench/listing.py: one order with 50,000 ahead of it, 1.9 -> 0.23 ms)
    @cython.locals(level=Level, queue=object, o=Order, ahead=cython.longlong)
    cpdef long long queue_ahead(self, Order order) except? -1
    @cython.locals(level=Level, o=Order, run=cython.longlong, left=Py_ssize_t)
    cpdef dict queues_ahead(self, object price, set wanted)


cdef class SelectionBook:
    cdef public HalfBook backs, lays
    cpdef HalfBook half_of(self, Order order)
    @cython.locals(half=HalfBook, level=Level, limit=cython.longlong)
    cpdef list match(self, Order taker, long long want)


@cython.locals(maker=Order, remaining=cython.longlong, size=cython.longlong)
cdef long long _take(Level level, object price, long long want, list fills) except? -1
