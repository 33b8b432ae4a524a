"""The closed loop: unhappy answers open follow-up cases, assigned by rule with an SLA, worked and
closed by agents, measured by case KPIs. See docs/surveys.md, "Closed loop"."""

from __future__ import annotations

from cxloop.cases.detect import NEGATIVE_TERMS, CommentJudge, keyword_judge, score_reasons
from cxloop.cases.errors import CaseClosed, CaseError, UnknownCase
from cxloop.cases.kpis import CaseKpis, case_kpis
from cxloop.cases.rules import DEFAULT_RULE, AssignmentRule, load_rules, rules_from_toml, save_rules
from cxloop.cases.work import (
    CasePage,
    CaseView,
    Resurvey,
    case_id_for,
    close_case,
    get_case,
    list_cases,
    open_cases,
    record_contact,
)

__all__ = [
    "DEFAULT_RULE",
    "NEGATIVE_TERMS",
    "AssignmentRule",
    "CaseClosed",
    "CaseError",
    "CaseKpis",
    "CasePage",
    "CaseView",
    "CommentJudge",
    "Resurvey",
    "UnknownCase",
    "case_id_for",
    "case_kpis",
    "close_case",
    "get_case",
    "keyword_judge",
    "list_cases",
    "load_rules",
    "open_cases",
    "record_contact",
    "rules_from_toml",
    "save_rules",
    "score_reasons",
]
