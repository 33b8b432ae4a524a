"""Roles as explicit sets of capabilities: what each role may do, stated once, as data.

Roles are not a ladder: an agent works its own cases, ideas and lessons, which an analyst does
not; an analyst reads customer-level data and imports, which an agent does not. So every route
requires a *capability*, and each role is the set of capabilities it holds (``ROLE_CAPABILITIES``).
Changing who may do what is a change to this table, and the role-matrix test follows it.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """Something a route lets a user do."""

    DASHBOARDS_READ = "dashboards.read"
    """Aggregated results: KPIs, trends, cohorts, segments (no customer-level rows)."""
    DATA_READ = "data.read"
    """Customer-level data: customers, orders, answers, tickets, reviews, exports, drill-downs."""
    KPIS_DEFINE = "kpis.define"
    """Define and change custom KPIs."""
    IMPORTS_RUN = "imports.run"
    """Upload files, map columns, run imports, read reject reports."""
    GOALS_MANAGE = "goals.manage"
    """Set goals and targets."""
    INITIATIVES_MANAGE = "initiatives.manage"
    """Plan and track improvement initiatives."""
    CASES_ALL = "cases.all"
    """Read and work every case (complaint follow-up)."""
    CASES_OWN = "cases.own"
    """Read and work the cases assigned to oneself."""
    IDEAS_WRITE = "ideas.write"
    """Propose and comment improvement ideas."""
    LESSONS_WRITE = "lessons.write"
    """Record lessons learned."""
    SURVEYS_MANAGE = "surveys.manage"
    """Define surveys, open and close them, make answer links."""
    THEMES_CURATE = "themes.curate"
    """Curate the voice-of-the-customer themes: rename, merge, split, delete, keyword rules."""
    SETTINGS_MANAGE = "settings.manage"
    """Business settings: time zone, currency."""
    USERS_MANAGE = "users.manage"
    """Create users, change roles, disable accounts, manage API tokens."""


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    ANALYST = "analyst"
    AGENT = "agent"
    VIEWER = "viewer"


C = Capability

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    # Administers the installation: users and settings, and may do everything else.
    Role.ADMIN: frozenset(Capability),
    # Runs the improvement loop: everything but user accounts.
    Role.MANAGER: frozenset(Capability) - {C.USERS_MANAGE},
    # Reads everything, defines KPIs and themes, brings data in.
    Role.ANALYST: frozenset({C.DASHBOARDS_READ, C.DATA_READ, C.KPIS_DEFINE, C.IMPORTS_RUN, C.THEMES_CURATE}),
    # Front line: own cases, ideas and lessons, and the dashboards their work moves.
    Role.AGENT: frozenset({C.DASHBOARDS_READ, C.CASES_OWN, C.IDEAS_WRITE, C.LESSONS_WRITE}),
    # Reads the dashboards, nothing customer-level.
    Role.VIEWER: frozenset({C.DASHBOARDS_READ}),
}

ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.ADMIN: "users and settings; everything else too",
    Role.MANAGER: "goals, initiatives, every case; everything but users",
    Role.ANALYST: "read all data, define KPIs, curate themes, import",
    Role.AGENT: "own cases, ideas, lessons; read dashboards",
    Role.VIEWER: "read dashboards",
}


def parse_role(value: str) -> Role:
    """The role named ``value`` (case-insensitive), or a ``ValueError`` listing the roles."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {value!r}: use one of {names}") from None


def capabilities(role: Role | str) -> frozenset[Capability]:
    return ROLE_CAPABILITIES[Role(role)]


def can(role: Role | str, capability: Capability) -> bool:
    return capability in capabilities(role)


def within(role: Role | str, limit: Role | str) -> bool:
    """Whether ``role`` grants nothing that ``limit`` does not (an API token's role vs its user's)."""
    return capabilities(role) <= capabilities(limit)
