"""Locust users for Backlay, speaking the real WebSocket protocol (PROTOCOL.md).

    locust -f loadtests/locustfile.py --host ws://127.0.0.1:8765/ws

The world (markets, funded bots) must exist first: `python -m loadtests.seed` or
`backlay simulate`, which does everything. Weighted classes:

- bettors, one class per profile (loadtests/world.py PROFILES): casual small stakes, a few
  whales, scalpers who back then lay the same selection, favourite backers (lowest odds, often
  fill-or-kill), and bet-slip punters accepting "exact", "better" or "any" price; they place,
  preview, cancel (whole or part), replace, cancel_all and read their wallet, pricing from the
  market data they subscribe to;
- traders (`fixed_count` from BACKLAY_LT_TRADERS) moving fair prices and limits on their
  markets and suspending/resuming them;
- operators (BACKLAY_LT_OPERATORS) holding the exposure channel open;
- watchers who only subscribe to market data, checking every delta's seq and the book.

Request names are ops; a business rejection is a success named "op [CODE]" (bots.classify),
so Locust's failures are protocol and transport failures only.
"""

import itertools
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # loaded by path (locust -f): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent  # noqa: E402
from locust import User, between, events, task  # noqa: E402
from locust.runners import WorkerRunner  # noqa: E402

from gateway.auth import make_token  # noqa: E402
from loadtests.bots import Bettor as BettorBrain  # noqa: E402
from loadtests.bots import Trader as TraderBrain  # noqa: E402
from loadtests.book import MarketView  # noqa: E402
from loadtests.client import PUSHES, BotSocket  # noqa: E402
from loadtests.world import ENV_OPERATORS, ENV_STATS_FILE, ENV_TRADERS  # noqa: E402
from loadtests.world import PROFILES, World  # noqa: E402

TOKEN_TTL_S = 6 * 3600
RECONNECT_PAUSE_S = 1.0

WORLD = World.from_env()
COUNTS: Counter = Counter()  # "gap", "crossed": things watchers and bettors noticed
_claims: dict[str, itertools.count] = {}


def _claim(cls_name: str, environment) -> int:
    n = next(_claims.setdefault(cls_name, itertools.count()))
    return WORLD.claim(n, getattr(environment.runner, "worker_index", 0))


class BacklayUser(User):
    """One WebSocket connection with an identity; reconnects (reported) when it drops."""

    abstract = True
    roles: tuple[str, ...] = ("bettor",)
    cancel_on_disconnect = False

    def identity(self, k: int) -> str:
        raise NotImplementedError

    def on_start(self) -> None:
        self.rng = random.Random()
        self.index = _claim(type(self).__name__, self.environment)
        self.user_id = self.identity(self.index)
        token = make_token(WORLD.jwt_secret, self.user_id, list(self.roles), ttl_s=TOKEN_TTL_S)
        self.socket = BotSocket(self.environment.events, self.host, token,
                                on_push=self.on_push,
                                cancel_on_disconnect=self.cancel_on_disconnect)
        if self.socket.connect():
            self.after_connect()

    def on_stop(self) -> None:
        self.socket.close()

    def on_push(self, msg: dict) -> None:
        pass

    def after_connect(self) -> None:
        pass

    def connected(self) -> bool:
        """True if the connection is up, reconnecting first if it dropped."""
        if self.socket.alive:
            return True
        gevent.sleep(RECONNECT_PAUSE_S)
        if self.socket.connect():
            self.after_connect()
            return True
        return False

    def send(self, payload: dict | None, label: str | None = None) -> dict | None:
        if payload is None:
            return None
        return self.socket.request(payload, label)


# -- bettors ----------------------------------------------------------------------------------


class Bettor(BacklayUser):
    abstract = True
    profile = "casual"
    wait_time = between(0.5, 2.0)

    def identity(self, k: int) -> str:
        return WORLD.bot(self.profile, k)

    def on_start(self) -> None:
        rng = random.Random()
        markets = WORLD.market_ids()
        # a bettor follows the few markets it bets on, not the whole exchange
        followed = rng.sample(markets, min(len(markets), rng.choice((1, 2, 2, 3))))
        self.brain = BettorBrain(PROFILES[self.profile], followed, rng)
        self.cancel_on_disconnect = rng.random() < 0.3
        super().on_start()

    def after_connect(self) -> None:
        depth = self.brain.rng.choice((1, 3, 3, 5))
        self.ask({"op": "subscribe", "markets": self.brain.markets, "depth": depth})
        self.ask({"op": "orders"})
        self.ask({"op": "wallet"})

    def on_push(self, msg: dict) -> None:
        if self.brain.on_push(msg):
            COUNTS["gap"] += 1

    def ask(self, payload: dict | None, label: str | None = None) -> dict | None:
        reply = self.send(payload, label)
        if reply is not None:
            self.brain.on_reply(payload["op"], reply)
        return reply

    def ready(self) -> bool:
        if not self.connected():
            return False
        if self.brain.resubscribe:
            self.ask({"op": "subscribe", "markets": sorted(self.brain.resubscribe), "depth": 3},
                     label="subscribe (gap)")
        return True

    @task(10)
    def place(self) -> None:
        if not self.ready():
            return
        if self.brain.short_of_money():
            self.ask(self.brain.cancel_all())
            return
        req = self.brain.place()
        self.ask(req if req is not None else {"op": "wallet"})

    @task(3)
    def cancel(self) -> None:
        if self.ready():
            self.ask(self.brain.cancel())

    @task(2)
    def replace(self) -> None:
        if self.ready():
            self.ask(self.brain.replace())

    @task(1)
    def cancel_all(self) -> None:
        if self.ready():
            self.ask(self.brain.cancel_all())

    @task(1)
    def wallet(self) -> None:
        if self.ready():
            self.ask({"op": "wallet"})

    @task(1)
    def preview(self) -> None:
        if self.ready():
            self.ask(self.brain.preview())


