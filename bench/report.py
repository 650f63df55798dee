"""From raw runs to the results: per-probe summaries, ratios, targets, markdown and JSON lines.

Every number is a median over the session's rounds with its min-max next to it. A ratio is the
median of the per-round ratios, each from two runs taken back to back (``plan.main_fleet_probes``
orders them so), with their min-max; a side that ran fewer rounds than the other (a slow peer
run once) gives the ratio of the two medians instead. Targets come from the issue; one whose
inputs were not measured says so instead of passing or failing.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable

from bench import plan
from bench.plan import Profile
from bench.runner import HEAVY_WAVES, MIN_WAVES, PAGE_SIZE, ProbeResult


# -- per probe -------------------------------------------------------------------------------------
def spread(values: list[float], digits: int = 3) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def summarize(result: ProbeResult) -> dict[str, Any]:
    probe, runs, pre = result.probe, result.runs, result.preflight
    requests = sum(run.result.requests for run in runs)
    server_cpu = sum(sum(run.server_cpu_s.values()) for run in runs)
    bridge_peaks = [run.memory[name]["peak_rss_mb"] for run in runs for name in run.memory
                    if name.startswith("bridge")]
    return {
        "kind": "probe", "key": probe.key, "scenarios": list(probe.scenarios), "target": probe.target,
        "request": probe.name, "signature": probe.signature, "fleet": probe.fleet,
        "concurrency": probe.concurrency, "skipped": result.skipped, "seconds_per_run": result.seconds,
        "runs_planned": result.rounds,
        "rps": spread([run.result.rps for run in runs]),
        "latency_ms": {p: spread([run.result.latency_ms[p] for run in runs if run.result.requests])
                       for p in ("p50", "p90", "p99")},
        "requests": requests, "errors": sum(run.result.error_count for run in runs),
        "response_bytes": pre.response_bytes if pre else None,
        "signed_request": pre.request if pre else None,
        "first_call_ms": round(pre.first_call_ms, 1) if pre else None, "first_call_cold": pre.cold if pre else None,
        "first_call_peak_rss_mb": pre.first_call_peak_rss_mb if pre else None,
        "preflight_ms": [round(ms, 2) for ms in pre.latencies_ms] if pre else None,
        "cloudstack_calls_per_call": pre.cloudstack_calls if pre else None,
        "cloudstack_params": result.cloudstack_params, "cloudstack_params_source": result.cloudstack_params_source,
        "bridge_peak_rss_mb": max(bridge_peaks) if bridge_peaks else None,
        "generator_cpu_us_per_request": per_request(sum(run.generator_cpu_s for run in runs), requests),
        "server_cpu_us_per_request": per_request(server_cpu, requests),
        "runs": [{"round": run.round, **run.result.to_dict(), "generator_cpu_s": run.generator_cpu_s,
                  "server_cpu_s": run.server_cpu_s, "memory": run.memory, "settle_s": run.settle_s}
                 for run in runs],
    }


def per_request(cpu_seconds: float, requests: int) -> float | None:
    return round(cpu_seconds / requests * 1e6, 1) if requests else None


# -- ratios and targets ----------------------------------------------------------------------------
@dataclass
class Results:
    profile: Profile
    probes: dict[str, dict]           # key -> summary
    raw: dict[str, ProbeResult]
    run_instances: dict | None


def ratio(results: Results, target: plan.RatioTarget) -> dict[str, Any]:
    top, bottom = results.raw.get(target.numerator.key), results.raw.get(target.denominator.key)
    row = {"kind": "ratio", "ratio": target.label, "numerator": target.numerator.key,
           "denominator": target.denominator.key, "minimum": target.minimum, "value": None,
           "per_round": None}
    missing = [r for r in (top, bottom) if r is None or not r.runs]
    if missing:
        reasons = [r.skipped for r in missing if r is not None and r.skipped] or ["not in this run"]
        row["missing"] = "; ".join(reasons)
        return row
    bottom_by_round = {run.round: run.result.rps for run in bottom.runs}
    per_round = [run.result.rps / bottom_by_round[run.round] for run in top.runs
                 if bottom_by_round.get(run.round)]
    if per_round and len(per_round) == len(top.runs) == len(bottom.runs):
        row["value"] = statistics.median(per_round)
    else:
        medians = statistics.median(r.result.rps for r in top.runs), statistics.median(r.result.rps for r in bottom.runs)
        row["value"] = medians[0] / medians[1] if medians[1] else None
    row["per_round"] = spread(per_round)
    return row


def verdict(value: float | None, ok: bool) -> str:
    return "not measured" if value is None else ("pass" if ok else "FAIL")


def target(label: str, measured: float | None, goal: str, ok: bool, unit: str = "", note: str | None = None,
           **extra) -> dict[str, Any]:
    """One target row; ``note`` is shown next to the verdict (why it was not measured, or detail)."""
    return {"kind": "target", "target": label, "measured": measured, "unit": unit, "goal": goal,
            "result": verdict(measured, ok), "note": note, **extra}


def describe_instances_c1(results: Results) -> dict[int, dict]:
    rows = [s for s in results.probes.values() if s["target"] == "bridge" and s["request"] == "DescribeInstances"
            and s["concurrency"] == 1 and s["signature"] == "v4"]
    return {s["fleet"]: s for s in rows}


def big_fleet_targets(results: Results) -> list[dict]:
    big = results.profile.big_fleet
    c1 = describe_instances_c1(results).get(big, {})
    why = c1.get("skipped") if c1 else "not in this run"
    return [latency_target(big, c1, why), memory_target(results, big, c1), pages_target(big, c1, why),
            linearity_target(results)]


def latency_target(big: int, c1: dict, why: str | None) -> dict:
    p50 = (c1.get("latency_ms") or {}).get("p50")
    seconds = p50["median"] / 1000 if p50 else None
    first = c1.get("first_call_ms")
    note = f"first call {first / 1000:.2f} s (mints the EC2 ids)" if seconds is not None and first else why
    return target(f"DescribeInstances N={big} C=1 latency (p50, end to end)", seconds, f"< {plan.BIG_LATENCY_S} s",
                  seconds is not None and seconds < plan.BIG_LATENCY_S, "s", note)


def memory_target(results: Results, big: int, c1: dict) -> dict:
    """The memory one describe of the big fleet takes: the largest bridge process during the
    C=1 runs and the first call (the C=16 runs, 16 such describes at once, are in the table)."""
    peaks = [c1["bridge_peak_rss_mb"]] if c1.get("bridge_peak_rss_mb") else []
    peaks += [c1["first_call_peak_rss_mb"]] if c1.get("first_call_peak_rss_mb") else []
    peak = max(peaks) if peaks else None
    return target(f"DescribeInstances N={big} C=1: peak RSS of a bridge process (runs and first call)", peak,
                  f"< {plan.BIG_PEAK_RSS_MB:.0f} MB", peak is not None and peak < plan.BIG_PEAK_RSS_MB, "MB")


def pages_target(big: int, c1: dict, why: str | None) -> dict:
    calls = c1.get("cloudstack_calls_per_call")
    pages = math.ceil(big / PAGE_SIZE)
    total = sum(calls.values()) if calls else None
    # Every call lists the VMs, page by page; the catalog listings it also reads (volumes,
    # networks, templates) are cached for seconds, so over a few calls they must average less
    # than one more full listing per call. Nothing may be called per instance.
    only_pages = (calls or {}).get("listVirtualMachines") == pages and total is not None and total < 2 * pages
    return target(f"DescribeInstances N={big}: CloudStack calls per call", total,
                  f"{pages} listVirtualMachines pages + cached listings (< {2 * pages} in all)", only_pages, "",
                  fmt_calls(calls) if calls else why, breakdown=calls)


def linearity_target(results: Results) -> dict:
    growth = linearity(describe_instances_c1(results), results.profile)
    note = None
    if growth:
        note = "µs per instance: " + ", ".join(f"N={n}: {v}" for n, v in growth["us_per_instance"].items())
    return target("DescribeInstances cost linear in N (per-instance cost at the largest fleet / at the smallest "
                  "scale point, C=1 p50)", growth["ratio"] if growth else None, f"<= {plan.LINEARITY_SLACK}",
                  bool(growth) and growth["ratio"] <= plan.LINEARITY_SLACK, "", note or "needs two scale points",
                  points=growth)


def linearity(by_fleet: dict[int, dict], profile: Profile) -> dict | None:
    """Marginal cost per instance, (t(N) - t(base)) / (N - base), at each scale point (C=1 p50)."""
    p50 = {n: s["latency_ms"]["p50"]["median"] for n, s in by_fleet.items() if s["latency_ms"]["p50"]}
    if not p50:
        return None
    base = min(p50)
    points = sorted(n for n in p50 if n in (*profile.scale_fleets, profile.big_fleet) and n > base)
    if len(points) < 2:
        return None
    per_instance = {n: (p50[n] - p50[base]) / (n - base) * 1000 for n in points}   # microseconds
    if per_instance[points[0]] <= 0:
        return None
    return {"base_fleet": base, "us_per_instance": {str(n): round(v, 2) for n, v in per_instance.items()},
            "ratio": round(per_instance[points[-1]] / per_instance[points[0]], 3)}


def run_instances_targets(results: Results) -> list[dict]:
    run = results.run_instances
    if run is None:
        return []
    available = run.get("available")
    call_s = run.get("call_s") if available else None
    running_s = run.get("all_running_s") if available and run.get("all_running") else None
    note = None if available else run.get("reason")
    return [
        target(f"RunInstances MaxCount={results.profile.run_count} returns", call_s, f"< {plan.RUN_RETURN_S} s",
               call_s is not None and call_s < plan.RUN_RETURN_S, "s", note),
        target(f"all {results.profile.run_count} running (from the call)", running_s,
               f"<= one deploy job + two bridge poll intervals ({run.get('running_target_s', '?')} s)",
               running_s is not None and running_s <= run["running_target_s"], "s", note),
    ]


def all_targets(results: Results, ratios: list[dict]) -> list[dict]:
    rows = [target(r["ratio"], r["value"], f">= {r['minimum']:g}x",
                   r["value"] is not None and r["value"] >= r["minimum"], "x", r.get("missing"))
            for r in ratios if r["minimum"] is not None]
    if any(s["fleet"] == results.profile.big_fleet for s in results.probes.values()):
        rows += big_fleet_targets(results)
    return rows + run_instances_targets(results)


# -- rendering -------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def fmt_spread(s: dict | None, digits: int = 1) -> str:
    if not s:
        return "–"
    return f"{fmt(s['median'], digits)} ({fmt(s['min'], digits)}–{fmt(s['max'], digits)})"


def fmt_calls(calls: dict | None) -> str:
    if calls is None:
        return "–"
    if not calls:
        return "0"
    total = sum(calls.values())
    return f"{total:g} (" + ", ".join(f"{name} {count:g}" for name, count in calls.items()) + ")"


def fmt_measured(row: dict) -> str:
    if row["measured"] is None:
        return "–"
    separator = "" if row["unit"] in ("", "x") else " "
    return f"{row['measured']:,.3g}{separator}{row['unit']}"


def targets_table(rows: list[dict]) -> list[str]:
    lines = ["| target | measured | goal | result |", "|---|---|---|---|"]
    for row in rows:
        result = row["result"] + (f" ({row['note']})" if row.get("note") else "")
        lines.append(f"| {row['target']} | {fmt_measured(row)} | {row['goal']} | {result} |")
    return lines


def ratios_table(rows: list[dict]) -> list[str]:
    lines = ["| ratio (req/s) | median | per-round min–max | goal |", "|---|---|---|---|"]
    for row in rows:
        value = f"{row['value']:.3g}x" if row["value"] is not None else f"– ({row.get('missing', '')})"
        per_round = row["per_round"]
        span = f"{per_round['min']:.3g}–{per_round['max']:.3g}" if per_round else "–"
        goal = f">= {row['minimum']:g}x" if row["minimum"] is not None else "(reported)"
        lines.append(f"| {row['ratio']} | {value} | {span} | {goal} |")
    return lines


def rate_cell(summary: dict) -> str:
    if len(summary["runs"]) == 1:
        return f"{fmt(summary['rps']['median'])} (one run)"
    return fmt_spread(summary["rps"])


def probes_table(summaries: Iterable[dict]) -> list[str]:
    lines = ["| scenario | server | request | N | C | req/s median (min–max) | p50 ms | p90 ms | p99 ms | n | errors "
             "| bytes/answer | CloudStack calls per call | bridge peak RSS MB | CPU µs/req wrk / server |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        if s["skipped"]:
            continue
        lat = s["latency_ms"]
        sig = " (SigV2)" if s["signature"] == "v2" else ""
        lines.append(
            f"| {s['scenarios'][0]} | {s['target']} | {s['request']}{sig} | {s['fleet']:,} | {s['concurrency']} "
            f"| {rate_cell(s)} | {fmt(lat['p50']['median'] if lat['p50'] else None, 2)} "
            f"| {fmt(lat['p90']['median'] if lat['p90'] else None, 2)} "
            f"| {fmt(lat['p99']['median'] if lat['p99'] else None, 2)} | {s['requests']:,} | {s['errors']} "
            f"| {fmt(s['response_bytes'], 0)} | {fmt_calls(s['cloudstack_calls_per_call'])} "
            f"| {fmt(s['bridge_peak_rss_mb'])} | {fmt(s['generator_cpu_us_per_request'], 0)} / "
            f"{fmt(s['server_cpu_us_per_request'], 0)} |")
    return lines


def scale_table(results: Results) -> list[str]:
    by_fleet = describe_instances_c1(results)
    if not by_fleet:
        return []
    lines = ["| N | first call ms (mints EC2 ids) | p50 ms | CloudStack calls per call | bridge peak RSS MB |",
             "|---|---|---|---|---|"]
    for n, s in sorted(by_fleet.items()):
        p50 = s["latency_ms"]["p50"]
        peak = max(filter(None, [s["bridge_peak_rss_mb"], s["first_call_peak_rss_mb"]]), default=None)
        lines.append(f"| {n:,} | {fmt(s['first_call_ms'])} | {fmt(p50['median'] if p50 else None, 2)} "
                     f"| {fmt_calls(s['cloudstack_calls_per_call'])} | {fmt(peak)} |")
    return lines


def run_instances_section(run: dict | None) -> list[str]:
    if run is None:
        return []
    if not run.get("available"):
        return [f"RunInstances: {run.get('reason')}"]
    return [f"- call latency: {run['call_s']:.3f} s, {run['instances_returned']} instances returned",
            f"- all running after {run['all_running_s']:.3f} s (deploy job {run['job_duration_s']} s, bridge job "
            f"poll interval {run['bridge_poll_interval_s']} s, harness polled every {run['harness_poll_s']} s, "
            f"{run['harness_polls']} polls); final states {run['final_states']}",
            f"- CloudStack calls during the call: {fmt_calls(run['cloudstack_calls_during_call'])}",
            f"- CloudStack calls from its return until all ran (includes the harness's polls): "
            f"{fmt_calls(run['cloudstack_calls_until_running'])}"]


def floor_section(summaries: Iterable[dict]) -> list[str]:
    seen = {}
    for s in summaries:
        if s["target"] == "floor" and s["cloudstack_params"] is not None:
            params = "&".join(f"{k}={v}" for k, v in sorted(s["cloudstack_params"].items())) or "(no parameters)"
            seen[s["request"]] = f"- `{s['request']}` with `{params}` ({s['cloudstack_params_source']})"
    return list(seen.values())


def skipped_section(summaries: Iterable[dict]) -> list[str]:
    return [f"- {s['key']}: {s['skipped']}" for s in summaries if s["skipped"]]


REPRODUCE = """\
## How to reproduce

