"""Settings for the whole suite: Hypothesis without its per-example deadline.

Why: Hypothesis fails an example that takes longer than 200 ms, which is a timing assertion; on the shared 2-core CI
machine, and with the unit and API tiers spread over pytest-xdist workers, a loaded moment made property tests fail
("Unreliable test timings", DeadlineExceeded) though the code was right. Timings belong in bench/, not in tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("corral", deadline=None)
settings.load_profile("corral")


# The pytest-xdist group of every test (`--dist loadgroup`, scripts/test.sh): all of tests/browser on one worker, any
# other module whole on one worker (as `--dist loadfile` would). Why the browser tests together: their package-scoped
# server with two netns hosts (tests/browser/conftest.py) must be started once, not on every worker that gets one of
# their modules. A test's own xdist_group mark is kept.
BROWSER_GROUP = "browser"
BROWSER_DIR = Path(__file__).resolve().parent / "browser"


def xdist_group(item: pytest.Item) -> str:
    """The group of `item`: "browser" under tests/browser, else its module's path (its id up to the first `::`)."""
    if BROWSER_DIR in item.path.resolve().parents:
        return BROWSER_GROUP
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which appends the group to each test's id on a worker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
