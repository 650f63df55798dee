"""``ec2bridge serve --workers N``: several processes on one port, one simulator for all of them.

Each test runs the real command line in a subprocess on an ephemeral loopback port (its own
session, so a Ctrl-C can be sent to the whole group as a terminal would) and checks what an
operator relies on: both workers answer, state is shared (the embedded simulator runs once,
in the parent), and every way of stopping leaves no process behind.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from ec2bridge.config import DEMO_CREDENTIALS
from tests.bridge_server import REGION
from tests.wire import send

START_TIMEOUT = 90.0
STOP_TIMEOUT = 40.0
ENDPOINT = re.compile(r"ec2bridge: EC2 endpoint (http://\S+) \((\d+) workers\)")


class Served:
    """A running ``ec2bridge serve --workers 2`` and what it printed."""

    def __init__(self, data_dir: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ec2bridge", "serve", "--workers", "2", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(data_dir), "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output: list[str] = []
        self.url = self._endpoint()

    def _endpoint(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = self.process.stdout.readline() if ready else ""
            if not line and self.process.poll() is not None:
                break
            self.output.append(line)
            match = ENDPOINT.search(line)
            if match:
                assert match.group(2) == "2"
                return match.group(1)
        self.kill()
        pytest.fail(f"ec2bridge serve --workers 2 did not start:\n{''.join(self.output)}")

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return {int(pid) for pid in children}

    def health_pid(self) -> int:
        reply = send(self.url, "GET", path="/healthz", headers={"Connection": "close"})
        assert reply.status == 200
        return json.loads(reply.body)["pid"]

    def client(self):
        return boto3.client("ec2", endpoint_url=self.url, region_name=REGION, aws_access_key_id=DEMO_CREDENTIALS[0],
                            aws_secret_access_key=DEMO_CREDENTIALS[1], config=BotoConfig(retries={"max_attempts": 1}))

    def wait(self) -> int:
        return self.process.wait(STOP_TIMEOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path)
    yield server
    server.kill()


def gone(pid: int) -> bool:
    """No such process any more (the parent reaps its workers before it exits)."""
    return not Path(f"/proc/{pid}").exists()


def test_workers_share_the_port_and_one_backend_then_stop_on_sigterm(served):
    workers = served.worker_pids()
    assert len(workers) == 2
    # Every connection is a new one: the kernel spreads them over both listening workers
    # (the chance that 40 all land on one of two is 2**-39).
    answered = {served.health_pid() for _ in range(40)}
    assert answered == workers

    # A key pair created through one connection is seen through every other one, whichever
    # worker takes it: all workers use the one simulator the parent runs.
    served.client().create_key_pair(KeyName="shared-by-workers")
    for _ in range(6):
        names = [k["KeyName"] for k in served.client().describe_key_pairs()["KeyPairs"]]
        assert "shared-by-workers" in names
    assert served.client().describe_instances()["Reservations"] == []

    served.process.send_signal(signal.SIGTERM)
    assert served.wait() == 0
    assert all(gone(pid) for pid in workers)


def test_ctrl_c_stops_every_process(served):
    workers = served.worker_pids()
    os.killpg(served.process.pid, signal.SIGINT)  # what a terminal sends to the whole group
    assert served.wait() == 0
    assert all(gone(pid) for pid in workers)


def test_a_dead_worker_takes_the_server_down(served):
    workers = sorted(served.worker_pids())
    os.kill(workers[0], signal.SIGKILL)
    assert served.wait() == 1
    assert "a worker exited unexpectedly" in served.process.stdout.read()
    assert gone(workers[1])


def test_workers_must_be_positive(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ec2bridge", "serve", "--workers", "0", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--workers" in result.stderr
