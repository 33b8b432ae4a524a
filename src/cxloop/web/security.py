"""Security headers on every response, as a plain ASGI middleware.

The Content-Security-Policy allows scripts and images from this origin only: no inline script, no
framing (clickjacking), no plugins, forms that post only here. Styles may also be inline: the
chart library (Plotly.js) sets style attributes and injects its own style rules as it draws, and
a style cannot run code; what keeps injected markup out is that every template escapes.

A response that sets its own Content-Security-Policy (the survey answer pages, which a survey may
let named websites frame) has chosen its ``frame-ancestors``: X-Frame-Options is then not added
(it cannot name sites, and browsers that know ``frame-ancestors`` ignore it anyway).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000"


def security_headers(path: str, scheme: str) -> dict[str, str]:
    """The headers for a response to ``path``: nothing but static files may be cached."""
    headers = dict(HEADERS)
    if not path.startswith("/static/"):
        headers["cache-control"] = "no-store"
    if scheme == "https":
        headers["strict-transport-security"] = HSTS
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope["path"], scope.get("scheme", "http"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                if b"content-security-policy" in present:
                    present.add(b"x-frame-options")
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
