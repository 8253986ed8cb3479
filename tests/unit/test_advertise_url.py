"""The URL other machines are told to use (server/shared/advertise.py): the configured one, else the listening address,
else the machine's primary address for a server on every interface; loopback is warned about, bad settings refused."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.server.shared.advertise import (
    advertised_url,
    checked_advertise_url,
    is_loopback_host,
    loopback_warning,
    primary_address,
)


def test_a_server_on_every_interface_advertises_the_primary_address() -> None:
    assert advertised_url("https", "0.0.0.0", 8080, "", "10.1.2.3") == "https://10.1.2.3:8080"
    assert advertised_url("https", "::", 8443, "", "2001:db8::7") == "https://[2001:db8::7]:8443"


def test_without_a_primary_address_it_falls_back_to_loopback_with_a_warning() -> None:
    url = advertised_url("https", "0.0.0.0", 8080, "", None)
    assert url == "https://127.0.0.1:8080"
    warning = loopback_warning(url)
    assert warning is not None and "--host 0.0.0.0" in warning and "CORRAL_ADVERTISE_URL" in warning


def test_a_server_on_one_address_advertises_that_address() -> None:
    assert advertised_url("https", "192.168.1.20", 8080, "", "10.0.0.1") == "https://192.168.1.20:8080"
    assert advertised_url("http", "localhost", 8080, "", None) == "http://127.0.0.1:8080"
    assert loopback_warning("https://192.168.1.20:8080") is None


def test_the_configured_url_wins_and_is_normalised() -> None:
    url = advertised_url("https", "0.0.0.0", 8080, "https://corral.example.com:443/", "10.1.2.3")
    assert url == "https://corral.example.com:443"
    assert checked_advertise_url("https://203.0.113.7", "https") == "https://203.0.113.7"
    assert loopback_warning(url) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("corral.example.com:8080", "must be https://HOST[:PORT]"),
        ("ftp://corral.example.com", "must be https://HOST[:PORT]"),
        ("http://corral.example.com", "serves https, not http"),
        ("https://corral.example.com/v1", "no path"),
        ("https://user:pw@corral.example.com", "no path, query or user"),
        ("https://corral.example.com:99999", "Port out of range"),
    ],
)
def test_a_bad_advertise_url_is_refused_naming_the_setting_and_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        checked_advertise_url(text, "https")
    assert caught.value.field == "advertise_url"
    assert "CORRAL_ADVERTISE_URL" in caught.value.message and says in caught.value.message


@given(st.ip_addresses())
def test_loopback_is_warned_about_exactly_for_loopback_addresses(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assume(not address.is_unspecified)  # 0.0.0.0 and :: name no machine (the cases above)
    url = advertised_url("https", str(address), 8080, "", None)
    assert (loopback_warning(url) is not None) == address.is_loopback
    assert is_loopback_host(str(address)) == address.is_loopback


def test_the_primary_address_is_none_or_a_non_loopback_address() -> None:
    found = primary_address()
    assert found is None or not ipaddress.ip_address(found).is_loopback
