"""The aiohttp application: EC2 Query requests in, EC2 XML out.

``create_app(config)`` builds everything; nothing lives in module globals. Shared objects
(the key store, the service models, the CloudStack client, ...) sit in one :class:`Services`
under the ``SERVICES`` app key and are opened and closed by ``cleanup_ctx``.

Every route's handler is wrapped by :func:`enveloped`, which gives every response its request
id and turns every failure into the EC2 error envelope (details of unexpected ones only in
the log); a catch-all route answers paths and methods no other route takes in the same
envelope. A wrapper rather than an aiohttp middleware: with no middleware, aiohttp runs the
handler directly instead of through two more coroutine layers per request. The query handler
then reads and bounds the body, authenticates, parses the action's input from botocore's
model, runs the mapping record and renders the output from the same model.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar
from urllib.parse import unquote

from aiohttp import web

import mappings
from ec2bridge import engine, heap
from ec2bridge.auth import Authenticator
from ec2bridge.accounts import AccountDirectory, CloudStackEnroller
from ec2bridge.answer_memo import AnswerMemo, KnownAnswer
from ec2bridge.cloudstack import CloudStackClient
from ec2bridge.config import DEMO_CREDENTIALS, Config
from ec2bridge.context import RequestContext
from ec2bridge.describe import PageTokens
from ec2bridge.errors import EC2Error, internal_error
from ec2bridge.protocol import ServiceModels, parse_request, prepare, render_error, render_parts
from ec2bridge.stores import default_database_url, open_database
from ec2bridge.stores.sqlite import SqliteIdMap, SqliteKeyStore
from signing.errors import AuthError
from signing.keystore import SecretBox, load_master_key
from signing.request import HttpRequest

log = logging.getLogger("ec2bridge")
T = TypeVar("T")

DEFAULT_VERSION = "2016-11-15"
QUERY_PATHS = ("/", "/services/compute", "/services/compute/")
HEALTH_PATH = "/healthz"
STREAM_BYTES = 1 << 20         # answers this large or larger are streamed (``stream_answer``)
STREAM_CHUNK_BYTES = 256 << 10
ROUTE_METHODS = {path: ("GET", "POST") for path in QUERY_PATHS} | {HEALTH_PATH: ("GET", "HEAD")}


@dataclass
class Services:
    config: Config
    models: ServiceModels
    keys: SqliteKeyStore
    ids: SqliteIdMap
    authenticator: Authenticator
    page_tokens: PageTokens
    actions: dict[str, Any]
    cloudstack: CloudStackClient
    accounts: AccountDirectory
    database: Any = None
    admin_creds: tuple[str, str] | None = None  # CloudStack admin keys, when configured
    simulator: Any = None  # the embedded simulator, when the bridge runs on it
    _stores: dict[Any, Any] = field(default_factory=dict)

    async def close_stores(self) -> None:
        """Let the stores that run tasks stop them (``aclose``), before the client closes."""
        for store in list(self._stores.values()):
            aclose = getattr(store, "aclose", None)
            if aclose is not None:
                await aclose()

    def store(self, factory: Callable[[Any], T]) -> T:
        """The process's one instance of a store class built on the database (made on first use)."""
        if factory not in self._stores:
            self._stores[factory] = factory(self.database)
        return self._stores[factory]


SERVICES = web.AppKey("services", Services)
CONFIG = web.AppKey("config", Config)
REQUEST_ID = web.RequestKey("request_id", str)
PROTOCOL = web.RequestKey("protocol", str)  # "ec2" or "query" (STS): how errors are rendered


def create_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app.cleanup_ctx.append(services_context)
    app.router.add_get(HEALTH_PATH, enveloped(healthz))
    query = enveloped(handle_query)
    for path in QUERY_PATHS:
        app.router.add_route("GET", path, query)
        app.router.add_route("POST", path, query)
    # Registered last, so aiohttp tries it only after the routes above.
    app.router.add_route("*", "/{path:.*}", enveloped(no_route))
    return app


