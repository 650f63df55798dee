"""One lifecycle, three more clients: the aws cli (SigV4, POST), boto 2.49 (SigV2 HmacSHA256,
POST) and libcloud's EC2 driver (SigV2 in the query string, GET).

Each client makes a key pair and a security group with an ingress rule, launches an instance
with them, waits for it, describes it, stops, starts and terminates it, in a fresh CloudStack
account. Waiting between steps uses the client's own waiter where it has one (aws cli) and
boto3's waiters otherwise, so no test sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto.ec2.connection
from boto.ec2.regioninfo import RegionInfo
from libcloud.compute.base import NodeImage
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider

from tests.bridge_server import REGION
from tests.e2e.test_instances import FAST, image_id, instances


def port_of(bridge) -> int:
    return int(bridge.url.rsplit(":", 1)[1].rstrip("/"))


# -- aws cli ---------------------------------------------------------------------------------------
def test_aws_cli_lifecycle(bridge, world):
    (access, secret), _ = world.credentials("cli")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}

    def aws(*args: str) -> dict:
        result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "aws"), "--endpoint-url", bridge.url,
                                 "--output", "json", "ec2", *args], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    aws("create-key-pair", "--key-name", "cli-key")
    group = aws("create-security-group", "--group-name", "cli-web", "--description", "web")["GroupId"]
    aws("authorize-security-group-ingress", "--group-id", group, "--protocol", "tcp", "--port", "22",
        "--cidr", "0.0.0.0/0")
    boto3_client = bridge.client("ec2", credentials=(access, secret))
    image = image_id(boto3_client)

    def wait(state: str, instance: str) -> None:
        # The cli's waiters sleep 15 s between polls; boto3's (fast) waiter first keeps this
        # test quick, and the cli's own waiter must then complete on its first poll.
        boto3_client.get_waiter(f"instance_{state}").wait(InstanceIds=[instance], WaiterConfig=FAST)
        aws("wait", f"instance-{state}", "--instance-ids", instance)

    run = aws("run-instances", "--image-id", image, "--instance-type", "t2.micro", "--count", "1",
              "--key-name", "cli-key", "--security-group-ids", group)
    instance = run["Instances"][0]["InstanceId"]
    wait("running", instance)
    described = aws("describe-instances", "--instance-ids", instance)["Reservations"][0]["Instances"][0]
    assert described["State"]["Name"] == "running" and described["KeyName"] == "cli-key"
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [group]
    assert aws("stop-instances", "--instance-ids", instance)["StoppingInstances"][0]["CurrentState"]["Name"] \
        == "stopping"
    wait("stopped", instance)
    aws("start-instances", "--instance-ids", instance)
    wait("running", instance)
    aws("terminate-instances", "--instance-ids", instance)
    wait("terminated", instance)


# -- boto 2.49, SigV2 ------------------------------------------------------------------------------
class SigV2Connection(boto.ec2.connection.EC2Connection):
    """boto 2.49 asks for SigV4 on EC2; the 'ec2' capability makes it sign with SigV2 HmacSHA256."""

    def _required_auth_capability(self):
        return ["ec2"]


def test_boto2_sigv2_lifecycle(bridge, world):
    credentials, _ = world.credentials("boto2")
    waiter_client = bridge.client("ec2", credentials=credentials)
    conn = SigV2Connection(aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1], is_secure=False,
                           port=port_of(bridge), path="/", region=RegionInfo(name=REGION, endpoint="127.0.0.1"))
    conn.create_key_pair("boto2-key")
    group = conn.create_security_group("boto2-web", "web servers")
    group.authorize(ip_protocol="tcp", from_port=80, to_port=80, cidr_ip="0.0.0.0/0")
    reservation = conn.run_instances(image_id(waiter_client), key_name="boto2-key", security_groups=["boto2-web"],
                                     instance_type="t2.micro")
    instance = reservation.instances[0]
    assert reservation.id.startswith("r-") and instance.state in ("pending", "running")
    waiter_client.get_waiter("instance_running").wait(InstanceIds=[instance.id], WaiterConfig=FAST)
    instance.update()
    assert instance.state == "running" and instance.key_name == "boto2-key"
    assert instance.private_ip_address and instance.root_device_name == "/dev/sda1"
    assert [g.name for g in instance.groups] == ["boto2-web"]
    assert [i.id for i in conn.stop_instances([instance.id])] == [instance.id]
    waiter_client.get_waiter("instance_stopped").wait(InstanceIds=[instance.id], WaiterConfig=FAST)
    conn.start_instances([instance.id])
    waiter_client.get_waiter("instance_running").wait(InstanceIds=[instance.id], WaiterConfig=FAST)
    assert conn.reboot_instances([instance.id]) is True  # boto 2 sends this one as GET
    conn.terminate_instances([instance.id])
    waiter_client.get_waiter("instance_terminated").wait(InstanceIds=[instance.id], WaiterConfig=FAST)
    [gone] = conn.get_only_instances([instance.id])
    assert gone.state == "terminated"


# -- libcloud, SigV2 GET ---------------------------------------------------------------------------
def test_libcloud_sigv2_lifecycle(bridge, world):
    credentials, _ = world.credentials("libcloud")
    waiter_client = bridge.client("ec2", credentials=credentials)
    driver = get_driver(Provider.EC2)(*credentials, region="us-east-1", host="127.0.0.1", port=port_of(bridge),
                                      secure=False)
    assert driver.connection.signature_version == "2"
    driver.create_key_pair("libcloud-key")
    driver.ex_create_security_group("libcloud-web", "web servers")
    group_id = waiter_client.describe_security_groups(GroupNames=["libcloud-web"])["SecurityGroups"][0]["GroupId"]
    driver.ex_authorize_security_group_ingress(group_id, 443, 443, cidr_ips=["0.0.0.0/0"])
    size = next(s for s in driver.list_sizes() if s.id == "t2.micro")
    node = driver.create_node(name="libcloud-node", size=size, image=NodeImage(image_id(waiter_client), None, driver),
                              ex_keyname="libcloud-key", ex_security_groups=["libcloud-web"])
    # create_node parsed RunInstances' answer. (list_nodes is not used: it also calls
    # DescribeAddresses, which belongs to the elastic IP actions.)
    assert node.state in (NodeState.PENDING, NodeState.RUNNING) and node.name == "libcloud-node"
    assert node.private_ips and node.extra["key_name"] == "libcloud-key"
    waiter_client.get_waiter("instance_running").wait(InstanceIds=[node.id], WaiterConfig=FAST)
    listed = node
    assert driver.ex_stop_node(listed) is True
    waiter_client.get_waiter("instance_stopped").wait(InstanceIds=[node.id], WaiterConfig=FAST)
    assert driver.ex_start_node(listed) is True
    waiter_client.get_waiter("instance_running").wait(InstanceIds=[node.id], WaiterConfig=FAST)
    assert driver.destroy_node(listed) is True
    waiter_client.get_waiter("instance_terminated").wait(InstanceIds=[node.id], WaiterConfig=FAST)
    assert instances(waiter_client, InstanceIds=[node.id])[0]["State"]["Name"] == "terminated"
