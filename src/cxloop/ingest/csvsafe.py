"""Neutralise spreadsheet formulas in CSV that cxloop writes (CWE-1236, "CSV injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula
by Excel and LibreOffice. Such text gets a leading apostrophe; plain numbers such as ``-5`` or
``+3.2`` are left alone.
"""

from __future__ import annotations

import re

_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def neutralise(value: object) -> object:
    if isinstance(value, str) and _FORMULA_START.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def neutralise_sql(expr: str) -> str:
    """The same rule as DuckDB SQL over a VARCHAR expression."""
    return (
        f"CASE WHEN regexp_matches({expr}, '^[=+\\-@\\t\\r]') "
        f"AND NOT regexp_matches({expr}, '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$') "
        f"THEN '''' || {expr} ELSE {expr} END"
    )
