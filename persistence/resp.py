"""Pre-encoded RESP commands sent on one kept connection: the journal's XADD, the wire's XADDs.

redis-py's own commands pack their arguments again, borrow and return a pool connection and,
with a socket timeout set, send from a task of their own under asyncio.wait_for: about twice the
CPU per command of sending pieces encoded once with one writelines (docs/benchmarks.md session
8, docs/scale-out.md §7). The connection is taken from the client's own pool and kept, so the
client's settings hold (unix socket or host/port, TLS, password, db, client name, socket timeout,
retry policy) and closing the client closes it too.
"""

import asyncio

import redis.asyncio as aioredis


def bulk(value: bytes) -> bytes:
    """One RESP bulk string, header and all: for the small arguments of a command."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


class KeptConnection:
    """Sends pre-encoded commands, one send in flight at a time, and reads their replies in
    order. Failures are redis-py's: a connection error or a timeout (the client's socket
    timeout) raises, retried only as the client's connections retry (from_url's do not), after
    which the next send reconnects; a connection the server closed between sends is reopened
    first, as the pool does; error replies are all read, then the first is raised, as a
    pipeline does."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._connection = None  # taken from the pool on first use
        self._sending = asyncio.Lock()  # one send in flight: its replies are the next ones read

    async def execute(self, pieces: list[bytes], replies: int = 1) -> list:
        """Send `pieces` (`replies` commands, RESP-encoded) in one writelines; their replies."""
        async with self._sending:
            conn = self._connection
            if conn is None:
                conn = self._connection = await self.redis.connection_pool.get_connection()

            async def attempt():
                writer = getattr(conn, "_writer", None) if conn.is_connected else None
                if writer is not None and (writer.is_closing() or conn._reader.at_eof()):
                    # closed by the server since the last send (a restart, CLIENT KILL):
                    # reconnect first, as the pool does before each of redis-py's own commands
                    await conn.disconnect(nowait=True)
                    writer = None
                if writer is None:
                    await conn.connect()
                    writer = getattr(conn, "_writer", None)
                try:
                    if writer is not None:
                        writer.writelines(pieces)  # leaves now, in this loop turn
                    else:  # another redis-py layout: its own send
                        await conn.send_packed_command(pieces, check_health=False)
                    answers = []
                    for _ in range(replies):
                        try:
                            answers.append(await conn.read_response())
                        except aioredis.ResponseError as exc:  # read: the connection is fine
                            answers.append(exc)
                except BaseException:
                    # a reply left unread (cancelled, timed out) would answer the next command
                    await conn.disconnect(nowait=True)
                    raise
                return answers

            async def failed(error):
                await conn.disconnect()

            answers = await conn.retry.call_with_retry(attempt, failed)
        for answer in answers:
            if isinstance(answer, aioredis.ResponseError):
                raise answer
        return answers
