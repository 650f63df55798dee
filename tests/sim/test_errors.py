"""Authentication and error envelopes: the codes, wrappers and texts CloudStack sends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from signing import cloudstack as cs_signing

from .conftest import catalog

UNAUTHORIZED = "unable to verify user credentials and/or request signature"


async def get(session, url, params):
    async with session.get(url, params=params) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.json(content_type=None)


async def test_bad_signature_is_401_without_cserrorcode(sim, session):
    key, _ = sim.demo_credentials
    params = cs_signing.signed_params({"command": "listZones", "response": "json"}, key, "wrong-secret")
    status, ctype, body = await get(session, sim.url, params)
    assert status == 401 and ctype.startswith("application/json")
    assert body == {"listzonesresponse": {"uuidList": [], "errorcode": 401, "errortext": UNAUTHORIZED}}


async def test_unknown_api_key_and_unsigned_requests_are_401(sim, session):
    params = cs_signing.signed_params({"command": "listZones", "response": "json"}, "nobody", "x")
    assert (await get(session, sim.url, params))[0] == 401
    status, _, body = await get(session, sim.url, {"command": "listZones", "response": "json"})
    assert status == 401 and body["listzonesresponse"]["errortext"] == UNAUTHORIZED


async def test_api_key_matches_case_insensitively(sim, session):
    key, secret = sim.demo_credentials
    params = cs_signing.signed_params({"command": "listZones", "response": "json"}, key.upper(), secret)
    assert (await get(session, sim.url, params))[0] == 200


async def test_expired_signature_is_rejected(sim, session):
    key, secret = sim.demo_credentials
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    params = cs_signing.signed_params({"command": "listZones", "response": "json"}, key, secret,
                                      ttl=timedelta(minutes=10), now=past)
    assert (await get(session, sim.url, params))[0] == 401


async def test_version_3_without_expires_is_rejected(sim, session):
    key, secret = sim.demo_credentials
    params = {"command": "listZones", "response": "json", "apikey": key, "signatureversion": "3"}
    params["signature"] = cs_signing.sign(params, secret)
    assert (await get(session, sim.url, params))[0] == 401


async def test_unexpiring_v2_signature_is_accepted(sim, session):
    key, secret = sim.demo_credentials
    params = {"command": "listZones", "response": "json", "apikey": key}
    params["signature"] = cs_signing.sign(params, secret)
    assert (await get(session, sim.url, params))[0] == 200


async def test_disabled_user_cannot_call(sim, demo):
    user = next(u for u in sim.state.store("user") if u["username"] == "demo")
    user["state"] = "disabled"
    status, _, body = await demo.error("listZones")
    assert status == 401 and body["errortext"] == UNAUTHORIZED


async def test_unknown_command_is_432_under_errorresponse(demo):
    status, wrapper, body = await demo.error("listBananas")
    assert (status, wrapper) == (432, "errorresponse")
    assert body["errortext"] == "Unknown API command: listBananas"


async def test_missing_parameter(demo):
    status, wrapper, body = await demo.error("deployVirtualMachine")
    assert (status, wrapper, body["cserrorcode"]) == (431, "deployvirtualmachineresponse", 9999)
    assert body["errortext"].startswith("Unable to execute API command deployvirtualmachine due to missing "
                                        "parameter ")


async def test_unknown_uuid(demo):
    status, _, body = await demo.error("startVirtualMachine", id="3f2e8b5c-0000-4000-8000-000000000000")
    assert status == 431
    assert body["errortext"] == (
        "Unable to execute API command startvirtualmachine due to invalid value. Invalid parameter id "
        "value=3f2e8b5c-0000-4000-8000-000000000000 due to incorrect long value format, or entity does not exist "
        "or due to incorrect parameter annotation for the field in api cmd class.")


async def test_malformed_integer(demo):
    status, _, body = await demo.error("listVirtualMachines", page="one", pagesize="5")
    assert status == 431
    assert body["errortext"] == "Unable to execute API command listvirtualmachines due to invalid value one for " \
                                "parameter page"


async def test_service_error_has_cserrorcode_4350(demo):
    ids = await catalog(demo)
    status, _, body = await demo.error("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                                       serviceofferingid=ids["offering"], keypair="absent")
    assert (status, body["cserrorcode"]) == (431, 4350)
    assert "A key pair with name 'absent' was not found" in body["errortext"]


async def test_empty_list_has_no_count(demo):
    assert await demo.call("listVolumes") == {}


async def test_paging_counts_the_total(sim, demo):
    sim.state.seed_vms("demo", 12)
    page = await demo.call("listVirtualMachines", page=2, pagesize=5)
    assert page["count"] == 12 and len(page["virtualmachine"]) == 5
    status, _, body = await demo.error("listVirtualMachines", page=2)
    assert status == 431
    assert (await demo.call("listVirtualMachines", pagesize=-1))["count"] == 12


async def test_xml_when_json_not_requested(sim, session):
    key, secret = sim.demo_credentials
    params = cs_signing.signed_params({"command": "listZones"}, key, secret)
    async with session.get(sim.url, params=params) as response:
        text = await response.text()
        assert response.status == 200 and response.content_type == "text/xml"
    assert "<listzonesresponse cloud-stack-version=" in text and "<securitygroupsenabled>true<" in text


async def test_post_form_requests(demo):
    status, body = await demo.raw({"command": "listZones", "response": "json"}, method="POST")
    assert status == 200 and body["listzonesresponse"]["count"] == 1


async def test_user_data_limits(demo):
    ids = await catalog(demo)
    base = dict(zoneid=ids["zone"], templateid=ids["linux"], serviceofferingid=ids["offering"])
    _, _, body = await demo.error("deployVirtualMachine", userdata="not base64!", **base)
    assert body["errortext"] == "User data is not base64 encoded"
    _, _, body = await demo.error("deployVirtualMachine", userdata="QUFB" * 1100, **base)
    assert body["errortext"] == "User data is too long for an http GET request"
    status, body = await demo.raw({"command": "deployVirtualMachine", "response": "json", "userdata": "QUFB" * 1100,
                                   **base}, method="POST")
    assert status == 200, body