async def services_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    database = open_database(config.database_url or default_database_url(config.data_dir))
    master_key = load_master_key(config.data_dir)
    keys = SqliteKeyStore(database, SecretBox(master_key))
    simulator = await start_embedded_simulator(config) if config.embedded_simulator else None
    client = None
    try:
        url, admin = backend_endpoint(config, simulator)
        client = CloudStackClient(url, timeout=config.cloudstack_timeout, job_wait=config.job_wait)
        enroller = CloudStackEnroller(client, admin) if admin else None
        authenticator = Authenticator(keys, enroller, max_skew=config.max_clock_skew,
                                      enrolled_ttl=config.enrolled_key_ttl)
        token_secret = hmac.new(master_key, b"ec2bridge page tokens", hashlib.sha256).digest()
        models = ServiceModels()
        # Compile each mapped action's parser and XML writers now, not on its first request.
        prepare(models.operation(action) for action in mappings.actions())
        app[SERVICES] = Services(config=config, models=models, keys=keys, ids=SqliteIdMap(database),
                                 authenticator=authenticator, page_tokens=PageTokens(token_secret),
                                 actions=mappings.actions(), cloudstack=client,
                                 accounts=AccountDirectory(client), database=database, admin_creds=admin,
                                 simulator=simulator)
        yield
    finally:
        if SERVICES in app:
            await app[SERVICES].close_stores()
        if client is not None:
            await client.close()
        if simulator is not None:
            await simulator.stop()
        database.close()


async def start_embedded_simulator(config: Config):
    """The CloudStack simulator in this process, on a loopback port of its own."""
    import cloudstack_sim

    sim_config = cloudstack_sim.SimConfig(
        host="127.0.0.1", port=0, state_file=Path(config.data_dir) / "simulator-state.json",
        demo_credentials=config.demo_credentials or DEMO_CREDENTIALS,
        job_duration=config.simulator_job_duration)
    simulator = await cloudstack_sim.start(sim_config)
    log.info("running on the embedded CloudStack simulator at %s; demo access key %s",
             simulator.url, simulator.demo_credentials[0])
    return simulator


def backend_endpoint(config: Config, simulator) -> tuple[str, tuple[str, str] | None]:
    if simulator is not None:
        return simulator.url, tuple(simulator.admin_credentials)
    admin = None
    if config.cloudstack_admin_api_key and config.cloudstack_admin_secret_key:
        admin = (config.cloudstack_admin_api_key, config.cloudstack_admin_secret_key)
    return config.cloudstack_url, admin


_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab"))  # RFC 4122's variant bits over a hex digit


