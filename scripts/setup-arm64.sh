#!/usr/bin/env bash
# Prepare this x86_64 machine to run arm64 containers: qemu-user-static through binfmt_misc, and the local test
# image `corral/busybox-arm64:latest` whose image config says `"architecture": "arm64"`.
#
# Why a script of its own: scripts/setup.sh calls it and, when it fails (no network for the arm64 package lists,
# no binfmt_misc in this kernel or container), only warns; the heterogeneous-host tests then fail with a clear
# message instead of the whole setup. A separate process also keeps `set -e` in force here (bash ignores it inside
# a function called from an `if`). Idempotent: every step checks first.
#
# Pitfalls (verified on Debian 12, Docker 20.10):
#   - without systemd nobody mounts binfmt_misc or registers the qemu handlers: we do both by hand. Debian's
#     /usr/lib/binfmt.d/qemu-aarch64.conf carries the `F` flag (the interpreter is opened at registration), which
#     is what lets binaries inside containers and network namespaces find it; we add it if a release drops it;
#   - `docker import --platform linux/arm64` leaves the image's architecture at amd64 on Docker 20.10, so the image
#     is written as a docker-archive (layer tar + config JSON + manifest.json) and `docker load`ed.
set -euo pipefail

cd "$(dirname "$0")/.."

IMAGE=corral/busybox-arm64:latest
RECIPE=1
BINFMT_CONF=/usr/lib/binfmt.d/qemu-aarch64.conf
BINFMT_DIR=/proc/sys/fs/binfmt_misc

log() { echo "setup-arm64: $*"; }
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_HOST=unix:///var/run/docker.sock

# --- 1. qemu-user-static and binfmt-support ----------------------------------------------------------------
missing=()
for pkg in qemu-user-static binfmt-support; do
    if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    log "installing ${missing[*]}"
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi

# --- 2. binfmt_misc and the qemu-aarch64 handler -------------------------------------------------------------
if [ ! -e "$BINFMT_DIR/register" ]; then
    log "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR"
fi
if [ -e "$BINFMT_DIR/qemu-aarch64" ]; then
    log "qemu-aarch64 handler registered"
else
    line="$(grep -v '^#' "$BINFMT_CONF" | grep -m1 '^:qemu-aarch64:')"
    flags="${line##*:}"
    case "$flags" in *F*) ;; *) line="${line}F" ;; esac
    log "registering qemu-aarch64 (flags ${line##*:})"
    printf '%s' "$line" >"$BINFMT_DIR/register"
fi
if ! grep -qx enabled "$BINFMT_DIR/qemu-aarch64"; then
    echo "setup-arm64: the qemu-aarch64 handler is registered but not enabled" >&2
    exit 1
fi

# --- 3. the arm64 busybox image ------------------------------------------------------------------------------
have_recipe="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.corral.image-recipe"}}' "$IMAGE" 2>/dev/null || true)"
have_arch="$("$DOCKER" image inspect -f '{{.Architecture}}' "$IMAGE" 2>/dev/null || true)"
if [ "$have_recipe" = "$RECIPE" ] && [ "$have_arch" = arm64 ]; then
    log "$IMAGE present"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt-get download runs as _apt where it can

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
fi
# The arm64 package lists arrive only with an update after adding the architecture.
if ! (cd "$work" && apt-get download -q busybox-static:arm64 >/dev/null 2>&1); then
    log "apt-get update (arm64 package lists)"
    apt-get update -q
    (cd "$work" && apt-get download -q busybox-static:arm64)
fi
dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/pkg"

rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,www,root,proc,sys,dev,var}
install -d -m 1777 "$rootfs/tmp"
cp "$work/pkg/bin/busybox" "$rootfs/bin/busybox"
# The amd64 busybox-static of the same release lists the same applets (setup.sh installed it).
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
echo 'corral busybox arm64' >"$rootfs/www/index.html"

archive="$work/archive"
mkdir -p "$archive/layer"
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf "$archive/layer/layer.tar" .
diff_id="sha256:$(sha256sum "$archive/layer/layer.tar" | cut -d' ' -f1)"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cat >"$archive/config.json" <<EOF
{
  "architecture": "arm64",
  "variant": "v8",
  "os": "linux",
  "created": "$created",
  "config": {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["/bin/sh"],
    "Labels": {"io.corral.image-recipe": "$RECIPE"}
  },
  "rootfs": {"type": "layers", "diff_ids": ["$diff_id"]},
  "history": [{"created": "$created", "created_by": "scripts/setup-arm64.sh (busybox-static:arm64)"}]
}
EOF
cat >"$archive/manifest.json" <<EOF
[{"Config": "config.json", "RepoTags": ["$IMAGE"], "Layers": ["layer/layer.tar"]}]
EOF
tar -C "$archive" -c . | "$DOCKER" load >/dev/null

have_arch="$("$DOCKER" image inspect -f '{{.Architecture}}' "$IMAGE")"
if [ "$have_arch" != arm64 ]; then
    echo "setup-arm64: $IMAGE was loaded with architecture $have_arch, not arm64" >&2
    exit 1
fi
log "$IMAGE built; $("$DOCKER" run --rm --platform linux/arm64 "$IMAGE" uname -m) inside"
