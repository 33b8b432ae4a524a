"""Benchmark: people answering surveys, against a real ``cxloop serve`` (issue 7, Acceptance).

Run from the project root (the venv active)::

    python -m benchmarks.survey_load                          # DuckDB, then PostgreSQL with 4 workers
    python -m benchmarks.survey_load --backends duckdb --seconds 10 --users 10     # a smoke run
    python -m benchmarks.survey_load --backends postgres --workers 2 4

What it does, per backend:

1. **Store**: a fresh DuckDB file, or a fresh schema in PostgreSQL (``--pg-url``); an NPS survey,
   live, with one follow-up question; ``--links`` personal links made in bulk (the core library,
   before the server starts: the DuckDB file has one writer).
2. **Server**: a real ``cxloop serve`` process (``--workers`` on PostgreSQL), its log in the run folder.
3. **Baseline**: ``GET /healthz`` under the same concurrency for ``--baseline-seconds``: what the
   machine and client do with no survey work at all; answers/s is shown beside a third of it (an
   answer is three requests).
4. **Load**: ``--users`` respondents (asyncio tasks over ``--clients`` client processes) for
   ``--seconds``; each takes a fresh link and does what a person does: open the page (GET), give
   the score (POST, 303), give the comment (POST, 303). An answer counts when both POSTs were
   acknowledged. Latency per request (p50/p95/p99), errors by kind, 5xx separately.
5. **Check**: afterwards, every acknowledged answer must be in ``survey_responses``: the count and
   an MD5 over the sorted ``score|comment`` lines, computed by the clients and by the database.

Targets (issue 7): >= 1,000 answers/s on PostgreSQL with several workers, >= 300/s on DuckDB, no
answer lost, no 5xx. The machine's load average is recorded (the benchmark's clients, the server
and other work share its cores). Results: a table per run, JSON in
``benchmarks/results/survey_load.json``; exit status 1 when a target is missed or an answer lost.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import multiprocessing as mp
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from benchmarks.lean_http import Connection, Reply
from benchmarks.live_server import serve, serve_floor

RESULTS = Path(__file__).parent / "results"
PG_URL = os.environ.get("CXLOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TARGETS = {"duckdb": 300.0, "postgres": 1000.0}
SURVEY = {
    "id": "bench",
    "name": "Load benchmark",
    "main": {"kind": "nps"},
    "follow_up": [{"min": 0, "max": 6, "text": "What went wrong?"}],
    "edit_window_hours": 1,
}
FORM_TOKEN = re.compile(rb'name="form_token" value="([^"]+)"')


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ====================================================================== store and server


def prepare(url: str, links: int) -> list[str]:
    """The survey, live, and ``links`` personal links; returns their tokens."""
    from cxloop.store.store import Store
    from cxloop.surveys import links as survey_links
    from cxloop.surveys import versions
    from cxloop.surveys.definitions import parse_definition

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Store.open(url) as store:
        versions.create_survey(store, parse_definition(SURVEY), now=now)
        versions.set_state(store, "bench", "live", now=now)
        customers = [(f"B{i:07d}", None) for i in range(links)]
        made = survey_links.create_links(store, "bench", customers, now=now, channel="bench")
    return [m.token for m in made]


# ====================================================================== the respondents


async def _respondents(
    port: int, tokens: list[str], users: int, seconds: float, baseline: bool
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {"open": [], "score": [], "comment": [], "healthz": []}
    errors: dict[str, int] = {}
    answered: list[str] = []
    queue = list(reversed(tokens))
    stop = time.perf_counter() + seconds

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def timed(
        http: Connection, step: str, path: str, form: dict[str, str] | None = None
    ) -> Reply | None:
        t0 = time.perf_counter()
        try:
            response = await (http.get(path) if form is None else http.post_form(path, form))
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            error(f"{step}: {type(exc).__name__}")
            return None
        latencies[step].append(time.perf_counter() - t0)
        if response.status >= 500:
            error(f"{step}: 5xx")
        return response

    async def one(n: int) -> None:
        # One keep-alive connection per respondent, as a browser keeps one.
        http = Connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                if baseline:
                    got = await timed(http, "healthz", "/healthz")
                    if got is not None and got.status != 200:
                        error("healthz: status")
                    continue
                if not queue:
                    error("links used up")
                    return
                token = queue.pop()
                page = await timed(http, "open", f"/s/{token}")
                if page is None:
                    continue
                found = FORM_TOKEN.search(page.body)
                if page.status != 200 or found is None:
                    error("open: status")
                    continue
                form = found[1].decode()
                score = (n + len(queue)) % 11
                scored = await timed(http, "score", f"/s/{token}", {"form_token": form, "score": str(score)})
                if scored is None:
                    continue
                if scored.status != 303:
                    error("score: status")
                    continue
                comment = f"answer {token[:12]} <b>&</b>"
                done = await timed(
                    http, "comment", f"/s/{token}/more", {"form_token": form, "comment": comment}
                )
                if done is None:
                    continue
                if done.status != 303:
                    error("comment: status")
                    continue
                answered.append(f"{score}|{comment}")
        finally:
            await http.close()

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in range(users)))
    elapsed = time.perf_counter() - t0
    return {
        "latencies": latencies,
        "errors": errors,
        "answered": answered,
        "elapsed": elapsed,
        "client_cpu_s": time.process_time() - cpu0,
    }


def _client(port: int, tokens: list[str], users: int, seconds: float, baseline: bool, out: Any) -> None:
    out.send(_event_loop_run(_respondents(port, tokens, users, seconds, baseline)))


def _event_loop_run(main: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def run_clients(
    port: int, tokens: list[str], users: int, clients: int, seconds: float, baseline: bool
) -> dict[str, Any]:
    """``users`` respondents spread over ``clients`` processes (the client is Python too)."""
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    for i in range(clients):
        mine = tokens[i::clients]
        share = users // clients + (1 if i < users % clients else 0)
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_client, args=(port, mine, share, seconds, baseline, send))
        proc.start()
        procs.append(proc)
        pipes.append(receive)
    parts = [p.recv() for p in pipes]
    for proc in procs:
        proc.join()
    merged: dict[str, Any] = {
        "latencies": {},
        "errors": {},
        "answered": [],
        "elapsed": max(p["elapsed"] for p in parts),
        "client_cpu_s": sum(p["client_cpu_s"] for p in parts),
    }
    for part in parts:
        for step, values in part["latencies"].items():
            merged["latencies"].setdefault(step, []).extend(values)
        for kind, count in part["errors"].items():
            merged["errors"][kind] = merged["errors"].get(kind, 0) + count
        merged["answered"].extend(part["answered"])
    return merged


def postgres_cpu_s() -> dict[int, float]:
    """CPU seconds so far of each of the machine's PostgreSQL processes, by pid."""
    seen = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info["cpu_times"]
        if proc.info["name"] == "postgres" and times is not None:
            seen[proc.pid] = times.user + times.system
    return seen


