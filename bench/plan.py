"""What a run measures: profiles, probes grouped by fleet size, and the targets they feed.

A *probe* is one request replayed against one server at one concurrency. Probes are grouped by
*fleet* (the number of instances the back ends hold): each group gets fresh servers loaded with
that fleet, and its probes run in rounds (A/B/A/B...), so every ratio compares numbers taken on
the same machine in the same session, the two sides of a target ratio back to back. The main
fleet (50 instances) holds every comparison the targets name: the generator and aiohttp
ceilings, the CloudStack floor, the bridge and moto.

Scenarios (``--only``): generator, ceiling, floor, bridge, moto, scale, run-instances.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SCENARIOS = ("generator", "ceiling", "floor", "bridge", "moto", "scale", "run-instances")
DESCRIBE_ACTIONS = ("DescribeRegions", "DescribeAvailabilityZones", "DescribeKeyPairs", "DescribeImages",
                    "DescribeInstances")
# The CloudStack command each live-backed describe needs: the backend floor replays it.
FLOOR_COMMANDS = {"DescribeInstances": "listVirtualMachines", "DescribeKeyPairs": "listSSHKeyPairs"}


@dataclass(frozen=True)
class Profile:
    name: str
    duration: int                     # seconds per wrk run (at least)
    max_duration: int                 # longest run a slow probe is stretched to
    heavy_limit: int                  # longest single run of a probe slower than that (see runner)
    rounds: int                       # A/B/A/B repetitions
    describe_fleets: tuple[int, ...]  # DescribeInstances at C=1 and 16 (bridge)
    moto_fleets: tuple[int, ...]
    scale_fleets: tuple[int, ...]     # extra DescribeInstances C=1 points for the linearity check
    big_fleet: int                    # the fleet of the latency / memory / pages targets
    main_fleet: int = 50
    concurrencies: tuple[int, ...] = (1, 16)
    keypairs: int = 5
    run_count: int = 50               # RunInstances MaxCount
    job_duration: float = 0.5         # the simulator's deploy job duration in the RunInstances scenario

    def with_duration(self, seconds: int) -> "Profile":
        return replace(self, duration=seconds, max_duration=max(self.max_duration, seconds),
                       heavy_limit=max(self.heavy_limit, seconds))


FULL = Profile("full", duration=4, max_duration=20, heavy_limit=90, rounds=3,
               describe_fleets=(1, 50, 500, 10_000), moto_fleets=(1, 50, 500), scale_fleets=(1_000, 5_000),
               big_fleet=10_000)
# Smoke mode: every code path, small fleets, one-second runs (slow peers still get 4 waves, so
# the moto ratio is exercised too). Its numbers mean nothing.
QUICK = Profile("quick", duration=1, max_duration=20, heavy_limit=30, rounds=2, describe_fleets=(1, 50, 500),
                moto_fleets=(1, 50), scale_fleets=(200,), big_fleet=500)


@dataclass(frozen=True)
class Probe:
    scenarios: tuple[str, ...]
    target: str          # raw | trivial | floor | bridge | moto
    name: str            # the EC2 action, or the CloudStack command for the floor
    fleet: int
    concurrency: int
    signature: str = "v4"   # v4 | v2 (EC2), cloudstack (floor), v4 with dummy keys (raw, trivial)

    @property
    def key(self) -> str:
        sig = "" if self.signature == "v4" else f" {self.signature}"
        return f"{self.target} {self.name}{sig} N={self.fleet} C={self.concurrency}"


@dataclass(frozen=True)
class Group:
    fleet: int
    probes: tuple[Probe, ...]

    def needs(self, target: str) -> bool:
        return any(p.target == target for p in self.probes)


def main_fleet_probes(profile: Profile) -> list[Probe]:
    """The main fleet's probes in the order a round runs them: the two sides of every target
    ratio back to back (the ceiling between the two bridge calls measured against it), so each
    round's ratio compares runs taken seconds apart, not minutes."""
    n, cs = profile.main_fleet, profile.concurrencies
    probes = []
    for c in cs:
        def bridge(action: str, signature: str = "v4") -> Probe:
            return Probe(("bridge",), "bridge", action, n, c, signature)

        def floor(action: str) -> Probe:
            return Probe(("floor",), "floor", FLOOR_COMMANDS[action], n, c, "cloudstack")

        probes += [bridge("DescribeRegions"), Probe(("ceiling",), "trivial", "DescribeRegions", n, c),
                   bridge("DescribeAvailabilityZones")]
        if c == max(cs):
            probes.append(Probe(("generator",), "raw", "DescribeRegions", n, c))
        probes += [floor("DescribeKeyPairs"), bridge("DescribeKeyPairs"), bridge("DescribeImages"),
                   floor("DescribeInstances"), bridge("DescribeInstances")]
        if c == max(cs):
            probes.append(bridge("DescribeInstances", "v2"))
    if n in profile.moto_fleets:
        probes += [Probe(("moto",), "moto", action, n, c) for action in DESCRIBE_ACTIONS for c in cs]
    return probes


