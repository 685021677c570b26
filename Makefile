# Concord — `make help` lists the targets. The two a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
VAR := var
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
PYTEST_WORKERS ?= 2
DEMO_MRI ?= 24
DEMO_CT ?= 24
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# --- installation ---------------------------------------------------------------------------------------

$(VENV)/.runtime: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

.PHONY: debs
debs: ## install the Debian packages of platform/apt-packages.txt that are missing
	bash platform/install-debs.sh

.PHONY: deps
deps: debs $(VENV)/.dev ## install everything (Debian packages, runtime and dev requirements)

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

.PHONY: frontend
frontend: frontend/node_modules/.package-lock.json ## build the browser app into frontend/dist
	cd frontend && npm run build

.PHONY: services
services: ## start PostgreSQL, Redis and Orthanc on 127.0.0.1 when they are not running
	bash platform/services.sh start all
	bash platform/services.sh wait all

# --- quality --------------------------------------------------------------------------------------------

.PHONY: lint
lint: $(VENV)/.dev ## ruff, import contracts, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	SECRET_KEY=lint $(BIN)/mypy config labeling ml

.PHONY: lint-frontend
lint-frontend: frontend/node_modules/.package-lock.json ## tsc --noEmit, ESLint, Prettier, Vitest
	cd frontend && npm run check

.PHONY: fmt
fmt: $(VENV)/.dev ## format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: check
check: $(VENV)/.dev ## Django system checks, migrations up to date, OpenAPI schema valid
	SECRET_KEY=check $(PY) manage.py check
	SECRET_KEY=check $(PY) manage.py makemigrations --check --dry-run
	SECRET_KEY=check $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

.PHONY: test
test: deps services frontend lint lint-frontend check schema-check ## install, build, start services, lint, run the whole suite
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider

E2E_REPEAT ?= 10

.PHONY: test-e2e-repeat
test-e2e-repeat: deps services frontend ## the browser tests E2E_REPEAT (10) times in a row, stopping at the first failure, as a table (E2E_ARGS: more pytest arguments)
	E2E_REPEAT=$(E2E_REPEAT) PYTEST_WORKERS=$(PYTEST_WORKERS) $(PY) -m tests.e2e.repeat $(E2E_ARGS)

FUZZ_EXAMPLES ?= 100

.PHONY: fuzz
fuzz: deps services ## schemathesis on every API operation as each role: FUZZ_EXAMPLES (100) examples each, plus its coverage phase
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_COVERAGE=1 $(BIN)/pytest tests/labeling/test_api_fuzz.py -k conforms \
	    -n $(PYTEST_WORKERS) -p no:cacheprovider

.PHONY: test-ml
test-ml: $(VENV)/.dev ## the plain-Python ml tests, without Django
	$(BIN)/pytest tests/ml -p no:django -p no:cacheprovider

.PHONY: bench
bench: bench-assignments bench-consensus bench-consensus-robust bench-refit bench-proxy bench-dicomweb-local bench-readerstudy bench-hostile-import ## every benchmark of tests/bench, as tables

.PHONY: bench-assignments
bench-assignments: deps services ## assignment generator, 10,000 cases x 3 readers + 20% repeats
	$(PY) -m tests.bench.bench_assignments

.PHONY: bench-consensus
bench-consensus: deps ## Dawid-Skene fits 1e3..1e6 items vs majority vote and crowd-kit
	$(PY) -m pip install -q --no-deps crowd-kit==1.4.2 && $(PY) -m pip install -q nltk==3.10.4
	$(PY) -m tests.bench.bench_consensus

.PHONY: bench-consensus-robust
bench-consensus-robust: deps ## consensus under realistic readers vs majority, crowd-kit DS/GLAD/MACE, with CIs
	$(PY) -m pip install -q --no-deps crowd-kit==1.4.2 && $(PY) -m pip install -q nltk==3.10.4
	$(PY) -m tests.bench.bench_consensus_robust

.PHONY: bench-refit
bench-refit: deps services ## consensus refits at 1,000,000 reading values: full, no-op, incremental, submit -> API
	$(PY) -m tests.bench.bench_consensus_refit

.PHONY: bench-dicomweb-local
bench-dicomweb-local: deps services ## series metadata and frame latency of /dicomweb/ on the local store
	$(PY) -m tests.bench.bench_dicomweb_local

