# MangaAssist integration platform. Every target bootstraps what it needs on a fresh machine:
# a virtual environment in .venv installed from the hashed locks. A .pth file puts the shared
# layer's package (layers/shared/python: mangaassist) and the development-only code (scripts/:
# mangaassist_dev, embedded) on its path, as /opt/python is on Lambda's.
SHELL := /bin/bash
# A TF_CLI_CONFIG_FILE naming a missing file only makes terraform warn on every call.
export TF_CLI_CONFIG_FILE := $(wildcard $(TF_CLI_CONFIG_FILE))
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TF := terraform -chdir=terraform
PIP_COMPILE := $(BIN)/pip-compile -q --generate-hashes --no-emit-index-url --no-emit-find-links --allow-unsafe --strip-extras

.PHONY: help setup run test pytest lint typecheck tf-fmt validate tf-test build openapi lock bench clean \
	deploy-test checkov lock-checkov mutation schema-compat

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
		| xargs -I{} sh -c 'printf "%s\n" "$(CURDIR)/layers/shared/python" "$(CURDIR)/scripts" > {}/mangaassist-dev.pth'
	touch $@

setup: $(STAMP) ## create .venv from the hashed locks

run: $(STAMP) ## serve the whole platform offline on 127.0.0.1:$${PORT:-8080}
	$(BIN)/python scripts/local_stack.py

test: tf-fmt validate tf-test lint typecheck pytest ## everything CI runs: terraform fmt/validate/test, ruff, mypy, pytest

pytest: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP) ## ruff (ruff.toml: Powertools' rules, 120 columns, complexity 15)
	$(BIN)/ruff check .

typecheck: $(STAMP) ## mypy on the shared layer and the handlers (pyproject.toml)
	$(BIN)/mypy

tf-fmt:
	terraform fmt -check -recursive terraform

terraform/.terraform/.initialised: $(wildcard terraform/*.tf terraform/tests/*.hcl terraform/modules/*/versions.tf terraform/.terraform.lock.hcl)
	scripts/terraform_init.sh
	touch $@

validate: terraform/.terraform/.initialised ## terraform validate, offline when the provider mirror exists
	$(TF) validate -no-color

tf-test: terraform/.terraform/.initialised ## terraform test with a mocked AWS provider
	$(TF) test -no-color

build: $(STAMP) ## deterministic zips in build/ and build/manifest.json
	$(BIN)/python scripts/build.py

openapi: $(STAMP) ## write schemas/api/openapi.json from wiring.json's routes and schemas/api
	$(BIN)/python -m mangaassist_dev.openapi

lock: $(STAMP) ## re-pin requirements*.txt from requirements*.in with hashes
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -c requirements-dev.txt -o functions/authorizer/requirements.txt functions/authorizer/requirements.in

deploy-test: $(STAMP) ## apply, re-plan and destroy the root module on a fresh moto server, offline
	test -f build/manifest.json || $(MAKE) build
	$(BIN)/python scripts/deploy_test.py

# checkov pins an old boto3: it gets a virtual environment of its own, from its own hashed lock.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --require-hashes -r requirements-checkov.txt
	touch $@

checkov: $(CHECKOV_VENV)/.installed ## checkov on terraform/: 0 failed; every skip is written next to its resource with the reason
	$(CHECKOV_VENV)/bin/checkov --directory terraform --framework terraform --download-external-modules false --compact --quiet

lock-checkov: $(STAMP) ## re-pin requirements-checkov.txt from requirements-checkov.in with hashes
	$(PIP_COMPILE) -o requirements-checkov.txt requirements-checkov.in

bench: $(STAMP) ## benchmarks, printed as tables; fails when any goal is missed (all of them still run)
	@missed=""; for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || missed="$$missed $$b"; echo; done; \
	if [ -n "$$missed" ]; then echo "goals missed by:$$missed"; exit 1; fi

mutation: $(STAMP) ## mutmut on the modules in pyproject.toml [tool.mutmut]; kill rate per module (MAX_CHILDREN=1, KEEP=1)
	$(BIN)/python tests/mutation/run.py --max-children $(or $(MAX_CHILDREN),1) $(if $(KEEP),--keep)

schema-compat: $(STAMP) ## breaking changes in schemas/ against BASE (default origin/main, else main)
	$(BIN)/python -m mangaassist_dev.schema_compat $(if $(BASE),--base $(BASE))

clean: ## remove generated files (keeps .venv)
	rm -rf build .local .pytest_cache .hypothesis terraform/.terraform
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
