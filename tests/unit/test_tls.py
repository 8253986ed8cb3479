"""The server's CA and certificates (server/security/tls.py), the CA digest and the join token format
(model/join_token.py)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import stat
import string
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.join_token import (
    JOIN_PREFIX,
    ca_digest_of_der,
    ca_digest_of_pem,
    ca_digests_of_bundle,
    format_join_token,
    parse_ca_digest,
    parse_join_token,
)
from corral.server.security.tls import (
    ServerTls,
    _key_pem,
    certificate_sans,
    new_ca,
    new_server_certificate,
    server_names,
)

SANS = ["localhost", "127.0.0.1", "::1", "corral.example", "198.18.0.1"]


def test_the_ca_is_a_p256_ca_for_ten_years() -> None:
    cert, key = new_ca()
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=3649) < lifetime < datetime.timedelta(days=3651)
    cert.verify_directly_issued_by(cert)


def test_the_server_certificate_is_signed_by_the_ca_for_its_names_for_a_year() -> None:
    ca, ca_key = new_ca()
    cert, key = new_server_certificate(ca, ca_key, SANS)
    cert.verify_directly_issued_by(ca)
    assert isinstance(key.curve, ec.SECP256R1)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert set(certificate_sans(cert)) == set(SANS)
    ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("198.18.0.1") in ips  # an address is an IP entry, not a DNS name
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=364) < lifetime < datetime.timedelta(days=366)
    other_ca, _ = new_ca()
    with pytest.raises(ValueError):
        cert.verify_directly_issued_by(other_ca)


def test_server_names_hold_loopback_the_listen_addresses_and_the_operators_names() -> None:
    names = server_names(["198.18.7.1", "[::1]"], ["corral.example", " ", "LB.Example"])
    assert names[:3] == ["localhost", "127.0.0.1", "::1"]
    assert {"198.18.7.1", "corral.example", "lb.example"} <= set(names)
    assert len(names) == len(set(names))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_kept_across_starts_and_reissued_for_new_names(tmp_path: Path) -> None:
    tls = ServerTls(tmp_path)
    tls.ensure(["localhost", "127.0.0.1"])
    assert _mode(tmp_path / "tls") == 0o700
    for path in (tmp_path / "tls").iterdir():
        assert _mode(path) == 0o600, path
    first = tls.info()
    digest = tls.ca_digest
    ServerTls(tmp_path).ensure(["localhost", "127.0.0.1"])
    assert ServerTls(tmp_path).info().serial == first.serial  # a restart keeps the certificate
    again = ServerTls(tmp_path)
    again.ensure(["localhost", "127.0.0.1", "corral.example"])
    assert again.info().serial != first.serial and "corral.example" in again.info().sans
    assert again.ca_digest == digest  # ... from the same CA


def test_rotation_issues_a_new_serial_from_the_same_ca_and_reloads_the_live_context(tmp_path: Path) -> None:
    tls = ServerTls(tmp_path)
    tls.ensure(["localhost"])
    context = tls.context()
    before = tls.info()
    after = tls.rotate()
    assert after.serial != before.serial and after.ca_digest == before.ca_digest
    assert tls.context() is context  # the same live context, its certificate reloaded
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "server.pem").read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(tls.ca_pem))


def test_an_operator_certificate_is_served_and_its_ca_pinned(tmp_path: Path) -> None:
    ca, ca_key = new_ca()
    cert, key = new_server_certificate(ca, ca_key, ["corral.example"])
    files = {
        "ca.pem": ca.public_bytes(serialization.Encoding.PEM),
        "cert.pem": cert.public_bytes(serialization.Encoding.PEM),
        "key.pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    tls = ServerTls(
        tmp_path / "data", cert_file=tmp_path / "cert.pem", key_file=tmp_path / "key.pem", ca_file=tmp_path / "ca.pem"
    )
    tls.ensure(["localhost"])
    assert tls.ca_digest == ca_digest_of_der(ca.public_bytes(serialization.Encoding.DER))
    assert tls.ca_path.read_bytes() == files["ca.pem"]
    assert tls.rotate().serial == cert.serial_number  # rotation reads the operator's files again
    with pytest.raises(InvalidInput, match="go together"):
        ServerTls(tmp_path, cert_file=tmp_path / "cert.pem")


def test_the_digest_is_sha256_of_the_der() -> None:
    ca, _ = new_ca()
    der = ca.public_bytes(serialization.Encoding.DER)
    pem = ca.public_bytes(serialization.Encoding.PEM)
    assert ca_digest_of_pem(pem) == "sha256:" + hashlib.sha256(der).hexdigest() == ca_digest_of_der(der)
    assert ca_digest_of_pem(b"junk before\n" + pem) == ca_digest_of_der(der)
    with pytest.raises(InvalidInput):
        ca_digest_of_pem("not a certificate")
    assert parse_ca_digest(hashlib.sha256(der).hexdigest().upper()) == ca_digest_of_der(der)
    with pytest.raises(InvalidInput, match="sha256"):
        parse_ca_digest("md5:abc")


HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
SECRETS = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=200)


@given(HEX, SECRETS)
def test_a_join_token_carries_the_digest_and_the_secret(hex_digest: str, secret: str) -> None:
    token = format_join_token(secret, f"sha256:{hex_digest}")
    assert token.startswith(JOIN_PREFIX) and token.endswith(secret)
    parsed = parse_join_token(token)
    assert (parsed.secret, parsed.ca_digest) == (secret, f"sha256:{hex_digest}")
    assert str(parsed) == token


@given(SECRETS.filter(lambda s: not s.startswith(JOIN_PREFIX)))
def test_a_plain_secret_is_accepted_without_a_digest(secret: str) -> None:
    parsed = parse_join_token(secret)
    assert (parsed.secret, parsed.ca_digest) == (secret, None)


@given(st.text(max_size=300))
def test_any_text_parses_or_fails_with_a_clear_error(text: str) -> None:
    try:
        parsed = parse_join_token(text)
    except InvalidInput as exc:
        assert exc.field == "token" and exc.message
    else:
        assert parsed.secret and not any(ch.isspace() for ch in parsed.secret)


@pytest.mark.parametrize(
    "token",
    [
        JOIN_PREFIX + "abc-secret",  # digest too short
        JOIN_PREFIX + "g" * 64 + "-secret",  # not hex
        JOIN_PREFIX + "a" * 64 + "secret",  # no separator
        JOIN_PREFIX + "a" * 64 + "-",  # no secret
    ],
)
def test_a_malformed_join_token_names_its_shape(token: str) -> None:
    with pytest.raises(InvalidInput, match="CORRAL1-<64 hex digits>-<secret>"):
        parse_join_token(token)


def test_a_ca_rotation_publishes_the_bundle_then_keeps_the_new_ca_alone(tmp_path: Path) -> None:
    tls = ServerTls(tmp_path)
    tls.ensure(["localhost"])
    context = tls.context()
    old = tls.ca_digest
    before = tls.info()
    upcoming = tls.begin_ca_rotation()
    assert tls.rotating and tls.begin_ca_rotation() == upcoming  # begun once: a second call keeps that CA
    assert ca_digests_of_bundle((tmp_path / "tls" / "ca.pem").read_bytes()) == [old, upcoming]
    assert ca_digests_of_bundle(tls.trust_bundle) == [old, upcoming]
    assert tls.ca_digest == old and tls.info().serial == before.serial  # still serving the current CA's certificate
    after = tls.finish_ca_rotation()
    assert not tls.rotating and after.ca_digest == upcoming == tls.ca_digest
    assert ca_digests_of_bundle((tmp_path / "tls" / "ca.pem").read_bytes()) == [upcoming]
    assert not (tmp_path / "tls" / "ca-next.key").exists()
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "server.pem").read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(tls.ca_pem))
    assert tls.context() is context
    for name in ("ca.pem", "ca.key", "server.key"):
        assert (tmp_path / "tls" / name).stat().st_mode & 0o777 == 0o600
    with pytest.raises(InvalidInput, match="no CA rotation is running"):
        tls.finish_ca_rotation()
    restarted = ServerTls(tmp_path)  # a later start keeps the new CA and its certificate
    restarted.ensure(["localhost"])
    assert restarted.ca_digest == upcoming and restarted.info().serial == after.serial


def test_an_operator_certificate_is_not_rotated_by_corral(tmp_path: Path) -> None:
    ca, ca_key = new_ca()
    cert, key = new_server_certificate(ca, ca_key, ["corral.example"])
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(_key_pem(key))
    tls = ServerTls(tmp_path, cert_file=tmp_path / "c.pem", key_file=tmp_path / "k.pem")
    with pytest.raises(InvalidInput, match="operator-given certificate"):
        tls.begin_ca_rotation()
