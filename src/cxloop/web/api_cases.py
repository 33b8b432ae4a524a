"""The cases API (``/api/v1/cases``): the closed loop's inbox, one case, contacts, closing, KPIs;
and survey opt-outs (``/api/v1/surveys/opt-outs``).

Thin shells over :mod:`cxloop.cases` and :mod:`cxloop.surveys.fatigue`. Every case route needs
``cases.own``; a role that also holds ``cases.all`` (managers, admins) sees and works every case,
others only the cases assigned to their own email (another's case answers 404, as if unknown).
Comments are returned as stored: whoever renders them escapes them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from cxloop import cases as core
from cxloop.surveys.fatigue import opt_out
from cxloop.web.auth import require
from cxloop.web.deps import ClockDep, StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.strict import no_unknown_query

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], dependencies=[Depends(no_unknown_query)])
WORK = require(Capability.CASES_OWN)
Worker = Annotated[Principal, Depends(WORK)]


class Case(BaseModel):
    """A follow-up case of one unhappy answer."""

    case_id: str = Field(examples=["K3F9A0C1B2D4E"])
    status: Literal["open", "closed"]
    reasons: list[str] = Field(examples=[["detractor", "negative_comment"]])
    response_source: str = Field(examples=["cxloop"])
    response_id: str = Field(examples=["r-8c1f"])
    survey_id: str = Field(examples=["relationship-nps"])
    customer_id: str | None = Field(examples=["C000042"])
    kind: str | None = Field(examples=["nps"])
    score: float | None = Field(examples=[3])
    scale_min: int | None = Field(examples=[0])
    scale_max: int | None = Field(examples=[10])
    comment: str | None = Field(examples=["My parcel arrived late."])
    responded_at: dt.datetime
    opened_at: dt.datetime
    rule: str = Field(examples=["default"])
    assignee: str | None = Field(examples=["agent@example.com"])
    sla_hours: int = Field(examples=[48])
    due_at: dt.datetime = Field(description="The first follow-up is due by then")
    first_contact_at: dt.datetime | None
    closed_at: dt.datetime | None
    closed_by: str | None
    outcome: str | None
    root_cause: str | None
    resurvey_delivery_id: str | None
    overdue: bool = Field(description="Open, not followed up, past due")
    breached: bool = Field(description="Followed up late, or past due without a follow-up")


class CaseList(BaseModel):
    items: list[Case]
    total: int = Field(examples=[12])
    limit: int = Field(examples=[100])
    offset: int = Field(examples=[0])


class Note(BaseModel):
    note_no: int = Field(examples=[1])
    noted_at: dt.datetime
    author: str | None = Field(examples=["agent@example.com"])
    kind: str = Field(examples=["contact"])
    text: str = Field(examples=["Called; refund of the shipping agreed."])


class CaseDetail(BaseModel):
    """A case, its notes, the customer's other cases and latest history (orders, tickets, answers)."""

    case: Case
    notes: list[Note]
    previous_cases: list[Case]
    history: list[dict[str, Any]] = Field(
        description="The customer's timeline, newest first (as /customers/{id})"
    )


class ContactIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000, examples=["Phoned; left a message."])


class CloseIn(BaseModel):
    outcome: str = Field(min_length=1, max_length=4000, examples=["Refunded the shipping"])
    root_cause: str = Field(min_length=1, max_length=4000, examples=["Carrier delay"])
    contact: str | None = Field(default=None, max_length=4000, examples=["Phoned the customer"])
    resurvey: str | None = Field(
        default=None,
        description="Mail the customer this live survey once closed",
        examples=["relationship-nps"],
    )


class Kpis(BaseModel):
    """Case KPIs over the cases opened in the last ``days`` days (docs/surveys.md)."""

    opened: int
    closed: int
    open_now: int
    overdue_now: int
    followed_up: int
    median_hours_to_follow_up: float | None
    mean_hours_to_follow_up: float | None
    sla_known: int
    within_sla: int
    within_sla_rate: float | None
    detractors: int
    detractors_recovered: int
    recovered_rate: float | None


class OptOutIn(BaseModel):
    customer_id: str = Field(min_length=1, max_length=200, examples=["C000042"])


class OptOut(BaseModel):
    customer_id: str
    new: bool = Field(description="False when the customer had opted out already")


def problem(exc: core.CaseError) -> Problem:
    """The case error as a problem: 404 unknown, 409 closed, else 422 naming the field."""
    if isinstance(exc, core.UnknownCase):
        return Problem(404, detail=str(exc), case_id=exc.case_id)
    if isinstance(exc, core.CaseClosed):
        return Problem(409, detail=str(exc), case_id=exc.case_id)
    loc = ["body", exc.field] if exc.field else ["body"]
    return Problem(422, detail=str(exc), errors=[{"loc": loc, "msg": exc.reason, "type": "value_error"}])


def resurvey(store: Any, survey_id: str, now: dt.datetime) -> core.Resurvey:
    """The re-survey callback, or a 422 problem when the survey cannot be sent."""
    from cxloop.surveys.distribution import resurvey_callback
    from cxloop.surveys.versions import SurveyError

    try:
        return resurvey_callback(store, survey_id, now=now)
    except SurveyError as exc:
        raise Problem(
            422, detail=f"resurvey: {exc}", errors=[{"loc": ["body", "resurvey"], "msg": str(exc)}]
        ) from None


