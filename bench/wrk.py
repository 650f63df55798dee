"""The load generator: Debian's ``wrk`` replaying one pre-signed request from C connections.

``wrk`` is a C event loop; one thread of it keeps thousands of connections busy at a small
fraction of the CPU a Python server spends per request, so the server, not the generator, sets
the pace (``generator`` scenario and the ``gen CPU`` column measure that). The request is signed
once in Python (``bench.signed``) and baked into a generated Lua script; the script's ``done``
hook prints one ``BENCH-RESULT {json}`` line, so results are read as data rather than scraped
from wrk's human-readable summary (whose units change with magnitude).

A response with a status >= 400 is counted by wrk in ``errors.status``; the harness checks the
body of the same request separately before a run (``bench.runner.preflight``), because asking wrk
to hand every body to Lua would make the generator pay for each response.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

RESULT_MARK = "BENCH-RESULT "

# wrk's per-request timeout: calls over 10,000 instances take seconds each at C=16, and a
# timed-out request would be a measurement artefact, not a server error.
TIMEOUT_SECONDS = 120

# %.0f, not %d: Lua 5.1's %d goes through a C int, and byte counts of long runs exceed 2**31.
DONE_HOOK = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  local count = summary.requests
  io.write(string.format(
    '%s{"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,"errors":{"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f},"latency_us":{"min":%.0f,"max":%.0f,"mean":%.1f,' ..
    '"p50":%.0f,"p90":%.0f,"p99":%.0f}}\n',
    MARK, summary.duration, count, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    count > 0 and latency.min or 0, count > 0 and latency.max or 0, count > 0 and latency.mean or 0,
    count > 0 and latency:percentile(50) or 0, count > 0 and latency:percentile(90) or 0,
    count > 0 and latency:percentile(99) or 0))
end
"""


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    duration_s: float
    requests: int
    bytes: int
    errors: dict[str, int]
    latency_ms: dict[str, float]   # min, max, mean, p50, p90, p99

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict:
        return {"duration_s": round(self.duration_s, 3), "requests": self.requests, "rps": round(self.rps, 1),
                "bytes": self.bytes, "errors": self.errors,
                "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()}}


def parse_output(text: str) -> WrkResult:
    """The result line the generated script's ``done`` hook printed, as a :class:`WrkResult`."""
    line = next((line for line in text.splitlines() if line.startswith(RESULT_MARK)), None)
    if line is None:
        raise WrkError(f"wrk printed no {RESULT_MARK.strip()} line; its output was:\n{text.strip()[-2000:]}")
    try:
        data = json.loads(line[len(RESULT_MARK):])
        latency = {name: float(value) / 1000.0 for name, value in data["latency_us"].items()}
        errors = {name: int(value) for name, value in data["errors"].items()}
        return WrkResult(duration_s=int(data["duration_us"]) / 1e6, requests=int(data["requests"]),
                         bytes=int(data["bytes"]), errors=errors, latency_ms=latency)
    except (ValueError, KeyError, TypeError) as error:
        raise WrkError(f"unreadable wrk result line {line!r}: {error}") from None


def lua_string(text: str) -> str:
    """A Lua string literal for ``text`` (bytes outside printable ASCII as ``\\ddd`` escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_script(method: str, path: str, headers: Mapping[str, str], body: bytes) -> str:
    """A wrk script sending exactly this request on every connection, and printing the result."""
    lines = [f"wrk.method = {lua_string(method)}", f"wrk.path = {lua_string(path)}",
             f"wrk.body = {lua_string(body.decode('utf-8'))}", f"MARK = {lua_string(RESULT_MARK)}"]
    for name, value in headers.items():
        if name.lower() != "content-length":   # wrk.format sets Content-Length from the body itself
            lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    return "\n".join(lines) + "\n" + DONE_HOOK


def ensure_installed() -> str:
    """The path of wrk, installing Debian's package first if it is missing (we run as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk is not installed; running apt-get update && apt-get install -y wrk", file=sys.stderr)
    try:
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as error:
        raise WrkError(f"could not install wrk with apt-get ({error}); install it and run again") from None
    found = shutil.which("wrk")
    if not found:
        raise WrkError("apt-get installed wrk but it is not on PATH")
    return found


def version(executable: str) -> str:
    result = subprocess.run([executable, "--version"], capture_output=True, text=True)
    words = (result.stdout or result.stderr).split()
    return " ".join(words[:2]) if words else "?"   # "wrk debian/4.1.0-3+b2"


@dataclass(frozen=True)
class WrkRun:
    result: WrkResult
    cpu_seconds: float   # user + system time wrk itself used


def run(executable: str, url: str, script: Path, *, connections: int, seconds: int) -> WrkRun:
    """Run wrk (one thread: the generator must stay well below one core) and return its result."""
    argv = [executable, "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={TIMEOUT_SECONDS}s",
            "-s", str(script), url]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    # wait4 rather than wait: it also returns the child's resource usage (its CPU time).
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode != 0:
        raise WrkError(f"wrk exited with {process.returncode}: {output.strip()[-2000:]}")
    return WrkRun(parse_output(output), usage.ru_utime + usage.ru_stime)
