"""A wallet per account and currency: available = balance - held.

`held` is the sum of the account's market holds plus pending withdrawals. System accounts
(house, commission, external) are `exempt` from the funds check; the house is still bound by
its liability limits (risk/).
"""

from .pickling import restore_slots, slot_state


class Wallet:
    __slots__ = ("user", "currency", "balance", "held", "exempt")
    __reduce__ = slot_state  # the plain-class layout: see pickling.py
    __setstate__ = restore_slots

    def __init__(self, user: str, currency: str, exempt: bool = False) -> None:
        self.user = user
        self.currency = currency
        self.balance = 0
        self.held = 0
        self.exempt = exempt

    @property
    def available(self) -> int:
        return self.balance - self.held

    def __repr__(self) -> str:
        return f"Wallet({self.user} {self.currency} bal={self.balance} held={self.held})"
