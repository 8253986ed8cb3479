#!/usr/bin/env bash
# Run every gate (ruff, mypy, import-linter) and then the test suite; exit non-zero if any of them failed.
#
# Why all of them even after a failure: one CI run should report every broken gate, not only the first one.
# Expects scripts/setup.sh to have run (make test does that): the integration tests need root, dockerd and the
# corral/busybox image.
set -uo pipefail

cd "$(dirname "$0")/.."

failed=()
step() {
    local name="$1"
    shift
    echo "==> $name: $*"
    if ! "$@"; then
        failed+=("$name")
    fi
}

step ruff .venv/bin/ruff check src tests
step mypy .venv/bin/mypy
step import-linter .venv/bin/lint-imports
summary="$(mktemp)"
step pytest bash -o pipefail -c '.venv/bin/pytest -q --durations=20 -m "not faults" tests | tee "$0"' "$summary"
# the fault tier (tests/faults) on its own, with -s: the invariant monitor's figures of each fault go to the log
step faults .venv/bin/pytest -q -s --durations=10 tests/faults

if [ "${#failed[@]}" -gt 0 ]; then
    # the suite's failures again at the very end, where a truncated CI log still shows them
    grep -E '^(FAILED|ERROR) ' "$summary" >&2 || true
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all gates and tests passed"
