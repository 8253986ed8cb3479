"""The hosts pages' pure parts: which form field an API error belongs to, and that host data is escaped in rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import Conflict, InvalidInput
from corral.web.pages_hosts import field_of
from corral.web.rendering import templates

FIELDS = ("name", "orchestration", "subnet")


def test_api_error_fields_map_onto_form_fields() -> None:
    assert field_of(InvalidInput("bad", field="network.subnet"), FIELDS, "name") == "subnet"
    assert field_of(InvalidInput("bad", field="labels.zone"), ("name", "labels"), "name") == "labels"
    assert field_of(Conflict("taken", field="name"), FIELDS, "name") == "name"
    assert field_of(InvalidInput("bad"), FIELDS, "name") == "name"
    assert field_of(InvalidInput("bad", field="network.mtu"), FIELDS, "subnet") == "subnet"


@given(st.text(max_size=20))
def test_an_error_always_lands_on_one_of_the_form_fields(field: str) -> None:
    assert field_of(InvalidInput("bad", field=field), FIELDS, "name") in FIELDS


def _host(name: str, label_value: str) -> dict[str, object]:
    return {
        "id": "host-1",
        "name": name,
        "state": "error",
        "state_reason": "<b>reason</b>",
        "driver": "custom",
        "address": "198.18.0.2",
        "arch": "x86_64",
        "labels": {"zone": label_value},
        "facts": {"cpus": 2, "memory_bytes": 2 << 30},
        "container_count": 3,
        "schedulable": False,
        "evacuating": False,
        "overlay": {"broken": ["<i>peer</i>"], "reported": True},
        "agent_version": "",
    }


def test_host_rows_escape_every_value_from_the_api() -> None:
    html = templates.get_template("_hosts_rows.html").render(
        hosts=[_host("<script>x</script>", '"><img src=x>')], csrf_token="tok"
    )
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "cordoned" in html and "broken: &lt;i&gt;peer&lt;/i&gt;" in html
    assert "2.0 GiB" in html


def _token(token_id: str, state: str, description: str) -> dict[str, object]:
    return {
        "id": token_id,
        "state": state,
        "uses": 1,
        "max_uses": 1 if state == "used-up" else None,
        "expires_at": None,
        "created_at": 1.0,
        "description": description,
    }


def test_token_rows_escape_and_offer_revoke_only_for_active_tokens() -> None:
    html = templates.get_template("_hosts_tokens.html").render(
        tokens=[_token("rt_a", "active", "<b>rack</b>"), _token("rt_b", "used-up", "x")], csrf_token="tok"
    )
    assert "<b>" not in html and "&lt;b&gt;rack&lt;/b&gt;" in html
    assert html.count("/revoke") == 1 and "/ui/hosts/registration-tokens/rt_a/revoke" in html
    assert "1/unlimited" in html and "1/1" in html and "never" in html


def test_a_pending_host_row_offers_approve() -> None:
    pending = {**_host("edge", "a"), "state": "pending", "state_reason": "waiting for approval"}
    html = templates.get_template("_hosts_rows.html").render(hosts=[pending], csrf_token="tok")
    assert "/ui/hosts/host-1/actions/approve" in html and "waiting for approval" in html
    assert "actions/approve" not in templates.get_template("_hosts_rows.html").render(
        hosts=[_host("edge", "a")], csrf_token="tok"
    )


def test_an_outage_page_says_so_in_a_banner_and_nothing_else() -> None:
    message = "the server's database is unavailable (locked by another process); try again shortly"
    html = templates.get_template("error.html").render(
        message=message, unavailable=True, environments=[], environment=None, session=None, path="/ui/stacks"
    )
    assert 'class="banner warn"' in html and message.replace("'", "&#39;") in html
    assert "Something went wrong" not in html and "Traceback" not in html
