"""``cxloop voice themes``: discover what customers talk about, list the themes, curate them."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
from typing import Any

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.metrics import DATE_FORMATS, records
from cxloop.cli.output import csv_option, json_option, print_rows, stdout

app = typer.Typer(help="Themes: what customers talk and complain about (discover, list, curate).")
curate_app = typer.Typer(
    help="Rename, merge, split or delete themes, add or remove keyword rules, restore an earlier "
    "version; every change is a version."
)
app.add_typer(curate_app, name="curate")

_BRANDS = {"all": None, "own": False, "competitors": True}
_METHODS = ("nmf", "semantic")  # cxloop.voice.themes_discover.METHODS, without importing it here


def _kind() -> Any:
    return typer.Option(
        None, "--kind", help="Text kind: ticket, review, post or survey (repeat or comma-separate)."
    )


def _start() -> Any:
    return typer.Option(None, "--from", "--start", formats=DATE_FORMATS, help="Texts written from (UTC).")


def _end() -> Any:
    return typer.Option(None, "--to", "--end", formats=DATE_FORMATS, help="Texts written before (UTC).")


def _brands() -> Any:
    return typer.Option("all", "--brands", help="all, own (our brand only) or competitors.")


def _grain() -> Any:
    return typer.Option("month", "--grain", help="Trend per week or month.")


def _sentiment() -> Any:
    return typer.Option(
        True, "--sentiment/--no-sentiment", help="Mean sentiment per theme (scores new texts)."
    )


def _by() -> Any:
    return typer.Option(None, "--by", help="Who makes the change (default: the user running the command).")


def _kinds(kind: list[str] | None) -> list[str] | None:
    if not kind:
        return None
    return [k.strip() for item in kind for k in item.split(",") if k.strip()]


def _who(by: str | None) -> str:
    return by or getpass.getuser()


def _embeddings_kept(method: str) -> Any:
    """Semantic discovery and the report after it embed each text once."""
    if method != "semantic":
        return contextlib.nullcontext()
    from cxloop.voice.themes_semantic import cached_embeddings

    return cached_embeddings()


@app.command("discover")
def discover(
    ctx: typer.Context,
    kind: list[str] | None = _kind(),
    start: dt.datetime | None = _start(),
    end: dt.datetime | None = _end(),
    brands: str = _brands(),
    k: int | None = typer.Option(
        None, "--k", min=2, max=60, help="Number of themes (default: chosen automatically)."
    ),
    method: str = typer.Option(
        "nmf",
        "--method",
        help="nmf (TF-IDF + NMF, fast) or semantic (sentence embeddings + k-means, slower; "
        "needs the semantic extra of cxloop).",
    ),
    grain: str = _grain(),
    sentiment: bool = _sentiment(),
    by: str | None = _by(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Discover themes in the selected texts; the curated themes carry over (a new version)."""
    from cxloop.voice import themes
    from cxloop.voice.corpus import KINDS

    with reporting_errors():
        if brands not in _BRANDS:
            raise typer.BadParameter("all, own or competitors", param_hint="--brands")
        if method not in _METHODS:
            raise typer.BadParameter(" or ".join(_METHODS), param_hint="--method")
        kinds = _kinds(kind) or list(KINDS)
        with state(ctx).open_store() as store, _embeddings_kept(method):
            taxonomy = themes.discover(
                store, kinds=kinds, start=start, end=end, competitors=_BRANDS[brands], k=k,
                method=method, by=_who(by),
            )  # fmt: skip
            report = themes.theme_report(
                store, kinds=kinds, start=start, end=end, competitors=_BRANDS[brands], grain=grain,
                sentiment=sentiment,
            )  # fmt: skip
        _print(report, f"Themes, version {taxonomy.version}", as_json, as_csv)


