"""Images end to end: DescribeImages, DescribeImageAttribute, ModifyImageAttribute and
ResetImageAttribute through boto3 (and the aws cli) on CloudStack templates.

Each test module run creates two fresh CloudStack accounts in the simulator (an image owner
and a stranger) with their own API keys, which work as EC2 keys through auto-enrollment, and
seeds the owner's templates straight into the simulator state. Everything the tests assert
on is owned by these accounts, so other modules sharing the session's bridge are unaffected.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import botocore.exceptions
import pytest

from cloudstack_sim.seed import USER_TYPE, add_account, add_user
from cloudstack_sim.spec import COMMANDS
from ec2bridge.config import DEMO_CREDENTIALS
from ec2bridge.ids import owner_id
from mappings.images import (architecture, block_device_mappings, boot_mode, collapse, hypervisor, image_state,
                             state_reason, virtualization_type)
from tests.bridge_server import REGION

GIB = 1024 ** 3
MISSING_AMI = "ami-0123456789abcdef0"


def _code(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


class World:
    """The simulator state, touched only on the bridge's event loop."""

    def __init__(self, bridge):
        self.bridge = bridge
        self.state = bridge.services.simulator.state

    def run(self, function, *args, **kwargs):
        return self.bridge.run(function, *args, **kwargs)

    def account(self, prefix: str) -> tuple[dict, tuple[str, str]]:
        def create():
            root = next(d for d in self.state.store("domain") if d["name"] == "ROOT")
            account = add_account(self.state, f"{prefix}-{uuid.uuid4().hex[:8]}", USER_TYPE, root["id"])
            user = add_user(self.state, account, account["name"])
            return account, (user["apikey"], user["secretkey"])
        return self.run(create)

    def template(self, account: dict, name: str, *, os_name: str = "Ubuntu 22.04 LTS", **fields) -> dict:
        def create():
            zone = next(iter(self.state.store("zone")))
            os_type = next(o for o in self.state.store("os_type") if o["name"] == os_name)
            record = {"name": name, "displaytext": f"{name} built for tests", "ispublic": False,
                      "isfeatured": False, "passwordenabled": False, "format": "QCOW2", "hypervisor": "KVM",
                      "ostype_id": os_type["id"], "size": 3 * GIB + 1, "account_id": account["id"],
                      "templatetype": "USER", "zone_ids": [zone["id"]], "isready": True, "bootable": True,
                      "isextractable": False, "sshkeyenabled": False, "permitted_accounts": [],
                      "crosszones": False, "url": None, **fields}
            return self.state.add("template", record)
        return self.run(create)

    def owner_id(self, account: dict) -> str:
        return owner_id(f"{account['domain_id']}/{account['name']}")

    def cloudstack(self, keys: tuple[str, str], command: str, **params) -> dict:
        services = self.bridge.services
        return self.bridge.call(services.cloudstack.run(keys, command, params))


@pytest.fixture(scope="module")
def world(bridge):
    return World(bridge)


@pytest.fixture(scope="module")
def owner(world, bridge):
    account, keys = world.account("img-owner")
    return account, keys, bridge.client(credentials=keys)


@pytest.fixture(scope="module")
def stranger(world, bridge):
    account, keys = world.account("img-stranger")
    return account, keys, bridge.client(credentials=keys)


@pytest.fixture(scope="module")
def images(world, owner):
    """The owner's templates by role, as EC2 images (described once)."""
    account, _, client = owner
    world.template(account, "linux-ready")
    world.template(account, "linux-pending", isready=False)
    world.template(account, "windows-private", os_name="Windows Server 2022 (64-bit)", size=40 * GIB)
    described = client.describe_images(Owners=["self"])["Images"]
    return {image["Name"]: image for image in described}


def _names(response: dict) -> set[str]:
    return {image["Name"] for image in response["Images"]}


# --- DescribeImages ------------------------------------------------------------------------

