#!/usr/bin/env bash
# Build meshlab:latest, the one image of every lab container, from compose/Dockerfile.
#
# Steps (each logged, each skipped when up to date); what does not depend on the other runs
# beside it, its lines prefixed with its name:
#   1. the base image (compose/build-base.sh: official Python image, else offline
#      mmdebstrap/debootstrap), while the wheelhouse (compose/build-wheelhouse.sh, pip from
#      PyPI: it needs no image) downloads beside it;
#   2. on that base, the lab's Prometheus image (compose/build-prometheus.sh, Debian's package)
#      in the background, while steps 3 and 4 run: it is waited for at the end;
#   3. stage the build context in compose/.build/context: app/ holds exactly the repository
#      files the image runs (laid out as in git), compose/wheelhouse/ the wheels. This
#      machine's Docker has no BuildKit, and the legacy builder reads only
#      <context>/.dockerignore, so the repository root (with .venv and friends) is never sent;
#   4. `docker build`, skipped when compose/.build/image-inputs-<image> records the current
#      meshlab:latest's id with the same inputs (hash of the staged context, the Dockerfile
#      and the base image id); otherwise the layer cache rebuilds only the layers after the
#      first changed COPY.
#
# Environment: MESHLAB_IMAGE (meshlab:latest; IMAGE is an older spelling), DOCKER (docker),
# plus those of the three scripts above.
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

# in_background NAME CMD...: CMD's output on stderr, each line not already tagged [NAME]
# prefixed with it; $! is its pid. pipefail (inherited) makes the job fail when CMD does.
in_background() {
    local name="$1"
    shift
    ("$@" 2>&1 | sed -u "/^\[${name}\]/!s/^/[${name}] /" >&2) &
}
# On any exit, let the background steps finish first: no build outlives this script.
trap 'wait' EXIT

# wait_step NAME PID: the background step's status; an error stops the build.
wait_step() {
    if ! wait "$2"; then
        run_log "ERROR: $1 failed (its lines above are prefixed [$1])"
        exit 1
    fi
}

START=$(date +%s)
run_log "step 1/4: base image, and beside it step 2/4: the wheelhouse"
in_background build-wheelhouse "${HERE}/build-wheelhouse.sh"
WHEELHOUSE_PID=$!
BASE="$("${HERE}/build-base.sh")"

run_log "the Prometheus image (Debian's package on ${BASE}) in the background"
in_background build-prometheus "${HERE}/build-prometheus.sh" "$BASE"
PROMETHEUS_PID=$!

wait_step build-wheelhouse "$WHEELHOUSE_PID"
run_log "step 3/4: staging the build context in ${CONTEXT}"
rm -rf "$CONTEXT"
mkdir -p "${CONTEXT}/compose" "${CONTEXT}/app"
for src in "${SOURCES[@]}"; do
    if [[ ! -e "${ROOT}/${src}" ]]; then
        run_log "ERROR: ${ROOT}/${src} is missing"
        exit 1
    fi
done
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' --exclude=.pytest_cache \
    -cf - "${SOURCES[@]}" | tar -C "${CONTEXT}/app" -xf -
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
# Which inputs the image was built from: "<inputs> <image id>" in a stamp beside the context,
# not a `--label` (the legacy builder adds a label as one more step, ~10 s of layer diffing
# here, cold or warm). The image id makes it exact: an image of that name built by anyone
# else, or from other inputs, has another id.
STAMP="${HERE}/.build/image-inputs-$(printf '%s' "$IMAGE" | tr -c 'A-Za-z0-9._-' '_')"
IMAGE_ID="$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [[ -n "$IMAGE_ID" && -f "$STAMP" && "$(cat "$STAMP")" == "${INPUTS} ${IMAGE_ID}" ]]; then
    run_log "step 4/4: ${IMAGE} is up to date (inputs ${INPUTS:0:12}); skipping docker build"
    wait_step build-prometheus "$PROMETHEUS_PID"
    exit 0
fi

run_log "step 4/4: docker build ${IMAGE} FROM ${BASE} (inputs ${INPUTS:0:12})"
BUILD_START=$(date +%s)
rm -f "$STAMP"
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" run_cmd "$DOCKER" build \
    --build-arg "BASE_IMAGE=${BASE}" \
    -f "${HERE}/Dockerfile" \
    -t "$IMAGE" \
    "$CONTEXT" >&2
echo "${INPUTS} $("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE")" >"$STAMP"
BUILT="built ${IMAGE} in $(($(date +%s) - BUILD_START)) s"
BUILT+=", size $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
run_log "$BUILT; waiting for the Prometheus image"
wait_step build-prometheus "$PROMETHEUS_PID"
run_log "images ready in $(($(date +%s) - START)) s in all"
