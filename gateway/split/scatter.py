"""Gateway side, with several shards: requests every shard answers, and pushes summed over them.

A bettor's orders and wallets are on every shard, so `orders`, `wallet`, `cancel_all` without a
market, the operator's `exposure` channel, the `catalogue` channel, a user's `limits.set` and a
bettor's own limits (`selflimits`, `selflimits.set`, `selfexclude`) go to every shard, each
sent with a marker for an id, and the shards' parts make one reply (`Scatter`). Frame order
holds as in one process: a shard's frames that come after its part (pushes about a later
state) wait until the merged reply is sent (`Gathering`); frames from a shard that has not
answered yet pass, as they report an earlier state.

Pushes summed over shards: a bettor's `wallet` push shows the whole wallet (`WalletBook`: each
shard's view, balance plus the net it transferred away, summed; engine/transfers.py), and the
operator's `exposure` push the markets of every shard (`ExposureBook`).
"""

import itertools
from collections.abc import Callable

import orjson

from engine.money import format_money, parse_money

from . import wire

MARKER = "\x00"  # request ids of scattered parts: "\x00<n>", never a client's own on this path
_MARKER_JSON = b'"\\u0000'  # how it looks in a frame


def is_error(part: dict) -> bool:
    return part.get("op") == "error"


class Scatter:
    """One request sent as parts to one or more shards, each part with its own marker for an id;
    `merge` makes the reply from the parts' final frames, in `order`."""

    def __init__(self, request_id, order: list[tuple[str, int]],
                 merge: Callable[[list[dict]], dict], on_done=None, on_part=None) -> None:
        self.request_id = request_id
        self.order = order  # (marker, shard) of every part, in the order `merge` takes them
        self.markers = {marker for marker, _ in order}
        self.parts: dict[tuple[str, int], list[dict]] = {}
        self.heard: set[int] = set()  # shards that have answered at least one part
        self.merge = merge
        self.on_done = on_done  # (parts by (marker, shard)) -> None, before the reply is sent
        self.on_part = on_part  # (marker, shard, final frame) -> None, as each part completes

    def add(self, marker: str, shard: int, frame: dict, final: bool) -> bool:
        """A frame of a part; True once every part is complete."""
        self.heard.add(shard)
        key = (marker, shard)
        self.parts.setdefault(key, []).append(frame)
        if final:
            self.parts[key].append(None)  # complete
            if self.on_part is not None:
                self.on_part(marker, shard, frame)
        return all(key in self.parts and self.parts[key][-1] is None for key in self.order)

    def reply(self) -> list[dict]:
        """The frames to send for the whole request, with the request's own id."""
        if self.on_done is not None:
            self.on_done(self.parts)
        finals = [self.parts[key][-2] for key in self.order]
        error = next((f for f in finals if is_error(f)), None)
        if error is not None:
            return [{**error, "id": self.request_id}]
        # frames before a part's final one (subscribed, before an exposure picture) are the
        # same from every shard: the first shard's go first
        first = self.parts[self.order[0]][:-2]
        return [{**f, "id": self.request_id} for f in first] + [
            {**self.merge(finals), "id": self.request_id}]


class Gathering:
    """One connection's scatters in progress, and the frames held behind them: per shard, in
    the order that shard sent them (shards are independent: one's held frame never holds
    back another's)."""

    def __init__(self) -> None:
        self.scatters: list[Scatter] = []
        # shard -> [(blocking scatters, kind, frame)]: a frame waits while a scatter it came
        # after (in its shard's order) is in progress, or behind one of its shard that does
        self.held: dict[int, list[tuple[set, int, bytes]]] = {}

    def on_frame(self, shard: int, kind: int, payload: bytes, deliver) -> bool:
        """Take a frame for the connection if it is a scatter's part or must wait; `deliver`
        (shard, kind, payload) sends one on (shard None: a merged reply). False: deliver it now
        as usual."""
        if kind != wire.DROPPABLE and _MARKER_JSON in payload:
            frame = orjson.loads(payload)
            marker = frame.get("id")
            for scatter in self.scatters:
                if marker in scatter.markers:
                    final = kind in (wire.REPLY, wire.ANSWERED)
                    if scatter.add(marker, shard, frame, final):
                        self._finish(scatter, deliver)
                    return True
        blockers = {s for s in self.scatters if shard in s.heard}
        queue = self.held.get(shard)
        if blockers or queue:
            self.held.setdefault(shard, []).append((blockers, kind, payload))
            return True
        return False

    def _finish(self, scatter: Scatter, deliver) -> None:
        self.scatters.remove(scatter)
        frames = scatter.reply()
        for i, frame in enumerate(frames):
            deliver(None, wire.REPLY if i == len(frames) - 1 else wire.FRAME,
                    orjson.dumps(frame))
        for shard, queue in list(self.held.items()):
            for blockers, _, _ in queue:
                blockers.discard(scatter)
            while queue and not queue[0][0]:
                _, kind, payload = queue.pop(0)
                deliver(shard, kind, payload)
            if not queue:
                del self.held[shard]

    @property
    def idle(self) -> bool:
        return not self.scatters and not self.held


