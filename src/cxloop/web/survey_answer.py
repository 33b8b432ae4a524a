"""The public answer page, ``/s/{token}``: no sign-in, no JavaScript, one light HTML page per step.

1. ``GET /s/{token}`` shows the main question (radio buttons in a fieldset); ``POST`` saves the
   score at once (a partial answer is kept) and goes on to
2. ``/s/{token}/more``: the follow-up question chosen by the score and the custom questions;
   ``POST`` saves them and goes to
3. ``/s/{token}/thanks``.

The link's form token travels in each form (the CSRF defence of a form anyone may post); a public
link's browser keeps its reply's id in a cookie, so a second visit edits the first answer instead of
adding one. All checks and writes are :mod:`cxloop.surveys.answers`'; these routes only translate.

Embedding: the pages of a survey whose definition names ``embed_origins`` may be framed by those
sites (``frame-ancestors``), all others by this server only. The cookie stays ``SameSite=Lax``, so a
page on another site can never make a browser post with it (the form token of a public link is no
secret: anyone may open the link). In a frame on another site the cookie is therefore not sent, and
the reply's id travels with the visit instead: as a hidden field of each form and, for a framed
request only (``Sec-Fetch-Dest: iframe``), in the step 2 address (``?r=``), which a frame does not
show in an address bar or history where it could be copied and shared. A cookie, when the browser
sends one, wins over an id carried along. So an answer begun in a frame is finished, not lost; only
a later visit in a frame cannot find it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
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
from cxloop.surveys.links import survey_of_token
from cxloop.surveys.versions import DefinitionCache, SurveyError, get_survey
from cxloop.web.auth import PUBLIC
from cxloop.web.deps import client_ip

router = APIRouter(include_in_schema=False, dependencies=[Depends(PUBLIC)])

# The answer page may show the survey's logo from its https:// URL; everything else stays strict.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'self'"
)
COOKIE_DAYS = 365


def csp(embed_origins: Sequence[str] = ()) -> str:
    """The answer page's policy: :data:`CSP`, framed also by ``embed_origins`` (checked origins)."""
    return " ".join([CSP, *embed_origins])


def _framing(response: Response, embed_origins: Sequence[str]) -> Response:
    response.headers["content-security-policy"] = csp(embed_origins)
    if not embed_origins:  # older browsers, which know only X-Frame-Options; it cannot name sites
        response.headers["x-frame-options"] = "SAMEORIGIN"
    return response


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
    embed_origins: Sequence[str] = (),
    reply: str | None = None,
) -> Response:
    """Render one step of the answer page (also the builder's preview, with ``action`` None).
    ``embed_origins``: the sites that may frame it; ``reply``: the public reply the form edits."""
    answers = answers or {}
    score = answers.get("main")
    context = {
        "d": definition,
        "step": step,
        "lang": lang,
        "action": action,
        "form_token": form_token,
        "reply": reply,
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
    return _framing(response, embed_origins)


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


def _origins(request: Request, visit: Visit) -> tuple[str, ...]:
    """The sites that may frame the pages of the visit's survey: its current version's (an answer
    being edited keeps the version it answered, but not the sites that version allowed)."""
    if visit.current_version in (0, visit.version):
        return visit.definition.frame_ancestors
    return _defs(request).get(visit.survey_id, visit.current_version).frame_ancestors


def _link_origins(request: Request, token: str) -> tuple[str, ...]:
    """The sites that may frame the pages of ``token``'s survey (its current version); none for a
    link of no survey."""
    try:
        survey_id = survey_of_token(request.app.state.store, token)
        if survey_id is None:
            return ()
        return get_survey(request.app.state.store, survey_id).definition.frame_ancestors
    except (SurveyError, sa.exc.SQLAlchemyError):
        return ()  # the refusal page still shows, framed by this server only


async def _refusal(request: Request, error: AnswerError, token: str) -> Response:
    """A page saying why, for a link that cannot be answered (no survey to show); framed where the
    survey's pages may be, so that an embedded survey that closed says so."""
    origins = await run_in_threadpool(_link_origins, request, token)
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, "survey_message.html", {"reason": error.reason}, status_code=error.status
    )
    return _framing(response, origins)


def _hint(request: Request, token: str, given: Any = None) -> str | None:
    """The public reply this visit edits: the browser's cookie, else the one its form or address
    carries (a frame on another site gets no cookie)."""
    cookie = request.cookies.get(_cookie(token))
    if cookie:
        return cookie
    return given if isinstance(given, str) and 0 < len(given) <= 64 else None


