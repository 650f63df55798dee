"""The bridge's configuration: defaults, a TOML file, then command-line flags, in that order.

Example ``ec2bridge.toml``::

    host = "0.0.0.0"
    port = 8773
    data_dir = "/var/lib/ec2bridge"
    public_url = "https://ec2.cloud.example.com/"

    [cloudstack]
    url = "https://cloud.example.com/client/api"   # omit to run on the embedded simulator
    admin_api_key = "..."                          # enables auto-enrollment of users' keys
    admin_secret_key = "..."

    [[regions]]
    name = "zone-west"
    endpoint = "https://ec2.cloud.example.com/"

    [instance_types]            # EC2 names for CloudStack service offerings
    "m1.small" = "Small Instance"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8773  # the port EC2-compatible endpoints (Eucalyptus, OpenStack) have used
# Well-known credentials of the embedded simulator's demo user, so that the README's aws cli
# line works as written. Only ever used with the embedded simulator.
DEMO_CREDENTIALS = ("AKIAEC2BRIDGEDEMO001", "ec2bridge-demo-secret-key-do-not-use-in-production")


@dataclass(frozen=True)
class Region:
    name: str
    endpoint: str | None = None  # None: the bridge's own public URL


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local/share/ec2bridge")
    database_url: str | None = None  # default: SQLite under data_dir
    public_url: str | None = None    # how clients reach us; default http://host:port/
    regions: tuple[Region, ...] = (Region("cloudstack"),)

    cloudstack_url: str | None = None  # None: run the embedded CloudStack simulator
    cloudstack_admin_api_key: str | None = None
    cloudstack_admin_secret_key: str | None = None
    cloudstack_timeout: float = 30.0
    job_wait: float = 600.0  # longest wait for a CloudStack job an EC2 call depends on
    demo_credentials: tuple[str, str] | None = None

    # EC2 instance type names accepted as aliases of CloudStack service offerings,
    # e.g. {"m1.small": "Small Instance"}; offerings are also known by their own names.
    instance_type_aliases: dict[str, str] = field(default_factory=dict)

    simulator_job_duration: float = 0.5
    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_clock_skew: timedelta = timedelta(minutes=15)
    enrolled_key_ttl: timedelta = timedelta(minutes=5)

    @property
    def embedded_simulator(self) -> bool:
        return self.cloudstack_url is None

    @property
    def endpoint_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}/"

    def with_overrides(self, **overrides: Any) -> "Config":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def parse_credentials(text: str) -> tuple[str, str]:
    access, sep, secret = text.partition(":")
    if not sep or not access or not secret:
        raise ValueError("credentials must be given as ACCESS:SECRET")
    return access, secret


def load(path: Path | None) -> Config:
    if path is None:
        return Config()
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    return from_mapping(data)


def from_mapping(data: dict[str, Any]) -> Config:
    known = {f.name for f in fields(Config)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "cloudstack":
            values.update(_cloudstack_section(value))
        elif key == "regions":
            values["regions"] = tuple(Region(r["name"], r.get("endpoint")) for r in value)
        elif key in ("data_dir",):
            values[key] = Path(value)
        elif key in ("max_clock_skew", "enrolled_key_ttl"):
            values[key] = timedelta(seconds=float(value))
        elif key == "instance_types":
            values["instance_type_aliases"] = {str(k): str(v) for k, v in value.items()}
        elif key == "demo_credentials":
            values[key] = parse_credentials(value)
        elif key in known:
            values[key] = value
        else:
            raise ValueError(f"unknown configuration key {key!r}")
    return Config(**values)


def _cloudstack_section(section: dict[str, Any]) -> dict[str, Any]:
    names = {"url": "cloudstack_url", "admin_api_key": "cloudstack_admin_api_key",
             "admin_secret_key": "cloudstack_admin_secret_key", "timeout": "cloudstack_timeout"}
    unknown = set(section) - set(names)
    if unknown:
        raise ValueError(f"unknown [cloudstack] keys: {', '.join(sorted(unknown))}")
    return {names[k]: v for k, v in section.items()}
