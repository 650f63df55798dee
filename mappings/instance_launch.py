"""RunInstances: validate everything first, deploy concurrently, answer with ``pending``.

1. **Validate** as AWS does, before anything is created: counts, instance type (a service
   offering by name or configured alias), image (template), zone, key pair, security groups,
   user data (base64, 16 KB raw), block device mappings, tags. The CloudStack lookups behind
   them run concurrently. DryRun answers here.
2. **ClientToken**: the reservation row with the token is written before deploying; a replay
   with the same parameters answers with that reservation (also after a restart: it is in the
   store), different parameters are ``IdempotentParameterMismatch``. A call that fails frees
   its token, so that the same request can be retried.
3. **Deploy** MaxCount VMs with ``deployVirtualMachine`` (submitted, not awaited), at most
   ``FAN_OUT`` at a time. The first refusal stops further submissions: AWS launches "the largest
   possible number of instances above MinCount". Fewer than MinCount: the launched VMs are
   destroyed and expunged and the call fails with the CloudStack-derived error.
4. **Record** the instances and the background task (see :mod:`mappings.instance_tasks`), tag
   the instances, and answer from one ``listVirtualMachines``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ec2bridge.backend_errors import translate
from ec2bridge.cloudstack import BackendUnavailable, CloudStackError
from ec2bridge.errors import EC2Error, invalid_value, missing_parameter
from ec2bridge.ids import owner_id
from ec2bridge.stores.instances import InstanceRow, InstanceStore, TokenInUse
from mappings import instance_view
from mappings.common import dry_run_checkpoint
from mappings.images import template_by_id
from mappings.instance_tags import launch_tags
from mappings.tags import create_cloudstack_tags
from mappings.instance_tasks import destroy, may_expunge, record_task, run_task
from mappings.instance_types import resolve_offering
from mappings.security_group_rules import group_not_found
from mappings.zones import invalid_zones, visible_zones

log = logging.getLogger(__name__)
FAN_OUT = 16
MAX_INSTANCES_PER_CALL = 1000
MAX_USER_DATA = 16 * 1024          # AWS: "User data is limited to 16 KB" (raw, before base64)
MAX_VOLUME_GB = 16 * 1024          # AWS: gp2/gp3 volumes up to 16 TiB
DEFAULT_INSTANCE_TYPE = "m1.small"  # AWS's documented default when InstanceType is absent
SHUTDOWN_BEHAVIOURS = ("stop", "terminate")
# CloudStack's ACCOUNT_RESOURCE_LIMIT_ERROR (532) and ResourceAllocationException (535), the
# exception ResourceLimitManagerImpl.checkResourceLimit throws: the account's quota.
LIMIT_CODES = (532, 535)
# Parameters describing things CloudStack cannot provide; refused rather than ignored.
UNSUPPORTED = ("LaunchTemplate", "NetworkInterfaces", "InstanceMarketOptions", "Ipv6AddressCount", "Ipv6Addresses",
               "ElasticGpuSpecification", "ElasticInferenceAccelerators", "LicenseSpecifications", "KernelId",
               "RamdiskId", "IamInstanceProfile", "CapacityReservationSpecification", "SecondaryInterfaces")
# Parameters that do not take part in ClientToken idempotency.
_NOT_HASHED = ("ClientToken", "DryRun")


@dataclass
class Plan:
    count: tuple[int, int]
    offering: dict
    template: dict
    zone: dict
    deploy: dict[str, Any]
    tags: dict[str, dict[str, str]]
    volumes: list[dict] = field(default_factory=list)
    disk_offering_id: str | None = None
    root_delete: bool = True
    attributes: dict[str, Any] = field(default_factory=dict)


# -- validation ----------------------------------------------------------------------------------
def check_counts(request: dict) -> tuple[int, int]:
    minimum, maximum = request.get("MinCount"), request.get("MaxCount")
    if minimum is None:
        raise missing_parameter("MinCount")
    if maximum is None:
        raise missing_parameter("MaxCount")
    if minimum < 1:
        raise EC2Error("InvalidParameterValue", f"Value ({minimum}) for parameter minCount is invalid. "
                                                "Expected a value greater than or equal to 1.")
    if maximum < minimum:
        raise EC2Error("InvalidParameterValue", f"Value ({maximum}) for parameter maxCount is invalid. "
                                                f"Expected a value greater than or equal to minCount ({minimum}).")
    if minimum > MAX_INSTANCES_PER_CALL:
        raise EC2Error("InstanceLimitExceeded", f"You have requested more instances ({minimum}) than this endpoint "
                                                f"launches in one call ({MAX_INSTANCES_PER_CALL}).")
    return minimum, min(maximum, MAX_INSTANCES_PER_CALL)


def check_unsupported(request: dict) -> None:
    for name in UNSUPPORTED:
        if request.get(name):
            raise EC2Error("UnsupportedOperation", f"The parameter {name} is not supported by this endpoint")
    if (request.get("Monitoring") or {}).get("Enabled"):
        raise EC2Error("UnsupportedOperation", "Detailed monitoring is not available on this cloud")
    tenancy = (request.get("Placement") or {}).get("Tenancy")
    if tenancy not in (None, "default"):
        raise EC2Error("UnsupportedOperation", f"The tenancy '{tenancy}' is not available on this cloud")


def check_user_data(text: str | None) -> str | None:
    """CloudStack takes user data base64-encoded, as EC2 receives it; AWS limits the raw data."""
    if text is None:
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise EC2Error("InvalidParameterValue", "Invalid BASE64 encoding of user data.") from None
    if len(raw) > MAX_USER_DATA:
        raise EC2Error("InvalidParameterValue", f"User data is limited to {MAX_USER_DATA} bytes")
    return base64.b64encode(raw).decode("ascii")


def check_attributes(request: dict) -> dict[str, Any]:
    behaviour = request.get("InstanceInitiatedShutdownBehavior") or "stop"
    if behaviour not in SHUTDOWN_BEHAVIOURS:
        raise invalid_value("InstanceInitiatedShutdownBehavior", behaviour, "expected stop or terminate")
    return {"disable_api_termination": bool(request.get("DisableApiTermination")),
            "disable_api_stop": bool(request.get("DisableApiStop")), "shutdown_behavior": behaviour}


def _bdm_error(message: str) -> EC2Error:
    return EC2Error("InvalidBlockDeviceMapping", message)


def check_block_devices(mappings: list[dict] | None, template: dict) -> tuple[int | None, bool, list[dict]]:
    """(root size in GB or None, root DeleteOnTermination, extra volumes) from BlockDeviceMappings."""
    root_size, root_delete, volumes, seen = None, True, [], set()
    template_gb = -(-int(template.get("size") or 0) // 1024 ** 3)
    for mapping in mappings or ():
        name = mapping.get("DeviceName")
        if not name:
            raise missing_parameter("BlockDeviceMapping.N.DeviceName")
        if name in seen:
            raise _bdm_error(f"The device name {name} is used more than once")
        seen.add(name)
        ebs = mapping.get("Ebs")
        if mapping.get("NoDevice") is not None or mapping.get("VirtualName") or not ebs:
            continue  # suppressed devices and instance-store (ephemeral) ones: CloudStack has no instance store
        device = instance_view.device_id(name)
        if device is None:
            raise _bdm_error(f"Invalid device name {name}")
        size = ebs.get("VolumeSize")
        if size is not None and not 1 <= size <= MAX_VOLUME_GB:
            raise _bdm_error(f"Volume size {size} for device {name} must be between 1 and {MAX_VOLUME_GB} GiB")
        if device == 0:
            if ebs.get("DeleteOnTermination") is False:
                raise EC2Error("UnsupportedOperation", "CloudStack deletes an instance's root volume with the "
                                                       "instance: DeleteOnTermination must be true for the root device")
            if ebs.get("SnapshotId"):
                raise EC2Error("UnsupportedOperation", "The root volume comes from the image; it cannot be "
                                                       "replaced by a snapshot")
            if size is not None and size < template_gb:
                raise _bdm_error(f"Volume of size {size}GB is smaller than the image, expect size >= {template_gb}GB")
            root_size = size
            continue
        if device == 3:
            raise _bdm_error(f"The device name {name} is reserved by CloudStack for the CD-ROM")
        if size is None and not ebs.get("SnapshotId"):
            raise _bdm_error(f"The device {name} has neither a volume size nor a snapshot")
        volumes.append({"device": instance_view.device_name(device), "size": size,
                        "snapshot": ebs.get("SnapshotId"),
                        "delete_on_termination": ebs.get("DeleteOnTermination", True)})
    return root_size, root_delete, volumes


# -- CloudStack lookups -----------------------------------------------------------------------------
async def find_offering(ctx, name: str | None) -> dict:
    wanted = name or DEFAULT_INSTANCE_TYPE
    offering = await resolve_offering(ctx, wanted)
    if offering is None:
        raise EC2Error("InvalidParameterValue", f"Invalid value '{wanted}' for InstanceType.")
    return offering


async def find_zone(ctx, name: str | None) -> dict:
    zones = await visible_zones(ctx)
    if name:
        zone = next((z for z in zones if z.get("name") == name), None)
        if zone is None:
            raise invalid_zones([name])
        return zone
    zone = next((z for z in zones if z.get("allocationstate", "Enabled") == "Enabled"), None)
    if zone is None:
        raise EC2Error("Unavailable", "No availability zone is enabled")
    return zone


async def find_template(ctx, image_id: str | None) -> list[dict]:
    """The image's template, one entry per zone: any the caller may launch, shared ones included."""
    if not image_id:
        raise missing_parameter("ImageId")
    return await template_by_id(ctx, image_id)


