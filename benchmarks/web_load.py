"""Benchmark: the web application under load (issue 4, Acceptance).

Run from the project root (the venv active)::

    python -m benchmarks.web_load                                   # demo size, then 1M customers
    python -m benchmarks.web_load --customers 5000                  # the demo size only (~3 min)
    python -m benchmarks.web_load --customers 200 --clients 2 --requests 4    # smoke run

What it does, for each size in ``--customers``:

1. **Store**: ``cxloop demo --customers N --as-of DAY`` (a subprocess) into a DuckDB file cached in
   ``benchmarks/results/cache/`` (reused while its name -- size, seed, day -- matches; ``--fresh``
   rebuilds it). The run works on a copy, so the cache stays as ``cxloop demo`` left it.
2. **Account**: ``cxloop users create`` (analyst) and ``cxloop tokens create --json`` as
   subprocesses, before the server starts (the DuckDB file has one writer).
3. **Server**: a real ``cxloop serve`` process on a free port, its log in the run folder.
4. **Cold**: one request to each endpoint in turn, the server's first of each (the dashboard page
   goes first, so it may warm what the API endpoints share with it).
5. **Load**: per endpoint, ``--clients`` threads (one ``httpx2.Client`` each, bearer token) send
   requests back to back for ``--duration`` seconds (or ``--requests`` in all): requests, errors
   (non-2xx or transport errors, timeouts included), p50/p95/p99 latency, throughput. The
   baseline, measured first in the same run under the same concurrency, is ``GET /healthz``
   (no authentication, no computation): every endpoint's p95 is also shown as a ratio to it.
6. **Import**: an order-lines file (``--import-lines`` lines for existing customers, dated in the
   last complete month, so revenue, cohorts and RFM change) is posted to ``POST /api/v1/imports``
   and followed until done; then, per endpoint, the first request after it (recomputed) and
   ``--after-repeats`` more (cached again, if there is a cache), and whether each API answer
   changed (an answer identical to the one before the import would be a stale cache). Skipped with a
   note when the server has no imports API.
7. **Memory**: the server's RSS (its process and children, psutil) after start, after the load and
   after the import; its peak, sampled every 0.2 s.

Targets (issue 4): p95 under 300 ms at the demo size (<= 5,000 customers) and under 1 s at
1M customers (~10M order lines) on DuckDB, for every endpoint but the baseline. The machine's load
average is recorded with every size (the benchmark, the server and other work share its cores).
Results: a table per size and JSON in ``benchmarks/results/web_load.json``; exit status 1 when a
target is missed or a request failed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import psutil

from benchmarks.live_server import Server, serve

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache"
CXLOOP = str(Path(sys.executable).parent / "cxloop")
EMAIL = "web-load@example.com"

BASELINE = ("healthz", "/healthz")
ENDPOINTS = (
    ("dashboard page", "/"),
    ("KPI page nps", "/kpis/nps"),
    ("api summary", "/api/v1/summary"),
    ("api nps values", "/api/v1/kpis/nps/values?grain=month&change=true"),
    ("api cohorts", "/api/v1/cohorts"),
    ("api rfm segments", "/api/v1/rfm/segments"),
)
# The API answers the imported order lines must change (revenue, cohort revenue, RFM monetary);
# NPS rests on survey answers, which the import does not touch.
CHANGED_BY_IMPORT = {"/api/v1/summary", "/api/v1/cohorts", "/api/v1/rfm/segments"}
DEMO_SIZE = 5_000
BIG_SIZE = 1_000_000
TARGET_DEMO_P95 = 0.300
TARGET_BIG_P95 = 1.0


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def target_for(customers: int) -> float | None:
    """The issue's p95 target for a size: the demo size and below, or 1M and above."""
    if customers <= DEMO_SIZE:
        return TARGET_DEMO_P95
    if customers >= BIG_SIZE:
        return TARGET_BIG_P95
    return None


def machine_load() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2)}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ====================================================================== store and account


