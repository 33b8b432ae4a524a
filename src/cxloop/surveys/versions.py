"""Surveys in the store: create one from a definition, edit it (each edit is a new version, so an
answer keeps the version it answered), move it between draft, live and closed, list and read them.

A version never changes once written, so :class:`DefinitionCache` keeps parsed versions for good.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from cxloop.errors import CxloopError
from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.surveys.definitions import Definition, parse_definition

__all__ = [
    "STATES",
    "DefinitionCache",
    "Survey",
    "SurveyError",
    "create_survey",
    "edit_survey",
    "get_survey",
    "list_surveys",
    "set_state",
]

State = Literal["draft", "live", "closed"]
STATES: tuple[State, ...] = ("draft", "live", "closed")
S, V = schema.surveys, schema.survey_versions


class SurveyError(CxloopError):
    """A survey operation that cannot be done; ``status`` is the HTTP status the web shells use."""

    def __init__(self, reason: str, *, status: int = 409, field: str | None = None) -> None:
        self.status = status
        self.field = field
        super().__init__(reason)


@dataclass(frozen=True)
class Survey:
    survey_id: str
    name: str
    state: State
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    definition: Definition


def _dump(definition: Definition) -> str:
    return json.dumps(definition.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


def create_survey(
    store: Store, definition: Definition, *, now: dt.datetime, user_id: str | None = None
) -> Survey:
    """Save a new survey as a draft, version 1."""
    with store.engine.begin() as conn:
        if conn.execute(sa.select(S.c.survey_id).where(S.c.survey_id == definition.id)).first():
            raise SurveyError(f"a survey with the id {definition.id!r} exists already", field="id")
        conn.execute(
            S.insert().values(
                survey_id=definition.id,
                name=definition.name,
                state="draft",
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            V.insert().values(
                survey_id=definition.id,
                version=1,
                definition=_dump(definition),
                created_at=now,
                created_by=user_id,
            )
        )
    return Survey(definition.id, definition.name, "draft", 1, now, now, definition)


def edit_survey(
    store: Store, survey_id: str, definition: Definition, *, now: dt.datetime, user_id: str | None = None
) -> Survey:
    """Save ``definition`` as the survey's next version; answers given so far keep theirs."""
    if definition.id != survey_id:
        raise SurveyError(
            f"the definition's id is {definition.id!r}, not {survey_id!r}", status=422, field="id"
        )
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(S).where(S.c.survey_id == survey_id)).first()
        if row is None:
            raise SurveyError(f"no survey {survey_id!r}", status=404)
        version = row.version + 1
        conn.execute(
            V.insert().values(
                survey_id=survey_id,
                version=version,
                definition=_dump(definition),
                created_at=now,
                created_by=user_id,
            )
        )
        conn.execute(
            S.update()
            .where(S.c.survey_id == survey_id)
            .values(name=definition.name, version=version, updated_at=now)
        )
    return Survey(survey_id, definition.name, row.state, version, row.created_at, now, definition)


def set_state(store: Store, survey_id: str, state: str, *, now: dt.datetime) -> None:
    """Move a survey to draft, live or closed (a closed survey takes no more answers)."""
    if state not in STATES:
        raise SurveyError(
            f"state must be one of {', '.join(STATES)}, not {state!r}", status=422, field="state"
        )
    with store.engine.begin() as conn:
        done = conn.execute(S.update().where(S.c.survey_id == survey_id).values(state=state, updated_at=now))
        if done.rowcount == 0:
            raise SurveyError(f"no survey {survey_id!r}", status=404)


def _survey(row: Any) -> Survey:
    definition = parse_definition(json.loads(row.definition))
    return Survey(row.survey_id, row.name, row.state, row.version, row.created_at, row.updated_at, definition)


def _with_definition() -> sa.Select[Any]:
    return sa.select(S, V.c.definition).join(
        V, (V.c.survey_id == S.c.survey_id) & (V.c.version == S.c.version)
    )


def get_survey(store: Store, survey_id: str) -> Survey:
    """The survey and its current version; :class:`SurveyError` (404) when there is none."""
    with store.engine.connect() as conn:
        row = conn.execute(_with_definition().where(S.c.survey_id == survey_id)).first()
    if row is None:
        raise SurveyError(f"no survey {survey_id!r}", status=404)
    return _survey(row)


def list_surveys(store: Store) -> list[Survey]:
    with store.engine.connect() as conn:
        rows = conn.execute(_with_definition().order_by(S.c.created_at.desc(), S.c.survey_id)).all()
    return [_survey(row) for row in rows]


class DefinitionCache:
    """Parsed definitions by (survey, version), read once each: a version never changes."""

    def __init__(self, store: Store, *, max_entries: int = 256) -> None:
        self._store = store
        self._max = max_entries
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int], Definition] = OrderedDict()

    def get(self, survey_id: str, version: int) -> Definition:
        key = (survey_id, version)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        with self._store.engine.connect() as conn:
            text = conn.execute(
                sa.select(V.c.definition).where(V.c.survey_id == survey_id, V.c.version == version)
            ).scalar_one_or_none()
        if text is None:
            raise SurveyError(f"no version {version} of survey {survey_id!r}", status=404)
        definition = parse_definition(json.loads(text))
        with self._lock:
            self._kept[key] = definition
            while len(self._kept) > self._max:
                self._kept.popitem(last=False)
        return definition
