"""EC2 instances on CloudStack virtual machines: the mapping records.

- **RunInstances**: :mod:`mappings.instance_launch` (validation, concurrent deploys, ClientToken)
  and :mod:`mappings.instance_tasks` (the deploy outcome, launch volumes, crash-safe work).
- **DescribeInstances / DescribeInstanceStatus**: the describe engine over instance items from
  :mod:`mappings.instance_view` (one bulk listing). DescribeInstances pages *instances* (AWS's
  MaxResults counts instances) and then groups each page into reservations: items are sorted
  by reservation id then launch index, so a reservation's instances stay together.
- **Start/Stop/Reboot/TerminateInstances, attributes, passwords, console**:
  :mod:`mappings.instance_actions`.
"""

from __future__ import annotations

from ec2bridge.describe import Paging
from ec2bridge.engine import describe
from ec2bridge.ids import not_found
from mappings import instance_actions as actions
from mappings import instance_view
from mappings.instance_launch import run_instances
from mappings.instance_tasks import resume_orphans
from mappings.records import Action, Describe, Selector

INSTANCE_FILTERS = {
    "instance-id": "InstanceId", "image-id": "ImageId", "instance-type": "InstanceType",
    "instance-state-name": "State.Name", "instance-state-code": "State.Code",
    "key-name": "KeyName", "availability-zone": "Placement.AvailabilityZone",
    "tenancy": "Placement.Tenancy", "placement-group-name": "Placement.GroupName",
    "private-ip-address": "PrivateIpAddress", "ip-address": "PublicIpAddress",
    "dns-name": "PublicDnsName", "private-dns-name": "PrivateDnsName",
    "reservation-id": "ReservationId", "owner-id": "OwnerId", "launch-time": "LaunchTime",
    "launch-index": "AmiLaunchIndex", "ami-launch-index": "AmiLaunchIndex", "client-token": "ClientToken",
    "group-id": "SecurityGroups.GroupId", "group-name": "SecurityGroups.GroupName",
    "instance.group-id": "SecurityGroups.GroupId", "instance.group-name": "SecurityGroups.GroupName",
    "architecture": "Architecture", "platform": "Platform", "platform-details": "PlatformDetails",
    "usage-operation": "UsageOperation", "hypervisor": "Hypervisor", "virtualization-type": "VirtualizationType",
    "root-device-type": "RootDeviceType", "root-device-name": "RootDeviceName",
    "block-device-mapping.device-name": "BlockDeviceMappings.DeviceName",
    "block-device-mapping.volume-id": "BlockDeviceMappings.Ebs.VolumeId",
    "block-device-mapping.status": "BlockDeviceMappings.Ebs.Status",
    "block-device-mapping.attach-time": "BlockDeviceMappings.Ebs.AttachTime",
    "block-device-mapping.delete-on-termination": "BlockDeviceMappings.Ebs.DeleteOnTermination",
    "monitoring-state": "Monitoring.State", "state-reason-code": "StateReason.Code",
    "state-reason-message": "StateReason.Message", "reason": "StateTransitionReason",
    "source-dest-check": "SourceDestCheck", "ebs-optimized": "EbsOptimized", "ena-support": "EnaSupport",
    "vpc-id": "VpcId", "subnet-id": "SubnetId", "boot-mode": "BootMode",
    "cpu-options.core-count": "CpuOptions.CoreCount", "cpu-options.threads-per-core": "CpuOptions.ThreadsPerCore",
    "metadata-options.http-tokens": "MetadataOptions.HttpTokens",
    "metadata-options.http-endpoint": "MetadataOptions.HttpEndpoint",
    "metadata-options.http-put-response-hop-limit": "MetadataOptions.HttpPutResponseHopLimit",
    "metadata-options.instance-metadata-tags": "MetadataOptions.InstanceMetadataTags",
    "product-code": "ProductCodes.ProductCodeId", "instance-lifecycle": "InstanceLifecycle",
    "spot-instance-request-id": "SpotInstanceRequestId", "kernel-id": "KernelId", "ramdisk-id": "RamdiskId",
}

STATUS_FILTERS = {
    "availability-zone": "AvailabilityZone", "instance-state-name": "InstanceState.Name",
    "instance-state-code": "InstanceState.Code", "instance-status.status": "InstanceStatus.Status",
    "instance-status.reachability": "InstanceStatus.Details.Status", "system-status.status": "SystemStatus.Status",
    "system-status.reachability": "SystemStatus.Details.Status", "event.code": "Events.Code",
    "event.description": "Events.Description", "event.instance-event-id": "Events.InstanceEventId",
    "event.not-after": "Events.NotAfter", "event.not-before": "Events.NotBefore",
}


