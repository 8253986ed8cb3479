#!/usr/bin/env bash
# Prepare this machine for Corral's demo and tests: OS packages, the Python venv, a running root dockerd and the
# local test image `corral/busybox:latest`.
#
# Why a script and not docs: CI runs on a fresh clone (and possibly a fresh machine) as root with nothing
# started, so everything the tests need must come from here. It is idempotent: each step checks first and is
# skipped when already done, so `make test` stays fast on a prepared machine.
#
# Storage drivers (checked on this machine, 2026-11-28, Docker 20.10, kernel 6.x, cgroup v1 hybrid):
#   - the root fs here is ext4, and dockerd's default choice (overlay2) works both for the root dockerd and for the
#     nested per-host dockerds (their --data-root lives under the data dir on the same ext4 fs; they share the
#     root mount namespace, only the network namespace differs), so no --storage-driver flag is needed;
#   - on a machine whose /var/lib is itself overlayfs (e.g. docker-in-docker CI), overlay2 on overlay fails;
#     then we pass `--storage-driver vfs` (slow and big, but always works). corral.provision.local makes the
#     same check for each nested dockerd's data root. CORRAL_DOCKER_STORAGE_DRIVER overrides the choice.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO="$(pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: must run as root (installs packages, starts dockerd)" >&2
    exit 1
fi

# One setup at a time on this machine (two engineers or CI may call `make test` together).
exec 9>/var/lock/corral-setup.lock
flock 9

log() { echo "setup: $*"; }

# --- 1. OS packages ------------------------------------------------------------------------------------------
PACKAGES=(docker.io busybox-static iproute2 iptables util-linux procps git make python3-venv ca-certificates postgresql
          docker-registry apache2-utils docker-compose)
# The encrypted overlay: userspace WireGuard (no kernel module here) and its tools; tcpdump proves what is on the wire.
PACKAGES+=(wireguard-go wireguard-tools tcpdump curl xz-utils)
# The web UI's browser tests drive Debian's Chromium (Playwright with executable_path); its assets come from npm.
PACKAGES+=(chromium fonts-dejavu-core)
# LDAP as an identity source: the tests start their own OpenLDAP (slapd) on loopback; ldap-utils for operators.
PACKAGES+=(slapd ldap-utils)
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi
missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    log "installing ${missing[*]}"
    # apt-get update only when needed: no package lists yet, or the install fails on stale lists.
    if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
        apt-get update -q
    fi
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
else
    log "OS packages present"
fi

# --- 1b. wireguard-go with offloads -------------------------------------------------------------------------
# Debian 12's wireguard-go (0.0.20220316) has no TUN GSO/GRO and no batched UDP I/O: the encrypted overlay ran at
# 0.05x plain VXLAN (bench N1). Trixie's build (0.0.20231211, needs only libc6 >= 2.34) has both. Only that one .deb
# is taken from trixie (checked against the SHA256 of trixie's package index), no apt source changes for the system.
WG_GO_MIN=0.0.20231211
wg_have="$(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || true)"
if [ -n "$wg_have" ] && dpkg --compare-versions "$wg_have" ge "$WG_GO_MIN"; then
    log "wireguard-go $wg_have present"
