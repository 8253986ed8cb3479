"""Identifiers and secrets.

Why: every id and secret comes from the OS CSPRNG (`secrets`), never from a predictable source (the system we model
shipped predictable agent tokens, CVE-2022-43755). Secrets are stored only as SHA-256 digests; they are long random
strings, so a slow password hash would add nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_id(prefix: str) -> str:
    """A short, prefixed, random id such as ``env-3f9a1c2b7d4e``."""
    return f"{prefix}-{secrets.token_hex(6)}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_access_key(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(10).upper()}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
