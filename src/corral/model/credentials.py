"""The per-host credentials an agent keeps in its state directory.

Why in model: the server writes them for hosts it provisions itself (local driver) and the agent writes them after
exchanging a registration token; both must agree on one format. Files are written by the callers with mode 0600.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from corral.model.errors import InvalidInput

CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class AgentCredentials:
    url: str
    host_id: str
    environment_id: str
    access_key: str
    secret_key: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> AgentCredentials:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"{CREDENTIALS_FILE} is not JSON: {exc}", field=CREDENTIALS_FILE) from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"{CREDENTIALS_FILE} must hold an object", field=CREDENTIALS_FILE)
        values: dict[str, str] = {}
        for key in ("url", "host_id", "environment_id", "access_key", "secret_key"):
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise InvalidInput(f"{CREDENTIALS_FILE} lacks {key}", field=f"{CREDENTIALS_FILE}.{key}")
            values[key] = value
        return cls(**values)
