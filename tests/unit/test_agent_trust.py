"""The agent's pin across a CA rotation (agent/trust.py): a `trust` bundle is pinned with the replaced digests kept,
a restart with the digest it was first given still trusts what it learned since, and anything else is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from corral.agent.trust import HISTORY_FILE, UntrustedServerError, establish, pin_bundle, pinned_ca_path
from corral.model.errors import InvalidInput
from corral.model.join_token import ca_digest_of_pem
from corral.server.security.tls import new_ca

URL = "https://corral.example:8080"


def _ca() -> str:
    return new_ca()[0].public_bytes(serialization.Encoding.PEM).decode()


def _establish(state: Path, expected: str | None) -> str:
    return asyncio.run(establish(URL, state, expected=expected, ca_file=None, insecure=False))[1]


def test_a_rotation_bundle_is_pinned_and_a_restart_with_the_first_digest_still_connects(tmp_path: Path) -> None:
    old, new = _ca(), _ca()
    first = ca_digest_of_pem(old)
    pin_bundle(tmp_path, old)
    assert _establish(tmp_path, first) == first
    _, digests = pin_bundle(tmp_path, old + new)
    assert digests == [first, ca_digest_of_pem(new)]
    _, digests = pin_bundle(tmp_path, new)  # the old CA is dropped
    assert digests == [ca_digest_of_pem(new)]
    assert pinned_ca_path(tmp_path).read_text() == new
    assert pinned_ca_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / HISTORY_FILE).read_text().split() == [first]
    assert _establish(tmp_path, first) == ca_digest_of_pem(new)  # the join token's digest, rotated since
    assert _establish(tmp_path, None) == ca_digest_of_pem(new)
    stranger = ca_digest_of_pem(_ca())
    with pytest.raises(UntrustedServerError, match="possible man in the middle"):
        _establish(tmp_path, stranger)


@pytest.mark.parametrize(
    "bundle", ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"]
)
def test_a_bundle_without_a_usable_certificate_leaves_the_pin_alone(tmp_path: Path, bundle: str) -> None:
    pem = _ca()
    pin_bundle(tmp_path, pem)
    with pytest.raises(InvalidInput):
        pin_bundle(tmp_path, bundle)
    assert pinned_ca_path(tmp_path).read_text() == pem
