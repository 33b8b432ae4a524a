"""The public answer page, ``/s/{token}``: no sign-in, no JavaScript, one light HTML page per step.

1. ``GET /s/{token}`` shows the main question (radio buttons in a fieldset); ``POST`` saves the
   score at once (a partial answer is kept) and goes on to
2. ``/s/{token}/more``: the follow-up question chosen by the score and the custom questions;
   ``POST`` saves them and goes to
3. ``/s/{token}/thanks``.

The link's form token travels in each form (the CSRF defence of a form anyone may post); a public
link's browser keeps its reply's id in a cookie, so a second visit edits the first answer instead of
adding one. All checks and writes are :mod:`cxloop.surveys.answers`'; these routes only translate.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from cxloop.surveys.answers import (
    TEXT_MAX,
    AnswerError,
    PublicLimits,
    Transact,
    Visit,
    open_link,
    save_details,
    save_score,
)
from cxloop.surveys.definitions import Definition, pick_language
from cxloop.surveys.versions import DefinitionCache
from cxloop.web.auth import PUBLIC
from cxloop.web.deps import client_ip

router = APIRouter(include_in_schema=False, dependencies=[Depends(PUBLIC)])

# The answer page may show the survey's logo from its https:// URL; everything else stays strict.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'self'"
)
COOKIE_DAYS = 365


def _cookie(token: str) -> str:
    return "cxs_" + hashlib.sha256(token.encode()).hexdigest()[:16]


def readable_on(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (#rrggbb), by WCAG relative luminance."""

    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"


def page(
    request: Request,
    definition: Definition,
    step: str,
    *,
    lang: str,
    action: str | None,
    form_token: str = "",
    answers: dict[str, Any] | None = None,
    error: AnswerError | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    """Render one step of the answer page (also the builder's preview, with ``action`` None)."""
    answers = answers or {}
    score = answers.get("main")
    context = {
        "d": definition,
        "step": step,
        "lang": lang,
        "action": action,
        "form_token": form_token,
        "answers": answers,
        "score": int(score) if isinstance(score, float) else None,
        "error": error,
        "message": message,
        "text_max": TEXT_MAX,
        "on_brand": readable_on(definition.brand.colour),
        "labels": definition.scale_labels(lang),
        "low": definition.main.scale[0],
    }
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, "survey_answer.html", context, status_code=status_code
    )
    response.headers["content-security-policy"] = CSP
    return response


def _defs(request: Request) -> DefinitionCache:
    defs: DefinitionCache = request.app.state.survey_definitions
    return defs


def _transact(request: Request) -> Transact[Any] | None:
    """The app's group commit on DuckDB (cxloop.surveys.writer); None: a transaction per call."""
    return getattr(request.app.state, "survey_transact", None)


def _lang(request: Request, definition: Definition, form: FormData | None = None) -> str:
    wanted = form.get("lang") if form is not None else request.query_params.get("lang")
    return pick_language(
        definition, wanted if isinstance(wanted, str) else None, request.headers.get("accept-language")
    )


def _refusal(request: Request, error: AnswerError) -> Response:
    """A page saying why, for a link that cannot be answered (no survey to show)."""
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, "survey_message.html", {"reason": error.reason}, status_code=error.status
    )
    response.headers["content-security-policy"] = CSP
    return response


async def _visit(request: Request, token: str, *, with_answers: bool, mark_opened: bool = True) -> Visit:
    clock = request.app.state.clock
    return await run_in_threadpool(
        open_link,
        request.app.state.store,
        _defs(request),
        token,
        now=clock(),
        reply_hint=request.cookies.get(_cookie(token)),
        with_answers=with_answers,
        mark_opened=mark_opened,
        transact=_transact(request),
    )


def _answered(request: Request, visit: Visit, lang: str) -> Response:
    return page(
        request,
        visit.definition,
        "thanks",
        lang=lang,
        action=None,
        message="You have already answered: thank you.",
    )


@router.get("/s/{token}")
async def answer_page(request: Request, token: str) -> Response:
    try:
        visit = await _visit(request, token, with_answers=True)
    except AnswerError as error:
        return _refusal(request, error)
    lang = _lang(request, visit.definition)
    if not visit.editable:
        return _answered(request, visit, lang)
    return page(
        request,
        visit.definition,
        "score",
        lang=lang,
        action=f"/s/{token}",
        form_token=visit.form_token,
        answers=visit.answers,
    )


