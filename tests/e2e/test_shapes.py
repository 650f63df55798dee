"""Every mapped action's real XML, checked against botocore's output shape.

boto3 forgives a great deal (it skips elements it does not know, reads any list item name), but
boto 2, libcloud and euca2ools parse EC2's XML by hand. So each action in ``mappings.ACTIONS``
is called through boto3 with a minimal valid request from :data:`REQUESTS`, the raw body is
taken from botocore's ``after-call`` event, and :func:`shape_problems` checks it against the
operation's output shape:

- the root is ``<ActionResponse>`` in the namespace of the request's API version, trailing slash
  included, with ``<requestId>`` equal to the ``x-amzn-RequestId`` header (STS: its own
  namespace, ``<ActionResult>`` and ``<ResponseMetadata><RequestId>``);
- every element is one the model defines at that place, non-list members appear once, and
  every namespace is the document's;
- list items are ``<item>`` (STS: ``<member>``); values have their type's form: integers and
  longs parse and fit, booleans are ``true``/``false``, doubles parse, timestamps are ISO 8601
  UTC with milliseconds, blobs are base64. Enum values are not checked: AWS adds values all the
  time, botocore accepts any, and instance types include CloudStack offering names by design.

**Adding an action**: add an entry to :data:`REQUESTS` (the test fails for a mapped action
without one). ``Call(params, nonempty)``: ``params(world)`` returns the request; it may create
what the call needs through :class:`World` (``world.ec2``, ``world.unique``, ``world.once``,
``world.on_sim``) or the helpers beside the table (``_group``, ``_key``, ``_instance``,
``_launch``, ``_own_image``...). Each entry makes its own prerequisites, so the entries run in
any order. ``nonempty`` names an output member that must come back non-empty, so that the
items' shapes are really checked and not only an empty list.

The calls run as an account of their own, so what they create never shows in other tests.
"""

from __future__ import annotations

import base64
import functools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import pytest
from botocore import xform_name
from botocore.model import OperationModel, Shape

import mappings
from ec2bridge.protocol import ServiceModels

EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/{version}/"
EC2_VERSION = "2016-11-15"  # what boto3 sends
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
INTEGER = re.compile(r"-?[0-9]+")
DOUBLE = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?|NaN|-?Infinity")
BOUNDS = {"integer": 2**31, "long": 2**63}


# --- the validator -----------------------------------------------------------------------

@functools.cache
def models() -> ServiceModels:
    """botocore's EC2 and STS models, loaded once for the module."""
    return ServiceModels()


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


