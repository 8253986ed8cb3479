"""The CLI's client verbs start without the compose pipeline, the catalog and pydantic-settings: importing them at
the top was most of every `corral` call's start-up time (over a second on a loaded machine, for `ps` as for `up`).
The verbs that read a compose project or a catalog, and `server` and `agent`, import them where they run (their own
tests: test_cli_project.py, test_cli_catalog_validate.py)."""

from __future__ import annotations

import subprocess
import sys

LAZY = ("corral.compose", "corral.catalog", "corral.config", "pydantic_settings")
CODE = "import sys, corral.entry; print(' '.join(sorted(sys.modules)))"


def test_the_cli_entry_point_leaves_the_compose_pipeline_catalog_and_settings_unloaded() -> None:
    modules = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    assert "corral.cli.main" in modules
    assert [m for m in modules if m.split(".")[0] == "pydantic_settings" or m.startswith(LAZY)] == []
