# C types for rules.py: the checks run on every order (see engine/engine.pxd for why).

cimport cython


cdef class MarketLimits:
    cdef public object min_stake_minor, max_stake_minor, max_liability_minor
    cdef public object selection_max_liability_minor


cdef class UserLimits:
    cdef public object max_stake_minor, daily_stake_minor, weekly_stake_minor, stake_factor
    cdef public object max_exposure_minor


cdef class StakeWindows:
    cdef public long long day_index, day_total_minor, week_index, week_total_minor
    cdef public long long day_end_ms, week_end_ms


cdef class Velocity:
    cdef public long long orders_max, window_ms
    cdef public object _stamps_ms
    cpdef check(self, long long ts_ms)
    cpdef record(self, long long ts_ms)


cpdef check_market_stake(MarketLimits limits, long long stake_minor)
cpdef effective_max_stake(UserLimits user, market_max_stake_minor)
@cython.locals(day_total=cython.longlong, week_total=cython.longlong)
cpdef check_user_stake(UserLimits user, StakeWindows windows, long long stake_minor,
                       long long ts_ms, market_max_stake_minor)
@cython.locals(day=cython.longlong, week=cython.longlong)
cpdef record(StakeWindows windows, long long stake_minor, long long ts_ms)
cpdef check_max_exposure(UserLimits user, long long new_market_exposure_minor)
cpdef long long day_index(long long ts_ms) except? -1
cpdef long long week_index(long long ts_ms) except? -1
