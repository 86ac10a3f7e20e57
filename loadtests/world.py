"""The load-test world, derived from a few numbers so that the seeder and every Locust process
(here or on other machines) agree on it without talking to each other.

Markets `<prefix>-m00..`, bettor bots `<prefix>-<profile>-0000..` funded per profile, traders,
operators and watchers. Everything is a pure function of `World`; the environment variables
below carry it into Locust processes (compose sets them on the master and every worker).
"""

import os
from dataclasses import dataclass

from pricing.ladder import round_down

# environment variables read by `World.from_env` (and written by `World.env`)
ENV_PREFIX = "BACKLAY_LT_PREFIX"
ENV_MARKETS = "BACKLAY_LT_MARKETS"
ENV_BOTS = "BACKLAY_LT_BOTS"
ENV_WORKERS = "BACKLAY_LT_WORKERS"
ENV_JWT_SECRET = "BACKLAY_JWT_SECRET"
# read by the Locust processes only (loadtests/locustfile.py)
ENV_TRADERS = "BACKLAY_LT_TRADERS"  # trader users in all (Locust fixed_count)
ENV_OPERATORS = "BACKLAY_LT_OPERATORS"  # operator users in all
ENV_STATS_FILE = "BACKLAY_LT_STATS_FILE"  # where the master writes push/gap counts at exit
LOCUST_ENV = (ENV_TRADERS, ENV_OPERATORS, ENV_STATS_FILE)
DEFAULT_JWT_SECRET = "backlay-development-secret-change-me"  # gateway/settings.py's default

CURRENCY = "BDT"
MARKET_MAX_LIABILITY = "50000.00"
MARKET_MIN_STAKE = "2.00"
MARKET_MAX_STAKE = "1000.00"
MARGIN = "0.05"
MARKETS_MAX = 100
BOTS_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of bettor: how often it appears, what it is funded with, how it stakes."""

    name: str
    weight: int  # Locust class weight
    funds: str  # deposited once at seeding
    small_stakes: tuple[int, int]  # whole currency units, inclusive
    large_stakes: tuple[int, int]
    large_share_pct: int  # how often a bet uses large_stakes


PROFILES: dict[str, Profile] = {p.name: p for p in (
    # most bettors: small stakes, now and then a bigger one
    Profile("casual", 10, "1000.00", (2, 20), (50, 200), 5),
    # the minority with large stakes (some above the market maximum: STAKE_TOO_HIGH)
    Profile("whale", 1, "25000.00", (100, 400), (500, 1500), 30),
    # trades back and forth: backs a selection, then lays the same one a tick lower
    Profile("scalper", 3, "5000.00", (20, 100), (100, 300), 10),
    # only backs the favourite (lowest odds) at the best price on offer
    Profile("favourite", 3, "2000.00", (5, 50), (100, 300), 10),
    # a bet slip: legs priced by the server, placed accepting exact / better / any price
    Profile("slip", 3, "1000.00", (2, 25), (50, 150), 5),
)}

# fair odds templates (hundredths); market i uses template i % len, shifted by i
TEMPLATES: tuple[tuple[str, tuple[tuple[str, str, int], ...]], ...] = (
    ("Match Odds", (("home", "Home", 210), ("draw", "Draw", 340), ("away", "Away", 380))),
    ("Total Goals Over/Under 2.5", (("over", "Over 2.5", 190), ("under", "Under 2.5", 200))),
    ("Match Winner", (("p1", "Player 1", 150), ("p2", "Player 2", 270))),
    ("Race Winner", (("r1", "Runner 1", 300), ("r2", "Runner 2", 450), ("r3", "Runner 3", 600),
                     ("r4", "Runner 4", 900))),
)


@dataclass(frozen=True, slots=True)
class MarketSpec:
    market: str
    event: str
    name: str
    selections: tuple[tuple[str, str], ...]  # (id, name)
    fair: dict[str, int]  # selection -> fair odds in hundredths, on the ladder


@dataclass(frozen=True, slots=True)
class World:
    prefix: str = "lt"
    markets: int = 6
    bots: int = 50  # identities per bettor profile
    workers: int = 1  # Locust worker processes sharing the identities
    jwt_secret: str = DEFAULT_JWT_SECRET

    def __post_init__(self):
        if not 1 <= self.markets <= MARKETS_MAX:
            raise ValueError(f"markets must be 1..{MARKETS_MAX}")
        if not 1 <= self.bots <= BOTS_MAX:
            raise ValueError(f"bots must be 1..{BOTS_MAX}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")

    @classmethod
    def from_env(cls, environ=None) -> "World":
        env = os.environ if environ is None else environ
        return cls(prefix=env.get(ENV_PREFIX, "lt"), markets=int(env.get(ENV_MARKETS, 6)),
                   bots=int(env.get(ENV_BOTS, 50)), workers=int(env.get(ENV_WORKERS, 1)),
                   jwt_secret=env.get(ENV_JWT_SECRET) or DEFAULT_JWT_SECRET)

    def env(self) -> dict[str, str]:
        return {ENV_PREFIX: self.prefix, ENV_MARKETS: str(self.markets), ENV_BOTS: str(self.bots),
                ENV_WORKERS: str(self.workers), ENV_JWT_SECRET: self.jwt_secret}

    # -- markets ------------------------------------------------------------------------------

    def market_ids(self) -> list[str]:
        return [f"{self.prefix}-m{i:02d}" for i in range(self.markets)]

    def market_specs(self) -> list[MarketSpec]:
        specs = []
        for i, market in enumerate(self.market_ids()):
            name, selections = TEMPLATES[i % len(TEMPLATES)]
            shift = 1 + (i // len(TEMPLATES)) * 0.07  # later copies are a little longer odds
            fair = {sid: round_down(int(odds * shift)) for sid, _, odds in selections}
            specs.append(MarketSpec(market, f"{self.prefix}-e{i // 2:02d}", name,
                                    tuple((sid, label) for sid, label, _ in selections), fair))
        return specs

    def markets_of_trader(self, trader_index: int, traders: int) -> list[str]:
        """The markets one of `traders` traders manages (every market has one trader)."""
        return [m for i, m in enumerate(self.market_ids()) if i % traders == trader_index % traders]

    # -- identities ---------------------------------------------------------------------------

    def bot(self, profile: str, k: int) -> str:
        return f"{self.prefix}-{profile}-{k % self.bots:04d}"

    def bettors(self) -> list[tuple[str, Profile]]:
        """Every funded bettor identity with its profile."""
        return [(self.bot(name, k), profile) for name, profile in PROFILES.items()
                for k in range(self.bots)]

    def claim(self, n: int, worker_index: int) -> int:
        """The identity number for the n-th user of a class on worker `worker_index`: distinct
        across workers until the pool wraps (then two connections share one user)."""
        return n * self.workers + worker_index % self.workers

    def trader(self, k: int) -> str:
        return f"{self.prefix}-trader-{k}"

    def operator(self, k: int) -> str:
        return f"{self.prefix}-ops-{k}"

    def watcher(self, k: int) -> str:
        return f"{self.prefix}-watch-{k}"

    def seeder(self) -> str:
        return f"{self.prefix}-seeder"
