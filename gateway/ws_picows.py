"""The trading WebSocket on picows (the default, BACKLAY_WS_SERVER=picows).

picows parses frames in C and calls back per frame; its handshake checks the gateway's path and
origin first (404 / 403, as with websockets). What websockets did by itself is done here:
fragmented messages are joined (the whole message bounded by `frame_bytes_max`, 1009 beyond it,
as is a single frame over it), text must be UTF-8 (1007), the closing handshake is answered and
the TCP connection ended once it completes (or `CLOSE_TIMEOUT_S` after our close frame), and idle
connections are pinged every 20 s and dropped when no pong comes within 20 s.
"""

import asyncio
import logging

from picows import (WSCloseCode, WSListener, WSMsgType, WSUpgradeResponse,
                    WSUpgradeResponseWithListener, ws_create_server)

from .connection import CLOSE_FULL, Connection
from .links import is_utf8

# picows logs every connection and disconnection at INFO: at thousands of connections that is
# noise; its warnings and errors still come through
library_log = logging.getLogger(f"{__name__}.picows")
library_log.setLevel(logging.WARNING)

CLOSE_TIMEOUT_S = 10.0  # our close frame sent: how long the peer has to answer it
KEEPALIVE_S = 20.0  # ping after this long without a frame; drop if no pong this long after
LIVENESS_PING = b"alive"  # the dead-man switch's pings, told apart from keepalive pings


class PicowsLink:
    """gateway/links.py's Link over a picows transport."""

    __slots__ = ("ws", "transport", "closing", "closed", "_drained", "_pong", "_timer")

    def __init__(self, ws) -> None:
        self.ws = ws
        self.transport = ws.underlying_transport
        self.closing = False  # a close frame sent or received: no more data frames
        self.closed = asyncio.get_running_loop().create_future()
        self._drained: asyncio.Future | None = None  # set while the transport is paused
        self._pong: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None

    def is_open(self) -> bool:
        return not self.closing and not self.transport.is_closing()

    async def drain(self) -> None:
        if self._drained is not None:
            await asyncio.shield(self._drained)

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.ws.send_close(WSCloseCode(code), reason.encode())
        self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self.abort)

    def abort(self) -> None:
        self.closing = True
        self.ws.disconnect(graceful=False)

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)

    async def ping(self) -> None:
        if self._pong is None or self._pong.done():
            self._pong = asyncio.get_running_loop().create_future()
            self.ws.send_ping(LIVENESS_PING)
        await asyncio.shield(self._pong)

    # -- from the listener --

    def paused(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resumed(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def ponged(self) -> None:
        if self._pong is not None and not self._pong.done():
            self._pong.set_result(None)

    def gone(self) -> None:
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
        self.resumed()
        if self._pong is not None and not self._pong.done():
            self._pong.set_exception(ConnectionError("closed before the pong"))
            self._pong.exception()  # retrieved: nobody may be waiting any more
        if not self.closed.done():
            self.closed.set_result(None)


class _Listener(WSListener):
    """One connection's frames, as picows parses them, to its gateway Connection."""

    def __init__(self, server: "PicowsServer") -> None:
        self.server = server
        self.link: PicowsLink | None = None
        self.conn: Connection | None = None
        self.fragments: list[bytes] | None = None
        self.fragments_bytes = 0
        self.text = False

    def on_ws_connected(self, ws) -> None:
        socket = self.server.socket
        self.link = link = PicowsLink(ws)
        if socket.full():
            link.close(CLOSE_FULL, "too many connections")
            return
        socket.cap_kernel_buffer(link.transport)
        self.conn = Connection(socket, link)
        self.server.connections.add(self)
        self.conn.on_open()

    def on_ws_frame(self, ws, frame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
            if self.fragments is not None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "expected a continuation frame")
            elif frame.fin:
                self._message(frame.get_payload_as_bytes(), kind == WSMsgType.TEXT)
            else:
                self.fragments = [frame.get_payload_as_bytes()]
                self.fragments_bytes = frame.payload_size
                self.text = kind == WSMsgType.TEXT
        elif kind == WSMsgType.CONTINUATION:
            if self.fragments is None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
                return
            self.fragments_bytes += frame.payload_size
            if self.fragments_bytes > self.server.socket.settings.frame_bytes_max:
                self._fail(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
                return
            self.fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                data, self.fragments = b"".join(self.fragments), None
                self._message(data, self.text)
        elif kind == WSMsgType.CLOSE:
            link = self.link
            if not link.closing:  # the peer closes: answer with its code, then end
                link.closing = True
                code = frame.get_close_code()
                ws.send_close(code if code else WSCloseCode.OK)
            ws.disconnect()
        elif kind == WSMsgType.PONG:
            self.link.ponged()

    def _message(self, data: bytes, text: bool) -> None:
        conn = self.conn
        if conn is None or self.link.closing:
            return
        if text and not is_utf8(data):
            self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8")
            return
        conn.on_message(data)

    def _fail(self, code: WSCloseCode, reason: str) -> None:
        self.fragments = None
        if self.conn is not None:
            self.conn.on_message = lambda data: None
        self.link.close(code, reason)

    def is_user_specific_pong(self, frame) -> bool:
        # keepalive pongs are picows's; the dead-man switch's own reach on_ws_frame
        return (frame.msg_type == WSMsgType.PONG
                and frame.get_payload_as_bytes() != LIVENESS_PING)

    def pause_writing(self) -> None:
        self.link.paused()

    def resume_writing(self) -> None:
        self.link.resumed()

    def on_ws_disconnected(self, ws) -> None:
        self.server.connections.discard(self)
        if self.link is not None:
            self.link.gone()
        if self.conn is not None:
            self.conn.on_closed()


class PicowsServer:
    def __init__(self, socket) -> None:
        self.socket = socket
        self.server: asyncio.Server | None = None
        self.connections: set[_Listener] = set()

    async def start(self) -> None:
        s = self.socket.settings
        self.server = await ws_create_server(
            self._listener, s.host, s.ws_port, max_frame_size=s.frame_bytes_max,
            websocket_handshake_timeout=s.auth_timeout_s + 5, enable_auto_ping=True,
            auto_ping_idle_timeout=KEEPALIVE_S, auto_ping_reply_timeout=KEEPALIVE_S,
            logger_name=library_log)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    def _listener(self, request):
        refusal = self.socket.refusal(request.path.decode("latin-1"),
                                      request.headers.get("Origin"))
        if refusal is not None:
            status, body = refusal
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(status, body.encode()), None)
        return _Listener(self)

    async def stop(self) -> None:
        """Stop listening, close every connection with 1001 (going away), wait for them."""
        self.server.close()
        links = [listener.link for listener in self.connections]
        for link in links:
            link.close(WSCloseCode.GOING_AWAY, "server shutting down")
        if links:
            await asyncio.wait([asyncio.ensure_future(link.wait_closed()) for link in links],
                               timeout=CLOSE_TIMEOUT_S)
        await self.server.wait_closed()