class _Checker:
    """Walks one document against one output shape, collecting problems as 'path: what'."""

    def __init__(self, protocol: str, namespace: str):
        self.protocol = protocol
        self.namespace = namespace
        self.problems: list[str] = []

    def report(self, path: str, what: str) -> None:
        self.problems.append(f"{path}: {what}")

    def element_name(self, shape: Shape, member_name: str) -> str:
        return shape.serialization.get("name", member_name)

    def item_name(self, shape: Shape) -> str:
        # EC2 writes every list item as <item> whatever the model's locationName (which only
        # names input parameters); the plain query protocol uses the member's name or <member>.
        return "item" if self.protocol == "ec2" else shape.member.serialization.get("name", "member")

    def children(self, node: ET.Element, path: str) -> list[tuple[str, ET.Element]]:
        if (node.text or "").strip():
            self.report(path, f"unexpected text {node.text.strip()!r} among elements")
        named = []
        for child in node:
            namespace, local = _split(child.tag)
            if namespace != self.namespace:
                self.report(f"{path}/{local}", f"namespace {namespace!r}, expected {self.namespace!r}")
            if (child.tail or "").strip():
                self.report(f"{path}/{local}", f"unexpected text {child.tail.strip()!r} after it")
            named.append((local, child))
        return named

    def structure(self, node: ET.Element, shape: Shape, path: str, skip: frozenset = frozenset()) -> None:
        members = {self.element_name(member, name): member for name, member in shape.members.items()}
        seen: set[str] = set()
        for local, child in self.children(node, path):
            if local in skip:
                continue
            if local not in members:
                self.report(f"{path}/{local}", f"{shape.name} has no such element")
                continue
            if local in seen:
                self.report(f"{path}/{local}", "appears more than once")
            seen.add(local)
            self.value(child, members[local], f"{path}/{local}")

    def value(self, node: ET.Element, shape: Shape, path: str) -> None:
        kind = shape.type_name
        if kind == "structure":
            self.structure(node, shape, path)
        elif kind == "list":
            self.list(node, shape, path)
        elif kind == "map":
            self.map(node, shape, path)
        else:
            if len(node):
                self.report(path, f"a {kind} holds elements")
            self.scalar(node.text or "", kind, path)

    def list(self, node: ET.Element, shape: Shape, path: str) -> None:
        if shape.serialization.get("flattened"):
            raise NotImplementedError(f"{path}: flattened lists are not in EC2's or STS's output models")
        item = self.item_name(shape)
        for index, (local, child) in enumerate(self.children(node, path), 1):
            if local != item:
                self.report(f"{path}/{local}", f"list item named <{local}>, expected <{item}>")
            self.value(child, shape.member, f"{path}/{item}[{index}]")

    def map(self, node: ET.Element, shape: Shape, path: str) -> None:
        for index, (local, entry) in enumerate(self.children(node, path), 1):
            where = f"{path}/entry[{index}]"
            if local != "entry":
                self.report(where, f"map entry named <{local}>")
            parts = dict(self.children(entry, where))
            if set(parts) != {"key", "value"}:
                self.report(where, f"map entry holds {sorted(parts)}, expected key and value")
            for part, part_shape in (("key", shape.key), ("value", shape.value)):
                if part in parts:
                    self.value(parts[part], part_shape, f"{where}/{part}")

    def scalar(self, text: str, kind: str, path: str) -> None:
        if kind in BOUNDS:
            if not INTEGER.fullmatch(text) or not -BOUNDS[kind] <= int(text) < BOUNDS[kind]:
                self.report(path, f"{text!r} is not of type {kind}")
        elif kind in ("float", "double"):
            if not DOUBLE.fullmatch(text):
                self.report(path, f"{text!r} is not of type {kind}")
        elif kind == "boolean":
            if text not in ("true", "false"):
                self.report(path, f"{text!r} is not true or false")
        elif kind == "timestamp":
            if not TIMESTAMP.fullmatch(text) or not _valid_time(text):
                self.report(path, f"{text!r} is not an ISO 8601 UTC time with milliseconds")
        elif kind == "blob":
            try:
                base64.b64decode(text, validate=True)
            except ValueError:
                self.report(path, f"{text!r} is not base64")
        elif kind != "string":
            self.report(path, f"unexpected scalar type {kind}")


def _valid_time(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return True


def _named(node: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in node if _split(child.tag)[1] == name]


def _one(checker: _Checker, node: ET.Element, name: str, path: str) -> ET.Element | None:
    found = _named(node, name)
    if len(found) != 1:
        checker.report(path, f"expected one <{name}>, found {len(found)}")
        return None
    return found[0]


def shape_problems(body: bytes, operation: OperationModel, request_id: str, version: str = EC2_VERSION) -> list[str]:
    """Everything in ``body`` that ``operation``'s output shape does not allow."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        return [f"not XML: {error}"]
    service = operation.service_model
    if service.protocol == "ec2":
        return _ec2_problems(root, operation, request_id, EC2_NAMESPACE.format(version=version))
    return _query_problems(root, operation, request_id)


def _check_root(checker: _Checker, root: ET.Element, operation: OperationModel) -> str:
    namespace, local = _split(root.tag)
    if namespace != checker.namespace:
        checker.report(local, f"namespace {namespace!r}, expected {checker.namespace!r}")
    if local != f"{operation.name}Response":
        checker.report(local, f"root element, expected <{operation.name}Response>")
    return local


def _ec2_problems(root: ET.Element, operation: OperationModel, request_id: str, namespace: str) -> list[str]:
    checker = _Checker("ec2", namespace)
    path = _check_root(checker, root, operation)
    request_ids = [node.text for node in _named(root, "requestId")]
    if request_ids != [request_id]:
        checker.report(path, f"requestId {request_ids}, expected [{request_id!r}]")
    shape = operation.output_shape
    if shape is None:
        # Actions botocore models without output answer <return>true</return> (boto 2 and
        # libcloud read it); nothing else may be there.
        if len(_named(root, "return")) != 1:
            checker.report(path, "an action without output answers one <return>")
        for local, child in checker.children(root, path):
            if local == "return":
                checker.scalar(child.text or "", "boolean", f"{path}/return")
            elif local != "requestId":
                checker.report(f"{path}/{local}", "an action without output has only <return>")
    else:
        checker.structure(root, shape, path, skip=frozenset({"requestId"}))
    return checker.problems


def _query_problems(root: ET.Element, operation: OperationModel, request_id: str) -> list[str]:
    checker = _Checker("query", operation.service_model.metadata["xmlNamespace"])
    path = _check_root(checker, root, operation)
    names = [_split(child.tag)[1] for child in root]
    shape = operation.output_shape
    wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
    expected = ([wrapper] if wrapper else []) + ["ResponseMetadata"]
    if names != expected:
        checker.report(path, f"holds {names}, expected {expected}")
    if wrapper and (result := _one(checker, root, wrapper, path)) is not None:
        checker.structure(result, shape, f"{path}/{wrapper}")
    metadata = _one(checker, root, "ResponseMetadata", path)
    if metadata is not None:
        node = _one(checker, metadata, "RequestId", f"{path}/ResponseMetadata")
        if node is not None and node.text != request_id:
            checker.report(f"{path}/ResponseMetadata/RequestId", f"{node.text!r}, expected {request_id!r}")
    return checker.problems


# --- the calls ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    params: Callable[["World"], dict] = lambda world: {}
    nonempty: str | None = None


def _tcp(port: int, cidr: str = "10.0.0.0/8") -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}


def _group(world: "World") -> str:
    """The account's own security group, with an ingress rule, an egress rule and a tag."""
    def make(world: "World") -> str:
        group = world.ec2.create_security_group(GroupName="shape-group", Description="shape check")["GroupId"]
        world.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[_tcp(22)])
        world.ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[_tcp(443, "0.0.0.0/0")])
        world.ec2.create_tags(Resources=[group], Tags=[{"Key": "shape", "Value": "group"}])
        return group
    return world.once("group", make)


