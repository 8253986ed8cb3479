"""`corral ps --filter key=value`: which filters go to the server's container list and which the CLI applies.

Why split: the list is paged and filtered server-side (`GET /v1/containers?stack=&service=&host=&state=`), so a
filter the API has is sent with the request and only matching pages cross the network; the rest (a name's
substring, a key given twice, which means "either", as in `docker ps`) is applied to what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.model.errors import InvalidInput

KEYS = ("stack", "service", "host", "state", "name")


@dataclass(frozen=True)
class Filters:
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.values)

    def server_params(self) -> dict[str, str]:
        """The query of `GET /v1/containers` for the keys given once (`service=STACK/SERVICE` becomes both)."""
        params: dict[str, str] = {}
        for key in ("stack", "service", "host", "state"):
            given = self.values.get(key, ())
            if len(given) != 1:
                continue
            stack, slash, service = given[0].partition("/")
            if key == "service" and slash:
                if params.get("stack", stack) != stack:
                    continue  # two different stacks: matches() finds nothing
                params["stack"], params["service"] = stack, service
            else:
                params[key] = given[0]
        return params

    def matches(self, container: dict[str, Any]) -> bool:
        """Every key given holds for the container (a key given several times: any of its values)."""
        return all(any(_holds(key, value, container) for value in wanted) for key, wanted in self.values.items())


def _holds(key: str, value: str, container: dict[str, Any]) -> bool:
    if key == "name":
        return value in str(container.get("name", ""))
    if key == "service":
        stack, slash, service = value.partition("/")
        if slash:
            return bool(container.get("stack") == stack and container.get("service") == service)
        return value in (container.get("service"), container.get("service_id"))
    if key == "stack":
        return value in (container.get("stack"), container.get("stack_id"))
    if key == "host":
        return value in (container.get("host"), container.get("host_id"))
    return bool(container.get("state") == value)


def parse_filters(given: list[str]) -> Filters:
    """`key=value` pairs; an unknown key or a pair without `=` is an error naming the keys there are."""
    values: dict[str, list[str]] = {}
    for item in given:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not value:
            raise InvalidInput(f"--filter {item!r}: give key=value, key one of {', '.join(KEYS)}", field="filter")
        if key not in KEYS:
            raise InvalidInput(f"--filter {item!r}: unknown key {key!r}; the keys: {', '.join(KEYS)}", field="filter")
        values.setdefault(key, [])
        if value not in values[key]:
            values[key].append(value)
    return Filters({key: tuple(found) for key, found in values.items()})
