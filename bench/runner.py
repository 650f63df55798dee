"""Runs a plan: per fleet, start the servers, check every probe once, then replay in rounds.

For each group (one fleet size):

1. Start fresh servers for it (a seeded simulator and a bridge with an empty id map; moto lives
   for the whole session and only grows); one DescribeRegions enrolls the demo key in the bridge.
2. *Preflight* each probe: sign its request and send the identical bytes once cold and then
   ``PREFLIGHT_CALLS`` times, checking every answer (status, and for DescribeInstances the number
   of instances), timing each call and reading the simulator's call counters around the warm
   calls: that gives CloudStack calls per EC2 call. A probe whose answer is wrong (an unmapped
   action answers ``UnsupportedOperation``) is reported as not available and not run.
3. Size each run from the preflight latency. A *wave* is C concurrent calls: about C times the
   sequential latency on a one-process server. wrk counts only the calls completed within the
   run, so a run must hold several waves for the calls cut off at its end not to matter: each run
   lasts at least the profile's duration, stretched up to ``max_duration`` towards
   ``SAMPLES_PER_CONNECTION`` calls per connection, and needs ``MIN_WAVES`` waves to fit. A
   bridge probe too slow for that (DescribeInstances over 10,000 instances at C=16) runs once,
   for ``HEAVY_WAVES`` waves, if that fits in the profile's ``heavy_limit``; any other probe that
   slow is skipped, with the reason, rather than reported from a handful of cut-off calls.
4. Rounds: every probe once per round, in the same order, re-signed before each wrk run; after each
   run wait until the servers are idle (requests wrk abandoned at the end are still being served).
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError

from bench import checks, processes, signed, stacks, wrk
from bench.plan import Group, Probe, Profile
from bench.processes import Server
from bench.stacks import Keys, Moto, Simulator
from ec2bridge.cloudstack import CloudStackClient

PREFLIGHT_CALLS = 3
SAMPLES_PER_CONNECTION = 10
MIN_WAVES = 4
HEAVY_WAVES = 3
HEAVY_TARGETS = ("bridge", "moto")  # the servers compared in the targets get one long run if need be
DUMMY_KEYS = ("AKIAEXAMPLEBENCH0001", "bench-dummy-secret-key")   # raw/trivial check no signature
PAGE_SIZE = inspect.signature(CloudStackClient).parameters["page_size"].default
PREFLIGHT_ORDER = {"bridge": 0, "moto": 1, "floor": 2, "trivial": 3, "raw": 4}   # floor replays the bridge's call


@dataclass
class Preflight:
    first_call_ms: float
    cold: bool                        # the first call of this action on this bridge (mints ids)
    latencies_ms: list[float]
    response_bytes: int
    cloudstack_calls: dict[str, float] | None = None   # per EC2 call, by CloudStack command
    first_call_peak_rss_mb: float | None = None
    request: str = ""

    @property
    def median_s(self) -> float:
        return statistics.median(self.latencies_ms) / 1000.0


@dataclass
class Run:
    round: int
    seconds: int
    result: wrk.WrkResult
    generator_cpu_s: float
    server_cpu_s: dict[str, float]
    memory: dict[str, dict[str, float]]
    settle_s: float


@dataclass
class ProbeResult:
    probe: Probe
    preflight: Preflight | None = None
    seconds: int | None = None
    rounds: int = 0
    skipped: str | None = None
    runs: list[Run] = field(default_factory=list)
    cloudstack_params: dict[str, str] | None = None   # floor: the parameters replayed
    cloudstack_params_source: str | None = None


@dataclass
class Stack:
    simulator: Simulator | None = None
    bridge: Server | None = None
    moto: Moto | None = None
    own: dict[str, Server] = field(default_factory=dict)   # raw, trivial
    cold_actions: set[str] = field(default_factory=set)

    def servers_for(self, target: str) -> list[Server]:
        if target == "bridge":
            return [self.bridge, self.simulator.server]
        if target == "floor":
            return [self.simulator.server]
        if target == "moto":
            return [self.moto.server]
        return [self.own[target]]

    def servers(self) -> list[Server]:
        found = [self.bridge, self.simulator.server if self.simulator else None,
                 self.moto.server if self.moto else None, *self.own.values()]
        return [server for server in found if server is not None]


class Session:
    def __init__(self, profile: Profile, workdir: Path, wrk_path: str, log: Callable[[str], None] = print):
        self.profile = profile
        self.workdir = workdir
        self.wrk_path = wrk_path
        self.log = log
        self.keys = Keys.random()
        self.moto: Moto | None = None
        self.results: list[ProbeResult] = []

    # -- groups ------------------------------------------------------------------------------------
    def run(self, groups: list[Group]) -> list[ProbeResult]:
        try:
            for group in groups:
                self.run_group(group)
        finally:
            if self.moto is not None:
                self.moto.server.stop()
        return self.results

    def run_group(self, group: Group) -> None:
        results = [ProbeResult(probe) for probe in group.probes]
        self.results.extend(results)
        self.log(f"fleet N={group.fleet}: starting servers")
        stack = Stack()
        try:
            self.start_stack(stack, group)
            for result in sorted(results, key=lambda r: PREFLIGHT_ORDER[r.probe.target]):
                self.prepare(stack, result)
            runnable = [r for r in results if r.skipped is None]
            for round_number in range(1, self.profile.rounds + 1):
                for result in runnable:
                    if round_number <= result.rounds:
                        self.run_once(stack, result, round_number)
        except (processes.ServerError, wrk.WrkError, OSError, ValueError, ClientError, BotoCoreError) as error:
            self.log(f"fleet N={group.fleet}: {error}")
            for result in results:
                if not result.runs and result.skipped is None:
                    result.skipped = f"not run: {str(error).splitlines()[0]}"
        finally:
            for server in stack.servers():
                if stack.moto is None or server is not stack.moto.server:
                    server.stop()

    def start_stack(self, stack: Stack, group: Group) -> None:
        if group.needs("bridge") or group.needs("floor"):
            stack.simulator = stacks.start_simulator(self.workdir, self.keys, group.fleet)
            stack.simulator.add_keypairs(self.profile.keypairs)
        if group.needs("bridge"):
            stack.bridge = stacks.start_bridge(self.workdir, stack.simulator, f"bridge-{group.fleet}")
            # Enrolls the demo key (getUser, getUserKeys) so no probe's first call pays for it.
            stacks.bridge_client(stack.bridge, self.keys.demo).describe_regions()
        if group.needs("moto"):
            if self.moto is None:
                self.moto = stacks.start_moto(self.workdir)
            self.log(f"fleet N={group.fleet}: loading moto")
            self.moto.load(group.fleet, self.profile.keypairs)
            stack.moto = self.moto
        for kind in ("raw", "trivial"):
            if group.needs(kind):
                stack.own[kind] = stacks.start_own(self.workdir, kind)

    # -- one probe ---------------------------------------------------------------------------------
    def sign(self, stack: Stack, result: ProbeResult) -> signed.SignedRequest:
        probe = result.probe
        if probe.target == "bridge":
            return signed.sign_ec2(stack.bridge.base_url + "/", signed.Ec2Call(probe.name, signature=probe.signature),
                                   self.keys.demo, stacks.BRIDGE_REGION)
        if probe.target == "moto":
            return signed.sign_ec2(stack.moto.server.base_url + "/", signed.Ec2Call(probe.name),
                                   stacks.MOTO_CREDENTIALS, stacks.MOTO_REGION)
        if probe.target == "floor":
            return signed.sign_cloudstack(stack.simulator.api_url, probe.name, result.cloudstack_params,
                                          self.keys.demo)
        server = stack.own[probe.target]
        return signed.sign_ec2(server.base_url + "/", signed.Ec2Call(probe.name), DUMMY_KEYS, stacks.BRIDGE_REGION)

    def choose_floor_params(self, stack: Stack, result: ProbeResult) -> None:
        """The parameters the bridge sent for this command, or a first page as its client asks for it."""
        captured = stack.simulator.last_params().get(result.probe.name)
        if captured is not None:
            result.cloudstack_params, result.cloudstack_params_source = captured, "as the bridge sent it"
        else:
            result.cloudstack_params = {"page": "1", "pagesize": str(PAGE_SIZE)}
            result.cloudstack_params_source = "the bridge made no such call: its client's first page"

    def expectation(self, probe: Probe) -> checks.Expectation:
        if probe.target in ("raw", "trivial"):
            return checks.FixedBody()
        if probe.target == "floor":
            counts = {"listVirtualMachines": probe.fleet, "listSSHKeyPairs": self.profile.keypairs}
            return checks.CloudStackList(probe.name, counts.get(probe.name))
        instances = probe.fleet if probe.name == "DescribeInstances" else None
        return checks.Ec2Answer(probe.name, instances)

    def prepare(self, stack: Stack, result: ProbeResult) -> None:
        probe = result.probe
        if probe.target == "floor":
            self.choose_floor_params(stack, result)
        request = self.sign(stack, result)
        try:
            result.preflight = self.preflight(stack, probe, request)
        except checks.WrongAnswer as error:
            result.skipped = str(error)
            self.log(f"  {probe.key}: {error}")
            return
        self.size_runs(result)
        if result.skipped:
            self.log(f"  {probe.key}: {result.skipped}")
        else:
            self.log(f"  {probe.key}: ok ({result.preflight.median_s * 1000:.1f} ms per call), "
                     f"{result.rounds} run(s) of {result.seconds}s")

    def size_runs(self, result: ProbeResult) -> None:
        profile, latency = self.profile, result.preflight.median_s
        wave = result.probe.concurrency * latency
        if MIN_WAVES * wave <= profile.max_duration:
            wanted = math.ceil(SAMPLES_PER_CONNECTION * wave)
            result.seconds, result.rounds = max(profile.duration, min(profile.max_duration, wanted)), profile.rounds
        elif result.probe.target in HEAVY_TARGETS and HEAVY_WAVES * wave <= profile.heavy_limit:
            result.seconds, result.rounds = math.ceil(HEAVY_WAVES * wave), 1
        else:
            probe = result.probe
            heavy = f" or {HEAVY_WAVES} in one {profile.heavy_limit} s run" if probe.target in HEAVY_TARGETS else ""
            calls = "one call" if probe.concurrency == 1 else f"a wave of {probe.concurrency} concurrent calls"
            result.skipped = (f"skipped: {calls} takes about {wave:.0f} s, too slow for {MIN_WAVES} waves "
                              f"in {profile.max_duration} s{heavy}")

    def preflight(self, stack: Stack, probe: Probe, request: signed.SignedRequest) -> Preflight:
        expect = self.expectation(probe)
        cold = probe.target == "bridge" and probe.name not in stack.cold_actions
        stack.cold_actions.add(probe.name)
        if stack.bridge is not None:
            stack.bridge.reset_peak_memory()
        # One kept-alive connection, as a client calling in a loop (and wrk at C=1) has: the calls
        # reach one bridge worker, so the CloudStack calls counted are one worker's steady state.
        # (A new connection per call could reach another worker, whose caches are its own.)
        connection = checks.connect(request)
        try:
            first_ms, size = checks.timed_call(request, expect, connection)
            peak = stack.bridge.memory_mb()["peak_rss_mb"] if probe.target == "bridge" else None
            counting = probe.target == "bridge"
            before = stack.simulator.call_counts() if counting else Counter()
            latencies = checks.timed_calls(request, expect, connection, PREFLIGHT_CALLS)
        finally:
            connection.close()
        calls = None
        if counting:
            delta = stack.simulator.call_counts() - before
            calls = {command: round(count / PREFLIGHT_CALLS, 2) for command, count in sorted(delta.items())}
        return Preflight(first_call_ms=first_ms, cold=cold, latencies_ms=latencies, response_bytes=size,
                         cloudstack_calls=calls, first_call_peak_rss_mb=peak, request=request.description)

    def run_once(self, stack: Stack, result: ProbeResult, round_number: int) -> None:
        probe = result.probe
        request = self.sign(stack, result)   # a fresh timestamp for every run
        script = self.workdir / "probe.lua"
        script.write_text(wrk.lua_script(request.method, request.path, request.headers, request.body))
        servers = stack.servers_for(probe.target)
        for server in servers:
            server.check_alive()
            server.reset_peak_memory()
        cpu_before = {server.name: server.cpu_seconds() for server in servers}
        outcome = wrk.run(self.wrk_path, request.base_url, script, connections=probe.concurrency,
                          seconds=result.seconds)
        cpu = {server.name: round(server.cpu_seconds() - cpu_before[server.name], 3) for server in servers}
        settle = processes.wait_idle(stack.servers())
        # After the calls wrk abandoned have finished too: they count towards the peak.
        memory = {server.name: server.memory_mb() for server in servers}
        run = Run(round_number, result.seconds, outcome.result, round(outcome.cpu_seconds, 3), cpu, memory,
                  round(settle, 2))
        result.runs.append(run)
        self.log(f"  round {round_number} {probe.key}: {outcome.result.rps:,.1f} req/s, "
                 f"p50 {outcome.result.latency_ms['p50']:.1f} ms, errors {outcome.result.error_count}")

