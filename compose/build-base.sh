#!/usr/bin/env bash
# Produce the base image every meshlab container is built FROM.
#
# Order of preference (the first that works wins; nothing is rebuilt that exists):
#   1. $BASE_IMAGE (default python:3.11-slim-bookworm) already present locally;
#   2. the offline base $OFFLINE_BASE_IMAGE (default meshlab-base:bookworm) already present;
#   3. `docker pull $BASE_IMAGE` (bounded by $PULL_TIMEOUT seconds);
#   4. build the offline base: a minimal Debian bookworm (minbase) with python3, python3-venv,
#      ca-certificates and curl from the mirror the host's own apt uses, then `docker import`
#      it. With mmdebstrap (Debian's package; installed with apt-get when missing, like
#      debootstrap before it) this takes about 35 s here: apt resolves and downloads in one go,
#      it unpacks in a tmpfs, and the tarball streams straight into `docker import`.
#      debootstrap, the fallback, gives the same packages and files in about 110 s.
#
# The chosen image name is written to compose/.build/base-image (one line), which the
# Makefile passes to `docker build --build-arg BASE_IMAGE=...`; it is also printed last on
# stdout. All log lines go to stderr.
#
# Environment: BASE_IMAGE, OFFLINE_BASE_IMAGE, DEBIAN_SUITE (bookworm), DEBIAN_MIRROR
# (default: read from /etc/apt), PULL_TIMEOUT (60), FORCE_OFFLINE_BASE=1 (skip 1 and 3),
# BOOTSTRAP (auto: mmdebstrap, installed if missing, else debootstrap; or mmdebstrap or
# debootstrap to insist on one).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${HERE}/.build"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
OFFLINE_BASE_IMAGE="${OFFLINE_BASE_IMAGE:-meshlab-base:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
PULL_TIMEOUT="${PULL_TIMEOUT:-60}"
FORCE_OFFLINE_BASE="${FORCE_OFFLINE_BASE:-0}"
BOOTSTRAP="${BOOTSTRAP:-auto}"
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
    run_log "cannot pull ${BASE_IMAGE}: building ${OFFLINE_BASE_IMAGE} offline (mmdebstrap, else debootstrap)"
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
        run_log "mmdebstrap/debootstrap need root: using sudo"
    else
        run_log "ERROR: mmdebstrap/debootstrap need root and sudo is missing; run this script as root once"
        exit 1
    fi
fi

# Both bootstrappers come from Debian's packages; apt-get installs the missing one.
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        run_log "no apt-get here to install $*"
        return 1
    fi
    run_cmd $SUDO apt-get update -q >&2 \
        && run_cmd $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "$@" >&2
}

# mmdebstrap's hook that makes /bin, /lib, /sbin symlinks into /usr and installs
# usr-is-merged, as debootstrap does (without it apt picks the usrmerge package, and perl).
MERGED_USR_HOOK=/usr/share/mmdebstrap/hooks/merged-usr
have_mmdebstrap() {
    command -v mmdebstrap >/dev/null 2>&1 && [[ -d "$MERGED_USR_HOOK" ]]
}

case "$BOOTSTRAP" in
    auto)
        if ! have_mmdebstrap; then
            run_log "mmdebstrap is missing: installing it with apt-get (debootstrap if that fails)"
            apt_install mmdebstrap || true
        fi
        if have_mmdebstrap; then BOOTSTRAP=mmdebstrap; else BOOTSTRAP=debootstrap; fi
        ;;
    mmdebstrap)
        have_mmdebstrap || apt_install mmdebstrap
        if ! have_mmdebstrap; then
            run_log "ERROR: BOOTSTRAP=mmdebstrap but mmdebstrap (with ${MERGED_USR_HOOK}) is missing"
            exit 1
        fi
        ;;
    debootstrap) ;;
    *)
        run_log "ERROR: BOOTSTRAP=${BOOTSTRAP}: say auto, mmdebstrap or debootstrap"
        exit 1
        ;;
esac

MIRROR="$(host_mirror)"
PACKAGES=python3,python3-venv,ca-certificates,curl
# What the image does not need: apt's caches and lists, docs, man and info pages, logs.
# (Globs, expanded inside the root file system.)
TRIM='var/cache/apt/archives/*.deb var/lib/apt/lists/* usr/share/doc/* usr/share/man/*'
TRIM+=' usr/share/info/* var/log/*.log'
IMPORT_ARGS=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change 'CMD ["python3"]'
    --message "meshlab offline base: ${BOOTSTRAP} ${DEBIAN_SUITE} minbase + python3 from ${MIRROR}"
)
START=$(date +%s)

