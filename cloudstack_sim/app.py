"""The HTTP face of the simulator: ``/client/api`` as CloudStack's ``ApiServlet`` answers it.

Request path: merge query and form parameters -> authenticate (401) -> look up the command (432)
-> count the call -> inject configured faults -> check parameters (431) -> run the handler ->
render ``{"<cmd>response": ...}`` with the HTTP status equal to ``errorcode`` on failure. A bug in a
handler is logged and answered as CloudStack answers any unexpected exception (530, "Internal
error executing command..."), never as a bare HTTP 500.
``/sim/faults`` (GET/POST/DELETE) and ``/sim/calls`` (GET) are the simulator's own admin endpoints,
signed like API calls (query parameters) and open to root admins only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import AsyncIterator

from aiohttp import web

from . import commands  # noqa: F401  (registers every handler)
from .auth import authenticate
from .config import SimConfig
from .context import ADMIN, Call, Listing
from .errors import ApiError, internal_error, unknown_command
from .faults import FaultRule
from .jobs import JobQueue
from .params import lowercase_names, parse_params
from .seed import apply_credentials, seed_defaults
from .spec import COMMANDS
from .state import SimState
from .xml import to_xml

log = logging.getLogger(__name__)
STATE_KEY = web.AppKey("cloudstack_sim_state", SimState)
JSON_TYPE = "application/json"


def build_state(config: SimConfig) -> SimState:
    state = SimState(config)
    JobQueue(state)
    if config.state_file and config.state_file.exists():
        state.load(config.state_file)
        state.jobs.abandon_loaded()
    else:
        seed_defaults(state)
    apply_credentials(state, config)
    return state


def create_app(config: SimConfig) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE_KEY] = build_state(config)
    app.router.add_route("GET", "/client/api", api_handler)
    app.router.add_route("POST", "/client/api", api_handler)
    app.router.add_route("*", "/sim/faults", faults_handler)
    app.router.add_route("GET", "/sim/calls", calls_handler)
    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(release_stalled)
    return app


async def release_stalled(app: web.Application) -> None:
    """Runs before aiohttp waits for open handlers, so stalled requests end instead of holding shutdown."""
    app[STATE_KEY].shutdown.set()


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE_KEY]
    state.shutdown = asyncio.Event()   # set by release_stalled on shutdown
    saver = asyncio.create_task(save_periodically(state)) if state.config.state_file else None
    yield
    state.shutdown.set()
    if saver:
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver
    state.jobs.finish_all_now()
    if state.config.state_file:
        state.save(state.config.state_file)


async def save_periodically(state: SimState) -> None:
    while True:
        await asyncio.sleep(state.config.save_interval)
        if state.dirty:
            try:
                state.save(state.config.state_file)
            except OSError:
                log.exception("could not save simulator state to %s", state.config.state_file)


async def request_params(request: web.Request) -> dict[str, str]:
    """Query and form parameters, first value of each name, as the servlet's ``getParameterMap``."""
    params: dict[str, str] = {}
    for name, value in request.query.items():
        params.setdefault(name, value)
    if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded",
                                                             "multipart/form-data"):
        for name, value in (await request.post()).items():
            if isinstance(value, str):
                params.setdefault(name, value)
    return params


async def api_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    params = await request_params(request)
    lowered = lowercase_names(params)
    as_json = lowered.get("response", "").lower() == "json"
    name = lowered.get("command")
    command = COMMANDS.get(name or "")
    wrapper = command.spec.wrapper if command else "errorresponse"
    try:
        user, account = authenticate(state, params)
        if command is None:
            raise unknown_command(name)
        state.call_counts[name] += 1
        fault = state.faults.decide(name)
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.drop:
            return drop(request)
        if fault.stall:
            return await stall(request, state)
        if fault.error is not None:
            raise ApiError(fault.error.error_code, fault.error.error_text)
        values = parse_params(command.spec, lowered, state.exists)
        call = Call(state, command.spec, user, account, values, lowered, request.method)
        result = command.handler(call)
        return render(wrapper, command.spec.object_key, result, state, as_json)
    except ApiError as error:
        return render_error(error.wrapper or wrapper, error, as_json)
    except Exception:   # ApiServer.handleRequest's last resort; CancelledError (drops) passes through
        log.exception("unhandled exception executing api command %s", name)
        return render_error(wrapper, internal_error(), as_json)


