"""Instance types: CloudStack service offerings under EC2 names.

**Names.** Every service offering the caller can use is an instance type under its own name,
whether it is named like an EC2 type (``t2.micro``) or not (``Small Instance``). The operator's
``[instance_types]`` table (``Config.instance_type_aliases``: EC2 name -> offering name or
uuid) adds more names for the same offerings, so that scripts written for AWS find
``m1.small``; an alias wins over an offering of the same name, since the operator asked for it,
and an alias naming no visible offering is skipped. When several offerings share a name (one
per domain, say), the oldest is the type. Offerings without a fixed size (CloudStack's
*customized* offerings, sized at deploy time) and inactive ones are not instance types: an EC2
type has one size. :func:`resolve_offering` is the same lookup for actions that launch.

**DescribeInstanceTypes** reports what an offering states and nothing it does not:
``cpunumber`` -> ``VCpuInfo`` (one thread per core: CloudStack presents vCPUs as cores),
``memory`` (MiB) -> ``MemoryInfo``, ``cpuspeed`` (MHz) -> ``SustainedClockSpeedInGhz``,
``offerha`` -> ``AutoRecoverySupported`` (CloudStack restarts an HA instance elsewhere when
its host fails), ``encryptroot`` -> EBS ``EncryptionSupport``, ``networkrate`` (Mbit/s) ->
``NetworkPerformance``. The rest is what every CloudStack instance is: x86_64, HVM, EBS-backed
(root disks are volumes), on-demand, no instance store, no ENA/EFA/NVMe (virtio devices).
``Hypervisor`` is left out: its values (``nitro``, ``xen``) describe AWS's hosts, and an offering
is not tied to a hypervisor. Paged 5-100 as on AWS.

**DescribeInstanceTypeOfferings** lists one offering per (type, location): the region, each
zone by name or each zone by id. An offering restricted to some zones (its ``zoneid``) is
offered there only. Its sort key is the (type, location) pair, which the describe engine's
single-field records cannot express, so it is a small handler over the same engine parts.
"""

from __future__ import annotations

from typing import Any

from ec2bridge.describe import Paging, apply_filters, check_max_results, compile_filters, paginate
from ec2bridge.errors import EC2Error, dry_run_ok, invalid_value
from mappings.records import Action, Describe, Selector
from mappings.zones import CatalogCache, region_name, visible_zones, zone_id

TYPES_PAGING = Paging(minimum=5, maximum=100)      # DescribeInstanceTypes' MaxResults bounds
OFFERINGS_PAGING = Paging(minimum=5, maximum=1000)  # DescribeInstanceTypeOfferings'


# --- which offering is which type ------------------------------------------------------

async def visible_offerings(ctx: Any) -> list[dict]:
    """The service offerings the caller may launch with (cached briefly; do not modify)."""
    return await ctx.services.store(CatalogCache).listing(ctx, "listServiceOfferings")


def _sized(offering: dict) -> bool:
    return (offering.get("state", "Active") == "Active" and not offering.get("iscustomized")
            and bool(offering.get("cpunumber")) and bool(offering.get("memory")))


def types_by_name(offerings: list[dict], aliases: dict[str, str]) -> dict[str, dict]:
    """{instance type name: offering} for the offerings and the operator's aliases."""
    by_name: dict[str, dict] = {}
    by_id: dict[str, dict] = {}
    for offering in sorted(filter(_sized, offerings), key=lambda o: (o.get("created", ""), o["id"])):
        by_name.setdefault(offering["name"], offering)
        by_id[offering["id"]] = offering
    named = dict(by_name)
    for alias, target in aliases.items():
        offering = named.get(target) or by_id.get(target)
        if offering is not None:
            by_name[alias] = offering
    return by_name


async def instance_types(ctx: Any) -> dict[str, dict]:
    return types_by_name(await visible_offerings(ctx), ctx.config.instance_type_aliases)


async def resolve_offering(ctx: Any, instance_type: str) -> dict | None:
    """The CloudStack service offering behind an EC2 instance type name, or None."""
    return (await instance_types(ctx)).get(instance_type)


# --- DescribeInstanceTypes -------------------------------------------------------------

def _network_performance(offering: dict) -> dict:
    rate = offering.get("networkrate")
    if not rate or int(rate) <= 0:
        return {}
    rate = int(rate)
    text = f"{rate // 1000} Gigabit" if rate % 1000 == 0 else f"{rate} Megabit"
    return {"NetworkPerformance": text}


def _processor(offering: dict) -> dict:
    info: dict[str, Any] = {"SupportedArchitectures": ["x86_64"]}
    if offering.get("cpuspeed"):
        info["SustainedClockSpeedInGhz"] = round(int(offering["cpuspeed"]) / 1000, 3)
    return info


def instance_type_info(name: str, offering: dict) -> dict:
    cpus = int(offering["cpunumber"])
    return {
        "InstanceType": name,
        "CurrentGeneration": True,  # every offering is what the cloud sells today
        "FreeTierEligible": False,
        "SupportedUsageClasses": ["on-demand"],
        "SupportedRootDeviceTypes": ["ebs"],
        "SupportedVirtualizationTypes": ["hvm"],
        "BareMetal": False,
        "ProcessorInfo": _processor(offering),
        "VCpuInfo": {"DefaultVCpus": cpus, "DefaultCores": cpus, "DefaultThreadsPerCore": 1},
        "MemoryInfo": {"SizeInMiB": int(offering["memory"])},
        "InstanceStorageSupported": False,
        "EbsInfo": {"EbsOptimizedSupport": "unsupported",
                    "EncryptionSupport": "supported" if offering.get("encryptroot") else "unsupported",
                    "NvmeSupport": "unsupported"},
        "NetworkInfo": {**_network_performance(offering), "EnaSupport": "unsupported", "EfaSupported": False,
                        "EncryptionInTransitSupported": False},
        "HibernationSupported": False,
        "BurstablePerformanceSupported": False,
        "DedicatedHostsSupported": False,
        "AutoRecoverySupported": bool(offering.get("offerha")),
        "SupportedInRegion": True,
    }


