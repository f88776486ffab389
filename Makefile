# One command for the main job, one for the tests; both set themselves up on a fresh machine.
#   make demo   collect a small TwoRoom dataset, train a world model, evaluate it on near goals, then remember
#               the dataset and evaluate far goals flat and through the memory (CPU, minutes)
#   make test   the test suite
# TORCH is the torch requirement installed first; the default is the CPU build used here.
# Bring your own (e.g. TORCH="torch" for the CUDA build) on other machines.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
DEMO_DIR ?= demo
DEMO_MINUTES ?= 4
DEMO_FAR ?= 20

.PHONY: demo test setup bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/worldjepa collect --env worldjepa/TwoRoom-v0 --episodes 300 --steps 100 --workers 2 --out $(DEMO_DIR)/tworoom.h5
	$(BIN)/worldjepa train --data $(DEMO_DIR)/tworoom.h5 --out $(DEMO_DIR)/run --minutes $(DEMO_MINUTES)
	$(BIN)/worldjepa eval --data $(DEMO_DIR)/tworoom.h5 --policy random,oracle,$(DEMO_DIR)/run --episodes 50 \
		--json $(DEMO_DIR)/results.json --gif $(DEMO_DIR)/eval.gif
	$(BIN)/worldjepa memory build --run $(DEMO_DIR)/run --data $(DEMO_DIR)/tworoom.h5 --out $(DEMO_DIR)/memory.db --no-progress
	$(BIN)/worldjepa eval --data $(DEMO_DIR)/tworoom.h5 --far --episodes $(DEMO_FAR) --no-progress --json $(DEMO_DIR)/far.json \
		--policy "$(DEMO_DIR)/run,$(DEMO_DIR)/run[memory=$(DEMO_DIR)/memory.db]"

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
