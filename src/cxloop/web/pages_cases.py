"""The cases pages: the inbox (mine, overdue, open/closed) and one case — the answer, the customer's
history, the notes, and the forms to record a contact and to close it (with a re-survey).

Thin shells over :mod:`cxloop.cases`; access as the API (:mod:`cxloop.web.api_cases`): ``cases.own``
for every route, every case with ``cases.all``, else one's own. Comments and notes are rendered by
the autoescaping templates, as text. Also the public opt-out page of survey mails,
``/s/opt-out/{token}``: a GET only asks (mail scanners open links), the POST opts out — also as
RFC 8058 one-click from the mail's ``List-Unsubscribe`` header.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from cxloop import cases as core
from cxloop.surveys.fatigue import opt_out_by_token
from cxloop.web.api_cases import everyone, own_case
from cxloop.web.auth import PUBLIC, require
from cxloop.web.dashboard import query_string
from cxloop.web.deps import ClockDep, StoreDep, business
from cxloop.web.errors import Problem
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)
Worker = Annotated[Principal, Depends(require(Capability.CASES_OWN))]
PAGE_SIZE = 50
TEXT = 4000


@router.get("/cases")
def inbox(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    who: Worker,
    status: Annotated[Literal["open", "closed", "all"], Query()] = "open",
    overdue: bool = False,
    mine: bool = False,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    all_cases = everyone(who)
    assignee = who.user.email if mine or not all_cases else None
    page = core.list_cases(
        store,
        now=clock(),
        status=None if status == "all" else status,
        overdue=overdue,
        assignee=assignee,
        limit=PAGE_SIZE,
        offset=offset,
    )
    params = {"status": status, "overdue": "true" if overdue else None, "mine": "true" if mine else None}
    following = offset + PAGE_SIZE
    return render(
        request,
        "cases.html",
        {
            "title": "Cases",
            "page": page,
            "status": status,
            "overdue": overdue,
            "mine": mine or not all_cases,
            "all_cases": all_cases,
            "local": business(request).local,
            "next_link": "/cases" + query_string({**params, "offset": following})
            if following < page.total
            else None,
            "prev_link": "/cases" + query_string({**params, "offset": max(offset - PAGE_SIZE, 0)})
            if offset
            else None,
        },
    )


def _case_page(
    request: Request,
    store: StoreDep,
    case_id: str,
    who: Principal,
    clock: ClockDep,
    *,
    error: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    view = own_case(store, case_id, who, clock())
    return render(
        request,
        "cases_detail.html",
        {
            "title": f"Case {view.case['case_id']}",
            "view": view,
            "c": view.case,
            "local": business(request).local,
            "surveys": _live_surveys(store),
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


def _live_surveys(store: StoreDep) -> list[str]:
    from cxloop.surveys.versions import list_surveys

    return [s.survey_id for s in list_surveys(store) if s.state == "live"]


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str, store: StoreDep, clock: ClockDep, who: Worker) -> Response:
    return _case_page(request, store, case_id, who, clock)


@router.post("/cases/{case_id}/contact")
def contact(
    request: Request,
    case_id: str,
    store: StoreDep,
    clock: ClockDep,
    who: Worker,
    text: Annotated[str, Form(max_length=TEXT)] = "",
) -> Response:
    own_case(store, case_id, who, clock())
    try:
        core.record_contact(store, case_id, text=text, author=who.user.email, now=clock())
    except core.CaseError as exc:
        return _failed(request, store, case_id, who, clock, exc, {"contact_text": text})
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/close")
def close(
    request: Request,
    case_id: str,
    store: StoreDep,
    clock: ClockDep,
    who: Worker,
    outcome: Annotated[str, Form(max_length=TEXT)] = "",
    root_cause: Annotated[str, Form(max_length=TEXT)] = "",
    contact: Annotated[str, Form(max_length=TEXT)] = "",
    resurvey: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    now = clock()
    own_case(store, case_id, who, now)
    form = {"outcome": outcome, "root_cause": root_cause, "contact": contact, "resurvey": resurvey}
    send = None
    if resurvey:
        from cxloop.surveys.distribution import resurvey_callback
        from cxloop.surveys.versions import SurveyError

        try:
            send = resurvey_callback(store, resurvey, now=now)
        except SurveyError as exc:
            return _failed(request, store, case_id, who, clock, core.CaseError(f"resurvey: {exc}"), form)
    try:
        core.close_case(
            store, case_id, outcome=outcome, root_cause=root_cause, author=who.user.email, now=now,
            contact=contact or None, resurvey=send,
        )  # fmt: skip
    except core.CaseError as exc:
        return _failed(request, store, case_id, who, clock, exc, form)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _failed(
    request: Request,
    store: StoreDep,
    case_id: str,
    who: Principal,
    clock: ClockDep,
    exc: core.CaseError,
    form: dict[str, str],
) -> Response:
    if isinstance(exc, core.UnknownCase):
        raise Problem(404, detail=str(exc))
    status = 409 if isinstance(exc, core.CaseClosed) else 422
    return _case_page(request, store, case_id, who, clock, error=str(exc), status_code=status, form=form)


# -- the public opt-out page of survey mails ------------------------------------------------------


@router.get("/s/opt-out/{token}", dependencies=[Depends(PUBLIC)])
def opt_out_page(request: Request, token: str) -> Response:
    return render(
        request, "optout.html", {"title": "No more surveys", "token": token, "done": False, "unknown": False}
    )


@router.post("/s/opt-out/{token}", dependencies=[Depends(PUBLIC)])
def opt_out(request: Request, token: str, store: StoreDep, clock: ClockDep) -> Response:
    if len(token) > 200 or opt_out_by_token(store, token, now=clock()) is None:
        return render(
            request,
            "optout.html",
            {"title": "Link not recognised", "token": None, "done": False, "unknown": True},
            status_code=404,
        )
    return render(
        request, "optout.html", {"title": "No more surveys", "token": None, "done": True, "unknown": False}
    )
