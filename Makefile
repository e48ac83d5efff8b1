# meshlab — `make up` runs the lab on Docker Compose, `make test` runs every test.
#
# Which lab: every lab-facing target (each strategy, reset, readiness-fail/pass, status, down,
# logs, locust, verify-*, check-*) finds the running lab itself — the compose lab (`make up`)
# or the local one (`make up-local`, no Docker) — through one helper, mesh/lab/dispatch.py
# ($(LAB_RUN) below); LAB=compose|local chooses when both run.
#
# `make help` — how to add a target to it (also from a new fragment you `include`):
#   - end the target's line with `## text` (one short sentence);
#   - it is listed under the section named by the last `##@ <group>` line above it in the
#     same file: lab, strategies, verify, security, observe, develop (a new name makes a new
#     section, listed after those). A file starts in `develop`.
# The help wraps to 80 columns by itself; nothing else to register.

.DEFAULT_GOAL := help
SHELL := /bin/bash

MESHLAB_ROOT := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The dispatcher is standard-library Python: the compose lab's host needs no venv.
LAB_RUN = VENV=$(VENV) PYTHONPATH=$(MESHLAB_ROOT) $(PYTHON) -m mesh.lab.dispatch

STRATEGIES := reset dark-launch delay abort blue-green blue-green-switch blue-green-back \
	canary-70-30 canary-5-95 canary-sticky circuit-breaker readiness

.PHONY: help install test test-fast lint format up-local down status logs exec locust \
	bench-sidecar bench-routing bench-propagation bench-apps $(STRATEGIES) readiness-fail \
	readiness-pass

##@ develop

# compose.mk first: `make up` heads the lab's targets.
help: ## This list, by group
	@$(LAB_RUN) help compose/compose.mk $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv with meshlab and its dev extras

test: install ## Every test: unit, integration, e2e, browser
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## Unit tests only (no processes, Docker or browser)
	$(PY) -m pytest -m "not integration and not e2e and not browser" $(PYTEST_ARGS)

lint: install ## ruff lint and format check, mypy on mesh/ (strict on the pure core)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-sidecar: install ## Benchmark: sidecar vs nginx and a direct call
	$(PY) bench/bench_sidecar.py

bench-routing: install ## Benchmark: routing decisions/s, compile time
	$(PY) bench/bench_routing.py

bench-propagation: install ## Benchmark: config propagation, 20 sidecars
	$(PY) bench/bench_propagation.py

bench-apps: install ## Benchmark: Bookinfo apps under gunicorn, one core
	$(PY) bench/bench_apps.py

include compose/compose.mk

##@ lab

up-local: install ## The lab as local processes, no Docker (PROFILE=, WORKLOADS=)
	$(VENV)/bin/meshlab up --local --gateway-port $${GATEWAY_PORT:-8080} $(if $(WORKLOADS),--workloads $(WORKLOADS),$(if $(PROFILE),--profile $(PROFILE)))

down: ## Stop the running lab (compose or local)
	@$(LAB_RUN) down

##@ observe

status: ## Is every pod ready and synced?
	@$(LAB_RUN) status

logs: ## Follow the logs (SERVICE=reviews-v2: one pod)
	@$(LAB_RUN) logs $(SERVICE)

exec: ## Run CMD beside pod POD, as kubectl exec (POD= CMD=)
	@$(LAB_RUN) exec "$(POD)" "$(CMD)"

-include loadtests/loadtests.mk

##@ strategies
# Each applies scenarios/<target>.yaml to the running lab with `meshctl apply --wait` (it
# returns when every sidecar serves it), then says what to look at. Colours: v1 is blue, v2
# amber, v3 red, on the page's badge and in Locust's Versions tab and charts.

reset: ## Baseline: everything on v1 (undoes every strategy)
	@$(LAB_RUN) apply $@
	@echo "  Everything is on v1 again: the page has the blue v1 badge and no stars."

dark-launch: ## Tester gets reviews v2, everyone else v1
	@$(LAB_RUN) apply $@
	@echo "  Log in as tester on /productpage: black stars (reviews v2). Log out: no stars (v1)."
	@echo "  Locust: the tester's reviews-v2 count grows, anonymous stays on reviews-v1. Undo: make reset"