_markers = itertools.count(1)


def new_marker() -> str:
    return f"{MARKER}{next(_markers)}"


# -- merges ---------------------------------------------------------------------------------------


def minor(text: str) -> int:
    """A wallet figure of one shard's view, which may be negative (a shard where the bettor
    has lost money another shard sent: engine/transfers.py)."""
    return -parse_money(text[1:]) if text.startswith("-") else parse_money(text)


def sum_wallets(wallets: list[dict]) -> dict:
    balance = sum(minor(w["balance"]) for w in wallets)
    held = sum(minor(w["held"]) for w in wallets)
    return {"currency": wallets[0]["currency"], "balance": format_money(balance),
            "held": format_money(held), "available": format_money(balance - held)}


def merge_wallet(parts: list[dict]) -> dict:
    """The `wallet` reply: each currency's wallet summed over the shards."""
    by_currency: dict[str, list[dict]] = {}
    for part in parts:
        for w in part["wallets"]:
            by_currency.setdefault(w["currency"], []).append(w)
    wallets = [sum_wallets(ws) for ws in by_currency.values()]
    return {"op": "wallet", **wallets[0], "wallets": wallets}


def merge_orders(parts: list[dict]) -> dict:
    return {"op": parts[0]["op"], "orders": [o for part in parts for o in part["orders"]]}


def merge_exposure(parts: list[dict]) -> dict:
    return {"op": "exposure", "markets": [m for part in parts for m in part["markets"]]}


def first(parts: list[dict]) -> dict:
    return parts[0]


def merge_selflimits(home: dict, views: list[dict]) -> dict:
    """A bettor's own limits (SELFLIMITS, one currency) over the shards: the limits, raises
    pending and exclusion as the home shard holds them (every shard is given the same), what
    was used summed over the shards (each counts its own markets; deposits are all at home)."""
    limits = {}
    for name, entry in home["limits"].items():
        entries = [view["limits"][name] for view in views]
        used = sum(minor(e["used"]) for e in entries)
        limit = entry["limit"]
        entry = {**entry, "used": format_money(used),
                 "left": None if limit is None else format_money(max(minor(limit) - used, 0))}
        for part in ("settled_loss", "at_risk"):  # the two halves of a loss limit's use
            if part in entry:
                entry[part] = format_money(sum(minor(e[part]) for e in entries))
        limits[name] = entry
    return {**home, "limits": limits}


def merge_excluded(home: dict, parts: list[dict]) -> dict:
    """`selfexclude` over the shards: until when (the home shard's), every shard's cancels."""
    return {**home, "cancelled": [o for part in parts for o in part["cancelled"]]}


class WalletBook:
    """Per user on this gateway: each shard's view of each wallet, to push the sum. Filled when
    a connection of the user starts watching its orders (the `orders` request reads every
    shard's wallets in the same step), kept while one watches."""

    def __init__(self, shard_count: int) -> None:
        self.shard_count = shard_count
        self.views: dict[str, dict[str, dict[int, tuple[int, int]]]] = {}
        self.watchers: dict[str, int] = {}

    def note(self, user: str, shard: int, wallet: dict) -> None:
        self.views.setdefault(user, {}).setdefault(wallet["currency"], {})[shard] = (
            minor(wallet["balance"]), minor(wallet["held"]))

    def total(self, user: str, currency: str) -> dict | None:
        views = self.views.get(user, {}).get(currency, {})
        if len(views) < self.shard_count:
            return None
        balance = sum(v[0] for v in views.values())
        held = sum(v[1] for v in views.values())
        return {"currency": currency, "balance": format_money(balance),
                "held": format_money(held), "available": format_money(balance - held)}

    def watching(self, user: str) -> None:
        self.watchers[user] = self.watchers.get(user, 0) + 1

    def gone(self, user: str) -> None:
        left = self.watchers.get(user, 0) - 1
        if left > 0:
            self.watchers[user] = left
        else:
            self.watchers.pop(user, None)
            self.views.pop(user, None)


class ExposureBook:
    """Per operator connection: each shard's last exposure picture, to push them as one."""

    def __init__(self) -> None:
        self.pictures: dict[int, dict[int, list]] = {}  # connection -> shard -> markets

    def push(self, conn: int, shard: int, picture: dict) -> dict:
        pictures = self.pictures.setdefault(conn, {})
        pictures[shard] = picture["markets"]
        return {"op": "exposure",
                "markets": [m for k in sorted(pictures) for m in pictures[k]]}
