"""The sequencer: the one asyncio task that owns the engine (DESIGN.md §1, §4).

Commands wait in a bounded inbox. The task takes up to `batch_max` of them, stamps each with the
next seq and the current time, applies them to the engine, journals the whole batch in one write
(group commit: one fsync covers the batch), and only after Redis confirms does it resolve each
submitter's future and release the batch's fan-out. So nobody ever hears of a command that is
not in the journal. Batches are pipelined: the next batch is applied while the previous one's
write is in flight, so replies and pushes are rendered right after their own batch is applied
and held until its write is confirmed.

If the journal write fails, nothing of that batch is acknowledged: the sequencer fail-stops
(every pending submitter gets SequencerStopped, no more work is taken) and the process must be
restarted, which recovers from the journal. Continuing instead would leave the engine holding
state the journal does not have.

Read-only queries (previews, snapshots) ride the same inbox but are neither stamped nor
journaled; they run between batches, when the engine holds exactly the journaled state.

Frame order: a submitter may pass `deliver`, called on this task with the result the moment it
is final (right after the write is confirmed, or right after a query ran) and before the
batch's fan-out is released. A reply sent from there reaches its connection before any push
that reports a later state, however the tasks that await the futures are scheduled.
"""

import asyncio
import collections
import logging
import pickle
import time
from collections.abc import Callable
from typing import Any

from engine.commands import Command, Tick, stamped

from .journal import Journal, Record

log = logging.getLogger(__name__)

INBOX_MAX = 10_000
BATCH_MAX = 500
JOURNAL_WRITE_TIMEOUT_S = 5.0
TICK_RETRY_MS = 100  # how long to wait before re-checking a release that a Tick did not clear

Listener = Callable[[list[Record]], None]
Renderer = Callable[[list[Record]], Callable[[], None] | None]
Deliver = Callable[[bool, Any], None]  # (ok, result or exception), once the result is final
Prepare = Callable[[Any], "Command | Exception"]  # engine -> the step's command, or why not


class _Batch:
    """Applied commands waiting for their journal write, with everything to release after."""

    __slots__ = ("records", "waiters", "results", "delivers", "releases")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.waiters: list[asyncio.Future] = []
        self.results: list[tuple[bool, Any]] = []  # (ok, events or view result / exception)
        self.delivers: list[Deliver | None] = []
        self.releases: list[Callable[[], None]] = []


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _settle(future: asyncio.Future | None, outcome: tuple[bool, Any],
            deliver: Deliver | None) -> None:
    """Hand an outcome to its deliver callback (now, on the sequencer task) and its future (a
    submitter that only delivers has none)."""
    if future is not None and future.done():
        return
    ok, value = outcome
    if deliver is not None:
        try:
            deliver(ok, value)
        except Exception:
            log.exception("delivering an outcome failed")
    if future is None:
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _pending(batch: "_Batch") -> list:
    return list(zip(batch.waiters, batch.delivers))


class _EngineError(Exception):
    """engine.apply raised inside a group (the cause): the engine can no longer be trusted."""


class SequencerStopped(Exception):
    """The sequencer is stopped or fail-stopped: the command was not acknowledged."""


class SequencerBusy(Exception):
    """The inbox holds inbox_max items: the command was not accepted (back-pressure)."""


class _Query:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn


class _Group:
    """Steps applied back to back in one batch, each (prepare, view). prepare(engine) runs right
    before its step, against the very state the step meets, and returns the command to apply,
    or an exception: then the step is skipped (never stamped, never journaled) and that
    exception is its outcome."""

    __slots__ = ("steps",)

    def __init__(self, steps: list[tuple["Prepare", Callable | None]]):
        self.steps = steps


