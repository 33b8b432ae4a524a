"""Query parameters a route does not take are refused with a 422 problem, not silently ignored.

A misspelt filter (``/api/v1/customers?segmnet=smb``) would otherwise answer with every customer,
which looks like an answer. Add ``Depends(no_unknown_query)`` to a route's or router's
dependencies; the parameters it knows are read from the route itself (its own and its
dependencies' query parameters), so the list cannot drift from the signature.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from cxloop.web.errors import Problem


def known_query(route: Any) -> set[str]:
    """The query parameters ``route`` declares, its dependencies' included."""
    names: set[str] = set()
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        names.update(param.alias for param in dependant.query_params)
        stack.extend(dependant.dependencies)
    return names


async def no_unknown_query(request: Request) -> None:
    """Refuse (422) a query parameter the matched route does not declare."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    known = known_query(route)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
    if unknown:
        choices = ", ".join(sorted(known)) or "none"
        raise Problem(
            422,
            detail="; ".join(
                f"query.{name}: unknown parameter (this route takes: {choices})" for name in unknown
            ),
            errors=[
                {
                    "loc": ["query", name],
                    "msg": f"unknown parameter; this route takes: {choices}",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ],
        )
