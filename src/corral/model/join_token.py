"""The join token (`CORRAL1-<CA digest hex>-<secret>`) and the CA digest (`sha256:<hex>` of the CA's DER).

Why the digest rides in the token, as in Docker swarm's `SWMTKN-1-<digest>-<secret>`: the operator copies one
string to a new host, and with it the agent can check that the server it reaches is the one that issued the token
before it sends the secret, with no CA file to copy. Pure stdlib: the agent parses tokens and hashes certificates
without loading the `cryptography` package.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass

from corral.model.errors import InvalidInput

JOIN_PREFIX = "CORRAL1-"
DIGEST_ALGORITHM = "sha256"
_HEX_LENGTH = 64
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_HEX = re.compile(r"[0-9a-f]{64}")
MAX_TOKEN_LENGTH = 1024


@dataclass(frozen=True)
class JoinToken:
    secret: str
    ca_digest: str | None  # `sha256:<hex>`, None for a plain secret (no CA to pin from the token)

    def __str__(self) -> str:
        return format_join_token(self.secret, self.ca_digest) if self.ca_digest else self.secret


def ca_digest_of_der(der: bytes) -> str:
    return f"{DIGEST_ALGORITHM}:{hashlib.sha256(der).hexdigest()}"


def ca_digest_of_pem(pem: str | bytes) -> str:
    """The digest of the first certificate of a PEM text (InvalidInput if there is none)."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        raise InvalidInput("no PEM certificate found", field="ca")
    try:
        der = ssl.PEM_cert_to_DER_cert(text[start : stop + len(end)] + "\n")
    except ValueError as exc:
        raise InvalidInput(f"the PEM certificate cannot be decoded: {exc}", field="ca") from exc
    return ca_digest_of_der(der)


MAX_BUNDLE_CERTIFICATES = 4


def ca_digests_of_bundle(pem: str | bytes) -> list[str]:
    """The digest of every certificate of a PEM bundle, in order (a CA rotation trusts two for a while);
    InvalidInput when there is none, one cannot be decoded, or there are more than MAX_BUNDLE_CERTIFICATES."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    end = "-----END CERTIFICATE-----"
    blocks = [block + end for block in text.split(end)[:-1]]
    if not blocks:
        raise InvalidInput("no PEM certificate found", field="ca")
    if len(blocks) > MAX_BUNDLE_CERTIFICATES:
        raise InvalidInput(f"more than {MAX_BUNDLE_CERTIFICATES} certificates in a CA bundle", field="ca")
    return [ca_digest_of_pem(block) for block in blocks]


def parse_ca_digest(text: str) -> str:
    """`sha256:<hex>` (or the bare 64 hex digits), normalized to lowercase `sha256:<hex>`."""
    value = text.strip().lower()
    if _HEX.fullmatch(value):
        value = f"{DIGEST_ALGORITHM}:{value}"
    if not _DIGEST.fullmatch(value):
        raise InvalidInput(f"CA digest {text[:80]!r} is not sha256:<64 hex digits>", field="ca_digest")
    return value


def format_join_token(secret: str, ca_digest: str) -> str:
    hex_digest = parse_ca_digest(ca_digest).split(":", 1)[1]
    return f"{JOIN_PREFIX}{hex_digest}-{secret}"


def parse_join_token(text: str) -> JoinToken:
    """A join token, or a plain registration secret (then without a digest). InvalidInput names what is wrong."""
    value = text.strip()
    if not value:
        raise InvalidInput("the registration token is empty", field="token")
    if len(value) > MAX_TOKEN_LENGTH:
        raise InvalidInput(f"the registration token is longer than {MAX_TOKEN_LENGTH} characters", field="token")
    if any(ch.isspace() for ch in value):
        raise InvalidInput("the registration token contains whitespace", field="token")
    if not value.startswith(JOIN_PREFIX):
        return JoinToken(secret=value, ca_digest=None)
    rest = value[len(JOIN_PREFIX) :]
    hex_digest, separator, secret = rest[:_HEX_LENGTH].lower(), rest[_HEX_LENGTH:][:1], rest[_HEX_LENGTH + 1 :]
    if not _HEX.fullmatch(hex_digest) or separator != "-" or not secret:
        raise InvalidInput(
            f"the registration token starts with {JOIN_PREFIX} but is not {JOIN_PREFIX}<64 hex digits>-<secret>",
            field="token",
        )
    return JoinToken(secret=secret, ca_digest=f"{DIGEST_ALGORITHM}:{hex_digest}")