def cached_store(
    customers: int, seed: int, as_of: dt.date, fresh: bool, cache: Path
) -> tuple[Path, float | None]:
    """The demo store for the size, built with ``cxloop demo`` unless cached; returns its path and
    the build's seconds (None when it came from the cache)."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"web-demo-{customers}-seed{seed}-{as_of.isoformat()}.duckdb"
    if path.exists() and not fresh:
        log(f"store: reusing {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return path, None
    building = path.with_name(path.stem + ".building.duckdb")
    for stale in (building, Path(f"{building}.wal")):
        stale.unlink(missing_ok=True)
    log(f"store: cxloop demo --customers {customers:,} (seed {seed}, as of {as_of}) ...")
    t0 = time.perf_counter()
    run_cli(
        building, "demo", "--customers", str(customers), "--seed", str(seed), "--as-of", as_of.isoformat()
    )
    seconds = time.perf_counter() - t0
    log(f"store: built in {seconds:.1f} s")
    if Path(f"{building}.wal").exists():
        os.replace(f"{building}.wal", f"{path}.wal")
    os.replace(building, path)
    return path, seconds


def run_cli(db: Path, *args: str) -> str:
    """``cxloop --db DB ARGS`` as a subprocess; its standard output (fails loudly)."""
    env = {k: v for k, v in os.environ.items() if k != "CXLOOP_DATABASE_URL"} | {"COLUMNS": "200"}
    done = subprocess.run(
        [CXLOOP, "--db", str(db), *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cxloop {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def working_copy(store: Path, folder: Path) -> Path:
    """A fresh copy of the cached store in the run folder (the run writes users and an import)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    copy = folder / "store.duckdb"
    shutil.copyfile(store, copy)
    if Path(f"{store}.wal").exists():
        shutil.copyfile(f"{store}.wal", f"{copy}.wal")
    return copy


def create_account(db: Path) -> str:
    """An analyst (dashboards, data, imports) and an API token for it; returns the token."""
    run_cli(db, "users", "create", EMAIL, "--role", "analyst")
    made = json.loads(
        run_cli(db, "tokens", "create", "--user", EMAIL, "--role", "analyst", "--name", "web-load", "--json")
    )
    return str(made["token"])


# ====================================================================== the server


