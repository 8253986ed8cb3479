"""`corral catalog ...`: the catalog command group, starting with `validate` (a linter that needs no server).

Why `validate` runs locally: catalog authors lint their repository in CI, where no Corral server runs. It loads
every template version under PATH (a folder holding `templates/`), renders it with default answers and checks the
resulting stack exactly as the server would. Without PATH it checks the catalog shipped with Corral.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from corral.cli.main import OutputOption, app
from corral.cli.output import TABLE, fail, print_table, show

if TYPE_CHECKING:
    from corral.catalog.validate import ValidationResult

catalog_app = typer.Typer(no_args_is_help=True, help="Application catalog: templates, install, upgrade, validate.")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("validate")
def validate(
    path: Annotated[
        Path | None,
        typer.Argument(help="Catalog folder (holding templates/); default: the catalog shipped with Corral."),
    ] = None,
    output: OutputOption = TABLE,
) -> None:
    """Load, render with default answers and check every template version; exit 1 if any failed."""
    # the catalog and compose pipeline only for this local command: the other verbs start without them
    from corral.catalog.validate import validate_catalog

    root = catalog_root(path)
    results = validate_catalog(root)
    rows = [_row(r) for r in results]
    show([r.to_dict() for r in results], output, lambda: print_table(["TEMPLATE", "VERSION", "RESULT", "DETAIL"], rows))
    if not results or not all(r.ok for r in results):
        raise typer.Exit(1)


def catalog_root(path: Path | None) -> Path:
    """PATH itself, or its parent when PATH is the `templates/` folder."""
    if path is None:
        from corral.catalog.loader import default_catalog_root  # see validate

        return default_catalog_root()
    if not path.is_dir():
        fail(f"{path}: not a directory")
    if not (path / "templates").is_dir() and path.name == "templates":
        return path.parent
    return path


def _row(result: ValidationResult) -> list[str]:
    if result.ok:
        detail = f"placeholder answers for {', '.join(result.placeholders)}" if result.placeholders else ""
        return [escape(result.template), escape(result.version), "[green]ok[/green]", escape(detail)]
    return [escape(result.template), escape(result.version), "[red]failed[/red]", escape(result.error)]