FIRST_IMAGE_ARGS ?=

.PHONY: bench-first-image
bench-first-image: deps services frontend ## first image in Chromium on the demo data, cold and warm: MRI, CT, adjudication (FIRST_IMAGE_ARGS, e.g. "--store orthanc --keep")
	$(PY) -m tests.bench.bench_first_image $(FIRST_IMAGE_ARGS)

.PHONY: bench-proxy
bench-proxy: deps services ## frame latency through the DICOMweb proxy vs Orthanc, 20 clients
	$(PY) -m tests.bench.bench_proxy

LOAD_ARGS ?=

.PHONY: bench-api-hot
bench-api-hot: deps services ## reader hot paths in-process (worklist, next case, draft load, draft save, submit): p50/p95 ms and SQL queries, 2,000 cases (API_HOT_ARGS)
	$(PY) -m tests.bench.bench_api_hot $(API_HOT_ARGS)

.PHONY: bench-load
bench-load: deps services ## locust: readers, adjudicators, admins on gunicorn + worker + beat + Orthanc, then a burst (LOAD_ARGS, e.g. "--readers 200 --adjudicators 20 --minutes 10")
	$(PY) -m tests.bench.bench_load $(LOAD_ARGS)

.PHONY: bench-soak
bench-soak: deps services ## the 30-minute soak: 100 readers, memory of web/worker/database/Redis and open connections over time
	$(PY) -m tests.bench.bench_load --readers 100 --adjudicators 10 --admins 2 --minutes 30 --sample-s 30 --burst-s 0 $(LOAD_ARGS)

.PHONY: bench-readerstudy
bench-readerstudy: $(VENV)/.dev ## MRMC analysis: type I error on 2,000 Roe-Metz null studies, speed at 10 x 2 x 1,000
	$(PY) -m tests.bench.bench_readerstudy

FAULTS_ARGS ?=

.PHONY: faults
faults: deps services ## fault scenarios (kill -9 worker in a refit and an import, broker down, Orthanc down, kill -9 of a private PostgreSQL) as a table (FAULTS_ARGS, e.g. "--only 5")
	$(PY) -m tests.bench.faults $(FAULTS_ARGS)

.PHONY: bench-hostile-import
bench-hostile-import: deps services ## peak memory of each hostile import (zip bombs, traversal, links, absurd DICOM) vs a valid study
	$(PY) -m tests.bench.bench_hostile_import

PREREADS_ARGS ?=
.PHONY: bench-prereads
bench-prereads: deps services ## a 24-case pre-read batch per model kind: weights loaded per case (before issue 17) vs per batch (PREREADS_ARGS, e.g. "--threads 1 --beside-training")
	@test -d $(VAR)/bench-smoke/seed-1001-2002 || $(MAKE) bench-accuracy-smoke
	$(PY) -m tests.bench.bench_prereads --models $(VAR)/bench-smoke/seed-1001-2002 $(PREREADS_ARGS)

.PHONY: bench-accuracy-final
bench-accuracy-final: $(VENV)/.dev ## the honest accuracy table (issue 18): 3 untouched seed pairs, CIs (GPU: DEVICE=cuda); each scored pair is kept in ml/bench/final, so a cut-off run resumes
	$(PY) -m ml.bench accuracy --out $(VAR)/bench-final --seeds final --device $(or $(DEVICE),cpu)

.PHONY: bench-accuracy-smoke
bench-accuracy-smoke: $(VENV)/.dev ## the same protocol on the development seeds at tiny sizes (minutes on a CPU)
	$(PY) -m ml.bench accuracy --out $(VAR)/bench-smoke --seeds dev --quick --threads 1 --bootstrap 500

.PHONY: schema
schema: $(VENV)/.runtime ## write the OpenAPI schema to var/openapi.yaml
	@mkdir -p $(VAR)
	@# Without DATABASE_URL: integer bounds (int64 or not) follow the database backend, and the schema must
	@# not change with the shell's database, or schema-check fails wherever DATABASE_URL names PostgreSQL.
	env -u DATABASE_URL SECRET_KEY=schema $(PY) manage.py spectacular --file $(VAR)/openapi.yaml

