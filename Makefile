# meshlab — `make up` runs the lab on Docker Compose, `make test` runs every test.
# `make help` lists every target. Targets marked `## text` appear in the help.

.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help install test test-fast lint format up-local status-local down-local bench-sidecar bench-routing \
	bench-propagation bench-apps reset dark-launch delay abort blue-green blue-green-switch \
	blue-green-back canary-70-30 canary-5-95 canary-sticky circuit-breaker readiness \
	readiness-fail readiness-pass

help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install meshlab with its dev extras

test: install ## Run every test: unit, integration (local processes), e2e (compose), browser
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## Run the unit tests only (no processes, no Docker, no browser)
	$(PY) -m pytest -m "not integration and not e2e and not browser" $(PYTEST_ARGS)

lint: install ## ruff lint and format check, mypy on mesh/ (strict on the pure core)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

up-local: install ## Run the whole lab as local processes (PROFILE=..., WORKLOADS=...); Ctrl-C stops it
	$(VENV)/bin/meshlab up --local $(if $(WORKLOADS),--workloads $(WORKLOADS),$(if $(PROFILE),--profile $(PROFILE)))

status-local: install ## Is every pod of the local lab ready and synced? (meshlab status)
	$(VENV)/bin/meshlab status

down-local: install ## Stop a local lab started in another terminal (meshlab down)
	$(VENV)/bin/meshlab down

bench-sidecar: install ## Sidecar throughput/latency/memory vs nginx and a direct call
	$(PY) bench/bench_sidecar.py

bench-routing: install ## Routing decisions per second and compile time of 500 resources
	$(PY) bench/bench_routing.py

bench-propagation: install ## Config propagation p50/p99 with 20 sidecars, lab memory
	$(PY) bench/bench_propagation.py

bench-apps: install ## Requests/s of the Bookinfo apps under gunicorn on one core
	$(PY) bench/bench_apps.py

include compose/compose.mk
-include loadtests/loadtests.mk

# ---------------------------------------------------------------- deployment strategies
# Each applies scenarios/<target>.yaml to the running compose lab with `meshctl apply --wait`.

reset: ## Baseline: everything on v1 (undoes every strategy below)
	$(MESHLAB_LAB) compose exec -T manager meshctl apply --prune -f /app/scenarios/reset.yaml --wait
	@echo
	@echo "  Everything is on v1 again: http://localhost:$${GATEWAY_PORT:-8080}/productpage shows no stars."

dark-launch: ## Dark launch: user tester gets reviews v2, everyone else v1
	$(call meshlab_apply,dark-launch)
	@echo
	@echo "  Log in as tester on /productpage: black stars (reviews v2). Log out: no stars (v1)."
	@echo "  Locust: the tester user's reviews-v2 count grows, anonymous stays on reviews-v1. Undo: make reset"

delay: ## Fault injection: tester's reviews calls are delayed 2.5 s and go to v2
	$(call meshlab_apply,delay)
	@echo
	@echo "  As tester the page takes ~2.5 s (productpage's 3 s timeout still holds); others are fast."
	@echo "  Locust: response times of the tester's /productpage jump to 2.5 s. Undo: make reset"

abort: ## Fault injection: half of tester's reviews calls get 503
	$(call meshlab_apply,abort)
	@echo
	@echo "  As tester, reload: about half the time 'Sorry, product reviews are currently unavailable'."
	@echo "  productpage retries reviews once, so a page fails ~25 %; each call fails 50 % (flag FI). Undo: make reset"

blue-green: ## Blue/green: bookinfo.local -> productpage v1 (live), test.bookinfo.local -> v2
	$(call meshlab_apply,blue-green)
	@echo
	@echo "  curl -H 'Host: bookinfo.local' localhost:$${GATEWAY_PORT:-8080}/productpage -> v1; Host test.bookinfo.local -> v2."
	@echo "  Next: make blue-green-switch. Undo: make reset"

blue-green-switch: ## Blue/green: swap live and test (v2 goes live)
	$(call meshlab_apply,blue-green-switch)
	@echo
	@echo "  bookinfo.local now serves productpage v2, test.bookinfo.local v1. Back: make blue-green-back"

blue-green-back: ## Blue/green: swap back (v1 live again)
	$(call meshlab_apply,blue-green-back)
	@echo
	@echo "  bookinfo.local serves v1 again, test.bookinfo.local v2. Undo: make reset"

canary-70-30: ## Canary: productpage v1 70 %, v2 30 % at the gateway
	$(call meshlab_apply,canary-70-30)
	@echo
	@echo "  Reload /productpage: 3 in every 10 pages are v2 (blue badge)."
	@echo "  Locust's 'Versions' tab: productpage-v2 settles at 30 %. Shift: make canary-5-95. Undo: make reset"

canary-5-95: ## Canary: productpage v1 5 %, v2 95 %
	$(call meshlab_apply,canary-5-95)
	@echo
	@echo "  95 pages in 100 are v2 now. Locust's 'Versions' tab swings to 95 %. Undo: make reset"

canary-sticky: ## Sticky canary: cookie product-page=v2 pins v2, others 70/30
	$(call meshlab_apply,canary-sticky)
	@echo
	@echo "  In a browser, reload until you get v2: from then on you stay on v2 (cookie product-page=v2)."
	@echo "  Locust: the cookie-keeping visitors drift to v2 and stay. Undo: make reset"

circuit-breaker: ## Circuit breaker: details v2 with a failing instance, ejected by outlier detection
	$(call meshlab_apply,circuit-breaker)
	@echo
	@echo "  The first requests may show 'product details are currently unavailable' (the failing instance);"
	@echo "  after 2 consecutive errors it is ejected for 5 min and details-v2 serves every page. Undo: make reset"

readiness: ## Readiness: reviews to every ready pod; an unready reviews-v2 gets no traffic until ready
	$(call meshlab_apply,readiness)
	@echo
	@echo "  Pages cycle through no stars (v1), black (v2) and red (v3). make readiness-fail makes reviews-v2"
	@echo "  fail its readiness probe: black stars vanish, nobody gets an error, until make readiness-pass."

# Flip reviews-v2's readiness: its sidecar's probe (/health) fails, the pod leaves the mesh.
readiness_toggle = $(MESHLAB_LAB) compose exec -T reviews-v2 python -m mesh.lab.readiness $(1)

readiness-fail: ## Readiness demo: make reviews-v2 fail its readiness probe (no more traffic)
	$(call readiness_toggle,false)
	@echo
	@echo "  reviews-v2 now fails /health: within ~1 s its sidecar reports it unready and the stars vanish."

readiness-pass: ## Readiness demo: reviews-v2 passes its probe again and gets traffic back
	$(call readiness_toggle,true)
	@echo
	@echo "  reviews-v2 is ready again: black stars are back in the rotation."
