#!/usr/bin/env bash
# Drive the compose lab: compose/lab.sh up|down|wait|status|logs|apply|compose ...
#
#   up            pods from the manifests (PROFILE or WORKLOADS; refused with file:line
#                 before anything starts) -> config dir ready -> down -v -> manager ->
#                 the profile's baseline (when the config dir has no YAML yet) -> everything
#                 -> wait until every container is healthy -> proxy-status and the URLs.
#                 `down` first, always: docker-compose 1.29 with a new engine fails with
#                 KeyError: 'ContainerConfig' when it recreates.
#   generate      only write the pods (compose/.build/lab-<project>/) from the manifests
#   down          down -v --remove-orphans (the host config dir stays)
#   wait          wait until every service's container runs and is healthy
#   status        containers and health, then `meshctl proxy-status` from the manager
#   logs [SVC]    follow the logs (of one service)
#   apply NAME [ARGS]  meshctl apply -f /app/scenarios/NAME.yaml --wait [ARGS, e.g. --prune],
#                 inside the manager: the host needs only docker, compose, make and python3
#   exec POD CMD...  run CMD in a pod's container (kubectl exec): its HTTP goes through the
#                 pod's sidecar, e.g. exec sleep curl -s http://httpbin:8000/headers
#   compose ARGS  any compose command on the lab's project
#
# The image must exist (compose/build-image.sh; `make up` builds it first).
# Environment: DOCKER_COMPOSE (default: `docker compose` if the plugin exists, else
# docker-compose), MESHLAB_PROJECT (meshlab), PROFILE (course) or WORKLOADS (manifest files,
# FILE or FILE=NAMESPACE, space-separated), MESH_CONFIG_DIR (<repo>/lab-config for the course
# profile, lab-config-<profile> for another, lab-config-workloads for WORKLOADS),
# MESHLAB_BASELINE (a scenario name instead of the profile's baseline), WAIT_TIMEOUT (240 s),
# GATEWAY_PORT, GATEWAY_ADMIN_PORT, LOCUST_PORT, PROMETHEUS_PORT, CONSOLE_PORT,
# LAB_BIND (127.0.0.1: the gateway and Locust on loopback; 0.0.0.0 shares them).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/.." && pwd)"
PROJECT="${MESHLAB_PROJECT:-meshlab}"
COMPOSE_FILE_PATH="${HERE}/docker-compose.yml"
IMAGE="${MESHLAB_IMAGE:-meshlab:latest}"
export MESHLAB_LAB_DIR="${HERE}/.build/lab-${PROJECT}"
PODS_FILE="${MESHLAB_LAB_DIR}/pods.yml"
PROFILE="${PROFILE:-}"
WORKLOADS="${WORKLOADS:-}"
if [[ -n "$WORKLOADS" ]]; then
    CONFIG_DEFAULT="${ROOT}/lab-config-workloads"
elif [[ -n "$PROFILE" && "$PROFILE" != course ]]; then
    CONFIG_DEFAULT="${ROOT}/lab-config-${PROFILE}"
else
    CONFIG_DEFAULT="${ROOT}/lab-config"
fi
export MESH_CONFIG_DIR="${MESH_CONFIG_DIR:-${CONFIG_DEFAULT}}"
MESHLAB_BASELINE="${MESHLAB_BASELINE:-}"
# What the generated lab says (MESHLAB_WORKLOADS_ENV for the containers, the pods...).
if [[ -f "${MESHLAB_LAB_DIR}/lab.env" ]]; then
    # shellcheck disable=SC1091
    source "${MESHLAB_LAB_DIR}/lab.env"
fi
export MESHLAB_WORKLOADS_ENV="${MESHLAB_WORKLOADS_ENV:-}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-240}"
export LAB_BIND="${LAB_BIND:-127.0.0.1}"

run_log() {
    echo "[lab] $*" >&2
}

