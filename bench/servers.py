"""The harness's own servers, each run as a separate process: ``python -m bench.servers KIND``.

- ``raw``: an asyncio protocol answering every request with fixed bytes, no HTTP framework; it
  shows how fast the generator itself can go (the ``generator`` scenario).
- ``trivial``: an aiohttp app answering every POST with a fixed 1 KB XML body; the ceiling an
  aiohttp server can reach on this machine (the ``ceiling`` scenario).
- ``simulator``: the project's CloudStack simulator (``cloudstack_sim``), seeded in process with
  N Running VMs for the demo account through its public ``state.seed_vms`` (10,000 VMs take under
  a second; the simulator has no HTTP seeding command). It adds one bench-only route,
  ``GET /bench/last-params``: the parameters of the latest call of each command (auth parameters
  removed), so the backend floor replays exactly the call the bridge made.

All listen on 127.0.0.1 only and stop on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys

import uvloop
from aiohttp import web

LOOPBACK = "127.0.0.1"
AUTH_PARAMS = frozenset({"apikey", "signature", "signatureversion", "expires"})
LAST_PARAMS = web.AppKey("bench_last_params", dict)


def fixed_xml(size: int = 1024) -> bytes:
    """A DescribeRegions-shaped EC2 response padded with a comment to exactly ``size`` bytes."""
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<DescribeRegionsResponse '
            'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>00000000-0000-0000-0000-000000000000'
            '</requestId><regionInfo><item><regionName>cloudstack</regionName><regionEndpoint>127.0.0.1'
            '</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item></regionInfo>')
    tail = "</DescribeRegionsResponse>"
    padding = size - len(head) - len(tail) - len("<!---->")
    return (head + "<!--" + "x" * padding + "-->" + tail).encode()


FIXED_BODY = fixed_xml()


# -- raw: the generator's own ceiling --------------------------------------------------------------
RAW_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: "
                + str(len(FIXED_BODY)).encode() + b"\r\n\r\n" + FIXED_BODY)
CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)")


class FixedResponder(asyncio.Protocol):
    """Consumes whole requests (headers plus Content-Length body) and answers each with RAW_RESPONSE."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = CONTENT_LENGTH.search(self.buffer, 0, end)
            total = end + 4 + (int(length.group(1)) if length else 0)
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.transport.write(RAW_RESPONSE)


async def serve_raw(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FixedResponder, LOOPBACK, port)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


# -- trivial: the aiohttp ceiling ------------------------------------------------------------------
async def fixed_reply(request: web.Request) -> web.Response:
    await request.read()   # a real handler reads the form body; so does this one
    return web.Response(body=FIXED_BODY, content_type="text/xml", charset="UTF-8")


def trivial_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/", fixed_reply)
    return app


# -- simulator: the CloudStack back end, seeded ----------------------------------------------------
@web.middleware
async def remember_params(request: web.Request, handler):
    if request.path == "/client/api":
        params = dict(request.query)
        if request.method == "POST":
            params.update((k, v) for k, v in (await request.post()).items() if isinstance(v, str))
        command = next((v for k, v in params.items() if k.lower() == "command"), None)
        if command:
            request.app[LAST_PARAMS][command] = {k: v for k, v in params.items()
                                                 if k.lower() not in AUTH_PARAMS and k.lower() != "command"}
    return await handler(request)


async def last_params(request: web.Request) -> web.Response:
    return web.json_response(request.app[LAST_PARAMS])


def simulator_app(args: argparse.Namespace) -> web.Application:
    import cloudstack_sim

    config = cloudstack_sim.SimConfig(host=LOOPBACK, port=args.port, admin_credentials=args.admin_credentials,
                                      demo_credentials=args.demo_credentials, job_duration=args.job_duration)
    app = cloudstack_sim.create_app(config)
    app[LAST_PARAMS] = {}
    app.middlewares.append(remember_params)
    app.router.add_get("/bench/last-params", last_params)
    if args.vms:
        app[cloudstack_sim.STATE_KEY].seed_vms("demo", args.vms)
    return app


# -- command line ----------------------------------------------------------------------------------
def credentials(text: str) -> tuple[str, str]:
    key, sep, secret = text.partition(":")
    if not sep or not key or not secret:
        raise argparse.ArgumentTypeError("expected KEY:SECRET")
    return key, secret


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.servers", description="the benchmark's own servers")
    p.add_argument("kind", choices=("raw", "trivial", "simulator"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--vms", type=int, default=0, help="simulator: Running VMs to seed for the demo account")
    p.add_argument("--admin-credentials", type=credentials, help="simulator: the root admin's API keys")
    p.add_argument("--demo-credentials", type=credentials, help="simulator: the demo user's API keys")
    p.add_argument("--job-duration", type=float, default=0.5, help="simulator: seconds an async job runs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.kind == "raw":
        uvloop.run(serve_raw(args.port))
    else:
        app = trivial_app() if args.kind == "trivial" else simulator_app(args)
        web.run_app(app, host=LOOPBACK, port=args.port, access_log=None, print=None, loop=uvloop.new_event_loop())
    return 0


if __name__ == "__main__":
    sys.exit(main())
