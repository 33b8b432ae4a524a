"""The application factory: one FastAPI app over one store, with nothing global.

``create_app(store, settings)`` wires the routers, the error handlers, the security headers and the
static files, and keeps the store, settings and clock on ``app.state`` for the dependencies in
:mod:`cxloop.web.deps`. ``app_from_environment`` is the factory uvicorn calls in each worker
process (``cxloop serve --workers N`` on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cxloop import __version__
from cxloop.business import RecentSettings
from cxloop.cases.sweep import CaseSweep
from cxloop.config import Settings
from cxloop.metrics.cache import MetricsCache, store_fingerprint
from cxloop.recent import Recent, RecentMap
from cxloop.store.store import Store
from cxloop.surveys.answers import PublicLimits
from cxloop.surveys.versions import DefinitionCache
from cxloop.surveys.writer import GroupCommit
from cxloop.web import (
    api,
    api_cases,
    api_customers,
    api_exports,
    api_imports,
    api_metrics,
    api_surveys,
    api_value,
    api_voice,
    errors,
    pages,
    pages_cases,
    pages_customers,
    pages_dashboard,
    pages_imports,
    pages_settings,
    pages_surveys,
    pages_value,
    pages_voice,
    survey_answer,
)
from cxloop.web.accounts import utcnow
from cxloop.web.auth import declare_public_mount
from cxloop.web.deps import Clock
from cxloop.web.roles import Capability
from cxloop.web.security import SecurityHeadersMiddleware
from cxloop.web.sessions import Principal
from cxloop.web.settings import web_settings
from cxloop.web.templating import add_nav, make_templates
from cxloop.web.vendor import VendorFiles

STATIC = Path(__file__).parent / "static"


def create_app(store: Store, settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """The web application over ``store``.

    ``clock`` returns now as naive UTC (the default reads the system clock); tests pass their own.
    The caller owns ``store`` and closes it.
    """
    web = web_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.case_sweep.start()
        yield
        app.state.case_sweep.stop()  # after the sweep under way; lets another worker take over
        app.state.import_runner.shutdown()  # waits for a running import; fails the queued ones
        if app.state.survey_transact is not None:
            app.state.survey_transact.close()  # commits the answers queued
        if getattr(app.state, "owns_store", False):
            app.state.store.close()

    app = FastAPI(
        title="cxloop",
        version=__version__,
        summary="Measure customer relationships and improve them continuously.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = web
    app.state.clock = clock or utcnow
    # Read per request: what the data is (so the metrics cache knows when to recompute) and who a
    # token or session belongs to, each at most a second or two old (src/cxloop/recent.py).
    fingerprint = Recent(lambda: store_fingerprint(store), seconds=web.data_check_seconds)
    app.state.principals = RecentMap[tuple[str, str], Principal](seconds=web.sign_in_check_seconds)
    # The closed loop without a command: unhappy answers (answer page, API, imports) open their
    # follow-up case within cases_check_seconds, swept by one process (src/cxloop/cases/sweep.py).
    app.state.case_sweep = CaseSweep(
        store,
        clock=app.state.clock,
        seconds=web.cases_check_seconds,
        lookback=dt.timedelta(days=web.cases_lookback_days),
    )

    def imported() -> None:
        fingerprint.forget()
        app.state.case_sweep.wake()

    app.state.import_runner = api_imports.make_runner(store, web, app.state.clock, on_imported=imported)
    app.state.templates = make_templates()
    # Surveys: an answer changes the data at once for this process (cxloop.surveys.answers).
    app.state.forget_data_fingerprint = fingerprint.forget
    app.state.survey_definitions = DefinitionCache(store)
    app.state.survey_limits = PublicLimits()
    app.state.survey_transact = GroupCommit(store) if store.dialect == "duckdb" else None
    app.state.business_settings = RecentSettings(store)
    # Metric results until the next import (docs/metrics.md, "Caching"); the API and pages share it.
    app.state.metrics_cache = MetricsCache(
        fingerprint.get,
        max_entries=web.metrics_cache_entries,
        now_seconds=web.metrics_cache_now_seconds,
        stale_seconds=web.metrics_cache_stale_seconds,
    )
    add_nav(app, "Dashboard", "/", Capability.DASHBOARDS_READ)
    add_nav(app, "KPIs", "/kpis", Capability.DASHBOARDS_READ)
    add_nav(app, "Customers", "/customers", Capability.DATA_READ)
    add_nav(app, "Value", "/value", Capability.DASHBOARDS_READ)
    add_nav(app, "Voice", "/voice", Capability.DASHBOARDS_READ)
    add_nav(app, "Surveys", "/surveys", Capability.DASHBOARDS_READ)
    add_nav(app, "Cases", "/cases", Capability.CASES_OWN)
    add_nav(app, "Imports", "/imports", Capability.IMPORTS_RUN)
    add_nav(app, "Settings", "/settings", Capability.SETTINGS_MANAGE)
    add_nav(app, "Users", "/admin/users", Capability.USERS_MANAGE)

    errors.install(app)
    # The router looks for a request's route in this order, router by router, so the routes taken
    # most often come first: the public answer pages (survey respondents, the busiest) and health.
    app.include_router(survey_answer.router)
    app.include_router(api.system)
    app.include_router(pages.router)
    app.include_router(pages_dashboard.router)
    app.include_router(pages_customers.router)
    app.include_router(pages_imports.router)
    app.include_router(pages_settings.router)
    app.include_router(pages_value.router)
    app.include_router(pages_cases.router)
    app.include_router(pages_surveys.router)
    app.include_router(pages_voice.router)
    app.include_router(api.router)
    app.include_router(api_metrics.router)
    app.include_router(api_customers.router)
    app.include_router(api_exports.router)
    app.include_router(api_imports.router)
    app.include_router(api_value.router)
    app.include_router(api_cases.router)
    app.include_router(api_cases.opt_outs)
    app.include_router(api_surveys.router)
    app.include_router(api_voice.router)
    declare_public_mount(app, "/static", StaticFiles(directory=STATIC), name="static")
    declare_public_mount(app, "/vendor", VendorFiles(), name="vendor")

    app.add_middleware(SecurityHeadersMiddleware)
    if web.trusted_proxies.strip():
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        trusted = [h.strip() for h in web.trusted_proxies.split(",") if h.strip()]
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)
    return app


def app_from_environment() -> FastAPI:
    """Build the app from ``CXLOOP_*`` variables (uvicorn's factory mode, one call per worker)."""
    from cxloop.web.settings import load_web_settings
    from cxloop.web.storage import open_server_store

    settings = load_web_settings()
    app = create_app(open_server_store(settings.database_url, settings), settings)
    app.state.owns_store = True
    return app
