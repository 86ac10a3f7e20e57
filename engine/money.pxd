# C types for money.py: win_amount is on the order path (see engine.pxd for why).

cpdef long long win_amount(long long stake_minor, long long price) except? -1
