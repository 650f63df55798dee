"""CloudStack failing under the bridge: clients get clear EC2 errors, never a hang or a traceback."""

import pytest
from botocore.exceptions import ClientError

from cloudstack_sim.faults import FaultRule
from tests.bridge_server import start_bridge


@pytest.fixture(scope="module")
def fragile(tmp_path_factory):
    server = start_bridge(tmp_path_factory.mktemp("fragile"), cloudstack_timeout=1.0)
    yield server
    server.stop()


@pytest.fixture
def faults(fragile):
    rules = fragile.services.simulator.state.faults
    yield rules
    rules.clear()


def _error(call):
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.mark.parametrize("rule, expected", [
    (FaultRule(command="listSSHKeyPairs", drop_rate=1.0), ("Unavailable", 503)),
    (FaultRule(command="listSSHKeyPairs", stall_rate=1.0), ("Unavailable", 503)),
    (FaultRule(command="listSSHKeyPairs", error_rate=1.0, error_code=530,
               error_text="java.lang.NullPointerException at com.cloud.api"), ("InternalError", 500)),
])
def test_backend_failures_become_ec2_errors(fragile, faults, rule, expected):
    faults.add(rule)
    code, status, message = _error(fragile.client().describe_key_pairs)
    assert (code, status) == expected
    assert "NullPointer" not in message and "Traceback" not in message


def test_the_bridge_recovers_when_cloudstack_does(fragile, faults):
    faults.add(FaultRule(command="listSSHKeyPairs", drop_rate=1.0))
    assert _error(fragile.client().describe_key_pairs)[0] == "Unavailable"
    faults.clear()
    assert "KeyPairs" in fragile.client().describe_key_pairs()


def test_a_cloudstack_refusal_keeps_its_meaning(fragile, faults):
    faults.add(FaultRule(command="createSSHKeyPair", error_rate=1.0, error_code=531, error_text="denied"))
    assert _error(lambda: fragile.client().create_key_pair(KeyName="refused"))[:2] == ("UnauthorizedOperation", 403)
