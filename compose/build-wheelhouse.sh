#!/usr/bin/env bash
# Fill compose/wheelhouse/ with binary wheels of every runtime dependency of meshlab (the
# [project] dependencies plus the `load` extra, i.e. Locust), for CPython 3.11 on manylinux of
# this machine's architecture, so `docker build` installs them with
# `pip install --no-index --find-links` and never needs a registry.
#
# Idempotent: compose/.build/wheelhouse.stamp holds a hash of the requirement list read from
# pyproject.toml, the target platform and this script; when it matches, nothing is downloaded. The project itself is not built as a
# wheel: the image copies its source (mesh/, services/, ...) in its last layers.
#
# Environment: PYTHON (host interpreter with pip; default: the repo's .venv, then python3),
# WHEEL_PYTHON_VERSION (3.11), WHEEL_GLIBC_MINOR (36: bookworm's glibc 2.36; every manylinux tag
# from manylinux_2_<that> down to manylinux1 is accepted, spelled out because older pips do not
# expand it), EXTRAS (load), FORCE=1 (ignore the stamp).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/.." && pwd)"
WHEELHOUSE="${WHEELHOUSE:-${HERE}/wheelhouse}"
PYPROJECT="${ROOT}/pyproject.toml"
WHEEL_PYTHON_VERSION="${WHEEL_PYTHON_VERSION:-3.11}"
ARCH="$(uname -m)"
WHEEL_GLIBC_MINOR="${WHEEL_GLIBC_MINOR:-36}"
EXTRAS="${EXTRAS:-load}"
FORCE="${FORCE:-0}"

run_log() {
    echo "[build-wheelhouse] $*" >&2
}

run_cmd() {
    echo "[build-wheelhouse] \$ $*" >&2
    "$@"
}

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${ROOT}/.venv/bin/python" ]]; then
        PYTHON="${ROOT}/.venv/bin/python"
    else
        PYTHON="python3"
    fi
fi
if ! "$PYTHON" -c 'import sys, tomllib' 2>/dev/null; then
    run_log "ERROR: ${PYTHON} must be Python >= 3.11 (tomllib reads pyproject.toml)"
    exit 1
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    run_log "no pip for ${PYTHON}: creating a helper venv in ${HERE}/.build/pip-venv"
    run_cmd "$PYTHON" -m venv "${HERE}/.build/pip-venv"
    PYTHON="${HERE}/.build/pip-venv/bin/python"
fi

mkdir -p "$WHEELHOUSE" "${HERE}/.build"
NEW_REQS="${HERE}/.build/requirements.txt.new"
"$PYTHON" - "$PYPROJECT" "$EXTRAS" >"$NEW_REQS" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
requirements = list(project.get("dependencies", []))
for extra in filter(None, sys.argv[2].split(",")):
    requirements += project.get("optional-dependencies", {}).get(extra, [])
print("\n".join(dict.fromkeys(requirements)))
EOF

# The stamp covers what decides the wheels (the requirement list, the target, this script),
# not pyproject.toml as a whole: editing pytest or ruff settings must not refetch anything.
# It lives outside the wheelhouse, so it never reaches the image and never busts its cache.
STAMP_VALUE="$(
    {
        cat "$NEW_REQS"
        sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
        echo "${WHEEL_PYTHON_VERSION} ${ARCH} ${WHEEL_GLIBC_MINOR} ${EXTRAS}"
    } | sha256sum | cut -d' ' -f1
)"
STAMP="${HERE}/.build/wheelhouse.stamp"
if [[ "$FORCE" != "1" && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_VALUE" \
      && -f "${WHEELHOUSE}/requirements.txt" ]]; then
    run_log "wheelhouse up to date (${WHEELHOUSE}, stamp ${STAMP_VALUE:0:12}); skipping"
    rm -f "$NEW_REQS"
    exit 0
fi
rm -f "${WHEELHOUSE}/.stamp"  # the stamp's old place

run_log "runtime requirements from ${PYPROJECT} (extras: ${EXTRAS:-none}):"
sed 's/^/[build-wheelhouse]   /' "$NEW_REQS" >&2

PLATFORM_ARGS=()
for ((minor = WHEEL_GLIBC_MINOR; minor >= 17; minor--)); do
    PLATFORM_ARGS+=(--platform "manylinux_2_${minor}_${ARCH}")
done
PLATFORM_ARGS+=(--platform "manylinux2014_${ARCH}" --platform "manylinux2010_${ARCH}" --platform "manylinux1_${ARCH}")

START=$(date +%s)
run_log "downloading wheels for cp${WHEEL_PYTHON_VERSION/./} manylinux (glibc <= 2.${WHEEL_GLIBC_MINOR}, ${ARCH}) into ${WHEELHOUSE}"
run_cmd "$PYTHON" -m pip download \
    --disable-pip-version-check \
    --only-binary=:all: \
    --implementation cp \
    --python-version "$WHEEL_PYTHON_VERSION" \
    --abi "cp${WHEEL_PYTHON_VERSION/./}" \
    "${PLATFORM_ARGS[@]}" \
    --dest "$WHEELHOUSE" \
    -r "$NEW_REQS" >&2
if cmp -s "$NEW_REQS" "${WHEELHOUSE}/requirements.txt"; then
    rm -f "$NEW_REQS"
else
    mv "$NEW_REQS" "${WHEELHOUSE}/requirements.txt"
fi
echo "$STAMP_VALUE" >"$STAMP"
run_log "wheelhouse ready in $(($(date +%s) - START)) s: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
