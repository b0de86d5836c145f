# tbml — every target sets up what it needs. `make` alone lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := build/demo
# Quiet the pip index warnings of this machine's local mirrors without hiding real errors.
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help setup demo test bench model batch browser clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c requirements/constraints.txt -e ".[test]"
	@touch $@

setup: $(STAMP) ## create .venv and install tbml with pinned dependencies

demo: $(STAMP) models/tbml-default/model.json ## generate sample data, validate and score it with the default model, write the HTML report
	$(BIN)/tbml generate --invoices 50000 --seed 42 --sample 1 -o $(DEMO)  # a new file from the model's market
	$(BIN)/tbml validate $(DEMO)/invoices.csv --transfers $(DEMO)/transfers.csv -o $(DEMO)/validate
	$(BIN)/tbml score $(DEMO)/invoices.csv --transfers $(DEMO)/transfers.csv --model models/tbml-default \
		-o $(DEMO)/scored --top 5
	$(BIN)/tbml report $(DEMO)/scored
	@echo "open $(CURDIR)/$(DEMO)/scored/report.html in a browser"

batch: $(STAMP) models/tbml-default/model.json ## run the sample nightly job configs/batch.yaml on the demo data (make demo first)
	$(BIN)/tbml batch configs/batch.yaml

models/tbml-default/model.json: $(STAMP)
	$(MAKE) model

test: $(STAMP) browser ## run the whole test suite
	$(BIN)/python -m pytest

# The report test opens the HTML in headless Chromium (Debian's package); where it cannot be installed
# (no root, no apt), that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
	    >/dev/null 2>&1 && echo "installed Debian's chromium for the report test"; } || \
	  echo "note: Chromium is not installed and could not be installed; the browser test will skip"

bench: $(STAMP) ## run the benchmarks (each ends with one JSON line of figures)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

model: $(STAMP) ## train the default model on generated data (seed 42) into models/tbml-default, with a model card
	$(BIN)/tbml generate --invoices 50000 --seed 42 -o build/model-data
	rm -rf models/tbml-default
	$(BIN)/tbml train build/model-data/invoices.csv --transfers build/model-data/transfers.csv \
		--save models/tbml-default --no-register

clean: ## remove the virtual environment and build outputs
	rm -rf $(VENV) build *.egg-info
