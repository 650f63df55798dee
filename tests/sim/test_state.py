"""Persistence, the command line, and speed on large listings."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

import cloudstack_sim
from cloudstack_sim import SimConfig

from .conftest import Api, catalog, deploy

ROOT = Path(__file__).resolve().parents[2]


async def test_state_survives_a_restart(tmp_path, session):
    state_file = tmp_path / "sim.json"
    first = await cloudstack_sim.start(SimConfig(port=0, job_duration=0, state_file=state_file))
    api = Api(session, first.url, first.demo_credentials)
    vm = await deploy(api, await catalog(api), name="keeper")
    await api.call("createSSHKeyPair", name="kept")
    await first.stop()
    assert state_file.exists()

    second = await cloudstack_sim.start(SimConfig(port=0, job_duration=0, state_file=state_file))
    try:
        assert second.demo_credentials == first.demo_credentials
        api = Api(session, second.url, second.demo_credentials)
        listed = (await api.call("listVirtualMachines", id=vm["id"]))["virtualmachine"][0]
        assert listed["name"] == "keeper" and listed["nic"][0]["ipaddress"] == vm["nic"][0]["ipaddress"]
        assert (await api.call("listSSHKeyPairs", name="kept"))["count"] == 1
        again = await deploy(api, await catalog(api))
        assert again["nic"][0]["ipaddress"] != vm["nic"][0]["ipaddress"]   # the address stays taken
    finally:
        await second.stop()


async def test_configured_credentials_are_used(session):
    running = await cloudstack_sim.start(SimConfig(port=0, admin_credentials=("AK", "SK"),
                                                   demo_credentials=("DK", "DS")))
    try:
        assert running.admin_credentials == ("AK", "SK")
        assert (await Api(session, running.url, ("DK", "DS")).call("listZones"))["count"] == 1
    finally:
        await running.stop()


async def test_cli_prints_endpoint_and_stops_on_sigterm(session):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudstack_sim.cli", "--port", "0", "--job-duration", "0",
        "--demo-credentials", "demo-key:demo-secret", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        lines = [(await asyncio.wait_for(process.stdout.readline(), 20)).decode() for _ in range(5)]
        url = re.search(r"(http://127\.0\.0\.1:\d+/client/api)", lines[0]).group(1)
        assert "demo api key: demo-key" in "".join(lines)
        assert (await Api(session, url, ("demo-key", "demo-secret")).call("listZones"))["count"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0


def test_cli_rejects_bad_credentials(capsys):
    from cloudstack_sim.cli import main
    with pytest.raises(SystemExit) as exit_:
        main(["--admin-credentials", "no-colon"])
    assert exit_.value.code == 2
    assert "APIKEY:SECRET" in capsys.readouterr().err


async def test_thousands_of_vms_list_whole_and_paged(sim, demo):
    """Listing speed is measured by the benchmarks (bench/); this checks what a big listing returns."""
    sim.state.seed_vms("demo", 3000)
    whole = await demo.call("listVirtualMachines", pagesize=-1)
    again = await demo.call("listVirtualMachines", pagesize=-1)  # served from the rendered-object cache
    assert whole["count"] == again["count"] == 3000 and len(again["virtualmachine"]) == 3000
    assert whole == again
    page = await demo.call("listVirtualMachines", page=6, pagesize=500)
    assert page["count"] == 3000 and len(page["virtualmachine"]) == 500
    assert (await demo.call("listVolumes", pagesize=500))["count"] == 3000
