"""Settings for the whole suite: Hypothesis without its per-example deadline.

Why: Hypothesis fails an example that takes longer than 200 ms, which is a timing assertion; on the shared 2-core CI
machine, and with the unit and API tiers spread over pytest-xdist workers, a loaded moment made property tests fail
("Unreliable test timings", DeadlineExceeded) though the code was right. Timings belong in bench/, not in tests.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("corral", deadline=None)
settings.load_profile("corral")