async def find_key(ctx, name: str | None) -> str | None:
    if not name:
        return None
    if not await ctx.cs_list("listSSHKeyPairs", name=name):
        raise EC2Error("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")
    return name


async def find_groups(ctx, names: list[str] | None, group_ids: list[str] | None) -> list[str]:
    if not names and not group_ids:
        return []
    groups = await ctx.cs_list("listSecurityGroups")
    by_name = {g["name"]: g["id"] for g in groups}
    known = set(by_name.values())
    uuids = []
    for name in names or ():
        if name not in by_name:
            raise group_not_found(name)
        uuids.append(by_name[name])
    for group_id in group_ids or ():
        try:
            uuid = (await ctx.services.ids.backend_id("sg", group_id)).backend_id
        except EC2Error as error:
            if error.code.endswith(".Malformed"):
                raise
            raise group_not_found(group_id) from None
        if uuid not in known:
            raise group_not_found(group_id)
        uuids.append(uuid)
    return list(dict.fromkeys(uuids))


async def find_custom_disk_offering(ctx, volumes: list[dict]) -> str | None:
    if not any(not v.get("snapshot_id") for v in volumes):
        return None
    offerings = await ctx.cs_list("listDiskOfferings")
    custom = next((o for o in offerings if o.get("iscustomized")), None)
    if custom is None:
        raise EC2Error("UnsupportedOperation", "This cloud has no custom-size disk offering for extra EBS volumes")
    return custom["id"]