def test_featured_templates_are_amazon_images(ec2):
    featured = ec2.describe_images(Owners=["amazon"])["Images"]
    by_name = {image["Name"]: image for image in featured}
    assert {"Ubuntu 22.04 LTS", "Debian 12", "Windows Server 2022"} <= set(by_name)
    ubuntu = by_name["Ubuntu 22.04 LTS"]
    assert ubuntu["ImageId"].startswith("ami-") and len(ubuntu["ImageId"]) == 21
    assert ubuntu["State"] == "available" and ubuntu["Public"] is True
    assert ubuntu["ImageOwnerAlias"] == "amazon" and len(ubuntu["OwnerId"]) == 12
    assert ubuntu["Description"] == "Ubuntu 22.04 LTS (Jammy) cloud image"
    assert ubuntu["ImageLocation"] == "http://images.sim.local/ubuntu-22.04-lts.qcow2"
    assert (ubuntu["Architecture"], ubuntu["ImageType"], ubuntu["VirtualizationType"]) == ("x86_64", "machine", "hvm")
    assert (ubuntu["RootDeviceType"], ubuntu["RootDeviceName"]) == ("ebs", "/dev/sda1")
    assert ubuntu["BlockDeviceMappings"] == [{"DeviceName": "/dev/sda1", "Ebs": {
        "DeleteOnTermination": True, "VolumeSize": 10, "VolumeType": "standard", "Encrypted": False}}]
    assert ubuntu["PlatformDetails"] == "Linux/UNIX" and "Platform" not in ubuntu
    assert ubuntu["Hypervisor"] == "xen" and ubuntu["EnaSupport"] is False and ubuntu["BootMode"] == "legacy-bios"
    assert ubuntu["CreationDate"].endswith(".000Z") and ubuntu["Tags"] == []
    windows = by_name["Windows Server 2022"]
    assert windows["Platform"] == "windows" and windows["PlatformDetails"] == "Windows"
    assert windows["UsageOperation"] == "RunInstances:0002"


def test_default_listing_shows_own_and_public_images(images, owner):
    _, _, client = owner
    everything = _names(client.describe_images())
    assert {"linux-ready", "linux-pending", "windows-private", "Ubuntu 22.04 LTS"} <= everything


def test_own_images_in_every_state(images, world, owner):
    account, _, _ = owner
    ready, pending = images["linux-ready"], images["linux-pending"]
    assert ready["State"] == "available" and pending["State"] == "pending"
    assert ready["Public"] is False and "ImageOwnerAlias" not in ready
    assert ready["OwnerId"] == pending["OwnerId"] == world.owner_id(account)
    assert ready["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 4  # 3 GiB and a byte, rounded up
    assert "VolumeSize" not in pending["BlockDeviceMappings"][0]["Ebs"]  # size unknown until downloaded
    assert ready["ImageLocation"] == f"{world.owner_id(account)}/linux-ready"
    assert images["windows-private"]["Platform"] == "windows"


def test_one_image_per_template_across_zones(world, owner):
    account, _, client = owner
    zone = world.run(lambda: next(iter(world.state.store("zone")))["id"])
    # A second zone only this template knows of, so other tests' zone listings do not change.
    world.template(account, "two-zones", zone_ids=[zone, str(uuid.uuid4())])
    found = client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["two-zones"]}])["Images"]
    assert len(found) == 1 and found[0]["State"] == "available"


def test_image_ids_select_and_report_unknown_ones(images, owner):
    _, _, client = owner
    wanted = [images["linux-ready"]["ImageId"], images["linux-pending"]["ImageId"]]
    assert {i["ImageId"] for i in client.describe_images(ImageIds=wanted)["Images"]} == set(wanted)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_images(ImageIds=[wanted[0], MISSING_AMI])
    assert _code(error) == "InvalidAMIID.NotFound" and MISSING_AMI in str(error.value)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_images(ImageIds=["ami-nothex"])
    assert _code(error) == "InvalidAMIID.Malformed"
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_images(ImageIds=["vol-0123456789abcdef0"])
    assert _code(error) == "InvalidAMIID.Malformed"


