# The compose lab, as a Makefile fragment: `include compose/compose.mk` from the main
# Makefile. Every target is a thin call of compose/build-image.sh or compose/lab.sh, which
# log each step; the host needs only docker, docker-compose (or the compose plugin), make and
# python3 (>= 3.11, for the wheelhouse).
#
#   make image     base image (official Python, else offline debootstrap) + wheelhouse +
#                  docker build; each step is skipped when up to date
#   make up        image, then pods from the manifests, down -v, manager, baseline, all,
#                  wait until healthy; PROFILE=istio (or any workloads/profiles/<name>.yaml)
#                  or WORKLOADS="a.yaml b.yaml=foo" chooses the pods
#   make exec POD=sleep CMD='curl -s http://httpbin:8000/headers'  (kubectl exec's role)
#   make down / status / logs [SERVICE=x]
#   $(call meshlab_apply,canary-70-30)  in a recipe: meshctl apply -f
#                  /app/scenarios/canary-70-30.yaml --wait, inside the manager container
#                  ($(call meshlab_apply,reset,--prune) passes extra arguments)
#
# Variables (environment or command line): GATEWAY_PORT (8080), LOCUST_PORT (8089),
# GATEWAY_ADMIN_PORT (15000), LAB_BIND (127.0.0.1; 0.0.0.0 shares the gateway and Locust with
# the network), MESH_CONFIG_DIR (<repo>/lab-config), MESHLAB_BASELINE (reset),
# WAIT_TIMEOUT (240), DOCKER_COMPOSE, BASE_IMAGE, FORCE_OFFLINE_BASE=1.

MESHLAB_COMPOSE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
MESHLAB_LAB := $(MESHLAB_COMPOSE_DIR)/lab.sh

# meshctl apply of scenarios/<name>.yaml inside the running lab's manager container;
# optional extra meshctl apply arguments: $(call meshlab_apply,reset,--prune).
meshlab_apply = $(MESHLAB_LAB) apply $(1) $(2)

.PHONY: image up down status logs exec

image: ## Build the meshlab image (offline base + wheelhouse when Docker Hub is unreachable)
	$(MESHLAB_COMPOSE_DIR)/build-image.sh

up: image ## Start the lab on Docker Compose (PROFILE=istio, WORKLOADS="f.yaml ...") and wait until ready
	PROFILE="$(PROFILE)" WORKLOADS="$(WORKLOADS)" $(MESHLAB_LAB) up

down: ## Stop the compose lab and remove its containers and mesh volume (config stays)
	$(MESHLAB_LAB) down

status: ## Show the lab's containers, health and per-sidecar sync status
	$(MESHLAB_LAB) status

logs: ## Follow the lab's logs (SERVICE=reviews-v2 for one container)
	$(MESHLAB_LAB) logs $(SERVICE)

exec: ## Run a command in a pod's container: make exec POD=sleep CMD='curl -s http://httpbin:8000/get'
	@test -n "$(POD)" && test -n "$(CMD)" || { echo "usage: make exec POD=<pod> CMD='<command>'"; exit 2; }
	$(MESHLAB_LAB) exec $(POD) sh -c '$(CMD)'
