# The compose lab, as a Makefile fragment: `include compose/compose.mk` from the main
# Makefile. Every target is a thin call of compose/build-image.sh or compose/lab.sh, which
# log each step; the host needs only docker, docker-compose (or the compose plugin), make and
# python3 (>= 3.11, for the wheelhouse).
#
#   make image     base image (official Python, else offline mmdebstrap) + wheelhouse +
#                  docker build; each step is skipped when up to date
#   make up        image, then pods from the manifests, down -v, manager, baseline, all,
#                  wait until healthy; PROFILE=istio (or any workloads/profiles/<name>.yaml)
#                  or WORKLOADS="a.yaml b.yaml=foo" chooses the pods
#   (make down / status / logs / exec and every strategy live in the main Makefile: they find
#   the running lab, compose or local, through mesh/lab/dispatch.py, which calls lab.sh here)
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

.PHONY: image up

##@ lab

image: ## Build the image (offline if Docker Hub is away)
	$(MESHLAB_COMPOSE_DIR)/build-image.sh

up: image ## Start the lab on Docker Compose, wait until ready (PROFILE=)
	PROFILE="$(PROFILE)" WORKLOADS="$(WORKLOADS)" $(MESHLAB_LAB) up
