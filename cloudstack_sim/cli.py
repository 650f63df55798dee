"""``simulator`` command line: run the CloudStack simulator until SIGINT/SIGTERM.

Prints the endpoint and the admin and demo API keys (the simulator's own throw-away credentials,
printed so a person can configure a client; they are never logged).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import uvloop

from . import SimConfig, start


def credentials(text: str) -> tuple[str, str]:
    key, sep, secret = text.partition(":")
    if not sep or not key or not secret:
        raise argparse.ArgumentTypeError("expected APIKEY:SECRET")
    return key, secret


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simulator", description="Apache CloudStack API simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--state", type=Path, help="JSON file the state is loaded from and saved to")
    p.add_argument("--admin-credentials", type=credentials, metavar="APIKEY:SECRET")
    p.add_argument("--demo-credentials", type=credentials, metavar="APIKEY:SECRET")
    p.add_argument("--job-duration", type=non_negative, default=0.5, metavar="SECONDS")
    p.add_argument("--allow-user-view-destroyed-vm", action="store_true",
                   help="CloudStack's allow.user.view.destroyed.vm (default false)")
    p.add_argument("--allow-user-expunge-recover-vm", action="store_true",
                   help="CloudStack's allow.user.expunge.recover.vm (default false)")
    return p


async def serve(config: SimConfig) -> None:
    running = await start(config)
    print(f"CloudStack simulator listening on {running.url}")
    print(f"admin api key: {running.admin_credentials[0]}\nadmin secret key: {running.admin_credentials[1]}")
    print(f"demo api key: {running.demo_credentials[0]}\ndemo secret key: {running.demo_credentials[1]}",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = SimConfig(host=args.host, port=args.port, state_file=args.state,
                       admin_credentials=args.admin_credentials, demo_credentials=args.demo_credentials,
                       job_duration=args.job_duration,
                       allow_user_view_destroyed_vm=args.allow_user_view_destroyed_vm,
                       allow_user_expunge_recover_vm=args.allow_user_expunge_recover_vm)
    try:
        uvloop.run(serve(config))
    except OSError as error:
        print(f"simulator: {error}", file=sys.stderr)
        return 1
    except ValueError as error:   # e.g. an unreadable state file
        print(f"simulator: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
