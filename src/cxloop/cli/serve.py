"""``cxloop serve``: the web application."""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Any

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import stderr
from cxloop.config import normalise_database_url
from cxloop.errors import ConfigError

if TYPE_CHECKING:
    from cxloop.store.store import Store
    from cxloop.web.settings import WebSettings


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Worker processes (PostgreSQL only: DuckDB allows one writer)."
    ),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Mark cookies Secure (users reach the server over HTTPS)."
    ),
    trusted_proxies: str | None = typer.Option(
        None,
        "--trusted-proxies",
        metavar="ADDRESSES",
        help="Comma-separated reverse-proxy addresses whose X-Forwarded-For/-Proto are believed.",
    ),
) -> None:
    """Run the web application (pages and the /api/v1 REST API) until Ctrl+C."""
    with reporting_errors():
        import uvicorn

        from cxloop.web.settings import load_web_settings

        overrides: dict[str, object] = {}
        if state(ctx).database_url:
            overrides["database_url"] = state(ctx).database_url
        if secure_cookies:
            overrides["secure_cookies"] = True
        if trusted_proxies is not None:
            overrides["trusted_proxies"] = trusted_proxies
        settings = load_web_settings(**overrides)
        url = normalise_database_url(settings.database_url)
        if url.startswith("duckdb") and workers > 1:
            raise ConfigError(
                "--workers must be 1 on a DuckDB file: DuckDB allows one writing process. "
                "Use PostgreSQL (--db postgresql://...) for several workers."
            )
        store = _open(url, settings)
        banner = f"cxloop serving http://{_url_host(host)}:{port} on {store.url} ({_processes(workers)})"
        if workers == 1:
            from cxloop.web.app import create_app

            app = create_app(store, settings)
            _announce(store, banner)
            uvicorn.run(app, host=host, port=port, proxy_headers=False, log_config=_log_config())
            store.close()
            return
        _announce(store, banner)
        store.close()
        # Each worker process builds its own app and store from the environment.
        os.environ["CXLOOP_DATABASE_URL"] = settings.database_url
        os.environ["CXLOOP_SECURE_COOKIES"] = "true" if settings.secure_cookies else "false"
        os.environ["CXLOOP_TRUSTED_PROXIES"] = settings.trusted_proxies
        uvicorn.run(
            "cxloop.web.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,
            log_config=_log_config(),
        )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus cxloop's own messages (the case sweep's, at INFO) beside its lines;
    uvicorn applies it in each worker process too."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["cxloop"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _open(url: str, settings: WebSettings) -> Store:
    from cxloop.web.storage import open_server_store

    return open_server_store(url, settings)


def _announce(store: Store, banner: str) -> None:
    from cxloop.web.accounts import count_users

    typer.echo(banner + "; Ctrl+C stops it")
    if count_users(store) == 0:
        stderr().print(
            "[yellow]No user can sign in yet:[/] create one with "
            "`cxloop users create EMAIL --role admin` (stop the server first on a DuckDB file)."
        )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _processes(workers: int) -> str:
    return "1 process" if workers == 1 else f"{workers} worker processes"
