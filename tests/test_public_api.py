"""The public API is what it claims to be."""

from __future__ import annotations

import cxloop


def test_all_exports_exist_and_are_documented() -> None:
    for name in cxloop.__all__:
        assert hasattr(cxloop, name), name
        if not name.startswith("__"):
            assert getattr(cxloop, name).__doc__, f"{name} has no docstring"


def test_importing_cxloop_opens_no_database(tmp_path, monkeypatch) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "import cxloop, cxloop.cli"], cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []
