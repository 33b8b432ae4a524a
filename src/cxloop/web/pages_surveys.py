"""The survey pages: the list, the builder (a definition edited as TOML or JSON, with a preview that
renders the real answer page), results over time with the funnel and comments, state changes, and
links (a CSV for a mail merge, or a public link shown once, with the HTML to embed it in a website).

Reading needs ``dashboards.read`` (comments also ``data.read``); defining surveys and making links
need ``surveys.manage``. The core is :mod:`cxloop.surveys`; these routes only translate.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from cxloop.errors import InputError
from cxloop.surveys import links, results, tracking, versions
from cxloop.surveys.definitions import definition_from_text, pick_language
from cxloop.surveys.triggers import embed_note, embed_snippet
from cxloop.web.auth import require
from cxloop.web.deps import ClockDep, StoreDep
from cxloop.web.errors import Problem
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.survey_answer import page as answer_page
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)
READ = require(Capability.DASHBOARDS_READ)
MANAGE = require(Capability.SURVEYS_MANAGE)
MAX_DEFINITION = 100_000

STARTER = """id = "after-order"
name = "After your order"
language = "en"
public = false
# embed_origins = ["https://shop.example.com"]   # sites that may show the survey in an iframe
edit_window_hours = 24
thank_you = { en = "Thank you!", fr = "Merci !" }

[brand]
name = "Our shop"
colour = "#1f5fae"

[main]
kind = "nps"   # nps (0-10) | csat (points = 3, 5 or 7) | ces (7 points)

[[follow_up]]
min = 0
max = 6
text = { en = "What should we do better?", fr = "Que devrions-nous améliorer ?" }

