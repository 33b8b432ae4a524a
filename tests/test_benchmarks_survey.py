"""Smoke test of the survey load benchmark (benchmarks/survey_load.py) and of the lean HTTP client
it loads the server with (benchmarks/lean_http.py): end to end, tiny, against real servers."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import survey_load  # noqa: E402
from benchmarks.lean_http import Connection  # noqa: E402
from benchmarks.live_server import serve_floor  # noqa: E402


def test_the_lean_client_speaks_http_to_uvicorn(tmp_path: Path) -> None:
    async def exchange(port: int) -> list[tuple[int, str, int]]:
        http = Connection("127.0.0.1", port)
        try:
            page = await http.get("/s/abc")
            scored = await http.post_form("/s/abc", {"form_token": "x", "score": "7"})
            missing = await http.get("/nothing-here")
        finally:
            await http.close()
        return [
            (reply.status, reply.headers.get("location", ""), len(reply.body))
            for reply in (page, scored, missing)
        ]

    with serve_floor(tmp_path) as server:
        page, scored, missing = asyncio.run(exchange(server.port))
    assert page[0] == 200 and page[2] > 5000  # the whole body, by Content-Length, on one connection
    assert scored[:2] == (303, "/s/abc/more")
    assert missing[0] == 404


def test_the_survey_load_benchmark_counts_and_checks_every_answer(tmp_path: Path) -> None:
    out = tmp_path / "survey_load.json"
    status = survey_load.main(
        [
            "--backends", "duckdb", "--users", "4", "--clients", "1", "--links", "400",
            "--seconds", "2", "--baseline-seconds", "1", "--floor-seconds", "1",
            "--out", str(out),
        ]
    )  # fmt: skip
    (run,) = json.loads(out.read_text())["runs"]
    assert status in (0, 1)  # 1: a target missed (4 respondents are not a load)
    assert run["answers"] > 0 and run["stored_answers"] == run["answers"]
    assert run["lost"] == 0 and run["checksum_matches"] and run["server_errors_5xx"] == 0
    assert run["floor"]["answers_per_s"] > 0 and run["cpu_ms_per_answer"]["server"] > 0
