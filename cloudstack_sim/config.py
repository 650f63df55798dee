"""Simulator configuration: where it listens, who may call it, how fast jobs run, which faults,
and the CloudStack global settings the simulated behaviour depends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .faults import FaultRule


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    state_file: Path | None = None
    admin_credentials: tuple[str, str] | None = None   # (api key, secret key); random when None
    demo_credentials: tuple[str, str] | None = None
    job_duration: float = 0.5                          # seconds an async job stays pending; 0 = at once
    faults: list[FaultRule] = field(default_factory=list)
    fault_seed: int | None = None                      # makes fault decisions reproducible
    save_interval: float = 2.0                         # seconds between saves of a changed state
    stall_limit: float = 300.0                         # a stalled request is dropped after this long
    # CloudStack's enforce.post.requests.and.timestamps: v3 only, ``expires`` at most 15 min ahead.
    enforce_timestamps: bool = False
    # CloudStack's global settings of the same names (both false by default): whether normal users
    # see their Destroyed/Expunging VMs, and may expunge (destroy with expunge=true) and recover them.
    allow_user_view_destroyed_vm: bool = False
    allow_user_expunge_recover_vm: bool = False
