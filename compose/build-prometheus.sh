#!/usr/bin/env bash
# Build the compose lab's Prometheus image (Debian's prometheus package on the lab's base
# image, compose/Dockerfile.prometheus); skipped when the image's meshlab.inputs label matches
# (Dockerfile, prometheus.yml, base image id).
#
# Usage: compose/build-prometheus.sh [BASE_IMAGE]   (default: compose/.build/base-image)
# Environment: PROMETHEUS_IMAGE (meshlab-prometheus:latest), DOCKER (docker).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${PROMETHEUS_IMAGE:-meshlab-prometheus:latest}"
DOCKER="${DOCKER:-docker}"
CONTEXT="${HERE}/.build/prometheus"

run_log() {
    echo "[build-prometheus] $*" >&2
}

BASE="${1:-}"
if [[ -z "$BASE" ]]; then
    BASE="$("${HERE}/build-base.sh")"
fi
BASE_ID="$("$DOCKER" image inspect -f '{{.Id}}' "$BASE")"
INPUTS="$(
    {
        sha256sum "${HERE}/Dockerfile.prometheus" "${HERE}/prometheus.yml" | cut -d' ' -f1
        echo "$BASE $BASE_ID"
    } | sha256sum | cut -d' ' -f1
)"
CURRENT="$("$DOCKER" image inspect -f '{{index .Config.Labels "meshlab.inputs"}}' "$IMAGE" 2>/dev/null || true)"
if [[ "$CURRENT" == "$INPUTS" ]]; then
    run_log "${IMAGE} is up to date (inputs ${INPUTS:0:12})"
    exit 0
fi
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
cp "${HERE}/prometheus.yml" "$CONTEXT/"
START=$(date +%s)
run_log "docker build ${IMAGE} FROM ${BASE}: Debian's prometheus package"
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" "$DOCKER" build \
    --build-arg "BASE_IMAGE=${BASE}" \
    --label "meshlab.inputs=${INPUTS}" \
    -f "${HERE}/Dockerfile.prometheus" \
    -t "$IMAGE" \
    "$CONTEXT" >&2
run_log "built ${IMAGE} in $(($(date +%s) - START)) s"