def test_private_images_of_other_accounts_are_invisible(images, stranger):
    _, _, client = stranger
    private_id = images["linux-ready"]["ImageId"]
    assert private_id not in {i["ImageId"] for i in client.describe_images()["Images"]}
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_images(ImageIds=[private_id])
    assert _code(error) == "InvalidAMIID.NotFound"


FILTER_CASES = [  # (filter, values matching linux-ready, values not matching it)
    ("architecture", ["x86_64"], ["arm64"]),
    ("block-device-mapping.delete-on-termination", ["true"], ["false"]),
    ("block-device-mapping.device-name", ["/dev/sda1"], ["/dev/xvda"]),
    ("block-device-mapping.volume-size", ["4"], ["3"]),
    ("block-device-mapping.volume-type", ["standard"], ["gp3"]),
    ("block-device-mapping.encrypted", ["false"], ["true"]),
    ("boot-mode", ["legacy-bios"], ["uefi"]),
    ("creation-date", ["20*T*.000Z"], ["1999-*"]),
    ("description", ["linux-ready built *"], ["*windows*"]),
    ("ena-support", ["false"], ["true"]),
    ("hypervisor", ["xen"], ["ovm"]),
    ("image-type", ["machine"], ["kernel"]),
    ("is-public", ["false"], ["true"]),
    ("manifest-location", ["*/linux-ready"], ["http*"]),
    ("name", ["linux-r?ady"], ["linux-pending"]),
    ("platform-details", ["Linux/UNIX"], ["Windows"]),
    ("root-device-name", ["/dev/sda1"], ["/dev/sdb"]),
    ("root-device-type", ["ebs"], ["instance-store"]),
    ("state", ["available"], ["pending", "failed"]),
    ("virtualization-type", ["hvm"], ["paravirtual"]),
]


@pytest.mark.parametrize("name, matching, other", FILTER_CASES, ids=[case[0] for case in FILTER_CASES])
def test_filters(images, owner, name, matching, other):
    _, _, client = owner

    def names(values):
        return _names(client.describe_images(Owners=["self"], Filters=[{"Name": name, "Values": values}]))
    assert "linux-ready" in names(matching)
    assert "linux-ready" not in names(other)


def test_id_owner_and_platform_filters(images, world, owner):
    account, _, client = owner
    ready = images["linux-ready"]
    by_id = client.describe_images(Filters=[{"Name": "image-id", "Values": [ready["ImageId"]]}])["Images"]
    assert [i["Name"] for i in by_id] == ["linux-ready"]
    owned = _names(client.describe_images(Filters=[{"Name": "owner-id", "Values": [world.owner_id(account)]}]))
    assert {"linux-ready", "linux-pending", "windows-private"} <= owned and "Debian 12" not in owned
    windows = _names(client.describe_images(Filters=[{"Name": "platform", "Values": ["windows"]}]))
    assert "windows-private" in windows and "linux-ready" not in windows
    amazon = _names(client.describe_images(Filters=[{"Name": "owner-alias", "Values": ["amazon"]}]))
    assert "Debian 12" in amazon and "linux-ready" not in amazon


