"""``cxloop users`` and ``cxloop tokens``: the web application's accounts, from the server's shell."""

from __future__ import annotations

import sys
from typing import Any

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import csv_option, json_option, print_json, print_rows, stdout
from cxloop.web import accounts
from cxloop.web.roles import Role

app = typer.Typer(
    help="Web users: create them (no default password exists), list, change roles, disable.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(help="API tokens for scripts: shown once, stored hashed.", no_args_is_help=True)


def _email() -> Any:
    return typer.Argument(..., metavar="EMAIL", help="The user's email address (their login).")


def _role_option(help: str) -> Any:
    return typer.Option(..., "--role", case_sensitive=False, help=help)


def _password_stdin() -> Any:
    return typer.Option(
        False, "--password-stdin", help="Read the password from standard input instead of generating one."
    )


def _read_password(from_stdin: bool) -> tuple[str, bool]:
    """The password to set and whether it was generated (and so must be shown)."""
    if not from_stdin:
        return accounts.generate_password(), True
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise accounts.AccountError("no password on standard input")
    return password, False


@app.command()
def create(
    ctx: typer.Context,
    email: str = _email(),
    role: Role = _role_option("admin, manager, analyst, agent or viewer."),
    password_stdin: bool = _password_stdin(),
    as_json: bool = typer.Option(False, "--json", help="Print {email, role, password} as JSON."),
    exist_ok: bool = typer.Option(
        False, "--exist-ok", help="If the user exists already, say so and succeed (change nothing)."
    ),
) -> None:
    """Create a user. Without --password-stdin a random password is generated and printed once."""
    with reporting_errors(), state(ctx).open_store() as store:
        existing = accounts.find_user(store, email) if exist_ok else None
        if existing is not None:
            if as_json:
                print_json({"email": existing.email, "role": existing.role.value, "password": None})
                return
            stdout().print(
                f"{existing.email} exists already ({existing.role.value}); its password was shown when it "
                f"was created (`cxloop users set-password {existing.email}` makes a new one).",
                highlight=False,
            )
            return
        password, generated = _read_password(password_stdin)
        user = accounts.create_user(store, email, role, password, now=accounts.utcnow())
        shown = password if generated else None
        if as_json:
            print_json({"email": user.email, "role": user.role.value, "password": shown})
            return
        stdout().print(f"Created {user.email} ({user.role.value}).", highlight=False)
        if shown:
            typer.echo(f"Password (shown only now; keep it safe): {shown}")


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = json_option(), as_csv: bool = csv_option()) -> None:
    """Every user with role, state and last sign-in (never a password or its hash)."""
    with reporting_errors(), state(ctx).open_store() as store:
        users = [u.public() for u in accounts.list_users(store)]
        if not (as_json or as_csv):
            users = [
                {
                    "email": u["email"],
                    "role": u["role"],
                    "active": "yes" if u["active"] else "disabled",
                    "created_at": u["created_at"],
                    "last_login_at": u["last_login_at"],
                }
                for u in users
            ]
        print_rows(users, title="Users", as_json=as_json, as_csv=as_csv)


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    email: str = _email(),
    role: Role = typer.Argument(..., case_sensitive=False, help="The new role."),
) -> None:
    """Change a user's role; their sessions end so it applies at once."""
    with reporting_errors(), state(ctx).open_store() as store:
        user = accounts.set_role(store, email, role)
        typer.echo(f"{user.email} is now {user.role.value}.")


@app.command()
def disable(ctx: typer.Context, email: str = _email()) -> None:
    """Disable a user: their sessions end and their API tokens stop working."""
    with reporting_errors(), state(ctx).open_store() as store:
        user = accounts.set_active(store, email, False)
        typer.echo(f"{user.email} is disabled.")


@app.command()
def enable(ctx: typer.Context, email: str = _email()) -> None:
    """Enable a disabled user again."""
    with reporting_errors(), state(ctx).open_store() as store:
        user = accounts.set_active(store, email, True)
        typer.echo(f"{user.email} is enabled.")


@app.command("set-password")
def set_password(ctx: typer.Context, email: str = _email(), password_stdin: bool = _password_stdin()) -> None:
    """Replace a user's password (generated and printed once unless read from stdin); sessions end."""
    with reporting_errors(), state(ctx).open_store() as store:
        password, generated = _read_password(password_stdin)
        user = accounts.set_password(store, email, password)
        typer.echo(
            f"New password for {user.email}" + (f" (shown only now): {password}" if generated else " set.")
        )


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", metavar="EMAIL", help="Whose token it is."),
    role: Role = _role_option("The token's role: no more than the user's own."),
    name: str | None = typer.Option(None, "--name", help="What the token is for."),
    as_json: bool = typer.Option(False, "--json", help="Print {id, token, user, role, name} as JSON."),
) -> None:
    """Create an API token (use it as 'Authorization: Bearer TOKEN'); it is printed once."""
    with reporting_errors(), state(ctx).open_store() as store:
        new = accounts.create_token(store, user, role, name=name, now=accounts.utcnow())
        if as_json:
            print_json(
                {
                    "id": new.id,
                    "token": new.token,
                    "user": new.user_email,
                    "role": new.role.value,
                    "name": name,
                }
            )
            return
        stdout().print(f"Token {new.id} for {new.user_email} as {new.role.value}.", highlight=False)
        typer.echo(f"Token (shown only now; keep it safe): {new.token}")


@tokens_app.command("list")
def list_tokens(ctx: typer.Context, as_json: bool = json_option(), as_csv: bool = csv_option()) -> None:
    """Every API token: id, name, user, role, created, last used, revoked (never the token)."""
    with reporting_errors(), state(ctx).open_store() as store:
        rows = accounts.list_tokens(store)
        print_rows(rows, title="API tokens", as_json=as_json, as_csv=as_csv)


@tokens_app.command("revoke")
def revoke_token(ctx: typer.Context, token_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Revoke an API token by its id (see `cxloop tokens list`)."""
    with reporting_errors(), state(ctx).open_store() as store:
        accounts.revoke_token(store, token_id, now=accounts.utcnow())
        typer.echo(f"Token {token_id} is revoked.")
