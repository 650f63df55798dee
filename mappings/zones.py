"""Availability zones: CloudStack zones as EC2 sees them, and a brief per-caller catalog cache.

**DescribeAvailabilityZones** answers from ``listZones available=true``; the describe engine
(record :data:`ZONES`) does ``ZoneNames`` / ``ZoneIds``, filters and ordering. One CloudStack zone is one EC2
availability zone of the configured region:

- ``ZoneName`` is the zone's name, which is what ``Placement.AvailabilityZone`` names elsewhere.
- ``ZoneId`` is the zone's CloudStack uuid. AWS zone ids (``use1-az1``) exist to name the same
  physical zone for every account and forever, while zone names are per account; the uuid has
  exactly those properties, where an index or a region-name prefix would change when a zone is
  removed or the region renamed. It also maps back to CloudStack without a table.
- ``State`` is ``available`` for CloudStack's allocation state ``Enabled`` and ``unavailable``
  otherwise (only root admins see disabled zones); the allocation state is then the message.
- ``GroupName`` and ``NetworkBorderGroup`` are the region name, as AWS reports for the zones of
  a region that has no Local or Wavelength Zones; every zone is ``opt-in-not-required``, so
  ``AllAvailabilityZones`` changes nothing, exactly as on AWS for plain availability zones.
- ``ZoneName.1=verbose`` is Eucalyptus's request for every zone in detail, which
  ``euca-describe-availability-zones verbose`` sends: the keyword is dropped from the names, so
  euca2ools gets every zone (without Eucalyptus's capacity rows, which CloudStack zones lack).

**The catalog cache.** Zones and service offerings change a few times a year, but every launch
and many Describe calls need them. :class:`CatalogCache` keeps a listing for a few seconds per
CloudStack API key: CloudStack shows each account its own catalog (zones and offerings
dedicated to a domain), so one caller's listing is never served to another. Concurrent misses
for the same key share one CloudStack call. The cache is process-local on purpose: every bridge
process may be a few seconds stale independently, and nothing is written through it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, Awaitable, Callable

import orjson

from ec2bridge import engine
from ec2bridge.errors import EC2Error
from mappings.records import Action, Describe, Selector

CATALOG_TTL_SECONDS = 5.0
CATALOG_MAX_ENTRIES = 4096  # distinct (caller, listing) pairs kept before the oldest are dropped
_SERIALS = itertools.count(1)  # of every listing fetched in this process, whichever cache fetched it


class Listing(list):
    """A listing as :class:`CatalogCache` hands it out: CloudStack's objects, and the serial of
    the call that fetched them, unique in the process. Two listings with the same serial are
    the same listing, so a caller can tell "the same as last time" without comparing objects
    (``ec2bridge.answer_memo``)."""

    __slots__ = ("serial",)

    def __init__(self, objects: list[dict], serial: int):
        super().__init__(objects)
        self.serial = serial


class CatalogCache:
    """Recent CloudStack catalog listings, per caller. One instance per bridge process.

    Built through ``ctx.services.store(CatalogCache)``, which hands every store the database;
    the cache keeps nothing there.
    """

    def __init__(self, database: Any = None, ttl: float = CATALOG_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = CATALOG_MAX_ENTRIES):
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[tuple, tuple[float, asyncio.Future]] = {}

    async def listing(self, ctx: Any, command: str, *, max_age: float | None = None, fresh: bool = False,
                      fields: tuple[str, ...] | None = None, **params: Any) -> Listing:
        """``ctx.cs_list(command, **params)``, answered from the last few seconds when possible.

        ``max_age``: at most this old (default: the cache's TTL); ``fresh``: ask CloudStack now;
        ``fields``: keep only these fields of each object (a large listing then costs less memory).
        """
        key = (ctx.creds[0], command, fields, tuple(sorted(params.items())))
        entry = self._entries.get(key)
        now = self._clock()
        if fresh or entry is None or entry[0] <= now or (max_age is not None and entry[0] - self._ttl + max_age <= now):
            call = ctx.cs_list(command, **params) if fields is None else _only(ctx, fields, command, params)
            entry = self._start(key, call)
        # shield: one caller giving up (a client disconnect) must not cancel the call that
        # other callers of the same key are waiting for.
        return await asyncio.shield(entry[1])

    def _start(self, key: tuple, call: Awaitable[list[dict]]) -> tuple[float, asyncio.Future]:
        now = self._clock()
        if len(self._entries) >= self._max_entries:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            while len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
        future = asyncio.ensure_future(self._serialised(call))
        entry = (now + self._ttl, future)
        self._entries[key] = entry
        future.add_done_callback(lambda done: self._forget_failure(key, entry))
        return entry

    async def _serialised(self, call: Awaitable[list[dict]]) -> Listing:
        return Listing(await call, next(_SERIALS))

    def _forget_failure(self, key: tuple, entry: tuple[float, asyncio.Future]) -> None:
        """A failed listing is never served again (and its error counts as retrieved)."""
        future = entry[1]
        if (future.cancelled() or future.exception() is not None) and self._entries.get(key) is entry:
            del self._entries[key]


async def _only(ctx: Any, fields: tuple[str, ...], command: str, params: dict) -> list[dict]:
    """The listing with only ``fields`` of each object, each object read in full only while
    its fields are picked (the whole listing is never in memory as complete objects)."""
    listed = await ctx.services.cloudstack.list_raw(ctx.creds, command, params)
    return [{name: obj[name] for name in fields if name in obj} for obj in map(orjson.loads, listed)]


async def visible_zones(ctx: Any) -> list[dict]:
    """The CloudStack zones the caller may use (cached briefly; do not modify the dicts).

    ``available=true``: CloudStack's default for ``listZones`` is the zones where the account
    already has instances, which is not the question EC2 asks.
    """
    return await ctx.services.store(CatalogCache).listing(ctx, "listZones", available="true")


def region_name(config: Any) -> str:
    """The region this endpoint serves: the first configured one."""
    return config.regions[0].name


def zone_id(zone: dict) -> str:
    """The EC2 ``ZoneId`` of a CloudStack zone (see the module docstring)."""
    return zone["id"]


def zone_state(zone: dict) -> str:
    return "available" if zone.get("allocationstate", "Enabled") == "Enabled" else "unavailable"


def availability_zone(zone: dict, region: str) -> dict:
    allocation = zone.get("allocationstate", "Enabled")
    messages = [] if allocation == "Enabled" else [{"Message": f"CloudStack allocation state: {allocation}"}]
    return {"State": zone_state(zone), "OptInStatus": "opt-in-not-required", "Messages": messages,
            "RegionName": region, "ZoneName": zone["name"], "ZoneId": zone_id(zone), "GroupName": region,
            "NetworkBorderGroup": region, "ZoneType": "availability-zone"}


async def availability_zones(ctx: Any, request: dict) -> list[dict]:
    region = region_name(ctx.config)
    return [availability_zone(zone, region) for zone in await visible_zones(ctx)]


def invalid_zones(names: list[str]) -> EC2Error:
    # AWS prints the unknown names as a Java list: "Invalid availability zone: [us-east-1x]".
    return EC2Error("InvalidParameterValue", f"Invalid availability zone: [{', '.join(names)}]")


ZONES = Describe(
    name="DescribeAvailabilityZones",
    result_key="AvailabilityZones",
    source=availability_zones,
    sort_key="ZoneName",
    filters={"zone-name": "ZoneName", "zone-id": "ZoneId", "state": "State", "region-name": "RegionName",
             "group-name": "GroupName", "message": "Messages.Message", "opt-in-status": "OptInStatus",
             "zone-type": "ZoneType", "network-border-group": "NetworkBorderGroup"},
    selectors=(Selector("ZoneNames", "ZoneName", invalid_zones), Selector("ZoneIds", "ZoneId", invalid_zones)),
    taggable=False,  # EC2 zones carry no tags (CloudStack's zone tags have no EC2 element)
)

EUCALYPTUS_VERBOSE = "verbose"


async def describe_availability_zones(ctx: Any, request: dict) -> dict:
    names = request.get("ZoneNames")
    if names and EUCALYPTUS_VERBOSE in names:
        request = {**request, "ZoneNames": [name for name in names if name != EUCALYPTUS_VERBOSE]}
    return await engine.describe(ZONES, ctx, request)


RECORDS = (Action("DescribeAvailabilityZones", describe_availability_zones, mutating=False),)