else
    arch="$(dpkg --print-architecture)"
    mirror=http://deb.debian.org/debian
    wgtmp="$(mktemp -d)"
    log "installing wireguard-go >= $WG_GO_MIN from trixie ($arch; have ${wg_have:-none})"
    curl -fsS --retry 3 -o "$wgtmp/Packages.xz" "$mirror/dists/trixie/main/binary-$arch/Packages.xz"
    read -r wg_file wg_sum < <(xz -dc "$wgtmp/Packages.xz" | awk '
        /^Package: / {p = ($2 == "wireguard-go")} p && /^Filename: / {f = $2} p && /^SHA256: / {s = $2}
        /^$/ && p && f {print f, s; exit}')
    curl -fsS --retry 3 -o "$wgtmp/wireguard-go.deb" "$mirror/$wg_file"
    echo "$wg_sum  $wgtmp/wireguard-go.deb" | sha256sum -c --quiet -
    dpkg -i "$wgtmp/wireguard-go.deb" >/dev/null
    rm -rf "$wgtmp"
    log "wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go) installed"
fi

# --- 2. Python venv ------------------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install (or the package is not importable).
stamp=".venv/.corral-setup-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ] || ! .venv/bin/python -c 'import corral, pytest, ruff, mypy, importlinter' 2>/dev/null; then
    log "pip install -e '.[dev,bench]'"
    .venv/bin/python -m pip install -q -e '.[dev,bench]'
    echo "$want" >"$stamp"
else
    log "venv up to date"
fi

# --- 2b. web UI assets (htmx, xterm.js) from the npm registry, per the lock file -------------------------------
assets="src/corral/web/assets"
assets_stamp="$assets/node_modules/.corral-lock-stamp"
want="$(sha256sum "$assets/package-lock.json" | cut -d' ' -f1)"
if [ "$want" != "$(cat "$assets_stamp" 2>/dev/null || true)" ]; then
    log "npm ci (web UI assets)"
    (cd "$assets" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$assets_stamp"
else
    log "web UI assets up to date"
fi

# --- 3. root dockerd -----------------------------------------------------------------------------------------
# Debian's client (/usr/bin/docker, 20.10) matches the engine; /usr/local/bin/docker may be a newer client that
# also works (it negotiates the API version) but we prefer the matching one.
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_HOST=unix:///var/run/docker.sock

docker_answers() { "$DOCKER" version >/dev/null 2>&1; }

storage_driver_flags() {
    if [ -n "${CORRAL_DOCKER_STORAGE_DRIVER:-}" ]; then
        echo "--storage-driver=${CORRAL_DOCKER_STORAGE_DRIVER}"
        return
    fi
    if [ -f /etc/docker/daemon.json ] && grep -q '"storage-driver"' /etc/docker/daemon.json; then
        return  # configured there; a flag too would make dockerd refuse to start
    fi
    local dir=/var/lib/docker
    while [ ! -d "$dir" ]; do dir="$(dirname "$dir")"; done
    if [ "$(stat -f -c %T "$dir")" = "overlayfs" ]; then
        echo "--storage-driver=vfs"
    fi
}

if docker_answers; then
    log "dockerd answers on /var/run/docker.sock"
else
    pidfile=/var/run/docker.pid
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "dockerd (pid $(cat "$pidfile")) is starting; waiting"
    else
        rm -f "$pidfile"
        read -r -a sd_flags <<<"$(storage_driver_flags)"
        log "starting dockerd ${sd_flags[*]:-} (log: /var/log/corral-dockerd.log)"
        # setsid: its own session, so it outlives this script, make and the CI step that started it;
        # 9>&-: it must not inherit the setup lock, or every later setup.sh would wait for it forever.
        setsid /usr/sbin/dockerd --pidfile "$pidfile" -H unix:///var/run/docker.sock "${sd_flags[@]}" \
            </dev/null >>/var/log/corral-dockerd.log 2>&1 9>&- &
    fi
    for _ in $(seq 1 120); do
        docker_answers && break
        sleep 0.5
    done
    if ! docker_answers; then
        echo "setup.sh: dockerd did not answer within 60 s; last log lines:" >&2
        tail -n 30 /var/log/corral-dockerd.log >&2 || true
        exit 1
    fi
    log "dockerd up (storage driver: $("$DOCKER" info --format '{{.Driver}}'))"
fi

# --- 4. local test image -------------------------------------------------------------------------------------
# The recipe label lets a changed recipe (or an image someone built by hand) be replaced by this one.
IMAGE=corral/busybox:latest
RECIPE=1
have_recipe="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.corral.image-recipe"}}' "$IMAGE" 2>/dev/null || true)"
if [ "$have_recipe" = "$RECIPE" ]; then
    log "$IMAGE present"
else
    log "building $IMAGE from busybox-static"
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs"/{bin,etc,www,root,proc,sys,dev,var}
    install -d -m 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
    echo 'corral busybox' >"$rootfs/www/index.html"
    tar -C "$rootfs" -c . | "$DOCKER" import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["/bin/sh"]' -c "LABEL io.corral.image-recipe=$RECIPE" - "$IMAGE" >/dev/null
    log "$IMAGE built"
fi

# --- 5. arm64 containers (qemu binfmt) and corral/busybox-arm64:latest -------------------------------------
# Only the heterogeneous-host tests need it; if it fails they fail with a clear message, the rest still runs.
if ! bash scripts/setup-arm64.sh; then
    log "WARNING: arm64 setup failed (see above); tests/integration/test_heterogeneous.py will fail"
fi

# --- 6. real software images (issue 19): corral/haproxy from a cached debootstrap minbase ---------------------
if ! DOCKER="$DOCKER" bash scripts/images.sh; then
    log "WARNING: building the Debian images failed (see above); the load balancer tests will fail"
fi

log "done ($REPO)"