class RssSampler:
    """The server's peak RSS, sampled in a thread while the block runs; a server growing past
    ``limit_mb`` is killed (the machine is shared: 20 uncached dashboards at 1M customers took
    the server past 19 GB), which fails the requests in flight and ends the run."""

    def __init__(self, server: Server, limit_mb: float, every: float = 0.2) -> None:
        self.server, self.limit_mb, self.every, self.peak = server, limit_mb, every, server.rss_mb()
        self.killed_at_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            rss = self.server.rss_mb()
            if rss == rss:  # not NaN
                self.peak = max(self.peak, rss)
                if rss > self.limit_mb and self.killed_at_mb is None:
                    self.killed_at_mb = rss
                    log(f"server RSS {rss:,.0f} MB is over --max-rss-mb {self.limit_mb:,.0f}: killing it")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.server.process.pid, signal.SIGKILL)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def log_problems(log_path: Path, limit: int = 3) -> dict[str, Any]:
    """Tracebacks and ERROR lines in the server's log (the first few tracebacks in full)."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    tracebacks = re.findall(r"Traceback \(most recent call last\):.*?(?=\n\S|\Z)(?:\n\S[^\n]*)?", text, re.S)
    errors = [line for line in text.splitlines() if line.startswith("ERROR")]
    return {"tracebacks": len(tracebacks), "error_lines": len(errors), "first_tracebacks": tracebacks[:limit]}


# ====================================================================== load


@dataclass
class Phase:
    name: str
    path: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    load: dict[str, Any] = field(default_factory=dict)

    def add(self, seconds: float, outcome: str | None) -> None:
        """One request: its latency, and its error (None for a 2xx answer)."""
        self.latencies.append(seconds)
        if outcome is not None:
            self.errors[outcome] = self.errors.get(outcome, 0) + 1

    def summary(self) -> dict[str, Any]:
        n, failed = len(self.latencies), sum(self.errors.values())
        return {
            "endpoint": self.name,
            "path": self.path,
            "requests": n,
            "errors": failed,
            "error_kinds": self.errors,
            "p50_s": percentile(self.latencies, 50),
            "p95_s": percentile(self.latencies, 95),
            "p99_s": percentile(self.latencies, 99),
            "max_s": max(self.latencies) if self.latencies else None,
            "throughput_rps": (n - failed) / self.wall_s if self.wall_s else None,
            "wall_s": self.wall_s,
            "server_cpu_s": self.server_cpu_s,
            "server_cpu_ms_per_request": 1000 * self.server_cpu_s / n if n else None,
            "machine_load": self.load,
        }


def client(base: str, token: str, timeout: float) -> httpx2.Client:
    return httpx2.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def timed_get(http: httpx2.Client, path: str) -> tuple[float, str | None, httpx2.Response | None]:
    """GET path: seconds to the whole body, the error (None if 2xx) and the response."""
    t0 = time.perf_counter()
    try:
        response = http.get(path)
    except httpx2.HTTPError as exc:
        return time.perf_counter() - t0, type(exc).__name__, None
    seconds = time.perf_counter() - t0
    return seconds, None if 200 <= response.status_code < 300 else str(response.status_code), response


def run_phase(
    server: Server,
    token: str,
    name: str,
    path: str,
    *,
    clients: int,
    duration: float | None,
    requests: int | None,
    timeout: float,
) -> Phase:
    """``clients`` threads sending ``GET path`` back to back until ``duration`` seconds have passed
    (no new request starts after) or ``requests`` have been sent in all."""
    phase = Phase(name, path)
    lock = threading.Lock()
    budget = [requests if requests is not None else -1]
    ready = threading.Barrier(clients + 1)
    deadline = [0.0]

    def take() -> bool:
        if duration is not None and time.perf_counter() >= deadline[0]:
            return False
        with lock:
            if budget[0] == 0:
                return False
            budget[0] -= 1
            return True

    def worker() -> None:
        with client(server.base, token, timeout) as http:
            ready.wait()
            while take():
                seconds, outcome, _ = timed_get(http, path)
                with lock:
                    phase.add(seconds, outcome)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    cpu0 = server.cpu_s()
    t0 = time.perf_counter()
    deadline[0] = t0 + (duration or 0.0)
    ready.wait()
    for thread in threads:
        thread.join()
    phase.wall_s = time.perf_counter() - t0
    phase.server_cpu_s = server.cpu_s() - cpu0
    phase.load = machine_load()
    return phase


def wait_idle(server: Server, limit: float, busy_percent: float = 15.0) -> tuple[float, bool]:
    """Wait (up to ``limit`` seconds) until the server uses under ``busy_percent`` of a core over a
    second -- requests of the phase before, abandoned by timed-out clients, may still be
    computing; returns the seconds waited and whether it went idle."""
    t0 = time.perf_counter()
    try:
        process = psutil.Process(server.process.pid)
        while time.perf_counter() - t0 < limit:
            if process.cpu_percent(interval=1.0) < busy_percent:
                return time.perf_counter() - t0, True
    except psutil.NoSuchProcess:
        pass
    waited = time.perf_counter() - t0
    log(f"server still busy after {waited:.0f} s; measuring anyway")
    return waited, False


# ====================================================================== import and the cache


def has_imports_api(http: httpx2.Client) -> bool:
    """Whether the server has the imports API (its list answers; an unknown route is a 404)."""
    return http.get("/api/v1/imports").status_code == 200


def last_complete_month_day(today: dt.date) -> dt.date:
    first = today.replace(day=1)
    previous = (first - dt.timedelta(days=1)).replace(day=15)
    return previous


def order_lines_file(http: httpx2.Client, lines: int, run_id: str) -> bytes:
    """An order-lines CSV: one line per order for existing customers, dated mid last month."""
    found = http.get("/api/v1/customers", params={"limit": max(1, min(lines, 100))})
    found.raise_for_status()
    customers = [c["customer_id"] for c in found.json()["items"]]
    day = last_complete_month_day(dt.datetime.now(dt.UTC).date())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["order_id", "line_no", "product_id", "quantity", "unit_price", "amount", "customer_id", "ordered_at"]
    )
    for i in range(lines):
        at = dt.datetime.combine(day, dt.time(12)) + dt.timedelta(minutes=i)
        writer.writerow(
            [
                f"WEBLOAD-{run_id}-{i}",
                1,
                "P-WEBLOAD",
                1,
                "25.00",
                "25.00",
                customers[i % len(customers)],
                at.isoformat(),
            ]
        )
    return out.getvalue().encode()


def import_check(
    server: Server, token: str, args: argparse.Namespace, before: dict[str, str]
) -> dict[str, Any]:
    """Post an import, wait for it, then time the first request after it per endpoint and the
    next ``after_repeats`` (one client), and say whether each API answer changed."""
    with client(server.base, token, args.timeout) as http:
        if not has_imports_api(http):
            note = "skipped: the server has no POST /api/v1/imports yet"
            log(f"import: {note}")
            return {"skipped": True, "note": note}
        body = order_lines_file(http, args.import_lines, dt.datetime.now().strftime("%Y%m%d%H%M%S"))
        t0 = time.perf_counter()
        posted = http.post(
            "/api/v1/imports",
            data={"entity": "order-lines"},
            files={"file": ("web-load-order-lines.csv", body, "text/csv")},
        )
        if posted.status_code != 202:
            note = f"the import was refused: {posted.status_code} {posted.text[:500]}"
            log(f"import: {note}")
            return {"skipped": False, "ok": False, "note": note}
        location = posted.headers["location"]
        job: dict[str, Any] = posted.json()
        while job["status"] in ("queued", "running") and time.perf_counter() - t0 < args.timeout:
            time.sleep(0.1)
            job = http.get(location).json()
        import_s = time.perf_counter() - t0
        log(f"import: {job['status']} in {import_s:.2f} s ({job.get('loaded')} lines loaded)")
        result: dict[str, Any] = {
            "skipped": False,
            "ok": job["status"] == "done",
            "lines": args.import_lines,
            "job_status": job["status"],
            "job_error": job.get("error"),
            "loaded": job.get("loaded"),
            "import_s": import_s,
            "endpoints": [],
        }
        for name, path in args.endpoints:
            first, outcome, response = timed_get(http, path)
            repeats = [timed_get(http, path) for _ in range(args.after_repeats)]
            changed = None
            if path.startswith("/api/") and response is not None and outcome is None and path in before:
                changed = response.text != before[path]
            result["endpoints"].append(
                {
                    "endpoint": name,
                    "path": path,
                    "first_s": first,
                    "first_error": outcome,
                    "then_median_s": percentile([r[0] for r in repeats], 50),
                    "then_max_s": max((r[0] for r in repeats), default=None),
                    "then_errors": sum(r[1] is not None for r in repeats),
                    "answer_changed": changed,
                    "change_expected": path in CHANGED_BY_IMPORT,
                }
            )
            log(
                f"after import: {name}: first {fmt_ms(first)} ms, "
                f"then {fmt_ms(result['endpoints'][-1]['then_median_s'])} ms"
            )
        return result


# ====================================================================== one size


def measure(store: Path, token: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start the server on ``store`` (a working copy) and run the cold requests, the load phases
    and the import check against it."""
    result: dict[str, Any] = {"load_start": machine_load()}
    with serve(store, folder) as server:
        log(f"server: up in {server.started_s:.1f} s at {server.base} (pid {server.process.pid})")
        result["server_start_s"] = server.started_s
        result["rss_mb"] = {"started": server.rss_mb()}
        with RssSampler(server, args.max_rss_mb) as sampler:
            cold = []
            with client(server.base, token, args.timeout) as http:
                for name, path in (BASELINE, *args.endpoints):
                    seconds, outcome, _ = timed_get(http, path)
                    cold.append({"endpoint": name, "path": path, "seconds": seconds, "error": outcome})
                    log(f"cold: {name} {fmt_ms(seconds)} ms{'' if outcome is None else ' ERROR ' + outcome}")
            result["cold"] = cold
            phases = []
            for name, path in (BASELINE, *args.endpoints):
                if sampler.killed_at_mb is not None:
                    break
                settled = wait_idle(server, args.settle)
                phase = run_phase(
                    server,
                    token,
                    name,
                    path,
                    clients=args.clients,
                    duration=args.duration,
                    requests=args.requests,
                    timeout=args.timeout,
                )
                s = phase.summary() | {"settle_s": settled[0], "settled": settled[1]}
                phases.append(s)
                log(
                    f"load: {name}: {s['requests']} requests, {s['errors']} errors, "
                    f"p50 {fmt_ms(s['p50_s'])}, "
                    f"p95 {fmt_ms(s['p95_s'])}, p99 {fmt_ms(s['p99_s'])}, load {phase.load['load_1m']}"
                )
            result["phases"] = phases
            result["rss_mb"]["after_load"] = server.rss_mb()
            before: dict[str, str] = {}
            if sampler.killed_at_mb is not None:
                result["import"] = {"skipped": True, "note": "skipped: the server was killed (RSS)"}
            elif not args.no_import:
                with client(server.base, token, args.timeout) as http:
                    for _, path in args.endpoints:
                        if path.startswith("/api/"):
                            seconds, outcome, response = timed_get(http, path)
                            if response is not None and outcome is None:
                                before[path] = response.text
                result["import"] = import_check(server, token, args, before)
                result["rss_mb"]["after_import"] = server.rss_mb()
            else:
                result["import"] = {"skipped": True, "note": "skipped: --no-import"}
        result["rss_mb"]["peak"] = sampler.peak
        result["killed_at_rss_mb"] = sampler.killed_at_mb
        result["server_cpu_s"] = server.cpu_s()
    result["server_log"] = str(server.log_path)
    result["server_log_problems"] = log_problems(server.log_path)
    result["load_end"] = machine_load()
    return result


