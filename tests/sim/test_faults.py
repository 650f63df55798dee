"""Fault injection: latency, error rate, failed jobs, dropped and stalled connections, seeding."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from cloudstack_sim import FaultRule
from cloudstack_sim.faults import Faults
from signing import cloudstack as cs_signing

from .conftest import catalog


async def test_latency(sim, demo):
    sim.state.faults.add(FaultRule(command="listZones", latency=0.2))
    started = time.monotonic()
    await demo.call("listZones")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    await demo.call("listRegions")   # other commands are unaffected
    assert time.monotonic() - started < 0.2


async def test_error_rate_answers_with_the_chosen_code(sim, demo):
    sim.state.faults.add(FaultRule(command="listVolumes", error_rate=1.0, error_code=533,
                                   error_text="Unable to create a deployment for VM"))
    status, wrapper, body = await demo.error("listVolumes")
    assert (status, wrapper, body["errortext"]) == (533, "listvolumesresponse", "Unable to create a deployment for VM")


async def test_job_failure_leaves_the_vm_in_error(sim, demo):
    ids = await catalog(demo)
    sim.state.faults.add(FaultRule(command="deployVirtualMachine", job_failure_rate=1.0,
                                   error_text="Unable to start a VM due to insufficient capacity"))
    job = await demo.job("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                         serviceofferingid=ids["offering"])
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 530)
    assert job["jobresult"] == {"errorcode": 530, "errortext": "Unable to start a VM due to insufficient capacity"}
    vm = (await demo.call("listVirtualMachines", id=job["jobinstanceid"]))["virtualmachine"][0]
    assert vm["state"] == "Error"


async def test_job_failure_carries_the_chosen_code(sim, demo):
    ids = await catalog(demo)
    # DeployVMCmd reports InsufficientCapacityException as INSUFFICIENT_CAPACITY_ERROR (533).
    sim.state.faults.add(FaultRule(command="deployVirtualMachine", job_failure_rate=1.0, job_error_code=533,
                                   error_text="Unable to create a deployment for VM"))
    job = await demo.job("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                         serviceofferingid=ids["offering"])
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 533)
    assert job["jobresult"] == {"errorcode": 533, "errortext": "Unable to create a deployment for VM"}
    with pytest.raises(ValueError):
        FaultRule.from_dict({"job_failure_rate": 1, "job_error_code": 200})


async def test_dropped_connection(sim, demo):
    sim.state.faults.add(FaultRule(command="listZones", drop_rate=1.0))
    with pytest.raises(aiohttp.ClientError):
        await demo.call("listZones")
    assert (await demo.call("listRegions"))["count"] == 1


async def test_stalled_request_never_answers(sim, session):
    sim.state.faults.add(FaultRule(command="listZones", stall_rate=1.0))
    key, secret = sim.demo_credentials
    params = cs_signing.signed_params({"command": "listZones", "response": "json"}, key, secret)
    with pytest.raises(asyncio.TimeoutError):
        async with session.get(sim.url, params=params, timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    assert sim.state.call_counts["listZones"] == 1


def test_seeded_decisions_repeat():
    rule = FaultRule(error_rate=0.5)
    a, b = Faults([rule], seed=7), Faults([rule], seed=7)
    draws_a = [a.decide("x").error is not None for _ in range(50)]
    draws_b = [b.decide("x").error is not None for _ in range(50)]
    assert draws_a == draws_b and 5 < sum(draws_a) < 45


async def test_faults_over_http_are_admin_only(sim, session):
    url = sim.url.replace("/client/api", "/sim/faults")
    body = {"rules": [{"command": "listZones", "error_rate": 1, "error_code": 530}], "seed": 3}
    async with session.post(url, params=cs_signing.signed_params({}, *sim.demo_credentials), json=body) as response:
        assert response.status == 531
    async with session.post(url, params=cs_signing.signed_params({}, *sim.admin_credentials), json=body) as response:
        assert response.status == 200 and (await response.json())["rules"][0]["error_code"] == 530
    assert sim.state.faults.rules[0].command == "listZones"
    bad = {"rules": [{"command": "listZones", "error_rate": 3}]}
    async with session.post(url, params=cs_signing.signed_params({}, *sim.admin_credentials), json=bad) as response:
        assert response.status == 400
    async with session.delete(url, params=cs_signing.signed_params({}, *sim.admin_credentials)) as response:
        assert response.status == 200 and (await response.json())["rules"] == []


async def test_call_counter(sim, demo, session):
    await demo.call("listZones")
    await demo.call("listZones")
    await demo.error("listTemplates")
    assert sim.state.call_counts["listZones"] == 2 and sim.state.call_counts["listTemplates"] == 1
    url = sim.url.replace("/client/api", "/sim/calls")
    async with session.get(url, params=cs_signing.signed_params({}, *sim.admin_credentials)) as response:
        assert (await response.json())["calls"]["listZones"] == 2
