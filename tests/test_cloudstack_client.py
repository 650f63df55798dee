"""The CloudStack client against the real simulator: signing, paging, the job poller,
retries, timeouts and the translation of CloudStack failures into EC2 errors."""

import asyncio
import base64
import hashlib
import hmac
import logging
import random

import orjson
import pytest
from cs.client import cs_encode

import cloudstack_sim
from cloudstack_sim.faults import FaultRule
from ec2bridge.backend_errors import translate
from ec2bridge.cloudstack import (BackendUnavailable, CloudStackClient, CloudStackError, JobTimeout, SplitPages,
                                  split_list_response)
from signing import cloudstack as cs_signing


# --- signing: known answers and a second, independent implementation -------------------

def test_string_to_sign_matches_cloudstacks_documented_example():
    # CloudStack's developer guide, "Signing API Requests": the sorted, lowercased command string.
    params = {"command": "deployVirtualMachine", "serviceOfferingId": "1", "diskOfferingId": "1",
              "templateId": "2", "zoneId": "4",
              "apiKey": "miVr6X7u6bN_sdahOBpjNejPgEsT35eXq-jB8CG20YI3yaxXcgpyuaIRmFI_EJTVwZ0nUkkJbPmY3y2bciKwFQ"}
    assert cs_signing.string_to_sign(params) == (
        "apikey=mivr6x7u6bn_sdahobpjnejpgest35exq-jb8cg20yi3yaxxcgpyuairmfi_ejtvwz0nukkjbpmy3y2bcikwfq"
        "&command=deployvirtualmachine&diskofferingid=1&serviceofferingid=1&templateid=2&zoneid=4")


@pytest.mark.parametrize("value, encoded", [
    ("a b", "a%20b"), ("a+b", "a%2Bb"), ("x*y", "x*y"), ("~", "%7E"), ("é", "%C3%A9"), ("a/b=c&d", "a%2Fb%3Dc%26d"),
    ("A-Z.a_z", "A-Z.a_z"),
])
def test_java_url_encoding(value, encoded):
    assert cs_signing.java_url_encode(value) == encoded


def test_signatures_agree_with_the_cs_client_library():
    """The cs library signs as CloudStack verifies, except that it keeps ``~`` (Java encodes it)."""
    rng = random.Random(7)
    alphabet = "abcXYZ019 -_.*+/=&%é,[]"
    for _ in range(200):
        params = {f"p{rng.randint(0, 30)}": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
                  for _ in range(rng.randint(1, 6))}
        pairs = "&".join(f"{k}={cs_encode(v)}" for k, v in sorted(params.items()))
        expected = base64.b64encode(hmac.new(b"secret", pairs.lower().encode(), hashlib.sha1).digest()).decode()
        assert cs_signing.sign(params, "secret") == expected
        assert cs_signing.verify(params, "secret", expected)
        assert not cs_signing.verify(params, "other", expected)


# --- the client against the simulator ---------------------------------------------------

@pytest.fixture
async def sim():
    running = await cloudstack_sim.start(cloudstack_sim.SimConfig(port=0, job_duration=0.05))
    yield running
    await running.stop()


@pytest.fixture
async def client(sim):
    client = CloudStackClient(sim.url, timeout=2.0, page_size=100, poll_interval=0.02, max_poll_interval=0.1)
    yield client
    await client.close()


async def test_list_all_fetches_every_page_and_the_rest_concurrently(sim, client):
    sim.state.seed_vms("demo", 250)
    in_flight = peak = 0
    original = client.call

    async def counting(creds, command, params=None, **options):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await original(creds, command, params, **options)
        finally:
            in_flight -= 1

    client.call = counting
    before = sim.state.call_counts["listVirtualMachines"]
    vms = await client.list_all(sim.demo_credentials, "listVirtualMachines")
    assert len(vms) == len({vm["id"] for vm in vms}) == 250
    assert sim.state.call_counts["listVirtualMachines"] - before == 3  # pages of 100: 1, then 2 and 3 together
    assert peak == 2


async def test_list_raw_gives_each_object_as_cloudstack_wrote_it(sim, client):
    sim.state.seed_vms("demo", 150)
    parsed = await client.list_all(sim.demo_credentials, "listVirtualMachines")
    raw = await client.list_raw(sim.demo_credentials, "listVirtualMachines")
    assert all(isinstance(text, bytes) for text in raw)
    assert [orjson.loads(text) for text in raw] == parsed and len(raw) == 150
    assert await client.list_raw(sim.demo_credentials, "listVolumes", {"type": "DATADISK"}) == []


