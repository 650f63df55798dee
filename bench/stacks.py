"""The systems under test, started as processes and loaded with the same data.

- The bridge stack: ``python -m bench.servers simulator`` (the project's CloudStack simulator with
  N Running VMs for the demo account) and ``ec2bridge serve --cloudstack-url`` in front of it,
  configured with the simulator's admin keys so the demo user's own CloudStack keys work as EC2
  keys (auto-enrollment, as in a real deployment). The simulator is a separate process, so the
  bridge's CPU and memory are the bridge's alone, and the harness reads the simulator's
  per-command call counters over HTTP (``GET /sim/calls``, signed with the admin keys).
- moto's server mode (``moto_server``), loaded with ``run_instances`` through boto3.
- The harness's own ``raw`` and ``trivial`` servers (``bench.servers``).

Each stack for a fleet of N instances also has the same few key pairs (DescribeKeyPairs).
"""

from __future__ import annotations

import http.client
import json
import secrets
import sys
from collections import Counter
from dataclasses import dataclass, field
import os
from pathlib import Path
from urllib.parse import urlencode

import boto3
from botocore.config import Config as BotoConfig

from bench import processes
from bench.processes import Server
from signing import cloudstack as cloudstack_signing

PYTHON = sys.executable
BRIDGE_REGION = "cloudstack"
MOTO_REGION = "us-east-1"
MOTO_CREDENTIALS = ("AKIAMOTOBENCH0000001", "moto-accepts-any-secret")
KEYPAIR_PREFIX = "bench-key-"


@dataclass(frozen=True)
class Keys:
    """Throw-away CloudStack keys for this session's simulators (never written to results)."""

    admin: tuple[str, str]
    demo: tuple[str, str]

    @classmethod
    def random(cls) -> "Keys":
        return cls(admin=("BENCHADMIN" + secrets.token_hex(8), secrets.token_urlsafe(32)),
                   demo=("BENCHDEMO" + secrets.token_hex(8), secrets.token_urlsafe(32)))


# -- the CloudStack simulator ----------------------------------------------------------------------
@dataclass
class Simulator:
    server: Server
    keys: Keys
    job_duration: float

    @property
    def api_url(self) -> str:
        return f"{self.server.base_url}/client/api"

    def call(self, command: str, credentials: tuple[str, str], **params: str) -> dict:
        signed = cloudstack_signing.signed_params({"command": command, "response": "json", **params},
                                                  *credentials)
        status, body = http_request(self.server.port, "POST", "/client/api", urlencode(signed).encode(),
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise processes.ServerError(f"simulator {command}: HTTP {status} {body[:300]!r}")
        return json.loads(body)

    def call_counts(self) -> Counter:
        """Calls per CloudStack command since the simulator started (its ``/sim/calls``)."""
        signed = cloudstack_signing.signed_params({}, *self.keys.admin)
        status, body = http_request(self.server.port, "GET", "/sim/calls?" + urlencode(signed))
        if status != 200:
            raise processes.ServerError(f"simulator /sim/calls answered HTTP {status}: {body[:300]!r}")
        return Counter(json.loads(body)["calls"])

    def last_params(self) -> dict[str, dict[str, str]]:
        """The parameters of the latest call of each command (``bench.servers``' own route)."""
        status, body = http_request(self.server.port, "GET", "/bench/last-params")
        return json.loads(body) if status == 200 else {}

    def add_keypairs(self, count: int) -> None:
        for index in range(count):
            self.call("createSSHKeyPair", self.keys.demo, name=f"{KEYPAIR_PREFIX}{index}")


def start_simulator(workdir: Path, keys: Keys, vms: int, job_duration: float = 0.5) -> Simulator:
    port = processes.free_port()
    argv = [PYTHON, "-m", "bench.servers", "simulator", "--port", str(port), "--vms", str(vms),
            "--admin-credentials", ":".join(keys.admin), "--demo-credentials", ":".join(keys.demo),
            "--job-duration", str(job_duration)]
    server = processes.start(f"simulator-{vms}", argv, port, workdir, probe_path="/client/api")
    return Simulator(server, keys, job_duration)


# -- the bridge ------------------------------------------------------------------------------------
BRIDGE_WORKERS = int(os.environ.get("BENCH_BRIDGE_WORKERS", os.cpu_count() or 1))

def start_bridge(workdir: Path, simulator: Simulator, name: str) -> Server:
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "ec2bridge.toml"
    admin_key, admin_secret = simulator.keys.admin
    config.write_text(f'[cloudstack]\nurl = "{simulator.api_url}"\nadmin_api_key = "{admin_key}"\n'
                      f'admin_secret_key = "{admin_secret}"\n')
    config.chmod(0o600)
    port = processes.free_port()
    # WARNING: no per-request access log line, as an operator would run it under load.
    # One worker per core, as an operator would run it on this 2-core machine.
    argv = [PYTHON, "-m", "ec2bridge", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--config", str(config), "--log-level", "WARNING",
            "--workers", str(BRIDGE_WORKERS)]
    # `serve` logs its endpoint once every worker listens (ec2bridge/cli.py).
    return processes.start(name, argv, port, workdir, probe_path="/healthz", ready_text="ec2bridge: EC2 endpoint")


def bridge_client(server: Server, credentials: tuple[str, str]):
    return boto3.client("ec2", endpoint_url=server.base_url, region_name=BRIDGE_REGION,
                        aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1],
                        config=BotoConfig(retries={"max_attempts": 1}, read_timeout=300))


# -- moto ------------------------------------------------------------------------------------------
@dataclass
class Moto:
    server: Server
    instances: int = 0
    keypairs: int = 0
    _image_id: str | None = field(default=None, repr=False)

    def client(self):
        return boto3.client("ec2", endpoint_url=self.server.base_url, region_name=MOTO_REGION,
                            aws_access_key_id=MOTO_CREDENTIALS[0], aws_secret_access_key=MOTO_CREDENTIALS[1],
                            config=BotoConfig(retries={"max_attempts": 1}, read_timeout=600))

    def load(self, instances: int, keypairs: int) -> None:
        """Grow moto's fleet to ``instances`` (moto's run_instances is slow: ~13 s per 1,000)."""
        ec2 = self.client()
        while self.instances < instances:
            count = min(instances - self.instances, 1000)
            ec2.run_instances(ImageId=self.image_id(ec2), InstanceType="t2.micro", MinCount=count, MaxCount=count)
            self.instances += count
        while self.keypairs < keypairs:
            ec2.create_key_pair(KeyName=f"{KEYPAIR_PREFIX}{self.keypairs}")
            self.keypairs += 1

    def image_id(self, ec2) -> str:
        if self._image_id is None:
            # A filter keeps this fast: moto serialises its 1,300 built-in AMIs in ~4 s.
            images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])
            images = images["Images"] or ec2.describe_images()["Images"]
            self._image_id = images[0]["ImageId"]
        return self._image_id


def start_moto(workdir: Path) -> Moto:
    port = processes.free_port()
    executable = Path(PYTHON).parent / "moto_server"
    argv = ([str(executable)] if executable.exists() else [PYTHON, "-m", "moto.server"])
    argv += ["-H", "127.0.0.1", "-p", str(port)]
    return Moto(processes.start("moto", argv, port, workdir, probe_path="/"))


# -- the harness's own servers ---------------------------------------------------------------------
def start_own(workdir: Path, kind: str) -> Server:
    port = processes.free_port()
    argv = [PYTHON, "-m", "bench.servers", kind, "--port", str(port)]
    return processes.start(kind, argv, port, workdir)


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