delay: ## Tester's reviews calls delayed 2.5 s (and go to v2)
	@$(LAB_RUN) apply $@
	@echo "  As tester the page takes ~2.5 s (the served-by chain shows reviews-v2 at ~2.5 s); others are fast."
	@echo "  Locust: response times of the tester's /productpage jump to 2.5 s. Undo: make reset"

abort: ## Half of tester's reviews calls get 503 (flag FI)
	@$(LAB_RUN) apply $@
	@echo "  As tester, reload: about a page in four says 'Sorry, product reviews are currently unavailable'"
	@echo "  and the chain shows 'reviews ✗ 503 FI' (productpage tries reviews twice, each call fails 50 %)."
	@echo "  Locust: the 'tester: reviews unavailable' row. Undo: make reset"

blue-green: ## bookinfo.local -> v1, test.bookinfo.local -> v2
	@$(LAB_RUN) apply $@
	@echo "  Host bookinfo.local: the blue v1 page; Host test.bookinfo.local: the amber v2 page."
	@echo "  Any other Host (localhost) has no route now: a 404 that names the hosts served."
	@echo "  Next: make blue-green-switch. Undo: make reset"

blue-green-switch: ## Swap live and test (v2 goes live)
	@$(LAB_RUN) apply $@
	@echo "  bookinfo.local now serves productpage v2 (amber), test.bookinfo.local v1 (blue). Back: make blue-green-back"

blue-green-back: ## Swap back (v1 live again)
	@$(LAB_RUN) apply $@
	@echo "  bookinfo.local serves v1 (blue) again, test.bookinfo.local v2 (amber). Undo: make reset"

canary-70-30: ## productpage v1 70 %, v2 30 % at the gateway
	@$(LAB_RUN) apply $@
	@echo "  Reload /productpage: 3 in every 10 pages are v2 (the amber v2 badge), 7 are v1 (blue)."
	@echo "  Locust's Versions tab: productpage v2 at 30 % from the next second. Shift: make canary-5-95. Undo: make reset"

canary-5-95: ## productpage v1 5 %, v2 95 %
	@$(LAB_RUN) apply $@
	@echo "  95 pages in 100 are v2 (amber) now; Locust's Versions tab steps to 95 %. Undo: make reset"

canary-sticky: ## Cookie product-page=v2 pins v2; others 70/30
	@$(LAB_RUN) apply $@
	@echo "  In a browser, reload until you get v2 (amber): from then on you stay on v2 (cookie product-page=v2)."
	@echo "  Locust: sticky-left stays 0 (counted since the last config change). Undo: make reset"

circuit-breaker: ## details v2 with a failing instance, then ejected
	@$(LAB_RUN) apply $@
	@echo "  The first requests may show 'product details are currently unavailable' (chain: details-v2 ✗ 503);"
	@echo "  after 2 consecutive errors it is ejected for 5 min and details-v2 serves every page. Undo: make reset"

readiness: ## reviews to every ready pod (no subset)
	@$(LAB_RUN) apply $@
	@echo "  Pages cycle through no stars (v1), black (v2) and red (v3). make readiness-fail makes reviews-v2"
	@echo "  fail its readiness probe: black stars vanish, nobody gets an error, until make readiness-pass."

readiness-fail: ## reviews-v2 fails its readiness probe: no traffic
	@$(LAB_RUN) ready reviews-v2 false
	@echo "  reviews-v2 now fails /health: within ~2 s it leaves the endpoints and the black stars vanish."

readiness-pass: ## reviews-v2 passes its probe again: traffic back
	@$(LAB_RUN) ready reviews-v2 true
	@echo "  reviews-v2 is ready again: black stars are back in the rotation."

##@ security
# The mTLS and authorization module (issue 17). mtls-*: make up PROFILE=security (httpbin and
# sleep in foo and bar with sidecars, in legacy without); authz-*: make up PROFILE=istio.
# Each stage is a whole state (applied with --prune). See a pod's side: meshctl describe pod
# httpbin.foo (in the compose lab: compose/lab.sh compose exec manager meshctl ...), and the
# wire: meshctl tap httpbin.foo.

