"""Who may call a route: every route declares a :class:`Requirement`, and only those declared run.

A route declares what it needs with a dependency, as a parameter or in ``dependencies=``::

    @router.get("/api/v1/customers")
    def customers(who: Annotated[Principal, Depends(require(Capability.DATA_READ))]) -> ...

    @router.get("/healthz", dependencies=[Depends(PUBLIC)])

``require(capability)`` admits a signed-in user whose role holds the capability; ``AUTHENTICATED``
any signed-in user; ``PUBLIC`` everyone. :func:`route_access` lists every route of an app with its
requirements; a route that declares none is a bug (the role-matrix test fails on it).

Authentication is by ``Authorization: Bearer <api token>`` (then the cookie is ignored), or by the
session cookie. Unsafe methods (POST, PUT, PATCH, DELETE) with a session must carry the session's
CSRF token, as the form field ``csrf_token`` or the ``X-CSRF-Token`` header; token requests are
exempt, since a browser never adds a bearer token on its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Mount

from cxloop.recent import RecentMap
from cxloop.web.accounts import sha256
from cxloop.web.deps import get_clock, get_settings, get_store
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal, session_principal, token_principal

SESSION_COOKIE = "cxloop_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotAuthenticated(Exception):
    """No valid session or token: 401 for the API, a redirect to the login page for pages."""

    def __init__(self, detail: str = "sign in, or send an API token as 'Authorization: Bearer ...'") -> None:
        self.detail = detail
        super().__init__(detail)


class Forbidden(Exception):
    """Signed in, but not allowed: 403."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Requirement:
    """A route's access rule, usable as a FastAPI dependency that returns the :class:`Principal`."""

    kind: Literal["public", "authenticated", "capability"]
    capability: Capability | None = None

    def __str__(self) -> str:
        return self.capability.value if self.capability else self.kind

    def allows(self, capabilities: frozenset[Capability] | None) -> bool:
        """Whether someone with ``capabilities`` (None: anonymous) passes this rule."""
        if self.kind == "public":
            return True
        if capabilities is None:
            return False
        return self.capability is None or self.capability in capabilities

    async def __call__(self, request: Request) -> Principal | None:
        principal = await _principal(request, optional=self.kind == "public")
        if principal is None:
            return None
        if self.capability is not None and not principal.can(self.capability):
            raise Forbidden(f"your role ({principal.role.value}) does not allow {self.capability.value}")
        if self.kind != "public" and principal.via == "session" and request.method in UNSAFE_METHODS:
            await check_csrf(request, principal.csrf_token)
        return principal


PUBLIC = Requirement("public")
AUTHENTICATED = Requirement("authenticated")


def require(capability: Capability) -> Requirement:
    """The rule "signed in, with a role that holds ``capability``"."""
    return Requirement("capability", capability)


async def _principal(request: Request, *, optional: bool) -> Principal | None:
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        if cached is None and not optional:
            raise NotAuthenticated()
        return cached
    store, clock, settings = get_store(request), get_clock(request), get_settings(request)
    # Who a token or session is was looked up a moment ago by an earlier request, most likely.
    known: RecentMap[tuple[str, str], Principal] = request.app.state.principals
    authorization = request.headers.get("authorization")
    cookie = None
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer <api token>'")
        key = ("token", sha256(token.strip()))
        found = known.get(key)
        if found is None:
            found = await run_in_threadpool(token_principal, store, token.strip(), now=clock())
            if found is None:
                raise NotAuthenticated("the API token is unknown, revoked, or its user is disabled")
            known.put(key, found)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        found = None
        if cookie:
            key = ("session", sha256(cookie))
            found = known.get(key)
            if found is not None and found.valid_until is not None and clock() >= found.valid_until:
                found = None  # expired meanwhile: the look-up below ends it
            if found is None:
                found = await run_in_threadpool(
                    session_principal, store, cookie, now=clock(), policy=settings.session_policy()
                )
                if found is not None:
                    known.put(key, found)
    request.state.principal = found
    if found is None and not optional:
        raise NotAuthenticated("your session has expired: sign in again" if cookie else "sign in first")
    return found


async def check_csrf(request: Request, expected: str | None) -> None:
    """Refuse (403) an unsafe request whose CSRF token, from the header or form, is not ``expected``."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(sent.encode(), expected.encode()):
        await request.close()  # the uploaded files of a parsed form, if any
        raise Forbidden("the form has expired or came from another site (CSRF check failed): reload, retry")


# -- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteAccess:
    """One route (or mount) of an app, and the rules it declared."""

    path: str
    methods: tuple[str, ...]
    name: str
    requirements: tuple[Requirement, ...]

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    def allows(self, capabilities: frozenset[Capability] | None) -> bool:
        return bool(self.requirements) and all(r.allows(capabilities) for r in self.requirements)


def declare_public_mount(app: FastAPI, path: str, asgi_app: object, *, name: str) -> None:
    """Mount a sub-application everyone may read (static files); mounts are public only this way."""
    app.mount(path, asgi_app, name=name)  # type: ignore[arg-type]
    app.state.public_mounts = {*getattr(app.state, "public_mounts", set()), path}


def route_access(app: FastAPI) -> list[RouteAccess]:
    """Every route and mount of ``app`` with its declared requirements (none: undeclared, a bug)."""
    public_mounts: set[str] = getattr(app.state, "public_mounts", set())
    return [_access(route, public_mounts) for route in _flat_routes(app)]


def _flat_routes(app: FastAPI) -> Iterator[Any]:
    """The app's routes with included routers expanded (FastAPI >= 0.13x keeps them nested)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # older FastAPI: app.routes is already flat
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)


def _access(route: Any, public_mounts: set[str]) -> RouteAccess:
    original: BaseRoute = getattr(route, "original_route", route)
    path = route.path or ""
    if isinstance(original, APIRoute):
        found: list[Requirement] = []
        stack = list(route.dependant.dependencies)
        while stack:
            dependant = stack.pop()
            if isinstance(dependant.call, Requirement):
                found.append(dependant.call)
            stack.extend(dependant.dependencies)
        methods = tuple(sorted((route.methods or set()) - {"HEAD"}))
        return RouteAccess(path, methods, route.name or "", tuple(dict.fromkeys(found)))
    if isinstance(original, Mount):
        declared = (PUBLIC,) if path in public_mounts else ()
        return RouteAccess(path, ("GET",), route.name or "", declared)
    return RouteAccess(path or repr(route), tuple(sorted(getattr(route, "methods", None) or ())), "", ())