def _revocable(world: "World", direction: str) -> dict:
    """A request revoking one rule just added and one that never existed."""
    group, rule = _group(world), _tcp(world.port())
    getattr(world.ec2, f"authorize_security_group_{direction}")(GroupId=group, IpPermissions=[rule])
    return {"GroupId": group, "IpPermissions": [rule, _tcp(7, "192.0.2.0/24")]}


def _tagged(world: "World", key: str) -> str:
    group = _group(world)
    world.ec2.create_tags(Resources=[group], Tags=[{"Key": key, "Value": ""}])
    return group


def _own_image(world: "World") -> str:
    """An image (CloudStack template) of the account's own, made public to have a permission."""
    def make(world: "World") -> str:
        world.on_sim(lambda state: world.own_template(state))
        [image] = world.ec2.describe_images(Owners=["self"])["Images"]
        return image["ImageId"]
    image = world.once("image", make)
    world.ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    return image


def _public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _key(world: "World") -> str:
    return world.once("key pair", lambda world: world.ec2.create_key_pair(KeyName="shape-key")["KeyName"])


def _launch_request(world: "World") -> dict:
    image = world.once("launch image", lambda world: world.ec2.describe_images(
        Filters=[{"Name": "name", "Values": ["Ubuntu*"]}])["Images"][0]["ImageId"])
    return {"ImageId": image, "InstanceType": "t2.micro", "MinCount": 1, "MaxCount": 1, "KeyName": _key(world)}


def _launch(world: "World", state: str = "running") -> str:
    """A new instance of the account's own, waited for until ``state``."""
    [instance] = world.ec2.run_instances(**_launch_request(world))["Instances"]
    ids = [instance["InstanceId"]]
    world.ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 0.1})
    if state == "stopped":
        world.ec2.stop_instances(InstanceIds=ids)
        world.ec2.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig={"Delay": 0.1})
    return ids[0]


def _instance(world: "World") -> str:
    """The account's running instance that the read-only calls look at."""
    return world.once("instance", _launch)


