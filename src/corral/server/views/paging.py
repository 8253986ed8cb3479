"""Paged collections: `limit` and an opaque `continue` token on every list route, and the JSON encoder they use.

Why a token keyed on the sort key (never an offset): the token names the last item a page held, by the collection's
sort key (which ends with the item's id, so it is unique), and the next page starts after it. Items inserted or
removed meanwhile move no other item across the boundary: every item that exists for the whole walk is seen exactly
once, in order; one inserted during it is seen if it sorts after the boundary (as Kubernetes' `continue` and Rancher's
`marker`). An unpaged call (no `limit`, no `continue`) answers everything in the shape it always had.
"""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query

from corral.model.errors import InvalidInput

try:  # a fast encoder for large lists; the standard library's when it is not installed
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; kept for a stripped environment
    orjson = None  # type: ignore[assignment]

MAX_LIMIT = 1000
T = TypeVar("T")
SortKey = tuple[Any, ...]


@dataclass(frozen=True)
class PageRequest:
    limit: int | None
    token: str | None

    @property
    def paged(self) -> bool:
        return self.limit is not None or self.token is not None


def _page_request(
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="Items per page (paged when set).")] = None,
    token: Annotated[
        str | None, Query(alias="continue", max_length=2048, description="The `continue` of the previous page.")
    ] = None,
) -> PageRequest:
    return PageRequest(limit, token)


Paging = Annotated[PageRequest, Depends(_page_request)]


def encode_token(collection: str, key: SortKey) -> str:
    raw = json.dumps([collection, list(key)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(collection: str, token: str) -> SortKey:
    """The sort key a token names; a 422 naming `continue` for a token of another collection or a broken one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        name, key = json.loads(raw)
        if not isinstance(name, str) or not isinstance(key, list):
            raise ValueError(token)
    except ValueError:
        raise InvalidInput("continue: not a token this server gave out", field="continue") from None
    if name != collection:
        raise InvalidInput(f"continue: a token of {name!r}, not of {collection!r}", field="continue")
    return tuple(key)


def page(
    collection: str,
    items: Sequence[T],
    key: Callable[[T], SortKey],
    request: PageRequest,
    *,
    presorted: bool = False,
) -> tuple[list[T], str | None]:
    """The items of this page in sort-key order and the token of the next page (None: this was the last one).
    `presorted`: the items are in sort-key order already (a page of a long list costs its own items, not a sort)."""
    ordered = items if presorted else sorted(items, key=key)
    start = 0
    if request.token is not None:
        after = decode_token(collection, request.token)
        try:
            start = bisect.bisect_right(ordered, after, key=key)
        except TypeError:  # a key of another shape (a token of an older server): restart is wrong, refuse
            raise InvalidInput("continue: not a token this server gave out", field="continue") from None
    end = len(ordered) if request.limit is None else start + request.limit
    chosen = list(ordered[start:end])
    more = end < len(ordered)
    return chosen, encode_token(collection, key(chosen[-1])) if more and chosen else None


def paged_body(data: list[Any], token: str | None, request: PageRequest) -> dict[str, Any]:
    """`{"data": [...]}`, with `continue` (null on the last page) when the caller asked for a page."""
    return {"data": data, "continue": token} if request.paged else {"data": data}


def dumps(value: object) -> bytes:
    if orjson is not None:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def kept(body: bytes) -> bytes:
    """`body` in an object of its own size, for a cache: orjson's output keeps the buffer it was written into (at
    least 4 KiB; 100,000 cached fragments of 500 B held 400 MiB instead of 60 MiB)."""
    return memoryview(body).tobytes() if orjson is not None else body


def preencoded(value: object) -> object:
    """`value` encoded now, for `dumps` to splice into a larger body as it is (the value itself without orjson)."""
    if orjson is not None:
        return orjson.Fragment(kept(dumps(value)))
    return value  # pragma: no cover - orjson is a dependency
