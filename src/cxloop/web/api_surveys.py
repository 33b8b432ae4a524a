"""The surveys API, ``/api/v1/surveys``: definitions (create, read, edit as a new version, state),
links (personal ones for a segment, or a public one), answers collected elsewhere, and results.

Reading surveys and their aggregated results needs ``dashboards.read``; comments (customer-level
text) need ``data.read``; defining surveys and making links need ``surveys.manage``; submitting
answers collected elsewhere needs ``imports.run`` (it brings data in). Errors are RFC 9457
problems naming the field at fault.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from cxloop.errors import InputError
from cxloop.surveys import answers, links, results, tracking, versions
from cxloop.surveys.definitions import parse_definition
from cxloop.web.api_metrics import naive_utc
from cxloop.web.auth import require
from cxloop.web.deps import ClockDep, StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal

router = APIRouter(prefix="/api/v1/surveys", tags=["surveys"])
READ = require(Capability.DASHBOARDS_READ)
MANAGE = require(Capability.SURVEYS_MANAGE)

EXAMPLE = {
    "id": "after-order",
    "name": "After your order",
    "main": {"kind": "nps"},
    "follow_up": [
        {"min": 0, "max": 6, "text": {"en": "What went wrong?", "fr": "Qu'est-ce qui n'a pas marché ?"}}
    ],
    "questions": [{"id": "again", "type": "yes_no", "text": "Would you buy again?"}],
    "brand": {"name": "Acme", "colour": "#0b5394"},
    "thank_you": "Thank you!",
}


def _problem(status: int, detail: str, field: str | None) -> Problem:
    return Problem(status, detail=detail, field=field) if field else Problem(status, detail=detail)


@contextmanager
def problems() -> Iterator[None]:
    """The core's refusals as problems: status, the field at fault and why."""
    try:
        yield
    except versions.SurveyError as exc:
        raise _problem(exc.status, str(exc), exc.field) from None
    except answers.AnswerError as exc:
        raise _problem(exc.status, str(exc), exc.field) from None
    except InputError as exc:
        raise _problem(422, str(exc), exc.field) from None


def _summary(s: versions.Survey) -> dict[str, Any]:
    return {
        "survey_id": s.survey_id,
        "name": s.name,
        "state": s.state,
        "version": s.version,
        "kind": s.definition.main.kind,
        "updated_at": s.updated_at.isoformat(),
    }


def _full(s: versions.Survey) -> dict[str, Any]:
    return {**_summary(s), "definition": s.definition.model_dump(mode="json", exclude_none=True)}


@router.get("", summary="List surveys", dependencies=[Depends(READ)], responses=problem_responses(401, 403))
def list_all(store: StoreDep) -> list[dict[str, Any]]:
    return [_summary(s) for s in versions.list_surveys(store)]


@router.post(
    "",
    summary="Create a survey (a draft, version 1)",
    status_code=201,
    responses=problem_responses(401, 403, 409, 422),
)
def create(
    store: StoreDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(MANAGE)],
    definition: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
) -> dict[str, Any]:
    with problems():
        made = versions.create_survey(store, parse_definition(definition), now=clock(), user_id=who.user.id)
    return _full(made)


@router.get(
    "/{survey_id}",
    summary="A survey and its current definition",
    dependencies=[Depends(READ)],
    responses=problem_responses(401, 403, 404),
)
def read(store: StoreDep, survey_id: str) -> dict[str, Any]:
    with problems():
        return _full(versions.get_survey(store, survey_id))


@router.put(
    "/{survey_id}",
    summary="Edit a survey: its next version (answers keep the version they answered)",
    responses=problem_responses(401, 403, 404, 422),
)
def edit(
    store: StoreDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(MANAGE)],
    survey_id: str,
    definition: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
) -> dict[str, Any]:
    with problems():
        return _full(
            versions.edit_survey(
                store, survey_id, parse_definition(definition), now=clock(), user_id=who.user.id
            )
        )


class StateChange(BaseModel):
    state: Literal["draft", "live", "closed"]


@router.post(
    "/{survey_id}/state",
    summary="Open (live), close or return a survey to draft",
    dependencies=[Depends(MANAGE)],
    responses=problem_responses(401, 403, 404, 422),
)
def change_state(store: StoreDep, clock: ClockDep, survey_id: str, body: StateChange) -> dict[str, Any]:
    with problems():
        versions.set_state(store, survey_id, body.state, now=clock())
        return _full(versions.get_survey(store, survey_id))


