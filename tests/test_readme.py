"""README's two commands are the front door: CI must run exactly the documented test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_starts_with_the_demo_and_the_test_commands() -> None:
    demo, tests = readme_commands()

    assert "cxloop demo" in demo and "cxloop summary" in demo and "pip install" in demo
    assert "cxloop users create admin@example.com --role admin --exist-ok" in demo
    assert demo.endswith("cxloop serve")
    assert tests.endswith("python -m pytest") and "'.[dev]'" in tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()

    assert readme_commands()[1] in ci
    assert any("pg_ctlcluster --skip-systemctl-redirect" in line for line in ci)