[[questions]]
id = "again"
type = "yes_no"   # rating | single | multiple | yes_no | text
text = "Would you buy from us again?"
"""


def _found(store: StoreDep, survey_id: str) -> versions.Survey:
    try:
        return versions.get_survey(store, survey_id)
    except versions.SurveyError as exc:
        raise Problem(404, detail=str(exc)) from None


@router.get("/surveys")
def surveys_page(request: Request, store: StoreDep, who: Annotated[Principal, Depends(READ)]) -> Response:
    return render(
        request,
        "surveys.html",
        {
            "title": "Surveys",
            "surveys": versions.list_surveys(store),
            "can_manage": who.can(Capability.SURVEYS_MANAGE),
        },
    )


def _builder(
    request: Request,
    text: str,
    *,
    survey: versions.Survey | None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    title = f"Edit {survey.name}" if survey else "New survey"
    return render(
        request,
        "survey_builder.html",
        {"title": title, "text": text, "survey": survey, "error": error},
        status_code=status_code,
    )


def _as_toml_or_json(survey: versions.Survey) -> str:
    return json.dumps(
        survey.definition.model_dump(mode="json", exclude_none=True), indent=2, ensure_ascii=False
    )


@router.get("/surveys/new")
def new_page(request: Request, who: Annotated[Principal, Depends(MANAGE)]) -> Response:
    return _builder(request, STARTER, survey=None)


async def _save(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    who: Principal,
    text: str,
    action: str,
    survey: versions.Survey | None,
) -> Response:
    try:
        if len(text) > MAX_DEFINITION:
            raise InputError(f"at most {MAX_DEFINITION:,} characters", file="definition")
        definition = definition_from_text(text)
        if action == "preview":
            lang = pick_language(
                definition, request.query_params.get("lang"), request.headers.get("accept-language")
            )
            return answer_page(request, definition, "score", lang=lang, action=None)
        if survey is None:
            made = await run_in_threadpool(
                versions.create_survey, store, definition, now=clock(), user_id=who.user.id
            )
        else:
            made = await run_in_threadpool(
                versions.edit_survey, store, survey.survey_id, definition, now=clock(), user_id=who.user.id
            )
    except (InputError, versions.SurveyError) as exc:
        return _builder(request, text, survey=survey, error=str(exc), status_code=422)
    return RedirectResponse(f"/surveys/{made.survey_id}", status_code=303)


@router.post("/surveys/new")
async def create_survey(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(MANAGE)],
    definition: Annotated[str, Form()],
    action: Annotated[str, Form()] = "save",
) -> Response:
    return await _save(request, store, clock, who, definition, action, None)


@router.get("/surveys/{survey_id}/edit")
def edit_page(
    request: Request, store: StoreDep, survey_id: str, who: Annotated[Principal, Depends(MANAGE)]
) -> Response:
    survey = _found(store, survey_id)
    return _builder(request, _as_toml_or_json(survey), survey=survey)


@router.post("/surveys/{survey_id}/edit")
async def edit_survey(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    survey_id: str,
    who: Annotated[Principal, Depends(MANAGE)],
    definition: Annotated[str, Form()],
    action: Annotated[str, Form()] = "save",
) -> Response:
    return await _save(request, store, clock, who, definition, action, _found(store, survey_id))


@router.get("/surveys/{survey_id}/preview")
def preview(
    request: Request,
    store: StoreDep,
    survey_id: str,
    who: Annotated[Principal, Depends(READ)],
    step: Literal["score", "more", "thanks"] = "score",
    score: int | None = None,
) -> Response:
    """The real answer page of the current version; nothing is saved from it."""
    d = _found(store, survey_id).definition
    lang = pick_language(d, request.query_params.get("lang"), request.headers.get("accept-language"))
    return answer_page(
        request, d, step, lang=lang, action=None, answers={"main": float(score)} if score is not None else {}
    )


@router.get("/surveys/{survey_id}")
def results_page(
    request: Request,
    store: StoreDep,
    survey_id: str,
    who: Annotated[Principal, Depends(READ)],
    grain: Literal["day", "week", "month"] = "week",
) -> Response:
    survey = _found(store, survey_id)
    _, periods = results.over_time(store, survey_id, grain=grain)
    comments = results.comments(store, survey_id) if who.can(Capability.DATA_READ) else None
    return render(
        request,
        "survey_results.html",
        {
            "title": survey.name,
            "survey": survey,
            "periods": periods,
            "grain": grain,
            "funnel": {by: tracking.funnel(store, survey_id, by=by) for by in tracking.BY},
            "others": tracking.answers_without_invitation(store, survey_id),
            "comments": comments,
            "can_manage": who.can(Capability.SURVEYS_MANAGE),
            "unit": {"nps": "NPS", "csat": "CSAT %", "ces": "CES (1-7)"}[survey.definition.main.kind],
        },
    )


@router.post("/surveys/{survey_id}/state")
def change_state(
    store: StoreDep,
    clock: ClockDep,
    survey_id: str,
    who: Annotated[Principal, Depends(MANAGE)],
    state: Annotated[str, Form(max_length=10)],
) -> Response:
    _found(store, survey_id)
    try:
        versions.set_state(store, survey_id, state, now=clock())
    except versions.SurveyError as exc:
        raise Problem(exc.status, detail=str(exc)) from None
    return RedirectResponse(f"/surveys/{survey_id}", status_code=303)


@router.post("/surveys/{survey_id}/links")
async def make_links(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    survey_id: str,
    who: Annotated[Principal, Depends(MANAGE)],
    segment: Annotated[str, Form(max_length=200)] = "",
    channel: Annotated[str, Form(max_length=50)] = "link",
    public: Annotated[bool, Form()] = False,
) -> Response:
    survey = _found(store, survey_id)
    base = str(request.base_url)
    try:
        if public:
            link = await run_in_threadpool(links.create_public_link, store, survey_id, now=clock())
            url = links.link_url(base, link.token)
            origins = survey.definition.frame_ancestors
            return render(
                request,
                "survey_public_link.html",
                {
                    "title": survey.name,
                    "survey": survey,
                    "url": url,
                    "link_snippet": embed_snippet(url),
                    "iframe_snippet": embed_snippet(url, kind="iframe", origins=origins),
                    "origins": origins,
                    "embed_note": embed_note(origins),
                },
            )
        who_gets = await run_in_threadpool(links.segment_customers, store, segment.strip() or None)
        made = await run_in_threadpool(
            links.create_links, store, survey_id, who_gets, now=clock(), channel=channel.strip() or None
        )
    except versions.SurveyError as exc:
        raise Problem(exc.status, detail=str(exc)) from None
    return PlainTextResponse(
        links.links_csv(made, base),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{survey_id}-links.csv"'},
    )


__all__ = ["STARTER", "router"]
