"""The one CloudStack client: signed calls, list paging, async jobs, errors.

- One pool of keep-alive connections to CloudStack for the whole process
  (:class:`ec2bridge.http_origin.HttpOrigin`), a timeout on every call.
- Requests are signed with ``signing.cloudstack`` (``signatureversion=3`` with ``expires``),
  the module the simulator verifies with, and sent as the form body it encodes along the way.
- ``list_all`` fetches the first page, learns ``count``, then fetches the remaining pages
  concurrently. ``list_raw`` does the same but hands back each object as the JSON text
  CloudStack sent, split out of the page without building it as Python objects (msgspec reads
  the envelope four times faster than a full parse): a caller that only needs to know whether
  an object changed, or parses few of them, skips most of the parsing. A one-page listing
  whose text is unchanged since the last call is not split again (:class:`SplitPages`).
- ``run`` calls a command and, if CloudStack answers with a ``jobid``, waits for the job
  through the shared :class:`JobPoller` (bounded wait; one task polls every waiting job).
- Only idempotent calls (``list*``, ``queryAsyncJobResult``) are retried, and only on
  connection errors. Everything else fails once, clearly:
  :class:`CloudStackError` (CloudStack answered with an error), :class:`BackendUnavailable`
  (no answer, connection refused or dropped, timeout).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import msgspec
import orjson

from ec2bridge.http_origin import HttpOrigin, OriginError
from signing import cloudstack as cs_signing

log = logging.getLogger(__name__)

Credentials = tuple[str, str]  # (api key, secret key)

# CloudStack's error templates name the parameter involved; we read the parameter name from
# the template (a structured part of the message), never the English around it.
_PARAM_IN_ERROR = re.compile(r"(?:missing parameter|for parameter|Invalid parameter) (\w[\w.\[\]]*)")


@dataclass
class CloudStackError(Exception):
    """CloudStack answered with an error envelope (or a failed async job)."""

    command: str
    code: int
    text: str
    cserrorcode: int | None = None
    uuids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(f"{self.command}: {self.code} {self.text}")

    @property
    def param(self) -> str | None:
        match = _PARAM_IN_ERROR.search(self.text)
        return match.group(1).lower() if match else None


class BackendUnavailable(Exception):
    """CloudStack could not be reached or did not answer in time."""


class JobTimeout(BackendUnavailable):
    """An async job did not finish within the bounded wait."""


def _is_idempotent(command: str) -> bool:
    return command.startswith("list") or command == "queryAsyncJobResult"


def _error_from(command: str, body: Mapping[str, Any]) -> CloudStackError:
    envelope = next(iter(body.values()), {}) if body else {}
    uuid_list = envelope.get("uuidList") or envelope.get("uuidlist") or []
    return CloudStackError(command=command, code=int(envelope.get("errorcode", 530)),
                           text=str(envelope.get("errortext", "unknown CloudStack error")),
                           cserrorcode=envelope.get("cserrorcode"),
                           uuids=[u.get("uuid") for u in uuid_list if isinstance(u, dict)])


# A list response with its objects left as JSON text: {"list...response": {"count": N, "x": [...]}}.
_RAW_LIST = msgspec.json.Decoder(dict[str, dict[str, int | list[msgspec.Raw]]])


def _decode(raw: bytes) -> Any:
    return orjson.loads(raw)


def split_list_response(raw: bytes) -> Any:
    """A list response whose objects are ``bytes`` of their JSON; any other shape is read in
    full and its objects written back (a response this client did not expect still works)."""
    try:
        body = _RAW_LIST.decode(raw)
    except msgspec.ValidationError:
        body = orjson.loads(raw)
        return {name: {key: [orjson.dumps(item) for item in value] if isinstance(value, list) else value
                       for key, value in envelope.items()} if isinstance(envelope, dict) else envelope
                for name, envelope in body.items()} if isinstance(body, dict) else body
    return {name: {key: [bytes(item) for item in value] if isinstance(value, list) else value
                   for key, value in envelope.items()} for name, envelope in body.items()}


class SplitPages:
    """The last split of each listing that fits in one page, per caller, command, parameters
    and page, so that a listing polled in a loop is split (and its objects hashed) once.

    Checking that a page is unchanged is one comparison of its text with the kept one, a
    memcmp: some 5 us for 100 KB, against 150 us to split it. Only complete listings of at
    most ``MAX_PAGE_BYTES`` are kept (a fleet listed over many pages would be held twice over
    for little gain), at most ``MAX_BYTES`` of them, the least recently used going first.
    Callers get their own lists; the objects in them are shared, and ``bytes`` are immutable.
    """

    MAX_BYTES = 16 << 20
    MAX_PAGE_BYTES = 2 << 20

    def __init__(self) -> None:
        self._pages: dict[tuple, tuple[bytes, dict]] = {}
        self._bytes = 0

    def decoder(self, key: tuple) -> Callable[[bytes], Any]:
        return lambda raw: self.split(key, raw)

    def split(self, key: tuple, raw: bytes) -> Any:
        kept = self._pages.pop(key, None)
        if kept is not None:
            self._bytes -= 2 * len(kept[0])
            if kept[0] == raw:
                self._keep(key, kept)
                return _own_lists(kept[1])
        body = split_list_response(raw)
        if len(raw) <= self.MAX_PAGE_BYTES and _complete(body):
            self._keep(key, (raw, body))
            return _own_lists(body)
        return body

    def _keep(self, key: tuple, page: tuple[bytes, dict]) -> None:
        size = 2 * len(page[0])  # the text, and about as much again split
        while self._pages and self._bytes + size > self.MAX_BYTES:
            self._bytes -= 2 * len(self._pages.pop(next(iter(self._pages)))[0])
        self._pages[key] = page
        self._bytes += size


def _complete(body: Any) -> bool:
    """A list response holding its whole listing (``count`` objects)."""
    if not isinstance(body, dict) or len(body) != 1:
        return False
    envelope = next(iter(body.values()))
    if not isinstance(envelope, dict):
        return False
    items, count = list_items(envelope)
    return len(items) == count


def _own_lists(body: dict) -> dict:
    """The envelope with lists of its own (``_list_pages`` extends the first page's list)."""
    return {name: {key: list(value) if value.__class__ is list else value for key, value in envelope.items()}
            for name, envelope in body.items()}


def list_items(envelope: Mapping[str, Any]) -> tuple[list[dict], int]:
    """The objects of a list response and the total ``count`` (empty lists have no keys)."""
    for key, value in envelope.items():
        if key != "count" and isinstance(value, list):
            return value, int(envelope.get("count", len(value)))
    return [], 0


class CloudStackClient:
    def __init__(self, url: str, *, timeout: float = 30.0, job_wait: float = 600.0, page_size: int = 500,
                 poll_interval: float = 0.2, max_poll_interval: float = 2.0, connections: int = 200):
        self.url = url
        self._origin = HttpOrigin(url, limit=connections)
        self._timeout = timeout
        self.job_wait = job_wait
        self.page_size = page_size
        self.poller = JobPoller(self, poll_interval, max_poll_interval)
        self._splits = SplitPages()

    async def call(self, creds: Credentials, command: str, params: Mapping[str, Any] | None = None,
                   *, decode: Callable[[bytes], Any] = _decode) -> dict:
        """One signed call; returns the body inside the response wrapper."""
        query = {"command": command, "response": "json", **_stringify(params or {})}
        body = cs_signing.signed_form(query, creds[0], creds[1]).encode()
        attempts = 3 if _is_idempotent(command) else 1
        for attempt in range(attempts):
            try:
                return await self._send(command, body, decode)
            except (OriginError, TimeoutError) as error:
                retryable = isinstance(error, OriginError) and attempt + 1 < attempts
                if not retryable:
                    raise BackendUnavailable(f"{command}: {type(error).__name__}") from error
                log.info("retrying %s after %s", command, type(error).__name__)
        raise AssertionError("unreachable")

    async def _send(self, command: str, body: bytes, decode: Callable[[bytes], Any]) -> dict:
        status, raw = await self._origin.post_form(body, timeout=self._timeout)
        try:
            body = decode(raw) if status == 200 else orjson.loads(raw)
        except (orjson.JSONDecodeError, msgspec.DecodeError):
            raise BackendUnavailable(f"{command}: CloudStack answered HTTP {status} without JSON") from None
        if status != 200:
            raise _error_from(command, body)
        return next(iter(body.values()), {}) if isinstance(body, dict) else {}

    async def list_all(self, creds: Credentials, command: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        """Every object of a list command: first page, then the rest concurrently."""
        return await self._list_pages(creds, command, params, lambda page: _decode)

    async def list_raw(self, creds: Credentials, command: str, params: Mapping[str, Any] | None = None) -> list[bytes]:
        """``list_all``, each object left as the JSON text CloudStack sent (``orjson.loads`` reads one).

        A page whose text is the same as last time is not split again (:class:`SplitPages`):
        its objects are the same ``bytes`` objects as before, hashes included."""
        query = (creds[0], command, tuple(sorted(_stringify(params or {}).items())))
        return await self._list_pages(creds, command, params, lambda page: self._splits.decoder((query, page)))

    async def _list_pages(self, creds: Credentials, command: str, params: Mapping[str, Any] | None,
                          decoder: Callable[[int], Callable[[bytes], Any]]) -> list:
        base = dict(params or {})
        first = await self.call(creds, command, {**base, "page": 1, "pagesize": self.page_size}, decode=decoder(1))
        items, count = list_items(first)
        pages = -(-count // self.page_size)
        if pages > 1 and len(items) == self.page_size:
            rest = await asyncio.gather(*(self.call(creds, command, {**base, "page": page, "pagesize": self.page_size},
                                                    decode=decoder(page))
                                          for page in range(2, pages + 1)))
            for envelope in rest:
                items.extend(list_items(envelope)[0])
        return items

    async def run(self, creds: Credentials, command: str, params: Mapping[str, Any] | None = None,
                  *, wait: float | None = None) -> dict:
        """Call a command; if it is async, wait for its job and return the job's result."""
        submitted = await self.call(creds, command, params)
        if "jobid" not in submitted:
            return submitted
        return await self.poller.wait(creds, command, submitted["jobid"], self.job_wait if wait is None else wait)

    async def submit(self, creds: Credentials, command: str, params: Mapping[str, Any] | None = None) -> dict:
        """Start an async command without waiting: ``{"jobid": ..., "id": ...}``."""
        return await self.call(creds, command, params)

    async def close(self) -> None:
        await self.poller.close()
        await self._origin.close()


def _stringify(params: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        out[name] = str(value)
    return out


@dataclass
class _Waiter:
    creds: Credentials
    command: str
    future: asyncio.Future
    next_poll: float
    interval: float


class JobPoller:
    """One background task that polls every job somebody is waiting for.

    Each job is polled with its own backoff (interval x1.5 up to a cap); all jobs due in a tick
    are queried concurrently. The task ends when nobody waits and starts again on demand.
    """

    def __init__(self, client: CloudStackClient, interval: float, max_interval: float):
        self._client = client
        self._interval = interval
        self._max_interval = max_interval
        self._waiters: dict[str, _Waiter] = {}
        self._task: asyncio.Task | None = None
        self._wakeup = asyncio.Event()

    async def wait(self, creds: Credentials, command: str, job_id: str, timeout: float) -> dict:
        waiter = self._waiters.get(job_id)
        if waiter is None:
            loop = asyncio.get_running_loop()
            waiter = _Waiter(creds, command, loop.create_future(), time.monotonic() + self._interval, self._interval)
            # A waiter that timed out no longer reads its future: retrieve the outcome anyway
            # so that a late failure is not reported as "exception never retrieved".
            waiter.future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._waiters[job_id] = waiter
            self._wakeup.set()
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="cloudstack-job-poller")
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except asyncio.TimeoutError:
            raise JobTimeout(f"{command}: job {job_id} did not finish within {timeout:.0f}s") from None

    async def close(self) -> None:
        """Stop polling (shutdown): waiters still waiting are cancelled."""
        for waiter in self._waiters.values():
            waiter.future.cancel()
        self._waiters.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while self._waiters:
            now = time.monotonic()
            due = [(job_id, w) for job_id, w in self._waiters.items() if w.next_poll <= now]
            if due:
                await asyncio.gather(*(self._poll(job_id, w) for job_id, w in due))
            if not self._waiters:
                break
            delay = max(0.0, min(w.next_poll for w in self._waiters.values()) - time.monotonic())
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _poll(self, job_id: str, waiter: _Waiter) -> None:
        try:
            job = await self._client.call(waiter.creds, "queryAsyncJobResult", {"jobid": job_id})
        except Exception as error:  # the waiting request turns it into an EC2 error
            self._finish(job_id, error=error)
            return
        status = int(job.get("jobstatus", 0))
        if status == 0:
            waiter.interval = min(waiter.interval * 1.5, self._max_interval)
            waiter.next_poll = time.monotonic() + waiter.interval
        elif status == 1:
            self._finish(job_id, result=job.get("jobresult") or {})
        else:
            self._finish(job_id, error=_error_from(waiter.command, {"job": job.get("jobresult") or {}}))

    def _finish(self, job_id: str, *, result: dict | None = None, error: BaseException | None = None) -> None:
        waiter = self._waiters.pop(job_id)
        if waiter.future.done():
            return
        if error is not None:
            waiter.future.set_exception(error)
        else:
            waiter.future.set_result(result)

    @property
    def waiting(self) -> int:
        return len(self._waiters)
