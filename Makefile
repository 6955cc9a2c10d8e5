# Two commands for a newcomer: `make run` and `make test`. Both start with `make setup`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
STAMP  := $(VENV)/.fp-setup-stamp
BIN    := $(VENV)/bin

.PHONY: setup browser run test test-fast test-slow test-infra lint stack-up stack-down clean

setup: $(STAMP)

# Installs exactly what uv.lock pins (hash-checked), with the dev tools and the local substrate's servers;
# `--locked` refuses a lock that no longer matches pyproject.toml (run `.venv/bin/uv lock` after editing it).
# Re-installs only when pyproject.toml, uv.lock or this Makefile changed since the last setup (otherwise a no-op).
# `--inexact` keeps uv itself, which pip installed into the venv and the lock does not list.
# `--compile-bytecode` writes every installed module's .pyc once, here: where PYTHONDONTWRITEBYTECODE is set
# (as in the image), Python would otherwise compile dagster, botocore, sklearn … from source in every process
# (each pytest-xdist worker, each CLI call).
$(STAMP): pyproject.toml uv.lock Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "fp_platform needs Python 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --locked --inexact --compile-bytecode --python $(BIN)/python --extra dev --extra local
	@touch $(STAMP)

run: setup
	$(BIN)/fp-platform run

# The UI browser test drives Debian's chromium (headless). Set-up installs it only where it can without asking
# for a password (root with apt-get); elsewhere the UI test skips and says how to install it.
CHROMIUM := /usr/bin/chromium

browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	else echo "note: $(CHROMIUM) is missing and this user cannot install it without sudo: the UI test will skip"; fi

test: setup browser
	$(BIN)/pytest

# The unit tier: no stack, no browser, well under a minute.
test-fast: setup
	$(BIN)/pytest -m "unit and not slow" -q -n auto

test-slow: setup
	$(BIN)/pytest -m slow

# Terraform (fmt, validate, offline plan of infra/terraform/dev_min/{core,demo}), checkov, the tfvars drift
# test and the k8s manifests; skips with the reason where terraform or its AWS provider mirror is absent.
# The moto_server apply/destroy test is also `slow`: `$(BIN)/pytest -m "infra and slow"`.
test-infra: setup
	$(BIN)/pytest -m "infra and not slow" -q

# ruff, and the dependency rule of docs/design.md as import-linter contracts (pyproject.toml).
lint: setup
	$(BIN)/ruff check fp_platform fp_platform_tests infra
	$(BIN)/ruff format --check fp_platform fp_platform_tests infra
	$(BIN)/lint-imports

stack-up: setup
	$(BIN)/fp-platform stack up

stack-down: setup
	$(BIN)/fp-platform stack down

clean: stack-down
	rm -rf .fp $(VENV)