async def resolve_snapshots(ctx, volumes: list[dict]) -> None:
    for volume in volumes:
        if volume.pop("snapshot"):
            volume["snapshot_id"] = (await ctx.services.ids.backend_id("snap", volume["snapshot"])).backend_id


async def plan_launch(ctx, request: dict) -> Plan:
    count = check_counts(request)
    check_unsupported(request)
    attributes = check_attributes(request)
    userdata = check_user_data(request.get("UserData"))
    tags = launch_tags(request.get("TagSpecifications"))
    if request.get("PrivateIpAddress") and count[1] > 1:
        raise EC2Error("InvalidParameterCombination", "Cannot specify a private IP address when launching more "
                                                      "than one instance")
    offering, zone, templates, key, groups = await asyncio.gather(
        find_offering(ctx, request.get("InstanceType")),
        find_zone(ctx, (request.get("Placement") or {}).get("AvailabilityZone")),
        find_template(ctx, request.get("ImageId")), find_key(ctx, request.get("KeyName")),
        find_groups(ctx, request.get("SecurityGroups"), request.get("SecurityGroupIds")))
    template = next((t for t in templates if t.get("zoneid") == zone["id"]), None)
    if template is None:
        raise EC2Error("InvalidAMIID.NotFound", f"The image id '[{request['ImageId']}]' is not available in "
                                                f"{zone['name']}")
    root_size, root_delete, volumes = check_block_devices(request.get("BlockDeviceMappings"), template)
    await resolve_snapshots(ctx, volumes)
    deploy = {"zoneid": zone["id"], "templateid": template["id"], "serviceofferingid": offering["id"],
              "keypair": key, "securitygroupids": groups or None, "userdata": userdata, "rootdisksize": root_size,
              "ipaddress": request.get("PrivateIpAddress")}
    if request.get("SubnetId"):
        deploy["networkids"] = (await ctx.services.ids.backend_id("subnet", request["SubnetId"])).backend_id
    name_tag = tags["instance"].get("Name")
    if name_tag:
        deploy["displayname"] = name_tag  # what CloudStack's UI shows, as the console shows Name
    return Plan(count=count, offering=offering, template=template, zone=zone,
                deploy={k: v for k, v in deploy.items() if v is not None}, tags=tags, volumes=volumes,
                disk_offering_id=await find_custom_disk_offering(ctx, volumes), root_delete=root_delete,
                attributes=attributes)