def new_request_id() -> str:
    """A random UUID (version 4) as text, like AWS's request ids: ``str(uuid.uuid4())``
    without building a UUID object, which takes most of that call's time."""
    text = os.urandom(16).hex()
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:]}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def enveloped(handler: Handler) -> Handler:
    """``handler`` answering with a request id on every response and an EC2 error document
    for every failure (details of unexpected ones only in the log)."""

    async def envelope(request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        request[REQUEST_ID] = request_id
        try:
            response = await handler(request)
        except (EC2Error, AuthError) as error:
            response = error_response(request, error.code, error.message, error.status)
        except web.HTTPException as error:
            response = error_response(request, *_http_error(error))
        except Exception:
            log.exception("unexpected error in request %s", request_id)
            error = internal_error()
            response = error_response(request, error.code, error.message, error.status)
        response.headers["x-amzn-RequestId"] = request_id
        return response

    return envelope


async def no_route(request: web.Request) -> web.StreamResponse:
    """What aiohttp's router would answer without the catch-all route: 405 on a known path,
    404 elsewhere (the envelope renders both)."""
    methods = ROUTE_METHODS.get(request.rel_url.path_safe)  # what the router matched on
    if methods is not None:
        raise web.HTTPMethodNotAllowed(request.method, methods)
    raise web.HTTPNotFound()


def _http_error(error: web.HTTPException) -> tuple[str, str, int]:
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return "RequestEntityTooLarge", "The request body is too large", 413
    if isinstance(error, web.HTTPMethodNotAllowed):
        return "InvalidHttpRequest", f"The HTTP method {error.method} is not supported", 405
    if isinstance(error, web.HTTPNotFound):
        return "InvalidAction", "The requested URL is not an EC2 endpoint", 404
    return "InvalidHttpRequest", error.reason or "Bad request", error.status


def error_response(request: web.Request, code: str, message: str, status: int) -> web.Response:
    protocol = request.get(PROTOCOL, "ec2")
    body = render_error(code, message, request.get(REQUEST_ID, ""), protocol=protocol)
    return web.Response(body=body, status=status, content_type="text/xml", charset="UTF-8")


async def healthz(request: web.Request) -> web.Response:
    # The pid tells the processes of `ec2bridge serve --workers N` apart.
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length  # parsed from the header on every access: read it once
    if length is not None and length > limit:
        raise EC2Error("RequestEntityTooLarge", f"The request body exceeds {limit} bytes", 413)
    if not request.can_read_body:
        return b""
    content = request.content
    if length is not None and content.is_eof():
        # The whole body came with the headers (as a small form POST does): take it as it is
        # rather than through request.read()'s loop of awaits.
        body = content.read_nowait()
        if len(body) > limit:  # decompressed beyond the limit, as request.read() would refuse
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
        return body
    return await request.read()


def check_header_size(request: web.Request, limit: int) -> None:
    headers = request.raw_headers  # (name, value) pairs; ": " and CRLF add 4 bytes to each
    size = sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
    if size > limit:
        raise EC2Error("RequestHeaderSectionTooLarge", f"The request headers exceed {limit} bytes", 431)


# The body types a Query request comes in: a form (what every client sends), or no type at all.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "application/octet-stream", ""})


def decode_params(query_string: str, body: bytes, content_type: str) -> dict[str, str]:
    try:
        pairs = form_pairs(query_string) if query_string else []
        if body and content_type in FORM_TYPES:
            pairs += form_pairs(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise EC2Error("InvalidParameterValue", "The request parameters are not valid UTF-8") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise EC2Error("InvalidParameterValue", f"The parameter {name} is given more than once")
            seen.add(name)
    return params


def form_pairs(text: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(text, keep_blank_values=True, errors="strict")``, with its
    decoding steps skipped for the fields that need none (most of them: EC2 names and values
    are rarely percent-encoded). Raises UnicodeDecodeError for undecodable escapes."""
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "+" in part:
            name, value = name.replace("+", " "), value.replace("+", " ")
        if "%" in part:
            name, value = unquote(name, errors="strict"), unquote(value, errors="strict")
        pairs.append((name, value))
    return pairs


async def handle_query(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    config = services.config
    check_header_size(request, config.max_header_bytes)
    body = await read_body(request, config.max_body_bytes)
    params = decode_params(request.rel_url.raw_query_string, body, request.content_type)
    http_request = HttpRequest(method=request.method, host=request.headers.get("Host", ""),
                               path=request.rel_url.raw_path, query_string=request.rel_url.raw_query_string,
                               headers=request.headers, body=body, params=params)
    credential = await services.authenticator.authenticate(http_request)
    action = params.get("Action")
    if not action:
        raise EC2Error("MissingAction", "The request must contain the parameter Action")
    operation = services.models.operation(action)
    protocol = operation.service_model.protocol
    request[PROTOCOL] = protocol
    record = services.actions.get(action)
    if record is None:
        raise EC2Error("UnsupportedOperation", f"The action {action} is not supported by this endpoint yet")
    version = params.get("Version") or DEFAULT_VERSION
    parsed = parse_request(operation, params)
    ctx = RequestContext(request_id=request[REQUEST_ID], action=action, credential=credential,
                         config=config, services=services, request=parsed, version=version)
    try:
        output = await engine.run(record, ctx, parsed)
    except KnownAnswer as known:
        return xml_response(known.body(ctx.request_id))
    parts = render_parts(operation, output, version=version, request_id=ctx.request_id)
    del output
    size = sum(map(len, parts))
    if size < STREAM_BYTES:
        body = b"".join(parts)
        if ctx.keep_answer_as is not None:
            services.store(AnswerMemo).keep(*ctx.keep_answer_as, body, ctx.request_id)
        return xml_response(body)
    try:
        return await stream_answer(request, parts, size)
    finally:
        heap.after_answer(size)


def xml_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="text/xml", charset="UTF-8")


async def stream_answer(request: web.Request, parts: list[bytes], size: int) -> web.StreamResponse:
    """A large answer written ``STREAM_CHUNK_BYTES`` at a time, each write waiting while the
    client is behind: it never exists as one joined body, nor as a second copy in the
    transport's buffer (a 10,000-instance answer is 19 MB)."""
    response = web.StreamResponse(headers={"Content-Type": "text/xml; charset=UTF-8",
                                           "x-amzn-RequestId": request[REQUEST_ID]})
    response.content_length = size
    await response.prepare(request)
    chunk: list[bytes] = []
    filled = 0
    try:
        for index, part in enumerate(parts):
            parts[index] = b""  # sent parts are dropped as the answer goes out
            chunk.append(part)
            filled += len(part)
            if filled >= STREAM_CHUNK_BYTES:
                await response.write(b"".join(chunk))
                chunk, filled = [], 0
        await response.write(b"".join(chunk))
        await response.write_eof()
    except ConnectionResetError:  # the client left before the end: nobody to answer
        log.info("client left during the answer to request %s", request[REQUEST_ID])
    return response
