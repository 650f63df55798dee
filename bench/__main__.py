"""``python -m bench [--quick] [--duration S] [--rounds R] [--only SCENARIO...] [--out FILE]``."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import bench
from bench import plan, report, run_instances, runner, wrk
from bench.processes import REPO

FULL_RUN_MINUTES = 15   # the full profile on the 2-core reference machine, busy with other work


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=bench.__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1 s runs, small fleets, 2 rounds")
    parser.add_argument("--duration", type=positive_int, metavar="S", help="seconds per wrk run (at least)")
    parser.add_argument("--rounds", type=positive_int, metavar="R", help="A/B rounds (default 3, quick 2)")
    parser.add_argument("--only", nargs="+", choices=plan.SCENARIOS, metavar="SCENARIO",
                        help=f"run only these scenarios: {' '.join(plan.SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md", help="markdown results file")
    parser.add_argument("--jsonl", type=Path, help="JSON lines file (default: results.jsonl next to --out)")
    return parser.parse_args(argv)


def choose_profile(args: argparse.Namespace) -> plan.Profile:
    profile = plan.QUICK if args.quick else plan.FULL
    if args.duration:
        profile = profile.with_duration(args.duration)
    if args.rounds:
        profile = replace(profile, rounds=args.rounds)
    return profile


def machine(wrk_path: str) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_kb / 1024 / 1024,
            "kernel": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "wrk": wrk.version(wrk_path), "moto": package_version("moto"), "boto3": package_version("boto3"),
            "aiohttp": package_version("aiohttp"), "git": git_description()}


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_description() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown (git not available)"
    return f"git {commit}" + (" with uncommitted changes" if dirty else "")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    profile = choose_profile(args)
    only = set(args.only or plan.SCENARIOS)
    jsonl_path = args.jsonl or args.out.with_name("results.jsonl")
    try:
        for path in (args.out, jsonl_path):   # fail now, not after a quarter of an hour of measuring
            path.parent.mkdir(parents=True, exist_ok=True)
            path.open("a").close()
        wrk_path = wrk.ensure_installed()
    except (OSError, wrk.WrkError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    meta = {"command": shlex.join(["python", "-m", "bench", *argv]), "profile": profile.name,
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load_before": load_average(),
            "preflight_calls": runner.PREFLIGHT_CALLS, **machine(wrk_path)}
    started = time.monotonic()
    # Stopped with SIGTERM, unwind like Ctrl-C does, so that every server started is stopped
    # (a moto left running would burn CPU under the next measurement).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:5.0f}s] {message}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ec2bridge-bench-") as workdir:
        session = runner.Session(profile, Path(workdir), wrk_path, log)
        probe_results = session.run(plan.build(profile, only))
        ran = run_instances.run(profile, Path(workdir), session.keys, log) if "run-instances" in only else None
    elapsed = (time.monotonic() - started) / 60
    meta.update(elapsed_minutes=elapsed, load_after=load_average(),
                full_minutes=round(elapsed) if profile.name == "full" and only == set(plan.SCENARIOS)
                else FULL_RUN_MINUTES)
    results = report.Results(profile, {r.probe.key: report.summarize(r) for r in probe_results},
                             {r.probe.key: r for r in probe_results}, ran)
    ratios = [report.ratio(results, target) for target in plan.ratio_targets(profile)]
    targets = report.all_targets(results, ratios)
    document = report.document(meta, results, ratios, targets)
    args.out.write_text(document)
    jsonl_path.write_text(report.json_lines(meta, results, ratios, targets))
    print("\n" + document.split("## Method")[0].rstrip())
    print(f"\nwrote {args.out} and {jsonl_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