def params_hash(request: dict) -> str:
    relevant = {k: v for k, v in request.items() if k not in _NOT_HASHED}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


# -- the action ------------------------------------------------------------------------------------
async def run_instances(ctx, request: dict) -> dict:
    account = await ctx.account()
    owner = f"{account.domain_id}/{account.name}"
    store: InstanceStore = ctx.services.store(InstanceStore)
    token = request.get("ClientToken")
    if token is not None and len(token) > 64:
        raise invalid_value("ClientToken", token, "at most 64 ASCII characters")
    digest = params_hash(request)
    if token and not request.get("DryRun"):
        replay = await replayed(ctx, store, owner, token, digest)
        if replay:
            return replay
    plan = await plan_launch(ctx, request)
    dry_run_checkpoint(request)
    try:
        reservation_id = await store.create_reservation(owner, token or None, digest)
    except TokenInUse:  # a concurrent call with the same token won the race
        return await replayed(ctx, store, owner, token, digest) or {}
    try:
        return await launch(ctx, plan, owner, reservation_id, token or "")
    except BaseException:
        await store.drop_reservation(reservation_id)
        raise


async def replayed(ctx, store: InstanceStore, owner: str, token: str, digest: str) -> dict | None:
    reservation = await store.reservation_by_token(owner, token)
    if reservation is None:
        return None
    if reservation.params_hash != digest:
        raise EC2Error("IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with "
                                                      "arguments used in previous request(s).")
    rows = await store.in_reservation(reservation.reservation_id)
    return await reservation_output(ctx, reservation.reservation_id, owner, [row.vm_id for row in rows])


