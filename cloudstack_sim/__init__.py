"""A faithful Apache CloudStack management-server simulator (the bridge's default back end).

It speaks CloudStack's HTTP API on ``/client/api``: signed requests (``signing.cloudstack``),
CloudStack's JSON envelopes, error codes and messages, async jobs, and per-account visibility.

Public API:

* ``SimConfig`` - where to listen, credentials, job duration, faults, state file.
* ``create_app(config)`` - the aiohttp application (state under ``STATE_KEY``).
* ``await start(config)`` -> ``RunningSimulator`` (``.url``, ``.admin_credentials``,
  ``.demo_credentials``, ``.state``, ``await .stop()``) - for embedding and tests.
* ``FaultRule`` - one fault-injection rule; ``state.faults`` holds the active ones.
* ``state.call_counts`` counts calls per command; ``state.seed_vms(account, n)`` bulk-creates VMs.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .app import STATE_KEY, create_app
from .config import SimConfig
from .faults import FaultRule
from .seed import credentials_of
from .state import SimState


@dataclass
class RunningSimulator:
    url: str
    admin_credentials: tuple[str, str]
    demo_credentials: tuple[str, str]
    state: SimState
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(config: SimConfig | None = None) -> RunningSimulator:
    """Run the simulator on ``config.host``/``config.port`` (0 = ephemeral) in the current loop."""
    config = config or SimConfig()
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    state = app[STATE_KEY]
    return RunningSimulator(url=f"http://{config.host}:{port}/client/api",
                            admin_credentials=credentials_of(state, "admin"),
                            demo_credentials=credentials_of(state, "demo"), state=state, runner=runner)


__all__ = ["SimConfig", "FaultRule", "create_app", "start", "RunningSimulator", "STATE_KEY", "SimState"]
