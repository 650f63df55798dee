"""Command line: ``ec2bridge serve``, ``ec2bridge simulator`` and ``ec2bridge keys ...``.

These flags are an interface: the README, the test suites and the benchmarks rely on them.

``serve`` runs one process, or with ``--workers N`` a parent and N worker processes sharing
the port (see the section on workers below). Either way each serving process settles its
heap once it has started (``settle_heap``): the garbage collector tuned for the bursts of
objects a large describe creates.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvloop

from ec2bridge import config as config_module
from ec2bridge import heap
from ec2bridge.config import Config, parse_credentials

log = logging.getLogger("ec2bridge")

HANDLER_ARGS = {"max_line_size": 65536, "max_field_size": 65536}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
GC_THRESHOLDS = (100_000, 20, 10)  # CPython's defaults are (700, 10, 10)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", type=Path, help="where the key store and master key live")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ec2bridge", description="AWS EC2 Query API in front of Apache CloudStack")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the EC2 endpoint")
    _common_flags(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--cloudstack-url", help="CloudStack API URL; omit to run the embedded simulator")
    serve.add_argument("--demo-credentials", type=parse_credentials, metavar="ACCESS:SECRET",
                       help="the embedded simulator's demo user's keys")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument("--workers", type=positive, default=1,
                       help="processes serving the port (SO_REUSEPORT); default 1")

    commands.add_parser("simulator", help="run the CloudStack simulator alone", add_help=False)

    keys = commands.add_parser("keys", help="manage access keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    add = key_commands.add_parser("add", help="register an access key")
    _common_flags(add)
    add.add_argument("--access-key", help="default: a new random key")
    add.add_argument("--secret-key", help="default: a new random secret, printed once")
    add.add_argument("--cloudstack-api-key", help="default: the access key")
    add.add_argument("--cloudstack-secret-key", help="default: the secret key")
    listing = key_commands.add_parser("list", help="list access keys (never their secrets)")
    _common_flags(listing)
    for name in ("disable", "enable", "delete"):
        one = key_commands.add_parser(name, help=f"{name} an access key")
        _common_flags(one)
        one.add_argument("access_key")
    rotate = key_commands.add_parser("rotate", help="give an access key a new secret")
    _common_flags(rotate)
    rotate.add_argument("access_key")
    rotate.add_argument("--secret-key", help="default: a new random secret, printed once")
    return parser


def load_config(args: argparse.Namespace) -> Config:
    config = config_module.load(args.config)
    return config.with_overrides(data_dir=args.data_dir, host=getattr(args, "host", None),
                                 port=getattr(args, "port", None),
                                 cloudstack_url=getattr(args, "cloudstack_url", None),
                                 demo_credentials=getattr(args, "demo_credentials", None))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulator"]:
        from cloudstack_sim.cli import main as simulator_main
        return simulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args)
    except (OSError, ValueError) as error:
        print(f"ec2bridge: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve(config, args.log_level, args.workers)
    from ec2bridge.keys_cli import run_keys_command
    return uvloop.run(run_keys_command(config, args))


def serve(config: Config, log_level: str, workers: int = 1) -> int:
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    if workers > 1:
        return serve_workers(config, workers)
    from aiohttp import web

    web.run_app(bridge_app(config), host=config.host, port=config.port, handler_args=HANDLER_ARGS,
                loop=uvloop.new_event_loop(),
                print=lambda _: print(f"ec2bridge: EC2 endpoint {config.endpoint_url}", flush=True))
    return 0


def bridge_app(config: Config):
    from ec2bridge.app import create_app

    app = create_app(config)
    app.on_startup.append(settle_heap)  # after the services are up (cleanup_ctx starts first)
    return app


async def settle_heap(app) -> None:
    """Tune the cycle collector once start-up has built its long-lived objects.

    A large DescribeInstances creates a few million objects (CloudStack's JSON, the EC2
    items); with the default thresholds the collector runs thousands of times during it and
    rescans everything still alive, start-up's botocore models included: a third of the
    CPU time. Frozen objects are left out of every collection (they are still freed when
    no longer referenced), and a higher first threshold makes collections rarer. Large
    blocks get mappings of their own (``ec2bridge.heap``).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    heap.mmap_large_blocks()


