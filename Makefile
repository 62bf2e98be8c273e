# Developer entry points. The venv is rebuilt only when pyproject.toml changes.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := test
.PHONY: venv opa run test lint bench bench-audit

$(BIN)/python:
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

opa: venv
	$(BIN)/order3 opa install

run: venv
	$(BIN)/order3 serve

# The policy unit tests run first, so every run reports their coverage; the suite runs them too.
test: opa
	$(BIN)/order3 policy test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: opa
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	opa="$$($(BIN)/order3 opa where)" && \
		"$$opa" check --strict policies && \
		"$$opa" fmt --list --fail policies && \
		"$$opa" test policies

bench: venv
	$(BIN)/python benchmarks/decisions.py $(BENCH_ARGS)

bench-audit: venv
	$(BIN)/python benchmarks/audit_log.py $(BENCH_ARGS)
