# FleetPulse: `make demo` runs the whole pipeline on this host, `make test` runs every check.
# Everything Python lives in .venv; Kafka jars and data live in .fleetpulse/ (both git-ignored).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test lint unit integration venv kafka-start kafka-stop clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/fleetpulse demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check collector policies streams sinks fleetpulse tests bench
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q $(PYTEST_ARGS)

# The one test command (CI runs it): lint, types, unit and integration tests. The integration
# tests start a local Kafka from Maven jars unless KAFKA_BOOTSTRAP_SERVERS is set, and stop it.
test: $(STAMP)
	$(BIN)/ruff check collector policies streams sinks fleetpulse tests bench
	$(BIN)/mypy
	$(BIN)/pytest tests -q $(PYTEST_ARGS)

kafka-start: $(STAMP)
	$(BIN)/fleetpulse kafka start

kafka-stop: $(STAMP)
	$(BIN)/fleetpulse kafka stop

clean:
	rm -rf $(VENV) .fleetpulse .pytest_cache .mypy_cache .ruff_cache
