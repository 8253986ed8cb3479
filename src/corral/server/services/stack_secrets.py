"""The secrets of a stack's compose file, at `corral up`: external ones must exist, file/environment ones are stored.

Why before the stack is written: a compose file naming an external secret the environment does not have is
refused (422 naming file and secret) with nothing stored, as Docker Compose refuses it; the values `corral up`
sent for `file:` / `environment:` secrets go to the sealed store as `<stack>_<name>` (compose/files.py), replacing
the previous values of that stack's secrets. The values never reach a response, an event or a log line.
"""

from __future__ import annotations

from corral.compose.files import Uploads, external_secrets, secrets_named, stack_secret_values
from corral.model.errors import InvalidInput
from corral.model.stack import StackSpec
from corral.server.services.stack_requests import StackFiles
from corral.store.secrets import SecretStore


def uploads_of(files: dict[str, str] | None, environment: dict[str, str]) -> Uploads | None:
    """The client's uploads; None when it sent none (an API caller: relative binds are refused then)."""
    if files is None and not environment:
        return None
    return Uploads.from_wire(files or {}, environment)


def store_stack_secrets(secrets: SecretStore, environment_id: str, spec: StackSpec, body: StackFiles) -> None:
    for name, value in check_stack_secrets(secrets, environment_id, spec, body).items():
        secrets.put(environment_id, name, value, stack=spec.name)


def check_stack_secrets(secrets: SecretStore, environment_id: str, spec: StackSpec, body: StackFiles) -> dict[str, str]:
    """The values to store for the stack's file/environment secrets (nothing is stored: `up --plan` checks only);
    InvalidInput for an external secret the environment does not have."""
    answers = body.answers
    used = secrets_named(spec)
    if not used:
        return {}
    have = {s.name for s in secrets.list(environment_id)}
    for name, key in external_secrets(body.compose_name, body.compose, answers=answers).items():
        if name in used and name not in have:
            raise InvalidInput(
                f"{body.compose_name}: secret {key}: external secret {name} does not exist in this environment "
                "(create it with `corral secrets create`)",
                field=f"{body.compose_name}:secrets.{key}",
            )
    uploads = uploads_of(body.uploads, body.upload_environment)
    return stack_secret_values(spec.name, body.compose_name, body.compose, answers=answers, uploads=uploads, used=used)


def remove_stack_secrets(secrets: SecretStore, environment_id: str, stack: str) -> None:
    """The secrets a removed stack's compose file defined go with it (external ones stay)."""
    for secret in secrets.list(environment_id):
        if secret.stack == stack:
            secrets.delete(environment_id, secret.name)
