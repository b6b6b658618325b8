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

# The Node.js deployment test (tests/onnx/test_deploy_node.py) needs onnxruntime-node; it is
# installed here when npm exists, never at test time. Without npm, or when the install fails,
# that one test skips and says why. (The variable stops its install script from fetching
# CUDA binaries; the CPU runtime ships in the package.)
NODE_DEPLOY := examples/deploy_node
$(NODE_DEPLOY)/node_modules/.stamp: $(NODE_DEPLOY)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		(cd $(NODE_DEPLOY) && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --silent) \
			&& touch $@ || echo "npm ci failed: the Node.js deployment test will skip"; \
	else \
		echo "npm not found: the Node.js deployment test will skip"; \
	fi

test: $(TEST_VENV)/.stamp $(NODE_DEPLOY)/node_modules/.stamp
	$(TEST_VENV)/bin/ruff check .
	$(TEST_VENV)/bin/ruff format --check .
	$(TEST_VENV)/bin/mypy
	$(TEST_VENV)/bin/python -m pytest -q -W error

bench: $(TEST_VENV)/.stamp
	$(TEST_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(DEMO_VENV) $(TEST_VENV) $(NODE_DEPLOY)/node_modules .pytest_cache .mypy_cache .ruff_cache