# --- several worker processes on one port --------------------------------------------------
# The parent reserves the port (a bound socket with SO_REUSEPORT that never listens, so it
# holds the port without taking connections), forks the workers before it starts any event
# loop, then runs the embedded simulator, if any, once for all of them and tells each worker
# the CloudStack endpoint to use. Each worker listens on the port with SO_REUSEPORT (the
# kernel spreads connections across them) and runs a whole bridge of its own; they share the
# data directory (SQLite in WAL mode, the master key). SIGINT or SIGTERM stops them all. A
# worker that dies takes the server down (exit status 1) rather than leaving it silently
# short of capacity: a service manager restarts it.

WORKER_START_TIMEOUT = 120.0
WORKER_STOP_TIMEOUT = 30.0


@dataclass
class Worker:
    process: Any  # multiprocessing.Process
    link: Any  # the parent's end of a multiprocessing Pipe


def serve_workers(config: Config, count: int) -> int:
    try:
        placeholder = reserve_port(config.host, config.port)
    except OSError as error:
        print(f"ec2bridge: cannot listen on {config.host}:{config.port}: {error}", file=sys.stderr)
        return 1
    with placeholder:
        config = replace(config, port=placeholder.getsockname()[1])
        fork = multiprocessing.get_context("fork")  # before any event loop or thread exists
        workers = []
        for index in range(1, count + 1):
            parent_end, child_end = fork.Pipe()
            process = fork.Process(target=run_worker, args=(config, child_end), name=f"ec2bridge-worker-{index}")
            process.start()
            child_end.close()
            workers.append(Worker(process, parent_end))
        return uvloop.run(supervise(config, workers))


def reserve_port(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


async def supervise(config: Config, workers: list[Worker]) -> int:
    from ec2bridge.app import start_embedded_simulator

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = None
    try:
        backend = None
        if config.embedded_simulator:
            simulator = await start_embedded_simulator(config)
            backend = (simulator.url, tuple(simulator.admin_credentials))
        for worker in workers:
            worker.link.send(backend)
        if not await loop.run_in_executor(None, wait_ready, workers):
            log.error("a worker failed to start; stopping")
            return 1
        print(f"ec2bridge: EC2 endpoint {config.endpoint_url} ({len(workers)} workers)", flush=True)
        died = loop.run_in_executor(None, multiprocessing.connection.wait, [w.process.sentinel for w in workers])
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([died, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not stop.is_set():
            log.error("a worker exited unexpectedly; stopping")
            return 1
        return 0
    finally:
        await loop.run_in_executor(None, stop_workers, workers)
        if simulator is not None:
            await simulator.stop()


def wait_ready(workers: list[Worker]) -> bool:
    """True once every worker said it listens; False if one dies or time runs out."""
    waiting = {worker.link: worker for worker in workers}
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while waiting:
        ready = multiprocessing.connection.wait([*waiting, *(w.process.sentinel for w in waiting.values())],
                                                timeout=max(0.0, deadline - time.monotonic()))
        if not ready or any(not isinstance(item, Connection) for item in ready):
            return False
        for link in ready:
            try:
                link.recv()
            except EOFError:
                return False
            del waiting[link]
    return True


def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        if worker.process.is_alive():
            worker.process.terminate()  # SIGTERM: the worker finishes its requests and exits
    for worker in workers:
        worker.process.join(WORKER_STOP_TIMEOUT)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def run_worker(config: Config, link) -> None:
    """A worker process: wait for the CloudStack endpoint, then serve until SIGINT/SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    try:
        backend = link.recv()
    except (EOFError, KeyboardInterrupt):
        return
    if backend is not None:
        url, (admin_key, admin_secret) = backend
        config = replace(config, cloudstack_url=url, cloudstack_admin_api_key=admin_key,
                         cloudstack_admin_secret_key=admin_secret)
    uvloop.run(worker_main(config, link))


async def worker_main(config: Config, link) -> None:
    from aiohttp import web

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # The parent sends nothing more: the link turns readable (end of file) only if the
    # parent is gone, killed without the chance to stop us.
    loop.add_reader(link.fileno(), stop.set)
    runner = web.AppRunner(bridge_app(config), handle_signals=False, **HANDLER_ARGS)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port, reuse_port=True, reuse_address=True).start()
        link.send("ready")
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
