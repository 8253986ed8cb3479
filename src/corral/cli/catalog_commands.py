"""Commands `corral catalog ls|show|install|upgrade|sources|add|rm|refresh` (`validate` lives in cli/catalog.py).

Why these read answers themselves: `--answers FILE` is on the operator's disk (KEY=VALUE lines, as answers.txt), so
the CLI parses it and sends the values; `--answer K=V` wins over the file. Install and upgrade wait for the stack the
way `corral up` does (same helper), so a failing container is reported with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from corral.cli.catalog import catalog_app
from corral.cli.main import EnvOption, FormatOption, OutputOption, _env, _run
from corral.cli.output import TABLE, Format, err_console, fail, print_json, print_table, show
from corral.cli.stacks import WAIT_SECONDS, _finish_upgrade, _print_containers
from corral.cli.waiting import wait_for_stack as _wait_for_stack
from corral.model.errors import InvalidInput

AnswerOption = Annotated[
    list[str] | None, typer.Option("--answer", "-a", help="An answer KEY=VALUE (repeatable; wins over the file).")
]
AnswersFileOption = Annotated[Path | None, typer.Option("--answers", "-e", help="Answers file (KEY=VALUE lines).")]
VersionOption = Annotated[str | None, typer.Option("--version", help="A version folder (3) or version (1.2.0).")]
DetachOption = Annotated[bool, typer.Option("-d", "--detach", help="Do not wait for the containers.")]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait for every container to run.")]


def _answers(pairs: list[str] | None, file: Path | None) -> dict[str, str]:
    answers: dict[str, str] = {}
    if file is not None:
        from corral.catalog.answers import parse_answers_file  # here: the other verbs start without the catalog

        try:
            answers.update(parse_answers_file(file.read_text(), file.name))
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
        except InvalidInput as exc:
            fail(exc.message)
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--answer {pair!r} must look like KEY=VALUE")
        answers[key.strip()] = value
    return answers


def _split_ref(ref: str) -> tuple[str, str]:
    catalog, sep, template = ref.partition("/")
    if not sep or not catalog or not template or "/" in template:
        fail(f"{ref!r} must look like CATALOG/TEMPLATE (for example library/hello-web)")
    return catalog, template


@catalog_app.command("ls")
def catalog_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List the templates of every catalog the environment sees."""
    result = _run(lambda c: c.catalog.templates(_env(env)))
    if not output.is_table:
        return show(result["data"], output)
    rows = [
        [t["id"], t["display_name"], t["category"], t["default_version"], ", ".join(v["folder"] for v in t["versions"])]
        for t in result["data"]
    ]
    print_table(["TEMPLATE", "NAME", "CATEGORY", "DEFAULT", "VERSIONS"], rows)
    for what, reason in sorted(result.get("problems", {}).items()):
        err_console.print(f"[yellow]warning:[/yellow] {what}: {reason}", highlight=False)


