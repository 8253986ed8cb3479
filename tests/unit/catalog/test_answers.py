"""Answers: defaults, types, bounds, required, services, extras; errors name the question (label and variable)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.catalog.answers import parse_answers_file, placeholder, problem, resolve_answers
from corral.catalog.model import QUESTION_TYPES, Question
from corral.model.errors import InvalidInput

PORT = Question("PORT", label="Port", type="int", required=True, default="8080", has_default=True, min=1, max=65535)
DEBUG = Question("DEBUG", label="Debug", type="boolean", default="false", has_default=True)
MODE = Question("MODE", label="Mode", type="enum", options=("a", "b"), default="a", has_default=True)
DB = Question("DB", label="Database", type="service")
NAME = Question("NAME", label="Name", type="string", required=True, min_length=2, max_length=5)


def test_defaults_fill_unanswered_questions_and_extras_pass_through() -> None:
    answers = resolve_answers([PORT, DEBUG, MODE, DB], {"EXTRA": "x", "MODE": "b"})
    assert answers == {"PORT": "8080", "DEBUG": "false", "MODE": "b", "DB": "", "EXTRA": "x"}


def test_values_are_normalised() -> None:
    answers = resolve_answers([PORT, DEBUG], {"PORT": " 81 ", "DEBUG": "TRUE"})
    assert answers == {"PORT": "81", "DEBUG": "true"}


REJECTED = [
    (PORT, "eighty", "answers: question Port (PORT): 'eighty' is not a whole number"),
    (PORT, "0", "answers: question Port (PORT): 0 is less than the minimum 1"),
    (PORT, "70000", "answers: question Port (PORT): 70000 is more than the maximum 65535"),
    (PORT, "", "answers: question Port (PORT): an answer is required"),
    (DEBUG, "yes", "answers: question Debug (DEBUG): 'yes' is not true or false"),
    (MODE, "c", "answers: question Mode (MODE): 'c' is not one of the options (a, b)"),
    (
        DB,
        "db",
        "answers: question Database (DB): 'db' is not a service as stack/service, and no service of this "
        "environment is named so",
    ),
    (
        DB,
        "a b",
        "answers: question Database (DB): 'a b' is not a service as stack/service, and no service of this "
        "environment is named so",
    ),
    (DB, "shop/db", "answers: question Database (DB): no service 'shop/db' in this environment"),
    (NAME, "x", "answers: question Name (NAME): shorter than 2 characters"),
    (NAME, "xxxxxx", "answers: question Name (NAME): longer than 5 characters"),
]


@pytest.mark.parametrize(("question", "value", "message"), REJECTED, ids=lambda v: str(v)[:20])
def test_wrong_answers_name_the_question(question: Question, value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_answers([question], {question.variable: value}, services=["web/app"])
    assert caught.value.message == message
    assert caught.value.field == f"answers.{question.variable}"


def test_required_without_answer_or_default() -> None:
    with pytest.raises(InvalidInput, match=r"question Name \(NAME\): an answer is required"):
        resolve_answers([NAME], {})


def test_services_are_looked_up_unless_none() -> None:
    assert resolve_answers([DB], {"DB": "shop/db"}, services=["shop/db"])["DB"] == "shop/db"
    assert resolve_answers([DB], {"DB": "shop/db"}, services=None)["DB"] == "shop/db"
    with pytest.raises(InvalidInput):
        resolve_answers([DB], {"DB": "shop/db"})  # no services in the environment


def test_a_bare_service_name_is_the_one_service_of_that_name_as_rancher_templates_default_to() -> None:
    assert resolve_answers([DB], {"DB": "app"}, services=["web/app", "web/db"])["DB"] == "web/app"
    with pytest.raises(InvalidInput, match=r"'app' names 2 services of this environment: answer as stack/service"):
        resolve_answers([DB], {"DB": "app"}, services=["web/app", "other/app"])
    # without an environment (catalog validate, template loading) a bare name is accepted as a default
    assert problem(DB, "app", services=None) is None
    assert problem(DB, "a b", services=None) == "'a b' is not a service as stack/service"


def test_chars_rules_and_untitled_question() -> None:
    plain = Question("X", valid_chars="abc")
    assert problem(plain, "abd", services=None) == "characters not allowed: 'd'"
    assert problem(Question("Y", invalid_chars=" "), "a b", services=None) == "characters not allowed: ' '"
    with pytest.raises(InvalidInput, match=r"^answers: question X: "):
        resolve_answers([plain], {"X": "zz"})


def test_certificate_and_secret_are_names() -> None:
    for kind in ("certificate", "secret"):
        question = Question("C", type=kind, required=True)
        assert problem(question, "my-cert", services=None) is None
        assert problem(question, "", services=None) == "an answer is required"
    certificate = Question("C", type="certificate", required=True)
    assert resolve_answers([certificate], {"C": "site"}, certificates=["site"]) == {"C": "site"}
    with pytest.raises(InvalidInput, match="no certificate 'other' in this environment"):
        resolve_answers([certificate], {"C": "other"}, certificates=["site"])


def test_answers_file() -> None:
    text = "# comment\nPORT=81\n\nMESSAGE=a=b c\n"
    assert parse_answers_file(text, "answers.txt") == {"PORT": "81", "MESSAGE": "a=b c"}
    with pytest.raises(InvalidInput, match=r"answers.txt: line 2"):
        parse_answers_file("A=1\nnot a pair\n", "answers.txt")


questions = st.builds(
    Question,
    variable=st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True),
    type=st.sampled_from(sorted(QUESTION_TYPES)),
    required=st.booleans(),
    options=st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=3).map(tuple),
    min=st.none() | st.integers(-5, 5),
    max=st.none() | st.integers(5, 50),
    min_length=st.none() | st.integers(0, 4),
    max_length=st.none() | st.integers(4, 12),
)


@given(questions)
def test_placeholder_is_always_a_valid_answer(question: Question) -> None:
    value = placeholder(question)
    assert problem(question, value, services=None) is None
    assert resolve_answers([question], {question.variable: value}, services=None)[question.variable] == value


@given(questions, st.text(max_size=12))
def test_any_answer_is_accepted_or_rejected_naming_the_question(question: Question, value: str) -> None:
    try:
        answers = resolve_answers([question], {question.variable: value}, services=[])
    except InvalidInput as exc:
        assert exc.field == f"answers.{question.variable}"
        assert exc.message.startswith(f"answers: question {question.variable}: ")
    else:
        assert set(answers) == {question.variable}
        assert problem(question, answers[question.variable], services=[]) is None
