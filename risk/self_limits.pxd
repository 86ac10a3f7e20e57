# C types for self_limits.py: the order path records and checks a bettor's own limits on every
# order and cancel (see engine/engine.pxd for why).

cdef class OwnAccount:
    cdef public list limits, pending
    cdef public bint limited
    cdef public long long day_end_ms, week_end_ms, day_since_seq, week_since_seq
    cdef public long long deposited_day_minor, deposited_week_minor, staked_day_minor
    cdef public long long staked_week_minor, settled_day_minor, settled_week_minor
    cdef public long long withdrawing_minor
    cpdef roll(self, long long ts_ms, long long seq)
    cpdef record_stake(self, long long stake_minor, long long ts_ms, long long seq)
    cpdef give_back(self, long long placed_seq, long long stake_minor, long long ts_ms,
                    long long seq)
    cpdef record_deposit(self, long long amount_minor, long long ts_ms, long long seq)
    cpdef record_settled(self, long long pnl_minor, long long ts_ms, long long seq)
    cpdef long long used(self, int kind, int period, long long ts_ms) except? -1
    cpdef bint counted(self, long long placed_seq, int period, long long ts_ms) except -1
    cpdef limit_at(self, Py_ssize_t i, long long ts_ms)


cdef class SelfLimits:
    cdef public long long excluded_until_ms
    cdef public dict accounts
    cpdef OwnAccount account(self, currency)


cpdef long long day_end(long long ts_ms) except? -1
cpdef long long week_end(long long ts_ms) except? -1
cpdef check_excluded(SelfLimits own, long long ts_ms)
cpdef check_deposit(OwnAccount acct, long long amount_minor, long long ts_ms)
cpdef check_stake(OwnAccount acct, long long stake_minor, long long ts_ms,
                  long long replaced_seq=*, long long replaced_minor=*)
cpdef check_loss(OwnAccount acct, long long at_risk_minor, long long more_minor, long long ts_ms)
