"""Small helpers for generated SQL: identifiers are quoted here and nowhere else."""

from __future__ import annotations

from collections.abc import Iterable


def ident(name: str) -> str:
    """Quote an identifier for DuckDB and PostgreSQL (both follow the SQL standard)."""
    return '"' + name.replace('"', '""') + '"'


def idents(names: Iterable[str], prefix: str = "") -> str:
    return ", ".join(prefix + ident(n) for n in names)


def literal(value: str) -> str:
    """Quote a string literal (for DuckDB-only statements that cannot take parameters)."""
    return "'" + value.replace("'", "''") + "'"
