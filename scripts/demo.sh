#!/usr/bin/env bash
# The main job on one machine: a Corral server, three local hosts (network namespaces, each with its own dockerd
# and agent), the demo stack (examples/demo: a web service at scale 3 and a worker), and where to point a browser
# or the CLI. Runs in the foreground; Ctrl-C removes the hosts this run created and stops the server.
#
# Settings: CORRAL_PORT (8080), CORRAL_DATA_DIR (/var/lib/corral), CORRAL_DEMO_HOSTS ("host1 host2 host3").
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${CORRAL_PORT:-8080}"
export CORRAL_DATA_DIR="${CORRAL_DATA_DIR:-/var/lib/corral}"
export CORRAL_URL="https://127.0.0.1:${PORT}"  # TLS with the server's own CA (tls/ca.pem, named in admin.env)
HOSTS="${CORRAL_DEMO_HOSTS:-host1 host2 host3}"
CORRAL=.venv/bin/corral

answers() { .venv/bin/python - "$CORRAL_URL" <<'PY'
import ssl, sys, urllib.request
try:  # only "does something answer here": the CLI below verifies the server against its CA
    urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=2, context=ssl._create_unverified_context())
except Exception:
    sys.exit(1)
PY
}

server_pid=""
made_hosts=()
cleanup() {
    if [ "${#made_hosts[@]}" -gt 0 ]; then
        echo "demo: removing the hosts this run created: ${made_hosts[*]}"
        "$CORRAL" hosts rm "${made_hosts[@]}" || true
    fi
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        rm -f "${CORRAL_DATA_DIR}/server.pid"
    fi
}
if answers; then
    echo "demo: a Corral server already answers on ${CORRAL_URL}; using it"
else
    mkdir -p "$CORRAL_DATA_DIR"
    echo "demo: starting the server (log: ${CORRAL_DATA_DIR}/server.log)"
    # its own session: Ctrl-C reaches this script (which removes its hosts first), not the server
    setsid "$CORRAL" server --port "$PORT" >>"${CORRAL_DATA_DIR}/server.log" 2>&1 &
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
        made_hosts+=("$name")
    fi
done
trap cleanup EXIT

"$CORRAL" up -f examples/demo/docker-compose.yml -f examples/demo/rancher-compose.yml -s demo

echo
"$CORRAL" hosts ls
echo
"$CORRAL" ps
cat <<TXT

Corral is running.
  Web UI:      ${CORRAL_URL}/ui/   (log in with the API key pair in admin.env; the browser must trust the CA below)
  API:         ${CORRAL_URL}/v1   (OpenAPI document: ${CORRAL_URL}/openapi.json)
  API key:     CORRAL_ACCESS_KEY=${CORRAL_ACCESS_KEY}, the secret key in ${CORRAL_DATA_DIR}/admin.env
               (for the CLI: set -a; . ${CORRAL_DATA_DIR}/admin.env; set +a)
  Server CA:   ${CORRAL_CA_FILE}
  Try:         .venv/bin/corral ps    .venv/bin/corral scale demo/web=6    .venv/bin/corral logs -f demo/web
               .venv/bin/corral exec -it demo-web-1 -- sh    .venv/bin/corral hosts ls    .venv/bin/corral tokens create
TXT

if [ -n "$server_pid" ]; then
    echo "Press Ctrl-C to stop (removes the hosts this run created)."
    trap 'exit 0' INT TERM
    wait "$server_pid"
fi