@catalog_app.command("show")
def catalog_show(
    ref: Annotated[str, typer.Argument(help="CATALOG/TEMPLATE")],
    version: VersionOption = None,
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """A template: its versions, and the questions and README of one version (default: the template's)."""
    catalog, name = _split_ref(ref)
    template = _run(lambda c: c.catalog.template(catalog, name, _env(env)))
    if not output.is_table:
        return show(template, output)
    wanted = version or template["default_version"]
    chosen = next((v for v in template["versions"] if wanted in (v["folder"], v["version"])), None)
    typer.echo(f"{template['id']}: {template['display_name']} ({template['category'] or '-'})")
    if template["description"]:
        typer.echo(template["description"].rstrip())
    print_table(
        ["FOLDER", "VERSION", "UPGRADE FROM", "DESCRIPTION"],
        [[v["folder"], v["version"], v["upgrade_from"] or "-", v["description"]] for v in template["versions"]],
    )
    if chosen is None:
        fail(f"{ref} has no version {wanted!r}")
    typer.echo(f"\nQuestions of version {chosen['folder']} ({chosen['version']}):")
    print_table(
        ["VARIABLE", "TYPE", "REQUIRED", "DEFAULT", "LABEL"],
        [
            [q["variable"], q["type"], "yes" if q["required"] else "", q["default"], q["label"]]
            for q in chosen["questions"]
        ],
    )
    if chosen["readme"]:
        typer.echo("\n" + chosen["readme"].rstrip())


@catalog_app.command("install")
def catalog_install(
    ref: Annotated[str, typer.Argument(help="CATALOG/TEMPLATE")],
    stack: Annotated[str, typer.Option("-s", "--stack", help="Name of the new stack.")],
    version: VersionOption = None,
    answer: AnswerOption = None,
    answers: AnswersFileOption = None,
    detach: DetachOption = False,
    timeout: TimeoutOption = WAIT_SECONDS,
    env: EnvOption = None,
    output: FormatOption = Format.table,
) -> None:
    """Launch a template version as a new stack, with the answers to its questions."""
    catalog, name = _split_ref(ref)
    given = _answers(answer, answers)
    result: dict[str, Any] = _run(
        lambda c: c.catalog.install(_env(env), catalog, name, stack, version=version, answers=given)
    )
    _finish(result, detach, timeout, output, until=("active",))


@catalog_app.command("upgrade")
def catalog_upgrade(
    stack: Annotated[str, typer.Argument(help="A stack installed from a catalog.")],
    version: VersionOption = None,
    answer: AnswerOption = None,
    answers: AnswersFileOption = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Containers at a time.")] = None,
    interval: Annotated[int | None, typer.Option("--interval", min=0, help="Milliseconds between batches.")] = None,
    confirm: Annotated[bool, typer.Option("--confirm", help="Finish the upgrade: remove the old containers.")] = False,
    detach: DetachOption = False,
    timeout: TimeoutOption = WAIT_SECONDS,
    env: EnvOption = None,
    output: FormatOption = Format.table,
) -> None:
    """Upgrade a stack to another version of its template (rolling); `--confirm` finishes the upgrade."""
    starting = version is not None or bool(answer) or answers is not None or not confirm
    if starting:
        given = _answers(answer, answers)
        found = _run(lambda c: c.stacks.find(_env(env), stack))
        result: dict[str, Any] = _run(
            lambda c: c.catalog.upgrade(
                found["id"], version=version, answers=given, batch_size=batch_size, interval_ms=interval
            )
        )
        if not confirm:
            return _finish(result, detach, timeout, output, until=("upgraded", "active"))
        _wait_for_stack(result["id"], timeout, until=("upgraded", "active"))
    _finish_upgrade(env, stack, "confirm-upgrade", detach, timeout, output)


def _finish(result: dict[str, Any], detach: bool, timeout: float, output: Format, *, until: tuple[str, ...]) -> None:
    for warning in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if not detach:
        result = _wait_for_stack(result["id"], timeout, until=until)
    if output is Format.json:
        return print_json(result)
    origin = result.get("catalog") or {}
    if origin:
        typer.echo(f"{result['name']}: {origin['catalog']}/{origin['template']} version {origin['version']}")
    _print_containers([c for s in result["services"] for c in s["containers"]], show_all=True)


# -- sources ----------------------------------------------------------------------------------------------------


@catalog_app.command("sources")
def catalog_sources(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List catalog sources (with `--env`: those the environment sees), with the last refresh's error."""
    sources = _run(lambda c: c.catalog.sources(env))
    if not output.is_table:
        return show(sources, output)
    rows = [
        [
            s["id"],
            s["name"],
            s["kind"],
            s["url"] or "-",
            s["branch"] or "-",
            s["environment_id"] or "(global)",
            s["commit"][:12] or "-",
            s["error"],
        ]
        for s in sources
    ]
    print_table(["ID", "NAME", "KIND", "URL", "BRANCH", "ENVIRONMENT", "COMMIT", "ERROR"], rows)


@catalog_app.command("add")
def catalog_add(
    name: Annotated[str, typer.Argument(help="Catalog name (used as CATALOG in CATALOG/TEMPLATE).")],
    directory: Annotated[Path | None, typer.Option("--dir", help="A catalog folder on the server's disk.")] = None,
    git: Annotated[str | None, typer.Option("--git", help="A git URL (https, ssh or file).")] = None,
    branch: Annotated[str, typer.Option("--branch", help="Git branch.")] = "master",
    env: Annotated[str | None, typer.Option("--env", help="Only for this environment (default: global).")] = None,
    output: OutputOption = TABLE,
) -> None:
    """Add a catalog source: a directory or a git repository."""
    if (directory is None) == (git is None):
        fail("give exactly one of --dir PATH or --git URL")
    if directory is not None:
        source = _run(lambda c: c.catalog.add(name, "dir", str(directory.resolve()), environment=env))
    else:
        source = _run(lambda c: c.catalog.add(name, "git", git or "", branch=branch, environment=env))
    if not output.is_table:
        return show(source, output)
    if source["error"]:
        err_console.print(f"[yellow]warning:[/yellow] catalog {name}: {source['error']}", highlight=False)
    typer.echo(source["id"])


@catalog_app.command("rm")
def catalog_rm(
    names: Annotated[list[str], typer.Argument(help="Catalog names or ids.")],
    env: EnvOption = None,
) -> None:
    """Remove catalog sources (stacks installed from them keep running)."""
    for name in names:
        _run(lambda c, n=name: c.catalog.remove(c.catalog.find_source(n, env)["id"]))
        typer.echo(name)


@catalog_app.command("refresh")
def catalog_refresh(
    names: Annotated[list[str], typer.Argument(help="Catalog names or ids.")],
    env: EnvOption = None,
) -> None:
    """Fetch git catalogs again (and re-read directories); exit 1 when one failed, with git's reason."""
    failed = False
    for name in names:
        source = _run(lambda c, n=name: c.catalog.refresh(c.catalog.find_source(n, env)["id"]))
        if source["error"]:
            err_console.print(f"[red]error:[/red] catalog {source['name']}: {source['error']}", highlight=False)
            failed = True
        else:
            typer.echo(f"{source['name']} {source['commit'][:12]}".rstrip())
    if failed:
        raise typer.Exit(1)