def test_unknown_filter_is_refused(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.describe_images(Filters=[{"Name": "flavour", "Values": ["x"]}])
    assert _code(error) == "InvalidParameterValue"


def test_tags_on_images(images, world, owner):
    _, keys, client = owner
    image = images["windows-private"]
    template_id = world.run(lambda: next(t["id"] for t in world.state.store("template")
                                         if t["name"] == "windows-private"))
    world.cloudstack(keys, "createTags", resourcetype="Template", resourceids=template_id,
                     **{"tags[0].key": "team", "tags[0].value": "platform"})
    [tagged] = client.describe_images(ImageIds=[image["ImageId"]])["Images"]
    assert tagged["Tags"] == [{"Key": "team", "Value": "platform"}]
    for flt in ({"Name": "tag:team", "Values": ["platform"]}, {"Name": "tag:team", "Values": ["plat*"]},
                {"Name": "tag-key", "Values": ["team"]}, {"Name": "tag-value", "Values": ["platform"]}):
        assert _names(client.describe_images(Owners=["self"], Filters=[flt])) == {"windows-private"}
    assert not client.describe_images(Owners=["self"], Filters=[{"Name": "tag:team", "Values": ["other"]}])["Images"]


def test_paging_with_a_paginator(world, bridge):
    account, keys = world.account("img-pager")
    for number in range(12):
        world.template(account, f"page-{number:02d}")
    client = bridge.client(credentials=keys)
    pages = list(client.get_paginator("describe_images").paginate(Owners=["self"], PaginationConfig={"PageSize": 5}))
    assert [len(page["Images"]) for page in pages] == [5, 5, 2]
    paged = [image["ImageId"] for page in pages for image in page["Images"]]
    assert len(set(paged)) == 12
    assert set(paged) == {i["ImageId"] for i in client.describe_images(Owners=["self"])["Images"]}
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_images(MaxResults=4)
    assert _code(error) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_images(MaxResults=5, ImageIds=[paged[0]])
    assert _code(error) == "InvalidParameterCombination"


def test_dry_run(images, owner):
    _, _, client = owner
    image_id = images["linux-ready"]["ImageId"]
    for call in (lambda: client.describe_images(DryRun=True),
                 lambda: client.describe_image_attribute(ImageId=image_id, Attribute="description", DryRun=True),
                 lambda: client.modify_image_attribute(ImageId=image_id, DryRun=True,
                                                       LaunchPermission={"Add": [{"Group": "all"}]}),
                 lambda: client.reset_image_attribute(ImageId=image_id, Attribute="launchPermission", DryRun=True)):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            call()
        assert _code(error) == "DryRunOperation"
    assert client.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is False  # nothing changed
    with pytest.raises(botocore.exceptions.ClientError) as error:  # a failing request fails, dry run or not
        client.modify_image_attribute(ImageId=MISSING_AMI, DryRun=True, LaunchPermission={"Add": [{"Group": "all"}]})
    assert _code(error) == "InvalidAMIID.NotFound"


# --- Owners / ExecutableBy ---------------------------------------------------------------------

def test_owners_scopes(images, world, owner, stranger):
    owner_account, _, owner_client = owner
    _, _, stranger_client = stranger
    amazon = owner_client.describe_images(Owners=["amazon"])["Images"]
    assert amazon and all(image.get("ImageOwnerAlias") == "amazon" for image in amazon)
    assert not {"linux-ready", "windows-private"} & {image["Name"] for image in amazon}
    by_account = _names(owner_client.describe_images(Owners=[world.owner_id(owner_account)]))
    assert {"linux-ready", "linux-pending", "windows-private"} <= by_account and "Debian 12" not in by_account
    assert {"linux-ready", "Debian 12"} <= _names(owner_client.describe_images(Owners=["self", "amazon"]))
    assert not stranger_client.describe_images(Owners=[world.owner_id(owner_account)])["Images"]
    assert not owner_client.describe_images(Owners=["aws-marketplace"])["Images"]
    for bad in ({"Owners": ["somebody"]}, {"ExecutableUsers": ["12345"]}):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            owner_client.describe_images(**bad)
        assert _code(error) == "InvalidUserID.Malformed"


def test_executable_by_scopes(world, owner, stranger):
    owner_account, _, owner_client = owner
    stranger_account, _, stranger_client = stranger
    world.template(owner_account, "shared-with-stranger", permitted_accounts=[stranger_account["name"]])
    world.template(owner_account, "public-by-owner", ispublic=True)
    stranger_id, owner_account_id = world.owner_id(stranger_account), world.owner_id(owner_account)

    shared_with_me = _names(stranger_client.describe_images(ExecutableUsers=["self"]))
    assert "shared-with-stranger" in shared_with_me and "public-by-owner" not in shared_with_me
    assert shared_with_me == _names(stranger_client.describe_images(ExecutableUsers=[stranger_id]))
    assert {"shared-with-stranger", "public-by-owner"} <= _names(
        stranger_client.describe_images(Owners=[owner_account_id]))
    public = _names(stranger_client.describe_images(ExecutableUsers=["all"]))
    assert {"public-by-owner", "Debian 12"} <= public and "shared-with-stranger" not in public
    granted = _names(owner_client.describe_images(ExecutableUsers=[stranger_id]))
    assert "shared-with-stranger" in granted and "public-by-owner" not in granted and "linux-ready" not in granted
    assert _names(stranger_client.describe_images(Owners=[owner_account_id], ExecutableUsers=["self"])) == {
        "shared-with-stranger"}


def test_an_image_shared_with_the_caller_by_id(world, owner, stranger):
    owner_account, _, owner_client = owner
    stranger_account, _, stranger_client = stranger
    world.template(owner_account, "shared-by-id", permitted_accounts=[stranger_account["name"]])
    [image] = owner_client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["shared-by-id"]}])[
        "Images"]
    image_id = image["ImageId"]
    [seen] = stranger_client.describe_images(ImageIds=[image_id])["Images"]
    assert seen["OwnerId"] == world.owner_id(owner_account)
    assert _names(stranger_client.describe_images(ImageIds=[image_id], ExecutableUsers=["self"])) == {"shared-by-id"}
    stranger_id = world.owner_id(stranger_account)
    assert _names(owner_client.describe_images(ImageIds=[image_id], ExecutableUsers=[stranger_id])) == {
        "shared-by-id"}
    described = stranger_client.describe_image_attribute(ImageId=image_id, Attribute="description")
    assert described["Description"] == {"Value": "shared-by-id built for tests"}
    with pytest.raises(botocore.exceptions.ClientError) as error:  # visible and launchable, but not its own
        stranger_client.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert _code(error) == "AuthFailure"
    permissions = owner_client.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert permissions["LaunchPermissions"] == [{"UserId": stranger_id}]  # CloudStack also names the owner