def render(wrapper: str, object_key: str, result, state: SimState, as_json: bool) -> web.Response:
    if not as_json:
        return xml_response(wrapper, listing_dict(object_key, result, state) if isinstance(result, Listing)
                            else result, 200)
    if isinstance(result, Listing):
        text = listing_json(wrapper, object_key, result, state)
    else:
        text = json.dumps({wrapper: result}, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, content_type=JSON_TYPE, charset="utf-8")


def listing_json(wrapper: str, object_key: str, listing: Listing, state: SimState) -> str:
    if listing.count == 0:
        return f'{{"{wrapper}":{{}}}}'   # CloudStack's empty list: no count, no key
    if listing.kind is None:
        items = ",".join(json.dumps(row, separators=(",", ":"), ensure_ascii=False) for row in listing.rows)
    elif listing.variants:
        items = ",".join(state.render_json(listing.kind, row, variant)
                         for row, variant in zip(listing.rows, listing.variants))
    else:
        render_json, kind = state.render_json, listing.kind
        items = ",".join([render_json(kind, row) for row in listing.rows])
    return f'{{"{wrapper}":{{"count":{listing.count},"{object_key}":[{items}]}}}}'


def listing_dict(object_key: str, listing: Listing, state: SimState) -> dict:
    if listing.count == 0:
        return {}
    if listing.kind is None:
        rows = listing.rows
    else:
        variants = listing.variants or [None] * len(listing.rows)
        rows = [state.render(listing.kind, row, variant) for row, variant in zip(listing.rows, variants)]
    return {"count": listing.count, object_key: rows}


def render_error(wrapper: str, error: ApiError, as_json: bool) -> web.Response:
    if not as_json:
        return xml_response(wrapper, error.body(), error.code)
    return web.Response(text=json.dumps({wrapper: error.body()}, separators=(",", ":")), status=error.code,
                        content_type=JSON_TYPE, charset="utf-8")


def xml_response(wrapper: str, body: dict, status: int) -> web.Response:
    return web.Response(text=to_xml(wrapper, body), status=status, content_type="text/xml", charset="utf-8")


def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a response, like a crashed or unreachable server."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError()


async def stall(request: web.Request, state: SimState) -> web.StreamResponse:
    """Answer nothing until the client gives up (or the stall limit / shutdown ends it)."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(state.shutdown.wait(), state.config.stall_limit)
    return drop(request)


# -- the simulator's own admin endpoints --------------------------------------------------------
def admin_only(request: web.Request) -> SimState:
    state = request.app[STATE_KEY]
    _, account = authenticate(state, dict(request.query), require_command=False)
    if account["type"] != ADMIN:
        raise ApiError(531, "Only the root admin may manage simulator faults")
    return state


def json_reply(body, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def faults_handler(request: web.Request) -> web.Response:
    try:
        state = admin_only(request)
    except ApiError as error:
        return json_reply({"error": error.text}, error.code)
    if request.method == "DELETE":
        state.faults.clear()
    elif request.method == "POST":
        try:
            payload = await request.json()
            rules = [FaultRule.from_dict(rule) for rule in payload.get("rules", [])]
        except (ValueError, TypeError, AttributeError) as error:
            return json_reply({"error": f"bad fault rules: {error}"}, 400)
        if payload.get("replace", True):
            state.faults.set_rules(rules)
        else:
            for rule in rules:
                state.faults.add(rule)
        if "seed" in payload:
            state.faults.seed(payload["seed"])
    elif request.method != "GET":
        return json_reply({"error": "method not allowed"}, 405)
    return json_reply({"rules": [rule.to_dict() for rule in state.faults.rules]})


async def calls_handler(request: web.Request) -> web.Response:
    try:
        state = admin_only(request)
    except ApiError as error:
        return json_reply({"error": error.text}, error.code)
    return json_reply({"calls": dict(state.call_counts)})

