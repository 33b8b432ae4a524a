"""Documentation generated from the code must not drift from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cxloop.ingest.entities import ENTITIES

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.md"
    subprocess.run(
        [str(ROOT / "scripts" / "gen-cli-docs"), str(fresh)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable, "COLUMNS": "100"},
    )
    assert fresh.read_text() == (ROOT / "docs" / "cli-reference.md").read_text(), (
        "docs/cli-reference.md is stale: run scripts/gen-cli-docs"
    )


def test_the_import_guide_describes_every_field() -> None:
    guide = (ROOT / "docs" / "import.md").read_text()
    for entity in ENTITIES.values():
        assert f"### {entity.name}" in guide, entity.name
        for field in entity.fields:
            assert f"`{field.name}`" in guide, f"{entity.name}.{field.name}"


def test_the_kpi_table_in_the_metrics_guide_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-kpi-docs"), "--check"], capture_output=True, text=True
    )

    assert result.returncode == 0, "docs/metrics.md's KPI table is stale: run scripts/gen-kpi-docs"
