# Entry points for developers and CI. Every target that needs the machine prepared runs scripts/setup.sh first
# (idempotent and quick when nothing is missing).
.PHONY: setup demo check test faults lint bench screenshots

setup:
	bash scripts/setup.sh

# `make demo HOST=0.0.0.0` (or CORRAL_DEMO_HOST): the server listens on every interface (TLS) and prints the command
# that adds another machine, with this machine's primary address (CORRAL_ADVERTISE_URL overrides it).
demo: setup
	$(if $(HOST),CORRAL_DEMO_HOST=$(HOST) )bash scripts/demo.sh

# The quick tier for developers (under 3 minutes on 2 cores): ruff, mypy, import-linter, then tests/unit and tests/api
# spread over two pytest-xdist workers (no Docker engine or network namespaces used).
check: setup
	bash scripts/test.sh check

# Everything, as CI runs it: the gates, the in-process tier (xdist), the integration tier with the browser tests (xdist),
# the fault tier.
test: setup
	bash scripts/test.sh

# The fault suite alone (tests/faults, issue 14): faults injected into a real server with three local hosts under the
# invariant monitor, whose figures are printed after each fault. `make test` runs it too, as its own step.
faults: setup
	.venv/bin/pytest -q -s -p no:cacheprovider --durations=10 tests/faults

# Benchmarks of issue 8 (bench/README.md): a table of figures and targets, and bench/results/latest.json.
bench: setup
	.venv/bin/python bench/run_all.py

# PNGs of the web UI (hosts, stack, container with logs, catalog) in docs/screenshots/: a temporary server with three
# local hosts and the demo stack, photographed by headless Chromium, then removed.
screenshots: setup
	.venv/bin/python scripts/screenshots.py

lint:
	.venv/bin/ruff check src tests
	.venv/bin/mypy
	.venv/bin/lint-imports
