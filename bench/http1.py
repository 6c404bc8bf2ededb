"""A lean keep-alive HTTP/1.1 client for the load generator: one request at a time per connection.

On the 2-core machine every core the load generator burns is taken from the service and PostgreSQL it measures.
httpx spent 2.4-4.2 ms of CPU per request there (its request and response models, header objects, the pool's
bookkeeping): as much as the service itself, so the throughput figure measured httpx as much as the service.
This client sends prebuilt request bytes and reads the status line, Content-Length and the body, ~0.1 ms per
request; what the bench loads is then the service. (wrk would be leaner still, but is not on every machine.)
It knows only what the service answers: Content-Length bodies (uvicorn sends one for every non-streamed
response) and keep-alive; a response it cannot frame is an error, never a silent guess.
"""

from __future__ import annotations

import asyncio
from typing import cast
from urllib.parse import urlsplit

import orjson


class ProtocolError(Exception):
    """The server's answer was not the HTTP/1.1 this client reads (or the connection closed mid-answer)."""


class _Http1Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False
        # The answer being read: its status, the body's start and length, and whether the server closes after.
        self.status = 0
        self.body_at = -1
        self.length = 0
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ProtocolError(f"connection closed mid-answer: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            answer = self._answer()
        except ProtocolError as exc:
            self.waiter.set_exception(exc)
            return
        if answer is not None:
            self.waiter.set_result(answer)

    def _answer(self) -> tuple[int, bytes, bool] | None:
        if self.body_at < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise ProtocolError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
            self.status = int(parts[1])
            length = None
            self.close_after = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise ProtocolError("chunked answers are not read by this client")
                elif name == b"connection" and value.strip().lower() == b"close":
                    self.close_after = True
            if length is None:
                raise ProtocolError(f"an answer without Content-Length (status {self.status})")
            self.body_at, self.length = end + 4, length
        if len(self.buffer) < self.body_at + self.length:
            return None
        body = bytes(self.buffer[self.body_at : self.body_at + self.length])
        del self.buffer[: self.body_at + self.length]
        self.body_at = -1
        return self.status, body, self.close_after


class Http1Client:
    """Requests to one server over one keep-alive connection, reconnecting when the server closes it."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only plain http://host:port is supported, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        authority = f"{self.host}:{self.port}"
        self.head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": authority, **headers}.items())
        self.protocol: _Http1Protocol | None = None

    def get(self, path: str) -> bytes:
        """The bytes of a GET request, built once and sent as often as wanted."""
        return f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode()

    def post_json(self, path: str, body: object) -> bytes:
        payload = orjson.dumps(body)
        head = f"POST {path} HTTP/1.1\r\n{self.head}Content-Type: application/json\r\n"
        return f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload

    async def send(self, request: bytes, timeout_s: float = 30.0) -> tuple[int, bytes]:
        """(status, body) of one request; ProtocolError, OSError or TimeoutError when there is no answer."""
        protocol = self.protocol
        if protocol is None or protocol.closed:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(_Http1Protocol, self.host, self.port)
            self.protocol = protocol
        assert protocol.transport is not None
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.transport.write(request)
        try:
            status, body, close_after = await asyncio.wait_for(protocol.waiter, timeout_s)
        except BaseException:
            # The connection is in an unknown state (half an answer read): never reuse it.
            self.close()
            raise
        finally:
            protocol.waiter = None
        if close_after:
            self.close()
        return status, body

    def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()
        self.protocol = None