REQUESTS: dict[str, Call] = {
    # catalog
    "DescribeRegions": Call(nonempty="Regions"),
    "DescribeAvailabilityZones": Call(nonempty="AvailabilityZones"),
    "DescribeAccountAttributes": Call(nonempty="AccountAttributes"),
    # MaxResults below the number of types, so that <nextToken> is rendered too
    "DescribeInstanceTypes": Call(lambda world: {"MaxResults": 5}, nonempty="InstanceTypes"),
    "DescribeInstanceTypeOfferings": Call(lambda world: {"LocationType": "availability-zone-id", "MaxResults": 5},
                                          nonempty="InstanceTypeOfferings"),
    "GetCallerIdentity": Call(nonempty="Arn"),
    # security groups
    "CreateSecurityGroup": Call(lambda world: {"GroupName": world.unique("shape-create"), "Description": "shape",
                                               "TagSpecifications": [{"ResourceType": "security-group",
                                                                      "Tags": [{"Key": "k", "Value": "v"}]}]},
                                nonempty="GroupId"),
    "DeleteSecurityGroup": Call(lambda world: {"GroupId": world.ec2.create_security_group(
        GroupName=world.unique("shape-delete"), Description="to delete")["GroupId"]}, nonempty="Return"),
    "AuthorizeSecurityGroupIngress": Call(lambda world: {"GroupId": _group(world), "IpPermissions": [_tcp(world.port())]},
                                          nonempty="SecurityGroupRules"),
    "AuthorizeSecurityGroupEgress": Call(lambda world: {"GroupId": _group(world), "IpPermissions": [_tcp(world.port())]},
                                         nonempty="SecurityGroupRules"),
    "RevokeSecurityGroupIngress": Call(lambda world: _revocable(world, "ingress"), nonempty="UnknownIpPermissions"),
    "RevokeSecurityGroupEgress": Call(lambda world: _revocable(world, "egress"), nonempty="UnknownIpPermissions"),
    "DescribeSecurityGroups": Call(lambda world: {"GroupIds": [_group(world)]}, nonempty="SecurityGroups"),
    "DescribeSecurityGroupRules": Call(lambda world: {"Filters": [{"Name": "group-id", "Values": [_group(world)]}]},
                                       nonempty="SecurityGroupRules"),
    # tags
    "CreateTags": Call(lambda world: {"Resources": [_group(world)], "Tags": [{"Key": "made", "Value": "here"}]}),
    "DeleteTags": Call(lambda world: {"Resources": [_tagged(world, "doomed")], "Tags": [{"Key": "doomed"}]}),
    "DescribeTags": Call(lambda world: {"Filters": [{"Name": "resource-id", "Values": [_group(world)]}]},
                         nonempty="Tags"),
    # images
    "DescribeImages": Call(lambda world: {"ImageIds": [_own_image(world)]}, nonempty="Images"),
    "DescribeImageAttribute": Call(lambda world: {"ImageId": _own_image(world), "Attribute": "launchPermission"},
                                   nonempty="LaunchPermissions"),
    "ModifyImageAttribute": Call(lambda world: {"ImageId": _own_image(world),
                                                "LaunchPermission": {"Remove": [{"Group": "all"}]}}),
    "ResetImageAttribute": Call(lambda world: {"ImageId": _own_image(world), "Attribute": "launchPermission"}),
    # key pairs
    "CreateKeyPair": Call(lambda world: {"KeyName": world.unique("shape-create")}, nonempty="KeyMaterial"),
    "ImportKeyPair": Call(lambda world: {"KeyName": world.unique("shape-import"),
                                         "PublicKeyMaterial": _public_key().encode()}, nonempty="KeyFingerprint"),
    "DeleteKeyPair": Call(lambda world: {"KeyName": world.ec2.create_key_pair(
        KeyName=world.unique("shape-delete"))["KeyName"]}, nonempty="Return"),
    "DescribeKeyPairs": Call(lambda world: {"KeyNames": [_key(world)]}, nonempty="KeyPairs"),
    # instances
    "RunInstances": Call(lambda world: {**_launch_request(world), "TagSpecifications": [
        {"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}]}, nonempty="Instances"),
    "DescribeInstances": Call(lambda world: {"InstanceIds": [_instance(world)]}, nonempty="Reservations"),
    "DescribeInstanceStatus": Call(lambda world: {"InstanceIds": [_instance(world)]}, nonempty="InstanceStatuses"),
    "StopInstances": Call(lambda world: {"InstanceIds": [_launch(world)]}, nonempty="StoppingInstances"),
    "StartInstances": Call(lambda world: {"InstanceIds": [_launch(world, "stopped")]}, nonempty="StartingInstances"),
    "RebootInstances": Call(lambda world: {"InstanceIds": [_instance(world)]}),
    "TerminateInstances": Call(lambda world: {"InstanceIds": [_launch(world)]}, nonempty="TerminatingInstances"),
    "DescribeInstanceAttribute": Call(lambda world: {"InstanceId": _instance(world), "Attribute": "instanceType"},
                                      nonempty="InstanceType"),
    "ModifyInstanceAttribute": Call(lambda world: {"InstanceId": _instance(world),
                                                   "DisableApiTermination": {"Value": False}}),
    "ResetInstanceAttribute": Call(lambda world: {"InstanceId": _instance(world), "Attribute": "sourceDestCheck"}),
    "GetPasswordData": Call(lambda world: {"InstanceId": _instance(world)}, nonempty="InstanceId"),
    "GetConsoleOutput": Call(lambda world: {"InstanceId": _instance(world)}, nonempty="InstanceId"),
}


@dataclass
class World:
    """What the calls share: the bridge, one account's clients, and things made once."""

    bridge: Any
    credentials: tuple[str, str]
    account_id: str
    _clients: dict[str, Any] = field(default_factory=dict)
    _made: dict[str, Any] = field(default_factory=dict)
    _counter: int = 0
    captured: list = field(default_factory=list)

    def client(self, service: str):
        if service not in self._clients:
            client = self.bridge.client(service, credentials=self.credentials)
            client.meta.events.register("after-call", self._capture)
            self._clients[service] = client
        return self._clients[service]

    @property
    def ec2(self):
        return self.client("ec2")

    def unique(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter}"

    def port(self) -> int:
        """A TCP port no other call of this run has used in a rule."""
        self._counter += 1
        return 10000 + self._counter

    def on_sim(self, change: Callable[[Any], Any]) -> Any:
        """``change(simulator state)``, run on the bridge's loop where the simulator lives."""
        return self.bridge.run(change, self.bridge.services.simulator.state)

    def own_template(self, state) -> dict:
        """A private template of this account, copied from a seeded one."""
        seeded = next(iter(state.store("template")))
        template = {key: value for key, value in seeded.items() if key not in ("id", "created")}
        template.update(name="shape-image", displaytext="shape check image", account_id=self.account_id,
                        ispublic=False, isfeatured=False, permitted_accounts=[])
        return state.add("template", template)

    def once(self, name: str, make: Callable[["World"], Any]) -> Any:
        """``make(world)`` the first time ``name`` is asked for; the same result afterwards."""
        if name not in self._made:
            self._made[name] = make(self)
        return self._made[name]

    def _capture(self, http_response, model, **kwargs) -> None:
        self.captured.append((model.name, http_response.status_code, http_response.headers, http_response.content))

    def call(self, action: str, params: dict) -> tuple[dict, tuple]:
        operation = models().operation(action)
        client = self.client(operation.service_model.service_name)
        self.captured.clear()
        parsed = getattr(client, xform_name(action))(**params)
        [response] = [c for c in self.captured if c[0] == action]
        return parsed, response


async def _new_account(state, name: str) -> tuple[tuple[str, str], str]:
    from cloudstack_sim.commands.security_groups import default_group
    from cloudstack_sim.seed import USER_TYPE, add_account, add_user

    domain = next(iter(state.store("domain")))
    account = add_account(state, name, USER_TYPE, domain["id"])
    user = add_user(state, account, name)
    default_group(state, account)
    return (user["apikey"], user["secretkey"]), account["id"]


@pytest.fixture(scope="module")
def world(bridge):
    return World(bridge, *bridge.call(_new_account(bridge.services.simulator.state, "shapes")))


@pytest.mark.parametrize("action", sorted(mappings.ACTIONS))
def test_response_fits_the_output_shape(world, action):
    if action not in REQUESTS:
        pytest.fail(f"{action} is mapped but has no entry in REQUESTS of {__name__}: add a minimal valid request")
    call = REQUESTS[action]
    parsed, (_, status, headers, body) = world.call(action, call.params(world))
    assert status == 200
    operation = models().operation(action)
    problems = shape_problems(body, operation, headers.get("x-amzn-RequestId", ""))
    assert not problems, "\n".join([f"{action} answered:", body.decode(), *problems])
    if call.nonempty:
        assert parsed.get(call.nonempty), f"{action} returned no {call.nonempty}; the request should produce some"


def _takes_dry_run(action: str) -> bool:
    return "DryRun" in (models().operation(action).input_shape.members if models().operation(action).input_shape else {})


@pytest.mark.parametrize("action", sorted(a for a in mappings.ACTIONS if _takes_dry_run(a)))
def test_dry_run_answers_dry_run_operation_when_the_call_would_succeed(world, action):
    """AWS: DryRunOperation (HTTP 412) exactly when the request would have succeeded."""
    from botocore.exceptions import ClientError

    params = REQUESTS[action].params(world)
    with pytest.raises(ClientError) as caught:
        world.call(action, {**params, "DryRun": True})
    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("DryRunOperation", 412)


def test_requests_name_only_mapped_actions():
    assert sorted(set(REQUESTS) - set(mappings.ACTIONS)) == []


# --- the validator can fail ----------------------------------------------------------------

def _doc(inner: str, root: str = "DescribeInstanceTypesResponse", namespace: str = EC2_NAMESPACE) -> bytes:
    ns = namespace.format(version=EC2_VERSION)
    head = f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{ns}"><requestId>r-1</requestId>'
    return f"{head}{inner}</{root}>".encode()


TYPE = "<instanceTypeSet><item><instanceType>t2.micro</instanceType>{}</item></instanceTypeSet>"
TOO_BIG = 2**32
BROKEN = {
    "unknown element": (TYPE.format("<colour>blue</colour>"), "has no such element"),
    "integer": (TYPE.format("<vCpuInfo><defaultVCpus>two</defaultVCpus></vCpuInfo>"), "is not of type integer"),
    "integer range": (TYPE.format(f"<vCpuInfo><defaultVCpus>{TOO_BIG}</defaultVCpus></vCpuInfo>"),
                      "is not of type integer"),
    "boolean": (TYPE.format("<bareMetal>True</bareMetal>"), "is not true or false"),
    "double": (TYPE.format("<processorInfo><sustainedClockSpeedInGhz>2,5</sustainedClockSpeedInGhz></processorInfo>"),
               "is not of type double"),
    "list item": ("<instanceTypeSet><member><instanceType>t2.micro</instanceType></member></instanceTypeSet>",
                  "expected <item>"),
    "repeated": ("<nextToken>a</nextToken><nextToken>b</nextToken>", "more than once"),
    "nested namespace": ('<nextToken xmlns="http://ec2.amazonaws.com/doc/2016-11-15">a</nextToken>', "namespace"),
    "stray text": (TYPE.format("<vCpuInfo>4<defaultVCpus>4</defaultVCpus></vCpuInfo>"), "unexpected text"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_validator_catches(case):
    inner, expected = BROKEN[case]
    operation = models().operation("DescribeInstanceTypes")
    problems = shape_problems(_doc(inner), operation, "r-1")
    assert any(expected in problem for problem in problems), problems


def test_the_validator_checks_the_envelope():
    operation = models().operation("DescribeInstanceTypes")
    good = _doc(TYPE.format("<vCpuInfo><defaultVCpus>4</defaultVCpus></vCpuInfo><bareMetal>false</bareMetal>"))
    assert shape_problems(good, operation, "r-1") == []
    assert any("requestId" in p for p in shape_problems(good, operation, "r-2"))
    no_slash = _doc("", namespace="http://ec2.amazonaws.com/doc/{version}")
    assert any("namespace" in p for p in shape_problems(no_slash, operation, "r-1"))
    wrong_root = _doc("", root="DescribeImagesResponse")
    assert any("root element" in p for p in shape_problems(wrong_root, operation, "r-1"))


def test_the_validator_checks_timestamps_and_boolean_actions():
    operation = models().operation("DescribeKeyPairs")
    item = "<keySet><item><keyName>k</keyName><createTime>{}</createTime></item></keySet>"
    assert shape_problems(_doc(item.format("2026-11-22T01:02:03.000Z"), "DescribeKeyPairsResponse"),
                          operation, "r-1") == []
    for bad in ("2026-11-22 01:02:03", "2026-11-22T01:02:03Z", "2026-13-22T01:02:03.000Z"):
        problems = shape_problems(_doc(item.format(bad), "DescribeKeyPairsResponse"), operation, "r-1")
        assert any("ISO 8601" in p for p in problems), (bad, problems)
    boolean_action = models().operation("CreateTags")
    assert shape_problems(_doc("<return>true</return>", "CreateTagsResponse"), boolean_action, "r-1") == []
    problems = shape_problems(_doc("<return>yes</return><extra/>", "CreateTagsResponse"), boolean_action, "r-1")
    assert len(problems) == 2, problems


def test_the_validator_checks_sts_documents():
    operation = models().operation("GetCallerIdentity")
    ns = operation.service_model.metadata["xmlNamespace"]
    good = (f'<GetCallerIdentityResponse xmlns="{ns}"><GetCallerIdentityResult><Account>123456789012</Account>'
            f"</GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
            f"</GetCallerIdentityResponse>").encode()
    assert shape_problems(good, operation, "r-1") == []
    assert shape_problems(good.replace(b"<Account>", b"<requestId>r-1</requestId><Account>"), operation, "r-1")
    assert shape_problems(good, operation, "r-9")
