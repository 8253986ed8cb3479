#!/usr/bin/env bash
# Real software images from Debian packages (issue 19): one debootstrap minbase root filesystem, cached, then one
# image per package set installed into a copy of it and imported into the root dockerd. Local hosts get them as they
# get corral/busybox (CORRAL_LOCAL_IMAGES, default corral/*).
#
# Why debootstrap and not a registry: no container registry is reachable here, Debian's mirror is. The rootfs is made
# once (about 90 s) and reused for every image; an image is rebuilt only when its recipe label changes.
# Usage: scripts/images.sh [NAME...]   (default: every image below); needs root and a running dockerd.
set -euo pipefail

DOCKER="${DOCKER:-docker}"
CACHE="${CORRAL_IMAGE_CACHE:-/var/cache/corral/images}"
SUITE=bookworm
MIRROR="${CORRAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { echo "images: $*"; }

# name -> "packages|CMD as JSON"
declare -A IMAGES=(
    [haproxy]='haproxy|["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
    # the catalog's redis-web (issue 19 item 5): nginx in front, Redis behind webdis (Redis over HTTP)
    [nginx]='nginx|["nginx", "-g", "daemon off;"]'
    [redis]='redis-server|["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]'
    [webdis]='webdis|["webdis", "/etc/webdis/webdis.json"]'
)
RECIPE=2

base_rootfs() {
    local base="$CACHE/$SUITE-minbase"
    if [ ! -f "$base/.complete" ]; then
        command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
        rm -rf "$base"
        mkdir -p "$CACHE"
        log "debootstrap --variant=minbase $SUITE (once, cached in $base)" >&2  # stdout is the answer
        debootstrap --variant=minbase "$SUITE" "$base" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1
        chroot "$base" apt-get clean
        touch "$base/.complete"
    fi
    echo "$base"
}

build() {
    local name="$1" spec="${IMAGES[$1]}"
    local packages="${spec%%|*}" cmd="${spec#*|}" image="corral/$1:latest"
    local have
    have="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.corral.image-recipe"}}' "$image" 2>/dev/null || true)"
    if [ "$have" = "$RECIPE:$packages" ]; then
        log "$image present"
        return
    fi
    local base work
    base="$(base_rootfs)"
    work="$(mktemp -d "$CACHE/build-$name.XXXX")"
    trap 'rm -rf "$work"' RETURN
    cp -a "$base/." "$work/"
    rm -f "$work/.complete"
    # no service starts inside the chroot; no recommends; no caches left in the image
    printf '#!/bin/sh\nexit 101\n' >"$work/usr/sbin/policy-rc.d" && chmod +x "$work/usr/sbin/policy-rc.d"
    log "installing $packages into $image"
    chroot "$work" sh -c "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends $packages >/dev/null"
    chroot "$work" apt-get clean
    rm -rf "$work"/var/lib/apt/lists/* "$work/usr/sbin/policy-rc.d" "$work"/usr/share/doc/* "$work"/usr/share/man/*
    mkdir -p "$work/usr/local/etc/$name"
    if [ "$name" = haproxy ]; then
        # until the agent writes the real one (agent/lb.py): only the LB's health check on port 42
        cat >"$work/usr/local/etc/haproxy/haproxy.cfg" <<'CFG'
global
    stats socket /var/run/haproxy.sock mode 600 level admin expose-fd listeners
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend health
    bind *:42
    mode http
    monitor-uri /
CFG
    fi
    if [ "$name" = webdis ]; then
        # in the foreground, logging to the container's output, Redis at the name `redis` (a link or a service)
        cat >"$work/etc/webdis/webdis.json" <<'CFG'
{
    "redis_host": "redis",
    "redis_port": 6379,
    "http_host": "0.0.0.0",
    "http_port": 7379,
    "threads": 2,
    "daemonize": false,
    "database": 0,
    "acl": [{"disabled": ["DEBUG", "CONFIG", "SHUTDOWN", "FLUSHALL", "FLUSHDB", "KEYS", "MONITOR", "SLAVEOF", "REPLICAOF"]}],
    "verbosity": 3,
    "logfile": "/dev/stdout"
}
CFG
    fi
    tar -C "$work" -c . | "$DOCKER" import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c "CMD $cmd" -c "LABEL io.corral.image-recipe=$RECIPE:$packages" - "$image" >/dev/null
    log "$image built ($("$DOCKER" image inspect -f '{{.Size}}' "$image") bytes)"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!IMAGES[@]}")
for name in "${names[@]}"; do
    build "$name"
done
