"""What a subscribed client knows about a market, built from `mkt` pushes (PROTOCOL.md).

An image (`img: true`) replaces everything; a delta lists only changed levels, size "0.00"
removing one. `seq` rises by one per push on a subscription, so a delta whose seq is not the
last seen + 1 is a gap: the view is no longer trustworthy and the client must resubscribe.
Prices are kept as the wire's strings and compared as int hundredths.
"""

from dataclasses import dataclass, field


def hundredths(text: str) -> int:
    """"2.52" -> 252 (wire odds and money have at most two decimals)."""
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def from_hundredths(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


@dataclass(slots=True)
class SelectionView:
    id: str
    to_back: dict[int, int] = field(default_factory=dict)  # price -> size: what a backer takes
    to_lay: dict[int, int] = field(default_factory=dict)  # price -> size: what a layer takes
    ltp: int | None = None

    def best_to_back(self) -> int | None:
        """The highest odds a backer can take now."""
        return max(self.to_back) if self.to_back else None

    def best_to_lay(self) -> int | None:
        """The lowest odds a layer can take now."""
        return min(self.to_lay) if self.to_lay else None


@dataclass(slots=True)
class MarketView:
    market: str
    seq: int = 0
    status: str = "INACTIVE"
    in_play: bool = False
    selections: dict[str, SelectionView] = field(default_factory=dict)
    gaps: int = 0

    def apply(self, push: dict) -> bool:
        """Apply one `mkt` push; False if it revealed a gap (the caller resubscribes; further
        deltas are ignored until the next image)."""
        seq = push.get("seq", 0)
        if push.get("img"):
            self.selections = {}
        elif seq != self.seq + 1:
            self.gaps += 1
            self.seq = -1  # poisoned until an image arrives
            return False
        self.seq = seq
        if "status" in push:
            self.status = push["status"]
        if "in_play" in push:
            self.in_play = push["in_play"]
        for sel in push.get("selections", ()):
            view = self.selections.setdefault(sel["id"], SelectionView(sel["id"]))
            for key, levels in (("to_back", view.to_back), ("to_lay", view.to_lay)):
                for price, size in sel.get(key, ()):
                    p, s = hundredths(price), hundredths(size)
                    if s:
                        levels[p] = s
                    else:
                        levels.pop(p, None)
            if sel.get("ltp"):
                view.ltp = hundredths(sel["ltp"])
        return True

    @property
    def trusted(self) -> bool:
        return self.seq > 0

    def favourite(self) -> SelectionView | None:
        """The selection with the lowest odds to back (the market's favourite)."""
        priced = [s for s in self.selections.values() if s.best_to_back() is not None]
        return min(priced, key=lambda s: s.best_to_back()) if priced else None

    def crossed(self) -> list[str]:
        """Selections whose best back price is not below the best lay price (never expected)."""
        return [s.id for s in self.selections.values()
                if s.to_back and s.to_lay and s.best_to_back() >= s.best_to_lay()]