```sh
./dev bench                     # the full run, about {full_minutes} minutes: bench/RESULTS.md, bench/results.jsonl
./dev bench --quick             # smoke run of every scenario path; its numbers mean nothing
./dev bench --only bridge moto  # some of: generator ceiling floor bridge moto scale run-instances
./dev bench --duration 10       # longer wrk runs (default 4 s)
```

Run it on an otherwise idle machine: ratios hold better than absolute numbers on a busy one, but
contention still shows. `wrk` is Debian's package (the harness runs `apt-get install -y wrk` if it
is missing). Every server is its own process on 127.0.0.1: the bridge (`ec2bridge serve
--cloudstack-url`, log level WARNING) in front of the CloudStack simulator (`python -m
bench.servers simulator`, seeded with N Running VMs and {keypairs} key pairs for its demo user),
moto (`moto_server`, loaded through boto3), an aiohttp server answering a fixed 1 KB XML body, and a
raw asyncio server for the generator's own ceiling.
"""

METHOD = """\
## Method

- Generator: `wrk -t1 -c C` replays one request signed in Python by botocore (SigV4 as boto3 sends
  it; SigV2 as boto 2 does) or by the bridge's CloudStack signer, re-signed before every run.
- Before timing, the identical bytes are sent once cold and {preflight} times warm; each answer is
  checked (status; the expected number of instances or list items). The simulator's per-command
  call counters around the warm calls give *CloudStack calls per call*.