class Sequencer:
    def __init__(self, engine, journal: Journal, clock_ms: Callable[[], int] = wall_clock_ms, *,
                 last_seq: int | None = None, inbox_max: int = INBOX_MAX,
                 batch_max: int = BATCH_MAX,
                 journal_write_timeout_s: float = JOURNAL_WRITE_TIMEOUT_S):
        self.engine = engine
        self.journal = journal
        self.clock_ms = clock_ms
        self.last_seq = getattr(engine, "last_seq", 0) if last_seq is None else last_seq
        # Engine time never runs backwards, even if the wall clock does (NTP steps).
        self.last_ts = getattr(engine, "last_ts", 0)
        self.batch_max = batch_max
        self.journal_write_timeout_s = journal_write_timeout_s
        self.healthy = True
        self.failure: BaseException | None = None
        self.batches_written = 0
        self.commands_written = 0
        # A deque and one wake-up future rather than asyncio.Queue: every command passes
        # through here, and Queue's bookkeeping (unfinished-task counts, getter and putter
        # waiter lists) cost more per command than the rest of the hand-off together.
        self._inbox: collections.deque = collections.deque()
        self.inbox_max = inbox_max
        self._wakeup: asyncio.Future | None = None
        self._listeners: list[Listener] = []
        self._renderers: list[Renderer] = []
        self._accepting = False
        self._task: asyncio.Task | None = None
        self._timer: asyncio.Task | None = None
        self._next_release_ts: int | None = None
        self._release_changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop start() ran on

    # -- public API ---------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._inbox)

    def add_renderer(self, renderer: Renderer) -> None:
        """Called with each batch right after it is applied, while the engine holds exactly
        that state (on the sequencer task: render, do not block). It returns what to run once
        the batch is journaled, or None; if the write fails that is never run."""
        self._renderers.append(renderer)

    def add_listener(self, listener: Listener) -> None:
        """Called with each batch of (seq, command, events) once it is journaled. It must only
        enqueue, and must not read engine state: by then the engine may already hold the next
        batch, applied but not yet journaled (use add_renderer to render from state)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        journaled = await self.journal.last_seq()
        if journaled > self.last_seq:
            raise RuntimeError(f"journal is at seq {journaled} but the engine at {self.last_seq}: "
                               "recover (replay the journal) before sequencing")
        # kept for _enqueue: asyncio.get_running_loop() costs a getpid() system call per command
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        self._note_release()
        self._task = asyncio.create_task(self._run(), name="sequencer")
        self._timer = asyncio.create_task(self._tick_timer(), name="sequencer-tick")

    def submit(self, cmd: Command, view: Callable[[Any, list], Any] | None = None,
               deliver: Deliver | None = None) -> asyncio.Future:
        """Queue a command; the future resolves to its events once they are journaled, or, with
        `view`, to view(engine, events) computed right after the command is applied (the
        state it left, before the next command of the batch). With `deliver`, that outcome is
        also passed to deliver(ok, value) once journaled, before the batch's fan-out."""
        return self._enqueue(cmd, view, deliver)

    def submit_now(self, cmd: Command, view: Callable[[Any, list], Any] | None,
                   deliver: Deliver) -> None:
        """`submit` for a submitter that does not wait: its only answer is deliver(ok, value),
        on this task, once journaled (or (False, SequencerStopped) if it never will be). No
        future, no task: the order path of the WebSocket uses this."""
        self._enqueue(cmd, view, deliver, False)

    def submit_group(self, steps: list[tuple[Prepare, Callable | None]],
                     deliver: Deliver | None = None) -> asyncio.Future:
        """Queue steps (prepare, view) to be applied back to back in one batch (see _Group);
        the future resolves to [(ok, view result, events or exception), ...] in order, once
        journaled (deliver, if given, gets (True, that list) first)."""
        return self._enqueue(_Group(steps), None, deliver)

    def query(self, fn: Callable[[Any], Any], deliver: Deliver | None = None) -> asyncio.Future:
        """Run fn(engine) between batches, unjournaled: for previews and other reads. fn must
        not change the engine. deliver(ok, value), if given, is called with the outcome as it
        is computed, before any later batch is released."""
        return self._enqueue(_Query(fn), None, deliver)

    async def snapshot(self) -> tuple[int, bytes]:
        """(seq, pickled engine), taken between batches so it holds exactly seqs <= seq."""
        return await self.query(lambda engine: (self.last_seq, pickle.dumps(
            engine, protocol=pickle.HIGHEST_PROTOCOL)))

    async def stop(self) -> None:
        """Stop taking work, finish what is queued, then end the tasks."""
        self._accepting = False
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._inbox.append(None)  # wakes an idle loop (and is dropped by a busy one)
            self._wake()
            await self._task

    # -- the loop -----------------------------------------------------------------------------

    def _enqueue(self, item, view=None, deliver=None, wait=True) -> asyncio.Future | None:
        if not self._accepting:
            raise SequencerStopped("sequencer is not running" if self.failure is None
                                   else f"sequencer fail-stopped: {self.failure!r}")
        inbox = self._inbox
        if len(inbox) >= self.inbox_max:
            raise SequencerBusy(f"sequencer inbox is full ({self.inbox_max})")
        future = self._loop.create_future() if wait else None
        inbox.append((item, future, view, deliver))
        if self._wakeup is not None:
            self._wake()
        return future

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _take(self) -> list:
        """Up to batch_max items from the inbox, waiting for the first."""
        inbox = self._inbox
        while not inbox:
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        popleft = inbox.popleft
        return [popleft() for _ in range(min(len(inbox), self.batch_max))]

    async def _run(self) -> None:
        writing: asyncio.Task | None = None  # the previous batch's journal write, in flight
        while True:
            items = [item for item in await self._take() if item is not None]
            if items:
                try:
                    writing = await self._process(items, writing)
                except Exception as exc:  # a bug here must not leave submitters hanging
                    self._fail_stop(exc, "sequencer loop raised", [(i[1], i[3]) for i in items])
            if not self.healthy:
                return
            if not self._accepting and not self._inbox:
                if writing is not None:
                    await writing
                return

    async def _process(self, items: list, writing: asyncio.Task | None) -> asyncio.Task | None:
        """Apply a batch while the previous one is still being journaled (the engine is the
        CPU, Redis the fsync: they overlap), then hand this batch to its own journal write.

        Replies and pushes are rendered now, while the engine holds exactly this batch's
        state, and released only once Redis confirms the write. Queries must see journaled
        state only, so a batch carrying queries waits for its own write before running them.
        """
        commands = []
        queries = []
        for item, future, view, deliver in items:
            if isinstance(item, _Query):
                queries.append((item, future, deliver))
            elif future is None or not future.cancelled():  # one that gave up: never happened
                commands.append((item, future, view, deliver))
        batch, engine_error, unapplied = self._apply(commands)
        if writing is not None:
            await writing
            if not self.healthy:  # the previous write failed: this batch is never journaled
                self._fail_stop(self.failure, "earlier journal write failed",
                                _pending(batch) + [(u[1], u[3]) for u in unapplied]
                                + [(f, d) for _, f, d in queries])
                return None
        if batch.records:
            writing = asyncio.create_task(self._journal(batch))
        else:
            # only groups whose every step was refused: nothing to journal, and what they
            # saw is journaled now (the previous write is confirmed)
            self._resolve(batch)
            writing = None
        if engine_error is None and not queries:
            if writing is not None:
                # Let the write go out now: an inbox with work in it never suspends this task,
                # so without this the XADD would only leave after the next batch is applied,
                # and Redis's fsync would overlap nothing. Two loop turns: one for the write
                # task to encode and hand the XADD to redis-py, one for redis-py to send it,
                # which it does in a task of its own when a socket timeout is set (redis-py 8
                # sets 5 s by default; asyncio.wait_for on Python 3.11). With one turn the XADD waited
                # for the next apply, and the sequencer then waited about 1.3 ms per batch for
                # the fsync: 13% of bench/journal.py's time.
                for _ in range(2):
                    await asyncio.sleep(0)
            return writing
        if writing is not None:
            await writing
        if engine_error is not None:
            self._fail_stop(engine_error, "engine.apply raised",
                            [(u[1], u[3]) for u in unapplied] + [(f, d) for _, f, d in queries])
            return None
        if self.healthy:
            for query, future, deliver in queries:
                if future.done():
                    continue
                try:
                    outcome = (True, query.fn(self.engine))
                except Exception as exc:
                    outcome = (False, exc)
                _settle(future, outcome, deliver)
        return None

    def _apply(self, commands: list) -> tuple["_Batch", BaseException | None, list]:
        batch = _Batch()
        # every command of every batch passes here: names bound once, not looked up per command
        engine = self.engine
        apply = engine.apply
        clock_ms = self.clock_ms
        records = batch.records
        waiters = batch.waiters
        results = batch.results
        delivers = batch.delivers
        # one time for the whole batch: it is applied in one go, and a clock read per command
        # was 3% of the order path; it never runs backwards, even if the wall clock does
        ts = clock_ms()
        if ts < self.last_ts:
            ts = self.last_ts
        for i, (item, future, view, deliver) in enumerate(commands):
            if type(item) is _Group:
                try:
                    outcome = (True, self._apply_group(item, records))
                except _EngineError as err:
                    return self._render(batch), err.__cause__, commands[i:]
                waiters.append(future)
                results.append(outcome)
                delivers.append(deliver)
                continue
            seq = self.last_seq + 1
            if ts < self.last_ts:  # a group before it in the batch read the clock again
                ts = self.last_ts
            cmd = stamped(item, seq, ts)
            try:
                events = apply(cmd)
            except Exception as exc:  # a bug: the engine's state can no longer be trusted
                return self._render(batch), exc, commands[i:]
            self.last_seq = seq
            self.last_ts = ts
            records.append((seq, cmd, events))
            waiters.append(future)
            delivers.append(deliver)
            if view is None:
                results.append((True, events))
            else:
                try:  # right after its own command: the reply shows exactly that state
                    results.append((True, view(engine, events)))
                except Exception as exc:  # a broken view fails its caller, not the sequencer
                    results.append((False, exc))
        return self._render(batch), None, []

    def _apply_group(self, group: _Group, records: list[Record]) -> list[tuple[bool, Any]]:
        """Each step in turn: prepare it, then (unless refused) stamp, apply, record and view."""
        engine = self.engine
        outcomes = []
        for prepare, view in group.steps:
            try:
                item = prepare(engine)
            except Exception as exc:  # a broken prepare fails its step, not the sequencer
                item = exc
            if isinstance(item, Exception):
                outcomes.append((False, item))
                continue
            cmd = stamped(item, self.last_seq + 1, max(self.clock_ms(), self.last_ts))
            try:
                events = engine.apply(cmd)
            except Exception as exc:
                raise _EngineError() from exc
            self.last_seq = cmd.seq
            self.last_ts = cmd.ts
            records.append((cmd.seq, cmd, events))
            try:
                outcomes.append((True, events if view is None else view(engine, events)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes

    def _render(self, batch: "_Batch") -> "_Batch":
        if batch.records:
            for renderer in self._renderers:
                try:
                    release = renderer(batch.records)
                except Exception:
                    log.exception("renderer %r failed on seq %d..%d", renderer,
                                  batch.records[0][0], batch.records[-1][0])
                    continue
                if release is not None:
                    batch.releases.append(release)
        return batch

    async def _journal(self, batch: "_Batch") -> None:
        records = batch.records
        try:
            async with asyncio.timeout(self.journal_write_timeout_s):
                await self.journal.append(records)
        except BaseException as exc:
            self._fail_stop(exc, f"journal write of seq {records[0][0]}..{records[-1][0]} "
                                 "failed", _pending(batch))
            if not isinstance(exc, Exception):
                raise  # CancelledError / KeyboardInterrupt: still propagate after failing
            return
        self.batches_written += 1
        self.commands_written += len(records)
        self._resolve(batch)
        for release in batch.releases:
            try:
                release()
            except Exception:
                log.exception("release of seq %d..%d failed", records[0][0], records[-1][0])
        for listener in self._listeners:
            try:
                listener(records)
            except Exception:
                log.exception("fan-out listener %r failed on seq %d..%d", listener,
                              records[0][0], records[-1][0])
        self._note_release()

    @staticmethod
    def _resolve(batch: "_Batch") -> None:
        """Every outcome of a journaled batch, replies first: before any of its pushes."""
        for future, outcome, deliver in zip(batch.waiters, batch.results, batch.delivers):
            if future is None:  # the order path (submit_now): a deliver and no future
                try:
                    deliver(*outcome)
                except Exception:
                    log.exception("delivering an outcome failed")
            else:
                _settle(future, outcome, deliver)

    def _fail_stop(self, exc: BaseException, what: str,
                   pending: list[tuple[asyncio.Future | None, Deliver | None]]) -> None:
        """Stop for good; every submitter still waiting (future and/or deliver) is told."""
        self.healthy = False
        self._accepting = False
        self.failure = exc
        log.critical("SEQUENCER FAIL-STOP at seq %d: %s: %r. No further commands are accepted; "
                     "restart the process to recover from the journal.", self.last_seq, what, exc)
        stopped = SequencerStopped(f"{what}: {exc!r}")
        while self._inbox:
            item = self._inbox.popleft()
            if item is not None:
                pending.append((item[1], item[3]))  # (item, future, view, deliver)
        for future, deliver in pending:
            _settle(future, (False, stopped), deliver)
        self._release_changed.set()  # lets the timer see the stop

    # -- in-play bet delays -------------------------------------------------------------------

    def _note_release(self) -> None:
        next_release = getattr(self.engine, "next_release_ts", None)
        due = next_release() if next_release is not None else None
        if due != self._next_release_ts:
            self._next_release_ts = due
            self._release_changed.set()

    async def _tick_timer(self) -> None:
        """Submits a Tick when the earliest delayed in-play order is due, so it reaches the book
        on time even when no other command arrives."""
        while self._accepting:
            self._release_changed.clear()
            due = self._next_release_ts
            wait_ms = None if due is None else due - self.clock_ms()
            if wait_ms is not None and wait_ms <= 0:
                try:
                    await self.submit(Tick())
                except SequencerStopped:
                    return
                except SequencerBusy:
                    pass  # the queued commands will release it; re-check shortly
                if self._next_release_ts == due:  # nothing left the heap: don't spin on it
                    wait_ms = TICK_RETRY_MS
                else:
                    continue
            try:
                async with asyncio.timeout(None if wait_ms is None else wait_ms / 1000):
                    await self._release_changed.wait()
            except TimeoutError:
                pass
