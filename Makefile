# Common commands. `make demo` and `make test` are the README's quick start.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-all lint format docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	# torch/torchvision first, as the pair known to import together here
	$(BIN)/pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install --quiet -e ".[dev]"

# the digits converge at 25,000 samples a fit (docs/results.md, "Speed"); the rule's 100,000
# are what Fashion-MNIST needs at 200 labels. MoBYv2AL's joint training with the MoBY loss on
# every 4th labelled batch and a quarter unlabelled batch: 2.1x a plain fit, not 5.4x
demo: install
	$(BIN)/moby-al run --train-samples 25000 --contrastive-every 4 --unlabeled-ratio 0.25

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint:
	$(BIN)/ruff check moby_al_plugin tests examples benchmarks
	$(BIN)/ruff format --check moby_al_plugin tests examples benchmarks

format:
	$(BIN)/ruff format moby_al_plugin tests examples benchmarks

# the documentation (docs/): every warning is an error; the site lands in docs/_build/html
docs: install
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache docs/_build docs/api/generated
