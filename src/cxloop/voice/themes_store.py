"""Where themes live in the store: ``theme_models`` (each fitted model as plain arrays),
``theme_taxonomy`` (one row per version: model, who, when, what changed) and ``themes`` (the
themes of every version). A change never edits a version: it writes the next one, whole."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cxloop.errors import ConfigError
from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.voice.taxonomy import Taxonomy, Theme
from cxloop.voice.themes_model import ThemeModel


class ConcurrentChange(ConfigError):
    """A change made from a version that is no longer the latest: someone changed the themes
    meanwhile (reload and try again)."""


def save_model(store: Store, model: ThemeModel, now: dt.datetime) -> None:
    table = schema.theme_models
    with store.engine.begin() as conn:
        if conn.execute(sa.select(table.c.model_id).where(table.c.model_id == model.model_id)).first():
            return
        conn.execute(
            sa.insert(table).values(
                model_id=model.model_id,
                fitted_at=_naive(now),
                details=json.dumps(model.details, sort_keys=True, default=str),
                data=model.to_bytes(),
            )
        )


def load_model(store: Store, model_id: str) -> ThemeModel:
    table = schema.theme_models
    with store.engine.connect() as conn:
        data = conn.execute(sa.select(table.c.data).where(table.c.model_id == model_id)).scalar()
    if data is None:
        raise ConfigError(f"theme model {model_id!r} is not in the store: discover themes again")
    return ThemeModel.from_bytes(bytes(data))


def save_version(
    store: Store,
    *,
    model_id: str,
    themes: Sequence[Theme],
    by: str,
    action: str,
    details: dict[str, Any],
    now: dt.datetime,
    expected: int | None,
) -> Taxonomy:
    """Write the next version; ``expected`` is the version the change was made from (None: none),
    so that two changes made at once from the same version cannot both land."""
    versions = schema.theme_taxonomy
    with store.engine.begin() as conn:
        latest = conn.execute(sa.select(sa.func.max(versions.c.version))).scalar()
        if latest != expected:
            raise ConcurrentChange(
                f"the themes changed meanwhile (now version {latest}, this change was made "
                f"from {expected}): try again"
            )
        version = (latest or 0) + 1
        conn.execute(
            sa.insert(versions).values(
                version=version,
                model_id=model_id,
                created_at=_naive(now),
                created_by=by,
                action=action,
                details=json.dumps(details, sort_keys=True, default=str),
            )
        )
        if themes:
            conn.execute(
                sa.insert(schema.themes),
                [
                    {
                        "version": version,
                        "theme_id": t.theme_id,
                        "label": t.label,
                        "topics": json.dumps(list(t.topics)),
                        "keywords": json.dumps(list(t.keywords)),
                        "terms": json.dumps(list(t.terms)),
                        "curated": t.curated,
                        "deleted": t.deleted,
                    }
                    for t in themes
                ],
            )
    return Taxonomy(version, model_id, tuple(themes), _naive(now), by, action, details)


def load_version(store: Store, version: int | None = None) -> Taxonomy | None:
    """Version ``version`` (default: the latest), or None when themes were never discovered."""
    versions = schema.theme_taxonomy
    query = sa.select(versions)
    query = query.where(versions.c.version == version) if version is not None else query
    query = query.order_by(versions.c.version.desc()).limit(1)
    with store.engine.connect() as conn:
        head = conn.execute(query).mappings().first()
        if head is None:
            if version is not None:
                raise ConfigError(f"no taxonomy version {version}")
            return None
        rows = conn.execute(
            sa.select(schema.themes)
            .where(schema.themes.c.version == head["version"])
            .order_by(schema.themes.c.theme_id)
        ).mappings()
        themes = tuple(
            Theme(
                theme_id=int(r["theme_id"]),
                label=str(r["label"]),
                topics=tuple(json.loads(r["topics"])),
                keywords=tuple(json.loads(r["keywords"])),
                terms=tuple(json.loads(r["terms"])),
                curated=bool(r["curated"]),
                deleted=bool(r["deleted"]),
            )
            for r in rows
        )
    return Taxonomy(
        version=int(head["version"]),
        model_id=str(head["model_id"]),
        themes=themes,
        created_at=head["created_at"],
        created_by=str(head["created_by"]),
        action=str(head["action"]),
        details=json.loads(head["details"]),
    )


def history(store: Store) -> list[dict[str, Any]]:
    """Every version, newest first: version, model_id, created_at, created_by, action, details."""
    versions = schema.theme_taxonomy
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(versions).order_by(versions.c.version.desc())).mappings().all()
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