def verdicts(size: dict[str, Any]) -> None:
    """Add the p95 ratio to the baseline and PASS/MISS against the size's target to each phase."""
    phases = size["phases"]
    base = next((p for p in phases if p["endpoint"] == BASELINE[0]), {"p95_s": None})
    target = size["target_p95_s"]
    for p in phases:
        p["p95_ratio_to_healthz"] = p["p95_s"] / base["p95_s"] if p["p95_s"] and base["p95_s"] else None
        if p["endpoint"] == BASELINE[0] or target is None or p["p95_s"] is None:
            p["verdict"] = "-"
        else:
            p["verdict"] = "PASS" if p["p95_s"] < target and p["errors"] == 0 else "MISS"


def run_size(customers: int, args: argparse.Namespace) -> dict[str, Any]:
    store, built_s = cached_store(customers, args.seed, args.as_of, args.fresh, args.cache)
    folder = args.workdir / f"web-{customers}"
    copy = working_copy(store, folder)
    log("account: cxloop users create / tokens create ...")
    token = create_account(copy)
    size = {
        "customers": customers,
        "store": str(store),
        "store_mb": store.stat().st_size / 2**20,
        "store_build_s": built_s,
        "target_p95_s": target_for(customers),
        **measure(copy, token, folder, args),
    }
    verdicts(size)
    if not args.keep:
        for leftover in (copy, Path(f"{copy}.wal")):
            leftover.unlink(missing_ok=True)
    return size