def postgres_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds PostgreSQL spent since ``before``: processes alive at both readings count what
    they added, new ones all they have (the server's pooled connections live through a run)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in postgres_cpu_s().items())


def checksum(lines: list[str]) -> str:
    return hashlib.md5("\n".join(sorted(lines)).encode()).hexdigest()


def stored(url: str) -> tuple[int, str]:
    import sqlalchemy as sa

    from cxloop.store.store import Store

    with Store.open(url) as store, store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT score, comment FROM survey_responses"
                " WHERE survey_id = 'bench' AND comment IS NOT NULL"
            )
        ).all()
    return len(rows), checksum([f"{int(r.score)}|{r.comment}" for r in rows])


# ====================================================================== one run


def summarise(name: str, result: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    lat = result["latencies"]
    everything = lat["open"] + lat["score"] + lat["comment"]
    answers = len(result["answered"])
    per_s = answers / result["elapsed"]
    base_rps = len(baseline["latencies"]["healthz"]) / baseline["elapsed"] if baseline else None
    return {
        "run": name,
        "answers": answers,
        "answers_per_s": round(per_s, 1),
        "requests_per_s": round(len(everything) / result["elapsed"], 1),
        "baseline_healthz_per_s": round(base_rps, 1) if base_rps else None,
        "answers_per_s_vs_baseline_third": round(per_s / (base_rps / 3), 3) if base_rps else None,
        "p50_ms": {s: _ms(percentile(v, 0.5)) for s, v in lat.items() if v},
        "p95_ms": {s: _ms(percentile(v, 0.95)) for s, v in lat.items() if v},
        "p99_ms": {s: _ms(percentile(v, 0.99)) for s, v in lat.items() if v},
        "p95_ms_all": _ms(percentile(everything, 0.95)),
        "p99_ms_all": _ms(percentile(everything, 0.99)),
        "errors": result["errors"],
        "server_errors_5xx": sum(c for k, c in result["errors"].items() if k.endswith("5xx")),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


def run_floor(workers: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The same respondents against :mod:`benchmarks.floor_app` (no cxloop at all): the ceiling."""
    tokens = [f"floor{i:08d}" for i in range(args.links)]
    with serve_floor(folder, workers=workers) as server:
        cpu0 = server.cpu_s()
        result = run_clients(server.port, tokens, args.users, args.clients, args.floor_seconds, False)
        cpu = server.cpu_s() - cpu0
    answers = len(result["answered"])
    per_s = answers / result["elapsed"]
    log(f"  floor (bare Starlette, {workers} worker(s)): {per_s:.0f} answers/s")
    return {
        "answers_per_s": round(per_s, 1),
        "server_cpu_ms_per_answer": round(1000 * cpu / max(1, answers), 2),
        "clients_cpu_ms_per_answer": round(1000 * result["client_cpu_s"] / max(1, answers), 2),
        "errors": result["errors"],
    }


def one_run(backend: str, workers: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    if backend == "duckdb":
        url = str(folder / f"survey-{workers}.duckdb")
    else:
        import psycopg

        schema = f"cx_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{args.pg_url}{'&' if '?' in args.pg_url else '?'}options=-csearch_path%3D{schema}"
    try:
        log(f"{backend} x{workers}: making {args.links:,} links")
        t0 = time.perf_counter()
        tokens = prepare(url, args.links)
        log(f"  {len(tokens):,} links in {time.perf_counter() - t0:.1f} s; starting the server")
        with serve(url, folder, workers=workers) as server:
            baseline = run_clients(server.port, [], args.users, args.clients, args.baseline_seconds, True)
            healthz = len(baseline["latencies"]["healthz"]) / baseline["elapsed"]
            log(f"  baseline: {healthz:.0f} GET /healthz per s")
            cpu0, pg0 = server.cpu_s(), postgres_cpu_s()
            result = run_clients(server.port, tokens, args.users, args.clients, args.seconds, False)
            server_cpu, pg_cpu = server.cpu_s() - cpu0, postgres_cpu_since(pg0)
        floor = run_floor(workers, args, folder)
        count, digest = stored(url)
        summary = summarise(f"{backend} x{workers}", result, baseline)
        summary["floor"] = floor
        summary["answers_per_s_vs_floor"] = round(summary["answers_per_s"] / floor["answers_per_s"], 3)
        answers = max(1, summary["answers"])
        summary["cpu_ms_per_answer"] = {
            "server": round(1000 * server_cpu / answers, 2),
            "postgres": round(1000 * pg_cpu / answers, 2) if backend == "postgres" else None,
            "clients": round(1000 * result["client_cpu_s"] / answers, 2),
        }
        summary.update(
            backend=backend,
            workers=workers,
            stored_answers=count,
            checksum_matches=digest == checksum(result["answered"]),
            lost=len(result["answered"]) - count,
            target_answers_per_s=TARGETS[backend],
            load_average=os.getloadavg(),
        )
        summary["ok"] = bool(
            summary["answers_per_s"] >= TARGETS[backend]
            and summary["checksum_matches"]
            and summary["server_errors_5xx"] == 0
        )
        return summary
    finally:
        if backend == "postgres":
            import psycopg

            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backends", nargs="+", default=["duckdb", "postgres"], choices=["duckdb", "postgres"]
    )
    parser.add_argument(
        "--workers", nargs="+", type=int, default=[4], help="PostgreSQL server workers (DuckDB: 1)"
    )
    parser.add_argument("--users", type=int, default=50, help="Concurrent respondents")
    parser.add_argument(
        "--clients", type=int, default=2, help="Client processes the respondents are spread over"
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument(
        "--floor-seconds", type=float, default=20, help="The bare-Starlette floor run (benchmarks.floor_app)"
    )
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--out", type=Path, default=RESULTS / "survey_load.json")
    args = parser.parse_args(argv)

    runs = []
    with tempfile.TemporaryDirectory(prefix="survey-load-") as tmp:
        for backend in args.backends:
            for workers in [1] if backend == "duckdb" else args.workers:
                summary = one_run(backend, workers, args, Path(tmp))
                runs.append(summary)
                print(json.dumps(summary, indent=2))
    print(
        "\nrun               answers/s  target  p95 ms  p99 ms  5xx  lost  checksum"
        "  floor/s  vs floor  CPU ms per answer: server / PostgreSQL / clients (floor server)"
    )
    for r in runs:
        cpu = r["cpu_ms_per_answer"]
        print(
            f"{r['run']:<17} {r['answers_per_s']:>9.1f} {r['target_answers_per_s']:>7.0f}"
            f" {r['p95_ms_all'] or 0:>7.1f} {r['p99_ms_all'] or 0:>7.1f} {r['server_errors_5xx']:>4}"
            f" {r['lost']:>5}  {'ok' if r['checksum_matches'] else 'DIFFERS':<8}"
            f"  {r['floor']['answers_per_s']:>7.1f} {r['answers_per_s_vs_floor']:>9.2f}"
            f"  {cpu['server']} / {cpu['postgres'] or '-'} / {cpu['clients']}"
            f" ({r['floor']['server_cpu_ms_per_answer']})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"runs": runs, "argv": sys.argv[1:], "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            indent=2,
        )
    )
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
