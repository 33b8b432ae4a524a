"""``cxloop value``: customer lifetime value, churn risk and subscription survival."""

from __future__ import annotations

import typer

from cxloop.cli.value_survival import survival

app = typer.Typer(
    help="Customer value: fit BG/NBD and Gamma-Gamma, CLV, customers at risk, survival curves.",
    no_args_is_help=True,
)

app.command("survival")(survival)
