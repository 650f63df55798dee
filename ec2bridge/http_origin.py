"""A lean HTTP/1.1 client for one origin: the CloudStack API endpoint.

The bridge makes at least one CloudStack call for most EC2 calls, so the cost of a call is on
the hot path. aiohttp's client spent about 300 µs of CPU per call on our 2-core benchmark
machine (cookie, redirect, proxy, tracing and stream machinery the bridge never uses); this
client spends about 60 µs: a request is one pre-built head plus the body in one write, and the
answer is parsed by httptools (llhttp, Node's HTTP parser) straight into a list of chunks.

- Keep-alive connections to one ``scheme://host:port``, at most ``limit`` open at once; callers
  beyond that wait for a free one. Idle connections are reused most recent first, and one idle
  longer than ``IDLE_SECONDS`` (below the keep-alive timeouts of Jetty, nginx and aiohttp) is
  closed rather than reused, so a request rarely meets a connection the server just dropped.
- Bodies delimited by Content-Length, chunked, or by the server closing the connection.
- A connection goes back to the pool only after a complete answer that allows keep-alive. Any
  failure, timeout or cancellation in the middle of an exchange closes it: a late answer can
  never be read as the answer to the next request.
- Failures are :class:`OriginError` (could not connect, connection dropped, malformed answer)
  or :class:`TimeoutError`. Nothing is retried here: only the caller knows whether its request
  is safe to send twice.
- ``https`` origins are verified against the system's trust store unless an ``ssl_context``
  is given.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

from ec2bridge import __version__

IDLE_SECONDS = 15.0
USER_AGENT = f"ec2bridge/{__version__}"


class OriginError(ConnectionError):
    """The origin could not be reached, dropped the connection, or answered something that is
    not HTTP."""


class HttpOrigin:
    def __init__(self, url: str, *, limit: int = 200, ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._post_head = (f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
                           f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ").encode("latin-1")
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Connection] = []

    async def post_form(self, body: bytes, *, timeout: float) -> tuple[int, bytes]:
        """POST a form-encoded ``body``; the answer's status and body."""
        request = b"%s%d\r\n\r\n%s" % (self._post_head, len(body), body)
        async with asyncio.timeout(timeout), self._slots:
            connection = self._reusable() or await self._connect()
            try:
                status, answer, keep_alive = await connection.exchange(request)
            except BaseException:
                connection.close()
                raise
            if keep_alive:
                self._idle.append(connection.rest())
            else:
                connection.close()
            return status, answer

    def _reusable(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self.host, self.port, ssl=self._ssl,
                                                         server_hostname=self.host if self._ssl else None)
        except OSError as error:  # refused, unreachable, name not known, TLS handshake failed
            raise OriginError(f"cannot connect to {self.host}:{self.port}: {error}") from error
        return connection

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    @property
    def idle_connections(self) -> int:
        return len(self._idle)


class _Connection(asyncio.Protocol):
    """One connection; at most one exchange at a time, driven by :meth:`exchange`."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._answer: asyncio.Future | None = None
        self._chunks: list[bytes] = []
        self._headers_done = False
        self._length_known = False  # Content-Length or chunked: the end is in the data, not at EOF
        self._lost = False
        self._idle_since = 0.0

    # -- driven by HttpOrigin -------------------------------------------------------------------
    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        self._parser = httptools.HttpResponseParser(self)
        self._chunks, self._headers_done, self._length_known = [], False, False
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._answer

    def rest(self) -> _Connection:
        self._parser = self._answer = None
        self._idle_since = asyncio.get_running_loop().time()
        return self

    def usable(self) -> bool:
        return (not self._lost and not self._transport.is_closing()
                and asyncio.get_running_loop().time() - self._idle_since < IDLE_SECONDS)

    def close(self) -> None:
        self._lost = True
        if self._transport is not None:
            self._transport.abort()

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(OriginError(f"malformed HTTP answer: {error}"))

    def connection_lost(self, error: Exception | None) -> None:
        self._lost = True
        if self._headers_done and not self._length_known:
            self.on_message_complete()  # the body was delimited by the close
        else:
            self._fail(OriginError("connection closed before a complete answer"
                                   + (f": {error}" if error else "")))

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._length_known = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        answer, parser = self._answer, self._parser
        if answer is None or answer.done():
            return
        keep_alive = not self._lost and parser.should_keep_alive()
        self._parser = None  # anything more before the next request is unexpected
        answer.set_result((parser.get_status_code(), b"".join(self._chunks), keep_alive))

    def _fail(self, error: OriginError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()