def _bettor_class(profile: str, extra: dict | None = None) -> type:
    attrs = {"profile": profile, "weight": PROFILES[profile].weight,
             "__module__": __name__, **(extra or {})}
    name = "".join(part.capitalize() for part in profile.split("_")) + "Bettor"
    return type(name, (Bettor,), attrs)


@task(12)
def _slip(user: Bettor) -> None:
    """Set a slip, look at it for a moment (prices may move), then place it."""
    if not user.ready():
        return
    reply = user.ask(user.brain.slip())
    if reply is None or reply.get("op") != "slip":
        return
    gevent.sleep(user.brain.rng.uniform(0.0, 1.5))
    accept = user.brain.accept()
    user.ask({"op": "slip.place", "accept": accept}, label=f"slip.place {accept}")


CasualBettor = _bettor_class("casual")
WhaleBettor = _bettor_class("whale")
ScalperBettor = _bettor_class("scalper")
FavouriteBettor = _bettor_class("favourite")
SlipBettor = _bettor_class("slip", {"slip": _slip})


# -- traders, operators, watchers -------------------------------------------------------------


class Trader(BacklayUser):
    fixed_count = int(os.environ.get(ENV_TRADERS, 1))
    roles = ("trader",)
    wait_time = between(0.5, 2.0)

    def identity(self, k: int) -> str:
        return WORLD.trader(k)

    def after_connect(self) -> None:
        mine = set(WORLD.markets_of_trader(self.index, max(1, self.fixed_count)))
        specs = [s for s in WORLD.market_specs() if s.market in mine]
        self.brain = TraderBrain({s.market: s.fair for s in specs}, random.Random())
        for spec in specs:  # a market a previous run left suspended opens again
            self.send({"op": "market.status", "market": spec.market, "status": "open"})

    @task(6)
    def move_prices(self) -> None:
        if self.connected():
            self.send(self.brain.prices())

    @task(2)
    def set_limits(self) -> None:
        if self.connected():
            self.send(self.brain.limits())

    @task(1)
    def suspend_and_resume(self) -> None:
        if not self.connected():
            return
        market = self.brain.market()
        if market is None:
            return
        self.send({"op": "market.status", "market": market, "status": "suspended"},
                  label="market.status suspended")
        gevent.sleep(self.brain.rng.uniform(0.3, 1.5))
        self.send({"op": "market.status", "market": market, "status": "open"},
                  label="market.status open")


class Operator(BacklayUser):
    fixed_count = int(os.environ.get(ENV_OPERATORS, 1))
    roles = ("operator",)
    wait_time = between(5.0, 15.0)

    def identity(self, k: int) -> str:
        return WORLD.operator(k)

    def after_connect(self) -> None:
        self.send({"op": "subscribe", "channel": "exposure"}, label="subscribe exposure")

    @task
    def resubscribe(self) -> None:
        """Operators' pages reload now and then; the channel stays open in between."""
        if self.connected():
            self.send({"op": "unsubscribe", "channel": "exposure"},
                      label="unsubscribe exposure")
            self.send({"op": "subscribe", "channel": "exposure"}, label="subscribe exposure")


class Watcher(BacklayUser):
    weight = 3
    wait_time = between(2.0, 5.0)

    def identity(self, k: int) -> str:
        return WORLD.watcher(k)

    def after_connect(self) -> None:
        rng = self.rng
        markets = WORLD.market_ids()
        self.views = {m: MarketView(m) for m in rng.sample(markets, rng.randint(1, len(markets)))}
        self.stale: set[str] = set()
        self.send({"op": "subscribe", "markets": sorted(self.views),
                   "depth": rng.randint(1, 10)})

    def on_push(self, msg: dict) -> None:
        if msg.get("op") != "mkt":
            return
        view = self.views.get(msg.get("market"))
        if view is None:
            return
        if not view.apply(msg):
            COUNTS["gap"] += 1
            self.stale.add(view.market)
        elif view.crossed():
            COUNTS["crossed"] += 1

    @task(5)
    def watch(self) -> None:
        if self.connected() and self.stale:
            markets, self.stale = sorted(self.stale), set()
            self.send({"op": "subscribe", "markets": markets, "depth": 3},
                      label="subscribe (gap)")

    @task(1)
    def change_depth(self) -> None:
        if self.connected():
            self.send({"op": "subscribe", "markets": sorted(self.views),
                       "depth": self.rng.randint(1, 10)})


# -- counts that are not requests: pushes, seq gaps, crossed books -----------------------------


def _snapshot() -> dict[str, int]:
    counts = {f"push.{op}": n for op, n in PUSHES.items()}
    counts.update(COUNTS)
    return counts


@events.report_to_master.add_listener
def _report(client_id, data, **kwargs) -> None:
    data["backlay_counts"] = _snapshot()
    PUSHES.clear()
    COUNTS.clear()


@events.worker_report.add_listener
def _collect(client_id, data, **kwargs) -> None:
    for key, n in data.get("backlay_counts", {}).items():
        if key.startswith("push."):
            PUSHES[key[5:]] += n
        else:
            COUNTS[key] += n


@events.quitting.add_listener
def _write_counts(environment, **kwargs) -> None:
    path = os.environ.get(ENV_STATS_FILE)
    if path and not isinstance(environment.runner, WorkerRunner):
        Path(path).write_text(json.dumps(_snapshot(), indent=2, sort_keys=True))
