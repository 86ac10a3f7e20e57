"""Pure risk rules: stake limits, user limits, velocity, house liability (rules.py), and the
bettors' own responsible-gambling limits and self-exclusion (self_limits.py).

Each rule answers allow (None) or deny with a stable `Code` and a human reason. Running totals are
kept by the caller (the engine), so every check is O(1) on the hot path. No I/O, clock or
randomness: windows are computed from the command timestamp so a replay agrees.
"""
