# Strategy verification and Locust, as a Makefile fragment: `-include loadtests/loadtests.mk`
# from the main Makefile (after compose/compose.mk, whose meshlab_apply and MESHLAB_LAB it uses).
#
#   make verify-canary-70-30     apply scenarios/canary-70-30.yaml to the compose lab
#                                (meshctl apply --wait in the manager container), then run
#                                python -m loadtests.verify canary-70-30 inside the locust
#                                container: the host needs only docker, compose, make, python3
#   make verify-all              every strategy in DESIGN.md's order, then back to reset
#   VERIFY_LOCAL=1 make verify-X the same against the local-process lab (meshlab up --local):
#                                meshctl from $(VENV) with MESH_DIR=$(VERIFY_MESH_DIR), gateway
#                                $(VERIFY_GATEWAY)
#   VERIFY_KUBE=1 make verify-X  the same against a real cluster (meshlab export kube): kubectl
#                                applies the scenario (reset first deletes every
#                                VirtualService, DestinationRule and Gateway of default),
#                                waits VERIFY_KUBE_SETTLE seconds for Istio to push it, then
#                                verifies from the host against VERIFY_GATEWAY (the ingress
#                                URL); verify-readiness cannot run there (no mesh directory)
#   make locust-local            Locust's web UI (:8089) against the local lab
#
# Variables: VERIFY_ARGS (extra verify options, e.g. --requests 400 --users 8),
# VERIFY_LOCAL, VERIFY_GATEWAY (http://127.0.0.1:8080), VERIFY_MESH_DIR (.mesh),
# LOCUST_ARGS (extra locust options, e.g. --tags tester). The compose form runs the code baked
# into the image: after changing loadtests/, `make up` (or `make image` and recreate locust).
#
# A verify assumes nothing else drives traffic through the gateway while it runs (the
# Σweight-window exactness check counts consecutive picks): stop the Locust swarm first.

LOADTESTS_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
LOADTESTS_ROOT := $(patsubst %/,%,$(dir $(LOADTESTS_DIR)))
VENV ?= .venv
VERIFY_ARGS ?=
VERIFY_LOCAL ?=
VERIFY_GATEWAY ?= http://127.0.0.1:8080
VERIFY_MESH_DIR ?= .mesh
LOCUST_ARGS ?=
VERIFY_KUBE ?=
VERIFY_KUBE_SETTLE ?= 5

VERIFY_STRATEGIES := reset dark-launch delay abort blue-green blue-green-switch blue-green-back \
	canary-70-30 canary-5-95 canary-sticky circuit-breaker readiness
VERIFY_TARGETS := $(addprefix verify-,$(VERIFY_STRATEGIES))

ifneq ($(strip $(VERIFY_KUBE)),)
KUBE_CONFIG_KINDS := virtualservices,destinationrules,gateways
loadtests_apply = $(if $(filter reset,$(1)),kubectl delete $(KUBE_CONFIG_KINDS) --all -n default &&) \
	kubectl apply -f $(LOADTESTS_ROOT)/scenarios/$(1).yaml && sleep $(VERIFY_KUBE_SETTLE)
loadtests_verify = $(VENV)/bin/python -m loadtests.verify $(1) --gateway $(VERIFY_GATEWAY) $(VERIFY_ARGS)
else ifeq ($(strip $(VERIFY_LOCAL)),)
# Compose lab: apply in the manager container, verify in the locust container (which sees
# the gateway as istio-ingressgateway:8080 and the mesh directory as /mesh).
loadtests_apply = $(if $(filter reset,$(1)),$(MESHLAB_LAB) compose exec -T manager meshctl apply --prune -f /app/scenarios/reset.yaml --wait,$(call meshlab_apply,$(1)))
loadtests_verify = $(MESHLAB_LAB) compose exec -T locust python -m loadtests.verify $(1) \
	--gateway http://istio-ingressgateway:8080 $(VERIFY_ARGS)
else
# Local-process lab: meshctl and the verify from the venv, on the host.
loadtests_apply = MESH_DIR=$(VERIFY_MESH_DIR) $(VENV)/bin/meshctl apply $(if $(filter reset,$(1)),--prune) \
	-f $(LOADTESTS_ROOT)/scenarios/$(1).yaml --wait
loadtests_verify = MESH_DIR=$(VERIFY_MESH_DIR) $(VENV)/bin/python -m loadtests.verify $(1) \
	--gateway $(VERIFY_GATEWAY) --mesh-dir $(VERIFY_MESH_DIR) $(VERIFY_ARGS)
endif

.PHONY: $(VERIFY_TARGETS) verify-all locust-local

verify-reset: ## Verify reset: all pages v1 (anonymous, tester, both Host headers)
verify-dark-launch: ## Verify dark-launch: tester gets reviews-v2, anonymous and jason v1
verify-delay: ## Verify delay: tester's page 2.5 s + baseline (±100 ms), others fast
verify-abort: ## Verify abort: tester's pages lack reviews at p=0.25 (2 tries x 50 %, binomial 99.9 %)
verify-blue-green: ## Verify blue-green: bookinfo.local -> v1, test.bookinfo.local -> v2
verify-blue-green-switch: ## Verify blue-green-switch: bookinfo.local -> v2, test -> v1
verify-blue-green-back: ## Verify blue-green-back: bookinfo.local -> v1, test -> v2 again
verify-canary-70-30: ## Verify canary-70-30: binomial 99.9 % split, exact per 100 requests
verify-canary-5-95: ## Verify canary-5-95: binomial 99.9 % split, exact per 100 requests
verify-canary-sticky: ## Verify canary-sticky: cookie product-page=v2 pins v2; others 70/30
verify-circuit-breaker: ## Verify circuit-breaker: errors stop after the ejection, details-v2 serves
verify-readiness: ## Verify readiness: an unready reviews-v2 gets no traffic, then returns

$(VERIFY_TARGETS): verify-%:
	$(call loadtests_apply,$*)
	$(call loadtests_verify,$*)

verify-all: ## Verify every strategy in turn (stops at the first failure), then reset
	@set -e; for s in $(VERIFY_STRATEGIES); do $(MAKE) --no-print-directory verify-$$s; done
	$(MAKE) --no-print-directory verify-reset

locust-local: ## Locust web UI on 127.0.0.1:8089 against the local lab (LAB_BIND, LOCUST_ARGS, MESHLAB_SHAPE)
	$(VENV)/bin/locust -f $(LOADTESTS_DIR)/locustfile.py --host $(VERIFY_GATEWAY) \
		--web-host $${LAB_BIND:-127.0.0.1} $(LOCUST_ARGS)
