# Strategy verification, exercise checks and Locust, as a Makefile fragment:
# `-include loadtests/loadtests.mk` from the main Makefile, which defines $(LAB_RUN) (the
# lab dispatcher, mesh/lab/dispatch.py: it finds the running lab, compose or local).
#
#   make verify-canary-70-30   apply scenarios/canary-70-30.yaml to the running lab (meshctl
#                              apply --wait), then python -m loadtests.verify canary-70-30:
#                              compose lab: inside the locust container (the host needs only
#                              docker, make, python3); local lab: from the venv, against the
#                              gateway URL the lab recorded in $MESH_DIR/lab.json
#   make verify-all            every strategy in DESIGN.md's order, then back to reset
#   make check-dark-launch FILE=mine.yaml
#                              a trainee's YAML against the exercise (loadtests/check.py:
#                              meshctl analyze + meshctl route against the answer; circuit-
#                              breaker and readiness are then applied and verified live)
#   make locust                Locust's web UI against the running lab (compose: it runs in
#                              its container already; local: started here, Ctrl-C stops it)
#   VERIFY_KUBE=1 VERIFY_GATEWAY=<ingress URL> make verify-X
#                              the same against a real cluster (meshlab export kube): kubectl
#                              applies the scenario (reset first deletes every
#                              VirtualService, DestinationRule and Gateway of default), waits
#                              VERIFY_KUBE_SETTLE (5) seconds for Istio to push it, then
#                              verifies from the venv; verify-readiness cannot run there
#
# Variables: VERIFY_ARGS (extra verify options, e.g. --requests 400 --users 8), LOCUST_ARGS
# (extra locust options, e.g. --tags tester), FILE, LAB, MESH_DIR, LOCUST_PORT. The compose
# form runs the code baked into the image: after changing loadtests/, `make up`.
#
# A verify assumes nothing else drives traffic through the gateway while it runs (the
# Σweight-window exactness check counts consecutive picks): stop the Locust swarm first.

VERIFY_ARGS ?=
LOCUST_ARGS ?=
FILE ?=

VERIFY_STRATEGIES := reset dark-launch delay abort blue-green blue-green-switch blue-green-back \
	canary-70-30 canary-5-95 canary-sticky circuit-breaker readiness
VERIFY_TARGETS := $(addprefix verify-,$(VERIFY_STRATEGIES))
# loadtests/exercises.py EXERCISES (a test keeps the two lists equal)
EXERCISES := dark-launch delay abort blue-green blue-green-switch canary-70-30 canary-5-95 \
	canary-sticky circuit-breaker readiness
CHECK_TARGETS := $(addprefix check-,$(EXERCISES))

.PHONY: $(VERIFY_TARGETS) verify-all $(CHECK_TARGETS) locust

##@ verify

verify-reset: ## All pages v1 (anonymous, tester, both hosts)
verify-dark-launch: ## Tester on reviews-v2; anonymous and jason on v1
verify-delay: ## Tester's page 2.5 s (+-100 ms); others fast
verify-abort: ## Tester's pages lack reviews at p=0.25 (99.9 %)
verify-blue-green: ## bookinfo.local -> v1, test.bookinfo.local -> v2
verify-blue-green-switch: ## bookinfo.local -> v2, test -> v1
verify-blue-green-back: ## bookinfo.local -> v1, test -> v2 again
verify-canary-70-30: ## Binomial 99.9 % split, exact per 100 requests
verify-canary-5-95: ## Binomial 99.9 % split, exact per 100 requests
verify-canary-sticky: ## Cookie product-page=v2 pins v2; others 70/30
verify-circuit-breaker: ## Errors stop after the ejection; details-v2 serves
verify-readiness: ## An unready reviews-v2 gets no traffic, then returns

$(VERIFY_TARGETS): verify-%:
	@$(LAB_RUN) verify $* -- $(VERIFY_ARGS)

verify-all: ## Every verify in turn (stops at a failure), reset
	@set -e; for s in $(VERIFY_STRATEGIES); do $(MAKE) --no-print-directory verify-$$s; done
	$(MAKE) --no-print-directory verify-reset

check-dark-launch: ## Your YAML (FILE=mine.yaml) vs the dark launch
check-delay: ## Your YAML (FILE=...): routed, then verified live
check-abort: ## Your YAML (FILE=...) vs the abort
check-blue-green: ## Your YAML (FILE=...) vs blue/green
check-blue-green-switch: ## Your YAML (FILE=...) vs the switch
check-canary-70-30: ## Your YAML (FILE=...) vs the 70/30 canary
check-canary-5-95: ## Your YAML (FILE=...) vs the 5/95 canary
check-canary-sticky: ## Your YAML (FILE=...) vs the sticky canary
check-circuit-breaker: ## Your YAML (FILE=...): routed, then verified live
check-readiness: ## Your YAML (FILE=...): routed, then verified live

$(CHECK_TARGETS): check-%:
	@$(LAB_RUN) check $* "$(FILE)" -- $(VERIFY_ARGS)

##@ observe

locust: ## Locust's UI for the running lab (LOCUST_ARGS=)
	@$(LAB_RUN) locust -- $(LOCUST_ARGS)