async def instance_type_infos(ctx: Any, request: dict) -> list[dict]:
    return [instance_type_info(name, offering) for name, offering in (await instance_types(ctx)).items()]


def unknown_instance_types(names: list[str]) -> EC2Error:
    return EC2Error("InvalidInstanceType", f"The following supplied instance types do not exist: [{', '.join(names)}]")


DESCRIBE_INSTANCE_TYPES = Describe(
    name="DescribeInstanceTypes",
    result_key="InstanceTypes",
    source=instance_type_infos,
    sort_key="InstanceType",
    filters={
        "instance-type": "InstanceType",
        "current-generation": "CurrentGeneration",
        "free-tier-eligible": "FreeTierEligible",
        "bare-metal": "BareMetal",
        "hibernation-supported": "HibernationSupported",
        "burstable-performance-supported": "BurstablePerformanceSupported",
        "dedicated-hosts-supported": "DedicatedHostsSupported",
        "auto-recovery-supported": "AutoRecoverySupported",
        "instance-storage-supported": "InstanceStorageSupported",
        "supported-usage-class": "SupportedUsageClasses",
        "supported-root-device-type": "SupportedRootDeviceTypes",
        "supported-virtualization-type": "SupportedVirtualizationTypes",
        "processor-info.supported-architecture": "ProcessorInfo.SupportedArchitectures",
        "processor-info.sustained-clock-speed-in-ghz": "ProcessorInfo.SustainedClockSpeedInGhz",
        "vcpu-info.default-vcpus": "VCpuInfo.DefaultVCpus",
        "vcpu-info.default-cores": "VCpuInfo.DefaultCores",
        "vcpu-info.default-threads-per-core": "VCpuInfo.DefaultThreadsPerCore",
        "memory-info.size-in-mib": "MemoryInfo.SizeInMiB",
        "ebs-info.ebs-optimized-support": "EbsInfo.EbsOptimizedSupport",
        "ebs-info.encryption-support": "EbsInfo.EncryptionSupport",
        "ebs-info.nvme-support": "EbsInfo.NvmeSupport",
        "network-info.network-performance": "NetworkInfo.NetworkPerformance",
        "network-info.ena-support": "NetworkInfo.EnaSupport",
        "network-info.efa-supported": "NetworkInfo.EfaSupported",
        "network-info.encryption-in-transit-supported": "NetworkInfo.EncryptionInTransitSupported",
    },
    selectors=(Selector("InstanceTypes", "InstanceType", unknown_instance_types),),
    paging=TYPES_PAGING,
    taggable=False,
)


# --- DescribeInstanceTypeOfferings -------------------------------------------------------

LOCATION_TYPES = ("region", "availability-zone", "availability-zone-id", "outpost")
OFFERING_FILTERS = {"instance-type": "InstanceType", "location": "Location"}


def _offered_in(offering: dict, zone: dict) -> bool:
    # CloudStack lists an offering restricted to some zones with their uuids in ``zoneid``
    # (comma-separated); an offering for every zone has none.
    restricted = offering.get("zoneid")
    return not restricted or zone["id"] in {z.strip() for z in str(restricted).split(",")}


def offering_locations(offering: dict, location_type: str, region: str, zones: list[dict]) -> list[str]:
    if location_type == "region":
        return [region] if any(_offered_in(offering, zone) for zone in zones) else []
    if location_type == "availability-zone":
        return [zone["name"] for zone in zones if _offered_in(offering, zone)]
    if location_type == "availability-zone-id":
        return [zone_id(zone) for zone in zones if _offered_in(offering, zone)]
    return []  # outpost: CloudStack has no Outposts, so nothing is offered on one


async def type_offerings(ctx: Any, location_type: str) -> list[dict]:
    types = await instance_types(ctx)
    zones = await visible_zones(ctx)
    region = region_name(ctx.config)
    return [{"InstanceType": name, "LocationType": location_type, "Location": location}
            for name, offering in types.items()
            for location in offering_locations(offering, location_type, region, zones)]


def _offering_key(item: dict) -> tuple[str, str]:
    return (item["InstanceType"], item["Location"])


async def describe_instance_type_offerings(ctx: Any, request: dict) -> dict:
    name = "DescribeInstanceTypeOfferings"
    location_type = request.get("LocationType") or "region"
    if location_type not in LOCATION_TYPES:
        raise invalid_value("LocationType", location_type, f"expecting one of {', '.join(LOCATION_TYPES)}")
    max_results = check_max_results(request.get("MaxResults"), OFFERINGS_PAGING, name)
    tokens = ctx.services.page_tokens
    after = tokens.read(name, request["NextToken"]) if request.get("NextToken") else None
    predicates = compile_filters(request.get("Filters"), OFFERING_FILTERS, taggable=False)
    items = await type_offerings(ctx, location_type)
    if request.get("DryRun"):
        raise dry_run_ok()
    page, token = paginate(apply_filters(items, predicates), _offering_key, max_results, after, tokens, name)
    return {"InstanceTypeOfferings": page, **({"NextToken": token} if token else {})}


DESCRIBE_INSTANCE_TYPE_OFFERINGS = Action("DescribeInstanceTypeOfferings", describe_instance_type_offerings,
                                          mutating=False)

RECORDS = (DESCRIBE_INSTANCE_TYPES, DESCRIBE_INSTANCE_TYPE_OFFERINGS)
