#!/usr/bin/env bash
# Build meshlab:latest, the one image of every lab container, from compose/Dockerfile.
#
# Steps (each logged, each skipped when up to date):
#   1. the base image (compose/build-base.sh: official Python image, else offline debootstrap),
#      and on it the lab's Prometheus image (compose/build-prometheus.sh, Debian's package);
#   2. the wheelhouse (compose/build-wheelhouse.sh);
#   3. stage the build context in compose/.build/context: exactly the files the Dockerfile
#      copies, laid out as in the repository. This machine's Docker has no BuildKit, and the
#      legacy builder reads only <context>/.dockerignore, so the repository root (with .venv
#      and friends) is never sent as context;
#   4. `docker build`, skipped when meshlab:latest already carries the label
#      meshlab.inputs=<hash of the staged context, the Dockerfile and the base image id>;
#      otherwise the layer cache rebuilds only the layers after the first changed COPY.
#
# Environment: MESHLAB_IMAGE (meshlab:latest; IMAGE is an older spelling), DOCKER (docker), plus those of the two scripts above.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/.." && pwd)"
IMAGE="${MESHLAB_IMAGE:-${IMAGE:-meshlab:latest}}"
DOCKER="${DOCKER:-docker}"
CONTEXT="${HERE}/.build/context"
SOURCES=(pyproject.toml mesh services scenarios loadtests workloads)

run_log() {
    echo "[build-image] $*" >&2
}

run_cmd() {
    echo "[build-image] \$ $*" >&2
    "$@"
}

START=$(date +%s)
run_log "step 1/4: base image"
BASE="$("${HERE}/build-base.sh")"

run_log "step 1/4, part 2: the Prometheus image (Debian's package on that base)"
"${HERE}/build-prometheus.sh" "$BASE"

run_log "step 2/4: wheelhouse"
"${HERE}/build-wheelhouse.sh"

run_log "step 3/4: staging the build context in ${CONTEXT}"
rm -rf "$CONTEXT"
mkdir -p "${CONTEXT}/compose"
for src in "${SOURCES[@]}"; do
    if [[ ! -e "${ROOT}/${src}" ]]; then
        run_log "ERROR: ${ROOT}/${src} is missing"
        exit 1
    fi
done
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' --exclude=.pytest_cache \
    -cf - "${SOURCES[@]}" | tar -C "$CONTEXT" -xf -
cp -a --link "${HERE}/wheelhouse" "${CONTEXT}/compose/wheelhouse" 2>/dev/null \
    || cp -a "${HERE}/wheelhouse" "${CONTEXT}/compose/wheelhouse"
cp "${HERE}/Dockerfile.dockerignore" "${CONTEXT}/.dockerignore"

BASE_ID="$("$DOCKER" image inspect -f '{{.Id}}' "$BASE")"
INPUTS="$(
    {
        (cd "$CONTEXT" && find . -type f ! -name .stamp -print0 | LC_ALL=C sort -z \
            | xargs -0 sha256sum)
        sha256sum "${HERE}/Dockerfile" | cut -d' ' -f1
        echo "$BASE $BASE_ID"
    } | sha256sum | cut -d' ' -f1
)"
CURRENT="$("$DOCKER" image inspect -f '{{index .Config.Labels "meshlab.inputs"}}' "$IMAGE" 2>/dev/null || true)"
if [[ "$CURRENT" == "$INPUTS" ]]; then
    run_log "step 4/4: ${IMAGE} is up to date (inputs ${INPUTS:0:12}); skipping docker build"
    exit 0
fi

run_log "step 4/4: docker build ${IMAGE} FROM ${BASE} (inputs ${INPUTS:0:12})"
BUILD_START=$(date +%s)
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" run_cmd "$DOCKER" build \
    --build-arg "BASE_IMAGE=${BASE}" \
    --label "meshlab.inputs=${INPUTS}" \
    -f "${HERE}/Dockerfile" \
    -t "$IMAGE" \
    "$CONTEXT" >&2
run_log "built ${IMAGE} in $(($(date +%s) - BUILD_START)) s ($(($(date +%s) - START)) s in all);" \
    "size $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
