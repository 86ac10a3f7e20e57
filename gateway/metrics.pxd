# C types for metrics.py (Cython reads this file when setup.py compiles the module).
#
# Why: the ack latency is observed once per order, on the order path; as an extension type its
# buckets are found and counted in C. The rest of the module runs compiled as it is.

cdef class _PlainHistogram:
    cdef public object name, documentation
    cdef public list bounds, counts
    cdef public double total
    cpdef observe(self, double value)
