"""A KPI is data (what it means, in which unit, which way is good) plus one Ibis builder.

The builder gets a :class:`~cxloop.metrics.query.Context` and returns an Ibis table with the
query's keys (``period`` and the breakdown) and the statistic columns of the KPI's
:class:`~cxloop.metrics.stats.Kind`; :func:`cxloop.metrics.compute.compute` runs it and turns the
statistics into a value with its interval.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir

from cxloop.metrics.grains import Grain
from cxloop.metrics.query import FACTS, Context
from cxloop.metrics.stats import CI_METHOD, Kind

Builder = Callable[[Context], ir.Table]


class Direction(enum.StrEnum):
    UP = "up"  # higher is better
    DOWN = "down"  # lower is better
    NEUTRAL = "neutral"  # neither (a volume)


@dataclass(frozen=True)
class Kpi:
    id: str
    name: str
    formula: str  # in words, for people
    unit: str
    direction: Direction
    tables: tuple[str, ...]
    fact: str  # the fact whose dimensions apply (see query.FACTS)
    kind: Kind
    build: Builder = field(repr=False, compare=False)
    group: str = "other"
    default_grain: Grain = Grain.MONTH
    per: float = 1.0  # Kind.RATE: value per `per` units of the denominator
    q: float = 0.5  # Kind.QUANTILE
    custom: bool = False

    @property
    def ci_method(self) -> str:
        return CI_METHOD[self.kind]

    @property
    def dimensions(self) -> list[str]:
        return FACTS[self.fact].all_dimensions()

    def describe(self) -> dict[str, Any]:
        """The KPI as data (what `cxloop kpi list --json` prints)."""
        return {
            "id": self.id,
            "name": self.name,
            "group": self.group,
            "formula": self.formula,
            "unit": self.unit,
            "direction": self.direction.value,
            "tables": list(self.tables),
            "default_grain": self.default_grain.value,
            "kind": self.kind.value,
            "ci_method": self.ci_method,
            "dimensions": self.dimensions,
            "custom": self.custom,
        }


def family(tables: tuple[str, ...], fact: str, group: str) -> Callable[..., Kpi]:
    """A maker of KPIs that share their tables, fact and group (one catalogue module's KPIs):
    ``make(id, name, formula, unit, direction, kind, build, **extra)``."""

    def make(
        id: str,
        name: str,
        formula: str,
        unit: str,
        direction: Direction,
        kind: Kind,
        build: Builder,
        **extra: Any,
    ) -> Kpi:
        return Kpi(id, name, formula, unit, direction, tables, fact, kind, build, group=group, **extra)

    return make