def _not_found(ids: list[str]):
    return not_found("i", ids)


async def instance_items(ctx, request: dict) -> list[dict]:
    """Every instance the caller may see (narrowed to InstanceIds when given), with sort keys."""
    owner = await actions.caller_owner(ctx)
    await resume_orphans(ctx, owner)
    vm_ids = await actions.known_vm_ids(ctx, request.get("InstanceIds"))
    items = await instance_view.list_instances(ctx, vm_ids, reuse_answer=True)
    gone = await instance_view.recent_tombstones(ctx, owner, {item["VmId"] for item in items})
    items += [item for item in gone if vm_ids is None or item["VmId"] in vm_ids]
    if any(item["State"]["Name"] == "terminated" for item in items):
        ctx.answer_varies()  # it leaves the answer an hour after it ended, with no input changed
    return items


_SELECT_INSTANCES = (Selector("InstanceIds", "InstanceId", _not_found, kind="i"),)
INSTANCES = Describe(name="DescribeInstances", result_key="Instances", source=instance_items, sort_key="SortKey",
                     filters=INSTANCE_FILTERS, selectors=_SELECT_INSTANCES, paging=Paging(5, 1000))


async def describe_instances(ctx, request: dict) -> dict:
    page = await describe(INSTANCES, ctx, request)
    reservations: list[dict] = []
    for item in page["Instances"]:
        if not reservations or reservations[-1]["ReservationId"] != item["ReservationId"]:
            reservations.append({"ReservationId": item["ReservationId"], "OwnerId": item["OwnerId"],
                                 "Groups": [], "Instances": []})
        reservations[-1]["Instances"].append(instance_view.strip_private(item))  # the items are this call's own
    output = {"Reservations": reservations}
    if page.get("NextToken"):
        output["NextToken"] = page["NextToken"]
    return output


def _status(item: dict) -> dict:
    running = item["State"]["Name"] == "running"
    summary = ({"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]} if running
               else {"Status": "not-applicable"})
    return {"InstanceId": item["InstanceId"], "AvailabilityZone": item["Placement"]["AvailabilityZone"],
            "InstanceState": item["State"], "InstanceStatus": summary, "SystemStatus": summary, "Events": [],
            "VmId": item["VmId"]}


async def status_items(ctx, request: dict) -> list[dict]:
    return [_status(item) for item in await instance_items(ctx, request)]


STATUSES = Describe(name="DescribeInstanceStatus", result_key="InstanceStatuses", source=status_items,
                    sort_key="InstanceId", filters=STATUS_FILTERS, selectors=_SELECT_INSTANCES,
                    paging=Paging(5, 1000), taggable=False)


async def describe_instance_status(ctx, request: dict) -> dict:
    if not request.get("IncludeAllInstances"):
        # AWS: "By default, only running instances are described"; an extra AND'd filter keeps
        # the describe engine's selection, NotFound and paging semantics intact.
        running_only = {"Name": "instance-state-name", "Values": ["running"]}
        request = {**request, "Filters": [*(request.get("Filters") or []), running_only]}
    page = await describe(STATUSES, ctx, request)
    page["InstanceStatuses"] = [instance_view.strip_private(item) for item in page["InstanceStatuses"]]
    return page


RECORDS = (
    Action("RunInstances", run_instances, errors={"templateid": ("ami", "ImageId")}),
    Action("DescribeInstances", describe_instances, mutating=False),
    Action("DescribeInstanceStatus", describe_instance_status, mutating=False),
    Action("StartInstances", actions.start_instances),
    Action("StopInstances", actions.stop_instances),
    Action("RebootInstances", actions.reboot_instances),
    Action("TerminateInstances", actions.terminate_instances),
    Action("DescribeInstanceAttribute", actions.describe_instance_attribute, mutating=False),
    Action("ModifyInstanceAttribute", actions.modify_instance_attribute),
    Action("ResetInstanceAttribute", actions.reset_instance_attribute),
    Action("GetPasswordData", actions.get_password_data, mutating=False, errors={"id": ("i", "InstanceId")}),
    Action("GetConsoleOutput", actions.get_console_output, mutating=False),
)
