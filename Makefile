# Two entry points, each builds its own virtual environment from scratch:
#   make demo   -- ember's main job: `ember train` a CNN on Digits from its config, show the result
#   make test   -- install what the tests need and run the whole suite (lint, types, pytest)
# and one helper:
#   make bench  -- ember beside NumPy and PyTorch (BENCH_ARGS="--quick" for a short run)
PYTHON ?= python3
DEMO_VENV := .venv-demo
TEST_VENV := .venv-test
TORCH_PIN := torch==2.13.0
BENCH_ARGS ?=

.PHONY: demo test bench clean

$(DEMO_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install -q -e '.[cli,data]'
	touch $@

$(TEST_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(TEST_VENV)/bin/python -m pip install -q -e '.[dev]' $(TORCH_PIN)
	touch $@

demo: $(DEMO_VENV)/.stamp
	$(DEMO_VENV)/bin/ember train examples/configs/digits_cnn.yaml --overwrite

test: $(TEST_VENV)/.stamp
	$(TEST_VENV)/bin/ruff check .
	$(TEST_VENV)/bin/ruff format --check .
	$(TEST_VENV)/bin/mypy
	$(TEST_VENV)/bin/python -m pytest -q -W error

bench: $(TEST_VENV)/.stamp
	$(TEST_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(DEMO_VENV) $(TEST_VENV) .pytest_cache .mypy_cache .ruff_cache
