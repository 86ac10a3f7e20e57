"""The persister in a process of its own, with its own event loop and connections.

Folding a journal entry (hundreds of commands) into rows is CPU work in Python. On the trading
event loop it would hold replies back for as long as a whole entry takes; on a thread of the
same process it still shares the one interpreter lock, so every fold preempted the trading loop
for a switch interval at a time (bench/e2e.py: that was most of the p99 ack latency). In its
own process it runs on the other core and the trading loop never waits for it. The parent sees
it only through a shared persisted-seq counter, a stop event, and the journal itself (for lag).
The child exits when asked, and also when the process that started it is gone (a SIGKILLed
server must not leave a persister behind to race the next one's).
"""

import asyncio
import logging
import multiprocessing
import os

import redis.asyncio as aioredis

from .collector import tune_collector
from .journal import STREAM
from .persister import Lag, Persister, journal_lag

PUBLISH_S = 0.02  # how often the child publishes its persisted seq to the parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


def _child_main(redis_url: str, database_url: str, persister_kwargs: dict, persisted, ready,
                stop, failed, parent_pid: int) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s[persister] %(message)s")
    try:
        import uvloop

        uvloop.run(_serve(redis_url, database_url, persister_kwargs, persisted, ready, stop,
                          failed, parent_pid))
    except BaseException as exc:
        failed.send(repr(exc))
        ready.set()
        raise


async def _serve(redis_url, database_url, persister_kwargs, persisted, ready, stop, failed,
                 parent_pid) -> None:
    redis = aioredis.from_url(redis_url)
    persister = Persister(redis, database_url, **persister_kwargs)
    try:
        await persister.start()
        tune_collector()  # what is alive now lives as long as the process
        persisted.value = persister.persisted_seq
        ready.set()
        while not stop.is_set() and os.getppid() == parent_pid:
            persisted.value = persister.persisted_seq
            await asyncio.sleep(PUBLISH_S)
    finally:
        await persister.stop()
        persisted.value = persister.persisted_seq
        await redis.aclose()


class PersisterProcess:
    def __init__(self, redis_url: str, database_url: str, *, stream: str = STREAM,
                 **persister_kwargs) -> None:
        # spawn, not fork: the parent has an event loop, threads and open sockets
        self._ctx = multiprocessing.get_context("spawn")
        self.redis_url = redis_url
        self.database_url = database_url
        self.stream = stream
        self._persister_kwargs = {"stream": stream, **persister_kwargs}
        self._persisted = self._ctx.Value("q", 0, lock=False)  # one aligned int64: atomic enough
        self._stop = self._ctx.Event()
        self.restarts = 0  # new processes started after one died
        self._process = self._new_process()
        self._redis: aioredis.Redis | None = None

    def _new_process(self):
        self._ready = self._ctx.Event()
        self._failed_recv, failed_send = self._ctx.Pipe(duplex=False)
        self._failed_send = failed_send  # the child's end: closed here once the child has it
        return self._ctx.Process(
            target=_child_main, name="backlay-persister", daemon=True,
            args=(self.redis_url, self.database_url, self._persister_kwargs, self._persisted,
                  self._ready, self._stop, failed_send, os.getpid()))

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    @property
    def persisted_seq(self) -> int:
        return self._persisted.value

    @property
    def pid(self) -> int | None:
        return self._process.pid

    async def start(self) -> None:
        self._process.start()
        self._failed_send.close()
        await asyncio.to_thread(self._wait_ready)
        if self._redis is None:
            self._redis = aioredis.from_url(self.redis_url)

    async def restart(self) -> None:
        """Start a new persister after this one died. Safe at any point of its work: it
        resumes from Postgres's persisted seq and takes over the entries the dead one had read
        but not acknowledged, so nothing is folded twice or skipped."""
        if self.alive:
            raise RuntimeError("the persister process is still running")
        self._process.join(0)
        self._process = self._new_process()
        await self.start()
        self.restarts += 1

    def _wait_ready(self) -> None:
        waited = 0.0
        while not self._ready.wait(0.1):
            waited += 0.1
            if not self._process.is_alive() or waited > START_TIMEOUT_S:
                self._process.kill()
                raise RuntimeError(f"persister process did not start (exit code "
                                   f"{self._process.exitcode})")
        if self._failed_recv.poll():
            raise RuntimeError(f"persister process failed to start: {self._failed_recv.recv()}")

    async def lag(self) -> Lag:
        return await journal_lag(self._redis, self.stream, self.persisted_seq)

    async def stop(self) -> None:
        self._stop.set()
        if self._process.pid is not None:
            await asyncio.to_thread(self._process.join, STOP_TIMEOUT_S)
            if self._process.is_alive():
                log.warning("persister process did not stop in %.0f s: killing it",
                            STOP_TIMEOUT_S)
                self._process.kill()
                await asyncio.to_thread(self._process.join, STOP_TIMEOUT_S)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
