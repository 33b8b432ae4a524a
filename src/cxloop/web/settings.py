"""The web server's settings: ``Settings`` plus the knobs only the server needs.

Read from ``CXLOOP_*`` environment variables like every other setting. There is no secret to
configure: sessions are kept server-side, so no signing key exists that could be left at a default.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from pydantic import Field, ValidationError

from cxloop.config import Settings
from cxloop.errors import ConfigError
from cxloop.web.sessions import LoginLimits, SessionPolicy


class WebSettings(Settings):
    """Typed web settings (``CXLOOP_SECURE_COOKIES``, ``CXLOOP_TRUSTED_PROXIES``, ...)."""

    secure_cookies: bool = Field(
        default=False,
        description="Always mark cookies Secure (set it when users reach the server over HTTPS)",
    )
    trusted_proxies: str = Field(
        default="",
        description=(
            "Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
            "X-Forwarded-Proto headers are believed ('*' for any); empty: none"
        ),
    )
    session_hours: float = Field(default=12, gt=0, description="A session ends this long after sign-in")
    session_idle_minutes: float = Field(
        default=120, gt=0, description="A session ends after this long without a request"
    )
    login_failures_per_email: int = Field(
        default=5, ge=1, description="Failed sign-ins allowed per email within the window"
    )
    login_failures_per_ip: int = Field(
        default=20, ge=1, description="Failed sign-ins allowed per client address within the window"
    )
    login_window_minutes: float = Field(default=15, gt=0, description="The rate-limiting window")
    upload_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "cxloop-uploads",
        description="Where uploads wait for their import (deleted after it) and exports are written "
        "before they are sent",
    )
    max_upload_mb: float = Field(default=512, gt=0, description="Largest upload accepted, in MiB")
    import_rejects_kept: int = Field(
        default=100_000, ge=0, description="Problems of an import's reject report kept for the API"
    )
    metrics_cache_entries: int = Field(
        default=128,
        ge=0,
        description="Metric results (summary, KPI values, cohorts, RFM) kept until an import; 0: none",
    )
    metrics_cache_now_seconds: float = Field(
        default=60, ge=0, description="A result as of now answers for this long (if no import came)"
    )
    metrics_cache_stale_seconds: float = Field(
        default=900,
        ge=0,
        description="After that, it still answers for this long while it is recomputed in the background",
    )
    data_check_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How often a process asks whether another process imported data (its own show at once)",
    )
    sign_in_check_seconds: float = Field(
        default=2.0,
        ge=0,
        description="A token or session found valid is trusted this long before it is looked up again",
    )
    cases_check_seconds: float = Field(
        default=30.0,
        ge=0,
        description=(
            "How often the server opens follow-up cases for new unhappy answers (and at once after "
            "an import); 0: never (then run `cxloop cases open`)"
        ),
    )
    cases_lookback_days: float = Field(
        default=30.0, gt=0, description="The sweep opens cases for answers given in this many last days"
    )

    def login_limits(self) -> LoginLimits:
        return LoginLimits(
            per_email=self.login_failures_per_email,
            per_ip=self.login_failures_per_ip,
            window=dt.timedelta(minutes=self.login_window_minutes),
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def session_policy(self) -> SessionPolicy:
        return SessionPolicy(
            lifetime=dt.timedelta(hours=self.session_hours),
            idle=dt.timedelta(minutes=self.session_idle_minutes),
        )


def load_web_settings(**overrides: object) -> WebSettings:
    """Web settings from the environment, with ``overrides`` winning; a bad value is a ConfigError."""
    try:
        return WebSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"CXLOOP_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid web settings: {problems}") from None


def web_settings(settings: Settings) -> WebSettings:
    """``settings`` as :class:`WebSettings`: web fields from the environment where not given."""
    if isinstance(settings, WebSettings):
        return settings
    return load_web_settings(**settings.model_dump())
