"""Fixtures for the simulator tests: a live simulator on 127.0.0.1:0 and a signing API client."""

from __future__ import annotations

import json

import aiohttp
import pytest

import cloudstack_sim
from cloudstack_sim import SimConfig
from signing import cloudstack as cs_signing


class Api:
    """Signs and sends CloudStack calls as one user; returns (HTTP status, decoded body)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, credentials: tuple[str, str]) -> None:
        self.session, self.url, self.credentials = session, url, credentials

    async def raw(self, params: dict, method: str = "GET") -> tuple[int, dict]:
        signed = cs_signing.signed_params({k: str(v) for k, v in params.items()}, *self.credentials)
        if method == "GET":
            response = await self.session.get(self.url, params=signed)
        else:
            response = await self.session.post(self.url, data=signed)
        async with response:
            return response.status, json.loads(await response.text())

    async def call(self, command: str, /, **params) -> dict:
        """The body inside the wrapper of a successful call (asserting success)."""
        status, body = await self.raw({"command": command, "response": "json", **params})
        assert status == 200, body
        [(wrapper, inner)] = body.items()
        assert wrapper == command.lower() + "response"
        return inner

    async def error(self, command: str, /, **params) -> tuple[int, str, dict]:
        status, body = await self.raw({"command": command, "response": "json", **params})
        [(wrapper, inner)] = body.items()
        assert status != 200 and inner["errorcode"] == status, body
        return status, wrapper, inner

    async def job(self, command: str, /, **params) -> dict:
        """Submit an async command and return its finished job (job_duration=0 finishes at once)."""
        submitted = await self.call(command, **params)
        return await self.call("queryAsyncJobResult", jobid=submitted["jobid"])

    async def result(self, command: str, /, **params) -> dict:
        job = await self.job(command, **params)
        assert job["jobstatus"] == 1, job
        return job["jobresult"]


@pytest.fixture
async def sim():
    running = await cloudstack_sim.start(SimConfig(port=0, job_duration=0))
    yield running
    await running.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def admin(sim, session) -> Api:
    return Api(session, sim.url, sim.admin_credentials)


@pytest.fixture
def demo(sim, session) -> Api:
    return Api(session, sim.url, sim.demo_credentials)


async def catalog(api: Api) -> dict:
    """Ids a deploy needs: zone, a Linux and the Windows template, an offering, a network."""
    zone = (await api.call("listZones"))["zone"][0]
    templates = (await api.call("listTemplates", templatefilter="featured"))["template"]
    offerings = {o["name"]: o for o in (await api.call("listServiceOfferings"))["serviceoffering"]}
    disks = {o["name"]: o for o in (await api.call("listDiskOfferings"))["diskoffering"]}
    return {"zone": zone["id"], "linux": next(t["id"] for t in templates if t["name"].startswith("Ubuntu")),
            "windows": next(t["id"] for t in templates if t["passwordenabled"]),
            "offering": offerings["t2.micro"]["id"], "offering2": offerings["t2.small"]["id"],
            "disk": disks["Small"]["id"], "custom_disk": disks["Custom"]["id"]}


async def deploy(api: Api, ids: dict, **params) -> dict:
    result = await api.result("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                              serviceofferingid=ids["offering"], **params)
    return result["virtualmachine"]


def account_api(sim, session, name: str, admin: bool = False) -> Api:
    """A new account (with one user) created through the seeding helpers, and its API client."""
    from cloudstack_sim.seed import ADMIN_TYPE, USER_TYPE, add_account, add_user
    domain = next(iter(sim.state.store("domain")))
    account = add_account(sim.state, name, ADMIN_TYPE if admin else USER_TYPE, domain["id"])
    user = add_user(sim.state, account, name)
    return Api(session, sim.url, (user["apikey"], user["secretkey"]))
