"""A connection's send path: frames go straight to the socket while it keeps up, through the
bounded queue when it does not, and always in the order they were pushed."""

import asyncio
import socket

import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from gateway.session import DIRECT_BUFFER_MAX, Session
from gateway.ws_websockets import WebsocketsLink

FRAMES = 400
PAYLOAD = "x" * 2000  # 400 frames of ~2 KB: far more than the capped socket buffers hold


def test_frames_keep_their_order_across_direct_writes_and_the_queue(run):
    async def scenario():
        done = asyncio.Event()
        stats = {}

        async def handler(ws):
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            session = Session(WebsocketsLink(ws), queue_max=FRAMES + 10)
            queued_peak = 0
            for i in range(FRAMES):
                assert session.push({"op": "n", "i": i, "pad": PAYLOAD})
                queued_peak = max(queued_peak, session._queue.qsize())
                if i % 50 == 0:
                    await asyncio.sleep(0)  # the writer task gets turns, as in the server
            stats["queued_peak"] = queued_peak
            stats["buffer_after"] = ws.transport.get_write_buffer_size()
            await done.wait()
            session.stop()

        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", compression=None,
                               max_queue=4) as client:
                sock = client.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                await asyncio.sleep(0.3)  # not reading yet: the server's buffers fill up
                got = [orjson.loads(await client.recv())["i"] for _ in range(FRAMES)]
                done.set()
        return got, stats

    got, stats = run(scenario(), timeout_s=30)
    assert got == list(range(FRAMES))
    # the client did not read at first, so frames had to wait in the queue: both paths ran
    assert stats["queued_peak"] > 0
    # bounded: direct writes stop at DIRECT_BUFFER_MAX, the writer task at the library's own
    # write limit (32 KiB by default), each overshooting by at most one frame
    assert DIRECT_BUFFER_MAX < stats["buffer_after"] < 32 * 1024 + 4096
