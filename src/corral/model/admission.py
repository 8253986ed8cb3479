"""Host admission rules: when a registration token may still admit a host, and the bounds of what a host reports.

Why pure and here: the store applies the token rule atomically in SQL, but the state shown in lists, the refusal
an agent reads and the property tests must agree with it, so the rule (and its wording) lives in one place. Facts
enter at two doors (registration and the agent's `hello`); both check them with `validate_facts` before anything
is stored, so a hostile or broken agent cannot fill the database or the UI with megabytes of "hostname".
"""

from __future__ import annotations

import enum
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from corral.model.entities import HostFacts
from corral.model.errors import InvalidInput
from corral.model.names import validate_labels

DEFAULT_TOKEN_LIFETIME = "24h"  # noqa: S105 - a duration, not a secret
NEVER = "never"
MAX_TOKEN_LIFETIME_SECONDS = 366 * 86400.0
MAX_TOKEN_USES = 1_000_000
APPROVAL_REASON = "waiting for approval"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_lifetime(text: str, *, field: str = "expires") -> float | None:
    """`2h`, `30m`, `7d`, `1w`, `90` (seconds) -> seconds; `never` -> None. Raises InvalidInput naming `field`."""
    value = text.strip().lower()
    if value == NEVER:
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        raise InvalidInput(
            f"{field} {text!r} is not a duration: use a number with s, m, h, d or w (e.g. 2h, 7d) or 'never'",
            field=field,
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds <= MAX_TOKEN_LIFETIME_SECONDS or not math.isfinite(seconds):
        raise InvalidInput(f"{field} {text!r} must be more than 0 s and at most 366 days (or 'never')", field=field)
    return seconds


def validate_max_uses(value: int | None, *, field: str = "max_uses") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKEN_USES:
        raise InvalidInput(
            f"{field} must be a whole number from 1 to {MAX_TOKEN_USES} (or absent: unlimited)", field=field
        )
    return value


class TokenState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used-up"
    REVOKED = "revoked"


@dataclass(frozen=True)
class TokenUsage:
    """What decides whether a token still admits hosts (the store's conditional UPDATE applies the same rule)."""

    id: str
    expires_at: float | None
    max_uses: int | None
    uses: int
    revoked_at: float | None

    def state(self, now: float) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.max_uses is not None and self.uses >= self.max_uses:
            return TokenState.USED_UP
        if self.expires_at is not None and now >= self.expires_at:
            return TokenState.EXPIRED
        return TokenState.ACTIVE

    def refusal(self, now: float) -> str:
        """Why this token admits no host now ("" when it does)."""
        state = self.state(now)
        if state is TokenState.REVOKED:
            return f"registration token {self.id} was revoked at {format_time(self.revoked_at or 0.0)}"
        if state is TokenState.USED_UP:
            times = "time" if self.max_uses == 1 else "times"
            return f"registration token {self.id} has been used {self.uses} of {self.max_uses} {times}"
        if state is TokenState.EXPIRED:
            return f"registration token {self.id} expired at {format_time(self.expires_at or 0.0)}"
        return ""


def format_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


# -- host facts -----------------------------------------------------------------------------------------------

MAX_TEXT = {"hostname": 253, "arch": 32, "os": 256, "kernel": 256, "engine_version": 64}
MAX_CPUS = 4096
MAX_MEMORY_BYTES = 1 << 50  # 1 PiB
MAX_FACT_KEYS = 64
MAX_HOST_LABELS = 64
MAX_AGENT_VERSION = 128


def validate_facts(data: object, *, field: str = "facts") -> HostFacts:
    """A host's reported facts, checked: known keys of the right type within their bounds (unknown keys, up to
    MAX_FACT_KEYS, are ignored for newer agents). Raises InvalidInput naming `facts.<key>`."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{field} must be an object", field=field)
    if len(data) > MAX_FACT_KEYS:
        raise InvalidInput(f"{field} has {len(data)} keys; at most {MAX_FACT_KEYS} are accepted", field=field)
    for key, limit in MAX_TEXT.items():
        value = data.get(key, "")
        if not isinstance(value, str):
            raise InvalidInput(f"{field}.{key} must be a string", field=f"{field}.{key}")
        if len(value) > limit or any(ord(ch) < 32 for ch in value):
            raise InvalidInput(
                f"{field}.{key} must be at most {limit} characters without control characters", field=f"{field}.{key}"
            )
    for key, upper in (("cpus", MAX_CPUS), ("memory_bytes", MAX_MEMORY_BYTES)):
        value = data.get(key, 0)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
            raise InvalidInput(f"{field}.{key} must be a whole number from 0 to {upper}", field=f"{field}.{key}")
    return HostFacts.from_dict(dict(data))


def validate_host_labels(labels: object, *, field: str = "labels") -> dict[str, str]:
    """Host labels as an agent reports them at registration: each valid, and at most MAX_HOST_LABELS."""
    if isinstance(labels, Mapping) and len(labels) > MAX_HOST_LABELS:
        raise InvalidInput(f"{field} has {len(labels)} labels; at most {MAX_HOST_LABELS} are accepted", field=field)
    return validate_labels(labels, field=field)


def validate_agent_version(value: object) -> str:
    text = value if isinstance(value, str) else ""
    if len(text) > MAX_AGENT_VERSION:
        raise InvalidInput(f"agent_version must be at most {MAX_AGENT_VERSION} characters", field="agent_version")
    return text
