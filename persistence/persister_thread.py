"""The persister on a thread of its own, with its own event loop and connections.

Folding a journal entry (hundreds of commands) into rows is CPU work in Python. On the trading
event loop it would hold replies back for as long as a whole entry takes; on its own thread it
is preempted every GIL switch interval, so the trading loop waits at most that long. It stays in
the `backlay serve` process, and talks to the loop that started it only through thread-safe
calls.
"""

import asyncio
import sys
import threading

import redis.asyncio as aioredis

from .persister import Lag, Persister

# how long the persister thread may hold the interpreter before the trading loop gets it back
SWITCH_INTERVAL_S = 0.002


class PersisterThread:
    def __init__(self, redis_url: str, database_url: str, **persister_kwargs) -> None:
        self.redis_url = redis_url
        self.database_url = database_url
        self.persister_kwargs = persister_kwargs
        self.persister: Persister | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def persisted_seq(self) -> int:
        return self.persister.persisted_seq if self.persister is not None else 0

    async def start(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._main, name="persister", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._started.wait)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); after start, logged by Persister
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        redis = aioredis.from_url(self.redis_url)
        self.persister = Persister(redis, self.database_url, **self.persister_kwargs)
        try:
            await self.persister.start()
            self._started.set()
            await self._stop.wait()
        finally:
            await self.persister.stop()
            await redis.aclose()

    async def lag(self) -> Lag:
        future = asyncio.run_coroutine_threadsafe(self.persister.lag(), self._loop)
        return await asyncio.wrap_future(future)

    async def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