# ====================================================================== output


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}"


def render(size: dict[str, Any]) -> str:
    """The size's results as plain text tables."""
    target = size["target_p95_s"]
    lines = [
        f"\n== {size['customers']:,} customers (store {size['store_mb']:,.0f} MB); p95 target "
        f"{'none' if target is None else f'{target * 1000:.0f} ms'}; machine load "
        f"{size['load_start']['load_1m']} -> {size['load_end']['load_1m']} (1 min), "
        f"{os.cpu_count()} CPUs; server up in {size['server_start_s']:.1f} s",
        f"{'endpoint':<17} {'reqs':>5} {'err':>4} {'cold ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'req/s':>7} {'cpu ms/r':>8} {'p95/hz':>7}  target",
    ]
    cold = {c["endpoint"]: c for c in size["cold"]}
    for p in size["phases"]:
        ratio = p["p95_ratio_to_healthz"]
        rps = p["throughput_rps"]
        per_request = p["server_cpu_ms_per_request"]
        cpu = "-" if per_request is None else f"{per_request:,.0f}"
        lines.append(
            f"{p['endpoint']:<17} {p['requests']:>5} {p['errors']:>4} "
            f"{fmt_ms(cold[p['endpoint']]['seconds']):>8} "
            f"{fmt_ms(p['p50_s']):>8} {fmt_ms(p['p95_s']):>8} {fmt_ms(p['p99_s']):>8} "
            f"{'-' if rps is None else f'{rps:.1f}':>7} {cpu:>8} "
            f"{'-' if ratio is None else f'{ratio:.0f}x':>7}  {p['verdict']}"
        )
    rss = size["rss_mb"]
    lines.append(
        "server RSS MB: "
        + ", ".join(f"{k.replace('_', ' ')} {v:,.0f}" for k, v in rss.items())
        + f"; server CPU {size['server_cpu_s']:.0f} s"
    )
    imp = size["import"]
    if imp.get("skipped"):
        lines.append(f"import: {imp['note']}")
    elif not imp.get("ok"):
        lines.append(f"import: FAILED: {imp.get('note') or imp.get('job_error')}")
    else:
        lines.append(
            f"import of {imp['lines']} order lines: {imp['job_status']} in {imp['import_s']:.2f} s; "
            "then, one client:"
        )
        lines.append(f"  {'endpoint':<17} {'first ms':>9} {'then ms':>9} {'max ms':>8}  answer changed")
        for e in imp["endpoints"]:
            if e["answer_changed"] is None:
                changed = "-"
            elif e["answer_changed"]:
                changed = "yes" if e["change_expected"] else "yes (unexpected)"
            else:
                changed = "NO: STALE" if e["change_expected"] else "no (as expected)"
            err = (
                ""
                if e["first_error"] is None and not e["then_errors"]
                else f" errors: {e['first_error']}/{e['then_errors']}"
            )
            lines.append(
                f"  {e['endpoint']:<17} {fmt_ms(e['first_s']):>9} {fmt_ms(e['then_median_s']):>9} "
                f"{fmt_ms(e['then_max_s']):>8}  {changed}{err}"
            )
    if size.get("killed_at_rss_mb") is not None:
        lines.append(f"server KILLED at RSS {size['killed_at_rss_mb']:,.0f} MB (--max-rss-mb); run cut short")
    problems = size["server_log_problems"]
    if problems["tracebacks"] or problems["error_lines"]:
        lines.append(
            f"server log: {problems['tracebacks']} traceback(s), {problems['error_lines']} ERROR line(s): "
            f"{size['server_log']}"
        )
    return "\n".join(lines)


