"""Shared by the end-to-end benchmarks: start `backlay serve` in a subprocess (embedded Redis
with AOF appendfsync always, the Postgres persister on), fund users through the deposit webhook,
and talk the real WebSocket protocol."""

import asyncio
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import orjson
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gateway.auth import make_token  # noqa: E402
from gateway.settings import Settings  # noqa: E402


class ServerProcess:
    def __init__(self, root: str | None = None, args: tuple[str, ...] = (),
                 **env_settings) -> None:
        """`root`: run the server of another checkout (built in place), e.g. an older commit
        in a git worktree, to compare it with this one in the same run. `args`: more of
        `backlay serve`'s arguments (`--gateways 2 --shards 2`: the split shape, whose every
        gateway's URLs are in `ws_urls` and `http_urls`)."""
        self.args = tuple(args)
        self.gateways = int(args[list(args).index("--gateways") + 1]) if "--gateways" in args \
            else 1
        self.ws_urls: list[str] = []
        self.http_urls: list[str] = []
        self.var_dir = tempfile.mkdtemp(prefix="backlay-bench-")
        self.root = os.path.abspath(root) if root else ROOT
        self.env = dict(os.environ)
        if root:
            self.env["PYTHONPATH"] = self.root
        self.env.pop("REDIS_URL", None)
        self.env.pop("DATABASE_URL", None)
        for key, value in env_settings.items():
            self.env[f"BACKLAY_{key.upper()}"] = str(value)
        self.settings = Settings(_env_file=None)
        self.proc = None
        self.ws_url = self.http_url = ""

    def __enter__(self):
        log = open(os.path.join(self.var_dir, "serve.log"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--var-dir", self.var_dir,
             "--ws-port", "0", "--http-port", "0", *self.args], cwd=self.root, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=bool(self.args))
        deadline = time.time() + 120
        path = os.path.join(self.var_dir, "serve.log")
        while time.time() < deadline:
            text = open(path).read()
            # the summary's lines (a split shape's children echo theirs behind a [name])
            ws = re.findall(r"^\s+WebSocket\s+(ws://\S+)", text, re.M)
            http = re.findall(r"^\s+HTTP\s+(http://\S+?)/?\s", text, re.M)
            if len(ws) == len(http) == self.gateways and "is up" in text:
                self.ws_urls, self.http_urls = ws, [url.rstrip("/") for url in http]
                self.ws_url, self.http_url = ws[0], self.http_urls[0]
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{text}")
            time.sleep(0.1)
        raise RuntimeError("server did not start in 120 s")

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # the server's journal, Postgres cluster and snapshots: about 1 GB after an e2e run,
        # and every run makes a new one (241 of them once filled a 252 GB disk to 97%);
        # BACKLAY_BENCH_KEEP_VAR=1 keeps them to look into
        if not os.environ.get("BACKLAY_BENCH_KEEP_VAR"):
            shutil.rmtree(self.var_dir, ignore_errors=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def token(self, user: str, *roles: str) -> str:
        return make_token(self.settings.jwt_secret, user, list(roles))

    def deposit(self, user: str, amount: str, ref: str) -> None:
        body = orjson.dumps({"ref": ref, "user": user, "amount": amount, "currency": "BDT",
                             "ts": int(time.time())})
        sig = hmac.new(self.settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"{self.http_url}/webhooks/deposits/bench", data=body,
                                     headers={"X-Signature": f"sha256={sig}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


class Client:
    """One authenticated connection; replies matched by id, pushes passed to `on_push`."""

    def __init__(self, url: str, token: str, on_push=None) -> None:
        self.url, self.token, self.on_push = url, token, on_push
        self.ws = None
        self.pending: dict = {}
        self.next_id = 0
        self.reader = None

    async def __aenter__(self):
        self.ws = await connect(self.url, max_size=2**22, compression=None)
        await self.ws.send(orjson.dumps({"op": "auth", "id": 0, "token": self.token}).decode())
        reply = orjson.loads(await self.ws.recv())
        if reply.get("op") != "authed":
            raise RuntimeError(f"auth failed: {reply}")
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        self.reader.cancel()
        await self.ws.close()

    async def _read(self):
        async for frame in self.ws:
            msg = orjson.loads(frame)
            rid = msg.get("id")
            if rid is not None and rid in self.pending:
                self.pending.pop(rid).set_result((time.perf_counter(), msg))
            elif self.on_push is not None:
                self.on_push(msg)

    def send(self, msg: dict) -> asyncio.Future:
        self.next_id += 1
        msg["id"] = self.next_id
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        asyncio.ensure_future(self.ws.send(orjson.dumps(msg).decode()))
        return future

    async def rpc(self, msg: dict) -> dict:
        return (await self.send(msg))[1]


ZERO_MASK = b"\0\0\0\0"


def client_text_frame(payload: bytes) -> bytes:
    """A client's text frame (RFC 6455 5.2): FIN, masked with the all-zero key, so the masked
    payload is the payload itself. Masking exists to keep a client's bytes from being chosen by
    scripts on the path, which a benchmark's loopback has none of; the server unmasks every
    frame the same whatever the key, so its work is what a browser's frames would cost it, and
    this process saves a random key and a masked copy per frame."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, 0x80 | size, 0, 0, 0, 0))
    elif size < 65536:
        head = b"\x81\xfe" + size.to_bytes(2, "big") + ZERO_MASK
    else:
        head = b"\x81\xff" + size.to_bytes(8, "big") + ZERO_MASK
    return head + payload


class Subscriber(asyncio.Protocol):
    """A lean connection for benchmarks that hold hundreds of them in one process: the
    library's Sans-I/O protocol does the opening handshake and frames what the client sends;
    after the handshake, the server's frames (never masked, never fragmented by this server)
    are cut out of each read here, in `data_received`, with no reader task, queue or wake-up
    per frame and without the library's per-frame parser (a generator that costs some 10 us a
    frame: at 100,000 frames/s it, not the server, was the bottleneck). With `Client`, that
    per-frame machinery made the bench's own process the slowest link: 1,000 subscribers each
    getting one frame per flush took it some 35 ms per flush, which then showed up as server
    delay.

    Requests are framed here too (`send`), and what one loop turn framed leaves in one write:
    through the library, each frame was a write of its own (a send() system call each; 40% of
    bench/e2e.py's own CPU at saturation) and drew its mask from the OS (another 4%)."""

    def __init__(self, url: str, on_push) -> None:
        self.ws = ClientProtocol(parse_uri(url), max_size=2**22)
        self.on_push = on_push
        self.transport = None
        self.handshake = asyncio.get_running_loop().create_future()
        self.replies: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.open_ = False  # handshake done: frames are parsed here
        self.buffer = b""  # the start of a frame whose end has not arrived yet
        self.closed = False
        self.outgoing: list[bytes] = []  # frames framed this loop turn, written at its end

    @classmethod
    async def open(cls, url: str, token: str, on_push) -> "Subscriber":
        uri = parse_uri(url)
        _, sub = await asyncio.get_running_loop().create_connection(
            lambda: cls(url, on_push), uri.host, uri.port)
        await sub.handshake
        reply = await sub.rpc({"op": "auth", "token": token})
        if reply.get("op") != "authed":
            raise RuntimeError(f"auth failed: {reply}")
        return sub

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def connection_lost(self, exc) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        if self.open_:
            self._frames(data)
            return
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self.handshake.set_exception(self.ws.handshake_exc)
                else:
                    self.open_ = True  # the server sends nothing before the client's auth
                    self.handshake.set_result(None)
            elif event.opcode is Opcode.TEXT:
                self._text(event.data)
        self._flush()

    def _frames(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        view = memoryview(buf)
        end = len(buf)
        pos = 0
        text = self._text
        while end - pos >= 2:
            first, length = buf[pos], buf[pos + 1] & 0x7F
            head = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buf[head:head + 2], "big")
                head += 2
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[head:head + 8], "big")
                head += 8
            stop = head + length
            if stop > end:
                break
            pos = stop
            opcode = first & 0x0F
            if opcode == 1 and first & 0x80:
                text(view[head:stop])
            elif opcode == 9:  # ping
                self.ws.send_pong(bytes(view[head:stop]))
                self._flush()
            elif opcode == 8:  # close: the server is going away
                self.closed = True
                self.transport.close()
                return
            elif opcode != 10:
                raise RuntimeError(f"unexpected frame opcode {opcode} (fin {first >> 7})")
        self.buffer = buf[pos:] if pos < end else b""

    def _text(self, payload) -> None:
        msg = orjson.loads(payload)
        if self.replies:
            future = self.replies.pop(msg.get("id"), None)
            if future is not None:
                future.set_result(msg)
                return
        self.on_push(msg)

    def _flush(self) -> None:
        """What the library framed (the handshake, pongs, the close) in one write."""
        data = b"".join(self.ws.data_to_send())
        if data:
            self.transport.write(data)

    def send(self, payload: bytes) -> None:
        """Frame a text message; every frame framed in this loop turn goes out in one write at
        its end."""
        if not self.outgoing:
            asyncio.get_running_loop().call_soon(self._write_outgoing)
        self.outgoing.append(client_text_frame(payload))

    def _write_outgoing(self) -> None:
        frames, self.outgoing = self.outgoing, []
        if not self.closed:
            self.transport.write(b"".join(frames))

    def rpc(self, msg: dict) -> asyncio.Future:
        self.next_id += 1
        msg["id"] = self.next_id
        future = self.replies[self.next_id] = asyncio.get_running_loop().create_future()
        self.send(orjson.dumps(msg))
        return future

    def close(self) -> None:
        if not self.closed:
            try:
                self.ws.send_close()
                self._flush()
            except Exception:
                pass
        self.transport.close()


def percentiles(samples_s: list[float]) -> str:
    if not samples_s:
        return "no samples"
    s = sorted(samples_s)

    def at(q):
        return s[min(len(s) - 1, int(q * len(s)))] * 1000

    return f"p50 {at(0.5):.2f} ms  p99 {at(0.99):.2f} ms  p99.9 {at(0.999):.2f} ms"
