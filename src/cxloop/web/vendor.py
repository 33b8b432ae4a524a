"""Third-party front-end files, served from the Python packages that ship them (never committed).

Mounted at ``/vendor`` for everyone (the login page needs no chart, but a cached script must not
depend on a session). Each file is read and gzip-compressed once per process, on first request,
and sent with a long cache lifetime, since it changes only when the package is upgraded; the
``?v=`` the pages add (the package's version) makes browsers fetch the new one then.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from cxloop.web.charts import plotly_js


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str


def _plotly_js() -> tuple[bytes, str]:
    return plotly_js().read_bytes(), "text/javascript; charset=utf-8"


SOURCES: dict[str, Callable[[], tuple[bytes, str]]] = {
    "/plotly.min.js": _plotly_js,
}


def plotly_version() -> str:
    return version("plotly")


class VendorFiles:
    """A tiny ASGI app serving :data:`SOURCES`, compressed once and cached by browsers."""

    def __init__(self) -> None:
        self._assets: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def asset(self, path: str) -> Asset | None:
        if path not in SOURCES:
            return None
        with self._lock:
            if path not in self._assets:
                body, media_type = SOURCES[path]()
                self._assets[path] = Asset(body, gzip.compress(body, 6), media_type)
            return self._assets[path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        found = self.asset(path) if request.method in ("GET", "HEAD") else None
        if found is None:
            await PlainTextResponse("not found", status_code=404)(scope, receive, send)
            return
        headers = {"cache-control": "public, max-age=604800", "vary": "accept-encoding"}
        body = found.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["content-encoding"] = found.gzipped, "gzip"
        await Response(body, media_type=found.media_type, headers=headers)(scope, receive, send)
