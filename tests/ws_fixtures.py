"""A real `backlay serve` process and real WebSocket clients, for tests/test_ws_*.py.

The server runs once per test session (once per WebSocket library: picows and websockets, so
every scenario runs against both) as a subprocess (`python -m gateway.cli serve`) with
embedded Redis/Postgres in a temporary --var-dir and free ports, configured through BACKLAY_*
environment variables with small limits so the abuse tests are quick. Teardown sends SIGTERM
and requires a graceful exit (status 0).

Every test gets fresh, uniquely named users and markets, so tests never depend on each other.
A test module opts in with

    pytest.register_assert_rewrite("tests.ws_fixtures")  # before importing from it
    from tests.ws_fixtures import Harness, ...
    pytest_plugins = ["tests.ws_fixtures"]  # one server for every module that asks

and writes its scenario as a coroutine run through the `ws` fixture (asyncio.run inside a
sync test; pytest-asyncio is not a dependency):

    def test_something(ws):
        async def scenario(h: Harness):
            trader = await h.trader()
            market = await h.market(trader)
            alice = await h.bettor("alice", "100.00")
            reply = await alice.rpc({"op": "wallet"})
            ...
        ws(scenario)
"""

import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.auth import make_token
from gateway.split.shards import ShardMap
from gateway.webhooks import sign

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "ws-tests-jwt-secret-long-enough-for-hs256"
WEBHOOK_SECRET = "ws-tests-webhook-secret"
ALLOWED_ORIGIN = "http://allowed.example"
CURRENCY = "BDT"
CURRENCIES = ["BDT", "USD"]  # configured: the default first

# small limits so abuse tests finish quickly (see gateway/settings.py for the names)
HEARTBEAT_S = 1.0
AUTH_TIMEOUT_S = 1.0
CONFLATION_MS = 20
MESSAGES_PER_S_MAX = 200
MESSAGE_BURST_MAX = 100
SUBSCRIPTIONS_MAX = 50
SEND_QUEUE_MAX = 200
FRAME_BYTES_MAX = 64 * 1024
EXPOSURE_PUSH_MS = 250

SERVER_ENV = {
    "BACKLAY_JWT_SECRET": JWT_SECRET,
    "BACKLAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "BACKLAY_ALLOWED_ORIGINS": json.dumps([ALLOWED_ORIGIN]),
    "BACKLAY_AUTH_TIMEOUT_S": str(AUTH_TIMEOUT_S),
    "BACKLAY_HEARTBEAT_S": str(HEARTBEAT_S),
    "BACKLAY_CONFLATION_MS": str(CONFLATION_MS),
    "BACKLAY_MESSAGES_PER_S_MAX": str(MESSAGES_PER_S_MAX),
    "BACKLAY_MESSAGE_BURST_MAX": str(MESSAGE_BURST_MAX),
    "BACKLAY_SUBSCRIPTIONS_MAX": str(SUBSCRIPTIONS_MAX),
    "BACKLAY_SEND_QUEUE_MAX": str(SEND_QUEUE_MAX),
    "BACKLAY_FRAME_BYTES_MAX": str(FRAME_BYTES_MAX),
    "BACKLAY_EXPOSURE_PUSH_MS": str(EXPOSURE_PUSH_MS),
    "BACKLAY_CURRENCY": CURRENCY,
    "BACKLAY_CURRENCIES": json.dumps(CURRENCIES),
}

START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
REPLY_TIMEOUT_S = 5.0
SCENARIO_TIMEOUT_S = 30.0

_URL = re.compile(r"^\s*(WebSocket|HTTP)\s+(\S+)")


def unique(prefix: str) -> str:
    """An id no other test (or earlier run against the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- the server process ------------------------------------------------------------------------


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    ws_url: str
    http_url: str
    var_dir: Path
    log: list[str] = field(default_factory=list)
    # the split shape (`serve --gateways N`): every gateway's URLs, the first ones above
    ws_urls: list[str] = field(default_factory=list)
    http_urls: list[str] = field(default_factory=list)
    shards: int = 1

    @property
    def split(self) -> bool:
        return len(self.ws_urls) > 1

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kb(self) -> int:
        """VmRSS of the server process (not its embedded Redis/Postgres children)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log[-lines:])


def _pump(stream, sink: list[str], up: threading.Event, urls: dict, gateways: int) -> None:
    """Read the server's output for its whole life (a full pipe would block the server)."""
    for raw in iter(stream.readline, ""):
        line = raw.rstrip("\n")
        sink.append(line)
        m = _URL.match(line)
        if m:
            urls.setdefault(m.group(1), []).append(m.group(2))
            if all(len(urls.get(kind, ())) >= gateways for kind in ("WebSocket", "HTTP")):
                up.set()
    stream.close()
    up.set()  # the process ended: stop waiting


