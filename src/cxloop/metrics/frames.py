"""Result frames as plain Python rows, the one shape the CLI's ``--json`` and the REST API share."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values: NaN and NaT become None, numpy scalars Python numbers,
    pandas timestamps ``datetime``."""
    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def plain(value: Any) -> Any:
    """One cell as a plain Python value (see :func:`records`)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value
