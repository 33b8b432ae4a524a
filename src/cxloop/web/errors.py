"""Errors as RFC 9457 problem details for the API, and as an HTML page for people.

Routes raise; they never build error responses. ``install(app)`` registers the handlers:

* ``HTTPException`` (FastAPI's or Starlette's): its status and detail;
* request validation (bad or missing parameters): 422 with the list of ``errors``;
* :class:`~cxloop.web.auth.NotAuthenticated`: 401 (API, with ``WWW-Authenticate: Bearer``), or a
  redirect to the sign-in page that comes back afterwards (pages);
* :class:`~cxloop.web.auth.Forbidden`: 403; :class:`~cxloop.web.sessions.TooManyAttempts`: 429;
* :class:`Problem`, to raise a problem with a title, detail and extension members of one's own;
* anything else: 500, logged, with no stack trace in the response.

A request is answered as the API when its path starts with ``/api/``. Document a route's errors in
the OpenAPI schema with ``responses=problem_responses(404, 422)``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response

from cxloop.web.auth import Forbidden, NotAuthenticated
from cxloop.web.security import security_headers
from cxloop.web.sessions import TooManyAttempts
from cxloop.web.templating import render

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("cxloop.web")
# RFC 9110's names where Python's http.HTTPStatus still has the older ones (before 3.13).
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def status_title(status: int) -> str:
    return _TITLES.get(status) or HTTPStatus(status).phrase


class ProblemDetail(BaseModel):
    """RFC 9457 problem details (extension members such as ``errors`` may follow)."""

    type: str = Field(default="about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["no customer with the id C42"])
    instance: str | None = Field(default=None, examples=["/api/v1/customers/C42"])


class Problem(Exception):
    """Raise to answer with a problem: ``raise Problem(404, detail="no customer C42")``."""

    def __init__(
        self,
        status: int,
        *,
        detail: str | None = None,
        title: str | None = None,
        type: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        self.status = status
        self.title = title or status_title(status)
        self.detail = detail
        self.type = type
        self.headers = headers or {}
        self.extensions = extensions
        super().__init__(detail or self.title)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for these statuses, as problem details."""
    return {
        status: {
            "description": status_title(status),
            "model": ProblemDetail,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
        }
        for status in statuses
    }


def wants_problem(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/healthz"))


def respond(request: Request, problem: Problem) -> Response:
    """The problem as ``application/problem+json`` (API) or as the HTML error page."""
    if wants_problem(request):
        standard = {
            "type": problem.type,
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
            "instance": request.url.path,
        }
        body = {**{k: v for k, v in standard.items() if v is not None}, **problem.extensions}
        return JSONResponse(
            body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
        )
    return render(
        request,
        "error.html",
        {"title": problem.title, "status": problem.status, "detail": problem.detail},
        status_code=problem.status,
        headers=problem.headers,
    )


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return respond(request, exc)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail is None or detail == HTTPStatus(exc.status_code).phrase:
        detail = {
            404: f"nothing at {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code)
    return respond(request, Problem(exc.status_code, detail=detail, headers=dict(exc.headers or {})))


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "the request is not valid"
    return respond(request, Problem(422, detail=detail, errors=errors))


async def _not_authenticated(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotAuthenticated)
    if wants_problem(request):
        return respond(request, Problem(401, detail=exc.detail, headers={"WWW-Authenticate": "Bearer"}))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return respond(request, Problem(403, detail=exc.detail))


async def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyAttempts)
    return respond(request, Problem(429, detail=str(exc), headers={"Retry-After": str(exc.retry_after)}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = Problem(500, detail="an unexpected error occurred; it has been logged")
    try:
        response = respond(request, problem)
    except Exception:  # the error page itself failed: say so in plain text
        response = PlainTextResponse(f"{problem.title}: {problem.detail}", status_code=500)
    # This handler runs outside the middleware stack: add the security headers here.
    response.headers.update(security_headers(request.url.path, request.url.scheme))
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(TooManyAttempts, _too_many)
    app.add_exception_handler(Exception, _unexpected)
