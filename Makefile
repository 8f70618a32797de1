# Common commands. `make demo` and `make test` are the README's quick start.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-all lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	# torch/torchvision first, as the pair known to import together here
	$(BIN)/pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install --quiet -e ".[dev]"

# the digits converge at 25,000 samples a fit (README, "Speed"); the rule's 100,000 are
# what Fashion-MNIST needs at 200 labels
demo: install
	$(BIN)/moby-al run --train-samples 25000

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint:
	$(BIN)/ruff check moby_al_plugin tests examples benchmarks
	$(BIN)/ruff format --check moby_al_plugin tests examples benchmarks

format:
	$(BIN)/ruff format moby_al_plugin tests examples benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
