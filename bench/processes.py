"""Servers under test as child processes, observed through /proc.

Every server (bridge, simulator, moto, the harness's own) runs in its own process so that its CPU
time and memory are its own: CPU from ``/proc/PID/stat`` (utime + stime), memory from
``/proc/PID/status`` (``VmHWM`` is the peak resident set; writing ``5`` to ``/proc/PID/clear_refs``
resets it, so each measurement gets its own peak). Output goes to a log file in the session's
temporary directory, never to a pipe nobody reads. Readiness is an HTTP answer on a probe path
(and, for a server with several workers, the line it logs once all of them listen);
a server that exits first is reported with the end of its log.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]   # servers run from here, so ``-m bench.servers`` resolves


class ServerError(RuntimeError):
    """A server did not start, or stopped while it was needed."""


def free_port() -> int:
    """An ephemeral loopback port for a server whose command line needs a number up front."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server and its descendants (``serve --workers N`` forks workers)."""
        found, pending = [], [self.process.pid]
        while pending:
            pid = pending.pop()
            found.append(pid)
            try:
                pending += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                pass
        return found

    def cpu_seconds(self) -> float:
        """CPU time of the whole process tree."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15)
        return total / CLOCK_TICKS

    def memory_mb(self) -> dict[str, float]:
        """The largest current (VmRSS) and peak (VmHWM) resident set of any process of the tree, in MB."""
        values = {"VmRSS": 0.0, "VmHWM": 0.0}
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    name, _, rest = line.partition(":")
                    if name in values:
                        values[name] = max(values[name], int(rest.split()[0]) / 1024)
            except OSError:
                pass
        return {"rss_mb": round(values["VmRSS"], 1), "peak_rss_mb": round(values["VmHWM"], 1)}

    def reset_peak_memory(self) -> bool:
        try:
            for pid in self.pids():
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False   # not permitted: peaks then accumulate over the server's life

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServerError(failure(f"{self.name} exited with {self.process.returncode}", self.log_path))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def failure(what: str, log_path: Path, lines: int = 25) -> str:
    """``what``, the last line of the server's log (usually the exception) and, below, its tail."""
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        tail = []
    last = next((line.strip() for line in reversed(tail) if line.strip()), "(empty log)")
    return f"{what}: {last}\n" + "\n".join(tail)


def start(name: str, argv: list[str], port: int, log_dir: Path, *, probe_path: str = "/",
          ready_text: str | None = None, timeout: float = 90.0, env: dict[str, str] | None = None) -> Server:
    """Start ``argv`` and wait until it answers HTTP on ``probe_path`` (any status will do) and,
    if ``ready_text`` is given, has written it to its log: with several worker processes on one
    port, the first worker's answer does not mean the others listen yet."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=REPO, env={**os.environ, **(env or {})})
    server = Server(name, process, port, log_path)
    deadline = time.monotonic() + timeout
    while not (answers_http(port, probe_path) and (ready_text is None or ready_text in log_path.read_text())):
        server.check_alive()
        if time.monotonic() > deadline:
            server.stop()
            raise ServerError(failure(f"{name} did not answer on port {port} within {timeout:.0f}s", log_path))
        time.sleep(0.1)
    return server


def answers_http(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def wait_idle(servers: list[Server], *, timeout: float = 180.0) -> float:
    """Wait until the servers stop using CPU (e.g. still answering requests wrk abandoned at the end
    of its run), so one measurement never overlaps the next. Returns the seconds waited."""
    started = time.monotonic()
    quiet_ticks = 0
    before = sum(s.cpu_seconds() for s in servers)
    while quiet_ticks < 3 and time.monotonic() - started < timeout:
        time.sleep(0.1)
        now = sum(s.cpu_seconds() for s in servers)
        quiet_ticks = quiet_ticks + 1 if now - before <= 0.011 else 0
        before = now
    return time.monotonic() - started
