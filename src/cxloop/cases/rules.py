"""Who works a new case, and how soon: assignment rules with an SLA.

Rules are tried in order; the first whose ``segment`` and ``region`` match the customer's (a rule
without them matches everyone) assigns the case, by round robin, to the next person of its pool:

* ``assignees``: these emails, in the order given; else
* ``team``: the employees of that team (``employees.team``) who have an email, by email; else
* the active web users whose role is ``agent``, by email.

Round robin counts the cases the rule has assigned so far, so it needs no state of its own and
carries on across runs and processes. The SLA is the time to the first follow-up: a case is due
``sla_hours`` after it opened. With no rule stored, :data:`DEFAULT_RULE` applies (48 hours).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from cxloop.cases.errors import CaseError
from cxloop.store import schema
from cxloop.store.schema import case_rules
from cxloop.store.store import Store

MAX_SLA_HOURS: Final = 24 * 365


@dataclass(frozen=True)
class AssignmentRule:
    """One rule: which customers (segment, region), whose pool, what SLA."""

    name: str
    sla_hours: int = 48
    segment: str | None = None
    region: str | None = None
    team: str | None = None
    assignees: tuple[str, ...] = field(default_factory=tuple)

    def matches(self, customer: Mapping[str, Any]) -> bool:
        return (self.segment is None or customer.get("segment") == self.segment) and (
            self.region is None or customer.get("region") == self.region
        )


DEFAULT_RULE: Final = AssignmentRule("default", sla_hours=48)


def rule_from(data: Mapping[str, Any], where: str = "rule") -> AssignmentRule:
    """A rule from plain data (a TOML table, a JSON object), or a :class:`CaseError` naming the field."""
    unknown = set(data) - {"name", "sla_hours", "segment", "region", "team", "assignees"}
    if unknown:
        raise CaseError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CaseError(f"{where}.name: a rule needs a name", field="name")
    sla = data.get("sla_hours", 48)
    if not isinstance(sla, int) or isinstance(sla, bool) or not 1 <= sla <= MAX_SLA_HOURS:
        raise CaseError(
            f"{where}.sla_hours: must be a whole number of hours, 1-{MAX_SLA_HOURS}", field="sla_hours"
        )
    texts = {}
    for key in ("segment", "region", "team"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise CaseError(f"{where}.{key}: must be a non-empty text", field=key)
        texts[key] = value.strip() if isinstance(value, str) else None
    assignees = data.get("assignees", [])
    if isinstance(assignees, str):
        assignees = [a for a in assignees.split(",") if a.strip()]
    if not isinstance(assignees, list) or not all(isinstance(a, str) and "@" in a for a in assignees):
        raise CaseError(f"{where}.assignees: must be a list of email addresses", field="assignees")
    return AssignmentRule(
        name=name.strip(),
        sla_hours=sla,
        segment=texts["segment"],
        region=texts["region"],
        team=texts["team"],
        assignees=tuple(a.strip().lower() for a in assignees),
    )


def rules_from_toml(text: str) -> list[AssignmentRule]:
    """Rules from TOML: ``[[rule]]`` tables with the fields of :class:`AssignmentRule`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"rules file: {exc}") from None
    tables = data.get("rule", [])
    if not isinstance(tables, list) or not tables:
        raise CaseError("rules file: no [[rule]] table found", field="rule")
    return [rule_from(t, f"rule {i + 1}") for i, t in enumerate(tables)]


def save_rules(store: Store, rules: Sequence[AssignmentRule]) -> None:
    """Replace the stored rules with ``rules`` (in this order)."""
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise CaseError("rules: two rules have the same name", field="name")
    with store.engine.begin() as conn:
        conn.execute(case_rules.delete())
        if rules:
            conn.execute(
                case_rules.insert(),
                [
                    {
                        "position": i,
                        "name": r.name,
                        "segment": r.segment,
                        "region": r.region,
                        "team": r.team,
                        "assignees": ",".join(r.assignees) or None,
                        "sla_hours": r.sla_hours,
                    }
                    for i, r in enumerate(rules)
                ],
            )


def load_rules(conn: sa.Connection) -> list[AssignmentRule]:
    """The stored rules in order ([:data:`DEFAULT_RULE`] when none is stored)."""
    found = [
        AssignmentRule(
            name=r.name,
            sla_hours=r.sla_hours,
            segment=r.segment,
            region=r.region,
            team=r.team,
            assignees=tuple(a for a in (r.assignees or "").split(",") if a),
        )
        for r in conn.execute(sa.select(case_rules).order_by(case_rules.c.position))
    ]
    return found or [DEFAULT_RULE]


def pool(conn: sa.Connection, rule: AssignmentRule) -> list[str]:
    """The emails a rule assigns to, in round-robin order."""
    if rule.assignees:
        return list(rule.assignees)
    if rule.team is not None:
        e = schema.employees
        rows = conn.execute(
            sa.select(e.c.email).where(e.c.team == rule.team, e.c.email.is_not(None)).order_by(e.c.email)
        )
        return sorted({str(x).strip().lower() for x in rows.scalars()})
    u = schema.users
    rows = conn.execute(
        sa.select(u.c.email).where(u.c.role == "agent", u.c.active.is_(True)).order_by(u.c.email)
    )
    return [str(x) for x in rows.scalars()]


class Assigner:
    """Hands out assignees rule by rule, carrying the round robin on from the cases stored."""

    def __init__(self, conn: sa.Connection, cases_table: sa.Table) -> None:
        self._conn = conn
        self._cases = cases_table
        self.rules = load_rules(conn)
        self._pools: dict[str, list[str]] = {}
        self._counts: dict[str, int] = {}

    def assign(self, customer: Mapping[str, Any]) -> tuple[AssignmentRule, str | None]:
        rule = next((r for r in self.rules if r.matches(customer)), DEFAULT_RULE)
        if rule.name not in self._pools:
            self._pools[rule.name] = pool(self._conn, rule)
            c = self._cases
            self._counts[rule.name] = int(
                self._conn.execute(sa.select(sa.func.count()).where(c.c.rule == rule.name)).scalar_one()
            )
        people = self._pools[rule.name]
        if not people:
            return rule, None
        n = self._counts[rule.name]
        self._counts[rule.name] = n + 1
        return rule, people[n % len(people)]