if [[ -z "${DOCKER_COMPOSE:-}" ]]; then
    if docker compose version >/dev/null 2>&1; then
        DOCKER_COMPOSE="docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        DOCKER_COMPOSE="docker-compose"
    else
        run_log "ERROR: neither 'docker compose' nor 'docker-compose' is installed"
        exit 1
    fi
fi

compose_files() {
    printf '%s\n' -f "$COMPOSE_FILE_PATH"
    if [[ -f "$PODS_FILE" ]]; then
        printf '%s\n' -f "$PODS_FILE"
    fi
}

compose() {
    local files
    mapfile -t files < <(compose_files)
    # shellcheck disable=SC2086  # DOCKER_COMPOSE may be two words
    $DOCKER_COMPOSE -p "$PROJECT" "${files[@]}" "$@"
}

run_compose() {
    echo "[lab] \$ ${DOCKER_COMPOSE} -p ${PROJECT} $(compose_files | tr '\n' ' ')$*" >&2
    compose "$@"
}

# The pods from the manifests, by the lab's own code inside its image (the host needs no
# Python packages): the repository and every WORKLOADS file are mounted read-only at their
# own paths, so errors name the files as the trainee wrote them.
generate() {
    local args=() mounts=() file path
    mkdir -p "$MESHLAB_LAB_DIR"
    mounts+=(-v "${ROOT}:${ROOT}:ro" -v "${MESHLAB_LAB_DIR}:${MESHLAB_LAB_DIR}")
    if [[ -n "$WORKLOADS" ]]; then
        args+=(--workloads)
        for file in $WORKLOADS; do
            path="${file%%=*}"
            if [[ ! -f "$path" ]]; then
                run_log "ERROR: WORKLOADS file ${path} not found"
                exit 1
            fi
            path="$(cd "$(dirname "$path")" && pwd)/$(basename "$path")"
            mounts+=(-v "${path}:${path}:ro")
            args+=("${path}${file#"${file%%=*}"}")
        done
    elif [[ -n "$PROFILE" ]]; then
        args+=(--profile "$PROFILE")
    fi
    run_log "pods from the manifests (${WORKLOADS:+WORKLOADS=${WORKLOADS}}${WORKLOADS:-profile ${PROFILE:-course}})"
    docker run --rm --user "$(id -u):$(id -g)" -w "$ROOT" "${mounts[@]}" "$IMAGE" \
        python -m mesh.lab.compose "${args[@]}" --out "$MESHLAB_LAB_DIR" || {
        run_log "ERROR: the workloads cannot start (nothing was started)"
        exit 1
    }
    # shellcheck disable=SC1091
    source "${MESHLAB_LAB_DIR}/lab.env"
    export MESHLAB_WORKLOADS_ENV
}

# The containers run as the invoking user (uid:gid), so the config dir they write is the
# user's own and needs no opening up. Rootless Docker maps container root to the invoking
# user, so there they run as 0:0 (still with no capabilities).
container_ids() {
    if docker info --format '{{.SecurityOptions}}' 2>/dev/null | grep -q rootless; then
        export MESHLAB_UID=0 MESHLAB_GID=0
    else
        MESHLAB_UID="$(id -u)" MESHLAB_GID="$(id -g)"
        export MESHLAB_UID MESHLAB_GID
    fi
}

# The bind-mounted config dir must exist (else Docker creates it as root) and be the user's.
prepare_config_dir() {
    mkdir -p "$MESH_CONFIG_DIR"
    if [[ ! -w "$MESH_CONFIG_DIR" ]]; then
        run_log "ERROR: ${MESH_CONFIG_DIR} is not writable by $(id -un); run: sudo chown $(id -u):$(id -g) ${MESH_CONFIG_DIR}"
        exit 1
    fi
    local mode
    mode="$(stat -c '%a' "$MESH_CONFIG_DIR")"
    if [[ "$(stat -c '%u' "$MESH_CONFIG_DIR")" == "$(id -u)" && "$mode" =~ [2367]$ ]]; then
        # Opened to everyone by an older lab.sh (chmod a+rwx): any local user could rewrite
        # the mesh's config. Close it again.
        run_log "closing ${MESH_CONFIG_DIR} to other users (was mode ${mode}: chmod go-w)"
        chmod go-w "$MESH_CONFIG_DIR"
    fi
}