async def test_an_unchanged_page_is_not_split_again(sim, client):
    sim.state.seed_vms("demo", 30)
    first = await client.list_raw(sim.demo_credentials, "listVirtualMachines")
    again = await client.list_raw(sim.demo_credentials, "listVirtualMachines")
    assert again == first and again is not first
    assert all(a is b for a, b in zip(again, first))  # the same objects: split once, hashed once
    vm = sim.state.get("vm", orjson.loads(first[0])["id"])
    vm["displayname"] = "renamed"
    sim.state.touch(vm)
    changed = await client.list_raw(sim.demo_credentials, "listVirtualMachines")
    assert b'"displayname":"renamed"' in changed[0] and changed[1] is not first[1]
    assert changed[1] == first[1]


async def test_only_complete_listings_are_kept_split(sim, client):
    """A listing over several pages is split afresh each time (it is not kept twice over)."""
    sim.state.seed_vms("demo", 150)
    first = await client.list_raw(sim.demo_credentials, "listVirtualMachines")
    again = await client.list_raw(sim.demo_credentials, "listVirtualMachines")
    assert again == first and len(first) == 150
    assert not any(a is b for a, b in zip(again, first))


def test_kept_splits_stay_within_their_byte_budget():
    splits = SplitPages()
    splits.MAX_BYTES = 1000
    page = b'{"listthingsresponse":{"count":1,"thing":[{"id":"%s","pad":"' + b"x" * 150 + b'"}]}}'
    for index in range(20):
        raw = page.replace(b"%s", str(index).encode())
        splits.split(("key", index), raw)
        assert splits._bytes == sum(2 * len(kept[0]) for kept in splits._pages.values()) <= 1000
    fit = 1000 // (2 * len(raw))
    assert fit >= 2 and list(splits._pages) == [("key", index) for index in range(20 - fit, 20)]  # the most recent


def test_raw_list_decoding_takes_an_unexpected_envelope_the_slow_way():
    # A list response with a member that is neither the count nor the list still splits.
    body = b'{"listthingsresponse":{"count":2,"note":"x","thing":[{"id":"a","n":[1]},{"id":"b"}]}}'
    envelope = split_list_response(body)["listthingsresponse"]
    assert envelope["count"] == 2 and envelope["note"] == "x"
    assert [orjson.loads(text) for text in envelope["thing"]] == [{"id": "a", "n": [1]}, {"id": "b"}]
    fast = split_list_response(b'{"listthingsresponse":{"count":1,"thing":[{"id":"a"}]}}')
    assert fast == {"listthingsresponse": {"count": 1, "thing": [b'{"id":"a"}']}}


async def test_empty_list_and_single_page(sim, client):
    assert await client.list_all(sim.demo_credentials, "listVolumes") == []
    zones = await client.list_all(sim.demo_credentials, "listZones")
    assert zones and all("id" in zone for zone in zones)


async def _deploy_params(sim, client):
    creds = sim.demo_credentials
    zone = (await client.list_all(creds, "listZones"))[0]
    template = (await client.list_all(creds, "listTemplates", {"templatefilter": "featured"}))[0]
    offering = (await client.list_all(creds, "listServiceOfferings"))[0]
    return {"zoneid": zone["id"], "templateid": template["id"], "serviceofferingid": offering["id"]}


async def test_one_poller_serves_many_waiting_jobs(sim, client):
    params = await _deploy_params(sim, client)
    before = sim.state.call_counts["queryAsyncJobResult"]
    results = await asyncio.gather(*(client.run(sim.demo_credentials, "deployVirtualMachine", params)
                                     for _ in range(12)))
    assert all(result["virtualmachine"]["state"] == "Running" for result in results)
    assert client.poller.waiting == 0
    polls = sim.state.call_counts["queryAsyncJobResult"] - before
    assert 12 <= polls <= 12 * 8  # each job polled a few times with backoff, not in a tight loop


async def test_failed_job_raises_the_jobs_error(sim, client):
    params = await _deploy_params(sim, client)
    sim.state.faults.add(FaultRule(command="deployVirtualMachine", job_failure_rate=1.0))
    with pytest.raises(CloudStackError) as caught:
        await client.run(sim.demo_credentials, "deployVirtualMachine", params)
    assert caught.value.code == 530