# Where mmdebstrap unpacks (~300 MB, removed when done): /dev/shm when it is a tmpfs with
# room and without nodev/noexec (RAM: no disk I/O, no fsync; 33 s instead of 60 s here),
# else $TMPDIR. BOOTSTRAP_TMPDIR chooses.
bootstrap_tmpdir() {
    local options avail
    if [[ -n "${BOOTSTRAP_TMPDIR:-}" ]]; then
        echo "$BOOTSTRAP_TMPDIR"
        return
    fi
    options="$(findmnt -n -o FSTYPE,OPTIONS --target /dev/shm 2>/dev/null || true)"
    avail="$(df --output=avail -k /dev/shm 2>/dev/null | tail -n1 || echo 0)"
    if [[ "$options" == tmpfs* && "$options" != *nodev* && "$options" != *noexec* \
          && -w /dev/shm && "${avail// /}" -ge 1048576 ]]; then
        echo /dev/shm
    else
        echo "${TMPDIR:-/tmp}"
    fi
}

if [[ "$BOOTSTRAP" == mmdebstrap ]]; then
    UNPACK_DIR="$(bootstrap_tmpdir)"
    HOOKS=(--hook-dir="$MERGED_USR_HOOK")
    # On a disk, mmdebstrap's eatmydata hook runs dpkg without fsync while it builds (~10%
    # faster here) and takes itself out again: the same files either way. It needs
    # dpkg-architecture (dpkg-dev).
    EATMYDATA_HOOK=/usr/share/mmdebstrap/hooks/eatmydata
    if [[ "$UNPACK_DIR" != /dev/shm && -d "$EATMYDATA_HOOK" ]] \
        && command -v dpkg-architecture >/dev/null 2>&1; then
        HOOKS+=(--hook-dir="$EATMYDATA_HOOK")
    fi
    # The tarball goes to stdout and straight into docker import: no rootfs to tar or remove.
    run_log "mmdebstrap ${DEBIAN_SUITE} from ${MIRROR} in ${UNPACK_DIR} | docker import - ${OFFLINE_BASE_IMAGE}"
    $SUDO env TMPDIR="$UNPACK_DIR" mmdebstrap --variant=minbase --include="$PACKAGES" "${HOOKS[@]}" \
        --customize-hook="cd \"\$1\" && rm -rf ${TRIM}" \
        "$DEBIAN_SUITE" - "$MIRROR" \
        | run_cmd "$DOCKER" import "${IMPORT_ARGS[@]}" - "$OFFLINE_BASE_IMAGE" >&2
    run_log "built ${OFFLINE_BASE_IMAGE} in $(($(date +%s) - START)) s"
    use_image "$OFFLINE_BASE_IMAGE"
fi

if ! command -v debootstrap >/dev/null 2>&1 && [[ ! -x /usr/sbin/debootstrap ]]; then
    run_log "debootstrap is missing: installing it with apt-get"
    apt_install debootstrap
fi
DEBOOTSTRAP="$(command -v debootstrap || echo /usr/sbin/debootstrap)"

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meshlab-rootfs.XXXXXX")"
ROOTFS="${WORK}/rootfs"
cleanup() {
    run_log "removing ${WORK}"
    $SUDO rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

run_log "debootstrap ${DEBIAN_SUITE} from ${MIRROR} into ${ROOTFS}"
run_cmd $SUDO "$DEBOOTSTRAP" --variant=minbase --include="$PACKAGES" \
    "$DEBIAN_SUITE" "$ROOTFS" "$MIRROR" >&2

run_log "trimming apt caches, docs and man pages"
# shellcheck disable=SC2086  # TRIM holds globs for this directory
(cd "$ROOTFS" && $SUDO rm -rf $TRIM)
# debootstrap already wrote sources.list: apt inside the image uses the same mirror.

run_log "importing ${ROOTFS} as ${OFFLINE_BASE_IMAGE}"
$SUDO tar -C "$ROOTFS" --numeric-owner -c . \
    | run_cmd "$DOCKER" import "${IMPORT_ARGS[@]}" - "$OFFLINE_BASE_IMAGE" >&2
run_log "built ${OFFLINE_BASE_IMAGE} in $(($(date +%s) - START)) s"
use_image "$OFFLINE_BASE_IMAGE"
