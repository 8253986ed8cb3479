"""`--format` field selections (cli/template.py) and the one helper every read command prints through
(cli/output.py `show`): fields and nested fields, a clear error listing the fields, nothing but field selection."""

from __future__ import annotations

import json

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from corral.cli.output import JSON, TABLE, Format, parse_format, show
from corral.cli.template import parse
from corral.model.errors import InvalidInput

RECORD = {"name": "web-1", "state": "running", "host": {"name": "h1", "labels": {"zone": "a"}}, "ports": [80], "n": 3}


def test_fields_nested_fields_and_values_as_lines_show_them() -> None:
    template = parse("{{.name}} {{ .state }} on {{.host.name}} zone={{.host.labels.zone}} {{.ports}} {{.n}}")
    assert template.render(RECORD) == "web-1 running on h1 zone=a [80] 3"
    assert parse("{{.missing_ok}}").render({"missing_ok": None}) == ""
    assert parse("{{.flag}}").render({"flag": True}) == "true"
    assert json.loads(parse("{{.}}").render(RECORD)) == RECORD
    assert parse("{{.name}}\\t{{.state}}\\n").render(RECORD) == "web-1\trunning\n"


def test_an_unknown_field_names_the_fields_there_are() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse("{{.nme}}").render(RECORD)
    assert raised.value.message == "--format: no field '.nme'; the fields of a record: host, n, name, ports, state"
    with pytest.raises(InvalidInput) as raised:
        parse("{{.host.zone}}").render(RECORD)
    assert "no field '.host.zone'; the fields of .host: labels, name" in raised.value.message
    with pytest.raises(InvalidInput, match="not an object"):
        parse("{{.name.first}}").render(RECORD)


@pytest.mark.parametrize(
    "source", ["{{name}}", "{{.name | upper}}", "{{ index .ports 0 }}", "{{.a..b}}", "{{.name}", "{{json .}}", "}}"]
)
def test_anything_but_a_field_selection_is_refused(source: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse(source)
    assert raised.value.field == "format"


def test_a_table_format_aligns_columns_under_a_header() -> None:
    lines = parse("table {{.name}}\\t{{.host.name}}\\t{{.state}}").lines([RECORD, {**RECORD, "name": "db-10"}])
    assert lines == ["NAME    NAME   STATE", "web-1   h1     running", "db-10   h1     running"]


@given(st.text(alphabet=st.characters(blacklist_characters="{}\\"), max_size=40))
def test_text_without_fields_is_printed_as_is(text: str) -> None:
    assert parse(text).render(RECORD) == text


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.text(max_size=10), min_size=1))
def test_every_key_of_a_record_can_be_selected(record: dict[str, str]) -> None:
    source = " ".join(f"{{{{.{key}}}}}" for key in record)
    assert parse(source).render(record) == " ".join(record.values())


def test_parse_format_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_format("table") == TABLE and parse_format("json") == JSON
    assert parse_format("{{.name}}").template is not None and parse_format("{{.name}}").format is Format.table
    with pytest.raises(typer.BadParameter, match="give table, json or a template"):
        parse_format("yaml")
    with pytest.raises(typer.BadParameter, match="is not a field"):
        parse_format("{{name}}")
    printed: list[str] = []
    show([RECORD, RECORD], parse_format("{{.name}}"), lambda: printed.append("table"))
    assert capsys.readouterr().out == "web-1\nweb-1\n" and printed == []
    show(RECORD, JSON, lambda: printed.append("table"))
    assert json.loads(capsys.readouterr().out) == RECORD
    show(RECORD, TABLE, lambda: printed.append("table"))
    assert printed == ["table"]
    show(RECORD, TABLE)  # a command without a table (inspect) prints JSON
    assert json.loads(capsys.readouterr().out) == RECORD
    with pytest.raises(typer.Exit):
        show([RECORD], parse_format("{{.nope}}"))
    assert "no field '.nope'" in capsys.readouterr().err
