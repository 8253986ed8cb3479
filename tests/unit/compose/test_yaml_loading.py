"""The YAML layer: bounded size and alias expansion, duplicate keys, YAML 1.2 scalars, errors with line and column."""

from __future__ import annotations

import pytest

from corral.compose import yamlsafe
from corral.compose.yamlsafe import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_EXPANDED_NODES, load_yaml
from corral.model.errors import InvalidInput

from .helpers import DC, error, launch, stack


@pytest.fixture(autouse=True, params=yamlsafe._LOADERS, ids=lambda loader: loader.__name__)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with libyaml (when present and new enough) and with PyYAML's Python parser."""
    monkeypatch.setattr(yamlsafe, "_Loader", request.param)


def test_invalid_yaml_names_file_line_and_column() -> None:
    exc = error("services:\n  web:\n    image: [nginx\n")
    assert exc.field == DC
    assert exc.message.startswith(f"{DC}: invalid YAML at line ")
    assert "column" in exc.message


def test_tabs_are_invalid_yaml_with_position() -> None:
    exc = error("web:\n\timage: nginx\n")
    assert "line 2, column 1" in exc.message


def test_duplicate_keys_take_the_last_value_with_a_warning_naming_the_key_and_line() -> None:
    # Compose v1 and Rancher 1.6 read duplicate keys, the last one winning: so does Corral, and says so
    spec = stack("version: '2'\nservices:\n  web:\n    image: a\n    image: b\n")
    assert spec.services[0].launch.image == "b"
    assert f"{DC}: duplicate key 'image' at line 5: the last one is used" in spec.warnings


def test_duplicate_services_take_the_last_one_with_a_warning() -> None:
    spec = stack("web:\n  image: a\nweb:\n  image: b\n")
    assert [s.launch.image for s in spec.services] == ["b"]
    assert any("duplicate key 'web' at line 3" in w for w in spec.warnings)


def test_duplicate_keys_are_errors_where_no_warning_can_be_shown() -> None:
    with pytest.raises(InvalidInput) as info:
        load_yaml("a: 1\na: 2\n", DC)
    assert "duplicate key 'a'" in info.value.message


def test_merge_keys_may_override_without_counting_as_duplicates() -> None:
    spec = stack(
        """
        version: '3.4'
        x-base: &base
          image: nginx
          restart: always
        services:
          web:
            <<: *base
            restart: "no"
        """
    )
    web = spec.service("web")
    assert web is not None
    assert web.launch.image == "nginx"
    assert web.launch.restart == "no"


def test_nested_merge_through_a_deferred_mapping_is_not_a_duplicate() -> None:
    spec = stack(
        """
        version: '3.4'
        x-a:
          inner: &mid
            <<: {image: alpine, user: a}
            user: b
        services:
          web:
            <<: *mid
        """
    )
    web = spec.service("web")
    assert web is not None
    assert (web.launch.image, web.launch.user) == ("alpine", "b")


def test_billion_laughs_is_rejected() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(InvalidInput, match=f"more than {MAX_EXPANDED_NODES} values"):
        load_yaml("\n".join(lines), DC)


def test_too_many_aliases_are_rejected() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 1001) + "]\n"
    with pytest.raises(InvalidInput, match="more than 1000 aliases"):
        load_yaml(text, DC)


def test_recursive_alias_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="recursive alias"):
        load_yaml("a: &a [*a]\n", DC)


def test_oversized_document_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="larger than"):
        load_yaml("a: " + "x" * MAX_DOCUMENT_BYTES, DC)


def test_deeply_nested_document_is_rejected_cleanly() -> None:
    with pytest.raises(InvalidInput, match=DC):
        load_yaml("[" * 5000 + "]" * 5000, DC)
    with pytest.raises(InvalidInput, match="nested"):
        load_yaml("a: " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2), DC)
    with pytest.raises(InvalidInput, match="nested"):
        load_yaml("".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 2)), DC)
    assert load_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1), DC) is not None


def test_documents_with_too_many_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsafe, "MAX_EXPANDED_NODES", 1000)
    assert len(load_yaml("a: [" + ",".join(["1"] * 900) + "]", DC)["a"]) == 900
    with pytest.raises(InvalidInput, match="more than 1000 values"):
        load_yaml("a: [" + ",".join(["1"] * 2001) + "]", DC)


def test_python_tags_are_refused() -> None:
    with pytest.raises(InvalidInput, match="could not determine a constructor"):
        load_yaml("a: !!python/object/apply:os.system [ls]\n", DC)


def test_multiple_documents_are_refused() -> None:
    with pytest.raises(InvalidInput, match="single document"):
        load_yaml("a: 1\n---\nb: 2\n", DC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("22:22", "22:22"),  # YAML 1.1 would read the base-60 number 1342
        ("NO", "NO"),  # YAML 1.1 would read false
        ("yes", "yes"),
        ("2020-01-01", "2020-01-01"),  # YAML 1.1 would read a date
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("12", 12),
        ("0x1F", 31),
        ("0o17", 15),
        ("1.5", 1.5),
    ],
)
def test_scalars_follow_the_yaml_1_2_core_schema(text: str, expected: object) -> None:
    assert load_yaml(f"v: {text}\n", DC) == {"v": expected}


def test_numbers_keep_their_source_text_for_environment_values() -> None:
    config = launch(
        """
        environment:
          VERSION: 1.10
          ZIP: 01234
          HEX: 0x1F
          ON: true
        """
    )
    assert dict(config.environment) == {"VERSION": "1.10", "ZIP": "01234", "HEX": "0x1F", "ON": "true"}


def test_short_port_that_looks_like_base_60_stays_a_port() -> None:
    config = launch("ports:\n  - 22:22\n")
    assert [(p.host_port, p.container_port) for p in config.ports] == [(22, 22)]


def test_global_safe_loader_is_untouched() -> None:
    import yaml

    assert yaml.safe_load("a: 22:22") == {"a": 1342}
