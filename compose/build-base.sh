#!/usr/bin/env bash
# Produce the base image every meshlab container is built FROM.
#
# Order of preference (the first that works wins; nothing is rebuilt that exists):
#   1. $BASE_IMAGE (default python:3.11-slim-bookworm) already present locally;
#   2. the offline base $OFFLINE_BASE_IMAGE (default meshlab-base:bookworm) already present;
#   3. `docker pull $BASE_IMAGE` (bounded by $PULL_TIMEOUT seconds);
#   4. build the offline base: debootstrap a minimal Debian bookworm with python3, python3-venv
#      and ca-certificates from the mirror the host's own apt uses, then `docker import` it.
#
# The chosen image name is written to compose/.build/base-image (one line), which the
# Makefile passes to `docker build --build-arg BASE_IMAGE=...`; it is also printed last on
# stdout. All log lines go to stderr.
#
# Environment: BASE_IMAGE, OFFLINE_BASE_IMAGE, DEBIAN_SUITE (bookworm), DEBIAN_MIRROR
# (default: read from /etc/apt), PULL_TIMEOUT (60), FORCE_OFFLINE_BASE=1 (skip 1 and 3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${HERE}/.build"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
OFFLINE_BASE_IMAGE="${OFFLINE_BASE_IMAGE:-meshlab-base:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
PULL_TIMEOUT="${PULL_TIMEOUT:-60}"
FORCE_OFFLINE_BASE="${FORCE_OFFLINE_BASE:-0}"
DOCKER="${DOCKER:-docker}"

run_log() {
    echo "[build-base] $*" >&2
}

run_cmd() {
    echo "[build-base] \$ $*" >&2
    "$@"
}

image_exists() {
    "$DOCKER" image inspect "$1" >/dev/null 2>&1
}

use_image() {
    mkdir -p "$BUILD_DIR"
    printf '%s\n' "$1" >"${BUILD_DIR}/base-image"
    run_log "base image: $1 (recorded in ${BUILD_DIR}/base-image)"
    echo "$1"
    exit 0
}

# The Debian mirror the host's apt already uses (deb822 .sources first, then one-line lists).
host_mirror() {
    local f uri
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        # First URIs: line of a stanza that is not the security archive.
        uri="$(awk '
            /^[[:space:]]*$/ { if (u != "" && s !~ /security/) { print u; exit } u = ""; s = ""; next }
            /^URIs:/ { u = $2 }
            /^Suites:/ { s = $0 }
            END { if (u != "" && s !~ /security/) print u }
        ' "$f" | head -n1)"
        if [[ -n "$uri" && "$uri" != *security* ]]; then
            echo "$uri"
            return
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' "$f" \
            | grep -v security | head -n1 || true)"
        if [[ -n "$uri" ]]; then
            echo "$uri"
            return
        fi
    done
    echo "http://deb.debian.org/debian"
}

if [[ "$FORCE_OFFLINE_BASE" != "1" ]] && image_exists "$BASE_IMAGE"; then
    run_log "found ${BASE_IMAGE} locally"
    use_image "$BASE_IMAGE"
fi

if image_exists "$OFFLINE_BASE_IMAGE"; then
    run_log "found offline base ${OFFLINE_BASE_IMAGE} locally, reusing it (docker rmi it to rebuild)"
    use_image "$OFFLINE_BASE_IMAGE"
fi

if [[ "$FORCE_OFFLINE_BASE" != "1" ]]; then
    run_log "trying to pull ${BASE_IMAGE} (timeout ${PULL_TIMEOUT}s)"
    if timeout "$PULL_TIMEOUT" "$DOCKER" pull "$BASE_IMAGE" >&2; then
        use_image "$BASE_IMAGE"
    fi
    run_log "cannot pull ${BASE_IMAGE}: building ${OFFLINE_BASE_IMAGE} offline with debootstrap"
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
        run_log "debootstrap needs root: using sudo"
    else
        run_log "ERROR: debootstrap needs root and sudo is missing; run this script as root once"
        exit 1
    fi
fi

if ! command -v debootstrap >/dev/null 2>&1 && [[ ! -x /usr/sbin/debootstrap ]]; then
    run_log "debootstrap is missing: installing it with apt-get"
    run_cmd $SUDO apt-get update -q >&2
    run_cmd $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi
DEBOOTSTRAP="$(command -v debootstrap || echo /usr/sbin/debootstrap)"

MIRROR="$(host_mirror)"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meshlab-rootfs.XXXXXX")"
ROOTFS="${WORK}/rootfs"
cleanup() {
    run_log "removing ${WORK}"
    $SUDO rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

START=$(date +%s)
run_log "debootstrap ${DEBIAN_SUITE} from ${MIRROR} into ${ROOTFS}"
run_cmd $SUDO "$DEBOOTSTRAP" --variant=minbase \
    --include=python3,python3-venv,ca-certificates,curl \
    "$DEBIAN_SUITE" "$ROOTFS" "$MIRROR" >&2

run_log "trimming apt caches, docs and man pages"
$SUDO rm -rf "${ROOTFS}/var/cache/apt/archives/"*.deb \
    "${ROOTFS}/var/lib/apt/lists/"* \
    "${ROOTFS}/usr/share/doc/"* \
    "${ROOTFS}/usr/share/man/"* \
    "${ROOTFS}/usr/share/info/"* \
    "${ROOTFS}/var/log/"*.log
# Point apt inside the image at the same mirror (debootstrap already wrote sources.list).

run_log "importing ${ROOTFS} as ${OFFLINE_BASE_IMAGE}"
$SUDO tar -C "$ROOTFS" --numeric-owner -c . | run_cmd "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "meshlab offline base: debootstrap ${DEBIAN_SUITE} minbase + python3 from ${MIRROR}" \
    - "$OFFLINE_BASE_IMAGE" >&2
run_log "built ${OFFLINE_BASE_IMAGE} in $(($(date +%s) - START)) s"
use_image "$OFFLINE_BASE_IMAGE"
