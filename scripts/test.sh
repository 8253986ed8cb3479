#!/usr/bin/env bash
# Run every gate (ruff, mypy, import-linter) and then the test suite by tiers; exit non-zero if any of them failed.
#
#   scripts/test.sh          everything (`make test`, CI): the gates, the in-process tier, the integration tier
#                            (real servers, netns hosts, and the browser tests with Chromium), then the fault tier
#   scripts/test.sh check    the quick tier (`make check`): the gates, then tests/unit and tests/api
#
# Why all of them even after a failure: one CI run should report every broken gate, not only the first one.
# Why tiers: the in-process tests (unit, API, security, conformance) share nothing but the CPU, so pytest-xdist
# spreads them over two workers; the integration tier starts servers and hosts whose set-up and convergence waits
# dominate, and runs three modules at a time, the browser tests (one shared server) on one of those workers; the
# fault tier injects faults into one shared cluster and runs alone.
# Expects scripts/setup.sh to have run (make test does that): the integration tests need root, dockerd and the
# corral/busybox image.
set -uo pipefail

cd "$(dirname "$0")/.."

tier="${1:-all}"
case "$tier" in
    all | check) ;;
    *)
        echo "usage: $0 [check]" >&2
        exit 2
        ;;
esac
# pytest-xdist workers for the in-process tier (the CI machine has 2 cores; CORRAL_TEST_WORKERS overrides)
workers="${CORRAL_TEST_WORKERS:-2}"
# the integration tier: whole modules per xdist worker (each server picks its bridge subnet from its worker's share),
# and all of tests/browser on one worker (their package-scoped server must start once; tests/conftest.py's scheduler
# makes them one unit of `--dist loadfile`).
# Its tests mostly wait (hosts starting, convergence, timeouts), so three workers on 2 cores take about half the time
# of one (24.5 min against 52, with another test load running); CORRAL_INTEGRATION_WORKERS=1 runs one module at a time.
# Chromium runs in a network namespace of its own (tests/browser/isolated_network.py): it fails every request in
# flight when its namespace's interfaces change (net::ERR_NETWORK_CHANGED), which the other workers' hosts do all
# the time in the root namespace
integration_workers="${CORRAL_INTEGRATION_WORKERS:-3}"
integration_xdist=()
if [ "$integration_workers" -gt 1 ]; then
    integration_xdist=(-n "$integration_workers" --dist loadfile)
fi
# the in-process tier: no root, no Docker, nothing shared between tests but the machine
fast=(tests/unit tests/api)
if [ "$tier" = all ]; then
    fast+=(tests/security tests/conformance)
fi

# CORRAL_TEST_DRY_RUN=1: print each pytest call (one line, shell-quoted) and run nothing; tests read it to check
# what `make test` selects (tests/security/test_in_make_test.py)
dry_run="${CORRAL_TEST_DRY_RUN:-}"

failed=()
step() {
    local name="$1"
    shift
    if [ -n "$dry_run" ]; then
        return
    fi
    echo "==> $name: $*"
    if ! "$@"; then
        failed+=("$name")
    fi
}

summary="$(mktemp)"
# pytest with its output kept in $summary too, for the failure lines at the end
pytest_step() {
    local name="$1"
    shift
    if [ -n "$dry_run" ]; then
        printf 'pytest'
        printf ' %q' "$@"
        echo
        return
    fi
    step "$name" bash -o pipefail -c '.venv/bin/pytest "${@:2}" | tee -a "$1"' _ "$summary" "$@"
}

step ruff .venv/bin/ruff check src tests
step mypy .venv/bin/mypy
step import-linter .venv/bin/lint-imports
pytest_step pytest-fast -q --durations=20 -n "$workers" -m "not faults" "${fast[@]}"
if [ "$tier" = all ]; then
    # everything else: tests/integration, tests/browser and any new directory (never the in-process tier twice)
    ignore=()
    for dir in tests/unit tests/api tests/security tests/conformance tests/faults; do
        ignore+=("--ignore=$dir")
    done
    pytest_step pytest-integration -q --durations=20 "${integration_xdist[@]}" -m "not faults" "${ignore[@]}" tests
    # the fault tier (tests/faults) on its own, with -s: the invariant monitor's figures of each fault go to the log
    pytest_step faults -q -s --durations=10 tests/faults
fi

if [ -n "$dry_run" ]; then
    exit 0
fi
if [ "${#failed[@]}" -gt 0 ]; then
    # the suite's failures again at the very end, where a truncated CI log still shows them
    grep -E '^(FAILED|ERROR) ' "$summary" >&2 || true
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all gates and tests passed"