has_yaml() {
    compgen -G "${MESH_CONFIG_DIR}/*.yaml" >/dev/null || compgen -G "${MESH_CONFIG_DIR}/*.yml" >/dev/null
}

# "service container-status health" for every container of the project.
container_states() {
    local ids
    ids="$(docker ps -aq --filter "label=com.docker.compose.project=${PROJECT}")"
    [[ -n "$ids" ]] || return 0
    # shellcheck disable=SC2086
    docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' $ids
}

# wait_healthy [SERVICE...]: every named service (default: all) running and healthy.
wait_healthy() {
    local wanted=("$@") deadline states svc state health code ready pending last_report=0
    if [[ ${#wanted[@]} -eq 0 ]]; then
        mapfile -t wanted < <(compose config --services)
    fi
    deadline=$(($(date +%s) + WAIT_TIMEOUT))
    run_log "waiting up to ${WAIT_TIMEOUT}s for ${#wanted[@]} service(s) to be healthy"
    while true; do
        states="$(container_states)"
        ready=0
        pending=()
        for svc in "${wanted[@]}"; do
            read -r state health code < <(awk -v s="$svc" '$1 == s { print $2, $3, $4; exit }' <<<"$states") || true
            state="${state:-missing}"
            if [[ "$state" == "exited" || "$state" == "dead" ]]; then
                run_log "ERROR: ${svc} stopped (exit code ${code}); its last log lines:"
                compose logs --tail=40 "$svc" >&2 || true
                return 1
            fi
            if [[ "$state" == "running" && ("$health" == "healthy" || "$health" == "none") ]]; then
                ready=$((ready + 1))
            else
                pending+=("${svc}(${state}${health:+/${health}})")
            fi
        done
        if [[ ${#pending[@]} -eq 0 ]]; then
            run_log "all ${ready} service(s) healthy"
            return 0
        fi
        if (($(date +%s) >= deadline)); then
            run_log "ERROR: timed out after ${WAIT_TIMEOUT}s; not healthy: ${pending[*]}"
            run_log "see: compose/lab.sh logs SERVICE, or docker inspect --format '{{json .State.Health}}' CONTAINER"
            return 1
        fi
        if (($(date +%s) - last_report >= 10)); then
            run_log "healthy ${ready}/${#wanted[@]}; waiting for: ${pending[*]}"
            last_report=$(date +%s)
        fi
        sleep 2
    done
}

# A host port that something already listens on makes `up` fail half-way with Docker's
# "address already in use"; say it before starting anything.
check_ports() {
    local spec name port busy=0
    for spec in GATEWAY_PORT:8080 LOCUST_PORT:8089 GATEWAY_ADMIN_PORT:15000 PROMETHEUS_PORT:9090 CONSOLE_PORT:20001; do
        name="${spec%%:*}"
        port="${!name:-${spec#*:}}"
        if (: <"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
            run_log "ERROR: host port ${port} is in use (another lab, e.g. meshlab up --local?); set ${name}=<free port>"
            busy=1
        fi
    done
    return "$busy"
}

print_urls() {
    local gw="${GATEWAY_PORT:-8080}" locust="${LOCUST_PORT:-8089}" admin="${GATEWAY_ADMIN_PORT:-15000}"
    local console="${CONSOLE_PORT:-20001}" prometheus="${PROMETHEUS_PORT:-9090}"
    if [[ "$LAB_BIND" != "127.0.0.1" ]]; then
        run_log "WARNING: the gateway and Locust listen on ${LAB_BIND} (LAB_BIND): anyone who reaches"
        run_log "         this machine can use them, and Locust's UI starts load against any address"
    fi
    cat >&2 <<EOF
[lab] lab ready
[lab]   Listening on:   ${LAB_BIND} (LAB_BIND=0.0.0.0 shares the lab with the network)
[lab]   Bookinfo:       curl -H 'Host: bookinfo.local' http://localhost:${gw}/productpage
[lab]                   (browser: add '127.0.0.1 bookinfo.local test.bookinfo.local' to /etc/hosts,
[lab]                    then open http://bookinfo.local:${gw}/productpage)
[lab]   Locust:         http://localhost:${locust}
[lab]   Console:        http://localhost:${console}/   (graph, config timeline, traces)
[lab]   Prometheus:     http://localhost:${prometheus}/
[lab]   Gateway admin:  http://127.0.0.1:${admin}/stats/prometheus  /config_dump  /clusters
[lab]   Config (YAML):  ${MESH_CONFIG_DIR}
EOF
}

apply_scenario() {
    local name="$1"
    shift
    run_log "applying scenarios/${name}.yaml in the manager container"
    run_compose exec -T manager meshctl apply -f "/app/scenarios/${name}.yaml" --wait "$@"
}

cmd_up() {
    local start
    start=$(date +%s)
    docker image inspect "${MESHLAB_IMAGE:-meshlab:latest}" >/dev/null 2>&1 || {
        run_log "ERROR: image ${MESHLAB_IMAGE:-meshlab:latest} is missing; run compose/build-image.sh (make image)"
        exit 1
    }
    run_compose down -v --remove-orphans
    generate
    prepare_config_dir
    run_log "containers run as uid:gid ${MESHLAB_UID}:${MESHLAB_GID}"
    check_ports
    run_compose up -d manager
    wait_healthy manager
    if has_yaml; then
        run_log "${MESH_CONFIG_DIR} already has config: keeping it (make reset returns to the baseline)"
    elif [[ -n "$MESHLAB_BASELINE" ]]; then
        run_log "empty config: applying the baseline scenarios/${MESHLAB_BASELINE}.yaml"
        run_compose exec -T manager meshctl apply -f "/app/scenarios/${MESHLAB_BASELINE}.yaml"
    elif [[ -n "${MESHLAB_LAB_BASELINE:-}" ]]; then
        run_log "empty config: applying the profile's baseline"
        run_compose exec -T manager meshctl apply -f /lab/baseline.yaml
    else
        run_log "no baseline: starting with no traffic config (apply a Gateway first)"
    fi
    run_compose up -d
    wait_healthy
    run_compose exec -T manager meshctl proxy-status || run_log "WARNING: meshctl proxy-status failed"
    run_log "up in $(($(date +%s) - start)) s"
    print_urls
}

cmd_status() {
    run_compose ps
    run_compose exec -T manager meshctl proxy-status || run_log "(manager not reachable)"
}

main() {
    local cmd="${1:-}"
    shift || true
    container_ids  # the compose file's `user:` reads them, for every command
    case "$cmd" in
        up) cmd_up ;;
        generate) generate ;;
        down) run_compose down -v --remove-orphans ;;
        exec)
            [[ $# -ge 2 ]] || { run_log "usage: lab.sh exec POD CMD [ARGS...]"; exit 2; }
            local pod="${1//./-}"
            shift
            compose exec -T "$pod" "$@"
            ;;
        wait) wait_healthy "$@" ;;
        status) cmd_status ;;
        logs) compose logs -f --tail=200 "$@" ;;
        apply)
            [[ $# -ge 1 ]] || { run_log "usage: lab.sh apply SCENARIO [MESHCTL-APPLY-ARGS...]"; exit 2; }
            apply_scenario "$@"
            ;;
        compose) compose "$@" ;;
        *)
            sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
            exit 2
            ;;
    esac
}

main "$@"
