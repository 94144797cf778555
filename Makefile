# TagPatch developer and CI entry points. `make test` is the one command that gates a change.
# Nothing needs activating: every tool runs from $(VENV)/bin.

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-created only when the dependency pins or the project metadata change.
VENV_STAMP := $(VENV)/.stamp-requirements-dev

export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: .venv lint format typecheck validate build unit test hub-package calls collector-calls reporter-calls bench-report-scale demo demo-org operator chromium security bench bench-fleet bench-org clean distclean

.venv: $(VENV_STAMP)

$(VENV_STAMP): requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -r requirements-dev.txt
	$(BIN)/python -m pip install --progress-bar off -e .
	touch $@

lint: .venv
	$(BIN)/ruff check src tests benchmarks emulator hub
	$(BIN)/ruff format --check src tests benchmarks emulator hub

# Rewrites files: run before committing, not in CI.
format: .venv
	$(BIN)/ruff check --fix src tests benchmarks emulator hub
	$(BIN)/ruff format src tests benchmarks emulator hub

typecheck: .venv
	$(BIN)/mypy
	$(BIN)/mypy --strict --follow-imports=silent emulator tests/e2e hub

# The member stack (template.yaml) and the organization hub (hub/template.yaml).
validate: .venv
	$(BIN)/sam validate --lint
	$(BIN)/sam validate --lint -t hub/template.yaml

# Neither needs python3.13 or Docker: src/ has no requirements.txt, so SAM only copies it. The hub
# builds into its own directory so the member stack's .aws-sam/build stays what `sam deploy` uses.
build: .venv
	$(BIN)/sam build
	$(BIN)/sam build -t hub/template.yaml --build-dir .aws-sam/hub-build

unit: .venv
	$(BIN)/pytest tests/unit

# Headless Chromium for the html report test (tests/integration/test_cli.py): installed when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# checkov in its own venv (its pins would fight aws-sam-cli's). Fails on any finding that is not
# skipped in template.yaml or hub/template.yaml with a justification (resource Metadata: checkov:
# skip: id + comment).
SECURITY_VENV := .venv-security
SECURITY_STAMP := $(SECURITY_VENV)/.stamp-checkov-3.3.30

$(SECURITY_STAMP):
	test -x $(SECURITY_VENV)/bin/python || $(PYTHON) -m venv $(SECURITY_VENV)
	$(SECURITY_VENV)/bin/python -m pip install --progress-bar off checkov==3.3.30
	touch $@

security: $(SECURITY_STAMP)
	BC_SKIP_MAPPING=TRUE $(SECURITY_VENV)/bin/checkov -f template.yaml -f hub/template.yaml \
		--framework cloudformation --compact --quiet --skip-download

# The member stack packaged for the hub's StackSet (hub/package.py): its code in one staging bucket
# per member Region (<prefix>-<region>, readable by the organization only), the template translated
# to plain CloudFormation in the hub Region's bucket. Prints the TemplateURL: the hub's
# MemberTemplateUrl. Uses your AWS credentials, e.g.
# `make hub-package HUB_BUCKET_PREFIX=acme-tagpatch HUB_REGIONS=eu-west-1,us-east-1 HUB_ORG_ID=o-...`.
HUB_BUCKET_PREFIX ?=
HUB_REGIONS ?=
HUB_ORG_ID ?=
HUB_PACKAGE_ARGS ?=
hub-package: .venv
	@test -n "$(HUB_BUCKET_PREFIX)" -a -n "$(HUB_REGIONS)" -a -n "$(HUB_ORG_ID)" || \
		{ echo "set HUB_BUCKET_PREFIX, HUB_REGIONS and HUB_ORG_ID" >&2; exit 2; }
	PYTHONPATH=src:. $(BIN)/python -m hub.package --bucket-prefix "$(HUB_BUCKET_PREFIX)" \
		--regions "$(HUB_REGIONS)" --organization-id "$(HUB_ORG_ID)" $(HUB_PACKAGE_ARGS)

# One worker per CPU (2 here): the suite is about 11 minutes on one, about half on two.
PYTEST_WORKERS ?= auto

test: .venv lint typecheck validate build chromium security
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --cov=src/tagpatch --cov-fail-under=90

# TagPatch end to end on a local AWS emulator (moto's server on 127.0.0.1): no AWS account needed.
# `make demo DEMO_ARGS=--verbose` adds the least-privilege detail per role.
demo: .venv
	PYTHONPATH=src:. $(BIN)/python -m emulator.demo $(DEMO_ARGS)

# TagPatch across an AWS Organization on the emulator: the hub in a delegated administrator account,
# member stacks by its StackSet in 3 accounts x 2 regions, events forwarded under the hub bus policy,
# the organization report (about 2 minutes). `make demo-org DEMO_ARGS=--verbose` lists every role.
demo-org: .venv
	PYTHONPATH=src:. $(BIN)/python -m emulator.demo_org $(DEMO_ARGS)

# The `tagpatch` operator CLI run against the demo stack on the emulator (the README's output).
operator: .venv
	PYTHONPATH=src:. $(BIN)/python -m emulator.operator

# Exact API call counts per reconciler event (new, converged, drifted group), against moto.
calls: .venv
	PYTHONPATH=src:. $(BIN)/python -m benchmarks.reconciler_calls

collector-calls: .venv
	PYTHONPATH=src:. $(BIN)/python -m benchmarks.collector_calls

reporter-calls: .venv
	PYTHONPATH=src:. $(BIN)/python -m benchmarks.reporter_calls

# A compliance run of 100,000 instances in 1,000 groups fanned out through the report queue:
# API calls, emulator wall and projected AWS wall against their floors (about 3 minutes).
bench-report-scale: .venv
	PYTHONPATH=src:. $(BIN)/python -m benchmarks.reporter_scale

# Cold start, reconciler, collector, reporter and package size, each against its floor, side by side;
# writes benchmarks/RESULTS.md. Not part of `make test` (it measures, it does not gate).
bench: .venv
	PYTHONPATH=src:. $(BIN)/python -m benchmarks.bench

# Shared windows at fleet scale (1,000 groups on 10 schedules; a burst of 200 new groups at 2 and 8
# workers), each figure against its floor; prints a table (about 2 minutes of CPU on moto).
bench-fleet: .venv
	PYTHONPATH=src:. $(BIN)/python -m benchmarks.fleet_scale

# `tagpatch report --org` on 200 accounts x 2 regions x 20 groups with 30 days of history, against its
# floor (about 17 minutes on moto; `make bench` reads 7 days).
bench-org: .venv
	PYTHONPATH=src:. $(BIN)/python -m benchmarks.org_report

clean:
	rm -rf .aws-sam .coverage coverage.xml htmlcov .mypy_cache .ruff_cache .pytest_cache
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info
