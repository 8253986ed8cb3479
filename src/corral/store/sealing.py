"""One server-side cipher for every value stored encrypted at rest (registry passwords, secrets, certificate keys).

Why encrypted and not digested: these values must come back (an agent sends the registry password, a container
reads its secret, HAProxy loads its key); a digest cannot. They are encrypted with Fernet (AES-128-CBC +
HMAC-SHA256, `cryptography`) under one key kept in the server's data dir, `registry.key` (its historical name; mode
0600, created on first use). A copy of the database alone (a backup, a PostgreSQL dump) reveals nothing; whoever
holds both the data dir and the database does. Losing the key makes the sealed values unreadable: each owner says
what to re-enter.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from corral.model.errors import Unavailable

KEY_FILE = "registry.key"


class Unsealable(Exception):
    """A stored value that the current key cannot decrypt (the key was replaced, or the value damaged)."""


class Sealer:
    """Encrypts and decrypts short strings under the data dir's key, created on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.key_path = Path(data_dir) / KEY_FILE
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    def seal(self, plain: str) -> str:
        return self._cipher().encrypt(plain.encode()).decode("ascii")

    def unseal(self, sealed: str) -> str:
        """The plain value; `Unsealable` when this key cannot open it (the caller names what to re-enter)."""
        try:
            return self._cipher().decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise Unsealable(str(self.key_path)) from exc

    def _cipher(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                try:
                    self._fernet = Fernet(self._load_or_create_key())
                except ValueError as exc:  # not a Fernet key: a damaged or foreign file
                    raise Unavailable(
                        f"the key {self.key_path} is not a valid key (damaged?): restore it from a backup, "
                        "or move it away and enter the encrypted values (registries, secrets, certificates) again"
                    ) from exc
            return self._fernet

    def _load_or_create_key(self) -> bytes:
        path = self.key_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return path.read_bytes().strip()
            key = Fernet.generate_key()
            with os.fdopen(fd, "wb") as handle:
                handle.write(key + b"\n")
            return key
        except OSError as exc:
            raise Unavailable(f"cannot read or create the key {path}: {exc.strerror}") from exc
