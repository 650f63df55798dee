"""A real bridge on a loopback port, run in a background thread for end-to-end tests.

Tests talk to it over HTTP with real clients (boto3, the aws cli, boto 2, libcloud); they may
also reach into its services (``bridge.call(coro)``) to arrange backend state, such as
seeding the simulator or injecting faults.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import replace
from pathlib import Path

import boto3
import uvloop
from aiohttp import web
from botocore.config import Config as BotoConfig

from ec2bridge.app import SERVICES, create_app
from ec2bridge.cli import HANDLER_ARGS
from ec2bridge.config import DEMO_CREDENTIALS, Config

REGION = "cloudstack"


class BridgeServer:
    def __init__(self, config: Config):
        self._sock = socket.socket()
        self._sock.bind((config.host, config.port))
        self.config = replace(config, port=self._sock.getsockname()[1])
        self.url = f"http://{self.config.host}:{self.config.port}/"
        self.loop = uvloop.new_event_loop()  # the loop `ec2bridge serve` runs on
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="bridge")
        self._runner: web.AppRunner | None = None

    def start(self) -> "BridgeServer":
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        self.app = create_app(self.config)
        self._runner = web.AppRunner(self.app, access_log=None, **HANDLER_ARGS)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` on the bridge's loop, where the embedded simulator's
        state may be touched safely."""
        async def on_loop():
            return function(*args, **kwargs)
        return self.call(on_loop())

    @property
    def services(self):
        return self.app[SERVICES]

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def client(self, service: str = "ec2", credentials: tuple[str, str] = DEMO_CREDENTIALS, **config):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1],
                            config=BotoConfig(retries={"max_attempts": 1}, **config))


def start_bridge(data_dir: Path, **overrides) -> BridgeServer:
    config = Config(host="127.0.0.1", port=0, data_dir=data_dir, simulator_job_duration=0.05,
                    demo_credentials=DEMO_CREDENTIALS).with_overrides(**overrides)
    return BridgeServer(config).start()