@app.command("list")
def list_themes(
    ctx: typer.Context,
    kind: list[str] | None = _kind(),
    start: dt.datetime | None = _start(),
    end: dt.datetime | None = _end(),
    brands: str = _brands(),
    grain: str = _grain(),
    sentiment: bool = _sentiment(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """The current themes over the texts they were discovered on (or the selection given)."""
    from cxloop.voice import themes

    with reporting_errors():
        if brands not in _BRANDS:
            raise typer.BadParameter("all, own or competitors", param_hint="--brands")
        with state(ctx).open_store() as store:
            report = themes.theme_report(
                store, kinds=_kinds(kind), start=start, end=end, competitors=_BRANDS[brands], grain=grain,
                sentiment=sentiment,
            )  # fmt: skip
        _print(report, f"Themes, version {report.attrs['version']}", as_json, as_csv)


def _print(report: Any, title: str, as_json: bool, as_csv: bool) -> None:
    rows = records(report)
    if as_json:
        print_rows(rows, title=title, as_json=True)
        return
    if as_csv:
        flat = [{**r, "terms": ", ".join(r["terms"]), "keywords": ", ".join(r["keywords"]),
                 "quotes": " | ".join(r["quotes"]), "trend": " ".join(str(p["texts"]) for p in r["trend"])}
                for r in rows]  # fmt: skip
        print_rows(flat, title=title, as_csv=True)
        return
    shown = [
        {
            "id": r["theme_id"],
            "label": r["label"] + (" *" if r["curated"] else ""),
            "texts": r["texts"],
            "share %": r["share"],
            "sentiment": "" if r["sentiment"] is None else f"{r['sentiment']:+.2f}",
            "terms": ", ".join(r["terms"][:5]),
            "quote": _line(r["quotes"][0]) if r["quotes"] else "",
        }
        for r in rows
    ]
    print_rows(shown, title=title)
    attrs = report.attrs
    stdout().print(
        f"{attrs['texts']:,} texts, {attrs['untagged']:,} untagged; * curated. "
        "Rename, merge, split, delete or add rules with `cxloop voice themes curate`."
    )


def _line(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _done(taxonomy: Any) -> None:
    stdout().print(
        f"themes version {taxonomy.version} ({taxonomy.action} by {taxonomy.created_by})", markup=False
    )


@curate_app.command("rename")
def rename(
    ctx: typer.Context,
    theme_id: int = typer.Argument(..., help="The theme's id (cxloop voice themes list)."),
    label: str = typer.Argument(..., help="Its new label."),
    by: str | None = _by(),
) -> None:
    """Give a theme a name of your own (kept across re-discovery)."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        _done(themes.rename(store, theme_id, label, by=_who(by)))


@curate_app.command("merge")
def merge(
    ctx: typer.Context,
    theme_ids: list[int] = typer.Argument(..., help="Two or more theme ids; the first one's id is kept."),
    label: str | None = typer.Option(
        None, "--label", help="The merged theme's label (default: the first's)."
    ),
    by: str | None = _by(),
) -> None:
    """Merge themes into one."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        _done(themes.merge(store, theme_ids, label=label, by=_who(by)))


@curate_app.command("split")
def split(
    ctx: typer.Context,
    theme_id: int = typer.Argument(..., help="The theme to split."),
    parts: int = typer.Option(2, "--parts", min=2, max=10, help="Parts of a single-topic theme."),
    by: str | None = _by(),
) -> None:
    """Split a theme: a merged one back into its topics, another into --parts fitted on its texts."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        _done(themes.split(store, theme_id, parts=parts, by=_who(by)))


@curate_app.command("delete")
def delete(
    ctx: typer.Context,
    theme_id: int = typer.Argument(..., help="The theme to delete (its texts stay untagged)."),
    by: str | None = _by(),
) -> None:
    """Delete a theme; it stays deleted when discovery finds it again."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        _done(themes.delete(store, theme_id, by=_who(by)))


@curate_app.command("rule")
def rule(
    ctx: typer.Context,
    keywords: list[str] = typer.Argument(..., help="Words or phrases; a text containing one is the theme's."),
    theme_id: int | None = typer.Option(None, "--theme", help="The theme the rule assigns to."),
    label: str | None = typer.Option(None, "--label", help="Or: a new theme of this label, made of rules."),
    by: str | None = _by(),
) -> None:
    """Add a keyword rule: matching texts go to the theme, whatever the model says."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        _done(themes.add_rule(store, keywords, theme_id=theme_id, label=label, by=_who(by)))


@curate_app.command("unrule")
def unrule(
    ctx: typer.Context,
    keywords: list[str] = typer.Argument(..., help="The theme's keyword rules to remove."),
    theme_id: int = typer.Option(..., "--theme", help="The theme holding the rules."),
    by: str | None = _by(),
) -> None:
    """Remove keyword rules from a theme: its texts go back to the model."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        _done(themes.remove_rule(store, theme_id, keywords, by=_who(by)))


@curate_app.command("restore")
def restore(
    ctx: typer.Context,
    version: int = typer.Argument(..., help="The earlier version to bring back (curate history)."),
    by: str | None = _by(),
) -> None:
    """Restore an earlier version: a new version equal to it (the history keeps every version)."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        _done(themes.restore(store, version, by=_who(by)))


@curate_app.command("history")
def history(ctx: typer.Context, as_json: bool = json_option(), as_csv: bool = csv_option()) -> None:
    """Every version of the themes: who changed what, and when."""
    from cxloop.voice import themes

    with reporting_errors(), state(ctx).open_store() as store:
        rows = themes.history(store)
    if not (as_json or as_csv):
        rows = [{**r, "details": ", ".join(f"{k}={v}" for k, v in r["details"].items() if k != "matches")}
                for r in rows]  # fmt: skip
    print_rows(rows, title="Theme versions", as_json=as_json, as_csv=as_csv)
