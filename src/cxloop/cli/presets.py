"""``cxloop presets`` and ``cxloop mappings``: the recipes that map exports to fields."""

from __future__ import annotations

import json

import sqlalchemy as sa
import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import csv_option, json_option, print_json, print_rows
from cxloop.ingest.mapping import get_preset, list_presets
from cxloop.store import schema

app = typer.Typer(help="Presets for known export formats.", no_args_is_help=True)
mappings_app = typer.Typer(help="Mappings saved with `cxloop import … --save-mapping`.", no_args_is_help=True)


@app.command("list")
def list_(as_json: bool = json_option(), as_csv: bool = csv_option()) -> None:
    """List the presets and which entities each maps."""
    with reporting_errors():
        rows = [
            {"name": p.name, "title": p.title, "entities": ", ".join(p.entities), "source": p.source}
            for p in list_presets()
        ]
        print_rows(rows, title="Presets", as_json=as_json, as_csv=as_csv)


@app.command()
def show(name: str, as_json: bool = typer.Option(False, "--json", help="Print the preset as JSON.")) -> None:
    """Show a preset's mapping, entity by entity."""
    with reporting_errors():
        preset = get_preset(name)
        if as_json:
            print_json(
                {
                    "name": preset.name,
                    "title": preset.title,
                    "doc": preset.doc,
                    "source": preset.source,
                    "entities": preset.entities,
                }
            )
            return
        typer.echo(f"{preset.title}\n\n{preset.doc}\n")
        for entity, spec in preset.entities.items():
            rows = [
                {"field": k, "from": json.dumps(v) if not isinstance(v, str) else v}
                for k, v in spec.get("fields", {}).items()
            ]
            print_rows(rows, title=f"{entity}")


@mappings_app.command("list")
def mappings_list(ctx: typer.Context, as_json: bool = json_option(), as_csv: bool = csv_option()) -> None:
    """List saved mappings."""
    with reporting_errors():
        store = state(ctx).open_store()
        with store.engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(sa.select(schema.saved_mappings).order_by(schema.saved_mappings.c.name))
            ]
        print_rows(rows, title="Saved mappings", as_json=as_json, as_csv=as_csv)