class LinkRequest(BaseModel):
    segment: str | None = Field(default=None, description="Customers of this segment (none: every customer)")
    customer_ids: list[str] | None = Field(
        default=None, max_length=100_000, description="These customers instead"
    )
    public: bool = Field(default=False, description="One public link anyone may answer instead")
    channel: str | None = Field(default="link", max_length=50)
    expires_in_days: float | None = Field(default=None, gt=0, description="Default: the survey's link_days")


@router.post(
    "/{survey_id}/links",
    summary="Make answer links (tokens are shown once): JSON, or CSV for a mail merge with ?format=csv",
    dependencies=[Depends(MANAGE)],
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def make_links(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    survey_id: str,
    body: LinkRequest,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    base = str(request.base_url)

    def work() -> list[links.NewLink]:
        with problems():
            if body.public:
                return [
                    links.create_public_link(
                        store,
                        survey_id,
                        now=clock(),
                        channel=body.channel or "public",
                        expires_in_days=body.expires_in_days,
                    )
                ]
            who = (
                [(c, None) for c in body.customer_ids]
                if body.customer_ids is not None
                else links.segment_customers(store, body.segment)
            )
            return links.create_links(
                store, survey_id, who, now=clock(), channel=body.channel, expires_in_days=body.expires_in_days
            )

    made = await run_in_threadpool(work)
    if format == "csv":
        return PlainTextResponse(
            links.links_csv(made, base),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{survey_id}-links.csv"'},
        )
    from fastapi.responses import JSONResponse

    return JSONResponse(
        [
            {
                "link_id": k.link_id,
                "customer_id": k.customer_id,
                "email": k.email,
                "url": links.link_url(base, k.token),
                "expires_at": k.expires_at.isoformat() if k.expires_at else None,
            }
            for k in made
        ],
        status_code=201,
    )


class AnswerIn(BaseModel):
    score: int = Field(description="On the survey's scale (0-10 for NPS)")
    comment: str | None = Field(default=None, description=f"At most {answers.TEXT_MAX} characters")
    answers: dict[str, list[str]] = Field(default_factory=dict, description="Custom questions: id -> values")
    customer_id: str | None = None
    channel: str | None = Field(default="api", max_length=50)
    answered_at: dt.datetime | None = Field(default=None, description="UTC; default now")
    reply_id: str | None = Field(default=None, max_length=100, description="Resending the same id updates it")


@router.post(
    "/{survey_id}/answers",
    summary="Submit an answer collected elsewhere",
    status_code=201,
    dependencies=[Depends(require(Capability.IMPORTS_RUN))],
    responses=problem_responses(401, 403, 404, 409, 422),
)
def submit(
    request: Request, store: StoreDep, clock: ClockDep, survey_id: str, body: AnswerIn
) -> dict[str, Any]:
    now = clock()
    with problems():
        saved = answers.submit_answer(
            store,
            request.app.state.survey_definitions,
            survey_id,
            score=body.score,
            comment=body.comment,
            answers=body.answers,
            customer_id=body.customer_id,
            channel=body.channel,
            answered_at=naive_utc(body.answered_at) or now,
            now=now,
            reply_id=body.reply_id,
        )
    forget = getattr(request.app.state, "forget_data_fingerprint", None)
    if forget is not None:
        forget()
    return {"reply_id": saved.reply_id, "created": saved.created}


@router.get(
    "/{survey_id}/results",
    summary="Results over time and the answer funnel",
    dependencies=[Depends(READ)],
    responses=problem_responses(401, 403, 404, 422),
)
def survey_results(
    store: StoreDep,
    survey_id: str,
    grain: Annotated[Literal["day", "week", "month"], Query()] = "week",
    by: Annotated[
        Literal["survey", "segment", "channel"], Query(description="The funnel's groups")
    ] = "survey",
) -> dict[str, Any]:
    with problems():
        survey = versions.get_survey(store, survey_id)
    _, periods = results.over_time(store, survey_id, grain=grain)
    return {
        "survey_id": survey_id,
        "kind": survey.definition.main.kind,
        "periods": [p.as_dict() for p in periods],
        "funnel": [f.as_dict() for f in tracking.funnel(store, survey_id, by=by)],
        "answers_without_invitation": tracking.answers_without_invitation(store, survey_id),
    }


@router.get(
    "/{survey_id}/comments",
    summary="The newest comments (customer-level text)",
    dependencies=[Depends(require(Capability.DATA_READ))],
    responses=problem_responses(401, 403, 404),
)
def survey_comments(
    store: StoreDep,
    survey_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    with problems():
        versions.get_survey(store, survey_id)
    return [c.as_dict() for c in results.comments(store, survey_id, limit=limit, offset=offset)]