@router.post("/s/{token}")
async def answer_score(request: Request, token: str) -> Response:
    form = await request.form()
    clock, store = request.app.state.clock, request.app.state.store
    limits: PublicLimits = request.app.state.survey_limits
    hint = request.cookies.get(_cookie(token))
    try:
        saved = await run_in_threadpool(
            save_score,
            store,
            _defs(request),
            token,
            form_token=_str(form, "form_token"),
            score=_str(form, "score"),
            now=clock(),
            language=_str(form, "lang"),
            reply_hint=hint,
            ip=client_ip(request),
            limits=limits,
            transact=_transact(request),
        )
    except AnswerError as error:
        return await _again(request, token, "score", error, form)
    _data_changed(request)
    lang = _str(form, "lang") or ""
    response = RedirectResponse(
        f"/s/{token}/more" + (f"?lang={lang}" if lang.isalpha() else ""), status_code=303
    )
    if saved.public and saved.reply_id != hint:
        # Only this link's pages get the cookie (a personal link needs none: one answer per link).
        response.set_cookie(
            _cookie(token),
            saved.reply_id,
            max_age=COOKIE_DAYS * 86400,
            path=f"/s/{token}",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/s/{token}/more")
async def details_page(request: Request, token: str) -> Response:
    try:
        visit = await _visit(request, token, with_answers=True, mark_opened=False)
    except AnswerError as error:
        return _refusal(request, error)
    lang = _lang(request, visit.definition)
    if visit.reply_id is None:
        return RedirectResponse(f"/s/{token}", status_code=303)
    if not visit.editable:
        return _answered(request, visit, lang)
    return page(
        request,
        visit.definition,
        "more",
        lang=lang,
        action=f"/s/{token}/more",
        form_token=visit.form_token,
        answers=visit.answers,
    )


@router.post("/s/{token}/more")
async def answer_details(request: Request, token: str) -> Response:
    form = await request.form()
    clock, store = request.app.state.clock, request.app.state.store
    answers = {
        key[2:]: [v for v in form.getlist(key) if isinstance(v, str)] for key in form if key.startswith("q_")
    }
    try:
        await run_in_threadpool(
            save_details,
            store,
            _defs(request),
            token,
            form_token=_str(form, "form_token"),
            comment=_str(form, "comment"),
            answers=answers,
            now=clock(),
            reply_hint=request.cookies.get(_cookie(token)),
            transact=_transact(request),
        )
    except AnswerError as error:
        return await _again(request, token, "more", error, form)
    _data_changed(request)
    lang = _str(form, "lang") or ""
    return RedirectResponse(
        f"/s/{token}/thanks" + (f"?lang={lang}" if lang.isalpha() else ""), status_code=303
    )


@router.get("/s/{token}/thanks")
async def thanks_page(request: Request, token: str) -> Response:
    try:
        visit = await _visit(request, token, with_answers=False, mark_opened=False)
    except AnswerError as error:
        return _refusal(request, error)
    return page(request, visit.definition, "thanks", lang=_lang(request, visit.definition), action=None)


async def _again(request: Request, token: str, step: str, error: AnswerError, form: FormData) -> Response:
    """The same step again with the error shown at its field (or a page saying why)."""
    if error.status not in (403, 422):
        return _refusal(request, error)
    try:
        visit = await _visit(request, token, with_answers=True, mark_opened=False)
    except AnswerError as other:
        return _refusal(request, other)
    typed: dict[str, Any] = dict(visit.answers)
    if step == "more":
        typed["comment"] = (_str(form, "comment") or "")[:TEXT_MAX]
    action = f"/s/{token}" + ("/more" if step == "more" else "")
    return page(
        request,
        visit.definition,
        step,
        lang=_lang(request, visit.definition, form),
        action=action,
        form_token=visit.form_token,
        answers=typed,
        error=error,
        status_code=error.status,
    )


def _str(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _data_changed(request: Request) -> None:
    """This process's metrics cache sees the answer at once (other workers within a second)."""
    forget = getattr(request.app.state, "forget_data_fingerprint", None)
    if forget is not None:
        forget()


__all__ = ["CSP", "page", "readable_on", "router"]