def endpoint_key(name: str) -> str:
    return name.lower().replace(" ", "-")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", default=f"{DEMO_SIZE},{BIG_SIZE}", help="sizes, comma-separated")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (threads)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per endpoint")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests per endpoint (instead of --duration)"
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds before a request counts as failed"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=None, help="the demo's last day (default today)"
    )
    parser.add_argument(
        "--endpoints",
        default=",".join(endpoint_key(name) for name, _ in ENDPOINTS),
        help="which endpoints (comma-separated; default all)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=120.0,
        help="before each phase, wait up to this many seconds for the server to go idle",
    )
    parser.add_argument(
        "--max-rss-mb",
        type=float,
        default=8192.0,
        help="kill the server (and end the size's run) when its RSS passes this",
    )
    parser.add_argument("--import-lines", type=int, default=20)
    parser.add_argument("--after-repeats", type=int, default=5)
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached stores")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument(
        "--workdir", type=Path, default=RESULTS / "web-runs", help="run folders (store copy, server log)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's store copy")
    parser.add_argument("--out", type=Path, default=RESULTS / "web_load.json")
    args = parser.parse_args(argv)
    keys = {endpoint_key(name): (name, path) for name, path in ENDPOINTS}
    wanted = [k.strip() for k in str(args.endpoints).split(",") if k.strip()]
    unknown = [k for k in wanted if k not in keys]
    if unknown:
        parser.error(f"unknown endpoint(s) {', '.join(unknown)}; choose from {', '.join(keys)}")
    args.endpoints = [keys[k] for k in wanted]
    args.sizes = [int(s.replace("_", "")) for s in str(args.customers).split(",") if s.strip()]
    if args.requests is not None:
        args.duration = None
    if args.as_of is None:
        args.as_of = dt.datetime.now(dt.UTC).date()
    return args


def code_state() -> dict[str, Any]:
    """The commit measured, and the files of ``src/`` changed in the working tree beside it (the
    checkout is shared: the server runs whatever is there)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.rstrip("\n")

    return {"commit": git("rev-parse", "HEAD"), "src_changes": git("status", "--short", "src").splitlines()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, Any] = {
        "benchmark": "web_load",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": code_state(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": {
            "clients": args.clients,
            "duration_s": args.duration,
            "requests": args.requests,
            "timeout_s": args.timeout,
            "seed": args.seed,
            "as_of": args.as_of.isoformat(),
            "endpoints": [path for _, path in args.endpoints],
            "settle_s": args.settle,
        },
        "sizes": [],
    }
    failed = False
    for customers in args.sizes:
        size = run_size(customers, args)
        results["sizes"].append(size)
        print(render(size), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
        failed |= any(p["verdict"] == "MISS" or p["errors"] for p in size["phases"])
        failed |= size.get("killed_at_rss_mb") is not None
        imported = size["import"]
        failed |= bool(imported.get("skipped") is False and not imported.get("ok"))
        failed |= any(
            e["change_expected"] and e["answer_changed"] is False for e in imported.get("endpoints", [])
        )
    log(f"results: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