# --- image attributes ---------------------------------------------------------------------------

def test_describe_image_attribute(images, owner):
    _, _, client = owner
    image_id = images["linux-ready"]["ImageId"]

    def attribute(name):
        answer = client.describe_image_attribute(ImageId=image_id, Attribute=name)
        assert answer["ImageId"] == image_id
        return answer
    assert attribute("description")["Description"] == {"Value": "linux-ready built for tests"}
    assert attribute("blockDeviceMapping")["BlockDeviceMappings"] == images["linux-ready"]["BlockDeviceMappings"]
    assert attribute("bootMode")["BootMode"] == {"Value": "legacy-bios"}
    assert attribute("kernel")["KernelId"] == {} and attribute("ramdisk")["RamdiskId"] == {}
    assert attribute("launchPermission")["LaunchPermissions"] == []
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_image_attribute(ImageId=image_id, Attribute="colour")
    assert _code(error) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.describe_image_attribute(ImageId=MISSING_AMI, Attribute="description")
    assert _code(error) == "InvalidAMIID.NotFound"


def test_launch_permissions_of_other_accounts_images_are_not_readable(ec2):
    debian = ec2.describe_images(Filters=[{"Name": "name", "Values": ["Debian 12"]}])["Images"][0]
    assert ec2.describe_image_attribute(ImageId=debian["ImageId"], Attribute="description")["Description"]
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.describe_image_attribute(ImageId=debian["ImageId"], Attribute="launchPermission")
    assert _code(error) == "AuthFailure"