def fleet_probes(profile: Profile, n: int) -> list[Probe]:
    if n == profile.main_fleet:
        return main_fleet_probes(profile)
    probes = []
    if n in profile.describe_fleets:
        # C=1 at the smallest and the big fleet are also the linearity check's end points.
        for c in profile.concurrencies:
            scale = c == 1 and n in (min(profile.describe_fleets), profile.big_fleet)
            probes.append(Probe(("bridge", "scale") if scale else ("bridge",), "bridge", "DescribeInstances", n, c))
    if n in profile.scale_fleets:
        probes.append(Probe(("scale",), "bridge", "DescribeInstances", n, 1))
    if n in profile.moto_fleets:
        probes += [Probe(("moto",), "moto", "DescribeInstances", n, c) for c in profile.concurrencies]
    return probes


def build(profile: Profile, only: set[str]) -> list[Group]:
    fleets = sorted({*profile.describe_fleets, *profile.scale_fleets, *profile.moto_fleets, profile.main_fleet})
    groups = []
    for n in fleets:
        probes = tuple(p for p in fleet_probes(profile, n) if only.intersection(p.scenarios))
        if probes:
            groups.append(Group(n, probes))
    return groups


# -- targets ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RatioTarget:
    label: str
    numerator: Probe
    denominator: Probe
    minimum: float | None   # None: reported, no target


def ratio_targets(profile: Profile) -> list[RatioTarget]:
    n, c = profile.main_fleet, max(profile.concurrencies)

    def bridge(action: str, sig: str = "v4") -> Probe:
        return Probe(("bridge",), "bridge", action, n, c, sig)

    ceiling = Probe(("ceiling",), "trivial", "DescribeRegions", n, c)
    floor = {action: Probe(("floor",), "floor", command, n, c, "cloudstack")
             for action, command in FLOOR_COMMANDS.items()}
    moto = Probe(("moto",), "moto", "DescribeInstances", n, c)
    return [
        RatioTarget(f"DescribeInstances N={n} C={c}: bridge / moto", bridge("DescribeInstances"), moto, 50.0),
        RatioTarget(f"DescribeInstances N={n} C={c}: bridge / CloudStack floor (listVirtualMachines)",
                    bridge("DescribeInstances"), floor["DescribeInstances"], 0.5),
        RatioTarget(f"DescribeKeyPairs C={c}: bridge / CloudStack floor (listSSHKeyPairs)",
                    bridge("DescribeKeyPairs"), floor["DescribeKeyPairs"], 0.5),
        RatioTarget(f"DescribeAvailabilityZones C={c}: bridge / aiohttp ceiling", bridge("DescribeAvailabilityZones"),
                    ceiling, 0.25),
        RatioTarget(f"DescribeRegions C={c}: bridge / aiohttp ceiling", bridge("DescribeRegions"), ceiling, 0.40),
        RatioTarget(f"aiohttp ceiling / generator ceiling (raw socket server) C={c}", ceiling,
                    Probe(("generator",), "raw", "DescribeRegions", n, c), None),
        RatioTarget(f"DescribeInstances N={n} C={c}: SigV2 / SigV4", bridge("DescribeInstances", "v2"),
                    bridge("DescribeInstances"), None),
    ]


# The big-fleet targets, from the issue.
BIG_LATENCY_S = 1.5
BIG_PEAK_RSS_MB = 300.0
LINEARITY_SLACK = 1.3      # per-instance cost at the big fleet may exceed the smallest scale point's by 30%
RUN_RETURN_S = 1.0