def start_server(var_dir: Path, extra_env: dict[str, str] | None = None,
                 gateways: int = 0, shards: int = 1) -> ServerProcess:
    """`backlay serve`; with `gateways`, its split shape: that many gateway processes in front
    of `shards` engine processes."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BACKLAY_") and k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(SERVER_ENV)
    env.update(extra_env or {})
    env["PYTHONUNBUFFERED"] = "1"
    split = ["--gateways", str(gateways), "--shards", str(shards)] if gateways else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--ws-port", "0", "--http-port", "0",
         "--var-dir", str(var_dir), *split],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=bool(gateways))
    log: list[str] = []
    urls: dict[str, list[str]] = {}
    up = threading.Event()
    threading.Thread(target=_pump, args=(proc.stdout, log, up, urls, max(gateways, 1)),
                     daemon=True).start()
    if not up.wait(START_TIMEOUT_S) or proc.poll() is not None or len(urls) < 2:
        proc.kill()
        proc.wait()
        raise RuntimeError("backlay serve did not come up:\n" + "\n".join(log[-80:]))
    http_urls = [url.rstrip("/") for url in urls["HTTP"]]
    return ServerProcess(proc, urls["WebSocket"][0], http_urls[0], var_dir, log,
                         urls["WebSocket"] if gateways else [], http_urls if gateways else [],
                         shards)


def stop_server(server: ServerProcess) -> int:
    """SIGTERM and wait; the exit status (0 = graceful)."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        raise AssertionError("backlay serve did not stop within "
                             f"{STOP_TIMEOUT_S} s of SIGTERM:\n{server.log_tail()}") from None


