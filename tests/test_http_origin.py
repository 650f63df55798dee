"""The CloudStack HTTP client's transport against a scripted raw-socket server: keep-alive reuse,
the three ways an HTTP body ends, connections that must not be reused, failures, timeouts,
the connection limit and TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ec2bridge import http_origin
from ec2bridge.http_origin import HttpOrigin, OriginError


def answer(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body), head.encode(), body)


@dataclass
class ScriptedServer:
    """Answers the Nth request with ``replies[N]``: bytes to send, or a callable given the
    writer (to stall, close, or send in pieces). Records every request and connection."""

    replies: list
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    writers: list = field(default_factory=list)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/client/api"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.bodies.append(await reader.readexactly(length))
                reply = self.replies[len(self.bodies) - 1]
                if callable(reply):
                    if await reply(writer) == "close":
                        break
                else:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def stop(self) -> None:
        self._server.close()
        for writer in self.writers:
            writer.close()


@pytest.fixture
async def serve():
    started: list[tuple[ScriptedServer, HttpOrigin]] = []

    async def start(replies, **origin_options) -> tuple[ScriptedServer, HttpOrigin]:
        server = ScriptedServer(list(replies))
        url = await server.start(origin_options.pop("server_ssl", None))
        origin = HttpOrigin(url, **origin_options)
        started.append((server, origin))
        return server, origin

    yield start
    for server, origin in started:
        await origin.close()
        await server.stop()


async def test_one_kept_alive_connection_serves_consecutive_calls(serve):
    server, origin = await serve([answer(b'{"n":1}'), answer(b'{"n":2}'), answer(b'{"n":3}')])
    results = [await origin.post_form(b"command=x&n=%d" % n, timeout=5) for n in range(3)]
    assert results == [(200, b'{"n":1}'), (200, b'{"n":2}'), (200, b'{"n":3}')]
    assert server.bodies == [b"command=x&n=0", b"command=x&n=1", b"command=x&n=2"]
    assert server.connections == 1 and origin.idle_connections == 1


async def test_request_line_and_headers(serve):
    server, origin = await serve([answer(b"{}")])
    await origin.post_form(b"a=1", timeout=5)
    head = server.heads[0].decode()
    assert head.startswith("POST /client/api HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{origin.port}\r\n" in head
    assert "Content-Type: application/x-www-form-urlencoded\r\n" in head and "Content-Length: 3\r\n" in head


async def test_chunked_body_is_joined(serve):
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4\r\n{\"a\"\r\n5\r\n:[1,2\r\n2\r\n]}\r\n0\r\n\r\n")
    server, origin = await serve([chunked, answer(b"{}")])
    assert await origin.post_form(b"x=1", timeout=5) == (200, b'{"a":[1,2]}')
    assert await origin.post_form(b"x=2", timeout=5) == (200, b"{}")
    assert server.connections == 1


async def test_body_delimited_by_the_close_and_the_connection_is_not_reused(serve):
    async def until_close(writer):
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
        await writer.drain()
        writer.write(b'{"whole": "body"}')
        await writer.drain()
        return "close"

    server, origin = await serve([until_close, answer(b"{}")])
    assert await origin.post_form(b"x=1", timeout=5) == (200, b'{"whole": "body"}')
    assert origin.idle_connections == 0
    assert await origin.post_form(b"x=2", timeout=5) == (200, b"{}")
    assert server.connections == 2


async def test_connection_close_header_is_honoured(serve):
    server, origin = await serve([answer(b"{}", "Connection: close"), answer(b"{}")])
    await origin.post_form(b"x=1", timeout=5)
    assert origin.idle_connections == 0
    await origin.post_form(b"x=2", timeout=5)
    assert server.connections == 2


async def test_answer_split_across_many_segments(serve):
    body = b'{"vm":[' + b",".join(b'{"id":"%d"}' % n for n in range(20000)) + b"]}"
    whole = answer(body)

    async def trickle(writer):
        for start in range(0, len(whole), 7001):
            writer.write(whole[start:start + 7001])
            await writer.drain()

    server, origin = await serve([trickle])
    assert await origin.post_form(b"x=1", timeout=5) == (200, body)


async def test_error_status_and_body_are_returned(serve):
    error = b"HTTP/1.1 431 Unprocessable\r\nContent-Length: 13\r\n\r\n{\"error\":431}"
    server, origin = await serve([error])
    assert await origin.post_form(b"x=1", timeout=5) == (431, b'{"error":431}')


async def test_malformed_answer_is_an_origin_error(serve):
    server, origin = await serve([b"SMTP ready\r\n\r\n", answer(b"{}")])
    with pytest.raises(OriginError, match="malformed"):
        await origin.post_form(b"x=1", timeout=5)
    assert origin.idle_connections == 0
    assert await origin.post_form(b"x=2", timeout=5) == (200, b"{}")


async def test_close_before_answering_is_an_origin_error(serve):
    async def hang_up(writer):
        return "close"

    async def half_answer(writer):
        writer.write(answer(b'{"long": "answer"}')[:-5])
        await writer.drain()
        return "close"

    server, origin = await serve([hang_up, half_answer])
    with pytest.raises(OriginError, match="closed before a complete answer"):
        await origin.post_form(b"x=1", timeout=5)
    with pytest.raises(OriginError, match="closed before a complete answer"):
        await origin.post_form(b"x=2", timeout=5)


async def test_refused_connection_is_an_origin_error(unused_tcp_port):
    origin = HttpOrigin(f"http://127.0.0.1:{unused_tcp_port}/client/api")
    with pytest.raises(OriginError, match="cannot connect"):
        await origin.post_form(b"x=1", timeout=5)


async def test_timeout_closes_the_connection_so_a_late_answer_is_never_read(serve):
    late = asyncio.Event()

    async def stall(writer):
        await late.wait()
        writer.write(answer(b'{"late": true}'))

    server, origin = await serve([stall, answer(b'{"fresh": true}')])
    with pytest.raises(TimeoutError):
        await origin.post_form(b"x=1", timeout=0.2)
    late.set()
    assert origin.idle_connections == 0
    assert await origin.post_form(b"x=2", timeout=5) == (200, b'{"fresh": true}')
    assert server.connections == 2


async def test_cancelled_call_closes_its_connection(serve):
    never = asyncio.Event()

    async def stall(writer):
        await never.wait()

    server, origin = await serve([stall, answer(b"{}")])
    call = asyncio.create_task(origin.post_form(b"x=1", timeout=5))
    while not server.bodies:
        await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert origin.idle_connections == 0
    assert await origin.post_form(b"x=2", timeout=5) == (200, b"{}")


async def test_connection_the_server_closed_while_idle_is_not_reused(serve):
    server, origin = await serve([answer(b"{}"), answer(b'{"second": 1}')])
    await origin.post_form(b"x=1", timeout=5)
    server.writers[0].close()
    await asyncio.sleep(0.05)  # let the close arrive
    assert await origin.post_form(b"x=2", timeout=5) == (200, b'{"second": 1}')
    assert server.connections == 2


async def test_connection_idle_too_long_is_not_reused(serve, monkeypatch):
    server, origin = await serve([answer(b"{}"), answer(b"{}")])
    await origin.post_form(b"x=1", timeout=5)
    monkeypatch.setattr(http_origin, "IDLE_SECONDS", 0.0)
    await origin.post_form(b"x=2", timeout=5)
    assert server.connections == 2


async def test_unrequested_bytes_on_an_idle_connection_drop_it(serve):
    server, origin = await serve([answer(b"{}"), answer(b'{"second": 1}')])
    await origin.post_form(b"x=1", timeout=5)
    server.writers[0].write(answer(b'{"unasked": 1}'))
    await asyncio.sleep(0.05)
    assert await origin.post_form(b"x=2", timeout=5) == (200, b'{"second": 1}')
    assert server.connections == 2


async def test_at_most_limit_connections_at_once(serve):
    release = asyncio.Event()

    async def slow(writer):
        await release.wait()
        writer.write(answer(b"{}"))

    server, origin = await serve([slow] * 6, limit=2)
    calls = [asyncio.create_task(origin.post_form(b"x=%d" % n, timeout=5)) for n in range(6)]
    while len(server.bodies) < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(server.bodies) == 2  # the other four wait for a free connection
    release.set()
    assert [status for status, _ in await asyncio.gather(*calls)] == [200] * 6
    assert server.most_open == 2 and server.connections == 2


def self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


async def test_https_origin_is_verified(serve, tmp_path):
    cert, key = self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    trusting = ssl.create_default_context(cadata=cert.decode())
    server, origin = await serve([answer(b'{"tls": 1}'), answer(b'{"tls": 2}')], server_ssl=server_ssl,
                                 ssl_context=trusting)
    assert await origin.post_form(b"x=1", timeout=5) == (200, b'{"tls": 1}')
    assert await origin.post_form(b"x=2", timeout=5) == (200, b'{"tls": 2}')
    assert server.connections == 1

    _, default = await serve([answer(b"{}")], server_ssl=server_ssl)  # the system trust store
    with pytest.raises(OriginError, match="CERTIFICATE_VERIFY_FAILED"):
        await default.post_form(b"x=1", timeout=5)


def test_only_http_urls():
    with pytest.raises(ValueError):
        HttpOrigin("ftp://cloudstack.example/client/api")
