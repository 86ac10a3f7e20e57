# C types for user_risk.py: see engine.pxd for why.

from risk cimport rules
from risk.rules cimport StakeWindows, Velocity


cdef class UserRisk:
    cdef public object limits
    cdef public StakeWindows windows
    cdef public Velocity velocity
    cpdef record(self, long long stake_minor, long long ts_ms)
