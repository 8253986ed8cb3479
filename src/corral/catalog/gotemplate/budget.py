"""Budgets of one template rendering: steps, output bytes, template-call depth, wall time, and the size of what
any one function may take or make.

Why: a catalog template is code from whoever runs the catalog, and it runs inside the server. A loop over
`until 1000000000`, a template that calls itself twice per level, `repeat` of a huge count or a string doubled
in a loop would otherwise hold a CPU and memory for as long as it likes. Each budget, once exceeded, stops the
rendering with a `TemplateError` that names the file, the position and the budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    steps: int = 250_000  # nodes walked and commands evaluated (real catalog templates take a few thousand)
    output_bytes: int = 4 * MiB  # of the rendered text
    depth: int = 100  # nested {{template}} calls
    seconds: float = 5.0  # wall time
    value_bytes: int = 1 * MiB  # of any one value a function makes (a string, or a list's elements together)
    items: int = 100_000  # elements of a list a function makes (`until`, `untilStep`, `splitList`, ...)


DEFAULT_LIMITS = Limits()
_CLOCK_EVERY = 256  # steps between two looks at the clock


class BudgetExceeded(Exception):
    """A budget ran out; the evaluator turns it into a TemplateError at the node it was walking."""


class Budget:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._deadline = clock() + limits.seconds
        self.steps = 0
        self.output = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise BudgetExceeded(f"template budget exceeded: more than {self.limits.steps} steps")
        if self.steps % _CLOCK_EVERY == 0 and self._clock() > self._deadline:
            raise BudgetExceeded(f"template budget exceeded: rendering took more than {self.limits.seconds:g} s")

    def emit(self, text: str) -> None:
        self.output += len(text)
        if self.output > self.limits.output_bytes:
            raise BudgetExceeded(f"template budget exceeded: output over {_size(self.limits.output_bytes)}")

    def check_args(self, name: str, values: list[Any]) -> None:
        """What a function is given may weigh a few values' worth (it may join or repeat them)."""
        cap = 4 * self.limits.value_bytes
        if weigh(values, cap) > cap:
            raise BudgetExceeded(f"template budget exceeded: the arguments of {name} are over {_size(cap)}")

    def check_value(self, name: str, value: Any) -> None:
        """A function's result (or the arguments it is about to get) must stay under `value_bytes`."""
        weight = weigh(value, self.limits.value_bytes)
        if weight > self.limits.value_bytes:
            raise BudgetExceeded(
                f"template budget exceeded: {name} would handle more than {_size(self.limits.value_bytes)}"
            )
        if isinstance(value, (list, tuple)) and len(value) > self.limits.items:
            raise BudgetExceeded(f"template budget exceeded: {name} would make more than {self.limits.items} items")


def weigh(value: Any, cap: int) -> int:
    """Roughly the bytes a value holds (strings by length, containers by their elements), counting stops past
    `cap`: a list holding the same big string many times weighs all of its copies, as joining it would."""
    total = 0
    pending = [value]
    while pending and total <= cap:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple)):
            total += len(item)
            pending.extend(item)
        elif isinstance(item, Mapping):
            total += len(item)
            for key, element in item.items():
                pending.append(key)
                pending.append(element)
        else:
            total += 8
    return total


def _size(count: int) -> str:
    return f"{count // MiB} MiB" if count >= MiB and count % MiB == 0 else f"{count} bytes"