def _framed(request: Request) -> bool:
    return request.headers.get("sec-fetch-dest") == "iframe"


def _reply(visit: Visit) -> str | None:
    """The reply id a public link's form carries along (a personal link needs none)."""
    return visit.reply_id if visit.kind == "public" else None


async def _visit(
    request: Request, token: str, *, with_answers: bool, mark_opened: bool = True, hint: Any = None
) -> Visit:
    clock = request.app.state.clock
    return await run_in_threadpool(
        open_link,
        request.app.state.store,
        _defs(request),
        token,
        now=clock(),
        reply_hint=_hint(request, token, hint),
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
        embed_origins=_origins(request, visit),
    )


def _next(url: str, *, lang: str | None, reply: str | None = None) -> str:
    query = {k: v for k, v in (("lang", lang), ("r", reply)) if v}
    if lang and not lang.isalpha():
        query.pop("lang")
    return url + (f"?{urlencode(query)}" if query else "")


@router.get("/s/{token}")
async def answer_page(request: Request, token: str) -> Response:
    try:
        visit = await _visit(request, token, with_answers=True)
    except AnswerError as error:
        return await _refusal(request, error, token)
    return _step(request, visit, "score", f"/s/{token}")


def _step(request: Request, visit: Visit, step: str, action: str) -> Response:
    """A step of the answer form for ``visit``, or the thanks page once it can no longer be edited."""
    lang = _lang(request, visit.definition)
    if not visit.editable:
        return _answered(request, visit, lang)
    return page(
        request,
        visit.definition,
        step,
        lang=lang,
        action=action,
        form_token=visit.form_token,
        answers=visit.answers,
        embed_origins=_origins(request, visit),
        reply=_reply(visit),
    )


@router.post("/s/{token}")
async def answer_score(request: Request, token: str) -> Response:
    form = await request.form()
    clock, store = request.app.state.clock, request.app.state.store
    limits: PublicLimits = request.app.state.survey_limits
    hint = _hint(request, token, form.get("reply"))
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
    response = RedirectResponse(
        _next(
            f"/s/{token}/more",
            lang=_str(form, "lang"),
            reply=saved.reply_id if saved.public and _framed(request) else None,
        ),
        status_code=303,
    )
    if saved.public and saved.reply_id != request.cookies.get(_cookie(token)):
        # Only this link's pages get the cookie (a personal link needs none: one answer per link).
        # Lax: never sent with a post from another site's page (see the module docstring).
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
        visit = await _visit(
            request, token, with_answers=True, mark_opened=False, hint=request.query_params.get("r")
        )
    except AnswerError as error:
        return await _refusal(request, error, token)
    if visit.reply_id is None:
        return RedirectResponse(f"/s/{token}", status_code=303)
    return _step(request, visit, "more", f"/s/{token}/more")


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
            reply_hint=_hint(request, token, form.get("reply")),
            transact=_transact(request),
        )
    except AnswerError as error:
        return await _again(request, token, "more", error, form)
    _data_changed(request)
    return RedirectResponse(_next(f"/s/{token}/thanks", lang=_str(form, "lang")), status_code=303)


@router.get("/s/{token}/thanks")
async def thanks_page(request: Request, token: str) -> Response:
    try:
        visit = await _visit(request, token, with_answers=False, mark_opened=False)
    except AnswerError as error:
        return await _refusal(request, error, token)
    return page(
        request,
        visit.definition,
        "thanks",
        lang=_lang(request, visit.definition),
        action=None,
        embed_origins=_origins(request, visit),
    )


async def _again(request: Request, token: str, step: str, error: AnswerError, form: FormData) -> Response:
    """The same step again with the error shown at its field (or a page saying why)."""
    if error.status not in (403, 422):
        return await _refusal(request, error, token)
    try:
        visit = await _visit(request, token, with_answers=True, mark_opened=False, hint=form.get("reply"))
    except AnswerError as other:
        return await _refusal(request, other, token)
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
        embed_origins=_origins(request, visit),
        reply=_reply(visit),
    )


def _str(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _data_changed(request: Request) -> None:
    """This process's metrics cache sees the answer at once (other workers within a second)."""
    forget = getattr(request.app.state, "forget_data_fingerprint", None)
    if forget is not None:
        forget()


__all__ = ["CSP", "csp", "page", "readable_on", "router"]
