# tbml — every target sets up what it needs. `make` alone lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := build/demo
# Quiet the pip index warnings of this machine's local mirrors without hiding real errors.
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help setup demo test bench model clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c requirements/constraints.txt -e ".[test]"
	@touch $@

setup: $(STAMP) ## create .venv and install tbml with pinned dependencies

demo: $(STAMP) ## generate sample trade + payments, validate them, score them, show the top alerts
	$(BIN)/tbml generate --invoices 20000 --seed 7 -o $(DEMO)
	$(BIN)/tbml validate $(DEMO)/invoices.csv --transfers $(DEMO)/transfers.csv -o $(DEMO)/validate
	$(BIN)/tbml score $(DEMO)/invoices.csv --transfers $(DEMO)/transfers.csv -o $(DEMO)/scored --top 5

test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m pytest

bench: $(STAMP) ## run the benchmarks (each ends with one JSON line of figures)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

model: $(STAMP) ## train the default model on generated data (seed 42) into models/tbml-default, with a model card
	$(BIN)/tbml generate --invoices 50000 --seed 42 -o build/model-data
	rm -rf models/tbml-default
	$(BIN)/tbml train build/model-data/invoices.csv --transfers build/model-data/transfers.csv \
		--save models/tbml-default --no-register

clean: ## remove the virtual environment and build outputs
	rm -rf $(VENV) build *.egg-info