def test_share_with_an_account_and_revoke(world, owner, stranger):
    owner_account, _, owner_client = owner
    stranger_account, _, stranger_client = stranger
    world.template(owner_account, "to-share")
    [image] = owner_client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["to-share"]}])["Images"]
    stranger_id = world.owner_id(stranger_account)

    owner_client.modify_image_attribute(ImageId=image["ImageId"], LaunchPermission={"Add": [{"UserId": stranger_id}]})
    permissions = owner_client.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")
    assert permissions["LaunchPermissions"] == [{"UserId": stranger_id}]
    [seen] = stranger_client.describe_images(ImageIds=[image["ImageId"]])["Images"]
    assert seen["OwnerId"] == world.owner_id(owner_account) and seen["Public"] is False
    assert "to-share" in _names(stranger_client.describe_images(ExecutableUsers=["self"]))

    # The boto 2 style: Attribute + OperationType + UserId.N
    owner_client.modify_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission",
                                        OperationType="remove", UserIds=[stranger_id])
    assert not owner_client.describe_image_attribute(
        ImageId=image["ImageId"], Attribute="launchPermission")["LaunchPermissions"]
    with pytest.raises(botocore.exceptions.ClientError) as error:
        stranger_client.describe_images(ImageIds=[image["ImageId"]])
    assert _code(error) == "InvalidAMIID.NotFound"


def test_make_public_and_reset(world, owner, stranger):
    owner_account, _, owner_client = owner
    stranger_account, _, stranger_client = stranger
    world.template(owner_account, "to-publish")
    [image] = owner_client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["to-publish"]}])["Images"]
    image_id, stranger_id = image["ImageId"], world.owner_id(stranger_account)

    owner_client.modify_image_attribute(ImageId=image_id, LaunchPermission={
        "Add": [{"Group": "all"}, {"UserId": stranger_id}]})
    permissions = owner_client.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert permissions["LaunchPermissions"] == [{"Group": "all"}, {"UserId": stranger_id}]
    assert stranger_client.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is True
    assert "to-publish" in _names(stranger_client.describe_images(ExecutableUsers=["all"]))

    # A public image of someone else is visible, but it is not the stranger's to change.
    with pytest.raises(botocore.exceptions.ClientError) as error:
        stranger_client.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"Group": "all"}]})
    assert _code(error) == "AuthFailure"
    with pytest.raises(botocore.exceptions.ClientError) as error:
        stranger_client.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert _code(error) == "AuthFailure"

    owner_client.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert owner_client.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    assert owner_client.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is False
    with pytest.raises(botocore.exceptions.ClientError) as error:
        stranger_client.describe_images(ImageIds=[image_id])
    assert _code(error) == "InvalidAMIID.NotFound"