.PHONY: schema-types
schema-types: schema frontend/node_modules/.package-lock.json ## regenerate the front end's API types (frontend/src/api/schema.d.ts)
	cd frontend && npm run --silent schema

.PHONY: schema-check
schema-check: schema frontend/node_modules/.package-lock.json ## fail when frontend/src/api/schema.d.ts is behind the API schema
	cd frontend && npx openapi-typescript ../var/openapi.yaml -o ../var/schema.d.ts >/dev/null
	@diff -u frontend/src/api/schema.d.ts var/schema.d.ts >var/schema.diff \
		|| { head -40 var/schema.diff; echo "frontend/src/api/schema.d.ts is behind the API schema: run make schema-types"; exit 1; }

# --- demo -----------------------------------------------------------------------------------------------

.env:
	@echo "SECRET_KEY=$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')" > .env
	@echo "DEBUG=false" >> .env
	@echo "wrote .env with a fresh SECRET_KEY"

.PHONY: demo
demo: $(VENV)/.runtime .env frontend demo-stop ## install, create the database, load demo data, start web + worker + beat
	@mkdir -p $(VAR)/log $(VAR)/run $(VAR)/celery/queue $(VAR)/celery/processed $(VAR)/celery/results $(VAR)/celery/control
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py demo_setup
	$(PY) manage.py demo_load_phantoms --mri $(DEMO_MRI) --ct $(DEMO_CT)
	$(PY) manage.py demo_reader_study
	$(BIN)/celery -A config worker -Q default,gpu -c 2 --loglevel INFO \
	    --pidfile $(VAR)/run/worker.pid --logfile $(VAR)/log/worker.log --detach
	$(BIN)/celery -A config beat --loglevel INFO --pidfile $(VAR)/run/beat.pid \
	    --logfile $(VAR)/log/beat.log --detach
	$(BIN)/gunicorn -c config/gunicorn.conf.py config.wsgi --bind $(DEMO_HOST):$(DEMO_PORT) --daemon \
	    --pid $(VAR)/run/web.pid --access-logfile $(VAR)/log/web-access.log --error-logfile $(VAR)/log/web.log
	$(PY) manage.py demo_train
	@for i in $$(seq 1 60); do curl -fs -o /dev/null http://$(DEMO_HOST):$(DEMO_PORT)/api/schema/ && break; sleep 0.5; done
	@curl -fs -o /dev/null http://$(DEMO_HOST):$(DEMO_PORT)/api/schema/ || { echo "web did not start: see $(VAR)/log/web.log"; exit 1; }
	@echo
	@echo "Concord is running at http://$(DEMO_HOST):$(DEMO_PORT)/  (API docs: /api/docs/, admin: /admin/)"
	@cat $(VAR)/demo-logins.txt
	@echo "AI-aided CT reader study (MRMC, aided vs unaided): Manage > SIJ CT reader study demo > Reader study."
	@echo "Training runs of each model kind are going in the background (Admin > Training, or /api/projects/1/training/runs/)."
	@echo "Logs in $(VAR)/log/; stop with: make demo-stop"

DEMO_STOP_WAIT_S ?= 30

.PHONY: demo-stop
demo-stop: ## stop the demo's web, worker and beat; returns once they have exited (killed after DEMO_STOP_WAIT_S, 30)
	@for name in web worker beat; do \
	    pidfile=$(VAR)/run/$$name.pid; \
	    [ -f $$pidfile ] || continue; \
	    pid=$$(cat $$pidfile); \
	    if kill $$pid 2>/dev/null; then \
	        for i in $$(seq 1 $$(( $(DEMO_STOP_WAIT_S) * 10 ))); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
	        if kill -0 $$pid 2>/dev/null; then \
	            echo "$$name (pid $$pid) still running $(DEMO_STOP_WAIT_S) s after SIGTERM: killed"; kill -9 $$pid 2>/dev/null || true; \
	            for i in $$(seq 1 50); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
	        fi; \
	    fi; \
	    rm -f $$pidfile; \
	done

.PHONY: clean
clean: demo-stop ## remove the demo database, queues and caches (keeps .venv)
	rm -rf $(VAR)/concord.sqlite3 $(VAR)/celery $(VAR)/run .pytest_cache .mypy_cache .ruff_cache
