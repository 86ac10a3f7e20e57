# C types for fast_requests.py (Cython reads this file when setup.py compiles the module).
#
# Why: nearly every frame an exchange reads is a place or a cancel, and compiled as it was,
# checking one still cost some 12,000 instructions (the in-process order path under
# callgrind): each helper and each data.get went through a Python call, and the unknown-field
# check built a keys view. Typed, `data` is read with the dict's C functions and the helpers
# are C calls.

cimport cython

cdef set _ids
cdef dict _amounts
cdef frozenset _PLACE_FIELDS, _CANCEL_FIELDS, _REPLACE_FIELDS
cdef dict _SIDES, _PERSISTENCE, _TIFS

cdef object _amount(object text)
cdef bint _is_id(object value) except -1
cdef bint _only(dict data, frozenset names) except -1
cpdef object order_command(dict data, object user)
cdef object _place(dict data, object user)
cdef object _cancel(dict data, object user)
cdef object _replace(dict data, object user)