def test_private_images_of_others_cannot_be_modified(images, stranger):
    _, _, client = stranger
    image_id = images["linux-ready"]["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})
    assert _code(error) == "InvalidAMIID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert _code(error) == "InvalidAMIID.NotFound"


@pytest.mark.parametrize("arguments, code", [
    ({"LaunchPermission": {"Add": [{"Group": "everyone"}]}}, "InvalidAMIAttributeItemValue"),
    ({"LaunchPermission": {"Add": [{"UserId": "12345678901A"}]}}, "InvalidAMIAttributeItemValue"),
    ({"LaunchPermission": {"Add": [{"UserId": "000000000000"}]}}, "InvalidAMIAttributeItemValue"),  # no such account
    ({"Attribute": "launchPermission", "UserIds": ["123456789012"]}, "MissingParameter"),  # no OperationType
    ({"LaunchPermission": {"Add": [{"Group": "all"}]}, "Description": {"Value": "x"}}, "InvalidParameterCombination"),
    ({"Attribute": "kernel", "Value": "aki-1"}, "InvalidParameterValue"),
    ({"LaunchPermission": {"Add": [{"OrganizationArn": "arn:aws:organizations::1:organization/o-1"}]}},
     "UnsupportedOperation"),
    ({}, "MissingParameter"),
], ids=["group", "user-format", "user-unknown", "operation-missing", "two-attributes", "kernel", "organization",
        "nothing"])
def test_modify_refuses_bad_requests(images, owner, arguments, code):
    _, _, client = owner
    image_id = images["linux-ready"]["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.modify_image_attribute(ImageId=image_id, **arguments)
    assert _code(error) == code
    assert client.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is False


def test_modify_description(images, owner):
    _, _, client = owner
    image_id = images["windows-private"]["ImageId"]
    if "updateTemplate" in COMMANDS:
        client.modify_image_attribute(ImageId=image_id, Description={"Value": "new words"})
        assert client.describe_images(ImageIds=[image_id])["Images"][0]["Description"] == "new words"
    else:  # the simulator lacks CloudStack's updateTemplate: a clear EC2 error, not an InternalError
        with pytest.raises(botocore.exceptions.ClientError) as error:
            client.modify_image_attribute(ImageId=image_id, Attribute="description", Value="new words")
        assert _code(error) == "UnsupportedOperation"


def test_aws_cli_describe_images(bridge):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": DEMO_CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": DEMO_CREDENTIALS[1],
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    aws = os.path.join(os.path.dirname(os.sys.executable), "aws")
    result = subprocess.run([aws, "--endpoint-url", bridge.url, "ec2", "describe-images", "--owners", "amazon",
                             "--query", "Images[].Name", "--output", "text"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Ubuntu 22.04 LTS" in result.stdout and "Debian 12" in result.stdout


# --- conversions the simulator cannot produce ------------------------------------------------------

def test_zone_states_collapse_to_the_best_one():
    downloading = {"id": "t1", "zoneid": "z1", "isready": False, "status": "45% Downloaded"}
    failed = {"id": "t1", "zoneid": "z2", "isready": False, "status": "Failed to download template",
              "url": "http://example.com/x.qcow2"}
    ready = {"id": "t1", "zoneid": "z3", "isready": True, "status": "Download Complete"}
    assert image_state(collapse([[failed, downloading, dict(failed, zoneid="z4")]])["t1"]) == "pending"
    assert image_state(collapse([[failed], [ready, downloading]])["t1"]) == "available"
    assert len(collapse([[failed], [failed, ready]])["t1"]) == 2  # each zone once, whichever listing had it
    template = collapse([[failed]])["t1"]
    assert image_state(template) == "failed"
    assert state_reason(template) == {"Code": "Client.InvalidManifest", "Message": "Failed to download template"}
    abandoned = {"id": "t2", "isready": False, "status": "", "downloaddetails": [{"downloadState": "ABANDONED"}]}
    assert image_state([abandoned]) == "failed"


def test_template_traits_from_cloudstack_fields():
    # Shapes of real listTemplates entries (CloudStack 4.x; arch and bits only on recent ones).
    assert architecture({"ostypename": "Windows Server 2003 Standard Edition(32-bit)"}) == "i386"
    assert architecture({"ostypename": "Ubuntu 22.04 LTS", "arch": "aarch64"}) == "arm64"
    assert architecture({"ostypename": "Ubuntu 10.04 (64-bit)"}) == "x86_64"
    assert hypervisor({"hypervisor": "Ovm3"}) == "ovm" and hypervisor({"hypervisor": "VMware"}) == "xen"
    assert virtualization_type({"hypervisor": "XenServer", "requireshvm": False}) == "paravirtual"
    assert virtualization_type({"hypervisor": "KVM", "requireshvm": False}) == "hvm"
    assert boot_mode({"details": {"UEFI": "SECURE"}}) == "uefi"
    assert block_device_mappings([{"size": 171798691840}])[0]["Ebs"]["VolumeSize"] == 160
