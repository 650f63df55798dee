"""What an action sees of the world: the caller, the configuration and the shared services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ec2bridge.config import Config
from signing.keystore import Credential


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    action: str
    credential: Credential
    config: Config
    services: Any  # ec2bridge.app.Services; typed loosely to keep mappings free of app imports