@contextmanager
def scratch_dir(prefix: str):
    """A directory for a server's var/, removed afterwards. Not under pytest's basetemp:
    concurrent pytest runs prune each other's old basetemps, and when run as root the embedded
    Postgres runs as another user that needs access."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


# The trading socket runs on either WebSocket library (gateway/links.py), and in the split shape
# (gateway/split/: two gateway processes in front of two engine shards, over Redis): every
# scenario runs against each. In the split shape a scenario's connections alternate between the
# gateways, so replies and pushes cross from shard to gateway to client as they would in
# production.
WS_LIBRARIES = ("picows", "websockets")
SPLIT = "split"
SPLIT_GATEWAYS = 2
SPLIT_SHARDS = 2


@pytest.fixture(scope="session", params=WS_LIBRARIES + (SPLIT,))
def backlay_server(request):
    with scratch_dir(f"backlay-ws-tests-{request.param}-") as base:
        if request.param == SPLIT:
            server = start_server(base / "var", {"BACKLAY_WS_SERVER": "picows"},
                                  gateways=SPLIT_GATEWAYS, shards=SPLIT_SHARDS)
        else:
            server = start_server(base / "var", {"BACKLAY_WS_SERVER": request.param})
        yield server
        rc = stop_server(server)
        assert rc == 0, f"backlay serve exited {rc} after SIGTERM:\n{server.log_tail()}"


# -- a WebSocket client --------------------------------------------------------------------------


class Client:
    """One connection. `rpc` sends a request and returns the reply with the same id (an error
    reply included); every frame without a waiting id is kept in `pushes` (heartbeats in
    `heartbeats`), to be taken in arrival order with `take`."""

    def __init__(self, ws, user: str | None = None) -> None:
        self.ws = ws
        self.user = user
        self.frames: list[dict] = []  # every frame received, in arrival order
        self.arrivals: list[float] = []  # time.monotonic() of each frame in `frames`
        self.pushes: list[dict] = []
        self.heartbeats: list[dict] = []
        self.replies: dict = {}  # replies to ids nobody sent through `send` (raw frames)
        self._taken: set[int] = set()
        self._waiting: dict = {}
        self._sent: set = set()
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name="test-client-reader")

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                msg = orjson.loads(frame)
                self.frames.append(msg)
                self.arrivals.append(time.monotonic())
                rid = msg.get("id")
                future = self._waiting.get(rid) if rid is not None else None
                if future is not None and not future.done():
                    future.set_result(msg)
                elif msg.get("op") == "hb":
                    self.heartbeats.append(msg)
                elif rid is not None and rid not in self._sent:
                    self.replies[rid] = msg  # the reply to a raw frame
                else:  # a push, or a second frame answering one request (exposure snapshot)
                    self.pushes.append(msg)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self._arrived.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError(
                        f"closed {self.close_code} {self.close_reason!r} before the reply"))

    # -- requests --

    async def send(self, msg: dict) -> object:
        """Send a request (an id is added if missing) without waiting; returns its id."""
        msg = dict(msg)
        rid = msg.setdefault("id", f"r{next(self._ids)}")
        self._sent.add(rid)
        self._waiting[rid] = asyncio.get_running_loop().create_future()
        await self.ws.send(orjson.dumps(msg).decode())
        return rid

    async def reply(self, rid, timeout: float = REPLY_TIMEOUT_S) -> dict:
        """The reply to the request sent with id `rid` (waits up to `timeout`)."""
        future = self._waiting[rid]
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            if future.done():
                del self._waiting[rid]

    async def rpc(self, msg: dict, timeout: float = REPLY_TIMEOUT_S) -> dict:
        return await self.reply(await self.send(msg), timeout)

    async def ok(self, msg: dict, op: str | None = None, timeout: float = REPLY_TIMEOUT_S) -> dict:
        """rpc that must not be an error (and, if given, must have reply op `op`)."""
        reply = await self.rpc(msg, timeout)
        assert reply.get("op") != "error", f"{msg} -> {reply}"
        if op is not None:
            assert reply["op"] == op, f"{msg} -> {reply}"
        return reply

    async def error(self, msg: dict, code: str, timeout: float = REPLY_TIMEOUT_S) -> dict:
        """rpc that must be an error with `code`."""
        reply = await self.rpc(msg, timeout)
        assert reply.get("op") == "error" and reply.get("code") == code, f"{msg} -> {reply}"
        assert reply["id"] == msg.get("id", reply["id"])
        assert isinstance(reply.get("message"), str) and reply["message"]
        return reply

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    # -- pushes --

    def _match(self, i: int, msg: dict, op: str | None, pred: Callable | None) -> bool:
        return (i not in self._taken and (op is None or msg.get("op") == op)
                and (pred is None or pred(msg)))

    async def take(self, op: str | None = None, pred: Callable[[dict], bool] | None = None,
                   timeout: float = REPLY_TIMEOUT_S) -> dict:
        """The oldest push not taken yet that matches; waits up to `timeout`."""
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                for i, msg in enumerate(self.pushes):
                    if self._match(i, msg, op, pred):
                        self._taken.add(i)
                        return msg
                if self.closed.is_set():
                    raise ConnectionError(f"closed {self.close_code} {self.close_reason!r} "
                                          f"while waiting for a push {op or ''}")
                await self._arrived.wait()

    def take_all(self, op: str | None = None,
                 pred: Callable[[dict], bool] | None = None) -> list[dict]:
        """Every push not taken yet that matches, now (marked taken)."""
        out = []
        for i, msg in enumerate(self.pushes):
            if self._match(i, msg, op, pred):
                self._taken.add(i)
                out.append(msg)
        return out

    async def settle(self, seconds: float = 0.3, op: str | None = None,
                     pred: Callable[[dict], bool] | None = None) -> list[dict]:
        """Wait `seconds`, then take everything matching that arrived."""
        await asyncio.sleep(seconds)
        return self.take_all(op, pred)

    async def wait_closed(self, timeout: float = REPLY_TIMEOUT_S) -> int | None:
        async with asyncio.timeout(timeout):
            await self.closed.wait()
        return self.close_code

    async def close(self) -> None:
        try:
            await self.ws.close()
        except Exception:
            pass
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, Exception):
            pass


# -- the per-test harness ------------------------------------------------------------------------


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}" if minor >= 0 else "-" + money(-minor)


def minor(amount: str) -> int:
    whole, _, frac = amount.partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int((frac + "00")[:2]))


class Harness:
    """What a scenario works with: the server, tokens, clients, funded users, fresh markets."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.ws_url = server.ws_url
        self.http_url = server.http_url
        self.clients: list[Client] = []
        self._http: aiohttp.ClientSession | None = None
        self._trader: Client | None = None
        self._gateways = itertools.cycle(server.ws_urls or [server.ws_url])
        self.shards = ShardMap(server.shards)

    @staticmethod
    def token(user: str, *roles: str, ttl_s: int = 3600, secret: str = JWT_SECRET) -> str:
        return make_token(secret, user, list(roles) or ["bettor"], ttl_s=ttl_s)

    async def connect(self, url: str | None = None, **kwargs) -> Client:
        """An unauthenticated connection (kwargs go to websockets' connect)."""
        ws = await connect(url or next(self._gateways), open_timeout=REPLY_TIMEOUT_S, **kwargs)
        client = Client(ws)
        self.clients.append(client)
        return client

    async def client(self, user: str, *roles: str, cancel_on_disconnect: bool | None = None,
                     **kwargs) -> Client:
        """An authenticated connection for `user` (roles default to bettor)."""
        client = await self.connect(**kwargs)
        auth = {"op": "auth", "id": "auth", "token": self.token(user, *roles)}
        if cancel_on_disconnect is not None:
            auth["cancel_on_disconnect"] = cancel_on_disconnect
        reply = await client.rpc(auth)
        assert reply["op"] == "authed", reply
        client.user = user
        return client

    async def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(self.http_url)
        return self._http

    async def deposit(self, user: str, amount: str, ref: str | None = None,
                      provider: str = "testpay", currency: str = CURRENCY) -> dict:
        """Fund `user` through the signed payment webhook (POST /webhooks/deposits/...)."""
        body = orjson.dumps({"ref": ref or unique("dep"), "user": user, "amount": amount,
                             "currency": currency, "ts": int(time.time())})
        session = await self.http()
        async with session.post(f"/webhooks/deposits/{provider}", data=body,
                                headers={"Content-Type": "application/json",
                                         "X-Signature": sign(WEBHOOK_SECRET, body)}) as resp:
            data = await resp.json()
            assert resp.status == 200, f"deposit for {user}: {resp.status} {data}"
        return data

    async def funded_user(self, name: str, amount: str = "1000.00") -> str:
        """A fresh user id (prefixed `name`) holding `amount`."""
        user = unique(name)
        if minor(amount) > 0:
            await self.deposit(user, amount)
        return user

    async def bettor(self, name: str = "bettor", amount: str = "1000.00", **kwargs) -> Client:
        """A connection of a fresh funded bettor; its user id is `client.user`."""
        return await self.client(await self.funded_user(name, amount), "bettor", **kwargs)

    async def trader(self, fresh: bool = False) -> Client:
        """A connection with the trader role (one per test unless `fresh`)."""
        if self._trader is None or fresh:
            client = await self.client(unique("trader"), "trader")
            if self._trader is None:
                self._trader = client
            return client
        return self._trader

    def market_id(self, shard: int | None = None) -> str:
        """A fresh market id, on `shard` (of the split shape's shards) when given."""
        while True:
            market = unique("m")
            if shard is None or self.shards.of_market(market) == shard:
                return market

    def listing_order(self, markets: list[str]) -> list[str]:
        """Markets in the order the catalogue lists them: creation order; with several shards,
        shard by shard (docs/scale-out.md)."""
        return sorted(markets, key=self.shards.of_market)

    async def market(self, trader: Client | None = None, selections=("s1", "s2"),
                     status: str | None = "open", **create) -> str:
        """A new market with unique id, opened unless `status` says otherwise."""
        trader = trader or await self.trader()
        market = create.pop("market", None) or unique("m")
        reply = await trader.ok({"op": "market.create", "market": market,
                                 "event": create.pop("event", unique("e")),
                                 "name": create.pop("name", "Match Odds"),
                                 "selections": [{"id": s, "name": s.upper()}
                                                for s in selections], **create}, "market")
        assert reply["market"]["status"] == "INACTIVE", reply
        if status is not None:
            await trader.ok({"op": "market.status", "market": market, "status": status},
                            "market")
        return market

    async def get(self, path: str) -> tuple[int, dict | str]:
        session = await self.http()
        async with session.get(path) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        if self._http is not None:
            await self._http.close()


