"""`${VAR}` interpolation: the operator table, `$$`, unset-variable warnings, errors, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.compose.interpolate import Interpolator
from corral.compose.location import Loc
from corral.model.errors import InvalidInput

from .helpers import DC, RC, error, launch, stack

VARS = {"SET": "value", "EMPTY": "", "PORT": "8080", "NESTED": "inner"}
LOC = Loc(DC, ("services", "web", "image"), "web", 2)


def interpolate(text: str, variables: dict[str, str] | None = None) -> tuple[str, list[str]]:
    interpolator = Interpolator(VARS if variables is None else variables)
    result = interpolator.string(text, LOC)
    return result, list(interpolator.unset)


@pytest.mark.parametrize(
    ("text", "expected", "unset"),
    [
        ("plain", "plain", []),
        ("$SET", "value", []),
        ("${SET}", "value", []),
        ("a${SET}b", "avalueb", []),
        ("$SET-x", "value-x", []),
        ("$SETx", "", ["SETx"]),
        ("${UNSET}", "", ["UNSET"]),
        ("$UNSET", "", ["UNSET"]),
        ("${EMPTY}", "", []),
        ("$$", "$", []),
        ("$${SET}", "${SET}", []),
        ("$$SET", "$SET", []),
        ("$$$SET", "$value", []),
        ("${UNSET:-default}", "default", []),
        ("${EMPTY:-default}", "default", []),
        ("${SET:-default}", "value", []),
        ("${UNSET-default}", "default", []),
        ("${EMPTY-default}", "", []),
        ("${SET-default}", "value", []),
        ("${UNSET:-}", "", []),
        ("${UNSET:-a b:c}", "a b:c", []),
        ("${UNSET:-${NESTED}}", "inner", []),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep", []),
        ("${SET:-${NEVER_USED}}", "value", []),
        ("${UNSET:-$$}", "$", []),
        ("${SET:+alt}", "alt", []),
        ("${EMPTY:+alt}", "", []),
        ("${EMPTY+alt}", "alt", []),
        ("${UNSET+alt}", "", []),
        ("${SET:?must be set}", "value", []),
        ("${EMPTY?must be set}", "", []),
        ("${PORT}:${PORT}/tcp", "8080:8080/tcp", []),
        (
            "io.rancher.stack_service.name=$${stack_name}/$${service_name}",
            "io.rancher.stack_service.name=${stack_name}/${service_name}",
            [],
        ),
        ("${_under_score1}", "", ["_under_score1"]),
        ("prix 5€ ${SET}", "prix 5€ value", []),
    ],
)
def test_interpolation_table(text: str, expected: str, unset: list[str]) -> None:
    assert interpolate(text) == (expected, unset)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("${UNSET:?must be set}", "required variable 'UNSET' is missing a value: must be set"),
        ("${EMPTY:?must be set}", "required variable 'EMPTY' is missing a value: must be set"),
        ("${UNSET?}", "required variable 'UNSET' is missing a value: it is required"),
        ("${UNSET:?need ${SET}}", "missing a value: need value"),
    ],
)
def test_required_variables(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        interpolate(text)
    assert reason in info.value.message
    assert info.value.field == f"{DC}:services.web.image"
    assert info.value.message.startswith(f"{DC}: service web: image: ")


@pytest.mark.parametrize("text", ["$", "a$", "${", "${SET", "${}", "${ SET}", "${SET!}", "$1", "$-", "${1A}", "${A:-x"])
def test_invalid_interpolations(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        interpolate(text)
    assert "write $$ for a literal $" in info.value.message
    assert info.value.field == f"{DC}:services.web.image"


def test_environment_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_SECRET_FOR_TEST", "leak")
    config = launch("environment:\n  A: ${CORRAL_SECRET_FOR_TEST}\n  HOME_DIR: $HOME\n")
    assert dict(config.environment) == {"A": "", "HOME_DIR": ""}


def test_unset_variables_warn_once_naming_file_and_first_use() -> None:
    spec = stack(
        """
        version: '2'
        services:
          web:
            image: nginx
            user: ${TAG}
            environment:
              A: ${TAG}
              B: ${OTHER}
        """
    )
    assert spec.warnings == (
        f"{DC}: variable 'TAG' is not set (first used at services.web.user); an empty string was used",
        f"{DC}: variable 'OTHER' is not set (first used at services.web.environment.B); an empty string was used",
    )
    web = spec.service("web")
    assert web is not None and dict(web.launch.environment) == {"A": "", "B": ""}


def test_errors_mention_unset_variables_and_defaults_help() -> None:
    exc = error("web:\n  image: nginx:${TAG}\n")
    assert exc.message == (
        f"{DC}: service web: image: 'nginx:' is not a valid image reference (variables not set: TAG)"
    )
    spec = stack("web:\n  image: nginx:${TAG:-latest}\n")
    assert spec.services[0].launch.image == "nginx:latest"
    assert spec.warnings == ()


def test_keys_are_not_interpolated_and_values_everywhere_are() -> None:
    spec = stack(
        """
        version: '2'
        services:
          web:
            image: ${IMAGE}
            command: [echo, "${WORD}"]
        """,
        answers={"IMAGE": "redis", "KEY": "k", "VALUE": "v", "WORD": "hi"},
    )
    config = spec.services[0].launch
    assert config.image == "redis"
    assert config.command == ("echo", "hi")
    assert config.environment == ()


def test_keys_are_left_alone_so_a_dollar_label_key_is_rejected_as_label_key() -> None:
    exc = error("web:\n  image: nginx\n  labels:\n    ${KEY}: v\n")
    assert "'${KEY}' is not a valid label key" in exc.message


def test_rancher_compose_is_interpolated_and_catalog_section_is_not() -> None:
    spec = stack(
        "web:\n  image: nginx\n",
        """
        .catalog:
          questions:
            - variable: SCALE
              description: "costs $5 and uses ${NOT_A_VAR}"
        web:
          scale: ${SCALE}
        """,
        answers={"SCALE": "4"},
    )
    assert spec.services[0].scale == 4
    assert spec.warnings == ()


def test_rancher_unset_variables_warn_with_the_rancher_file_name() -> None:
    spec = stack("web:\n  image: nginx\n", "web:\n  metadata:\n    a: ${NOPE}\n")
    assert spec.warnings == (
        f"{RC}: variable 'NOPE' is not set (first used at web.metadata.a); an empty string was used",
    )


def test_top_level_extension_fields_are_not_interpolated() -> None:
    spec = stack("version: '3.4'\nx-notes: 'costs $5'\nservices:\n  web:\n    image: nginx\n")
    assert spec.warnings == ()


# -- properties ---------------------------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@given(st.text().filter(lambda s: "$" not in s))
def test_strings_without_dollar_are_unchanged(text: str) -> None:
    assert interpolate(text) == (text, [])


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="$")), min_size=1))
def test_double_dollar_always_yields_one_dollar(parts: list[str]) -> None:
    assert interpolate("$$".join(parts))[0] == "$".join(parts)


@given(names, st.text(alphabet=st.characters(blacklist_characters="${}")), st.text().filter(lambda s: "$" not in s))
def test_set_variables_substitute_their_value_verbatim(name: str, value: str, suffix: str) -> None:
    result, unset = interpolate("${" + name + "}" + suffix, {name: value})
    assert result == value + suffix
    assert unset == []


@given(names, st.text(alphabet=st.characters(blacklist_characters="${}")))
def test_default_applies_exactly_when_unset_or_empty(name: str, default: str) -> None:
    assert interpolate("${" + name + ":-" + default + "}", {})[0] == default
    assert interpolate("${" + name + ":-" + default + "}", {name: ""})[0] == default
    assert interpolate("${" + name + ":-" + default + "}", {name: "v"})[0] == "v"
    assert interpolate("${" + name + "-" + default + "}", {name: ""})[0] == ""