SECURITY_STAGES := mtls-permissive mtls-strict-namespace mtls-strict mtls-workload \
	mtls-port-level mtls-precedence authz-deny-all authz-productpage authz-details-reviews \
	authz-ratings
.PHONY: $(SECURITY_STAGES) verify-mtls verify-authz verify-rotation rotation

mtls-permissive: ## Mesh-wide PERMISSIVE: every sleep reaches every httpbin
	@$(LAB_RUN) apply $@
	@echo "  Every pair is 200: make exec POD=sleep.legacy CMD='curl -s http://httpbin.foo:8000/ip'"
	@echo "  sleep.foo's calls are mTLS (auto mTLS), sleep.legacy's plaintext: meshctl tap httpbin.foo"

mtls-strict-namespace: ## foo STRICT: sleep.legacy -> httpbin.foo is reset
	@$(LAB_RUN) apply $@
	@echo "  make exec POD=sleep.legacy CMD='curl -s http://httpbin.foo:8000/ip': curl (56) reset;"
	@echo "  from sleep.foo or sleep.bar: 200 (their sidecars speak mTLS). Next: make mtls-strict"

mtls-strict: ## Mesh-wide STRICT: legacy reaches no sidecar
	@$(LAB_RUN) apply $@
	@echo "  sleep.legacy -> httpbin.foo and httpbin.bar: reset; -> httpbin.legacy (no sidecar): 200"

mtls-workload: ## Only bar's httpbin STRICT (workload selector)
	@$(LAB_RUN) apply $@
	@echo "  sleep.legacy -> httpbin.bar: reset; -> httpbin.foo: 200 (foo stays PERMISSIVE)"

mtls-port-level: ## bar's httpbin STRICT but port 8080 DISABLE
	@$(LAB_RUN) apply $@
	@echo "  sleep.legacy -> httpbin.bar: 200 again (portLevelMtls wins on 8080)"

mtls-precedence: ## foo STRICT, httpbin in foo DISABLE: the workload wins
	@$(LAB_RUN) apply $@
	@echo "  sleep.legacy -> httpbin.foo: 200 (the workload's DISABLE overrides the namespace)"

authz-deny-all: ## allow-nothing: /productpage is 403 RBAC: access denied
	@$(LAB_RUN) apply $@
	@echo "  /productpage: 403 'RBAC: access denied'. Next: make authz-productpage"

authz-productpage: ## + productpage-viewer: page, no details or reviews
	@$(LAB_RUN) apply $@
	@echo "  The page loads with 'Error fetching product details/reviews'. Next: make authz-details-reviews"

authz-details-reviews: ## + details/reviews-viewer (productpage's identity)
	@$(LAB_RUN) apply $@
	@echo "  Details and reviews show; v2/v3 say 'Ratings service is currently unavailable'. Next: make authz-ratings"

authz-ratings: ## + ratings-viewer (reviews' identity): stars again
	@$(LAB_RUN) apply $@
	@echo "  The whole page again: black (v2) and red (v3) stars."

SECURITY_RUN = VENV=$(VENV) PYTHONPATH=$(MESHLAB_ROOT) $(PYTHON) -m mesh.lab.security_verify

verify-mtls: ## istio.io's sleep -> httpbin matrix at every mTLS stage
	@$(SECURITY_RUN) mtls $(STAGES)

verify-authz: ## The documented page at every authz-http step
	@$(SECURITY_RUN) authz $(STAGES)

verify-rotation: ## 3 renewals under steady load, 0 failed requests
	@$(SECURITY_RUN) rotation

rotation: ## How to watch a certificate rotation (MESH_CERT_TTL=2m)
	@echo "  Start the lab with short-lived certificates: MESH_CERT_TTL=2m make up PROFILE=security"
	@echo "  (or make up-local); the agents renew at half-life (MESH_CERT_GRACE_RATIO=0.5): every minute."
	@echo "  Watch the serial change: meshctl describe pod httpbin.foo | grep Certificate"
	@echo "  and the manager's log: 'issued spiffe://cluster.local/ns/foo/sa/httpbin to httpbin.foo'."
	@echo "  Under load, with no failed request: make verify-rotation (applies scenarios/rotation.yaml)."