def place(market: str, selection: str = "s1", side: str = "back", price: str = "2.00",
          size: str = "10.00", **more) -> dict:
    """A `place` request."""
    return {"op": "place", "market": market, "selection": selection, "side": side,
            "price": price, "size": size, **more}


async def placed(client: Client, market: str, selection: str = "s1", side: str = "back",
                 price: str = "2.00", size: str = "10.00", **more) -> dict:
    """Place and return the ORDER (the place must succeed)."""
    return (await client.ok(place(market, selection, side, price, size, **more), "placed"))["order"]


def small_socket(rcvbuf: int = 4096, mss: int = 536) -> socket.socket:
    """A TCP socket with a tiny receive buffer and segment size, for a client that stops
    reading. The small segments slow the growth of the server's (autotuned) kernel send
    buffer for it, which on loopback's 64 KiB segments would absorb megabytes; it still grows
    to hundreds of KiB (see test_ws_abuse.py)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    return sock


@pytest.fixture
def ws(backlay_server):
    """ws(scenario, timeout_s=30): runs `await scenario(harness)` in a fresh event loop and
    returns its result; every client the harness opened is closed afterwards."""

    def go(scenario, timeout_s: float = SCENARIO_TIMEOUT_S):
        async def main():
            h = Harness(backlay_server)
            try:
                async with asyncio.timeout(timeout_s):
                    return await scenario(h)
            finally:
                await h.close()
        assert backlay_server.alive(), "the server died:\n" + backlay_server.log_tail()
        return asyncio.run(main())
    return go
