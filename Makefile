# The two commands a newcomer runs. Each installs what it needs into .venv
# (tools/install_env.sh; quick when everything is already there).
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.mmconvmlp-installed

.PHONY: test test-fast demo install clean

install: $(STAMP)

# Re-run the installer only when a requirement or setup.py changes.
$(STAMP): tools/install_env.sh setup.py requirements/runtime.txt requirements/tests.txt
	bash tools/install_env.sh $(VENV)
	touch $@

## Run the whole test suite, slow end-to-end tests included.
test: $(STAMP)
	$(PYTHON) -m pytest tests

## The unit tests only (skips tests marked slow).
test-fast: $(STAMP)
	$(PYTHON) -m pytest tests -m "not slow"

## Build the built-in dataset, train RetinaNet-ConvMLP-S on it, evaluate, draw.
demo: $(STAMP)
	$(PYTHON) tools/run_demo.py

clean:
	rm -rf $(VENV) work_dirs data/builtin
