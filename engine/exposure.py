"""A user's position on one market, and the hold it needs.

For each selection k, outcome[k] is the user's profit/loss if k wins: matched bets at their exact
win amounts plus, for every unmatched order, the worse of matched/unmatched for that outcome
(min(0, contribution)). The hold is max(0, -min(outcome)). Kept as

    outcome[k] = edge[k] + const

so every fill or order change is O(1) and the hold is one `min()` over the selections:
  matched back  (stake x, win w) on s: edge[s] += w + x, const -= x
  matched lay   (stake x, win w) on s: edge[s] -= w + x, const += x
  unmatched back (remaining r)   on s: edge[s] += r,     const -= r   (loses r if s loses)
  unmatched lay  (liability q)   on s: edge[s] -= q                  (loses q if s wins)
  pool stake r (any selection):         const -= r                    (the stake is at risk)
A back and a lay on one selection therefore net off, as traders expect. `win`/`lose` keep the
matched P&L per selection for settlement (dead heats need both halves).

A removed selection (a non-runner) cannot win: its bets are void (win, lose and their const
terms go) and its edge is IMPOSSIBLE, so `min()` never picks it and the hold is the worst case
of the outcomes left, with nothing added to the order path.
"""

from .money import win_amount
from .pickling import restore_slots, slot_state

# The edge of an outcome that can no longer happen: far above any outcome the money in the
# exchange allows, and far enough below 2**63 that adding the const (or a new order's size, in
# `hold_with`) never overflows the C sums of exposure.pxd.
IMPOSSIBLE = 2**62


def lowest(values: list) -> int:
    """min(values) of a non-empty list of ints: a C loop once compiled (exposure.pxd)."""
    low = values[0]
    for v in values:
        if v < low:
            low = v
    return low


def lowest_with(values: list, at: int, value: int) -> int:
    """min(values) if values[at] were `value`, without building that list."""
    low = value
    for i in range(len(values)):
        if i != at:
            v = values[i]
            if v < low:
                low = v
    return low


class Position:
    __slots__ = ("edge", "const", "hold", "win", "lose", "wallet")
    __reduce__ = slot_state  # the plain-class layout: see pickling.py
    __setstate__ = restore_slots

    def __init__(self, selections: int) -> None:
        self.wallet = None  # the wallet this position's hold is taken from
        zeros = [0] * selections  # one repeat and two copies: compiled, a repeat is the dearer
        self.edge = zeros
        self.const = 0
        self.hold = 0
        self.win = zeros[:]  # matched P&L on bets on s if s wins
        self.lose = zeros[:]  # matched P&L on bets on s if s loses

    def needed_hold(self) -> int:
        worst = lowest(self.edge) + self.const
        return -worst if worst < 0 else 0

    def add_matched(self, sel: int, is_back: bool, size: int, win: int) -> None:
        if is_back:
            self.win[sel] += win
            self.lose[sel] -= size
            self.edge[sel] += win + size
            self.const -= size
        else:
            self.win[sel] -= win
            self.lose[sel] += size
            self.edge[sel] -= win + size
            self.const += size

    def fill(self, sel: int, is_back: bool, price: int, before: int, size: int, win: int) -> None:
        """`size` of an unmatched order at its own `price` matched, winning `win`.

        The unmatched part's terms come off and the matched part's go on, in one step: for a
        back the stake terms cancel and only the win remains.
        """
        if is_back:
            self.win[sel] += win
            self.lose[sel] -= size
            self.edge[sel] += win
        else:
            after = before - size
            freed = before * (price - 100) // 100 - after * (price - 100) // 100
            self.win[sel] -= win
            self.lose[sel] += size
            self.edge[sel] += freed - win - size
            self.const += size

    def hold_with(self, sel: int, is_back: bool, price: int, size: int) -> int:
        """The hold if a new unmatched order of `size` were added (no state change)."""
        edge = self.edge
        if is_back:
            worst = lowest_with(edge, sel, edge[sel] + size) + self.const - size
        else:
            worst = lowest_with(edge, sel, edge[sel] - win_amount(size, price)) + self.const
        return -worst if worst < 0 else 0

    def add_unmatched(self, sel: int, is_back: bool, price: int, before: int, after: int) -> None:
        """An unmatched order's remaining moved from `before` to `after`."""
        if is_back:
            delta = after - before
            self.edge[sel] += delta
            self.const -= delta
        else:
            self.edge[sel] -= win_amount(after, price) - win_amount(before, price)

    def add_pool_stake(self, size: int) -> None:
        self.const -= size

    def remove_outcome(self, sel: int) -> None:
        """Selection `sel` will not run: void the matched bets on it and leave its outcome out
        of the worst case. Its unmatched orders must be gone already, so its edge holds only
        matched terms (win - lose) and the const only their stakes (lose)."""
        self.const -= self.lose[sel]
        self.win[sel] = 0
        self.lose[sel] = 0
        self.edge[sel] = IMPOSSIBLE

    def hold_if(self, changes: list[tuple[int, bool, int, int, int]]) -> int:
        """The hold after hypothetical unmatched changes (sel, is_back, price, before, after)."""
        edge = self.edge[:]
        const = self.const
        for sel, is_back, price, before, after in changes:
            if is_back:
                edge[sel] += after - before
                const -= after - before
            else:
                edge[sel] -= win_amount(after, price) - win_amount(before, price)
        worst = min(edge) + const
        return -worst if worst < 0 else 0
