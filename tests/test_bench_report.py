"""How the benchmark turns runs into ratios, and the order a round runs its probes in."""

from __future__ import annotations

from bench import plan, report
from bench.plan import FULL, Probe
from bench.runner import ProbeResult, Run
from bench.wrk import WrkResult

TOP = Probe(("bridge",), "bridge", "DescribeInstances", 50, 16)
BOTTOM = Probe(("floor",), "floor", "listVirtualMachines", 50, 16, "cloudstack")
TARGET = plan.RatioTarget("bridge / floor", TOP, BOTTOM, 0.5)


def result(probe: Probe, *rates: float) -> ProbeResult:
    runs = [Run(number, 1, WrkResult(1.0, int(rate), 0, {}, {}), 0.0, {}, {}, 0.0)
            for number, rate in enumerate(rates, start=1)]
    return ProbeResult(probe, runs=runs, rounds=len(runs))


def ratio(top: ProbeResult, bottom: ProbeResult) -> dict:
    results = report.Results(FULL, {}, {TOP.key: top, BOTTOM.key: bottom}, None)
    return report.ratio(results, TARGET)


def test_a_ratio_is_the_median_of_the_rounds_ratios():
    # Per round: 0.5, 0.6, 0.4 -> 0.5. The ratio of the medians (500 / 1000) would be 0.5 too,
    # so the second side is skewed to tell the two apart: 0.9, 0.3, 0.45 -> 0.45, medians 0.5.
    row = ratio(result(TOP, 900, 300, 450), result(BOTTOM, 1000, 1000, 1000))
    assert row["value"] == 0.45
    assert row["per_round"]["min"] == 0.3 and row["per_round"]["max"] == 0.9


def test_a_side_run_once_gives_the_ratio_of_medians():
    row = ratio(result(TOP, 900, 300, 500), result(BOTTOM, 1000))
    assert row["value"] == 0.5  # median 500 / 1000; round 1 alone would say 0.9


def test_the_two_sides_of_each_target_ratio_run_back_to_back():
    order = [probe.key for probe in plan.main_fleet_probes(FULL)]
    for target in plan.ratio_targets(FULL):
        if target.minimum is not None and target.denominator.target != "moto":
            gap = abs(order.index(target.numerator.key) - order.index(target.denominator.key))
            assert gap == 1, target.label
