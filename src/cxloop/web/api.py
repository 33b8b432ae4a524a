"""The REST API's foundation (``/api/v1``): who am I, the OpenAPI schema, and the health check."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cxloop.web.auth import AUTHENTICATED, PUBLIC
from cxloop.web.deps import StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.sessions import Principal

router = APIRouter(prefix="/api/v1", tags=["account"])
system = APIRouter(include_in_schema=False)


class Me(BaseModel):
    """The signed-in user, or the user behind the API token."""

    id: str
    email: str = Field(examples=["ana@example.com"])
    role: str = Field(description="The role in effect (an API token's own role)", examples=["analyst"])
    user_role: str = Field(description="The user's role", examples=["analyst"])
    via: str = Field(description="session or token", examples=["token"])
    capabilities: list[str] = Field(examples=[["dashboards.read", "data.read"]])
    last_login_at: dt.datetime | None


@router.get("/me", responses=problem_responses(401))
def me(who: Annotated[Principal, Depends(AUTHENTICATED)]) -> Me:
    """Who is calling, with which role and capabilities."""
    return Me(
        id=who.user.id,
        email=who.user.email,
        role=who.role.value,
        user_role=who.user.role.value,
        via=who.via,
        capabilities=sorted(c.value for c in who.capabilities),
        last_login_at=who.user.last_login_at,
    )


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(PUBLIC)])
def openapi(request: Request) -> dict[str, Any]:
    """The OpenAPI schema of this API."""
    schema: dict[str, Any] = request.app.openapi()
    return schema


@system.get("/healthz", dependencies=[Depends(PUBLIC)])
async def healthz(store: StoreDep) -> dict[str, str]:
    """Liveness and database reachability, for load balancers (no authentication, no details)."""

    def ping() -> None:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except sa.exc.SQLAlchemyError:
        raise Problem(503, detail="the database is not reachable") from None
    return {"status": "ok"}