def everyone(who: Principal) -> bool:
    return who.can(Capability.CASES_ALL)


def own_case(store: Any, case_id: str, who: Principal, now: dt.datetime) -> core.CaseView:
    """The case, if ``who`` may work it; an unknown case, or another's for an agent, is 404."""
    try:
        view = core.get_case(store, case_id, now=now)
    except core.CaseError as exc:
        raise problem(exc) from None
    if not everyone(who) and view.case["assignee"] != who.user.email:
        raise problem(core.UnknownCase(case_id))
    return view


@router.get("", summary="The cases inbox", responses=problem_responses(401, 403, 422))
def list_cases(
    store: StoreDep,
    clock: ClockDep,
    who: Worker,
    status: Annotated[
        Literal["open", "closed"] | None, Query(description="Only open or closed cases")
    ] = None,
    overdue: Annotated[bool, Query(description="Only open cases past due without a follow-up")] = False,
    mine: Annotated[bool, Query(description="Only the cases assigned to me")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CaseList:
    """Cases, the most urgent first (open before closed, then by due time). Without `cases.all`,
    only one's own."""
    assignee = who.user.email if mine or not everyone(who) else None
    try:
        page = core.list_cases(
            store, now=clock(), status=status, overdue=overdue, assignee=assignee, limit=limit, offset=offset
        )
    except core.CaseError as exc:
        raise problem(exc) from None
    return CaseList(items=[Case(**c) for c in page.items], total=page.total, limit=limit, offset=offset)


@router.get("/kpis", summary="Case KPIs", responses=problem_responses(401, 403, 422))
def kpis(
    store: StoreDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(require(Capability.CASES_ALL))],
    days: Annotated[int, Query(ge=1, le=3660, description="Cases opened in the last days")] = 30,
) -> Kpis:
    """Time to first follow-up, share followed up within the SLA, detractors recovered."""
    now = clock()
    return Kpis.model_validate(
        core.case_kpis(store, start=now - dt.timedelta(days=days), end=now, now=now).as_dict()
    )


@router.post("/open", summary="Open cases for recent unhappy answers", responses=problem_responses(401, 403))
def open_cases(
    store: StoreDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(require(Capability.CASES_ALL))],
    days: Annotated[float, Query(gt=0, le=3660, description="Answers of the last days")] = 30,
) -> list[str]:
    """Open one case per unhappy answer of the last `days` days that has none (idempotent); the
    new case ids."""
    now = clock()
    return core.open_cases(store, now=now, since=now - dt.timedelta(days=days))


@router.get("/{case_id}", summary="One case", responses=problem_responses(401, 403, 404))
def case(case_id: str, store: StoreDep, clock: ClockDep, who: Worker) -> CaseDetail:
    """The case, its notes, the customer's other cases and history."""
    view = own_case(store, case_id, who, clock())
    return CaseDetail(
        case=Case(**view.case),
        notes=[Note(**{k: n[k] for k in Note.model_fields}) for n in view.notes],
        previous_cases=[Case(**c) for c in view.previous_cases],
        history=view.history.timeline if view.history else [],
    )


@router.post(
    "/{case_id}/contacts",
    status_code=201,
    summary="Record a contact",
    responses=problem_responses(401, 403, 404, 409),
)
def contact(case_id: str, body: ContactIn, store: StoreDep, clock: ClockDep, who: Worker) -> Case:
    """Record a contact with the customer; the first one ends the SLA clock."""
    own_case(store, case_id, who, clock())
    try:
        core.record_contact(store, case_id, text=body.text, author=who.user.email, now=clock())
    except core.CaseError as exc:
        raise problem(exc) from None
    return Case(**core.get_case(store, case_id, now=clock(), history=1).case)


@router.post("/{case_id}/close", summary="Close a case", responses=problem_responses(401, 403, 404, 409, 422))
def close(case_id: str, body: CloseIn, store: StoreDep, clock: ClockDep, who: Worker) -> Case:
    """Close the case with its outcome and root cause; `resurvey` mails the customer a live survey."""
    now = clock()
    own_case(store, case_id, who, now)
    send = None
    if body.resurvey:
        send = resurvey(store, body.resurvey, now)
    try:
        closed = core.close_case(
            store, case_id, outcome=body.outcome, root_cause=body.root_cause, author=who.user.email,
            now=now, contact=body.contact, resurvey=send,
        )  # fmt: skip
    except core.CaseError as exc:
        raise problem(exc) from None
    return Case(**closed)


opt_outs = APIRouter(
    prefix="/api/v1/surveys/opt-outs", tags=["surveys"], dependencies=[Depends(no_unknown_query)]
)


@opt_outs.post(
    "", status_code=201, summary="Opt a customer out of surveys", responses=problem_responses(401, 403, 422)
)
def add_opt_out(
    body: OptOutIn,
    store: StoreDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(require(Capability.CASES_OWN))],
) -> OptOut:
    """Record that the customer wants no more surveys: never mailed again (idempotent)."""
    return OptOut(customer_id=body.customer_id, new=opt_out(store, body.customer_id, now=clock(), via="api"))
