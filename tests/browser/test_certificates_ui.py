"""The certificates page in a real browser: upload a certificate and key, see its subject, SANs and expiry listed
(the key nowhere in the page), a key of another certificate is refused with the reason and the key field empty,
and remove it."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Page, expect

from corral.server.security.tls import new_ca, new_server_certificate
from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration


def _pems(san: str) -> tuple[str, str]:
    ca, ca_key = new_ca()
    cert, key = new_server_certificate(ca, ca_key, [san])
    pem = serialization.Encoding.PEM
    return cert.public_bytes(pem).decode(), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_upload_list_and_remove_a_certificate_never_showing_its_key(page: Page, ui_server: ServerProcess) -> None:
    name = unique("cert")
    cert, key = _pems("ui.example")
    _, other_key = _pems("other.example")
    page.goto("/ui/certificates")
    page.fill("#certificate-form input[name=name]", name)
    page.fill("#certificate-form textarea[name=cert]", cert)
    page.fill("#certificate-form textarea[name=key]", key)
    page.click("#certificate-form button[type=submit]")
    row = page.locator(f"tr[data-name='{name}']")
    expect(row).to_contain_text("ui.example")
    assert key.splitlines()[1] not in page.content()

    page.fill("#certificate-form input[name=name]", name + "x")
    page.fill("#certificate-form textarea[name=cert]", cert)
    page.fill("#certificate-form textarea[name=key]", other_key)
    page.click("#certificate-form button[type=submit]")
    expect(page.locator("#certificate-error")).to_contain_text("does not belong to the certificate")
    assert other_key.splitlines()[1] not in page.content()
    expect(page.locator("#certificate-form textarea[name=key]")).to_have_value("")

    page.locator(f"tr[data-name='{name}'] button[type=submit]").click()
    expect(page.locator(f"tr[data-name='{name}']")).to_have_count(0)
    assert name not in [c["name"] for c in ui_server.client().certificates.list("default")]
