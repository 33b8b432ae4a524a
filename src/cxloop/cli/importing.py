"""``cxloop import ENTITY FILE``: one command per entity, all sharing the same options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cxloop.cli.app import EXIT_REJECTED, reporting_errors, state
from cxloop.cli.output import print_json, print_rows, stderr, stdout
from cxloop.ingest.entities import ENTITIES, Entity
from cxloop.ingest.mapping import parse_assignments
from cxloop.ingest.pipeline import STEPS, ImportOptions, ImportResult, import_file

app = typer.Typer(
    help="Import an export (CSV/TSV, Parquet, JSON Lines, XLSX) into the store.",
    no_args_is_help=True,
)


def _fields_help(entity: Entity) -> str:
    lines = [entity.doc, "", "Fields (required ones starred):", ""]
    for f in entity.fields:
        star = "*" if f.required else " "
        note = f" — {f.doc}" if f.doc else ""
        lines.append(f"  {star} {f.name} ({f.kind}){note}")
    return "\n\n".join(["\n".join(lines[:2]), "\n".join(lines[2:])])


def _make_command(entity: Entity) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        file: Path = typer.Argument(..., help="The file to import.", show_default=False),
        preset: str | None = typer.Option(
            None, help="A preset for a known source (see `cxloop presets list`)."
        ),
        map_: list[str] = typer.Option([], "--map", help="FIELD=COLUMN; repeatable.", metavar="FIELD=COLUMN"),
        set_: list[str] = typer.Option(
            [], "--set", help="FIELD=VALUE for every row; repeatable.", metavar="FIELD=VALUE"
        ),
        mapping: str | None = typer.Option(None, help="Use a mapping saved earlier with --save-mapping."),
        save_mapping: str | None = typer.Option(None, help="Save this import's mapping under a name."),
        date_format: list[str] = typer.Option(
            [], help="strftime format of the dates, e.g. %d/%m/%Y; repeatable (tried in order)."
        ),
        source: str | None = typer.Option(
            None, help="Name of the source system (default: the preset's, else 'default')."
        ),
        format_: str | None = typer.Option(
            None, "--format", help="csv, tsv, whitespace, parquet, jsonl or xlsx (default: by extension)."
        ),
        delimiter: str | None = typer.Option(None, help="Field delimiter (default: detected)."),
        encoding: str = typer.Option(
            "auto", help="Text encoding, e.g. utf-8, cp1252, latin-1 (default: detected)."
        ),
        sheet: str | None = typer.Option(None, help="XLSX sheet (default: the first)."),
        rejects_dir: Path = typer.Option(Path("cxloop-rejects"), help="Where reject files are written."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Check and count, but write nothing to the store."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        with reporting_errors():
            options = ImportOptions(
                preset=preset,
                mapping_name=mapping,
                save_mapping=save_mapping,
                maps=parse_assignments(map_, "--map"),
                sets=parse_assignments(set_, "--set"),
                date_formats=tuple(date_format),
                source=source,
                format=format_,
                delimiter=delimiter,
                encoding=encoding,
                sheet=sheet,
                dry_run=dry_run,
                rejects_dir=rejects_dir,
            )
            store = state(ctx).open_store()
            with _progress(enabled=not as_json) as on_step:
                result = import_file(store, entity, file, options, on_step=on_step)
            if as_json:
                print_json(result.to_dict())
            else:
                _print_result(result)
        if result.rejected:
            raise typer.Exit(EXIT_REJECTED)

    command.__doc__ = _fields_help(entity)
    return command


for _entity in ENTITIES.values():
    app.command(_entity.name, help=_fields_help(_entity))(_make_command(_entity))


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None]]:
    console = stderr()
    if not (enabled and console.is_terminal):
        yield lambda _: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("importing", total=len(STEPS))

        def on_step(name: str) -> None:
            progress.update(task, description=f"{name} ({STEPS.index(name) + 1}/{len(STEPS)})")
            progress.advance(task)

        yield on_step


def _print_result(result: ImportResult) -> None:
    out = stdout()
    verb = "would be" if result.dry_run else "were"
    out.print(
        f"[bold]{escape(result.file)}[/] → {result.entity} (source {escape(result.source)}, "
        f"encoding {result.encoding or 'binary'}): {result.rows_read:,} rows read"
    )
    rows = [
        {"table": table, "loaded": c.loaded, "updated": c.updated, "unchanged": c.unchanged}
        for table, c in result.tables.items()
    ]
    print_rows(rows, title=f"Rows that {verb} written" if not result.dry_run else "Dry run: nothing written")
    if result.rejected:
        out.print(
            f"[yellow]{result.rejected:,} rows rejected[/]; reasons in {escape(str(result.reject_file))}, "
            f"rows to fix in {escape(str(result.rejected_rows_file))}"
        )
        print_rows(result.reject_sample[:10], title="First rejections")
    if result.unused_columns:
        out.print(f"Columns not imported: {escape(', '.join(result.unused_columns))}")
