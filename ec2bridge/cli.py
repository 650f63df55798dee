"""Command line: ``ec2bridge serve``, ``ec2bridge simulator`` and ``ec2bridge keys ...``.

These flags are an interface: the README, the test suites and the benchmarks rely on them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ec2bridge import config as config_module
from ec2bridge.config import Config, parse_credentials

HANDLER_ARGS = {"max_line_size": 65536, "max_field_size": 65536}


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
        return serve(config, args.log_level)
    from ec2bridge.keys_cli import run_keys_command
    return asyncio.run(run_keys_command(config, args))


def serve(config: Config, log_level: str) -> int:
    from aiohttp import web
    from ec2bridge.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    web.run_app(create_app(config), host=config.host, port=config.port, handler_args=HANDLER_ARGS,
                print=lambda _: print(f"ec2bridge: EC2 endpoint {config.endpoint_url}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
