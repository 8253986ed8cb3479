"""Environment certificates for load balancers (issue 19 item 3): what an uploaded PEM certificate and key say, and
whether they belong together (pure).

Why checked at upload: a key that does not match its certificate, an expired certificate or a second PEM block
where one was expected would otherwise surface as HAProxy refusing its configuration on some host later; here the
user gets the reason at once, naming the field. The key is never part of `CertificateInfo` (what the API, events
and logs see): only the store (sealed) and the LB container's file hold it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from corral.model.errors import InvalidInput

CERTIFICATE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_PEM_BYTES: Final = 64 * 1024
EXPIRY_WARNING_DAYS: Final = 30


@dataclass(frozen=True)
class CertificateInfo:
    """What a certificate says, shown by the API and the CLI (never the key)."""

    subject: str  # the common name, or the full subject when it has none
    sans: tuple[str, ...]
    issuer: str
    not_before: float
    not_after: float
    fingerprint: str  # SHA-256 of the DER certificate, hex
    chain_length: int  # the leaf plus its intermediates

    def expires_in_days(self, now: float) -> float:
        return (self.not_after - now) / 86400.0

    def warning(self, now: float) -> str:
        """A warning when it has expired or expires within EXPIRY_WARNING_DAYS days, else ''."""
        days = self.expires_in_days(now)
        if days < 0:
            return f"expired {_date(self.not_after)}"
        if days < EXPIRY_WARNING_DAYS:
            return f"expires {_date(self.not_after)}, in {int(days)} days"
        return ""

    def matches(self, hostname: str) -> bool:
        """Whether it serves `hostname` (exact or a one-label wildcard), as a client checks it."""
        host = hostname.lower().rstrip(".")
        for name in self.sans or (self.subject,):
            name = name.lower()
            if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
                return True
        return False


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def validate_certificate_name(name: str, *, field: str = "name") -> str:
    if not CERTIFICATE_NAME.fullmatch(name):
        raise InvalidInput(
            f"certificate name {name!r} is invalid: 1-64 letters, digits, '_', '.' or '-', starting with a letter or "
            "digit",
            field=field,
        )
    return name


def read_certificate(cert_pem: str, key_pem: str, *, now: float) -> CertificateInfo:
    """Check an uploaded certificate (leaf first, then its chain) and its private key; InvalidInput names the field
    (`cert`, `key`) and the reason."""
    for field, text in (("cert", cert_pem), ("key", key_pem)):
        if not text.strip():
            raise InvalidInput(f"{field}: empty: paste the PEM text", field=field)
        if len(text.encode()) > MAX_PEM_BYTES:
            raise InvalidInput(f"{field}: larger than {MAX_PEM_BYTES} bytes", field=field)
    try:
        chain = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError:
        raise InvalidInput("cert: not a PEM certificate (-----BEGIN CERTIFICATE----- ...)", field="cert") from None
    if "PRIVATE KEY" in cert_pem:
        raise InvalidInput("cert: holds a private key: give the key separately (key)", field="cert")
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        raise InvalidInput("key: encrypted with a passphrase: HAProxy needs it unencrypted", field="key") from None
    except (ValueError, Exception):  # unsupported or damaged keys raise several types
        raise InvalidInput("key: not a PEM private key (-----BEGIN PRIVATE KEY----- ...)", field="key") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    ):
        raise InvalidInput("key: only RSA, EC and Ed25519/Ed448 keys are supported", field="key")
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise InvalidInput("key: does not belong to the certificate (its public key differs)", field="key")
    not_after = leaf.not_valid_after_utc.timestamp()
    if not_after < now:
        raise InvalidInput(f"cert: expired on {_date(not_after)}", field="cert")
    return CertificateInfo(
        subject=_common_name(leaf),
        sans=_sans(leaf),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc.timestamp(),
        not_after=not_after,
        fingerprint=hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
        chain_length=len(chain),
    )


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        value = names[0].value
        return value if isinstance(value, str) else value.decode(errors="replace")
    return cert.subject.rfc4514_string()


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    dns = extension.value.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in extension.value.get_values_for_type(x509.IPAddress)]
    return tuple([*dns, *ips])


def haproxy_bundle(cert_pem: str, key_pem: str) -> str:
    """The one PEM file HAProxy loads for a `crt`: the certificate chain, then the key."""
    return cert_pem.strip() + "\n" + key_pem.strip() + "\n"
