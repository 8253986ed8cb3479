"""The base of every request body the server parses: a field it does not know is refused (422), never ignored.

Why here and not with the routes: the bodies of `corral up` (services/stack_requests.py) are read by the stack
routes, the plan route, the catalog and the secrets check alike; they and the routes' own bodies share this base.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
