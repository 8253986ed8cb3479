"""Budgets of the Go template engine and its regex safety: every hostile template ends with a TemplateError naming
the file, the position and the budget, within a bounded time; ordinary templates are untouched by the budgets."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.catalog.gotemplate import Limits, TemplateError, render
from corral.catalog.gotemplate.budget import Budget, BudgetExceeded, weigh
from corral.catalog.gotemplate.functions import MAX_ITEMS, MAX_VALUE

FILE = "docker-compose.yml.tpl"


def _refused(template: str, *, limits: Limits | None = None, data: dict[str, object] | None = None) -> str:
    started = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        render(template, data or {}, filename=FILE, **({"limits": limits} if limits else {}))
    assert time.monotonic() - started < 8, f"{template!r} took too long to be refused"
    assert caught.value.field == FILE
    assert caught.value.message.startswith(f"{FILE}:")
    return caught.value.message


@pytest.mark.parametrize(
    ("template", "budget"),
    [
        ('{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}', "more than 100 nested template calls"),
        ('{{define "a"}}{{template "a" .}}{{template "a" .}}{{end}}{{template "a" .}}', "nested template calls"),
        ("{{range until 100000}}{{range until 100000}}{{end}}{{end}}", "steps"),
        ('{{repeat 2000000000 "abc"}}', "repeat would make 6000000000 bytes"),
        ("{{range until 1000000000}}x{{end}}", "until would make 1000000000 items"),
        ("{{untilStep 0 2000000000 1}}", "untilStep would make"),
        ('{{$x := "ab"}}{{range until 64}}{{$x = printf "%s%s" $x $x}}{{end}}', "printf would handle more than 1 MiB"),
        ('{{$x := repeat 1000000 "a"}}{{range until 10}}{{$x}}{{end}}', "output over 4 MiB"),
        ('{{$x := repeat 1000000 "a"}}{{join "" (list $x $x $x $x $x)}}', "the arguments of list are over 4 MiB"),
        ('{{splitList "" (repeat 200000 "a")}}', "split would make 200000 items"),
    ],
)
def test_hostile_templates_run_out_of_budget_with_a_clear_error(template: str, budget: str) -> None:
    message = _refused(template)
    assert "template budget exceeded" in message and budget in message, message


def test_wall_time_is_a_budget_of_its_own() -> None:
    template = '{{define "two"}}{{if lt (len .) 30}}{{template "two" (printf "%s." .)}}' + (
        '{{template "two" (printf "%s." .)}}{{end}}{{end}}{{template "two" ""}}'
    )
    message = _refused(template, limits=Limits(steps=10**9, seconds=0.2))
    assert "rendering took more than 0.2 s" in message


def test_printf_widths_are_capped_like_go() -> None:
    assert render('{{printf "%999999999d" 1}}', {}, filename=FILE).startswith("%!(NOVERB)")
    assert render('{{printf "%*d" 99999999 7}}', {}, filename=FILE) == "%!(BADWIDTH)7"
    assert render('{{printf "%5d|%-4s|" 7 "a"}}', {}, filename=FILE) == "    7|a   |"


def test_catastrophic_regexes_match_in_linear_time() -> None:
    text = "a" * 5000 + "!"
    started = time.monotonic()
    for pattern in ("^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "(x+x+)+y", "^(([a-z])+.)+[A-Z]([a-z])+$"):
        template = f'{{{{regexMatch "{pattern}" .T}}}} {{{{regexReplaceAll "{pattern}" .T "-"}}}}'
        out = render(template, {"T": text}, filename=FILE)
        assert out.startswith("false ")
    assert time.monotonic() - started < 2


def test_regexes_follow_go_syntax_and_errors() -> None:
    assert render('{{regexMatch "^[a-z]+$" "abc"}} {{regexMatch "(a)\\\\1" "aa"}}', {}, filename=FILE) == "true false"
    message = _refused('{{regexReplaceAll "(a)\\\\1" "aa" "x"}}')
    assert "error calling regexReplaceAll: regexp: Compile" in message and "invalid escape" in message


def test_caps_are_above_what_real_templates_need() -> None:
    assert len(render(f'{{{{repeat {MAX_VALUE} "a"}}}}', {}, filename=FILE)) == MAX_VALUE
    assert render(f"{{{{len (until {MAX_ITEMS})}}}}", {}, filename=FILE) == str(MAX_ITEMS)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=3 * MAX_VALUE), st.text(min_size=1, max_size=4))
def test_repeat_is_refused_exactly_past_the_cap(count: int, unit: str) -> None:
    template = "{{repeat .N .S | len}}"
    if count * len(unit) > MAX_VALUE:
        assert "repeat would make" in _refused(template, data={"N": count, "S": unit})
    else:
        assert render(template, {"N": count, "S": unit}, filename=FILE) == str(len((unit * count).encode()))


@given(st.recursive(st.text(max_size=20), lambda inner: st.lists(inner, max_size=5), max_leaves=30))
def test_weigh_counts_every_string_and_stops_past_the_cap(value: object) -> None:
    def exact(item: object) -> int:
        if isinstance(item, str):
            return len(item)
        assert isinstance(item, list)
        return len(item) + sum(exact(x) for x in item)

    assert weigh(value, 10**9) == exact(value)
    assert weigh(value, 5) <= max(exact(value), 5 + 20 + 5)


def test_a_budget_counts_steps_and_output() -> None:
    budget = Budget(Limits(steps=3, output_bytes=4))
    for _ in range(3):
        budget.step()
    with pytest.raises(BudgetExceeded, match="more than 3 steps"):
        budget.step()
    budget.emit("abcd")
    with pytest.raises(BudgetExceeded, match="output over 4 bytes"):
        budget.emit("e")
