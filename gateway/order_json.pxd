# C types for order_json.py: the Order's amounts are read as C integers and formatted as such.

cimport cython

from engine.book cimport SelectionBook
from engine.market cimport Market
from engine.order cimport Order

cdef list _small_texts
cdef Py_ssize_t SMALL_AMOUNTS

@cython.locals(text=str)
cdef str _money(long long minor)

cdef str _id(str text)

@cython.locals(o=Order, m=Market, book=SelectionBook, price="long long", size="long long", matched="long long",
               remaining="long long", cancelled="long long", lapsed="long long",
               queue_ahead="long long")
cpdef bytes order_json(object engine, str oid)
