"""``cxloop value survival``: Kaplan-Meier retention curves and a shifted-beta-geometric forecast."""

from __future__ import annotations


def survival() -> None:
    """Retention curves of subscriptions by segment, and their forecast."""
    raise NotImplementedError