- Each fleet size gets fresh servers; its probes run in {rounds} rounds (A/B/A/B), each run at least
  {duration} s, stretched for slow probes so each connection completes about 10 calls (at most
  {max_duration} s). Values are medians over rounds with min–max. Within a round the two sides of
  each target ratio run back to back; a ratio is the median of the per-round ratios, with their
  min–max (the ratio of medians when one side ran once). *n* is the number of completed requests
  over all rounds.
  A run must hold {min_waves} *waves* (C concurrent calls); a bridge probe too slow for that runs
  once, for {heavy_waves} waves ("one run"), and so does a moto probe; others that slow are listed as
  not measured.
- *CPU µs/req*: CPU time of wrk, and of the servers under test (bridge + simulator for the bridge),
  per completed request, from wait4 and /proc. *bridge peak RSS*: VmHWM of the largest bridge
  process (with several workers, of one worker), reset before each run.
"""


def header(meta: dict, profile: Profile) -> list[str]:
    smoke = " (smoke run: its numbers are not meaningful)" if profile.name == "quick" else ""
    return ["# ec2bridge benchmark: results of the last run", "",
            f"- mode: **{profile.name}**{smoke}, command `{meta['command']}`",
            f"- started {meta['started']}, took {meta['elapsed_minutes']:.1f} min; load average "
            f"{meta['load_before']} before, {meta['load_after']} after",
            f"- machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory_gb']:.0f} GB RAM, {meta['kernel']}",
            f"- software: Python {meta['python']}, {meta['wrk']}, moto {meta['moto']}, boto3 {meta['boto3']}, "
            f"aiohttp {meta['aiohttp']}",
            f"- code: {meta['git']}", ""]


def document(meta: dict, results: Results, ratios: list[dict], targets: list[dict]) -> str:
    profile = results.profile
    summaries = list(results.probes.values())
    lines = [*header(meta, profile), "## Targets", "", *targets_table(targets), "",
             "## Ratios", "", *ratios_table(ratios), "", "## Throughput and latency", "",
             *probes_table(summaries), ""]
    if floor := floor_section(summaries):
        lines += ["Backend floor requests (signed with the demo user's CloudStack keys, replayed straight to the "
                  "simulator):", "", *floor, ""]
    if scale := scale_table(results):
        lines += ["## DescribeInstances by fleet size (bridge, C=1)", "", *scale, ""]
    if results.run_instances is not None:
        lines += [f"## RunInstances MaxCount={profile.run_count}", "",
                  *run_instances_section(results.run_instances), ""]
    if skipped := skipped_section(summaries):
        lines += ["## Not measured", "", *skipped, ""]
    lines += [METHOD.format(preflight=meta["preflight_calls"], rounds=profile.rounds, duration=profile.duration,
                            max_duration=profile.max_duration, min_waves=MIN_WAVES,
                            heavy_waves=HEAVY_WAVES),
              REPRODUCE.format(full_minutes=meta["full_minutes"], keypairs=profile.keypairs)]
    return "\n".join(lines)


def json_lines(meta: dict, results: Results, ratios: list[dict], targets: list[dict]) -> str:
    records = [{"kind": "meta", **meta}, *results.probes.values(), *ratios, *targets]
    if results.run_instances is not None:
        records.append({"kind": "run_instances", **results.run_instances})
    return "".join(json.dumps(record, sort_keys=True, default=str) + "\n" for record in records)
