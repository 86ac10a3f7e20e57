"""The one object every edge (WebSocket, HTTP) talks to: submit commands, read engine state.

Reads of engine state go through the sequencer's query path, which runs between batches when
the engine holds exactly what is journaled: a reader can never see a command that might still
be lost. Commands go through `submit`, whose result is computed right after the journal write.
"""

import time
from collections.abc import Callable
from typing import Any

from engine.commands import Command
from engine.rejections import Code
from persistence.sequencer import Deliver, Sequencer, SequencerBusy, SequencerStopped

from .metrics import Metrics
from .settings import Settings


class Unavailable(Exception):
    """The exchange cannot take this command now (busy or stopped); nothing happened."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Exchange:
    def __init__(self, settings: Settings, sequencer: Sequencer, metrics: Metrics, *,
                 redis=None, pg_pool=None, persister=None) -> None:
        self.settings = settings
        self.sequencer = sequencer
        self.metrics = metrics
        self.redis = redis
        self.pg_pool = pg_pool
        self.persister = persister
        self.replay_finished = False
        self.hub = None  # gateway.hub.Hub, set by the server
        self.ws_port: int | None = None  # the trading WebSocket's bound port, once listening

    async def submit(self, cmd: Command, view: Callable[[Any, list], Any] | None = None,
                     deliver: Deliver | None = None):
        """Journal `cmd`; returns its events, or view(engine, events) rendered right after it
        was applied and returned once journaled (so it shows only journaled state). `deliver`
        gets that outcome first, on the sequencer task, before any later push (frame order)."""
        start = time.perf_counter()
        try:
            result = await self.sequencer.submit(cmd, view=view, deliver=deliver)
        except SequencerBusy as exc:
            raise Unavailable(Code.RATE_LIMITED, f"exchange busy: {exc}") from None
        except SequencerStopped as exc:
            raise Unavailable(Code.INTERNAL, f"exchange unavailable: {exc}") from None
        self.metrics.ack_latency.observe(time.perf_counter() - start)
        return result

    def submit_now(self, cmd: Command, view: Callable[[Any, list], Any],
                   deliver: Deliver) -> None:
        """Journal `cmd` without waiting: deliver(ok, view result or exception) is its only
        answer (Sequencer.submit_now). Raises Unavailable at once if it cannot be taken. The
        deliverer observes the ack latency itself (gateway/ops.py OrderReply)."""
        try:
            self.sequencer.submit_now(cmd, view, deliver)
        except SequencerBusy as exc:
            raise Unavailable(Code.RATE_LIMITED, f"exchange busy: {exc}") from None
        except SequencerStopped as exc:
            raise Unavailable(Code.INTERNAL, f"exchange unavailable: {exc}") from None

    async def submit_group(self, steps: list, deliver: Deliver | None = None) -> list:
        """Steps (prepare, view) applied back to back in one batch (Sequencer.submit_group):
        returns [(ok, view result or exception), ...] once journaled."""
        try:
            return await self.sequencer.submit_group(steps, deliver=deliver)
        except SequencerBusy as exc:
            raise Unavailable(Code.RATE_LIMITED, f"exchange busy: {exc}") from None
        except SequencerStopped as exc:
            raise Unavailable(Code.INTERNAL, f"exchange unavailable: {exc}") from None

    async def read(self, fn: Callable[[Any], Any], deliver: Deliver | None = None):
        """fn(engine) between batches; fn must not change anything. `deliver` gets the outcome
        as it is computed, before any later push (frame order)."""
        try:
            return await self.sequencer.query(fn, deliver=deliver)
        except SequencerStopped as exc:
            raise Unavailable(Code.INTERNAL, f"exchange unavailable: {exc}") from None

    async def history(self, user: str, req) -> dict:
        """A `statement` or `cleared` page of `user` from the read model (gateway/statements.py);
        raises HistoryError."""
        from .statements import history

        return await history(self, user, req)

    async def ready(self) -> tuple[bool, dict]:
        """Journal and Postgres reachable, replay finished, sequencer healthy, and the persister
        running (while it is down, Postgres falls behind and the journal cannot be trimmed)."""
        checks = {"replay_finished": self.replay_finished,
                  "sequencer_healthy": self.sequencer.healthy}
        if self.persister is not None:
            checks["persister_running"] = self.persister.alive
        try:
            checks["redis"] = bool(await self.redis.ping()) if self.redis else False
        except Exception:
            checks["redis"] = False
        try:
            checks["postgres"] = (await self.pg_pool.fetchval("SELECT 1") == 1
                                  if self.pg_pool else False)
        except Exception:
            checks["postgres"] = False
        return all(checks.values()), checks
