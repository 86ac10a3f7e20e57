"""The trading WebSocket on the `websockets` library (BACKLAY_WS_SERVER=websockets).

websockets does the handshake (with the gateway's path and origin check), parses frames, answers
pings and keeps connections alive (ping every 20 s); frames over `frame_bytes_max` close the
connection with 1009. Every data message goes to the gateway's Connection the moment the library
has parsed it, inside `data_received` (`TradingConnection`): no queue in the library's
Assembler, no reader task woken per message.
"""

import asyncio

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

from .connection import CLOSE_FULL, Connection
from .links import is_utf8


class TradingConnection(ServerConnection):
    """websockets' server connection, except that once `on_message` is set every data message
    goes to it as soon as it is parsed. Control frames and the closing handshake stay the
    library's."""

    on_message = None
    _fragments: list[bytes] | None = None
    _text = False

    def process_event(self, event) -> None:
        on_message = self.on_message
        if on_message is None or not isinstance(event, Frame):
            super().process_event(event)
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._text = opcode is Opcode.TEXT
            if event.fin:
                self._deliver(on_message, event.data)
            else:
                self._fragments = [event.data]
        elif opcode is Opcode.CONT:
            self._fragments.append(event.data)  # the protocol refuses a CONT out of sequence
            if event.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._deliver(on_message, data)
        else:
            super().process_event(event)

    def _deliver(self, on_message, data: bytes) -> None:
        """A text message must be UTF-8 (links.is_utf8: else 1007, as the picows server
        closes). The library checks it only when it decodes a message itself, which this path
        skips."""
        if self._text and not is_utf8(data):
            self.on_message = lambda data: None
            self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
            self.send_data()
            return
        on_message(data)


class WebsocketsLink:
    """gateway/links.py's Link over a websockets connection."""

    __slots__ = ("ws", "transport", "_closing")

    def __init__(self, ws: TradingConnection) -> None:
        self.ws = ws
        self.transport = ws.transport
        self._closing: asyncio.Task | None = None

    def is_open(self) -> bool:
        return self.ws.protocol.state is State.OPEN and not self.transport.is_closing()

    async def drain(self) -> None:
        await self.ws.drain()

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self.ws.close(code, reason))

    def abort(self) -> None:
        self.transport.abort()

    async def wait_closed(self) -> None:
        await self.ws.wait_closed()

    async def ping(self) -> None:
        try:
            # inside the wait too: sending waits when the peer stopped reading
            pong = await self.ws.ping()
            await pong
        except ConnectionClosed as exc:
            raise ConnectionError("closed before the pong") from exc


class WebsocketsServer:
    def __init__(self, socket) -> None:
        self.socket = socket
        self.server = None

    async def start(self) -> None:
        s = self.socket.settings
        self.server = await serve(self._handle, s.host, s.ws_port, max_size=s.frame_bytes_max,
                                  process_request=self._check_request, compression=None,
                                  max_queue=16, ping_interval=20, ping_timeout=20,
                                  create_connection=TradingConnection)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()  # closes every connection with 1001 (going away)
        await self.server.wait_closed()

    def _check_request(self, connection, request):
        refusal = self.socket.refusal(request.path, request.headers.get("Origin"))
        if refusal is not None:
            return connection.respond(*refusal)
        return None

    async def _handle(self, ws: TradingConnection) -> None:
        socket = self.socket
        if socket.full():
            await ws.close(CLOSE_FULL, "too many connections")
            return
        link = WebsocketsLink(ws)
        socket.cap_kernel_buffer(ws.transport)
        conn = Connection(socket, link)
        conn.on_open()
        try:
            # frames that came in with the handshake sit in the library's queue: those first,
            # then every later one as it is parsed
            while len(ws.recv_messages.frames):
                conn.on_message(await ws.recv(decode=False))
            ws.on_message = lambda data: conn.on_message(data)
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            conn.on_closed()

