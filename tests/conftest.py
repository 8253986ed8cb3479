"""Settings for the whole suite: Hypothesis without its per-example deadline.

Why: Hypothesis fails an example that takes longer than 200 ms, which is a timing assertion; on the shared 2-core CI
machine, and with the unit and API tiers spread over pytest-xdist workers, a loaded moment made property tests fail
("Unreliable test timings", DeadlineExceeded) though the code was right. Timings belong in bench/, not in tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

settings.register_profile("corral", deadline=None)
settings.load_profile("corral")


# How pytest-xdist spreads tests (`--dist loadfile`, scripts/test.sh): any module whole on one worker, and all of
# tests/browser on one worker. Why the browser tests together: their package-scoped server with two netns hosts
# (tests/browser/conftest.py) must start once, not on every worker that gets one of their modules. Why a scheduler of
# our own and not `--dist loadgroup` with xdist_group marks: loadgroup appends the group to each test's id on the
# worker (`item._nodeid`), which pytest 9.2 no longer reads (ids come from `item._id`), so pytest-xdist 3.8's
# loadgroup silently groups nothing (checked with a toy project: marked tests landed on every worker).
BROWSER_DIR = Path(__file__).resolve().parent / "browser"


def xdist_scope(nodeid: str, rootpath: Path) -> str:
    """The unit of work of the test `nodeid`: tests/browser for every test under it, else its module's path."""
    module = nodeid.split("::", 1)[0]
    browser = BROWSER_DIR.relative_to(rootpath.resolve()).as_posix()
    return browser if module.startswith(f"{browser}/") else module


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, called in the controller only
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class BrowserTogetherScheduling(LoadFileScheduling):
        """--dist loadfile, with the browser tests one unit of work (`_split_scope` is how xdist's own schedulers
        define theirs)."""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid, config.rootpath)

    return BrowserTogetherScheduling(config, log)
