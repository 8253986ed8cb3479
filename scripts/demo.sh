#!/usr/bin/env bash
# The main job on one machine: a Corral server, three local hosts (network namespaces, each with its own dockerd
# and agent), the demo stack (examples/demo: a web service at scale 3 and a worker), and where to point a browser
# or the CLI. Runs in the foreground; Ctrl-C removes what was made through the server since the demo started (its
# hosts and stack, and the README tour's stacks, hosts, environments and tokens: scripts/demo_state.py), stops the
# server and removes the local bridge with its firewall rule; it says what it leaves (the data dir).
#
# Settings: CORRAL_DEMO_HOST (127.0.0.1; `make demo HOST=0.0.0.0` listens on every interface, with TLS, and prints
# the command that adds another machine), CORRAL_PORT (8080), CORRAL_DATA_DIR (/var/lib/corral),
# CORRAL_DEMO_HOSTS ("host1 host2 host3"), CORRAL_ADVERTISE_URL (the URL other machines use, e.g. behind NAT).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${CORRAL_PORT:-8080}"
LISTEN="${CORRAL_DEMO_HOST:-127.0.0.1}"
export CORRAL_DATA_DIR="${CORRAL_DATA_DIR:-/var/lib/corral}"
case "$LISTEN" in
    0.0.0.0 | 127.* | localhost) local_url="https://127.0.0.1:${PORT}" ;;
    :: | ::1) local_url="https://[::1]:${PORT}" ;;
    *:*) local_url="https://[${LISTEN}]:${PORT}" ;;
    *) local_url="https://${LISTEN}:${PORT}" ;;
esac
export CORRAL_URL="$local_url"  # TLS with the server's own CA (tls/ca.pem, named in admin.env)
HOSTS="${CORRAL_DEMO_HOSTS:-host1 host2 host3}"
CORRAL=.venv/bin/corral
STATE="$(mktemp -t corral-demo.XXXXXX)"

answers() { .venv/bin/python - "$CORRAL_URL" <<'PY'
import ssl, sys, urllib.request
try:  # only "does something answer here": the CLI below verifies the server against its CA
    urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=2, context=ssl._create_unverified_context())
except Exception:
    sys.exit(1)
PY
}

server_pid=""
sleeper=""
snapshot_taken=""
cleanup() {
    trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
    [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
    if [ -n "$snapshot_taken" ]; then
        .venv/bin/python scripts/demo_state.py cleanup "$STATE" || true
    fi
    rm -f "$STATE"
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        rm -f "${CORRAL_DATA_DIR}/server.pid"
        echo "demo: stopped the server"
        .venv/bin/python scripts/demo_state.py bridge || true
        echo "demo: kept ${CORRAL_DATA_DIR} (database, admin key, CA: the next \`make demo\` reuses them;" \
            "\`rm -rf ${CORRAL_DATA_DIR}\` forgets them)"
    else
        echo "demo: left the server running (it was running before the demo), with its bridge"
    fi
}
if answers; then
    echo "demo: a Corral server already answers on ${CORRAL_URL}; using it"
else
    mkdir -p "$CORRAL_DATA_DIR"
    echo "demo: starting the server (log: ${CORRAL_DATA_DIR}/server.log)"
    # its own session: Ctrl-C reaches this script (which removes its hosts first), not the server
    setsid "$CORRAL" server --host "$LISTEN" --port "$PORT" >>"${CORRAL_DATA_DIR}/server.log" 2>&1 &
    server_pid=$!
    echo "$server_pid" >"${CORRAL_DATA_DIR}/server.pid"  # for whoever must stop it if this script is killed
    trap cleanup EXIT
    for _ in $(seq 1 60); do answers && break; sleep 0.5; done
    answers || { echo "demo: the server did not start:" >&2; tail -20 "${CORRAL_DATA_DIR}/server.log" >&2; exit 1; }
fi

set -a
# shellcheck disable=SC1091
. "${CORRAL_DATA_DIR}/admin.env"
set +a
.venv/bin/python scripts/demo_state.py snapshot "$STATE"  # what Ctrl-C leaves: all there is now
snapshot_taken=1
trap cleanup EXIT

# A demo machine is the operator's own: its environment allows the dangerous container settings (privileged,
# cap_add, host network/PID/IPC, devices, system mounts); `corral up` and the UI warn about each one a stack uses.
echo "demo: environment default allows dangerous container settings (lock it with: corral env update default --lock)"
"$CORRAL" env update default --allow all

existing="$("$CORRAL" hosts ls --format json)"
for name in $HOSTS; do
    if grep -q "\"name\": \"${name}\"" <<<"$existing"; then
        echo "demo: host ${name} exists"
    else
        "$CORRAL" hosts create --driver local --label demo=true "$name"
    fi
done

"$CORRAL" up -f examples/demo/docker-compose.yml -f examples/demo/rancher-compose.yml -s demo

echo
"$CORRAL" hosts ls
echo
"$CORRAL" ps
case "$LISTEN" in
    127.* | localhost | ::1)
        join="none: the server listens on ${LISTEN} only (\`make demo HOST=0.0.0.0\` listens on every interface, TLS)" ;;
    *)  # a token of this run (revoked on Ctrl-C): the command names the server's advertised URL and pins its CA
        join="$("$CORRAL" tokens create --description "make demo" 2>&1 | sed '2,$s/^/               /')" ;;
esac
cat <<TXT

Corral is running.
  Web UI:      ${CORRAL_URL}/ui/   (log in with the API key pair in admin.env; the browser must trust the CA below)
  API:         ${CORRAL_URL}/v1   (OpenAPI document: ${CORRAL_URL}/openapi.json)
  API key:     CORRAL_ACCESS_KEY=${CORRAL_ACCESS_KEY}, the secret key in ${CORRAL_DATA_DIR}/admin.env
               (for the CLI: set -a; . ${CORRAL_DATA_DIR}/admin.env; set +a)
  Server CA:   ${CORRAL_CA_FILE}
  Add a host:  on another machine with Docker and Corral installed, run:
               ${join}
  Try:         the tour in README.md (.venv/bin/corral ps, scale demo/web=6, logs demo/web, hosts ls ...)
TXT

echo "Press Ctrl-C to stop (removes what was created since the demo started, then says what it leaves)."
trap 'exit 0' INT TERM
if [ -n "$server_pid" ]; then
    wait "$server_pid"
else
    sleep infinity &
    sleeper=$!
    wait "$sleeper"
fi
