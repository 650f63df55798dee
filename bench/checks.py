"""Is the answer right? Checked on the exact bytes wrk will replay, before any timing counts.

wrk only sees status codes; a benchmark of a fast wrong answer (an auth failure, an empty list)
would be worthless, so each probe's request is first sent from Python and its answer checked:
the fixed body of the harness's own servers, a CloudStack list with the expected ``count``, or an
EC2 response whose root element names the action (and, for DescribeInstances, holds exactly the
fleet's instances). EC2 errors are reported with their code: an action the bridge does not map
yet answers ``UnsupportedOperation``.
"""

from __future__ import annotations

import abc

import http.client
import json
import re
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.servers import FIXED_BODY
from bench.signed import SignedRequest

ERROR_CODE = re.compile(rb"<Code>([^<]*)</Code>")
ERROR_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


class WrongAnswer(Exception):
    """The server's answer to the probe's request is not the one the benchmark must measure."""


class Expectation(abc.ABC):
    @abc.abstractmethod
    def check(self, status: int, body: bytes) -> None:
        """Raise :class:`WrongAnswer` unless the answer is the one to measure."""


@dataclass(frozen=True)
class FixedBody(Expectation):
    def check(self, status: int, body: bytes) -> None:
        if status != 200 or body != FIXED_BODY:
            raise WrongAnswer(f"unexpected answer: HTTP {status}, {len(body)} bytes")


@dataclass(frozen=True)
class CloudStackList(Expectation):
    command: str
    count: int | None

    def check(self, status: int, body: bytes) -> None:
        try:
            envelope = next(iter(json.loads(body).values()))
        except (ValueError, StopIteration, AttributeError):
            raise WrongAnswer(f"{self.command}: HTTP {status}, not a CloudStack JSON answer") from None
        if status != 200:
            raise WrongAnswer(f"{self.command}: HTTP {status} {envelope.get('errortext', '')}")
        if self.count is not None and int(envelope.get("count", 0)) != self.count:
            raise WrongAnswer(f"{self.command}: count {envelope.get('count', 0)}, expected {self.count}")


@dataclass(frozen=True)
class Ec2Answer(Expectation):
    action: str
    instances: int | None = None   # DescribeInstances: how many instances the answer must hold

    def check(self, status: int, body: bytes) -> None:
        if status != 200:
            code, message = ERROR_CODE.search(body), ERROR_MESSAGE.search(body)
            detail = f"{code.group(1).decode()}: {message.group(1).decode()}" if code and message else body[:200]
            verdict = "not available" if code and code.group(1) == b"UnsupportedOperation" else "failed"
            raise WrongAnswer(f"{self.action} {verdict} (HTTP {status}, {detail})")
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError as error:
            raise WrongAnswer(f"{self.action}: unreadable XML ({error})") from None
        if not root.tag.endswith(f"}}{self.action}Response"):
            raise WrongAnswer(f"{self.action}: answered with <{root.tag}>")
        if self.instances is not None:
            found = len(root.findall(".//{*}instancesSet/{*}item"))
            if found != self.instances:
                raise WrongAnswer(f"{self.action}: {found} instances in the answer, expected {self.instances}")


def connect(request: SignedRequest, timeout: float = 600) -> http.client.HTTPConnection:
    parts = urlsplit(request.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def send(request: SignedRequest, connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    """Send the signed request as wrk will: its headers (Host as signed), Content-Length, nothing
    else; on ``connection`` (kept open, as wrk keeps its connections) or on a new one."""
    own = connection is None
    connection = connect(request) if own else connection
    try:
        connection.putrequest(request.method, request.path, skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.items():
            if name.lower() != "content-length":
                connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        if own:
            connection.close()


def timed_call(request: SignedRequest, expect: Expectation,
               connection: http.client.HTTPConnection | None = None) -> tuple[float, int]:
    """(milliseconds, response bytes) of one checked call."""
    started = time.perf_counter()
    status, body = send(request, connection)
    elapsed_ms = (time.perf_counter() - started) * 1000
    expect.check(status, body)
    return elapsed_ms, len(body)


def timed_calls(request: SignedRequest, expect: Expectation, connection: http.client.HTTPConnection,
                count: int) -> list[float]:
    """Milliseconds of ``count`` calls sent back to back, as a client in a loop sends them;
    every answer is checked once they are all in (checking a 19 MB answer takes seconds)."""
    timings, answers = [], []
    for _ in range(count):
        started = time.perf_counter()
        answers.append(send(request, connection))
        timings.append((time.perf_counter() - started) * 1000)
    for status, body in answers:
        expect.check(status, body)
    return timings
