"""Checks of a parsed stack that need the orchestrator's rules: the same function for `corral up`, catalog install
and `catalog validate`, so that validation says exactly what install will say.

Why here and not in compose/: scheduling labels mean something only to the scheduler (orchestrator/rules.py); the
compose pipeline keeps them as plain labels.
"""

from __future__ import annotations

from corral.model.errors import InvalidInput
from corral.model.stack import StackSpec
from corral.orchestrator.rules import parse_rules


def check_scheduling_labels(spec: StackSpec, compose_name: str) -> None:
    """Every service's scheduling labels parse now, not when the scheduler first meets them."""
    for service in spec.services:
        try:
            parse_rules(service.launch.labels, stack=spec.name, service=service.name)
        except InvalidInput as exc:
            field = f"{compose_name}:services.{service.name}.labels"
            raise InvalidInput(f"{compose_name}: service {service.name}: {exc.message}", field=field) from exc
