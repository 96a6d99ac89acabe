# Two commands set up a fresh machine and do the work:
#   make demo   set up, then run the main job (fit + evaluate + zero-shot on Fashion-MNIST)
#   make test   set up, then run the test suite
#   make mutation   a bounded mutation run over the core modules (about 30 min on 2 cores):
#                   score and survivors in benchmarks/results/mutation.json
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint mutation
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

demo: setup
	$(BIN)/wordsight demo --out demo-output

lint: setup
	$(BIN)/ruff check .

test: setup
	$(BIN)/python -m pytest tests

mutation: setup
	nice $(BIN)/python scripts/mutation.py --jobs 2 --budget-min 28
