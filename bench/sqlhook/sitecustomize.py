"""Loaded by Python at start-up when bench/sql_per_start.py puts this directory on PYTHONPATH: inside the Corral
server process only, count every SQL statement SQLAlchemy sends (the `before_cursor_execute` engine event, on all
engines), grouped by statement text; on SIGUSR2 write the counts (SIGUSR1 is the server's
faulthandler: every thread's stack) to $CORRAL_BENCH_SQL_COUNTS as JSON.

Why a start-up hook: the server runs unchanged, as `corral server`, in its own process; nothing in src/ knows about
the benchmark.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from typing import Any

_OUT = os.environ.get("CORRAL_BENCH_SQL_COUNTS", "")


def _install() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool) -> None:
        counts[" ".join(statement.split())] += 1

    def dump(_signum: int, _frame: Any) -> None:
        tmp = f"{_OUT}.tmp"
        with open(tmp, "w") as handle:
            json.dump(dict(counts), handle)
        os.replace(tmp, _OUT)

    event.listen(Engine, "before_cursor_execute", count)
    signal.signal(signal.SIGUSR2, dump)


if _OUT and sys.argv[1:2] == ["server"]:
    _install()