async def test_bounded_job_wait(sim, client):
    params = await _deploy_params(sim, client)
    sim.state.config.job_duration = 5.0
    with pytest.raises(JobTimeout):
        await client.run(sim.demo_credentials, "deployVirtualMachine", params, wait=0.2)


async def test_closing_the_client_stops_its_poller_and_ends_the_waits(sim, client):
    params = await _deploy_params(sim, client)
    sim.state.config.job_duration = 5.0
    waiting = asyncio.ensure_future(client.run(sim.demo_credentials, "deployVirtualMachine", params))
    while client.poller.waiting == 0:
        await asyncio.sleep(0.01)
    await client.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 1)
    assert client.poller.waiting == 0


async def test_only_idempotent_calls_are_retried_on_dropped_connections(sim, client):
    sim.state.faults.add(FaultRule(command="listZones", drop_rate=1.0))
    sim.state.faults.add(FaultRule(command="createSecurityGroup", drop_rate=1.0))
    counts = sim.state.call_counts
    before_list, before_create = counts["listZones"], counts["createSecurityGroup"]
    with pytest.raises(BackendUnavailable):
        await client.call(sim.demo_credentials, "listZones")
    with pytest.raises(BackendUnavailable):
        await client.call(sim.demo_credentials, "createSecurityGroup", {"name": "once"})
    assert counts["listZones"] - before_list == 3
    assert counts["createSecurityGroup"] - before_create == 1


async def test_a_stalled_call_times_out(sim, client):
    sim.state.faults.add(FaultRule(command="listSSHKeyPairs", stall_rate=1.0))
    with pytest.raises(BackendUnavailable):
        await client.call(sim.demo_credentials, "listSSHKeyPairs")


async def test_cloudstack_errors_carry_code_and_parameter(sim, client):
    with pytest.raises(CloudStackError) as caught:
        await client.call(sim.demo_credentials, "startVirtualMachine", {"id": "4e3c9bd5-0000-0000-0000-000000000000"})
    assert caught.value.code == 431 and caught.value.param == "id"
    with pytest.raises(CloudStackError) as caught:
        await client.call(sim.demo_credentials, "startVirtualMachine")
    assert caught.value.code == 431 and caught.value.param == "id"
    with pytest.raises(CloudStackError) as caught:
        await client.call(sim.demo_credentials, "noSuchCommand")
    assert caught.value.code == 432
    with pytest.raises(CloudStackError) as caught:
        await client.call(("not-a-key", "nope"), "listZones")
    assert caught.value.code == 401


# --- CloudStack failures as EC2 errors --------------------------------------------------

def _error(code, text, command="deployVirtualMachine"):
    return CloudStackError(command=command, code=code, text=text)


@pytest.mark.parametrize("error, kinds, expected", [
    (_error(431, "Unable to execute API command deployvirtualmachine due to invalid value. Invalid parameter "
                 "templateid value=abc due to incorrect long value format, or entity does not exist"),
     {"templateid": "ami"}, "InvalidAMIID.NotFound"),
    (_error(531, "Acct[x] does not have permission to operate with resource for parameter id"), {"id": "i"},
     "InvalidInstanceID.NotFound"),
    (_error(531, "permission denied"), {}, "UnauthorizedOperation"),
    (_error(431, "Unable to execute API command x due to missing parameter name"), {}, "InvalidParameterValue"),
    (_error(533, "Insufficient capacity"), {}, "InsufficientInstanceCapacity"),
    (_error(536, "resource in use"), {}, "DependencyViolation"),
    (_error(530, "java.lang.NullPointerException at com.cloud..."), {}, "InternalError"),
    (BackendUnavailable("listZones: ServerDisconnectedError"), {}, "Unavailable"),
])
def test_translation_is_by_code_and_parameter(error, kinds, expected, caplog):
    with caplog.at_level(logging.INFO):
        translated = translate(error, kinds, {"templateid": "ami-0123456789abcdef0"})
    assert translated.code == expected
    if expected == "InternalError":
        assert "NullPointer" not in translated.message and translated.status == 500
        assert "NullPointer" in caplog.text  # the details are in the log only
    if expected == "Unavailable":
        assert translated.status == 503
