"""The exchange's domain core: markets, order books, matching, wallets, exposure, settlement.

Pure and synchronous: `Engine.apply(command) -> list[Event]`. No I/O, no clock, no randomness;
time (`ts`) and the sequence number (`seq`) arrive on every command, and ids are derived from
`seq`, so replaying the same commands yields the same events byte for byte.

Invariants kept here (DESIGN.md §3, checked by `Engine.validate()`):
  1. money is conserved: every movement is a ledger entry set that sums to zero;
  2. no user wallet has available < 0, and `held` equals the exposures recomputed from scratch;
  3. no book is crossed;
  4. every order's matched + remaining + cancelled + lapsed == size.
"""
