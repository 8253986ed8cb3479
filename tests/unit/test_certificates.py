"""Certificates for load balancers (issue 19 item 3): what an upload says (subject, SANs, expiry, warning), the
reasons an upload is refused (naming `cert` or `key`), the order HAProxy loads them in (default first), a TLS port
without any certificate left out rather than served in clear, and which hosts receive which certificates."""

from __future__ import annotations

import time

import pytest
from lb_certs import make_certificate

from corral.model.certificates import haproxy_bundle, read_certificate, validate_certificate_name
from corral.model.errors import InvalidInput
from corral.model.lb import LbConfig, LbProtocol, PortRule
from corral.network.haproxy_config import CERT_DIR, certificate_order, missing_certificates, render


def test_an_upload_says_subject_sans_expiry_and_warns_before_expiry() -> None:
    cert, key = make_certificate("a.example", ["a.example", "*.b.example", "198.18.0.9"])
    now = time.time()
    info = read_certificate(cert, key, now=now)
    assert info.subject == "a.example"
    assert info.sans == ("a.example", "*.b.example", "198.18.0.9")
    assert 88 < info.expires_in_days(now) < 90
    assert info.warning(now) == ""
    assert "expires" in info.warning(now + 70 * 86400)
    assert info.warning(now + 100 * 86400).startswith("expired")
    assert info.matches("x.b.example") and info.matches("A.example") and not info.matches("x.y.b.example")
    assert len(info.fingerprint) == 64 and info.chain_length == 1
    assert haproxy_bundle(cert, key).index("CERTIFICATE") < haproxy_bundle(cert, key).index("PRIVATE KEY")


def test_bad_uploads_are_refused_naming_the_field() -> None:
    cert, key = make_certificate("a.example", [])
    _, other_key = make_certificate("b.example", [])
    expired, expired_key = make_certificate("old.example", [], days=10, ago=20)
    cases = [
        ("not pem", key, "cert", "not a PEM certificate"),
        (cert, "", "key", "empty"),
        (cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "key", "not a PEM private key"),
        (cert, other_key, "key", "does not belong to the certificate"),
        (cert + key, key, "cert", "holds a private key"),
        (expired, expired_key, "cert", "expired on"),
    ]
    for cert_pem, key_pem, field, says in cases:
        with pytest.raises(InvalidInput) as caught:
            read_certificate(cert_pem, key_pem, now=time.time())
        assert caught.value.field == field and says in caught.value.message, caught.value.message
    with pytest.raises(InvalidInput):
        validate_certificate_name("../etc")


def test_certificates_load_default_first_and_a_tls_port_without_one_is_left_out() -> None:
    config = LbConfig(
        (PortRule(443, 8080, "a", LbProtocol.HTTPS, hostname="a.example"), PortRule(80, 8080, "a")),
        certs=("b", "default", "c"),
        default_cert="default",
    )
    assert certificate_order(config, ["c", "default", "b", "unrelated"]) == ["default", "b", "c"]
    assert missing_certificates(config, ["b"]) == ["c", "default"]
    text = render(config, {}, certificates=["default", "b"])
    assert f"bind *:443 ssl crt {CERT_DIR}/default.pem crt {CERT_DIR}/b.pem alpn http/1.1" in text
    assert "bind *:80\n" in text
    without = render(config, {}, certificates=[])
    assert "frontend port_443" not in without and "waiting for its certificate" in without
    assert "frontend port_80" in without
