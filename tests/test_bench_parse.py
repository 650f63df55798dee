"""The benchmark harness reads wrk correctly and replays exactly the request it signed.

No timing is asserted: these tests check parsing, the generated Lua script (through a real wrk
run against a recording server, when wrk is installed), the signed requests (verified by the
bridge's own verifier) and the answer checks that guard every measurement.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import web
from multidict import CIMultiDict

from bench import checks, signed, wrk
from bench.servers import FIXED_BODY
from signing import verifier
from signing.request import HttpRequest

# Real output of `wrk -t1 -c4 -d1s -s <generated script>` against bench.servers raw.
WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:40017
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   274.60us  726.97us   8.27ms   92.69%
    Req/Sec    43.53k    10.87k   49.65k    80.00%
  43175 requests in 1.00s, 44.84MB read
Requests/sec:  43162.35
Transfer/sec:     44.83MB
BENCH-RESULT {"duration_us":1000293,"requests":43175,"bytes":47017575,"errors":{"connect":0,"read":0,\
"write":0,"status":0,"timeout":0},"latency_us":{"min":20,"max":8271,"mean":274.6,"p50":80,"p90":327,"p99":3820}}
"""

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


# -- parsing ---------------------------------------------------------------------------------------
def test_parses_the_result_line_into_milliseconds_and_rates():
    result = wrk.parse_output(WRK_OUTPUT)
    assert result.requests == 43175
    assert result.duration_s == pytest.approx(1.000293)
    assert result.rps == pytest.approx(43175 / 1.000293)
    assert result.bytes == 47017575
    assert result.latency_ms == {"min": 0.02, "max": 8.271, "mean": pytest.approx(0.2746), "p50": 0.08,
                                 "p90": 0.327, "p99": 3.82}
    assert result.error_count == 0


def test_counts_every_kind_of_error():
    text = WRK_OUTPUT.replace('"connect":0,"read":0', '"connect":1,"read":2').replace('"status":0', '"status":40')
    result = wrk.parse_output(text)
    assert result.errors == {"connect": 1, "read": 2, "write": 0, "status": 40, "timeout": 0}
    assert result.error_count == 43


def test_a_run_without_requests_has_no_rate_and_zero_latencies():
    line = ('BENCH-RESULT {"duration_us":3000000,"requests":0,"bytes":0,"errors":{"connect":0,"read":0,"write":0,'
            '"status":0,"timeout":0},"latency_us":{"min":0,"max":0,"mean":0.0,"p50":0,"p90":0,"p99":0}}')
    result = wrk.parse_output(line)
    assert result.requests == 0 and result.rps == 0.0


def test_output_without_a_result_line_is_a_clear_error():
    with pytest.raises(wrk.WrkError, match="no BENCH-RESULT line"):
        wrk.parse_output(WRK_OUTPUT.split("BENCH-RESULT")[0])


@pytest.mark.parametrize("line", ["BENCH-RESULT {not json", 'BENCH-RESULT {"requests": 5}'])
def test_a_malformed_result_line_is_a_clear_error(line):
    with pytest.raises(wrk.WrkError, match="unreadable wrk result line"):
        wrk.parse_output(line)


def test_lua_strings_escape_quotes_backslashes_and_non_ascii():
    assert wrk.lua_string('a"b\\c') == '"a\\"b\\\\c"'
    assert wrk.lua_string("x\ny") == '"x\\010y"'
    assert wrk.lua_string("é") == '"\\195\\169"'


def test_the_script_leaves_content_length_to_wrk():
    script = wrk.lua_script("POST", "/", {"Content-Length": "3", "Host": "h:1"}, b"a=b")
    assert "Content-Length" not in script
    assert 'wrk.headers["Host"] = "h:1"' in script and 'wrk.body = "a=b"' in script