async def launch(ctx, plan: Plan, owner: str, reservation_id: str, token: str) -> dict:
    vm_jobs, errors = await deploy_all(ctx, plan)
    if len(vm_jobs) < plan.count[0]:
        await discard(ctx, vm_jobs)
        raise launch_error(errors[0] if errors else None, plan.count[0])
    store: InstanceStore = ctx.services.store(InstanceStore)
    ids = await ctx.services.ids.ec2_ids("i", [(vm["id"], owner) for vm in vm_jobs])
    rows = [InstanceRow(instance_id=ids[(vm["id"], owner)], vm_id=vm["id"], owner=owner, reservation_id=reservation_id,
                        launch_index=index, client_token=token, root_delete_on_termination=plan.root_delete,
                        **plan.attributes) for index, vm in enumerate(vm_jobs)]
    await store.add_instances(rows)
    task = await record_task(ctx, "launch", owner, {
        "instances": [{"instance_id": row.instance_id, "vm_id": row.vm_id, "job_id": vm["jobid"]}
                      for row, vm in zip(rows, vm_jobs)],
        "volumes": plan.volumes, "volume_tags": plan.tags["volume"], "zone_id": plan.zone["id"],
        "disk_offering_id": plan.disk_offering_id})
    try:
        await create_cloudstack_tags(ctx, "UserVm", [vm["id"] for vm in vm_jobs], plan.tags["instance"])
    except (CloudStackError, BackendUnavailable):
        # Launch tags are part of the launch on AWS: without them, nothing is launched.
        await ctx.services.store(InstanceStore).finish_task(task)
        await discard(ctx, vm_jobs)
        raise
    run_task(ctx, task)
    return await reservation_output(ctx, reservation_id, owner, [vm["id"] for vm in vm_jobs])


async def deploy_all(ctx, plan: Plan) -> tuple[list[dict], list[Exception]]:
    """Submit up to MaxCount deploys, FAN_OUT at a time; the first refusal stops the rest."""
    gate = asyncio.Semaphore(FAN_OUT)
    errors: list[Exception] = []
    client = ctx.services.cloudstack

    async def one() -> dict | None:
        async with gate:
            if errors:
                return None
            try:
                return await client.submit(ctx.creds, "deployVirtualMachine", plan.deploy)
            except (CloudStackError, BackendUnavailable) as error:
                errors.append(error)
                return None
    results = await asyncio.gather(*(one() for _ in range(plan.count[1])))
    return [r for r in results if r is not None], errors


def launch_error(error: Exception | None, minimum: int) -> EC2Error:
    if isinstance(error, CloudStackError) and error.code in LIMIT_CODES:
        # AWS's code for "your quota does not allow this many instances".
        return EC2Error("InstanceLimitExceeded", f"Your quota does not allow {minimum} more instance(s): {error.text}")
    if error is None:
        return EC2Error("InsufficientInstanceCapacity", "Not enough capacity to launch the requested instances")
    return translate(error, {"templateid": "ami"})


async def discard(ctx, vm_jobs: list[dict]) -> None:
    """Remove VMs of a launch that did not happen: let each deploy end, then destroy them (and
    expunge them when CloudStack lets the caller)."""
    expunge = await may_expunge(ctx)

    async def one(vm: dict) -> None:
        try:
            await ctx.services.cloudstack.poller.wait(ctx.creds, "deployVirtualMachine", vm["jobid"],
                                                      ctx.services.cloudstack.job_wait)
        except CloudStackError:
            pass  # a failed deploy leaves the VM in Error; it is destroyed all the same
        try:
            job_id = await destroy(ctx, vm["id"], [], expunge=expunge)
            await ctx.services.cloudstack.poller.wait(ctx.creds, "destroyVirtualMachine", job_id,
                                                      ctx.services.cloudstack.job_wait)
        except (CloudStackError, BackendUnavailable) as error:
            log.warning("could not remove VM %s of a failed launch: %s", vm["id"], error)
    await asyncio.gather(*(one(vm) for vm in vm_jobs))


async def reservation_output(ctx, reservation_id: str, owner: str, vm_ids: list[str]) -> dict:
    items = await instance_view.list_instances(ctx, vm_ids, with_volumes=False)
    listed = {item["VmId"] for item in items}
    items += [item for item in await instance_view.recent_tombstones(ctx, owner, listed) if item["VmId"] in vm_ids]
    items.sort(key=lambda item: item.get("AmiLaunchIndex", 0))
    return {"ReservationId": reservation_id, "OwnerId": owner_id(owner), "Groups": [],
            "Instances": [instance_view.public(item) for item in items]}
