"""Fault injection: per-command rules for latency, errors, failed jobs, dropped and stalled requests.

A rule names a command (or ``*`` for all) and the odds of each fault; a failed call answers
``error_code``/``error_text``, a failed job ends with ``job_error_code`` and the same text.
Decisions come from one ``random.Random`` seeded from the configuration, so a seeded run injects
the same faults in the same order. Rules are plain data: they arrive from ``SimConfig.faults``,
from ``POST /sim/faults`` (JSON) and from tests through ``state.faults``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields


@dataclass
class FaultRule:
    command: str = "*"
    latency: float = 0.0            # seconds added before answering
    error_rate: float = 0.0         # share of calls answered with error_code/error_text
    error_code: int = 530
    error_text: str = "Internal error executing command, please contact your system administrator"
    job_failure_rate: float = 0.0   # share of async jobs that end with status 2 / job_error_code
    job_error_code: int = 530       # the failed job's errorcode: 533 is InsufficientCapacity, as deploys report it
    drop_rate: float = 0.0          # share of calls whose connection is closed without an answer
    stall_rate: float = 0.0         # share of calls never answered (until the client gives up)

    @classmethod
    def from_dict(cls, data: dict) -> "FaultRule":
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        rule = cls(**data)
        rule.validate()
        return rule

    def validate(self) -> None:
        for name in ("error_rate", "job_failure_rate", "drop_rate", "stall_rate"):
            rate = getattr(self, name)
            if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1")
        if not isinstance(self.latency, (int, float)) or self.latency < 0:
            raise ValueError("latency must be a non-negative number")
        for name in ("error_code", "job_error_code"):
            code = getattr(self, name)
            if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code <= 599:
                raise ValueError(f"{name} must be an HTTP error status (400-599)")
        if not isinstance(self.command, str) or not isinstance(self.error_text, str):
            raise ValueError("command and error_text must be strings")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FaultDecision:
    latency: float = 0.0
    drop: bool = False
    stall: bool = False
    error: FaultRule | None = None


NO_FAULT = FaultDecision()


class Faults:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = list(rules or [])
        self.random = random.Random(seed)

    def set_rules(self, rules: list[FaultRule]) -> None:
        self.rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        rule.validate()
        self.rules.append(rule)

    def clear(self) -> None:
        self.rules = []

    def seed(self, seed: int | None) -> None:
        self.random.seed(seed)

    def _matching(self, command: str) -> list[FaultRule]:
        return [rule for rule in self.rules if rule.command in ("*", command)]

    def decide(self, command: str) -> FaultDecision:
        """The faults to inject into one call of ``command``; drawn once per matching rule."""
        matching = self._matching(command)
        if not matching:
            return NO_FAULT
        latency, drop, stall, error = 0.0, False, False, None
        for rule in matching:
            latency += rule.latency
            drop = drop or self._hit(rule.drop_rate)
            stall = stall or self._hit(rule.stall_rate)
            if error is None and self._hit(rule.error_rate):
                error = rule
        return FaultDecision(latency, drop, stall, error)

    def job_failure(self, command: str) -> FaultRule | None:
        """The rule that makes this job of ``command`` fail, if one fires."""
        return next((rule for rule in self._matching(command) if self._hit(rule.job_failure_rate)), None)

    def _hit(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self.random.random() < rate)
