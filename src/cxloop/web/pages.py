"""The pages of the foundation: sign in, sign out, home, and the admin's list of users."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from cxloop.web import accounts
from cxloop.web.auth import (
    AUTHENTICATED,
    PUBLIC,
    SESSION_COOKIE,
    Forbidden,
    require,
)
from cxloop.web.deps import ClockDep, SettingsDep, StoreDep, client_ip, is_https
from cxloop.web.roles import ROLE_DESCRIPTIONS, Capability
from cxloop.web.sessions import InvalidCredentials, Principal, TooManyAttempts, end_session, log_in
from cxloop.web.settings import WebSettings
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)

# Before sign-in there is no session to hold a CSRF token: the login form uses a double-submit
# cookie instead (the form's hidden field must equal this cookie, which other sites cannot read).
LOGIN_CSRF_COOKIE = "cxloop_login_csrf"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or "\n" in value:
        return "/"
    return value


def _login_page(
    request: Request,
    settings: WebSettings,
    *,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    context = {"title": "Sign in", "login_csrf": token, "next_url": next_url, "email": email, "error": error}
    response = render(request, "login.html", context, status_code=status_code, headers=headers)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=is_https(request, settings),
        path="/login",
    )
    return response


@router.get("/login")
def login_form(
    request: Request,
    settings: SettingsDep,
    who: Annotated[Principal | None, Depends(PUBLIC)],
    next: str | None = None,
) -> Response:
    if who is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, settings, next_url=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    who: Annotated[Principal | None, Depends(PUBLIC)],
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not csrf_token or not secrets.compare_digest(cookie.encode(), csrf_token.encode()):
        raise Forbidden("the sign-in form has expired (CSRF check failed): reload the page and try again")
    next_url = safe_next(next)
    try:
        _, session = log_in(
            store,
            email,
            password,
            client_ip(request),
            now=clock(),
            limits=settings.login_limits(),
            policy=settings.session_policy(),
        )
    except TooManyAttempts as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return _login_page(
            request,
            settings,
            next_url=next_url,
            email=email,
            error=str(exc),
            status_code=429,
            headers=headers,
        )
    except InvalidCredentials:
        return _login_page(
            request,
            settings,
            next_url=next_url,
            email=email,
            error="Wrong email or password.",
            status_code=400,
        )
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a new session on every sign-in: no session fixation
        end_session(store, old)
        request.app.state.principals.forget()
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(settings.session_policy().lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=is_https(request, settings),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    who: Annotated[Principal, Depends(AUTHENTICATED)],
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and who.via == "session":
        end_session(store, token)
        request.app.state.principals.forget()  # signed out here and now, not in two seconds
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request, settings)
    )
    return response


@router.get("/admin/users")
def admin_users(
    request: Request, store: StoreDep, who: Annotated[Principal, Depends(require(Capability.USERS_MANAGE))]
) -> Response:
    return render(
        request,
        "admin_users.html",
        {"title": "Users", "users": accounts.list_users(store), "roles": ROLE_DESCRIPTIONS},
    )