# -- the generated script, through a real wrk ------------------------------------------------------
async def recording_server(aiohttp_server, status: int):
    seen: list[tuple[dict, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(body=FIXED_BODY, status=status)

    app = web.Application()
    app.router.add_route("*", "/", handler)
    return await aiohttp_server(app), seen


@needs_wrk
async def test_wrk_replays_the_signed_request_byte_for_byte(aiohttp_server, tmp_path):
    server, seen = await recording_server(aiohttp_server, 200)
    request = signed.sign_ec2(str(server.make_url("/")), signed.Ec2Call("DescribeInstances"), ("AK", "SK"), "r")
    script = tmp_path / "probe.lua"
    script.write_text(wrk.lua_script(request.method, request.path, request.headers, request.body))
    run = await asyncio.to_thread(wrk.run, shutil.which("wrk"), request.base_url, script, connections=2, seconds=1)
    assert run.result.requests > 0 and run.result.error_count == 0
    assert len(seen) >= run.result.requests   # requests still in flight at the end are not counted
    headers, body = seen[0]
    assert body == request.body
    for name in ("Authorization", "X-Amz-Date", "Content-Type", "Host"):
        assert headers[name] == request.headers[name]
    assert all(entry == seen[0] for entry in seen)


@needs_wrk
async def test_wrk_counts_error_statuses(aiohttp_server, tmp_path):
    server, _ = await recording_server(aiohttp_server, 403)
    request = signed.sign_ec2(str(server.make_url("/")), signed.Ec2Call("DescribeRegions"), ("AK", "SK"), "r")
    script = tmp_path / "probe.lua"
    script.write_text(wrk.lua_script(request.method, request.path, request.headers, request.body))
    run = await asyncio.to_thread(wrk.run, shutil.which("wrk"), request.base_url, script, connections=1, seconds=1)
    assert run.result.requests > 0
    assert run.result.errors["status"] == run.result.requests


# -- the signed requests ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v4", "v2"])
def test_signed_ec2_requests_pass_the_bridge_verifier(version):
    request = signed.sign_ec2("http://127.0.0.1:8773/", signed.Ec2Call("DescribeKeyPairs", signature=version),
                              ("AKIABENCH", "secret"), "cloudstack")
    params = dict(parse_qsl(request.body.decode()))
    incoming = HttpRequest(method="POST", host=request.host, path="/", query_string="",
                           headers=CIMultiDict(request.headers), body=request.body, params=params)
    claim = verifier.parse_auth(incoming)
    assert claim.access_key == "AKIABENCH"
    verifier.verify(incoming, claim, "secret", now=datetime.now(timezone.utc))
    assert params["Action"] == "DescribeKeyPairs" and params["Version"] == signed.EC2_VERSION


def test_signed_cloudstack_request_carries_an_expiring_v3_signature():
    request = signed.sign_cloudstack("http://127.0.0.1:8080/client/api", "listVirtualMachines",
                                     {"page": "1", "pagesize": "500"}, ("key", "secret"))
    params = dict(parse_qsl(request.body.decode()))
    assert params["command"] == "listVirtualMachines" and params["response"] == "json"
    assert params["signatureversion"] == "3" and params["apikey"] == "key"
    from signing import cloudstack
    unsigned = {k: v for k, v in params.items() if k != "signature"}
    assert cloudstack.verify(unsigned, "secret", params["signature"])
    assert cloudstack.parse_expires(params["expires"]) > datetime.now(timezone.utc)


# -- the answer checks -----------------------------------------------------------------------------
def ec2_body(action: str, inner: str = "") -> bytes:
    return (f'<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
            f'{inner}</{action}Response>').encode()


def instances(count: int) -> str:
    items = "".join(f"<item><instanceId>i-{n}</instanceId></item>" for n in range(count))
    return f"<reservationSet><item><instancesSet>{items}</instancesSet></item></reservationSet>"


def test_describe_instances_must_hold_the_whole_fleet():
    expect = checks.Ec2Answer("DescribeInstances", 3)
    expect.check(200, ec2_body("DescribeInstances", instances(3)))
    with pytest.raises(checks.WrongAnswer, match="2 instances in the answer, expected 3"):
        expect.check(200, ec2_body("DescribeInstances", instances(2)))


def test_an_unmapped_action_is_reported_as_not_available():
    body = (b"<Response><Errors><Error><Code>UnsupportedOperation</Code><Message>The action X is not supported"
            b"</Message></Error></Errors><RequestID>r</RequestID></Response>")
    with pytest.raises(checks.WrongAnswer, match="DescribeImages not available .*UnsupportedOperation"):
        checks.Ec2Answer("DescribeImages").check(400, body)


def test_an_auth_failure_is_reported_as_failed():
    body = b"<Response><Errors><Error><Code>AuthFailure</Code><Message>no</Message></Error></Errors></Response>"
    with pytest.raises(checks.WrongAnswer, match="DescribeRegions failed .*AuthFailure"):
        checks.Ec2Answer("DescribeRegions").check(401, body)


def test_an_answer_for_another_action_is_wrong():
    with pytest.raises(checks.WrongAnswer, match="answered with"):
        checks.Ec2Answer("DescribeRegions").check(200, ec2_body("DescribeImages"))


def test_cloudstack_lists_are_checked_by_count():
    expect = checks.CloudStackList("listVirtualMachines", 2)
    expect.check(200, b'{"listvirtualmachinesresponse":{"count":2,"virtualmachine":[{},{}]}}')
    with pytest.raises(checks.WrongAnswer, match="count 0, expected 2"):
        expect.check(200, b'{"listvirtualmachinesresponse":{}}')
    with pytest.raises(checks.WrongAnswer, match="HTTP 401"):
        expect.check(401, b'{"errorresponse":{"errorcode":401,"errortext":"unable to verify user credentials"}}')


def test_fixed_body_servers_must_answer_the_fixed_body():
    checks.FixedBody().check(200, FIXED_BODY)
    assert len(FIXED_BODY) == 1024
    with pytest.raises(checks.WrongAnswer):
        checks.FixedBody().check(200, FIXED_BODY[:-1])


def test_form_bodies_are_url_encoded_like_botocore():
    request = signed.sign_ec2("http://h:1/", signed.Ec2Call("DescribeImages", {"Owner.1": "self"}), ("a", "b"), "r")
    assert request.body.decode().startswith(urlencode({"Action": "DescribeImages", "Version": signed.EC2_VERSION,
                                                       "Owner.1": "self"}))
