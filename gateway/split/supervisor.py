"""`backlay serve --gateways N [--shards M]`: the split shape on one machine.

Starts the storage (embedded Redis and Postgres unless REDIS_URL / DATABASE_URL are set, as
`backlay serve` does), then M engine processes (`backlay engine --shard K`) and, once every
shard is up, N gateway processes (`backlay gateway --id gI`), and prints each gateway's URLs.
Gateway I listens on ws_port + I - 1 and http_port + I - 1 (on free ports when those are 0);
engine shard K serves its own HTTP (health, readiness, metrics) on a free port.

A child that dies is started again (after a pause that doubles up to RESTART_MAX_S while it keeps
dying), on the same ports: a shard recovers from its snapshot and journal, a gateway starts
empty and its clients reconnect. On SIGTERM/SIGINT the gateways stop first (connections closed
with 1001), then the shards (queued work journaled, persisters caught up), then the storage.

Every child's output is echoed with its name in front.
"""

import asyncio
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

from persistence.embedded import EmbeddedRedis, start_servers

from ..server import until_signalled


log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0  # up this long: the next death starts the back-off afresh
_UP = re.compile(r"^(?:engine|gateway) (\S+) up:(.*)$")
_URL = re.compile(r"(WebSocket|HTTP) (\S+)")


class Child:
    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.urls: dict[str, str] = {}
        self.up = asyncio.Event()
        self.started_at = 0.0
        self.restarts = 0
        self.echo: asyncio.Task | None = None

    async def start(self) -> None:
        self.up.clear()
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", *self.args, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)  # a terminal's ^C reaches the supervisor, which stops it
        self.echo = asyncio.create_task(self._echo(self.proc))  # referenced: never collected

    async def _echo(self, proc) -> None:
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            print(f"[{self.name}] {line}", flush=True)
            m = _UP.match(line)
            if m and m.group(1) == self.name:
                self.urls = dict(_URL.findall(m.group(2)))
                self.up.set()

    def keep_ports(self) -> None:
        """Start again on the ports it bound (and without seeding the demo again): a restarted
        gateway listens where its clients look for it."""
        args = [a for a in self.args if a != "--demo"]
        for kind, flag in (("WebSocket", "--ws-port"), ("HTTP", "--http-port")):
            url = self.urls.get(kind)
            if url and flag in args:
                args[args.index(flag) + 1] = url.rsplit(":", 1)[1].split("/", 1)[0]
        self.args = args


class Supervisor:
    def __init__(self, settings, gateways: int, shards: int, demo: bool = False) -> None:
        self.settings = settings
        self.gateways = gateways
        self.shards = shards
        self.demo = demo
        self.children: list[Child] = []
        self.watchers: list[asyncio.Task] = []
        self.stopping = False
        self.storage = None
        self.wire_redis: EmbeddedRedis | None = None

    async def start(self) -> None:
        s = self.settings
        environ = {"REDIS_URL": s.redis_url or "", "DATABASE_URL": s.database_url or ""}
        self.storage = await asyncio.to_thread(start_servers, s.var_dir, s.appendfsync, environ)
        wire_url = s.wire_redis_url
        if wire_url is None and self.storage.redis is not None:
            # the journal's Redis fsyncs every write; the wire's need not, and must not wait
            self.wire_redis = EmbeddedRedis(Path(s.var_dir) / "wire-redis", appendfsync="no")
            wire_url = await asyncio.to_thread(self.wire_redis.start)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update({"REDIS_URL": self.storage.redis_url, "DATABASE_URL": self.storage.database_url,
                    "BACKLAY_WIRE_REDIS_URL": wire_url or self.storage.redis_url,
                    "BACKLAY_SHARDS": str(self.shards), "PYTHONUNBUFFERED": "1"})
        for key in ("host", "var_dir", "appendfsync"):
            env[f"BACKLAY_{key.upper()}"] = str(getattr(s, key))
        shards = [Child(f"s{k}", ["engine", "--shard", str(k), "--http-port", "0"]
                        + (["--demo"] if self.demo else []), env) for k in range(self.shards)]
        await self._start_all(shards)
        gateways = [Child(f"g{i}", ["gateway", "--id", f"g{i}",
                                    "--ws-port", str(s.ws_port + i - 1 if s.ws_port else 0),
                                    "--http-port", str(s.http_port + i - 1 if s.http_port else 0)],
                          env) for i in range(1, self.gateways + 1)]
        await self._start_all(gateways)
        self.watchers = [asyncio.create_task(self._watch(child)) for child in self.children]

    async def _start_all(self, children: list[Child]) -> None:
        self.children += children
        for child in children:
            await child.start()
        for child in children:
            waiting = asyncio.create_task(child.up.wait())
            exited = asyncio.create_task(child.proc.wait())
            done, _ = await asyncio.wait({waiting, exited}, timeout=START_TIMEOUT_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            exited.cancel()
            if not child.up.is_set():
                await self.stop()
                raise SystemExit(f"{child.name} did not come up")

    def gateway_urls(self) -> list[tuple[str, str, str]]:
        return [(c.name, c.urls.get("WebSocket", ""), c.urls.get("HTTP", ""))
                for c in self.children if c.name.startswith("g")]

    async def _watch(self, child: Child) -> None:
        backoff_s = RESTART_MIN_S
        while True:
            code = await child.proc.wait()
            if self.stopping:
                return
            if time.monotonic() - child.started_at > STABLE_S:
                backoff_s = RESTART_MIN_S
            log.critical("%s exited with %s; starting it again in %.1f s", child.name, code,
                         backoff_s)
            await asyncio.sleep(backoff_s)
            if self.stopping:
                return
            backoff_s = min(backoff_s * 2, RESTART_MAX_S)
            child.restarts += 1
            child.keep_ports()
            await child.start()

    async def serve_forever(self) -> int:
        await until_signalled(asyncio.Event())
        await self.stop()
        return 0

    async def stop(self) -> None:
        self.stopping = True
        for kind in ("g", "s"):  # gateways first: nothing new reaches the shards
            group = [c for c in self.children if c.name.startswith(kind) and c.proc is not None
                     and c.proc.returncode is None]
            for child in group:
                child.proc.send_signal(signal.SIGTERM)
            for child in group:
                try:
                    async with asyncio.timeout(STOP_TIMEOUT_S):
                        await child.proc.wait()
                except TimeoutError:
                    log.error("%s did not stop within %s s: killed", child.name, STOP_TIMEOUT_S)
                    child.proc.kill()
                    await child.proc.wait()
        if self.wire_redis is not None:
            await asyncio.to_thread(self.wire_redis.stop)
            self.wire_redis = None
        if self.storage is not None:
            await asyncio.to_thread(self.storage.stop)
            self.storage = None
