"""A real ``cxloop serve`` process for the load benchmarks (web_load, survey_load).

:func:`serve` starts it on a free port with its log in a folder, waits for ``/healthz``, yields a
:class:`Server`, and stops it (SIGINT, then SIGKILL after 30 s) when the block ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import psutil

CXLOOP = str(Path(sys.executable).parent / "cxloop")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started_s: float

    def _processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def rss_mb(self) -> float:
        """RSS of the server process and its children (workers), in MiB."""
        try:
            return float(sum(p.memory_info().rss for p in self._processes())) / 2**20
        except psutil.NoSuchProcess:
            return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) of the server process and its living children."""
        try:
            times = [p.cpu_times() for p in self._processes()]
        except psutil.NoSuchProcess:
            return float("nan")
        return float(sum(t.user + t.system for t in times))


@contextmanager
def serve(
    db: str | Path, folder: Path, *, workers: int = 1, start_timeout: float = 180.0
) -> Iterator[Server]:
    """``cxloop --db DB serve --port P [--workers N]`` until the block ends."""

    def command(port: int) -> list[str]:
        extra = ["--workers", str(workers)] if workers > 1 else []
        return [CXLOOP, "--db", str(db), "serve", "--port", str(port), *extra]

    with running(command, folder, f"server-{workers}w.log", folder, start_timeout) as server:
        yield server


@contextmanager
def serve_floor(folder: Path, *, workers: int = 1, start_timeout: float = 60.0) -> Iterator[Server]:
    """The bare Starlette app of :mod:`benchmarks.floor_app` under the same uvicorn, as cxloop
    serves (its HTTP parser and event loop, access log at info, ``workers`` processes)."""

    def command(port: int) -> list[str]:
        app = ["uvicorn", "benchmarks.floor_app:app", "--port", str(port), "--log-level", "info"]
        return [sys.executable, "-m", *app, "--workers", str(workers)]

    with running(command, folder, f"floor-{workers}w.log", ROOT, start_timeout) as server:
        yield server


@contextmanager
def running(
    command: Callable[[int], list[str]], folder: Path, log_name: str, cwd: Path, start_timeout: float
) -> Iterator[Server]:
    """``command(port)`` on a free port, its output in ``folder/log_name``, until ``/healthz``
    answers; stopped (SIGINT, then SIGKILL after 30 s) when the block ends."""
    port, log_path = free_port(), folder / log_name
    env = {k: v for k, v in os.environ.items() if k != "CXLOOP_DATABASE_URL"}
    env["CXLOOP_UPLOAD_DIR"] = str(folder / "uploads")
    t0 = time.perf_counter()
    with log_path.open("w") as out:
        process = subprocess.Popen(
            command(port), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx2.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start within {start_timeout:.0f} s:\n{log_path.read_text()}"
                )
            time.sleep(0.2)
        yield Server(base, port, process, log_path, time.perf_counter() - t0)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
